//! Who is behind failed connection attempts, kept bounded and mergeable: which clients showed
//! other activity (an answered flow, a DNS answer), where their unanswered attempts went, and
//! how many sources each destination of unanswered attempts drew. An unanswered SYN costs a
//! spoofer one packet, so verdicts weigh such attempts by the clients behind them.
//!
//! Every table here keeps the entries with the smallest hashes (a bottom-k sample), so what a
//! merge of per-worker tables holds is the same as one table fed everything, whatever the
//! split of flows between workers: a key kept at the end was never dropped by any worker, so
//! its counts are exact. What was dropped is counted where it can be exactly (attempts whose
//! client fell outside the table) and estimated from the sample otherwise (how many clients).

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;

use serde::Serialize;

use crate::signature::{ServiceId, Transport};

/// (service, transport, server port): the key of a health line's port.
pub type HealthKey = (ServiceId, Transport, u16);

/// Most clients remembered (per worker and merged).
pub const MAX_CLIENTS: usize = 32_768;

/// Most destinations of unanswered attempts remembered.
pub const MAX_TARGETS: usize = 1_024;

/// Distinct hosts or ports, each, to which a client's unanswered attempts went before it
/// counts as scanning. A device whose Apple services are all blocked tries a handful of
/// addresses per service; a scan tries hundreds.
pub const SCAN_MIN_DESTINATIONS: u64 = 100;

/// Unanswered attempts to one destination before it can count as flooded.
pub const FLOOD_MIN_ATTEMPTS: u64 = 100;

/// Distinct sources of those attempts before the destination counts as flooded.
pub const FLOOD_MIN_SOURCES: u64 = 50;

/// A stable 64-bit hash (the same in every run and worker), which orders the samples.
pub fn stable_hash<T: Hash>(x: &T) -> u64 {
    foldhash::fast::FixedState::with_seed(0x7370_6f6f_6665_6421).hash_one(x)
}

/// A distinct-count sketch: the `K` smallest hashes seen (exact below `K` values, an estimate
/// from the `K`-th smallest hash above). Merging keeps the `K` smallest of both, so the result
/// does not depend on how values were split.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Distinct<const K: usize> {
    /// Sorted ascending, at most `K`.
    hashes: Vec<u64>,
}

impl<const K: usize> Distinct<K> {
    /// Notes a value by its hash.
    pub fn insert(&mut self, h: u64) {
        if let Err(i) = self.hashes.binary_search(&h)
            && i < K
        {
            self.hashes.insert(i, h);
            self.hashes.truncate(K);
        }
    }

    /// Adds another sketch.
    pub fn merge(&mut self, other: &Self) {
        for h in &other.hashes {
            self.insert(*h);
        }
    }

    /// Whether the count is exact (fewer than `K` distinct values seen).
    pub fn is_exact(&self) -> bool {
        self.hashes.len() < K
    }

    /// Distinct values: exact below `K`, else estimated as (K-1) / (K-th smallest hash / 2^64).
    pub fn estimate(&self) -> u64 {
        match self.hashes.last() {
            Some(&max) if !self.is_exact() => {
                let frac = (max as f64 + 1.0) / 18_446_744_073_709_551_616.0;
                ((K as f64 - 1.0) / frac).round() as u64
            }
            _ => self.hashes.len() as u64,
        }
    }
}

/// Attempts of one client to one Apple service port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientAttempts {
    /// Attempts (any outcome).
    pub attempts: u64,
    /// Of them, with no reply at all.
    pub unanswered: u64,
}

/// What one client did, as far as the verdicts care.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    /// It completed some exchange: a flow it opened was answered, or it got a DNS answer.
    pub active: bool,
    /// Its attempts with no reply at all, to anything.
    pub unanswered: u64,
    /// Distinct hosts those went to.
    pub hosts: Distinct<128>,
    /// Distinct server ports those went to.
    pub ports: Distinct<128>,
    /// Its attempts to Apple service ports (labelled at least `likely`).
    pub apple: BTreeMap<HealthKey, ClientAttempts>,
}

impl Client {
    /// Whether its unanswered attempts went to so many hosts or ports that it looks like a
    /// scan.
    pub fn scanning(&self) -> bool {
        self.hosts.estimate() >= SCAN_MIN_DESTINATIONS
            || self.ports.estimate() >= SCAN_MIN_DESTINATIONS
    }

