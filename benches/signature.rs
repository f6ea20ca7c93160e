//! Signature lookups against the full shipped set (`SignatureSet::builtin()`, built from
//! `signatures/apple.toml`): host names (the reversed-label trie), server ports (a flat
//! 2 x 65,536 index) and address blocks (longest prefix first, scanned in order).
//!
//! Each input is checked before timing to hit the rule the bench name says (or to miss), so a
//! change to the signature file cannot silently turn a hit bench into a miss bench.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Duration;

use appletap::signature::{SignatureSet, Transport};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// (bench name, host name, the pattern it must match or None for a miss).
const HOSTS: &[(&str, &str, Option<&str>)] = &[
    // An exact pattern.
    (
        "hit_exact",
        "gateway.icloud.com",
        Some("gateway.icloud.com"),
    ),
    // The same, as a packet may carry it: mixed case and a trailing dot.
    (
        "hit_exact_mixed_case",
        "Gateway.iCloud.COM.",
        Some("gateway.icloud.com"),
    ),
    // `*.suffix`: a name only the catch-all subtree rule covers.
    (
        "hit_suffix",
        "p26-keyvalueservice.icloud.com",
        Some("*.icloud.com"),
    ),
    // `*.suffix` several labels below the pattern.
    (
        "hit_suffix_deep",
        "a.b.c.d.e.cdn-apple.com",
        Some("*.cdn-apple.com"),
    ),
    // A wildcard inside the first label (`#` = a run of digits).
    (
        "hit_first_label_glob",
        "41-courier.push.apple.com",
        Some("#-courier.push.apple.com"),
    ),
    // Not Apple at all.
    ("miss", "www.example.org", None),
    // A look-alike: `hicloud.com` must not match `icloud.com` (whole labels only).
    ("miss_lookalike", "hicloud.com", None),
];

/// (bench name, transport, port, hit?).
const PORTS: &[(&str, Transport, u16, bool)] = &[
    ("hit_tcp_5223", Transport::Tcp, 5223, true),
    ("hit_udp_5353", Transport::Udp, 5353, true),
    ("miss_tcp_40000", Transport::Tcp, 40000, false),
];

/// (bench name, server address, the block it must fall in or None).
const ADDRESSES: &[(&str, &str, Option<&str>)] = &[
    // In 17.0.0.0/8 only (no narrower block): every longer prefix is tried first.
    ("hit_v4_17_8", "17.248.176.75", Some("17.0.0.0/8")),
    // In 17.57.144.0/22 (APNs), the narrowest match.
    ("hit_v4_apns_22", "17.57.144.116", Some("17.57.144.0/22")),
    ("hit_v6", "2620:149:a44::1", Some("2620:149:a44::/48")),
    ("miss_v4", "93.184.216.34", None),
    ("miss_v6", "2001:db8::1", None),
];

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(50)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(1));
    g
}

fn benches(c: &mut Criterion) {
    let sigs = SignatureSet::builtin().expect("built-in signatures");

    let mut g = group(c, "hosts");
    for &(bench, name, want) in HOSTS {
        let got = sigs.host_rule(name).map(|r| r.pattern.as_str());
        assert_eq!(got, want, "{name}");
        assert_eq!(sigs.host_match(name).is_some(), want.is_some(), "{name}");
        g.bench_function(bench, |b| {
            b.iter(|| sigs.host_rule(black_box(name)).map(|r| r.service));
        });
    }
    g.finish();

    let mut g = group(c, "ports");
    for &(bench, t, port, hit) in PORTS {
        assert_eq!(sigs.port_rule(t, port).is_some(), hit, "{bench}");
        g.bench_function(bench, |b| {
            b.iter(|| {
                sigs.port_rule(black_box(t), black_box(port))
                    .map(|(i, _)| i)
            });
        });
    }
    g.finish();

    // What classification does per flow: the longest block that fits the server port
    // (`classify::label`), and whether the address is an Apple block at all.
    let mut g = group(c, "addresses");
    for &(bench, ip, want) in ADDRESSES {
        let ip: IpAddr = ip.parse().expect("address");
        let fits = |ip: IpAddr| {
            sigs.address_rules(ip)
                .find(|a| a.fits_port(Some(Transport::Tcp), 443))
                .map(|a| a.prefix)
        };
        assert_eq!(fits(ip).map(|p| p.to_string()).as_deref(), want, "{ip}");
        g.bench_function(format!("{bench}/longest_fitting"), |b| {
            b.iter(|| fits(black_box(ip)));
        });
        g.bench_function(format!("{bench}/is_apple"), |b| {
            b.iter(|| sigs.is_apple_address(black_box(ip)));
        });
    }
    g.finish();
}

criterion_group!(signature_benches, benches);
criterion_main!(signature_benches);
