//! One Linux cooked v1 (SLL) frame down to its transport header.
#![no_main]

mod common;

use appletap::capture::LinkType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    common::decode_frame(LinkType::LINUX_SLL, frame);
});
