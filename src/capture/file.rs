//! Offline capture files: classic pcap and pcapng, read from a file or a stream, one borrowed
//! packet at a time; which format a file is, told by its magic number.
//!
//! Both formats are parsed out of large shared buffers the reader fills ([`super::buffer`]),
//! so packets are handed out as slices of them (no copy, no allocation per packet) and every
//! error can say exactly which record and byte offset it concerns. The record parsers are
//! hand-written (`capture/pcap.rs`, `capture/pcapng.rs`; each says why no crate is used): they
//! check every length before trusting it, which keeps the reader panic-free and lets it tell
//! a cut-short file from a damaged one.
//!
//! A regular file is read directly. Anything else (a FIFO, a pipe, standard input, a device)
//! may block for ever in `open` or `read`, so it is opened and read on a thread of its own
//! (`StreamReader`) and the parser waits for its bytes with a timeout, asking a
//! [`StopCheck`] whether to give up: a signal then ends the wait promptly.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use super::buffer::Input;
use super::pcap::{self, PcapReader};
use super::pcapng::{PCAPNG_MAGIC, PcapNgReader};
use super::{CaptureError, Next, Packet, PacketSource};

/// Length of the magic number that tells the formats apart.
const MAGIC_LEN: usize = 4;

/// The format being read, with its state.
#[derive(Debug)]
enum Format {
    Pcap(PcapReader),
    PcapNg(PcapNgReader),
}

/// A pcap or pcapng capture being read front to back.
pub struct CaptureFile {
    input: Input,
    file_len: Option<u64>,
    format: Format,
}

impl std::fmt::Debug for CaptureFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureFile")
            .field("path", &self.input.path())
            .field("format", &self.format())
            .field("records", &self.records_read())
            .field("offset", &self.bytes_consumed())
            .finish_non_exhaustive()
    }
}

impl CaptureFile {
    /// Opens a capture file, telling pcap from pcapng by its magic number.
    /// The path `-` means standard input.
    ///
    /// # Errors
    /// The file cannot be opened, is no capture, or its first header is cut short or damaged.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        Self::open_stoppable(path, never)
    }

    /// As [`CaptureFile::open`], and while it waits for a FIFO, pipe or device to open or to
    /// give more bytes it asks `stop` every few milliseconds whether to give up; when it does,
    /// the error [`is_stop`] tells apart comes back (from here, or from
    /// [`CaptureFile::next_packet`] once the packets already read are handed out).
    ///
    /// # Errors
    /// As [`CaptureFile::open`], or the stop.
    pub fn open_stoppable(path: &Path, stop: StopCheck) -> Result<Self, CaptureError> {
        if path == Path::new("-") {
            return Self::from_stdin("-".to_owned(), stop);
        }
        // `metadata` does not open the file, so it cannot block on a FIFO without a writer.
        let waits = std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir());
        if waits {
            let owned = path.to_path_buf();
            let reader = StreamReader::start(
                move || File::open(owned).map(|f| Box::new(f) as Box<dyn Read + Send>),
                stop,
            );
            let reader = reader.opened().map_err(|source| match source {
                Waited::Failed(source) => CaptureError::Open {
                    path: path.to_path_buf(),
                    source,
                },
                Waited::Stopped => CaptureError::Io {
                    path: path.to_path_buf(),
                    source: stop_error(),
                },
            })?;
            return Self::start(path.to_path_buf(), Box::new(reader), None);
        }
        let file = File::open(path).map_err(|source| CaptureError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        // Only a regular file has a length worth showing in a progress bar.
        let file_len = file
            .metadata()
            .ok()
            .filter(std::fs::Metadata::is_file)
            .map(|m| m.len());
        Self::start(path.to_path_buf(), Box::new(file), file_len)
    }

    /// Reads a capture from any stream (standard input, a test buffer). `name` is what
    /// error messages call it.
    ///
    /// # Errors
    /// As [`CaptureFile::open`], once the file is open.
    pub fn from_reader(name: String, r: Box<dyn Read + Send>) -> Result<Self, CaptureError> {
        Self::start(PathBuf::from(name), r, None)
    }

    /// Reads a capture from standard input, called `name` in messages. Unless standard
    /// input is a regular file, it is read on a thread of its own and `stop` is asked while
    /// it waits for bytes, as in [`CaptureFile::open_stoppable`].
    ///
    /// # Errors
    /// As [`CaptureFile::open_stoppable`].
    pub fn from_stdin(name: String, stop: StopCheck) -> Result<Self, CaptureError> {
        let stdin = io::stdin();
        let regular = stdin
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .and_then(|fd| File::from(fd).metadata().ok())
            .is_some_and(|m| m.is_file());
        if regular {
            return Self::from_reader(name, Box::new(stdin));
        }
        let reader = StreamReader::start(|| Ok(Box::new(stdin) as Box<dyn Read + Send>), stop);
        Self::start(PathBuf::from(name), Box::new(reader), None)
    }

    fn start(
        path: PathBuf,
        reader: Box<dyn Read + Send>,
        file_len: Option<u64>,
    ) -> Result<Self, CaptureError> {
        let mut input = Input::new(path, reader, file_len);
        let have = input.fill(MAGIC_LEN)?;
        let Some(magic) = input.window(MAGIC_LEN) else {
            let detail = if have == 0 {
                "the file is empty".to_owned()
            } else {
                format!("the file ends {have} bytes into the 4-byte magic number")
            };
            return Err(input.truncated(detail));
        };
        let magic: [u8; 4] = magic.try_into().unwrap_or_default();
        let format = if let Some(pcap) = pcap::Magic::of(magic) {
            Format::Pcap(PcapReader::start(&mut input, pcap)?)
        } else if magic == PCAPNG_MAGIC {
            Format::PcapNg(PcapNgReader::start(&mut input)?)
        } else {
            return Err(CaptureError::NotACapture {
                path: input.path().to_path_buf(),
                magic,
            });
        };
        Ok(CaptureFile {
            input,
            file_len,
            format,
        })
    }

    /// Returns the next packet, `None` at clean end of file, or the error that ends the
    /// capture (after which it returns `None`).
    pub fn next_packet(&mut self) -> Option<Result<Packet<'_>, CaptureError>> {
        if self.input.failed() {
            return None;
        }
        match &mut self.format {
            Format::Pcap(pcap) => pcap.next_packet(&mut self.input).transpose(),
            Format::PcapNg(ng) => ng.next_packet(&mut self.input),
        }
    }

    /// Reads the rest of the file ahead on a thread of its own while packets are handed out
    /// (see `capture/ahead.rs`): for a regular file longer than one read buffer; otherwise
    /// (a stream, a small file) nothing changes. The packets and errors are the same.
    pub fn read_ahead(&mut self) {
        if self
            .file_len
            .is_some_and(|n| n > super::buffer::BUFFER_LEN as u64)
        {
            self.input.read_ahead();
        }
    }

    /// Hands `each` the packets already read into memory, in order, up to `max` of them, and
    /// returns how many: the fast path of reading a capture (classic little-endian pcap).
    /// Fewer than `max` (none, for pcapng) does not mean the capture ended:
    /// [`CaptureFile::next_packet`] then reads on, and tells.
    #[inline(always)]
    pub fn buffered_packets(&mut self, max: u64, mut each: impl FnMut(&Packet<'_>)) -> u64 {
        match &self.format {
            Format::Pcap(pcap) if !self.input.failed() => {
                pcap.buffered_packets(&mut self.input, max, &mut each)
            }
            _ => 0,
        }
    }

    /// Packets returned so far.
    pub fn records_read(&self) -> u64 {
        self.input.records()
    }

    /// Byte offset in the file of the next record (the end of the last one returned).
    pub fn bytes_consumed(&self) -> u64 {
        self.input.offset()
    }

    /// The file's length, when it is a regular file.
    pub fn file_len(&self) -> Option<u64> {
        self.file_len
    }

    /// `"pcap"` or `"pcapng"`.
    pub fn format(&self) -> &'static str {
        match self.format {
            Format::Pcap(_) => "pcap",
            Format::PcapNg(_) => "pcapng",
        }
    }
}

