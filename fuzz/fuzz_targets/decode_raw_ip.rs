//! One raw IP packet under every raw link type (RAW, DLT 12/14, IPV4, IPV6) and from_ip,
//! whose hand-written fast path must give exactly etherparse's answer.
#![no_main]

mod common;

use appletap::capture::LinkType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    for link in [
        LinkType::RAW,
        LinkType::RAW_DLT12,
        LinkType::RAW_DLT14,
        LinkType::IPV4,
        LinkType::IPV6,
    ] {
        common::decode_frame(link, frame);
    }
    let fast = appletap::decode::from_ip(frame);
    let lax = appletap::decode::from_ip_by_etherparse(frame);
    match (&fast, &lax) {
        (Ok(a), Ok(b)) => {
            let fields = |m: &appletap::decode::PacketMeta<'_>| {
                let icmp = m
                    .icmp
                    .map(|i| (i.v6, i.icmp_type, i.code, i.quoted.as_ptr(), i.quoted.len()));
                (
                    m.src,
                    m.dst,
                    m.proto,
                    m.src_port,
                    m.dst_port,
                    m.tcp_flags,
                    m.tcp_seq,
                    m.payload.as_ptr(),
                    m.payload.len(),
                    icmp,
                )
            };
            assert_eq!(fields(a), fields(b), "fast path and etherparse disagree");
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "fast path and etherparse disagree"),
        _ => panic!("fast path and etherparse disagree: {fast:?} vs {lax:?}"),
    }
    if let Ok(meta) = fast {
        common::touch_meta(&meta);
    }
});
