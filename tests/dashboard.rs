//! The dashboard and JSON API for real: a live appletap in a network namespace of its own,
//! fed by tcpreplay into a veth pair, serves `/api/*` that must hold what `appletap read`
//! gives for the same captures; Debian's `chromium` (installed by `.ci/setup`) loads the
//! dashboard headless, and the DOM after its scripts ran must show the services, the verdicts
//! and the devices. The screenshot is kept under target/ (`UPDATE_SCREENSHOT=1` also copies
//! it to docs/dashboard.png, which the README shows). Credentials, methods and headers are
//! checked with curl, and chromium loads the page through basic auth.
//!
//! Needs root (set APPLETAP_SKIP_LIVE=1 to skip it knowingly, as tests/live.rs).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::netns::{Netns, Running, run_ok, skip_live};
use common::*;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Netns {
    /// `curl` inside: (status, headers lower-cased, body).
    fn curl(&self, args: &[&str], url: &str) -> (u16, String, String) {
        let out = self
            .exec("curl")
            .args(["-s", "-i", "--max-time", "10"])
            .args(args)
            .arg(url)
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, head.to_ascii_lowercase(), body.to_string())
    }

    fn json(&self, url: &str) -> Option<Value> {
        let (status, _, body) = self.curl(&[], url);
        (status == 200).then(|| serde_json::from_str(&body).ok())?
    }
}

fn skip() -> bool {
    skip_live("live dashboard test")
}

/// `appletap live -i IFACE --listen ADDR` plus `extra` in `ns`, once it said where it serves.
fn start_live(ns: &Netns, iface: &str, addr: &str, extra: &[&str]) -> Running {
    let (live, said) = ns.live_listening(iface, addr, extra, 2);
    assert!(
        said.iter()
            .any(|l| l.contains(&format!("dashboard at http://{addr}/"))),
        "{said:?}"
    );
    live
}