impl PacketSource for CaptureFile {
    fn next_packet(&mut self) -> Next<'_> {
        match CaptureFile::next_packet(self) {
            Some(Ok(p)) => Next::Packet(p),
            Some(Err(e)) => Next::Error(e),
            None => Next::End,
        }
    }
}

/// Asked while a capture waits for a FIFO, pipe or device: `true` gives up waiting.
pub type StopCheck = fn() -> bool;

/// The [`StopCheck`] of [`CaptureFile::open`]: waits as long as it takes.
fn never() -> bool {
    false
}

/// Whether `e` is a capture giving up because its [`StopCheck`] said so, rather than a
/// failure of the input.
pub fn is_stop(e: &CaptureError) -> bool {
    matches!(e, CaptureError::Io { source, .. }
        if source.get_ref().is_some_and(|inner| inner.is::<Stopped>()))
}

/// The cause inside the I/O error a stopped wait returns.
#[derive(Debug, thiserror::Error)]
#[error("stopped while waiting for data")]
struct Stopped;

fn stop_error() -> io::Error {
    io::Error::other(Stopped)
}

/// Bytes asked for per read on a stream (a pipe holds 64 KiB).
const CHUNK_LEN: usize = 1 << 17;
/// Chunks the reading thread reads ahead before it waits: bounds the memory a fast writer
/// and a slow parser can fill.
const CHUNKS_AHEAD: usize = 16;
/// How often a wait for bytes asks its [`StopCheck`]: a signal ends it well under a second.
const STOP_POLL: Duration = Duration::from_millis(20);

/// What the reading thread hands over.
enum Chunk {
    /// The input is open; bytes follow.
    Opened,
    /// Bytes read (never empty).
    Data(Vec<u8>),
    /// The input ended.
    End,
    /// Opening (before `Opened`) or reading (after it) failed.
    Failed(io::Error),
}

