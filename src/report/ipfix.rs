//! IPFIX (RFC 7011) messages of flow records: templates, an options template naming the
//! services, and biflow data records (RFC 5103), as pure functions of the records and the
//! export time. Sending them is `app::ipfix`'s job.
//!
//! Hand-written: the Rust IPFIX crates parse messages; none writes biflow templates, options
//! templates and enterprise-specific elements, and the encoding is a few fixed layouts.
//!
//! Layout (see README "IPFIX export"): template 256 for IPv4 flows, 257 for IPv6 flows, both
//! biflows whose source is the client; options template 258 maps each `applicationId` to its
//! `applicationName`. `applicationId` follows RFC 6759 with classification engine 20
//! (PANA-L7-PEN): the engine byte, the enterprise number, then a 32-bit selector, the
//! FNV-1a hash of the service id (stable across runs, sensors and signature files).

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::record::FlowRecord;

/// IPFIX version number in the message header.
pub const VERSION: u16 = 10;
/// Template ID of IPv4 flow records.
pub const TEMPLATE_V4: u16 = 256;
/// Template ID of IPv6 flow records.
pub const TEMPLATE_V6: u16 = 257;
/// Template ID of the options records naming applications.
pub const TEMPLATE_APPS: u16 = 258;
/// RFC 5103's enterprise number for reverse information elements.
pub const REVERSE_PEN: u32 = 29305;
/// Default enterprise number of appletap's own elements: 32473, reserved for documentation
/// (RFC 5612). Sites that own a PEN set theirs with `--ipfix-enterprise`.
pub const DEFAULT_PEN: u32 = 32473;
/// RFC 6759 classification engine PANA-L7-PEN.
pub const ENGINE_PANA_L7_PEN: u8 = 20;
/// Enterprise element: the label's confidence (0 unknown, 1 possible, 2 likely, 3 certain).
pub const IE_CONFIDENCE: u16 = 1;
/// Enterprise element: the best name seen for the server (SNI, Host, DNS), a string.
pub const IE_SERVER_NAME: u16 = 2;
/// Largest message: under a 1500-byte path MTU with room for IPv6 and UDP headers.
pub const MAX_MESSAGE: usize = 1400;
/// Length of an `applicationId` value: engine, enterprise number, selector.
const APP_ID_LEN: u16 = 9;
/// Field length meaning "variable" (RFC 7011 §7).
const VARIABLE: u16 = 65535;
/// Length of an `applicationName` value: fixed, zero-padded, as Cisco's NBAR exporters
/// send it (nfdump reads names only from fixed-length fields).
pub const APP_NAME_LEN: u16 = 32;
/// Longest string value written (a name is cut at a character boundary beyond it).
const MAX_STRING: usize = 253;

/// One field specifier: element id, length, enterprise number (0: IANA).
type Field = (u16, u16, u32);

/// The fields of a flow template, in data-record order.
fn flow_fields(v6: bool, pen: u32) -> Vec<Field> {
    let (src, dst, alen) = if v6 { (27, 28, 16) } else { (8, 12, 4) };
    vec![
        (152, 8, 0), // flowStartMilliseconds
        (153, 8, 0), // flowEndMilliseconds
        (src, alen, 0),
        (dst, alen, 0),
        (7, 2, 0),   // sourceTransportPort
        (11, 2, 0),  // destinationTransportPort
        (4, 1, 0),   // protocolIdentifier
        (136, 1, 0), // flowEndReason
        (1, 8, 0),   // octetDeltaCount
        (2, 8, 0),   // packetDeltaCount
        (1, 8, REVERSE_PEN),
        (2, 8, REVERSE_PEN),
        (95, APP_ID_LEN, 0), // applicationId
        (IE_CONFIDENCE, 1, pen),
        (IE_SERVER_NAME, VARIABLE, pen),
    ]
}

/// Builds IPFIX messages for one observation domain, keeping the sequence number and the
/// applications named so far.
#[derive(Debug, Clone)]
pub struct Encoder {
    domain: u32,
    pen: u32,
    /// Data records (flows and options) sent before the next message, modulo 2^32.
    sequence: u32,
    /// Applications named so far: selector to service id.
    apps: BTreeMap<u32, String>,
}

impl Encoder {
    /// An encoder for observation domain `domain`, enterprise elements under `pen` (nonzero).
    pub fn new(domain: u32, pen: u32) -> Self {
        Self {
            domain,
            pen,
            sequence: 0,
            apps: BTreeMap::new(),
        }
    }

    /// The sequence number the next message carries.
    pub fn sequence(&self) -> u32 {
        self.sequence
    }

