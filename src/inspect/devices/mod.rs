//! Who the client devices are, from what they announce: mDNS responses (host and instance
//! names, addresses, service types, the model in TXT records) and DHCP requests (host name,
//! vendor class, parameter request list, the address asked for). The dispatcher feeds the
//! [`Inventory`] in packet order, so what it holds is the same for any number of workers; the
//! flows each device opened are counted by the workers (`counters::devices`) and joined to it
//! by [`DeviceKey`] in the report.
//!
//! Which host is a device: the sender of an mDNS response or a DHCP request, and the client of
//! a flow whose address is local ([`is_local`]: private, shared or link-local IPv4, link-local
//! or unique-local IPv6). A device is keyed by its MAC address where the capture shows the
//! Ethernet header or 802.11 data frames (the 802.11 source address), else by its IP address. Only senders count: a host that only receives is
//! not one.
//!
//! Memory is bounded: at most `--max-devices` devices ([`Bounded`]), each with a few names and
//! addresses at most; what does not fit is counted.

pub mod kind;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::BuildHasher;
use std::net::IpAddr;

use serde::Serialize;

use super::dnssd::service_type;
use crate::decode::PacketMeta;
use crate::flow::{is_global, is_group_address};
use crate::wire::dhcp::{self, DhcpMessage};
use crate::wire::dns::{DnsMessage, RecordData};
use crate::wire::link::Mac;

/// Devices held by default (`--max-devices`).
pub const DEFAULT_MAX_DEVICES: usize = 10_000;
/// Names of each sort (host, instance) kept per device.
pub const MAX_NAMES: usize = 8;
/// Addresses kept per device.
pub const MAX_ADDRESSES: usize = 16;
/// Service types kept per device.
pub const MAX_SERVICE_TYPES: usize = 32;
/// Models kept per device.
pub const MAX_MODELS: usize = 4;

/// What a device is known by: its MAC address where the capture shows the link layer, else
/// its IP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceKey {
    /// Its MAC address.
    Mac(Mac),
    /// Its IP address (no link layer in the capture).
    Ip(IpAddr),
}

impl DeviceKey {
    /// The key of a sender with address `ip`, whose frame showed `mac` (a group or all-zero
    /// address is no device's).
    pub fn of_sender(mac: Option<Mac>, ip: IpAddr) -> Self {
        match mac.filter(|m| !m.is_group() && !m.is_zero()) {
            Some(m) => Self::Mac(m),
            None => Self::Ip(ip),
        }
    }

    /// A stable hash (the same in every run and worker) that orders the bounded tables.
    pub fn stable_hash(&self) -> u64 {
        foldhash::fast::FixedState::with_seed(0x6465_7669_6365_7321).hash_one(self)
    }
}

impl fmt::Display for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mac(m) => m.fmt(f),
            Self::Ip(ip) => ip.fmt(f),
        }
    }
}

impl Serialize for DeviceKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Whether an address is a device's own on the local network: private (10/8, 172.16/12,
/// 192.168/16), shared (100.64/10) or link-local IPv4, link-local or unique-local IPv6. Not
/// global addresses (the far side of a flow, or a router forwarding it), not group addresses,
/// loopback or unspecified.
pub fn is_local(ip: IpAddr) -> bool {
    !is_global(ip) && !is_group_address(ip) && !ip.is_loopback() && !ip.is_unspecified()
}

/// A table's entry: how many observations it holds (counted as dropped if it is pushed out).
pub trait Weighted {
    /// Observations held.
    fn weight(&self) -> u64;
}

/// At most `cap` devices: those whose keys hash lowest (a bottom-k sample). A merge of
/// per-worker tables then holds the same devices, with the same counts, as one table fed
/// everything, whatever the split; the observations of devices left out are counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounded<V> {
    map: BTreeMap<(u64, DeviceKey), V>,
    cap: usize,
    dropped: u64,
}

