//! Labelling a flow: turns the signals seen on it (ports, address blocks, and later names) into
//! a service, a confidence and the evidence behind them, with a fixed precedence.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::flow::FlowState;
use crate::inspect::expect::Expectation;
use crate::signature::{
    AddressRule, BonjourRule, HostRule, PortRule, ServiceId, SignatureSet, Transport,
};

/// How sure a label is (services.md): a port alone or an address alone is `Possible`, an Apple
/// address with a port that fits is `Likely`, a name seen in or bound to the flow is `Certain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// A hint: port alone or address alone.
    Possible,
    /// Apple address plus a fitting port, or a verified protocol on its port.
    Likely,
    /// A name says what the flow is.
    Certain,
}

impl Confidence {
    /// Every level, lowest first.
    pub const ALL: [Self; 3] = [Self::Possible, Self::Likely, Self::Certain];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Possible => "possible",
            Self::Likely => "likely",
            Self::Certain => "certain",
        }
    }

    /// Parses a level name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// How sure it is that a flow labelled with `label` *used* its service, given how the flow
    /// went: the label says where the flow went; use needs an answer. A flow the server never
    /// answered (a SYN or request with no reply, refused by RST, or undeliverable per an ICMP
    /// error) is at most `possible` use, whatever its label: one spoofed packet makes such a
    /// flow, so it must not count as `likely` use of the service (issue 13). Flows whose
    /// answer the capture may not show (seen mid-flow, sent to a group address) keep their
    /// label's confidence.
    pub fn of_use(label: Option<Self>, state: FlowState) -> Option<Self> {
        match state {
            FlowState::Unanswered | FlowState::Rejected | FlowState::Unreachable => {
                label.map(|c| c.min(Self::Possible))
            }
            _ => label,
        }
    }
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which kind of signal a piece of evidence is, in precedence order (highest last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Signal {
    /// The server port matched a port rule.
    Port,
    /// The server address is in an address block.
    Address,
    /// The payload was verified as the protocol its port suggests.
    Payload,
    /// An mDNS record advertised the server endpoint.
    Mdns,
    /// A DNS answer seen earlier bound a name to the server address.
    Dns,
    /// The flow was negotiated by a session's control flow (RTSP SETUP): it takes the
    /// parent's service.
    Expected,
    /// The HTTP Host header of this flow.
    HttpHost,
    /// The SNI of a QUIC Initial of this flow.
    QuicSni,
    /// The SNI of a TLS ClientHello of this flow.
    Sni,
}

impl Signal {
    /// Stable name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Port => "port",
            Self::Address => "address",
            Self::Payload => "payload",
            Self::Mdns => "mdns",
            Self::Dns => "dns",
            Self::Expected => "expected",
            Self::HttpHost => "http-host",
            Self::QuicSni => "quic-sni",
            Self::Sni => "sni",
        }
    }
}

/// One reason behind a label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// What kind of signal.
    pub signal: Signal,
    /// What was seen: `tcp/5223`, `17.57.144.116`, `gateway.icloud.com`.
    pub value: String,
    /// The signature rule it matched: `tcp/5223`, `17.0.0.0/8`, `*.icloud.com`.
    pub rule: String,
    /// Where the rule comes from (seed file names or reference keys).
    pub source: String,
    /// The service this evidence alone points to.
    pub service: String,
    /// What this evidence alone supports.
    pub confidence: Confidence,
}

/// A flow's label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The service, or `None` for unknown.
    pub service: Option<ServiceId>,
    /// How sure, or `None` for unknown.
    pub confidence: Option<Confidence>,
    /// Every piece of evidence seen, the deciding one first.
    pub evidence: Vec<Evidence>,
}

impl Label {
    /// The label of a flow that matched nothing.
    pub fn unknown() -> Self {
        Self {
            service: None,
            confidence: None,
            evidence: Vec::new(),
        }
    }
}

/// What the classifier needs to know about a flow's server side.
#[derive(Debug, Clone, Copy)]
pub struct ServerFacts {
    /// IP protocol.
    pub proto: u8,
    /// Server address.
    pub ip: IpAddr,
    /// Server port (0 if the protocol has none).
    pub port: u16,
}

