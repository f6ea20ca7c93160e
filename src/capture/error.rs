//! The capture layer's one error type: why a capture file or a live interface could not be
//! opened or read on, every message naming what failed and, inside a file, where.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Why a capture could not be opened or read on.
///
/// File messages all name the file; errors inside a file also name the 1-based number of the
/// packet being read and the byte offset at which its record (or the block in its way)
/// starts. Live messages name the interface and say what to do when there is something to do
/// (permissions, interface names, filter syntax).
#[derive(Debug, Error)]
pub enum CaptureError {
    /// The file could not be opened.
    #[error("{}: cannot open: {source}", .path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The file does not start with a pcap or pcapng magic number.
    #[error(
        "{}: not a pcap or pcapng capture (it starts with bytes {})",
        .path.display(),
        hex_bytes(.magic)
    )]
    NotACapture {
        /// The file.
        path: PathBuf,
        /// The first four bytes seen.
        magic: [u8; 4],
    },
    /// The file ends inside a header or record.
    #[error("{}: truncated at record {record} (byte offset {offset}): {detail}", .path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// 1-based number of the packet that could not be read.
        record: u64,
        /// Byte offset where the cut-short record or block starts.
        offset: u64,
        /// What was cut, in words.
        detail: String,
    },
    /// A header that cannot be right: damage, not a short file.
    #[error("{}: corrupt at record {record} (byte offset {offset}): {detail}", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based number of the packet that could not be read.
        record: u64,
        /// Byte offset where the damaged record or block starts.
        offset: u64,
        /// What is wrong, in words.
        detail: String,
    },
    /// Reading the file failed.
    #[error("{}: read error: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The process may not capture live.
    #[error(
        "no permission to capture on {iface}: {missing}. Run appletap as root, or grant it the capabilities once with `setcap cap_net_raw,cap_net_admin+eip {exe}` (or start it with them as ambient capabilities, as systemd's AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN does) ({detail})"
    )]
    Permission {
        /// Interface.
        iface: String,
        /// Which capability the process lacks, in words.
        missing: String,
        /// Path of this executable, for the setcap hint.
        exe: String,
        /// libpcap's own words.
        detail: String,
    },
    /// No such interface.
    #[error(
        "no capture interface named {iface:?}; available: {available} (see `appletap interfaces`)"
    )]
    NoSuchInterface {
        /// Interface asked for.
        iface: String,
        /// The interfaces libpcap lists.
        available: String,
    },
    /// The BPF filter does not compile.
    #[error("the capture filter {filter:?} is not valid BPF: {detail}")]
    BadFilter {
        /// The filter.
        filter: String,
        /// libpcap's message.
        detail: String,
    },
    /// Anything else libpcap reported when opening an interface.
    #[error("cannot capture on {iface}: {detail}")]
    LiveOpen {
        /// Interface.
        iface: String,
        /// libpcap's message.
        detail: String,
    },
    /// A live capture failed after it started; nothing more will come from it.
    #[error("capture on {iface} failed: {source}")]
    LiveRead {
        /// Interface.
        iface: String,
        /// What libpcap said.
        source: pcap::Error,
    },
}

/// Formats bytes as `0a 0d 0d 0a` for messages.
pub(crate) fn hex_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
