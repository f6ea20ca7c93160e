//! Health verdicts in words: per Apple service, whether its connection attempts got through
//! (ok, degraded, blocked), why, per port, and what the sources say to allow.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::counters::Outcomes;
use crate::counters::outcomes::Audit;
use crate::signature::{ServiceId, SignatureSet, Transport};

/// A service's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// No attempt failed.
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
    /// `ok`, `degraded` or `blocked`.
    pub verdict: Verdict,
    /// The verdict in words.
    pub reason: String,
    /// Per server port.
    pub ports: Vec<PortOutcomes>,
    /// What to allow, per the sources (for verdicts other than ok).
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
        });
    }
    let mut lines: Vec<HealthLine> = by_service
        .into_iter()
        .map(|(service, (id, ports))| {
            let mut total = Outcomes::default();
            for p in &ports {
                total.add(&p.outcomes);
            }
            let answered = total.established + total.midflow;
            let verdict = if total.failed() == 0 {
                Verdict::Ok
            } else if answered == 0 {
                Verdict::Blocked
            } else {
                Verdict::Degraded
            };
            let reason = reason(service, &ports, &total, verdict);
            let allow = (verdict != Verdict::Ok)
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
                verdict,
                reason,
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
    let blocked: Vec<&PortOutcomes> = ports
        .iter()
        .filter(|p| p.outcomes.failed() > 0 && p.outcomes.established + p.outcomes.midflow == 0)
        .collect();
    let working: Vec<&PortOutcomes> = ports
        .iter()
        .filter(|p| p.outcomes.established + p.outcomes.midflow > 0)
        .collect();
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
            let list: Vec<String> = ports.iter().map(|p| port_name(p.proto, p.port)).collect();
            s.push_str(&format!(
                "{service}: {} ({}); nothing failed",
                seen.join(", "),
                list.join(", ")
            ));
        }
        _ => {
            let mut parts = Vec::new();
            for p in &blocked {
                parts.push(format!(
                    "{} to {}, none answered ({})",
                    attempts_word(p.proto, p.outcomes.attempts),
                    port_name(p.proto, p.port),
                    failures(&p.outcomes)
                ));
            }
            for w in &working {
                let ok = w.outcomes.established + w.outcomes.midflow;
                if w.outcomes.failed() > 0 {
                    parts.push(format!(
                        "{ok} of {} to {} answered ({})",
                        attempts_word(w.proto, w.outcomes.attempts + w.outcomes.midflow),
                        port_name(w.proto, w.port),
                        failures(&w.outcomes)
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