    fn merge(&mut self, o: &Self) {
        self.active |= o.active;
        self.unanswered += o.unanswered;
        self.hosts.merge(&o.hosts);
        self.ports.merge(&o.ports);
        for (k, a) in &o.apple {
            let e = self.apple.entry(*k).or_default();
            e.attempts += a.attempts;
            e.unanswered += a.unanswered;
        }
    }
}

/// A destination of unanswered attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Target {
    /// `tcp` or `udp`.
    pub proto: Transport,
    /// Server address.
    pub server: IpAddr,
    /// Server port.
    pub port: u16,
}

/// Unanswered attempts to one destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetCount {
    /// Attempts with no reply at all.
    pub unanswered: u64,
    /// Of them, flows of a single packet (one SYN, never retransmitted; one datagram).
    pub one_packet: u64,
    /// Their distinct sources.
    pub sources: Distinct<256>,
}

/// A table that keeps the `cap` entries whose keys hash smallest.
///
/// Looked up in a hash map (seeded per process, so crafted keys cannot make its probes long),
/// each entry with its stable hash; the order the sample is defined by, (stable hash, key), is
/// kept only once the table is full, in a max-heap of the kept keys: the only entry ever
/// dropped is the largest. This runs for every flow that ends: an ordered map of (hash, key)
/// cost a tree search of 16 to 32-byte keys per flow, 2.3% of wall time on the benchmark
/// capture (perf); the first 100k packets went from 185.78M to 184.51M instructions
/// (callgrind).
#[derive(Debug, Clone)]
pub struct Sample<K, V> {
    map: HashMap<K, (u64, V), foldhash::fast::RandomState>,
    /// (stable hash, key) of every entry, largest on top, once the table has been full
    /// (empty before: until then nothing is dropped and the order is not needed).
    order: BinaryHeap<(u64, K)>,
    cap: usize,
}

impl<K: Eq + Hash, V: PartialEq> PartialEq for Sample<K, V> {
    fn eq(&self, other: &Self) -> bool {
        // `order` follows from the entries.
        self.cap == other.cap && self.map == other.map
    }
}

impl<K: Eq + Hash, V: Eq> Eq for Sample<K, V> {}

impl<K: Ord + Hash + Clone, V: Default> Sample<K, V> {
    /// An empty table of at most `cap` entries.
    pub fn new(cap: usize) -> Self {
        Self {
            map: HashMap::default(),
            order: BinaryHeap::new(),
            cap,
        }
    }

    /// The entry of `key`, or `None` when the table is full of smaller hashes.
    pub fn entry(&mut self, key: &K) -> Option<&mut V> {
        if self.map.len() < self.cap {
            // Not full: the stable hash is kept with a new entry, and needed for nothing else
            // (hashing every client of every flow that ended cost ~20 instructions a flow;
            // with `decide_own` returning the endpoint's label of a flow without names as
            // made, bench-small went from 373.14M to 372.39M instructions, callgrind).
            return Some(
                &mut self
                    .map
                    .entry(key.clone())
                    .or_insert_with(|| (stable_hash(key), V::default()))
                    .1,
            );
        }
        let h = stable_hash(key);
        if self.order.is_empty() {
            self.order = self.map.iter().map(|(k, (h, _))| (*h, k.clone())).collect();
        }
        // A key kept hashes no larger than the largest kept: anything larger is out
        // without a lookup.
        let largest = self.order.peek().map(|(l, _)| *l);
        if largest.is_some_and(|l| h > l) {
            return None;
        }
        if !self.map.contains_key(key) {
            let new = (h, key.clone());
            if self.order.peek().is_some_and(|top| new > *top) {
                return None;
            }
            if let Some((_, gone)) = self.order.pop() {
                self.map.remove(&gone);
            }
            self.order.push(new);
        }
        Some(
            &mut self
                .map
                .entry(key.clone())
                .or_insert_with(|| (h, V::default()))
                .1,
        )
    }

