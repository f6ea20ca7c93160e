//! Parsing and validation of signature files: TOML text in, a [`SignatureSet`] or an error that
//! names the file, the line, the entry and what to fix.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use crate::limits::{ReadLimitedError, SIGNATURE_FILE_LIMIT, read_to_string_limited};

use super::{
    AddressRule, BonjourRule, GENERIC_APPLE, HostPattern, HostRule, PortRule, PortSpec, Service,
    ServiceId, SignatureSet, UNKNOWN,
};

/// The only format version this build reads.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// A signature file that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {}{problem}", line.map(|l| format!(":{l}")).unwrap_or_default(), entry.as_ref().map(|e| format!("{e}: ")).unwrap_or_default())]
pub struct SignatureError {
    /// The file (or the built-in set's name).
    pub origin: String,
    /// 1-based line of the entry, when known.
    pub line: Option<usize>,
    /// The entry, e.g. `[[port]] #12 (ports = "70000")`.
    pub entry: Option<String>,
    /// What is wrong, phrased so the reader knows what to fix.
    pub problem: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    format: u32,
    #[serde(default)]
    service: Vec<Spanned<RawService>>,
    #[serde(default)]
    port: Vec<Spanned<RawPort>>,
    #[serde(default)]
    host: Vec<Spanned<RawHost>>,
    #[serde(default)]
    address: Vec<Spanned<RawAddress>>,
    #[serde(default)]
    bonjour: Vec<Spanned<RawBonjour>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    id: String,
    apple: bool,
    name: String,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    allow_hosts: Vec<String>,
    sources: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPort {
    ports: String,
    transport: String,
    #[serde(default)]
    protocol: String,
    #[serde(default)]
    iana: String,
    #[serde(default)]
    rfc: String,
    #[serde(default)]
    used_by: String,
    service: String,
    on_apple: Option<String>,
    sources: Vec<String>,
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    pattern: String,
    service: String,
    sources: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAddress {
    prefix: String,
    service: String,
    #[serde(default)]
    ports: Vec<String>,
    sources: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBonjour {
    #[serde(rename = "type")]
    service_type: String,
    service: String,
    description: String,
    sources: Vec<String>,
}

struct Ctx<'a> {
    origin: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn err(&self, span: std::ops::Range<usize>, entry: String, problem: String) -> SignatureError {
        SignatureError {
            origin: self.origin.to_string(),
            line: Some(self.line_of(span.start)),
            entry: Some(entry),
            problem,
        }
    }
}

/// Parses `"tcp/5223"`, `"udp/16384-16387"`, `"tcp/udp/554"` or, with `transport` given
/// separately, `"5223"` / `"16384-16387"`.
pub(crate) fn parse_port_spec(text: &str) -> Result<PortSpec, String> {
    let (transport, ports) = text.rsplit_once('/').ok_or_else(|| {
        format!("{text:?} must look like \"tcp/443\", \"udp/16384-16387\" or \"tcp/udp/554\"")
    })?;
    let mut spec = parse_ports(ports)?;
    let (tcp, udp) = parse_transport(transport)?;
    spec.tcp = tcp;
    spec.udp = udp;
    Ok(spec)
}

fn parse_transport(text: &str) -> Result<(bool, bool), String> {
    match text {
        "tcp" => Ok((true, false)),
        "udp" => Ok((false, true)),
        "tcp/udp" | "udp/tcp" => Ok((true, true)),
        other => Err(format!(
            "transport {other:?} must be \"tcp\", \"udp\" or \"tcp/udp\""
        )),
    }
}

fn parse_ports(text: &str) -> Result<PortSpec, String> {
    let num = |s: &str| -> Result<u16, String> {
        match s.trim().parse::<u32>() {
            Ok(n) if (1..=65_535).contains(&n) => Ok(n as u16),
            Ok(n) => Err(format!("port {n} is outside 1-65535")),
            Err(_) => Err(format!("{s:?} is not a port number")),
        }
    };
    let (lo, hi) = match text.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let p = num(text)?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(format!("port range {text:?} ends before it starts"));
    }
    Ok(PortSpec {
        tcp: false,
        udp: false,
        lo,
        hi,
    })
}

/// Reads a signature file whole, refusing one larger than
/// [`SIGNATURE_FILE_LIMIT`](crate::limits::SIGNATURE_FILE_LIMIT) (a device or a capture named
/// by mistake would otherwise be read without end), then parses it.
pub(super) fn from_path(path: &Path) -> Result<SignatureSet, SignatureError> {
    let origin = path.display().to_string();
    let text = read_to_string_limited(path, SIGNATURE_FILE_LIMIT).map_err(|e| {
        let problem = match e {
            ReadLimitedError::Io { source, .. } => format!("cannot read the file: {source}"),
            ReadLimitedError::TooLarge { .. } => format!(
                "the file is larger than the {} MiB limit for signature files: check that it \
                 is the signature file you meant (the shipped one is under 100 KiB)",
                SIGNATURE_FILE_LIMIT >> 20
            ),
            ReadLimitedError::NotText { valid_up_to, .. } => format!(
                "the file is not UTF-8 text (byte {valid_up_to} is not): check that it is the \
                 signature file you meant"
            ),
        };
        SignatureError {
            origin: origin.clone(),
            line: None,
            entry: None,
            problem,
        }
    })?;
    parse(&origin, &text)
}

pub(super) fn parse(origin: &str, text: &str) -> Result<SignatureSet, SignatureError> {
    let ctx = Ctx { origin, text };
    let raw: RawFile = toml::from_str(text).map_err(|e| SignatureError {
        origin: origin.to_string(),
        line: e.span().map(|s| ctx.line_of(s.start)),
        entry: None,
        problem: e.message().trim().to_string(),
    })?;
    if raw.format != FORMAT_VERSION {
        return Err(SignatureError {
            origin: origin.to_string(),
            line: None,
            entry: None,
            problem: format!(
                "format = {} is not supported; this appletap reads format = {FORMAT_VERSION}",
                raw.format
            ),
        });
    }

    let check_sources = |span: std::ops::Range<usize>, entry: &str, sources: &[String]| {
        if sources.is_empty() || sources.iter().any(|s| s.trim().is_empty()) {
            Err(ctx.err(
                span,
                entry.to_string(),
                "sources must name at least one seed file or reference key, and none may be empty"
                    .into(),
            ))
        } else {
            Ok(())
        }
    };

    // Services first: every other table refers to them.
    let mut services = Vec::with_capacity(raw.service.len());
    let mut by_id: HashMap<String, ServiceId> = HashMap::new();
    for (n, s) in raw.service.iter().enumerate() {
        let span = s.span();
        let s = s.get_ref();
        let entry = format!("[[service]] #{} (id = {:?})", n + 1, s.id);
        let valid_id = !s.id.is_empty()
            && s.id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_id {
            return Err(ctx.err(
                span,
                entry,
                "id must be kebab-case: a-z, 0-9 and '-'".into(),
            ));
        }
        if s.id == UNKNOWN {
            return Err(ctx.err(
                span,
                entry,
                format!("{UNKNOWN:?} is reserved for flows that match nothing; remove it"),
            ));
        }
        if by_id.contains_key(&s.id) {
            return Err(ctx.err(span, entry, "this id is declared twice".into()));
        }
        check_sources(span.clone(), &entry, &s.sources)?;
        let allow = s
            .allow
            .iter()
            .map(|a| parse_port_spec(a))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|p| ctx.err(span.clone(), entry.clone(), format!("allow: {p}")))?;
        for h in &s.allow_hosts {
            HostPattern::parse(h)
                .map_err(|p| ctx.err(span.clone(), entry.clone(), format!("allow_hosts: {p}")))?;
        }
        by_id.insert(s.id.clone(), ServiceId(services.len() as u16));
        services.push(Service {
            id: s.id.clone(),
            apple: s.apple,
            name: s.name.clone(),
            allow,
            allow_hosts: s.allow_hosts.clone(),
            sources: s.sources.clone(),
        });
    }
    let Some(&apple) = by_id.get(GENERIC_APPLE) else {
        return Err(SignatureError {
            origin: origin.to_string(),
            line: None,
            entry: None,
            problem: format!(
                "no [[service]] with id = {GENERIC_APPLE:?}; it is required for Apple traffic with no narrower service"
            ),
        });
    };
    let lookup = |span: std::ops::Range<usize>, entry: &str, id: &str| {
        by_id.get(id).copied().ok_or_else(|| {
            ctx.err(
                span,
                entry.to_string(),
                format!("service {id:?} is not declared; add a [[service]] with id = {id:?} or use a declared id"),
            )
        })
    };

