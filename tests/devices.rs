//! The device inventory on real captures: every expectation of `tests/devices.tsv` (checked
//! by hand in tshark) holds in `read` and `audit` JSON, flow records carry the client's MAC so
//! they join the inventory, and the embedded list of Apple's MAC prefixes is the IEEE
//! registry's.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::Value;

/// The `devices` section of `appletap CMD --format json FILE`.
fn devices(cmd: &str, file: &str) -> Vec<Value> {
    let path = shared_pcaps().join(file);
    let out = appletap(&[cmd, "--format", "json", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{file}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["devices"]["devices"].as_array().expect("devices").clone()
}

fn expectations() -> Vec<Vec<String>> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/devices.tsv")).unwrap();
    let mut rows = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').map(String::from).collect::<Vec<_>>());
    let header = rows.next().unwrap();
    assert_eq!(header.len(), 9, "{header:?}");
    rows.collect()
}

#[test]
fn devices_match_the_hand_checked_table_in_read_and_audit() {
    let rows = expectations();
    assert!(rows.len() >= 12);
    let files: BTreeSet<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    for file in files {
        let read = devices("read", file);
        assert_eq!(read, devices("audit", file), "{file}: read and audit agree");
        for r in rows.iter().filter(|r| r[0] == file) {
            let [
                _,
                key,
                kind,
                vendor,
                randomized,
                ip,
                host,
                vendor_class,
                model,
            ] = &r[..]
            else {
                panic!("{r:?}");
            };
            let what = format!("{file} {key}");
            let d = read
                .iter()
                .find(|d| d["key"] == key.as_str())
                .unwrap_or_else(|| panic!("{what}: no such device"));
            assert_eq!(d["kind"], kind.as_str(), "{what}: {d}");
            let want_vendor = (vendor == "apple").then_some("Apple, Inc.");
            assert_eq!(d["vendor"].as_str(), want_vendor, "{what}");
            assert_eq!(d["randomized_mac"], randomized == "yes", "{what}");
            assert_eq!(d["mac"], key.as_str(), "{what}");
            if ip != "-" {
                assert!(
                    d["ips"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|i| i == ip.as_str()),
                    "{what}: {}",
                    d["ips"]
                );
            }
            let opt = |s: &str| (s != "-").then(|| s.to_string());
            let dhcp = &d["dhcp"];
            assert_eq!(
                dhcp["host_name"].as_str().map(String::from),
                opt(host),
                "{what}"
            );
            assert_eq!(
                dhcp["vendor_class"].as_str().map(String::from),
                opt(vendor_class),
                "{what}"
            );
            let models: Vec<&str> = d["models"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            match opt(model) {
                Some(m) => assert_eq!(models, [m.as_str()], "{what}"),
                None => assert!(models.is_empty(), "{what}: {models:?}"),
            }
            // The kind comes with its evidence, the deciding rule first.
            if kind != "not-apple" {
                assert!(!d["evidence"].as_array().unwrap().is_empty(), "{what}");
            }
        }
    }
}

#[test]
fn the_iphone_used_and_the_records_join_the_inventory_by_mac() {
    let (report, records) =
        read_with_records("2", &[], &[shared_pcaps().join("ndpi__iphone.pcap")]);
    let report: Value = serde_json::from_str(&report).unwrap();
    let iphone = report["devices"]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["key"] == "c4:61:8b:35:82:a9")
        .unwrap()
        .clone();
    // tshark -r ndpi__iphone.pcap -Y 'tls.handshake.extensions_server_name contains "icloud"'
    // shows its iCloud connections; the flows to 17/8 are all from this MAC.
    let services: Vec<&str> = iphone["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    for s in ["icloud", "app-store", "maps", "software-update"] {
        assert!(services.contains(&s), "{services:?}");
    }
    // Every flow it opened (sent a packet in) is a record with its MAC, and their count is
    // the device's.
    let mine = records
        .iter()
        .map(|r| serde_json::from_str::<Value>(r).unwrap())
        .filter(|r| r["client_mac"] == "c4:61:8b:35:82:a9" && r["packets_to_server"] != 0)
        .count() as u64;
    assert_eq!(mine, iphone["flows"].as_u64().unwrap());
    assert!(mine >= 20, "{mine}");
}

#[test]
fn by_kind_counts_in_the_table() {
    let path = shared_pcaps().join("ndpi__iphone.pcap");
    let out = appletap(&["read", path.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\nDEVICES (mac 2, iphone 1)\n"), "{text}");
}

#[test]
fn the_embedded_apple_prefixes_are_the_ieee_registry_s() {
    let embedded: BTreeSet<String> = include_str!("../signatures/apple-oui.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(String::from)
        .collect();
    assert!(embedded.len() > 1000, "{}", embedded.len());
    let registry = std::path::Path::new("/usr/share/ieee-data/oui.csv");
    let Ok(text) = std::fs::read_to_string(registry) else {
        eprintln!(
            "{} missing (ieee-data, installed by .ci/setup): not compared",
            registry.display()
        );
        return;
    };
    // `MA-L,608B0E,"Apple, Inc.",...`: the same rows scripts/apple-oui.sh takes.
    let from_registry: BTreeSet<String> = text
        .lines()
        .filter(|l| l.starts_with("MA-L,") && l.contains(",\"Apple, Inc.\","))
        .filter_map(|l| l.split(',').nth(1))
        .map(str::to_ascii_uppercase)
        .collect();
    assert_eq!(embedded, from_registry);
}

#[test]
fn a_device_lists_its_lowest_addresses_whatever_the_threads() {
    // One MAC opens 40 connections from 40 addresses, highest first (fixtures/devices). Each
    // worker sees its own flows first, so "the first 16 seen" listed other addresses with
    // --threads 3 and 4 than with 1: the 16 kept are the lowest.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/devices/many-addresses.pcap"
    );
    let want: Vec<String> = (100..116).map(|h| format!("192.168.2.{h}")).collect();
    for t in ["1", "2", "3", "4"] {
        let out = appletap(&["read", "--threads", t, "--format", "json", path]);
        assert_eq!(out.status.code(), Some(0), "--threads {t}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let devices = v["devices"]["devices"].as_array().expect("devices");
        assert_eq!(devices.len(), 1, "--threads {t}: {devices:?}");
        let ips: Vec<&str> = devices[0]["ips"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(ips, want, "--threads {t}");
    }
}
