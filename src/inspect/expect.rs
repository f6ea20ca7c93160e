//! Expected flows: the media flows a session's control connection negotiates, so that a later
//! UDP flow that matches one is labelled with its parent's service, as Zeek's and Suricata's
//! expected-connection tables do for FTP data and SIP media. The dispatcher reads RTSP
//! messages (see [`super::rtsp`]) in packet order and registers, per port a `Transport` header
//! or SDP body names, the host holding it and the peer it talks to; a worker looks a new UDP
//! flow up as of its packet's dispatch number, like the name stores, so the answer does not
//! depend on the number of threads.
//!
//! Where the negotiation cannot be read (AirPlay 2 encrypts RTSP after pairing), a plain-text
//! RTSP request still marks its host pair as in a session: a UDP flow between the same two
//! hosts, during it, on a port in AirPlay's ranges is linked by heuristic, at `likely` at most.
//!
//! Bounded: at most [`EXPECTED_CAP`] live expectations (the oldest goes first, counted), each
//! for [`EXPECT_SECS`] of packet time after the message that made it, ended early by the
//! session's TEARDOWN. An expectation only ever matches a flow between the two hosts of the
//! connection that carried it, so spoofed SETUPs cannot label flows of other hosts.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::Bound;
use super::rtsp::{self, Start};
use crate::capture::Timestamp;
use crate::decode::PacketMeta;

/// Most live expectations at once: a session makes at most 7 (three server ports, two client
/// ports, the session itself, an SDP port), so 4,096 hold hundreds of concurrent sessions.
pub const EXPECTED_CAP: usize = 4096;
/// How long after the message that named it a port is expected, in packet time: a session's
/// media flows start within a second of RECORD; five minutes covers a paused sender.
pub const EXPECT_SECS: u64 = 300;

/// First bytes an RTSP message can start with: `RTSP/1.0`, and the methods' initials
/// (`OPTIONS`, `DESCRIBE`, `ANNOUNCE`, `SETUP`, `PLAY`, `PAUSE`, `RECORD`, `TEARDOWN`,
/// `GET_PARAMETER`, `SET_PARAMETER`, `REDIRECT`, `FLUSH`, `POST`, `GET`).
const FIRST_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let initials = b"RODASPTGF";
    let mut i = 0;
    while i < initials.len() {
        t[initials[i] as usize] = true;
        i += 1;
    }
    t
};

/// Whether the dispatcher should read a TCP packet as RTSP: on an [`rtsp_port`], with a
/// payload whose first byte can start an RTSP message (TLS records start with 0x14-0x17; bare
/// ACKs have none). The dispatcher asks only for TCP packets, in the branch it already takes
/// for DNS over TCP: a UDP packet pays nothing, a TCP packet the port compares.
#[inline]
pub fn may_be_rtsp(meta: &PacketMeta<'_>) -> bool {
    meta.proto == crate::decode::ip_proto::TCP
        && rtsp_port(meta.src_port, meta.dst_port)
        && meta
            .payload
            .first()
            .is_some_and(|b| FIRST_BYTES[usize::from(*b)])
}

/// TCP ports an RTSP control connection is looked for on: RTSP's own (554), and AirPlay's
/// (5000 for AirPort Express and shairport-sync, 7000 for Apple TV and HomePod; apple-services.md
/// 3.17).
#[inline]
pub fn rtsp_port(src: u16, dst: u16) -> bool {
    let p = |p: u16| p == 554 || p == 5000 || p == 7000;
    p(src) || p(dst)
}

/// UDP ports a session's media flows use when the negotiation cannot be read: AirPlay's
/// 6000-7011 (vendor guide, apple-services.md [A15]; shairport-sync's 6000-6009 [A16]), the
/// dynamic range shairport-sync users open (35000-65535 [A16]) and PTP's 319/320 [A16].
pub fn heuristic_port(p: u16) -> bool {
    (6000..=7011).contains(&p) || p >= 35000 || p == 319 || p == 320
}

