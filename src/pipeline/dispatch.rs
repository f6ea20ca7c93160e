//! The front of the one packet path, for any number of workers: decodes each packet once,
//! keeps the run's clock (telling outliers from new stretches of capture), reads DNS and mDNS
//! answers (over UDP and TCP) into the name stores in packet order, and keys the packet to the
//! flow and flow-table shard it belongs to. Whatever runs the workers (inline, or on threads)
//! sees exactly the same [`Routed`] packets and restarts, so the output does not depend on the
//! number of workers.

use std::net::IpAddr;
use std::sync::Arc;

use super::clock::Clock;
use crate::capture::{LinkType, OwnedPacket, Packet, Timestamp};
use crate::counters::PacketStats;
use crate::decode::defrag::{Defrag, DefragLimits, Offered};
use crate::decode::{self, LinkAddrs, PacketMeta, Skip, ip_proto};
use crate::flow::FlowKey;
use crate::inspect::devices::{self, Inventory};
use crate::inspect::dns_tcp::DnsTcpAnswers;
use crate::inspect::names::{Names, NamesSnapshot, Seq};
use crate::inspect::{self, expect, records};
use crate::wire::ports;

/// Where a decoded packet goes and as of when: what a worker takes beside the packet's
/// decoded headers (which travel by reference: copying them cost a tenth of the dispatcher).
#[derive(Debug, Clone, Copy)]
pub struct Routed {
    /// The flow it belongs to; for an ICMP error, the flow it quotes.
    pub key: FlowKey,
    /// For an ICMP error that quotes a packet: the quoted packet's source.
    pub quoted_src: Option<IpAddr>,
    /// Its capture time (an outlier's is the clock's).
    pub ts: Timestamp,
    /// Its length on the wire.
    pub orig_len: u32,
    /// The run's clock after it (see [`Clock`]).
    pub clock: Timestamp,
    /// The flow-table shard its flow lives in (see [`shard_count`]).
    pub shard: u16,
    /// Its dispatch number: the name stores are looked up as they stood at this packet.
    pub seq: Seq,
    /// Whether its payload is a well-formed DNS message, where the dispatcher parsed it
    /// (every answer on the DNS and mDNS ports); `None` where it did not look.
    pub dns_valid: Option<bool>,
}

/// Flow-table shards at most. Each shard has its own share of the flow cap and evicts its own
/// oldest flow, and a flow's shard depends only on its key: so evictions, like everything
/// else, do not depend on how many workers share the shards out.
pub const MAX_SHARDS: usize = 64;

/// Shards for a flow cap: [`MAX_SHARDS`], or fewer for a cap so small that every shard keeps
/// at least one flow.
pub fn shard_count(max_flows: usize) -> usize {
    max_flows.clamp(1, MAX_SHARDS)
}

/// How many shards there are, and the mask that takes the remainder by their number when it
/// is a power of two (the default 64).
#[derive(Debug, Clone, Copy)]
struct Shards {
    n: u64,
    mask: Option<u64>,
}

impl Shards {
    fn new(n: usize) -> Self {
        let n = n.max(1) as u64;
        Self {
            n,
            mask: n.is_power_of_two().then(|| n - 1),
        }
    }

    /// The shard of a flow whose key hashes to `hash`: the remainder, taken with the mask
    /// where there is one: a 64-bit division costs tens of cycles, a tenth of what the
    /// dispatcher spends on a packet. (The mask is found once: asking `is_power_of_two` for
    /// each packet cost 7 instructions (callgrind).)
    #[inline]
    fn of(self, hash: u64) -> u16 {
        let i = match self.mask {
            Some(mask) => hash & mask,
            None => hash % self.n,
        };
        // Below MAX_SHARDS.
        i as u16
    }
}

/// The flow cap of shard `i` of `shards`: the caps add up to `max_flows`.
pub fn shard_cap(max_flows: usize, shards: usize, i: usize) -> usize {
    max_flows / shards + usize::from(i < max_flows % shards)
}

/// Packets that must agree before the clock believes a jump: the packet that jumped and the
/// ones after it. One packet stamped in 2100 (or at 0) among others is an outlier; three in a
/// row are a new stretch of capture.
const JUMP_CONFIRMATIONS: usize = 3;

