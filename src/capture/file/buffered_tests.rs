//! The fast path of classic pcap, [`CaptureFile::buffered_packets`], against
//! [`CaptureFile::next_packet`]: read as `read` reads (the buffered records in runs of up to
//! `max`, then one the slow way), every capture gives the same packets, offsets and errors,
//! with and without reading ahead, whole and cut short.

use std::path::Path;

use super::tests::{Owned, read_all, shared_captures};
use super::*;

fn owned(p: &Packet<'_>) -> Owned {
    let (ts, link, data, orig_len) = (p.ts.0, p.link.0, p.data.to_vec(), p.orig_len);
    Owned {
        ts,
        link,
        data,
        orig_len,
    }
}

/// Reads `cap` as `app/read.rs` does, runs of at most `max` buffered packets at a time.
fn read_fast(mut cap: CaptureFile, max: u64, ahead: bool) -> (Vec<Owned>, Option<String>, u64) {
    if ahead {
        cap.input.read_ahead();
    }
    let mut packets = Vec::new();
    let error = loop {
        let took = cap.buffered_packets(max, |p| packets.push(owned(p)));
        if took == max {
            continue;
        }
        match cap.next_packet() {
            Some(Ok(p)) => packets.push(owned(&p)),
            Some(Err(e)) => break Some(e.to_string()),
            None => break None,
        }
    };
    (packets, error, cap.bytes_consumed())
}

fn read_slow(path: &Path) -> (Vec<Owned>, Option<String>, u64) {
    let mut cap = CaptureFile::open(path).unwrap();
    let (packets, error) = read_all(&mut cap);
    (packets, error.map(|e| e.to_string()), cap.bytes_consumed())
}

#[test]
fn buffered_records_read_as_one_at_a_time_on_every_shared_capture_whole_and_cut() {
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.pcap");
    let mut fast = 0;
    for path in shared_captures() {
        let bytes = std::fs::read(&path).unwrap();
        // Whole, and cut in the middle (inside some record).
        std::fs::write(&cut, &bytes[..bytes.len() / 2 + 7]).unwrap();
        for file in [path.as_path(), cut.as_path()] {
            let want = read_slow(file);
            for (max, ahead) in [(1, false), (7, false), (8192, false), (8192, true)] {
                let got = read_fast(CaptureFile::open(file).unwrap(), max, ahead);
                assert_eq!(got, want, "{} max {max} ahead {ahead}", path.display());
            }
        }
        let mut cap = CaptureFile::open(&path).unwrap();
        if cap.buffered_packets(u64::MAX, |_| {}) > 0 {
            fast += 1;
            assert!(cap.format() == "pcap");
        }
    }
    // The fast path is taken (little-endian classic pcap), not only the slow one.
    assert!(fast >= 20, "the fast path read only {fast} captures");
}
