//! Payload inspection: reads the names traffic carries (TLS and QUIC SNI, HTTP Host, DNS and
//! mDNS records) and verifies discovery protocols, per flow, until the flow is decided.
//!
//! Each flow's [`Inspector`] looks at client-to-server payload only until it has a name or
//! knows there is none to find; after that the flow is only counted. DNS and mDNS are read on
//! every packet of their ports, since every answer can label later flows (the dispatcher reads them: [`crate::pipeline::dispatch`]).

pub mod devices;
pub mod dns_tcp;
pub mod dnssd;
pub mod expect;
pub mod http;
pub mod names;
pub mod quic;
pub mod records;
pub mod rtsp;
pub mod stream;
pub mod verify;

use std::collections::HashMap;

use crate::capture::Timestamp;
use crate::decode::{PacketMeta, ip_proto, tcp_flags};
use crate::flow::Direction;
use crate::wire::{dns, ports, tls};
use names::Names;
use stream::StreamPrefix;

/// Most client-stream bytes kept while waiting for a ClientHello or an HTTP request head.
/// A ClientHello with post-quantum key shares is about 1.7 KB; 16 KiB covers any real one.
pub const STREAM_LIMIT: usize = 16 * 1024;
/// A TCP flow whose client sent this many payload segments without a decision is not
/// inspected further. Generous on purpose: a ClientHello cut into 8-byte segments, reordered
/// and duplicated, still fits; the bytes held are bounded by [`STREAM_LIMIT`] regardless.
const MAX_TCP_PROBES: u32 = 512;
/// A UDP flow whose client sent this many datagrams without a decision is not inspected
/// further (QUIC Initials carrying one ClientHello are a handful).
const MAX_UDP_PROBES: u32 = 24;

/// Names and facts read from one flow's own payload.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FlowNames {
    /// TLS SNI.
    pub sni: Option<Box<str>>,
    /// QUIC SNI.
    pub quic_sni: Option<Box<str>>,
    /// First ALPN protocol offered (TLS or QUIC).
    pub alpn: Option<Box<str>>,
    /// HTTP Host (without port).
    pub http_host: Option<Box<str>>,
    /// HTTP User-Agent.
    pub user_agent: Option<Box<str>>,
    /// The payload was verified as the discovery protocol its port suggests.
    pub verified: bool,
}

#[derive(Debug, Default)]
enum State {
    /// Nothing seen yet.
    #[default]
    Start,
    /// Reassembling the client's TCP stream.
    Tcp(Box<StreamPrefix>),
    /// Reassembling QUIC Initial CRYPTO data.
    Quic(Box<quic::CryptoAssembler>),
    /// Decided: nothing more to read.
    Done,
}

/// Per-flow inspection state. Kept small (one per flow, millions of flows): everything a
/// flow only sometimes has is boxed and allocated when it first appears.
#[derive(Debug, Default)]
pub struct Inspector {
    state: State,
    probes: u32,
    /// What was found.
    names: Option<Box<FlowNames>>,
    /// Server-to-client stream of a DNS-over-TCP flow, and how much of it was parsed.
    dns_tcp: Option<Box<dns_tcp::DnsStream>>,
    /// Names asked about or answered on this (DNS or mDNS) flow, distinct, bounded. Boxed:
    /// 8 bytes in every flow, the list only in flows that carry DNS.
    queried: Option<Box<Queried>>,
    /// What the shared stores knew of the server when the flow began (looked up once, at the
    /// first packet, so the answer does not depend on when the flow ends or on which worker
    /// holds it).
    bound: Option<Box<Bound>>,
}

static NO_NAMES: FlowNames = FlowNames {
    sni: None,
    quic_sni: None,
    alpn: None,
    http_host: None,
    user_agent: None,
    verified: false,
};

/// Names bound to a flow's server when the flow began.
#[derive(Debug, Default, Clone)]
pub struct Bound {
    /// The DNS answer in force for the server address.
    pub dns: Option<names::NameBinding>,
    /// The mDNS endpoint advertised at the server address and port.
    pub mdns: Option<names::MdnsEndpoint>,
    /// The session that negotiated this (UDP) flow, if one did.
    pub expected: Option<std::sync::Arc<expect::Expectation>>,
}

/// Most names remembered per DNS/mDNS flow (a resolver flow from one client port can carry
/// hundreds of queries; the bound keeps a flood from growing the flow).
const MAX_QUERIED: usize = 512;

