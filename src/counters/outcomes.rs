//! Connection outcomes and unexpected traffic, counted per worker: per Apple service and server
//! port, how connection attempts ended (answered, rejected, unanswered, unreachable); and
//! traffic that does not fit the signature set (Apple endpoints on unlisted ports, Apple
//! service ports on non-Apple endpoints); and who is behind failed attempts ([`activity`]: which
//! clients did anything else, where unanswered attempts went), so that attempts a spoofer can
//! make for one packet each do not decide a verdict. Verdicts and their wording are the
//! report's ([`crate::report::health`]).

pub mod activity;

use std::collections::BTreeMap;

use serde::Serialize;

use super::Finished;
use crate::classify::{Confidence, Signal};
use crate::flow::{FlowState, is_global};
use crate::signature::{ServiceId, SignatureSet, Transport};
use crate::wire::ports;
pub use activity::{Activity, Basis, HealthKey, Target};

/// Most distinct (kind, endpoint, port) lines of unexpected traffic remembered.
const MAX_UNEXPECTED: usize = 10_000;

/// How the connection attempts to one service on one server port ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    /// Flows whose start was seen (a SYN, or a first UDP request).
    pub attempts: u64,
    /// Attempts that were answered (established, then closed or reset or still open).
    pub established: u64,
    /// SYNs answered by RST.
    pub rejected: u64,
    /// SYNs or requests with no reply at all.
    pub unanswered: u64,
    /// Attempts an ICMP error said could not be delivered.
    pub unreachable: u64,
    /// Flows seen only from the middle (the capture began after they did), with traffic both
    /// ways: evidence that the service works, not attempts.
    pub midflow: u64,
}

impl Outcomes {
    /// Adds `o`.
    pub fn add(&mut self, o: &Self) {
        self.attempts += o.attempts;
        self.established += o.established;
        self.rejected += o.rejected;
        self.unanswered += o.unanswered;
        self.unreachable += o.unreachable;
        self.midflow += o.midflow;
    }

    /// Attempts that failed in any way.
    pub fn failed(&self) -> u64 {
        self.rejected + self.unanswered + self.unreachable
    }
}

/// A kind of unexpected traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnexpectedKind {
    /// An Apple address or Apple name on a port the signature set does not list.
    AppleEndpointUnlistedPort,
    /// A well-known Apple service port used by a non-Apple endpoint.
    ApplePortNonAppleEndpoint,
}

/// One line of unexpected traffic: who, which port, how many flows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct UnexpectedKey {
    /// What is unexpected about it.
    pub kind: UnexpectedKind,
    /// `tcp` or `udp`.
    pub proto: Transport,
    /// Server port.
    pub port: u16,
    /// Server address.
    pub server: String,
    /// Name seen for the server, if any.
    pub name: Option<String>,
    /// The service the port or endpoint suggests.
    pub service: String,
}

/// Health and unexpected-traffic counters of one worker; merged across workers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    /// (service, transport, server port) -> outcomes.
    pub health: BTreeMap<(ServiceId, Transport, u16), Outcomes>,
    /// Unexpected traffic -> flows.
    pub unexpected: BTreeMap<UnexpectedKey, u64>,
    /// Flows of unexpected traffic past the bound.
    pub unexpected_dropped: u64,
    /// Who completed exchanges and who made unanswered attempts, where.
    pub activity: Activity,
}

