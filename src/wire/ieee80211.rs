//! Checked views over IEEE 802.11 MAC frames (LINKTYPE_IEEE802_11, 105, and what follows a
//! radiotap header): the frame control field, what kind of frame it is, and the header of a
//! data frame (addresses by the To DS / From DS bits, QoS control, HT control, the fourth
//! address of a frame between access points) down to its body.
//!
//! Hand-written rather than a crate: `ieee80211` (0.5) says in its own README that it is
//! "highly experimental and unstable" and "shouldn't be used in production yet", and pulls
//! `scroll`, `mac-parser`, `macro-bits` and `const_soft_float` to parse every management
//! element; `libwifi` (0.5) parses with `nom` into owned structs (addresses copied out, the
//! body checked against its CRC before anything is read) and its author writes he no longer
//! uses it. What decoding needs is the frame control and one header length, read at constant
//! offsets after one length check, as the other views of [`crate::wire`] do.

use super::link::{LinkError, Mac};

/// The frame control field (2 bytes, first of every frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameControl(pub [u8; 2]);

impl FrameControl {
    /// Frame type: management.
    pub const TYPE_MANAGEMENT: u8 = 0;
    /// Frame type: control.
    pub const TYPE_CONTROL: u8 = 1;
    /// Frame type: data.
    pub const TYPE_DATA: u8 = 2;
    /// Frame type: extension (DMG beacons, S1G).
    pub const TYPE_EXTENSION: u8 = 3;

    /// Protocol version (0; anything else is a damaged frame).
    pub fn version(self) -> u8 {
        self.0[0] & 0x03
    }

    /// Frame type (`TYPE_*`).
    pub fn frame_type(self) -> u8 {
        (self.0[0] >> 2) & 0x03
    }

    /// Subtype within the type.
    pub fn subtype(self) -> u8 {
        self.0[0] >> 4
    }

    /// To DS: the frame goes to the distribution system (a station sending to its access
    /// point).
    pub fn to_ds(self) -> bool {
        self.0[1] & 0x01 != 0
    }

    /// From DS: the frame comes from the distribution system (an access point sending to a
    /// station).
    pub fn from_ds(self) -> bool {
        self.0[1] & 0x02 != 0
    }

    /// Protected: the body is encrypted (WEP, TKIP, CCMP, GCMP) and cannot be read here.
    pub fn protected(self) -> bool {
        self.0[1] & 0x40 != 0
    }

    /// Order (+HTC): in a QoS data or management frame, an HT control field follows.
    pub fn order(self) -> bool {
        self.0[1] & 0x80 != 0
    }

    /// Whether a data frame carries QoS control (subtypes 8 to 15).
    pub fn is_qos(self) -> bool {
        self.subtype() & 0x08 != 0
    }

    /// Whether a data frame has no body by its subtype (Null, QoS Null, CF-Poll/CF-Ack only).
    pub fn is_null(self) -> bool {
        self.subtype() & 0x04 != 0
    }

    /// What kind of frame this is.
    pub fn kind(self) -> FrameKind {
        use FrameKind as K;
        if self.version() != 0 {
            return K::Invalid;
        }
        match (self.frame_type(), self.subtype()) {
            (Self::TYPE_MANAGEMENT, s) => match s {
                0 => K::AssociationRequest,
                1 => K::AssociationResponse,
                2 => K::ReassociationRequest,
                3 => K::ReassociationResponse,
                4 => K::ProbeRequest,
                5 => K::ProbeResponse,
                6 => K::TimingAdvertisement,
                8 => K::Beacon,
                9 => K::Atim,
                10 => K::Disassociation,
                11 => K::Authentication,
                12 => K::Deauthentication,
                13 => K::Action,
                14 => K::ActionNoAck,
                _ => K::ManagementOther,
            },
            (Self::TYPE_CONTROL, s) => match s {
                8 => K::BlockAckRequest,
                9 => K::BlockAck,
                10 => K::PsPoll,
                11 => K::Rts,
                12 => K::Cts,
                13 => K::Ack,
                14 | 15 => K::CfEnd,
                _ => K::ControlOther,
            },
            (Self::TYPE_DATA, _) => match (self.is_null(), self.is_qos()) {
                (true, false) => K::Null,
                (true, true) => K::QosNull,
                (false, _) if self.protected() => K::ProtectedData,
                (false, false) => K::Data,
                (false, true) => K::QosData,
            },
            _ => K::Extension,
        }
    }
}

