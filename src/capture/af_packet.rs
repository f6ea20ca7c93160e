//! Live capture through Linux AF_PACKET sockets (`live --capture af-packet`): a memory-mapped
//! TPACKET_V3 ring per socket, several sockets joined in one PACKET_FANOUT group so that each
//! reads its share of the flows, kernel drop counters from PACKET_STATISTICS, and a BPF
//! filter compiled by libpcap and attached to each socket.
//!
//! The sockets come from the `netring` crate (MIT or Apache-2.0): of the crates that open
//! AF_PACKET sockets it is the maintained one that maps a TPACKET_V3 ring (the kernel fills
//! whole blocks of packets, read in place, one `poll` per block rather than one `recvfrom` per
//! packet as `pnet_datalink` does), joins fanout groups and reads PACKET_STATISTICS;
//! `af_packet` is GPL-3.0 and `afpacket` reads one packet per call. netring 0.29 is the last
//! release that builds with Rust 1.95.
//!
//! Fanout hashes by flow (PACKET_FANOUT_HASH: the kernel's symmetric hash of addresses and
//! ports), so both directions of a flow reach the same socket. Without
//! PACKET_FANOUT_FLAG_DEFRAG: that flag makes the kernel reassemble IP fragments before
//! handing them over, so the packets counted would no longer be the packets on the wire (nor
//! what `tcpdump` or a capture file shows). Without it, the kernel hashes an IP fragment by
//! its addresses and protocol only (IPv6 with a flow label: addresses and label; the flow
//! dissector reads no ports of a fragment, not even
//! of the first, unless asked with FLOW_DISSECTOR_F_PARSE_1ST_FRAG, which the fanout hash does
//! not), so every fragment of one datagram reaches the same socket and its reader's
//! dispatcher reassembles it (see [`crate::decode::defrag`]).

use std::io;
use std::time::Duration;

use super::live::CaptureDrops;
use super::{CaptureError, LinkType, Packet, Timestamp};

/// Bytes in one ring block: the kernel hands a block over when it is full, or after
/// [`BLOCK_TIMEOUT_MS`].
const BLOCK_SIZE: usize = 1 << 20;
/// Fewest blocks in one socket's ring, whatever share of `--buffer-size` it gets.
const MIN_BLOCKS: usize = 4;
/// A block not yet full is handed over after this long, so quiet traffic is not held back.
const BLOCK_TIMEOUT_MS: u32 = 20;

/// One AF_PACKET socket with its ring: one reader's share of an interface's traffic.
pub struct AfPacketCapture {
    cap: netring::Capture,
    link: LinkType,
    iface: String,
    /// The interface's missed and FIFO errors when the capture opened, if the system tells them.
    ifdrop_start: Option<u64>,
    /// Bytes of the packet being handed over, when its VLAN tag had to be put back.
    scratch: Vec<u8>,
}

/// What [`AfPacketCapture::read`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many packets were handed over (a block of them).
    Packets(usize),
    /// Nothing arrived within the timeout.
    Idle,
}

impl AfPacketCapture {
    /// Opens a socket on `iface`, promiscuous, keeping `snaplen` bytes per packet, with an
    /// optional BPF filter, with a ring of `ring_mib` MiB (at least 4); with `fanout`, it
    /// joins that fanout group (hashing by flow).
    ///
    /// # Errors
    /// A [`CaptureError`] that says what to do (permissions, interface names, filter syntax,
    /// an unsupported kind of interface).
    pub fn open(
        iface: &str,
        filter: Option<&str>,
        snaplen: i32,
        ring_mib: u32,
        fanout: Option<u16>,
    ) -> Result<Self, CaptureError> {
        let link = link_type(iface)?;
        let program = filter_program(link, filter, snaplen)?;
        let mut builder = netring::Capture::builder()
            .interface(iface)
            .block_size(BLOCK_SIZE)
            .block_count((ring_mib as usize).max(MIN_BLOCKS))
            .block_timeout_ms(BLOCK_TIMEOUT_MS)
            .fill_rxhash(false)
            .promiscuous(true)
            .bpf_filter(program);
        if let Some(group) = fanout {
            builder = builder.fanout(netring::FanoutMode::Hash, group);
        }
        let cap = builder.build().map_err(|e| open_error(iface, e))?;
        Ok(Self {
            cap,
            link,
            iface: iface.to_string(),
            ifdrop_start: interface_missed(iface),
            scratch: Vec::new(),
        })
    }

