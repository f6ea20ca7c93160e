//! The flow table of one worker: key to flow state, with idle expiry in packet time and a cap
//! on the number of flows. It never reads a clock; "now" is the latest packet timestamp seen.

use std::cmp::Reverse;
use std::collections::binary_heap::PeekMut;
use std::collections::{BinaryHeap, VecDeque};
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::{Flow, FlowKey};
use crate::capture::Timestamp;
use crate::decode::{PacketMeta, ip_proto, tcp_flags};

/// Idle timeouts, in seconds of packet time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP flows that have not ended.
    pub tcp: u64,
    /// TCP flows after FIN both ways or a RST (late retransmissions still join the flow).
    pub tcp_closed: u64,
    /// UDP flows.
    pub udp: u64,
    /// ICMP and other protocols.
    pub other: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            tcp: 300,
            tcp_closed: 15,
            udp: 120,
            other: 60,
        }
    }
}

/// Which idle timeout a flow is under; each class has its own expiry queue, in which
/// deadlines only grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeoutClass {
    Tcp,
    TcpClosed,
    Udp,
    Other,
}

impl TimeoutClass {
    const COUNT: usize = 4;

    fn of(flow: &Flow) -> Self {
        match flow.proto {
            ip_proto::TCP if flow.tcp_finished() => Self::TcpClosed,
            ip_proto::TCP => Self::Tcp,
            ip_proto::UDP => Self::Udp,
            _ => Self::Other,
        }
    }

    fn queue(self) -> usize {
        self as usize
    }
}

impl Timeouts {
    fn secs(&self, class: TimeoutClass) -> u64 {
        match class {
            TimeoutClass::Tcp => self.tcp,
            TimeoutClass::TcpClosed => self.tcp_closed,
            TimeoutClass::Udp => self.udp,
            TimeoutClass::Other => self.other,
        }
    }

    fn for_flow(&self, flow: &Flow) -> u64 {
        self.secs(TimeoutClass::of(flow))
    }
}

/// Why a flow left the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// No packet for longer than its idle timeout.
    Idle,
    /// A new connection reused the key after this one ended.
    Reused,
    /// Evicted to keep the table under `--max-flows`.
    Evicted,
    /// The input ended (or the program was asked to stop).
    Flush,
}

/// Flows of one timeout class by deadline, earliest first (first queued first on a tie). Not a
/// plain FIFO: a packet may be up to a minute older than the clock and a flow that was busy is
/// queued again at its own idle time, so deadlines are not queued in order, and expiry must
/// find every flow idle by now, whenever it runs (which flows are idle when a full shard
/// evicts must not depend on when a sweep last ran).
///
/// Most deadlines do come in order (a new flow's is its first packet's time plus the
/// timeout), so those go to a FIFO and only the ones earlier than its back go to a heap; a pop
/// takes the earlier of the two fronts by (deadline, push order), the order one heap of all
/// the entries gave. One heap of everything spent most of the sweep's 4.4M instructions on
/// the first 100k packets of the benchmark capture in sifting 64-byte entries; the FIFO took
/// the whole run from 185.77M to 184.62M instructions (callgrind).
#[derive(Debug, Default)]
struct ExpiryQueue {
    /// Entries in (deadline, push order) order.
    fifo: VecDeque<QueueEntry>,
    /// Entries that came earlier than the FIFO's back when queued.
    late: BinaryHeap<Reverse<QueueEntry>>,
    pushed: u64,
}

/// (deadline, push order, flow id, key): ordered by deadline, then push order (unique).
type QueueEntry = (Timestamp, u64, u64, FlowKey);

impl ExpiryQueue {
    // Inlined: a push for every new flow, finished connection and busy flow re-queued
    // (bench-small -t1 370.03M to 369.79M instructions, callgrind).
    #[inline]
    fn push(&mut self, deadline: Timestamp, key: FlowKey, id: u64) {
        let entry = (deadline, self.pushed, id, key);
        self.pushed += 1;
        match self.fifo.back() {
            Some(back) if back.0 > deadline => self.late.push(Reverse(entry)),
            _ => self.fifo.push_back(entry),
        }
    }

    /// Takes the earliest entry if its deadline is at or before `now`: (key, flow id).
    fn pop_due(&mut self, now: Timestamp) -> Option<(FlowKey, u64)> {
        let late = match (self.fifo.front(), self.late.peek()) {
            (Some(f), Some(Reverse(l))) => (l.0, l.1) < (f.0, f.1),
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (None, None) => return None,
        };
        let (_, _, id, key) = if late {
            let top = self.late.peek_mut().filter(|top| top.0.0 <= now)?;
            PeekMut::pop(top).0
        } else {
            self.fifo.pop_front_if(|e| e.0 <= now)?
        };
        Some((key, id))
    }

