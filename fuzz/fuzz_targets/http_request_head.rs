//! HTTP/1.x request-head inspection (httparse plus the line-scan fallback for many headers).
#![no_main]

use appletap::inspect::http::{self, HttpProbe, MAX_HEAD_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match http::request_head(data) {
        HttpProbe::Request(req) => {
            assert!(req.head_len <= data.len(), "head longer than the payload");
            if let Some(host) = req.host {
                assert!(!host.is_empty(), "an empty Host is reported as None");
                std::hint::black_box(host.to_ascii_lowercase());
            }
            std::hint::black_box((req.method, req.target, req.version, req.user_agent));
        }
        HttpProbe::NeedMore => {
            assert!(data.len() < MAX_HEAD_LEN, "NeedMore past the head limit");
        }
        HttpProbe::NotHttp => {}
    }
});
