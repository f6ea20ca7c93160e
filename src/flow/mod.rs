//! Flows: bidirectional conversations keyed by protocol, addresses and ports, with client and
//! server told apart, counters each way, TCP handshake and teardown, and idle expiry driven by
//! packet timestamps.

pub mod community_id;
pub mod roles;
pub mod table;

use std::net::IpAddr;

use crate::capture::Timestamp;
use crate::decode::{PacketMeta, TunnelKind, ip_proto, tcp_flags};
use crate::wire::link::Mac;

/// Endpoint-ordered key: both directions of a conversation map to the same key.
///
/// Held as three aligned words (each address's bits, then ports, protocol and the address
/// families) rather than as addresses and ports: the key is built in the dispatcher and copied
/// whole on its way to the flow table, and copying a key built from a 17-byte `IpAddr` enum and
/// ports read it back with wide loads from narrow stores (a failed store forward each time),
/// where words are written and read whole; comparing and hashing words is cheaper too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    /// The lower endpoint's address bits (an IPv4 address's 32 in the low bits), as two
    /// words: `u128` would align the key to 16 bytes and pad every queue entry holding it.
    lo: [u64; 2],
    /// The higher endpoint's address bits.
    hi: [u64; 2],
    /// `lo`'s port << 24 | `hi`'s port << 8 | protocol, then the families above bit 40 (bit
    /// 41 set for an IPv6 `lo`, bit 40 for an IPv6 `hi`), so 1.2.3.4 and ::1.2.3.4 differ.
    rest: u64,
}

/// An endpoint as a word and a rank: any total order on (address, port) does, and comparing
/// two integers is much cheaper than `IpAddr`'s derived order (an enum, then bytes), which cost
/// about 25 instructions a packet. The family bit keeps 1.2.3.4 apart from ::1.2.3.4.
#[inline]
fn rank((ip, port): (IpAddr, u16)) -> (u128, u32) {
    match ip {
        IpAddr::V4(a) => (u128::from(a.to_bits()), u32::from(port)),
        IpAddr::V6(a) => (a.to_bits(), u32::from(port) | 1 << 16),
    }
}

impl FlowKey {
    /// A placeholder key (no packet has it: its protocol 0 goes with ports 0 and address 0).
    pub const NONE: FlowKey = FlowKey {
        lo: [0; 2],
        hi: [0; 2],
        rest: 0,
    };

    /// The key of a packet's conversation.
    #[inline]
    pub fn of(meta: &PacketMeta<'_>) -> Self {
        Self::ordered(
            meta.proto,
            (meta.src, meta.src_port),
            (meta.dst, meta.dst_port),
        )
    }

    /// The key of the flow a quoted packet (inside an ICMP error) belongs to.
    pub fn of_quoted(q: &crate::decode::Quoted) -> Self {
        Self::ordered(q.proto, (q.src, q.src_port), (q.dst, q.dst_port))
    }

    #[inline]
    fn ordered(proto: u8, a: (IpAddr, u16), b: (IpAddr, u16)) -> Self {
        let (a, b) = (rank(a), rank(b));
        let ((lo, lo_rank), (hi, hi_rank)) = if a <= b { (a, b) } else { (b, a) };
        // The rank holds the port in its low 16 bits and the family in bit 16.
        let family = u64::from(lo_rank >> 16) << 41 | u64::from(hi_rank >> 16) << 40;
        let words = |b: u128| [b as u64, (b >> 64) as u64];
        Self {
            lo: words(lo),
            hi: words(hi),
            rest: family
                | u64::from(lo_rank & 0xffff) << 24
                | u64::from(hi_rank & 0xffff) << 8
                | u64::from(proto),
        }
    }

    /// The same endpoints under another protocol.
    pub fn with_proto(self, proto: u8) -> Self {
        Self {
            rest: self.rest & !0xff | u64::from(proto),
            ..self
        }
    }

