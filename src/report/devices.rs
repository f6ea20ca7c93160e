//! The device inventory as reports, the JSON API and metrics show it: the identities the
//! dispatcher gathered (mDNS, DHCP) joined by device key to what the workers counted of each
//! device's flows, with a kind and its evidence, the MAC's vendor and whether it is
//! randomized.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use serde::Serialize;

use crate::counters::devices::{DeviceUsage, Usage};
use crate::inspect::devices::kind::{self, Kind};
use crate::inspect::devices::{DeviceKey, DhcpIdentity, Identities, Identity};
use crate::signature::SignatureSet;
use crate::wire::link::Mac;

/// One Apple service a device used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceLine {
    /// Service id.
    pub service: String,
    /// Flows.
    pub flows: u64,
    /// Bytes on the wire, both ways.
    pub bytes: u64,
    /// Of them, attempts that failed (rejected, unanswered, unreachable).
    pub failed: u64,
}

/// One device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    /// Its key: the MAC address where the capture shows it, else the IP address.
    pub key: DeviceKey,
    /// Its MAC address, where known.
    pub mac: Option<Mac>,
    /// The vendor its MAC prefix is registered to (only Apple's are known), or null.
    pub vendor: Option<&'static str>,
    /// The MAC address is locally administered (randomized: iPhones use one per network).
    pub randomized_mac: bool,
    /// Addresses it used (v4 and v6).
    pub ips: Vec<IpAddr>,
    /// Host names (mDNS).
    pub host_names: Vec<String>,
    /// Service instance names (mDNS).
    pub instance_names: Vec<String>,
    /// Models (mDNS TXT).
    pub models: Vec<String>,
    /// What its DHCP requests said, or null.
    pub dhcp: Option<DhcpIdentity>,
    /// Bonjour service types it announced.
    pub service_types: Vec<String>,
    /// Its kind.
    pub kind: Kind,
    /// Why: every rule that matched, the deciding one first.
    pub evidence: Vec<String>,
    /// Flows it opened, of any service.
    pub flows: u64,
    /// Apple services it used, by bytes.
    pub services: Vec<ServiceLine>,
    /// Apple services it failed to reach (those of `services` with failed attempts).
    pub failed: Vec<String>,
}

/// The inventory at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Devices {
    /// Devices: Apple ones first, by kind, then by key.
    pub devices: Vec<Device>,
    /// The cap (`--max-devices`) on each of the two tables joined here.
    pub max_devices: usize,
    /// mDNS responses and DHCP requests of devices left out at the cap.
    pub announcements_dropped: u64,
    /// Flows of devices left out at the cap.
    pub flows_dropped: u64,
}

impl Devices {
    /// Joins the identities and the usage tables.
    pub fn build(sigs: &SignatureSet, identities: &Identities, usage: &DeviceUsage) -> Self {
        let keys: BTreeSet<DeviceKey> = identities
            .0
            .iter()
            .map(|(k, _)| *k)
            .chain(usage.0.iter().map(|(k, _)| *k))
            .collect();
        let none = Identity::default();
        let unused = Usage::default();
        let mut devices: Vec<Device> = keys
            .into_iter()
            .map(|key| {
                let id = identities.0.get(&key).unwrap_or(&none);
                let used = usage.0.get(&key).unwrap_or(&unused);
                device(sigs, key, id, used)
            })
            .collect();
        devices.sort_by(|a, b| a.kind.cmp(&b.kind).then(a.key.cmp(&b.key)));
        Self {
            devices,
            max_devices: identities.0.cap().min(usage.0.cap()),
            announcements_dropped: identities.0.dropped(),
            flows_dropped: usage.0.dropped(),
        }
    }

    /// Devices of each kind, every kind listed (zeros included), in report order.
    pub fn by_kind(&self) -> BTreeMap<Kind, u64> {
        let mut m: BTreeMap<Kind, u64> = Kind::ALL.iter().map(|k| (*k, 0)).collect();
        for d in &self.devices {
            *m.entry(d.kind).or_default() += 1;
        }
        m
    }
}

