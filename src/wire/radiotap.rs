//! Checked view over a radiotap header (LINKTYPE_IEEE802_11_RADIOTAP, 127): what a Mac's
//! Wireless Diagnostics sniffer, `tcpdump -I` and Linux monitor interfaces put before each
//! 802.11 frame. Only what decoding the frame needs is read: the header's length and, from
//! the Flags field, whether the frame ends with its FCS, is padded after its header, or
//! failed its FCS check.
//!
//! Hand-written rather than the `radiotap` crate: its last release (1.3.0) is from 2018, in
//! Rust 2015, and it parses every field of the header into a struct, where this needs one
//! byte; reaching Flags only takes the present bitmaps and the TSFT field's alignment (see
//! [`Radiotap::new_checked`]). Reads go through [`crate::wire::reader`].

use super::link::LinkError;
use super::reader::Order;

/// A radiotap header and the 802.11 frame after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Radiotap<'a> {
    flags: u8,
    inner: &'a [u8],
}

impl<'a> Radiotap<'a> {
    /// Fixed part: version (1), pad (1), length (2, little-endian), first present bitmap (4).
    pub const MIN_LEN: usize = 8;
    /// Flags bit: the frame ends with its 4-byte FCS.
    pub const FLAG_FCS: u8 = 0x10;
    /// Flags bit: padding between the 802.11 header and its body, to a 4-byte boundary.
    pub const FLAG_DATA_PAD: u8 = 0x20;
    /// Flags bit: the frame failed its FCS check (the radio captured it damaged).
    pub const FLAG_BAD_FCS: u8 = 0x40;

    /// Present bit of TSFT (8 bytes, aligned to 8), the one field that can come before Flags.
    const PRESENT_TSFT: u32 = 1 << 0;
    /// Present bit of Flags (1 byte).
    const PRESENT_FLAGS: u32 = 1 << 1;
    /// Present bit saying another bitmap follows.
    const PRESENT_EXT: u32 = 1 << 31;

    /// The header of `frame`, if whole and consistent.
    ///
    /// Walks the present bitmaps (each with bit 31 set is followed by another, in any
    /// namespace), then, if Flags is present, finds it: fields follow the bitmaps in bit
    /// order, each aligned to its size from the start of the header, and the only field before
    /// Flags (bit 1) is TSFT (bit 0) of the first bitmap, which is always the radiotap
    /// namespace's.
    ///
    /// # Errors
    /// [`LinkError::Truncated`] if the frame ends inside the header; [`LinkError::Malformed`]
    /// for a version other than 0, or a length shorter than the fields it announces.
    pub fn new_checked(frame: &'a [u8]) -> Result<Self, LinkError> {
        let le = Order::Little;
        let [version, _pad, ..] = *frame
            .first_chunk::<{ Radiotap::MIN_LEN }>()
            .ok_or(LinkError::Truncated)?;
        if version != 0 {
            return Err(LinkError::Malformed);
        }
        let len = usize::from(le.u16_at(frame, 2).ok_or(LinkError::Truncated)?);
        if len < Self::MIN_LEN {
            return Err(LinkError::Malformed);
        }
        let (header, inner) = frame.split_at_checked(len).ok_or(LinkError::Truncated)?;
        let first = le.u32_at(header, 4).ok_or(LinkError::Malformed)?;
        let mut at = Self::MIN_LEN;
        let mut word = first;
        while word & Self::PRESENT_EXT != 0 {
            // The header's length bounds the loop: each bitmap is 4 bytes of it.
            word = le.u32_at(header, at).ok_or(LinkError::Malformed)?;
            at += 4;
        }
        let mut flags = 0;
        if first & Self::PRESENT_FLAGS != 0 {
            if first & Self::PRESENT_TSFT != 0 {
                at = at.next_multiple_of(8) + 8;
            }
            flags = *header.get(at).ok_or(LinkError::Malformed)?;
        }
        Ok(Self { flags, inner })
    }

    /// The Flags field (0 when absent).
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the 802.11 frame ends with its FCS.
    pub fn has_fcs(&self) -> bool {
        self.flags & Self::FLAG_FCS != 0
    }

    /// Whether the 802.11 header is padded to a 4-byte boundary before the body.
    pub fn data_pad(&self) -> bool {
        self.flags & Self::FLAG_DATA_PAD != 0
    }

    /// Whether the radio saw the frame fail its FCS check.
    pub fn bad_fcs(&self) -> bool {
        self.flags & Self::FLAG_BAD_FCS != 0
    }