    /// Waits up to `timeout` for a block of packets and hands each to `each`.
    ///
    /// # Errors
    /// The socket failed; nothing more will come from it.
    pub fn read(
        &mut self,
        timeout: Duration,
        mut each: impl FnMut(&Packet<'_>),
    ) -> Result<ReadOutcome, CaptureError> {
        let batch = self
            .cap
            .next_batch_blocking(timeout)
            .map_err(|e| CaptureError::LiveOpen {
                iface: self.iface.clone(),
                detail: format!("reading the AF_PACKET ring failed: {}", error_text(&e)),
            })?;
        let Some(batch) = batch else {
            return Ok(ReadOutcome::Idle);
        };
        let mut n = 0;
        for p in batch.iter() {
            n += 1;
            let t = p.timestamp();
            let ts = Timestamp::from_parts(u64::from(t.sec), u64::from(t.nsec));
            let orig_len = u32::try_from(p.original_len()).unwrap_or(u32::MAX);
            let status = p.status();
            let data = if status.vlan_valid && self.link == LinkType::ETHERNET {
                // The kernel took the 802.1Q tag out of the frame (VLAN offload); put it back
                // where it was, as libpcap does, so the decoder sees the frame as sent.
                let tpid = if status.vlan_tpid_valid {
                    p.vlan_tpid()
                } else {
                    0x8100
                };
                with_vlan_tag(&mut self.scratch, p.data(), tpid, p.vlan_tci());
                &self.scratch[..]
            } else {
                p.data()
            };
            let extra = data.len().saturating_sub(p.data().len());
            each(&Packet {
                ts,
                link: self.link,
                data,
                orig_len: orig_len.saturating_add(u32::try_from(extra).unwrap_or(0)),
                block: None,
            });
        }
        Ok(ReadOutcome::Packets(n))
    }

    /// Packets the kernel received for this socket and dropped because the ring was full
    /// (PACKET_STATISTICS, summed since the socket opened), and the interface's own drops
    /// since then.
    pub fn drops(&mut self) -> CaptureDrops {
        let s = self.cap.cumulative_stats().unwrap_or_default();
        let interface = match (self.ifdrop_start, interface_missed(&self.iface)) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => 0,
        };
        CaptureDrops {
            received: u64::from(s.packets),
            kernel: u64::from(s.drops),
            interface,
        }
    }
}

/// `frame` with an 802.1Q (or `tpid`) tag carrying `tci` after its two MAC addresses.
fn with_vlan_tag(out: &mut Vec<u8>, frame: &[u8], tpid: u16, tci: u16) {
    out.clear();
    let at = frame.len().min(12);
    out.extend_from_slice(&frame[..at]);
    out.extend_from_slice(&tpid.to_be_bytes());
    out.extend_from_slice(&tci.to_be_bytes());
    out.extend_from_slice(&frame[at..]);
}

/// The link type of an interface, from its ARPHRD type in sysfs: AF_PACKET hands over frames
/// as the device has them.
fn link_type(iface: &str) -> Result<LinkType, CaptureError> {
    let path = format!("/sys/class/net/{iface}/type");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Err(CaptureError::NoSuchInterface {
            iface: iface.to_string(),
            available: super::live::interface_names(),
        });
    };
    match text.trim().parse::<u32>() {
        // ARPHRD_ETHER; ARPHRD_LOOPBACK (Linux gives loopback frames an Ethernet header).
        Ok(1 | 772) => Ok(LinkType::ETHERNET),
        // ARPHRD_NONE (tun and WireGuard), ARPHRD_RAWIP: IP packets with no link header.
        Ok(65534 | 519) => Ok(LinkType::RAW),
        other => Err(CaptureError::LiveOpen {
            iface: iface.to_string(),
            detail: format!(
                "--capture af-packet reads Ethernet, loopback and raw-IP interfaces; this one has ARPHRD type {}: use the default libpcap capture",
                other.map_or_else(|_| text.trim().to_string(), |t| t.to_string())
            ),
        }),
    }
}

