//! The Apple signature set: services, port rules, host patterns, address blocks and Bonjour
//! types, loaded once from TOML, validated, and turned into immutable matchers.
//!
//! The set is data: `signatures/apple.toml` is compiled into the binary as the default and can
//! be replaced with `--signatures PATH`. Its format and matching rules are documented in
//! `signatures/README.md`.

mod blocks;
mod hosts;
pub mod listing;
mod load;
mod shared;

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;

pub use hosts::{HostMatch, HostPattern};
pub use load::SignatureError;
pub use shared::SharedSignatures;

/// The shipped signature set, compiled into the binary.
pub const BUILTIN_TEXT: &str = include_str!("../../signatures/apple.toml");
/// How the built-in set names itself in messages and reports.
pub const BUILTIN_ORIGIN: &str = "built-in signatures/apple.toml";

/// The id every signature file must declare for Apple traffic with no narrower service.
pub const GENERIC_APPLE: &str = "apple";
/// The id reserved for flows that match nothing; a signature file may not declare it.
pub const UNKNOWN: &str = "unknown";

/// Index of a service in [`SignatureSet::services`]; cheap to copy and compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(pub u16);

/// One service id with its description and what a firewall must allow for it.
#[derive(Debug, Clone)]
pub struct Service {
    /// Stable kebab-case id (`apns`, `icloud`, `https`, ...).
    pub id: String,
    /// Whether this is an Apple service (false for protocol names such as `https`).
    pub apple: bool,
    /// Human-readable name.
    pub name: String,
    /// Ports the sources say to allow for this service.
    pub allow: Vec<PortSpec>,
    /// Hosts the sources say to allow for this service.
    pub allow_hosts: Vec<String>,
    /// Where `allow` and `allow_hosts` come from.
    pub sources: Vec<String>,
}

/// A transport protocol a port rule applies to (ordered TCP first, as reports list them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
}

impl Transport {
    /// The IP protocol number.
    pub fn ip_proto(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
        }
    }

    /// The transport for an IP protocol number, if it is one a port rule can name.
    pub fn from_ip_proto(proto: u8) -> Option<Self> {
        match proto {
            6 => Some(Self::Tcp),
            17 => Some(Self::Udp),
            _ => None,
        }
    }

    /// Lower-case name as used in rule text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// A port or port range on TCP, UDP or both: `tcp/5223`, `udp/16384-16387`, `tcp/udp/554`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortSpec {
    /// Applies to TCP.
    pub tcp: bool,
    /// Applies to UDP.
    pub udp: bool,
    /// First port of the range.
    pub lo: u16,
    /// Last port of the range (equal to `lo` for a single port).
    pub hi: u16,
}

impl PortSpec {
    /// Whether `port` on `transport` falls in this spec.
    pub fn contains(&self, transport: Transport, port: u16) -> bool {
        let t = match transport {
            Transport::Tcp => self.tcp,
            Transport::Udp => self.udp,
        };
        t && (self.lo..=self.hi).contains(&port)
    }

    /// Number of ports in the range (narrower rules win).
    pub fn width(&self) -> u32 {
        u32::from(self.hi) - u32::from(self.lo) + 1
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = match (self.tcp, self.udp) {
            (true, true) => "tcp/udp",
            (true, false) => "tcp",
            _ => "udp",
        };
        if self.lo == self.hi {
            write!(f, "{t}/{}", self.lo)
        } else {
            write!(f, "{t}/{}-{}", self.lo, self.hi)
        }
    }
}

/// A port rule: one reconciled row of the seeds' port tables.
#[derive(Debug, Clone)]
pub struct PortRule {
    /// Ports and transports.
    pub spec: PortSpec,
    /// Protocol name.
    pub protocol: String,
    /// IANA service name ("" if none).
    pub iana: String,
    /// Defining RFC ("" if none).
    pub rfc: String,
    /// Apple products that use the port ("" if the sources name none).
    pub used_by: String,
    /// Label for port-only evidence.
    pub service: ServiceId,
    /// Label when the server is in an Apple address block.
    pub on_apple: ServiceId,
    /// Where the rule comes from.
    pub sources: Vec<String>,
    /// How the rule was reconciled, if it needed to be.
    pub note: Option<String>,
}

