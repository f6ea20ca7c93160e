//! Running as a service: `live --config` (keys, errors at file:line:col, command line over
//! file), the sd_notify messages on a real unix datagram socket, the systemd unit checked by
//! `systemd-analyze verify`, shell completions and man pages generated from the CLI, and the
//! README's table of config keys against the CLI definition. Captures on `lo` need root (CI
//! runs as root); APPLETAP_SKIP_LIVE=1 skips them knowingly.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use clap::CommandFactory;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_appletap")
}

fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run appletap")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write config");
    p
}

/// Runs `live --config` on `text` and returns the error message, asserting exit code 2.
fn config_error(text: &str, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write_config(dir.path(), "appletap.toml", text);
    let mut args = vec!["live", "--config", p.to_str().expect("utf-8")];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(2), "{text:?}: {}", stderr(&out));
    stderr(&out).replace(p.to_str().expect("utf-8"), "appletap.toml")
}

fn live_allowed() -> bool {
    if std::env::var_os("APPLETAP_SKIP_LIVE").is_some() {
        eprintln!("APPLETAP_SKIP_LIVE is set: capture on lo skipped");
        return false;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    assert!(
        root,
        "capturing on lo needs root; CI runs as root. Set APPLETAP_SKIP_LIVE=1 to skip knowingly."
    );
    true
}

#[test]
fn config_errors_name_file_line_and_fix() {
    let e = config_error("interface = \"lo\"\nintervl = 5\n", &[]);
    assert!(
        e.starts_with("appletap: appletap.toml:2:1: unknown key \"intervl\" (expected one of: "),
        "{e}"
    );
    assert!(e.contains("interval") && e.contains("max-flows"), "{e}");

    let e = config_error("interface = \"lo\"\ninterval = \"ten\"\n", &[]);
    assert!(
        e.contains("appletap.toml:2:12: interval: expected an integer, found string"),
        "{e}"
    );
    let e = config_error("interface = 5\n", &[]);
    assert!(
        e.contains("appletap.toml:1:13: interface: expected a string, found integer"),
        "{e}"
    );
    let e = config_error("interface = \"lo\"\noverwrite = \"yes\"\n", &[]);
    assert!(
        e.contains("appletap.toml:2:13: overwrite: expected true or false"),
        "{e}"
    );
    let e = config_error("interface = \"lo\"\ninterval = 0\n", &[]);
    assert!(
        e.contains("appletap.toml:2:12: interval: invalid value '0' for '--interval <SECONDS>': 0 is not in 1..=86400"),
        "{e}"
    );
    let e = config_error("interface = \"lo\"\n\nformat = \"xml\"\n", &[]);
    assert!(
        e.contains("appletap.toml:3:10: format: invalid value 'xml'")
            && e.contains("[possible values: table, json]"),
        "{e}"
    );
    let e = config_error("interface = \"lo\n", &[]);
    assert!(e.contains("appletap.toml:1:16: "), "{e}");
    let e = config_error("[live]\ninterface = \"lo\"\n", &[]);
    assert!(e.contains("unknown key \"live\""), "{e}");
    let e = config_error("interval = 5\n", &[]);
    assert!(
        e.contains("appletap.toml: no interface: add `interface = \"eth0\"`"),
        "{e}"
    );
    let e = config_error("interface = \"lo\"\noverwrite = true\n", &[]);
    assert!(
        e.contains("required arguments were not provided: --flows <PATH>"),
        "{e}"
    );
    // The config file is read through the bounded reader.
    let out = run(&["live", "--config", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("1 MiB limit"), "{}", stderr(&out));
    let out = run(&["live", "--config", "/nonexistent/appletap.toml"]);
    assert!(
        stderr(&out).contains("cannot read /nonexistent/appletap.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_interface_from_config_names_the_file() {
    if !live_allowed() {
        return;
    }
    let e = config_error("interval = 3\ninterface = \"atsvc-none0\"\n", &[]);
    assert!(
        e.contains("interface \"atsvc-none0\" set at appletap.toml:2:13: ")
            && e.contains("no capture interface named \"atsvc-none0\""),
        "{e}"
    );
    // Given on the command line, the interface is the command line's.
    let e = config_error("interface = \"lo\"\n", &["-i", "atsvc-none1"]);
    assert!(
        !e.contains("set at") && e.contains("\"atsvc-none1\""),
        "{e}"
    );
}

#[test]
fn command_line_wins_over_config() {
    if !live_allowed() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write_config(
        dir.path(),
        "a.toml",
        "interface = \"atsvc-none2\"\nformat = \"json\"\ninterval = 1\nduration = 600\n",
    );
    let cfg = p.to_str().expect("utf-8");
    let out = run(&["live", "--config", cfg, "-i", "lo", "--duration", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // json and a report a second from the file; lo and 2 seconds from the command line.
    let reports: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON report per line"))
        .collect();
    assert!(reports.len() >= 2, "{} reports", reports.len());
    assert_eq!(reports[0]["inputs"][0]["file"], "live:lo");
}

#[test]
fn shipped_default_config_is_valid() {
    if !live_allowed() {
        return;
    }
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/appletap.toml");
    let out = run(&[
        "live",
        "--config",
        cfg,
        "-i",
        "lo",
        "--duration",
        "1",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(first.lines().next().expect("a report")).expect("json");
    assert_eq!(v["inputs"][0]["file"], "live:lo");
}

/// Runs a capture on lo with NOTIFY_SOCKET and a watchdog, returns the datagrams received.
fn notify_messages(extra: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    // Long enough for a slow start (a debug build on a loaded CI machine took over 500 ms to
    // say READY): STOPPING=1 ends the wait, so a run that works never waits this long.
    sock.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    // Read while appletap runs, as systemd does: a datagram socket's queue holds only a few
    // messages, and a sender finding it full waits.
    let reader = std::thread::spawn(move || {
        let mut msgs = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = sock.recv(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            let last = m == "STOPPING=1\n";
            msgs.push(m);
            if last {
                break;
            }
        }
        msgs
    });
    let mut args = vec!["live", "-i", "lo", "--duration", "2", "--format", "json"];
    args.extend_from_slice(extra);
    let out = Command::new(bin())
        .args(&args)
        .env("NOTIFY_SOCKET", &sock_path)
        // 200 ms: a ping at least every 100 ms is due.
        .env("WATCHDOG_USEC", "200000")
        .env_remove("WATCHDOG_PID")
        .output()
        .expect("run appletap");
    assert!(out.status.success(), "{}", stderr(&out));
    reader.join().expect("reader")
}

fn check_notify(msgs: &[String]) {
    assert!(
        msgs.first()
            .is_some_and(|m| m.starts_with("READY=1\n") && m.contains("STATUS=capturing on lo")),
        "{msgs:?}"
    );
    assert_eq!(
        msgs.last().map(String::as_str),
        Some("STOPPING=1\n"),
        "{msgs:?}"
    );
    let pings = msgs.iter().filter(|m| *m == "WATCHDOG=1\n").count();
    // Two seconds at a ping every 100 ms: about 20; fewer than 10 would let a 200 ms
    // watchdog fire.
    assert!(pings >= 10, "{pings} watchdog pings: {msgs:?}");
}

#[test]
fn sd_notify_ready_watchdog_stopping() {
    if !live_allowed() {
        return;
    }
    check_notify(&notify_messages(&[]));
    check_notify(&notify_messages(&[
        "--capture",
        "af-packet",
        "--readers",
        "2",
    ]));
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed (package systemd): unit check skipped");
        return;
    }
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/systemd/appletap.service"
    ))
    .expect("unit");
    for needed in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "User=appletap",
        "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN\n",
        "CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN\n",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ExecStart=/usr/bin/appletap live --config /etc/appletap/appletap.toml\n",
        "ExecReload=/bin/kill -HUP $MAINPID\n",
    ] {
        assert!(unit.contains(needed), "the unit lacks {needed:?}");
    }
    // verify wants the binary of ExecStart to exist: the one just built stands in for
    // /usr/bin/appletap (tests/package.rs verifies the installed unit as it is).
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("appletap.service");
    std::fs::write(&path, unit.replace("/usr/bin/appletap", bin())).expect("write unit");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}",
        stderr(&out)
    );
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=30"])
        .arg(&path)
        .output()
        .expect("systemd-analyze");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exposure above 3.0: {report}");
    // The README quotes this rating.
    let overall = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .expect("an overall rating");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    assert!(
        readme.contains(overall.trim_end()),
        "README does not quote {overall:?}"
    );
}

#[test]
fn completions_come_from_the_cli() {
    let bash = run(&["completions", "bash"]);
    assert!(bash.status.success());
    let bash = String::from_utf8_lossy(&bash.stdout).into_owned();
    for word in [
        "live",
        "read",
        "audit",
        "interfaces",
        "--config",
        "--max-flows",
    ] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    // bash loads it and completes `appletap li` to `live`.
    let dir = tempfile::tempdir().expect("tempdir");
    let script = write_config(dir.path(), "appletap.bash", &bash);
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(appletap li); COMP_CWORD=1; COMP_LINE='appletap li'; \
             COMP_POINT=11; _appletap appletap li appletap; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .expect("bash");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "live",
        "{}",
        stderr(&out)
    );

    let zsh = run(&["completions", "zsh"]);
    assert!(String::from_utf8_lossy(&zsh.stdout).starts_with("#compdef appletap"));
    let fish = run(&["completions", "fish"]);
    assert!(String::from_utf8_lossy(&fish.stdout).contains("complete -c appletap"));
    for shell in ["zsh", "fish"] {
        let out = if shell == "zsh" { &zsh } else { &fish };
        let f = write_config(dir.path(), shell, &String::from_utf8_lossy(&out.stdout));
        match Command::new(shell).arg("-n").arg(&f).output() {
            Ok(o) => assert!(o.status.success(), "{shell} -n: {}", stderr(&o)),
            Err(_) => eprintln!("{shell} is not installed: its syntax check skipped"),
        }
    }
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn man_pages_document_every_live_option() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mandir = dir.path().join("man");
    let out = run(&["man", mandir.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    for page in [
        "appletap.1",
        "appletap-live.1",
        "appletap-read.1",
        "appletap-man.1",
    ] {
        assert!(mandir.join(page).is_file(), "{page} missing");
    }
    // man renders it, and every long option of `live --help` is on the page.
    let out = Command::new("man")
        .env("MANWIDTH", "200")
        .args(["-P", "cat", "-l"])
        .arg(mandir.join("appletap-live.1"))
        .output()
        .expect("man");
    let text = String::from_utf8_lossy(&out.stdout);
    let help = run(&["live", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    let mut n = 0;
    for word in help.split_whitespace() {
        if let Some(opt) = word.strip_prefix("--") {
            let opt = opt.trim_end_matches([',', '=', '>', '.']);
            let opt = opt.split(['=', ' ', '<']).next().unwrap_or(opt);
            if !opt.is_empty() && opt.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
                n += 1;
                assert!(text.contains(&format!("--{opt}")), "man page lacks --{opt}");
            }
        }
    }
    assert!(n > 10, "{n} options found in --help");
}

#[test]
fn readme_lists_every_config_key() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let section = readme
        .split("\n### Config file keys\n")
        .nth(1)
        .expect("README has a \"### Config file keys\" section");
    let table: Vec<&str> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .filter_map(|l| l.split('`').nth(1))
        .collect();
    let cli = appletap::cli::Cli::command();
    let live = cli.find_subcommand("live").expect("live");
    let keys: Vec<&str> = appletap::app::config::keys(live)
        .iter()
        .filter_map(|a| a.get_long())
        .collect();
    assert_eq!(
        table, keys,
        "README's config key table differs from `live`'s options"
    );
}