/// The kinds of 802.11 frame counted in the report: a closed set (it labels a metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrameKind {
    /// Data frame (subtypes 0 to 3) with a readable body.
    Data,
    /// QoS data frame with a readable body.
    QosData,
    /// Data frame whose body is encrypted (Protected bit set): it cannot be read.
    ProtectedData,
    /// Null data frame (no body: power-save signalling, keep-alive).
    Null,
    /// QoS Null data frame (no body).
    QosNull,
    /// Beacon.
    Beacon,
    /// Probe request.
    ProbeRequest,
    /// Probe response.
    ProbeResponse,
    /// Authentication.
    Authentication,
    /// Deauthentication.
    Deauthentication,
    /// Association request.
    AssociationRequest,
    /// Association response.
    AssociationResponse,
    /// Reassociation request.
    ReassociationRequest,
    /// Reassociation response.
    ReassociationResponse,
    /// Disassociation.
    Disassociation,
    /// Action.
    Action,
    /// Action, no acknowledgement.
    ActionNoAck,
    /// ATIM.
    Atim,
    /// Timing advertisement.
    TimingAdvertisement,
    /// A reserved management subtype.
    ManagementOther,
    /// Request to send.
    Rts,
    /// Clear to send.
    Cts,
    /// Acknowledgement.
    Ack,
    /// Block acknowledgement request.
    BlockAckRequest,
    /// Block acknowledgement.
    BlockAck,
    /// PS-Poll.
    PsPoll,
    /// CF-End, CF-End + CF-Ack.
    CfEnd,
    /// Another control subtype (trigger, NDP announcement, control wrapper, ...).
    ControlOther,
    /// Extension frame (type 3: DMG beacon, S1G).
    Extension,
    /// A protocol version other than 0: a frame captured damaged.
    Invalid,
    /// A frame the radio flagged as failing its FCS check: damaged, not read.
    BadFcs,
}

impl FrameKind {
    /// Every kind, in report order.
    pub const ALL: [Self; 31] = [
        Self::Data,
        Self::QosData,
        Self::ProtectedData,
        Self::Null,
        Self::QosNull,
        Self::Beacon,
        Self::ProbeRequest,
        Self::ProbeResponse,
        Self::Authentication,
        Self::Deauthentication,
        Self::AssociationRequest,
        Self::AssociationResponse,
        Self::ReassociationRequest,
        Self::ReassociationResponse,
        Self::Disassociation,
        Self::Action,
        Self::ActionNoAck,
        Self::Atim,
        Self::TimingAdvertisement,
        Self::ManagementOther,
        Self::Rts,
        Self::Cts,
        Self::Ack,
        Self::BlockAckRequest,
        Self::BlockAck,
        Self::PsPoll,
        Self::CfEnd,
        Self::ControlOther,
        Self::Extension,
        Self::Invalid,
        Self::BadFcs,
    ];

    /// Stable name used in reports, JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::QosData => "qos-data",
            Self::ProtectedData => "protected-data",
            Self::Null => "null",
            Self::QosNull => "qos-null",
            Self::Beacon => "beacon",
            Self::ProbeRequest => "probe-request",
            Self::ProbeResponse => "probe-response",
            Self::Authentication => "authentication",
            Self::Deauthentication => "deauthentication",
            Self::AssociationRequest => "association-request",
            Self::AssociationResponse => "association-response",
            Self::ReassociationRequest => "reassociation-request",
            Self::ReassociationResponse => "reassociation-response",
            Self::Disassociation => "disassociation",
            Self::Action => "action",
            Self::ActionNoAck => "action-no-ack",
            Self::Atim => "atim",
            Self::TimingAdvertisement => "timing-advertisement",
            Self::ManagementOther => "management-other",
            Self::Rts => "rts",
            Self::Cts => "cts",
            Self::Ack => "ack",
            Self::BlockAckRequest => "block-ack-request",
            Self::BlockAck => "block-ack",
            Self::PsPoll => "ps-poll",
            Self::CfEnd => "cf-end",
            Self::ControlOther => "control-other",
            Self::Extension => "extension",
            Self::Invalid => "invalid",
            Self::BadFcs => "bad-fcs",
        }
    }

    /// Index into a counter array.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The header of an 802.11 data frame and its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataFrame<'a> {
    header: &'a [u8; DataFrame::ADDR3_LEN],
    wds: Option<&'a [u8; DataFrame::WDS_LEN]>,
    qos: Option<[u8; 2]>,
    body: &'a [u8],
}

impl<'a> DataFrame<'a> {
    /// Frame control, duration, addresses 1 to 3, sequence control.
    pub const ADDR3_LEN: usize = 24;
    /// The same, then address 4 (To DS and From DS both set).
    pub const WDS_LEN: usize = 30;
    /// QoS control field length.
    const QOS_LEN: usize = 2;
    /// HT control field length.
    const HTC_LEN: usize = 4;

