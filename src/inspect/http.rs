//! HTTP/1.x request-head inspection: owns recognising a plaintext HTTP request at the start
//! of a client's TCP stream and pulling out its method, target, Host and User-Agent.
//!
//! `httparse` does the parsing, into a fixed header array on the stack; a head with more
//! headers than the array holds is scanned line by line instead, so no request is lost for
//! carrying many headers.

use httparse::{EMPTY_HEADER, Header, Status};

/// Headers parsed by `httparse` into the stack array; more fall back to a line scan.
pub const MAX_HEADERS: usize = 32;
/// Longest request head waited for. A stream that is still an incomplete head after this
/// many bytes is not treated as HTTP (real request heads are a few hundred bytes).
pub const MAX_HEAD_LEN: usize = 16 * 1024;

/// The parts of an HTTP request head a classifier uses, borrowed from the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// Request method, e.g. `GET` (any token: unknown methods are data).
    pub method: &'a str,
    /// Request target as sent: `/path`, an absolute URI, or `host:port` for CONNECT.
    pub target: &'a str,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Host without port and without IPv6 brackets, as sent (not lower-cased). From the
    /// Host header, or from the request target when there is no Host header (absolute-form
    /// URI, or CONNECT's authority). `None` if absent, empty or malformed.
    pub host: Option<&'a str>,
    /// User-Agent header value, trimmed; `None` if absent, empty or not UTF-8.
    pub user_agent: Option<&'a str>,
    /// Length of the request head in bytes, up to and including the empty line.
    pub head_len: usize,
}

/// Outcome of looking for an HTTP request head at the start of a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpProbe<'a> {
    /// A complete request head.
    Request(Request<'a>),
    /// An HTTP request so far, but its head is not complete.
    NeedMore,
    /// Not an HTTP/1.x request (or a malformed one): stop looking.
    NotHttp,
}

/// Looks for an HTTP/1.x request head at the start of `payload`.
pub fn request_head(payload: &[u8]) -> HttpProbe<'_> {
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(payload) {
        Ok(Status::Complete(head_len)) => {
            let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version)
            else {
                return HttpProbe::NotHttp;
            };
            let host = header(req.headers, "host");
            let user_agent = header(req.headers, "user-agent");
            HttpProbe::Request(request(method, target, version, host, user_agent, head_len))
        }
        Ok(Status::Partial) if payload.len() < MAX_HEAD_LEN => HttpProbe::NeedMore,
        Ok(Status::Partial) => HttpProbe::NotHttp,
        Err(httparse::Error::TooManyHeaders) => {
            // `httparse` fills the request line before the headers and keeps it on this
            // error, so the line is known to be valid.
            match (req.method, req.path, req.version) {
                (Some(method), Some(target), Some(version)) => {
                    scan_headers(payload, method, target, version)
                }
                _ => HttpProbe::NotHttp,
            }
        }
        Err(_) => HttpProbe::NotHttp,
    }
}

fn request<'a>(
    method: &'a str,
    target: &'a str,
    version: u8,
    host: Option<&'a [u8]>,
    user_agent: Option<&'a [u8]>,
    head_len: usize,
) -> Request<'a> {
    let host = match host {
        Some(value) => host_without_port(value),
        None => host_from_target(method, target),
    };
    Request {
        method,
        target,
        version,
        host,
        user_agent: user_agent.and_then(text),
        head_len,
    }
}

/// Value of the first header called `name` (ASCII case-insensitive).
fn header<'a>(headers: &[Header<'a>], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// The head of a request with more than [`MAX_HEADERS`] headers, scanned line by line.
fn scan_headers<'a>(
    payload: &'a [u8],
    method: &'a str,
    target: &'a str,
    version: u8,
) -> HttpProbe<'a> {
    let window = payload.get(..MAX_HEAD_LEN).unwrap_or(payload);
    let Some(head_len) = head_end(window) else {
        return if payload.len() < MAX_HEAD_LEN {
            HttpProbe::NeedMore
        } else {
            HttpProbe::NotHttp
        };
    };
    let head = window.get(..head_len).unwrap_or(window);
    let mut host = None;
    let mut user_agent = None;
    // Skip the request line, which `httparse` already checked.
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return HttpProbe::NotHttp;
        };
        let (name, value) = line.split_at(colon);
        let value = value.get(1..).unwrap_or(&[]);
        if name.eq_ignore_ascii_case(b"host") {
            host = host.or(Some(value));
        } else if name.eq_ignore_ascii_case(b"user-agent") {
            user_agent = user_agent.or(Some(value));
        }
    }
    HttpProbe::Request(request(method, target, version, host, user_agent, head_len))
}

/// Length of the head up to and including the blank line (CRLF CRLF, or bare LF LF as
/// `httparse` also accepts).
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut prev_newline = false;
    let mut i = 0;
    while let Some(&b) = buf.get(i) {
        match b {
            b'\n' if prev_newline => return Some(i + 1),
            b'\n' => prev_newline = true,
            b'\r' => {}
            _ => prev_newline = false,
        }
        i += 1;
    }
    None
}

