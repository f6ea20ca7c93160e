//! Floods and scans in words: destinations that drew many unanswered attempts from many
//! single-packet sources (spoofed SYNs, for one), and sources whose unanswered attempts went to
//! many hosts or ports. They are reported apart from the health of the services they hit, whose
//! verdicts do not count such attempts (see [`crate::report::health`]).

use std::net::IpAddr;

use serde::Serialize;

use crate::counters::outcomes::activity::{
    Activity, FLOOD_MIN_ATTEMPTS, FLOOD_MIN_SOURCES, MAX_CLIENTS, MAX_TARGETS,
};
use crate::signature::{SignatureSet, Transport};

/// One destination that drew a flood of unanswered attempts.
#[derive(Debug, Clone, Serialize)]
pub struct FloodLine {
    /// `tcp` or `udp`.
    pub proto: Transport,
    /// The destination address.
    pub server: IpAddr,
    /// The destination port.
    pub port: u16,
    /// The service its port suggests, if a signature lists it.
    pub service: Option<String>,
    /// Whether the destination is an Apple address.
    pub apple_address: bool,
    /// Attempts to it with no reply at all.
    pub unanswered: u64,
    /// Of them, flows of a single packet.
    pub one_packet: u64,
    /// Distinct sources of those attempts (estimated when `sources_estimated`).
    pub sources: u64,
    /// Whether `sources` is an estimate (past 256 distinct sources).
    pub sources_estimated: bool,
    /// The finding in words.
    pub reason: String,
}

/// One source whose unanswered attempts went to many hosts or ports.
#[derive(Debug, Clone, Serialize)]
pub struct ScanLine {
    /// The source address.
    pub source: IpAddr,
    /// Its attempts with no reply at all.
    pub unanswered: u64,
    /// Distinct hosts they went to (estimated past 128).
    pub hosts: u64,
    /// Distinct ports they went to (estimated past 128).
    pub ports: u64,
    /// Whether it completed some other exchange in the capture.
    pub active: bool,
    /// The finding in words.
    pub reason: String,
}

/// The floods and scans section, with how much of the traffic its bounded tables followed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FloodsAndScans {
    /// Flooded destinations, most attempts first.
    pub floods: Vec<FloodLine>,
    /// Scanning sources, most attempts first.
    pub scans: Vec<ScanLine>,
    /// Clients followed (at most 32768: those whose address hashes smallest).
    pub clients_followed: u64,
    /// Distinct clients seen (estimated from the followed ones when there were more).
    pub clients_seen: u64,
    /// Destinations of unanswered attempts followed (at most 1024, chosen the same way).
    pub targets_followed: u64,
    /// Distinct destinations of unanswered attempts seen (estimated when there were more).
    pub targets_seen: u64,
}

fn about(n: u64, estimated: bool) -> String {
    if estimated {
        format!("about {n}")
    } else {
        n.to_string()
    }
}

impl FloodsAndScans {
    /// Finds the floods and scans in merged activity counters.
    pub fn build(sigs: &SignatureSet, a: &Activity) -> Self {
        let mut floods: Vec<FloodLine> = a
            .targets
            .iter()
            .filter(|(_, t)| {
                t.unanswered >= FLOOD_MIN_ATTEMPTS
                    && t.sources.estimate() >= FLOOD_MIN_SOURCES
                    && t.one_packet * 2 >= t.unanswered
            })
            .map(|(k, t)| {
                let service = sigs
                    .port_rule(k.proto, k.port)
                    .map(|(_, r)| sigs.service(r.service).id.clone());
                let apple_address = sigs.is_apple_address(k.server);
                let (sources, estimated) = (t.sources.estimate(), !t.sources.is_exact());
                let what = if k.proto == Transport::Tcp {
                    "connection attempts (SYNs)"
                } else {
                    "requests"
                };
                let reason = format!(
                    "{} {} on {}{}{}: {} {what} with no reply from {} sources, {} of them a \
                     single packet: looks like a flood of spoofed packets, not use of the \
                     service; not counted in its health",
                    k.proto.as_str().to_ascii_uppercase(),
                    k.port,
                    k.server,
                    if apple_address {
                        " (an Apple address)"
                    } else {
                        ""
                    },
                    service
                        .as_deref()
                        .map_or(String::new(), |s| format!(", {s}'s port")),
                    t.unanswered,
                    about(sources, estimated),
                    t.one_packet,
                );
                FloodLine {
                    proto: k.proto,
                    server: k.server,
                    port: k.port,
                    service,
                    apple_address,
                    unanswered: t.unanswered,
                    one_packet: t.one_packet,
                    sources,
                    sources_estimated: estimated,
                    reason,
                }
            })
            .collect();
        floods.sort_by(|x, y| {
            y.unanswered
                .cmp(&x.unanswered)
                .then((x.proto, x.server, x.port).cmp(&(y.proto, y.server, y.port)))
        });
        let mut scans: Vec<ScanLine> = a
            .clients
            .iter()
            .filter(|(_, c)| c.scanning())
            .map(|(ip, c)| {
                let (hosts, ports) = (c.hosts.estimate(), c.ports.estimate());
                let reason = format!(
                    "{ip} made {} attempts with no reply to {} hosts and {} ports: looks like a \
                     scan; {}; its unanswered attempts are not counted in the health of the \
                     services they hit",
                    c.unanswered,
                    about(hosts, !c.hosts.is_exact()),
                    about(ports, !c.ports.is_exact()),
                    if c.active {
                        "it also completed other exchanges"
                    } else {
                        "it did nothing else in the capture"
                    }
                );
                ScanLine {
                    source: *ip,
                    unanswered: c.unanswered,
                    hosts,
                    ports,
                    active: c.active,
                    reason,
                }
            })
            .collect();
        scans.sort_by(|x, y| {
            y.unanswered
                .cmp(&x.unanswered)
                .then(x.source.cmp(&y.source))
        });
        debug_assert!(a.clients.len() <= MAX_CLIENTS && a.targets.len() <= MAX_TARGETS);
        Self {
            floods,
            scans,
            clients_followed: a.clients.len() as u64,
            clients_seen: a.clients.estimate(),
            targets_followed: a.targets.len() as u64,
            targets_seen: a.targets.estimate(),
        }
    }
}
