//! Capture files (classic pcap in every byte order and resolution, pcapng with any blocks),
//! read to the end through an engine and rendered as a report.
//!
//! The reader gets the bytes through a `Read` that hands them out whole, one byte at a time,
//! or 7 at a time (chosen by the input's length), so buffer refills split every header. Checks:
//! packets read = records counted, nothing is consumed past the input, nothing comes after the
//! error that ends a capture, an error inside the file names it and the record, and packets
//! read = decoded + skipped.
#![no_main]

mod common;

use std::io::{self, Read};

use appletap::capture::MAX_CAPLEN;
use appletap::capture::file::CaptureFile;
use appletap::report::InputSummary;
use libfuzzer_sys::fuzz_target;

struct Chunked {
    data: Vec<u8>,
    pos: usize,
    chunk: usize,
}

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.chunk).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let chunk = match data.len() % 3 {
        0 => usize::MAX,
        1 => 1,
        _ => 7,
    };
    let reader = Chunked {
        data: data.to_vec(),
        pos: 0,
        chunk,
    };
    let mut cap = match CaptureFile::from_reader("fuzz.pcap".into(), Box::new(reader)) {
        Ok(c) => c,
        Err(e) => {
            assert!(e.to_string().starts_with("fuzz.pcap: "), "{e}");
            return;
        }
    };
    let mut engine = common::engine(32);
    let mut n = 0u64;
    let mut error = None;
    loop {
        match cap.next_packet() {
            Some(Ok(p)) => {
                assert!(p.data.len() <= MAX_CAPLEN as usize);
                engine.process(&p);
                n += 1;
            }
            Some(Err(e)) => {
                let text = e.to_string();
                assert!(
                    text.starts_with("fuzz.pcap: ") && text.contains(&format!("record {}", n + 1)),
                    "{text}"
                );
                error = Some(text);
                break;
            }
            None => break,
        }
    }
    assert!(cap.next_packet().is_none(), "nothing after the end");
    assert_eq!(cap.records_read(), n);
    assert!(cap.bytes_consumed() <= data.len() as u64);
    let inputs = vec![InputSummary {
        file: "fuzz.pcap".into(),
        format: Some(cap.format()),
        packets: n,
        error,
    }];
    // Packets whose time did not fit the clock are held until the packets after them decide;
    // finishing hands them on, and then every packet read is counted.
    engine.finish();
    assert_eq!(engine.stats().read, n);
    common::finish_and_report(engine, inputs, 0);
});
