//! State that crosses flows (and, in the pipeline, workers): names bound to addresses by DNS
//! answers, endpoints learned from mDNS, and Bonjour observations. Lookups are by packet time,
//! so the answer does not depend on which worker saw which packet first. Every store is
//! bounded and counts what it had to drop.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use crate::capture::Timestamp;

/// Bindings kept per address. CDN addresses carry many names at once; when the list is full,
/// expired answers go first, then the oldest. Generous on purpose: the pipeline's dispatcher
/// records answers up to a queue length ahead of the workers' lookups, and a lookup must not
/// find its answer already pushed out by later ones, or the output would depend on threads.
const BINDINGS_PER_ADDRESS: usize = 16;
/// Most addresses the DNS bindings store holds, whatever `--max-flows` allows: at about
/// 250-450 bytes per address with one binding (measured, `scripts/scan-memory.sh`), 50,000
/// addresses cost about 20 MiB. A binding matters only until the flows it labels start, so
/// this many addresses answered within the lifetime of their answers is far more than a small
/// network's resolver hands out; beyond it the least useful address is evicted and counted.
pub const DNS_ADDRESSES: usize = 50_000;
/// Most endpoints the mDNS endpoints store holds, whatever `--max-flows` allows (about 450
/// bytes each, measured): a link with more than 10,000 devices advertising services at once
/// is not a small network.
pub const MDNS_ENDPOINTS: usize = 10_000;
/// Fewest entries a name store holds, however small `--max-flows` is (a few hundred KiB): a
/// tiny flow cap must not starve the stores that label the flows it keeps.
pub const NAME_STORE_MIN: usize = 1_000;
/// Minimum lifetime given to a binding, so a TTL of 0 still labels the connection it precedes.
const MIN_TTL_SECS: u64 = 10;

/// A record's TTL in seconds as RFC 2181 §8 reads it: a value with the top bit set (2^31 or
/// more) is treated as 0. Read literally, such an answer (broken or hostile) would bind its
/// name for 68 years or more, labelling every later flow to that address by a stale name.
pub fn ttl_secs(raw: u32) -> u64 {
    if raw >= 1 << 31 { 0 } else { u64::from(raw) }
}

/// A name bound to an address by a DNS answer (or an mDNS record), valid in packet time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameBinding {
    /// The names of the answer's chain, query name first, final A/AAAA owner last.
    pub names: Arc<[Box<str>]>,
    /// When the answer was seen.
    pub seen: Timestamp,
    /// When it stops applying (seen + TTL).
    pub expires: Timestamp,
}

/// Dispatch sequence numbers: the dispatcher numbers the packets it routes, and every change
/// to a store is stamped with the number of the packet that made it. A worker looks a store
/// up as of its packet's number, so it sees exactly what one thread would have seen at that
/// packet, however far the dispatcher has gone ahead: the output does not depend on the
/// number of threads. Old versions are dropped once every worker is past them.
pub type Seq = u64;

/// A value with the dispatch numbers between which it is visible: from `since`, before `until`.
#[derive(Debug, Clone)]
struct Version<V> {
    value: V,
    since: Seq,
    until: Seq,
}

impl<V> Version<V> {
    fn new(value: V, since: Seq) -> Self {
        Self {
            value,
            since,
            until: Seq::MAX,
        }
    }

    fn is_live(&self) -> bool {
        self.until == Seq::MAX
    }

    fn visible_at(&self, seq: Seq) -> bool {
        self.since <= seq && seq < self.until
    }
}

/// Versions retired (by eviction or replacement) and when: dropped for good once no worker can
/// still look them up.
#[derive(Debug)]
struct Retired<K>(std::sync::Mutex<std::collections::VecDeque<(K, Seq)>>);

impl<K> Default for Retired<K> {
    fn default() -> Self {
        Self(std::sync::Mutex::new(std::collections::VecDeque::new()))
    }
}

impl<K: Copy> Retired<K> {
    fn push(&self, key: K, at: Seq) {
        if let Ok(mut q) = self.0.lock() {
            q.push_back((key, at));
        }
    }