    fn len(&self) -> usize {
        self.fifo.len() + self.late.len()
    }

    fn retain(&mut self, mut keep: impl FnMut(&FlowKey, &u64) -> bool) {
        self.fifo.retain(|(_, _, id, k)| keep(k, id));
        self.late.retain(|Reverse((_, _, id, k))| keep(k, id));
    }

    fn clear(&mut self) {
        self.fifo.clear();
        self.late.clear();
    }
}

/// Queue entries below which the queues are never compacted.
const COMPACT_MIN: usize = 1024;

/// Expiry is checked at most this often, in packet time.
const SWEEP_INTERVAL_NS: u64 = Timestamp::NANOS_PER_SEC;

/// Starts flows: numbers them and queues them for expiry and eviction (the parts of the table
/// besides the map, borrowed apart so the map can stay borrowed by one probe).
struct Starter<'t> {
    next_id: &'t mut u64,
    queues: &'t mut [ExpiryQueue; TimeoutClass::COUNT],
    groups: &'t mut [Group],
    ordered: &'t mut usize,
    queued: &'t mut bool,
    timeouts: Timeouts,
}

/// A [`Starter`] borrowing a table's parts besides the map (a macro, not a method, so that
/// the map may stay borrowed by an entry meanwhile).
macro_rules! starter {
    ($table:expr) => {
        Starter {
            next_id: &mut $table.next_id,
            queues: &mut $table.queues,
            groups: &mut $table.groups,
            ordered: &mut $table.ordered,
            queued: &mut $table.queued,
            timeouts: $table.timeouts,
        }
    };
}

impl Starter<'_> {
    // Always inlined: the new flow is built where it goes, not returned and moved (about 17
    // instructions a new flow; bench-small -t1 371.62M to 371.33M, callgrind).
    #[inline(always)]
    fn flow(
        &mut self,
        key: FlowKey,
        group: usize,
        meta: &PacketMeta<'_>,
        ts: Timestamp,
        known_port: impl Fn(u8, u16) -> bool,
    ) -> Flow {
        let id = *self.next_id;
        *self.next_id += 1;
        let mut flow = Flow::new(id, meta, ts, known_port);
        flow.group = group as u16;
        let deadline = Timestamp(
            ts.plus_secs(self.timeouts.for_flow(&flow))
                .0
                .saturating_add(1),
        );
        self.queues[TimeoutClass::of(&flow).queue()].push(deadline, key, id);
        let g = &mut self.groups[group];
        if g.kept {
            g.order.push_back((key, id));
            *self.ordered += 1;
        }
        g.len += 1;
        *self.queued = true;
        flow
    }
}

/// A share of the table's flow cap: its flows in creation order (for eviction of its oldest),
/// how many it holds and how many it may.
#[derive(Debug, Default)]
struct Group {
    /// Keys in creation order, once `kept`; entries of flows that left are stale and skipped.
    order: VecDeque<(FlowKey, u64)>,
    /// Whether `order` is kept: only from when the group was first full (see
    /// [`FlowTable::keep_order`]).
    kept: bool,
    len: usize,
    cap: usize,
}

/// A worker's flows.
pub struct FlowTable<T> {
    /// Key and flow. A table rather than a map: a packet's flow is found by one probe whose
    /// bucket is then read by index (see [`FlowTable::lookup_keyed`]).
    map: HashTable<(FlowKey, (Flow, T))>,
    /// The map's hash: keyed (seeded at random), so that spoofed keys cannot be chosen to
    /// collide.
    hasher: foldhash::fast::RandomState,
    /// Per timeout class: (deadline, key, flow id), deadlines non-decreasing within a class
    /// because packet time only moves forward here. Entries may be stale; they are checked.
    queues: [ExpiryQueue; TimeoutClass::COUNT],
    /// Shares of the flow cap, each evicting its own oldest flow when full.
    groups: Vec<Group>,
    /// Entries in all the groups' creation-order queues (live or stale).
    ordered: usize,
    timeouts: Timeouts,
    /// The shortest idle timeout in nanoseconds: a flow quiet no longer than this is not idle
    /// whatever its class.
    quiet_ns: u64,
    next_id: u64,
    now: Timestamp,
    next_sweep: Timestamp,
    evicted: u64,
    /// Something was queued since the queues were last checked for compaction.
    queued: bool,
    /// Queue entries (in all, or in the creation-order queues) past which the queues are
    /// compacted next: twice what the last compaction left, so that each compaction is paid
    /// for by as many entries queued since.
    compact_at: usize,
    /// Compactions so far (tests count them).
    #[cfg(test)]
    compactions: usize,
}

