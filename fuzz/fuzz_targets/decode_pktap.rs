//! One macOS PKTAP frame (metadata header, then the inner link layer).
#![no_main]

mod common;

use appletap::capture::LinkType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    common::decode_frame(LinkType::PKTAP, frame);
});
