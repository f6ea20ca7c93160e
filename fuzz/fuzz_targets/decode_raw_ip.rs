//! One raw IP packet under every raw link type (RAW, DLT 12/14, IPV4, IPV6) and from_ip.
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
    if let Ok(meta) = appletap::decode::from_ip(frame) {
        common::touch_meta(&meta);
    }
});
