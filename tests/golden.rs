//! Golden outputs: the JSON report, the table and the flow records of a few shared captures
//! must stay exactly as committed in `tests/golden/`. After an intended change, regenerate
//! with `UPDATE_GOLDEN=1 cargo test --test golden` and review the diff.

use std::path::Path;
use std::process::Command;

fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_appletap"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with UPDATE_GOLDEN=1", path.display()));
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from the golden file at line {}:\n  golden: {:?}\n  actual: {:?}\n(UPDATE_GOLDEN=1 regenerates)",
            first + 1,
            expected.lines().nth(first),
            actual.lines().nth(first)
        );
    }
}

const CAPTURES: [&str; 5] = [
    "ndpi__iphone.pcap",
    "ndpi__anyconnect-vpn.pcap",
    "zeek__pppoe-over-qinq.pcap",
    "tcpdump__LINKTYPE_PKTAP.pcap",
    "sv__tcp-fastopen-10-syn-data-ignore__input.pcap",
];

#[test]
fn json_reports_match_golden() {
    for c in CAPTURES {
        let path = format!("../shared/pcaps/{c}");
        golden(
            &format!("{c}.report.json"),
            &run(&["read", "--format", "json", &path]),
        );
    }
}

#[test]
fn flow_records_match_golden() {
    for c in CAPTURES {
        let path = format!("../shared/pcaps/{c}");
        golden(
            &format!("{c}.flows.jsonl"),
            // One worker: records come out in the order flows end, which is then fixed.
            &run(&["read", "--threads", "1", "--flows", "-", &path]),
        );
    }
}

#[test]
fn table_matches_golden() {
    golden(
        "iphone.table.txt",
        &run(&["read", "fixtures/sample/iphone.pcap"]),
    );
}