/// Name signals of a flow, borrowed from its inspection state and the shared stores.
#[derive(Debug, Clone, Copy, Default)]
pub struct NameFacts<'a> {
    /// SNI of the flow's own TLS ClientHello.
    pub sni: Option<&'a str>,
    /// SNI of the flow's own QUIC Initial.
    pub quic_sni: Option<&'a str>,
    /// HTTP Host of the flow's own request.
    pub http_host: Option<&'a str>,
    /// Names a DNS answer bound to the server address before the flow began (chain order).
    pub dns: &'a [Box<str>],
    /// The mDNS service type and instance advertised for the server endpoint.
    pub mdns: Option<(&'a str, &'a str)>,
    /// The payload was verified as the discovery protocol its port suggests (SSDP, NAT-PMP,
    /// mDNS).
    pub verified_payload: bool,
    /// The session that negotiated this flow (see [`crate::inspect::expect`]).
    pub expected: Option<&'a Expectation>,
}

/// One reason behind a label, as references into the signature set and the flow's names.
/// Deciding a label makes no text; [`Found::evidence`] makes the [`Evidence`] a flow record
/// prints. Tallies need only the decision: making every piece of evidence as text (joined
/// sources, formatted ports and addresses, cloned service ids) took 8% of all instructions on
/// the benchmark capture, nearly all of it for flows nobody printed.
#[derive(Debug, Clone, Copy)]
enum Found<'a> {
    /// The server port matched a port rule.
    Port {
        transport: Transport,
        port: u16,
        rule: &'a PortRule,
    },
    /// The payload was verified as the discovery protocol of the port's rule.
    Payload {
        transport: Transport,
        port: u16,
        rule: &'a PortRule,
    },
    /// The server address is in an address block.
    Address {
        ip: IpAddr,
        rule: &'a AddressRule,
        confidence: Confidence,
    },
    /// A name of the flow (SNI, QUIC SNI, HTTP Host, or DNS-bound) and the host rule it
    /// matched, if any.
    Name {
        signal: Signal,
        name: &'a str,
        rule: Option<&'a HostRule>,
    },
    /// A flow a session negotiated, labelled with its parent's service.
    Expected {
        exp: &'a Expectation,
        service: ServiceId,
        confidence: Confidence,
    },
    /// An mDNS-advertised endpoint: instance, service type, and the type's Bonjour rule.
    Mdns {
        instance: &'a str,
        service_type: &'a str,
        rule: Option<&'a BonjourRule>,
    },
}

impl Found<'_> {
    fn signal(&self) -> Signal {
        match self {
            Self::Port { .. } => Signal::Port,
            Self::Payload { .. } => Signal::Payload,
            Self::Address { .. } => Signal::Address,
            Self::Name { signal, .. } => *signal,
            Self::Mdns { .. } => Signal::Mdns,
            Self::Expected { .. } => Signal::Expected,
        }
    }

    /// The evidence as a flow record prints it.
    fn evidence(&self, sigs: &SignatureSet) -> Evidence {
        let service_id = |id: ServiceId| sigs.service(id).id.clone();
        match *self {
            Self::Port {
                transport,
                port,
                rule,
            } => Evidence {
                signal: Signal::Port,
                value: format!("{}/{port}", transport.as_str()),
                rule: rule.spec.to_string(),
                source: rule.sources.join(", "),
                service: service_id(rule.service),
                confidence: Confidence::Possible,
            },
            Self::Payload {
                transport,
                port,
                rule,
            } => Evidence {
                signal: Signal::Payload,
                value: format!("{}/{port}", transport.as_str()),
                rule: format!("{} message on {}", rule.protocol, rule.spec),
                source: rule.sources.join(", "),
                service: service_id(rule.service),
                confidence: Confidence::Likely,
            },
            Self::Address {
                ip,
                rule,
                confidence,
            } => Evidence {
                signal: Signal::Address,
                value: ip.to_string(),
                rule: if rule.ports.is_empty() {
                    rule.prefix.to_string()
                } else {
                    let ports: Vec<String> = rule.ports.iter().map(ToString::to_string).collect();
                    format!("{} {}", rule.prefix, ports.join(","))
                },
                source: rule.sources.join(", "),
                service: service_id(rule.service),
                confidence,
            },
            Self::Name { signal, name, rule } => match rule {
                Some(rule) => Evidence {
                    signal,
                    value: name.to_string(),
                    rule: rule.pattern.to_string(),
                    source: rule.sources.join(", "),
                    service: service_id(rule.service),
                    confidence: Confidence::Certain,
                },
                None => Evidence {
                    signal,
                    value: name.to_string(),
                    rule: "no signature matches this name".into(),
                    source: String::new(),
                    service: crate::signature::UNKNOWN.into(),
                    confidence: Confidence::Certain,
                },
            },
            Self::Expected {
                exp,
                service,
                confidence,
            } => {
                // The parent's deciding evidence, as its own record shows it.
                let parent = decide_own(sigs, parent_server(exp), &parent_facts(exp));
                let why = parent.iter().next().map(|f| f.evidence(sigs));
                let how = if exp.is_heuristic() {
                    "heuristic (negotiation not read): UDP between the hosts of its parent \
                     session, on a port in AirPlay's ranges; parent"
                } else {
                    "negotiated on its parent flow; parent"
                };
                let (rule, source) = match why {
                    Some(e) => (
                        format!(
                            "{how} is {} by {} {}",
                            e.service,
                            e.signal.as_str(),
                            e.value
                        ),
                        e.source,
                    ),
                    None => (how.to_string(), String::new()),
                };
                Evidence {
                    signal: Signal::Expected,
                    value: exp.describe(),
                    rule,
                    source,
                    service: service_id(service),
                    confidence,
                }
            }
            Self::Mdns {
                instance,
                service_type,
                rule,
            } => {
                let (rule, source, service) = match rule {
                    Some(r) => (
                        r.service_type.clone(),
                        r.sources.join(", "),
                        service_id(r.service),
                    ),
                    None => (
                        format!("{service_type} is not an Apple service type"),
                        String::new(),
                        crate::signature::UNKNOWN.to_string(),
                    ),
                };
                Evidence {
                    signal: Signal::Mdns,
                    value: instance.to_string(),
                    rule,
                    source,
                    service,
                    confidence: Confidence::Certain,
                }
            }
        }
    }
}

