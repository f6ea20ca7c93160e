//! What DNS and mDNS records teach: DNS answers bind names (with their CNAME chain) to
//! addresses; mDNS queries and announcements tell who searches for and who offers which
//! service type, at which endpoint, on which device model.

use std::net::IpAddr;
use std::sync::Arc;

pub use super::dnssd::service_type;
use super::names::{MdnsEndpoint, Names, ttl_secs};
use crate::capture::Timestamp;
use crate::wire::dns::{self, DnsError, DnsMessage, RecordData};

/// Longest CNAME chain followed; longer chains (or loops) are cut here.
const MAX_CHAIN: usize = 16;

/// The meta-type of DNS-SD service enumeration: not a service.
const ENUMERATION: &str = "_dns-sd._udp";

/// Parses a DNS or mDNS message for [`observe`] (an error exactly when
/// [`dns::parse_message`] fails): of a unicast DNS message only the records it reads, A, AAAA
/// and CNAME, are built. The NS, SOA and PTR records of answers were a quarter of their
/// records on the benchmark capture: 180.9M -> 179.5M instructions on its first 100k packets
/// (callgrind).
pub fn parse(payload: &[u8], mdns: bool) -> Result<DnsMessage<'_>, DnsError> {
    if mdns {
        dns::parse_message(payload)
    } else {
        dns::parse_message_keeping(payload, |t| {
            matches!(t, dns::rtype::A | dns::rtype::AAAA | dns::rtype::CNAME)
        })
    }
}

/// Feeds one DNS or mDNS message to the shared stores. `host` is the sender for mDNS (the
/// device that searched or announced); `mdns` says which protocol this is.
pub fn observe(msg: &DnsMessage<'_>, host: IpAddr, ts: Timestamp, mdns: bool, shared: &Names) {
    if mdns {
        observe_mdns(msg, host, ts, shared);
    } else if msg.is_response {
        bind_answers(msg, ts, shared);
    }
}

/// Binds every A/AAAA answer to its name chain: the query name first (the name the client
/// asked for, which is what signatures describe), then each CNAME, then the owner.
///
/// The CNAMEs and the chains found are kept in short lists, not hash maps: an answer holds
/// a few CNAMEs and one or two owners of addresses, and two `HashMap`s (SipHash, a random
/// state each) per answer cost more than the bindings they made: 175.2M -> 173.6M
/// instructions on the first 100k packets of the benchmark capture (callgrind).
fn bind_answers(msg: &DnsMessage<'_>, ts: Timestamp, shared: &Names) {
    let cnames: Vec<(&str, &str)> = msg
        .records
        .iter()
        .filter_map(|r| match &r.data {
            RecordData::Cname(t) => Some((msg.name(r.name), msg.name(*t))),
            _ => None,
        })
        .collect();
    let mut chains: Vec<(&str, Arc<[Box<str>]>)> = Vec::new();
    for r in &msg.records {
        let addr = match r.data {
            RecordData::A(a) => IpAddr::V4(a),
            RecordData::Aaaa(a) => IpAddr::V6(a),
            _ => continue,
        };
        let owner = msg.name(r.name);
        let chain = match chains.iter().find(|(o, _)| *o == owner) {
            Some((_, chain)) => chain.clone(),
            None => {
                let chain = chain_to(msg, &cnames, owner);
                chains.push((owner, chain.clone()));
                chain
            }
        };
        shared.dns.bind(addr, chain, ts, r.ttl, shared.stamp());
    }
}

/// The names from a question of `msg` through its CNAMEs to `owner`; just `owner` when no
/// question leads there. Of two CNAMEs of one name, the later counts.
fn chain_to(msg: &DnsMessage<'_>, cnames: &[(&str, &str)], owner: &str) -> Arc<[Box<str>]> {
    let mut chain: Vec<&str> = Vec::new();
    for q in &msg.questions {
        chain.clear();
        let mut cur = msg.name(q.name);
        chain.push(cur);
        while cur != owner && chain.len() < MAX_CHAIN {
            match cnames.iter().rev().find(|(name, _)| *name == cur) {
                Some(&(_, next)) => {
                    cur = next;
                    chain.push(next);
                }
                None => break,
            }
        }
        if cur == owner {
            return chain.iter().map(|&n| Box::<str>::from(n)).collect();
        }
    }
    Arc::from([Box::<str>::from(owner)])
}

