//! Health verdicts in words: per Apple service, whether its connection attempts got through
//! (ok, degraded, blocked, or inconclusive), why, per port, and what the sources say to allow.
//!
//! An attempt with no reply at all costs a spoofer one packet, so it counts towards a verdict
//! only when its client completed some other exchange in the capture and is not scanning (see
//! [`Basis`]); attempts refused by a reply (RST, ICMP error) always count. What was not counted
//! is said in the reason, and floods and scans have their own section of the report.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::counters::Outcomes;
use crate::counters::outcomes::activity::MAX_CLIENTS;
use crate::counters::outcomes::{Audit, Basis};
use crate::signature::{ServiceId, SignatureSet, Transport};

/// A service's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Attempts were seen but none that tells: every one that failed went unanswered and came
    /// from a source that did nothing else in the capture or was scanning (one spoofed packet
    /// makes such an attempt), and none was answered.
    Inconclusive,
    /// No attempt that counts failed.
    Ok,
    /// Some attempts failed, others got through.
    Degraded,
    /// Attempts were made and none got through.
    Blocked,
}

impl Verdict {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inconclusive => "inconclusive",
            Self::Ok => "ok",
            Self::Degraded => "degraded",
            Self::Blocked => "blocked",
        }
    }
}

/// Per-port outcomes in a health line.
#[derive(Debug, Clone, Serialize)]
pub struct PortOutcomes {
    /// `tcp` or `udp`.
    pub proto: Transport,
    /// Server port.
    pub port: u16,
    /// Outcomes.
    #[serde(flatten)]
    pub outcomes: Outcomes,
    /// Who made the attempts and which unanswered ones count.
    pub basis: Basis,
}

impl PortOutcomes {
    /// Attempts answered, or flows seen working mid-flow.
    fn answered(&self) -> u64 {
        self.outcomes.established + self.outcomes.midflow
    }

    /// Failed attempts that count: refused ones, and unanswered ones of active clients.
    fn failed(&self) -> u64 {
        self.outcomes.rejected + self.outcomes.unreachable + self.basis.unanswered_counted
    }

    /// The outcomes as counted: without the unanswered attempts that do not count.
    fn counted(&self) -> Outcomes {
        let d = self.basis.discounted();
        Outcomes {
            attempts: self.outcomes.attempts - d,
            unanswered: self.outcomes.unanswered - d,
            ..self.outcomes
        }
    }
}

/// What the sources say a firewall must allow for a service.
#[derive(Debug, Clone, Serialize)]
pub struct Allow {
    /// Ports (`tcp/5223`, ...).
    pub ports: Vec<String>,
    /// Hosts (`*.push.apple.com`, ...).
    pub hosts: Vec<String>,
    /// Where that comes from.
    pub sources: Vec<String>,
}

/// One Apple service's health.
#[derive(Debug, Clone, Serialize)]
pub struct HealthLine {
    /// Service id.
    pub service: String,
    /// Totals over its ports.
    #[serde(flatten)]
    pub outcomes: Outcomes,
    /// Totals over its ports: who made the attempts and which unanswered ones count.
    pub basis: Basis,
    /// `ok`, `degraded`, `blocked` or `inconclusive`.
    pub verdict: Verdict,
    /// The verdict in words, with the attempts that were not counted and why.
    pub reason: String,
    /// What the verdict rests on, in words: the attempts counted and the clients behind them.
    pub counted: String,
    /// Per server port.
    pub ports: Vec<PortOutcomes>,
    /// What to allow, per the sources (for `degraded` and `blocked`).
    pub allow: Option<Allow>,
}

fn port_name(proto: Transport, port: u16) -> String {
    format!("{} {port}", proto.as_str().to_ascii_uppercase())
}