/// Which part of the negotiation named the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// `Transport: ...;server_port=` (RAOP: the receiver's audio port).
    ServerPort,
    /// `Transport: ...;client_port=`.
    ClientPort,
    /// `Transport: ...;control_port=` (RAOP sync and resend requests).
    ControlPort,
    /// `Transport: ...;timing_port=` (RAOP timing).
    TimingPort,
    /// An SDP `m=` line's port.
    SdpPort,
    /// No port: the host pair is in a session whose negotiation was not read (heuristic).
    Session,
}

impl What {
    /// How the evidence names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServerPort => "SETUP server_port",
            Self::ClientPort => "SETUP client_port",
            Self::ControlPort => "SETUP control_port",
            Self::TimingPort => "SETUP timing_port",
            Self::SdpPort => "SDP m= port",
            Self::Session => "same host pair during the session",
        }
    }
}

/// A flow a session negotiated, and the session's control flow (its parent).
#[derive(Debug, Clone)]
pub struct Expectation {
    /// The parent's client (who sent the requests).
    pub parent_client: (IpAddr, u16),
    /// The parent's server (who answered).
    pub parent_server: (IpAddr, u16),
    /// What named the port.
    pub what: What,
    /// The names bound to the parent's server when the message was read: what labels the
    /// parent, so the child gets the same service whichever worker holds either.
    pub parent_bound: Bound,
    /// When the message was read.
    pub seen: Timestamp,
    /// When it stops applying.
    pub expires: Timestamp,
}

impl Expectation {
    /// Whether the link is a heuristic (the negotiation was not read).
    pub fn is_heuristic(&self) -> bool {
        self.what == What::Session
    }

    /// The evidence's value: `rtsp 10.0.0.1:50000 -> 10.0.0.2:5000 SETUP server_port`.
    pub fn describe(&self) -> String {
        let ep = |(ip, port): (IpAddr, u16)| match ip {
            IpAddr::V4(_) => format!("{ip}:{port}"),
            IpAddr::V6(_) => format!("[{ip}]:{port}"),
        };
        format!(
            "rtsp {} -> {} {}",
            ep(self.parent_client),
            ep(self.parent_server),
            self.what.as_str()
        )
    }
}

/// A dispatch number (`names::Seq`; not imported from there, which would make the two files
/// import each other).
type Seq = u64;

/// (host holding the port, the port or 0 for a session, its peer).
type Key = (IpAddr, u16, IpAddr);

#[derive(Debug)]
struct Entry {
    exp: Arc<Expectation>,
    since: Seq,
    until: Seq,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<Key, Vec<Entry>, foldhash::fast::FixedState>,
    /// Live keys in insertion order (so in expiry order), with the version's `since`.
    order: VecDeque<(Key, Seq)>,
    /// Retired versions and when, dropped once no worker can look them up.
    retired: VecDeque<(Key, Seq)>,
    live: usize,
}

impl Inner {
    fn live_mut(&mut self, key: &Key) -> Option<&mut Entry> {
        self.map
            .get_mut(key)?
            .iter_mut()
            .find(|e| e.until == Seq::MAX)
    }

    /// Ends the live version of `key` at `seq`; whether there was one.
    fn retire(&mut self, key: Key, seq: Seq) -> bool {
        let Some(e) = self.live_mut(&key) else {
            return false;
        };
        e.until = seq;
        self.live -= 1;
        self.retired.push_back((key, seq));
        true
    }

    fn purge(&mut self, horizon: Seq) {
        while let Some(&(key, at)) = self.retired.front()
            && at <= horizon
        {
            self.retired.pop_front();
            if let Some(list) = self.map.get_mut(&key) {
                list.retain(|e| e.until > horizon);
                if list.is_empty() {
                    self.map.remove(&key);
                }
            }
        }
    }
}

/// The expected-flow store: written by the dispatcher, read by the workers.
#[derive(Debug, Default)]
pub struct Expected {
    inner: Mutex<Inner>,
    /// Something was ever stored: until then a lookup costs one load.
    used: AtomicBool,
    evictions: AtomicU64,
}

