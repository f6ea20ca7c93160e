//! Live capture through libpcap: opening an interface (with a clear message when permission is
//! missing or the interface does not exist), reading packets from the kernel's ring and
//! waiting on the capture's descriptor when it is empty (with a timeout, so shutdown and
//! periodic reports stay on time), and kernel/interface drop counters widened past the 32-bit
//! wrap of `pcap_stats`.
//!
//! Throughput: libpcap on Linux uses the TPACKET_V3 block ring, where packets are packed by
//! their captured length, unless immediate mode is asked for, which falls back to TPACKET_V2
//! (one fixed-size frame per packet: with a 65,535-byte snaplen a 32 MiB ring held about 500
//! packets, and `--threads 1` read 23% of a 530-700 kpps replay). Without immediate mode it
//! read every packet of the same replay, like tcpdump. The price is latency: the kernel hands
//! a block over when it is full or [`READ_TIMEOUT_MS`] after its first packet.

use std::os::fd::AsFd;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::{CaptureError, LinkType, Next, Packet, PacketSource, Timestamp};

/// Names of the interfaces libpcap can capture on, comma-separated.
pub fn interface_names() -> String {
    match pcap::Device::list() {
        Ok(list) => list
            .into_iter()
            .map(|d| d.name)
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => format!("(cannot list interfaces: {e})"),
    }
}

/// One capture interface as `appletap interfaces` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InterfaceInfo {
    /// Name to pass to `-i`.
    pub name: String,
    /// Description, if the system gives one.
    pub description: Option<String>,
    /// Addresses.
    pub addresses: Vec<String>,
    /// Flags: up, running, loopback, wireless.
    pub flags: Vec<&'static str>,
}

/// Lists the interfaces libpcap can capture on.
///
/// # Errors
/// libpcap's message when it cannot list them.
pub fn interfaces() -> Result<Vec<InterfaceInfo>, String> {
    let list = pcap::Device::list().map_err(|e| e.to_string())?;
    Ok(list
        .into_iter()
        .map(|d| {
            let mut flags = Vec::new();
            if d.flags.is_up() {
                flags.push("up");
            }
            if d.flags.is_running() {
                flags.push("running");
            }
            if d.flags.is_loopback() {
                flags.push("loopback");
            }
            if d.flags.is_wireless() {
                flags.push("wireless");
            }
            InterfaceInfo {
                name: d.name,
                description: d.desc,
                addresses: d.addresses.iter().map(|a| a.addr.to_string()).collect(),
                flags,
            }
        })
        .collect())
}

/// Kernel and interface drop counters, widened to 64 bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CaptureDrops {
    /// Packets the kernel received for this capture (libpcap `ps_recv`).
    pub received: u64,
    /// Packets dropped because the capture buffer was full (`ps_drop`).
    pub kernel: u64,
    /// Packets dropped by the interface or driver (`ps_ifdrop`).
    pub interface: u64,
}

/// Widens a 32-bit counter that may wrap: adds the difference since the last reading.
#[derive(Debug, Default, Clone, Copy)]
struct Wide {
    last: u32,
    total: u64,
}

impl Wide {
    fn update(&mut self, now: u32) -> u64 {
        self.total += u64::from(now.wrapping_sub(self.last));
        self.last = now;
        self.total
    }
}

/// A live capture on one interface.
pub struct LiveCapture {
    cap: pcap::Capture<pcap::Active>,
    link: LinkType,
    iface: String,
    recv: Wide,
    drop: Wide,
    ifdrop: Wide,
    /// A read failed: the capture is over.
    failed: bool,
    /// The last read found the ring empty: the next one waits for the kernel first.
    drained: bool,
}

/// libpcap's buffer timeout: the kernel hands a block of the ring over at most this long
/// after its first packet, however few packets it holds.
pub const READ_TIMEOUT_MS: i32 = 100;
/// How long to wait on the capture's descriptor when the ring is empty, before reporting
/// [`Next::Idle`]: signals are handled on a thread of their own, so this bounds how late
/// shutdown and reports come on a quiet link (an idle capture wakes 10 times a second).
const IDLE_WAIT_MS: u16 = 100;
/// Default size of the kernel's capture ring, in MiB (`live --buffer-size`, where the figure
/// is explained).
pub const DEFAULT_BUFFER_MIB: u32 = crate::cli::DEFAULT_BUFFER_MIB;

