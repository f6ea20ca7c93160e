//! Tests of the QUIC view: the RFC 9001 and RFC 9369 key vectors, the test sealer against the
//! RFC sample packets, and packet number recovery. Decrypting whole flows is tested with the
//! CRYPTO assembler in [`crate::inspect::quic`].

use super::keys::{KeyMaterial, decode_packet_number};
use super::testing::*;
use super::{PacketKind, QuicVersion};

fn assert_key_material(version: QuicVersion, secret: &str, key: &str, iv: &str, hp: &str) {
    let m = KeyMaterial::derive(version, &RFC_DCID).unwrap();
    assert_eq!(m.secret.to_vec(), hex(secret), "client_initial_secret");
    assert_eq!(m.key.to_vec(), hex(key), "key");
    assert_eq!(m.iv.to_vec(), hex(iv), "iv");
    assert_eq!(m.hp.to_vec(), hex(hp), "hp");
}

#[test]
fn rfc9001_a1_client_keys() {
    assert_key_material(
        QuicVersion::V1,
        "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea",
        "1f369613dd76d5467730efcbe3b1a22d",
        "fa044b2f42a3fd3b46fb255c",
        "9f50449e04a0e810283a1e9933adedd2",
    );
}

#[test]
fn rfc9369_a1_client_keys() {
    assert_key_material(
        QuicVersion::V2,
        "14ec9d6eb9fd7af83bf5a668bc17a7e283766aade7ecd0891f70f9ff7f4bf47b",
        "8b1a0bc121284290a29e0971b5cd045d",
        "91f73e2351d8fa91660e909f",
        "45b95e15235d6f45a6b19cbcb0294ba9",
    );
}

/// The test sealer reproduces the RFC packets byte for byte, so the synthetic packets the
/// other tests build are protected exactly as real clients protect theirs.
#[test]
fn test_sealer_matches_rfc_vectors() {
    let mut payload = hex(RFC_CRYPTO_FRAME);
    payload.resize(1162, 0);
    for (version, expected) in [
        (QuicVersion::V1, RFC9001_CLIENT_INITIAL),
        (QuicVersion::V2, RFC9369_CLIENT_INITIAL),
    ] {
        let sealed = seal(
            version,
            PacketKind::Initial,
            &RFC_DCID,
            &RFC_DCID,
            b"",
            b"",
            2,
            4,
            &payload,
        );
        assert_eq!(sealed, hex(expected), "{version:?}");
    }
}

#[test]
fn packet_number_recovery() {
    // RFC 9000 Appendix A.3 example: largest 0xa82f30ea, 16-bit 0x9b32 → 0xa82f9b32.
    assert_eq!(
        decode_packet_number(Some(0xa82f_30ea), 0x9b32, 16),
        0xa82f_9b32
    );
    assert_eq!(decode_packet_number(None, 0, 8), 0);
    assert_eq!(decode_packet_number(None, 7, 8), 7);
    assert_eq!(decode_packet_number(Some(300), 0x2c, 8), 300);
}

#[test]
fn frames_in_order_and_the_first_error_ends_the_walk() {
    use super::QuicError;
    use super::frames::{Frame, Frames};
    let mut payload = vec![0x00, 0x01, 0x02, 0x05, 0x00, 0x00, 0x00];
    payload.extend(crypto_frame(7, b"hello"));
    payload.extend([0x1c, 0x0a, 0x06, 0x03, b'b', b'y', b'e']);
    payload.extend([0x08, 0x00, 0x00]);
    payload.extend(crypto_frame(0, b"never read"));
    let frames: Vec<_> = Frames::new(&payload).collect();
    assert_eq!(
        frames,
        [
            Ok(Frame::Padding),
            Ok(Frame::Ping),
            Ok(Frame::Ack),
            Ok(Frame::Crypto {
                offset: 7,
                data: b"hello"
            }),
            Ok(Frame::ConnectionClose),
            Err(QuicError::ForbiddenFrame(0x08)),
        ]
    );
    // A CRYPTO frame claiming more bytes than are left is malformed, not read past.
    let mut short = crypto_frame(0, b"abc");
    short.pop();
    assert_eq!(
        Frames::new(&short).collect::<Vec<_>>(),
        [Err(QuicError::MalformedFrame)]
    );
    assert_eq!(Frames::new(&[]).count(), 0);
}
