//! The Debian package (README "Debian package"): built with `scripts/make-deb.sh` (cargo-deb),
//! installed with apt-get on this machine, used, and removed again. As root only, with
//! cargo-deb installed (`.ci/setup` installs it); otherwise skipped with a message.
//! APPLETAP_SKIP_PACKAGE=1 skips it knowingly.

use std::path::Path;
use std::process::{Command, Output};

fn sh(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn deb_builds_installs_runs_and_removes() {
    if std::env::var_os("APPLETAP_SKIP_PACKAGE").is_some() {
        eprintln!("APPLETAP_SKIP_PACKAGE is set: package test skipped");
        return;
    }
    if !root() {
        eprintln!("not root: the package test installs with apt-get, skipped");
        return;
    }
    if Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_err()
        || !Command::new("cargo")
            .args(["deb", "--version"])
            .output()
            .is_ok_and(|o| o.status.success())
    {
        eprintln!("cargo-deb is not installed (.ci/setup installs it): package test skipped");
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    sh(Command::new(repo.join("scripts/make-deb.sh"))
        .env("APPLETAP_DEB_PROFILE", "deb-test")
        .env("APPLETAP_DEB_BIN", env!("CARGO_BIN_EXE_appletap")));
    let debs: Vec<_> = std::fs::read_dir(repo.join("target/debian"))
        .expect("target/debian")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("appletap_") && n.ends_with(".deb"))
        })
        .collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    let deb = &debs[0];
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        deb.to_string_lossy()
            .contains(&format!("appletap_{version}-1_")),
        "{deb:?}"
    );
    sh(Command::new("apt-get")
        .args(["install", "-y", "-q"])
        .arg(deb)
        .env("DEBIAN_FRONTEND", "noninteractive"));
    let result = std::panic::catch_unwind(|| check_installed(repo));
    sh(Command::new("apt-get")
        .args(["remove", "-y", "-q", "appletap"])
        .env("DEBIAN_FRONTEND", "noninteractive"));
    assert!(!Path::new("/usr/bin/appletap").exists(), "removed");
    // `remove` keeps the conffile; `purge` takes it and the user.
    assert!(Path::new("/etc/appletap/appletap.toml").exists());
    sh(Command::new("apt-get")
        .args(["purge", "-y", "-q", "appletap"])
        .env("DEBIAN_FRONTEND", "noninteractive"));
    assert!(!Path::new("/etc/appletap/appletap.toml").exists(), "purged");
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

fn check_installed(repo: &Path) {
    let out = sh(Command::new("/usr/bin/appletap")
        .args(["read", "--format", "json"])
        .arg(repo.join("fixtures/sample/iphone.pcap")));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    let services: Vec<&str> = v["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter_map(|s| s["service"].as_str())
        .collect();
    assert!(services.contains(&"icloud"), "{services:?}");
    let man = sh(Command::new("man").args(["-w", "appletap", "appletap-live"]));
    assert_eq!(
        String::from_utf8_lossy(&man.stdout),
        "/usr/share/man/man1/appletap.1.gz\n/usr/share/man/man1/appletap-live.1.gz\n"
    );
    for f in [
        "/usr/share/bash-completion/completions/appletap",
        "/usr/share/zsh/vendor-completions/_appletap",
        "/usr/share/fish/vendor_completions.d/appletap.fish",
        "/usr/lib/systemd/system/appletap.service",
    ] {
        assert!(Path::new(f).is_file(), "{f} not installed");
    }
    let unit = "/usr/lib/systemd/system/appletap.service";
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        let out = sh(Command::new("systemd-analyze").args(["verify", unit]));
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("systemd-analyze is not installed: installed unit not verified");
    }
    // The service's own setting as systemd would start it, without systemd: the `appletap`
    // user with the unit's two ambient capabilities and no others, the installed config (on
    // lo rather than its eth0, with a port of its own).
    let id = sh(Command::new("id").args(["-u", "appletap"]));
    assert!(!String::from_utf8_lossy(&id.stdout).trim().is_empty());
    let out = sh(Command::new("setpriv").args([
        "--reuid=appletap",
        "--regid=appletap",
        "--clear-groups",
        "--inh-caps=-all,+net_raw,+net_admin",
        "--ambient-caps=-all,+net_raw,+net_admin",
        "--bounding-set=-all,+net_raw,+net_admin",
        "--no-new-privs",
        "/usr/bin/appletap",
        "live",
        "--config",
        "/etc/appletap/appletap.toml",
        "-i",
        "lo",
        "--duration",
        "1",
        "--listen",
        "127.0.0.1:0",
    ]));
    let first = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(first.lines().next().expect("a report"))
        .expect("json (the config's format)");
    assert_eq!(v["inputs"][0]["file"], "live:lo");
}
