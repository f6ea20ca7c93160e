//! One BSD loopback frame, as NULL (host byte order) and LOOP (network byte order).
#![no_main]

mod common;

use appletap::capture::LinkType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    common::decode_frame(LinkType::NULL, frame);
    common::decode_frame(LinkType::LOOP, frame);
});
