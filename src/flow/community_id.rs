//! Community ID v1 (<https://github.com/corelight/community-id-spec>): the flow hash Zeek,
//! Suricata and Elastic write, so appletap's flow records join with theirs. Hand-written
//! because the computation is a dozen lines over `ring`'s SHA-1 and `base64` (the only crate,
//! `communityid`, is Python); checked against that reference implementation on every TCP and
//! UDP flow of the shared captures (tests/community_id.rs).

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::decode::ip_proto;

/// One end of a flow as the spec sees it: an address, and a port where the protocol has ports
/// (for ICMP and ICMPv6 the message type as the source "port" and its code as the
/// destination's, see [`community_id`]).
pub type Endpoint = (IpAddr, Option<u16>);

/// The Community ID v1 of a flow from `src` to `dst` over IP protocol `proto`, with `seed`
/// (0 unless every sensor of a deployment agrees on another): `1:` and the base64 of a SHA-1
/// over seed, the smaller endpoint first, protocol, a zero pad and the ports. Ports are hashed
/// only when both are given. For ICMP and ICMPv6 pass the message type as `src`'s port and the
/// code as `dst`'s: request and reply types (echo, timestamp, router and neighbour discovery,
/// ...) then pair up into one ID as in Zeek, and other messages count as one-way (never
/// reordered).
pub fn community_id(seed: u16, proto: u8, src: Endpoint, dst: Endpoint) -> String {
    let (mut src, mut dst) = (src, dst);
    let mut one_way = false;
    if let (Some(ty), Some(code)) = (src.1, dst.1) {
        let mapped = match proto {
            ip_proto::ICMP => Some(icmp_counterpart(ty)),
            ip_proto::ICMPV6 => Some(icmpv6_counterpart(ty)),
            _ => None,
        };
        if let Some(m) = mapped {
            // Types above 255 are not ICMP: hashed as given, one-way, as the reference does
            // for types it does not pair.
            match m {
                Some(other) => dst.1 = Some(other),
                None => {
                    one_way = true;
                    dst.1 = Some(code);
                }
            }
        }
    }
    let ordered = one_way
        || octets(src.0) < octets(dst.0)
        || (src.0 == dst.0 && matches!((src.1, dst.1), (Some(a), Some(b)) if a < b));
    if !ordered {
        std::mem::swap(&mut src, &mut dst);
    }
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&seed.to_be_bytes());
    ctx.update(&octets(src.0));
    ctx.update(&octets(dst.0));
    ctx.update(&[proto, 0]);
    if let (Some(a), Some(b)) = (src.1, dst.1) {
        ctx.update(&a.to_be_bytes());
        ctx.update(&b.to_be_bytes());
    }
    format!("1:{}", STANDARD.encode(ctx.finish().as_ref()))
}

/// An address in network byte order, as the spec hashes and compares it.
fn octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The ICMP type answering `ty` (or asked by it), `None` for one-way messages.
fn icmp_counterpart(ty: u16) -> Option<u16> {
    Some(match ty {
        8 => 0,
        0 => 8,
        13 => 14,
        14 => 13,
        15 => 16,
        16 => 15,
        10 => 9,
        9 => 10,
        17 => 18,
        18 => 17,
        _ => return None,
    })
}

/// The ICMPv6 type answering `ty` (or asked by it), `None` for one-way messages.
fn icmpv6_counterpart(ty: u16) -> Option<u16> {
    Some(match ty {
        128 => 129,
        129 => 128,
        130 => 131,
        131 => 130,
        133 => 134,
        134 => 133,
        135 => 136,
        136 => 135,
        139 => 140,
        140 => 139,
        144 => 145,
        145 => 144,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    // The spec's baseline (community-id-spec/baseline/baseline_deflt.json), seed 0 and 1.
    #[test]
    fn spec_baseline() {
        let tcp = |seed| {
            community_id(
                seed,
                6,
                (ip("128.232.110.120"), Some(34855)),
                (ip("66.35.250.204"), Some(80)),
            )
        };
        assert_eq!(tcp(0), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        assert_eq!(tcp(1), "1:3V71V58M3Ksw/yuFALMcW0LAHvc=");
        // The reply direction hashes the same.
        assert_eq!(
            community_id(
                0,
                6,
                (ip("66.35.250.204"), Some(80)),
                (ip("128.232.110.120"), Some(34855))
            ),
            tcp(0)
        );
        let echo = |ty| {
            community_id(
                0,
                1,
                (ip("192.168.0.89"), Some(ty)),
                (ip("192.168.0.1"), Some(0)),
            )
        };
        assert_eq!(echo(8), "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=");
        // The echo reply, the other way, pairs with the request.
        let reply = community_id(
            0,
            1,
            (ip("192.168.0.1"), Some(0)),
            (ip("192.168.0.89"), Some(0)),
        );
        assert_eq!(reply, echo(8));
        // No ports (GRE); an ICMPv6 router advertisement (paired with solicitations).
        assert_eq!(
            community_id(0, 47, (ip("10.0.0.2"), None), (ip("10.0.0.1"), None)),
            "1:+KlEHDT0vJgzs/eNmzHq0aSpRYw="
        );
        assert_eq!(
            community_id(0, 58, (ip("fe80::1"), Some(134)), (ip("ff02::1"), Some(0))),
            "1:Ilg4oMT5cEP8nHg384C0O3MLdD0="
        );
    }
}