    /// Adds another table, merging values with `add`.
    pub fn merge(&mut self, other: &Self, add: impl Fn(&mut V, &V)) {
        for (key, (_, v)) in &other.map {
            if let Some(mine) = self.entry(key) {
                add(mine, v);
            }
        }
    }

    /// The entries kept, in no particular order (what is kept does not depend on it; the
    /// report sorts what it shows).
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter().map(|(k, (_, v))| (k, v))
    }

    /// Entries kept.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether the table is full, so that it may hold only a sample.
    pub fn is_full(&self) -> bool {
        self.map.len() >= self.cap
    }

    /// Distinct keys seen: exact when not full, else estimated from the largest hash kept
    /// (the same estimate as [`Distinct::estimate`]).
    pub fn estimate(&self) -> u64 {
        let largest = self.map.values().map(|(h, _)| *h).max();
        match largest {
            Some(max) if self.is_full() => {
                let frac = (max as f64 + 1.0) / 18_446_744_073_709_551_616.0;
                ((self.cap as f64 - 1.0) / frac).round() as u64
            }
            _ => self.map.len() as u64,
        }
    }
}

/// Clients and destinations of unanswered attempts, as counted by one worker or merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// Clients by address.
    pub clients: Sample<IpAddr, Client>,
    /// Destinations of unanswered attempts.
    pub targets: Sample<Target, TargetCount>,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            clients: Sample::new(MAX_CLIENTS),
            targets: Sample::new(MAX_TARGETS),
        }
    }
}

impl Activity {
    /// Notes that `client` completed an exchange.
    pub fn note_active(&mut self, client: IpAddr) {
        if let Some(c) = self.clients.entry(&client) {
            c.active = true;
        }
    }

    /// Notes an attempt with no reply at all from `client` to `target`, of `packets` packets.
    pub fn note_unanswered(&mut self, client: IpAddr, target: Target, packets: u64) {
        if let Some(c) = self.clients.entry(&client) {
            c.unanswered += 1;
            c.hosts.insert(stable_hash(&target.server));
            c.ports.insert(stable_hash(&target.port));
        }
        if let Some(t) = self.targets.entry(&target) {
            t.unanswered += 1;
            t.one_packet += u64::from(packets == 1);
            t.sources.insert(stable_hash(&client));
        }
    }

    /// Notes an attempt of `client` to an Apple service port.
    pub fn note_apple(&mut self, client: IpAddr, key: HealthKey, unanswered: bool) {
        if let Some(c) = self.clients.entry(&client) {
            let a = c.apple.entry(key).or_default();
            a.attempts += 1;
            a.unanswered += u64::from(unanswered);
        }
    }

    /// Adds another worker's activity.
    pub fn merge(&mut self, other: &Self) {
        self.clients.merge(&other.clients, Client::merge);
        self.targets.merge(&other.targets, |a, b| {
            a.unanswered += b.unanswered;
            a.one_packet += b.one_packet;
            a.sources.merge(&b.sources);
        });
    }

    /// Who is behind the attempts to one Apple service port, and which unanswered ones count.
    pub fn basis(&self, key: &HealthKey, unanswered_total: u64) -> Basis {
        let mut b = self.basis_where(|k| k == key);
        let checked =
            b.unanswered_counted + b.unanswered_from_inactive + b.unanswered_from_scanners;
        b.unanswered_unchecked = unanswered_total.saturating_sub(checked);
        b
    }

    /// The distinct clients whose attempts to any port of `service` count: (clients, active
    /// ones). (The per-port [`Basis::clients`] would count a client of two ports twice.)
    pub fn service_clients(&self, service: ServiceId) -> (u64, u64) {
        let b = self.basis_where(|k| k.0 == service);
        (b.clients, b.active_clients)
    }

    fn basis_where(&self, wanted: impl Fn(&HealthKey) -> bool) -> Basis {
        let mut b = Basis::default();
        for (_, c) in self.clients.iter() {
            let mut a = ClientAttempts::default();
            for (_, x) in c.apple.iter().filter(|(k, _)| wanted(k)) {
                a.attempts += x.attempts;
                a.unanswered += x.unanswered;
            }
            if a.attempts == 0 {
                continue;
            }
            let counted = if c.scanning() {
                b.unanswered_from_scanners += a.unanswered;
                0
            } else if c.active {
                a.unanswered
            } else {
                b.unanswered_from_inactive += a.unanswered;
                0
            };
            b.unanswered_counted += counted;
            if a.attempts - a.unanswered + counted > 0 {
                b.clients += 1;
                b.active_clients += u64::from(c.active);
            }
        }
        b
    }
}

