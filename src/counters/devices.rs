//! What each device did, from its finished flows: the addresses it used and, per Apple
//! service, its flows, bytes and failed attempts (as the audit counts them: labelled at least
//! `likely`, and rejected, unanswered or unreachable). Kept per worker in a bounded table
//! that merges to the same devices whatever the split (see [`Bounded`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;

use super::Finished;
use crate::classify::Confidence;
use crate::flow::FlowState;
use crate::inspect::devices::{
    Bounded, DEFAULT_MAX_DEVICES, DeviceKey, MAX_ADDRESSES, Weighted, is_local,
};
use crate::signature::{ServiceId, SignatureSet};

/// One device's use of one Apple service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ServiceUse {
    /// Flows.
    pub flows: u64,
    /// Bytes on the wire, both ways.
    pub bytes: u64,
    /// Of the flows, attempts that failed (rejected, unanswered, unreachable).
    pub failed: u64,
}

/// What one device did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Addresses it opened flows from.
    pub ips: BTreeSet<IpAddr>,
    /// Flows it opened, of any service.
    pub flows: u64,
    /// Per Apple service.
    pub services: BTreeMap<ServiceId, ServiceUse>,
}

impl Weighted for Usage {
    fn weight(&self) -> u64 {
        self.flows
    }
}

impl Usage {
    fn add(&mut self, other: &Self) {
        for ip in &other.ips {
            keep_lowest(&mut self.ips, *ip);
        }
        self.flows += other.flows;
        for (s, u) in &other.services {
            let e = self.services.entry(*s).or_default();
            e.flows += u.flows;
            e.bytes += u.bytes;
            e.failed += u.failed;
        }
    }
}

/// Adds `ip` to a device's addresses if it is among the [`MAX_ADDRESSES`] lowest: the lowest,
/// not the first seen, because each worker sees its own flows first. Keeping the first seen
/// made the listed addresses depend on the split: on the benchmark capture, where one MAC
/// sends from hundreds of addresses, `--threads 3` listed others than `--threads 1`. The
/// lowest of the lowest each worker kept are the lowest of all, whatever the split.
fn keep_lowest(ips: &mut BTreeSet<IpAddr>, ip: IpAddr) {
    if ips.len() < MAX_ADDRESSES {
        ips.insert(ip);
    } else if ips.last().is_some_and(|&top| ip < top) && ips.insert(ip) {
        ips.pop_last();
    }
}

/// Per-device usage of one worker, or merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceUsage(pub Bounded<Usage>);

impl Default for DeviceUsage {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_DEVICES)
    }
}

impl DeviceUsage {
    /// An empty table of at most `max_devices` devices.
    pub fn new(max_devices: usize) -> Self {
        Self(Bounded::new(max_devices))
    }

    /// Counts a finished flow for its client, if the client is a device that sent: its
    /// address is local (or it has none yet, a DHCP client, and its MAC is known).
    pub fn add_flow(&mut self, sigs: &SignatureSet, f: &Finished<'_>) {
        let flow = f.flow;
        let ip = flow.client.0;
        let mac = flow.client_mac();
        if flow.packets[0] == 0 || !(is_local(ip) || ip.is_unspecified() && mac.is_some()) {
            return;
        }
        let key = DeviceKey::of_sender(mac, ip);
        if matches!(key, DeviceKey::Ip(a) if a.is_unspecified()) {
            return;
        }
        let Some(u) = self.0.entry(key) else {
            return;
        };
        if !ip.is_unspecified() {
            keep_lowest(&mut u.ips, ip);
        }
        u.flows += 1;
        let Some(service) = f.decision.service.filter(|s| sigs.service(*s).apple) else {
            return;
        };
        let s = u.services.entry(service).or_default();
        s.flows += 1;
        s.bytes += flow.bytes[0] + flow.bytes[1];
        let failed = matches!(
            f.state,
            FlowState::Rejected | FlowState::Unanswered | FlowState::Unreachable
        );
        if failed && f.decision.confidence >= Some(Confidence::Likely) {
            s.failed += 1;
        }
    }

    /// Adds another worker's table.
    pub fn merge(&mut self, other: &Self) {
        self.0.merge(&other.0, Usage::add);
    }
}
