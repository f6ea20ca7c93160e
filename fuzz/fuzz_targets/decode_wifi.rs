//! One 802.11 frame, as RADIOTAP (radiotap header first) and as plain 802.11: the network
//! slice, the decoded packet, its link addresses and the frame kind counted in the report.
#![no_main]

mod common;

use appletap::capture::LinkType;
use appletap::decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    for link in [LinkType::IEEE802_11_RADIOTAP, LinkType::IEEE802_11] {
        common::decode_frame(link, frame);
        std::hint::black_box(decode::link::wifi_frame_kind(link, frame));
        if let Some(a) = decode::link::addresses(link, frame) {
            // What a batch keeps of the addresses gives them back.
            assert_eq!(decode::LinkAddrs::from_bytes(a.bytes()), Some(a));
            std::hint::black_box((a.src(), a.dst(), a.receiver(), a.transmitter()));
        }
    }
});
