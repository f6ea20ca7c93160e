//! End-to-end packets per second from an in-memory capture: no file reading, no output, only
//! classification.
//!
//! The capture is every Ethernet capture that `../shared/bench/make-bench-pcap.sh` builds the
//! benchmark from (its `DEFAULT_INPUTS`: 35 files, 22,518 packets of TLS, DNS, QUIC, mDNS,
//! SSDP, NTP, STUN/RTP, HTTP, ...), read once with appletap's reader and concatenated in that
//! order, 8 times over, each copy a day later than the one before (180,144 packets a run).
//! Within a copy timestamps are as recorded, so packet time jumps between files (forward: the
//! flow table expires the previous file's flows; back: a new stretch of capture begins).
//!
//! Each iteration classifies the whole capture from a fresh state and ends every flow
//! (`finish`, so per-flow labelling and record building are counted too), without keeping
//! records, as `appletap read` does without `--flows`:
//!
//! - `decode_only`: `decode::decode` on every packet: the floor under everything else.
//! - `engine_1thread`: the library's `Classifier` with one worker inline (what `--threads 1`
//!   runs).
//! - `pipeline_1worker` / `pipeline_2workers`: the `Classifier` with 1 or 2 worker threads beside
//!   the calling thread (what `--threads 2` and `--threads 3` run), fed packets that own their
//!   bytes: the calling thread decodes, reads DNS answers and dispatches in batches, copying
//!   each payload into its batch (as for live capture); the workers classify.
//! - `file_engine_1thread`, `file_pipeline_1worker` / `file_pipeline_2workers`: the same, fed
//!   by appletap's capture reader from the files (in the page cache after the first run), as
//!   `appletap read` runs: packets stay in the reader's shared blocks and batches refer to them.
//!   Thread start-up, the first allocation of the batch buffers and the join are inside the
//!   timing, as they are in a real run (where they are amortized over far more packets).

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use appletap::capture::file::CaptureFile;
use appletap::capture::{OwnedPacket, Timestamp};
use appletap::decode;
use appletap::pipeline::{Classifier, ClassifierConfig, EngineConfig};
use appletap::signature::SignatureSet;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Copies of the inputs per run.
const REPEAT: u64 = 8;

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

/// The classifier `appletap read` runs with `threads` threads (1 inline), without records.
fn classifier(sigs: &Arc<SignatureSet>, threads: usize) -> Classifier {
    let config = ClassifierConfig {
        engine: EngineConfig::default(),
        threads,
        drop_when_full: false,
    };
    Classifier::new(Arc::clone(sigs), config, None)
}

/// Packets that own their bytes.
fn run_packets(sigs: &Arc<SignatureSet>, pkts: &[OwnedPacket], threads: usize) -> u64 {
    let mut c = classifier(sigs, threads);
    for p in pkts {
        c.push(&p.packet());
    }
    c.finish().counters.packets.decoded
}

/// The input files, each read by a fresh capture reader.
fn run_files(sigs: &Arc<SignatureSet>, files: &[std::path::PathBuf], threads: usize) -> u64 {
    let mut c = classifier(sigs, threads);
    for path in files {
        let mut cap = CaptureFile::open(path).expect("a capture");
        while let Some(Ok(pkt)) = cap.next_packet() {
            c.push(&pkt);
        }
    }
    c.finish().counters.packets.decoded
}

fn benches(c: &mut Criterion) {
    let sigs = Arc::new(SignatureSet::builtin().expect("built-in signatures"));
    let once: Vec<OwnedPacket> = INPUTS.iter().flat_map(|f| common::load(f)).collect();
    assert_eq!(once.len(), 22_518, "the inputs of make-bench-pcap.sh");
    // REPEAT copies, each a day after the one before (its flows are new), so that a run is
    // long enough (about 50 ms) for the pipeline's start-up to weigh little, as in a real run.
    let pkts: Vec<OwnedPacket> = (0..REPEAT)
        .flat_map(|k| {
            once.iter().map(move |p| OwnedPacket {
                ts: Timestamp(p.ts.0 + k * 86_400 * Timestamp::NANOS_PER_SEC),
                ..p.clone()
            })
        })
        .collect();
    // Every way of running sees the same packets and decodes the same ones.
    let decoded = run_packets(&sigs, &pkts, 1);
    assert_eq!(run_packets(&sigs, &pkts, 2), decoded);
    assert_eq!(run_packets(&sigs, &pkts, 3), decoded);
    // The files REPEAT times over (packet time goes back at each file that starts earlier:
    // a new stretch of capture, as `appletap read` treats it).
    let files: Vec<std::path::PathBuf> = (0..REPEAT)
        .flat_map(|_| INPUTS)
        .map(|f| common::shared_pcaps().join(f))
        .collect();
    let decoded_files = run_files(&sigs, &files, 1);
    assert_eq!(decoded_files, decoded);
    for threads in [2, 3] {
        assert_eq!(run_files(&sigs, &files, threads), decoded_files);
    }

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
        b.iter(|| run_packets(&sigs, black_box(&pkts), 1));
    });
    g.bench_function("pipeline_1worker", |b| {
        b.iter(|| run_packets(&sigs, black_box(&pkts), 2));
    });
    g.bench_function("pipeline_2workers", |b| {
        b.iter(|| run_packets(&sigs, black_box(&pkts), 3));
    });
    for (name, threads) in [
        ("file_engine_1thread", 1),
        ("file_pipeline_1worker", 2),
        ("file_pipeline_2workers", 3),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| run_files(&sigs, black_box(&files), threads));
        });
    }
    g.finish();
}

criterion_group!(pipeline_benches, benches);
criterion_main!(pipeline_benches);