/// Where routed packets go: one worker inline, or batches for worker threads.
pub(crate) trait Sink {
    /// A routed packet; `pkt` is the packet it was routed from.
    fn packet(&mut self, pkt: &Packet<'_>, meta: &PacketMeta<'_>, r: &Routed);
    /// Packet time went back to `clock`: a new stretch of capture. Every flow of every worker
    /// ends here, as at the end of an input.
    fn restart(&mut self, clock: Timestamp);
    /// The lowest dispatch number a worker may still look the name stores up as of, `next`
    /// being the number of the packet about to be routed.
    fn horizon(&self, next: Seq) -> Seq;
}

/// The dispatcher's state: the clock, the name stores it feeds, DNS/TCP answer streams, and
/// the packets it skipped.
pub(crate) struct Dispatcher {
    clock: Clock,
    names: Arc<Names>,
    dns_tcp: DnsTcpAnswers<FlowKey>,
    /// The devices' identities, from mDNS responses and DHCP requests in packet order.
    devices: Inventory,
    stats: PacketStats,
    shards: Shards,
    /// Dispatch number of the next packet routed.
    seq: Seq,
    /// Packets whose time did not fit the clock, waiting for the packets after them.
    held: Vec<OwnedPacket>,
    /// The next packet is the first of an input after another one.
    input_starts: bool,
    /// IP fragments held until their datagram is whole (see [`crate::decode::defrag`]).
    defrag: Defrag,
}

impl Dispatcher {
    pub(crate) fn new(
        names: Arc<Names>,
        shards: usize,
        max_devices: usize,
        defrag: DefragLimits,
    ) -> Self {
        Self {
            clock: Clock::default(),
            names,
            dns_tcp: DnsTcpAnswers::default(),
            devices: Inventory::new(max_devices),
            stats: PacketStats::default(),
            shards: Shards::new(shards),
            seq: 0,
            held: Vec::new(),
            input_starts: false,
            defrag: Defrag::new(defrag),
        }
    }

    /// Takes one packet: routes it to `sink` now, or holds it until the packets after it say
    /// whether its time is an outlier (then it is counted as one and handled at the clock's
    /// time) or a new stretch of capture (then the clock jumps, going back restarts every
    /// worker, and it is handled at its own time).
    #[inline(always)]
    pub(crate) fn push(&mut self, pkt: &Packet<'_>, sink: &mut impl Sink) {
        let ts = pkt.ts;
        if std::mem::take(&mut self.input_starts) {
            // A new input that starts earlier than the last one ended is a new stretch of
            // capture, however short the step back (one capture read twice).
            self.accept_held(sink);
            if self.clock.is_behind(ts) {
                self.restart(ts, sink);
            } else if !self.clock.fits(ts) {
                self.clock.jump_to(ts);
            }
        }
        if self.held.is_empty() {
            if let Some(clock) = self.clock.advance_if_fits(ts) {
                self.route_inline(pkt, ts, clock, sink);
            } else {
                self.hold(pkt);
            }
            return;
        }
        if self.clock.fits(ts) {
            // Time came back to the clock: what was held were outliers.
            self.release_outliers(sink);
            let clock = self.clock.advance(ts);
            self.route_to(pkt, ts, clock, sink);
        } else if self.clock.is_behind(ts) == self.clock.is_behind(self.held[0].ts) {
            self.hold(pkt);
            if self.held.len() >= JUMP_CONFIRMATIONS {
                self.accept_held(sink);
            }
        } else {
            // A jump the other way than the held ones: an outlier itself.
            self.outlier(pkt, sink);
        }
    }

    /// The current input ended; the next packet starts another.
    pub(crate) fn end_of_input(&mut self, sink: &mut impl Sink) {
        self.accept_held(sink);
        self.input_starts = true;
    }

    /// The run ends: packets still held are the tail of the input, at their own time.
    pub(crate) fn finish(&mut self, sink: &mut impl Sink) {
        self.accept_held(sink);
        self.defrag.flush();
        self.settle_fragments();
    }

    fn hold(&mut self, pkt: &Packet<'_>) {
        self.held.push(OwnedPacket::copy_of(pkt));
    }

    fn restart(&mut self, ts: Timestamp, sink: &mut impl Sink) {
        self.clock.jump_to(ts);
        self.stats.clock_restarts += 1;
        // Fragments of before the restart never meet those of after it.
        self.defrag.flush();
        self.settle_fragments();
        sink.restart(ts);
    }

