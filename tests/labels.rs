//! Accuracy against the hand-checked expectations in `../shared/pcaps/labels.tsv` (format in
//! MANIFEST.md): every `must` met, no `must-not` violated, each file's Apple service set as
//! listed. Rows the packets contradict are listed in KNOWN_EXCEPTIONS with the evidence.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use appletap::classify::Confidence;
use appletap::report::record::FlowRecord;
use common::*;

/// (file, proto, server_ip, server_port, service): rows the packets or a public source
/// contradict, and why. labels.tsv was written when these names had no narrower id ("map to
/// generic apple (no narrower id)", its notes say); signatures/apple.toml now gives them one,
/// each with its source (signatures/README.md, "Extra keys" and "Coverage").
const KNOWN_EXCEPTIONS: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "ndpi__iphone.pcap",
        "file",
        "-",
        "-",
        "app-store,apple,apple-account,bonjour,device-setup,icloud,maps,software-update",
        "cl4.apple.com and iphone-ld.apple.com, its only generic-apple flows, are location \
         services (maps): CoreLocation's TilesService pins both (CL-TILES)",
    ),
    (
        "ndpi__iphone.pcap",
        "tcp",
        "104.73.61.30",
        "443",
        "apple",
        "SNI cl4.apple.com: maps, pinned by CoreLocation's TilesService (CL-TILES)",
    ),
    (
        "ndpi__iphone.pcap",
        "tcp",
        "92.122.252.82",
        "443",
        "apple",
        "SNI iphone-ld.apple.com: maps, pinned by CoreLocation's TilesService (CL-TILES)",
    ),
    (
        "zeek__pppoe-over-qinq.pcap",
        "file",
        "-",
        "-",
        "apple",
        "xp.apple.com is listed under 'Software updates' in HT210060 (A1): software-update",
    ),
    (
        "zeek__pppoe-over-qinq.pcap",
        "tcp",
        "2.2.2.2",
        "443",
        "apple",
        "SNI xp.apple.com: software-update, HT210060 'Software updates' (A1)",
    ),
];

struct Row {
    file: String,
    proto: String,
    ip: String,
    port: String,
    expect: String,
    service: String,
    min: Confidence,
}

fn rows() -> Vec<Row> {
    let text = std::fs::read_to_string(shared_pcaps().join("labels.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            Row {
                file: c[0].into(),
                proto: c[1].into(),
                ip: c[2].into(),
                port: c[3].into(),
                expect: c[4].into(),
                service: c[5].into(),
                min: Confidence::parse(c[6]).expect("confidence"),
            }
        })
        .collect()
}

fn conf(r: &FlowRecord) -> Option<Confidence> {
    r.confidence.and_then(Confidence::parse)
}

fn at_least(r: &FlowRecord, min: Confidence) -> bool {
    conf(r).is_some_and(|c| c >= min)
}

fn endpoint(r: &FlowRecord, server: bool) -> (String, String) {
    if server {
        (
            r.server_ip.to_string(),
            r.server_port.map_or("-".into(), |p| p.to_string()),
        )
    } else {
        (
            r.client_ip.to_string(),
            r.client_port.map_or("-".into(), |p| p.to_string()),
        )
    }
}

fn check(row: &Row, recs: &[FlowRecord]) -> Result<(), String> {
    match row.expect.as_str() {
        "apple-services" => {
            let want: BTreeSet<String> = if row.service == "-" {
                BTreeSet::new()
            } else {
                row.service.split(',').map(String::from).collect()
            };
            let got: BTreeSet<String> = recs
                .iter()
                .filter(|r| r.apple && at_least(r, row.min))
                .map(|r| r.service.clone())
                .collect();
            if want == got {
                Ok(())
            } else {
                Err(format!(
                    "Apple services at >= {}: want {want:?}, got {got:?}",
                    row.min
                ))
            }
        }
        "must" => {
            let on_endpoint: Vec<&FlowRecord> = recs
                .iter()
                .filter(|r| {
                    r.proto == row.proto && endpoint(r, true) == (row.ip.clone(), row.port.clone())
                })
                .collect();
            if on_endpoint
                .iter()
                .any(|r| r.service == row.service && at_least(r, row.min))
            {
                Ok(())
            } else {
                let seen: Vec<String> = on_endpoint
                    .iter()
                    .map(|r| format!("{}/{:?}", r.service, r.confidence))
                    .collect();
                Err(format!(
                    "no {} flow to {}:{} is {} at >= {} (flows there: {seen:?})",
                    row.proto, row.ip, row.port, row.service, row.min
                ))
            }
        }
        "must-not" => {
            let bad: Vec<String> = recs
                .iter()
                .filter(|r| {
                    r.proto == row.proto
                        && (endpoint(r, true) == (row.ip.clone(), row.port.clone())
                            || endpoint(r, false) == (row.ip.clone(), row.port.clone()))
                })
                .filter(|r| {
                    let svc = if row.service == "*" {
                        r.apple
                    } else {
                        r.service == row.service
                    };
                    svc && at_least(r, row.min)
                })
                .map(|r| format!("{}/{:?}", r.service, r.confidence))
                .collect();
            if bad.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{} {}:{} must not be {} at >= {}, got {bad:?}",
                    row.proto, row.ip, row.port, row.service, row.min
                ))
            }
        }
        other => Err(format!("unknown expectation {other:?}")),
    }
}

