//! The metrics for real: `promtool` (Debian's `prometheus` package, installed by `.ci/setup`)
//! checks the exposition, the shipped scrape config and alert rules, and runs the rules' unit
//! tests; a real Prometheus server scrapes a live appletap fed by tcpreplay into a veth pair in
//! a network namespace of its own, and its query API must give, for every per-service series,
//! what `appletap read --metrics-file` gives for the same capture. Prometheus, appletap and
//! the replayed traffic all stay inside that namespace (its own loopback).
//!
//! The live part needs root (set APPLETAP_SKIP_LIVE=1 to skip it knowingly, as tests/live.rs).

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::netns::{Netns, Running, run_ok, skip_live};
use common::*;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `promtool check metrics` on an exposition.
fn promtool_check_metrics(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (apt-get install prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Samples of an exposition in the text format: (name{labels}, value), labels sorted.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        out.insert(canonical(series), value.parse().unwrap());
    }
    out
}

/// `name{b="2",a="1"}` as `name{a="1",b="2"}`.
fn canonical(series: &str) -> String {
    let Some((name, rest)) = series.split_once('{') else {
        return series.to_string();
    };
    let mut labels: Vec<&str> = rest
        .trim_end_matches('}')
        .split(',')
        .filter(|l| !l.is_empty())
        .collect();
    labels.sort_unstable();
    format!("{name}{{{}}}", labels.join(","))
}

fn metrics_file_of(capture: &Path, dir: &Path) -> (Value, String) {
    let file = dir.join("appletap.prom");
    let out = appletap(&[
        "read",
        "--format",
        "json",
        "--metrics-file",
        file.to_str().unwrap(),
        capture.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        serde_json::from_slice(&out.stdout).unwrap(),
        std::fs::read_to_string(&file).unwrap(),
    )
}

#[test]
fn rules_config_and_their_unit_tests_pass_promtool() {
    let dir = root().join("deploy/prometheus");
    run_ok(
        Command::new("promtool")
            .args(["check", "config"])
            .arg(dir.join("prometheus.yml")),
    );
    run_ok(
        Command::new("promtool")
            .args(["check", "rules"])
            .arg(dir.join("rules.yml")),
    );
    let tested = run_ok(
        Command::new("promtool")
            .args(["test", "rules"])
            .arg(dir.join("tests.yml")),
    );
    assert!(tested.contains("SUCCESS"), "{tested}");
}

#[test]
fn metrics_file_passes_promtool_and_matches_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let capture = root().join("fixtures/sample/iphone.pcap");
    let (report, text) = metrics_file_of(&capture, dir.path());
    promtool_check_metrics(&text);
    let s = samples(&text);
    assert_eq!(
        s["appletap_packets_read_total"],
        report["totals"]["packets_read"].as_f64().unwrap()
    );
    // Per service, the series add up to the report's lines.
    for line in report["services"].as_array().unwrap() {
        let service = line["service"].as_str().unwrap();
        let sum = |family: &str| -> f64 {
            s.iter()
                .filter(|(k, _)| {
                    k.starts_with(&format!("{family}{{"))
                        && k.contains(&format!("service=\"{service}\""))
                })
                .map(|(_, v)| v)
                .sum()
        };
        for (family, field) in [
            ("appletap_service_flows_total", "flows"),
            ("appletap_service_packets_total", "packets"),
            ("appletap_service_bytes_total", "bytes"),
        ] {
            assert_eq!(
                sum(family),
                line[field].as_f64().unwrap(),
                "{service} {field}"
            );
        }
        let certain = s
            .get(&format!(
                "appletap_service_flows_total{{apple=\"{}\",confidence=\"certain\",service=\"{service}\"}}",
                line["apple"]
            ))
            .copied()
            .unwrap_or(0.0);
        assert_eq!(
            certain,
            line["certain"].as_f64().unwrap(),
            "{service} certain"
        );
    }
    for h in report["health"].as_array().unwrap() {
        let service = h["service"].as_str().unwrap();
        let key = format!(
            "appletap_connection_outcomes_total{{outcome=\"answered\",service=\"{service}\"}}"
        );
        assert_eq!(s[&key], h["established"].as_f64().unwrap(), "{key}");
        let level = s[&format!("appletap_service_health{{service=\"{service}\"}}")];
        assert_eq!(level, 0.0, "{service}: the sample's services are all ok");
    }
    // Devices by kind, every kind (zeros included), as the report's inventory counts them.
    let kinds: Vec<(&String, &f64)> = s
        .iter()
        .filter(|(k, _)| k.starts_with("appletap_devices{"))
        .collect();
    assert_eq!(kinds.len(), 8, "{kinds:?}");
    for (series, n) in kinds {
        let kind = series
            .trim_start_matches("appletap_devices{kind=\"")
            .trim_end_matches("\"}");
        let counted = report["devices"]["devices"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"] == kind)
            .count();
        assert_eq!(*n, counted as f64, "{series}");
    }
    assert!(
        s["appletap_devices{kind=\"iphone\"}"] >= 1.0,
        "the sample is an iPhone"
    );
    // No label carries an address, a port or a name.
    for k in s.keys() {
        assert!(!k.contains("192.168.") && !k.contains(".com"), "{k}");
    }
}

#[test]
fn metrics_file_never_replaces_an_input() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("c.pcap");
    std::fs::copy(root().join("fixtures/sample/iphone.pcap"), &capture).unwrap();
    let before = std::fs::read(&capture).unwrap();
    let c = capture.to_str().unwrap();
    let out = appletap(&["read", "--metrics-file", c, c]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to write metrics"));
    assert_eq!(std::fs::read(&capture).unwrap(), before);
}

#[test]
fn dashboard_parses_and_queries_only_metrics_appletap_serves() {
    let text = std::fs::read_to_string(root().join("deploy/grafana/appletap.json")).unwrap();
    let dash: Value = serde_json::from_str(&text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_, exposition) = metrics_file_of(&root().join("fixtures/sample/iphone.pcap"), dir.path());
    let names: Vec<String> = exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    let panels = dash["panels"].as_array().unwrap();
    assert!(panels.len() >= 6);
    let mut queried = 0;
    for p in panels {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("appletap_") {
                    assert!(names.iter().any(|n| n == word), "{word} in {expr}");
                    queried += 1;
                }
            }
        }
    }
    assert!(queried >= 8);
}