    /// The held packets agree (or nothing came to say otherwise): time jumps to the first.
    fn accept_held(&mut self, sink: &mut impl Sink) {
        let held = std::mem::take(&mut self.held);
        let Some(first) = held.first() else {
            return;
        };
        if self.clock.is_behind(first.ts) {
            self.restart(first.ts, sink);
        } else {
            self.clock.jump_to(first.ts);
        }
        for h in &held {
            let pkt = h.packet();
            let clock = self.clock.advance(h.ts);
            self.route_to(&pkt, h.ts, clock, sink);
        }
    }

    fn release_outliers(&mut self, sink: &mut impl Sink) {
        for h in std::mem::take(&mut self.held) {
            self.outlier(&h.packet(), sink);
        }
    }

    /// A packet whose time fits neither the clock nor a new stretch: counted, and handled at
    /// the clock's time, so that one wild timestamp neither ends every flow nor stretches the
    /// flow it belongs to over decades.
    fn outlier(&mut self, pkt: &Packet<'_>, sink: &mut impl Sink) {
        self.stats.clock_outliers += 1;
        let now = self.clock.now().unwrap_or(pkt.ts);
        self.route_to(pkt, now, now, sink);
    }

    /// Decodes and keys one packet handled at time `ts` with the clock at `clock`, reads the
    /// answers it carries, and hands it to `sink` (or counts it skipped).
    #[inline(never)]
    fn route_to(
        &mut self,
        pkt: &Packet<'_>,
        ts: Timestamp,
        clock: Timestamp,
        sink: &mut impl Sink,
    ) {
        self.route_inline(pkt, ts, clock, sink);
    }

    /// [`Dispatcher::route_to`], inlined where nearly every packet comes from (a packet whose
    /// time fits the clock, with none held). Called there, `route_to` cost its saving and
    /// restoring of registers, and kept the worker's packet path (at `--threads 1`) apart from
    /// the dispatcher's: inlined, 3.1M fewer instructions on the first 100,000 packets of the
    /// benchmark capture at `--threads 1`, 1.0M fewer on the reading thread at `--threads 2`
    /// (callgrind).
    #[inline(always)]
    fn route_inline(
        &mut self,
        pkt: &Packet<'_>,
        ts: Timestamp,
        clock: Timestamp,
        sink: &mut impl Sink,
    ) {
        // Ethernet first, the one link type decoding looks for next: 802.11's two compares
        // cost 5 instructions a packet (callgrind).
        if pkt.link != LinkType::ETHERNET && pkt.link.is_ieee80211() {
            self.stats
                .count_wifi(decode::link::wifi_frame_kind(pkt.link, pkt.data));
        }
        // Decoded in place: moving the headers out of a result copied them (see
        // `decode::decode_into`).
        let mut meta = PacketMeta::EMPTY;
        match decode::decode_into(pkt.link, pkt.data, &mut meta) {
            Ok(()) => {}
            // Every IP fragment, first or not, comes here (the fast path takes none): the one
            // branch the packet path pays for reassembly.
            Err(Skip::IpFragment) => return self.fragment(pkt, ts, clock, sink),
            Err(skip) => {
                self.stats.count_skipped(pkt.orig_len, skip);
                return;
            }
        }
        self.route_decoded(pkt, &meta, ts, clock, sink);
    }

    /// Offers an IP fragment to the reassembler; routes the datagram it completes, as a
    /// raw IP packet of its own whose bytes the batch copies (the reassembler owns them), at
    /// the time of its last fragment and of all their wire bytes.
    #[cold]
    #[inline(never)]
    fn fragment(
        &mut self,
        pkt: &Packet<'_>,
        ts: Timestamp,
        clock: Timestamp,
        sink: &mut impl Sink,
    ) {
        let offered = match decode::link::network_slice(pkt.link, pkt.data) {
            Ok(net) => self.defrag.offer(
                net.data,
                pkt.orig_len,
                // Held as Ethernet's destination and source, whatever the link layer.
                decode::link::addresses(pkt.link, pkt.data)
                    .map(|a| {
                        let mut both = [0; 12];
                        both[..6].copy_from_slice(&a.dst().0);
                        both[6..].copy_from_slice(&a.src().0);
                        both
                    })
                    .as_ref(),
                clock,
            ),
            Err(_) => Offered::Dropped,
        };
        self.settle_fragments();
        let Offered::Complete(whole) = offered else {
            return;
        };
        let datagram = Packet {
            ts,
            link: LinkType::RAW,
            data: &whole.data,
            orig_len: whole.orig_len,
            block: None,
        };
        match decode::from_ip(&whole.data) {
            Ok(mut meta) => {
                meta.link = whole.link.as_ref().map(LinkAddrs::Ethernet);
                self.route_decoded(&datagram, &meta, ts, clock, sink);
            }
            Err(skip) => self.stats.count_skipped(whole.orig_len, skip),
        }
    }

