//! TLS ClientHello parsing: as the start of a client's TCP stream (records, possibly a
//! ClientHello spread over several records) and as a bare handshake message (QUIC CRYPTO).
//!
//! Besides "no panic", it checks what the parser promises: a `NeedMore` asks for more than it
//! was given, a complete ClientHello stays complete (with the same SNI) when more stream
//! follows, and an SNI is always a well-formed host name.
#![no_main]

mod common;

use appletap::wire::tls::{self, ClientHello, TlsProbe};
use libfuzzer_sys::fuzz_target;

/// The documented shape of `ClientHello::sni`: ASCII letters, digits, `-`, `_`, dot-separated
/// labels of 1..=63 bytes, at most 255 bytes, no trailing dot.
fn check_sni(ch: &ClientHello<'_>) {
    if let Some(sni) = ch.sni.as_deref() {
        assert!(!sni.is_empty() && sni.len() <= 255, "SNI length: {sni:?}");
        for label in sni.split('.') {
            assert!((1..=63).contains(&label.len()), "SNI label: {sni:?}");
            assert!(
                label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "SNI bytes: {sni:?}"
            );
        }
        assert!(!ch.sni_malformed);
    }
    for p in ch.alpn_protocols() {
        std::hint::black_box(p);
    }
    std::hint::black_box(ch.clone().into_owned());
}

fuzz_target!(|data: &[u8]| {
    match tls::client_hello_from_records(data) {
        TlsProbe::Complete(ch) => {
            check_sni(&ch);
            // More stream after a complete ClientHello changes nothing.
            let mut longer = data.to_vec();
            longer.extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x10, 0xAA]);
            match tls::client_hello_from_records(&longer) {
                TlsProbe::Complete(again) => assert_eq!(again.sni, ch.sni, "SNI changed"),
                other => panic!("complete ClientHello became {other:?} with more data"),
            }
        }
        TlsProbe::NeedMore { wanted } => {
            assert!(
                wanted > data.len(),
                "NeedMore {{ wanted: {wanted} }} for {} bytes",
                data.len()
            );
        }
        TlsProbe::NotTls => {}
    }
    // As a bare handshake message: the input itself, and the input after a 5-byte record
    // header (so that record-shaped seeds serve both). Copied to a buffer of exact length.
    if let Ok(ch) = tls::client_hello_from_handshake(data) {
        check_sni(&ch);
    }
    if let Some(rest) = data.get(5..) {
        let msg = rest.to_vec();
        if let Ok(ch) = tls::client_hello_from_handshake(&msg) {
            check_sni(&ch);
        }
    }
});
