//! The shared buffers packets lie in, and the refilling input a capture file is read through.
//!
//! A [`SharedBuffer`] is what leaves the capture layer: a packet's bytes are a slice of one,
//! and whoever must keep them past the next read (the pipeline, handing a worker a batch)
//! clones the `Arc` and remembers the place instead of copying. `Input` is how the file
//! readers fill them: large reads into the current buffer while nobody else holds it, a fresh
//! (recycled) one when someone does.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, bounded};

use super::CaptureError;
use super::ahead::{Block, HEADROOM, ReadAhead};

/// Size of the read buffer. Large reads keep the per-packet cost of I/O negligible; the
/// buffer grows past this only for a single block that does not fit (rare, bounded by the
/// largest pcapng block accepted).
pub(crate) const BUFFER_LEN: usize = 1 << 20;

/// Room past a small file's length in its buffer (the read that finds the end needs some).
pub(crate) const SMALL_FILE_SLACK: usize = 4096;

/// Buffers kept for reuse once every packet of theirs has been handled.
const SPARE_BUFFERS: usize = 16;

/// A run of bytes read from a packet source, shared with whoever still holds packets in it.
///
/// The pipeline hands a worker a place in a buffer rather than a copy of the packet (copying
/// every payload into batches cost the reading thread a tenth of its time on the benchmark
/// capture). The reader writes into its buffer only while nobody else holds it; otherwise it
/// moves on to a fresh one, and the old one's bytes come back for reuse when the last holder
/// lets go.
#[derive(Debug)]
pub struct SharedBuffer {
    bytes: Vec<u8>,
    spare: Option<Sender<Vec<u8>>>,
}

impl SharedBuffer {
    /// A buffer holding `bytes`, not recycled when dropped.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self { bytes, spare: None }
    }

    /// The bytes.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Where `part` lies in this buffer, if it lies inside it: `(start, len)`.
    #[inline]
    pub fn place_of(&self, part: &[u8]) -> Option<(usize, usize)> {
        let start = (part.as_ptr() as usize).checked_sub(self.bytes.as_ptr() as usize)?;
        (start.checked_add(part.len())? <= self.bytes.len()).then_some((start, part.len()))
    }
}

impl Drop for SharedBuffer {
    fn drop(&mut self) {
        if let Some(spare) = &self.spare {
            let _ = spare.try_send(std::mem::take(&mut self.bytes));
        }
    }
}

/// Where an [`Input`]'s bytes come from.
enum Source {
    /// Read on the parsing thread, into the current buffer.
    Direct(Box<dyn Read + Send>),
    /// Read ahead on a thread of its own ([`super::ahead`]), a block at a time.
    Ahead(ReadAhead),
}

/// A byte stream read front to back into shared buffers, with what its errors must say:
/// the stream's name, how many packets were read, and the offset of the unread bytes.
///
/// The parsers look at a window of unconsumed bytes, ask for more with [`Input::fill`], and
/// mark what they used with [`Input::consume`]; a packet they return borrows the current
/// buffer.
pub(crate) struct Input {
    path: PathBuf,
    source: Source,
    buf: Arc<SharedBuffer>,
    /// Buffers nobody holds any more.
    spare: (Sender<Vec<u8>>, Receiver<Vec<u8>>),
    /// First byte of `buf` not yet consumed.
    start: usize,
    /// End of the valid bytes in `buf`.
    end: usize,
    /// Stream offset of `buf[0]`, modulo 2^64 (reading ahead, a buffer's front may lie
    /// "before" the stream's first byte; the offsets of its bytes are right).
    buf_offset: u64,
    /// The reader has reported end of file.
    eof: bool,
    /// An error was returned; the stream is finished.
    failed: bool,
    /// Packets returned so far.
    records: u64,
}

impl Input {
    /// Reads `reader`, called `path` in messages, into a first buffer sized for `len` bytes
    /// when the length is known.
    pub(crate) fn new(path: PathBuf, reader: Box<dyn Read + Send>, len: Option<u64>) -> Self {
        // A small file gets a buffer its size, not a whole one: reading a thousand small
        // captures in one run should not allocate (and zero) a gigabyte.
        let first = len.map_or(BUFFER_LEN, |n| {
            usize::try_from(n)
                .unwrap_or(BUFFER_LEN)
                .saturating_add(SMALL_FILE_SLACK)
                .min(BUFFER_LEN)
        });
        Self {
            path,
            source: Source::Direct(reader),
            buf: Arc::new(SharedBuffer::new(vec![0; first])),
            spare: bounded(SPARE_BUFFERS),
            start: 0,
            end: 0,
            buf_offset: 0,
            eof: false,
            failed: false,
            records: 0,
        }
    }

