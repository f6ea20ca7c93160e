use super::*;
use crate::report::record::NameRecord;

fn record(client: &str, server: &str, service: &str) -> FlowRecord {
    FlowRecord {
        proto: "tcp".into(),
        client_ip: client.parse().unwrap(),
        client_port: Some(50000),
        client_mac: None,
        server_ip: server.parse().unwrap(),
        server_port: Some(443),
        community_id: None,
        service: service.into(),
        apple: true,
        confidence: Some("certain"),
        evidence: Vec::new(),
        name: Some("gateway.icloud.com".into()),
        state: "closed",
        first_ts: 1_700_000_000.25,
        last_ts: 1_700_000_001.5,
        packets_to_server: 10,
        packets_to_client: 12,
        bytes_to_server: 1000,
        bytes_to_client: 9000,
        role_by: "syn",
        tcp: None,
        alpn: None,
        user_agent: None,
        names: NameRecord::default(),
        icmp_error: None,
        tunnel: None,
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// Walks a message's sets: (set id, body) each, checking the lengths add up.
fn sets(msg: &[u8]) -> Vec<(u16, Vec<u8>)> {
    assert_eq!(be16(msg, 0), 10);
    assert_eq!(usize::from(be16(msg, 2)), msg.len());
    let mut at = 16;
    let mut out = Vec::new();
    while at < msg.len() {
        let (id, len) = (be16(msg, at), usize::from(be16(msg, at + 2)));
        assert!(len >= 4 && at + len <= msg.len());
        out.push((id, msg[at + 4..at + len].to_vec()));
        at += len;
    }
    out
}

#[test]
fn template_message_is_byte_exact() {
    let mut e = Encoder::new(7, DEFAULT_PEN);
    let msgs = e.templates(0x6553_f100);
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    // Header: version 10, length, export time, sequence 0, domain 7.
    assert_eq!(
        &m[..16],
        &[0, 10, 0, m[3], 0x65, 0x53, 0xf1, 0, 0, 0, 0, 0, 0, 0, 0, 7]
    );
    let s = sets(m);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].0, 2);
    let t = &s[0].1;
    // Template 256, 15 fields; first flowStartMilliseconds (152, 8).
    assert_eq!(&t[..8], &[1, 0, 0, 15, 0, 152, 0, 8]);
    // The reverse octet count: IE 1 with the enterprise bit, length 8, PEN 29305.
    let rev = [0x80, 1, 0, 8, 0, 0, 0x72, 0x79];
    assert!(t.windows(8).any(|w| w == rev));
    // The server name: enterprise IE 2, variable length, PEN 32473.
    let name = [0x80, 2, 0xff, 0xff, 0, 0, 0x7e, 0xd9];
    assert!(t.windows(8).any(|w| w == name));
    // Both templates: 4 + 11 plain fields * 4 + 4 enterprise fields * 8 = 80 bytes each.
    assert_eq!(t.len(), 160);
    assert_eq!(be16(t, 80), TEMPLATE_V6);
    // Options template 258: 2 fields, scope count 1, applicationId (95, 9), name (96, 32).
    assert_eq!(s[1], (3, vec![1, 2, 0, 2, 0, 1, 0, 95, 0, 9, 0, 96, 0, 32]));
}