/// Every series of an instant query: canonical name{labels} -> value.
fn query(ns: &Netns, expr: &str) -> Option<BTreeMap<String, f64>> {
    let out = ns
        .exec("promtool")
        .args([
            "query",
            "instant",
            "-o",
            "json",
            "http://127.0.0.1:9090",
            expr,
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    let mut m = BTreeMap::new();
    for r in v.as_array()? {
        let metric = r["metric"].as_object()?;
        let name = metric.get("__name__").and_then(Value::as_str).unwrap_or("");
        let labels: Vec<String> = metric
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "__name__" | "job" | "instance"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let key = canonical(&format!("{name}{{{}}}", labels.join(",")));
        m.insert(key, r["value"][1].as_str()?.parse().ok()?);
    }
    Some(m)
}

#[test]
fn prometheus_scraping_live_appletap_holds_what_read_gives() {
    if skip_live("live Prometheus test") {
        return;
    }
    let capture = shared_pcaps().join("ndpi__iphone.pcap");
    let dir = tempfile::tempdir().unwrap();
    let (_, file) = metrics_file_of(&capture, dir.path());
    let want: BTreeMap<String, f64> = samples(&file)
        .into_iter()
        .filter(|(k, _)| {
            k.starts_with("appletap_service_") || k.starts_with("appletap_connection_")
        })
        .collect();
    let want_packets = samples(&file)["appletap_packets_read_total"];
    assert!(want.len() > 30, "the capture gives many series: {want:?}");

    let ns = Netns::create(&format!("ats-prom{}", std::process::id()));
    let (live, said) = ns.live_listening("vb", "127.0.0.1:9477", &["--threads", "2"], 1);
    assert!(
        said[0].contains("metrics at http://127.0.0.1:9477/metrics"),
        "{said:?}"
    );

    std::fs::write(
        dir.path().join("prometheus.yml"),
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: appletap\n    static_configs:\n      - targets: ['127.0.0.1:9477']\n",
    )
    .unwrap();
    let _prometheus = start_prometheus(&ns, dir.path());
    // Scraped at least once, before any traffic: every counter starts from nothing.
    wait_for(&ns, "up{job=\"appletap\"}", 1.0);
    let before = query(&ns, "appletap_packets_read_total").unwrap();
    assert_eq!(before.values().sum::<f64>(), 0.0, "{before:?}");

    run_ok(
        ns.exec("tcpreplay")
            .args(["-q", "-i", "va", "--pps=2000"])
            .arg(&capture),
    );

    // The live flows are counted once settled (5 s), and then hold what read gives, while
    // they are still open.
    let deadline = Instant::now() + Duration::from_secs(60);
    let got = loop {
        let got = query(
            &ns,
            "{__name__=~\"appletap_service_.*|appletap_connection_.*\"}",
        )
        .unwrap_or_default();
        let packets = query(&ns, "appletap_packets_read_total").unwrap_or_default();
        if got == want && packets.values().sum::<f64>() == want_packets {
            break got;
        }
        if Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        got, want,
        "per-service series in Prometheus differ from read"
    );
    let drops = query(&ns, "appletap_drops_total").unwrap();
    assert!(drops.values().all(|v| *v == 0.0), "{drops:?}");
    let held = query(&ns, "appletap_metrics_held_total").unwrap();
    assert_eq!(
        held.values().sum::<f64>(),
        0.0,
        "no counter had to hold: {held:?}"
    );
    // Open flows are counted without ending: the live process still holds them.
    let active = query(&ns, "appletap_flows_active").unwrap();
    assert!(active.values().sum::<f64>() > 0.0, "{active:?}");

    // What Prometheus scrapes passes promtool, in both formats' text form.
    let text = run_ok(
        ns.exec("curl")
            .args(["-sf", "http://127.0.0.1:9477/metrics"]),
    );
    promtool_check_metrics(&text);
    let open = run_ok(ns.exec("curl").args([
        "-sf",
        "-H",
        "Accept: application/openmetrics-text; version=1.0.0",
        "http://127.0.0.1:9477/metrics",
    ]));
    assert!(open.ends_with("# EOF\n"), "{open}");
    drop(live);
}

#[test]
fn multi_sensor_example_passes_promtool() {
    let dir = root().join("deploy/prometheus/multi-sensor");
    let checked = run_ok(
        Command::new("promtool")
            .args(["check", "config"])
            .arg(dir.join("prometheus.yml")),
    );
    assert!(checked.contains("2 rule files found"), "{checked}");
    run_ok(
        Command::new("promtool")
            .args(["check", "rules"])
            .arg(dir.join("rules.yml")),
    );
}

/// Per service, the sum over every label set of `family` in an exposition.
fn by_service(samples: &BTreeMap<String, f64>, family: &str, into: &mut BTreeMap<String, f64>) {
    for (k, v) in samples {
        let Some(labels) = k.strip_prefix(&format!("{family}{{")) else {
            continue;
        };
        let service = labels
            .split(',')
            .find_map(|l| l.strip_prefix("service="))
            .unwrap()
            .trim_end_matches('}');
        *into.entry(service.to_string()).or_default() += v;
    }
}

/// Two `appletap live` sensors (libpcap, and AF_PACKET with two readers), each on a veth pair
/// of its own fed a different capture, scraped by one Prometheus with the shipped multi-sensor
/// config and recording rules: the per-service sums across sensors equal what the two
/// `appletap read` runs give together.
#[test]
fn prometheus_sums_services_across_two_live_sensors() {
    if skip_live("multi-sensor Prometheus test") {
        return;
    }
    let captures = [
        shared_pcaps().join("ndpi__iphone.pcap"),
        shared_pcaps().join("ndpi__android.pcap"),
    ];
    let dir = tempfile::tempdir().unwrap();
    // What the two sensors must add up to, per recorded series.
    let mut want = BTreeMap::new();
    for c in &captures {
        let (_, file) = metrics_file_of(c, dir.path());
        let s = samples(&file);
        for what in ["flows", "packets", "bytes"] {
            let mut per = BTreeMap::new();
            by_service(&s, &format!("appletap_service_{what}_total"), &mut per);
            for (service, v) in per {
                *want
                    .entry(format!(
                        "service:appletap_service_{what}:sum{{service={service}}}"
                    ))
                    .or_insert(0.0) += v;
            }
        }
    }
    assert!(
        want.keys().any(|k| k.contains("icloud"))
            && want.keys().any(|k| k.contains("device-setup")),
        "{want:?}"
    );

    let ns = Netns::create(&format!("ats-prom2{}", std::process::id()));
    // A second veth pair for the second sensor.
    let ip = |args: &[&str]| run_ok(Command::new("ip").args(["-n", &ns.0]).args(args));
    ip(&["link", "add", "vc", "type", "veth", "peer", "name", "vd"]);
    for dev in ["vc", "vd"] {
        ip(&["link", "set", dev, "mtu", "9000"]);
        ip(&["link", "set", dev, "up"]);
    }
    let sensor = |iface: &str, port: u16, backend: &[&str]| {
        let (child, said) = ns.live_listening(iface, &format!("127.0.0.1:{port}"), backend, 1);
        assert!(
            said.iter()
                .any(|l| l.contains(&format!("127.0.0.1:{port}/metrics"))),
            "{said:?}"
        );
        child
    };
    let _first = sensor("vb", 9477, &["--threads", "2"]);
    let _second = sensor("vd", 9478, &["--capture", "af-packet", "--readers", "2"]);

    // The shipped config as it is, but for a scrape and an evaluation every second and the
    // rule files' places.
    let example = root().join("deploy/prometheus/multi-sensor");
    let config = std::fs::read_to_string(example.join("prometheus.yml"))
        .unwrap()
        .replace("15s", "1s")
        .replace("scrape_timeout: 5s", "scrape_timeout: 1s")
        .replace(
            "  - ../rules.yml",
            &format!(
                "  - {}",
                root().join("deploy/prometheus/rules.yml").display()
            ),
        )
        .replace(
            "  - rules.yml",
            &format!("  - {}", example.join("rules.yml").display()),
        );
    assert!(config.contains("127.0.0.1:9477") && config.contains("127.0.0.1:9478"));
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    run_ok(
        Command::new("promtool")
            .args(["check", "config"])
            .arg(dir.path().join("prometheus.yml")),
    );
    let _prometheus = start_prometheus(&ns, dir.path());
    wait_for(&ns, "job:appletap_sensors_up:sum", 2.0);

    for (capture, veth) in captures.iter().zip(["va", "vc"]) {
        run_ok(
            ns.exec("tcpreplay")
                .args(["-q", "-i", veth, "--pps=2000"])
                .arg(capture),
        );
    }
    // Counted once settled (5 s), then summed by the recording rules.
    let deadline = Instant::now() + Duration::from_secs(60);
    let got = loop {
        let got = query(&ns, "{__name__=~\"service:appletap_service_.*:sum\"}").unwrap_or_default();
        if got == want || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        got, want,
        "per-service sums across the two sensors differ from the two reads"
    );
    // Each sensor's own series are there too, told apart by the `sensor` label.
    let per_sensor = query(&ns, "sum by (sensor) (appletap_packets_read_total)").unwrap();
    assert_eq!(per_sensor.len(), 2, "{per_sensor:?}");
}

/// A real Prometheus in `ns` on 127.0.0.1:9090 with `dir`'s prometheus.yml, storing in `dir`.
fn start_prometheus(ns: &Netns, dir: &Path) -> Running {
    Running(
        ns.exec("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .args(["--web.listen-address=127.0.0.1:9090", "--log.level=warn"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts (apt-get install prometheus)"),
    )
}

/// Waits (up to a minute) until a series of `promql` has the value `want`: Prometheus has
/// scraped what the test needs.
fn wait_for(ns: &Netns, promql: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = query(ns, promql).unwrap_or_default();
        if got.values().any(|v| *v == want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never gave {promql} = {want}: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
