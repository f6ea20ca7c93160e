//! The JSON API's documents, rendered once per snapshot on the updater's thread (never per
//! request, never on the capture's), and the per-service history the dashboard charts.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use crate::report::Report;
use crate::report::devices::{Device, Devices};

/// Seconds between two history points.
pub const HISTORY_INTERVAL_SECS: u64 = 10;
/// Points kept: an hour at [`HISTORY_INTERVAL_SECS`].
pub const HISTORY_POINTS: usize = 360;

/// The documents served, as JSON text.
#[derive(Debug, Clone)]
pub struct Documents {
    /// `/api/report`: the report, as `live --format json` prints it.
    pub report: String,
    /// `/api/health`: the sections `audit --format json` prints.
    pub health: String,
    /// `/api/devices`: the device inventory with its counts by kind.
    pub devices: String,
}

/// `/api/health`: the audit-shaped part of a report, same field names as `audit --format json`.
#[derive(Serialize)]
struct HealthDoc<'a> {
    appletap_version: &'a str,
    inputs: &'a [crate::report::InputSummary],
    health: &'a [crate::report::health::HealthLine],
    unexpected: &'a [crate::report::UnexpectedLine],
    unclassified_apple_names: &'a [crate::report::NameCount],
    floods_and_scans: &'a crate::report::floods::FloodsAndScans,
    drops: &'a crate::report::Drops,
}

/// `/api/devices`: the inventory and its counts by kind (every kind, zeros included).
#[derive(Serialize)]
struct DevicesDoc<'a> {
    by_kind: BTreeMap<&'static str, u64>,
    devices: &'a [Device],
    max_devices: usize,
    announcements_dropped: u64,
    flows_dropped: u64,
}

/// Devices by kind name, every kind listed.
pub fn by_kind(devices: &Devices) -> BTreeMap<&'static str, u64> {
    devices
        .by_kind()
        .into_iter()
        .map(|(k, n)| (k.as_str(), n))
        .collect()
}

impl Documents {
    /// Renders the documents of a report.
    ///
    /// # Errors
    /// A JSON error (none is expected: every field serializes).
    pub fn render(report: &Report) -> serde_json::Result<Self> {
        let d = &report.devices;
        Ok(Self {
            report: serde_json::to_string(report)?,
            health: serde_json::to_string(&HealthDoc {
                appletap_version: report.appletap_version,
                inputs: &report.inputs,
                health: &report.health,
                unexpected: &report.unexpected,
                unclassified_apple_names: &report.unclassified_apple_names,
                floods_and_scans: &report.floods_and_scans,
                drops: &report.drops,
            })?,
            devices: serde_json::to_string(&DevicesDoc {
                by_kind: by_kind(d),
                devices: &d.devices,
                max_devices: d.max_devices,
                announcements_dropped: d.announcements_dropped,
                flows_dropped: d.flows_dropped,
            })?,
        })
    }
}

/// One service's running totals at a history point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// Flows.
    pub flows: u64,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// One history point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Point {
    /// Wall-clock time of the snapshot, Unix seconds.
    pub t: u64,
    /// Running totals per service.
    pub services: BTreeMap<String, Sample>,
}

/// The last hour of per-service totals, a point at least [`HISTORY_INTERVAL_SECS`] apart.
#[derive(Debug, Default)]
pub struct History {
    points: VecDeque<Point>,
}

#[derive(Serialize)]
struct HistoryDoc<'a> {
    interval_secs: u64,
    points: &'a VecDeque<Point>,
}

impl History {
    /// Adds a point for the report taken at `t` (Unix seconds), unless the last point is
    /// younger than the interval (less a second: snapshots are taken at the interval, and
    /// whole seconds round); the oldest goes past [`HISTORY_POINTS`].
    pub fn record(&mut self, t: u64, report: &Report) {
        self.record_services(
            t,
            report.services.iter().map(|s| {
                (
                    s.service.clone(),
                    Sample {
                        flows: s.tally.flows,
                        packets: s.tally.packets,
                        bytes: s.tally.bytes,
                    },
                )
            }),
        );
    }

    fn record_services(&mut self, t: u64, services: impl Iterator<Item = (String, Sample)>) {
        if self
            .points
            .back()
            .is_some_and(|p| t.saturating_add(1) < p.t.saturating_add(HISTORY_INTERVAL_SECS))
        {
            return;
        }
        let services = services.collect();
        if self.points.len() == HISTORY_POINTS {
            self.points.pop_front();
        }
        self.points.push_back(Point { t, services });
    }

    /// Points held.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether no point is held.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// `/api/history` as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&HistoryDoc {
            interval_secs: HISTORY_INTERVAL_SECS,
            points: &self.points,
        })
        .unwrap_or_else(|_| "{}".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn icloud(bytes: u64) -> impl Iterator<Item = (String, Sample)> {
        std::iter::once((
            "icloud".to_string(),
            Sample {
                flows: 1,
                packets: 2,
                bytes,
            },
        ))
    }

    #[test]
    fn points_are_an_interval_apart_and_an_hour_at_most() {
        let mut h = History::default();
        h.record_services(1000, icloud(1));
        h.record_services(1005, icloud(2));
        assert_eq!(h.len(), 1, "5 s after the last point: not kept");
        h.record_services(1009, icloud(3));
        assert_eq!(h.len(), 2, "9 s: a snapshot at the interval, rounded down");
        for i in 0..1000 {
            h.record_services(1009 + HISTORY_INTERVAL_SECS * (i + 1), icloud(i));
        }
        assert_eq!(h.len(), HISTORY_POINTS);
        let doc: serde_json::Value = serde_json::from_str(&h.to_json()).unwrap();
        assert_eq!(doc["interval_secs"], HISTORY_INTERVAL_SECS);
        let points = doc["points"].as_array().unwrap();
        assert_eq!(points.len(), HISTORY_POINTS);
        assert_eq!(
            points[HISTORY_POINTS - 1]["services"]["icloud"]["bytes"],
            999
        );
        assert_eq!(points[0]["t"], 1009 + HISTORY_INTERVAL_SECS * 641);
    }
}