/// "connection attempts" for TCP, "requests" for UDP.
fn attempts_word(proto: Transport, n: u64) -> String {
    if proto == Transport::Tcp {
        plural(n, "connection attempt", "connection attempts")
    } else {
        plural(n, "request", "requests")
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Builds the health lines: one per Apple service with at least one attempt or mid-flow flow.
pub fn health_lines(sigs: &SignatureSet, audit: &Audit) -> Vec<HealthLine> {
    let mut by_service: BTreeMap<&str, (ServiceId, Vec<PortOutcomes>)> = BTreeMap::new();
    for ((id, transport, port), o) in &audit.health {
        let service = sigs.service(*id).id.as_str();
        let entry = by_service
            .entry(service)
            .or_insert_with(|| (*id, Vec::new()));
        entry.1.push(PortOutcomes {
            proto: *transport,
            port: *port,
            outcomes: *o,
            basis: audit
                .activity
                .basis(&(*id, *transport, *port), o.unanswered),
        });
    }
    let mut lines: Vec<HealthLine> = by_service
        .into_iter()
        .map(|(service, (id, ports))| {
            let mut total = Outcomes::default();
            let mut basis = Basis::default();
            for p in &ports {
                total.add(&p.outcomes);
                basis.add(&p.basis);
            }
            (basis.clients, basis.active_clients) = audit.activity.service_clients(id);
            let answered: u64 = ports.iter().map(PortOutcomes::answered).sum();
            let failed: u64 = ports.iter().map(PortOutcomes::failed).sum();
            let verdict = if failed == 0 {
                if answered == 0 && total.failed() > 0 {
                    Verdict::Inconclusive
                } else {
                    Verdict::Ok
                }
            } else if answered == 0 {
                Verdict::Blocked
            } else {
                Verdict::Degraded
            };
            let mut reason = reason(service, &ports, &total, verdict);
            if basis.discounted() > 0 && verdict != Verdict::Inconclusive {
                reason.push_str(&format!(
                    "; not counted, as one spoofed packet each can fake them: {} (see FLOODS \
                     AND SCANS)",
                    not_counted(&ports).join("; ")
                ));
            }
            let counted = counted(&ports, &basis);
            let allow = (verdict >= Verdict::Degraded)
                .then(|| sigs.service(id))
                .filter(|s| !s.allow.is_empty() || !s.allow_hosts.is_empty())
                .map(|s| Allow {
                    ports: s.allow.iter().map(ToString::to_string).collect(),
                    hosts: s.allow_hosts.clone(),
                    sources: s.sources.clone(),
                });
            HealthLine {
                service: service.to_string(),
                outcomes: total,
                basis,
                verdict,
                reason,
                counted,
                ports,
                allow,
            }
        })
        .collect();
    lines.sort_by(|a, b| b.verdict.cmp(&a.verdict).then(a.service.cmp(&b.service)));
    lines
}

fn failures(o: &Outcomes) -> String {
    let mut parts = Vec::new();
    if o.unanswered > 0 {
        parts.push(format!("{} unanswered", o.unanswered));
    }
    if o.rejected > 0 {
        parts.push(format!("{} rejected", o.rejected));
    }
    if o.unreachable > 0 {
        parts.push(format!("{} unreachable", o.unreachable));
    }
    parts.join(", ")
}

fn reason(service: &str, ports: &[PortOutcomes], total: &Outcomes, verdict: Verdict) -> String {
    // Failures are the counted ones: an unanswered attempt of a source that did nothing else
    // neither blocks a port nor degrades it.
    let blocked: Vec<&PortOutcomes> = ports
        .iter()
        .filter(|p| p.failed() > 0 && p.answered() == 0)
        .collect();
    let working: Vec<&PortOutcomes> = ports.iter().filter(|p| p.answered() > 0).collect();
    let mut s = String::new();
    match verdict {
        Verdict::Ok => {
            let mut seen = Vec::new();
            if total.established > 0 {
                seen.push(format!(
                    "{} answered",
                    plural(total.established, "flow", "flows")
                ));
            }
            if total.midflow > 0 {
                seen.push(format!(
                    "{} seen mid-flow",
                    plural(total.midflow, "flow", "flows")
                ));
            }
            let list: Vec<String> = ports
                .iter()
                .filter(|p| p.answered() > 0)
                .map(|p| port_name(p.proto, p.port))
                .collect();
            s.push_str(&format!(
                "{service}: {} ({}); nothing failed",
                seen.join(", "),
                list.join(", ")
            ));
        }
        Verdict::Inconclusive => {
            s.push_str(&format!(
                "{service}: no attempt that counts: {}; one spoofed packet makes such an \
                 attempt, so this is no evidence that {service} is blocked",
                not_counted(ports).join("; ")
            ));
        }
        _ => {
            let mut parts = Vec::new();
            for p in &blocked {
                let c = p.counted();
                parts.push(format!(
                    "{} to {}, none answered ({})",
                    attempts_word(p.proto, c.attempts),
                    port_name(p.proto, p.port),
                    failures(&c)
                ));
            }
            for w in &working {
                let (ok, c) = (w.answered(), w.counted());
                if w.failed() > 0 {
                    parts.push(format!(
                        "{ok} of {} to {} answered ({})",
                        attempts_word(w.proto, c.attempts + c.midflow),
                        port_name(w.proto, w.port),
                        failures(&c)
                    ));
                } else if !blocked.is_empty() {
                    parts.push(format!(
                        "{ok} fell back to {} and succeeded",
                        port_name(w.proto, w.port)
                    ));
                } else {
                    parts.push(format!("{ok} succeeded on {}", port_name(w.proto, w.port)));
                }
            }
            s.push_str(&format!("{service}: {}", parts.join("; ")));
            if !blocked.is_empty() {
                let names: Vec<String> =
                    blocked.iter().map(|p| port_name(p.proto, p.port)).collect();
                s.push_str(&format!(
                    ": {} {} blocked",
                    names.join(" and "),
                    if names.len() == 1 { "looks" } else { "look" }
                ));
            }
        }
    }
    s
}

/// The unanswered attempts that were not counted, per port, and why.
fn not_counted(ports: &[PortOutcomes]) -> Vec<String> {
    let mut parts = Vec::new();
    for p in ports.iter().filter(|p| p.basis.discounted() > 0) {
        let b = &p.basis;
        let mut why = Vec::new();
        if b.unanswered_from_inactive > 0 {
            why.push(format!(
                "{} from sources that did nothing else in the capture",
                b.unanswered_from_inactive
            ));
        }
        if b.unanswered_from_scanners > 0 {
            why.push(format!(
                "{} from sources scanning many hosts or ports",
                b.unanswered_from_scanners
            ));
        }
        if b.unanswered_unchecked > 0 {
            why.push(format!(
                "{} from sources past the {MAX_CLIENTS} clients followed",
                b.unanswered_unchecked
            ));
        }
        parts.push(format!(
            "{} to {} ({})",
            plural(b.discounted(), "unanswered attempt", "unanswered attempts"),
            port_name(p.proto, p.port),
            why.join(", ")
        ));
    }
    parts
}

/// What the verdict rests on: the attempts counted and the clients behind them.
fn counted(ports: &[PortOutcomes], basis: &Basis) -> String {
    let mut total = Outcomes::default();
    for p in ports {
        total.add(&p.counted());
    }
    let mut s = if total.attempts == 0 && total.midflow > 0 {
        return plural(total.midflow, "flow", "flows") + " seen mid-flow";
    } else if total.attempts == 0 {
        "no attempt counts".to_string()
    } else {
        let clients = if basis.clients == basis.active_clients {
            plural(basis.clients, "active client", "active clients")
        } else if basis.active_clients == 0 {
            format!(
                "{} that did nothing else in the capture",
                plural(basis.clients, "client", "clients")
            )
        } else {
            format!(
                "{}, {} of them active",
                plural(basis.clients, "client", "clients"),
                basis.active_clients
            )
        };
        let mut outcomes = Vec::new();
        if total.established > 0 {
            outcomes.push(format!("{} answered", total.established));
        }
        if total.failed() > 0 {
            outcomes.push(failures(&total));
        }
        format!(
            "{} from {clients} ({})",
            plural(total.attempts, "attempt", "attempts"),
            outcomes.join(", ")
        )
    };
    if total.midflow > 0 {
        s.push_str(&format!(
            "; {} seen mid-flow",
            plural(total.midflow, "flow", "flows")
        ));
    }
    s
}
