//! IPv6 over UDP: Teredo (RFC 4380, UDP 3544) and AYIYA ("anything in anything", SixXS, UDP
//! 5072). Neither header names its payload's length, so what follows must look like a whole
//! IPv6 packet (version 6, a payload length that does not fall short of the bytes), as Zeek
//! requires before it reads either as a tunnel.

use super::Carried;
use crate::wire::reader::be16;

/// Teredo's authentication indicator type.
const AUTH_INDICATOR: [u8; 2] = [0x00, 0x01];
/// Teredo's origin indication type.
const ORIGIN_INDICATION: [u8; 2] = [0x00, 0x00];
const ORIGIN_LEN: usize = 8;
/// Nonce and confirmation byte after the authentication indicator's client id and value.
const AUTH_TRAILER_LEN: usize = 9;
const IPV6_HEADER_LEN: usize = 40;

/// The IPv6 packet a Teredo datagram carries, after its optional authentication indicator and
/// origin indication; `None` if what follows them is not an IPv6 packet.
pub fn teredo(payload: &[u8]) -> Option<Carried<'_>> {
    let mut rest = payload;
    if rest.starts_with(&AUTH_INDICATOR) {
        let id_len = usize::from(*rest.get(2)?);
        let auth_len = usize::from(*rest.get(3)?);
        rest = rest.get(4 + id_len + auth_len + AUTH_TRAILER_LEN..)?;
    }
    if rest.starts_with(&ORIGIN_INDICATION) {
        rest = rest.get(ORIGIN_LEN..)?;
    }
    whole_ipv6(rest).then_some(Carried::Ip(rest))
}

/// Whether `bytes` look like one IPv6 packet: version 6, the fixed header there, and a
/// payload length that covers every byte after it (fewer bytes: cut by the snap length).
fn whole_ipv6(bytes: &[u8]) -> bool {
    bytes.len() >= IPV6_HEADER_LEN
        && bytes[0] >> 4 == 6
        && be16(bytes, 4).is_some_and(|len| IPV6_HEADER_LEN + usize::from(len) >= bytes.len())
}

/// AYIYA's fixed header: identity length and type, signature length and hash, authentication
/// method and operation code, next header, epoch time.
const AYIYA_FIXED_LEN: usize = 8;
/// AYIYA operation code "forward": the payload is a packet.
const AYIYA_FORWARD: u8 = 1;
/// Next header values AYIYA forwards.
const NEXT_IPV4: u8 = 4;
const NEXT_IPV6: u8 = 41;

/// The packet an AYIYA forward message carries (IPv6, or IPv4); `None` for other operations
/// or when what follows is not one.
pub fn ayiya(payload: &[u8]) -> Option<Carried<'_>> {
    let fixed = payload.get(..AYIYA_FIXED_LEN)?;
    if fixed[2] & 0x0f != AYIYA_FORWARD {
        return None;
    }
    // The identity is 2^IDLen bytes long (IDLen up to 15: a bounded 32 KiB), the signature
    // SigLen 4-byte words.
    let id_len = 1usize << (fixed[0] >> 4);
    let sig_len = usize::from(fixed[1] >> 4) * 4;
    let rest = payload.get(AYIYA_FIXED_LEN + id_len + sig_len..)?;
    match fixed[3] {
        NEXT_IPV6 if whole_ipv6(rest) => Some(Carried::Ip(rest)),
        NEXT_IPV4 if rest.first().is_some_and(|b| b >> 4 == 4) => Some(Carried::Ip(rest)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv6(payload_len: u16, bytes: usize) -> Vec<u8> {
        let mut p = vec![0u8; bytes];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&payload_len.to_be_bytes());
        p
    }

    #[test]
    fn teredo_indicators_are_skipped() {
        let inner = ipv6(8, 48);
        assert_eq!(teredo(&inner), Some(Carried::Ip(&inner[..])));
        let mut origin = vec![0, 0, 0x12, 0x34, 1, 2, 3, 4];
        origin.extend(&inner);
        assert_eq!(teredo(&origin), Some(Carried::Ip(&inner[..])));
        // Authentication (id 2 bytes, value 0) then origin indication.
        let mut auth = vec![0, 1, 2, 0, 0xaa, 0xbb];
        auth.extend([0; 9]);
        auth.extend(&origin);
        assert_eq!(teredo(&auth), Some(Carried::Ip(&inner[..])));
        // Bytes past the IPv6 payload length: not one IPv6 packet.
        assert_eq!(teredo(&ipv6(4, 48)), None);
        assert_eq!(teredo(&[0x45; 60]), None);
    }

    #[test]
    fn ayiya_forward_only() {
        let inner = ipv6(0, 40);
        // IDLen 4 (16 bytes), SigLen 5 (20 bytes), forward, IPv6.
        let mut p = vec![0x41, 0x52, 0x11, 41, 0, 0, 0, 0];
        p.extend([0; 36]);
        p.extend(&inner);
        assert_eq!(ayiya(&p), Some(Carried::Ip(&inner[..])));
        p[2] = 0x12;
        assert_eq!(ayiya(&p), None);
    }
}