impl<V: Default + Weighted> Bounded<V> {
    /// An empty table of at most `cap` devices.
    pub fn new(cap: usize) -> Self {
        Self {
            map: BTreeMap::new(),
            cap: cap.max(1),
            dropped: 0,
        }
    }

    /// The entry of `key`, made if there is room (or if it hashes lower than the highest
    /// held, which is pushed out); `None` (one observation dropped) otherwise.
    pub fn entry(&mut self, key: DeviceKey) -> Option<&mut V> {
        let k = (key.stable_hash(), key);
        if self.map.len() < self.cap {
            // Room for one more: one search of the tree, not two or three.
            return Some(self.map.entry(k).or_default());
        }
        if !self.map.contains_key(&k) {
            if self.map.len() >= self.cap {
                if self.map.last_key_value().is_some_and(|(last, _)| *last < k) {
                    self.dropped += 1;
                    return None;
                }
                self.trim_to(self.cap - 1);
            }
            self.map.insert(k, V::default());
        }
        self.map.get_mut(&k)
    }

    /// Pushes out the highest-hashing entries beyond `n`.
    fn trim_to(&mut self, n: usize) {
        while self.map.len() > n {
            if let Some((_, v)) = self.map.pop_last() {
                self.dropped += v.weight();
            }
        }
    }

    /// Adds another table, `add` merging two entries of one device.
    pub fn merge(&mut self, other: &Self, mut add: impl FnMut(&mut V, &V))
    where
        V: Clone,
    {
        self.cap = self.cap.min(other.cap);
        self.dropped += other.dropped;
        for (k, v) in &other.map {
            add(self.map.entry(*k).or_default(), v);
        }
        self.trim_to(self.cap);
    }

    /// The devices held, in hash order.
    pub fn iter(&self) -> impl Iterator<Item = (&DeviceKey, &V)> {
        self.map.iter().map(|((_, k), v)| (k, v))
    }

    /// The entry of `key`, if held.
    pub fn get(&self, key: &DeviceKey) -> Option<&V> {
        self.map.get(&(key.stable_hash(), *key))
    }

    /// Devices held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it holds no device.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The cap.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Observations dropped: refused, or held by a device pushed out.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// What a device's DHCP requests said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DhcpIdentity {
    /// Option 12: the host name.
    pub host_name: Option<String>,
    /// Option 60: the vendor class identifier.
    pub vendor_class: Option<String>,
    /// Option 55: the parameter request list (a fingerprint of the DHCP client).
    pub parameters: Vec<u8>,
}

impl DhcpIdentity {
    /// Whether no request was seen.
    pub fn is_empty(&self) -> bool {
        self.host_name.is_none() && self.vendor_class.is_none() && self.parameters.is_empty()
    }
}

/// What one device announced about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// Its MAC address (from the Ethernet header, or the DHCP client hardware address).
    pub mac: Option<Mac>,
    /// Addresses it sent from or announced (mDNS A/AAAA, DHCP requested address).
    pub ips: BTreeSet<IpAddr>,
    /// Host names (mDNS A/AAAA owners and SRV targets, `Lucas-iMac.local`).
    pub host_names: BTreeSet<String>,
    /// Service instance names (`Luca’s iMac` of `Luca’s iMac._device-info._tcp.local`).
    pub instance_names: BTreeSet<String>,
    /// Models from mDNS TXT records (`model=`, or `am=` of AirPlay and RAOP).
    pub models: BTreeSet<String>,
    /// Bonjour service types it announced.
    pub service_types: BTreeSet<String>,
    /// What its DHCP requests said.
    pub dhcp: DhcpIdentity,
    /// mDNS responses and DHCP requests it sent.
    pub messages: u64,
}

impl Weighted for Identity {
    fn weight(&self) -> u64 {
        self.messages
    }
}

/// Inserts into a set kept to `max` items.
fn insert_bounded<T: Ord>(set: &mut BTreeSet<T>, item: T, max: usize) {
    if set.len() < max || set.contains(&item) {
        set.insert(item);
    }
}