impl Expected {
    /// Reads an RTSP message on a control connection (the dispatcher calls it for TCP packets
    /// where [`rtsp_port`] holds, in packet order, with the packet's dispatch number and the
    /// horizon below which no worker looks up any more). `bound_of` gives the names bound to
    /// the parent's server, asked only when the message names something to expect.
    pub fn observe(
        &self,
        meta: &PacketMeta<'_>,
        ts: Timestamp,
        (seq, horizon): (Seq, Seq),
        bound_of: impl FnOnce(IpAddr, u16) -> Bound,
    ) {
        let Ok(msg) = rtsp::parse(meta.payload) else {
            return;
        };
        let (src, dst) = ((meta.src, meta.src_port), (meta.dst, meta.dst_port));
        let request = matches!(msg.start, Some(Start::Request(_)));
        let (client, server) = if request { (src, dst) } else { (dst, src) };
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        inner.purge(horizon);
        self.expire(&mut inner, ts, seq);
        if msg.start == Some(Start::Request("TEARDOWN")) {
            // The session ends: nothing it negotiated is expected any more. Every request of a
            // session marks its host pair (below), so a pair without that mark has nothing to
            // end, and a flood of TEARDOWNs scans the store at most once per request between.
            if inner.live_mut(&(client.0, 0, server.0)).is_none() {
                return;
            }
            let ended: Vec<Key> = inner
                .map
                .iter()
                .filter(|(_, l)| {
                    l.iter().any(|e| {
                        e.until == Seq::MAX
                            && e.exp.parent_client == client
                            && e.exp.parent_server == server
                    })
                })
                .map(|(k, _)| *k)
                .collect();
            for k in ended {
                inner.retire(k, seq);
            }
            return;
        }
        let mut wanted: Vec<(Key, What)> = Vec::new();
        // Ports the message's sender holds, and those its peer holds.
        let (mine, theirs) = if request {
            (client.0, server.0)
        } else {
            (server.0, client.0)
        };
        if let Some(t) = msg.transport {
            let (srv, cli) = (server.0, client.0);
            let hold = |host, peer, (a, b): (u16, u16), what, w: &mut Vec<(Key, What)>| {
                w.push(((host, a, peer), what));
                if b != a {
                    w.push(((host, b, peer), what));
                }
            };
            if let Some(r) = t.server_port {
                hold(srv, cli, r, What::ServerPort, &mut wanted);
            }
            if let Some(r) = t.client_port {
                hold(cli, srv, r, What::ClientPort, &mut wanted);
            }
            // RAOP: a request's control and timing ports are the sender's, an answer's the
            // receiver's.
            for (p, what) in [
                (t.control_port, What::ControlPort),
                (t.timing_port, What::TimingPort),
            ] {
                if let Some(p) = p {
                    wanted.push(((mine, p, theirs), what));
                }
            }
        }
        for &p in &msg.sdp_ports {
            wanted.push(((mine, p, theirs), What::SdpPort));
        }
        let session_key = (client.0, 0, server.0);
        if request && inner.live_mut(&session_key).is_none() {
            wanted.push((session_key, What::Session));
        }
        if wanted.is_empty() || client.0 == server.0 {
            return;
        }
        let parent_bound = bound_of(server.0, server.1);
        for (key, what) in wanted {
            let exp = Arc::new(Expectation {
                parent_client: client,
                parent_server: server,
                what,
                parent_bound: parent_bound.clone(),
                seen: ts,
                expires: ts.plus_secs(EXPECT_SECS),
            });
            self.insert(&mut inner, key, exp, seq);
        }
        self.used.store(true, Ordering::Release);
    }

