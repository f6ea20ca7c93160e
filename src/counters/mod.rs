//! Counters of finished flows and packets, owned by each worker as plain integers and merged
//! once: packet counters ([`packets`]), per-service tallies ([`tally`]) and connection
//! outcomes and unexpected traffic ([`outcomes`]) are siblings over one finished-flow type.
//! Their wording (verdicts, reasons, tables) is the report's.

pub mod devices;
pub mod outcomes;
pub mod packets;
pub mod tally;

use crate::classify::Decision;
use crate::flow::{Flow, FlowState};
use crate::signature::SignatureSet;

pub use outcomes::Outcomes;
pub use packets::PacketStats;
pub use tally::{ServiceTally, Tally, TrafficSplit};

/// What the tallies take of one finished flow: its counters and how it ended, its label as
/// decided (no evidence text is made for a flow nobody prints), and the name shown for it.
#[derive(Debug, Clone, Copy)]
pub struct Finished<'a> {
    /// The flow.
    pub flow: &'a Flow,
    /// Its label.
    pub decision: &'a Decision<'a>,
    /// The name a flow record shows for it (SNI, QUIC SNI, HTTP Host, DNS, mDNS instance).
    pub name: Option<&'a str>,
    /// How the flow went, [`Flow::state`] worked out once for all the counters (each
    /// working it out took 275k instructions on the first 100k packets; callgrind).
    pub state: FlowState,
}

/// Everything a worker counts: packets, per-service tallies and connection outcomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    /// Packet counters.
    pub packets: PacketStats,
    /// Per-service tallies of finished flows.
    pub tally: Tally,
    /// Connection outcomes per Apple service and port, and unexpected traffic.
    pub outcomes: outcomes::Audit,
    /// What each client device did.
    pub devices: devices::DeviceUsage,
}

impl Counters {
    /// Zeroed counters for a signature set.
    pub fn new(sigs: &SignatureSet) -> Self {
        Self::with_max_devices(sigs, usize::MAX)
    }

    /// Zeroed counters that keep at most `max_devices` devices (a merge keeps the smaller
    /// cap of the two).
    pub fn with_max_devices(sigs: &SignatureSet, max_devices: usize) -> Self {
        Self {
            packets: PacketStats::default(),
            tally: Tally::new(sigs),
            outcomes: outcomes::Audit::default(),
            devices: devices::DeviceUsage::new(max_devices),
        }
    }

    /// Counts a finished flow in the tallies and the outcomes.
    pub fn add_flow(&mut self, sigs: &SignatureSet, f: &Finished<'_>) {
        self.tally.add_flow(sigs, f);
        self.outcomes.add_flow(sigs, f);
        self.devices.add_flow(sigs, f);
    }

    /// Makes room for a reloaded signature set (see [`Tally::grow_to`]).
    pub fn grow_to(&mut self, sigs: &SignatureSet) {
        self.tally.grow_to(sigs.services.len());
    }

    /// Adds another worker's counters.
    pub fn merge(&mut self, other: &Self) {
        self.packets.merge(&other.packets);
        self.tally.merge(&other.tally);
        self.outcomes.merge(&other.outcomes);
        self.devices.merge(&other.devices);
    }
}
