//! Writes synthetic traffic as a classic pcap to standard output, one packet per millisecond
//! of packet time, to measure what appletap's bounded state costs (`scripts/scan-memory.sh`):
//!
//! - `scan` (the default): N TCP SYNs, each from a distinct (source address, source port) to a
//!   distinct destination, so every packet is a new flow (the flow table, `--max-flows`);
//! - `dns`: N DNS responses on one flow, each binding a name of its own to an address of its
//!   own (the DNS bindings store);
//! - `mdns`: N mDNS announcements on one flow, each advertising an AirPlay endpoint at an
//!   address of its own (the mDNS endpoints store).
//!
//! ```sh
//! cargo run --release --example synth_scan -- 5000000 | appletap read --max-flows 100000 -
//! cargo run --release --example synth_scan -- 1000000 dns | appletap read -
//! ```

use std::io::{self, BufWriter, Write};

/// What to generate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Scan,
    Dns,
    Mdns,
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000_000);
    let mode = match args.next().as_deref() {
        None | Some("scan") => Mode::Scan,
        Some("dns") => Mode::Dns,
        Some("mdns") => Mode::Mdns,
        Some(other) => {
            eprintln!("synth_scan: unknown mode {other:?} (scan, dns or mdns)");
            std::process::exit(2);
        }
    };
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    // Global header: microsecond pcap, little-endian, Ethernet.
    out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    out.write_all(&2u16.to_le_bytes())?;
    out.write_all(&4u16.to_le_bytes())?;
    out.write_all(&[0u8; 8])?;
    out.write_all(&65_535u32.to_le_bytes())?;
    out.write_all(&1u32.to_le_bytes())?;
    let mut frame = Vec::with_capacity(256);
    for i in 0..n {
        frame.clear();
        match mode {
            Mode::Scan => scan_frame(&mut frame, i),
            Mode::Dns => {
                let msg = dns_answer(i);
                udp_frame(
                    &mut frame,
                    ([192, 0, 2, 53], 53),
                    ([10, 0, 0, 1], 40_000),
                    &msg,
                );
            }
            Mode::Mdns => {
                let msg = mdns_announcement(i);
                udp_frame(
                    &mut frame,
                    ([10, 0, 0, 2], 5353),
                    ([224, 0, 0, 251], 5353),
                    &msg,
                );
            }
        }
        // 1,000 packets per second of packet time.
        let (secs, micros) = (1_700_000_000 + i / 1000, (i % 1000) * 1000);
        out.write_all(&(secs as u32).to_le_bytes())?;
        out.write_all(&(micros as u32).to_le_bytes())?;
        out.write_all(&(frame.len() as u32).to_le_bytes())?;
        out.write_all(&(frame.len() as u32).to_le_bytes())?;
        out.write_all(&frame)?;
    }
    out.flush()
}

/// A TCP SYN of a flow of its own.
fn scan_frame(frame: &mut Vec<u8>, i: u64) {
    frame.resize(54, 0);
    frame[12] = 0x08; // EtherType IPv4
    frame[14] = 0x45; // IPv4, IHL 5
    frame[17] = 40; // total length
    frame[22] = 64; // TTL
    frame[23] = 6; // TCP
    frame[26..30].copy_from_slice(&[10, 0, 0, 1]);
    frame[46] = 0x50; // data offset 5
    frame[47] = 0x02; // SYN
    let src_port = 1024 + (i % 60_000) as u16;
    let dst = (i / 60_000) as u32;
    frame[28] = 10 + (dst >> 16) as u8;
    frame[30..34].copy_from_slice(&[172, 16, (dst >> 8) as u8, dst as u8]);
    frame[34..36].copy_from_slice(&src_port.to_be_bytes());
    frame[36..38].copy_from_slice(&443u16.to_be_bytes());
    frame[38..42].copy_from_slice(&(i as u32).to_be_bytes());
}

/// An Ethernet/IPv4/UDP frame (checksums left 0: appletap does not check them).
fn udp_frame(frame: &mut Vec<u8>, src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) {
    frame.extend_from_slice(&[0; 12]);
    frame.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    frame.extend_from_slice(&[0x45, 0]);
    frame.extend_from_slice(&total.to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0]);
    frame.extend_from_slice(&src.0);
    frame.extend_from_slice(&dst.0);
    frame.extend_from_slice(&src.1.to_be_bytes());
    frame.extend_from_slice(&dst.1.to_be_bytes());
    frame.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(payload);
}

/// The `i`-th address of 11.0.0.0/8 and up.
fn address(i: u64) -> [u8; 4] {
    (0x0b00_0000u32.wrapping_add(i as u32)).to_be_bytes()
}

/// A DNS message: header, then `body`.
fn dns_message(flags: u16, questions: u16, answers: u16, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(12 + body.len());
    for v in [0x1234, flags, questions, answers, 0, 0] {
        m.extend_from_slice(&v.to_be_bytes());
    }
    m.extend_from_slice(body);
    m
}

/// An uncompressed name from dotted text.
fn name(dotted: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(dotted.len() + 2);
    for label in dotted.split('.') {
        v.push(label.len() as u8);
        v.extend_from_slice(label.as_bytes());
    }
    v.push(0);
    v
}

/// A resource record with a TTL of an hour.
fn rr(owner: &str, rtype: u16, class: u16, rdata: &[u8]) -> Vec<u8> {
    let mut v = name(owner);
    v.extend_from_slice(&rtype.to_be_bytes());
    v.extend_from_slice(&class.to_be_bytes());
    v.extend_from_slice(&3600u32.to_be_bytes());
    v.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    v.extend_from_slice(rdata);
    v
}

/// A DNS response binding `hI.example.com` to address `i`.
fn dns_answer(i: u64) -> Vec<u8> {
    let q = format!("h{i}.example.com");
    let mut body = name(&q);
    body.extend_from_slice(&[0, 1, 0, 1]); // A, IN
    body.extend(rr(&q, 1, 1, &address(i)));
    dns_message(0x8180, 1, 1, &body)
}

/// An mDNS announcement of AirPlay endpoint `devI` (port 7000) at address `i`.
fn mdns_announcement(i: u64) -> Vec<u8> {
    let instance = format!("dev{i}._airplay._tcp.local");
    let host = format!("dev{i}.local");
    let mut srv = vec![0, 0, 0, 0, 0x1b, 0x58]; // priority, weight, port 7000
    srv.extend(name(&host));
    let mut body = rr("_airplay._tcp.local", 12, 1, &name(&instance));
    body.extend(rr(&instance, 33, 0x8001, &srv));
    body.extend(rr(&host, 1, 0x8001, &address(i)));
    dns_message(0x8400, 0, 3, &body)
}
