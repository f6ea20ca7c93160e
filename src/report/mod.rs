//! The per-service report: built from merged tallies and counters, rendered as a table for
//! people or one JSON document for tools.

pub mod devices;
pub mod ecs;
pub mod events;
pub mod floods;
pub mod health;
pub mod ipfix;
pub mod record;
mod table;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;

use crate::counters::Counters;
use crate::counters::ServiceTally;
use crate::counters::outcomes::{UnexpectedKey, UnexpectedKind};
use crate::counters::packets::TunnelStats;
use crate::decode::defrag::{DefragDrop, DefragStats};
use crate::decode::{Skip, TunnelKind};
use crate::inspect::names::NamesSnapshot;
use crate::signature::SignatureSet;
use crate::wire::ieee80211::FrameKind;
use floods::FloodsAndScans;
use health::{HealthLine, health_lines};

pub use table::{render_audit, render_table};

/// How one input file went.
#[derive(Debug, Clone, Serialize)]
pub struct InputSummary {
    /// The path as given.
    pub file: String,
    /// `pcap` or `pcapng`.
    pub format: Option<&'static str>,
    /// Packets read from it.
    pub packets: u64,
    /// The error that stopped reading it, if any (everything before it is counted).
    pub error: Option<String>,
}

/// One service's line.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceLine {
    /// Service id (`unknown` for flows that matched nothing).
    pub service: String,
    /// Whether it is an Apple service.
    pub apple: bool,
    /// Human-readable name.
    pub name: String,
    /// Counters.
    #[serde(flatten)]
    pub tally: ServiceTally,
}

/// Totals over everything read.
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    /// Packets read from the inputs.
    pub packets_read: u64,
    /// Bytes on the wire of those packets.
    pub bytes_read: u64,
    /// Packets decoded into flows.
    pub packets_decoded: u64,
    /// Packets skipped (see `skipped`).
    pub packets_skipped: u64,
    /// Flows.
    pub flows: u64,
    /// Flows labelled with an Apple service.
    pub apple_flows: u64,
    /// Flows evicted early to respect `--max-flows`.
    pub flows_evicted: u64,
    /// Flows still open at the time of the report (live periodic reports; 0 at the end). The
    /// service lines count them as if they ended now.
    pub flows_active: usize,
    /// Times packet time went back to a new stretch of capture (a capture read twice, files
    /// out of order, a capture whose clock was reset): the flows open then ended there.
    pub clock_restarts: u64,
    /// Packets whose time fit neither the clock nor a new stretch (one packet stamped decades
    /// ahead, or at zero): handled at the clock's time instead.
    pub clock_outliers: u64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The program version that wrote it.
    pub appletap_version: &'static str,
    /// Where the signatures came from.
    pub signatures: String,
    /// Inputs, in order.
    pub inputs: Vec<InputSummary>,
    /// Apple services first, then other protocols, then unknown; by bytes within each.
    pub services: Vec<ServiceLine>,
    /// Totals.
    pub totals: Totals,
    /// Skipped packets by reason (every reason listed, zeros included).
    pub skipped: Vec<SkipLine>,
    /// IP fragment reassembly; left out when the input had no fragment.
    #[serde(skip_serializing_if = "Defrag::is_empty")]
    pub defrag: Defrag,
    /// 802.11 frames by kind (Wi-Fi captures only: the kinds seen, absent when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wifi_frames: Vec<WifiFrameLine>,
    /// Tunnelled packets by kind; absent when there were none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnels: Option<Tunnels>,
    /// Bonjour service types seen in mDNS, Apple types first.
    pub bonjour: Vec<BonjourLine>,
    /// Names under Apple's domains that no narrower signature covers, with flow counts.
    pub unclassified_apple_names: Vec<NameCount>,
    /// Bounded state: what the DNS, mDNS and Bonjour stores hold and had to drop.
    pub state: StateCounters,
    /// Packets lost before classification: by the kernel or interface (live capture) and at
    /// full worker queues. Never silent.
    pub drops: Drops,
    /// Per Apple service: how connection attempts ended, a verdict and its reason.
    pub health: Vec<HealthLine>,
    /// Traffic that does not fit the signature set.
    pub unexpected: Vec<UnexpectedLine>,
    /// Unanswered attempts that look like a flood (many single-packet sources, one
    /// destination) or a scan (one source, many hosts or ports): kept apart from the health of
    /// the services they hit.
    pub floods_and_scans: FloodsAndScans,
    /// The client devices: who they are (mDNS, DHCP), their kind, and the Apple services
    /// they used and failed to reach.
    pub devices: devices::Devices,
}

