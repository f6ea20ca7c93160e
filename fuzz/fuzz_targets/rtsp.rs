//! RTSP messages (the start line, `Transport` ports, `Session`, an SDP body): any bytes parse
//! or are refused without panic, and what is read stays within the bounds (ports non-zero, at
//! most 4 SDP ports, a port range of at most two ports).
#![no_main]

use appletap::inspect::rtsp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = rtsp::parse(data) else {
        return;
    };
    assert!(rtsp::looks_like_rtsp(data));
    assert!(m.sdp_ports.len() <= 4 && m.sdp_ports.iter().all(|p| *p != 0));
    if let Some(t) = m.transport {
        for (a, b) in [t.server_port, t.client_port].into_iter().flatten() {
            assert!(a != 0 && a <= b && b - a <= 1);
        }
        assert!(t.control_port != Some(0) && t.timing_port != Some(0));
    }
});
