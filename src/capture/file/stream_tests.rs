//! Captures read through a [`StreamReader`] on a thread of its own, as FIFOs, pipes and
//! standard input are: the same packets and errors as from a file, and a stop that ends a
//! wait for bytes that never come.

use std::io::{self, Cursor, Read};
use std::path::PathBuf;
use std::time::Duration;

use super::tests::{Trickle, fixture, from_bytes, read_all, read_path, shared};
use super::{CaptureFile, StopCheck, StreamReader, is_stop, never};
use crate::capture::CaptureError;
use crate::capture::buffer::BUFFER_LEN;

/// A capture read through a [`StreamReader`] (as a FIFO or pipe is) over `reader`.
fn streamed(
    reader: impl Read + Send + 'static,
    stop: StopCheck,
) -> Result<CaptureFile, CaptureError> {
    let reader = StreamReader::start(move || Ok(Box::new(reader) as Box<dyn Read + Send>), stop);
    CaptureFile::start(PathBuf::from("stream"), Box::new(reader), None)
}

#[test]
fn a_stream_read_on_its_own_thread_gives_the_same_packets_and_errors() {
    for path in [shared("ndpi__iphone.pcap"), fixture("iphone-mixed.pcapng")] {
        let bytes = std::fs::read(&path).unwrap();
        let (expected, _) = read_path(&path);
        for chunk in [1, 4096, BUFFER_LEN] {
            let reader = Trickle {
                bytes: bytes.clone(),
                at: 0,
                chunk,
            };
            let (packets, err) = read_all(&mut streamed(reader, never).unwrap());
            assert!(err.is_none(), "{err:?}");
            assert_eq!(packets, expected, "{} in chunks of {chunk}", path.display());
        }
        // Cut inside a record: the same truncation as from a file.
        let cut = bytes.len() - 10;
        let (packets, err) = read_all(&mut from_bytes(&bytes[..cut]).unwrap());
        let reader = Cursor::new(bytes[..cut].to_vec());
        let (streamed_packets, streamed_err) = read_all(&mut streamed(reader, never).unwrap());
        assert_eq!(streamed_packets, packets);
        assert_eq!(
            streamed_err
                .unwrap()
                .to_string()
                .replace("stream", "test.cap"),
            err.unwrap().to_string()
        );
    }
}

/// A reader whose bytes run out and then never come: a writer gone quiet.
struct Quiet(Cursor<Vec<u8>>);

impl Read for Quiet {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf)? {
            0 => loop {
                std::thread::park();
            },
            n => Ok(n),
        }
    }
}

static STOP_NOW: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn stop_now() -> bool {
    STOP_NOW.load(std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn a_stop_ends_a_wait_for_bytes_that_never_come_after_the_packets_read() {
    let bytes = std::fs::read(shared("ndpi__iphone.pcap")).unwrap();
    let (expected, _) = read_path(&shared("ndpi__iphone.pcap"));
    // The whole file, then half a record header: the reader waits for the rest.
    let mut quiet = bytes.clone();
    quiet.extend_from_slice(&bytes[24..32]);
    let mut capture = streamed(Quiet(Cursor::new(quiet)), stop_now).unwrap();
    let setter = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(200));
        STOP_NOW.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let started = std::time::Instant::now();
    let (packets, err) = read_all(&mut capture);
    setter.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        packets, expected,
        "every packet before the wait is handed out"
    );
    let err = err.expect("the stop");
    assert!(is_stop(&err), "{err}");
    // A damaged file is not a stop.
    let mut damaged = bytes;
    damaged[0] ^= 0xff;
    assert!(!is_stop(&from_bytes(&damaged).unwrap_err()));
}
