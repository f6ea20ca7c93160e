//! The sans-IO classification core: packets (bytes + timestamp + link type) in, flow records
//! and tallies out. It never reads a clock, a file or a socket, so a capture replays the same
//! way every time. One engine serves one worker; the pipeline gives each flow to one engine.

use std::sync::Arc;

use crate::capture::Packet;
use crate::classify::{self, ServerFacts};
use crate::decode;
use crate::flow::record::FlowRecord;
use crate::flow::table::{EndReason, FlowTable, Timeouts};
use crate::flow::{Flow, FlowKey};
use crate::signature::{SignatureSet, Transport};
use crate::tally::{PacketStats, Tally};

/// Settings of the core.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Idle timeouts per protocol.
    pub timeouts: Timeouts,
    /// Most flows held at once; the oldest is evicted (and counted) beyond it.
    pub max_flows: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            timeouts: Timeouts::default(),
            max_flows: 1_000_000,
        }
    }
}

/// Per-flow inspection state (names seen, reassembly); empty until name evidence lands.
#[derive(Debug, Default)]
pub struct FlowExtra {}

/// The core of one worker.
pub struct Engine {
    sigs: Arc<SignatureSet>,
    table: FlowTable<FlowExtra>,
    stats: PacketStats,
    tally: Tally,
    finished: Vec<FlowRecord>,
}

impl Engine {
    /// A fresh core.
    pub fn new(sigs: Arc<SignatureSet>, config: EngineConfig) -> Self {
        let tally = Tally::new(&sigs);
        Self {
            table: FlowTable::new(config.timeouts, config.max_flows),
            sigs,
            stats: PacketStats::default(),
            tally,
            finished: Vec::new(),
        }
    }

    /// Handles one packet.
    pub fn process(&mut self, pkt: &Packet<'_>) {
        self.stats.read += 1;
        self.stats.bytes += u64::from(pkt.orig_len);
        let meta = match decode::decode(pkt.link, pkt.data) {
            Ok(m) => m,
            Err(skip) => {
                self.stats.skipped[skip.index()] += 1;
                return;
            }
        };
        self.stats.decoded += 1;
        let sigs = &self.sigs;
        let known_port = |proto: u8, port: u16| {
            Transport::from_ip_proto(proto).is_some_and(|t| sigs.port_rule(t, port).is_some())
        };
        let finished = &mut self.finished;
        let tally = &mut self.tally;
        let (flow, _extra) = self.table.lookup(&meta, pkt.ts, known_port, |f, x, why| {
            let rec = Self::record(sigs, &f, &x, why);
            tally.add_record(sigs, &rec);
            finished.push(rec);
        });
        let was_finished = flow.tcp_finished();
        flow.update(&meta, pkt.ts, pkt.orig_len);
        if !was_finished && flow.tcp_finished() {
            let (id, last) = (flow.id, flow.last_ts);
            self.table.note_finished(FlowKey::of(&meta), id, last);
        }
    }

    fn record(sigs: &SignatureSet, flow: &Flow, _extra: &FlowExtra, _why: EndReason) -> FlowRecord {
        let label = classify::label(
            sigs,
            ServerFacts {
                proto: flow.proto,
                ip: flow.server.0,
                port: flow.server.1,
            },
        );
        FlowRecord::new(sigs, flow, label, None)
    }

    /// Ends every flow (end of input, or shutdown).
    pub fn finish(&mut self) {
        let sigs = &self.sigs;
        let finished = &mut self.finished;
        let tally = &mut self.tally;
        self.table.drain(|f, x, why| {
            let rec = Self::record(sigs, &f, &x, why);
            tally.add_record(sigs, &rec);
            finished.push(rec);
        });
    }

    /// Takes the records of flows that ended since the last call.
    pub fn take_finished(&mut self) -> Vec<FlowRecord> {
        std::mem::take(&mut self.finished)
    }

    /// Packet counters so far.
    pub fn stats(&self) -> &PacketStats {
        &self.stats
    }

    /// Tallies of finished flows so far.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// Flows currently held, and flows evicted to respect the cap.
    pub fn flow_counts(&self) -> (usize, u64) {
        (self.table.len(), self.table.evicted())
    }

    /// The signature set in use.
    pub fn signatures(&self) -> &Arc<SignatureSet> {
        &self.sigs
    }
}
