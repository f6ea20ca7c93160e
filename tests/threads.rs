//! Offline output is the same for every number of worker threads: the same report (flows,
//! labels, totals, Bonjour) and the same flow records, on every shared capture.

mod common;

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
    read_with_records(threads, &[], paths)
}

#[test]
fn read_output_is_identical_for_1_to_5_threads() {
    // From 2 threads on, one reads files longer than a block ahead (two shared captures are);
    // the others classify inline (2) or dispatch to 1, 2 or 3 workers (3, 4, 5).
    for path in shared_captures() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let (report1, flows1) = run("1", &path);
        assert!(!flows1.is_empty(), "{name}: no flows");
        for t in ["2", "3", "4", "5"] {
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

#[test]
fn a_capture_read_twice_has_twice_its_flows_for_any_thread_count() {
    // The second pass goes back 102 s in packet time: a new stretch of capture, not one flow per
    // packet (every packet was idle by the clock before, and nothing was swept).
    let path = shared_pcaps().join("ndpi__android.pcap");
    let totals =
        |report: &str| serde_json::from_str::<serde_json::Value>(report).unwrap()["totals"].clone();
    let (once, _) = run("1", &path);
    let once = totals(&once);
    let (report1, flows1) = run_many("1", &[path.clone(), path.clone()]);
    let twice = totals(&report1);
    assert_eq!(twice["flows"], once["flows"].as_u64().unwrap() * 2);
    assert_eq!(twice["clock_restarts"], 1);
    assert_eq!(once["clock_restarts"], 0);
    for t in ["2", "3"] {
        let (report, flows) = run_many(t, &[path.clone(), path.clone()]);
        assert_eq!(report, report1, "report with --threads {t}");
        same_records(&flows1, &flows, &format!("flow records with --threads {t}"));
    }
}
