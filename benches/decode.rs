//! Per-packet cost of decoding and classifying, on real packets.
//!
//! Every packet comes from `../shared/pcaps/ndpi__iphone.pcap` (Ethernet, an iPhone on home
//! Wi-Fi); frame numbers are tshark's (1-based):
//!
//! | kind            | frame | what it is                                                        |
//! |-----------------|-------|-------------------------------------------------------------------|
//! | `clienthello`   | 157   | TLS ClientHello, SNI gateway.icloud.com, 192.168.2.17:50580 -> 17.248.176.75:443 (tcp.stream 6), 583 B |
//! | `dns_answer`    | 110   | DNS answer for gateway.icloud.com (CNAME chain + A), 192.168.2.1:53 -> 192.168.2.17, 244 B |
//! | `mdns_announce` | 3     | mDNS response from 192.168.2.1 announcing an iMac's services (PTR/SRV/TXT/A), 1,199 B |
//! | `tcp_midflow`   | 310   | TLS application data, 1,024 B of TCP payload, client -> server of the same flow as 157 (after its handshake), 1,090 B |
//!
//! Two groups, measuring different things:
//!
//! - `decode/<kind>`: `appletap::decode::decode` alone: link layer, IP and transport headers
//!   (no flow lookup, no payload inspection).
//! - `engine/<kind>`: `Engine::process`, everything a packet costs: decode, flow-table lookup
//!   or insert, flow counters, payload inspection, shared DNS/mDNS stores.
//!   - `clienthello`, `dns_answer`, `mdns_announce` are measured the *first* time the engine
//!     sees them, in their real context: each iteration gets a fresh engine that was fed every
//!     earlier frame of the capture (frames 1..N-1, untimed, `iter_batched`), then the timed
//!     part is processing frame N once. So the ClientHello is parsed for real (TLS inspection,
//!     SNI kept), the DNS answer is parsed and bound into the shared store, the mDNS
//!     announcement is parsed and its records learned. Dropping the engine is not timed.
//!   - `tcp_midflow` is the steady state of an established, already-classified flow: one engine
//!     fed frames 1..309, then frame 310 is processed again and again (same timestamp, so no
//!     idle sweep runs): hash lookup, counters, no inspection.
//!
//! Before timing, each kind is checked to do what it says (the SNI is found, the answer is
//! bound, ...), so a change in the engine cannot silently turn a bench into a no-op.

mod common;

use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use appletap::capture::OwnedPacket;
use appletap::decode::{self, ip_proto, tcp_flags};
use appletap::pipeline::{Engine, EngineConfig};
use appletap::signature::SignatureSet;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const CAPTURE: &str = "ndpi__iphone.pcap";
const FRAME_MDNS: usize = 3;
const FRAME_DNS: usize = 110;
const FRAME_CLIENTHELLO: usize = 157;
const FRAME_MIDFLOW: usize = 310;

/// A fresh engine that has processed `frames` (records discarded, as `appletap read` without
/// `--flows` does).
fn engine_after(sigs: &Arc<SignatureSet>, frames: &[OwnedPacket]) -> Engine {
    let mut e = Engine::without_records(Arc::clone(sigs), EngineConfig::default());
    for p in frames {
        e.process(&p.packet());
    }
    e
}

/// Frames 1..n-1 and frame n (1-based, as tshark numbers them).
fn split_at_frame(pkts: &[OwnedPacket], frame: usize) -> (&[OwnedPacket], &OwnedPacket) {
    (&pkts[..frame - 1], &pkts[frame - 1])
}

