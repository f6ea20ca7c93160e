//! The start of a TCP byte stream (client to server), reassembled from segments that may
//! arrive out of order, duplicated or overlapping. Bounded: it holds at most `limit` bytes and
//! is dropped once the inspector has what it needs.

use std::collections::BTreeMap;

/// What one segment held past a gap costs against the limit at least: one-byte segments
/// cannot make the bookkeeping outgrow the bytes it holds.
const MIN_SEGMENT_COST: usize = 64;

/// Reassembles the first `limit` bytes of one direction of a TCP stream.
#[derive(Debug)]
pub struct StreamPrefix {
    /// Sequence number of stream byte 0 (the SYN's sequence number + 1), once known.
    base: Option<u32>,
    /// Contiguous bytes from stream offset 0.
    data: Vec<u8>,
    /// Segments past a gap, by stream offset (sorted, so joining them after the gap is filled
    /// takes one pass). Their cost (bytes, at least [`MIN_SEGMENT_COST`] each) is bounded by
    /// `limit`.
    pending: BTreeMap<usize, Vec<u8>>,
    pending_bytes: usize,
    limit: usize,
}

impl StreamPrefix {
    /// An empty prefix that will hold at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            base: None,
            data: Vec::new(),
            pending: BTreeMap::new(),
            pending_bytes: 0,
            limit,
        }
    }

    /// Records the SYN's sequence number: stream byte 0 is the next one.
    pub fn syn(&mut self, seq: u32) {
        if self.base.is_none() {
            self.base = Some(seq.wrapping_add(1));
        }
    }

    /// Adds a segment with sequence number `seq`. Without a SYN seen, the first data segment
    /// defines offset 0 (the capture started mid-connection). Returns whether the contiguous
    /// prefix grew.
    pub fn push(&mut self, seq: u32, payload: &[u8]) -> bool {
        if payload.is_empty() {
            return false;
        }
        let base = *self.base.get_or_insert(seq);
        // Offsets are modulo 2^32; a segment "before" the base shows up as a huge offset and is
        // ignored, like anything past the limit.
        let off = seq.wrapping_sub(base) as usize;
        if off >= self.limit {
            return false;
        }
        let end = (off + payload.len()).min(self.limit);
        let payload = &payload[..end - off];
        let before = self.data.len();
        if off <= self.data.len() {
            if end > self.data.len() {
                self.data
                    .extend_from_slice(&payload[self.data.len() - off..]);
            }
            self.drain_pending();
        } else {
            let cost = payload.len().max(MIN_SEGMENT_COST);
            let longer = self
                .pending
                .get(&off)
                .is_none_or(|p| p.len() < payload.len());
            if longer && self.pending_bytes + cost <= self.limit {
                if let Some(old) = self.pending.insert(off, payload.to_vec()) {
                    self.pending_bytes -= old.len().max(MIN_SEGMENT_COST);
                }
                self.pending_bytes += cost;
            }
        }
        self.data.len() > before
    }

    fn drain_pending(&mut self) {
        while let Some(entry) = self.pending.first_entry() {
            let (o, len) = (*entry.key(), self.data.len());
            if o > len {
                return;
            }
            let bytes = entry.remove();
            self.pending_bytes -= bytes.len().max(MIN_SEGMENT_COST);
            if o + bytes.len() > len {
                self.data.extend_from_slice(&bytes[len - o..]);
            }
        }
    }

    /// The contiguous bytes from the start of the stream.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// Whether the prefix is full (nothing more will be added).
    pub fn is_full(&self) -> bool {
        self.data.len() >= self.limit
    }

    /// Bytes held (contiguous plus the cost of pending segments), never more than twice the
    /// limit.
    pub fn held(&self) -> usize {
        self.data.len() + self.pending_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_out_of_order_and_duplicates_give_the_same_prefix() {
        let msg: Vec<u8> = (0..200u8).collect();
        let cuts = [0usize, 7, 50, 51, 120, 200];
        let segs: Vec<(u32, &[u8])> = cuts
            .windows(2)
            .map(|w| (1000 + w[0] as u32, &msg[w[0]..w[1]]))
            .collect();
        for order in [
            vec![0, 1, 2, 3, 4],
            vec![4, 3, 2, 1, 0],
            vec![2, 0, 0, 4, 1, 3, 3],
        ] {
            let mut s = StreamPrefix::new(4096);
            s.syn(999);
            for i in order {
                s.push(segs[i].0, segs[i].1);
            }
            assert_eq!(s.bytes(), &msg[..]);
        }
    }

    #[test]
    fn overlapping_retransmission_extends_only_the_new_part() {
        let mut s = StreamPrefix::new(4096);
        s.syn(0);
        s.push(1, b"hello ");
        s.push(4, b"lo world");
        assert_eq!(s.bytes(), b"hello world");
    }

    #[test]
    fn never_holds_more_than_the_limit() {
        let mut s = StreamPrefix::new(100);
        s.syn(0);
        for i in 0..1000u32 {
            s.push(50 + i * 10, &[0u8; 10]);
            s.push(u32::MAX - i, &[0u8; 10]);
        }
        assert!(s.held() <= 200);
        s.push(1, &[1u8; 500]);
        assert_eq!(s.bytes().len(), 100);
        assert!(s.is_full());
    }

    #[test]
    fn many_tiny_segments_after_a_gap_stay_bounded_and_fast() {
        let mut s = StreamPrefix::new(1 << 17);
        s.syn(0);
        for k in 0..100_000u32 {
            s.push(3 + k, b"x");
        }
        let held = s.pending.len();
        assert!(held * MIN_SEGMENT_COST <= 1 << 17);
        let start = std::time::Instant::now();
        s.push(1, b"ab");
        assert_eq!(s.bytes().len(), 2 + held);
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn sequence_wraparound() {
        let mut s = StreamPrefix::new(64);
        s.syn(u32::MAX - 2);
        s.push(u32::MAX - 1, b"ab");
        s.push(0, b"cd");
        assert_eq!(s.bytes(), b"abcd");
    }
}