/// The distinct names of a DNS/mDNS flow in the order first seen, with an index by hash (an
/// mDNS flow can carry hundreds of names; a list alone made each new name cost a comparison
/// with every name kept), and the queries it carried.
#[derive(Debug, Default)]
struct Queried {
    names: Vec<Box<str>>,
    /// Hash of a name -> its place in `names`. Two names with the same hash (vanishingly
    /// rare) both go in the list; only the first is indexed.
    index: HashMap<u64, u32, foldhash::fast::FixedState>,
    /// Hashes of the distinct queries seen (bounded; their bytes less a trailing EDNS(0) OPT
    /// record, see [`dns::query_content`]): mDNS browsers repeat the same few queries every
    /// few seconds, and a query seen before has nothing new to tell. On the benchmark
    /// capture, 59% of mDNS queries repeat an earlier one of their flow byte for byte (only
    /// 36% the flow's previous query), and the Owner option's sequence number hides most of
    /// the rest.
    queries: std::collections::HashSet<u64, foldhash::fast::FixedState>,
    /// The flow's last few distinct queries: a repeat of one of them is told by comparing
    /// bytes, without walking and hashing it (mDNS browsers cycle through a few queries; on
    /// the first 100k packets of the benchmark capture 15,300 of 16,400 mDNS queries repeat
    /// one of their flow's last four, and the walk and hash cost 6.5M instructions,
    /// callgrind: 179.5M -> 176.0M).
    recent: Vec<RecentQuery>,
    /// The place in `recent` the next distinct query takes once it is full (the oldest).
    // First in, first out, where a hit moved its query to the back before: the same hits on
    // queries that cycle, without moving queries on every hit: 395.6M -> 393.0M instructions
    // on bench-small (callgrind).
    oldest: usize,
}

/// Distinct queries kept in [`Queried::recent`].
const RECENT_QUERIES: usize = 4;

/// A query as [`Queried::recent`] keeps it.
#[derive(Debug)]
struct RecentQuery {
    /// Its length.
    len: usize,
    /// Its first bytes, those that decide its content ([`dns::query_content_decided`]).
    decided: Box<[u8]>,
    /// Whether its content is in [`Queried::queries`] (it stays so: the set only grows, and
    /// once full takes nothing more).
    known: bool,
}

/// Most distinct queries remembered per flow; past it, new queries are parsed every time.
const MAX_QUERIES_REMEMBERED: usize = 256;

impl Queried {
    fn note(&mut self, name: &str) {
        use std::hash::BuildHasher;
        if self.names.len() >= MAX_QUERIED || name.is_empty() {
            return;
        }
        let h = foldhash::fast::FixedState::with_seed(0x0071_7565_7269_6564).hash_one(name);
        match self.index.get(&h) {
            Some(&i) if self.names.get(i as usize).is_some_and(|n| &**n == name) => {}
            Some(_) => self.names.push(name.into()),
            None => {
                self.index.insert(h, self.names.len() as u32);
                self.names.push(name.into());
            }
        }
    }
}

fn boxed(s: &str) -> Box<str> {
    s.into()
}

impl Inspector {
    /// What this flow's own payload said.
    pub fn names(&self) -> &FlowNames {
        self.names.as_deref().unwrap_or(&NO_NAMES)
    }

    fn names_mut(&mut self) -> &mut FlowNames {
        self.names.get_or_insert_with(Box::default)
    }

    /// What the shared stores knew of the server when the flow began.
    pub fn bound(&self) -> Option<&Bound> {
        self.bound.as_deref()
    }

    /// Records what the shared stores knew of the server when the flow began.
    pub fn set_bound(&mut self, b: Bound) {
        self.bound =
            (b.dns.is_some() || b.mdns.is_some() || b.expected.is_some()).then(|| Box::new(b));
    }

    fn note_queried(&mut self, name: &str) {
        self.queried.get_or_insert_with(Box::default).note(name);
    }

    /// Remembers the names a DNS or mDNS message of this flow asked about or answered.
    pub fn note_dns_names(&mut self, msg: &dns::DnsMessage<'_>) {
        let names = msg
            .questions
            .iter()
            .map(|q| msg.name(q.name))
            .chain(msg.records.iter().map(|r| msg.name(r.name)));
        for n in names {
            self.note_queried(n);
        }
    }

    /// Whether a DNS query payload repeats one of this flow's earlier queries (then it needs
    /// no parsing): the same bytes, apart from a trailing EDNS(0) OPT record (see
    /// [`dns::query_content`]); remembers it otherwise.
    pub fn repeated_query(&mut self, payload: &[u8]) -> bool {
        use std::hash::BuildHasher;
        let q = self.queried.get_or_insert_with(Box::default);
        let recent = q
            .recent
            .iter()
            .position(|r| r.len == payload.len() && payload.starts_with(&r.decided));
        if let Some(i) = recent {
            // The same content as a recent query: what was found for it holds.
            return q.recent.get(i).is_some_and(|r| r.known);
        }
        let (content, decided) = dns::query_content_decided(payload);
        let h = foldhash::fast::FixedState::with_seed(0x646e_7371).hash_one(content);
        let repeat = q.queries.contains(&h);
        let known = repeat || (q.queries.len() < MAX_QUERIES_REMEMBERED && q.queries.insert(h));
        let query = RecentQuery {
            len: payload.len(),
            decided: payload.get(..decided).unwrap_or(payload).into(),
            known,
        };
        if q.recent.len() < RECENT_QUERIES {
            q.recent.push(query);
        } else if let Some(slot) = q.recent.get_mut(q.oldest) {
            *slot = query;
            q.oldest = (q.oldest + 1) % RECENT_QUERIES;
        }
        repeat
    }