/// Inserts a copy of `item` into a set kept to `max` items. The copy is made only when it
/// goes in: a device repeats the same names in every announcement (copying them first
/// cost 0.15M of the 1.65M instructions of the 72 mDNS responses of the first 100k packets
/// of the benchmark capture, callgrind).
fn insert_text(set: &mut BTreeSet<String>, item: &str, max: usize) {
    if set.len() < max && !set.contains(item) {
        set.insert(item.to_owned());
    }
}

/// A DNS name as kept: without a trailing dot, at most 255 bytes (a DNS name's limit).
fn name_of(s: &str) -> &str {
    let s = s.trim_end_matches('.');
    let mut end = s.len().min(255);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Sets `field` to the text of a DHCP option: lossy UTF-8 (host names are often not),
/// without the NUL some clients end it with, at most 255 bytes. Left alone (not copied
/// again) when it already holds it, as it does for every request but a device's first.
fn set_text(field: &mut Option<String>, bytes: &[u8]) {
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&bytes[..end]);
    let text = name_of(&text);
    if field.as_deref() != Some(text) {
        *field = Some(text.to_owned());
    }
}

/// The instance part of a service instance name (`Luca’s iMac` of
/// `Luca’s iMac._device-info._tcp.local`), if it has one.
fn instance_of<'a>(name: &'a str, service_type: &str) -> Option<&'a str> {
    // The first occurrence, as `str::find` gives it (a match of UTF-8 in UTF-8 starts on a
    // character boundary); `str::find` set up its two-way searcher for every call, 850
    // instructions each: 0.7M of the 1.65M of the 72 mDNS responses of the first 100k
    // packets of the benchmark capture (callgrind).
    let at = memchr::memmem::find(name.as_bytes(), service_type.as_bytes())?;
    let instance = name[..at].strip_suffix('.')?;
    (!instance.is_empty() && !instance.starts_with('_')).then_some(instance)
}

/// The identities of the devices seen announcing themselves, in packet order.
#[derive(Debug, Clone)]
pub struct Inventory {
    table: Bounded<Identity>,
}

impl Default for Inventory {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_DEVICES)
    }
}

impl Inventory {
    /// An empty inventory of at most `max_devices` devices.
    pub fn new(max_devices: usize) -> Self {
        Self {
            table: Bounded::new(max_devices),
        }
    }

    /// The sender's entry, if it has room.
    fn sender(&mut self, key: DeviceKey, mac: Option<Mac>) -> Option<&mut Identity> {
        let d = self.table.entry(key)?;
        d.messages += 1;
        if d.mac.is_none() {
            d.mac = mac.filter(|m| !m.is_group() && !m.is_zero());
        }
        Some(d)
    }

