//! The sans-IO classification core: packets (bytes + timestamp + link type) in, flow records
//! and tallies out. It never reads a clock, a file or a socket, so a capture replays the same
//! way every time. One engine serves one worker; the pipeline gives each flow to one engine,
//! and engines share only [`Shared`] (names bound by DNS, endpoints learned from mDNS).

use std::sync::Arc;

use crate::capture::{Packet, Timestamp};
use crate::classify::{self, NameFacts, ServerFacts};
use crate::decode;
use crate::flow::record::{FlowRecord, NameRecord};
use crate::flow::table::{FlowTable, Timeouts};
use crate::flow::{Flow, FlowKey};
use crate::inspect::{self, Inspector};
use crate::shared::Shared;
use crate::signature::{SignatureSet, Transport};
use crate::tally::{Finished, PacketStats, Tally};

/// How far packet time may go back before it counts as a new stretch of capture rather than
/// packets out of order (merged interfaces, a reordering capture point): more than any idle
/// timeout but the longest, far more than any reordering.
pub const CLOCK_JUMP_BACK: Timestamp = Timestamp(60 * Timestamp::NANOS_PER_SEC);

/// The time of an input: the latest packet time so far, unless a packet is more than
/// [`CLOCK_JUMP_BACK`] older than that. Then the clock goes back to it and a new stretch of
/// capture begins (files read out of order, a capture restarted with an older clock): every
/// flow still open ends there, as at the end of an input. Without this, every packet of the
/// older stretch was idle by the clock and started a flow of its own, and nothing was ever
/// swept (the clock stood still): reading one capture twice held ten times its flows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    now: Option<Timestamp>,
}

impl Clock {
    /// The clock after a packet of time `ts`, and whether it went back (a new stretch of
    /// capture begins here; the keeper counts it in [`PacketStats::clock_restarts`]).
    pub fn tick(&mut self, ts: Timestamp) -> (Timestamp, bool) {
        let (now, restart) = match self.now {
            Some(now) if ts.0.saturating_add(CLOCK_JUMP_BACK.0) < now.0 => (ts, true),
            Some(now) => (now.max(ts), false),
            None => (ts, false),
        };
        self.now = Some(now);
        (now, restart)
    }
}

/// The packet facts the core needs past decoding.
struct Pkt {
    ts: Timestamp,
    orig_len: u32,
}

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

/// The core of one worker.
pub struct Engine {
    sigs: Arc<SignatureSet>,
    shared: Arc<Shared>,
    table: FlowTable<Inspector>,
    stats: PacketStats,
    tally: Tally,
    finished: Vec<FlowRecord>,
    /// Whether this engine feeds DNS/mDNS answers to the shared stores itself. In the
    /// pipeline the dispatcher does it, in packet order, so that an answer is known before any
    /// later packet reaches any worker. (Queries are always read here.)
    observe_dns: bool,
    /// Whether finished flows' records are kept for [`Engine::take_finished`]; without a
    /// consumer only the tallies are needed.
    keep_records: bool,
    /// The clock of packets given to [`Engine::process`] (in the pipeline the dispatcher
    /// keeps it and hands it over with each packet).
    clock: Clock,
}

impl Engine {
    /// A fresh core with its own shared stores (one worker alone).
    pub fn new(sigs: Arc<SignatureSet>, config: EngineConfig) -> Self {
        let shared = Arc::new(Shared::new(config.max_flows));
        Self::with_shared(sigs, shared, config)
    }

    /// A core that shares DNS/mDNS knowledge with other workers.
    pub fn with_shared(sigs: Arc<SignatureSet>, shared: Arc<Shared>, config: EngineConfig) -> Self {
        let tally = Tally::new(&sigs);
        Self {
            table: FlowTable::new(config.timeouts, config.max_flows),
            sigs,
            shared,
            stats: PacketStats::default(),
            tally,
            finished: Vec::new(),
            observe_dns: true,
            keep_records: true,
            clock: Clock::default(),
        }
    }

    /// Stops keeping finished flows' records (nobody reads them); tallies still count them.
    pub fn discard_records(&mut self) {
        self.keep_records = false;
    }

    /// Stops this engine from feeding DNS/mDNS answers to the shared stores (the pipeline's
    /// dispatcher does it instead). It still reads queries and notes the names on its own DNS
    /// flows.
    pub fn leave_dns_to_dispatcher(&mut self) {
        self.observe_dns = false;
    }

