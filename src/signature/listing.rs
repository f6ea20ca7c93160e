//! `appletap signatures`: the loaded set as a table for people or JSON for tools.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::SignatureSet;

/// The set as JSON: every table with every field, service ids resolved to names.
pub fn json(set: &SignatureSet) -> Value {
    let sid = |id: super::ServiceId| set.service(id).id.clone();
    json!({
        "origin": set.origin,
        "services": set.services.iter().map(|s| json!({
            "id": s.id, "apple": s.apple, "name": s.name,
            "allow": s.allow.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "allow_hosts": s.allow_hosts, "sources": s.sources,
        })).collect::<Vec<_>>(),
        "ports": set.ports.iter().map(|p| json!({
            "ports": p.spec.to_string(), "protocol": p.protocol, "iana": p.iana, "rfc": p.rfc,
            "used_by": p.used_by, "service": sid(p.service), "on_apple": sid(p.on_apple),
            "sources": p.sources, "note": p.note,
        })).collect::<Vec<_>>(),
        "hosts": set.hosts.iter().map(|h| json!({
            "pattern": h.pattern.as_str(), "service": sid(h.service), "sources": h.sources,
        })).collect::<Vec<_>>(),
        "addresses": set.addresses.iter().map(|a| json!({
            "prefix": a.prefix.to_string(), "service": sid(a.service),
            "ports": a.ports.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "sources": a.sources,
        })).collect::<Vec<_>>(),
        "bonjour": set.bonjour.iter().map(|b| json!({
            "type": b.service_type, "service": sid(b.service), "description": b.description,
            "sources": b.sources,
        })).collect::<Vec<_>>(),
    })
}

/// The set as aligned text, one section per table.
pub fn table(set: &SignatureSet) -> String {
    let sid = |id: super::ServiceId| set.service(id).id.as_str();
    let mut o = String::new();
    let _ = writeln!(o, "signature set: {}", set.origin);
    let _ = writeln!(o, "\nSERVICES ({})", set.services.len());
    let _ = writeln!(o, "{:<20} {:<5} NAME", "ID", "APPLE");
    for s in &set.services {
        let _ = writeln!(
            o,
            "{:<20} {:<5} {}",
            s.id,
            if s.apple { "yes" } else { "no" },
            s.name
        );
    }
    let _ = writeln!(o, "\nPORTS ({})", set.ports.len());
    let _ = writeln!(
        o,
        "{:<22} {:<18} {:<18} {:<40} SOURCES",
        "PORTS", "SERVICE", "ON APPLE ADDRESS", "PROTOCOL"
    );
    for p in &set.ports {
        let _ = writeln!(
            o,
            "{:<22} {:<18} {:<18} {:<40} {}",
            p.spec.to_string(),
            sid(p.service),
            sid(p.on_apple),
            truncate(&p.protocol, 40),
            p.sources.join(",")
        );
    }
    let _ = writeln!(o, "\nHOSTS ({})", set.hosts.len());
    let _ = writeln!(o, "{:<44} {:<18} SOURCES", "PATTERN", "SERVICE");
    for h in &set.hosts {
        let _ = writeln!(
            o,
            "{:<44} {:<18} {}",
            h.pattern.as_str(),
            sid(h.service),
            h.sources.join(",")
        );
    }
    let _ = writeln!(o, "\nADDRESSES ({})", set.addresses.len());
    let _ = writeln!(
        o,
        "{:<24} {:<18} {:<30} SOURCES",
        "PREFIX", "SERVICE", "PORTS"
    );
    for a in &set.addresses {
        let ports: Vec<String> = a.ports.iter().map(ToString::to_string).collect();
        let ports = if ports.is_empty() {
            "any".to_string()
        } else {
            ports.join(",")
        };
        let _ = writeln!(
            o,
            "{:<24} {:<18} {:<30} {}",
            a.prefix.to_string(),
            sid(a.service),
            ports,
            a.sources.join(",")
        );
    }
    let _ = writeln!(o, "\nBONJOUR TYPES ({})", set.bonjour.len());
    let _ = writeln!(o, "{:<28} {:<18} DESCRIPTION", "TYPE", "SERVICE");
    for b in &set.bonjour {
        let _ = writeln!(
            o,
            "{:<28} {:<18} {}",
            b.service_type,
            sid(b.service),
            b.description
        );
    }
    o
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}
