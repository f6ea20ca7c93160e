//! A worker: the flows one thread owns. It takes packets the dispatcher has decoded, timed and
//! keyed ([`Routed`]), keeps their flows, inspects payloads, labels flows as they end, counts
//! them and makes their records. Workers share only the name stores, which the dispatcher
//! feeds; a flow lives in one worker, so nothing else on the packet path is shared.

use std::sync::Arc;

use super::dispatch::{MAX_SHARDS, Routed, Sink, shard_cap, shard_count};
use crate::capture::OwnedPacket;
use crate::classify::{self, NameFacts, ServerFacts};
use crate::counters::{Counters, Finished};
use crate::decode::{PacketMeta, ip_proto};
use crate::flow::Flow;
use crate::flow::table::{FlowTable, Timeouts};
use crate::inspect::names::{Names, Seq};
use crate::inspect::{self, Inspector};
use crate::report::record::{FlowRecord, NameRecord};
use crate::signature::{SharedSignatures, SignatureSet, Transport};
use crate::wire::dns;
use crate::wire::ports;

/// Settings of the classifier.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Idle timeouts per protocol.
    pub timeouts: Timeouts,
    /// Most flows held at once; the oldest is evicted (and counted) beyond it.
    pub max_flows: usize,
    /// Most devices in the inventory (see [`crate::inspect::devices`]).
    pub max_devices: usize,
    /// Most bytes of IP fragments held for reassembly (see [`crate::decode::defrag`]).
    pub max_fragment_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            timeouts: Timeouts::default(),
            max_flows: 1_000_000,
            max_devices: inspect::devices::DEFAULT_MAX_DEVICES,
            max_fragment_bytes: crate::decode::defrag::DEFAULT_MAX_BYTES,
        }
    }
}

/// The flows of one worker and what it counted of them.
pub(crate) struct Worker {
    sigs: Arc<SignatureSet>,
    names: Arc<Names>,
    /// Its flows; shard `s` of the key space is the table's group `group_of[s]`.
    table: FlowTable<Inspector>,
    /// `s / workers` for each shard `s`, looked up: a division per packet cost tens of
    /// cycles.
    group_of: [u8; MAX_SHARDS],
    counters: Counters,
    /// Records of flows that ended since they were last taken; `None` when nobody reads
    /// them (then no record text is made at all).
    records: Option<Vec<FlowRecord>>,
    /// With several readers (live AF_PACKET capture): ICMP errors quoting a flow this worker
    /// does not hold, kept for another reader that may hold it (see
    /// [`Worker::pass_on_unheld_icmp`]). `None`: handled here, as the only worker of a flow.
    pass_on: Option<Vec<OwnedPacket>>,
    /// With several readers: this reader's index and the number of readers. A packet the
    /// kernel's fanout hash may send elsewhere than its flow (see [`Worker::packet`]) is
    /// handled by one reader chosen by the flow's own key, as one reader would group it.
    reader: (usize, usize),
    /// Every other reader was asked about the packets pushed now: handle them here.
    last_stop: bool,
    /// Live capture: where a reloaded signature set appears (SIGHUP), and the generation of
    /// the one in `sigs` (see [`Worker::refresh_signatures`]).
    reloads: Option<(Arc<SharedSignatures>, u64)>,
}

impl Worker {
    /// Worker `index` of `workers`, owning every shard `s` with `s % workers == index`,
    /// sharing the name stores `names`.
    pub(crate) fn new(
        sigs: Arc<SignatureSet>,
        names: Arc<Names>,
        config: EngineConfig,
        (index, workers): (usize, usize),
        keep_records: bool,
    ) -> Self {
        let shards = shard_count(config.max_flows);
        let caps: Vec<usize> = (index..shards)
            .step_by(workers.max(1))
            .map(|s| shard_cap(config.max_flows, shards, s))
            .collect();
        Self {
            table: FlowTable::with_groups(config.timeouts, &caps),
            // Below MAX_SHARDS (64), so it fits.
            group_of: std::array::from_fn(|s| (s / workers.max(1)) as u8),
            counters: Counters::with_max_devices(&sigs, config.max_devices),
            sigs,
            names,
            records: keep_records.then(Vec::new),
            pass_on: None,
            reader: (0, 1),
            last_stop: false,
            reloads: None,
        }
    }

