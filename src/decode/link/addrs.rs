//! The link-layer addresses of a decoded packet, borrowed from its frame: Ethernet's
//! destination and source, or an 802.11 data frame's header, whose To DS / From DS bits say
//! which of its three or four addresses are the hosts the frame goes between.

use crate::wire::ieee80211::{self, ADDR1, ADDR2, DataFrame, FrameControl};
use crate::wire::link::Mac;

/// The link-layer addresses of a frame, borrowed from it (the flows of a device are joined to
/// the inventory by its address; copying them for every packet would cost the packet path for
/// the few packets that need them). One pointer and a tag: 802.11 addresses are not adjacent
/// (which is where depends on the DS bits), so the 802.11 variants keep the header from its
/// frame control on and read them when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAddrs<'a> {
    /// Ethernet: destination then source.
    Ethernet(&'a [u8; 12]),
    /// An 802.11 data frame's header up to address 3 (To DS and From DS not both set).
    Ieee80211(&'a [u8; DataFrame::ADDR3_LEN]),
    /// A four-address 802.11 data frame's header up to address 4 (To DS and From DS).
    Ieee80211Wds(&'a [u8; DataFrame::WDS_LEN]),
}

impl<'a> LinkAddrs<'a> {
    /// The destination: Ethernet's, or the 802.11 destination address (DA).
    pub fn dst(&self) -> Mac {
        match self {
            Self::Ethernet(a) => {
                let [d @ .., _, _, _, _, _, _] = **a;
                Mac(d)
            }
            _ => self.dst_src().0,
        }
    }

    /// The source: Ethernet's, or the 802.11 source address (SA). For a station's frames
    /// to its access point (To DS) it is the station's own address, as is the destination of
    /// the frames the access point sends it (From DS): the key of the device inventory.
    pub fn src(&self) -> Mac {
        match self {
            Self::Ethernet(a) => {
                let [_, _, _, _, _, _, s @ ..] = **a;
                Mac(s)
            }
            _ => self.dst_src().1,
        }
    }

    /// The radio that received the frame on this hop (802.11 address 1); for Ethernet the
    /// destination.
    pub fn receiver(&self) -> Mac {
        match self {
            Self::Ethernet(_) => self.dst(),
            _ => ieee80211::mac_at(self.bytes(), ADDR1).unwrap_or_default(),
        }
    }

    /// The radio that sent the frame on this hop (802.11 address 2); for Ethernet the
    /// source.
    pub fn transmitter(&self) -> Mac {
        match self {
            Self::Ethernet(_) => self.src(),
            _ => ieee80211::mac_at(self.bytes(), ADDR2).unwrap_or_default(),
        }
    }

    fn dst_src(&self) -> (Mac, Mac) {
        // Every variant holds the addresses its DS bits name (see `from_bytes`).
        ieee80211::destination_source(self.bytes()).unwrap_or_default()
    }

    /// The bytes borrowed, for a batch to keep them; [`Self::from_bytes`] gives them back.
    pub fn bytes(&self) -> &'a [u8] {
        match *self {
            Self::Ethernet(a) => a,
            Self::Ieee80211(h) => h,
            Self::Ieee80211Wds(h) => h,
        }
    }

    /// The addresses of [`Self::bytes`], told apart by their length: 12 for Ethernet, 24 for
    /// an 802.11 header without both DS bits, 30 for one with both. `None` for anything else.
    pub fn from_bytes(bytes: &'a [u8]) -> Option<Self> {
        let wds = |h: &[u8]| {
            let fc = FrameControl([h[0], h[1]]);
            fc.to_ds() && fc.from_ds()
        };
        if let Ok(a) = bytes.try_into() {
            Some(Self::Ethernet(a))
        } else if let Ok(h) = <&[u8; DataFrame::ADDR3_LEN]>::try_from(bytes) {
            (!wds(h)).then_some(Self::Ieee80211(h))
        } else if let Ok(h) = <&[u8; DataFrame::WDS_LEN]>::try_from(bytes) {
            wds(h).then_some(Self::Ieee80211Wds(h))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pointer_and_a_tag() {
        // PacketMeta is copied per packet: the addresses took 8 bytes as one `&[u8; 12]`.
        assert_eq!(size_of::<Option<LinkAddrs<'_>>>(), 16);
    }

    #[test]
    fn addresses_by_ds_bits_and_back_from_bytes() {
        let eth: [u8; 12] = [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2];
        let e = LinkAddrs::Ethernet(&eth);
        assert_eq!((e.dst().0[0], e.src().0[0]), (1, 2));
        assert_eq!((e.receiver(), e.transmitter()), (e.dst(), e.src()));
        assert_eq!(LinkAddrs::from_bytes(e.bytes()), Some(e));
        // A header whose address n is n repeated.
        let mut h = [0u8; 30];
        for (n, at) in [(1, 4), (2, 10), (3, 16), (4, 24)] {
            h[at..at + 6].fill(n);
        }
        for (ds, dst, src) in [(0, 1, 2), (1, 3, 2), (2, 1, 3), (3, 3, 4)] {
            h[1] = ds;
            let a = if ds == 3 {
                LinkAddrs::Ieee80211Wds(&h)
            } else {
                LinkAddrs::Ieee80211(h.first_chunk().unwrap())
            };
            assert_eq!((a.dst().0[5], a.src().0[5]), (dst, src), "DS bits {ds}");
            assert_eq!((a.receiver().0[0], a.transmitter().0[0]), (1, 2));
            assert_eq!(LinkAddrs::from_bytes(a.bytes()), Some(a));
        }
        // A 24-byte header with both DS bits has no address 4: refused.
        h[1] = 3;
        assert_eq!(LinkAddrs::from_bytes(&h[..24]), None);
        h[1] = 1;
        assert_eq!(LinkAddrs::from_bytes(&h), None);
        assert_eq!(LinkAddrs::from_bytes(&h[..13]), None);
    }
}
