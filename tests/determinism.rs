//! The output of a capture does not depend on the number of threads, nor on one wild
//! timestamp: restarts of packet time reach every worker, evictions happen per key-space
//! shard, and a packet whose time fits neither the clock nor a new stretch is an outlier.
//! All on real bytes: the shared captures, read twice, merged, or with one record re-stamped.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// `appletap read` as JSON with flow records; the report and the sorted records.
fn read(threads: &str, extra: &[&str], paths: &[PathBuf]) -> (serde_json::Value, Vec<String>) {
    let (report, records) = read_with_records(threads, extra, paths);
    (serde_json::from_str(&report).unwrap(), records)
}

const THREADS: [&str; 5] = ["2", "3", "5", "8", "64"];

fn same_for_every_thread_count(what: &str, extra: &[&str], paths: &[PathBuf]) -> serde_json::Value {
    let (report1, records1) = read("1", extra, paths);
    for t in THREADS {
        let (report, records) = read(t, extra, paths);
        assert_eq!(report, report1, "{what}: report with --threads {t}");
        if let Some(i) =
            (0..records1.len().max(records.len())).find(|&i| records1.get(i) != records.get(i))
        {
            panic!(
                "{what}: {} vs {} records with --threads {t}; first difference:\n  1: {:?}\n  {t}: {:?}",
                records1.len(),
                records.len(),
                records1.get(i),
                records.get(i)
            );
        }
    }
    report1
}

#[test]
fn a_short_capture_twice_then_another_is_the_same_for_any_thread_count() {
    // The case that gave 68 records at 1 thread, 67 at 5, 65 at 8 and 62 at 64: the second
    // copy restarts packet time, and every worker must end its flows there, not only those
    // that get a packet of the second copy.
    let iphone = shared_pcaps().join("ndpi__iphone.pcap");
    let other = shared_pcaps().join("ndpi__safari.pcap");
    let report = same_for_every_thread_count(
        "iphone twice, then safari",
        &[],
        &[iphone.clone(), iphone, other],
    );
    // The second copy steps back (a restart); safari, recorded later, steps forward.
    assert_eq!(
        report["totals"]["clock_restarts"], 1,
        "{}",
        report["totals"]
    );
}

#[test]
fn merged_shared_captures_with_evictions_and_expiries_are_the_same_for_any_thread_count() {
    // Every shared capture, twice over: many restarts, idle expiries within the long captures,
    // and a flow cap small enough that every shard evicts.
    let mut all = shared_captures();
    all.extend(shared_captures());
    let report = same_for_every_thread_count(
        "all captures twice, --max-flows 200",
        &["--max-flows", "200"],
        &all,
    );
    let totals = &report["totals"];
    assert!(totals["flows_evicted"].as_u64().unwrap() > 50, "{totals}");
    assert!(totals["clock_restarts"].as_u64().unwrap() > 10, "{totals}");
}

#[test]
fn a_capture_shorter_than_a_minute_read_twice_has_exactly_twice_its_flows() {
    // 48 s of capture: the second copy steps back less than a minute, which merged the two
    // copies' flows before; a new input that starts before the last one ended is a new
    // stretch of capture.
    let iphone = shared_pcaps().join("ndpi__iphone.pcap");
    let (once, records_once) = read("1", &[], std::slice::from_ref(&iphone));
    let (twice, records_twice) = read("1", &[], &[iphone.clone(), iphone]);
    assert_eq!(
        twice["totals"]["flows"].as_u64().unwrap(),
        2 * once["totals"]["flows"].as_u64().unwrap()
    );
    assert_eq!(twice["totals"]["clock_restarts"], 1);
    let doubled: Vec<String> = records_once
        .iter()
        .flat_map(|r| [r.clone(), r.clone()])
        .collect();
    assert_eq!(
        records_twice, doubled,
        "each flow twice, exactly as read once"
    );
}

/// The records of a classic little-endian pcap: (header, records), each record whole.
fn pcap_records(path: &Path) -> (Vec<u8>, Vec<Vec<u8>>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian µs pcap"
    );
    let mut records = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let incl = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        records.push(bytes[at..at + 16 + incl].to_vec());
        at += 16 + incl;
    }
    (bytes[..24].to_vec(), records)
}

/// Index of the first record that is an Ethernet/IPv4/UDP DNS query to port 53.
fn dns_query(records: &[Vec<u8>]) -> usize {
    records
        .iter()
        .position(|r| {
            let f = &r[16..];
            f.len() > 42 && f[12..14] == [0x08, 0x00] && f[23] == 17 && f[36..38] == [0, 53]
        })
        .expect("a DNS query over IPv4")
}