    /// An mDNS response `msg`, sent in the packet `meta`: whatever it names, its sender
    /// announces about itself (a sleep proxy answering for a sleeping device is taken for it).
    pub fn observe_mdns(&mut self, msg: &DnsMessage<'_>, meta: &PacketMeta<'_>) {
        if !msg.is_response {
            return;
        }
        let mac = meta.link.map(|l| l.src());
        let Some(d) = self.sender(DeviceKey::of_sender(mac, meta.src), mac) else {
            return;
        };
        // An mDNS response goes to the link-local group from an on-link host, so its source is
        // the sender's own address, global IPv6 included.
        if !is_group_address(meta.src) && !meta.src.is_unspecified() {
            insert_bounded(&mut d.ips, meta.src, MAX_ADDRESSES);
        }
        for r in &msg.records {
            let owner = msg.name(r.name);
            let owner_type = service_type(owner);
            if let Some(t) = owner_type.filter(|t| *t != "_services._dns-sd._udp") {
                insert_text(&mut d.service_types, t, MAX_SERVICE_TYPES);
                if let Some(i) = instance_of(owner, t) {
                    insert_text(&mut d.instance_names, name_of(i), MAX_NAMES);
                }
            }
            match &r.data {
                RecordData::A(_) | RecordData::Aaaa(_) => {
                    let ip = match r.data {
                        RecordData::A(a) => IpAddr::V4(a),
                        RecordData::Aaaa(a) => IpAddr::V6(a),
                        _ => continue,
                    };
                    if owner_type.is_none() {
                        insert_text(&mut d.host_names, name_of(owner), MAX_NAMES);
                    }
                    if !is_group_address(ip) && !ip.is_unspecified() && !ip.is_loopback() {
                        insert_bounded(&mut d.ips, ip, MAX_ADDRESSES);
                    }
                }
                RecordData::Srv { target, .. } if !target.is_empty() => {
                    insert_text(&mut d.host_names, name_of(msg.name(*target)), MAX_NAMES);
                }
                RecordData::Ptr(target) => {
                    let target = msg.name(*target);
                    if let Some(t) = service_type(target)
                        && let Some(i) = instance_of(target, t)
                    {
                        insert_text(&mut d.service_types, t, MAX_SERVICE_TYPES);
                        insert_text(&mut d.instance_names, name_of(i), MAX_NAMES);
                    }
                }
                RecordData::Txt(_) => {
                    let model = r
                        .data
                        .txt_value("model")
                        .or_else(|| r.data.txt_value("am"))
                        .and_then(|m| std::str::from_utf8(m).ok())
                        .filter(|m| !m.is_empty());
                    if let Some(m) = model {
                        insert_text(&mut d.models, name_of(m), MAX_MODELS);
                    }
                }
                _ => {}
            }
        }
    }

    /// A DHCP message in the packet `meta` (UDP from the client port to the server port):
    /// its client's host name, vendor class, parameter list and the address it asks for.
    pub fn observe_dhcp(&mut self, meta: &PacketMeta<'_>) {
        let Some(msg) = DhcpMessage::new_checked(meta.payload).filter(|m| m.is_request()) else {
            return;
        };
        let chaddr = msg.client_mac().map(Mac);
        let frame_mac = meta.link.map(|l| l.src());
        // Without a link layer, a client that has no address yet is known by the hardware
        // address it gives.
        let key = match (frame_mac, meta.src.is_unspecified()) {
            (None, true) => DeviceKey::of_sender(chaddr, meta.src),
            _ => DeviceKey::of_sender(frame_mac, meta.src),
        };
        if let DeviceKey::Ip(ip) = key
            && ip.is_unspecified()
        {
            return;
        }
        let Some(d) = self.sender(key, frame_mac.or(chaddr)) else {
            return;
        };
        if is_local(meta.src) {
            insert_bounded(&mut d.ips, meta.src, MAX_ADDRESSES);
        }
        let asked = msg.requested_ip().map(IpAddr::V4);
        let held = Some(IpAddr::V4(msg.client_addr())).filter(|a| !a.is_unspecified());
        for ip in [asked, held].into_iter().flatten() {
            if !is_group_address(ip) && !ip.is_unspecified() {
                insert_bounded(&mut d.ips, ip, MAX_ADDRESSES);
            }
        }
        if let Some(h) = msg
            .option(dhcp::option::HOST_NAME)
            .filter(|h| !h.is_empty())
        {
            set_text(&mut d.dhcp.host_name, h);
        }
        if let Some(v) = msg
            .option(dhcp::option::VENDOR_CLASS)
            .filter(|v| !v.is_empty())
        {
            set_text(&mut d.dhcp.vendor_class, v);
        }
        if let Some(p) = msg
            .option(dhcp::option::PARAMETER_LIST)
            .filter(|p| !p.is_empty() && d.dhcp.parameters != *p)
        {
            d.dhcp.parameters = p.to_vec();
        }
    }

    /// The identities held now.
    pub fn snapshot(&self) -> Identities {
        Identities(self.table.clone())
    }
}

/// The inventory's identities at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identities(pub Bounded<Identity>);

