//! Packet sources: what a packet is when it leaves a capture (bytes, timestamp, link type,
//! the shared buffer it lies in), and the sources that yield packets: capture files
//! ([`file`](mod@file): classic pcap in `pcap.rs`, pcapng in `pcapng.rs`), live
//! interfaces through libpcap ([`live`]) and packets held in memory ([`memory`]), all behind
//! [`PacketSource`]; and live interfaces through Linux AF_PACKET sockets ([`af_packet`]),
//! which hand over packets a ring block at a time.

pub mod af_packet;
mod ahead;
pub mod buffer;
pub mod error;
pub mod file;
pub mod live;
pub mod memory;
mod pcap;
mod pcapng;

pub use buffer::SharedBuffer;
pub use error::CaptureError;
pub use memory::{MemorySource, OwnedPacket};

/// Largest captured length accepted for one packet: libpcap's `MAXIMUM_SNAPLEN`. A longer
/// record header is damage, not data, and trusting it would make us buffer gigabytes.
pub const MAX_CAPLEN: u32 = 262_144;

/// A packet timestamp in nanoseconds since the Unix epoch, as the capture recorded it.
///
/// The core never reads a clock: every notion of time (idle timeouts, DNS TTLs) is
/// derived from these values, so a file replays the same way every time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Nanoseconds in one second.
    pub const NANOS_PER_SEC: u64 = 1_000_000_000;

    /// Builds a timestamp from whole seconds and nanoseconds.
    pub fn from_parts(secs: u64, nanos: u64) -> Self {
        Self(
            secs.saturating_mul(Self::NANOS_PER_SEC)
                .saturating_add(nanos),
        )
    }

    /// Seconds since the epoch as a float, rounded to the microsecond (an f64 holds about 16
    /// significant digits: enough for microseconds, not for nanoseconds).
    pub fn as_secs_f64(self) -> f64 {
        let micros = self.0.saturating_add(500) / 1_000;
        (micros as f64) / 1e6
    }

    /// `self + secs`, saturating.
    pub fn plus_secs(self, secs: u64) -> Self {
        Self(
            self.0
                .saturating_add(secs.saturating_mul(Self::NANOS_PER_SEC)),
        )
    }
}

/// A link-layer header type, as numbered by tcpdump.org's LINKTYPE_ registry.
///
/// Unknown values are data, not errors: they are carried through and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: 4-byte address family in host byte order.
    pub const NULL: Self = Self(0);
    /// Ethernet II / 802.3.
    pub const ETHERNET: Self = Self(1);
    /// Raw IP as libpcap writes it on some BSDs (DLT_RAW = 12).
    pub const RAW_DLT12: Self = Self(12);
    /// Raw IP as libpcap writes it on OpenBSD (DLT_RAW = 14).
    pub const RAW_DLT14: Self = Self(14);
    /// IEEE 802.11 frames without a radio header (a monitor-mode capture without radiotap).
    pub const IEEE802_11: Self = Self(105);
    /// IEEE 802.11 frames after a radiotap header (a Mac's Wireless Diagnostics sniffer,
    /// `tcpdump -I`, Linux monitor interfaces).
    pub const IEEE802_11_RADIOTAP: Self = Self(127);
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: Self = Self(108);
    /// Raw IPv4 or IPv6, no link header (LINKTYPE_RAW).
    pub const RAW: Self = Self(101);
    /// Linux cooked capture v1.
    pub const LINUX_SLL: Self = Self(113);
    /// Raw IPv4 only.
    pub const IPV4: Self = Self(228);
    /// Raw IPv6 only.
    pub const IPV6: Self = Self(229);
    /// macOS PKTAP: per-packet metadata header followed by the inner link layer.
    pub const PKTAP: Self = Self(258);
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: Self = Self(276);

    /// Whether frames of this link type are 802.11 (with or without a radio header).
    #[inline]
    pub fn is_ieee80211(self) -> bool {
        self == Self::IEEE802_11 || self == Self::IEEE802_11_RADIOTAP
    }
}

/// One captured packet, borrowed from the source's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// When the packet was captured.
    pub ts: Timestamp,
    /// How `data` begins.
    pub link: LinkType,
    /// The captured bytes (possibly shorter than the packet on the wire).
    pub data: &'a [u8],
    /// The packet's length on the wire.
    pub orig_len: u32,
    /// The shared buffer `data` lies in, when the source reads into shared buffers (capture
    /// files): the pipeline then hands a worker a place in it instead of a copy.
    pub block: Option<&'a std::sync::Arc<SharedBuffer>>,
}

/// What a packet source yields next.
#[derive(Debug)]
pub enum Next<'a> {
    /// A packet.
    Packet(Packet<'a>),
    /// No packet within the source's read timeout (live capture only): a chance to check for
    /// shutdown and periodic work.
    Idle,
    /// The source is exhausted.
    End,
    /// The source failed; nothing more will come from it.
    Error(CaptureError),
}

/// A source of packets: a capture file, a live interface or packets in memory. The only I/O
/// seam of the pipeline.
pub trait PacketSource {
    /// The next packet, borrowed until the following call.
    fn next_packet(&mut self) -> Next<'_>;
}