    /// Keys with versions retired before `horizon` (no worker can look them up any more).
    fn take_before(&self, horizon: Seq) -> Vec<K> {
        let Ok(mut q) = self.0.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while q.front().is_some_and(|(_, at)| *at <= horizon) {
            if let Some((k, _)) = q.pop_front() {
                out.push(k);
            }
        }
        out
    }
}

/// What both name stores keep: per key a list of versions, the live keys in insertion order
/// (to choose what to evict), the retired versions (to drop them once no worker can see them),
/// and the counts. Only the dispatcher changes it; workers read it through `map`.
#[derive(Debug)]
struct Versions<K: Eq + std::hash::Hash, V> {
    map: DashMap<K, Vec<Version<V>>, foldhash::fast::RandomState>,
    order: InsertionOrder<K>,
    retired: Retired<K>,
    /// Keys with a live version.
    live: std::sync::atomic::AtomicUsize,
    capacity: usize,
    evictions: AtomicU64,
}

impl<K: Eq + std::hash::Hash + Copy, V> Versions<K, V> {
    fn new(capacity: usize) -> Self {
        Self {
            map: DashMap::default(),
            order: InsertionOrder::default(),
            retired: Retired::default(),
            live: std::sync::atomic::AtomicUsize::new(0),
            capacity: capacity.max(1),
            evictions: AtomicU64::new(0),
        }
    }

    /// Drops versions retired before `horizon`, and keys left with none.
    fn purge(&self, horizon: Seq) {
        for k in self.retired.take_before(horizon) {
            self.map.remove_if_mut(&k, |_, list| {
                list.retain(|v| v.until > horizon);
                list.is_empty()
            });
        }
    }