    fn insert(&self, inner: &mut Inner, key: Key, exp: Arc<Expectation>, seq: Seq) {
        // A port named again (a new SETUP) replaces what it was expected for.
        inner.retire(key, seq);
        while inner.live >= EXPECTED_CAP {
            let Some((victim, since)) = inner.order.pop_front() else {
                break;
            };
            if inner.live_mut(&victim).is_some_and(|e| e.since == since) {
                inner.retire(victim, seq);
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        inner.map.entry(key).or_default().push(Entry {
            exp,
            since: seq,
            until: Seq::MAX,
        });
        inner.order.push_back((key, seq));
        inner.live += 1;
    }

    /// Retires the expectations whose time is up (they are in expiry order).
    fn expire(&self, inner: &mut Inner, now: Timestamp, seq: Seq) {
        while let Some(&(key, since)) = inner.order.front() {
            let state = inner.live_mut(&key).map(|e| (e.since, e.exp.expires));
            match state {
                Some((s, expires)) if s == since => {
                    if expires >= now {
                        break;
                    }
                    inner.retire(key, seq);
                }
                // Replaced or ended since: nothing to do.
                _ => {}
            }
            inner.order.pop_front();
        }
    }

    /// The expectation a UDP flow between `a` and `b` that began at `at` matches, as the
    /// store stood at dispatch number `seq`: a port either side holds for the other, else the
    /// session of the host pair if one of the ports is in [`heuristic_port`]'s ranges.
    pub fn lookup_as_of(
        &self,
        a: (IpAddr, u16),
        b: (IpAddr, u16),
        at: Timestamp,
        seq: Seq,
    ) -> Option<Arc<Expectation>> {
        if !self.used.load(Ordering::Acquire) {
            return None;
        }
        let inner = self.inner.lock().ok()?;
        let find = |key: Key| {
            inner.map.get(&key)?.iter().find_map(|e| {
                (e.since <= seq && seq < e.until && e.exp.seen <= at && at <= e.exp.expires)
                    .then(|| Arc::clone(&e.exp))
            })
        };
        find((a.0, a.1, b.0))
            .or_else(|| find((b.0, b.1, a.0)))
            .or_else(|| {
                if !(heuristic_port(a.1) || heuristic_port(b.1)) {
                    return None;
                }
                find((a.0, 0, b.0)).or_else(|| find((b.0, 0, a.0)))
            })
    }

    /// Live expectations now.
    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |i| i.live)
    }

    /// Whether none is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Expectations dropped at [`EXPECTED_CAP`] before their time.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::ip_proto;

