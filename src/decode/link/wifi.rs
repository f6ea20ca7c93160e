//! 802.11 link layers (LINKTYPE_IEEE802_11_RADIOTAP 127, LINKTYPE_IEEE802_11 105): from a
//! captured frame to the network-layer payload of a data frame (LLC/SNAP to an EtherType, as
//! 802.3 frames carry it), its addresses, and the kind of every frame for the report.
//!
//! Management, control, bodyless (Null, QoS Null) and encrypted (Protected) frames carry
//! nothing to read: they are not errors but frames without IP, counted by [`frame_kind`].
//! A frame the radio flagged with a bad FCS is malformed: its bytes cannot be trusted. An
//! A-MSDU (several LLC payloads in one QoS data frame) is read up to its first subframe.
//!
//! Without a radiotap header (105), nothing says whether the frame ends with its FCS; as
//! Wireshark does by default, it is taken not to: 4 bytes of FCS after an IP packet are past
//! its length and change nothing.
//!
//! The entry points are cold and never inlined: inlined, they grew [`crate::decode::decode`]
//! past what the compiler inlines into the dispatcher, and every Ethernet packet paid for it
//! (29 instructions a packet more on the benchmark capture, `scripts/instructions.sh`).

use super::{NetworkSlice, after_type_field, snap_ethertype, untagged};
use crate::capture::LinkType;
use crate::decode::LinkAddrs;
use crate::wire::ieee80211::{DataFrame, FrameControl, FrameKind};
use crate::wire::link::{EtherType, LinkError};
use crate::wire::radiotap::Radiotap;
use crate::wire::reader::be16;

/// Length of the frame check sequence a radiotap header may say ends the frame.
const FCS_LEN: usize = 4;
/// A-MSDU subframe header: destination (6), source (6), length (2).
const AMSDU_SUBFRAME_HEADER: usize = 14;

/// An 802.11 frame out of its capture record.
struct Inner<'a> {
    /// The frame, its FCS cut off.
    frame: &'a [u8],
    /// Radiotap's data-pad flag: the header is padded to 4 bytes.
    pad: bool,
    /// Radiotap's bad-FCS flag.
    bad_fcs: bool,
}

fn inner(link: LinkType, data: &[u8]) -> Result<Inner<'_>, LinkError> {
    if link != LinkType::IEEE802_11_RADIOTAP {
        return Ok(Inner {
            frame: data,
            pad: false,
            bad_fcs: false,
        });
    }
    let r = Radiotap::new_checked(data)?;
    let frame = if r.has_fcs() {
        let len = r.inner().len().checked_sub(FCS_LEN);
        r.inner().get(..len.ok_or(LinkError::Truncated)?)
    } else {
        Some(r.inner())
    }
    .ok_or(LinkError::Truncated)?;
    Ok(Inner {
        frame,
        pad: r.data_pad(),
        bad_fcs: r.bad_fcs(),
    })
}

/// The network-layer part of an 802.11 frame captured with link type `link` (105 or 127).
#[cold]
#[inline(never)]
pub(super) fn network_slice(
    link: LinkType,
    data: &[u8],
    depth: usize,
) -> Result<NetworkSlice<'_>, LinkError> {
    let f = inner(link, data)?;
    if f.bad_fcs {
        return Err(LinkError::Malformed);
    }
    let fc = FrameControl(*f.frame.first_chunk::<2>().ok_or(LinkError::Truncated)?);
    if fc.version() != 0 {
        return Err(LinkError::Malformed);
    }
    if fc.frame_type() != FrameControl::TYPE_DATA || fc.is_null() || fc.protected() {
        return Ok(untagged(EtherType::UNKNOWN, &[]));
    }
    let d = DataFrame::new_checked(f.frame, f.pad)?;
    let mut body = d.body();
    if d.is_amsdu() {
        let len = be16(body, 12).ok_or(LinkError::Truncated)?;
        let sub = body.get(AMSDU_SUBFRAME_HEADER..).unwrap_or_default();
        body = sub.get(..usize::from(len)).unwrap_or(sub);
    }
    match snap_ethertype(body)? {
        Some((ether_type, rest)) => after_type_field(ether_type, rest, None, depth),
        None => Ok(untagged(EtherType::LLC, body)),
    }
}

/// The addresses of an 802.11 data frame captured with link type `link` (105 or 127).
#[cold]
#[inline(never)]
pub(super) fn addresses(link: LinkType, data: &[u8]) -> Option<LinkAddrs<'_>> {
    let f = inner(link, data).ok()?;
    let d = DataFrame::new_checked(f.frame, f.pad).ok()?;
    Some(match d.wds_header() {
        Some(h) => LinkAddrs::Ieee80211Wds(h),
        None => LinkAddrs::Ieee80211(d.header()),
    })
}

