//! One Ethernet frame (VLAN/QinQ tags, PPPoE, 802.3 LLC/SNAP) down to its transport header.
#![no_main]

mod common;

use appletap::capture::LinkType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    common::decode_frame(LinkType::ETHERNET, frame);
});