    /// A hash of the key that is the same for both directions (the key is ordered), used to
    /// pick the flow's shard: computed for every packet, so a fold of the words and one
    /// splitmix64 finalizer (about 15 instructions) rather than a general hasher (foldhash over
    /// the 128-bit words took 60 a packet, callgrind on the benchmark capture).
    #[inline]
    pub fn symmetric_hash(&self) -> u64 {
        // An IPv4 address's bits fold to themselves, an IPv6 address's halves are XORed.
        let fold = |b: [u64; 2]| b[0] ^ b[1];
        let ports = self.rest & ((1 << 40) - 1);
        let mut x = fold(self.lo) ^ fold(self.hi).rotate_left(32) ^ ports.rotate_left(17);
        x ^= x >> 30;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 27;
        x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }
}

// Word writes instead of the derived field-by-field hash (enum tags, tuples): the flow key is
// hashed for every packet, and the derived hash took 96 instructions of the ~3,500 a packet
// cost on the benchmark capture (callgrind).
impl std::hash::Hash for FlowKey {
    // Always inlined: the flow table hashes with `hash_one`, and left a call the hash took its
    // hasher's state through memory (34 instructions a packet; callgrind).
    #[inline(always)]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Two IPv4 addresses fit one word: two writes instead of three.
        if (self.lo[0] | self.hi[0]) >> 32 == 0 && self.lo[1] | self.hi[1] == 0 {
            state.write_u64(self.lo[0] << 32 | self.hi[0]);
        } else {
            state.write_u64(self.lo[0]);
            state.write_u64(self.lo[1]);
            state.write_u64(self.hi[0]);
            state.write_u64(self.hi[1]);
        }
        state.write_u64(self.rest);
    }
}

/// How the client side of a flow was decided, from most to least reliable (see
/// [`RoleBy::settled`] and [`roles`] for the protocol markers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleBy {
    /// The client sent the SYN (or the server the SYN-ACK).
    Syn,
    /// The server is a multicast or broadcast address.
    Multicast,
    /// An NTP packet's mode (3 client, 4 server; see [`roles`]).
    NtpMode,
    /// A DNS or mDNS message's QR bit: a response's sender is the server.
    DnsQr,
    /// A TLS ClientHello or ServerHello.
    TlsHello,
    /// A QUIC long-header packet only one side sends (0-RTT, Initial with a token, Retry,
    /// Version Negotiation).
    QuicHeader,
    /// The server's port is a well-known or signature port, or the lower one.
    Port,
    /// The client sent the first packet seen.
    FirstSender,
}

impl RoleBy {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Syn => "syn",
            Self::Multicast => "multicast",
            Self::NtpMode => "ntp-mode",
            Self::DnsQr => "dns-qr",
            Self::TlsHello => "tls-hello",
            Self::QuicHeader => "quic-header",
            Self::Port => "port",
            Self::FirstSender => "first-sender",
        }
    }

    /// Whether the roles rest on what the packets said (a handshake, a group address or a
    /// protocol marker) rather than on a guess from the ports or the order of packets: a
    /// settled flow never changes roles on a marker.
    #[inline]
    pub fn settled(self) -> bool {
        !matches!(self, Self::Port | Self::FirstSender)
    }
}

/// A flow whose roles were guessed (from ports or the first sender) looks for a protocol
/// marker in its first this many packets: a marker in a later one would come too late to
/// change what inspection read, and looking stops costing anything after.
pub const ROLE_WINDOW: u64 = 16;

/// Direction of a packet relative to the flow's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server.
    ToServer = 0,
    /// Server to client.
    ToClient = 1,
}

/// What one packet did to its flow (see [`Flow::track`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracked {
    /// The packet's direction under the roles held after it.
    pub dir: Direction,
    /// It was the flow's first packet.
    pub new: bool,
    /// It showed the roles had been guessed the wrong way round: client and server were
    /// swapped (and are other endpoints than before).
    pub roles_swapped: bool,
    /// It ended the TCP connection (FIN both ways, or a RST, for the first time).
    pub finished: bool,
}