    /// The SETUP answer of fixtures/airplay/raop-pyatv-shairport.pcap (shairport-sync 3.3.8).
    const SETUP_OK: &[u8] = b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nServer: AirTunes/105.1\r\nTransport: RTP/AVP/UDP;unicast;interleaved=0-1;mode=record;control_port=6001;timing_port=6002;server_port=6003\r\nSession: 1\r\n\r\n";
    const TEARDOWN: &[u8] =
        b"TEARDOWN rtsp://10.77.0.1/1 RTSP/1.0\r\nCSeq: 9\r\nSession: 1\r\n\r\n";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn meta<'a>(src: (IpAddr, u16), dst: (IpAddr, u16), payload: &'a [u8]) -> PacketMeta<'a> {
        PacketMeta {
            src: src.0,
            dst: dst.0,
            proto: ip_proto::TCP,
            src_port: src.1,
            dst_port: dst.1,
            tcp_flags: 0x18,
            tcp_seq: 0,
            payload,
            icmp: None,
            link: None,
            tunnel: None,
        }
    }

    fn at(s: u64) -> Timestamp {
        Timestamp::from_parts(s, 0)
    }

    #[test]
    fn only_tcp_segments_that_can_start_rtsp_on_its_ports_are_read() {
        let (c, s) = ((ip("10.77.0.1"), 59594), (ip("10.77.0.2"), 5000));
        assert!(may_be_rtsp(&meta(s, c, SETUP_OK)));
        assert!(may_be_rtsp(&meta(c, s, TEARDOWN)));
        assert!(!may_be_rtsp(&meta(c, s, b"\x17\x03\x03")), "TLS");
        assert!(!may_be_rtsp(&meta(c, s, b"")), "a bare ACK");
        assert!(!may_be_rtsp(&meta(c, (s.0, 443), SETUP_OK)), "another port");
        let mut udp = meta(s, c, SETUP_OK);
        udp.proto = ip_proto::UDP;
        assert!(!may_be_rtsp(&udp));
    }

    #[test]
    fn a_setup_answer_is_expected_as_of_its_packet_until_teardown() {
        let e = Expected::default();
        let (c, s) = ((ip("10.77.0.1"), 59594), (ip("10.77.0.2"), 5000));
        let setup = b"SETUP rtsp://10.77.0.1/2241904521 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/UDP;unicast;interleaved=0-1;mode=record;control_port=40339;timing_port=45626\r\n\r\n";
        e.observe(&meta(c, s, setup), at(100), (9, 0), |_, _| Bound::default());
        e.observe(&meta(s, c, SETUP_OK), at(100), (10, 0), |_, _| {
            Bound::default()
        });
        // The sender's own control and timing ports, from its request.
        let timing = ((ip("10.77.0.2"), 6002), (ip("10.77.0.1"), 45626));
        let t = e.lookup_as_of(timing.0, timing.1, at(101), 11).unwrap();
        assert_eq!(t.what, What::TimingPort);
        let audio = ((ip("10.77.0.1"), 51486), (ip("10.77.0.2"), 6003));
        let found = e.lookup_as_of(audio.0, audio.1, at(101), 11).unwrap();
        assert_eq!(found.what, What::ServerPort);
        assert_eq!(
            found.describe(),
            "rtsp 10.77.0.1:59594 -> 10.77.0.2:5000 SETUP server_port"
        );
        // Either way round, as a flow's roles may be guessed.
        assert!(e.lookup_as_of(audio.1, audio.0, at(101), 11).is_some());
        // Before the answer, only the request's mark of a session (6003 is in AirPlay's
        // range); before the request, nothing.
        let early = e.lookup_as_of(audio.0, audio.1, at(101), 9).unwrap();
        assert!(early.is_heuristic());
        assert!(e.lookup_as_of(audio.0, audio.1, at(101), 8).is_none());
        assert!(
            e.lookup_as_of(audio.0, audio.1, at(99), 11).is_none(),
            "earlier flow"
        );
        let late = at(100 + EXPECT_SECS + 1);
        assert!(
            e.lookup_as_of(audio.0, audio.1, late, 11).is_none(),
            "expired"
        );
        // Another host pair is never matched, whatever its ports.
        let other = ((ip("10.77.0.3"), 51486), (ip("10.77.0.2"), 6003));
        assert!(e.lookup_as_of(other.0, other.1, at(101), 11).is_none());
        e.observe(&meta(c, s, TEARDOWN), at(110), (20, 0), |_, _| {
            unreachable!("a TEARDOWN names nothing to expect")
        });
        assert!(e.lookup_as_of(audio.0, audio.1, at(111), 21).is_none());
        // A worker still behind the TEARDOWN sees what one thread saw there.
        assert!(e.lookup_as_of(audio.0, audio.1, at(105), 15).is_some());
    }

    #[test]
    fn a_session_links_by_heuristic_only_on_airplay_ports() {
        let e = Expected::default();
        let (c, s) = ((ip("10.0.0.5"), 50000), (ip("10.0.0.9"), 7000));
        // AirPlay 2 before pairing: plain-text requests, no Transport.
        let info = b"GET /info RTSP/1.0\r\nCSeq: 0\r\n\r\n";
        e.observe(&meta(c, s, info), at(5), (1, 0), |_, _| Bound::default());
        let media = e.lookup_as_of((c.0, 60001), (s.0, 6100), at(6), 2).unwrap();
        assert!(media.is_heuristic());
        assert!(e.lookup_as_of((c.0, 5353), (s.0, 53), at(6), 2).is_none());
    }

    #[test]
    fn a_flood_of_spoofed_setups_stays_bounded_and_counts_what_it_evicts() {
        let e = Expected::default();
        let srv = (ip("192.0.2.1"), 5000);
        let n = 20_000u32;
        for i in 0..n {
            let src = (IpAddr::from((0x0a00_0000 + i).to_be_bytes()), 40000);
            e.observe(
                &meta(srv, src, SETUP_OK),
                at(1000),
                (u64::from(i), u64::from(i)),
                |_, _| Bound::default(),
            );
        }
        assert!(e.len() <= EXPECTED_CAP);
        // Three ports each answer.
        assert_eq!(e.evictions(), u64::from(n) * 3 - EXPECTED_CAP as u64);
        let inner = e.inner.lock().unwrap();
        let held: usize = inner.map.values().map(Vec::len).sum();
        assert!(
            held <= 2 * EXPECTED_CAP,
            "retired versions are dropped: {held}"
        );
        drop(inner);
        // No flood labels a pair it never named.
        let stranger = ((ip("198.51.100.7"), 6003), (ip("192.0.2.1"), 6003));
        assert!(
            e.lookup_as_of(stranger.0, stranger.1, at(1001), u64::from(n))
                .is_none()
        );
    }
}