/// Most pieces of evidence one label holds: up to three names of the flow's own (or one
/// DNS-bound or mDNS name), then a port or verified-payload rule and a port or address rule.
const MAX_FOUND: usize = 5;

/// A flow's label as decided, its evidence not yet made text: what the tallies take. A flow
/// record's [`Label`] comes from it with [`Decision::into_label`].
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    /// The service, or `None` for unknown.
    pub service: Option<ServiceId>,
    /// How sure, or `None` for unknown.
    pub confidence: Option<Confidence>,
    /// The evidence, the deciding piece first; `None` past the end.
    found: [Option<Found<'a>>; MAX_FOUND],
}

impl<'a> Decision<'a> {
    /// The decision of a flow that matched nothing.
    fn unknown() -> Self {
        Self {
            service: None,
            confidence: None,
            found: [None; MAX_FOUND],
        }
    }

    fn push(&mut self, f: Found<'a>) {
        // Cannot be full: a label gathers at most MAX_FOUND pieces (see above).
        if let Some(slot) = self.found.iter_mut().find(|s| s.is_none()) {
            *slot = Some(f);
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Found<'a>> {
        self.found.iter().map_while(Option::as_ref)
    }

    /// The signal of the deciding evidence.
    pub fn decided_by(&self) -> Option<Signal> {
        self.iter().next().map(Found::signal)
    }

    /// The deciding evidence when it is a name of the flow or bound to its server (SNI, QUIC
    /// SNI, HTTP Host, DNS), with its signal.
    pub fn deciding_name(&self) -> Option<(Signal, &'a str)> {
        match self.iter().next()? {
            Found::Name { signal, name, .. } => Some((*signal, *name)),
            _ => None,
        }
    }

    /// Every piece of evidence as text, the deciding one first.
    pub fn evidence(&self, sigs: &SignatureSet) -> Vec<Evidence> {
        self.iter().map(|f| f.evidence(sigs)).collect()
    }

    /// The label, with its evidence as text.
    pub fn into_label(self, sigs: &SignatureSet) -> Label {
        Label {
            service: self.service,
            confidence: self.confidence,
            evidence: self.evidence(sigs),
        }
    }
}

/// Decides a flow's label from everything known about it, with this precedence: the flow's
/// own SNI or HTTP Host, then a DNS-bound name, then an mDNS-learned endpoint, then Apple
/// address plus port, then port or address alone. When a name decides, every other signal
/// stays in the evidence; a name that matches no signature still wins, so a non-Apple name on
/// an Apple address is not labelled Apple (the flow falls back to its port's non-Apple
/// protocol).
#[inline]
pub fn decide<'a>(
    sigs: &'a SignatureSet,
    server: ServerFacts,
    names: &NameFacts<'a>,
) -> Decision<'a> {
    match names.expected {
        None => decide_own(sigs, server, names),
        Some(exp) => decide_expected(sigs, server, names, exp),
    }
}

