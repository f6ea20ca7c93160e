//! Helpers shared by the integration tests: where the shared captures are, and running the
//! library core or the binary over a capture.
// Included by several test crates, each using a part; `pub` is for the including crate.
#![allow(dead_code, unreachable_pub)]

pub mod netns;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use appletap::capture::file::CaptureFile;
use appletap::counters::PacketStats;
use appletap::pipeline::{Engine, EngineConfig};
use appletap::report::record::FlowRecord;
use appletap::signature::SignatureSet;

/// `../shared/pcaps` from the crate root.
pub fn shared_pcaps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps")
}

/// Every capture in the shared folder, sorted.
pub fn shared_captures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(shared_pcaps())
        .expect("../shared/pcaps must exist beside the project")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.ends_with(".pcap") || n.ends_with(".pcapng")
        })
        .collect();
    v.sort();
    assert!(
        v.len() >= 30,
        "expected the shared captures, found {}",
        v.len()
    );
    v
}

/// The packet count tshark reported for a capture (its `.tshark.txt` companion).
pub fn tshark_packets(capture: &Path) -> u64 {
    let companion = PathBuf::from(format!("{}.tshark.txt", capture.display()));
    let text = std::fs::read_to_string(&companion).expect("companion exists");
    text.lines()
        .find_map(|l| {
            let l = l.trim_start();
            l.strip_prefix("packets")
                .and_then(|r| r.trim_start().strip_prefix(':'))
                .map(|n| n.trim().parse::<u64>().expect("count"))
        })
        .expect("packets line")
}

/// Result of running the core over one capture.
pub struct Run {
    pub records: Vec<FlowRecord>,
    pub stats: PacketStats,
    pub error: Option<String>,
}

/// Runs the library core over a capture with the built-in signatures.
pub fn run_engine(path: &Path) -> Run {
    let sigs = Arc::new(SignatureSet::builtin().expect("built-in signatures"));
    let mut engine = Engine::new(sigs, EngineConfig::default());
    let mut cap = CaptureFile::open(path).expect("opens");
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
    Run {
        records: engine.take_finished(),
        stats: engine.stats(),
        error,
    }
}

/// Runs the built binary.
pub fn appletap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_appletap"))
        .args(args)
        .output()
        .expect("runs")
}

/// `appletap read --format json --threads N --flows F EXTRA... PATHS...`: the report as printed
/// and the flow records, sorted (records leave workers as flows end, so their order depends on
/// the threads; the set of records does not).
pub fn read_with_records(
    threads: &str,
    extra: &[&str],
    paths: &[PathBuf],
) -> (String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let flows = dir.path().join("flows.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_appletap"))
        .args(["read", "--format", "json", "--threads", threads, "--flows"])
        .arg(&flows)
        .args(extra)
        .args(paths)
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut records: Vec<String> = std::fs::read_to_string(&flows)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    records.sort();
    (String::from_utf8(out.stdout).unwrap(), records)
}