/// A host-name rule.
#[derive(Debug, Clone)]
pub struct HostRule {
    /// The pattern as written (`*.push.apple.com`, `gg*.apple.com`, `mesu.apple.com`).
    pub pattern: HostPattern,
    /// The service a matching name means.
    pub service: ServiceId,
    /// Where the rule comes from.
    pub sources: Vec<String>,
}

/// An address block rule.
#[derive(Debug, Clone)]
pub struct AddressRule {
    /// The block.
    pub prefix: IpNet,
    /// The service an address in the block means.
    pub service: ServiceId,
    /// If non-empty, the rule applies only to these server ports.
    pub ports: Vec<PortSpec>,
    /// Where the rule comes from.
    pub sources: Vec<String>,
}

impl AddressRule {
    /// Whether the rule applies to a server port (always, if it lists no ports).
    pub fn fits_port(&self, transport: Option<Transport>, port: u16) -> bool {
        self.ports.is_empty()
            || transport.is_some_and(|t| self.ports.iter().any(|p| p.contains(t, port)))
    }
}

/// A Bonjour (mDNS) service type rule.
#[derive(Debug, Clone)]
pub struct BonjourRule {
    /// The service type, `_airplay._tcp`.
    pub service_type: String,
    /// The Apple service it belongs to.
    pub service: ServiceId,
    /// What the type is.
    pub description: String,
    /// Where the rule comes from.
    pub sources: Vec<String>,
}

/// The loaded, validated signature set with its matchers. Immutable; share it behind `Arc`.
#[derive(Debug)]
pub struct SignatureSet {
    /// Where the set came from (a path, or the built-in name).
    pub origin: String,
    /// All services, indexed by [`ServiceId`].
    pub services: Vec<Service>,
    /// Port rules in file order.
    pub ports: Vec<PortRule>,
    /// Host rules in file order.
    pub hosts: Vec<HostRule>,
    /// Address rules in file order.
    pub addresses: Vec<AddressRule>,
    /// Bonjour rules in file order.
    pub bonjour: Vec<BonjourRule>,
    /// Per-port index into `ports` (u16::MAX = none), TCP then UDP: 2 x 65,536 entries so a
    /// lookup is one array read.
    port_index: Vec<u16>,
    /// The IPv4 address blocks, indexed (see [`blocks::Blocks`]).
    v4_blocks: blocks::Blocks,
    /// The IPv6 address blocks, likewise.
    v6_blocks: blocks::Blocks,
    host_index: hosts::HostIndex,
    apple: ServiceId,
    /// The `bonjour` service, resolved once here (the classify path asks for it per flow).
    bonjour_service: Option<ServiceId>,
}

const NO_RULE: u16 = u16::MAX;

impl SignatureSet {
    /// The shipped set.
    ///
    /// # Errors
    /// Only if the shipped file is broken, which a test guards against.
    pub fn builtin() -> Result<Self, SignatureError> {
        Self::parse(BUILTIN_ORIGIN, BUILTIN_TEXT)
    }

    /// Loads and validates a signature file.
    ///
    /// # Errors
    /// A [`SignatureError`] naming the file, the entry and what is wrong.
    pub fn from_path(path: &Path) -> Result<Self, SignatureError> {
        load::from_path(path)
    }

    /// Parses and validates signature text; `origin` names it in errors.
    ///
    /// # Errors
    /// A [`SignatureError`] naming the origin, the entry and what is wrong.
    pub fn parse(origin: &str, text: &str) -> Result<Self, SignatureError> {
        load::parse(origin, text)
    }