/// [`decide`] for a flow a session negotiated: its own SNI, QUIC SNI or HTTP Host still win;
/// otherwise it is what its parent is (kept apart from [`decide_own`], which the parent's
/// decision calls, so that neither is recursive and the common path stays inlined).
#[inline(never)]
fn decide_expected<'a>(
    sigs: &'a SignatureSet,
    server: ServerFacts,
    names: &NameFacts<'a>,
    exp: &'a Expectation,
) -> Decision<'a> {
    let own = decide_own(sigs, server, names);
    if matches!(
        own.decided_by(),
        Some(Signal::Sni | Signal::QuicSni | Signal::HttpHost)
    ) {
        return own;
    }
    // A negotiated flow is what its parent is; the flow's own endpoint stays as evidence.
    let parent = decide_own(sigs, parent_server(exp), &parent_facts(exp));
    let (Some(service), Some(conf)) = (parent.service, parent.confidence) else {
        return own;
    };
    let confidence = if exp.is_heuristic() {
        conf.min(Confidence::Likely)
    } else {
        conf
    };
    let mut hits = Decision::unknown();
    hits.push(Found::Expected {
        exp,
        service,
        confidence,
    });
    for f in decide_by_endpoint(sigs, server, names.verified_payload).iter() {
        hits.push(*f);
    }
    hits.service = Some(service);
    hits.confidence = Some(confidence);
    hits
}

/// [`decide`] from the flow's own names and bound names, without a parent session.
fn decide_own<'a>(
    sigs: &'a SignatureSet,
    server: ServerFacts,
    names: &NameFacts<'a>,
) -> Decision<'a> {
    // Most flows have no name at all: their label is the endpoint's, returned as made (not
    // made aside, then copied out after an empty decision was set up and searched): ~70
    // instructions of each of 12,465 such flows on bench-small (callgrind).
    if names.sni.is_none()
        && names.quic_sni.is_none()
        && names.http_host.is_none()
        && names.dns.is_empty()
        && names.mdns.is_none()
    {
        return decide_by_endpoint(sigs, server, names.verified_payload);
    }
    let base = decide_by_endpoint(sigs, server, names.verified_payload);
    let mut hits = Decision::unknown();
    for (signal, name) in [
        (Signal::Sni, names.sni),
        (Signal::QuicSni, names.quic_sni),
        (Signal::HttpHost, names.http_host),
    ] {
        if let Some(name) = name.filter(|n| is_host_name(n)) {
            hits.push(Found::Name {
                signal,
                name,
                rule: sigs.host_rule(name),
            });
        }
    }
    if hits.decided_by().is_none() && !names.dns.is_empty() {
        // The most specific match over the chain (query name first on a tie).
        let mut best: Option<(usize, &'a str)> = None;
        for n in names.dns {
            if let Some(m) = sigs.host_match(n)
                && best.is_none_or(|(s, _)| m.specificity > s)
            {
                best = Some((m.specificity, n));
            }
        }
        let name = best.map_or(&*names.dns[0], |(_, n)| n);
        hits.push(Found::Name {
            signal: Signal::Dns,
            name,
            rule: sigs.host_rule(name),
        });
    }
    if hits.decided_by().is_none()
        && let Some((service_type, instance)) = names.mdns
    {
        hits.push(Found::Mdns {
            instance,
            service_type,
            rule: sigs.bonjour_rule(service_type),
        });
    }
    // The first name signal in precedence order decides.
    let named = match hits.iter().next() {
        None => return base,
        Some(Found::Name { rule, .. }) => rule.map(|r| r.service),
        Some(Found::Mdns { rule, .. }) => rule.map(|r| r.service),
        Some(_) => None,
    };
    (hits.service, hits.confidence) = match named {
        Some(s) => (Some(s), Some(Confidence::Certain)),
        None => {
            // The name is not one of ours: keep only a non-Apple protocol label from the port.
            let port_service = Transport::from_ip_proto(server.proto)
                .and_then(|t| sigs.port_rule(t, server.port))
                .map(|(_, r)| r.service)
                .filter(|s| !sigs.service(*s).apple);
            (port_service, port_service.map(|_| Confidence::Possible))
        }
    };
    for f in base.iter() {
        hits.push(*f);
    }
    hits
}

