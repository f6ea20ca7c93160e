//! Packet counters: every packet read is either decoded or skipped for one reason, plus the
//! clock's restarts; kept by the dispatcher and each worker, merged once.

use crate::decode::Skip;
use crate::wire::ieee80211::FrameKind;

/// Packet counters: every packet read is either decoded or skipped for one reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketStats {
    /// Packets handed to the core.
    pub read: u64,
    /// Bytes on the wire of those packets.
    pub bytes: u64,
    /// Packets decoded to an IP flow.
    pub decoded: u64,
    /// Packets skipped, by [`Skip`] reason.
    pub skipped: [u64; Skip::ALL.len()],
    /// Times packet time went back more than a minute and a new stretch of capture began
    /// (see [`crate::pipeline::Clock`]); counted where the clock is kept, once per input.
    pub clock_restarts: u64,
    /// Packets whose time fit neither the capture's clock nor a new stretch of capture (one
    /// packet stamped decades ahead, or at zero): handled at the clock's time instead.
    pub clock_outliers: u64,
    /// 802.11 frames read, by [`FrameKind`] (Wi-Fi captures only; frames cut before their
    /// frame control field are only counted skipped).
    pub wifi: [u64; FrameKind::ALL.len()],
}

impl PacketStats {
    /// Packets skipped for any reason.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.iter().sum()
    }

    /// Counts a packet read and skipped undecoded, for `skip`.
    pub fn count_skipped(&mut self, orig_len: u32, skip: Skip) {
        self.read += 1;
        self.bytes += u64::from(orig_len);
        self.skipped[skip.index()] += 1;
    }

    /// Counts an 802.11 frame of kind `kind` (`None`: cut before its frame control).
    pub fn count_wifi(&mut self, kind: Option<FrameKind>) {
        if let Some(k) = kind {
            self.wifi[k.index()] += 1;
        }
    }

    /// Adds another worker's counters.
    pub fn merge(&mut self, other: &Self) {
        self.read += other.read;
        self.bytes += other.bytes;
        self.decoded += other.decoded;
        self.clock_restarts += other.clock_restarts;
        self.clock_outliers += other.clock_outliers;
        for (a, b) in self.skipped.iter_mut().zip(other.skipped) {
            *a += b;
        }
        for (a, b) in self.wifi.iter_mut().zip(other.wifi) {
            *a += b;
        }
    }
}