impl LiveCapture {
    /// Opens `iface` in promiscuous mode with an optional BPF filter and the default ring
    /// size ([`DEFAULT_BUFFER_MIB`]).
    ///
    /// # Errors
    /// A [`CaptureError`] that says what to do (permissions, interface names, filter syntax).
    pub fn open(iface: &str, filter: Option<&str>, snaplen: i32) -> Result<Self, CaptureError> {
        Self::open_with(iface, filter, snaplen, DEFAULT_BUFFER_MIB)
    }

    /// Opens `iface` in promiscuous mode with an optional BPF filter and a kernel ring of
    /// `buffer_mib` MiB.
    ///
    /// # Errors
    /// A [`CaptureError`] that says what to do (permissions, interface names, filter syntax).
    pub fn open_with(
        iface: &str,
        filter: Option<&str>,
        snaplen: i32,
        buffer_mib: u32,
    ) -> Result<Self, CaptureError> {
        let other = |e: pcap::Error| classify_open_error(iface, e);
        let inactive = pcap::Capture::from_device(iface).map_err(other)?;
        let bytes = i32::try_from(u64::from(buffer_mib) << 20).unwrap_or(i32::MAX);
        // Non-blocking reads, and our own poll with a timeout when the ring is empty: with
        // TPACKET_V3 the kernel hands over no block until a packet has arrived, and a
        // blocking libpcap read waits in poll(-1), so on a quiet link neither shutdown nor
        // reports could run. No immediate mode: it costs the V3 ring (see the module doc).
        let mut cap = inactive
            .promisc(true)
            .snaplen(snaplen)
            .timeout(READ_TIMEOUT_MS)
            .buffer_size(bytes)
            .open()
            .map_err(other)?
            .setnonblock()
            .map_err(other)?;
        if let Some(f) = filter {
            cap.filter(f, true).map_err(|e| CaptureError::BadFilter {
                filter: f.to_string(),
                detail: e.to_string(),
            })?;
        }
        let link = LinkType(u32::try_from(cap.get_datalink().0).unwrap_or(u32::MAX));
        Ok(Self {
            cap,
            link,
            iface: iface.to_string(),
            recv: Wide::default(),
            drop: Wide::default(),
            ifdrop: Wide::default(),
            failed: false,
            drained: false,
        })
    }

    /// Kernel and interface drop counters so far (call at least once per 2^32 packets).
    pub fn drops(&mut self) -> CaptureDrops {
        if let Ok(s) = self.cap.stats() {
            self.recv.update(s.received);
            self.drop.update(s.dropped);
            self.ifdrop.update(s.if_dropped);
        }
        CaptureDrops {
            received: self.recv.total,
            kernel: self.drop.total,
            interface: self.ifdrop.total,
        }
    }
}

fn classify_open_error(iface: &str, e: pcap::Error) -> CaptureError {
    let detail = e.to_string();
    let lower = detail.to_ascii_lowercase();
    if lower.contains("permission") || lower.contains("not permitted") {
        CaptureError::Permission {
            iface: iface.to_string(),
            missing: missing_capabilities(effective_capabilities().as_deref()),
            exe: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "appletap".into()),
            detail,
        }
    } else if lower.contains("no such device") || lower.contains("doesn't exist") {
        CaptureError::NoSuchInterface {
            iface: iface.to_string(),
            available: interface_names(),
        }
    } else {
        CaptureError::LiveOpen {
            iface: iface.to_string(),
            detail,
        }
    }
}

/// Bit numbers of the capabilities a capture needs (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;

/// The `CapEff:` line of `/proc/self/status` (hexadecimal), where there is one.
pub(super) fn effective_capabilities() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| v.trim().to_string())
}