impl<T: Default> FlowTable<T> {
    /// An empty table of at most `max_flows` flows.
    pub fn new(timeouts: Timeouts, max_flows: usize) -> Self {
        Self::with_groups(timeouts, &[max_flows])
    }

    /// An empty table whose flows are counted in groups, group `i` holding at most `caps[i]`
    /// (at least 1): a full group evicts its own oldest flow. A worker gives each shard of the
    /// key space it owns a group, so that which flow is evicted depends on the shard alone,
    /// never on how many workers share the shards out.
    pub fn with_groups(timeouts: Timeouts, caps: &[usize]) -> Self {
        let groups = caps
            .iter()
            .map(|&cap| Group {
                cap: cap.max(1),
                ..Group::default()
            })
            .collect::<Vec<_>>();
        Self {
            map: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            queues: Default::default(),
            groups: if groups.is_empty() {
                vec![Group {
                    cap: 1,
                    ..Group::default()
                }]
            } else {
                groups
            },
            ordered: 0,
            timeouts,
            quiet_ns: [
                TimeoutClass::Tcp,
                TimeoutClass::TcpClosed,
                TimeoutClass::Udp,
                TimeoutClass::Other,
            ]
            .map(|c| timeouts.secs(c).saturating_mul(Timestamp::NANOS_PER_SEC))
            .into_iter()
            .min()
            .unwrap_or(0),
            next_id: 0,
            now: Timestamp(0),
            next_sweep: Timestamp(0),
            evicted: 0,
            queued: false,
            compact_at: COMPACT_MIN,
            #[cfg(test)]
            compactions: 0,
        }
    }

    /// Flows currently held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Flows evicted because the table was full.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// The latest packet time seen.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Sets the clock back to `now` for a new stretch of capture; the table must be empty
    /// (drained).
    pub fn restart_at(&mut self, now: Timestamp) {
        debug_assert!(self.map.is_empty());
        self.now = now;
        self.next_sweep = Timestamp(now.0.saturating_add(SWEEP_INTERVAL_NS));
    }

    /// Moves the clock to `ts` if that is later (packet time only moves forward here).
    pub fn advance(&mut self, ts: Timestamp) {
        if ts > self.now {
            self.now = ts;
        }
    }

    /// Finds or starts the flow of a packet. Flows that end on the way (idle, key reuse,
    /// eviction) are handed to `ended`.
    pub fn lookup(
        &mut self,
        meta: &PacketMeta<'_>,
        ts: Timestamp,
        known_port: impl Fn(u8, u16) -> bool,
        ended: impl FnMut(&Flow, &T, EndReason),
    ) -> &mut (Flow, T) {
        self.lookup_keyed(&FlowKey::of(meta), 0, meta, ts, known_port, ended)
    }

    /// [`FlowTable::lookup`] with the key given (ICMP errors about unknown flows are grouped
    /// by the flow they quote, not by their own addresses).
    // Inlined, with only what a packet of a flow that goes on needs: a sweep, a flow that
    // ends before the packet, a new flow and a full group go out of line. One probe finds the
    // flow's bucket, read then by its index (not probed again), so that a flow that goes on
    // is handed out while the other paths still have the whole table (a `HashMap` entry held
    // the map). The entry, the group's room and the compaction flag checked for every packet
    // and the call itself cost about 65 instructions a packet: bench-small -t1 went from
    // 401.49M to 381.98M instructions (callgrind).
    #[inline(always)]
    pub fn lookup_keyed(
        &mut self,
        key: &FlowKey,
        group: usize,
        meta: &PacketMeta<'_>,
        ts: Timestamp,
        known_port: impl Fn(u8, u16) -> bool,
        mut ended: impl FnMut(&Flow, &T, EndReason),
    ) -> &mut (Flow, T) {
        self.advance(ts);
        if self.now >= self.next_sweep {
            self.sweep(&mut ended);
        }
        let hash = self.hasher.hash_one(key);
        let ending = match self.map.find_bucket_index(hash, |(k, _)| k == key) {
            Some(i) => {
                let (_, (flow, _)) = self.map.get_bucket(i).expect("bucket just found");
                match Self::ends_before(flow, meta, self.now, &self.timeouts, self.quiet_ns) {
                    None => {
                        return &mut self.map.get_bucket_mut(i).expect("bucket just found").1;
                    }
                    Some(why) => Some((i, why)),
                }
            }
            None => None,
        };
        self.start_flow(hash, *key, group, ending, meta, ts, known_port, ended)
    }

