//! RTSP messages as a media session's control connection carries them (RFC 2326, and the RAOP
//! dialect AirPlay 1 speaks): the start line, the `Transport` header's ports, the `Session`
//! header, and the media ports of an SDP body. Only what links a session's media flows to it.
//!
//! Hand-written rather than `httparse`: httparse accepts only `HTTP/1.x` versions, and RTSP's
//! start lines say `RTSP/1.0`. The parser reads one TCP segment, never more than
//! [`MAX_MESSAGE`] bytes of it and [`MAX_HEADERS`] header lines, and never panics on any input.

use thiserror::Error;

/// Most bytes of a segment read: an RTSP SETUP with its headers is a few hundred bytes, an
/// ANNOUNCE with its SDP under 2 KB. A longer message is read up to here.
pub const MAX_MESSAGE: usize = 8 * 1024;
/// Most header lines read.
pub const MAX_HEADERS: usize = 64;
/// Most `m=` lines of an SDP body read.
const MAX_MEDIA: usize = 4;

/// Why a segment is not an RTSP message we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtspError {
    /// It does not start with an RTSP request or status line.
    #[error("not an RTSP start line")]
    NotRtsp,
    /// A header line has no colon, or the head ends before its blank line within the bound.
    #[error("malformed RTSP header")]
    Malformed,
}

/// The start line: a request's method, or a response's status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start<'a> {
    /// A request (`SETUP rtsp://... RTSP/1.0`).
    Request(&'a str),
    /// A response (`RTSP/1.0 200 OK`).
    Response(u16),
}

/// The ports a `Transport` header names (the first transport of a list). A range
/// (`server_port=6000-6001`, RTP and RTCP) gives both ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportPorts {
    /// `server_port`: where the receiver takes RTP (RAOP: the audio).
    pub server_port: Option<(u16, u16)>,
    /// `client_port`: where the client takes RTP (RTSP PLAY).
    pub client_port: Option<(u16, u16)>,
    /// `control_port` (RAOP): sync and resend requests.
    pub control_port: Option<u16>,
    /// `timing_port` (RAOP): NTP-like timing.
    pub timing_port: Option<u16>,
}

impl TransportPorts {
    /// Whether it names no port at all.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What one RTSP message tells about its session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message<'a> {
    /// Its start line; `None` only for [`Message::default`].
    pub start: Option<Start<'a>>,
    /// The `Transport` header's ports, if it has one.
    pub transport: Option<TransportPorts>,
    /// The `Session` header (without parameters such as `;timeout=`).
    pub session: Option<&'a str>,
    /// Non-zero ports of the SDP body's `m=` lines (RAOP sends 0: its ports come in SETUP).
    pub sdp_ports: Vec<u16>,
    /// The SDP body's `a=rtpmap` encoding of its first media (`AppleLossless`, `L16/44100/2`).
    pub sdp_codec: Option<&'a str>,
}

/// RTSP request methods (RFC 2326 §10, and RAOP's `FLUSH`, `POST`, `GET`).
const METHODS: [&[u8]; 14] = [
    b"OPTIONS ",
    b"DESCRIBE ",
    b"ANNOUNCE ",
    b"SETUP ",
    b"PLAY ",
    b"PAUSE ",
    b"RECORD ",
    b"TEARDOWN ",
    b"GET_PARAMETER ",
    b"SET_PARAMETER ",
    b"REDIRECT ",
    b"FLUSH ",
    b"POST ",
    b"GET ",
];

/// Whether a segment starts like an RTSP message: a status line or a request line whose
/// method is one of RTSP's (a `GET`/`POST` must end its line in `RTSP/1.0`).
pub fn looks_like_rtsp(payload: &[u8]) -> bool {
    payload.starts_with(b"RTSP/1.") || parse_start(payload).is_ok()
}

fn parse_start(payload: &[u8]) -> Result<(Start<'_>, usize), RtspError> {
    let head = &payload[..payload.len().min(MAX_MESSAGE)];
    let end = memchr::memchr(b'\n', head).ok_or(RtspError::NotRtsp)?;
    let line = std::str::from_utf8(&head[..end])
        .map_err(|_| RtspError::NotRtsp)?
        .trim_end_matches('\r');
    if let Some(rest) = line.strip_prefix("RTSP/1.") {
        let code = rest
            .get(2..5)
            .and_then(|c| c.parse::<u16>().ok())
            .filter(|c| (100..600).contains(c))
            .ok_or(RtspError::NotRtsp)?;
        return Ok((Start::Response(code), end + 1));
    }
    let method = METHODS
        .iter()
        .find(|m| line.as_bytes().starts_with(m))
        .ok_or(RtspError::NotRtsp)?;
    if !line.ends_with(" RTSP/1.0") {
        return Err(RtspError::NotRtsp);
    }
    Ok((Start::Request(&line[..method.len() - 1]), end + 1))
}

