//! Offline capture files: classic pcap and pcapng, read from a file or a stream, one borrowed
//! packet at a time; which format a file is, told by its magic number.
//!
//! Both formats are parsed out of large shared buffers the reader fills ([`super::buffer`]),
//! so packets are handed out as slices of them (no copy, no allocation per packet) and every
//! error can say exactly which record and byte offset it concerns. The record parsers are
//! hand-written (`capture/pcap.rs`, `capture/pcapng.rs`; each says why no crate is used): they
//! check every length before trusting it, which keeps the reader panic-free and lets it tell
//! a cut-short file from a damaged one.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

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
        if path == Path::new("-") {
            return Self::from_reader("-".to_owned(), Box::new(io::stdin()));
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

#[cfg(test)]
mod tests;