/// Tunnelled packets by the outermost tunnel's kind (kinds with none left out).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tunnels {
    /// Packets classified as the packet inside the tunnel(s).
    pub decapsulated: BTreeMap<&'static str, u64>,
    /// Packets whose tunnel carried something appletap does not read (802.11 frames, ARP,
    /// PPP control, GTP-U signalling, an inner fragment): classified as the tunnel's packet.
    pub undecoded: BTreeMap<&'static str, u64>,
    /// Packets still tunnelled after the depth bound: classified as the packet found there.
    pub too_deep: BTreeMap<&'static str, u64>,
}

impl Tunnels {
    /// The section, or `None` when no packet was tunnelled.
    fn of(stats: &TunnelStats) -> Option<Self> {
        if stats.is_empty() {
            return None;
        }
        let by_kind = |counts: &[u64; TunnelKind::ALL.len()]| {
            TunnelKind::ALL
                .iter()
                .filter(|k| counts[k.index()] > 0)
                .map(|k| (k.as_str(), counts[k.index()]))
                .collect()
        };
        Some(Self {
            decapsulated: by_kind(&stats.decapsulated),
            undecoded: by_kind(&stats.undecoded),
            too_deep: by_kind(&stats.too_deep),
        })
    }
}

/// One line of unexpected traffic.
#[derive(Debug, Clone, Serialize)]
pub struct UnexpectedLine {
    /// What it is, where, and which service it suggests.
    #[serde(flatten)]
    pub key: UnexpectedKey,
    /// Flows.
    pub flows: u64,
    /// The finding in words.
    pub reason: String,
}

/// Packets lost before classification.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Drops {
    /// Packets the kernel delivered to the capture (live only).
    pub kernel_received: Option<u64>,
    /// Dropped by the kernel because the capture buffer was full (live only).
    pub kernel: Option<u64>,
    /// Dropped by the interface or its driver (live only).
    pub interface: Option<u64>,
    /// Dropped because a worker's queue stayed full for a second (live only; offline reading
    /// waits as long as it takes).
    pub pipeline: u64,
}

/// One Bonjour service type.
#[derive(Debug, Clone, Serialize)]
pub struct BonjourLine {
    /// The service type, `_airplay._tcp`.
    #[serde(rename = "type")]
    pub service_type: String,
    /// The Apple service it belongs to, or null for non-Apple types.
    pub service: Option<String>,
    /// Devices (addresses) that announced it.
    pub announced_by: Vec<IpAddr>,
    /// Hosts (addresses) that searched for it.
    pub searched_by: Vec<IpAddr>,
    /// Instance names announced.
    pub instances: Vec<String>,
    /// Device models of the announcers, where TXT records gave them.
    pub models: Vec<String>,
}

/// A name and how many flows carried it.
#[derive(Debug, Clone, Serialize)]
pub struct NameCount {
    /// The name.
    pub name: String,
    /// Flows.
    pub flows: u64,
}

/// Sizes and drops of the bounded stores shared between flows.
#[derive(Debug, Clone, Serialize)]
pub struct StateCounters {
    /// Addresses with DNS-bound names held.
    pub dns_addresses: usize,
    /// Addresses evicted from the DNS store because it was full.
    pub dns_evictions: u64,
    /// mDNS endpoints with an announcement held.
    pub mdns_endpoints: usize,
    /// mDNS endpoints evicted because the store was full.
    pub mdns_evictions: u64,
    /// Bonjour observations dropped at a bound.
    pub bonjour_dropped: u64,
    /// Flows with unclassified Apple names past the list's bound.
    pub apple_names_dropped: u64,
    /// DNS-over-TCP answer streams given up to stay within their bound.
    pub dns_tcp_streams_dropped: u64,
    /// Flows negotiated by sessions (RTSP SETUP) still expected.
    pub expected_flows: usize,
    /// Expected flows dropped at their cap before their time.
    pub expected_evictions: u64,
}

