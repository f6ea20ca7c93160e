//! The capture-file reader against tshark's reading of the shared captures and fixtures, and on
//! files cut at every offset, damaged headers, hand-built pcapng, trickling readers and buffers
//! held while it reads on.

use super::*;
use std::io::{Cursor, Write};
use std::sync::Arc;

use crate::capture::buffer::{BUFFER_LEN, SMALL_FILE_SLACK, SharedBuffer};
use crate::capture::pcap::{
    PCAP_FILE_HEADER_LEN, PCAP_MAGIC_NSEC_BE, PCAP_MAGIC_USEC_BE, PCAP_MAGIC_USEC_LE,
};
use crate::capture::pcapng::{
    BT_ENHANCED_PACKET, BT_INTERFACE_DESCRIPTION, BT_PACKET, BT_SECTION_HEADER, BT_SIMPLE_PACKET,
    BYTE_ORDER_MAGIC_BE, OPT_IF_TSOFFSET, OPT_IF_TSRESOL,
};
use crate::capture::{LinkType, MAX_CAPLEN};
use crate::wire::reader::Order;

/// The shared real-world captures. The crate root sits next to `shared/` (in the main
/// repository as in a scratch crate that links it), so this one path serves both.
const PCAPS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/pcaps");
/// Link-layer fixtures made by `fixtures/make_link_fixtures.py`.
const FIXTURES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/link");

/// A packet copied out of the reader, for comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Owned {
    pub(super) ts: u64,
    pub(super) link: u32,
    pub(super) data: Vec<u8>,
    pub(super) orig_len: u32,
}

pub(super) fn read_all(capture: &mut CaptureFile) -> (Vec<Owned>, Option<CaptureError>) {
    let mut packets = Vec::new();
    while let Some(next) = capture.next_packet() {
        match next {
            Ok(p) => packets.push(Owned {
                ts: p.ts.0,
                link: p.link.0,
                data: p.data.to_vec(),
                orig_len: p.orig_len,
            }),
            Err(e) => {
                // After an error the capture is finished.
                assert!(capture.next_packet().is_none());
                return (packets, Some(e));
            }
        }
    }
    (packets, None)
}

pub(super) fn from_bytes(bytes: &[u8]) -> Result<CaptureFile, CaptureError> {
    CaptureFile::from_reader("test.cap".to_owned(), Box::new(Cursor::new(bytes.to_vec())))
}

pub(super) fn read_path(path: &Path) -> (Vec<Owned>, Option<CaptureError>) {
    let mut capture = CaptureFile::open(path).unwrap();
    read_all(&mut capture)
}

pub(super) fn shared(name: &str) -> PathBuf {
    Path::new(PCAPS_DIR).join(name)
}

pub(super) fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES_DIR).join(name)
}

pub(super) fn shared_captures() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(PCAPS_DIR)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.ends_with(".pcap") || name.ends_with(".pcapng")
        })
        .collect();
    paths.sort();
    paths
}