    /// One message with the three templates and an options record for every application
    /// named so far (more messages when they do not fit): sent first and at each refresh.
    pub fn templates(&mut self, export_time: u32) -> Vec<Vec<u8>> {
        let mut set = Vec::new();
        for (id, v6) in [(TEMPLATE_V4, false), (TEMPLATE_V6, true)] {
            let fields = flow_fields(v6, self.pen);
            put_template_header(&mut set, id, fields.len(), None);
            put_fields(&mut set, &fields);
        }
        let mut opts = Vec::new();
        let fields = [(95, APP_ID_LEN, 0), (96, APP_NAME_LEN, 0)];
        put_template_header(&mut opts, TEMPLATE_APPS, fields.len(), Some(1));
        put_fields(&mut opts, &fields);
        let mut m = MessageBuilder::new(self.domain, export_time, self.sequence);
        m.set(2, &set);
        m.set(3, &opts);
        let mut out = Vec::new();
        let apps: Vec<(u32, String)> = self.apps.iter().map(|(k, v)| (*k, v.clone())).collect();
        for (selector, name) in apps {
            let rec = self.app_record(selector, &name);
            self.push_record(&mut m, &mut out, export_time, TEMPLATE_APPS, &rec);
        }
        out.push(m.finish());
        self.messages(out)
    }

    /// Messages carrying `records`, each at most [`MAX_MESSAGE`] bytes, with the number of
    /// flow records in each; an options record naming a service goes before the first
    /// record of it.
    pub fn records(&mut self, records: &[FlowRecord], export_time: u32) -> Vec<(Vec<u8>, usize)> {
        let mut out = Vec::new();
        let mut m = MessageBuilder::new(self.domain, export_time, self.sequence);
        for r in records {
            let selector = app_selector(&r.service);
            if let std::collections::btree_map::Entry::Vacant(v) = self.apps.entry(selector) {
                v.insert(r.service.clone());
                let rec = self.app_record(selector, &r.service);
                self.push_record(&mut m, &mut out, export_time, TEMPLATE_APPS, &rec);
            }
            let (template, rec) = self.flow_record(r, selector);
            self.push_record(&mut m, &mut out, export_time, template, &rec);
        }
        if m.records > 0 {
            out.push(m.finish());
        }
        out
    }

    /// The messages of [`Encoder::templates`] or [`Encoder::records`] without their counts.
    fn messages(&self, out: Vec<(Vec<u8>, usize)>) -> Vec<Vec<u8>> {
        out.into_iter().map(|(m, _)| m).collect()
    }

    /// Adds one data record to `m`, starting a new message first when it would not fit.
    fn push_record(
        &mut self,
        m: &mut MessageBuilder,
        out: &mut Vec<(Vec<u8>, usize)>,
        export_time: u32,
        template: u16,
        rec: &[u8],
    ) {
        if !m.fits(template, rec.len()) {
            let full = std::mem::replace(
                m,
                MessageBuilder::new(self.domain, export_time, self.sequence),
            );
            out.push(full.finish());
        }
        m.record(template, rec);
        if template != TEMPLATE_APPS {
            m.flows += 1;
        }
        self.sequence = self.sequence.wrapping_add(1);
    }

    fn app_record(&self, selector: u32, name: &str) -> Vec<u8> {
        let mut rec = Vec::new();
        self.put_app_id(&mut rec, selector);
        let name = &name[..cut(name, usize::from(APP_NAME_LEN))];
        rec.extend_from_slice(name.as_bytes());
        rec.resize(rec.len() + usize::from(APP_NAME_LEN) - name.len(), 0);
        rec
    }

    fn put_app_id(&self, buf: &mut Vec<u8>, selector: u32) {
        buf.push(ENGINE_PANA_L7_PEN);
        buf.extend_from_slice(&self.pen.to_be_bytes());
        buf.extend_from_slice(&selector.to_be_bytes());
    }

    fn flow_record(&self, r: &FlowRecord, selector: u32) -> (u16, Vec<u8>) {
        let mut rec = Vec::with_capacity(96);
        rec.extend_from_slice(&millis(r.first_ts).to_be_bytes());
        rec.extend_from_slice(&millis(r.last_ts).to_be_bytes());
        let template = match (r.client_ip, r.server_ip) {
            (IpAddr::V4(c), IpAddr::V4(s)) => {
                rec.extend_from_slice(&c.octets());
                rec.extend_from_slice(&s.octets());
                TEMPLATE_V4
            }
            (c, s) => {
                rec.extend_from_slice(&to_v6(c).octets());
                rec.extend_from_slice(&to_v6(s).octets());
                TEMPLATE_V6
            }
        };
        rec.extend_from_slice(&r.client_port.unwrap_or(0).to_be_bytes());
        rec.extend_from_slice(&r.server_port.unwrap_or(0).to_be_bytes());
        rec.push(proto_number(&r.proto));
        rec.push(end_reason(r.state));
        rec.extend_from_slice(&r.bytes_to_server.to_be_bytes());
        rec.extend_from_slice(&r.packets_to_server.to_be_bytes());
        rec.extend_from_slice(&r.bytes_to_client.to_be_bytes());
        rec.extend_from_slice(&r.packets_to_client.to_be_bytes());
        self.put_app_id(&mut rec, selector);
        rec.push(confidence_code(r.confidence));
        put_string(&mut rec, r.name.as_deref().unwrap_or(""));
        (template, rec)
    }
}

