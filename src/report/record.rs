//! The flow record: the stable, serializable view of one finished flow (one JSON object per
//! line with `--flows`). Field names listed in the README are an interface: add, never rename.

use std::net::IpAddr;

use serde::Serialize;

use crate::classify::{Evidence, Label};
use crate::decode::ip_proto;
use crate::flow::Flow;
use crate::flow::community_id::community_id;
use crate::signature::SignatureSet;
use crate::wire::link::Mac;

/// One finished flow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowRecord {
    /// `tcp`, `udp`, `icmp`, `icmpv6`, or `ip-N` for other IP protocols.
    pub proto: String,
    /// Client address.
    pub client_ip: IpAddr,
    /// Client port (null for protocols without ports).
    pub client_port: Option<u16>,
    /// Client MAC address where the capture shows the Ethernet header or 802.11 addresses, or null: with the
    /// client address, the flow's key into the device inventory.
    pub client_mac: Option<Mac>,
    /// Server address.
    pub server_ip: IpAddr,
    /// Server port (null for protocols without ports).
    pub server_port: Option<u16>,
    /// Community ID v1 (seed 0 unless `--community-id-seed`), as Zeek and Suricata write it;
    /// null for ICMP flows, which here hold every message between two hosts where the ID
    /// tells message types apart.
    pub community_id: Option<String>,
    /// Service id, or `unknown`.
    pub service: String,
    /// Whether the service is an Apple service.
    pub apple: bool,
    /// `certain`, `likely`, `possible`, or null when unknown.
    pub confidence: Option<&'static str>,
    /// Every signal behind the label, the deciding one first.
    pub evidence: Vec<Evidence>,
    /// Best name seen for the server (SNI, HTTP Host, DNS or mDNS), or null.
    pub name: Option<String>,
    /// Connection outcome: established, closed, reset, rejected, unanswered, unreachable,
    /// partial, multicast.
    pub state: &'static str,
    /// First packet time, seconds since the epoch.
    pub first_ts: f64,
    /// Last packet time, seconds since the epoch.
    pub last_ts: f64,
    /// Packets client to server.
    pub packets_to_server: u64,
    /// Packets server to client.
    pub packets_to_client: u64,
    /// Bytes on the wire client to server.
    pub bytes_to_server: u64,
    /// Bytes on the wire server to client.
    pub bytes_to_client: u64,
    /// How the client side was decided ([`crate::flow::RoleBy::as_str`]): syn, multicast,
    /// ntp-mode, dns-qr, tls-hello, quic-header, port, first-sender.
    pub role_by: &'static str,
    /// TCP details (null for other protocols).
    pub tcp: Option<TcpRecord>,
    /// First ALPN protocol the client offered (TLS or QUIC), or null.
    pub alpn: Option<String>,
    /// HTTP User-Agent of the client's request, or null.
    pub user_agent: Option<String>,
    /// Every name seen for this flow, by where it was seen.
    pub names: NameRecord,
    /// An ICMP error that quoted this flow (why it got no answer), or null.
    pub icmp_error: Option<IcmpRecord>,
    /// The tunnel the flow came through (its first packet's outermost one); absent, not
    /// null, for flows that came through none, so records of untunnelled traffic are as they
    /// were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelRecord>,
}

/// The tunnel a flow came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TunnelRecord {
    /// The outermost tunnel's kind: `gre`, `pptp`, `erspan`, `vxlan`, `geneve`, `gtp-u`,
    /// `ip-in-ip`, `6in4`, `6in6`, `teredo`, `ayiya`.
    pub kind: &'static str,
    /// The outermost IP header's source on the flow's first packet.
    pub outer_src: IpAddr,
    /// The outermost IP header's destination on the flow's first packet.
    pub outer_dst: IpAddr,
    /// Tunnels taken off to reach the flow (1 unless tunnels nest).
    pub depth: u8,
}

/// An ICMP error matched to the flow it quotes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IcmpRecord {
    /// `port-unreachable`, `admin-prohibited`, `host-unreachable`, ...
    pub reason: &'static str,
    /// ICMP type.
    #[serde(rename = "type")]
    pub icmp_type: u8,
    /// ICMP code.
    pub code: u8,
    /// Who sent it.
    pub from: IpAddr,
    /// How many quoted this flow.
    pub count: u32,
}

/// The names a flow carried or was bound to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NameRecord {
    /// SNI of the flow's TLS ClientHello.
    pub sni: Option<String>,
    /// SNI of the flow's QUIC Initial.
    pub quic_sni: Option<String>,
    /// HTTP Host of the flow's request.
    pub http_host: Option<String>,
    /// The DNS answer chain bound to the server address when the flow began (query first).
    pub dns: Vec<String>,
    /// The mDNS instance advertised at the server endpoint.
    pub mdns: Option<String>,
    /// For DNS and mDNS flows: the names the messages of this flow asked about or answered
    /// (first 512 distinct).
    pub queried: Vec<String>,
}