    fn build(
        origin: String,
        services: Vec<Service>,
        ports: Vec<PortRule>,
        hosts: Vec<HostRule>,
        addresses: Vec<AddressRule>,
        bonjour: Vec<BonjourRule>,
        apple: ServiceId,
    ) -> Self {
        // Fill each rule's range, keeping the narrower rule where ranges overlap (first in
        // file order on a tie). The work is the sum of the ranges' widths, done once.
        let mut port_index = vec![NO_RULE; 2 * 65_536];
        for (i, rule) in ports.iter().enumerate() {
            for (enabled, off) in [(rule.spec.tcp, 0usize), (rule.spec.udp, 65_536)] {
                if !enabled {
                    continue;
                }
                for port in rule.spec.lo..=rule.spec.hi {
                    let slot = &mut port_index[off + usize::from(port)];
                    if *slot == NO_RULE
                        || rule.spec.width() < ports[usize::from(*slot)].spec.width()
                    {
                        *slot = i as u16;
                    }
                }
            }
        }
        let mut address_order: Vec<usize> = (0..addresses.len()).collect();
        address_order.sort_by_key(|&i| (std::cmp::Reverse(addresses[i].prefix.prefix_len()), i));
        let ordered = || address_order.iter().map(|&i| (&addresses[i].prefix, i));
        let v4_blocks = blocks::Blocks::new(32, ordered());
        let v6_blocks = blocks::Blocks::new(128, ordered());
        let host_index = hosts::HostIndex::build(hosts.iter().map(|h| &h.pattern));
        let bonjour_service = services
            .iter()
            .position(|s| s.id == "bonjour")
            .map(|i| ServiceId(i as u16));
        Self {
            bonjour_service,
            origin,
            services,
            ports,
            hosts,
            addresses,
            bonjour,
            port_index,
            v4_blocks,
            v6_blocks,
            host_index,
            apple,
        }
    }

    /// This set with its services numbered as in `old`, the set it replaces in a running
    /// capture (SIGHUP): every service `old` has keeps its [`ServiceId`], one this set drops is
    /// kept as a service no rule names (its counts so far still have a name), and new ones come
    /// after. Counters indexed by `old`'s ids thus stay valid and keep counting.
    #[must_use]
    pub fn aligned_to(self, old: &SignatureSet) -> SignatureSet {
        let Self {
            origin,
            services,
            mut ports,
            mut hosts,
            mut addresses,
            mut bonjour,
            apple,
            ..
        } = self;
        let mut new: Vec<Option<Service>> = services.into_iter().map(Some).collect();
        // Where each of this set's services goes.
        let mut moved = vec![ServiceId(0); new.len()];
        let mut merged = Vec::with_capacity(old.services.len() + new.len());
        for kept in &old.services {
            match new
                .iter()
                .position(|s| s.as_ref().is_some_and(|s| s.id == kept.id))
            {
                Some(i) => {
                    moved[i] = ServiceId(merged.len() as u16);
                    merged.extend(new[i].take());
                }
                None => merged.push(kept.clone()),
            }
        }
        for (i, s) in new.into_iter().enumerate() {
            if let Some(s) = s {
                moved[i] = ServiceId(merged.len() as u16);
                merged.push(s);
            }
        }
        let to = |id: ServiceId| moved[usize::from(id.0)];
        for r in &mut ports {
            (r.service, r.on_apple) = (to(r.service), to(r.on_apple));
        }
        for r in &mut hosts {
            r.service = to(r.service);
        }
        for r in &mut addresses {
            r.service = to(r.service);
        }
        for r in &mut bonjour {
            r.service = to(r.service);
        }
        Self::build(origin, merged, ports, hosts, addresses, bonjour, to(apple))
    }

    /// Rules in all (ports, hosts, addresses, Bonjour types): what a reload reports.
    pub fn rule_count(&self) -> usize {
        self.ports.len() + self.hosts.len() + self.addresses.len() + self.bonjour.len()
    }

    /// The service behind an id.
    pub fn service(&self, id: ServiceId) -> &Service {
        &self.services[usize::from(id.0)]
    }

    /// Looks a service up by its id string.
    pub fn service_id(&self, id: &str) -> Option<ServiceId> {
        self.services
            .iter()
            .position(|s| s.id == id)
            .map(|i| ServiceId(i as u16))
    }

    /// The generic `apple` service.
    pub fn apple(&self) -> ServiceId {
        self.apple
    }

    /// The `bonjour` service (discovery protocols), if the set has one.
    pub fn bonjour_service(&self) -> Option<ServiceId> {
        self.bonjour_service
    }

    /// The narrowest port rule for a server port, if any.
    pub fn port_rule(&self, transport: Transport, port: u16) -> Option<(usize, &PortRule)> {
        let off = match transport {
            Transport::Tcp => 0,
            Transport::Udp => 65_536,
        };
        let i = self.port_index[off + usize::from(port)];
        (i != NO_RULE).then(|| (usize::from(i), &self.ports[usize::from(i)]))
    }

