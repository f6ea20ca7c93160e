//! End-to-end packets per second from an in-memory capture: no file reading, no output, only
//! classification.
//!
//! The capture is every Ethernet capture that `../shared/bench/make-bench-pcap.sh` builds the
//! benchmark from (its `DEFAULT_INPUTS`: 35 files, 22,518 packets of TLS, DNS, QUIC, mDNS,
//! SSDP, NTP, STUN/RTP, HTTP, ...), read once with appletap's reader and concatenated in that
//! order. Timestamps are left as recorded, so packet time jumps between files (the flow table
//! expires the previous file's flows when it does); within each file flows are as captured.
//!
//! Each iteration classifies the whole capture from a fresh state and ends every flow
//! (`finish`, so per-flow labelling and record building are counted too), without keeping
//! records, as `appletap read` does without `--flows`:
//!
//! - `decode_only`: `decode::decode` on every packet: the floor under everything else.
//! - `engine_1thread`: one `Engine` on the calling thread (what `--threads 1` runs).
//! - `pipeline_1worker` / `pipeline_2workers`: `Pipeline` with 1 or 2 worker threads beside
//!   the calling thread (what `--threads 2` and `--threads 3` run): the calling thread reads,
//!   decodes, dispatches in batches and classifies its own share of the flows (about 30% with
//!   one worker, 7% with two); the workers classify the rest.
//!   Thread start-up, the first allocation of the batch buffers and the join are inside the
//!   timing, as they are in a real run (where they are amortized over far more packets).

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use appletap::decode;
use appletap::engine::{Engine, EngineConfig};
use appletap::pipeline::Pipeline;
use appletap::signature::SignatureSet;
use common::OwnedPacket;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// The Ethernet captures `make-bench-pcap.sh` builds the benchmark capture from.
const INPUTS: &[&str] = &[
    "mercury__capture2.pcap",
    "mercury__mdns_capture.pcap",
    "ndpi__1kxun.pcap",
    "ndpi__443-chrome.pcap",
    "ndpi__443-firefox.pcap",
    "ndpi__NTPv2.pcap",
    "ndpi__NTPv3.pcap",
    "ndpi__afp.pcap",
    "ndpi__android.pcap",
    "ndpi__anyconnect-vpn.pcap",
    "ndpi__dns_ambiguous_names.pcap",
    "ndpi__dropbox.pcap",
    "ndpi__h323.pcap",
    "ndpi__iphone.pcap",
    "ndpi__natpmp.pcap",
    "ndpi__netflix.pcap",
    "ndpi__quic.pcap",
    "ndpi__rtp.pcapng",
    "ndpi__safari.pcap",
    "ndpi__signal.pcap",
    "ndpi__skype-conference-call.pcap",
    "ndpi__ssdp-m-search-ua.pcap",
    "ndpi__stun.pcap",
    "ndpi__stun_wa_call.pcapng",
    "ndpi__telegram_videocall.pcapng",
    "ndpi__upnp.pcap",
    "ndpi__wechat.pcap",
    "ndpi__whatsapp_login_chat.pcap",
    "ndpi__windowsupdate_over_http.pcap",
    "ndpi__zoom.pcap",
    "zeek__chromium-115.0.5790.110-google-de-fragmented.pcap",
    "zeek__mdns.pcap",
    "zeek__ntp.pcap",
    "zeek__pcapng-multi-interface.pcapng",
    "zeek__wikipedia.pcap",
];

fn run_engine(sigs: &Arc<SignatureSet>, pkts: &[OwnedPacket]) -> u64 {
    let mut e = Engine::new(Arc::clone(sigs), EngineConfig::default());
    e.discard_records();
    for p in pkts {
        e.process(&p.packet());
    }
    e.finish();
    e.stats().decoded
}

/// `threads` classifying threads in all, the calling thread included.
fn run_pipeline(sigs: &Arc<SignatureSet>, pkts: &[OwnedPacket], threads: usize) -> u64 {
    let mut p = Pipeline::new(
        Arc::clone(sigs),
        EngineConfig::default(),
        threads,
        false,
        None,
    );
    for pkt in pkts {
        p.push(&pkt.packet());
    }
    p.finish().stats.decoded
}

fn benches(c: &mut Criterion) {
    let sigs = Arc::new(SignatureSet::builtin().expect("built-in signatures"));
    let pkts: Vec<OwnedPacket> = INPUTS.iter().flat_map(|f| common::load(f)).collect();
    assert_eq!(pkts.len(), 22_518, "the inputs of make-bench-pcap.sh");
    // Every way of running sees the same packets and decodes the same ones.
    let decoded = run_engine(&sigs, &pkts);
    assert_eq!(run_pipeline(&sigs, &pkts, 2), decoded);
    assert_eq!(run_pipeline(&sigs, &pkts, 3), decoded);

    let mut g = c.benchmark_group("pipeline");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(pkts.len() as u64));
    g.bench_function("decode_only", |b| {
        b.iter(|| {
            pkts.iter()
                .filter(|p| decode::decode(p.link, black_box(&p.data)).is_ok())
                .count()
        });
    });
    g.bench_function("engine_1thread", |b| {
        b.iter(|| run_engine(&sigs, black_box(&pkts)));
    });
    g.bench_function("pipeline_1worker", |b| {
        b.iter(|| run_pipeline(&sigs, black_box(&pkts), 2));
    });
    g.bench_function("pipeline_2workers", |b| {
        b.iter(|| run_pipeline(&sigs, black_box(&pkts), 3));
    });
    g.finish();
}

criterion_group!(pipeline_benches, benches);
criterion_main!(pipeline_benches);