/// Reads the RTSP message a segment starts with. Headers past [`MAX_HEADERS`] or beyond
/// [`MAX_MESSAGE`] bytes are not read; a head cut off by the end of the segment is read as
/// far as it goes (a SETUP response split over two segments keeps what its first carried).
pub fn parse(payload: &[u8]) -> Result<Message<'_>, RtspError> {
    let (start, mut at) = parse_start(payload)?;
    let data = &payload[..payload.len().min(MAX_MESSAGE)];
    let mut msg = Message {
        start: Some(start),
        ..Message::default()
    };
    let mut sdp = false;
    let mut body = None;
    for _ in 0..MAX_HEADERS {
        let rest = &data[at..];
        let Some(end) = memchr::memchr(b'\n', rest) else {
            break;
        };
        at += end + 1;
        let line = std::str::from_utf8(&rest[..end]).map_err(|_| RtspError::Malformed)?;
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            body = Some(at);
            break;
        }
        let (name, value) = line.split_once(':').ok_or(RtspError::Malformed)?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("transport") {
            msg.transport = Some(transport_ports(value));
        } else if name.eq_ignore_ascii_case("session") {
            msg.session = value.split(';').next().map(str::trim);
        } else if name.eq_ignore_ascii_case("content-type") {
            sdp = value.eq_ignore_ascii_case("application/sdp");
        }
    }
    if sdp && let Some(b) = body {
        read_sdp(&data[b..], &mut msg);
    }
    Ok(msg)
}

/// The ports of the first transport of a `Transport` header value.
pub fn transport_ports(value: &str) -> TransportPorts {
    let mut t = TransportPorts::default();
    let first = value.split(',').next().unwrap_or_default();
    for param in first.split(';').take(MAX_HEADERS) {
        let Some((key, v)) = param.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.eq_ignore_ascii_case("server_port") {
            t.server_port = port_range(v);
        } else if key.eq_ignore_ascii_case("client_port") {
            t.client_port = port_range(v);
        } else if key.eq_ignore_ascii_case("control_port") {
            t.control_port = port(v);
        } else if key.eq_ignore_ascii_case("timing_port") {
            t.timing_port = port(v);
        }
    }
    t
}

/// A non-zero port.
fn port(v: &str) -> Option<u16> {
    v.trim().parse::<u16>().ok().filter(|p| *p != 0)
}

/// `6000` or `6000-6001`: the range's ends (a single port gives itself twice). A range that
/// goes backwards or spans more than two ports (RTP and RTCP) is not read.
fn port_range(v: &str) -> Option<(u16, u16)> {
    match v.split_once('-') {
        None => port(v).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            (a <= b && b - a <= 1).then_some((a, b))
        }
    }
}