/// TCP control flags seen on a flow, per direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpSeen {
    /// OR of all flag bytes sent by the client.
    pub client_flags: u8,
    /// OR of all flag bytes sent by the server.
    pub server_flags: u8,
    /// SYNs (without ACK) sent by the client, retransmissions included.
    pub syns: u32,
    /// Whether the client's SYN was the first packet of the flow.
    pub opened_with_syn: bool,
    /// Whether the server answered the SYN with SYN-ACK.
    pub syn_ack: bool,
    /// Whether the server sent RST before any SYN-ACK.
    pub rst_before_syn_ack: bool,
}

/// One flow's state.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Generation number, unique per table, to tell a flow from a later one on the same key.
    pub id: u64,
    /// The cap group of its table that counts it (see [`table::FlowTable::with_groups`]).
    pub group: u16,
    /// IP protocol.
    pub proto: u8,
    /// Client endpoint.
    pub client: (IpAddr, u16),
    /// Server endpoint.
    pub server: (IpAddr, u16),
    /// How the roles were decided.
    pub role_by: RoleBy,
    /// First packet time.
    pub first_ts: Timestamp,
    /// Last packet time.
    pub last_ts: Timestamp,
    /// Packets [to server, to client].
    pub packets: [u64; 2],
    /// Bytes on the wire [to server, to client].
    pub bytes: [u64; 2],
    /// TCP flags and handshake.
    pub tcp: TcpSeen,
    /// An ICMP/ICMPv6 error that quoted this flow's packet (destination unreachable,
    /// administratively prohibited, ...), counted among the packets to the client.
    pub icmp_error: Option<Box<IcmpError>>,
    /// The client's and the server's MAC addresses, from the first packet's Ethernet header
    /// or 802.11 source and destination (`None` without one): the client's joins the flow to the device inventory.
    pub macs: [Option<Mac>; 2],
    /// The tunnel the flow's first packet came through, if it came through one (boxed: few
    /// flows have one, and every flow would pay for it inline).
    pub tunnel: Option<Box<FlowTunnel>>,
}

/// The tunnel a flow's first packet came through: the outermost one's kind and endpoints,
/// and how many tunnels deep the flow was. Later packets of the flow may come through
/// other endpoints (a tunnel that moved, both directions through different tunnels): the
/// first packet's are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowTunnel {
    /// The outermost tunnel's kind.
    pub kind: TunnelKind,
    /// Tunnels taken off the first packet.
    pub depth: u8,
    /// The outermost IP header's source on the first packet.
    pub outer_src: IpAddr,
    /// The outermost IP header's destination on the first packet.
    pub outer_dst: IpAddr,
}

impl FlowTunnel {
    /// What a flow keeps of its first packet's tunnel: `None` unless the packet came out of
    /// one.
    pub fn of(meta: &PacketMeta<'_>) -> Option<Self> {
        let t = meta.tunnel.filter(|t| t.is_decapsulated())?;
        let (outer_src, outer_dst) = t.outer_addrs()?;
        Some(Self {
            kind: t.kind,
            depth: t.depth,
            outer_src,
            outer_dst,
        })
    }
}

/// An ICMP or ICMPv6 error message matched to the flow it quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError {
    /// ICMPv6 rather than ICMP.
    pub v6: bool,
    /// Message type (3 = destination unreachable for ICMP, 1 for ICMPv6).
    pub icmp_type: u8,
    /// Message code (3 port unreachable, 13 administratively prohibited, ...).
    pub code: u8,
    /// Who sent it (the server itself, or a router or firewall on the way).
    pub from: IpAddr,
    /// How many such messages quoted this flow.
    pub count: u32,
}