/// The classic BPF program attached to each socket: `filter` compiled by libpcap for `link`
/// (an empty filter accepts everything), its accepting returns capped at `snaplen` bytes, which
/// is how an AF_PACKET socket cuts packets short (a TPACKET_V3 ring keeps whole packets).
fn filter_program(
    link: LinkType,
    filter: Option<&str>,
    snaplen: i32,
) -> Result<netring::BpfFilter, CaptureError> {
    let text = filter.unwrap_or("");
    let bad = |detail: String| CaptureError::BadFilter {
        filter: text.to_string(),
        detail,
    };
    let linktype = pcap::Linktype(if link == LinkType::RAW { 12 } else { 1 });
    let dead = pcap::Capture::dead(linktype).map_err(|e| bad(e.to_string()))?;
    let program = dead.compile(text, true).map_err(|e| bad(e.to_string()))?;
    let snaplen = u32::try_from(snaplen).unwrap_or(u32::MAX);
    let mut insns = Vec::new();
    for i in program.get_instructions() {
        // pcap shows an instruction only as "code jt jf k".
        let text = i.to_string();
        let mut f = text.split_whitespace();
        let mut next = || f.next().and_then(|v| v.parse::<u32>().ok());
        let (Some(code), Some(jt), Some(jf), Some(k)) = (next(), next(), next(), next()) else {
            return Err(bad(format!(
                "libpcap gave an instruction that cannot be read: {text}"
            )));
        };
        let code = u16::try_from(code).map_err(|_| bad(format!("bad instruction {text}")))?;
        let jt = u8::try_from(jt).map_err(|_| bad(format!("bad instruction {text}")))?;
        let jf = u8::try_from(jf).map_err(|_| bad(format!("bad instruction {text}")))?;
        // BPF_RET | BPF_K with a non-zero length: accept, keeping at most `snaplen` bytes.
        let k = if code == 0x06 && k != 0 {
            k.min(snaplen)
        } else {
            k
        };
        insns.push(netring::BpfInsn { code, jt, jf, k });
    }
    netring::BpfFilter::new(insns).map_err(|e| bad(e.to_string()))
}

/// The interface's count of received packets it dropped, from sysfs.
fn interface_missed(iface: &str) -> Option<u64> {
    // libpcap's definition of interface drops (pcap-linux.c, `linux_if_drops`): packets the
    // interface itself missed. Not `rx_dropped`, which also counts what the stack discarded
    // after the capture saw it (frames of protocols nobody handles), and so is no loss.
    let stat = |name: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/sys/class/net/{iface}/statistics/{name}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    Some(stat("rx_missed_errors")? + stat("rx_fifo_errors")?)
}

fn error_text(e: &netring::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

fn open_error(iface: &str, e: netring::Error) -> CaptureError {
    let permission = match &e {
        netring::Error::PermissionDenied => true,
        netring::Error::Socket(io) | netring::Error::Bind(io) | netring::Error::Io(io) => {
            io.kind() == io::ErrorKind::PermissionDenied
        }
        netring::Error::SockOpt { source, .. } => source.kind() == io::ErrorKind::PermissionDenied,
        _ => false,
    };
    if permission {
        return CaptureError::Permission {
            iface: iface.to_string(),
            missing: super::live::missing_capabilities(
                super::live::effective_capabilities().as_deref(),
            ),
            exe: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "appletap".into()),
            detail: format!("AF_PACKET socket: {}", error_text(&e)),
        };
    }
    if let netring::Error::InterfaceNotFound(_) = e {
        return CaptureError::NoSuchInterface {
            iface: iface.to_string(),
            available: super::live::interface_names(),
        };
    }
    CaptureError::LiveOpen {
        iface: iface.to_string(),
        detail: format!("AF_PACKET socket: {}", error_text(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_tag_goes_back_after_the_mac_addresses() {
        let frame: Vec<u8> = (0u8..20).collect();
        let mut out = Vec::new();
        with_vlan_tag(&mut out, &frame, 0x8100, 0x0064);
        assert_eq!(&out[..12], &frame[..12]);
        assert_eq!(&out[12..16], &[0x81, 0x00, 0x00, 0x64]);
        assert_eq!(&out[16..], &frame[12..]);
    }

    #[test]
    fn filter_compiles_and_caps_the_snap_length() {
        let f = filter_program(LinkType::ETHERNET, Some("tcp port 443"), 200).unwrap();
        let rets: Vec<u32> = f
            .instructions()
            .iter()
            .filter(|i| i.code == 0x06)
            .map(|i| i.k)
            .collect();
        assert!(rets.contains(&200) && rets.contains(&0), "{rets:?}");
        let all = filter_program(LinkType::ETHERNET, None, 65_535).unwrap();
        assert_eq!(all.instructions().len(), 1, "an empty filter accepts all");
        assert_eq!(all.instructions()[0].k, 65_535);
    }

    #[test]
    fn bad_filter_is_refused_with_its_text() {
        let Err(e) = filter_program(LinkType::ETHERNET, Some("tcp port banana"), 65_535) else {
            panic!("compiled nonsense");
        };
        assert!(e.to_string().contains("banana"), "{e}");
    }

    #[test]
    fn unknown_interface_names_the_alternatives() {
        let Err(e) = AfPacketCapture::open("appletap-no-such-if0", None, 65_535, 8, None) else {
            panic!("opened a nonexistent interface");
        };
        assert!(e.to_string().contains("appletap-no-such-if0"), "{e}");
    }
}