    /// The names noted by [`Inspector::note_dns_names`].
    pub fn queried(&self) -> impl Iterator<Item = &str> {
        self.queried
            .iter()
            .flat_map(|l| l.names.iter())
            .map(|b| &**b)
    }

    /// The flow's client and server were found the other way round: what was read as the
    /// client's stream was the server's, so reading starts again from the next packet (names
    /// already found and the DNS names noted are kept).
    pub fn roles_swapped(&mut self) {
        self.state = State::Start;
        self.probes = 0;
        self.dns_tcp = None;
    }

    /// Whether the flow still wants its payload looked at.
    pub fn active(&self) -> bool {
        !matches!(self.state, State::Done) || self.dns_tcp.is_some()
    }

    /// Looks at one packet of the flow. `server_port` is the flow's server port; `dns_valid`
    /// says whether the payload is a well-formed DNS message, where that is known already.
    pub fn on_packet(
        &mut self,
        meta: &PacketMeta<'_>,
        dir: Direction,
        server_port: u16,
        dns_valid: Option<bool>,
    ) {
        match meta.proto {
            ip_proto::TCP => self.on_tcp(meta, dir, server_port),
            ip_proto::UDP => self.on_udp(meta, dir, server_port, dns_valid),
            _ => self.state = State::Done,
        }
    }

    fn on_tcp(&mut self, meta: &PacketMeta<'_>, dir: Direction, server_port: u16) {
        if server_port == ports::DNS && dir == Direction::ToClient {
            self.dns_over_tcp(meta);
        }
        if matches!(self.state, State::Done) || dir != Direction::ToServer {
            return;
        }
        let syn = meta.has_flags(tcp_flags::SYN);
        if matches!(self.state, State::Start) {
            if meta.payload.is_empty() && !syn {
                return;
            }
            self.state = State::Tcp(Box::new(StreamPrefix::new(STREAM_LIMIT)));
        }
        let State::Tcp(prefix) = &mut self.state else {
            return;
        };
        let grew = if syn {
            prefix.syn(meta.tcp_seq);
            // TCP Fast Open: data in the SYN starts right after its sequence number.
            prefix.push(meta.tcp_seq.wrapping_add(1), meta.payload)
        } else {
            prefix.push(meta.tcp_seq, meta.payload)
        };
        if meta.payload.is_empty() {
            return;
        }
        self.probes += 1;
        if grew {
            let mut found = FlowNames::default();
            let decided = probe_stream(prefix.bytes(), &mut found);
            if found != FlowNames::default() {
                self.names = Some(Box::new(found));
            }
            if decided || prefix.is_full() {
                self.state = State::Done;
                return;
            }
        }
        if self.probes >= MAX_TCP_PROBES {
            self.state = State::Done;
        }
    }

    fn on_udp(
        &mut self,
        meta: &PacketMeta<'_>,
        dir: Direction,
        server_port: u16,
        dns_valid: Option<bool>,
    ) {
        if matches!(self.state, State::Done) {
            return;
        }
        // Discovery protocols on their ports, either direction.
        let verified = match server_port {
            ports::SSDP => verify::is_ssdp(meta.payload),
            ports::NAT_PMP | ports::PCP => verify::is_nat_pmp(meta.payload),
            ports::MDNS => dns_valid.unwrap_or_else(|| dns::parse_message(meta.payload).is_ok()),
            _ => false,
        };
        if verified {
            self.names_mut().verified = true;
            self.state = State::Done;
            return;
        }
        if dir != Direction::ToServer || meta.payload.is_empty() {
            return;
        }
        self.probes += 1;
        if matches!(self.state, State::Start) {
            if crate::wire::quic::is_initial(meta.payload).is_none() {
                self.state = State::Done;
                return;
            }
            self.state = State::Quic(Box::default());
        }
        let State::Quic(asm) = &mut self.state else {
            return;
        };
        match asm.push_datagram(meta.payload) {
            quic::QuicProgress::Complete => {
                if let Some(Ok(ch)) = asm.client_hello().map(tls::client_hello_from_handshake) {
                    let (sni, alpn) = (ch.sni.as_deref().map(boxed), first_alpn(&ch));
                    let names = self.names.get_or_insert_with(Box::default);
                    names.quic_sni = sni;
                    names.alpn = alpn;
                }
                self.state = State::Done;
            }
            quic::QuicProgress::Pending => {}
            quic::QuicProgress::Failed(e) if !e.is_permanent() => {}
            _ => self.state = State::Done,
        }
        if self.probes >= MAX_UDP_PROBES {
            self.state = State::Done;
        }
    }

