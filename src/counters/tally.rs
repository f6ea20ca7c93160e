//! Per-service tallies: flows, packets and bytes, flows by confidence, and the Apple names only
//! a catch-all rule matched; kept per worker as plain integers and merged at report time.

use serde::Serialize;

use std::collections::BTreeMap;

use super::Finished;
use crate::classify::Confidence;
use crate::signature::SignatureSet;

/// Counters of one service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ServiceTally {
    /// Flows.
    pub flows: u64,
    /// Packets both ways.
    pub packets: u64,
    /// Bytes on the wire both ways.
    pub bytes: u64,
    /// Flows labelled `certain`.
    pub certain: u64,
    /// Flows labelled `likely`.
    pub likely: u64,
    /// Flows labelled `possible`.
    pub possible: u64,
    /// Packets and bytes by confidence and direction (the metrics' split; not in the report).
    #[serde(skip)]
    pub split: TrafficSplit,
}

/// Packets and bytes of a service's flows, by the flows' confidence (in use, as the flow
/// counts: [`Confidence::of_use`]) and direction: `[confidence][direction]`, confidence in
/// [`TrafficSplit::CONFIDENCES`] order, direction 0 to the server, 1 to the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficSplit {
    /// Packets.
    pub packets: [[u64; 2]; 4],
    /// Bytes on the wire.
    pub bytes: [[u64; 2]; 4],
}

impl TrafficSplit {
    /// The confidence each row stands for; `none` for flows no rule labelled.
    pub const CONFIDENCES: [&'static str; 4] = ["certain", "likely", "possible", "none"];
    /// The direction each column stands for.
    pub const DIRECTIONS: [&'static str; 2] = ["to-server", "to-client"];

    fn add(&mut self, other: &Self) {
        for c in 0..4 {
            for d in 0..2 {
                self.packets[c][d] += other.packets[c][d];
                self.bytes[c][d] += other.bytes[c][d];
            }
        }
    }
}

impl ServiceTally {
    fn add(&mut self, other: &Self) {
        self.flows += other.flows;
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.certain += other.certain;
        self.likely += other.likely;
        self.possible += other.possible;
        self.split.add(&other.split);
    }
}

/// Most distinct unclassified Apple names remembered (the rest are counted in one line).
const MAX_APPLE_NAMES: usize = 10_000;

/// Tallies for every service of a signature set, plus `unknown` in the last slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    per_service: Vec<ServiceTally>,
    /// Names under Apple's domains that only a catch-all rule matched: name -> flows.
    apple_names: BTreeMap<String, u64>,
    /// Flows with such a name beyond [`MAX_APPLE_NAMES`] distinct names.
    apple_names_dropped: u64,
}

impl Tally {
    /// Zeroed tallies for a set.
    pub fn new(sigs: &SignatureSet) -> Self {
        Self {
            per_service: vec![ServiceTally::default(); sigs.services.len() + 1],
            apple_names: BTreeMap::new(),
            apple_names_dropped: 0,
        }
    }

    /// Counts a finished flow.
    pub fn add_flow(&mut self, sigs: &SignatureSet, f: &Finished<'_>) {
        let service = f.decision.service;
        let slot = service.map_or(self.per_service.len() - 1, |id| usize::from(id.0));
        let t = &mut self.per_service[slot];
        t.flows += 1;
        t.packets += f.flow.packets[0] + f.flow.packets[1];
        t.bytes += f.flow.bytes[0] + f.flow.bytes[1];
        // Use, not destination: a flow nobody answered counts at most `possible`.
        // A negotiated media flow is one-way by design: its session's answer is its use.
        let label = f.decision.confidence;
        let used = match Confidence::of_use(label, f.state) {
            u if u != label
                && f.decision.decided_by() == Some(crate::classify::Signal::Expected) =>
            {
                label
            }
            u => u,
        };
        let row = match used {
            Some(Confidence::Certain) => {
                t.certain += 1;
                0
            }
            Some(Confidence::Likely) => {
                t.likely += 1;
                1
            }
            Some(Confidence::Possible) => {
                t.possible += 1;
                2
            }
            None => 3,
        };
        for d in 0..2 {
            t.split.packets[row][d] += f.flow.packets[d];
            t.split.bytes[row][d] += f.flow.bytes[d];
        }
        // A name decided the label, and the rule was a generic-Apple catch-all: the signature
        // set has no narrower service for this name yet.
        if let Some((_, name)) = f.decision.deciding_name()
            && service == Some(sigs.apple())
        {
            self.note_apple_name(name, 1);
        }
    }

    fn note_apple_name(&mut self, name: &str, flows: u64) {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(n) = self.apple_names.get_mut(&name) {
            *n += flows;
        } else if self.apple_names.len() < MAX_APPLE_NAMES {
            self.apple_names.insert(name, flows);
        } else {
            self.apple_names_dropped += flows;
        }
    }

    /// Unclassified Apple names (only a generic-Apple rule matched) with their flow counts, and
    /// how many flows had such a name past the bound.
    pub fn apple_names(&self) -> (&BTreeMap<String, u64>, u64) {
        (&self.apple_names, self.apple_names_dropped)
    }

    /// Makes room for a signature set of `services` services (one reloaded by SIGHUP, whose
    /// services keep their ids and add new ones after: see
    /// [`SignatureSet::aligned_to`]), keeping `unknown` in the last slot.
    pub fn grow_to(&mut self, services: usize) {
        if self.per_service.len() < services + 1 {
            let unknown = self.per_service.pop().unwrap_or_default();
            self.per_service.resize(services, ServiceTally::default());
            self.per_service.push(unknown);
        }
    }

    /// Adds another worker's tallies (that worker may already count with a reloaded set of
    /// more services: `unknown` goes to `unknown`).
    pub fn merge(&mut self, other: &Self) {
        let services = other.per_service.len().saturating_sub(1);
        self.grow_to(services);
        let last = self.per_service.len() - 1;
        for (i, b) in other.per_service.iter().enumerate() {
            let slot = if i == services { last } else { i };
            self.per_service[slot].add(b);
        }
        for (name, n) in &other.apple_names {
            self.note_apple_name(name, *n);
        }
        self.apple_names_dropped += other.apple_names_dropped;
    }

    /// (service index or None for unknown, tally) for every service with at least one flow.
    pub fn nonzero(&self) -> impl Iterator<Item = (Option<usize>, &ServiceTally)> {
        let last = self.per_service.len() - 1;
        self.per_service
            .iter()
            .enumerate()
            .filter(|(_, t)| t.flows > 0)
            .map(move |(i, t)| ((i != last).then_some(i), t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_across_a_reload_keeps_unknown_last() {
        let sigs = SignatureSet::builtin().unwrap();
        let n = sigs.services.len();
        let mut before = Tally::new(&sigs);
        // A worker that took a reloaded set of two services more.
        let mut after = Tally::new(&sigs);
        after.grow_to(n + 2);
        before.per_service[n].flows = 3;
        after.per_service[n + 2].flows = 4;
        after.per_service[n + 1].flows = 5;
        after.per_service[0].flows = 1;
        before.merge(&after);
        assert_eq!(before.per_service.len(), n + 3);
        let got: Vec<_> = before.nonzero().map(|(i, t)| (i, t.flows)).collect();
        assert_eq!(got, vec![(Some(0), 1), (Some(n + 1), 5), (None, 7)]);
        // Growing never shrinks, and keeps what was counted.
        before.grow_to(1);
        assert_eq!(before.per_service.len(), n + 3);
    }
}