impl Audit {
    /// Counts a finished flow.
    pub fn add_flow(&mut self, sigs: &SignatureSet, f: &Finished<'_>) {
        let flow = f.flow;
        let Some(transport) = Transport::from_ip_proto(flow.proto) else {
            return;
        };
        let port = flow.server.1;
        let conf = f.decision.confidence;
        let service = f.decision.service;
        let apple = service.is_some_and(|s| sigs.service(s).apple);
        let state = f.state;
        let client = flow.client.0;
        // A media flow a session negotiated is one-way by design (RTP audio to a receiver):
        // whether the session worked is its parent's outcome, not an unanswered attempt.
        if state == FlowState::Unanswered && f.decision.decided_by() == Some(Signal::Expected) {
            return;
        }
        match state {
            FlowState::Established | FlowState::Closed | FlowState::Reset => {
                self.activity.note_active(client);
            }
            // Seen mid-flow with traffic both ways, or a DNS answer to it: it talks.
            FlowState::Partial
                if flow.packets[1] > 0 && (flow.packets[0] > 0 || port == ports::DNS) =>
            {
                self.activity.note_active(client);
            }
            FlowState::Unanswered => {
                let target = Target {
                    proto: transport,
                    server: flow.server.0,
                    port,
                };
                self.activity
                    .note_unanswered(client, target, flow.total_packets());
            }
            _ => {}
        }
        // Health: Apple services labelled at least `likely`; a port-only guess is not enough
        // to call a service blocked.
        if let Some(service) = service
            && apple
            && conf >= Some(Confidence::Likely)
        {
            let mut o = Outcomes::default();
            match state {
                FlowState::Established | FlowState::Closed | FlowState::Reset => {
                    o.attempts = 1;
                    o.established = 1;
                }
                FlowState::Rejected => {
                    o.attempts = 1;
                    o.rejected = 1;
                }
                FlowState::Unanswered => {
                    o.attempts = 1;
                    o.unanswered = 1;
                }
                FlowState::Unreachable => {
                    o.attempts = 1;
                    o.unreachable = 1;
                }
                FlowState::Partial if flow.packets[0] > 0 && flow.packets[1] > 0 => {
                    o.midflow = 1;
                }
                _ => {}
            }
            if o.attempts > 0 {
                self.activity
                    .note_apple(client, (service, transport, port), o.unanswered > 0);
            }
            if o != Outcomes::default() {
                self.health
                    .entry((service, transport, port))
                    .or_default()
                    .add(&o);
            }
        }
        let decided_by = f.decision.decided_by();
        let port_rule = sigs.port_rule(transport, port).map(|(_, r)| r);
        let port_listed =
            port_rule.is_some_and(|r| !r.used_by.is_empty() || sigs.service(r.service).apple);
        // An Apple endpoint on the Internet (by address or name; mDNS endpoints of local
        // devices legitimately use dynamic ports) on a port no Apple signature lists.
        let internet_apple = apple
            && matches!(
                decided_by,
                Some(
                    Signal::Address
                        | Signal::Sni
                        | Signal::QuicSni
                        | Signal::HttpHost
                        | Signal::Dns
                )
            );
        if internet_apple && !port_listed {
            let service = service.map_or(crate::signature::UNKNOWN, |s| &sigs.service(s).id);
            self.note(
                f,
                transport,
                UnexpectedKind::AppleEndpointUnlistedPort,
                service,
            );
        }
        // A port that only Apple services use, on an Internet endpoint nothing says is Apple's.
        // (On a private or link-local address the server is a local device, often a Mac, and
        // nothing tells whose it is.)
        if let Some(r) = port_rule
            && sigs.service(r.service).apple
            && !(apple && conf >= Some(Confidence::Likely))
            && !sigs.is_apple_address(flow.server.0)
            && is_global(flow.server.0)
        {
            self.note(
                f,
                transport,
                UnexpectedKind::ApplePortNonAppleEndpoint,
                &sigs.service(r.service).id,
            );
        }
    }

    fn note(
        &mut self,
        f: &Finished<'_>,
        transport: Transport,
        kind: UnexpectedKind,
        service: &str,
    ) {
        let key = UnexpectedKey {
            kind,
            proto: transport,
            port: f.flow.server.1,
            server: f.flow.server.0.to_string(),
            name: f.name.map(str::to_string),
            service: service.to_string(),
        };
        if let Some(n) = self.unexpected.get_mut(&key) {
            *n += 1;
        } else if self.unexpected.len() < MAX_UNEXPECTED {
            self.unexpected.insert(key, 1);
        } else {
            self.unexpected_dropped += 1;
        }
    }

    /// Adds another worker's counters.
    pub fn merge(&mut self, other: &Self) {
        for (k, o) in &other.health {
            self.health.entry(*k).or_default().add(o);
        }
        for (k, n) in &other.unexpected {
            if let Some(m) = self.unexpected.get_mut(k) {
                *m += n;
            } else if self.unexpected.len() < MAX_UNEXPECTED {
                self.unexpected.insert(k.clone(), *n);
            } else {
                self.unexpected_dropped += n;
            }
        }
        self.unexpected_dropped += other.unexpected_dropped;
        self.activity.merge(&other.activity);
    }
}
