//! Which end of a flow is the client, from what a packet says about itself: the protocols' own
//! markers (NTP mode, DNS QR bit, TLS ClientHello vs ServerHello, the QUIC long-header packets
//! only one side sends), read from the first bytes of a payload.
//!
//! Hand-written: each marker is a byte or two at a fixed place (read through `wire::reader`),
//! and a parser crate would read the whole message for one bit, on the hot path.
//!
//! Policies where the protocol leaves room:
//! - NTP (RFC 5905): mode 3 is sent by the client and mode 4 by the server; in a symmetric
//!   association the active peer (mode 1) starts it and is taken as the client, the passive
//!   one (mode 2) as the server; a broadcast (5) is sent by a server. Control (6) and private
//!   (7, `ntpdc`) messages carry a response bit: a response's sender is the server.
//! - DNS and mDNS (RFC 1035, RFC 6762): a response's sender is the server, a query's the
//!   client, so an mDNS exchange on 5353 at both ends has the responder as its server (the
//!   device that holds the records). Standard queries (opcode 0) only.
//! - TLS: a ClientHello's sender is the client, a ServerHello's (or HelloRetryRequest's) the
//!   server, on any TCP port.
//! - QUIC (RFC 9000 §17.2, RFC 9369): both sides send Initial and Handshake packets, so only
//!   the decisive ones count: 0-RTT and an Initial with a token (servers must send Initials
//!   with an empty token) come from the client; Retry and Version Negotiation from the server.

use super::RoleBy;
use crate::decode::{PacketMeta, ip_proto};
use crate::wire::quic::{self, PacketKind, QuicVersion};
use crate::wire::reader::Reader;
use crate::wire::{ports, reader::be16};

/// NTP (RFC 5905), UDP.
const NTP: u16 = 123;
/// NTP header length: shorter packets of modes 1-5 are not NTP.
const NTP_HEADER: usize = 48;

/// What one packet says about its sender's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// Which marker decided.
    pub by: RoleBy,
    /// Whether the packet's sender is the client (otherwise the server).
    pub sender_is_client: bool,
}

impl Marker {
    fn new(by: RoleBy, sender_is_client: bool) -> Self {
        Self {
            by,
            sender_is_client,
        }
    }
}

/// The role marker a packet carries, if any.
#[inline]
pub fn marker(meta: &PacketMeta<'_>) -> Option<Marker> {
    let p = meta.payload;
    if p.is_empty() {
        return None;
    }
    let on = |port: u16| meta.src_port == port || meta.dst_port == port;
    match meta.proto {
        ip_proto::UDP => {
            if on(NTP)
                && let Some(client) = ntp_sender_is_client(p)
            {
                return Some(Marker::new(RoleBy::NtpMode, client));
            }
            if (on(ports::DNS) || on(ports::MDNS))
                && let Some(client) = dns_sender_is_client(p, 0)
            {
                return Some(Marker::new(RoleBy::DnsQr, client));
            }
            // Long header: the first bit set (RFC 9000 §17.2).
            if p[0] & 0x80 != 0 {
                return quic_sender_is_client(p).map(|c| Marker::new(RoleBy::QuicHeader, c));
            }
            None
        }
        ip_proto::TCP => {
            if let Some(client) = tls_sender_is_client(p) {
                return Some(Marker::new(RoleBy::TlsHello, client));
            }
            // DNS over TCP: each message after its two-byte length (RFC 1035 §4.2.2).
            if on(ports::DNS) {
                return dns_sender_is_client(p, 2).map(|c| Marker::new(RoleBy::DnsQr, c));
            }
            None
        }
        _ => None,
    }
}

/// NTP mode of a packet: `Some(true)` for a client's (modes 1, 3, requests of 6 and 7).
fn ntp_sender_is_client(p: &[u8]) -> Option<bool> {
    let mut r = Reader::new(p);
    let first = r.u8()?;
    let version = (first >> 3) & 0b111;
    if !(1..=4).contains(&version) {
        return None;
    }
    match first & 0b111 {
        1 | 3 if p.len() >= NTP_HEADER => Some(true),
        2 | 4 | 5 if p.len() >= NTP_HEADER => Some(false),
        // Control message (RFC 1305 appendix B): 12-byte header, response bit in byte 1.
        6 if p.len() >= 12 => Some(r.u8()? & 0x80 == 0),
        // Private (ntpd's mode 7): 8-byte header, response bit in byte 0.
        7 if p.len() >= 8 => Some(first & 0x80 == 0),
        _ => None,
    }
}

/// DNS QR bit of the message at `at` (past a TCP length prefix): `Some(true)` for a query.
fn dns_sender_is_client(p: &[u8], at: usize) -> Option<bool> {
    let flags = be16(p, at + 2)?;
    if p.len() < at + 12 {
        return None;
    }
    let opcode = (flags >> 11) & 0xf;
    (opcode == 0).then_some(flags & 0x8000 == 0)
}

/// TLS handshake record starting with a ClientHello (`Some(true)`) or ServerHello.
fn tls_sender_is_client(p: &[u8]) -> Option<bool> {
    let mut r = Reader::new(p);
    // Record: content type 22 (handshake), version 3.x, length; then the handshake type.
    if r.u8()? != 22 || r.u8()? != 3 {
        return None;
    }
    r.skip(3)?;
    match r.u8()? {
        1 => Some(true),
        2 => Some(false),
        _ => None,
    }
}