    /// Handles one packet, keeping the clock (see [`Clock`]) itself.
    pub fn process(&mut self, pkt: &Packet<'_>) {
        match decode::decode(pkt.link, pkt.data) {
            Ok(meta) => {
                let (clock, restart) = self.clock.tick(pkt.ts);
                self.stats.clock_restarts += u64::from(restart);
                self.process_meta(&meta, pkt.ts, pkt.orig_len, clock);
            }
            Err(skip) => self.stats.count_skipped(pkt.orig_len, skip),
        }
    }

    /// Handles one packet already decoded (the pipeline's reading thread decodes each packet
    /// once and hands workers the headers): `ts` is its time, `orig_len` its length on the
    /// wire, `clock` the [`Clock`] after it. The pipeline's dispatcher keeps the clock over
    /// all packets, so every worker ends idle flows, and starts new stretches of capture,
    /// exactly as a single engine would.
    pub fn process_meta(
        &mut self,
        meta: &decode::PacketMeta<'_>,
        ts: Timestamp,
        orig_len: u32,
        clock: Timestamp,
    ) {
        self.stats.read += 1;
        self.stats.bytes += u64::from(orig_len);
        self.stats.decoded += 1;
        let pkt = Pkt { ts, orig_len };
        let meta = *meta;
        if clock < self.table.now() {
            // The clock went back (see `Clock`): a new stretch of capture.
            self.finish();
            self.table.restart_at(clock);
        }
        self.table.advance(clock.max(pkt.ts));
        // An ICMP error that quotes a flow we hold belongs to that flow: it says why the flow
        // got no answer.
        let quoted = meta.icmp.and_then(|i| i.quoted_packet());
        if let Some(q) = quoted
            && let Some((flow, _)) = self.table.get_mut(&FlowKey::of_quoted(&q))
        {
            flow.note_icmp_error(&meta, q.src, pkt.ts, pkt.orig_len);
            return;
        }
        // An ICMP error about a flow we do not hold is a flow of its own, grouped by the flow
        // it quotes: the pipeline routes it by that flow too, so any number of workers groups
        // it the same way.
        let key = match quoted {
            Some(q) => FlowKey {
                proto: meta.proto,
                ..FlowKey::of_quoted(&q)
            },
            None => FlowKey::of(&meta),
        };
        let sigs = &self.sigs;
        let shared = &self.shared;
        let known_port = |proto: u8, port: u16| {
            Transport::from_ip_proto(proto).is_some_and(|t| sigs.port_rule(t, port).is_some())
        };
        let finished = &mut self.finished;
        let tally = &mut self.tally;
        let keep = self.keep_records;
        let (flow, inspector) =
            self.table
                .lookup_keyed(key, &meta, pkt.ts, known_port, |f, x, _why| {
                    if let Some(rec) = Self::end_flow(sigs, tally, &f, &x, keep) {
                        finished.push(rec);
                    }
                });
        let was_finished = flow.tcp_finished();
        let is_new = flow.total_packets() == 0;
        let server_before = flow.server;
        let dir = flow.update(&meta, pkt.ts, pkt.orig_len);
        if is_new || flow.server != server_before {
            // Looked up when the flow begins, and again if a late SYN shows the roles were
            // guessed the wrong way round.
            inspector.set_bound(inspect::Bound {
                dns: shared.dns.lookup(flow.server.0, flow.first_ts),
                mdns: shared
                    .mdns
                    .lookup(flow.server.0, flow.server.1, flow.first_ts),
            });
        }
        // DNS over TCP is read to the end of the stream, whatever the client's side showed.
        if inspector.active() || (flow.server.1 == 53 && meta.proto == decode::ip_proto::TCP) {
            inspector.on_packet(&meta, dir, flow.server.1, pkt.ts, shared);
        }
        if let Some(mdns) = inspect::dns_port(&meta) {
            let response = inspect::is_dns_response(meta.payload);
            // Queries are read here; answers here too unless the pipeline's dispatcher reads
            // them (in packet order, for every worker). A query that repeats an earlier one of
            // this flow has nothing new to tell. The names a message carries are only kept for
            // the flow's record: without records, an answer the dispatcher already read has
            // nothing left to tell here.
            let observe = !response || self.observe_dns;
            let repeat = !response && inspector.repeated_query(meta.payload);
            if !repeat
                && (observe || self.keep_records)
                && let Ok(msg) = crate::wire::dns::parse_message(meta.payload)
            {
                if observe {
                    inspect::observe_message(&msg, &meta, mdns, pkt.ts, shared);
                }
                if self.keep_records {
                    inspector.note_dns_names(&msg);
                }
            }
        }
        if !was_finished && flow.tcp_finished() {
            let (id, last) = (flow.id, flow.last_ts);
            self.table.note_finished(key, id, last);
        }
    }

