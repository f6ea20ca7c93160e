//! The metrics server against slow and hostile clients, for real: `appletap live` captures the
//! loopback interface (root's; it carries this test's own connections, so the packets it reads
//! show the capture going on) and serves metrics on a loopback port, while this test holds
//! thousands of idle connections, sends a request head byte by byte, and sends a huge head.
//! `/metrics` must still answer, the packets read must keep growing, and the process must stay
//! small. Every connection goes to 127.0.0.1 and the loops are bounded.
//!
//! Needs root to capture (set APPLETAP_SKIP_LIVE=1 to skip it knowingly, as tests/live.rs).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET /metrics`: status line and body.
fn get_metrics(addr: SocketAddr) -> std::io::Result<(String, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok((
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    ))
}

fn packets_read(body: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix("appletap_packets_read_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no packets read in {body}"))
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Answers within `limit`, with a 200.
fn scrape_within(addr: SocketAddr, limit: Duration) -> String {
    let start = Instant::now();
    let (status, body) = get_metrics(addr).expect("/metrics answers");
    assert!(status.contains(" 200 "), "{status}");
    assert!(start.elapsed() < limit, "took {:?}", start.elapsed());
    body
}

#[test]
fn metrics_answer_and_capture_goes_on_under_hostile_clients() {
    if std::env::var_os("APPLETAP_SKIP_LIVE").is_some() {
        eprintln!("APPLETAP_SKIP_LIVE is set: hostile-client test skipped");
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_appletap"))
        .args(["live", "-i", "lo", "--threads", "2", "--interval", "3600"])
        .args(["--format", "json", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("appletap live starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let child = Running(child);
    let said = lines.next().expect("a line on stderr").unwrap();
    let addr: SocketAddr = said
        .split("http://")
        .nth(1)
        .and_then(|r| r.strip_suffix("/metrics"))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("where are the metrics? {said}"));
    let first = packets_read(&scrape_within(addr, Duration::from_secs(5)));

    // Thousands of idle connections: a few hundred more than the server keeps.
    let mut idle = Vec::new();
    for _ in 0..2000 {
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            idle.push(s);
        }
    }
    assert!(idle.len() >= 1500, "only {} connections opened", idle.len());
    // A request head sent one byte every 100 ms, on a thread; the server cuts it off.
    let slow = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        let start = Instant::now();
        for b in head {
            if s.write_all(&[*b]).is_err() || start.elapsed() > Duration::from_secs(20) {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        start.elapsed()
    });
    // A head of 1 MiB: refused, not buffered.
    let mut huge = TcpStream::connect(addr).unwrap();
    huge.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    head.resize(1 << 20, b'a');
    let _ = huge.write_all(&head);
    let mut answer = String::new();
    let _ = huge.read_to_string(&mut answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "a 1 MiB head: {answer}"
    );

    // With all of that held, scrapes still answer and the capture goes on (it reads this
    // test's own loopback packets).
    let mut last = first;
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1200));
        let now = packets_read(&scrape_within(addr, Duration::from_secs(5)));
        assert!(now > last, "packets read stalled at {now}");
        last = now;
    }
    let rss = rss_kib(child.0.id());
    assert!(rss < 200 * 1024, "appletap grew to {rss} KiB");
    let cut_after = slow.join().unwrap();
    assert!(
        cut_after < Duration::from_secs(10),
        "a byte-by-byte head was kept for {cut_after:?}"
    );
    drop(idle);
    // Wrong method and path.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
}