/// What the IP fragment reassembler did (see [`crate::decode::defrag`]). Every fragment is in
/// a reassembled datagram, still held, or dropped for one reason.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Defrag {
    /// Fragments read.
    pub fragments: u64,
    /// Datagrams reassembled (each decoded and classified as one packet).
    pub reassembled: u64,
    /// Fragments those datagrams were made of.
    pub reassembled_fragments: u64,
    /// Fragments that overlapped bytes held with the same bytes.
    pub overlaps: u64,
    /// Fragments that overlapped bytes held with other bytes (the first bytes were kept).
    pub conflicts: u64,
    /// Fragments held now (a live report; 0 at the end).
    pub held_fragments: u64,
    /// Bytes held now, as counted against `--max-fragment-bytes`.
    pub held_bytes: u64,
    /// The most bytes held at once.
    pub peak_held_bytes: u64,
    /// Fragments dropped, by reason (only reasons that occurred).
    pub dropped: BTreeMap<&'static str, u64>,
}

impl Defrag {
    /// Whether the input had no fragment.
    pub fn is_empty(&self) -> bool {
        self.fragments == 0
    }

    fn of(s: &DefragStats) -> Self {
        Self {
            fragments: s.fragments,
            reassembled: s.reassembled,
            reassembled_fragments: s.reassembled_fragments,
            overlaps: s.overlaps,
            conflicts: s.conflicts,
            held_fragments: s.held_fragments,
            held_bytes: s.held_bytes,
            peak_held_bytes: s.peak_held_bytes,
            dropped: DefragDrop::ALL
                .iter()
                .map(|r| (r.as_str(), s.dropped[*r as usize]))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}

/// One skip reason's count.
#[derive(Debug, Clone, Serialize)]
pub struct SkipLine {
    /// Reason name.
    pub reason: &'static str,
    /// Packets.
    pub packets: u64,
}

/// One kind of 802.11 frame and how many were read.
#[derive(Debug, Clone, Serialize)]
pub struct WifiFrameLine {
    /// Kind name (`beacon`, `qos-data`, `protected-data`, ...).
    pub kind: &'static str,
    /// Frames.
    pub frames: u64,
}

impl Report {
    /// Builds the report from merged tallies and counters.
    pub fn build(
        sigs: &SignatureSet,
        inputs: Vec<InputSummary>,
        counters: &Counters,
        names: &NamesSnapshot,
        flows_evicted: u64,
        drops: Drops,
    ) -> Self {
        let (tally, stats) = (&counters.tally, &counters.packets);
        let mut services: Vec<ServiceLine> = tally
            .nonzero()
            .map(|(idx, t)| match idx {
                Some(i) => {
                    let s = &sigs.services[i];
                    ServiceLine {
                        service: s.id.clone(),
                        apple: s.apple,
                        name: s.name.clone(),
                        tally: *t,
                    }
                }
                None => ServiceLine {
                    service: crate::signature::UNKNOWN.into(),
                    apple: false,
                    name: "matched no signature".into(),
                    tally: *t,
                },
            })
            .collect();
        let group = |l: &ServiceLine| match (l.apple, l.service == crate::signature::UNKNOWN) {
            (true, _) => 0,
            (false, false) => 1,
            (false, true) => 2,
        };
        services.sort_by(|a, b| {
            group(a)
                .cmp(&group(b))
                .then(b.tally.bytes.cmp(&a.tally.bytes))
                .then(a.service.cmp(&b.service))
        });
        let mut bonjour: Vec<BonjourLine> = names
            .bonjour
            .iter()
            .cloned()
            .map(|(t, seen)| {
                let service = sigs
                    .bonjour_rule(&t)
                    .map(|r| sigs.service(r.service).id.clone());
                let models: BTreeSet<String> = seen
                    .announcers
                    .iter()
                    .filter_map(|a| names.models.get(a).cloned())
                    .collect();
                BonjourLine {
                    service_type: t,
                    service,
                    announced_by: seen.announcers.into_iter().collect(),
                    searched_by: seen.searchers.into_iter().collect(),
                    instances: seen.instances.into_iter().map(String::from).collect(),
                    models: models.into_iter().collect(),
                }
            })
            .collect();
        bonjour.sort_by(|a, b| {
            b.service
                .is_some()
                .cmp(&a.service.is_some())
                .then(a.service_type.cmp(&b.service_type))
        });
        let (apple_names, names_dropped) = tally.apple_names();
        let unclassified_apple_names = apple_names
            .iter()
            .map(|(n, c)| NameCount {
                name: n.clone(),
                flows: *c,
            })
            .collect();
        let health = health_lines(sigs, &counters.outcomes);
        let mut unexpected: Vec<UnexpectedLine> = counters
            .outcomes
            .unexpected
            .iter()
            .map(|(k, n)| UnexpectedLine {
                reason: unexpected_reason(k, *n),
                key: k.clone(),
                flows: *n,
            })
            .collect();
        unexpected.sort_by(|a, b| {
            a.key
                .kind
                .cmp(&b.key.kind)
                .then(b.flows.cmp(&a.flows))
                .then(a.key.cmp(&b.key))
        });
        let flows = services.iter().map(|l| l.tally.flows).sum();
        let apple_flows = services
            .iter()
            .filter(|l| l.apple)
            .map(|l| l.tally.flows)
            .sum();
        Self {
            appletap_version: env!("CARGO_PKG_VERSION"),
            signatures: sigs.origin.clone(),
            inputs,
            services,
            totals: Totals {
                packets_read: stats.read,
                bytes_read: stats.bytes,
                packets_decoded: stats.decoded,
                packets_skipped: stats.skipped_total(),
                flows,
                apple_flows,
                flows_evicted,
                flows_active: 0,
                clock_restarts: stats.clock_restarts,
                clock_outliers: stats.clock_outliers,
            },
            skipped: Skip::ALL
                .iter()
                .map(|s| SkipLine {
                    reason: s.as_str(),
                    packets: stats.skipped[s.index()],
                })
                .collect(),
            defrag: Defrag::of(&names.defrag),
            wifi_frames: FrameKind::ALL
                .iter()
                .filter(|k| stats.wifi[k.index()] > 0)
                .map(|k| WifiFrameLine {
                    kind: k.as_str(),
                    frames: stats.wifi[k.index()],
                })
                .collect(),
            tunnels: Tunnels::of(&stats.tunnels),
            bonjour,
            unclassified_apple_names,
            state: StateCounters {
                dns_addresses: names.dns_addresses,
                dns_evictions: names.dns_evictions,
                mdns_endpoints: names.mdns_endpoints,
                mdns_evictions: names.mdns_evictions,
                bonjour_dropped: names.bonjour_dropped,
                dns_tcp_streams_dropped: names.dns_tcp_streams_dropped,
                apple_names_dropped: names_dropped,
                expected_flows: names.expected_flows,
                expected_evictions: names.expected_evictions,
            },
            drops,
            health,
            unexpected,
            floods_and_scans: FloodsAndScans::build(sigs, &counters.outcomes.activity),
            devices: devices::Devices::build(sigs, &names.devices, &counters.devices),
        }
    }
}

fn unexpected_reason(k: &UnexpectedKey, flows: u64) -> String {
    let port = format!("{} {}", k.proto.as_str().to_ascii_uppercase(), k.port);
    let who = match &k.name {
        Some(n) => format!("{} ({n})", k.server),
        None => k.server.clone(),
    };
    let flows = if flows == 1 {
        "1 flow".to_string()
    } else {
        format!("{flows} flows")
    };
    match k.kind {
        UnexpectedKind::AppleEndpointUnlistedPort => format!(
            "Apple endpoint {who} ({}) on {port}, a port no Apple signature lists: {flows}",
            k.service
        ),
        UnexpectedKind::ApplePortNonAppleEndpoint => format!(
            "{port} is an Apple service port ({}), but {who} is not an Apple endpoint: {flows}",
            k.service
        ),
    }
}