    /// Labels a flow that ended, from its own names and what the shared stores knew at its
    /// first packet, and counts it in `tally`; with `full`, also makes its record (otherwise
    /// no text is made for it).
    fn end_flow(
        sigs: &SignatureSet,
        tally: &mut Tally,
        flow: &Flow,
        inspector: &Inspector,
        full: bool,
    ) -> Option<FlowRecord> {
        let n = inspector.names();
        let bound = inspector.bound();
        let dns = bound.and_then(|b| b.dns.as_ref());
        let mdns = bound.and_then(|b| b.mdns.as_ref());
        let facts = NameFacts {
            sni: n.sni.as_deref(),
            quic_sni: n.quic_sni.as_deref(),
            http_host: n.http_host.as_deref(),
            dns: dns.map_or(&[], |b| &b.names[..]),
            mdns: mdns.map(|e| (&*e.service_type, &*e.instance)),
            verified_payload: n.verified,
        };
        let decision = classify::decide(
            sigs,
            ServerFacts {
                proto: flow.proto,
                ip: flow.server.0,
                port: flow.server.1,
            },
            &facts,
        );
        let name = facts
            .sni
            .or(facts.quic_sni)
            .or(facts.http_host)
            .or(facts.dns.first().map(|b| &**b))
            .or(facts.mdns.map(|(_, instance)| instance));
        tally.add_flow(
            sigs,
            &Finished {
                flow,
                decision: &decision,
                name,
            },
        );
        if !full {
            return None;
        }
        let owned = |o: Option<&str>| o.map(str::to_string);
        let mut rec = FlowRecord::new(sigs, flow, decision.into_label(sigs), owned(name));
        rec.alpn = owned(n.alpn.as_deref());
        rec.user_agent = owned(n.user_agent.as_deref());
        rec.names = NameRecord {
            sni: owned(facts.sni),
            quic_sni: owned(facts.quic_sni),
            http_host: owned(facts.http_host),
            dns: facts.dns.iter().map(|s| s.to_string()).collect(),
            mdns: owned(facts.mdns.map(|(_, i)| i)),
            queried: inspector.queried().map(str::to_string).collect(),
        };
        Some(rec)
    }

    /// Ends every flow (end of input, or shutdown).
    pub fn finish(&mut self) {
        let sigs = &self.sigs;
        let finished = &mut self.finished;
        let tally = &mut self.tally;
        let keep = self.keep_records;
        self.table.drain(|f, x, _why| {
            if let Some(rec) = Self::end_flow(sigs, tally, &f, &x, keep) {
                finished.push(rec);
            }
        });
    }

    /// Tallies as if every live flow ended now (for periodic live reports); nothing changes.
    pub fn snapshot_tally(&self) -> Tally {
        let mut t = self.tally.clone();
        self.table.for_each(|f, x| {
            Self::end_flow(&self.sigs, &mut t, f, x, false);
        });
        t
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

    /// The shared stores in use.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = Timestamp::NANOS_PER_SEC;

    #[test]
    fn clock_keeps_the_latest_time_through_reordering() {
        let mut c = Clock::default();
        assert_eq!(c.tick(Timestamp(1_000 * S)), (Timestamp(1_000 * S), false));
        // Out of order by up to a minute: the clock stays where it was.
        assert_eq!(c.tick(Timestamp(950 * S)), (Timestamp(1_000 * S), false));
        assert_eq!(c.tick(Timestamp(940 * S)), (Timestamp(1_000 * S), false));
        assert_eq!(c.tick(Timestamp(1_001 * S)), (Timestamp(1_001 * S), false));
    }

    #[test]
    fn clock_goes_back_past_a_minute_and_counts_it() {
        let mut c = Clock::default();
        c.tick(Timestamp(1_000 * S));
        assert_eq!(c.tick(Timestamp(939 * S)), (Timestamp(939 * S), true));
        // A timestamp near zero from a damaged header: one more restart, no overflow.
        assert_eq!(c.tick(Timestamp(0)), (Timestamp(0), true));
        assert_eq!(c.tick(Timestamp(u64::MAX)), (Timestamp(u64::MAX), false));
    }
}