/// Why a wait for the reading thread ended without bytes.
enum Waited {
    Failed(io::Error),
    Stopped,
}

/// A stream opened and read on a thread of its own, so that waiting for it can be given up.
///
/// The thread reads as the stream gives bytes and hands each read over at once (a quiet
/// writer's last bytes are not held back), at most [`CHUNKS_AHEAD`] reads ahead. When the
/// capture is dropped the thread ends at its next read; one blocked for ever (a FIFO nobody
/// writes to) ends with the process.
struct StreamReader {
    rx: Receiver<Chunk>,
    /// Emptied chunks, back to the thread for reuse.
    spare: Sender<Vec<u8>>,
    pending: Vec<u8>,
    /// First byte of `pending` not yet read.
    at: usize,
    stop: StopCheck,
    /// How reading ended, repeated to every later read (the buffer may read ahead, drop an
    /// error and ask again).
    ended: Option<Ended>,
}

/// How a `StreamReader` ended.
enum Ended {
    Eof,
    Stopped,
    Failed(io::ErrorKind, String),
}

impl StreamReader {
    fn start(
        open: impl FnOnce() -> io::Result<Box<dyn Read + Send>> + Send + 'static,
        stop: StopCheck,
    ) -> Self {
        let (tx, rx) = bounded(CHUNKS_AHEAD);
        let (spare, spare_rx) = bounded::<Vec<u8>>(CHUNKS_AHEAD);
        let spawned = std::thread::Builder::new()
            .name("appletap-input".into())
            .spawn(move || Self::pump(open, &tx, &spare_rx));
        let ended = spawned
            .err()
            .map(|e| Ended::Failed(e.kind(), e.to_string()));
        Self {
            rx,
            spare,
            pending: Vec::new(),
            at: 0,
            stop,
            ended,
        }
    }

    /// The reading thread: opens, then reads until the end, an error or nobody listening.
    fn pump(
        open: impl FnOnce() -> io::Result<Box<dyn Read + Send>>,
        tx: &Sender<Chunk>,
        spare: &Receiver<Vec<u8>>,
    ) {
        let mut r = match open() {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Chunk::Failed(e));
                return;
            }
        };
        if tx.send(Chunk::Opened).is_err() {
            return;
        }
        loop {
            let mut buf = spare.try_recv().unwrap_or_default();
            buf.resize(CHUNK_LEN, 0);
            let chunk = match r.read(&mut buf) {
                Ok(0) => Chunk::End,
                Ok(n) => {
                    buf.truncate(n.min(CHUNK_LEN));
                    Chunk::Data(buf)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Chunk::Failed(e),
            };
            let last = !matches!(chunk, Chunk::Data(_));
            if tx.send(chunk).is_err() || last {
                return;
            }
        }
    }

    /// The next message from the thread, asking the stop check while none comes.
    fn wait(&mut self) -> Result<Chunk, Waited> {
        loop {
            match self.rx.recv_timeout(STOP_POLL) {
                Ok(Chunk::Failed(e)) => return Err(Waited::Failed(e)),
                Ok(chunk) => return Ok(chunk),
                Err(RecvTimeoutError::Disconnected) => return Ok(Chunk::End),
                Err(RecvTimeoutError::Timeout) if (self.stop)() => return Err(Waited::Stopped),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Waits until the input is open.
    fn opened(mut self) -> Result<Self, Waited> {
        match self.wait()? {
            Chunk::Opened => Ok(self),
            Chunk::Data(bytes) => {
                self.pending = bytes;
                Ok(self)
            }
            Chunk::End => {
                self.ended = Some(Ended::Eof);
                Ok(self)
            }
            Chunk::Failed(e) => Err(Waited::Failed(e)),
        }
    }
}

impl Read for StreamReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(rest) = self.pending.get(self.at..)
                && !rest.is_empty()
            {
                let n = rest.len().min(out.len());
                out[..n].copy_from_slice(&rest[..n]);
                self.at += n;
                if self.at == self.pending.len() {
                    let _ = self.spare.try_send(std::mem::take(&mut self.pending));
                    self.at = 0;
                }
                return Ok(n);
            }
            match &self.ended {
                Some(Ended::Eof) => return Ok(0),
                Some(Ended::Stopped) => return Err(stop_error()),
                Some(Ended::Failed(kind, msg)) => return Err(io::Error::new(*kind, msg.clone())),
                None => {}
            }
            match self.wait() {
                Ok(Chunk::Data(bytes)) => {
                    self.pending = bytes;
                    self.at = 0;
                }
                Ok(Chunk::Opened) => {}
                Ok(Chunk::End) => self.ended = Some(Ended::Eof),
                Err(Waited::Stopped) => self.ended = Some(Ended::Stopped),
                Ok(Chunk::Failed(e)) | Err(Waited::Failed(e)) => {
                    // The first time, the error itself (its source intact); a copy after.
                    self.ended = Some(Ended::Failed(e.kind(), e.to_string()));
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod stream_tests;

#[cfg(test)]
mod ahead_tests;

#[cfg(test)]
mod buffered_tests;