    /// Address rules containing `ip`, longest prefix first.
    pub fn address_rules(&self, ip: IpAddr) -> impl Iterator<Item = &AddressRule> + '_ {
        let matching = match ip {
            IpAddr::V4(a) => self.v4_blocks.matching(u128::from(a.to_bits())),
            IpAddr::V6(a) => self.v6_blocks.matching(a.to_bits()),
        };
        matching.map(|i| &self.addresses[i])
    }

    /// Whether `ip` lies in an address block whose service is an Apple service and that
    /// applies to every port (the Apple blocks proper, not the multicast groups).
    pub fn is_apple_address(&self, ip: IpAddr) -> bool {
        self.address_rules(ip)
            .any(|r| r.ports.is_empty() && self.service(r.service).apple)
    }

    /// The most specific host rule for a name (case-insensitive, trailing dot ignored).
    pub fn host_rule(&self, name: &str) -> Option<&HostRule> {
        self.host_index.lookup(name).map(|m| &self.hosts[m.index])
    }

    /// The most specific host match for a name, with its specificity (to compare names).
    pub fn host_match(&self, name: &str) -> Option<HostMatch> {
        self.host_index.lookup(name)
    }

    /// The Bonjour rule for a service type such as `_airplay._tcp` (case-insensitive).
    pub fn bonjour_rule(&self, service_type: &str) -> Option<&BonjourRule> {
        self.bonjour
            .iter()
            .find(|b| b.service_type.eq_ignore_ascii_case(service_type))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_set_loads() {
        let set = SignatureSet::builtin().expect("shipped signatures/apple.toml must load");
        assert!(set.ports.len() > 100, "every seed port row is in the set");
        assert!(set.hosts.len() > 50);
        assert!(set.service_id("apns").is_some());
    }

    #[test]
    fn shipped_set_has_every_service_of_services_md() {
        let set = SignatureSet::builtin().unwrap();
        for id in [
            "apns",
            "airplay",
            "bonjour",
            "icloud",
            "icloud-mail",
            "private-relay",
            "app-store",
            "software-update",
            "time",
            "facetime",
            "game-center",
            "imessage",
            "siri",
            "apple-account",
            "certificates",
            "device-setup",
            "device-management",
            "maps",
            "file-sharing",
            "screen-sharing",
            "xcode-server",
            "apple",
        ] {
            let s = set.service_id(id).unwrap_or_else(|| panic!("{id} missing"));
            assert!(set.service(s).apple, "{id} must be apple: true");
        }
    }

    #[test]
    fn seed_typos_are_reconciled() {
        // Seed 000 writes 1231 for 123 and 52231 for 5223: neither typo may become a rule.
        let set = SignatureSet::builtin().unwrap();
        assert!(
            !set.ports
                .iter()
                .any(|r| r.spec.lo == 52231 || r.spec.lo == 1231)
        );
        assert!(set.port_rule(Transport::Udp, 1231).is_none());
        let (_, ntp) = set.port_rule(Transport::Udp, 123).unwrap();
        assert_eq!(set.service(ntp.on_apple).id, "time");
        let (_, apns) = set.port_rule(Transport::Tcp, 5223).unwrap();
        assert_eq!(set.service(apns.service).id, "apns");
        assert!(apns.sources.len() >= 3, "5223 is in several seeds");
    }

    #[test]
    fn narrowest_port_range_wins() {
        let set = SignatureSet::builtin().unwrap();
        // 16384-16403 (iChat) and 16384-16387 (FaceTime) overlap; the narrower wins.
        let (_, r) = set.port_rule(Transport::Udp, 16385).unwrap();
        assert_eq!(r.spec.hi, 16387);
        assert_eq!(set.service(r.service).id, "facetime");
    }

    #[test]
    fn blocks_agree_with_ipnet() {
        let nets = [
            "17.0.0.0/8",
            "0.0.0.0/0",
            "192.168.1.77/32",
            "10.1.2.3/13",
            "2620:149::/32",
            "::/0",
            "fe80::1/128",
            "2a01:b740:a00::/40",
        ];
        let ips = [
            "17.253.1.2",
            "18.0.0.1",
            "16.255.255.255",
            "192.168.1.77",
            "192.168.1.76",
            "10.7.255.255",
            "10.8.0.0",
            "2620:149:a::1",
            "2620:14a::1",
            "fe80::1",
            "::ffff:17.0.0.1",
            "2a01:b740:aff:ffff::1",
        ];
        for n in nets {
            let net: IpNet = n.parse().unwrap();
            for ip in ips {
                let ip: IpAddr = ip.parse().unwrap();
                let inside = match (net, ip) {
                    (IpNet::V4(n), IpAddr::V4(a)) => {
                        let (net, mask) = blocks::v4_block(&n);
                        a.to_bits() & mask == net
                    }
                    (IpNet::V6(n), IpAddr::V6(a)) => {
                        let (net, mask) = blocks::v6_block(&n);
                        a.to_bits() & mask == net
                    }
                    _ => false,
                };
                assert_eq!(inside, net.contains(&ip), "{net} {ip}");
            }
        }
    }

    #[test]
    fn aligned_set_keeps_old_ids_and_dropped_services() {
        let old = SignatureSet::builtin().unwrap();
        // A set with a service `extra` before all others.
        let text = BUILTIN_TEXT.replacen(
            "[[service]]",
            "[[service]]\nid = \"extra\"\napple = true\nname = \"Extra\"\nsources = [\"A5\"]\n\n[[service]]",
            1,
        );
        let new = SignatureSet::parse("new", &text).unwrap();
        let aligned = new.aligned_to(&old);
        for (i, s) in old.services.iter().enumerate() {
            assert_eq!(aligned.services[i].id, s.id, "id {i} kept");
        }
        let extra = aligned.service_id("extra").unwrap();
        assert_eq!(usize::from(extra.0), old.services.len());
        assert_eq!(aligned.apple(), old.apple());
        let (_, apns) = aligned.port_rule(Transport::Tcp, 5223).unwrap();
        assert_eq!(aligned.service(apns.service).id, "apns");
        assert_eq!(aligned.rule_count(), old.rule_count());
        // Back to the built-in set: `extra` keeps its id, named by no rule.
        let back = SignatureSet::builtin().unwrap().aligned_to(&aligned);
        assert_eq!(back.services.len(), aligned.services.len());
        assert_eq!(back.service(extra).id, "extra");
        assert!(back.hosts.iter().all(|h| h.service != extra));
    }

    #[test]
    fn indexed_blocks_find_what_every_rule_would() {
        let text = BUILTIN_TEXT.replacen(
            "[[address]]",
            "[[address]]\nprefix = \"0.0.0.0/0\"\nservice = \"apple\"\nsources = [\"A5\"]\n\n\
             [[address]]\nprefix = \"192.0.0.0/3\"\nservice = \"apple\"\nsources = [\"A5\"]\n\n\
             [[address]]",
            1,
        );
        let set = SignatureSet::parse("wide blocks", &text).unwrap();
        let mut ips: Vec<IpAddr> = Vec::new();
        for r in &set.addresses {
            // Each block's first and last address, and the addresses just outside it.
            match r.prefix {
                IpNet::V4(n) => {
                    let (lo, hi) = (n.network().to_bits(), n.broadcast().to_bits());
                    for a in [lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)] {
                        ips.push(std::net::Ipv4Addr::from_bits(a).into());
                    }
                }
                IpNet::V6(n) => {
                    let (lo, hi) = (n.network().to_bits(), n.broadcast().to_bits());
                    for a in [lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)] {
                        ips.push(std::net::Ipv6Addr::from_bits(a).into());
                    }
                }
            }
        }
        let mut order: Vec<usize> = (0..set.addresses.len()).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(set.addresses[i].prefix.prefix_len()), i));
        for ip in ips {
            let want: Vec<_> = order
                .iter()
                .map(|&i| &set.addresses[i])
                .filter(|r| r.prefix.contains(&ip))
                .map(|r| r.prefix)
                .collect();
            let got: Vec<_> = set.address_rules(ip).map(|r| r.prefix).collect();
            assert_eq!(got, want, "{ip}");
        }
    }

    #[test]
    fn address_rules_longest_first() {
        let set = SignatureSet::builtin().unwrap();
        let ip: IpAddr = "17.57.144.116".parse().unwrap();
        let rules: Vec<_> = set.address_rules(ip).collect();
        assert!(rules.len() >= 2);
        assert_eq!(set.service(rules[0].service).id, "apns");
        assert!(set.is_apple_address(ip));
        assert!(!set.is_apple_address("16.1.2.3".parse().unwrap()));
        assert!(set.is_apple_address("2620:149:a44::1".parse().unwrap()));
    }
}