    /// What messages call the stream.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether an error has ended the stream.
    #[inline]
    pub(crate) fn failed(&self) -> bool {
        self.failed
    }

    /// Packets returned so far.
    #[inline]
    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// Counts one packet returned.
    #[inline]
    pub(crate) fn count_record(&mut self) {
        self.records += 1;
    }

    /// Stream offset of the first unconsumed byte (the end of the last record returned).
    #[inline]
    pub(crate) fn offset(&self) -> u64 {
        self.buf_offset.wrapping_add(self.start as u64)
    }

    /// The buffer packets currently lie in.
    #[inline]
    pub(crate) fn buffer(&self) -> &Arc<SharedBuffer> {
        &self.buf
    }

    /// Index in [`Input::buffer`] of the first unconsumed byte.
    #[inline]
    pub(crate) fn start(&self) -> usize {
        self.start
    }

    /// Every unconsumed byte already buffered (no read).
    #[inline]
    pub(crate) fn buffered(&self) -> &[u8] {
        self.buf.bytes.get(self.start..self.end).unwrap_or_default()
    }

    /// For a parser that walks the records already buffered in a loop of its own: the
    /// current buffer, its valid bytes, the index of the first unconsumed one (to advance past
    /// what it hands out) and the count of packets returned (to add them to).
    #[inline(always)]
    pub(crate) fn unread_parts(&mut self) -> (&Arc<SharedBuffer>, &[u8], &mut usize, &mut u64) {
        let bytes = self.buf.bytes.get(..self.end).unwrap_or_default();
        (&self.buf, bytes, &mut self.start, &mut self.records)
    }

    /// `len` bytes at `at` in the current buffer (empty if they are not there).
    #[inline]
    pub(crate) fn slice(&self, at: usize, len: usize) -> &[u8] {
        self.buf
            .bytes
            .get(at..at.saturating_add(len))
            .unwrap_or_default()
    }

    /// Makes `need` bytes from `start` available if the stream has them, reading as needed.
    /// Returns how many are available (fewer than `need` only at end of stream).
    pub(crate) fn fill(&mut self, need: usize) -> Result<usize, CaptureError> {
        let have = self.end - self.start;
        if have >= need || self.eof {
            return Ok(have);
        }
        if matches!(self.source, Source::Ahead(_)) {
            return self.fill_ahead(need);
        }
        let shared = Arc::get_mut(&mut self.buf).is_none();
        let mut fresh = false;
        if shared
            || self.start == self.end
            || self.start.saturating_add(need) > self.buf.bytes.len()
        {
            // Move the partial record to the front (of this buffer, or of a fresh one if
            // packets of this one are still held): copies less than one record per refill.
            // The same size as the buffer before (a small file keeps its small buffer), or
            // larger if one record needs it.
            let len = need.max(self.buf.bytes.len());
            let tail = self.start..self.end;
            match Arc::get_mut(&mut self.buf) {
                Some(buf) => {
                    buf.bytes.copy_within(tail, 0);
                    if len > buf.bytes.len() {
                        buf.bytes.resize(len, 0);
                    }
                }
                None => {
                    // A new buffer is allocated zeroed (`vec!`), not grown from an empty one:
                    // the allocator hands fresh memory over as it is, where growing wrote
                    // every byte. With worker threads that was 5.2M of the reading thread's
                    // 102.5M on the first 100,000 packets (callgrind): 5 new 1 MiB buffers.
                    let mut bytes = self.spare.1.try_recv().unwrap_or_else(|_| vec![0; len]);
                    if bytes.len() < len {
                        bytes.resize(len, 0);
                    }
                    bytes[..tail.len()].copy_from_slice(&self.buf.bytes[tail]);
                    self.buf = Arc::new(SharedBuffer {
                        bytes,
                        spare: Some(self.spare.0.clone()),
                    });
                    fresh = true;
                }
            }
            self.buf_offset = self.buf_offset.wrapping_add(self.start as u64);
            self.end -= self.start;
            self.start = 0;
        }
        // A fresh buffer is filled at least halfway before packets go out of it: a pipe gives
        // 64 KiB a read, and a buffer per read would keep mostly empty buffers alive.
        let at_least = if fresh { self.buf.bytes.len() / 2 } else { 0 };
        while self.end - self.start < need || self.end < at_least {
            // Unshared here: a shared buffer was replaced above.
            let Some(space) = Arc::get_mut(&mut self.buf).and_then(|b| b.bytes.get_mut(self.end..))
            else {
                break;
            };
            let room = space.len();
            let Source::Direct(reader) = &mut self.source else {
                break;
            };
            match reader.read(space) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                // `min` guards against a reader that claims more than it was given.
                Ok(n) => self.end = self.end.saturating_add(n.min(room)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Reading ahead of what was asked for: hand out what is here first; the
                // error comes back on the next read.
                Err(_) if self.end - self.start >= need => break,
                Err(source) => {
                    self.failed = true;
                    return Err(CaptureError::Io {
                        path: self.path.clone(),
                        source,
                    });
                }
            }
        }
        Ok(self.end - self.start)
    }