    /// The data frame `frame` (its FCS, if any, already cut off). With `pad`, the header is
    /// followed by padding to a 4-byte boundary (radiotap's data-pad flag).
    ///
    /// # Errors
    /// [`LinkError::Truncated`] if the frame ends inside its header; [`LinkError::Malformed`]
    /// if it is not a version-0 data frame.
    pub fn new_checked(frame: &'a [u8], pad: bool) -> Result<Self, LinkError> {
        let (header, _) = frame
            .split_first_chunk::<{ DataFrame::ADDR3_LEN }>()
            .ok_or(LinkError::Truncated)?;
        let fc = FrameControl([header[0], header[1]]);
        if fc.version() != 0 || fc.frame_type() != FrameControl::TYPE_DATA {
            return Err(LinkError::Malformed);
        }
        let wds = if fc.to_ds() && fc.from_ds() {
            Some(
                frame
                    .first_chunk::<{ DataFrame::WDS_LEN }>()
                    .ok_or(LinkError::Truncated)?,
            )
        } else {
            None
        };
        let mut len = if wds.is_some() {
            Self::WDS_LEN
        } else {
            Self::ADDR3_LEN
        };
        let mut qos = None;
        if fc.is_qos() {
            let q = frame
                .get(len..len + Self::QOS_LEN)
                .ok_or(LinkError::Truncated)?;
            qos = Some([q[0], q[1]]);
            len += Self::QOS_LEN;
            if fc.order() {
                len += Self::HTC_LEN;
            }
        }
        if pad {
            len = len.next_multiple_of(4);
        }
        let body = frame.get(len..).ok_or(LinkError::Truncated)?;
        Ok(Self {
            header,
            wds,
            qos,
            body,
        })
    }

    /// The frame control field.
    pub fn frame_control(&self) -> FrameControl {
        FrameControl([self.header[0], self.header[1]])
    }

    /// The header up to address 3 (frame control first).
    pub fn header(&self) -> &'a [u8; DataFrame::ADDR3_LEN] {
        self.header
    }

    /// The header up to address 4, for a four-address frame (To DS and From DS).
    pub fn wds_header(&self) -> Option<&'a [u8; DataFrame::WDS_LEN]> {
        self.wds
    }

    /// Whether the body is an A-MSDU (QoS control bit 7): subframes of destination, source,
    /// length and an LLC payload each.
    pub fn is_amsdu(&self) -> bool {
        self.qos.is_some_and(|q| q[0] & 0x80 != 0)
    }

    /// What follows the header: LLC/SNAP, an A-MSDU, or an encrypted body.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

/// Which address of an 802.11 data frame header (frame control first, at least up to
/// address 3, to address 4 when both DS bits are set) is the destination and which the
/// source: the hosts the frame goes between, as an Ethernet header would name them.
///
/// | To DS | From DS | destination | source |
/// |---|---|---|---|
/// | 0 | 0 | address 1 | address 2 |
/// | 1 | 0 | address 3 | address 2 |
/// | 0 | 1 | address 1 | address 3 |
/// | 1 | 1 | address 3 | address 4 |
///
/// Address 1 is always the receiver and address 2 the transmitter (the radios of this hop).
/// `None` if `header` is too short for them.
pub fn destination_source(header: &[u8]) -> Option<(Mac, Mac)> {
    let fc = FrameControl([*header.first()?, *header.get(1)?]);
    let (d, s) = match (fc.to_ds(), fc.from_ds()) {
        (false, false) => (ADDR1, ADDR2),
        (true, false) => (ADDR3, ADDR2),
        (false, true) => (ADDR1, ADDR3),
        (true, true) => (ADDR3, ADDR4),
    };
    Some((mac_at(header, d)?, mac_at(header, s)?))
}

/// Offset of address 1 (the receiver).
pub const ADDR1: usize = 4;
/// Offset of address 2 (the transmitter).
pub const ADDR2: usize = 10;
/// Offset of address 3.
pub const ADDR3: usize = 16;
/// Offset of address 4 (after sequence control).
pub const ADDR4: usize = 24;