/// The server of a negotiated flow's parent (an RTSP control connection, over TCP).
fn parent_server(exp: &Expectation) -> ServerFacts {
    ServerFacts {
        proto: 6,
        ip: exp.parent_server.0,
        port: exp.parent_server.1,
    }
}

/// What was bound to the parent's server when the session negotiated the flow.
fn parent_facts(exp: &Expectation) -> NameFacts<'_> {
    let b = &exp.parent_bound;
    NameFacts {
        dns: b.dns.as_ref().map_or(&[], |d| &d.names[..]),
        mdns: b.mdns.as_ref().map(|e| (&*e.service_type, &*e.instance)),
        ..NameFacts::default()
    }
}

/// Whether a name from the wire is a host name worth matching (not an IP literal, not empty).
/// An IP literal holds only hex digits, `:` and `.`, so a name with any other byte is no
/// literal without parsing it: parsing every name as IPv4 and IPv6 took 340k instructions
/// on the first 100k packets of the benchmark capture, about a tenth of classifying (callgrind).
fn is_host_name(name: &str) -> bool {
    name.contains('.')
        && (name
            .bytes()
            .any(|b| !(b.is_ascii_hexdigit() || b == b':' || b == b'.'))
            || name.parse::<IpAddr>().is_err())
}

/// Labels a flow from its server's port and address; see [`decide_by_endpoint`].
pub fn label(sigs: &SignatureSet, server: ServerFacts, verified_payload: bool) -> Label {
    decide_by_endpoint(sigs, server, verified_payload).into_label(sigs)
}

