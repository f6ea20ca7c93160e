//! Signature files: `SignatureSet::parse` on any UTF-8 text. A set that loads must answer
//! every lookup, list itself (`appletap signatures`), and classify real traffic: 30 packets of
//! an iPhone's TLS flows to iCloud and Apple, a DNS answer and an mDNS announcement, through an
//! engine using the fuzzed set, up to the rendered report.
#![no_main]

mod common;

use std::io::Cursor;
use std::net::IpAddr;
use std::sync::Arc;

use appletap::capture::file::CaptureFile;
use appletap::pipeline::{Engine, EngineConfig};
use appletap::signature::{SignatureSet, Transport, listing};
use libfuzzer_sys::fuzz_target;

const IPHONE_RAW: &[u8] = include_bytes!("../../fixtures/link/iphone-raw.pcap");
const DNS_ANSWER: &[u8] = include_bytes!("../../fixtures/packets/dns_1_courier_push_apple.bin");
const MDNS_ANNOUNCE: &[u8] =
    include_bytes!("../../fixtures/packets/mdns_companion_link_device_info.bin");

fn classify_with(set: SignatureSet) {
    let mut engine = Engine::new(
        Arc::new(set),
        EngineConfig {
            max_flows: 16,
            ..EngineConfig::default()
        },
    );
    let dns = common::ipv4_udp([192, 168, 1, 1], [192, 168, 1, 2], 53, 40000, DNS_ANSWER);
    let mdns = common::ipv4_udp([10, 0, 0, 227], [224, 0, 0, 251], 5353, 5353, MDNS_ANNOUNCE);
    common::feed_raw(&mut engine, 1_582_454_000, vec![dns, mdns]);
    let mut cap = CaptureFile::from_reader("iphone-raw".into(), Box::new(Cursor::new(IPHONE_RAW)))
        .expect("fixture opens");
    while let Some(Ok(p)) = cap.next_packet() {
        engine.process(&p);
    }
    common::finish_and_report(engine, Vec::new(), 0);
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(set) = SignatureSet::parse("fuzz", text) else {
        return;
    };
    for name in [
        "www.apple.com",
        "1-courier.push.apple.com",
        "a.b.c.d.e",
        "",
        ".",
    ] {
        std::hint::black_box(set.host_match(name));
        std::hint::black_box(set.host_rule(name));
    }
    for port in [0u16, 53, 443, 5223, 5353, 65535] {
        std::hint::black_box(set.port_rule(Transport::Tcp, port));
        std::hint::black_box(set.port_rule(Transport::Udp, port));
    }
    for ip in ["17.57.144.116", "2620:149::1", "10.0.0.1"] {
        let ip: IpAddr = ip.parse().unwrap();
        std::hint::black_box(set.is_apple_address(ip));
        for r in set.address_rules(ip) {
            std::hint::black_box(r.fits_port(Some(Transport::Tcp), 443));
        }
    }
    std::hint::black_box(set.bonjour_rule("_airplay._tcp"));
    for s in &set.services {
        std::hint::black_box(set.service_id(&s.id));
    }
    std::hint::black_box(listing::json(&set).to_string());
    std::hint::black_box(listing::table(&set));
    classify_with(set);
});
