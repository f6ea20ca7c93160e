//! One Linux cooked v2 (SLL2) frame down to its transport header.
#![no_main]

mod common;

use appletap::capture::LinkType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    common::decode_frame(LinkType::LINUX_SLL2, frame);
});