/// The capture with one extra record: a copy of a DNS query from another source port (an
/// unrelated flow), stamped `secs`, inserted in the middle.
fn with_wild_timestamp(secs: u32) -> (PathBuf, tempfile::TempDir) {
    let (header, mut records) = pcap_records(&shared_pcaps().join("ndpi__iphone.pcap"));
    let mut wild = records[dns_query(&records)].clone();
    wild[0..4].copy_from_slice(&secs.to_le_bytes());
    // UDP source port (Ethernet 14 + IPv4 20 bytes in): a flow of its own.
    wild[16 + 34..16 + 36].copy_from_slice(&4242u16.to_be_bytes());
    let middle = records.len() / 2;
    records.insert(middle, wild);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wild.pcap");
    let mut out = header;
    for r in records {
        out.extend_from_slice(&r);
    }
    std::fs::write(&path, out).unwrap();
    (path, dir)
}

#[test]
fn one_wild_timestamp_is_an_outlier_that_splits_no_flow() {
    let original = shared_pcaps().join("ndpi__iphone.pcap");
    let (_, before) = read("1", &[], &[original]);
    // 2100-01-01 and the epoch: one packet each, among packets of 2019.
    for secs in [4_102_444_800u32, 0] {
        let (path, _dir) = with_wild_timestamp(secs);
        let report = same_for_every_thread_count(
            &format!("stamped {secs}"),
            &[],
            std::slice::from_ref(&path),
        );
        let totals = &report["totals"];
        assert_eq!(totals["clock_outliers"], 1, "{totals}");
        assert_eq!(totals["clock_restarts"], 0, "{totals}");
        let (_, after) = read("1", &[], &[path]);
        // Every flow of the capture is still there, whole (an iCloud flow kept its name
        // evidence); the outlier is one flow more, counted at the capture's time.
        let extra: Vec<&String> = after.iter().filter(|r| !before.contains(r)).collect();
        assert_eq!(extra.len(), 1, "one new flow: {extra:?}");
        assert!(extra[0].contains("\"client_port\":4242"), "{}", extra[0]);
        assert!(
            !extra[0].contains(&format!("\"first_ts\":{secs}")),
            "the outlier is counted at the capture's time: {}",
            extra[0]
        );
        assert!(
            before.iter().all(|r| after.contains(r)),
            "no flow split or changed"
        );
        assert!(
            after.iter().any(|r| r.contains("icloud.com")),
            "iCloud flows keep their names"
        );
    }
}

#[test]
fn a_real_gap_in_packet_time_is_believed_once_packets_after_it_agree() {
    // The iPhone capture, then the same packets 10 minutes later (a quiet network): forward
    // by more than the longest idle timeout, confirmed by the packets after it. Nothing is an
    // outlier; the first copy's flows expire as idle and the second copy's are new.
    let (header, records) = pcap_records(&shared_pcaps().join("ndpi__iphone.pcap"));
    let mut out = header;
    for r in &records {
        out.extend_from_slice(r);
    }
    for r in &records {
        let mut later = r.clone();
        let secs = u32::from_le_bytes(later[0..4].try_into().unwrap()) + 600;
        later[0..4].copy_from_slice(&secs.to_le_bytes());
        out.extend_from_slice(&later);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gap.pcap");
    std::fs::write(&path, out).unwrap();
    let (once, _) = read("1", &[], &[shared_pcaps().join("ndpi__iphone.pcap")]);
    let report = same_for_every_thread_count("a 10-minute gap", &[], &[path]);
    let totals = &report["totals"];
    assert_eq!(totals["clock_outliers"], 0, "{totals}");
    assert_eq!(totals["clock_restarts"], 0, "{totals}");
    assert_eq!(
        totals["flows"].as_u64().unwrap(),
        2 * once["totals"]["flows"].as_u64().unwrap()
    );
}

#[test]
fn the_device_inventory_at_its_cap_is_the_same_for_any_thread_count() {
    // Every shared capture, with a device cap small enough that both the identities and the
    // flow tables leave devices out: which ones must not depend on the split.
    let report = same_for_every_thread_count(
        "all captures, --max-devices 5",
        &["--max-devices", "5"],
        &shared_captures(),
    );
    let d = &report["devices"];
    assert_eq!(d["max_devices"], 5, "{d}");
    assert!(d["devices"].as_array().unwrap().len() <= 10, "{d}");
    assert!(d["flows_dropped"].as_u64().unwrap() > 100, "{d}");
    assert!(d["announcements_dropped"].as_u64().unwrap() > 10, "{d}");
}
