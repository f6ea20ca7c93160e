//! Every shared capture is read in full, with tshark's packet count, and every packet is
//! either decoded or skipped for a counted reason.

mod common;

use common::*;

#[test]
fn every_shared_capture_reads_with_tsharks_packet_count() {
    for path in shared_captures() {
        let run = run_engine(&path);
        let name = path.file_name().unwrap().to_string_lossy();
        assert_eq!(run.error, None, "{name} must read without error");
        assert_eq!(
            run.stats.read,
            tshark_packets(&path),
            "{name}: packet count"
        );
        assert_eq!(
            run.stats.read,
            run.stats.decoded + run.stats.skipped_total(),
            "{name}: read = decoded + skipped"
        );
        let in_flows: u64 = run
            .records
            .iter()
            .map(|r| r.packets_to_server + r.packets_to_client)
            .sum();
        assert_eq!(
            in_flows, run.stats.decoded,
            "{name}: every decoded packet is in a flow"
        );
    }
}

#[test]
fn every_link_type_of_the_shared_captures_decodes_to_ip() {
    // Raw IP, PKTAP and PPPoE-in-QinQ: all their packets are IP.
    for f in [
        "sv__bug-5881-01__input.pcap",
        "sv__tcp-fastopen-10-syn-data-ignore__input.pcap",
        "tcpdump__LINKTYPE_PKTAP.pcap",
        "zeek__pppoe-over-qinq.pcap",
    ] {
        let run = run_engine(&shared_pcaps().join(f));
        assert_eq!(
            run.stats.decoded, run.stats.read,
            "{f}: every packet decodes to IP"
        );
    }
}
