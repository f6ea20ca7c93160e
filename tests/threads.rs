//! Offline output is the same for every number of worker threads: the same report (flows,
//! labels, totals, Bonjour) and the same flow records, on every shared capture.

mod common;

use std::process::Command;

use common::*;

/// Asserts two sorted record lists are equal, showing only the first difference.
fn same_records(a: &[String], b: &[String], what: &str) {
    if let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
        panic!(
            "{what}: {} vs {} records; first difference at #{i}:\n  1 thread: {:?}\n  N threads: {:?}",
            a.len(),
            b.len(),
            a.get(i),
            b.get(i)
        );
    }
}

fn run(threads: &str, path: &std::path::Path) -> (String, Vec<String>) {
    run_many(threads, &[path.to_path_buf()])
}

fn run_many(threads: &str, paths: &[std::path::PathBuf]) -> (String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let flows = dir.path().join("flows.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_appletap"))
        .args(["read", "--format", "json", "--threads", threads, "--flows"])
        .arg(&flows)
        .args(paths)
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Records leave workers as flows end, so their order depends on the threads; the set
    // of records does not.
    let mut records: Vec<String> = std::fs::read_to_string(&flows)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    records.sort();
    (String::from_utf8(out.stdout).unwrap(), records)
}

#[test]
fn read_output_is_identical_for_1_2_3_and_4_threads() {
    // 2 and 3: the reading thread classifies a share of the flows beside 1 or 2 workers;
    // 4: it only dispatches, to 3 workers.
    for path in shared_captures() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let (report1, flows1) = run("1", &path);
        assert!(!flows1.is_empty(), "{name}: no flows");
        for t in ["2", "3", "4"] {
            let (report, flows) = run(t, &path);
            assert_eq!(report, report1, "{name}: report with --threads {t}");
            same_records(
                &flows1,
                &flows,
                &format!("{name}: flow records with --threads {t}"),
            );
        }
    }
}

#[test]
fn all_captures_in_one_run_are_identical_for_1_2_and_4_threads() {
    // Many flows and DNS answers interleaved across workers in one run.
    let all = shared_captures();
    let (report1, flows1) = run_many("1", &all);
    for t in ["2", "4"] {
        let (report, flows) = run_many(t, &all);
        assert_eq!(report, report1, "report with --threads {t}");
        same_records(&flows1, &flows, &format!("flow records with --threads {t}"));
    }
}
