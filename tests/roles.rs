//! Client and server of flows whose capture starts mid-conversation or whose ports are equal
//! (issue 17): the protocols' own markers decide before the ports and the first sender, and
//! `role_by` says which did. Fixtures in fixtures/roles/ are cuts of real captures made by
//! fixtures/make_role_fixtures.sh (its README says what each is).

mod common;

use std::path::{Path, PathBuf};

use appletap::report::record::FlowRecord;
use common::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/roles")
        .join(name)
}

fn records(path: &Path) -> Vec<FlowRecord> {
    let run = run_engine(path);
    assert!(run.error.is_none(), "{:?}", run.error);
    run.records
}

/// The one flow with this server address.
fn flow_to<'a>(recs: &'a [FlowRecord], server: &str) -> &'a FlowRecord {
    let found: Vec<&FlowRecord> = recs
        .iter()
        .filter(|r| r.server_ip.to_string() == server)
        .collect();
    assert_eq!(found.len(), 1, "flows to {server}: {recs:#?}");
    found[0]
}

#[test]
fn ntp_reply_first_makes_apples_time_server_the_server_and_labels_it() {
    let recs = records(&fixture("ntp-apple-reply-first.pcap"));
    assert_eq!(recs.len(), 1);
    let r = flow_to(&recs, "17.253.26.125");
    assert_eq!(r.role_by, "ntp-mode");
    assert_eq!(r.client_ip.to_string(), "192.168.43.118");
    assert_eq!((r.client_port, r.server_port), (Some(123), Some(123)));
    assert_eq!(r.service, "time");
    assert!(r.apple);
    // The reply came first: its packet is counted to the client, the request to the server.
    assert_eq!((r.packets_to_server, r.packets_to_client), (1, 1));
    assert_eq!(r.state, "established");
}

#[test]
fn ntp_reply_alone_on_equal_ports_still_has_its_sender_as_server() {
    let recs = records(&fixture("ntp-reply-first.pcap"));
    assert_eq!(recs.len(), 16, "one flow per pool server");
    for r in &recs {
        assert_eq!(r.role_by, "ntp-mode", "{r:?}");
        assert_eq!(r.client_ip.to_string(), "192.168.43.118", "{r:?}");
        assert!(!r.apple, "no pool server is Apple's: {r:?}");
    }
    let first = flow_to(&recs, "80.211.52.109");
    assert_eq!((first.packets_to_server, first.packets_to_client), (0, 1));
    assert_eq!(first.state, "partial");
}

#[test]
fn dns_response_first_has_the_resolver_as_server() {
    let recs = records(&fixture("dns-response-first.pcap"));
    assert_eq!(recs.len(), 1);
    let r = flow_to(&recs, "192.168.2.1");
    assert_eq!(r.role_by, "dns-qr");
    assert_eq!((r.client_port, r.server_port), (Some(63143), Some(53)));
    assert_eq!(r.service, "dns");
}

#[test]
fn unicast_mdns_replies_on_equal_ports_have_the_responder_as_server() {
    // ndpi__anyconnect-vpn.pcap frames 102 and 167: the Mac 10.0.0.227 answers 10.0.0.213's
    // questions by unicast, 5353 to 5353, and no question goes the other way.
    let recs = records(&shared_pcaps().join("ndpi__anyconnect-vpn.pcap"));
    let r = recs
        .iter()
        .find(|r| {
            let ends = [r.client_ip.to_string(), r.server_ip.to_string()];
            ends.contains(&"10.0.0.213".to_string()) && ends.contains(&"10.0.0.227".to_string())
        })
        .expect("the unicast mDNS flow");
    assert_eq!(r.role_by, "dns-qr");
    assert_eq!(r.server_ip.to_string(), "10.0.0.227");
    assert_eq!((r.packets_to_server, r.packets_to_client), (0, 2));
    // Answers without a question seen: not an unanswered request (no "bonjour blocked").
    assert_eq!(r.state, "partial");
}

#[test]
fn syn_ack_first_has_its_sender_as_server() {
    let recs = records(&fixture("tls-synack-first.pcap"));
    assert_eq!(recs.len(), 1);
    let r = flow_to(&recs, "17.248.176.75");
    assert_eq!(r.role_by, "syn");
    assert_eq!(r.server_port, Some(443));
    assert_eq!(r.names.sni.as_deref(), Some("gateway.icloud.com"));
    assert_eq!(r.service, "icloud");
}

#[test]
fn server_hello_first_has_its_sender_as_server() {
    let recs = records(&fixture("tls-serverhello-first.pcap"));
    assert_eq!(recs.len(), 1);
    let r = flow_to(&recs, "17.248.176.75");
    assert_eq!(r.role_by, "tls-hello");
    assert_eq!(r.client_ip.to_string(), "192.168.2.17");
    assert_eq!(r.server_port, Some(443));
}

#[test]
fn a_client_hello_after_a_wrong_guess_swaps_the_roles_and_is_read() {
    // First packet: the client's bare ACK from 50580 to 65000, neither a signature port, so the
    // lower port (the client's) is guessed to be the server's; the ClientHello next swaps the
    // roles, and the inspector reads it as the client's.
    let recs = records(&fixture("tls-high-port-clienthello-second.pcap"));
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r.role_by, "tls-hello");
    assert_eq!(r.client_ip.to_string(), "192.168.2.17");
    assert_eq!((r.client_port, r.server_port), (Some(50580), Some(65000)));
    assert_eq!(r.names.sni.as_deref(), Some("gateway.icloud.com"));
    assert_eq!(r.service, "icloud");
    // Every packet counted on its own side, the first one included (tshark: 24 from the
    // iPhone, 19 from the server).
    assert_eq!((r.packets_to_server, r.packets_to_client), (24, 19));
}

#[test]
fn equal_ports_without_a_marker_fall_back_to_the_first_sender() {
    // ndpi__rtp.pcapng: RTP from 10.204.220.71:6000 to 10.204.220.171:6000, one way.
    let recs = records(&shared_pcaps().join("ndpi__rtp.pcapng"));
    let r = recs
        .iter()
        .find(|r| r.client_port == Some(6000) && r.server_port == Some(6000))
        .expect("the RTP flow");
    assert_eq!(r.role_by, "first-sender");
    assert_eq!(r.client_ip.to_string(), "10.204.220.71");
}

#[test]
fn the_fixtures_are_what_the_script_makes() {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/make_role_fixtures.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut n = 0;
    for e in std::fs::read_dir(fixture("")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "pcap") {
            let made = std::fs::read(dir.path().join(p.file_name().unwrap())).unwrap();
            assert!(
                made == std::fs::read(&p).unwrap(),
                "{} differs",
                p.display()
            );
            n += 1;
        }
    }
    assert_eq!(n, 6);
}