/// The kind of an 802.11 frame captured with link type `link` (105 or 127), for the
/// report's counters; `None` if the capture record ends before its frame control field.
#[cold]
#[inline(never)]
pub(super) fn frame_kind(link: LinkType, data: &[u8]) -> Option<FrameKind> {
    let f = inner(link, data).ok()?;
    if f.bad_fcs {
        return Some(FrameKind::BadFcs);
    }
    Some(FrameControl(*f.frame.first_chunk::<2>()?).kind())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::file::CaptureFile;
    use crate::decode::link::network_slice;
    use crate::wire::ieee80211::FrameKind as K;
    use std::path::Path;

    /// Wi-Fi captures from Zeek's and Wireshark's test suites.
    const MORE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/pcaps-more");
    /// Made by `fixtures/make_wifi_fixtures.py`.
    const FIXTURES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/wifi");

    /// A radiotap header (two bitmaps, TSFT aligned to 16, Flags with FCS: 25 bytes), a QoS
    /// data frame To DS (26), LLC/SNAP (8), an IPv4 header's first bytes (4), the FCS (4).
    #[rustfmt::skip]
    static SAMPLE: [u8; 67] = [
        0x00, 0x00, 0x19, 0x00, 0x03, 0x00, 0x00, 0x80, // v0, length 25, TSFT + Flags + ext
        0x00, 0x00, 0x00, 0x00, 0xee, 0xee, 0xee, 0xee, // second bitmap (empty), pad to 16
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // TSFT
        0x10,                                           // Flags: FCS at the end
        0x88, 0x01, 0x2c, 0x00,                         // QoS data, To DS
        0xd8, 0x30, 0x62, 0x56, 0x00, 0x1c,             // address 1: access point
        0xc4, 0x61, 0x8b, 0x35, 0x82, 0xa9,             // address 2: source
        0xc6, 0x2c, 0x03, 0x60, 0x6a, 0x64,             // address 3: destination
        0x10, 0x00, 0x00, 0x00,                         // sequence, QoS control
        0xaa, 0xaa, 0x03, 0x00, 0x00, 0x00, 0x08, 0x00, // LLC/SNAP, IPv4
        0x45, 0x00, 0x00, 0x14,                         // IPv4 header starts
        0xde, 0xad, 0xbe, 0xef,                         // FCS
    ];

    fn sample() -> Vec<u8> {
        SAMPLE.to_vec()
    }

    #[test]
    fn radiotap_qos_data_with_fcs() {
        let f = sample();
        let s = network_slice(LinkType::IEEE802_11_RADIOTAP, &f).unwrap();
        assert_eq!(s.ether_type, EtherType::IPV4);
        assert_eq!(s.data, &[0x45, 0x00, 0x00, 0x14], "FCS cut off");
        let a = addresses(LinkType::IEEE802_11_RADIOTAP, &f).unwrap();
        assert_eq!(a.src().to_string(), "c4:61:8b:35:82:a9");
        assert_eq!(a.dst().to_string(), "c6:2c:03:60:6a:64");
        assert_eq!(a.receiver().to_string(), "d8:30:62:56:00:1c");
        assert_eq!(a.transmitter(), a.src());
        assert_eq!(
            frame_kind(LinkType::IEEE802_11_RADIOTAP, &f),
            Some(K::QosData)
        );
        // Without radiotap (105), the same frame has 4 more bytes after the IP start.
        let s = network_slice(LinkType::IEEE802_11, &f[25..]).unwrap();
        assert_eq!(s.data.len(), 8);
    }

    /// Every cut of the sample: inside the radiotap header, the 802.11 header (once the
    /// 4 FCS bytes are taken from what is left), the LLC/SNAP header: `Truncated`, and a
    /// kind only once the frame control is there.
    #[test]
    fn every_truncation_point() {
        let f = sample();
        // Radiotap 25 bytes; then FC needs 2 + FCS 4; the QoS header 26 + 4; LLC/SNAP 8 + 4.
        for cut in 0..f.len() {
            let r = network_slice(LinkType::IEEE802_11_RADIOTAP, &f[..cut]);
            let kind = frame_kind(LinkType::IEEE802_11_RADIOTAP, &f[..cut]);
            let what = match cut {
                0..25 => "radiotap",
                25..31 => "frame control",
                31..55 => "802.11 header",
                55..63 => "LLC/SNAP",
                _ => "IP",
            };
            if what == "IP" {
                assert_eq!(r.map(|s| s.ether_type), Ok(EtherType::IPV4), "cut {cut}");
            } else {
                assert_eq!(r, Err(LinkError::Truncated), "{what}: cut {cut}");
            }
            assert_eq!(kind.is_some(), cut >= 31, "{what}: cut {cut}");
            assert_eq!(
                addresses(LinkType::IEEE802_11_RADIOTAP, &f[..cut]).is_some(),
                cut >= 55,
                "{what}: cut {cut}"
            );
        }
        // Plain 802.11: every cut inside the header or LLC/SNAP.
        let plain = &f[25..f.len() - 4];
        for cut in 0..34 {
            assert_eq!(
                network_slice(LinkType::IEEE802_11, &plain[..cut]),
                Err(LinkError::Truncated),
                "cut {cut}"
            );
        }
        // A-MSDU: a cut inside the subframe header.
        let mut amsdu = plain[..26].to_vec();
        amsdu[24] |= 0x80;
        amsdu.extend([
            0xc6, 0x2c, 0x03, 0x60, 0x6a, 0x64, 0xc4, 0x61, 0x8b, 0x35, 0x82,
        ]);
        assert_eq!(
            network_slice(LinkType::IEEE802_11, &amsdu),
            Err(LinkError::Truncated)
        );
        amsdu.extend([0xa9, 0x00, 0x0c]);
        amsdu.extend(&plain[26..]);
        let s = network_slice(LinkType::IEEE802_11, &amsdu).unwrap();
        assert_eq!((s.ether_type, s.data), (EtherType::IPV4, &plain[34..]));
    }

    #[test]
    fn frames_without_ip() {
        let f = sample();
        let plain = &f[25..f.len() - 4];
        let with = |b0: u8, b1: u8| {
            let mut g = plain.to_vec();
            g[0] = b0;
            g[1] = b1;
            g
        };
        for (b0, b1, kind) in [
            (0x80, 0x00, K::Beacon),
            (0xd4, 0x00, K::Ack),
            (0x48, 0x01, K::Null),
            (0xc8, 0x01, K::QosNull),
            (0x88, 0x41, K::ProtectedData),
        ] {
            let g = with(b0, b1);
            let s = network_slice(LinkType::IEEE802_11, &g).unwrap();
            assert_eq!(s.ether_type, EtherType::UNKNOWN, "{kind:?}");
            assert_eq!(frame_kind(LinkType::IEEE802_11, &g), Some(kind));
        }
        let g = with(0x8a, 0x01);
        assert_eq!(
            network_slice(LinkType::IEEE802_11, &g),
            Err(LinkError::Malformed)
        );
        assert_eq!(frame_kind(LinkType::IEEE802_11, &g), Some(K::Invalid));
        // Bad FCS flagged by the radio: malformed, counted as such.
        let mut bad = f.clone();
        bad[24] |= Radiotap::FLAG_BAD_FCS;
        assert_eq!(
            network_slice(LinkType::IEEE802_11_RADIOTAP, &bad),
            Err(LinkError::Malformed)
        );
        assert_eq!(
            frame_kind(LinkType::IEEE802_11_RADIOTAP, &bad),
            Some(K::BadFcs)
        );
        // An empty 802.11 frame after a radiotap header that says it has an FCS.
        assert_eq!(
            network_slice(LinkType::IEEE802_11_RADIOTAP, &f[..27]),
            Err(LinkError::Truncated)
        );
    }

    /// A packet's network slice, copied, and its kind.
    type Decoded = (Result<(EtherType, Vec<u8>), LinkError>, Option<K>);

    /// Every packet of a capture: network slice and kind.
    fn decode_file(path: &Path) -> Vec<Decoded> {
        let mut capture = CaptureFile::open(path).unwrap();
        let mut out = Vec::new();
        while let Some(p) = capture.next_packet() {
            let p = p.unwrap();
            out.push((
                network_slice(p.link, p.data).map(|s| (s.ether_type, s.data.to_vec())),
                frame_kind(p.link, p.data),
            ));
        }
        out
    }

    #[test]
    fn zeek_arp_captures_are_arp_both_ways() {
        for (name, link) in [
            (
                "zeek__arp-who-has-radiotap.pcap",
                LinkType::IEEE802_11_RADIOTAP,
            ),
            ("zeek__arp-who-has-wlanmon.pcap", LinkType::IEEE802_11),
        ] {
            let path = Path::new(MORE_DIR).join(name);
            let decoded = decode_file(&path);
            assert_eq!(decoded.len(), 2, "{name}");
            for (slice, kind) in &decoded {
                let (ether_type, data) = slice.clone().unwrap();
                assert_eq!(ether_type, EtherType::ARP, "{name}");
                assert_eq!(&data[..4], &[0, 1, 8, 0], "{name}: ARP over Ethernet, IPv4");
                assert_eq!(*kind, Some(K::QosData));
            }
            // Who-has from 78:31:c1:c6:3f:c2 (To DS), its answer (From DS), as tshark shows.
            let mut cap = CaptureFile::open(&path).unwrap();
            let mut pairs = Vec::new();
            while let Some(Ok(p)) = cap.next_packet() {
                assert_eq!(p.link, link);
                let a = addresses(p.link, p.data).unwrap();
                pairs.push((a.src().to_string(), a.dst().to_string()));
            }
            assert_eq!(
                pairs,
                [
                    ("78:31:c1:c6:3f:c2".into(), "ff:ff:ff:ff:ff:ff".into()),
                    ("f8:ed:a5:c0:a4:f1".into(), "78:31:c1:c6:3f:c2".into())
                ],
                "{name}"
            );
        }
    }

    #[test]
    fn wpa_induction_frames_by_kind_as_tshark_counts_them() {
        // Fixed after checking by hand: `tshark -r wireshark__wpa-Induction.pcap -T fields
        // -e wlan.fc.type_subtype -e wlan.fc.protected | sort | uniq -c` gives 398 beacons
        // (0x08), 26 probe responses (0x05), 13 probe requests (0x04), 2 authentications
        // (0x0b), 1 association request (0x00), response (0x01), disassociation (0x0a),
        // 191 ACKs (0x1d), 165 CTS (0x1c), 280 protected data and 5 unprotected data
        // frames (0x20: the 4 EAPOL frames of the handshake and one LLC frame), and 10 frames
        // it calls "Unknown protocol version" (versions 2 and 3): 1,093 in all.
        // tests/wifi.rs checks the same against tshark run there.
        let decoded = decode_file(&Path::new(MORE_DIR).join("wireshark__wpa-Induction.pcap"));
        assert_eq!(decoded.len(), 1093);
        let mut kinds = std::collections::BTreeMap::new();
        for (_, k) in &decoded {
            *kinds.entry(k.unwrap()).or_insert(0) += 1;
        }
        let want = [
            (K::Data, 5),
            (K::ProtectedData, 280),
            (K::Beacon, 398),
            (K::ProbeRequest, 13),
            (K::ProbeResponse, 26),
            (K::Authentication, 2),
            (K::AssociationRequest, 1),
            (K::AssociationResponse, 1),
            (K::Disassociation, 1),
            (K::Cts, 165),
            (K::Ack, 191),
            (K::Invalid, 10),
        ];
        assert_eq!(kinds, want.into_iter().collect());
        let eapol = decoded
            .iter()
            .filter(|(s, _)| matches!(s, Ok((EtherType::EAPOL, _))))
            .count();
        assert_eq!(eapol, 4);
        let errors = decoded.iter().filter(|(s, _)| s.is_err()).count();
        assert_eq!(errors, 10, "the damaged frames are malformed");
    }

    #[test]
    fn fixtures_carry_the_ethernet_payloads() {
        let dir = Path::new(FIXTURES_DIR);
        let original: Vec<_> = decode_file(&dir.join("wifi-ethernet.pcap"))
            .into_iter()
            .map(|(s, _)| s.unwrap())
            .collect();
        assert_eq!(original.len(), 92);
        let ip = original
            .iter()
            .filter(|(e, _)| *e == EtherType::IPV4 || *e == EtherType::IPV6)
            .count();
        assert_eq!(ip, 78);
        for (name, kind) in [
            ("wifi-radiotap-fcs.pcap", K::QosData),
            ("wifi-radiotap.pcap", K::Data),
            ("wifi-plain.pcap", K::QosData),
            ("wifi-wds.pcap", K::QosData),
        ] {
            let decoded = decode_file(&dir.join(name));
            let (head, extra) = decoded.split_at(92);
            let slices: Vec<_> = head.iter().map(|(s, _)| s.clone().unwrap()).collect();
            assert_eq!(slices, original, "{name}");
            assert!(head.iter().all(|(_, k)| *k == Some(kind)), "{name}");
            let extra: Vec<_> = extra
                .iter()
                .map(|(s, k)| (s.clone().unwrap().0, k.unwrap()))
                .collect();
            let want = if name == "wifi-radiotap-fcs.pcap" {
                vec![
                    (EtherType::UNKNOWN, K::ProtectedData),
                    (EtherType::UNKNOWN, K::Null),
                    (EtherType::UNKNOWN, K::QosNull),
                ]
            } else {
                vec![]
            };
            assert_eq!(extra, want, "{name}");
        }
    }
}
