//! Per-service tallies (flows, packets, bytes, flows by confidence) and packet counters, kept
//! per worker as plain integers and merged at report time.

use serde::Serialize;

use crate::classify::Confidence;
use crate::decode::Skip;
use crate::flow::record::FlowRecord;
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
}

impl ServiceTally {
    fn add(&mut self, other: &Self) {
        self.flows += other.flows;
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.certain += other.certain;
        self.likely += other.likely;
        self.possible += other.possible;
    }
}

/// Packet counters: every packet read is either decoded or skipped for one reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketStats {
    /// Packets handed to the core.
    pub read: u64,
    /// Bytes on the wire of those packets.
    pub bytes: u64,
    /// Packets decoded to an IP flow.
    pub decoded: u64,
    /// Packets skipped, by [`Skip`] reason.
    pub skipped: [u64; Skip::ALL.len()],
}

impl PacketStats {
    /// Packets skipped for any reason.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.iter().sum()
    }

    /// Adds another worker's counters.
    pub fn merge(&mut self, other: &Self) {
        self.read += other.read;
        self.bytes += other.bytes;
        self.decoded += other.decoded;
        for (a, b) in self.skipped.iter_mut().zip(other.skipped) {
            *a += b;
        }
    }
}

/// Tallies for every service of a signature set, plus `unknown` in the last slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    per_service: Vec<ServiceTally>,
}

impl Tally {
    /// Zeroed tallies for a set.
    pub fn new(sigs: &SignatureSet) -> Self {
        Self {
            per_service: vec![ServiceTally::default(); sigs.services.len() + 1],
        }
    }

    /// Counts a finished flow.
    pub fn add_record(&mut self, sigs: &SignatureSet, rec: &FlowRecord) {
        let slot = sigs
            .service_id(&rec.service)
            .map_or(self.per_service.len() - 1, |id| usize::from(id.0));
        let t = &mut self.per_service[slot];
        t.flows += 1;
        t.packets += rec.packets_to_server + rec.packets_to_client;
        t.bytes += rec.bytes_to_server + rec.bytes_to_client;
        match rec.confidence.and_then(Confidence::parse) {
            Some(Confidence::Certain) => t.certain += 1,
            Some(Confidence::Likely) => t.likely += 1,
            Some(Confidence::Possible) => t.possible += 1,
            None => {}
        }
    }

    /// Adds another worker's tallies.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.per_service.iter_mut().zip(&other.per_service) {
            a.add(b);
        }
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
