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

/// Names bound to addresses by DNS answers.
#[derive(Debug)]
pub struct DnsBindings {
    map: DashMap<IpAddr, Vec<NameBinding>, foldhash::fast::RandomState>,
    capacity: usize,
    evictions: AtomicU64,
}

impl DnsBindings {
    /// An empty store holding at most `capacity` addresses.
    pub fn new(capacity: usize) -> Self {
        Self {
            map: DashMap::default(),
            capacity: capacity.max(1),
            evictions: AtomicU64::new(0),
        }
    }

    /// Binds `names` to `addr` from `seen` for `ttl` seconds (the record's raw TTL, read
    /// through [`ttl_secs`]; at least 10 seconds).
    pub fn bind(&self, addr: IpAddr, names: Arc<[Box<str>]>, seen: Timestamp, ttl: u32) {
        let expires = seen.plus_secs(ttl_secs(ttl).max(MIN_TTL_SECS));
        if !self.map.contains_key(&addr) && self.map.len() >= self.capacity {
            self.evict_one(seen);
        }
        let mut entry = self.map.entry(addr).or_default();
        let list = entry.value_mut();
        if let Some(b) = list.iter_mut().find(|b| b.names == names) {
            // The same answer again: keep the first sighting, extend the lifetime.
            b.expires = b.expires.max(expires);
            return;
        }
        if list.len() >= BINDINGS_PER_ADDRESS {
            let victim = list.iter().position(|b| b.expires < seen).unwrap_or(0);
            list.remove(victim);
        }
        list.push(NameBinding {
            names,
            seen,
            expires,
        });
    }

    fn evict_one(&self, now: Timestamp) {
        // Prefer an address whose bindings have all expired; else any. Bounded scan.
        let victim = self
            .map
            .iter()
            .take(64)
            .min_by_key(|e| e.value().iter().map(|b| b.expires).max().unwrap_or(now))
            .map(|e| *e.key());
        if let Some(k) = victim {
            self.map.remove(&k);
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The binding for `addr` in force at `at`: seen at or before `at` and not expired; the
    /// most recent such answer wins.
    pub fn lookup(&self, addr: IpAddr, at: Timestamp) -> Option<NameBinding> {
        let entry = self.map.get(&addr)?;
        entry
            .iter()
            .filter(|b| b.seen <= at && at <= b.expires)
            .max_by_key(|b| b.seen)
            .cloned()
    }

    /// Addresses currently held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Addresses evicted because the store was full.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
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

/// Endpoints learned from mDNS announcements, keyed by (address, port).
#[derive(Debug)]
pub struct MdnsEndpoints {
    map: DashMap<(IpAddr, u16), MdnsEndpoint, foldhash::fast::RandomState>,
    capacity: usize,
    evictions: AtomicU64,
}

impl MdnsEndpoints {
    /// An empty store holding at most `capacity` endpoints.
    pub fn new(capacity: usize) -> Self {
        Self {
            map: DashMap::default(),
            capacity: capacity.max(1),
            evictions: AtomicU64::new(0),
        }
    }

    /// Records an advertised endpoint; an earlier announcement of the same endpoint is kept
    /// (first sighting) with its lifetime extended.
    pub fn learn(&self, addr: IpAddr, port: u16, ep: MdnsEndpoint) {
        if !self.map.contains_key(&(addr, port)) && self.map.len() >= self.capacity {
            let victim = self
                .map
                .iter()
                .take(64)
                .min_by_key(|e| e.value().expires)
                .map(|e| *e.key());
            if let Some(k) = victim {
                self.map.remove(&k);
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.map
            .entry((addr, port))
            .and_modify(|e| {
                if e.service_type == ep.service_type {
                    e.expires = e.expires.max(ep.expires);
                } else if ep.seen >= e.expires {
                    *e = ep.clone();
                }
            })
            .or_insert(ep);
    }

    /// The endpoint advertised for `(addr, port)` at time `at`.
    pub fn lookup(&self, addr: IpAddr, port: u16, at: Timestamp) -> Option<MdnsEndpoint> {
        let e = self.map.get(&(addr, port))?;
        (e.seen <= at && at <= e.expires).then(|| e.clone())
    }

    /// Endpoints evicted because the store was full.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
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

/// Bonjour observations: per service type, who announced and who searched; per device, its
/// model where TXT records tell it.
#[derive(Debug, Default)]
pub struct BonjourSeen {
    types: DashMap<Box<str>, BonjourType, foldhash::fast::RandomState>,
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
            .map(|e| (e.key().to_string(), e.value().clone()))
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
    /// DNS answers.
    pub dns: DnsBindings,
    /// mDNS endpoints.
    pub mdns: MdnsEndpoints,
    /// Bonjour observations.
    pub bonjour: BonjourSeen,
}

impl Names {
    /// The stores of a classifier holding at most `max_flows` flows: each holds as many
    /// entries as flows can be held, but at least [`NAME_STORE_MIN`] and at most
    /// [`DNS_ADDRESSES`] DNS addresses and [`MDNS_ENDPOINTS`] mDNS endpoints (so a large
    /// `--max-flows` does not let the name stores grow with it).
    pub fn for_max_flows(max_flows: usize) -> Self {
        Self {
            dns: DnsBindings::new(max_flows.clamp(NAME_STORE_MIN, DNS_ADDRESSES)),
            mdns: MdnsEndpoints::new(max_flows.clamp(NAME_STORE_MIN, MDNS_ENDPOINTS)),
            bonjour: BonjourSeen::default(),
        }
    }

    /// Stores with the given capacity for DNS addresses and mDNS endpoints.
    pub fn new(dns_capacity: usize) -> Self {
        Self {
            dns: DnsBindings::new(dns_capacity),
            mdns: MdnsEndpoints::new(dns_capacity),
            bonjour: BonjourSeen::default(),
        }
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
            mdns_evictions: self.mdns.evictions(),
            bonjour_dropped: self.bonjour.dropped(),
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
    /// mDNS endpoints evicted to stay within the bound.
    pub mdns_evictions: u64,
    /// Bonjour observations dropped at a bound.
    pub bonjour_dropped: u64,
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
        d.bind(ip, names(&["1-courier.push.apple.com"]), seen, 0x8000_0000);
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
