//! DNS and mDNS: `parse_message` (UDP), `parse_tcp_message` (length-prefixed), what the
//! shared stores learn from a message (`records::observe`, as DNS and as mDNS, with a
//! small capacity so eviction runs), and the message through an engine: as a UDP 53 answer,
//! a UDP 5353 announcement and the server side of a DNS-over-TCP flow, followed by a TLS-less
//! flow to every address it answered (which looks the bindings up).
#![no_main]

mod common;

use std::net::IpAddr;

use appletap::capture::Timestamp;
use appletap::wire::dns::{self, DnsMessage, RecordData};
use appletap::inspect::{Inspector, records};
use appletap::inspect::names::Names;
use libfuzzer_sys::fuzz_target;

fn learn(msg: &DnsMessage<'_>, shared: &Names) {
    let ts = Timestamp::from_parts(1_700_000_000, 0);
    let host: IpAddr = [10, 0, 0, 2].into();
    records::observe(msg, host, ts, false, shared);
    records::observe(msg, host, ts, true, shared);
    let mut inspector = Inspector::default();
    inspector.note_dns_names(msg);
    std::hint::black_box(inspector.queried().count());
    for name in msg
        .questions
        .iter()
        .map(|q| msg.name(q.name))
        .chain(msg.records.iter().map(|r| msg.name(r.name)))
    {
        if let Some(t) = records::service_type(name) {
            assert!(name.contains(t), "service type is a part of the name");
        }
    }
    for r in &msg.records {
        let addr: Option<IpAddr> = match r.data {
            RecordData::A(a) => Some(a.into()),
            RecordData::Aaaa(a) => Some(a.into()),
            _ => None,
        };
        if let Some(a) = addr {
            std::hint::black_box(shared.dns.lookup(a, ts));
        }
        std::hint::black_box(r.data.txt_value("model"));
    }
    assert!(shared.dns.len() <= 8, "DNS store over its capacity");
}

fuzz_target!(|data: &[u8]| {
    let shared = Names::new(8);
    if let Ok(msg) = dns::parse_message(data) {
        learn(&msg, &shared);
    }
    match dns::parse_tcp_message(data) {
        Ok(msg) => learn(&msg, &shared),
        Err(dns::DnsError::Incomplete { wanted }) => assert!(wanted > data.len()),
        Err(_) => {}
    }

    let mut engine = common::engine(8);
    let (client, server) = ([10, 0, 0, 2], [10, 0, 0, 1]);
    let mut packets = vec![
        common::ipv4_udp(server, client, 53, 40000, data),
        common::ipv4_udp(client, [224, 0, 0, 251], 5353, 5353, data),
        common::ipv4_tcp((client, 40001), (server, 53), 1000, common::SYN, &[]),
        common::ipv4_tcp(
            (server, 53),
            (client, 40001),
            5000,
            common::SYN | common::ACK,
            &[],
        ),
    ];
    // The server's side of DNS over TCP, in two segments, the second first.
    let mid = data.len() / 2;
    packets.push(common::ipv4_tcp(
        (server, 53),
        (client, 40001),
        5001 + mid as u32,
        common::PSH_ACK,
        &data[mid..],
    ));
    packets.push(common::ipv4_tcp(
        (server, 53),
        (client, 40001),
        5001,
        common::PSH_ACK,
        &data[..mid],
    ));
    // A flow to every address answered, so that flows look the bindings up.
    if let Ok(msg) = dns::parse_message(data) {
        for (i, r) in msg.records.iter().take(16).enumerate() {
            if let RecordData::A(a) = r.data {
                packets.push(common::ipv4_tcp(
                    (client, 41000 + i as u16),
                    (a.octets(), 443),
                    1,
                    common::SYN,
                    &[],
                ));
            }
        }
    }
    common::feed_raw(&mut engine, 1_700_000_000, packets);
    common::finish_and_report(engine, Vec::new(), 0);
});
