//! The front of the one packet path, for any number of workers: decodes each packet once,
//! keeps the input's clock, reads DNS and mDNS answers (over UDP and TCP) into the name stores
//! in packet order, and keys the packet to the flow it belongs to. Whatever runs the workers
//! (inline, or on threads) sees exactly the same [`Routed`] packets, so the output does not
//! depend on the number of workers.

use std::net::IpAddr;
use std::sync::Arc;

use super::clock::Clock;
use crate::capture::{Packet, Timestamp};
use crate::counters::PacketStats;
use crate::decode::{self, PacketMeta, ip_proto};
use crate::flow::FlowKey;
use crate::inspect::dns;
use crate::inspect::dns_tcp::DnsTcpAnswers;
use crate::inspect::names::Names;
use crate::inspect::{self, records};
use crate::wire::ports;

/// A packet decoded, timed and keyed: what a worker takes.
#[derive(Debug, Clone, Copy)]
pub struct Routed<'a> {
    /// Its decoded headers and payload.
    pub meta: PacketMeta<'a>,
    /// The flow it belongs to; for an ICMP error, the flow it quotes.
    pub key: FlowKey,
    /// For an ICMP error that quotes a packet: the quoted packet's source.
    pub quoted_src: Option<IpAddr>,
    /// Its capture time.
    pub ts: Timestamp,
    /// Its length on the wire.
    pub orig_len: u32,
    /// The input's clock after it (see [`Clock`]).
    pub clock: Timestamp,
    /// Whether its payload is a well-formed DNS message, where the dispatcher parsed it
    /// (every answer on the DNS and mDNS ports); `None` where it did not look.
    pub dns_valid: Option<bool>,
}

/// The dispatcher's state: the clock, the name stores it feeds, DNS/TCP answer streams, and
/// the packets it skipped.
pub(crate) struct Dispatcher {
    clock: Clock,
    names: Arc<Names>,
    dns_tcp: DnsTcpAnswers<FlowKey>,
    stats: PacketStats,
}

impl Dispatcher {
    pub(crate) fn new(names: Arc<Names>) -> Self {
        Self {
            clock: Clock::default(),
            names,
            dns_tcp: DnsTcpAnswers::default(),
            stats: PacketStats::default(),
        }
    }

    /// Decodes, times and keys one packet, and reads the answers it carries; `None` for a
    /// packet skipped undecoded (counted here).
    #[inline]
    pub(crate) fn route<'a>(&mut self, pkt: &Packet<'a>) -> Option<Routed<'a>> {
        let meta = match decode::decode(pkt.link, pkt.data) {
            Ok(m) => m,
            Err(skip) => {
                self.stats.count_skipped(pkt.orig_len, skip);
                return None;
            }
        };
        let (clock, restart) = self.clock.tick(pkt.ts);
        self.stats.clock_restarts += u64::from(restart);
        // Answers bind names and endpoints that label later flows in any worker: they are
        // read here, in packet order, before any later packet is handed on. Queries only note
        // who searched for what, which any order gives the same; the workers read those.
        let mut dns_valid = None;
        if let Some(mdns) = inspect::dns_port(&meta)
            && inspect::is_dns_response(meta.payload)
        {
            let msg = dns::parse_message(meta.payload);
            dns_valid = Some(msg.is_ok());
            if let Ok(msg) = msg {
                inspect::observe_message(&msg, &meta, mdns, pkt.ts, &self.names);
            }
        }
        let quoted = meta.icmp.and_then(|i| i.quoted_packet());
        let key = quoted.map_or_else(|| FlowKey::of(&meta), |q| FlowKey::of_quoted(&q));
        if meta.proto == ip_proto::TCP && meta.src_port == ports::DNS {
            let (names, ts) = (&self.names, pkt.ts);
            self.dns_tcp.push(key, &meta, |m| {
                records::observe(m, meta.dst, ts, false, names);
            });
        }
        Some(Routed {
            meta,
            key,
            quoted_src: quoted.map(|q| q.src),
            ts: pkt.ts,
            orig_len: pkt.orig_len,
            clock,
            dns_valid,
        })
    }

    /// The packets skipped here and the clock's restarts.
    pub(crate) fn stats(&self) -> &PacketStats {
        &self.stats
    }

    /// The name stores this dispatcher feeds.
    pub(crate) fn names(&self) -> &Arc<Names> {
        &self.names
    }
}