#[test]
fn labels_tsv_accuracy() {
    let rows = rows();
    let mut by_file: BTreeMap<String, Vec<FlowRecord>> = BTreeMap::new();
    for r in &rows {
        by_file
            .entry(r.file.clone())
            .or_insert_with(|| run_engine(&shared_pcaps().join(&r.file)).records);
    }
    let (mut passed, mut excepted, mut failures) = (0, 0, Vec::new());
    for row in &rows {
        let result = check(row, &by_file[&row.file]);
        let exception = KNOWN_EXCEPTIONS.iter().find(|e| {
            (e.0, e.1, e.2, e.3, e.4)
                == (
                    row.file.as_str(),
                    row.proto.as_str(),
                    row.ip.as_str(),
                    row.port.as_str(),
                    row.service.as_str(),
                )
        });
        match (result, exception) {
            (Ok(()), None) => passed += 1,
            (Err(_), Some(_)) => excepted += 1,
            (Ok(()), Some(e)) => failures.push(format!(
                "{}: listed as a known exception but now passes; remove it ({})",
                row.file, e.5
            )),
            (Err(e), None) => failures.push(format!("{}: {e}", row.file)),
        }
    }
    println!(
        "labels.tsv: {} rows, {passed} passed, {excepted} known exceptions, {} failed",
        rows.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "label failures:\n{}",
        failures.join("\n")
    );
}

/// The Bonjour types a file row's note lists: (announced, browsed only).
fn noted_bonjour(note: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut announced = BTreeSet::new();
    let mut browsed = BTreeSet::new();
    for part in note.split(';').map(str::trim) {
        let list = |s: &str| -> BTreeSet<String> {
            s.split(',')
                .map(str::trim)
                .filter(|t| t.starts_with('_'))
                .map(String::from)
                .collect()
        };
        if let Some(rest) = part.strip_prefix("mdns browsed only:") {
            browsed = list(rest);
        } else if let Some(rest) = part.strip_prefix("mdns types:") {
            announced = list(rest);
        }
    }
    (announced, browsed)
}

#[test]
fn bonjour_types_announced_and_searched_match_the_notes() {
    use appletap::capture::file::CaptureFile;
    use appletap::pipeline::{Engine, EngineConfig};
    use appletap::signature::SignatureSet;
    use std::sync::Arc;

    let text = std::fs::read_to_string(shared_pcaps().join("labels.tsv")).unwrap();
    let mut checked = 0;
    for line in text.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        if c.len() < 8 || c[1] != "file" {
            continue;
        }
        let (want_announced, want_browsed) = noted_bonjour(c[7]);
        let sigs = Arc::new(SignatureSet::builtin().unwrap());
        let mut engine = Engine::new(sigs, EngineConfig::default());
        let mut cap = CaptureFile::open(&shared_pcaps().join(c[0])).unwrap();
        while let Some(Ok(p)) = cap.next_packet() {
            engine.process(&p);
        }
        engine.finish();
        let mut announced = BTreeSet::new();
        let mut browsed = BTreeSet::new();
        for (t, seen) in engine.names().bonjour.types() {
            if !seen.announcers.is_empty() {
                announced.insert(t);
            } else if !seen.searchers.is_empty() {
                browsed.insert(t);
            }
        }
        assert_eq!(announced, want_announced, "{}: announced types", c[0]);
        assert_eq!(browsed, want_browsed, "{}: browsed-only types", c[0]);
        checked += 1;
    }
    assert!(checked >= 30, "every file row was checked ({checked})");
}