    /// The 802.11 frame after the header (with its FCS, if [`Self::has_fcs`]).
    pub fn inner(&self) -> &'a [u8] {
        self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The radiotap header of zeek's `arp-who-has-radiotap.pcap` (48 bytes: TSFT, Flags,
    /// Rate, Channel, ..., and an extended bitmap), then two bytes of 802.11.
    #[rustfmt::skip]
    static ZEEK: [u8; 50] = [
        0x00, 0x00, 0x30, 0x00, 0x6b, 0x08, 0x1c, 0x00, // v0, len 48, present 0x001c086b
        0xe1, 0x61, 0x56, 0x56, 0x00, 0x00, 0x00, 0x00, // TSFT
        0x10, 0x00, 0xa4, 0x15, 0x40, 0x01, 0xb6, 0xa3, // Flags FCS, rate, channel, signal...
        0x01, 0x4e, 0x34, 0x97, 0x40, 0x01, 0x01, 0x00,
        0xa4, 0x15, 0x6c, 0x22, 0x1f, 0x01, 0x07, 0x00,
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x88, 0x01,                                     // 802.11 frame control
    ];

    #[test]
    fn flags_after_tsft() {
        let r = Radiotap::new_checked(&ZEEK).unwrap();
        assert_eq!(r.flags(), Radiotap::FLAG_FCS);
        assert!(r.has_fcs() && !r.data_pad() && !r.bad_fcs());
        assert_eq!(r.inner(), &[0x88, 0x01]);
    }

    /// A header with present bitmaps `first` then `extra`, TSFT aligned to 8 if present,
    /// then Flags if present.
    fn with_bitmaps(first: u32, extra: &[u32], flags: u8) -> Vec<u8> {
        let mut h = vec![0, 0, 0, 0];
        h.extend(first.to_le_bytes());
        for w in extra {
            h.extend(w.to_le_bytes());
        }
        if first & 1 != 0 {
            while h.len() % 8 != 0 {
                h.push(0xee);
            }
            h.extend([0x11; 8]);
        }
        if first & 2 != 0 {
            h.push(flags);
        }
        let len = u16::try_from(h.len()).unwrap();
        h[2..4].copy_from_slice(&len.to_le_bytes());
        h
    }

    #[test]
    fn extended_bitmaps_and_alignment() {
        // Three more bitmaps (a vendor namespace one, then two continuations): the header is
        // 20 bytes before its fields, TSFT moves to 24, Flags to 32.
        let h = with_bitmaps(0x8000_0003, &[0xc000_0000, 0x8000_0000, 0x0000_0001], 0x30);
        assert_eq!(h.len(), 33);
        let r = Radiotap::new_checked(&h).unwrap();
        assert!(r.has_fcs() && r.data_pad());
        // One bitmap, no TSFT: Flags right after it.
        let h = with_bitmaps(0x0000_0002, &[], 0x40);
        assert_eq!(h.len(), 9);
        assert!(Radiotap::new_checked(&h).unwrap().bad_fcs());
        // No Flags field: nothing said, no FCS.
        let h = with_bitmaps(0x0000_0001, &[], 0);
        assert_eq!(Radiotap::new_checked(&h).unwrap().flags(), 0);
    }

    #[test]
    fn inconsistent_headers_are_malformed() {
        let mut v1 = ZEEK;
        v1[0] = 1;
        assert_eq!(Radiotap::new_checked(&v1), Err(LinkError::Malformed));
        let mut short = ZEEK;
        short[2] = 7;
        assert_eq!(Radiotap::new_checked(&short), Err(LinkError::Malformed));
        // Flags announced past the header's length.
        let mut h = with_bitmaps(0x0000_0003, &[], 0x10);
        h.pop();
        h[2] -= 1;
        assert_eq!(Radiotap::new_checked(&h), Err(LinkError::Malformed));
        // Bitmaps that never end within the length.
        let h = with_bitmaps(0x8000_0000, &[0x8000_0000], 0);
        assert_eq!(Radiotap::new_checked(&h), Err(LinkError::Malformed));
    }

    #[test]
    fn every_cut_inside_the_header_is_truncated() {
        for cut in 0..48 {
            assert_eq!(
                Radiotap::new_checked(&ZEEK[..cut]),
                Err(LinkError::Truncated),
                "cut at {cut}"
            );
        }
        assert!(
            Radiotap::new_checked(&ZEEK[..48])
                .unwrap()
                .inner()
                .is_empty()
        );
    }
}