    /// Counts the fragments the reassembler settled: each dropped one, and all but one of
    /// each reassembled datagram's (which counts as one packet, of all their bytes), as
    /// `ip-fragment` packets read and skipped. A fragment held is counted once settled.
    fn settle_fragments(&mut self) {
        let (fragments, bytes) = self.defrag.take_settled();
        self.stats.read += fragments;
        self.stats.bytes += bytes;
        self.stats.skipped[Skip::IpFragment.index()] += fragments;
    }

    /// Routes a decoded packet: reads the answers it carries, keys it, hands it to `sink`.
    #[inline(always)]
    fn route_decoded(
        &mut self,
        pkt: &Packet<'_>,
        meta: &PacketMeta<'_>,
        ts: Timestamp,
        clock: Timestamp,
        sink: &mut impl Sink,
    ) {
        // Answers bind names and endpoints that label later flows in any worker: they are
        // read here, in packet order, before any later packet is handed on. Queries only note
        // who searched for what, which any order gives the same; the workers read those.
        let seq = self.names.next_seq(&mut self.seq);
        let mut dns_valid = None;
        if let Some(mdns) = inspect::dns_port(meta)
            && inspect::is_dns_response(meta.payload)
        {
            self.names.begin_packet(seq, sink.horizon(seq));
            let msg = records::parse(meta.payload, mdns);
            dns_valid = Some(msg.is_ok());
            if let Ok(msg) = msg {
                inspect::observe_message(&msg, meta, mdns, ts, &self.names);
                if mdns {
                    self.devices.observe_mdns(&msg, meta);
                }
            }
        } else if devices::is_dhcp_request(meta) {
            self.devices.observe_dhcp(meta);
        }
        let quoted = meta.icmp.and_then(|i| i.quoted_packet());
        let key = quoted.map_or_else(|| FlowKey::of(meta), |q| FlowKey::of_quoted(&q));
        if meta.proto == ip_proto::TCP {
            if meta.src_port == ports::DNS {
                self.names.begin_packet(seq, sink.horizon(seq));
                let names = &self.names;
                self.dns_tcp.push(key, meta, |m| {
                    records::observe(m, meta.dst, ts, false, names);
                });
            } else if expect::may_be_rtsp(meta) {
                // RTSP on a control connection: the flows it negotiates label later UDP flows
                // in any worker, so they are read here in packet order like DNS answers.
                inspect::observe_rtsp(meta, ts, (seq, sink.horizon(seq)), &self.names);
            }
        }
        let route = Routed {
            key,
            quoted_src: quoted.map(|q| q.src),
            ts,
            orig_len: pkt.orig_len,
            clock,
            shard: self.shards.of(key.symmetric_hash()),
            seq,
            dns_valid,
        };
        sink.packet(pkt, meta, &route);
    }

    /// The packets skipped here and the clock's restarts.
    pub(crate) fn stats(&self) -> &PacketStats {
        &self.stats
    }

    /// The name stores as they stand, with the DNS-over-TCP streams this dispatcher dropped
    /// and the devices' identities.
    pub(crate) fn snapshot(&self) -> NamesSnapshot {
        NamesSnapshot {
            dns_tcp_streams_dropped: self.dns_tcp.dropped(),
            devices: self.devices.snapshot(),
            defrag: self.defrag.stats(),
            ..self.names.snapshot()
        }
    }

    /// The name stores this dispatcher feeds.
    pub(crate) fn names(&self) -> &Arc<Names> {
        &self.names
    }
}
