//! Damaged captures: every shared capture with its packet bytes corrupted by `editcap -E`
//! (0.1 %, 1 % and 5 %, fixed seeds), with bytes of the file itself flipped (record headers
//! included), and cut short at many byte offsets. Whatever the damage: no panic, every run
//! ends within a bound, packets read = decoded + skipped, every decoded packet is in a flow,
//! and a cut file's error names the file and the record where it broke.
//!
//! Most cases run through the library (`CaptureFile` + `Engine`) on two worker threads; a
//! sample runs through the binary, in one invocation per damage kind, and its JSON report is
//! checked the same way.

mod common;

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use appletap::capture::file::CaptureFile;
use appletap::pipeline::{Engine, EngineConfig};
use appletap::signature::SignatureSet;
use common::*;
use serde_json::Value;

/// No single damaged capture may take longer than this through the library (the largest
/// shared capture takes well under a second).
const CASE_BOUND: Duration = Duration::from_secs(60);
/// Nor through the binary.
const BINARY_BOUND: Duration = Duration::from_secs(120);
/// `editcap -E` error rates.
const RATES: [&str; 3] = ["0.001", "0.01", "0.05"];
/// Cut offsets spread over each file (plus every offset in the first 64 bytes).
const SPREAD_CUTS: usize = 40;

/// A capture's bytes, shared by every cut of it.
struct Bytes {
    data: Arc<Vec<u8>>,
    end: usize,
    pos: usize,
}