/// The media ports and first codec of an SDP body (RFC 8866 `m=` and `a=rtpmap:` lines).
fn read_sdp<'a>(body: &'a [u8], msg: &mut Message<'a>) {
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    for line in text.lines().take(MAX_HEADERS) {
        if let Some(m) = line.strip_prefix("m=") {
            if let Some(p) = m.split(' ').nth(1).and_then(|p| port(p.split('/').next()?))
                && msg.sdp_ports.len() < MAX_MEDIA
            {
                msg.sdp_ports.push(p);
            }
        } else if let Some(a) = line.strip_prefix("a=rtpmap:")
            && msg.sdp_codec.is_none()
        {
            msg.sdp_codec = a.split_once(' ').map(|(_, codec)| codec.trim());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pyatv 0.18.0's ANNOUNCE and SETUP to shairport-sync 3.3.8, and the answer, byte for byte from
    /// fixtures/airplay/raop-pyatv-shairport.pcap.
    const SETUP: &[u8] = b"SETUP rtsp://10.77.0.1/2241904521 RTSP/1.0\r\nUser-Agent: AirPlay/550.10\r\nCSeq: 2\r\nDACP-ID: 44BBE80275AE84F7\r\nActive-Remote: 361824234\r\nClient-Instance: 44BBE80275AE84F7\r\nTransport: RTP/AVP/UDP;unicast;interleaved=0-1;mode=record;control_port=40339;timing_port=45626\r\n\r\n";
    const SETUP_OK: &[u8] = b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nServer: AirTunes/105.1\r\nTransport: RTP/AVP/UDP;unicast;interleaved=0-1;mode=record;control_port=6001;timing_port=6002;server_port=6003\r\nSession: 1\r\n\r\n";
    const ANNOUNCE: &[u8] = b"ANNOUNCE rtsp://10.77.0.1/2241904521 RTSP/1.0\r\nUser-Agent: AirPlay/550.10\r\nContent-Type: application/sdp\r\nContent-Length: 129\r\nCSeq: 1\r\nDACP-ID: 44BBE80275AE84F7\r\nActive-Remote: 361824234\r\nClient-Instance: 44BBE80275AE84F7\r\n\r\nv=0\r\no=iTunes 2241904521 0 IN IP4 10.77.0.1\r\ns=iTunes\r\nc=IN IP4 10.77.0.2\r\nt=0 0\r\nm=audio 0 RTP/AVP 96\r\na=rtpmap:96 L16/44100/2\r\n";

    #[test]
    fn reads_a_raop_setup_without_server_ports_and_its_answer() {
        let m = parse(SETUP).unwrap();
        assert_eq!(m.start, Some(Start::Request("SETUP")));
        let t = m.transport.unwrap();
        assert_eq!(
            t.server_port, None,
            "a request names only the client's ports"
        );
        assert_eq!((t.control_port, t.timing_port), (Some(40339), Some(45626)));
        let r = parse(SETUP_OK).unwrap();
        assert_eq!(r.start, Some(Start::Response(200)));
        assert_eq!(r.session, Some("1"));
        let t = r.transport.unwrap();
        assert_eq!(t.server_port, Some((6003, 6003)));
        assert_eq!((t.control_port, t.timing_port), (Some(6001), Some(6002)));
    }

    #[test]
    fn reads_the_sdp_of_an_announce() {
        let m = parse(ANNOUNCE).unwrap();
        assert_eq!(m.start, Some(Start::Request("ANNOUNCE")));
        assert!(m.sdp_ports.is_empty(), "RAOP's m= port is 0");
        assert_eq!(m.sdp_codec, Some("L16/44100/2"));
        let play = b"RTSP/1.0 200 OK\r\nContent-Type: application/sdp\r\n\r\nm=audio 49170/2 RTP/AVP 0\r\nm=video 51372 RTP/AVP 31\r\n";
        assert_eq!(parse(play).unwrap().sdp_ports, vec![49170, 51372]);
    }

    #[test]
    fn standard_rtsp_transport_ranges() {
        let t = transport_ports("RTP/AVP;unicast;client_port=4588-4589;server_port=6256-6257");
        assert_eq!(t.client_port, Some((4588, 4589)));
        assert_eq!(t.server_port, Some((6256, 6257)));
        // Only the first of several transports; bad ranges are not read.
        let t = transport_ports("RTP/AVP;server_port=9-8,RTP/AVP;server_port=7000");
        assert!(t.is_empty());
        let t = transport_ports("RTP/AVP;server_port=1-60000;client_port=0;control_port=x");
        assert!(t.is_empty());
    }

    #[test]
    fn malformed_and_foreign_input_is_refused_without_panic() {
        assert_eq!(parse(b""), Err(RtspError::NotRtsp));
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), Err(RtspError::NotRtsp));
        assert_eq!(parse(b"RTSP/1.0 abc\r\n"), Err(RtspError::NotRtsp));
        assert_eq!(
            parse(b"SETUP x RTSP/1.0"),
            Err(RtspError::NotRtsp),
            "no line end"
        );
        assert_eq!(
            parse(b"SETUP x RTSP/1.0\r\nno colon here\r\n\r\n"),
            Err(RtspError::Malformed)
        );
        assert_eq!(
            parse(b"SETUP x RTSP/1.0\r\nTransport: \xff\xfe\r\n\r\n"),
            Err(RtspError::Malformed)
        );
        assert!(looks_like_rtsp(SETUP) && looks_like_rtsp(SETUP_OK));
        assert!(!looks_like_rtsp(b"\x16\x03\x01\x02\x00"));
        for cut in 0..SETUP_OK.len() {
            let _ = parse(&SETUP_OK[..cut]);
        }
    }

    #[test]
    fn huge_heads_are_read_only_within_the_bounds() {
        // A Transport header after MAX_HEADERS other headers is not read.
        let mut m = b"RTSP/1.0 200 OK\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            m.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        m.extend_from_slice(b"Transport: RTP/AVP;server_port=6003\r\n\r\n");
        assert_eq!(parse(&m).unwrap().transport, None);
        // Nor one beyond MAX_MESSAGE bytes.
        let mut m = b"RTSP/1.0 200 OK\r\nX-Pad: ".to_vec();
        m.extend(std::iter::repeat_n(b'a', MAX_MESSAGE));
        m.extend_from_slice(b"\r\nTransport: RTP/AVP;server_port=6003\r\n\r\n");
        assert_eq!(parse(&m).unwrap().transport, None);
        // A Transport value of a million parameters reads at most MAX_HEADERS of them.
        let long = "a=b;".repeat(1_000_000) + "server_port=6003";
        assert!(transport_ports(&long).is_empty());
    }
}