impl Identities {
    /// Adds the identities another dispatcher saw (one per `--readers` socket): the sets are
    /// joined within their bounds, the first MAC and DHCP fields seen are kept, messages add.
    pub fn merge(&mut self, other: &Self) {
        fn join<T: Ord + Clone>(into: &mut BTreeSet<T>, from: &BTreeSet<T>, max: usize) {
            for x in from {
                insert_bounded(into, x.clone(), max);
            }
        }
        self.0.merge(&other.0, |a, b| {
            a.mac = a.mac.or(b.mac);
            join(&mut a.ips, &b.ips, MAX_ADDRESSES);
            join(&mut a.host_names, &b.host_names, MAX_NAMES);
            join(&mut a.instance_names, &b.instance_names, MAX_NAMES);
            join(&mut a.models, &b.models, MAX_MODELS);
            join(&mut a.service_types, &b.service_types, MAX_SERVICE_TYPES);
            if a.dhcp.host_name.is_none() {
                a.dhcp.host_name.clone_from(&b.dhcp.host_name);
            }
            if a.dhcp.vendor_class.is_none() {
                a.dhcp.vendor_class.clone_from(&b.dhcp.vendor_class);
            }
            if a.dhcp.parameters.is_empty() {
                a.dhcp.parameters.clone_from(&b.dhcp.parameters);
            }
            a.messages += b.messages;
        });
    }
}

impl Default for Identities {
    fn default() -> Self {
        Self(Bounded::new(DEFAULT_MAX_DEVICES))
    }
}

/// Whether a packet is a DHCP request on its way to a server (UDP 68 to 67).
#[inline]
pub fn is_dhcp_request(meta: &PacketMeta<'_>) -> bool {
    meta.proto == crate::decode::ip_proto::UDP
        && meta.dst_port == dhcp::SERVER_PORT
        && meta.src_port == dhcp::CLIENT_PORT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    struct N(u64);
    impl Weighted for N {
        fn weight(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn bounded_tables_keep_the_same_devices_however_they_are_split() {
        let keys: Vec<DeviceKey> = (0..200u8)
            .map(|i| DeviceKey::Ip(IpAddr::from([10, 0, 0, i])))
            .collect();
        let fill = |t: &mut Bounded<N>, ks: &[DeviceKey]| {
            for k in ks {
                if let Some(n) = t.entry(*k) {
                    n.0 += 1;
                }
            }
        };
        let mut one = Bounded::new(50);
        fill(&mut one, &keys);
        fill(&mut one, &keys[..20]);
        let (mut a, mut b) = (Bounded::new(50), Bounded::new(50));
        fill(&mut a, &keys[..120]);
        fill(&mut b, &keys[120..]);
        fill(&mut b, &keys[..20]);
        a.merge(&b, |x, y| x.0 += y.0);
        assert_eq!(one.len(), 50);
        assert_eq!(one.iter().collect::<Vec<_>>(), a.iter().collect::<Vec<_>>());
        // Every observation is either held or counted as dropped.
        let held: u64 = one.iter().map(|(_, n)| n.0).sum();
        assert_eq!(held + one.dropped(), 220);
        assert_eq!(one.dropped(), a.dropped());
    }

    #[test]
    fn local_addresses() {
        for a in [
            "192.168.2.17",
            "10.1.2.3",
            "169.254.1.1",
            "fe80::1",
            "fd00::1",
        ] {
            assert!(is_local(ip(a)), "{a}");
        }
        for a in [
            "17.57.144.116",
            "2a01::1",
            "224.0.0.251",
            "0.0.0.0",
            "127.0.0.1",
        ] {
            assert!(!is_local(ip(a)), "{a}");
        }
    }

    #[test]
    fn instance_names() {
        assert_eq!(
            instance_of("Luca’s iMac._device-info._tcp.local", "_device-info._tcp"),
            Some("Luca’s iMac")
        );
        assert_eq!(instance_of("_airplay._tcp.local", "_airplay._tcp"), None);
        assert_eq!(
            instance_of("_sub._x._sub._airplay._tcp.local", "_airplay._tcp"),
            None
        );
    }
}