/// Checks, untimed, that each chosen frame is what the bench says it is.
fn check_frames(sigs: &Arc<SignatureSet>, pkts: &[OwnedPacket]) {
    let (_, ch) = split_at_frame(pkts, FRAME_CLIENTHELLO);
    let m = decode::decode(ch.link, &ch.data).expect("ClientHello decodes");
    assert_eq!(
        (m.proto, m.src_port, m.dst_port),
        (ip_proto::TCP, 50580, 443)
    );
    assert_eq!(m.payload.first(), Some(&0x16), "a TLS handshake record");

    let (_, mid) = split_at_frame(pkts, FRAME_MIDFLOW);
    let m = decode::decode(mid.link, &mid.data).expect("mid-flow segment decodes");
    assert_eq!(
        (m.proto, m.src_port, m.dst_port),
        (ip_proto::TCP, 50580, 443)
    );
    assert_eq!(m.payload.len(), 1024);
    assert!(m.has_flags(tcp_flags::ACK | tcp_flags::PSH));

    let (_, dns) = split_at_frame(pkts, FRAME_DNS);
    let m = decode::decode(dns.link, &dns.data).expect("DNS answer decodes");
    assert_eq!((m.proto, m.src_port), (ip_proto::UDP, 53));

    let (_, mdns) = split_at_frame(pkts, FRAME_MDNS);
    let m = decode::decode(mdns.link, &mdns.data).expect("mDNS announcement decodes");
    assert_eq!(
        (m.proto, m.src_port, m.dst_port),
        (ip_proto::UDP, 5353, 5353)
    );

    // The DNS answer binds the server's address; the ClientHello's SNI labels its flow.
    let server: IpAddr = "17.248.176.75".parse().expect("address");
    let before = engine_after(sigs, &pkts[..FRAME_DNS - 1]);
    assert!(before.names().dns.lookup(server, dns.ts).is_none());
    let after = engine_after(sigs, &pkts[..FRAME_DNS]);
    assert!(after.names().dns.lookup(server, dns.ts).is_some());

    let mut e = Engine::new(Arc::clone(sigs), EngineConfig::default());
    for p in &pkts[..FRAME_MIDFLOW] {
        e.process(&p.packet());
    }
    e.finish();
    let recs = e.take_finished();
    let flow = recs
        .iter()
        .find(|r| r.client_port == Some(50580) && r.server_ip == server)
        .expect("the ClientHello's flow");
    assert_eq!(flow.names.sni.as_deref(), Some("gateway.icloud.com"));
    assert_eq!(flow.state, "established");
    let announcer: IpAddr = "192.168.2.1".parse().expect("address");
    let mdns_flow = recs
        .iter()
        .find(|r| r.server_port == Some(5353) && r.client_ip == announcer)
        .expect("the mDNS announcement's flow");
    assert!(!mdns_flow.names.queried.is_empty(), "mDNS names were noted");
}

fn benches(c: &mut Criterion) {
    let sigs = Arc::new(SignatureSet::builtin().expect("built-in signatures"));
    let pkts = common::load(CAPTURE);
    check_frames(&sigs, &pkts);
    let kinds = [
        ("clienthello", FRAME_CLIENTHELLO),
        ("dns_answer", FRAME_DNS),
        ("mdns_announce", FRAME_MDNS),
        ("tcp_midflow", FRAME_MIDFLOW),
    ];

    let mut g = c.benchmark_group("decode");
    g.sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(1));
    for (name, frame) in kinds {
        let (_, p) = split_at_frame(&pkts, frame);
        g.bench_function(name, |b| {
            b.iter(|| decode::decode(black_box(p.link), black_box(&p.data)).is_ok());
        });
    }
    g.finish();

    let mut g = c.benchmark_group("engine");
    g.sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    for (name, frame) in kinds {
        let (before, p) = split_at_frame(&pkts, frame);
        if frame == FRAME_MIDFLOW {
            let mut e = engine_after(&sigs, before);
            e.process(&p.packet());
            g.bench_function(name, |b| {
                b.iter(|| e.process(black_box(&p.packet())));
            });
        } else {
            g.bench_function(name, |b| {
                b.iter_batched(
                    || engine_after(&sigs, before),
                    |mut e| {
                        e.process(black_box(&p.packet()));
                        e
                    },
                    BatchSize::SmallInput,
                );
            });
        }
    }
    g.finish();
}

criterion_group!(decode_benches, benches);
criterion_main!(decode_benches);