    let mut ports = Vec::with_capacity(raw.port.len());
    let mut seen_ports = HashSet::new();
    for (n, p) in raw.port.iter().enumerate() {
        let span = p.span();
        let p = p.get_ref();
        let entry = format!(
            "[[port]] #{} (ports = {:?}, transport = {:?})",
            n + 1,
            p.ports,
            p.transport
        );
        let mut spec =
            parse_ports(&p.ports).map_err(|e| ctx.err(span.clone(), entry.clone(), e))?;
        let (tcp, udp) =
            parse_transport(&p.transport).map_err(|e| ctx.err(span.clone(), entry.clone(), e))?;
        spec.tcp = tcp;
        spec.udp = udp;
        for (on, t) in [(tcp, "tcp"), (udp, "udp")] {
            if on && !seen_ports.insert((t, spec.lo, spec.hi)) {
                return Err(ctx.err(
                    span,
                    entry,
                    format!("{t}/{} is already covered by an earlier [[port]] entry with the same range; merge them", p.ports),
                ));
            }
        }
        check_sources(span.clone(), &entry, &p.sources)?;
        // The seeds leave the protocol name blank ("-") for some rows (3478-3497, 4398, ...):
        // a blank protocol is kept as the seeds give it.
        let service = lookup(span.clone(), &entry, &p.service)?;
        let on_apple = match &p.on_apple {
            Some(id) => lookup(span.clone(), &entry, id)?,
            None if services[usize::from(service.0)].apple => service,
            None => apple,
        };
        ports.push(PortRule {
            spec,
            protocol: p.protocol.clone(),
            iana: p.iana.clone(),
            rfc: p.rfc.clone(),
            used_by: p.used_by.clone(),
            service,
            on_apple,
            sources: p.sources.clone(),
            note: p.note.clone(),
        });
    }