/// Who is behind the attempts to an Apple service port, and which unanswered attempts count
/// towards its verdict: only those of clients that completed some other exchange in the
/// capture and do not scan. Attempts a reply refused (RST, ICMP error) always count: the reply
/// is the evidence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Basis {
    /// Distinct clients whose attempts count.
    pub clients: u64,
    /// Of them, clients that completed some other exchange in the capture.
    pub active_clients: u64,
    /// Unanswered attempts that count.
    pub unanswered_counted: u64,
    /// Unanswered attempts not counted: their sources did nothing else in the capture.
    pub unanswered_from_inactive: u64,
    /// Unanswered attempts not counted: their sources tried many hosts or ports (a scan).
    pub unanswered_from_scanners: u64,
    /// Unanswered attempts not counted: their sources fell outside the bounded client table.
    pub unanswered_unchecked: u64,
}

impl Basis {
    /// Unanswered attempts not counted, for any reason.
    pub fn discounted(&self) -> u64 {
        self.unanswered_from_inactive + self.unanswered_from_scanners + self.unanswered_unchecked
    }

    /// Adds another port's basis.
    pub fn add(&mut self, o: &Self) {
        self.clients += o.clients;
        self.active_clients += o.active_clients;
        self.unanswered_counted += o.unanswered_counted;
        self.unanswered_from_inactive += o.unanswered_from_inactive;
        self.unanswered_from_scanners += o.unanswered_from_scanners;
        self.unanswered_unchecked += o.unanswered_unchecked;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_is_exact_below_k_and_estimates_above() {
        let mut d = Distinct::<256>::default();
        for i in 0..100u32 {
            d.insert(stable_hash(&i));
            d.insert(stable_hash(&i));
        }
        assert_eq!((d.is_exact(), d.estimate()), (true, 100));
        for i in 0..200_000u32 {
            d.insert(stable_hash(&i));
        }
        let e = d.estimate();
        assert!((170_000..230_000).contains(&e), "{e}");
    }

    #[test]
    fn merged_samples_do_not_depend_on_the_split() {
        let ip = |i: u32| IpAddr::from(i.to_be_bytes());
        let one = |n: u32| {
            let mut a = Activity::default();
            let t = Target {
                proto: Transport::Tcp,
                server: ip(1),
                port: 5223,
            };
            for i in 0..n {
                a.note_unanswered(ip(i), t, 1);
                if i.is_multiple_of(7) {
                    a.note_active(ip(i));
                }
            }
            a
        };
        let whole = {
            let mut m = Activity::default();
            m.merge(&one(100_000));
            m
        };
        let mut split = Activity::default();
        let (mut a, mut b) = (Activity::default(), Activity::default());
        let t = Target {
            proto: Transport::Tcp,
            server: ip(1),
            port: 5223,
        };
        for i in 0..100_000u32 {
            let w = if stable_hash(&(i * 31)).is_multiple_of(2) {
                &mut a
            } else {
                &mut b
            };
            w.note_unanswered(ip(i), t, 1);
            if i.is_multiple_of(7) {
                w.note_active(ip(i));
            }
        }
        split.merge(&b);
        split.merge(&a);
        let kept = |x: &Activity| -> Vec<(IpAddr, Client)> {
            let mut v: Vec<_> = x.clients.iter().map(|(k, v)| (*k, v.clone())).collect();
            v.sort_by_key(|(k, _)| *k);
            v
        };
        assert_eq!(kept(&whole), kept(&split));
        assert_eq!(whole.clients.len(), MAX_CLIENTS, "the sample was full");
        let targets = |x: &Activity| -> Vec<(Target, TargetCount)> {
            let mut v: Vec<_> = x.targets.iter().map(|(k, v)| (*k, v.clone())).collect();
            v.sort_by_key(|(k, _)| *k);
            v
        };
        assert_eq!(targets(&whole), targets(&split));
        assert_eq!(whole, split);
    }
}