/// Decides a flow's label from its server's port and address, and whether its payload was
/// verified as the discovery protocol its port suggests.
///
/// Rules (signatures/README.md): an address block that lists ports and fits the server port
/// gives its service at `likely`; an Apple block plus a port rule used by Apple products gives
/// the rule's `on_apple` service at `likely` (or the block's own service if it is narrower
/// than generic `apple`); an address alone or a port alone gives `possible`; a verified
/// payload lifts a port-only Bonjour label to `likely`.
pub fn decide_by_endpoint(
    sigs: &SignatureSet,
    server: ServerFacts,
    verified_payload: bool,
) -> Decision<'_> {
    let transport = Transport::from_ip_proto(server.proto);
    let port_rule = transport.and_then(|t| sigs.port_rule(t, server.port).map(|(_, r)| (t, r)));
    let addr_rule = sigs
        .address_rules(server.ip)
        .find(|a| a.fits_port(transport, server.port));
    // The deciding piece goes first and the port rule, if it is not the deciding piece, after
    // it: written in that order rather than sorted after (with the address matching, this
    // took 600 instructions a flow; callgrind).
    let (deciding, service, confidence) = if let Some(a) = addr_rule {
        let port_specific = !a.ports.is_empty();
        let conf = if port_specific {
            Confidence::Likely
        } else {
            Confidence::Possible
        };
        let found = Found::Address {
            ip: server.ip,
            rule: a,
            confidence: conf,
        };
        let (service, confidence) = if port_specific {
            (a.service, Confidence::Likely)
        } else {
            match port_rule {
                Some((_, r))
                    if sigs.service(a.service).apple
                        && (!r.used_by.is_empty() || sigs.service(r.service).apple) =>
                {
                    let service = if a.service != sigs.apple() {
                        a.service
                    } else {
                        r.on_apple
                    };
                    // A port that only says "generic Apple" adds nothing to the address
                    // (17/8 on 443 without a name): that stays a hint.
                    let confidence = if service == sigs.apple() {
                        Confidence::Possible
                    } else {
                        Confidence::Likely
                    };
                    (service, confidence)
                }
                _ => (a.service, Confidence::Possible),
            }
        };
        (found, service, confidence)
    } else if let Some((t, r)) = port_rule {
        if verified_payload && Some(r.service) == sigs.bonjour_service() {
            // A discovery message verified on its own port (unicast SSDP replies, NAT-PMP to
            // a gateway): the protocol is known, not guessed.
            let found = Found::Payload {
                transport: t,
                port: server.port,
                rule: r,
            };
            (found, r.service, Confidence::Likely)
        } else {
            let found = Found::Port {
                transport: t,
                port: server.port,
                rule: r,
            };
            (found, r.service, Confidence::Possible)
        }
    } else {
        return Decision::unknown();
    };
    let mut d = Decision::unknown();
    d.found[0] = Some(deciding);
    if let Some((t, r)) = port_rule
        && !matches!(deciding, Found::Port { .. })
    {
        d.found[1] = Some(Found::Port {
            transport: t,
            port: server.port,
            rule: r,
        });
    }
    d.service = Some(service);
    d.confidence = Some(confidence);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unanswered_flows_count_at_most_possible_use() {
        use crate::flow::FlowState as S;
        let c = Some(Confidence::Certain);
        for st in [S::Unanswered, S::Rejected, S::Unreachable] {
            assert_eq!(Confidence::of_use(c, st), Some(Confidence::Possible));
            assert_eq!(Confidence::of_use(None, st), None);
        }
        for st in [
            S::Established,
            S::Closed,
            S::Reset,
            S::Partial,
            S::Multicast,
        ] {
            assert_eq!(Confidence::of_use(c, st), c);
        }
    }

    fn sigs() -> SignatureSet {
        SignatureSet::builtin().unwrap()
    }

    fn lab(s: &SignatureSet, proto: u8, ip: &str, port: u16) -> (String, Option<Confidence>) {
        let l = label(
            s,
            ServerFacts {
                proto,
                ip: ip.parse().unwrap(),
                port,
            },
            false,
        );
        (
            l.service
                .map_or("unknown".into(), |id| s.service(id).id.clone()),
            l.confidence,
        )
    }

    #[test]
    fn apns_on_apple_block_is_likely() {
        let s = sigs();
        assert_eq!(
            lab(&s, 6, "17.57.144.116", 5223),
            ("apns".into(), Some(Confidence::Likely))
        );
        assert_eq!(
            lab(&s, 6, "17.110.229.14", 5223),
            ("apns".into(), Some(Confidence::Likely))
        );
    }

    #[test]
    fn port_alone_is_never_more_than_possible() {
        let s = sigs();
        // XMPP on 5223 or STUN on 3478 at a non-Apple address stays a hint.
        let (_, c) = lab(&s, 6, "198.51.100.7", 5223);
        assert_eq!(c, Some(Confidence::Possible));
        let (svc, c) = lab(&s, 17, "142.250.82.99", 3478);
        assert_eq!(c, Some(Confidence::Possible));
        assert_ne!((svc.as_str(), c), ("facetime", Some(Confidence::Likely)));
    }

    #[test]
    fn ntp_to_apple_is_time_and_elsewhere_is_not() {
        let s = sigs();
        assert_eq!(
            lab(&s, 17, "17.253.26.125", 123),
            ("time".into(), Some(Confidence::Likely))
        );
        let (svc, c) = lab(&s, 17, "147.135.207.213", 123);
        assert!(svc != "time" || c < Some(Confidence::Likely));
    }

    #[test]
    fn apple_address_alone_is_possible() {
        let s = sigs();
        assert_eq!(
            lab(&s, 6, "17.2.0.122", 1720),
            ("apple".into(), Some(Confidence::Possible))
        );
    }

    #[test]
    fn https_to_apple_block_without_a_name_is_apple_possible() {
        let s = sigs();
        assert_eq!(
            lab(&s, 6, "17.248.191.172", 443),
            ("apple".into(), Some(Confidence::Possible))
        );
    }

    #[test]
    fn multicast_groups_are_bonjour_only_on_their_ports() {
        let s = sigs();
        assert_eq!(
            lab(&s, 17, "239.255.255.250", 1900),
            ("bonjour".into(), Some(Confidence::Likely))
        );
        assert_eq!(
            lab(&s, 17, "224.0.0.251", 5353),
            ("bonjour".into(), Some(Confidence::Likely))
        );
        assert_eq!(lab(&s, 17, "239.255.255.250", 3702).1, None);
    }

    #[test]
    fn ip_literals_are_not_host_names() {
        for n in [
            "17.253.1.2",
            "::ffff:17.0.0.1",
            "fe80::1",
            "64:ff9b::192.0.2.33",
            "",
            "apple",
        ] {
            assert!(!is_host_name(n), "{n}");
        }
        for n in [
            "apple.com",
            "dead.beef",
            "a.b",
            "1.2.3.4.5",
            "ace:.b",
            "17.253.1.2x",
        ] {
            assert!(is_host_name(n), "{n}");
        }
    }

    #[test]
    fn unknown_when_nothing_matches() {
        let s = sigs();
        assert_eq!(lab(&s, 17, "192.0.2.1", 17500), ("unknown".into(), None));
    }
}