/// A header value as trimmed UTF-8 text, if non-empty.
fn text(value: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(value).ok()?.trim_matches([' ', '\t']);
    (!s.is_empty()).then_some(s)
}

/// The host part of a Host value (`host`, `host:port`, `[v6]`, `[v6]:port`).
fn host_without_port(value: &[u8]) -> Option<&str> {
    let value = text(value)?;
    let host = if let Some(bracketed) = value.strip_prefix('[') {
        let (inside, after) = bracketed.split_once(']')?;
        if !after.is_empty() && !is_port(after.strip_prefix(':')?) {
            return None;
        }
        inside
    } else {
        match value.split_once(':') {
            // A second colon: an unbracketed IPv6 literal (invalid, but unambiguous).
            Some((_, rest)) if rest.contains(':') => value,
            Some((host, port)) if is_port(port) => host,
            Some(_) => return None,
            None => value,
        }
    };
    // No spaces, controls or URI delimiters; non-ASCII (IDN sent raw) is let through.
    let plausible = !host.is_empty()
        && host.bytes().all(|b| {
            (b.is_ascii_graphic() && !matches!(b, b'/' | b'@' | b'[' | b']')) || !b.is_ascii()
        });
    plausible.then_some(host)
}

/// `digits` is a port (possibly empty, as `host:` is allowed by RFC 3986).
fn is_port(digits: &str) -> bool {
    digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The host named by the request target, for requests without a Host header: CONNECT's
/// `host:port`, or the authority of an absolute URI.
fn host_from_target<'a>(method: &str, target: &'a str) -> Option<&'a str> {
    if method == "CONNECT" {
        return host_without_port(target.as_bytes());
    }
    let scheme_end = target.find("://")?;
    let scheme = target.get(..scheme_end)?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
    let rest = target.get(scheme_end + 3..)?;
    let authority = rest.split(['/', '?', '#']).next()?;
    // Drop any `user:password@`.
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    host_without_port(authority.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_of(payload: &[u8]) -> Request<'_> {
        match request_head(payload) {
            HttpProbe::Request(r) => r,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    /// ndpi__iphone.pcap frame 87: the iPhone's captive-portal probe.
    const CAPTIVE: &[u8] = b"GET /hotspot-detect.html HTTP/1.0\r\n\
        Host: captive.apple.com\r\n\
        Connection: close\r\n\
        User-Agent: CaptiveNetworkSupport-390.60.1 wispr\r\n\
        \r\n";

    /// mercury__capture2.pcap frame 5589: macOS trustd asking Apple's OCSP responder.
    const OCSP: &[u8] =
        b"GET /ocsp04-devid01/ME4wTKADAgEAMEUwQzBBMAkGBSsOAwIaBQAEFDOB0e%2FbaLCFIU0u\
        76%2BMSmlkPCpsBBRXF%2B2iz9x8mKEQ4Py%2Bhy0s8uMXVAIIM%2F80HoknJ0w%3D HTTP/1.1\r\n\
        Host: ocsp.apple.com\r\n\
        Accept: */*\r\n\
        Accept-Language: en-us\r\n\
        Connection: keep-alive\r\n\
        Accept-Encoding: gzip, deflate\r\n\
        User-Agent: com.apple.trustd/2.0\r\n\
        \r\n";

    #[test]
    fn captive_portal_probe() {
        let r = request_of(CAPTIVE);
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, "/hotspot-detect.html");
        assert_eq!(r.version, 0);
        assert_eq!(r.host, Some("captive.apple.com"));
        assert_eq!(r.user_agent, Some("CaptiveNetworkSupport-390.60.1 wispr"));
        assert_eq!(r.head_len, CAPTIVE.len());
    }

    #[test]
    fn trustd_ocsp() {
        assert_eq!(OCSP.len(), 302, "same length as tcp.len of the frame");
        let r = request_of(OCSP);
        assert_eq!(r.host, Some("ocsp.apple.com"));
        assert_eq!(r.user_agent, Some("com.apple.trustd/2.0"));
        assert_eq!(r.version, 1);
        // A body or the next pipelined request after the head is not part of it.
        let mut more = OCSP.to_vec();
        more.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(request_of(&more).head_len, OCSP.len());
    }

    #[test]
    fn partial_heads_need_more() {
        for cut in 0..CAPTIVE.len() {
            assert_eq!(
                request_head(&CAPTIVE[..cut]),
                HttpProbe::NeedMore,
                "cut {cut}"
            );
        }
    }

    #[test]
    fn not_http() {
        let client_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
        assert_eq!(request_head(client_hello), HttpProbe::NotHttp);
        assert_eq!(request_head(b"\x00\x01\x02\x03"), HttpProbe::NotHttp);
        assert_eq!(request_head(b"SSH-2.0-OpenSSH_9.6\r\n"), HttpProbe::NotHttp);
        // HTTP/2 prior-knowledge preface, and a response instead of a request.
        assert_eq!(
            request_head(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            HttpProbe::NotHttp
        );
        assert_eq!(request_head(b"HTTP/1.1 200 OK\r\n\r\n"), HttpProbe::NotHttp);
        assert_eq!(
            request_head(b"GET / HTTP/1.1\r\nHost captive.apple.com\r\n\r\n"),
            HttpProbe::NotHttp
        );
        // A head that never ends is given up on.
        let mut endless = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        endless.resize(MAX_HEAD_LEN, b'a');
        assert_eq!(request_head(&endless), HttpProbe::NotHttp);
    }

    #[test]
    fn host_forms() {
        let cases: [(&[u8], Option<&str>); 12] = [
            (b"captive.apple.com", Some("captive.apple.com")),
            (b"captive.apple.com:80", Some("captive.apple.com")),
            (b"  Captive.Apple.COM:8080 ", Some("Captive.Apple.COM")),
            (b"17.253.21.203:80", Some("17.253.21.203")),
            (b"[2620:149:a44::1]:443", Some("2620:149:a44::1")),
            (b"[2620:149:a44::1]", Some("2620:149:a44::1")),
            (b"2620:149:a44::1", Some("2620:149:a44::1")),
            (b"host:", Some("host")),
            (b"host:http", None),
            (b"[::1]x", None),
            (b"", None),
            (b"a/b", None),
        ];
        for (value, want) in cases {
            assert_eq!(
                host_without_port(value),
                want,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn host_from_the_target_without_host_header() {
        let r = request_of(b"GET http://init.itunes.apple.com:80/bag.xml HTTP/1.0\r\n\r\n");
        assert_eq!(r.host, Some("init.itunes.apple.com"));
        let r = request_of(b"CONNECT gateway.icloud.com:443 HTTP/1.1\r\nUser-Agent: x\r\n\r\n");
        assert_eq!(r.host, Some("gateway.icloud.com"));
        assert_eq!(r.user_agent, Some("x"));
        let r = request_of(b"GET https://u:p@[2620:149::1]:8443/x?y HTTP/1.1\r\n\r\n");
        assert_eq!(r.host, Some("2620:149::1"));
        let r = request_of(b"GET /x HTTP/1.1\r\n\r\n");
        assert_eq!((r.host, r.user_agent), (None, None));
        // A Host header wins over the target.
        let r = request_of(b"GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n");
        assert_eq!(r.host, Some("b.example"));
    }

    #[test]
    fn odd_but_valid_heads() {
        // Lower-case header names, bare LF line ends, leading empty line, unknown method,
        // and a User-Agent that is not UTF-8.
        let r =
            request_of(b"\r\nPROPFIND /dav HTTP/1.1\nhost: idisk.me.com\nuser-agent: \xff\xfe\n\n");
        assert_eq!(r.method, "PROPFIND");
        assert_eq!(r.host, Some("idisk.me.com"));
        assert_eq!(r.user_agent, None);
    }

    #[test]
    fn too_many_headers_still_give_host_and_user_agent() {
        let mut head = b"GET /bag.xml HTTP/1.1\r\n".to_vec();
        for i in 0..MAX_HEADERS + 8 {
            head.extend_from_slice(format!("X-Filler-{i}: {i}\r\n").as_bytes());
        }
        head.extend_from_slice(b"HOST: init.itunes.apple.com:443\r\n");
        head.extend_from_slice(b"User-Agent: iTunes/12.12\r\n");
        head.extend_from_slice(b"Host: second.example\r\n\r\n");
        let r = request_of(&head);
        assert_eq!(r.method, "GET");
        assert_eq!(r.host, Some("init.itunes.apple.com"));
        assert_eq!(r.user_agent, Some("iTunes/12.12"));
        assert_eq!(r.head_len, head.len());
        // Still waiting while the long head is incomplete, and still strict about lines.
        assert_eq!(request_head(&head[..head.len() - 2]), HttpProbe::NeedMore);
        let mut broken = head[..head.len() - 2].to_vec();
        broken.extend_from_slice(b"no colon here\r\n\r\n");
        assert_eq!(request_head(&broken), HttpProbe::NotHttp);
    }

    #[test]
    fn mutated_heads_never_panic() {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for round in 0..4_000 {
            let mut bytes = if round % 2 == 0 { CAPTIVE } else { OCSP }.to_vec();
            for _ in 0..1 + state % 3 {
                state = crate::testing::xorshift(state);
                let at = (state % bytes.len() as u64) as usize;
                bytes[at] = (state >> 32) as u8;
            }
            if let HttpProbe::Request(r) = request_head(&bytes) {
                assert!(r.head_len <= bytes.len());
            }
        }
    }
}