fn device(sigs: &SignatureSet, key: DeviceKey, id: &Identity, used: &Usage) -> Device {
    let mac = match key {
        DeviceKey::Mac(m) => Some(m),
        DeviceKey::Ip(_) => id.mac,
    };
    let with_mac = Identity { mac, ..id.clone() };
    let (kind, evidence) = kind::classify(&with_mac);
    let ips: BTreeSet<IpAddr> = id.ips.iter().chain(&used.ips).copied().collect();
    let mut services: Vec<ServiceLine> = used
        .services
        .iter()
        .map(|(s, u)| ServiceLine {
            service: sigs.service(*s).id.clone(),
            flows: u.flows,
            bytes: u.bytes,
            failed: u.failed,
        })
        .collect();
    services.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.service.cmp(&b.service)));
    let failed = services
        .iter()
        .filter(|s| s.failed > 0)
        .map(|s| s.service.clone())
        .collect();
    let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>();
    Device {
        key,
        mac,
        vendor: mac.and_then(kind::vendor),
        randomized_mac: mac.is_some_and(Mac::is_local),
        ips: ips.into_iter().collect(),
        host_names: list(&id.host_names),
        instance_names: list(&id.instance_names),
        models: list(&id.models),
        dhcp: (!id.dhcp.is_empty()).then(|| id.dhcp.clone()),
        service_types: list(&id.service_types),
        kind,
        evidence,
        flows: used.flows,
        services,
        failed,
    }
}

/// The inventory as a table for people: one block per device.
pub fn render(out: &mut String, d: &Devices) {
    if d.devices.is_empty() {
        return;
    }
    let counts: Vec<String> = d
        .by_kind()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{} {n}", k.as_str()))
        .collect();
    let _ = writeln!(out, "\nDEVICES ({})", counts.join(", "));
    for dev in &d.devices {
        let mut head = format!(
            "  {:<17} {:<11} {:>5} flow{}",
            dev.key.to_string(),
            dev.kind.as_str(),
            dev.flows,
            if dev.flows == 1 { " " } else { "s" }
        );
        if let Some(v) = dev.vendor {
            let _ = write!(head, " vendor {v}");
        }
        if dev.randomized_mac {
            head.push_str(" randomized-mac");
        }
        let _ = writeln!(out, "{}", head.trim_end());
        let join = |v: &[String]| v.join(", ");
        let mut line = |label: &str, text: String| {
            if !text.is_empty() {
                let _ = writeln!(out, "      {label:<10} {text}");
            }
        };
        let ips: Vec<String> = dev.ips.iter().map(IpAddr::to_string).collect();
        line("ips", join(&ips));
        line("names", join(&dev.host_names));
        line("instances", join(&dev.instance_names));
        line("model", join(&dev.models));
        if let Some(h) = &dev.dhcp {
            let mut t = Vec::new();
            if let Some(n) = &h.host_name {
                t.push(format!("host name {n}"));
            }
            if let Some(v) = &h.vendor_class {
                t.push(format!("vendor class {v}"));
            }
            if !h.parameters.is_empty() {
                let p: Vec<String> = h.parameters.iter().map(u8::to_string).collect();
                t.push(format!("parameters {}", p.join(",")));
            }
            line("dhcp", t.join("; "));
        }
        line("evidence", join(&dev.evidence));
        let used: Vec<String> = dev
            .services
            .iter()
            .map(|s| {
                let failed = if s.failed > 0 {
                    format!(", {} failed", s.failed)
                } else {
                    String::new()
                };
                let plural = if s.flows == 1 { "" } else { "s" };
                format!("{} ({} flow{plural}{failed})", s.service, s.flows)
            })
            .collect();
        line("services", join(&used));
    }
    if d.announcements_dropped > 0 || d.flows_dropped > 0 {
        let _ = writeln!(
            out,
            "  past --max-devices {}: {} announcements and {} flows of devices left out",
            d.max_devices, d.announcements_dropped, d.flows_dropped
        );
    }
}
