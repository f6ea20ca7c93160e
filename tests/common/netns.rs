//! A network namespace of a test's own with a veth pair (`va`, `vb`: IPv6 off, loopback up),
//! and children killed on drop: what the tests that replay traffic into `appletap live` share.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Runs `cmd`, which must succeed; its standard output.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace, deleted on drop.
pub struct Netns(pub String);

impl Netns {
    /// Namespace `name` (make it unique per test process: tests run at once) with the veth
    /// pair `va`/`vb` up at MTU 9000, IPv6 off (the kernel would add its own solicitations to
    /// what is captured) and loopback up (for `live --listen 127.0.0.1:PORT`).
    pub fn create(name: &str) -> Self {
        let ns = Self(name.to_string());
        let ip = |args: &[&str]| run_ok(Command::new("ip").args(args));
        ip(&["netns", "add", name]);
        for key in ["all", "default"] {
            run_ok(
                Command::new("ip")
                    .args(["netns", "exec", name, "sysctl", "-qw"])
                    .arg(format!("net.ipv6.conf.{key}.disable_ipv6=1")),
            );
        }
        ip(&["-n", name, "link", "set", "lo", "up"]);
        ip(&[
            "-n", name, "link", "add", "va", "type", "veth", "peer", "name", "vb",
        ]);
        for dev in ["va", "vb"] {
            ip(&["-n", name, "link", "set", dev, "mtu", "9000"]);
            ip(&["-n", name, "link", "set", dev, "up"]);
        }
        ns
    }

    /// `program` run inside.
    pub fn exec(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, program]);
        c
    }

    /// `appletap live -i IFACE --interval 3600 --format json --listen ADDR` plus `extra`,
    /// run inside: the child and the first `lines` lines it wrote on stderr (where it says
    /// where it serves). The rest of stderr is read and dropped on a thread, so that a full
    /// pipe never blocks the sensor.
    pub fn live_listening(
        &self,
        iface: &str,
        addr: &str,
        extra: &[&str],
        lines: usize,
    ) -> (Running, Vec<String>) {
        let mut child = self
            .exec(env!("CARGO_BIN_EXE_appletap"))
            .args([
                "live",
                "-i",
                iface,
                "--interval",
                "3600",
                "--format",
                "json",
            ])
            .args(["--listen", addr])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("appletap live starts");
        let mut stderr = BufReader::new(child.stderr.take().expect("piped")).lines();
        let said: Vec<String> = stderr.by_ref().take(lines).map_while(Result::ok).collect();
        std::thread::spawn(move || stderr.for_each(drop));
        (Running(child), said)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A child killed on drop.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Whether the live test `what` (network namespaces, raw sockets) is to be skipped: only when
/// `APPLETAP_SKIP_LIVE` is set, which is said on stderr. Otherwise it must run as root, as CI
/// does.
pub fn skip_live(what: &str) -> bool {
    if std::env::var_os("APPLETAP_SKIP_LIVE").is_some() {
        eprintln!("APPLETAP_SKIP_LIVE is set: {what} skipped");
        return true;
    }
    assert!(
        is_root(),
        "{what} needs root (network namespaces, raw sockets); CI runs as root. \
         Set APPLETAP_SKIP_LIVE=1 to skip it knowingly."
    );
    false
}