    /// Notes the names a DNS/TCP server's answers name (the dispatcher feeds the answers
    /// themselves to the name stores, in packet order).
    fn dns_over_tcp(&mut self, meta: &PacketMeta<'_>) {
        let mut stream = self.dns_tcp.take().unwrap_or_default();
        let mut asked = Vec::new();
        stream.push(meta, |m| {
            asked.extend(m.questions.iter().map(|q| m.name(q.name).to_owned()))
        });
        // A full stream will not grow: stop reading this flow's DNS.
        if !stream.is_full() {
            self.dns_tcp = Some(stream);
        }
        for n in &asked {
            self.note_queried(n);
        }
    }
}

fn first_alpn(ch: &tls::ClientHello<'_>) -> Option<Box<str>> {
    ch.alpn_protocols()
        .next()
        .and_then(|p| std::str::from_utf8(p).ok())
        .map(boxed)
}

/// Probes a client stream prefix for a TLS ClientHello, then an HTTP request head. Returns
/// whether the flow is decided (a name was found, or the stream is neither).
fn probe_stream(bytes: &[u8], names: &mut FlowNames) -> bool {
    match tls::client_hello_from_records(bytes) {
        tls::TlsProbe::Complete(ch) => {
            names.sni = ch.sni.as_deref().map(boxed);
            names.alpn = first_alpn(&ch);
            return true;
        }
        tls::TlsProbe::NeedMore { .. } => return false,
        tls::TlsProbe::NotTls => {}
    }
    match http::request_head(bytes) {
        http::HttpProbe::Request(req) => {
            names.http_host = req.host.map(|h| boxed(&h.to_ascii_lowercase()));
            names.user_agent = req.user_agent.map(boxed);
            true
        }
        http::HttpProbe::NeedMore => false,
        http::HttpProbe::NotHttp => true,
    }
}

/// Feeds a DNS or mDNS message to the shared stores: for mDNS the sender is the device that
/// searched or announced; for DNS the answers bind names to addresses.
pub fn observe_message(
    msg: &dns::DnsMessage<'_>,
    meta: &PacketMeta<'_>,
    mdns: bool,
    ts: Timestamp,
    names: &Names,
) {
    records::observe(msg, if mdns { meta.src } else { meta.dst }, ts, mdns, names);
}

/// An RTSP message on a session's control connection: what it negotiates goes into the
/// expected-flow store, with the names bound to the session's server as of this packet (see
/// [`expect`]). The dispatcher calls it in packet order for TCP packets with a payload on an
/// [`expect::rtsp_port`]. Kept out of line (and cold): the dispatcher's path for every other
/// packet stays as it was.
#[cold]
#[inline(never)]
pub fn observe_rtsp(
    meta: &PacketMeta<'_>,
    ts: Timestamp,
    (seq, horizon): (names::Seq, names::Seq),
    names: &Names,
) {
    names
        .expected
        .observe(meta, ts, (seq, horizon), |ip, port| Bound {
            dns: names.dns.lookup_as_of(ip, ts, seq),
            mdns: names.mdns.lookup_as_of(ip, port, ts, seq),
            expected: None,
        });
}

/// Whether a packet is on the DNS (UDP 53) or mDNS (UDP 5353) ports: `Some(true)` for mDNS.
pub fn dns_port(meta: &PacketMeta<'_>) -> Option<bool> {
    if meta.proto != ip_proto::UDP {
        return None;
    }
    let mdns = meta.src_port == ports::MDNS || meta.dst_port == ports::MDNS;
    (mdns || meta.src_port == ports::DNS || meta.dst_port == ports::DNS).then_some(mdns)
}

/// Whether a DNS payload is a response (QR bit), read without parsing the message.
pub fn is_dns_response(payload: &[u8]) -> bool {
    payload.len() >= 12 && payload[2] & 0x80 != 0
}

/// Parses a DNS (UDP 53) or mDNS (UDP 5353) message, with whether it is mDNS. Every such
/// packet is read, whatever its flow's state: any answer can label later flows.
pub fn udp_dns_message<'a>(meta: &PacketMeta<'a>) -> Option<(dns::DnsMessage<'a>, bool)> {
    let mdns = dns_port(meta)?;
    dns::parse_message(meta.payload).ok().map(|m| (m, mdns))
}