    /// Makes room for a new live key at dispatch number `seq`: evicts the oldest-inserted key
    /// that `expires` ranks lowest when the store is full.
    fn admit<S: Ord>(&self, key: K, seq: Seq, expires: impl Fn(&[Version<V>]) -> S) {
        if self.live.load(Ordering::Relaxed) >= self.capacity {
            let score = |k: &K| self.map.get(k).map(|l| expires(&l));
            if let Some(victim) = self.order.take_victim(score) {
                self.retire(victim, seq);
                self.live.fetch_sub(1, Ordering::Relaxed);
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.order.push(key);
        self.live.fetch_add(1, Ordering::Relaxed);
    }

    /// Ends every live version of `key` at dispatch number `seq`.
    fn retire(&self, key: K, seq: Seq) {
        if let Some(mut e) = self.map.get_mut(&key) {
            for v in e.value_mut().iter_mut().filter(|v| v.is_live()) {
                v.until = seq;
            }
        }
        self.retired.push(key, seq);
    }
}

/// Names bound to addresses by DNS answers.
#[derive(Debug)]
pub struct DnsBindings {
    store: Versions<IpAddr, NameBinding>,
}

/// Keys in the order they were first stored, to choose what to evict. The map's own order
/// depends on a random hash seed and the machine's core count, so a victim picked from it made
/// the output differ from run to run; this one depends on the packets alone. Only the
/// dispatcher stores (one thread, in packet order), so the lock is never contended.
#[derive(Debug)]
struct InsertionOrder<K>(std::sync::Mutex<std::collections::VecDeque<K>>);

impl<K> Default for InsertionOrder<K> {
    fn default() -> Self {
        Self(std::sync::Mutex::new(std::collections::VecDeque::new()))
    }
}

/// Keys looked at, oldest first, when choosing one to evict.
const EVICTION_SCAN: usize = 64;

impl<K: Copy + PartialEq> InsertionOrder<K> {
    fn push(&self, k: K) {
        if let Ok(mut q) = self.0.lock() {
            q.push_back(k);
        }
    }

    /// Takes out the key, among the oldest [`EVICTION_SCAN`], that `score` ranks lowest
    /// (the first on a tie).
    fn take_victim<S: Ord>(&self, score: impl Fn(&K) -> S) -> Option<K> {
        let mut q = self.0.lock().ok()?;
        let at = q
            .iter()
            .take(EVICTION_SCAN)
            .enumerate()
            .min_by_key(|(i, k)| (score(k), *i))
            .map(|(i, _)| i)?;
        q.remove(at)
    }
}

impl DnsBindings {
    /// An empty store holding at most `capacity` addresses.
    pub fn new(capacity: usize) -> Self {
        Self {
            store: Versions::new(capacity),
        }
    }

    /// Binds `names` to `addr` from `seen` for `ttl` seconds (the record's raw TTL, read
    /// through [`ttl_secs`]; at least 10 seconds), as of dispatch number `seq`. Versions no
    /// worker can see any more (retired before `horizon`) are dropped on the way.
    pub fn bind(
        &self,
        addr: IpAddr,
        names: Arc<[Box<str>]>,
        seen: Timestamp,
        ttl: u32,
        (seq, horizon): (Seq, Seq),
    ) {
        let store = &self.store;
        store.purge(horizon);
        let expires = seen.plus_secs(ttl_secs(ttl).max(MIN_TTL_SECS));
        let binding = (names, seen, expires);
        // An address already bound (most answers repeat one) is looked up once, not once to
        // see whether it is live and once more to add to it: 396.4M -> 396.2M instructions on
        // bench-small (callgrind).
        if let Some(mut list) = store.map.get_mut(&addr)
            && list.iter().any(Version::is_live)
        {
            Self::add(&store.retired, addr, list.value_mut(), binding, seq);
            return;
        }
        // Among the oldest addresses, the one whose bindings expire first (all expired, if
        // any has).
        store.admit(addr, seq, |list| {
            list.iter()
                .filter(|b| b.is_live())
                .map(|b| b.value.expires)
                .max()
                .unwrap_or(seen)
        });
        let mut entry = store.map.entry(addr).or_default();
        Self::add(&store.retired, addr, entry.value_mut(), binding, seq);
    }

    /// Adds the binding of `names` seen at `seen` until `expires` to the versions `list` of
    /// `addr`, as of dispatch number `seq`.
    fn add(
        retired: &Retired<IpAddr>,
        addr: IpAddr,
        list: &mut Vec<Version<NameBinding>>,
        (names, seen, expires): (Arc<[Box<str>]>, Timestamp, Timestamp),
        seq: Seq,
    ) {
        let mut first_seen = seen;
        if let Some(b) = list
            .iter_mut()
            .find(|b| b.is_live() && b.value.names == names)
        {
            // The same answer again: keep the first sighting, extend the lifetime, as a new
            // version (a worker behind this packet still sees the old lifetime).
            if b.value.expires >= expires {
                return;
            }
            first_seen = b.value.seen;
            b.until = seq;
            retired.push(addr, seq);
        } else if list.iter().filter(|b| b.is_live()).count() >= BINDINGS_PER_ADDRESS {
            let live: Vec<usize> = (0..list.len()).filter(|&i| list[i].is_live()).collect();
            let victim = live
                .iter()
                .copied()
                .find(|&i| list[i].value.expires < seen)
                .unwrap_or(live[0]);
            list[victim].until = seq;
            retired.push(addr, seq);
        }
        list.push(Version::new(
            NameBinding {
                names,
                seen: first_seen,
                expires: expires.max(first_seen),
            },
            seq,
        ));
    }

    /// The binding for `addr` in force at `at` as of now (the latest versions).
    pub fn lookup(&self, addr: IpAddr, at: Timestamp) -> Option<NameBinding> {
        self.lookup_as_of(addr, at, Seq::MAX - 1)
    }

    /// The binding for `addr` in force at `at`, as the store stood at dispatch number `seq`:
    /// seen at or before `at` and not expired; the most recent such answer wins.
    pub fn lookup_as_of(&self, addr: IpAddr, at: Timestamp, seq: Seq) -> Option<NameBinding> {
        let entry = self.store.map.get(&addr)?;
        entry
            .iter()
            .filter(|b| b.visible_at(seq) && b.value.seen <= at && at <= b.value.expires)
            .max_by_key(|b| (b.value.seen, b.since))
            .map(|b| b.value.clone())
    }

    /// Addresses currently held.
    pub fn len(&self) -> usize {
        self.store.live.load(Ordering::Relaxed)
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Addresses evicted because the store was full.
    pub fn evictions(&self) -> u64 {
        self.store.evictions.load(Ordering::Relaxed)
    }
}

/// An endpoint advertised over mDNS (SRV port at an A/AAAA address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdnsEndpoint {
    /// The service type, `_airplay._tcp`.
    pub service_type: Box<str>,
    /// The instance name, `Living Room._airplay._tcp.local`.
    pub instance: Box<str>,
    /// When it was announced.
    pub seen: Timestamp,
    /// When the announcement expires.
    pub expires: Timestamp,
}

/// Endpoints learned from mDNS announcements, keyed by (address, port); versioned by dispatch
/// number like [`DnsBindings`].
#[derive(Debug)]
pub struct MdnsEndpoints {
    store: Versions<(IpAddr, u16), MdnsEndpoint>,
}

impl MdnsEndpoints {
    /// An empty store holding at most `capacity` endpoints.
    pub fn new(capacity: usize) -> Self {
        Self {
            store: Versions::new(capacity),
        }
    }

    /// Records an advertised endpoint as of dispatch number `seq`; an earlier announcement of
    /// the same endpoint is kept (first sighting) with its lifetime extended.
    pub fn learn(&self, addr: IpAddr, port: u16, ep: MdnsEndpoint, (seq, horizon): (Seq, Seq)) {
        let (store, key) = (&self.store, (addr, port));
        store.purge(horizon);
        let current = store
            .map
            .get(&key)
            .and_then(|l| l.iter().find(|v| v.is_live()).map(|v| v.value.clone()));
        let next = match &current {
            None => {
                let expires = |list: &[Version<MdnsEndpoint>]| {
                    list.iter().find(|v| v.is_live()).map(|v| v.value.expires)
                };
                store.admit(key, seq, expires);
                ep
            }
            Some(e) if e.service_type == ep.service_type => {
                if e.expires >= ep.expires {
                    return;
                }
                MdnsEndpoint {
                    expires: ep.expires,
                    ..e.clone()
                }
            }
            Some(e) if ep.seen >= e.expires => ep,
            Some(_) => return,
        };
        if current.is_some() {
            store.retire(key, seq);
        }
        store
            .map
            .entry(key)
            .or_default()
            .push(Version::new(next, seq));
    }

    /// The endpoint advertised for `(addr, port)` at time `at`, as of now.
    pub fn lookup(&self, addr: IpAddr, port: u16, at: Timestamp) -> Option<MdnsEndpoint> {
        self.lookup_as_of(addr, port, at, Seq::MAX - 1)
    }

    /// The endpoint advertised for `(addr, port)` at time `at`, as the store stood at dispatch
    /// number `seq`.
    pub fn lookup_as_of(
        &self,
        addr: IpAddr,
        port: u16,
        at: Timestamp,
        seq: Seq,
    ) -> Option<MdnsEndpoint> {
        let list = self.store.map.get(&(addr, port))?;
        list.iter()
            .find(|v| v.visible_at(seq) && v.value.seen <= at && at <= v.value.expires)
            .map(|v| v.value.clone())
    }

    /// Endpoints currently held.
    pub fn len(&self) -> usize {
        self.store.live.load(Ordering::Relaxed)
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Endpoints evicted because the store was full.
    pub fn evictions(&self) -> u64 {
        self.store.evictions.load(Ordering::Relaxed)
    }
}

/// What one service type's mDNS traffic showed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BonjourType {
    /// Addresses that announced it (responses naming it).
    pub announcers: BTreeSet<IpAddr>,
    /// Addresses that searched for it (queries naming it).
    pub searchers: BTreeSet<IpAddr>,
    /// Instance names announced.
    pub instances: BTreeSet<Box<str>>,
}

/// Most addresses remembered per service type and role.
const MAX_HOSTS_PER_TYPE: usize = 4096;
/// Most service types remembered.
const MAX_TYPES: usize = 4096;

/// A set kept unordered while observations come in (one hash probe a note; a tree insert
/// cost more), put in order when a report asks for it.
type Unordered<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

/// One service type's observations while they are gathered: what becomes a [`BonjourType`]
/// in a snapshot. With the trees of `BonjourType` here: 396.2M -> 395.6M instructions on
/// bench-small (callgrind).
#[derive(Debug, Default)]
struct Gathered {
    announcers: Unordered<IpAddr>,
    searchers: Unordered<IpAddr>,
    instances: Unordered<Box<str>>,
}

/// Bonjour observations: per service type, who announced and who searched; per device, its
/// model where TXT records tell it.
#[derive(Debug, Default)]
pub struct BonjourSeen {
    types: DashMap<Box<str>, Gathered, foldhash::fast::RandomState>,
    models: DashMap<IpAddr, Box<str>, foldhash::fast::RandomState>,
    dropped: AtomicU64,
}

impl BonjourSeen {
    /// Notes that `host` announced (`announced`) or searched for a service type.
    pub fn note(&self, service_type: &str, host: IpAddr, announced: bool, instance: Option<&str>) {
        // Look up by &str first: the key is allocated only for a type seen the first time.
        let mut t = match self.types.get_mut(service_type) {
            Some(t) => t,
            None if self.types.len() >= MAX_TYPES => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            None => self.types.entry(service_type.into()).or_default(),
        };
        let set = if announced {
            &mut t.announcers
        } else {
            &mut t.searchers
        };
        if set.len() < MAX_HOSTS_PER_TYPE {
            set.insert(host);
        } else if !set.contains(&host) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(i) = instance
            && t.instances.len() < MAX_HOSTS_PER_TYPE
            && !t.instances.contains(i)
        {
            t.instances.insert(i.into());
        }
    }

    /// Records a device's model (from `_device-info` TXT `model=` or a service's TXT).
    pub fn note_model(&self, host: IpAddr, model: &str) {
        if self.models.len() < MAX_HOSTS_PER_TYPE || self.models.contains_key(&host) {
            self.models.insert(host, model.into());
        }
    }

    /// A snapshot: (type, observations) sorted by type.
    pub fn types(&self) -> Vec<(String, BonjourType)> {
        let mut v: Vec<_> = self
            .types
            .iter()
            .map(|e| {
                let t = e.value();
                let seen = BonjourType {
                    announcers: t.announcers.iter().copied().collect(),
                    searchers: t.searchers.iter().copied().collect(),
                    instances: t.instances.iter().cloned().collect(),
                };
                (e.key().to_string(), seen)
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The model recorded for a host.
    pub fn model(&self, host: IpAddr) -> Option<String> {
        self.models.get(&host).map(|m| m.to_string())
    }

    /// Observations dropped because a bound was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Everything shared between workers.
#[derive(Debug)]
pub struct Names {
    /// The dispatch number of the packet being observed (set by the dispatcher).
    seq: AtomicU64,
    /// No worker will look up as of a dispatch number below this any more.
    horizon: AtomicU64,
    /// Where dispatch numbers come from when several dispatchers feed these stores (live
    /// capture with several readers): one count for all, so that an answer one reader saw is
    /// visible to the packets every reader numbers after it. `None`: each dispatcher counts.
    shared_seq: Option<AtomicU64>,
    /// DNS answers.
    pub dns: DnsBindings,
    /// mDNS endpoints.
    pub mdns: MdnsEndpoints,
    /// Bonjour observations.
    pub bonjour: BonjourSeen,
    /// Flows negotiated by sessions' control connections (RTSP SETUP).
    pub expected: super::expect::Expected,
}

impl Names {
    /// The stores of a classifier holding at most `max_flows` flows: each holds as many
    /// entries as flows can be held, but at least [`NAME_STORE_MIN`] and at most
    /// [`DNS_ADDRESSES`] DNS addresses and [`MDNS_ENDPOINTS`] mDNS endpoints (so a large
    /// `--max-flows` does not let the name stores grow with it).
    pub fn for_max_flows(max_flows: usize) -> Self {
        Self {
            seq: AtomicU64::new(0),
            horizon: AtomicU64::new(0),
            shared_seq: None,
            dns: DnsBindings::new(max_flows.clamp(NAME_STORE_MIN, DNS_ADDRESSES)),
            mdns: MdnsEndpoints::new(max_flows.clamp(NAME_STORE_MIN, MDNS_ENDPOINTS)),
            bonjour: BonjourSeen::default(),
            expected: super::expect::Expected::default(),
        }
    }

    /// Stores with the given capacity for DNS addresses and mDNS endpoints.
    pub fn new(dns_capacity: usize) -> Self {
        Self {
            seq: AtomicU64::new(0),
            horizon: AtomicU64::new(0),
            shared_seq: None,
            dns: DnsBindings::new(dns_capacity),
            mdns: MdnsEndpoints::new(dns_capacity),
            bonjour: BonjourSeen::default(),
            expected: super::expect::Expected::default(),
        }
    }

    /// Stores for several dispatchers at once (live capture with several readers, each with
    /// its own classifier), sized as [`Names::for_max_flows`]: dispatch numbers are drawn from
    /// one count shared by all of them (see [`Names::next_seq`]).
    pub fn shared_by_dispatchers(max_flows: usize) -> Self {
        Self {
            shared_seq: Some(AtomicU64::new(0)),
            ..Self::for_max_flows(max_flows)
        }
    }

    /// The dispatch number of the next packet a dispatcher routes: its own count `own`, or the
    /// count shared by every dispatcher of these stores.
    #[inline]
    pub fn next_seq(&self, own: &mut Seq) -> Seq {
        match &self.shared_seq {
            None => {
                let seq = *own;
                *own += 1;
                seq
            }
            Some(count) => count.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The dispatcher is about to observe the packet of dispatch number `seq`; no worker will
    /// look up as of a number below `horizon` any more.
    pub fn begin_packet(&self, seq: Seq, horizon: Seq) {
        self.seq.store(seq, Ordering::Relaxed);
        self.horizon.store(horizon.min(seq), Ordering::Relaxed);
    }

    /// (dispatch number, horizon) for a change made now.
    pub fn stamp(&self) -> (Seq, Seq) {
        (
            self.seq.load(Ordering::Relaxed),
            self.horizon.load(Ordering::Relaxed),
        )
    }

    /// What the stores hold now, for a report (the report never reads the live stores).
    pub fn snapshot(&self) -> NamesSnapshot {
        let bonjour = self.bonjour.types();
        let models = bonjour
            .iter()
            .flat_map(|(_, t)| t.announcers.iter())
            .filter_map(|a| self.bonjour.model(*a).map(|m| (*a, m)))
            .collect();
        NamesSnapshot {
            bonjour,
            models,
            dns_addresses: self.dns.len(),
            dns_evictions: self.dns.evictions(),
            mdns_endpoints: self.mdns.len(),
            mdns_evictions: self.mdns.evictions(),
            bonjour_dropped: self.bonjour.dropped(),
            expected_flows: self.expected.len(),
            expected_evictions: self.expected.evictions(),
            dns_tcp_streams_dropped: 0,
            devices: super::devices::Identities::default(),
            defrag: crate::decode::defrag::DefragStats::default(),
        }
    }
}

/// The name stores at one moment: what a report shows of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamesSnapshot {
    /// Bonjour service types seen, sorted by type.
    pub bonjour: Vec<(String, BonjourType)>,
    /// Models of the devices that announced a type, where TXT records told them.
    pub models: std::collections::BTreeMap<IpAddr, String>,
    /// Addresses with a DNS binding.
    pub dns_addresses: usize,
    /// DNS bindings evicted to stay within the bound.
    pub dns_evictions: u64,
    /// mDNS endpoints with an announcement held.
    pub mdns_endpoints: usize,
    /// mDNS endpoints evicted to stay within the bound.
    pub mdns_evictions: u64,
    /// Bonjour observations dropped at a bound.
    pub bonjour_dropped: u64,
    /// Expected flows (negotiated by RTSP sessions) live.
    pub expected_flows: usize,
    /// Expected flows dropped at their cap before their time.
    pub expected_evictions: u64,
    /// DNS-over-TCP answer streams the dispatcher gave up to stay within its bound (set by
    /// the dispatcher, which owns them).
    pub dns_tcp_streams_dropped: u64,
    /// The identities of the devices that announced themselves (set by the dispatcher, which
    /// owns the inventory).
    pub devices: super::devices::Identities,
    /// The IP fragment reassembler's counters (set by the dispatcher, which owns it).
    pub defrag: crate::decode::defrag::DefragStats,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Arc<[Box<str>]> {
        n.iter().map(|s| Box::<str>::from(*s)).collect()
    }

    #[test]
    fn binding_applies_only_after_the_answer_and_within_ttl() {
        let d = DnsBindings::new(10);
        let ip: IpAddr = "17.57.144.116".parse().unwrap();
        d.bind(
            ip,
            names(&["1-courier.push.apple.com"]),
            Timestamp::from_parts(100, 0),
            60,
            (0, 0),
        );
        assert!(
            d.lookup(ip, Timestamp::from_parts(99, 0)).is_none(),
            "before the answer"
        );
        assert!(d.lookup(ip, Timestamp::from_parts(100, 0)).is_some());
        assert!(d.lookup(ip, Timestamp::from_parts(160, 0)).is_some());
        assert!(
            d.lookup(ip, Timestamp::from_parts(161, 0)).is_none(),
            "after the TTL"
        );
    }

    #[test]
    fn ttl_with_the_top_bit_set_is_zero_and_binds_only_the_minimum() {
        // RFC 2181 §8. Before, 0x8000_0000 bound the name for 68 years.
        assert_eq!(ttl_secs(0x7fff_ffff), 0x7fff_ffff);
        assert_eq!(ttl_secs(0x8000_0000), 0);
        assert_eq!(ttl_secs(u32::MAX), 0);
        let d = DnsBindings::new(10);
        let ip: IpAddr = "17.57.144.116".parse().unwrap();
        let seen = Timestamp::from_parts(100, 0);
        d.bind(
            ip,
            names(&["1-courier.push.apple.com"]),
            seen,
            0x8000_0000,
            (0, 0),
        );
        let b = d.lookup(ip, seen).expect("bound at the answer");
        assert_eq!(b.expires, seen.plus_secs(MIN_TTL_SECS));
        assert!(d.lookup(ip, seen.plus_secs(MIN_TTL_SECS + 1)).is_none());
    }

    #[test]
    fn dns_flood_stays_bounded_and_counts_evictions() {
        let d = DnsBindings::new(100);
        for i in 0..10_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            d.bind(
                ip,
                names(&["x.example"]),
                Timestamp::from_parts(u64::from(i), 0),
                30,
                (u64::from(i), u64::from(i)),
            );
        }
        assert!(d.len() <= 100);
        assert_eq!(d.evictions(), 10_000 - 100);
    }

    #[test]
    fn bonjour_sets_are_bounded() {
        let b = BonjourSeen::default();
        for i in 0..(MAX_HOSTS_PER_TYPE as u32 + 10) {
            b.note("_airplay._tcp", IpAddr::from(i.to_be_bytes()), false, None);
        }
        assert_eq!(b.types()[0].1.searchers.len(), MAX_HOSTS_PER_TYPE);
        assert_eq!(b.dropped(), 10);
    }
}