/// Headless chromium inside `ns` on `url`, with `args` (`--dump-dom` or `--screenshot=`).
fn chromium(ns: &Netns, profile: &Path, args: &[&str], url: &str) -> String {
    run_ok(
        ns.exec("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=15000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .arg(url)
            .stderr(Stdio::null()),
    )
}

/// The `<tr ...>` opening tags inside the element that opens with `start` (up to its
/// `</table>` or `</div>`-free end), and each tag's value of `attr`.
fn attrs_in(dom: &str, start: &str, end: &str, attr: &str) -> Vec<String> {
    let from = dom
        .find(start)
        .unwrap_or_else(|| panic!("{start} in the DOM"));
    let part = &dom[from..];
    let part = &part[..part.find(end).unwrap_or(part.len())];
    let key = format!("{attr}=\"");
    part.match_indices(&key)
        .map(|(i, _)| {
            let v = &part[i + key.len()..];
            v[..v.find('"').unwrap()].to_string()
        })
        .collect()
}

/// The captures replayed: an iPhone and Macs announcing themselves, then a blocked APNs.
fn captures() -> [PathBuf; 2] {
    [
        shared_pcaps().join("ndpi__iphone.pcap"),
        root().join("fixtures/audit/dns-then-unanswered-5223.pcap"),
    ]
}

fn read_json(files: &[PathBuf]) -> Value {
    let mut args = vec!["read", "--format", "json"];
    args.extend(files.iter().map(|p| p.to_str().unwrap()));
    let out = appletap(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Per service: (flows, packets, bytes).
fn service_totals(report: &Value) -> BTreeMap<String, (u64, u64, u64)> {
    report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap().to_string(),
                (
                    s["flows"].as_u64().unwrap(),
                    s["packets"].as_u64().unwrap(),
                    s["bytes"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

fn verdicts(health: &Value) -> BTreeMap<String, (String, String)> {
    health["health"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["service"].as_str().unwrap().to_string(),
                (
                    h["verdict"].as_str().unwrap().to_string(),
                    h["reason"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

#[test]
fn live_dashboard_and_api_show_what_read_gives() {
    if skip() {
        return;
    }
    let files = captures();
    let want = read_json(&files);
    let want_services = service_totals(&want);
    let want_verdicts = verdicts(&want);
    assert_eq!(
        want_verdicts["apns"].0, "blocked",
        "the fixture blocks APNs"
    );
    let want_devices = want["devices"]["devices"].clone();
    let want_kinds: Vec<(String, String)> = want_devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["key"].as_str().unwrap().to_string(),
                d["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        want_kinds.contains(&("c4:61:8b:35:82:a9".into(), "iphone".into())),
        "{want_kinds:?}"
    );

    let ns = Netns::create(&format!("atd-d{}", std::process::id()));
    let base = "http://127.0.0.1:9480";
    let live = start_live(&ns, "vb", "127.0.0.1:9480", &[]);
    // The history samples every 10 s with no client: the first capture, two samples, then
    // the second, so the charts have rates to draw.
    let replay = |f: &Path| {
        run_ok(
            ns.exec("tcpreplay")
                .args(["-q", "-i", "va", "--pps=2000"])
                .arg(f),
        )
    };
    replay(&files[0]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while ns
        .json(&format!("{base}/api/history"))
        .map_or(0, |h| h["points"].as_array().unwrap().len())
        < 3
    {
        assert!(Instant::now() < deadline, "history never sampled");
        std::thread::sleep(Duration::from_millis(500));
    }
    replay(&files[1]);

    // Flows count once settled (5 s): wait for the API to hold what read gives.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (report, health, devices) = loop {
        let got = (
            ns.json(&format!("{base}/api/report")),
            ns.json(&format!("{base}/api/health")),
            ns.json(&format!("{base}/api/devices")),
        );
        if let (Some(r), Some(h), Some(d)) = &got
            && service_totals(r) == want_services
            && verdicts(h) == want_verdicts
            && d["devices"] == want_devices
        {
            break (r.clone(), h.clone(), d.clone());
        }
        if Instant::now() > deadline {
            let (r, h, d) = got;
            let r = r.expect("/api/report answers");
            assert_eq!(service_totals(&r), want_services, "/api/report services");
            assert_eq!(verdicts(&h.unwrap()), want_verdicts, "/api/health");
            assert_eq!(d.unwrap()["devices"], want_devices, "/api/devices");
            unreachable!();
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    // The documents keep the shapes `read` and `audit` print.
    for key in want.as_object().unwrap().keys() {
        assert!(report.get(key).is_some(), "/api/report lacks {key}");
    }
    for key in [
        "health",
        "unexpected",
        "floods_and_scans",
        "drops",
        "unclassified_apple_names",
    ] {
        assert_eq!(health[key], report[key], "/api/health {key}");
    }
    assert_eq!(report["inputs"][0]["file"], "live:vb");
    let by_kind = devices["by_kind"].as_object().unwrap();
    assert_eq!(by_kind.len(), 8, "every kind, zeros included: {by_kind:?}");
    for (kind, n) in by_kind {
        let counted = want_kinds.iter().filter(|(_, k)| k == kind).count() as u64;
        assert_eq!(n.as_u64(), Some(counted), "{kind}");
    }
    // The metrics count the same devices by kind.
    let (_, _, metrics) = ns.curl(&[], &format!("{base}/metrics"));
    for (kind, n) in by_kind {
        let line = format!("appletap_devices{{kind=\"{kind}\"}} {n}");
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    let history = ns.json(&format!("{base}/api/history")).unwrap();
    assert_eq!(history["interval_secs"], 10);
    let points = history["points"].as_array().unwrap();
    let ts: Vec<u64> = points.iter().map(|p| p["t"].as_u64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[1] >= w[0] + 9), "{ts:?}");
    assert!(
        points
            .iter()
            .any(|p| p["services"]["icloud"]["bytes"].as_u64() > Some(0)),
        "{history}"
    );

    // The page as a browser renders it, after its scripts ran.
    let tmp = tempfile::tempdir().unwrap();
    let dom = chromium(
        &ns,
        &tmp.path().join("p1"),
        &["--dump-dom"],
        &format!("{base}/"),
    );
    assert!(dom.contains("data-loaded=\"1\""), "the script ran:\n{dom}");
    let rows = attrs_in(&dom, "<table id=\"services\"", "</table>", "data-service");
    let want_rows: Vec<String> = want["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(rows, want_rows, "service rows");
    let cards = attrs_in(&dom, "<div id=\"health\"", "</section>", "data-service");
    let card_verdicts = attrs_in(&dom, "<div id=\"health\"", "</section>", "data-verdict");
    let shown: BTreeMap<String, String> = cards.into_iter().zip(card_verdicts).collect();
    assert_eq!(shown["apns"], "blocked", "{shown:?}");
    assert_eq!(shown.len(), want_verdicts.len());
    let apns_reason = &want_verdicts["apns"].1;
    assert!(
        dom.contains(apns_reason.as_str()),
        "apns reason: {apns_reason}"
    );
    assert!(dom.contains("Allow: tcp/5223"), "what to allow is shown");
    let device_rows = attrs_in(&dom, "<table id=\"devices\"", "</table>", "data-device");
    let device_kinds = attrs_in(&dom, "<table id=\"devices\"", "</table>", "data-kind");
    let shown_devices: Vec<(String, String)> = device_rows.into_iter().zip(device_kinds).collect();
    assert_eq!(shown_devices, want_kinds, "device rows");
    assert!(dom.contains("Lucas-iPhone"), "the iPhone's DHCP name");
    let capture = attrs_in(&dom, "<table id=\"capture\"", "</table>", "data-key");
    assert!(capture.contains(&"kernel drops".to_string()), "{capture:?}");
    let chart = attrs_in(&dom, "<svg id=\"chart-bytes\"", "</svg>", "data-service");
    assert!(chart.contains(&"icloud".to_string()), "charted: {chart:?}");

    let shot = root().join("target/dashboard.png");
    chromium(
        &ns,
        &tmp.path().join("p2"),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,2400",
        ],
        &format!("{base}/"),
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000);
    if std::env::var_os("UPDATE_SCREENSHOT").is_some() {
        std::fs::copy(&shot, root().join("docs/dashboard.png")).unwrap();
    }

    // Headers, methods.
    let (status, head, _) = ns.curl(&[], &format!("{base}/"));
    assert_eq!(status, 200);
    assert!(head.contains("content-security-policy: default-src 'none'; script-src 'self';"));
    assert!(head.contains("x-content-type-options: nosniff"));
    for path in ["/api/report", "/api/health", "/api/devices", "/api/history"] {
        let (status, head, _) = ns.curl(&[], &format!("{base}{path}"));
        assert_eq!(status, 200, "{path}");
        assert!(head.contains("content-type: application/json"), "{path}");
        assert!(head.contains("cache-control: no-store"), "{path}");
        let (status, head, _) = ns.curl(&["-X", "POST"], &format!("{base}{path}"));
        assert_eq!(status, 405, "POST {path}");
        assert!(head.contains("allow: get, head"), "{head}");
    }
    let (status, _, body) = ns.curl(&["-I"], &format!("{base}/api/report"));
    assert_eq!((status, body.as_str()), (200, ""), "HEAD");
    assert_eq!(ns.curl(&[], &format!("{base}/nothing")).0, 404);
    drop(live);
}

#[test]
fn credentials_are_asked_for_and_the_browser_sends_basic_auth() {
    if skip() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let token = tmp.path().join("token");
    let basic = tmp.path().join("basic");
    std::fs::write(&token, "t0ken-for-scrapers\n").unwrap();
    std::fs::write(&basic, "admin:s3cret pass\n").unwrap();
    let ns = Netns::create(&format!("atd-a{}", std::process::id()));
    let base = "http://127.0.0.1:9481";
    let _live = start_live(
        &ns,
        "vb",
        "127.0.0.1:9481",
        &[
            "--auth-token-file",
            token.to_str().unwrap(),
            "--auth-basic-file",
            basic.to_str().unwrap(),
        ],
    );
    for path in ["/", "/dashboard.js", "/api/report", "/metrics"] {
        let url = format!("{base}{path}");
        let (status, head, _) = ns.curl(&[], &url);
        assert_eq!(status, 401, "{path} without credentials");
        assert!(head.contains("www-authenticate: basic realm=\"appletap\""));
        assert_eq!(ns.curl(&["-u", "admin:wrong"], &url).0, 401, "{path}");
        assert_eq!(ns.curl(&["-H", "Authorization: Bearer t0ken"], &url).0, 401);
        assert_eq!(ns.curl(&["-u", "admin:s3cret pass"], &url).0, 200, "{path}");
        let bearer = ["-H", "Authorization: Bearer t0ken-for-scrapers"];
        assert_eq!(ns.curl(&bearer, &url).0, 200, "{path}");
    }
    // The browser takes the password from the URL once and re-sends it for the API.
    let dom = chromium(
        &ns,
        &tmp.path().join("p"),
        &["--dump-dom"],
        "http://admin:s3cret%20pass@127.0.0.1:9481/",
    );
    assert!(dom.contains("data-loaded=\"1\""), "{dom}");
    assert!(dom.contains("live:vb"), "{dom}");
}

#[test]
fn unusable_credentials_files_stop_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let no_colon = tmp.path().join("no-colon");
    std::fs::write(&no_colon, "admin\n").unwrap();
    let missing = tmp.path().join("missing");
    for (flag, file, says) in [
        ("--auth-token-file", &empty, "empty"),
        ("--auth-basic-file", &no_colon, "user:password"),
        ("--auth-token-file", &missing, "missing"),
    ] {
        let out = appletap(&[
            "live",
            "-i",
            "atd-no-such-iface",
            "--listen",
            "0",
            flag,
            file.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {file:?}: {err}");
        assert!(
            err.contains("--listen credentials") && err.contains(says),
            "{err}"
        );
    }
    // Credentials without --listen mean nothing: refused.
    let out = appletap(&[
        "live",
        "-i",
        "lo",
        "--auth-token-file",
        empty.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
}
