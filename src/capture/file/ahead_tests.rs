//! Reading ahead on a thread (`capture/ahead.rs`) against reading directly: the same packets,
//! offsets and errors on the shared captures longer than a buffer, on records longer than the
//! headroom cut by block ends, on files cut short, and on a read that fails.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::tests::{Owned, read_all, shared};
use super::*;
use crate::capture::buffer::BUFFER_LEN;
use crate::testing::xorshift;

/// Every packet, the error that ended the file and the offset reached, read with or without
/// reading ahead.
fn read(mut capture: CaptureFile, ahead: bool) -> (Vec<Owned>, Option<String>, u64) {
    if ahead {
        // The input itself, so that a stream of unknown length reads ahead too.
        capture.input.read_ahead();
    }
    let (packets, error) = read_all(&mut capture);
    (
        packets,
        error.map(|e| e.to_string()),
        capture.bytes_consumed(),
    )
}

fn both(path: &Path) -> [(Vec<Owned>, Option<String>, u64); 2] {
    [false, true].map(|ahead| read(CaptureFile::open(path).unwrap(), ahead))
}

#[test]
fn read_ahead_gives_what_direct_reads_give_on_the_shared_captures_longer_than_a_buffer() {
    let dirs = ["pcaps", "pcaps-more"]
        .map(|d| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared")).join(d));
    let mut checked = 0;
    for dir in dirs {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.to_string_lossy().to_string();
            let long = std::fs::metadata(&path).unwrap().len() > BUFFER_LEN as u64;
            if !long || !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
                continue;
            }
            let [direct, ahead] = both(&path);
            assert!(direct.0.len() > 1000, "{name}");
            assert_eq!(direct, ahead, "{name}");
            checked += 1;
        }
    }
    assert!(
        checked >= 2,
        "only {checked} shared captures longer than a buffer"
    );
}

/// A classic pcap (snaplen 262,144) of `n` records of pseudo-random lengths, every 37th longer
/// than the read-ahead headroom (64 KiB), so that records cross block ends both ways.
fn long_records_pcap(n: usize) -> Vec<u8> {
    // Header: magic, version 2.4, zone, accuracy, snaplen, Ethernet.
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4_u32.to_le_bytes());
    out.extend_from_slice(&[2, 0, 4, 0]);
    for v in [0_u32, 0, 262_144, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let mut s = 0x9e37_79b9_7f4a_7c15;
    for i in 0..n {
        s = xorshift(s);
        let len = if i % 37 == 0 {
            70_000 + (s % 190_000) as usize
        } else {
            60 + (s % 1_500) as usize
        };
        for v in [i as u32, (s % 1_000_000) as u32, len as u32, len as u32 + 4] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend((0..len).map(|k| (k as u64 ^ s) as u8));
    }
    out
}

#[test]
fn records_longer_than_the_headroom_and_files_cut_anywhere_read_ahead_as_directly() {
    let bytes = long_records_pcap(3_000);
    assert!(bytes.len() > 5 * BUFFER_LEN, "{}", bytes.len());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.pcap");
    // Whole, then cut in a record header, in a long record's bytes, and in a short one's.
    let mut s = 7;
    let mut cuts = vec![bytes.len()];
    for _ in 0..6 {
        s = xorshift(s);
        cuts.push(BUFFER_LEN + (s as usize % (bytes.len() - BUFFER_LEN)));
    }
    for cut in cuts {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let [direct, ahead] = both(&path);
        assert!(!direct.0.is_empty());
        assert_eq!(direct.1.is_some(), cut < bytes.len(), "cut at {cut}");
        assert_eq!(direct, ahead, "cut at {cut}");
    }
}

/// The bytes of `data`, then an error instead of the rest.
struct FailingAfter {
    data: Vec<u8>,
    at: usize,
    fail_at: usize,
}

impl Read for FailingAfter {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at >= self.fail_at {
            return Err(io::Error::other("the disk went away"));
        }
        let n = out.len().min(self.fail_at - self.at);
        out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn a_failed_read_ahead_comes_after_every_packet_read_before_it() {
    let data = std::fs::read(shared("ndpi__1kxun.pcap")).unwrap();
    let fail_at = data.len() * 2 / 3;
    let open = || {
        let r = FailingAfter {
            data: data.clone(),
            at: 0,
            fail_at,
        };
        CaptureFile::from_reader("failing.pcap".into(), Box::new(r)).unwrap()
    };
    let direct = read(open(), false);
    let ahead = read(open(), true);
    let error = direct.1.clone().expect("an error");
    assert!(error.contains("the disk went away"), "{error}");
    assert!(direct.0.len() > 1000);
    assert_eq!(direct, ahead);
}

/// At most 1,000 bytes a read: a first read this short leaves fewer bytes before the first
/// block read ahead than the headroom it copies the cut record into.
struct Trickle(io::Cursor<Vec<u8>>);

impl Read for Trickle {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = out.len().min(1_000);
        self.0.read(&mut out[..n])
    }
}

#[test]
fn read_ahead_after_a_short_first_read_keeps_the_offsets() {
    let data = std::fs::read(shared("ndpi__1kxun.pcap")).unwrap();
    let open = || {
        let r = Trickle(io::Cursor::new(data.clone()));
        CaptureFile::from_reader("trickle.pcap".into(), Box::new(r)).unwrap()
    };
    let direct = read(open(), false);
    let ahead = read(open(), true);
    assert_eq!(direct.1, None);
    assert_eq!(direct.2, data.len() as u64);
    assert_eq!(direct, ahead);
}