#[test]
fn data_record_is_byte_exact() {
    let mut e = Encoder::new(1, DEFAULT_PEN);
    let msgs = e.records(&[record("192.0.2.1", "17.1.2.3", "icloud")], 100);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].1, 1);
    let s = sets(&msgs[0].0);
    // The options record naming the service, then the flow.
    assert_eq!(s.len(), 2);
    let sel = app_selector("icloud").to_be_bytes();
    let mut app = vec![20, 0, 0, 0x7e, 0xd9];
    app.extend_from_slice(&sel);
    let mut want = app.clone();
    want.extend_from_slice(b"icloud");
    want.resize(9 + 32, 0);
    assert_eq!(s[0], (TEMPLATE_APPS, want));
    assert_eq!(s[1].0, TEMPLATE_V4);
    let mut want = Vec::new();
    want.extend_from_slice(&1_700_000_000_250u64.to_be_bytes());
    want.extend_from_slice(&1_700_000_001_500u64.to_be_bytes());
    want.extend_from_slice(&[192, 0, 2, 1, 17, 1, 2, 3]);
    want.extend_from_slice(&[0xc3, 0x50, 1, 0xbb, 6, 3]);
    for n in [1000u64, 10, 9000, 12] {
        want.extend_from_slice(&n.to_be_bytes());
    }
    want.extend_from_slice(&app);
    want.push(3);
    want.push(18);
    want.extend_from_slice(b"gateway.icloud.com");
    assert_eq!(s[1].1, want);
    // Two data records sent: the next message says so.
    assert_eq!(e.sequence(), 2);
    let next = e.records(&[record("192.0.2.1", "17.1.2.3", "icloud")], 100);
    assert_eq!(be32(&next[0].0, 8), 2);
    // The service is named once.
    assert_eq!(sets(&next[0].0).len(), 1);
}

#[test]
fn messages_stay_under_the_mtu_and_split_by_family() {
    let mut e = Encoder::new(1, DEFAULT_PEN);
    let mut recs = Vec::new();
    for i in 0..100u32 {
        let mut r = record(
            "192.0.2.1",
            "17.1.2.3",
            if i % 2 == 0 { "icloud" } else { "apns" },
        );
        if i % 3 == 0 {
            r.client_ip = "2001:db8::1".parse().unwrap();
            r.server_ip = "2001:db8::2".parse().unwrap();
        }
        recs.push(r);
    }
    let msgs = e.records(&recs, 1);
    assert!(msgs.len() > 5);
    let mut flows = 0;
    let mut seq = 0;
    for (m, count) in &msgs {
        let mut in_msg = 0;
        assert!(m.len() <= MAX_MESSAGE);
        assert_eq!(be32(m, 8), seq);
        for (id, body) in sets(m) {
            // Fixed part plus the 19-byte name: 72 (IPv4) or 96 (IPv6).
            let size = match id {
                TEMPLATE_V4 => 72 + 19,
                TEMPLATE_V6 => 96 + 19,
                TEMPLATE_APPS => body.len(),
                _ => panic!("set {id}"),
            };
            assert_eq!(body.len() % size, 0);
            let n = body.len() / size;
            if id != TEMPLATE_APPS {
                in_msg += n;
            }
            seq += n as u32;
        }
        assert_eq!(in_msg, *count);
        flows += in_msg;
    }
    assert_eq!(flows, 100);
    assert_eq!(seq, 102);
    // A template refresh names every service seen.
    let t = e.templates(2);
    assert_eq!(sets(&t[0]).len(), 3);
}

#[test]
fn long_names_are_cut_at_a_character_boundary() {
    let mut buf = Vec::new();
    let s = "é".repeat(200);
    put_string(&mut buf, &s);
    assert_eq!(usize::from(buf[0]), buf.len() - 1);
    assert!(std::str::from_utf8(&buf[1..]).is_ok());
    assert!(buf.len() <= 254);
}

#[test]
fn record_fields_map_to_codes() {
    assert_eq!(proto_number("udp"), 17);
    assert_eq!(proto_number("ip-47"), 47);
    assert_eq!(proto_number("ip-x"), 0);
    assert_eq!(end_reason("reset"), 3);
    assert_eq!(end_reason("established"), 1);
    assert_eq!(confidence_code(Some("likely")), 2);
    assert_eq!(confidence_code(None), 0);
    // FNV-1a of the empty string is its offset basis.
    assert_eq!(app_selector(""), 0x811c_9dc5);
    assert_eq!(millis(-1.0), 0);
    assert_eq!(millis(f64::NAN), 0);
}