    let mut hosts = Vec::with_capacity(raw.host.len());
    let mut seen_hosts = HashSet::new();
    for (n, h) in raw.host.iter().enumerate() {
        let span = h.span();
        let h = h.get_ref();
        let entry = format!("[[host]] #{} (pattern = {:?})", n + 1, h.pattern);
        let pattern =
            HostPattern::parse(&h.pattern).map_err(|e| ctx.err(span.clone(), entry.clone(), e))?;
        if !seen_hosts.insert(h.pattern.clone()) {
            return Err(ctx.err(
                span,
                entry,
                "this pattern is listed twice; keep one entry and merge its sources".into(),
            ));
        }
        check_sources(span.clone(), &entry, &h.sources)?;
        hosts.push(HostRule {
            pattern,
            service: lookup(span, &entry, &h.service)?,
            sources: h.sources.clone(),
        });
    }

    let mut addresses = Vec::with_capacity(raw.address.len());
    for (n, a) in raw.address.iter().enumerate() {
        let span = a.span();
        let a = a.get_ref();
        let entry = format!("[[address]] #{} (prefix = {:?})", n + 1, a.prefix);
        let prefix: IpNet = a.prefix.parse().map_err(|_| {
            ctx.err(
                span.clone(),
                entry.clone(),
                "prefix must be an IPv4 or IPv6 CIDR block such as \"17.0.0.0/8\"".into(),
            )
        })?;
        if prefix.trunc() != prefix {
            return Err(ctx.err(
                span,
                entry,
                format!("prefix has host bits set; did you mean {}?", prefix.trunc()),
            ));
        }
        let ports = a
            .ports
            .iter()
            .map(|p| parse_port_spec(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ctx.err(span.clone(), entry.clone(), format!("ports: {e}")))?;
        check_sources(span.clone(), &entry, &a.sources)?;
        addresses.push(AddressRule {
            prefix,
            service: lookup(span, &entry, &a.service)?,
            ports,
            sources: a.sources.clone(),
        });
    }

    let mut bonjour = Vec::with_capacity(raw.bonjour.len());
    for (n, b) in raw.bonjour.iter().enumerate() {
        let span = b.span();
        let b = b.get_ref();
        let entry = format!("[[bonjour]] #{} (type = {:?})", n + 1, b.service_type);
        let valid = b.service_type.starts_with('_')
            && (b.service_type.ends_with("._tcp") || b.service_type.ends_with("._udp"));
        if !valid {
            return Err(ctx.err(
                span,
                entry,
                "type must look like \"_airplay._tcp\" or \"_sleep-proxy._udp\"".into(),
            ));
        }
        if bonjour
            .iter()
            .any(|x: &BonjourRule| x.service_type == b.service_type)
        {
            return Err(ctx.err(span, entry, "this type is listed twice".into()));
        }
        check_sources(span.clone(), &entry, &b.sources)?;
        bonjour.push(BonjourRule {
            service_type: b.service_type.clone(),
            service: lookup(span, &entry, &b.service)?,
            description: b.description.clone(),
            sources: b.sources.clone(),
        });
    }

    Ok(SignatureSet::build(
        origin.to_string(),
        services,
        ports,
        hosts,
        addresses,
        bonjour,
        apple,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
format = 1
[[service]]
id = "apple"
apple = true
name = "Apple"
sources = ["A1"]
[[service]]
id = "apns"
apple = true
name = "Push"
allow = ["tcp/5223"]
sources = ["A5"]
[[port]]
ports = "5223"
transport = "tcp"
protocol = "APNS"
service = "apns"
sources = ["004_24b801090e18829e.txt"]
"#;

    fn err_of(text: &str) -> SignatureError {
        SignatureSet::parse("test.toml", text).expect_err("must be rejected")
    }

    #[test]
    fn endless_signature_file_is_refused_at_the_limit_naming_it() {
        // /dev/zero never ends: before the limit it was read until memory ran out.
        let e = SignatureSet::from_path(Path::new("/dev/zero")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("/dev/zero: ") && msg.contains("16 MiB limit for signature files"),
            "{msg}"
        );
    }

    #[test]
    fn minimal_file_loads() {
        let set = SignatureSet::parse("test.toml", MINIMAL).unwrap();
        assert_eq!(set.ports.len(), 1);
        assert_eq!(set.service(set.ports[0].on_apple).id, "apns");
    }

    #[test]
    fn bad_port_names_file_line_entry_and_fix() {
        let e = err_of(&MINIMAL.replace("ports = \"5223\"", "ports = \"70000\""));
        let msg = e.to_string();
        assert!(msg.starts_with("test.toml:14: [[port]] #1"), "{msg}");
        assert!(msg.contains("outside 1-65535"), "{msg}");
    }

    #[test]
    fn undeclared_service_is_named() {
        let e = err_of(&MINIMAL.replace("service = \"apns\"", "service = \"apnz\""));
        assert!(
            e.to_string().contains("service \"apnz\" is not declared"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_is_rejected_with_line() {
        let e = err_of(&MINIMAL.replace("protocol = \"APNS\"", "protocoll = \"APNS\""));
        assert!(e.line.is_some());
        assert!(e.to_string().contains("protocoll"), "{e}");
    }

    #[test]
    fn missing_sources_rejected() {
        let e =
            err_of(&MINIMAL.replace("sources = [\"004_24b801090e18829e.txt\"]", "sources = []"));
        assert!(e.to_string().contains("sources must name"), "{e}");
    }

    #[test]
    fn reserved_unknown_and_missing_apple_rejected() {
        let e = err_of(&MINIMAL.replace("id = \"apns\"", "id = \"unknown\""));
        assert!(e.to_string().contains("reserved"), "{e}");
        let e = err_of(&MINIMAL.replace("id = \"apple\"", "id = \"apple2\""));
        assert!(e.to_string().contains("id = \"apple\""), "{e}");
    }

    #[test]
    fn bad_prefix_and_pattern_rejected() {
        let e = err_of(&format!(
            "{MINIMAL}\n[[address]]\nprefix = \"17.1.0.0/8\"\nservice = \"apple\"\nsources = [\"A5\"]\n"
        ));
        assert!(e.to_string().contains("did you mean 17.0.0.0/8"), "{e}");
        let e = err_of(&format!(
            "{MINIMAL}\n[[host]]\npattern = \"*a*.apple.com\"\nservice = \"apple\"\nsources = [\"A5\"]\n"
        ));
        assert!(e.to_string().contains("only one wildcard"), "{e}");
    }

    #[test]
    fn port_spec_text_forms() {
        let s = parse_port_spec("tcp/udp/554").unwrap();
        assert!(s.tcp && s.udp && s.lo == 554);
        let s = parse_port_spec("udp/16384-16387").unwrap();
        assert!(!s.tcp && s.udp && s.hi == 16387);
        assert!(parse_port_spec("sctp/1").is_err());
        assert!(parse_port_spec("443").is_err());
    }
}