impl Read for Bytes {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.end - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// What one run of the core over a (damaged) capture gave.
#[derive(Debug)]
struct Outcome {
    read: u64,
    records_read: u64,
    error: Option<String>,
}

/// Runs the core over `end` bytes of `data`, named `name`, checking the counters.
fn run_core(sigs: &Arc<SignatureSet>, name: &str, data: Arc<Vec<u8>>, end: usize) -> Outcome {
    let reader = Bytes { data, end, pos: 0 };
    let mut cap = match CaptureFile::from_reader(name.to_string(), Box::new(reader)) {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                read: 0,
                records_read: 0,
                error: Some(e.to_string()),
            };
        }
    };
    let mut engine = Engine::new(Arc::clone(sigs), EngineConfig::default());
    let mut error = None;
    while let Some(p) = cap.next_packet() {
        match p {
            Ok(pkt) => engine.process(&pkt),
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    engine.finish();
    let stats = engine.stats();
    assert_eq!(
        stats.read,
        stats.decoded + stats.skipped_total(),
        "{name}: read = decoded + skipped"
    );
    let in_flows: u64 = engine
        .take_finished()
        .iter()
        .map(|r| r.packets_to_server + r.packets_to_client)
        .sum();
    assert_eq!(
        in_flows, stats.decoded,
        "{name}: every decoded packet is in a flow"
    );
    Outcome {
        read: stats.read,
        records_read: cap.records_read(),
        error,
    }
}

/// One case for the worker pool.
type Case = Box<dyn FnOnce() + Send>;

/// Runs cases on two threads; fails on the first panic (naming its case) or on a case that
/// does not end within [`CASE_BOUND`].
fn run_cases(cases: Vec<(String, Case)>) {
    let total = cases.len();
    let queue = Arc::new(std::sync::Mutex::new(cases.into_iter()));
    let (tx, rx) = mpsc::channel::<(String, Result<(), String>)>();
    let started = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    for _ in 0..2 {
        let queue = Arc::clone(&queue);
        let tx = tx.clone();
        let started = Arc::clone(&started);
        let running = Arc::clone(&running);
        std::thread::spawn(move || {
            loop {
                let next = queue.lock().unwrap().next();
                let Some((name, case)) = next else { break };
                started.fetch_add(1, Ordering::SeqCst);
                running.lock().unwrap().push(name.clone());
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(case));
                running.lock().unwrap().retain(|n| *n != name);
                let r = r.map_err(|e| {
                    e.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panic".into())
                });
                if tx.send((name, r)).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    for _ in 0..total {
        match rx.recv_timeout(CASE_BOUND) {
            Ok((_, Ok(()))) => {}
            Ok((name, Err(msg))) => panic!("{name}: {msg}"),
            Err(_) => panic!(
                "a damaged capture did not finish within {CASE_BOUND:?} ({} of {total} cases \
                 started; running: {:?})",
                started.load(Ordering::SeqCst),
                running.lock().unwrap()
            ),
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().to_string()
}

/// `editcap -E rate --seed seed` of a capture, in its own format.
fn editcap_corrupt(src: &Path, dir: &Path, rate: &str, seed: u32) -> PathBuf {
    let ext = src.extension().unwrap().to_string_lossy().to_string();
    let dst = dir.join(format!("{}.E{rate}.{ext}", file_name(src)));
    let format = if ext == "pcapng" { "pcapng" } else { "pcap" };
    let out = Command::new("editcap")
        .args(["-E", rate, "--seed", &seed.to_string(), "-F", format])
        .arg(src)
        .arg(&dst)
        .output()
        .expect("editcap runs (installed by .ci/setup with tshark)");
    assert!(
        out.status.success(),
        "editcap {}: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    dst
}

/// The format of an undamaged capture and the byte offsets at which each of its packets ends
/// (what `bytes_consumed` says after it), so that a cut's expected packet count is known.
fn packet_ends(name: &str, data: &Arc<Vec<u8>>) -> (&'static str, Vec<u64>) {
    let reader = Bytes {
        data: Arc::clone(data),
        end: data.len(),
        pos: 0,
    };
    let mut cap = CaptureFile::from_reader(name.into(), Box::new(reader)).expect("opens");
    let mut ends = Vec::new();
    loop {
        match cap.next_packet() {
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("{name} must read whole: {e}"),
            None => break,
        }
        ends.push(cap.bytes_consumed());
    }
    (cap.format(), ends)
}

/// Offsets to cut a file of `len` bytes at: every one of the first 64, 40 spread over the
/// rest (off the grid, so they rarely land on a record boundary), and the last byte.
fn cut_offsets(len: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..64.min(len)).collect();
    for i in 1..=SPREAD_CUTS {
        v.push((len * i / (SPREAD_CUTS + 1) + (i * 7919) % 97).min(len - 1));
    }
    v.push(len - 1);
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn cut_captures_report_what_came_before_and_name_the_file_and_record() {
    let sigs = Arc::new(SignatureSet::builtin().unwrap());
    let mut cases: Vec<(String, Case)> = Vec::new();
    for path in shared_captures() {
        let name = file_name(&path);
        let data = Arc::new(std::fs::read(&path).unwrap());
        let (format, ends) = packet_ends(&name, &data);
        let ends = Arc::new(ends);
        for cut in cut_offsets(data.len()) {
            let (sigs, data, ends) = (Arc::clone(&sigs), Arc::clone(&data), Arc::clone(&ends));
            let case_name = format!("{name} cut at {cut}");
            let label = format!("{name}.cut{cut}");
            cases.push((
                case_name,
                Box::new(move || {
                    let o = run_core(&sigs, &label, data, cut);
                    let complete = ends.iter().filter(|&&e| e <= cut as u64).count() as u64;
                    assert_eq!(
                        o.read, complete,
                        "every packet before the cut is read, none after"
                    );
                    assert_eq!(o.records_read, o.read);
                    match &o.error {
                        Some(e) => {
                            let record = format!("record {}", complete + 1);
                            assert!(
                                e.contains(&label) && e.contains(&record),
                                "the error names the file and {record}: {e}"
                            );
                        }
                        // A classic pcap is its 24-byte header and records; pcapng has other
                        // blocks between packets, so only pcap's boundaries are all known.
                        None => assert!(
                            format != "pcap" || cut == 24 || ends.contains(&(cut as u64)),
                            "a cut inside a record must be an error"
                        ),
                    }
                }),
            ));
        }
    }
    run_cases(cases);
}

#[test]
fn editcap_corrupted_packets_never_panic_and_keep_counters_consistent() {
    let sigs = Arc::new(SignatureSet::builtin().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut cases: Vec<(String, Case)> = Vec::new();
    for (i, path) in shared_captures().iter().enumerate() {
        let want = tshark_packets(path);
        for (r, rate) in RATES.iter().enumerate() {
            let damaged = editcap_corrupt(path, dir.path(), rate, (i * 3 + r) as u32 + 1);
            let sigs = Arc::clone(&sigs);
            let name = file_name(&damaged);
            cases.push((
                name.clone(),
                Box::new(move || {
                    let data = Arc::new(std::fs::read(&damaged).unwrap());
                    let len = data.len();
                    let o = run_core(&sigs, &name, data, len);
                    // editcap corrupts packet bytes only: the file's framing is intact.
                    assert_eq!(o.error, None, "{name}");
                    assert_eq!(o.read, want, "{name}: every packet is read");
                }),
            ));
        }
    }
    run_cases(cases);
}

/// Deterministic xorshift, so a failing flip pattern reproduces.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn flipped_file_bytes_headers_included_never_panic_or_hang() {
    let sigs = Arc::new(SignatureSet::builtin().unwrap());
    let mut cases: Vec<(String, Case)> = Vec::new();
    for (i, path) in shared_captures().iter().enumerate() {
        let original = std::fs::read(path).unwrap();
        for (k, per_mille) in [1u64, 10].into_iter().enumerate() {
            let mut state = 0x9E37_79B9_7F4A_7C15 ^ ((i as u64) << 8 | k as u64);
            let mut data = original.clone();
            // Keep the magic so the damage is inside the capture, not a foreign file.
            for b in data.iter_mut().skip(4) {
                if xorshift(&mut state) % 1000 < per_mille {
                    *b ^= 1 << (xorshift(&mut state) % 8);
                }
            }
            let sigs = Arc::clone(&sigs);
            let name = format!("{}.flip{per_mille}permille", file_name(path));
            cases.push((
                name.clone(),
                Box::new(move || {
                    let data = Arc::new(data);
                    let len = data.len();
                    let o = run_core(&sigs, &name, data, len);
                    assert_eq!(o.records_read, o.read);
                    if let Some(e) = &o.error {
                        assert!(e.contains(&name), "the error names the input: {e}");
                    }
                }),
            ));
        }
    }
    run_cases(cases);
}

/// Runs the binary with a time bound and returns (exit code, stdout, stderr).
fn appletap_bounded(args: &[String]) -> (Option<i32>, Vec<u8>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_appletap"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).map(|_| v)
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).map(|_| s)
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > BINARY_BOUND {
            let _ = child.kill();
            panic!("appletap {args:?} did not finish within {BINARY_BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_reader.join().unwrap().unwrap();
    let stderr = err_reader.join().unwrap().unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (status.code(), stdout, stderr)
}

/// The report's counters agree with each other.
fn check_report_counters(report: &Value) {
    let t = &report["totals"];
    let read = t["packets_read"].as_u64().unwrap();
    let decoded = t["packets_decoded"].as_u64().unwrap();
    let skipped = t["packets_skipped"].as_u64().unwrap();
    let by_reason: u64 = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["packets"].as_u64().unwrap())
        .sum();
    assert_eq!(read, decoded + skipped, "read = decoded + skipped");
    assert_eq!(skipped, by_reason, "skipped = sum of the reasons");
    let in_services: u64 = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["packets"].as_u64().unwrap())
        .sum();
    assert_eq!(in_services, decoded, "every decoded packet is in a flow");
    let per_input: u64 = report["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["packets"].as_u64().unwrap())
        .sum();
    assert_eq!(per_input, read, "inputs' packets add up to packets read");
}

#[test]
fn the_binary_reports_damaged_captures_with_consistent_counters() {
    let dir = tempfile::tempdir().unwrap();
    let captures = shared_captures();
    // Every capture at 5 % corruption, in one invocation: all read in full.
    let mut args: Vec<String> = vec!["read".into(), "--format".into(), "json".into()];
    let mut want = 0;
    for (i, path) in captures.iter().enumerate() {
        let damaged = editcap_corrupt(path, dir.path(), "0.05", 1000 + i as u32);
        args.push(damaged.display().to_string());
        want += tshark_packets(path);
    }
    let (code, stdout, stderr) = appletap_bounded(&args);
    assert_eq!(code, Some(0), "{stderr}");
    let report: Value = serde_json::from_slice(&stdout).expect("one JSON document");
    check_report_counters(&report);
    assert_eq!(report["totals"]["packets_read"], want);

    // A sample of cut captures, one invocation: each input reports its own error.
    let mut args: Vec<String> = vec!["read".into(), "--format".into(), "json".into()];
    let mut cuts = Vec::new();
    for path in captures.iter().step_by(4) {
        let data = std::fs::read(path).unwrap();
        for frac in [3, 7] {
            let cut = data.len() * frac / 10 + 5;
            let p = dir.path().join(format!("cut{cut}-{}", file_name(path)));
            std::fs::write(&p, &data[..cut]).unwrap();
            args.push(p.display().to_string());
            cuts.push(p);
        }
    }
    let (code, stdout, stderr) = appletap_bounded(&args);
    assert_eq!(code, Some(1), "a file not fully read exits 1: {stderr}");
    let report: Value = serde_json::from_slice(&stdout).expect("one JSON document");
    check_report_counters(&report);
    let inputs = report["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), cuts.len());
    for (input, path) in inputs.iter().zip(&cuts) {
        let name = path.display().to_string();
        let err = input["error"].as_str().unwrap_or("");
        assert!(
            err.contains(&name) && err.contains("record"),
            "{name}: the error names the file and the record: {err:?}"
        );
        assert!(stderr.contains(err), "the error is on standard error too");
    }
}

/// A pcapng whose interface counts time in whole seconds (`if_tsresol` 0) and whose one
/// packet (a raw IPv4/UDP datagram) is stamped 2^40 s: beyond 2^64 ns, so the reader's
/// timestamp saturates.
fn pcapng_with_saturating_timestamp() -> Vec<u8> {
    fn block(ty: u32, body: &[u8]) -> Vec<u8> {
        let len = (12 + body.len()) as u32;
        let mut b = ty.to_le_bytes().to_vec();
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(body);
        b.extend_from_slice(&len.to_le_bytes());
        b
    }
    let mut shb = vec![0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0];
    shb.extend_from_slice(&[0xff; 8]); // section length unknown
    let mut idb = 101u16.to_le_bytes().to_vec(); // LINKTYPE_RAW
    idb.extend_from_slice(&[0, 0]);
    idb.extend_from_slice(&0u32.to_le_bytes());
    idb.extend_from_slice(&[9, 0, 1, 0, 0, 0, 0, 0]); // if_tsresol = 10^0: seconds
    idb.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
    let packet: [u8; 29] = [
        0x45, 0, 0, 29, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x9c, 0x40, 0x30, 0x39,
        0, 9, 0, 0, b'x',
    ];
    let ts: u64 = 1 << 40;
    let mut epb = 0u32.to_le_bytes().to_vec();
    epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
    epb.extend_from_slice(&(ts as u32).to_le_bytes());
    epb.extend_from_slice(&(packet.len() as u32).to_le_bytes());
    epb.extend_from_slice(&(packet.len() as u32).to_le_bytes());
    epb.extend_from_slice(&packet);
    epb.extend_from_slice(&[0, 0, 0]); // pad to 32 bits
    let mut file = block(0x0a0d_0d0a, &shb);
    file.extend(block(1, &idb));
    file.extend(block(6, &epb));
    file
}

#[test]
fn a_timestamp_past_the_end_of_u64_nanoseconds_reads_without_overflow() {
    // Found by fuzzing (capture_file): `Timestamp::as_secs_f64` adds 500 ns to the saturated
    // u64::MAX and overflows when the flow record is made.
    let data = pcapng_with_saturating_timestamp();
    let sigs = Arc::new(SignatureSet::builtin().unwrap());
    let len = data.len();
    let o = run_core(&sigs, "saturating.pcapng", Arc::new(data.clone()), len);
    // Read as a packet of the far future, or refused as damage that names the record.
    if let Some(e) = &o.error {
        assert!(e.contains("record 1"), "{e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("saturating.pcapng");
    std::fs::write(&path, &data).unwrap();
    let args = [
        "read".to_string(),
        "--flows".into(),
        "-".into(),
        path.display().to_string(),
    ];
    let (code, stdout, stderr) = appletap_bounded(&args);
    assert!(code == Some(0) || code == Some(1), "{stderr}");
    if code == Some(0) {
        let record: Value = serde_json::from_slice(&stdout).expect("one flow record");
        // Not wrapped round to 1970.
        assert!(record["first_ts"].as_f64().unwrap() > 1e10, "{record}");
    }
}