/// The QUIC long-header packets only one side sends (see the module doc).
fn quic_sender_is_client(p: &[u8]) -> Option<bool> {
    let mut r = Reader::new(p);
    let first = r.u8()?;
    let version = r.u32()?;
    if version == 0 {
        // Version Negotiation (RFC 9000 §17.2.1): two connection IDs, then a non-empty list
        // of 4-byte versions. The fixed bit is arbitrary there but servers set it (RFC 9000
        // §17.2.1 SHOULD); asking for it keeps other protocols' zeros from reading as one.
        r.u8_prefixed()?;
        r.u8_prefixed()?;
        let versions = r.rest();
        let vn = first & 0x40 != 0 && !versions.is_empty() && versions.len().is_multiple_of(4);
        return vn.then_some(false);
    }
    let kind = QuicVersion::from_wire(version)?.packet_kind(first >> 4);
    match kind {
        PacketKind::ZeroRtt => Some(true),
        PacketKind::Retry => Some(false),
        PacketKind::Initial => quic::is_initial(p)
            .filter(|h| !h.token.is_empty())
            .map(|_| true),
        PacketKind::Handshake => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_modes() {
        let mut p = [0u8; 48];
        for (first, want) in [
            (0x23, Some(true)),  // v4 client
            (0x24, Some(false)), // v4 server
            (0x1b, Some(true)),  // v3 client
            (0xe4, Some(false)), // v4 server, leap bits set
            (0x21, Some(true)),  // symmetric active
            (0x22, Some(false)), // symmetric passive
            (0x25, Some(false)), // broadcast
            (0x20, None),        // mode 0 reserved
            (0x03, None),        // version 0
            (0x3b, None),        // version 7
        ] {
            p[0] = first;
            assert_eq!(ntp_sender_is_client(&p), want, "{first:#x}");
        }
        assert_eq!(ntp_sender_is_client(&[0x23; 47]), None, "short");
        // Mode 7 (ntpdc) request and response; mode 6 request and response.
        assert_eq!(
            ntp_sender_is_client(&[0x17, 0, 3, 42, 0, 0, 0, 0]),
            Some(true)
        );
        assert_eq!(
            ntp_sender_is_client(&[0x97, 0, 3, 42, 0, 0, 0, 0]),
            Some(false)
        );
        assert_eq!(
            ntp_sender_is_client(&[0x16, 0x02, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
            Some(true)
        );
        assert_eq!(
            ntp_sender_is_client(&[0x16, 0x82, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
            Some(false)
        );
    }

    #[test]
    fn dns_qr_and_opcode() {
        let query = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        let response = [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        let update = [0x12, 0x34, 0x28, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        assert_eq!(dns_sender_is_client(&query, 0), Some(true));
        assert_eq!(dns_sender_is_client(&response, 0), Some(false));
        assert_eq!(dns_sender_is_client(&update, 0), None);
        assert_eq!(dns_sender_is_client(&query[..11], 0), None);
        let mut tcp = vec![0, 12];
        tcp.extend_from_slice(&response);
        assert_eq!(dns_sender_is_client(&tcp, 2), Some(false));
    }

    #[test]
    fn tls_hellos() {
        assert_eq!(tls_sender_is_client(&[22, 3, 1, 0, 200, 1, 0]), Some(true));
        assert_eq!(tls_sender_is_client(&[22, 3, 3, 0, 90, 2, 0]), Some(false));
        assert_eq!(tls_sender_is_client(&[22, 3, 3, 0, 90, 11, 0]), None);
        assert_eq!(tls_sender_is_client(&[23, 3, 3, 0, 90, 1, 0]), None);
        assert_eq!(tls_sender_is_client(&[22, 3, 3, 0]), None);
    }

    #[test]
    fn quic_decisive_packets_only() {
        // Version negotiation: fixed bit, DCID 8, SCID 8, versions 1 and a grease one.
        let mut vn = vec![0xc0, 0, 0, 0, 0, 8];
        vn.extend_from_slice(&[1; 8]);
        vn.push(8);
        vn.extend_from_slice(&[2; 8]);
        vn.extend_from_slice(&[0, 0, 0, 1, 0x0a, 0x1a, 0x2a, 0x3a]);
        assert_eq!(quic_sender_is_client(&vn), Some(false));
        vn.pop();
        assert_eq!(
            quic_sender_is_client(&vn),
            None,
            "versions not a multiple of 4"
        );
        // v1 Retry (type 3) and 0-RTT (type 1).
        assert_eq!(
            quic_sender_is_client(&[0xf0, 0, 0, 0, 1, 0, 0]),
            Some(false)
        );
        assert_eq!(quic_sender_is_client(&[0xd0, 0, 0, 0, 1, 0, 0]), Some(true));
        // v2 shuffles the types: 0b00 is Retry there.
        assert_eq!(
            quic_sender_is_client(&[0xc0, 0x6b, 0x33, 0x43, 0xcf, 0, 0]),
            Some(false)
        );
        // Handshake: both sides.
        assert_eq!(quic_sender_is_client(&[0xe0, 0, 0, 0, 1, 0, 0]), None);
        // An unknown version.
        assert_eq!(quic_sender_is_client(&[0xd0, 0, 0, 0, 9, 0, 0]), None);
    }
}