/// A reader that hands out at most `chunk` bytes per call, like a pipe.
pub(super) struct Trickle {
    pub(super) bytes: Vec<u8>,
    pub(super) at: usize,
    pub(super) chunk: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.chunk.min(buf.len()).min(self.bytes.len() - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn trickle(bytes: &[u8], chunk: usize) -> CaptureFile {
    let reader = Trickle {
        bytes: bytes.to_vec(),
        at: 0,
        chunk,
    };
    CaptureFile::from_reader("trickle".to_owned(), Box::new(reader)).unwrap()
}

// ----- tshark summaries -----

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2020-02-23 10:42:32.576659` (UTC) to nanoseconds, and the printed precision in ns.
fn parse_utc(text: &str) -> (u64, u64) {
    let (date, time) = text.trim().split_once(' ').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, frac) = time.split_once('.').unwrap();
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let secs = days_from_civil(d[0], d[1], d[2]) * 86_400 + t[0] * 3600 + t[1] * 60 + t[2];
    let unit = 10u64.pow(9 - frac.len() as u32);
    let nanos = frac.parse::<u64>().unwrap() * unit;
    (secs as u64 * 1_000_000_000 + nanos, unit)
}

/// `1582454599.476232001` to nanoseconds.
fn parse_epoch(text: &str) -> u64 {
    let (secs, frac) = text.split_once('.').unwrap();
    assert_eq!(frac.len(), 9, "{text}");
    secs.parse::<u64>().unwrap() * 1_000_000_000 + frac.parse::<u64>().unwrap()
}

#[test]
fn shared_captures_match_tshark_summaries() {
    let paths = shared_captures();
    assert!(
        paths.len() >= 30,
        "expected the shared captures in {PCAPS_DIR}"
    );
    for path in paths {
        let summary = std::fs::read_to_string(format!("{}.tshark.txt", path.display())).unwrap();
        let field = |key: &str| {
            summary
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|rest| rest.trim_start().trim_start_matches(':').trim().to_owned())
                .unwrap()
        };
        let expected: usize = field("packets").parse().unwrap();
        let mut capture = CaptureFile::open(&path).unwrap();
        let (packets, err) = read_all(&mut capture);
        assert!(err.is_none(), "{}: {err:?}", path.display());
        assert_eq!(packets.len(), expected, "{}", path.display());
        assert_eq!(capture.records_read(), expected as u64);
        assert_eq!(Some(capture.bytes_consumed()), capture.file_len());
        // tshark's "first/last packet" are the earliest and latest timestamps.
        let (first, last) = field("first/last packet")
            .split_once(" / ")
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .unwrap();
        let min = packets.iter().map(|p| p.ts).min().unwrap();
        let max = packets.iter().map(|p| p.ts).max().unwrap();
        for (text, ours) in [(first, min), (last, max)] {
            let (theirs, unit) = parse_utc(&text);
            assert_eq!(ours / unit * unit, theirs, "{}: {text}", path.display());
        }
    }
}

#[test]
fn multi_interface_pcapng_matches_tshark_times() {
    // `tshark -r zeek__pcapng-multi-interface.pcapng -T fields -e frame.time_epoch`:
    // interface 0 counts nanoseconds, interface 1 microseconds.
    let tshark = [
        "1767663089.500330493",
        "1767663089.514291940",
        "1767663437.111897000",
        "1767663437.126460000",
        "1767663437.128303000",
        "1767663437.140942000",
    ];
    let (packets, err) = read_path(&shared("zeek__pcapng-multi-interface.pcapng"));
    assert!(err.is_none());
    let ours: Vec<u64> = packets.iter().map(|p| p.ts).collect();
    let theirs: Vec<u64> = tshark.iter().map(|t| parse_epoch(t)).collect();
    assert_eq!(ours, theirs);
    assert!(packets.iter().all(|p| p.link == LinkType::ETHERNET.0));
}

#[test]
fn mixed_fixture_matches_tshark_times_and_link_types() {
    // `tshark -r fixtures/link/iphone-mixed.pcapng -T fields -e frame.time_epoch`.
    // Section 1: ns Ethernet / us raw IP; section 2: 2^-20 s raw IP / ms Ethernet with
    // if_tsoffset.
    let tshark = [
        "1582454599.476232001",
        "1582454599.477445000",
        "1582454599.477475275",
        "1582454599.542468000",
        "1582454599.568888549",
        "1582454599.573770000",
        "1582454599.585460823",
        "1582454599.593958000",
        "1582454599.595381097",
        "1582454599.602893000",
        "1582454599.603102371",
        "1582454599.632713000",
        "1582454599.740262645",
        "1582454599.740320000",
        "1582454599.740875919",
        "1582454599.740889000",
        "1582454599.741016193",
        "1582454599.741075000",
        "1582454599.741119467",
        "1582454599.741264000",
        "1582454599.741418838",
        "1582454599.741000000",
        "1582454599.773717880",
        "1582454599.773000000",
        "1582454599.774110794",
        "1582454599.774000000",
        "1582454599.774978637",
        "1582454599.775000000",
        "1582454599.776185989",
        "1582454599.776000000",
    ];
    let mut capture = CaptureFile::open(&fixture("iphone-mixed.pcapng")).unwrap();
    assert_eq!(capture.format(), "pcapng");
    let (packets, err) = read_all(&mut capture);
    assert!(err.is_none(), "{err:?}");
    let ours: Vec<u64> = packets.iter().map(|p| p.ts).collect();
    let theirs: Vec<u64> = tshark.iter().map(|t| parse_epoch(t)).collect();
    assert_eq!(ours, theirs);
    let links: Vec<u32> = packets.iter().map(|p| p.link).collect();
    let expected: Vec<u32> = (0..30)
        .map(|i| match (i < 20, i % 2 == 0) {
            (true, true) | (false, false) => LinkType::ETHERNET.0,
            _ => LinkType::RAW.0,
        })
        .collect();
    assert_eq!(links, expected);
}

#[test]
fn nanosecond_and_big_endian_fixtures_read_like_the_original() {
    let (original, _) = read_path(&shared("ndpi__iphone.pcap"));
    let original = &original[293..323];
    // `tshark -r fixtures/link/iphone-nsec.pcap -T fields -e frame.time_epoch`, first three.
    let tshark = [
        "1582454599.476232001",
        "1582454599.477445138",
        "1582454599.477475275",
    ];
    let (nsec, err) = read_path(&fixture("iphone-nsec.pcap"));
    assert!(err.is_none());
    for (i, t) in tshark.iter().enumerate() {
        assert_eq!(nsec[i].ts, parse_epoch(t));
    }
    let (be, err) = read_path(&fixture("iphone-be.pcap"));
    assert!(err.is_none());
    assert_eq!(be, original);
    assert_eq!(nsec.len(), original.len());
    for (n, o) in nsec.iter().zip(original) {
        assert_eq!((&n.data, n.orig_len, n.link), (&o.data, o.orig_len, o.link));
        assert_eq!(n.ts / 1000 * 1000, o.ts, "sub-microsecond digits only");
    }
}

// ----- truncation -----

/// A header or record/block span of a capture: (start, end, is_packet).
type Span = (usize, usize, bool);

/// Record spans of a classic pcap, found independently of the reader.
fn pcap_spans(bytes: &[u8]) -> Vec<Span> {
    let big = bytes[..4] == PCAP_MAGIC_USEC_BE || bytes[..4] == PCAP_MAGIC_NSEC_BE;
    let order = if big { Order::Big } else { Order::Little };
    let mut spans = vec![(0, PCAP_FILE_HEADER_LEN, false)];
    let mut at = PCAP_FILE_HEADER_LEN;
    while at < bytes.len() {
        let caplen = order.u32_at(bytes, at + 8).unwrap() as usize;
        spans.push((at, at + 16 + caplen, true));
        at += 16 + caplen;
    }
    assert_eq!(at, bytes.len());
    spans
}

/// Block spans of a pcapng file, found independently of the reader.
fn pcapng_spans(bytes: &[u8]) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut order = Order::Little;
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at..at + 4] == PCAPNG_MAGIC {
            order = if bytes[at + 8..at + 12] == BYTE_ORDER_MAGIC_BE {
                Order::Big
            } else {
                Order::Little
            };
        }
        let ty = order.u32_at(bytes, at).unwrap();
        let len = order.u32_at(bytes, at + 4).unwrap() as usize;
        let is_packet = matches!(ty, BT_ENHANCED_PACKET | BT_SIMPLE_PACKET | BT_PACKET);
        spans.push((at, at + len, is_packet));
        at += len;
    }
    assert_eq!(at, bytes.len());
    spans
}

/// Cuts `bytes` at every offset and checks the reader returns every complete packet and
/// then, unless the cut falls between records, a Truncated error for the right record at
/// the right offset.
fn check_every_cut(bytes: &[u8], spans: &[Span], step: usize) {
    let mut full = from_bytes(bytes).unwrap();
    let (all, err) = read_all(&mut full);
    assert!(err.is_none());
    for cut in (0..bytes.len()).step_by(step) {
        let complete = spans.iter().filter(|s| s.2 && s.1 <= cut).count();
        let inside = spans.iter().find(|s| s.0 < cut && cut < s.1);
        let result = from_bytes(&bytes[..cut]);
        let (packets, err) = match result {
            Ok(mut capture) => read_all(&mut capture),
            Err(e) => (Vec::new(), Some(e)),
        };
        assert_eq!(packets[..], all[..complete], "cut at {cut}");
        match (inside, cut, err) {
            (
                _,
                0,
                Some(CaptureError::Truncated {
                    record: 1,
                    offset: 0,
                    detail,
                    ..
                }),
            ) => {
                assert_eq!(detail, "the file is empty");
            }
            (
                Some(span),
                _,
                Some(CaptureError::Truncated {
                    record,
                    offset,
                    detail,
                    ..
                }),
            ) => {
                assert_eq!(record, complete as u64 + 1, "cut at {cut}: {detail}");
                assert_eq!(offset, span.0 as u64, "cut at {cut}: {detail}");
                let into = cut - span.0;
                assert!(
                    detail.contains(&format!("ends {into} bytes into")),
                    "cut at {cut}: {detail}"
                );
            }
            (None, _, None) => {}
            (inside, _, err) => panic!("cut at {cut} (inside {inside:?}): {err:?}"),
        }
    }
}

#[test]
fn truncated_pcap_returns_complete_records_then_truncated() {
    for name in ["ndpi__ssdp-m-search-ua.pcap", "ndpi__afp.pcap"] {
        let bytes = std::fs::read(shared(name)).unwrap();
        check_every_cut(&bytes, &pcap_spans(&bytes), 1);
    }
    for name in ["iphone-be.pcap", "iphone-nsec.pcap"] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        check_every_cut(&bytes, &pcap_spans(&bytes), 7);
    }
}

#[test]
fn truncated_pcapng_returns_complete_records_then_truncated() {
    let bytes = std::fs::read(shared("zeek__pcapng-multi-interface.pcapng")).unwrap();
    check_every_cut(&bytes, &pcapng_spans(&bytes), 1);
    let bytes = std::fs::read(fixture("iphone-mixed.pcapng")).unwrap();
    check_every_cut(&bytes, &pcapng_spans(&bytes), 1);
}

#[test]
fn truncation_message_names_file_record_and_offset() {
    let bytes = std::fs::read(shared("ndpi__iphone.pcap")).unwrap();
    let spans = pcap_spans(&bytes);
    // Record 321 is span 321 (span 0 is the file header).
    let (start, end, _) = spans[321];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ndpi__iphone.pcap");
    std::fs::write(&path, &bytes[..start + 40]).unwrap();
    let mut capture = CaptureFile::open(&path).unwrap();
    let (packets, err) = read_all(&mut capture);
    assert_eq!(packets.len(), 320);
    let caplen = end - start - 16;
    assert_eq!(
        err.unwrap().to_string(),
        format!(
            "{}: truncated at record 321 (byte offset {start}): the file ends 40 bytes into \
             a {}-byte record (16-byte header + {caplen} bytes of packet data)",
            path.display(),
            end - start
        )
    );
    // Inside the file header and inside a record header.
    std::fs::write(&path, &bytes[..10]).unwrap();
    let err = CaptureFile::open(&path).unwrap_err().to_string();
    assert!(err.ends_with("truncated at record 1 (byte offset 0): the file ends 10 bytes into the 24-byte pcap file header"), "{err}");
    std::fs::write(&path, &bytes[..spans[3].0 + 5]).unwrap();
    let (packets, err) = read_path(&path);
    assert_eq!(packets.len(), 2);
    let err = err.unwrap().to_string();
    assert!(err.ends_with(&format!("truncated at record 3 (byte offset {}): the file ends 5 bytes into the 16-byte record header", spans[3].0)), "{err}");
}

#[test]
fn large_truncated_file_reports_offsets_across_buffer_refills() {
    // Bigger than the read buffer, so the cut record is found after several refills.
    let bytes = std::fs::read(shared("mercury__capture2.pcap")).unwrap();
    assert!(bytes.len() > 2 * BUFFER_LEN);
    let spans = pcap_spans(&bytes);
    let (index, &(start, _, _)) = spans
        .iter()
        .enumerate()
        .find(|(_, s)| s.0 > BUFFER_LEN + BUFFER_LEN / 2)
        .unwrap();
    let (packets, err) = read_all(&mut from_bytes(&bytes[..start + 20]).unwrap());
    assert_eq!(packets.len(), index - 1);
    match err {
        Some(CaptureError::Truncated { record, offset, .. }) => {
            assert_eq!((record, offset), (index as u64, start as u64));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn trickling_reader_reads_the_same_packets() {
    for path in [shared("ndpi__iphone.pcap"), fixture("iphone-mixed.pcapng")] {
        let bytes = std::fs::read(&path).unwrap();
        let (expected, _) = read_path(&path);
        for chunk in [1, 3, 4096] {
            let (packets, err) = read_all(&mut trickle(&bytes, chunk));
            assert!(err.is_none());
            assert_eq!(packets, expected, "{} in chunks of {chunk}", path.display());
        }
    }
}

/// Reads a capture the way the pipeline does: every packet's block is held (by a batch
/// on its way to a worker) while the reader goes on. Returns the packets as seen through
/// the held blocks at the end, and how many distinct blocks there were.
fn read_holding_blocks(capture: &mut CaptureFile) -> (Vec<Owned>, usize) {
    /// A packet as a worker holds it: its block, its place there, ts, link, orig_len.
    type Held = (Arc<SharedBuffer>, (usize, usize), u64, u32, u32);
    let mut held: Vec<Held> = Vec::new();
    while let Some(Ok(p)) = capture.next_packet() {
        let block = Arc::clone(p.block.expect("capture packets lie in a block"));
        let place = block.place_of(p.data).expect("the data lies in its block");
        held.push((block, place, p.ts.0, p.link.0, p.orig_len));
    }
    let mut distinct: Vec<*const SharedBuffer> = held.iter().map(|h| Arc::as_ptr(&h.0)).collect();
    distinct.dedup();
    let packets = held
        .iter()
        .map(|(block, (start, len), ts, link, orig_len)| Owned {
            ts: *ts,
            link: *link,
            data: block.bytes()[*start..*start + *len].to_vec(),
            orig_len: *orig_len,
        })
        .collect();
    (packets, distinct.len())
}

#[test]
fn held_blocks_keep_their_packets_while_the_reader_moves_on() {
    // Captures over the 1 MiB block: the reader must move to fresh blocks rather than
    // overwrite bytes a worker has yet to read.
    let mut ng = Ng {
        big: false,
        out: Vec::new(),
    };
    ng.section(false);
    ng.interface(1, None, None);
    let frame = std::fs::read(fixture("../packets/client_hello_gateway_icloud.bin")).unwrap();
    for i in 0..4_000u64 {
        ng.enhanced(0, i, &frame);
    }
    let pcapng = ng.out;
    assert!(pcapng.len() > 2 * BUFFER_LEN);
    for (name, bytes) in [
        (
            "mercury__capture2.pcap",
            std::fs::read(shared("mercury__capture2.pcap")).unwrap(),
        ),
        (
            "ndpi__1kxun.pcap",
            std::fs::read(shared("ndpi__1kxun.pcap")).unwrap(),
        ),
        ("built.pcapng", pcapng),
    ] {
        let (expected, err) = read_all(&mut from_bytes(&bytes).unwrap());
        assert!(err.is_none());
        for chunk in [7, 65_536, usize::MAX] {
            let mut capture = if chunk == usize::MAX {
                from_bytes(&bytes).unwrap()
            } else {
                trickle(&bytes, chunk)
            };
            let (packets, blocks) = read_holding_blocks(&mut capture);
            assert!(packets == expected, "{name} in chunks of {chunk}");
            assert!(blocks > 1, "{name}: {blocks} block(s)");
        }
    }
}

#[test]
fn a_small_file_gets_a_block_its_size() {
    let path = shared("ndpi__iphone.pcap");
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    assert!(len + SMALL_FILE_SLACK < BUFFER_LEN);
    let mut capture = CaptureFile::open(&path).unwrap();
    let block = capture
        .next_packet()
        .unwrap()
        .unwrap()
        .block
        .map(|b| b.bytes().len());
    assert_eq!(block, Some(len + SMALL_FILE_SLACK));
    let (packets, err) = read_all(&mut capture);
    assert!(err.is_none());
    assert_eq!(packets.len() + 1, read_path(&path).0.len());
}

#[test]
fn a_block_nobody_holds_is_reused_in_place() {
    // Read alone (one thread), the reader keeps refilling its one block.
    let bytes = std::fs::read(shared("mercury__capture2.pcap")).unwrap();
    let mut capture = from_bytes(&bytes).unwrap();
    let first = capture
        .next_packet()
        .unwrap()
        .unwrap()
        .block
        .map(Arc::as_ptr);
    let mut n = 1;
    while let Some(Ok(p)) = capture.next_packet() {
        assert_eq!(p.block.map(Arc::as_ptr), first);
        n += 1;
    }
    assert!(n > 1_000);
}

// ----- corruption -----

#[test]
fn huge_caplen_is_corrupt() {
    let mut bytes = std::fs::read(shared("ndpi__iphone.pcap")).unwrap();
    let spans = pcap_spans(&bytes);
    let start = spans[3].0;
    bytes[start + 8..start + 12].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let (packets, err) = read_all(&mut from_bytes(&bytes).unwrap());
    assert_eq!(packets.len(), 2);
    match err {
        Some(CaptureError::Corrupt {
            record: 3,
            offset,
            ref detail,
            ..
        }) => {
            assert_eq!(offset, start as u64);
            assert!(detail.contains("4294967280 captured bytes"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    let text = err.unwrap().to_string();
    assert!(
        text.starts_with(&format!(
            "test.cap: corrupt at record 3 (byte offset {start}): "
        )),
        "{text}"
    );
}

#[test]
fn broken_pcapng_framing_is_corrupt() {
    let original = std::fs::read(shared("zeek__pcapng-multi-interface.pcapng")).unwrap();
    let spans = pcapng_spans(&original);
    let (epb_index, &(start, end, _)) = spans.iter().enumerate().find(|(_, s)| s.2).unwrap();
    let packets_before = 0;
    let len = (end - start) as u32;
    fn set(bytes: &mut [u8], at: usize, value: u32) {
        bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }
    type Breakage = (&'static str, Box<dyn Fn(&mut Vec<u8>)>);
    let cases: Vec<Breakage> = vec![
        (
            "multiples of 4",
            Box::new(move |b| set(b, start + 4, len + 1)),
        ),
        ("multiples of 4", Box::new(move |b| set(b, start + 4, 8))),
        (
            "multiples of 4",
            Box::new(move |b| set(b, start + 4, 0xFFFF_FFF0)),
        ),
        (
            "ends with length",
            Box::new(move |b| set(b, end - 4, len + 4)),
        ),
        ("names interface 7", Box::new(move |b| set(b, start + 8, 7))),
        (
            "has room for",
            Box::new(move |b| set(b, start + 8 + 12, len)),
        ),
        ("byte-order magic", Box::new(|b| set(b, 8, 0x1234_5678))),
    ];
    for (expected, breakage) in cases {
        let mut bytes = original.clone();
        breakage(&mut bytes);
        let (packets, err) = match from_bytes(&bytes) {
            Ok(mut capture) => read_all(&mut capture),
            Err(e) => (Vec::new(), Some(e)),
        };
        match err {
            Some(CaptureError::Corrupt {
                record,
                offset,
                detail,
                ..
            }) => {
                assert!(detail.contains(expected), "{expected}: {detail}");
                if expected != "byte-order magic" {
                    assert_eq!(packets.len(), packets_before);
                    assert_eq!((record, offset), (1, start as u64), "{detail}");
                } else {
                    assert_eq!((record, offset), (1, 0));
                }
            }
            other => panic!("{expected}: {other:?}"),
        }
    }
    assert!(epb_index > 1);
}

#[test]
fn unknown_magic_is_not_a_capture() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    File::create(&path)
        .unwrap()
        .write_all(b"hello world\n")
        .unwrap();
    let err = CaptureFile::open(&path).unwrap_err();
    assert!(matches!(err, CaptureError::NotACapture { magic, .. } if &magic == b"hell"));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: not a pcap or pcapng capture (it starts with bytes 68 65 6c 6c)",
            path.display()
        )
    );
    let err = CaptureFile::open(&dir.path().join("missing.pcap")).unwrap_err();
    assert!(matches!(err, CaptureError::Open { .. }), "{err}");
}

// ----- hand-made pcapng -----

/// Builds pcapng blocks in either byte order.
struct Ng {
    big: bool,
    out: Vec<u8>,
}

impl Ng {
    fn u16(&self, v: u16) -> [u8; 2] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn u32(&self, v: u32) -> [u8; 4] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn block(&mut self, ty: u32, body: &[u8]) {
        let mut body = body.to_vec();
        body.resize(body.len().div_ceil(4) * 4, 0);
        let len = body.len() as u32 + 12;
        let (ty, len) = (self.u32(ty), self.u32(len));
        self.out.extend(ty);
        self.out.extend(len);
        self.out.extend(body);
        self.out.extend(len);
    }
    fn section(&mut self, big: bool) {
        self.big = big;
        let mut body = self.u32(0x1A2B_3C4D).to_vec();
        body.extend(self.u16(1));
        body.extend(self.u16(0));
        body.extend([0xFF; 8]);
        self.block(BT_SECTION_HEADER, &body);
    }
    /// An interface with optional if_tsresol and if_tsoffset, and an if_tzone option of
    /// the 4 bytes the specification gives it (which pcap-file refuses).
    fn interface(&mut self, link: u16, tsresol: Option<u8>, tsoffset: Option<i64>) {
        let mut body = self.u16(link).to_vec();
        body.extend(self.u16(0));
        body.extend(self.u32(0));
        body.extend(self.u16(10));
        body.extend(self.u16(4));
        body.extend(self.u32(0));
        if let Some(resol) = tsresol {
            body.extend(self.u16(OPT_IF_TSRESOL));
            body.extend(self.u16(1));
            body.extend([resol, 0, 0, 0]);
        }
        if let Some(offset) = tsoffset {
            body.extend(self.u16(OPT_IF_TSOFFSET));
            body.extend(self.u16(8));
            let raw = if self.big {
                offset.to_be_bytes()
            } else {
                offset.to_le_bytes()
            };
            body.extend(raw);
        }
        body.extend([0; 4]);
        self.block(BT_INTERFACE_DESCRIPTION, &body);
    }
    fn enhanced(&mut self, interface: u32, ticks: u64, data: &[u8]) {
        let mut body = self.u32(interface).to_vec();
        body.extend(self.u32((ticks >> 32) as u32));
        body.extend(self.u32(ticks as u32));
        body.extend(self.u32(data.len() as u32));
        body.extend(self.u32(data.len() as u32 + 100));
        body.extend(data);
        self.block(BT_ENHANCED_PACKET, &body);
    }
    fn obsolete(&mut self, interface: u16, ticks: u64, data: &[u8]) {
        let mut body = self.u16(interface).to_vec();
        body.extend(self.u16(0));
        body.extend(self.u32((ticks >> 32) as u32));
        body.extend(self.u32(ticks as u32));
        body.extend(self.u32(data.len() as u32));
        body.extend(self.u32(data.len() as u32));
        body.extend(data);
        self.block(BT_PACKET, &body);
    }
    fn simple(&mut self, orig_len: u32, data: &[u8]) {
        let mut body = self.u32(orig_len).to_vec();
        body.extend(data);
        self.block(BT_SIMPLE_PACKET, &body);
    }
}

#[test]
fn pcapng_sections_resolutions_and_block_kinds() {
    let mut ng = Ng {
        big: false,
        out: Vec::new(),
    };
    ng.section(false);
    ng.interface(1, None, None); // 0: Ethernet, microseconds by default
    ng.interface(101, Some(9), Some(-10)); // 1: raw IP, nanoseconds, 10 s earlier
    ng.enhanced(0, 1_500_000_000_123_456, b"frame-a");
    ng.block(0x0000_0BAD, b"custom block to skip");
    ng.enhanced(1, 1_500_000_000_123_456_789, b"ip-b");
    ng.simple(3, b"abcdef"); // interface 0, cut to its original length, last timestamp
    ng.section(true);
    ng.interface(228, Some(0x80 | 10), None); // 0: 2^-10 s
    ng.interface(229, Some(3), Some(1_000)); // 1: ms, +1000 s
    ng.interface(1, Some(12), None); // 2: picoseconds
    ng.obsolete(1, 1_500_000_000_123, b"v6");
    ng.enhanced(0, 1024 * 1_500_000_000 + 512, b"v4");
    ng.enhanced(2, 123_456_789_999, b"ps"); // picoseconds overflow u64 for recent dates
    let (packets, err) = read_all(&mut from_bytes(&ng.out).unwrap());
    assert!(err.is_none(), "{err:?}");
    let got: Vec<(u64, u32, &[u8], u32)> = packets
        .iter()
        .map(|p| (p.ts, p.link, &p.data[..], p.orig_len))
        .collect();
    let s = 1_500_000_000_000_000_000u64;
    assert_eq!(
        got,
        vec![
            (s + 123_456_000, 1, &b"frame-a"[..], 107),
            (s - 10_000_000_000 + 123_456_789, 101, &b"ip-b"[..], 104),
            (s - 10_000_000_000 + 123_456_789, 1, &b"abc"[..], 3),
            (s + 1_000_000_000_000 + 123_000_000, 229, &b"v6"[..], 2),
            (s + 500_000_000, 228, &b"v4"[..], 102),
            (123_456_789, 1, &b"ps"[..], 102),
        ]
    );
}

#[test]
fn packet_before_any_interface_is_corrupt() {
    let mut ng = Ng {
        big: true,
        out: Vec::new(),
    };
    ng.section(true);
    ng.simple(4, b"data");
    let (packets, err) = read_all(&mut from_bytes(&ng.out).unwrap());
    assert!(packets.is_empty());
    match err {
        Some(CaptureError::Corrupt {
            record: 1,
            offset: 28,
            detail,
            ..
        }) => {
            assert!(detail.contains("describes 0 interfaces"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

// ----- robustness -----

/// Deterministic xorshift, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = crate::testing::xorshift(self.0);
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn damaged_captures_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let seeds = [
        std::fs::read(shared("ndpi__ssdp-m-search-ua.pcap")).unwrap(),
        std::fs::read(shared("zeek__pcapng-multi-interface.pcapng")).unwrap(),
        std::fs::read(fixture("iphone-mixed.pcapng")).unwrap(),
        std::fs::read(fixture("iphone-be.pcap")).unwrap(),
    ];
    for round in 0..3000 {
        let mut bytes = seeds[round % seeds.len()].clone();
        for _ in 0..1 + rng.below(8) {
            let at = rng.below(bytes.len());
            match rng.below(4) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => bytes[at] = 0xFF,
                2 => bytes[at] = 0,
                _ => bytes.truncate(at.max(1)),
            }
        }
        if let Ok(mut capture) = from_bytes(&bytes) {
            let mut count = 0;
            while let Some(next) = capture.next_packet() {
                count += 1;
                assert!(count <= bytes.len(), "reader does not terminate");
                if let Ok(p) = next {
                    assert!(p.data.len() <= MAX_CAPLEN as usize);
                }
            }
        }
    }
    // Random bytes behind each magic.
    for magic in [PCAP_MAGIC_USEC_LE, PCAP_MAGIC_NSEC_BE, PCAPNG_MAGIC] {
        for _ in 0..500 {
            let mut bytes = magic.to_vec();
            bytes.extend((0..rng.below(200)).map(|_| rng.next() as u8));
            if let Ok(mut capture) = from_bytes(&bytes) {
                while capture.next_packet().is_some() {}
            }
        }
    }
}