/// Says which capability a refused capture lacked, from the `CapEff:` value (hexadecimal).
/// CAP_NET_RAW opens the packet socket (measured: it alone is enough on Linux 6 for
/// promiscuous capture); CAP_NET_ADMIN is named where it is missing too, as libpcap needs it
/// for some interfaces and settings (monitor mode, hardware timestamps).
pub(super) fn missing_capabilities(cap_eff: Option<&str>) -> String {
    let Some(bits) = cap_eff.and_then(|h| u64::from_str_radix(h, 16).ok()) else {
        return "capturing needs the CAP_NET_RAW capability".into();
    };
    let has = |bit: u32| bits & (1 << bit) != 0;
    match (has(CAP_NET_RAW), has(CAP_NET_ADMIN)) {
        (false, false) => {
            "this process lacks the CAP_NET_RAW capability capturing needs (and CAP_NET_ADMIN)"
                .into()
        }
        (false, true) => "this process lacks the CAP_NET_RAW capability capturing needs".into(),
        (true, _) => {
            "this process has CAP_NET_RAW, yet the system refused (a security module, or a \
             container that withholds the capability from the network namespace?)"
                .into()
        }
    }
}

impl PacketSource for LiveCapture {
    fn next_packet(&mut self) -> Next<'_> {
        if self.failed {
            return Next::End;
        }
        if std::mem::take(&mut self.drained) {
            // Sleep until the kernel hands a block over, or the wait ends. An interrupted or
            // failed poll only shortens the wait; a capture that broke says so when read.
            let mut fds = [PollFd::new(self.cap.as_fd(), PollFlags::POLLIN)];
            if !poll(&mut fds, PollTimeout::from(IDLE_WAIT_MS)).is_ok_and(|n| n > 0) {
                self.drained = true;
                return Next::Idle;
            }
        }
        match self.cap.next_packet() {
            Ok(p) => {
                let ts = &p.header.ts;
                let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
                let micros = u64::try_from(ts.tv_usec).unwrap_or(0);
                Next::Packet(Packet {
                    ts: Timestamp::from_parts(secs, micros * 1_000),
                    link: self.link,
                    data: p.data,
                    orig_len: p.header.len,
                    block: None,
                })
            }
            Err(pcap::Error::TimeoutExpired) => {
                // The ring is empty: say so now (the caller hands on what it holds), and wait
                // on the next call.
                self.drained = true;
                Next::Idle
            }
            Err(source) => {
                self.failed = true;
                Next::Error(CaptureError::LiveRead {
                    iface: self.iface.clone(),
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_counters_widen_past_the_32_bit_wrap() {
        let mut w = Wide::default();
        assert_eq!(w.update(4_000_000_000), 4_000_000_000);
        assert_eq!(w.update(100), 4_294_967_396);
        assert_eq!(w.update(200), 4_294_967_496);
    }

    #[test]
    fn a_refused_capture_names_the_missing_capability() {
        // CapEff values as /proc/self/status shows them: none; CAP_NET_ADMIN only (bit 12);
        // CAP_NET_RAW (bit 13); unreadable.
        let none = missing_capabilities(Some("0000000000000000"));
        assert!(
            none.contains("lacks the CAP_NET_RAW") && none.contains("CAP_NET_ADMIN"),
            "{none}"
        );
        let admin = missing_capabilities(Some("0000000000001000"));
        assert!(
            admin.contains("lacks the CAP_NET_RAW") && !admin.contains("CAP_NET_ADMIN"),
            "{admin}"
        );
        let raw = missing_capabilities(Some("0000000000002000"));
        assert!(raw.contains("has CAP_NET_RAW, yet"), "{raw}");
        assert!(missing_capabilities(None).contains("CAP_NET_RAW"));
        assert!(missing_capabilities(Some("zz")).contains("CAP_NET_RAW"));
    }

    #[test]
    fn unknown_interface_names_the_alternatives() {
        let Err(e) = LiveCapture::open("appletap-no-such-if0", None, 65_535) else {
            panic!("opened a nonexistent interface");
        };
        let msg = e.to_string();
        assert!(
            msg.contains("appletap-no-such-if0")
                && (msg.contains("available") || msg.contains("permission")),
            "{msg}"
        );
    }
}
