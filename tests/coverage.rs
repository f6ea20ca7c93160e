//! Signature coverage (issue 17): every host and Bonjour type that `../shared/reference/
//! apple-services.md` and the seeds name has a signature of its own (not only an Apple
//! catch-all), and no shared capture's report lists an "unclassified Apple name" except the
//! ones below, each with why no public source gives it a narrower service.

mod common;

use std::collections::BTreeSet;

use appletap::report::record::FlowRecord;
use appletap::signature::SignatureSet;
use common::*;

/// Names the shared captures may still list as unclassified Apple names, and why no public
/// source narrows them. Empty: every one found so far has a narrower service.
const EXPECTED_UNCLASSIFIED: &[(&str, &str)] = &[];

/// Catch-all patterns: a name that only they match has no signature of its own.
const CATCH_ALLS: &[&str] = &[
    "*.apple.com",
    "*.icloud.com",
    "*.cdn-apple.com",
    "*.aaplimg.com",
];

#[test]
fn no_shared_capture_lists_an_unclassified_apple_name_a_source_narrows() {
    let expected: BTreeSet<&str> = EXPECTED_UNCLASSIFIED.iter().map(|(n, _)| *n).collect();
    let mut found = BTreeSet::new();
    for cap in shared_captures() {
        let out = appletap(&[
            "read",
            "--no-progress",
            "--format",
            "json",
            cap.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", cap.display());
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let names = report["unclassified_apple_names"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no unclassified_apple_names", cap.display()));
        for n in names {
            let name = n["name"].as_str().unwrap().to_string();
            found.insert(format!(
                "{}: {name}",
                cap.file_name().unwrap().to_string_lossy()
            ));
            assert!(
                expected.contains(name.as_str()),
                "{} lists {name} as an unclassified Apple name: give it a narrower service \
                 in signatures/apple.toml with its source, or list it in EXPECTED_UNCLASSIFIED \
                 with why no public source has one",
                cap.display()
            );
        }
    }
    // Each name kept on purpose must still occur (otherwise the list is stale).
    for name in &expected {
        assert!(
            found.iter().any(|f| f.ends_with(&format!(": {name}"))),
            "{name} no longer occurs; drop it from EXPECTED_UNCLASSIFIED"
        );
    }
}

fn records_named<'a>(recs: &'a [FlowRecord], sni: &str) -> Vec<&'a FlowRecord> {
    recs.iter()
        .filter(|r| r.names.sni.as_deref() == Some(sni))
        .collect()
}

#[test]
fn the_names_once_unclassified_have_their_narrower_service() {
    let iphone = run_engine(&shared_pcaps().join("ndpi__iphone.pcap")).records;
    let pppoe = run_engine(&shared_pcaps().join("zeek__pppoe-over-qinq.pcap")).records;
    for (recs, sni, service) in [
        (&iphone, "cl4.apple.com", "maps"),
        (&iphone, "iphone-ld.apple.com", "maps"),
        (&pppoe, "xp.apple.com", "software-update"),
    ] {
        let flows = records_named(recs, sni);
        assert_eq!(flows.len(), 1, "{sni}");
        assert_eq!(flows[0].service, service, "{sni}");
        assert_eq!(flows[0].confidence, Some("certain"), "{sni}");
        // The deciding rule is the name's own pattern, with its source cited.
        let rule = &flows[0].evidence[0];
        assert_eq!(rule.rule, sni, "{sni}");
        assert!(!rule.source.is_empty(), "{sni}");
    }
}

/// Host names in backticks in the reference, and host-like words in the seeds.
fn reference_hosts() -> BTreeSet<String> {
    let shared = shared_pcaps().join("..");
    let mut text = std::fs::read_to_string(shared.join("reference/apple-services.md")).unwrap();
    let mut hosts = BTreeSet::new();
    for part in text.split('`').skip(1).step_by(2) {
        let looks_like_host = part.contains('.')
            && !part.starts_with('_')
            && !part.contains('/')
            && !part.contains(' ')
            && !part.ends_with(".md")
            && part.chars().any(|c| c.is_ascii_alphabetic());
        let host = part.trim_start_matches("*.").to_ascii_lowercase();
        // Not hosts: a subtype label, source files (`lpi_apple_push.cc`).
        let other = host.starts_with('_') || host.ends_with('.') || host.ends_with(".cc");
        if looks_like_host && !other {
            // `pr-pod{1..15}-smp-device.apple.com` stands for numbered names.
            hosts.insert(host.replace("{1..15}", "7"));
        }
    }
    text.clear();
    for e in std::fs::read_dir(shared.join("seeds")).unwrap() {
        text.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
        text.push('\n');
    }
    for word in text.split(|c: char| c.is_whitespace() || c == '|' || c == ',') {
        let w = word.trim_matches(|c: char| c == '(' || c == ')' || c == ';' || c == ':');
        let tld = [".com", ".net", ".cn"].iter().any(|t| w.ends_with(t));
        if tld && !w.contains('/') && !w.contains('@') && w.split('.').count() >= 2 {
            hosts.insert(w.trim_start_matches("*.").to_ascii_lowercase());
        }
    }
    hosts
}

#[test]
fn every_reference_and_seed_host_has_a_signature_of_its_own() {
    let sigs = SignatureSet::builtin().unwrap();
    let hosts = reference_hosts();
    assert!(hosts.len() > 150, "read {} hosts", hosts.len());
    let mut missing = Vec::new();
    for h in &hosts {
        // `N-courier.push.apple.com` style placeholders stand for a numbered name.
        let name = h.replace("n-courier", "7-courier").replace('#', "7");
        match sigs.host_rule(&name) {
            Some(r)
                if !CATCH_ALLS.contains(&r.pattern.as_str())
                    || r.pattern.as_str() == format!("*.{name}") => {}
            Some(r) => missing.push(format!("{h} (only {})", r.pattern.as_str())),
            None => missing.push(format!("{h} (no rule)")),
        }
    }
    assert!(
        missing.is_empty(),
        "hosts without a signature of their own: {missing:#?}"
    );
}

#[test]
fn every_reference_bonjour_type_has_a_signature() {
    let sigs = SignatureSet::builtin().unwrap();
    let text =
        std::fs::read_to_string(shared_pcaps().join("../reference/apple-services.md")).unwrap();
    let types: BTreeSet<&str> = text
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|p| p.starts_with('_') && (p.ends_with("._tcp") || p.ends_with("._udp")))
        .collect();
    assert!(types.len() >= 20, "read {} types", types.len());
    let missing: Vec<&&str> = types
        .iter()
        .filter(|t| sigs.bonjour_rule(t).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "Bonjour types without a signature: {missing:?}"
    );
}