fn observe_mdns(msg: &DnsMessage<'_>, host: IpAddr, ts: Timestamp, shared: &Names) {
    if !msg.is_response {
        for q in &msg.questions {
            if let Some(t) = service_type(msg.name(q.name)).filter(|t| *t != ENUMERATION) {
                shared.bonjour.note(t, host, false, None);
            }
        }
        return;
    }
    // Host name and address, in the order of this message's records (a list: a hash map
    // cost more than the few lookups it served).
    let addrs: Vec<(&str, IpAddr)> = msg
        .records
        .iter()
        .filter_map(|r| match r.data {
            RecordData::A(a) => Some((msg.name(r.name), IpAddr::V4(a))),
            RecordData::Aaaa(a) => Some((msg.name(r.name), IpAddr::V6(a))),
            _ => None,
        })
        .collect();
    for r in &msg.records {
        // Every service type a response names is announced by its sender: the owner name
        // (instance or type), and a PTR's target (service enumeration lists types).
        let instance = match &r.data {
            RecordData::Ptr(t) => Some(msg.name(*t)),
            _ => None,
        };
        let owner = msg.name(r.name);
        for name in [Some(owner), instance].into_iter().flatten() {
            if let Some(t) = service_type(name).filter(|t| *t != ENUMERATION) {
                let inst = (name != t && !name.starts_with(t)).then_some(name);
                shared
                    .bonjour
                    .note(t, host, true, inst.filter(|n| !n.starts_with('_')));
            }
        }
        match &r.data {
            RecordData::Srv { port, target, .. } => {
                let Some(t) = service_type(owner) else {
                    continue;
                };
                let target = msg.name(*target);
                let ep = MdnsEndpoint {
                    service_type: t.into(),
                    instance: owner.into(),
                    seen: ts,
                    expires: ts.plus_secs(ttl_secs(r.ttl).max(120)),
                };
                // The SRV target's addresses from this message; else the announcing device.
                let mut found = false;
                for (_, a) in addrs.iter().filter(|(name, _)| *name == target) {
                    found = true;
                    shared.mdns.learn(*a, *port, ep.clone(), shared.stamp());
                }
                if !found {
                    shared.mdns.learn(host, *port, ep, shared.stamp());
                }
            }
            RecordData::Txt(strings) => {
                let model = strings.iter().find_map(|s| {
                    let s = std::str::from_utf8(s).ok()?;
                    let (k, v) = s.split_once('=')?;
                    (k.eq_ignore_ascii_case("model") || k.eq_ignore_ascii_case("am"))
                        .then_some(v)
                        .filter(|v| !v.is_empty())
                });
                if let Some(m) = model {
                    shared.bonjour.note_model(host, m);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::dns::parse_message;

    const COURIER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(17, 57, 144, 116));

    /// Feeds a DNS response seen at 1000 s and says for how many seconds its A answer binds
    /// (None: an hour or more).
    fn bound_until(payload: &[u8]) -> Option<u64> {
        let shared = Names::new(100);
        let msg = parse_message(payload).unwrap();
        let at = |s| Timestamp::from_parts(s, 0);
        observe(&msg, "10.0.0.1".parse().unwrap(), at(1000), false, &shared);
        let names = shared.dns.lookup(COURIER, at(1000)).expect("bound").names;
        assert_eq!(names[0].as_ref(), "1-courier.push.apple.com");
        (0..3600).find(|&s| shared.dns.lookup(COURIER, at(1000 + s + 1)).is_none())
    }

    #[test]
    fn answer_ttl_with_the_top_bit_set_binds_like_ttl_zero() {
        let real = include_bytes!("../../fixtures/packets/dns_1_courier_push_apple.bin");
        let top = include_bytes!("../../fixtures/packets/dns_1_courier_push_apple_ttl_top_bit.bin");
        // The fixture is the real answer with only the A record's TTL changed.
        let (a, b) = (parse_message(real).unwrap(), parse_message(top).unwrap());
        assert_eq!((a.records[2].ttl, b.records[2].ttl), (23, 0x8000_0000));
        assert_eq!(bound_until(real), Some(23));
        // RFC 2181 §8: 2^31 or more means 0, so only the 10-second floor applies (it was
        // 2^31 seconds: the name stayed bound for 68 years of packet time).
        assert_eq!(bound_until(top), Some(10));
    }
}