impl IcmpError {
    /// A short name for the message: `port-unreachable`, `admin-prohibited`, ...
    pub fn reason(&self) -> &'static str {
        match (self.v6, self.icmp_type, self.code) {
            (false, 3, 0) => "net-unreachable",
            (false, 3, 1) => "host-unreachable",
            (false, 3, 2) => "protocol-unreachable",
            (false, 3, 3) => "port-unreachable",
            (false, 3, 9 | 10 | 13) => "admin-prohibited",
            (false, 3, _) => "unreachable",
            (true, 1, 0) => "no-route",
            (true, 1, 1) => "admin-prohibited",
            (true, 1, 3) => "address-unreachable",
            (true, 1, 4) => "port-unreachable",
            (true, 1, 5 | 6) => "policy-rejected",
            (true, 1, _) => "unreachable",
            _ => "icmp-error",
        }
    }
}

/// How a flow's connection went, as far as the capture shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FlowState {
    /// Answered and still open at its end (or any answered non-TCP exchange).
    Established,
    /// TCP closed with FIN both ways.
    Closed,
    /// TCP reset after it was answered.
    Reset,
    /// A SYN answered by RST.
    Rejected,
    /// A SYN or request with no reply at all.
    Unanswered,
    /// An ICMP error said it could not be delivered.
    Unreachable,
    /// Seen from the middle, or answered without a request seen.
    Partial,
    /// Sent to a group address with no reply (mDNS, SSDP, broadcasts).
    Multicast,
}

impl FlowState {
    /// The name flow records and reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Established => "established",
            Self::Closed => "closed",
            Self::Reset => "reset",
            Self::Rejected => "rejected",
            Self::Unanswered => "unanswered",
            Self::Unreachable => "unreachable",
            Self::Partial => "partial",
            Self::Multicast => "multicast",
        }
    }
}

/// Whether an address can only be a receiver (multicast or broadcast).
pub fn is_group_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_multicast() || v4.is_broadcast() || v4.octets()[3] == 255,
        IpAddr::V6(v6) => v6.is_multicast(),
    }
}

/// Whether an address is a global unicast one (not private, loopback, link-local, multicast,
/// broadcast, documentation or unspecified).
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_multicast()
                || v6.is_unspecified()
                || (first & 0xffc0) == 0xfe80
                || (first & 0xfe00) == 0xfc00)
        }
    }
}

impl Flow {
    /// Starts a flow from its first packet; `known_port` says whether a port is a well-known
    /// service port (from the signature set) so the server can be told apart without a SYN.
    pub fn new(
        id: u64,
        meta: &PacketMeta<'_>,
        ts: Timestamp,
        known_port: impl Fn(u8, u16) -> bool,
    ) -> Self {
        let src = (meta.src, meta.src_port);
        let dst = (meta.dst, meta.dst_port);
        let is_tcp = meta.proto == ip_proto::TCP;
        let syn = is_tcp && meta.has_flags(tcp_flags::SYN);
        let ack = is_tcp && meta.has_flags(tcp_flags::ACK);
        let (client, server, role_by) = if syn && !ack {
            (src, dst, RoleBy::Syn)
        } else if syn && ack {
            (dst, src, RoleBy::Syn)
        } else if is_group_address(meta.dst) {
            (src, dst, RoleBy::Multicast)
        } else if let Some(m) = roles::marker(meta) {
            if m.sender_is_client {
                (src, dst, m.by)
            } else {
                (dst, src, m.by)
            }
        } else if meta.src_port != 0 || meta.dst_port != 0 {
            // Ports in the dynamic range (RFC 6335: 49152-65535) never count as well-known:
            // signature rules that span it would otherwise make every client port a server.
            // Without a signature port on exactly one side, the lower port is the server's:
            // that covers a system port (< 1024) against any other.
            let well_known = |p: u16| p < 49_152 && known_port(meta.proto, p);
            match (well_known(meta.src_port), well_known(meta.dst_port)) {
                (true, false) => (dst, src, RoleBy::Port),
                (false, true) => (src, dst, RoleBy::Port),
                _ if meta.src_port < meta.dst_port => (dst, src, RoleBy::Port),
                _ if meta.dst_port < meta.src_port => (src, dst, RoleBy::Port),
                _ => (src, dst, RoleBy::FirstSender),
            }
        } else {
            (src, dst, RoleBy::FirstSender)
        };
        Self {
            id,
            group: 0,
            proto: meta.proto,
            client,
            server,
            role_by,
            first_ts: ts,
            last_ts: ts,
            packets: [0; 2],
            bytes: [0; 2],
            tcp: TcpSeen {
                opened_with_syn: syn && !ack,
                ..TcpSeen::default()
            },
            icmp_error: None,
            macs: match meta.link {
                Some(l) if client == src => [Some(l.src()), Some(l.dst())],
                Some(l) => [Some(l.dst()), Some(l.src())],
                None => [None, None],
            },
            tunnel: FlowTunnel::of(meta).map(Box::new),
        }
    }