    /// Classifies with the set in `shared` from now on, and with each set that replaces it
    /// (taken at [`Worker::refresh_signatures`]).
    pub(crate) fn follow_reloads(&mut self, shared: Arc<SharedSignatures>) {
        let generation = shared.generation();
        self.sigs = shared.load();
        self.counters.grow_to(&self.sigs);
        self.reloads = Some((shared, generation));
    }

    /// Takes a reloaded signature set if there is one: called between batches, never within
    /// one, so the packet path compares one integer and takes no lock. Flows that end from
    /// now on are labelled by the new set; what was counted keeps its ids (the new set is
    /// aligned to the old, [`SignatureSet::aligned_to`]).
    pub(crate) fn refresh_signatures(&mut self) {
        if let Some((shared, seen)) = &mut self.reloads {
            let now = shared.generation();
            if now != *seen {
                *seen = now;
                self.sigs = shared.load();
                self.counters.grow_to(&self.sigs);
            }
        }
    }

    /// With `reader` (this reader's index, the number of readers), an ICMP error that quotes
    /// a flow this worker does not hold is not handled here but kept, uncounted, for
    /// [`Worker::take_passed_on`]: with several readers the kernel hands an ICMP error to a
    /// reader by its own addresses, not by the flow it quotes, and only the reader holding that
    /// flow can tell why the flow got no answer. Tunnelled packets (any tunnel appletap
    /// decapsulates, and GRE or IP in IP it could not see into), which the kernel hashes by
    /// other headers than their flow's key, are kept too unless this is the reader their
    /// flow's key chooses. `None`: everything is handled here, as the only worker of a flow.
    pub(crate) fn pass_on_unheld_icmp(&mut self, reader: Option<(usize, usize)>) {
        match (reader, &self.pass_on) {
            (Some(r), None) => {
                self.pass_on = Some(Vec::new());
                self.reader = r;
            }
            (None, Some(_)) => {
                self.pass_on = None;
                self.reader = (0, 1);
            }
            _ => {}
        }
    }

    /// Whether this is the reader that `r`'s flow key chooses among several: the one that
    /// handles the packets of that flow the kernel may hand to any reader (an ICMP error no
    /// reader holds the flow of, a tunnelled packet), so that they make one flow, as with one
    /// reader.
    fn chosen_for(&self, r: &Routed) -> bool {
        let (me, n) = self.reader;
        usize::from(r.shard) % n.max(1) == me
    }

    /// With `on`, the packets handled next are handled here whatever they quote: every other
    /// reader was asked and holds none of their flows.
    pub(crate) fn last_stop(&mut self, on: bool) {
        self.last_stop = on;
    }

