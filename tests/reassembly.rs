//! ClientHellos cut into small segments, reordered and duplicated (by `tcprewrite --fragroute`
//! on a real capture) give the same SNI on the same flows as the original.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::*;

fn snis(path: &std::path::Path) -> BTreeSet<(String, u16, String)> {
    run_engine(path)
        .records
        .into_iter()
        .filter_map(|r| {
            let sni = r.names.sni.clone()?;
            Some((r.server_ip.to_string(), r.server_port.unwrap_or(0), sni))
        })
        .collect()
}

fn fragrouted(config: &str, name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("frag.conf");
    std::fs::write(&conf, config).unwrap();
    let out = Command::new("tcprewrite")
        .arg(format!("--fragroute={}", conf.display()))
        .arg(format!(
            "--infile={}",
            shared_pcaps().join("ndpi__iphone.pcap").display()
        ))
        .arg(format!("--outfile={}", dir.path().join(name).display()))
        .output()
        .expect("tcprewrite runs (tcpreplay is installed by .ci/setup)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

#[test]
fn client_hello_cut_reordered_and_duplicated_gives_the_same_sni() {
    let original = snis(&shared_pcaps().join("ndpi__iphone.pcap"));
    assert_eq!(
        original.len(),
        11,
        "the iPhone capture has 11 distinct (server, SNI) pairs"
    );
    for (config, what) in [
        (
            "tcp_seg 8\norder reverse\n",
            "8-byte segments in reverse order",
        ),
        (
            "tcp_seg 24\norder random\ndup random 30\n",
            "24-byte segments, shuffled, 30% duplicated",
        ),
        (
            "tcp_seg 5 new\norder random\n",
            "5-byte segments with overlapping new data, shuffled",
        ),
    ] {
        let dir = fragrouted(config, "frag.pcap");
        let cut = dir.path().join("frag.pcap");
        assert_eq!(snis(&cut), original, "{what}");
    }
}
