//! Writes a synthetic scan as a classic pcap to standard output: N TCP SYNs, each from a
//! distinct (source address, source port) to a distinct destination, so every packet is a new
//! flow. Used to show that appletap's memory stays bounded by `--max-flows`:
//!
//! ```sh
//! cargo run --release --example synth_scan -- 5000000 | appletap read --max-flows 100000 -
//! ```

use std::io::{self, BufWriter, Write};

fn main() -> io::Result<()> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000_000);
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    // Global header: microsecond pcap, little-endian, Ethernet.
    out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    out.write_all(&2u16.to_le_bytes())?;
    out.write_all(&4u16.to_le_bytes())?;
    out.write_all(&[0u8; 8])?;
    out.write_all(&65_535u32.to_le_bytes())?;
    out.write_all(&1u32.to_le_bytes())?;
    let mut frame = [0u8; 54];
    frame[12] = 0x08; // EtherType IPv4
    frame[14] = 0x45; // IPv4, IHL 5
    frame[17] = 40; // total length
    frame[22] = 64; // TTL
    frame[23] = 6; // TCP
    frame[26..30].copy_from_slice(&[10, 0, 0, 1]);
    frame[46] = 0x50; // data offset 5
    frame[47] = 0x02; // SYN
    for i in 0..n {
        // 1,000 packets per second of packet time.
        let (secs, micros) = (1_700_000_000 + i / 1000, (i % 1000) * 1000);
        out.write_all(&(secs as u32).to_le_bytes())?;
        out.write_all(&(micros as u32).to_le_bytes())?;
        out.write_all(&54u32.to_le_bytes())?;
        out.write_all(&54u32.to_le_bytes())?;
        let src_port = 1024 + (i % 60_000) as u16;
        let dst = (i / 60_000) as u32;
        frame[28] = 10 + (dst >> 16) as u8;
        frame[30..34].copy_from_slice(&[172, 16, (dst >> 8) as u8, dst as u8]);
        frame[34..36].copy_from_slice(&src_port.to_be_bytes());
        frame[36..38].copy_from_slice(&443u16.to_be_bytes());
        frame[38..42].copy_from_slice(&(i as u32).to_be_bytes());
        out.write_all(&frame)?;
    }
    out.flush()
}