/// The address at `at` of a header.
pub fn mac_at(header: &[u8], at: usize) -> Option<Mac> {
    Some(Mac(*header.get(at..)?.first_chunk::<6>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The data frame of zeek's `arp-who-has-wlanmon.pcap` (packet 1): QoS data, To DS,
    /// then LLC/SNAP and ARP.
    #[rustfmt::skip]
    static QOS_TO_DS: [u8; 34] = [
        0x88, 0x01, 0x2c, 0x00,             // QoS data, To DS, duration
        0x8a, 0x15, 0x14, 0x9b, 0x5a, 0xe0, // address 1: BSSID (receiver)
        0x78, 0x31, 0xc1, 0xc6, 0x3f, 0xc2, // address 2: source (transmitter)
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // address 3: destination
        0x10, 0x00,                         // sequence control
        0x06, 0x00,                         // QoS control
        0xaa, 0xaa, 0x03, 0x00, 0x00, 0x00, // LLC/SNAP
        0x08, 0x06,                         // EtherType ARP
    ];

    #[test]
    fn qos_data_to_ds() {
        let d = DataFrame::new_checked(&QOS_TO_DS, false).unwrap();
        let fc = d.frame_control();
        assert!(fc.to_ds() && !fc.from_ds() && fc.is_qos() && !fc.protected());
        assert_eq!(fc.kind(), FrameKind::QosData);
        assert_eq!(d.body(), &QOS_TO_DS[26..]);
        assert!(d.wds_header().is_none() && !d.is_amsdu());
        let (dst, src) = destination_source(d.header()).unwrap();
        assert_eq!(dst.to_string(), "ff:ff:ff:ff:ff:ff");
        assert_eq!(src.to_string(), "78:31:c1:c6:3f:c2");
        // Padded to 4 bytes after the 26-byte header: the body starts 2 bytes later.
        let padded = DataFrame::new_checked(&QOS_TO_DS, true).unwrap();
        assert_eq!(padded.body(), &QOS_TO_DS[28..]);
    }

    #[test]
    fn header_lengths_by_flags() {
        // (frame control, header length)
        let cases: [([u8; 2], usize); 6] = [
            ([0x08, 0x00], 24), // data
            ([0x08, 0x03], 30), // data, four addresses
            ([0x88, 0x02], 26), // QoS data
            ([0x88, 0x82], 30), // QoS data + HT control
            ([0x88, 0x83], 36), // QoS data, four addresses, HT control
            ([0x08, 0x80], 24), // non-QoS data with Order: no HT control
        ];
        let frame: Vec<u8> = (0..40).collect();
        for (fc, len) in cases {
            let mut f = frame.clone();
            f[..2].copy_from_slice(&fc);
            let d = DataFrame::new_checked(&f, false).unwrap();
            assert_eq!(d.body().len(), 40 - len, "{fc:02x?}");
            assert_eq!(d.wds_header().is_some(), fc[1] & 3 == 3);
            for cut in 0..len {
                assert_eq!(
                    DataFrame::new_checked(&f[..cut], false),
                    Err(LinkError::Truncated),
                    "{fc:02x?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn kinds_and_addresses() {
        let kind = |b0: u8, b1: u8| FrameControl([b0, b1]).kind();
        assert_eq!(kind(0x80, 0), FrameKind::Beacon);
        assert_eq!(kind(0x40, 0), FrameKind::ProbeRequest);
        assert_eq!(kind(0xb0, 0), FrameKind::Authentication);
        assert_eq!(kind(0xc0, 0), FrameKind::Deauthentication);
        assert_eq!(kind(0xd0, 0), FrameKind::Action);
        assert_eq!(kind(0xb4, 0), FrameKind::Rts);
        assert_eq!(kind(0xc4, 0), FrameKind::Cts);
        assert_eq!(kind(0xd4, 0), FrameKind::Ack);
        assert_eq!(kind(0x94, 0), FrameKind::BlockAck);
        assert_eq!(kind(0x48, 0x01), FrameKind::Null);
        assert_eq!(kind(0xc8, 0x41), FrameKind::QosNull);
        assert_eq!(kind(0x08, 0x41), FrameKind::ProtectedData);
        assert_eq!(kind(0x88, 0x42), FrameKind::ProtectedData);
        assert_eq!(kind(0x0c, 0), FrameKind::Extension);
        assert_eq!(kind(0x0a, 0), FrameKind::Invalid);
        for (i, k) in FrameKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
        let mut h: Vec<u8> = (0..30).collect();
        for (ds, d, s) in [(0, 4, 10), (1, 16, 10), (2, 4, 16), (3, 16, 24)] {
            h[1] = ds;
            let (dst, src) = destination_source(&h).unwrap();
            assert_eq!((dst.0[0], src.0[0]), (d, s), "DS bits {ds}");
        }
        h[1] = 3;
        assert_eq!(destination_source(&h[..29]), None);
    }

    #[test]
    fn not_a_data_frame_is_malformed() {
        let mut f = QOS_TO_DS;
        f[0] = 0x80; // beacon
        assert_eq!(DataFrame::new_checked(&f, false), Err(LinkError::Malformed));
        f[0] = 0x89; // version 1
        assert_eq!(DataFrame::new_checked(&f, false), Err(LinkError::Malformed));
    }
}