    /// Expires idle flows; the clock reached the next sweep.
    #[inline(never)]
    fn sweep(&mut self, ended: &mut impl FnMut(&Flow, &T, EndReason)) {
        self.expire_idle(ended);
        self.next_sweep = Timestamp(self.now.0.saturating_add(SWEEP_INTERVAL_NS));
    }

    /// The rest of [`FlowTable::lookup_keyed`]: the packet's flow ends before it (`ending`:
    /// its bucket, and why) or there is none. Starts one, evicting first if its group is full.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn start_flow(
        &mut self,
        hash: u64,
        key: FlowKey,
        group: usize,
        ending: Option<(usize, EndReason)>,
        meta: &PacketMeta<'_>,
        ts: Timestamp,
        known_port: impl Fn(u8, u16) -> bool,
        mut ended: impl FnMut(&Flow, &T, EndReason),
    ) -> &mut (Flow, T) {
        let group = group.min(self.groups.len() - 1);
        if self.groups[group].len < self.groups[group].cap {
            // The queues only grow when a flow starts or finishes: check them then.
            if std::mem::take(&mut self.queued) {
                self.compact_if_needed();
            }
            let flow = starter!(self).flow(key, group, meta, ts, known_port);
            // The flow ends and is replaced under the same key, in its bucket (compaction
            // moves no bucket).
            if let Some((i, why)) = ending {
                let (_, slot) = self.map.get_bucket_mut(i).expect("bucket found");
                let (f, t) = std::mem::replace(slot, (flow, T::default()));
                self.groups[usize::from(f.group)].len -= 1;
                ended(&f, &t, why);
                return slot;
            }
            let hasher = &self.hasher;
            let slot = self
                .map
                .insert_unique(hash, (key, (flow, T::default())), |(k, _)| {
                    hasher.hash_one(k)
                });
            return &mut slot.into_mut().1;
        }
        if let Some((i, why)) = ending
            && let Ok(o) = self.map.get_bucket_entry(i)
        {
            let (_, (f, t)) = o.get();
            if let Some(g) = self.groups.get_mut(usize::from(f.group)) {
                g.len -= 1;
            }
            ended(f, t, why);
            o.remove();
        }
        if self.groups[group].len >= self.groups[group].cap {
            // Flows idle by now end as idle, not evicted: whether a sweep already ran must not
            // decide which flows are evicted.
            self.expire_idle(&mut ended);
        }
        if self.groups[group].len >= self.groups[group].cap && !self.groups[group].kept {
            self.keep_order();
        }
        while self.groups[group].len >= self.groups[group].cap {
            let Some((old, id)) = self.groups[group].order.pop_front() else {
                break;
            };
            self.ordered -= 1;
            // One probe, as in the sweep.
            if let Ok(o) = self
                .map
                .find_entry(self.hasher.hash_one(old), |(k, _)| *k == old)
                && o.get().1.0.id == id
            {
                let (_, (f, t)) = o.get();
                if let Some(g) = self.groups.get_mut(usize::from(f.group)) {
                    g.len -= 1;
                }
                self.evicted += 1;
                ended(f, t, EndReason::Evicted);
                o.remove();
            }
        }
        // Compacted before the new flow is queued: compacting after, with the flow not in the
        // map yet, dropped its entries as stale (it then never expired idle nor was evicted).
        self.compact_if_needed();
        let flow = starter!(self).flow(key, group, meta, ts, known_port);
        let hasher = &self.hasher;
        let slot = self
            .map
            .insert_unique(hash, (key, (flow, T::default())), |(k, _)| {
                hasher.hash_one(k)
            });
        &mut slot.into_mut().1
    }

    /// Starts keeping the creation order of every group, when one is full for the first
    /// time: their live flows by id, the order their oldest are evicted in. A table that is
    /// never full (the common case) keeps none: queueing every new flow and compacting the
    /// queue (a probe of the map for each entry) cost about 150 instructions a new flow, for
    /// an order never read (bench-small -t1 went from 371.33M to 370.03M instructions;
    /// callgrind). Built from the map, an order holds what the order kept from the first flow
    /// would hold besides stale entries, which eviction skips: the same flows are evicted.
    /// All groups at once, in one pass over the map: a pass for each group as it filled cost
    /// up to 64 passes over a table of millions of flows, a stall of the packet path.
    #[cold]
    #[inline(never)]
    fn keep_order(&mut self) {
        let groups = &self.groups;
        let mut live: Vec<(u64, u16, FlowKey)> = self
            .map
            .iter()
            .filter(|(_, (f, _))| groups.get(usize::from(f.group)).is_some_and(|g| !g.kept))
            .map(|(k, (f, _))| (f.id, f.group, *k))
            .collect();
        live.sort_unstable_by_key(|(id, _, _)| *id);
        self.ordered += live.len();
        for (id, group, key) in live {
            if let Some(g) = self.groups.get_mut(usize::from(group)) {
                g.order.push_back((key, id));
            }
        }
        for g in &mut self.groups {
            g.kept = true;
        }
    }

    /// Whether a held flow ends before this packet, and why: idle by the clock (the latest
    /// packet time seen, not this packet's own time: the sweep decides the same way, so when
    /// a flow ends does not depend on when the sweep ran, even where captures go back in
    /// time), or a new SYN reusing the key of a finished connection.
    fn ends_before(
        flow: &Flow,
        meta: &PacketMeta<'_>,
        now: Timestamp,
        timeouts: &Timeouts,
        quiet_ns: u64,
    ) -> Option<EndReason> {
        let since = now.0.saturating_sub(flow.last_ts.0);
        let idle = since > quiet_ns
            && since
                > timeouts
                    .for_flow(flow)
                    .saturating_mul(Timestamp::NANOS_PER_SEC);
        if idle {
            return Some(EndReason::Idle);
        }
        let new_syn = meta.proto == ip_proto::TCP
            && meta.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN
            && flow.tcp_finished();
        new_syn.then_some(EndReason::Reused)
    }

    /// The live flow with this key, if any (ICMP errors find the flow they quote this way).
    pub fn get_mut(&mut self, key: &FlowKey) -> Option<&mut (Flow, T)> {
        let hash = self.hasher.hash_one(key);
        self.map.find_mut(hash, |(k, _)| k == key).map(|(_, v)| v)
    }

    /// Notes that a flow's TCP connection just ended, so it expires on the short timeout.
    pub fn note_finished(&mut self, key: FlowKey, id: u64, last_ts: Timestamp) {
        let deadline = Timestamp(
            last_ts
                .plus_secs(self.timeouts.secs(TimeoutClass::TcpClosed))
                .0
                .saturating_add(1),
        );
        self.queues[TimeoutClass::TcpClosed.queue()].push(deadline, key, id);
        self.queued = true;
    }

    fn expire_idle(&mut self, ended: &mut impl FnMut(&Flow, &T, EndReason)) {
        let now = self.now;
        for q in 0..self.queues.len() {
            while let Some((key, id)) = self.queues[q].pop_due(now) {
                // One probe for a flow that ends (not one to look and one to take it out):
                // about 70 instructions of each of the 4,840 idle ends on the first 100k
                // packets of the benchmark capture; 181.70M to 180.95M in all (callgrind).
                let hash = self.hasher.hash_one(key);
                let Ok(o) = self.map.find_entry(hash, |(k, _)| *k == key) else {
                    continue;
                };
                let flow = &o.get().1.0;
                if flow.id != id {
                    continue;
                }
                // Idle means strictly longer than the timeout, as in `lookup`; the first
                // instant that holds is one nanosecond past `last_ts + timeout`. Re-queueing at
                // that instant (not at `last_ts + timeout`, which may equal `now`) keeps this
                // loop from taking the same entry forever.
                let idle_at = Timestamp(
                    flow.last_ts
                        .plus_secs(self.timeouts.for_flow(flow))
                        .0
                        .saturating_add(1),
                );
                if idle_at <= now {
                    // Handed out where it lies, then dropped: not moved out first (240 bytes
                    // of key, flow and inspector, moved twice on the way to `ended`; with the
                    // other ends, bench-small went from 372.39M to 371.62M, callgrind).
                    let (_, (f, t)) = o.get();
                    if let Some(g) = self.groups.get_mut(usize::from(f.group)) {
                        g.len -= 1;
                    }
                    ended(f, t, EndReason::Idle);
                    o.remove();
                } else {
                    self.queues[TimeoutClass::of(flow).queue()].push(idle_at, key, id);
                }
            }
        }
        self.compact_if_needed();
    }

    /// Drops queue entries of flows that already left, once the entries have doubled since
    /// the last time: when packet time stands still or moves slower than the timeouts (a
    /// frozen clock, a capture that jumped back, a live burst) no deadline passes, and evicted
    /// flows' entries would pile up. Amortized O(1) per flow.
    ///
    /// The threshold is twice what the last compaction left, not a multiple of the flows
    /// held: a closed TCP flow has two live entries (its class's and the closed one), so with
    /// a table full of them the entries never fell under twice the flows, and every new flow
    /// compacted the whole table again (the full benchmark capture replayed at top speed was
    /// read at a few hundred packets a second).
    fn compact_if_needed(&mut self) {
        // Checked as one sum first: this runs whenever a flow starts, and looking at each of
        // 64 groups every time cost 2% of all instructions.
        let queued: usize = self.queues.iter().map(ExpiryQueue::len).sum();
        if queued <= self.compact_at && self.ordered <= self.compact_at {
            return;
        }
        let (map, hasher) = (&self.map, &self.hasher);
        let live = |k: &FlowKey, id: &u64| {
            map.find(hasher.hash_one(k), |(key, _)| key == k)
                .is_some_and(|(_, (f, _))| f.id == *id)
        };
        for g in &mut self.groups {
            g.order.retain(|(k, id)| live(k, id));
        }
        self.ordered = self.groups.iter().map(|g| g.order.len()).sum();
        for q in &mut self.queues {
            q.retain(|k, id| live(k, id));
        }
        let queued: usize = self.queues.iter().map(ExpiryQueue::len).sum();
        self.compact_at = 2 * queued.max(self.ordered) + COMPACT_MIN;
        #[cfg(test)]
        {
            self.compactions += 1;
        }
    }

    /// Ends every flow, oldest first (the input is over).
    pub fn drain(&mut self, mut ended: impl FnMut(&Flow, &T, EndReason)) {
        let mut all: Vec<(Flow, T)> = self.map.drain().map(|(_, v)| v).collect();
        all.sort_by_key(|(f, _)| f.id);
        for (f, t) in all {
            ended(&f, &t, EndReason::Flush);
        }
        for g in &mut self.groups {
            g.order.clear();
            g.kept = false;
            self.ordered = 0;
            g.len = 0;
        }
        for q in &mut self.queues {
            q.clear();
        }
        self.compact_at = COMPACT_MIN;
    }

    /// Visits every live flow (for periodic reports).
    pub fn for_each(&self, mut f: impl FnMut(&Flow, &T)) {
        for (_, (flow, t)) in &self.map {
            f(flow, t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::from_ip;

    fn syn(src_port: u16, dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, dst[0], dst[1], dst[2],
            dst[3], 0, 0, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
        ];
        p[20..22].copy_from_slice(&src_port.to_be_bytes());
        p
    }

    #[test]
    fn spoofed_scan_stays_within_max_flows_and_counts_evictions() {
        let mut t: FlowTable<()> = FlowTable::new(Timeouts::default(), 1_000);
        let mut ended = 0u64;
        for i in 0..100_000u32 {
            let p = syn(
                1024 + (i % 50_000) as u16,
                [172, 16, (i >> 8) as u8, i as u8],
            );
            let meta = from_ip(&p).unwrap();
            let ts = Timestamp(u64::from(i) * 1_000_000);
            t.lookup(&meta, ts, |_, _| false, |_, _, _| ended += 1);
            assert!(t.len() <= 1_000);
        }
        assert_eq!(t.evicted(), 99_000);
        assert_eq!(ended, 99_000);
        assert!(t.groups[0].order.len() <= 2 * t.len() + 1024 + 1);
    }

    #[test]
    fn scan_with_frozen_packet_time_keeps_queues_bounded() {
        let mut t: FlowTable<()> = FlowTable::new(Timeouts::default(), 1_000);
        for i in 0..200_000u32 {
            let p = syn(
                1024 + (i % 50_000) as u16,
                [172, 16, (i >> 8) as u8, i as u8],
            );
            let meta = from_ip(&p).unwrap();
            t.lookup(&meta, Timestamp(5), |_, _| false, |_, _, _| {});
        }
        let bound = 2 * t.len() + 1024 + 1;
        assert!(t.groups[0].order.len() <= bound);
        assert!(t.queues.iter().all(|q| q.len() <= bound));
    }

    #[test]
    fn a_full_table_of_closed_flows_is_not_compacted_at_every_new_flow() {
        // Packet time frozen (as in a live burst shorter than any timeout), the table full,
        // and every flow a finished TCP connection (two live queue entries each): each new
        // flow evicts one and leaves stale entries. Compacting at every new flow made this
        // quadratic; the entries must double between compactions.
        let mut t: FlowTable<()> = FlowTable::new(Timeouts::default(), 1_000);
        for i in 0..50_000u32 {
            let p = syn(
                1024 + (i % 50_000) as u16,
                [172, 16, (i >> 8) as u8, i as u8],
            );
            let meta = from_ip(&p).unwrap();
            let id = t
                .lookup(&meta, Timestamp(5), |_, _| false, |_, _, _| {})
                .0
                .id;
            t.note_finished(FlowKey::of(&meta), id, Timestamp(5));
        }
        assert_eq!(t.evicted(), 49_000);
        assert!(t.compactions < 100, "{} compactions", t.compactions);
        let queued: usize = t.queues.iter().map(ExpiryQueue::len).sum();
        assert!(
            queued <= 4 * 2 * t.len() + 3 * 1024,
            "{queued} entries queued"
        );
    }

    #[test]
    fn a_full_group_evicts_its_oldest_live_flows_in_creation_order() {
        // The creation order is kept only from when the group is first full: the flows it
        // evicts must still be the oldest live ones, skipping one that ended idle and taking
        // a key's later flow (reused after a RST) as young.
        let mut t: FlowTable<()> = FlowTable::new(Timeouts::default(), 3);
        let mut ended = Vec::new();
        let mut at = |t: &mut FlowTable<()>, port: u16, secs: u64, flags: u8| {
            let mut p = syn(port, [17, 57, 144, 116]);
            p[33] = flags;
            let meta = from_ip(&p).unwrap();
            let (f, _) = t.lookup(
                &meta,
                Timestamp::from_parts(secs, 0),
                |_, _| false,
                |f, _, r| ended.push((f.client.1, r)),
            );
            f.update(&meta, Timestamp::from_parts(secs, 0), 40);
        };
        at(&mut t, 1000, 0, 0x02); // idle by 301
        at(&mut t, 1001, 200, 0x02);
        at(&mut t, 1002, 250, 0x02);
        at(&mut t, 1001, 251, 0x04); // a RST ends 1001's connection ...
        at(&mut t, 1001, 252, 0x02); // ... and a new SYN reuses its key: the youngest flow
        at(&mut t, 1003, 301, 0x02); // full: 1000 ends idle, nothing is evicted
        at(&mut t, 1004, 302, 0x02); // full: the oldest live (1002) is evicted
        at(&mut t, 1005, 303, 0x02); // then the reused 1001
        assert_eq!(
            ended,
            [
                (1001, EndReason::Reused),
                (1000, EndReason::Idle),
                (1002, EndReason::Evicted),
                (1001, EndReason::Evicted),
            ]
        );
        assert_eq!(t.evicted(), 2);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn flows_started_as_a_full_table_compacts_still_expire_and_get_evicted() {
        // A full table whose packet time stands still compacts now and then as a new flow
        // evicts an old one: the new flow must keep its queue entries (compacted with it not
        // yet in the map, it lost them and stayed held forever, neither idle nor evicted).
        let mut t: FlowTable<()> = FlowTable::new(Timeouts::default(), 100);
        for i in 0..20_000u32 {
            let p = syn(1024 + i as u16, [172, 16, (i >> 8) as u8, i as u8]);
            t.lookup(
                &from_ip(&p).unwrap(),
                Timestamp(5),
                |_, _| false,
                |_, _, _| {},
            );
        }
        assert!(t.compactions > 0);
        let mut idle = 0;
        let p = syn(80, [10, 9, 9, 9]);
        t.lookup(
            &from_ip(&p).unwrap(),
            Timestamp::from_parts(400, 0),
            |_, _| false,
            |_, _, r| idle += usize::from(r == EndReason::Idle),
        );
        assert_eq!((idle, t.len()), (100, 1));
    }

    #[test]
    fn idle_flow_ends_and_a_new_one_starts_on_the_same_key() {
        let mut t: FlowTable<()> = FlowTable::new(Timeouts::default(), 10);
        let p = syn(40_000, [17, 57, 144, 116]);
        let meta = from_ip(&p).unwrap();
        let mut reasons = Vec::new();
        t.lookup(
            &meta,
            Timestamp::from_parts(0, 0),
            |_, _| false,
            |_, _, r| reasons.push(r),
        );
        t.lookup(
            &meta,
            Timestamp::from_parts(10, 0),
            |_, _| false,
            |_, _, r| reasons.push(r),
        );
        assert!(reasons.is_empty(), "a SYN retransmission joins its flow");
        t.lookup(
            &meta,
            Timestamp::from_parts(400, 0),
            |_, _| false,
            |_, _, r| reasons.push(r),
        );
        assert_eq!(reasons, vec![EndReason::Idle]);
        assert_eq!(t.len(), 1);
    }
}

#[cfg(test)]
mod regression {
    use super::*;
    use crate::decode::from_ip;

    /// Deadlines queued out of order (packets older than the clock, busy flows queued again
    /// at their idle time) must still come out by (deadline, push order), through the FIFO
    /// and the heap alike, and only once due: the order flows are handed to `ended`. A
    /// compaction that drops the FIFO's latest entries lets a later push tie with an earlier
    /// late one, where only the push order decides (the plain case first); then pushes,
    /// sweeps and compactions interleaved, against a sorted set.
    #[test]
    fn out_of_order_deadlines_expire_in_deadline_then_push_order() {
        let udp = [
            0x45, 0, 0, 29, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x9c, 0x40, 0x30,
            0x39, 0, 9, 0, 0, b'x',
        ];
        let key = FlowKey::of(&from_ip(&udp).unwrap());
        // The plainest case: the FIFO's back dropped, a later push ties with a late one.
        let mut q = ExpiryQueue::default();
        q.push(Timestamp(10), key, 1);
        q.push(Timestamp(5), key, 2);
        q.retain(|_, id| *id != 1);
        q.push(Timestamp(5), key, 3);
        let order: Vec<_> = std::iter::from_fn(|| q.pop_due(Timestamp(5))).collect();
        assert_eq!(order, [(key, 2), (key, 3)]);
        let mut model = std::collections::BTreeSet::new();
        let (mut x, mut clock, mut late, mut pops) = (12_345u64, 0u64, 0, 0);
        for i in 0..20_000u64 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            clock += x >> 62;
            // Mostly the clock plus the timeout, one in four up to 10 behind: many ties.
            let behind = if x >> 60 & 3 == 0 { (x >> 40) % 11 } else { 0 };
            let deadline = Timestamp(clock + 10 - behind);
            q.push(deadline, key, i);
            model.insert((deadline, i));
            late += usize::from(!q.late.is_empty());
            if (x >> 20) % 97 == 0 {
                // A compaction dropping stale entries, the latest ones among them.
                let stale = |id: u64| id % 3 == x >> 50 & 1 || id + 20 > i;
                q.retain(|_, id| !stale(*id));
                model.retain(|(_, id)| !stale(*id));
            }
            if (x >> 30) % 5 == 0 {
                let now = Timestamp(clock + (x >> 34) % 3);
                while let Some((_, id)) = q.pop_due(now) {
                    let (deadline, want) = model.pop_first().expect("no more entries");
                    assert_eq!(id, want, "popped at {now:?}");
                    assert!(
                        deadline <= now,
                        "{id} popped at {now:?}, due at {deadline:?}"
                    );
                    pops += 1;
                }
                assert!(
                    model.first().is_none_or(|(d, _)| *d > now),
                    "due but not popped"
                );
            }
            assert_eq!(q.len(), model.len());
        }
        assert!(late > 1_000 && pops > 10_000, "{late} late, {pops} popped");
    }

    /// A flow idle for exactly its timeout, to the nanosecond, must neither hang the sweep nor
    /// end (idle means strictly longer). Found by fuzzing the capture-file target.
    #[test]
    fn sweep_at_exactly_the_idle_timeout_terminates() {
        let mut t: FlowTable<()> = FlowTable::new(Timeouts::default(), 10);
        let a = [
            0x45, 0, 0, 29, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x9c, 0x40, 0x30,
            0x39, 0, 9, 0, 0, b'x',
        ];
        let mut b = a;
        b[21] = 0x41; // another source port: another flow
        let (ma, mb) = (from_ip(&a).unwrap(), from_ip(&b).unwrap());
        let mut ended = 0;
        t.lookup(
            &ma,
            Timestamp::from_parts(100, 0),
            |_, _| false,
            |_, _, _| ended += 1,
        );
        t.lookup(
            &mb,
            Timestamp::from_parts(220, 0),
            |_, _| false,
            |_, _, _| ended += 1,
        );
        assert_eq!(ended, 0, "exactly the timeout is not idle yet");
        t.lookup(
            &mb,
            Timestamp::from_parts(221, 0),
            |_, _| false,
            |_, _, _| ended += 1,
        );
        assert_eq!(ended, 1);
    }
}