    /// Counts an ICMP error that quoted a packet of this flow. Only an error about the
    /// client's packet (its request could not be delivered) is recorded as why the flow went
    /// unanswered; an error about the server's packet (the client had gone) is only counted.
    pub fn note_icmp_error(
        &mut self,
        meta: &PacketMeta<'_>,
        quoted_src: IpAddr,
        ts: Timestamp,
        wire_len: u32,
    ) {
        let about_client = quoted_src == self.client.0;
        if let Some(icmp) = meta.icmp
            && about_client
        {
            let e = self.icmp_error.get_or_insert_with(|| {
                Box::new(IcmpError {
                    v6: icmp.v6,
                    icmp_type: icmp.icmp_type,
                    code: icmp.code,
                    from: meta.src,
                    count: 0,
                })
            });
            e.count += 1;
        }
        let d = if about_client {
            Direction::ToClient
        } else {
            Direction::ToServer
        } as usize;
        self.packets[d] += 1;
        self.bytes[d] += u64::from(wire_len);
        if ts > self.last_ts {
            self.last_ts = ts;
        }
    }

    /// The direction of a packet of this flow.
    #[inline]
    pub fn direction(&self, meta: &PacketMeta<'_>) -> Direction {
        // The ports first: they differ on most flows, and comparing them is cheaper than
        // comparing addresses (an enum, then 4 or 16 bytes).
        if meta.src_port == self.client.1 && meta.src == self.client.0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        }
    }

    /// Counts a packet and tracks TCP flags; returns its direction.
    pub fn update(&mut self, meta: &PacketMeta<'_>, ts: Timestamp, wire_len: u32) -> Direction {
        self.track(meta, ts, wire_len).dir
    }

    /// [`Flow::update`], also telling what the packet changed that its worker acts on.
    // The worker used to copy the server endpoint before the update and compare it after, and
    // ask `tcp_finished` before and after: about 20 instructions a packet for what only a
    // packet with FIN or RST, or one that swaps the roles (both rare), can change. Here only
    // those paths look; with the ports compared first in `direction`, bench-small went from
    // 406.10M to 401.49M instructions (callgrind). Always inlined into the worker: called, it
    // saved and restored registers around a cold path and returned its answer packed, about
    // 30 instructions a packet (381.98M to 373.14M on bench-small, callgrind).
    #[inline(always)]
    pub fn track(&mut self, meta: &PacketMeta<'_>, ts: Timestamp, wire_len: u32) -> Tracked {
        let new = self.total_packets() == 0;
        // Odd while the roles stand swapped from what they were before this packet.
        let mut swapped = false;
        let mut dir = self.direction(meta);
        // One test for most packets: a young flow whose roles were guessed.
        if !self.role_by.settled() && self.total_packets() < ROLE_WINDOW {
            let before = dir;
            dir = self.reconsider_roles(meta, dir);
            swapped = dir != before;
        }
        let mut finished = false;
        if meta.proto == ip_proto::TCP {
            let f = meta.tcp_flags;
            let syn_only = f & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN;
            if syn_only && dir == Direction::ToClient && self.tcp.client_flags & tcp_flags::SYN == 0
            {
                // The side we took for the server opens the connection: we guessed wrong.
                self.swap_roles(RoleBy::Syn);
                swapped = !swapped;
                dir = Direction::ToServer;
            }
            // Only a FIN or a RST can end the connection (the flags only grow).
            let ending = f & (tcp_flags::FIN | tcp_flags::RST) != 0 && !self.tcp_finished();
            match dir {
                Direction::ToServer => {
                    self.tcp.client_flags |= f;
                    if syn_only {
                        self.tcp.syns += 1;
                    }
                }
                Direction::ToClient => {
                    if f & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN | tcp_flags::ACK {
                        self.tcp.syn_ack = true;
                    }
                    if f & tcp_flags::RST != 0 && !self.tcp.syn_ack {
                        self.tcp.rst_before_syn_ack = true;
                    }
                    self.tcp.server_flags |= f;
                }
            }
            finished = ending && self.tcp_finished();
        }
        let d = dir as usize;
        self.packets[d] += 1;
        self.bytes[d] += u64::from(wire_len);
        if ts > self.last_ts {
            self.last_ts = ts;
        }
        Tracked {
            dir,
            new,
            // Swapping client and server changes the server unless both are one endpoint.
            roles_swapped: swapped && self.client != self.server,
            finished,
        }
    }

    /// A packet of a young flow whose roles were guessed: a SYN-ACK or a protocol marker
    /// settles them, swapping client and server (and their counters) if the guess was wrong.
    /// Returns the packet's direction under the roles now held.
    #[cold]
    fn reconsider_roles(&mut self, meta: &PacketMeta<'_>, dir: Direction) -> Direction {
        let syn_ack = meta.proto == ip_proto::TCP
            && meta.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK)
                == tcp_flags::SYN | tcp_flags::ACK;
        let (by, sender_is_client) = if syn_ack {
            (RoleBy::Syn, false)
        } else if let Some(m) = roles::marker(meta) {
            (m.by, m.sender_is_client)
        } else {
            return dir;
        };
        if sender_is_client == (dir == Direction::ToServer) {
            self.role_by = by;
            return dir;
        }
        self.swap_roles(by);
        match dir {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }

    fn swap_roles(&mut self, by: RoleBy) {
        std::mem::swap(&mut self.client, &mut self.server);
        self.macs.swap(0, 1);
        self.packets.swap(0, 1);
        self.bytes.swap(0, 1);
        std::mem::swap(&mut self.tcp.client_flags, &mut self.tcp.server_flags);
        // What the side now taken for the server did before any SYN-ACK.
        self.tcp.rst_before_syn_ack =
            !self.tcp.syn_ack && self.tcp.server_flags & tcp_flags::RST != 0;
        self.role_by = by;
    }

    /// Whether the TCP connection has ended (FIN both ways, or a RST).
    pub fn tcp_finished(&self) -> bool {
        let fin_both = self.tcp.client_flags & tcp_flags::FIN != 0
            && self.tcp.server_flags & tcp_flags::FIN != 0;
        let rst = (self.tcp.client_flags | self.tcp.server_flags) & tcp_flags::RST != 0;
        fin_both || rst
    }

    /// The connection outcome, named plainly (see the README's flow-record fields).
    pub fn state(&self) -> FlowState {
        let icmp_errors = self.icmp_error.as_ref().map_or(0, |e| u64::from(e.count));
        let answered = self.packets[Direction::ToClient as usize] > icmp_errors;
        let asked = self.packets[Direction::ToServer as usize] > 0;
        if self.proto == ip_proto::TCP {
            let c = self.tcp.client_flags;
            let s = self.tcp.server_flags;
            let client_syn = c & tcp_flags::SYN != 0;
            let rst = (c | s) & tcp_flags::RST != 0;
            let fin_both = c & tcp_flags::FIN != 0 && s & tcp_flags::FIN != 0;
            if !client_syn {
                return FlowState::Partial;
            }
            if self.tcp.rst_before_syn_ack && !self.tcp.syn_ack {
                return FlowState::Rejected;
            }
            if !self.tcp.syn_ack && self.icmp_error.is_some() {
                return FlowState::Unreachable;
            }
            if !self.tcp.syn_ack {
                return if answered {
                    FlowState::Partial
                } else {
                    FlowState::Unanswered
                };
            }
            if fin_both {
                return FlowState::Closed;
            }
            if rst {
                return FlowState::Reset;
            }
            return FlowState::Established;
        }
        match (asked, answered) {
            (true, true) => FlowState::Established,
            (true, false) if self.icmp_error.is_some() => FlowState::Unreachable,
            (true, false) if is_group_address(self.server.0) => FlowState::Multicast,
            (true, false) => FlowState::Unanswered,
            _ => FlowState::Partial,
        }
    }

    /// Total packets both ways.
    pub fn total_packets(&self) -> u64 {
        self.packets[0] + self.packets[1]
    }

    /// The client's MAC address, where the capture showed it.
    pub fn client_mac(&self) -> Option<Mac> {
        self.macs[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::from_ip;

    /// An IPv4/UDP packet from 10.0.0.1:`sport` to 10.0.0.2:`dport`, or the other way round.
    fn udp(forward: bool, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let (a, b) = if forward { (1, 2) } else { (2, 1) };
        let len = (28 + payload.len()) as u16;
        let mut p = vec![
            0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, a, 10, 0, 0, b,
        ];
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&(len - 20).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        p
    }

    /// Headers with only what a flow key reads.
    fn endpoints(src: IpAddr, sp: u16, dst: IpAddr, dp: u16, proto: u8) -> PacketMeta<'static> {
        PacketMeta {
            src,
            dst,
            proto,
            src_port: sp,
            dst_port: dp,
            ..PacketMeta::EMPTY
        }
    }

    #[test]
    fn flow_key_words_are_direction_free_and_tell_families_and_protocols_apart() {
        let v4: IpAddr = "1.2.3.4".parse().unwrap();
        let v6: IpAddr = "::1.2.3.4".parse().unwrap();
        let other: IpAddr = "10.0.0.9".parse().unwrap();
        let key = |m: &PacketMeta<'_>| FlowKey::of(m);
        let ab = key(&endpoints(v4, 443, other, 50000, ip_proto::TCP));
        let ba = key(&endpoints(other, 50000, v4, 443, ip_proto::TCP));
        assert_eq!(ab, ba);
        assert_eq!(ab.symmetric_hash(), ba.symmetric_hash());
        // The same address bits and ports in another family, or under another protocol, or
        // with the ports the other way round, are other conversations.
        assert_ne!(ab, key(&endpoints(v6, 443, other, 50000, ip_proto::TCP)));
        assert_ne!(ab, key(&endpoints(v4, 443, other, 50000, ip_proto::UDP)));
        assert_ne!(ab, key(&endpoints(v4, 50000, other, 443, ip_proto::TCP)));
        assert_eq!(
            ab.with_proto(ip_proto::UDP),
            key(&endpoints(v4, 443, other, 50000, ip_proto::UDP))
        );
    }

    #[test]
    fn shard_hash_of_the_word_key_is_the_one_of_addresses_and_ports() {
        // The hash picks a flow's shard, and so which flow a full shard evicts: the word
        // layout of the key must give what the hash of addresses and ports gave before it.
        fn by_addresses(proto: u8, a: (IpAddr, u16), b: (IpAddr, u16)) -> u64 {
            let (lo, hi) = if rank(a) <= rank(b) { (a, b) } else { (b, a) };
            let fold = |ip: IpAddr| match ip {
                IpAddr::V4(x) => u64::from(x.to_bits()),
                IpAddr::V6(x) => {
                    let b = x.to_bits();
                    (b as u64) ^ (b >> 64) as u64
                }
            };
            let ports = u64::from(lo.1) << 24 | u64::from(hi.1) << 8 | u64::from(proto);
            let mut x = fold(lo.0) ^ fold(hi.0).rotate_left(32) ^ ports.rotate_left(17);
            x ^= x >> 30;
            x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x ^= x >> 27;
            x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^ (x >> 31)
        }
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state = crate::testing::xorshift(state);
            state
        };
        for i in 0..10_000 {
            let addr = |r: u64, v6: bool| -> IpAddr {
                if v6 {
                    std::net::Ipv6Addr::from_bits(u128::from(r) << 64 | u128::from(r >> 7)).into()
                } else {
                    std::net::Ipv4Addr::from_bits(r as u32).into()
                }
            };
            let (r1, r2, r3) = (next(), next(), next());
            let a = (addr(r1, i % 3 == 0), r3 as u16);
            let b = (addr(r2, i % 5 == 0), (r3 >> 16) as u16);
            let proto = (r3 >> 32) as u8;
            let key = FlowKey::of(&endpoints(a.0, a.1, b.0, b.1, proto));
            assert_eq!(
                key.symmetric_hash(),
                by_addresses(proto, a, b),
                "{a:?} {b:?}"
            );
        }
    }

    fn ntp(mode: u8) -> [u8; 48] {
        let mut b = [0u8; 48];
        b[0] = 0x20 | mode;
        b
    }

    fn start(pkt: &[u8]) -> Flow {
        let meta = from_ip(pkt).unwrap();
        let mut f = Flow::new(0, &meta, Timestamp(0), |_, _| false);
        f.update(&meta, Timestamp(0), 90);
        f
    }

    #[test]
    fn a_reply_first_makes_its_sender_the_server() {
        let f = start(&udp(false, 123, 123, &ntp(4)));
        assert_eq!(f.role_by, RoleBy::NtpMode);
        assert_eq!(f.server.0, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(f.packets, [0, 1]);
    }

    #[test]
    fn a_guessed_flow_swaps_roles_and_counters_on_a_later_marker() {
        // Equal ports and a payload that says nothing: the first sender is taken for the
        // client. The other side's mode-3 request then shows it is the client.
        let mut f = start(&udp(true, 123, 123, &[0u8; 48]));
        assert_eq!(f.role_by, RoleBy::FirstSender);
        assert_eq!(f.client.0, "10.0.0.1".parse::<IpAddr>().unwrap());
        let req = udp(false, 123, 123, &ntp(3));
        let meta = from_ip(&req).unwrap();
        assert_eq!(f.update(&meta, Timestamp(1), 90), Direction::ToServer);
        assert_eq!(f.role_by, RoleBy::NtpMode);
        assert_eq!(f.client.0, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(f.packets, [1, 1]);
        // Settled: a contradicting marker later changes nothing.
        let odd = udp(true, 123, 123, &ntp(3));
        let meta = from_ip(&odd).unwrap();
        assert_eq!(f.update(&meta, Timestamp(2), 90), Direction::ToClient);
        assert_eq!(f.client.0, "10.0.0.2".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_marker_past_the_window_changes_nothing() {
        let mut f = start(&udp(true, 123, 123, &[0u8; 48]));
        let blank = udp(true, 123, 123, &[0u8; 48]);
        for _ in 1..ROLE_WINDOW {
            f.update(&from_ip(&blank).unwrap(), Timestamp(1), 90);
        }
        let req = udp(false, 123, 123, &ntp(3));
        f.update(&from_ip(&req).unwrap(), Timestamp(2), 90);
        assert_eq!(f.role_by, RoleBy::FirstSender);
        assert_eq!(f.client.0, "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