/// TCP handshake and teardown as seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TcpRecord {
    /// SYNs sent by the client (retransmissions included).
    pub syns: u32,
    /// Whether the server answered with SYN-ACK.
    pub syn_ack: bool,
    /// Whether the client sent FIN.
    pub fin_from_client: bool,
    /// Whether the server sent FIN.
    pub fin_from_server: bool,
    /// Whether the client sent RST.
    pub rst_from_client: bool,
    /// Whether the server sent RST.
    pub rst_from_server: bool,
}

/// The name of an IP protocol as records write it.
pub fn proto_name(proto: u8) -> String {
    match proto {
        ip_proto::TCP => "tcp".into(),
        ip_proto::UDP => "udp".into(),
        ip_proto::ICMP => "icmp".into(),
        ip_proto::ICMPV6 => "icmpv6".into(),
        n => format!("ip-{n}"),
    }
}

/// The Community ID of a flow between `client` and `server` (ports ignored unless TCP or
/// UDP), or None for ICMP (see [`FlowRecord::community_id`]).
pub fn record_community_id(
    seed: u16,
    proto: u8,
    client: (IpAddr, u16),
    server: (IpAddr, u16),
) -> Option<String> {
    let has_ports = matches!(proto, ip_proto::TCP | ip_proto::UDP);
    let port = |p: u16| has_ports.then_some(p);
    (!matches!(proto, ip_proto::ICMP | ip_proto::ICMPV6)).then(|| {
        community_id(
            seed,
            proto,
            (client.0, port(client.1)),
            (server.0, port(server.1)),
        )
    })
}

impl FlowRecord {
    /// The record with its Community ID computed with `seed` (from the record's own fields, so
    /// the writer can apply `--community-id-seed` without the pipeline knowing it).
    pub fn with_seed(mut self, seed: u16) -> Self {
        let proto = match self.proto.as_str() {
            "tcp" => ip_proto::TCP,
            "udp" => ip_proto::UDP,
            "icmp" => ip_proto::ICMP,
            "icmpv6" => ip_proto::ICMPV6,
            other => other
                .strip_prefix("ip-")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
        };
        self.community_id = record_community_id(
            seed,
            proto,
            (self.client_ip, self.client_port.unwrap_or(0)),
            (self.server_ip, self.server_port.unwrap_or(0)),
        );
        self
    }

    /// Builds the record of a finished flow from its state and label.
    pub fn new(sigs: &SignatureSet, flow: &Flow, label: Label, name: Option<String>) -> Self {
        use crate::decode::tcp_flags::{FIN, RST};
        let has_ports = matches!(flow.proto, ip_proto::TCP | ip_proto::UDP);
        let (service, apple) = match label.service {
            Some(id) => {
                let s = sigs.service(id);
                (s.id.clone(), s.apple)
            }
            None => (crate::signature::UNKNOWN.to_string(), false),
        };
        Self {
            proto: proto_name(flow.proto),
            client_ip: flow.client.0,
            client_port: has_ports.then_some(flow.client.1),
            client_mac: flow.client_mac(),
            server_ip: flow.server.0,
            server_port: has_ports.then_some(flow.server.1),
            community_id: record_community_id(0, flow.proto, flow.client, flow.server),
            service,
            apple,
            confidence: label.confidence.map(|c| c.as_str()),
            evidence: label.evidence,
            name,
            state: flow.state().as_str(),
            first_ts: flow.first_ts.as_secs_f64(),
            last_ts: flow.last_ts.as_secs_f64(),
            packets_to_server: flow.packets[0],
            packets_to_client: flow.packets[1],
            bytes_to_server: flow.bytes[0],
            bytes_to_client: flow.bytes[1],
            role_by: flow.role_by.as_str(),
            tcp: (flow.proto == ip_proto::TCP).then_some(TcpRecord {
                syns: flow.tcp.syns,
                syn_ack: flow.tcp.syn_ack,
                fin_from_client: flow.tcp.client_flags & FIN != 0,
                fin_from_server: flow.tcp.server_flags & FIN != 0,
                rst_from_client: flow.tcp.client_flags & RST != 0,
                rst_from_server: flow.tcp.server_flags & RST != 0,
            }),
            alpn: None,
            user_agent: None,
            names: NameRecord::default(),
            icmp_error: flow.icmp_error.as_deref().map(|e| IcmpRecord {
                reason: e.reason(),
                icmp_type: e.icmp_type,
                code: e.code,
                from: e.from,
                count: e.count,
            }),
            tunnel: flow.tunnel.as_deref().map(|t| TunnelRecord {
                kind: t.kind.as_str(),
                outer_src: t.outer_src,
                outer_dst: t.outer_dst,
                depth: t.depth,
            }),
        }
    }
}
