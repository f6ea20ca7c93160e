//! Events (`--events`): what changed between two reports, as JSON lines a log pipeline
//! alerts on. A service's health verdict changing, and each unexpected-traffic finding the
//! first time it appears (once per finding: who, which port, which service it suggests).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::Report;
use super::health::Verdict;
use crate::counters::outcomes::UnexpectedKey;

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A service's health verdict changed (`from` null: the first verdict, written only
    /// when it is not `ok`).
    HealthChange {
        /// Service id.
        service: String,
        /// The verdict before, or null.
        from: Option<Verdict>,
        /// The verdict now.
        to: Verdict,
        /// The verdict in words.
        reason: String,
        /// When it was noticed, seconds since the epoch.
        at: f64,
    },
    /// An unexpected-traffic finding seen for the first time.
    Unexpected {
        /// What, where, and the service it suggests.
        #[serde(flatten)]
        key: UnexpectedKey,
        /// Flows so far.
        flows: u64,
        /// The finding in words.
        reason: String,
        /// When it was noticed, seconds since the epoch.
        at: f64,
    },
}

/// What the previous reports said, to tell what is new in the next.
#[derive(Debug, Default)]
pub struct EventTracker {
    verdicts: BTreeMap<String, Verdict>,
    findings: BTreeSet<UnexpectedKey>,
}

impl EventTracker {
    /// The events `report` brings since the reports seen before, noticed at `at`.
    pub fn next(&mut self, report: &Report, at: f64) -> Vec<Event> {
        let mut events = Vec::new();
        for h in &report.health {
            let from = self.verdicts.insert(h.service.clone(), h.verdict);
            if from != Some(h.verdict) && !(from.is_none() && h.verdict == Verdict::Ok) {
                events.push(Event::HealthChange {
                    service: h.service.clone(),
                    from,
                    to: h.verdict,
                    reason: h.reason.clone(),
                    at,
                });
            }
        }
        for u in &report.unexpected {
            if self.findings.insert(u.key.clone()) {
                events.push(Event::Unexpected {
                    key: u.key.clone(),
                    flows: u.flows,
                    reason: u.reason.clone(),
                    at,
                });
            }
        }
        events
    }
}