fn to_v6(a: IpAddr) -> std::net::Ipv6Addr {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// Milliseconds since the epoch of a record time (negative or NaN: 0).
fn millis(ts: f64) -> u64 {
    let ms = (ts * 1000.0).round();
    if ms.is_finite() && ms > 0.0 {
        ms as u64
    } else {
        0
    }
}

/// The IP protocol number of a record's `proto`.
pub fn proto_number(proto: &str) -> u8 {
    match proto {
        "tcp" => 6,
        "udp" => 17,
        "icmp" => 1,
        "icmpv6" => 58,
        other => other
            .strip_prefix("ip-")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    }
}

/// `flowEndReason` (IE 136) of a record's state: 3 (end of flow detected) for flows that
/// closed, were reset or rejected; 1 (idle timeout) otherwise: records do not say whether a
/// flow timed out, was evicted or was still open when the input ended.
pub fn end_reason(state: &str) -> u8 {
    match state {
        "closed" | "reset" | "rejected" => 3,
        _ => 1,
    }
}

/// The enterprise confidence element's value.
pub fn confidence_code(c: Option<&str>) -> u8 {
    match c {
        Some("possible") => 1,
        Some("likely") => 2,
        Some("certain") => 3,
        _ => 0,
    }
}

/// The RFC 6759 selector of a service id: its 32-bit FNV-1a hash.
pub fn app_selector(service: &str) -> u32 {
    service.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

fn put_template_header(buf: &mut Vec<u8>, id: u16, fields: usize, scope: Option<u16>) {
    buf.extend_from_slice(&id.to_be_bytes());
    buf.extend_from_slice(&(fields as u16).to_be_bytes());
    if let Some(s) = scope {
        buf.extend_from_slice(&s.to_be_bytes());
    }
}

fn put_fields(buf: &mut Vec<u8>, fields: &[Field]) {
    for &(ie, len, pen) in fields {
        let ie = if pen == 0 { ie } else { ie | 0x8000 };
        buf.extend_from_slice(&ie.to_be_bytes());
        buf.extend_from_slice(&len.to_be_bytes());
        if pen != 0 {
            buf.extend_from_slice(&pen.to_be_bytes());
        }
    }
}

/// The length of `s` cut to at most `max` bytes at a character boundary.
fn cut(s: &str, max: usize) -> usize {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// A variable-length string (RFC 7011 §7): one length octet (values here stay under 255).
fn put_string(buf: &mut Vec<u8>, s: &str) {
    let end = cut(s, MAX_STRING);
    buf.push(end as u8);
    buf.extend_from_slice(&s.as_bytes()[..end]);
}

/// One message being filled: its header, then sets; a data set stays open while records of
/// its template follow.
struct MessageBuilder {
    buf: Vec<u8>,
    /// Offset of the open data set's header and its template.
    open: Option<(usize, u16)>,
    records: usize,
    /// Flow records (not options records) among them.
    flows: usize,
}

impl MessageBuilder {
    fn new(domain: u32, export_time: u32, sequence: u32) -> Self {
        let mut buf = Vec::with_capacity(MAX_MESSAGE);
        buf.extend_from_slice(&VERSION.to_be_bytes());
        buf.extend_from_slice(&[0, 0]); // length, set by finish
        buf.extend_from_slice(&export_time.to_be_bytes());
        buf.extend_from_slice(&sequence.to_be_bytes());
        buf.extend_from_slice(&domain.to_be_bytes());
        Self {
            buf,
            open: None,
            records: 0,
            flows: 0,
        }
    }

    /// A whole set (templates).
    fn set(&mut self, id: u16, body: &[u8]) {
        self.close();
        self.buf.extend_from_slice(&id.to_be_bytes());
        self.buf
            .extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        self.buf.extend_from_slice(body);
    }

    fn fits(&self, template: u16, len: usize) -> bool {
        let header = if self.open.is_some_and(|(_, t)| t == template) {
            0
        } else {
            4
        };
        // A record alone in a message always goes in, whatever its size.
        self.records == 0 || self.buf.len() + header + len <= MAX_MESSAGE
    }

    fn record(&mut self, template: u16, rec: &[u8]) {
        if self.open.is_none_or(|(_, t)| t != template) {
            self.close();
            self.open = Some((self.buf.len(), template));
            self.buf.extend_from_slice(&template.to_be_bytes());
            self.buf.extend_from_slice(&[0, 0]);
        }
        self.buf.extend_from_slice(rec);
        self.records += 1;
    }

    /// Writes the open data set's length.
    fn close(&mut self) {
        if let Some((at, _)) = self.open.take() {
            let len = (self.buf.len() - at) as u16;
            self.buf[at + 2..at + 4].copy_from_slice(&len.to_be_bytes());
        }
    }

    fn finish(mut self) -> (Vec<u8>, usize) {
        self.close();
        let len = self.buf.len() as u16;
        self.buf[2..4].copy_from_slice(&len.to_be_bytes());
        (self.buf, self.flows)
    }
}

#[cfg(test)]
#[path = "ipfix_tests.rs"]
mod tests;