    /// The ICMP errors kept for another reader since the last call.
    pub(crate) fn take_passed_on(&mut self) -> Vec<OwnedPacket> {
        self.pass_on
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Handles one packet of this worker's flows.
    // Inlined into the dispatcher (inline mode) and the batch loop (threads): called, the
    // routed packet went through memory and the call cost 2.6M of 182.5M instructions on the
    // first 100,000 packets of the benchmark capture (callgrind).
    #[inline(always)]
    pub(crate) fn process(&mut self, meta: &PacketMeta<'_>, r: &Routed) {
        self.counters.packets.read += 1;
        self.counters.packets.bytes += u64::from(r.orig_len);
        self.counters.packets.decoded += 1;
        if let Some(t) = &meta.tunnel {
            self.counters.packets.tunnels.count(t);
        }
        let group = usize::from(self.group_of[usize::from(r.shard) % MAX_SHARDS]);
        let table = &mut self.table;
        table.advance(r.clock);
        // An ICMP error that quotes a flow we hold belongs to that flow: it says why the flow
        // got no answer.
        if let Some(quoted_src) = r.quoted_src
            && let Some((flow, _)) = table.get_mut(&r.key)
        {
            flow.note_icmp_error(meta, quoted_src, r.ts, r.orig_len);
            return;
        }
        // An ICMP error about a flow we do not hold is a flow of its own, grouped by the flow
        // it quotes (the dispatcher routed it by that flow, so any number of workers groups it
        // the same way).
        // By reference: the routed packet's 40-byte key is not copied for every packet
        // (bench-small -t1 369.79M to 367.35M instructions, callgrind).
        let quoted_key;
        let key = if r.quoted_src.is_some() {
            quoted_key = r.key.with_proto(meta.proto);
            &quoted_key
        } else {
            &r.key
        };
        let (sigs, names, counters, records) = (
            &self.sigs,
            &self.names,
            &mut self.counters,
            &mut self.records,
        );
        let known_port = |proto: u8, port: u16| {
            Transport::from_ip_proto(proto).is_some_and(|t| sigs.port_rule(t, port).is_some())
        };
        // Why a flow ended (idle, reused, evicted, end of input) is not counted: whether an
        // idle flow ends at a sweep or at the end of the input depends on when its worker last
        // swept, so the count would differ with the number of threads (evictions, which do
        // not, are counted by the table).
        let ended =
            |f: &Flow, x: &Inspector, _why| end_flow(sigs, counters, records.as_mut(), f, x);
        let (flow, inspector) = table.lookup_keyed(key, group, meta, r.ts, known_port, ended);
        let tracked = flow.track(meta, r.ts, r.orig_len);
        let dir = tracked.dir;
        if tracked.new || tracked.roles_swapped {
            // Looked up when the flow begins, and again if a late SYN or a protocol marker
            // shows the roles were guessed the wrong way round (then what the inspector read
            // as the client's was the server's).
            if !tracked.new {
                inspector.roles_swapped();
            }
            inspector.set_bound(inspect::Bound {
                dns: names.dns.lookup_as_of(flow.server.0, flow.first_ts, r.seq),
                mdns: names
                    .mdns
                    .lookup_as_of(flow.server.0, flow.server.1, flow.first_ts, r.seq),
                // A UDP flow a session negotiated (RTSP SETUP), as the dispatcher read it.
                expected: (flow.proto == ip_proto::UDP)
                    .then(|| {
                        names
                            .expected
                            .lookup_as_of(flow.client, flow.server, flow.first_ts, r.seq)
                    })
                    .flatten(),
            });
        }
        let dns_port = inspect::dns_port(meta);
        // A DNS or mDNS payload is parsed at most once here, and not at all if the dispatcher
        // already said whether it is one (it reads every answer).
        let mut parsed = None;
        let mut dns_valid = r.dns_valid;
        let verifies = flow.server.1 == ports::MDNS && meta.proto == ip_proto::UDP;
        if dns_valid.is_none() && verifies && inspector.active() {
            let msg = dns::parse_message(meta.payload);
            dns_valid = Some(msg.is_ok());
            parsed = Some(msg);
        }
        // DNS over TCP is read to the end of the stream, whatever the client's side showed.
        if inspector.active() || (flow.server.1 == ports::DNS && meta.proto == ip_proto::TCP) {
            inspector.on_packet(meta, dir, flow.server.1, dns_valid);
        }
        if let Some(mdns) = dns_port {
            let response = inspect::is_dns_response(meta.payload);
            // Answers were read by the dispatcher; queries are read here (who searched for
            // what; any order gives the same). A query that repeats an earlier one of this flow
            // has nothing new to tell. The names a message carries are only kept for the
            // flow's record.
            let keep = records.is_some();
            // A unicast DNS query teaches the stores nothing (only mDNS queries do): it is
            // read only for the flow's record (2,301 parses of the first 100k packets, 185.8M
            // -> 182.2M instructions, callgrind).
            let repeat = !response && (mdns || keep) && inspector.repeated_query(meta.payload);
            if !repeat && ((!response && mdns) || keep) {
                let msg = parsed.unwrap_or_else(|| dns::parse_message(meta.payload));
                if let Ok(msg) = msg {
                    if !response {
                        inspect::observe_message(&msg, meta, mdns, r.ts, names);
                    }
                    if keep {
                        inspector.note_dns_names(&msg);
                    }
                }
            }
        }
        if tracked.finished {
            let (id, last) = (flow.id, flow.last_ts);
            table.note_finished(*key, id, last);
        }
    }

    /// Ends every flow (end of input, or shutdown).
    pub(crate) fn finish(&mut self) {
        let (sigs, counters, records) = (&self.sigs, &mut self.counters, &mut self.records);
        self.table
            .drain(|f, x, _why| end_flow(sigs, counters, records.as_mut(), f, x));
    }

    /// Packet time went back to `clock`: a new stretch of capture. Every flow ends here, as at
    /// the end of an input, and every shard's time starts again from `clock`.
    pub(crate) fn restart(&mut self, clock: crate::capture::Timestamp) {
        self.finish();
        self.table.restart_at(clock);
    }

    /// Counters as if every live flow ended now; nothing changes. With `settled`, only the
    /// live flows that began at or before it are counted (a younger flow's label and outcome
    /// may still change: the metrics count it once it is that old, or when it ends).
    pub(crate) fn snapshot(&self, settled: Option<crate::capture::Timestamp>) -> Counters {
        let mut c = self.counters.clone();
        self.table.for_each(|f, x| {
            if settled.is_none_or(|t| f.first_ts <= t) {
                end_flow(&self.sigs, &mut c, None, f, x);
            }
        });
        c
    }

    /// Takes the records of flows that ended since the last call.
    pub(crate) fn take_records(&mut self) -> Vec<FlowRecord> {
        self.records
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// What this worker counted.
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Flows held now, and flows evicted to respect the cap.
    pub(crate) fn flow_counts(&self) -> (usize, u64) {
        (self.table.len(), self.table.evicted())
    }
}

/// Labels a flow that ended, from its own names and what the name stores knew at its first
/// packet, and counts it; with `records`, also makes its record (otherwise no text is made).
fn end_flow(
    sigs: &SignatureSet,
    counters: &mut Counters,
    records: Option<&mut Vec<FlowRecord>>,
    flow: &Flow,
    inspector: &Inspector,
) {
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
        expected: bound.and_then(|b| b.expected.as_deref()),
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
    counters.add_flow(
        sigs,
        &Finished {
            flow,
            decision: &decision,
            name,
            state: flow.state(),
        },
    );
    let Some(records) = records else {
        return;
    };
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
    records.push(rec);
}

/// Packets the kernel's fanout hash may hand to another reader than the one holding their
/// flow. Tunnelled packets are classified by their inner flow, but the hash sees either the
/// inner headers (GRE, IP in IP: it dissects those) or the outer ones (UDP tunnels, whose
/// two directions may differ in outer ports), or stops at some depth. Packets of IP tunnels
/// appletap could not see into (MPLS in IP, or an undecoded payload) are the tunnel's flow,
/// which the kernel spreads by inner addresses.
fn is_tunnel(meta: &PacketMeta<'_>) -> bool {
    meta.tunnel.is_some() || matches!(meta.proto, 4 | 41 | 47 | 137)
}

impl Sink for Worker {
    #[inline(always)]
    fn packet(&mut self, pkt: &crate::capture::Packet<'_>, meta: &PacketMeta<'_>, r: &Routed) {
        if self.pass_on.is_some() {
            // The kernel's fanout hash looks into GRE and IP-in-IP packets and hashes the inner
            // addresses, so one tunnel's packets reach several readers: the reader its key
            // chooses handles them all. An ICMP error about a flow no reader holds likewise
            // goes, once every reader was asked, to the reader the quoted flow chooses, so that
            // every error about it makes one flow.
            let chosen = self.chosen_for(r);
            let pass = if r.quoted_src.is_some() {
                self.table.get_mut(&r.key).is_none() && !(self.last_stop && chosen)
            } else {
                is_tunnel(meta) && !chosen
            };
            if pass && let Some(kept) = &mut self.pass_on {
                kept.push(OwnedPacket::copy_of(pkt));
                return;
            }
        }
        self.process(meta, r);
    }

    fn restart(&mut self, clock: crate::capture::Timestamp) {
        Worker::restart(self, clock);
    }

    fn horizon(&self, next: Seq) -> Seq {
        // Inline, every packet before `next` has been handled.
        next
    }
}