    /// From here on, reads the stream ahead on a thread of its own ([`super::ahead`]) in
    /// blocks of the current buffer's size. Worth it only for a stream that does not keep a
    /// read waiting (a regular file) and is longer than one buffer; a no-op after the end, an
    /// error, or a first call.
    pub(crate) fn read_ahead(&mut self) {
        if self.eof || self.failed || matches!(self.source, Source::Ahead(_)) {
            return;
        }
        let source = std::mem::replace(&mut self.source, Source::Direct(Box::new(io::empty())));
        let Source::Direct(reader) = source else {
            return;
        };
        let block_len = self.buf.bytes.len().max(BUFFER_LEN);
        self.source = match ReadAhead::start(reader, block_len, self.spare.1.clone()) {
            Ok(ahead) => Source::Ahead(ahead),
            Err(reader) => Source::Direct(reader),
        };
    }

    /// [`Input::fill`] from a stream read ahead: takes blocks until `need` bytes are there,
    /// each becoming the current buffer with the unconsumed bytes of the one before copied in
    /// front of its own.
    fn fill_ahead(&mut self, need: usize) -> Result<usize, CaptureError> {
        while self.end - self.start < need && !self.eof {
            let Source::Ahead(ahead) = &self.source else {
                break;
            };
            match ahead.next() {
                Block::Data(mut bytes, len) => {
                    let tail = self.buf.bytes.get(self.start..self.end).unwrap_or_default();
                    let (bytes, start) = if let Some(front) = HEADROOM.checked_sub(tail.len()) {
                        bytes[front..HEADROOM].copy_from_slice(tail);
                        (bytes, front)
                    } else {
                        // A record longer than the headroom (rare: longer than 64 KiB): the
                        // two parts joined in a buffer of their own.
                        let mut joined = Vec::with_capacity(tail.len() + len);
                        joined.extend_from_slice(tail);
                        joined.extend_from_slice(&bytes[HEADROOM..HEADROOM + len]);
                        let _ = self.spare.0.try_send(bytes);
                        (joined, 0)
                    };
                    let end = start + (self.end - self.start) + len;
                    // Stream offset of the new buffer's first byte: the first unconsumed byte
                    // keeps its offset.
                    // Wrapping: after a short first read, fewer bytes may precede the
                    // first unconsumed one than the room in front of it (offsets come out
                    // right, modulo 2^64, in `offset`).
                    self.buf_offset = self
                        .buf_offset
                        .wrapping_add(self.start as u64)
                        .wrapping_sub(start as u64);
                    self.buf = Arc::new(SharedBuffer {
                        bytes,
                        spare: Some(self.spare.0.clone()),
                    });
                    self.start = start;
                    self.end = end;
                }
                Block::End => self.eof = true,
                Block::Failed(source) => {
                    self.failed = true;
                    return Err(CaptureError::Io {
                        path: self.path.clone(),
                        source,
                    });
                }
            }
        }
        Ok(self.end - self.start)
    }

    /// The next `len` unconsumed bytes, if buffered.
    #[inline]
    pub(crate) fn window(&self, len: usize) -> Option<&[u8]> {
        let end = self.start.checked_add(len)?;
        if end > self.end {
            return None;
        }
        self.buf.bytes.get(self.start..end)
    }

    /// Marks `len` bytes consumed.
    #[inline]
    pub(crate) fn consume(&mut self, len: usize) {
        self.start = self.start.saturating_add(len).min(self.end);
    }

    /// A Truncated error for the record being read; the stream is finished.
    pub(crate) fn truncated(&mut self, detail: String) -> CaptureError {
        self.failed = true;
        CaptureError::Truncated {
            path: self.path.clone(),
            record: self.records + 1,
            offset: self.offset(),
            detail,
        }
    }

    /// A Corrupt error for the record being read; the stream is finished.
    pub(crate) fn corrupt(&mut self, detail: String) -> CaptureError {
        self.failed = true;
        CaptureError::Corrupt {
            path: self.path.clone(),
            record: self.records + 1,
            offset: self.offset(),
            detail,
        }
    }
}
