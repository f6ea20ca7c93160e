//! QUIC Initial decryption and CRYPTO reassembly (`CryptoAssembler`), then the ClientHello.
//!
//! Two input modes, by the low bit of the first byte:
//! - raw (0): the rest is a list of datagrams, each `[len: u16 BE][bytes]` (the last one takes
//!   what is left), fed in order. Reaches header parsing, coalescing and the failure paths;
//!   mutations of real Initials almost never authenticate.
//! - sealed (1): the harness encrypts fuzzer-chosen plaintext as client Initials the way a
//!   client does (RFC 9001 §5, RFC 9369 for v2), so mutations of CRYPTO/ACK/PADDING frames,
//!   offsets and packet numbers reach reassembly and the TLS parser. Layout after the mode
//!   byte: `flags` (bit 0: QUIC v2; bits 1..=5: DCID length, capped at 20), the DCID, then
//!   packets `[pn: u8][ctl: u8][len: u16 BE][plaintext]`. `ctl` bits 0..=1: packet number
//!   length - 1; bit 2: keys from another DCID (a client Initial after a Retry); bit 3:
//!   coalesce with the previous packet into one datagram; bit 4: a v1 packet in a v2 flow or
//!   the other way round.
//!
//! Checks: the reassembled CRYPTO bytes stay under `MAX_CRYPTO_BYTES`, a complete flow gives a
//! ClientHello message that parses or fails cleanly, and its SNI is a host name.
#![no_main]

use appletap::inspect::quic::{CryptoAssembler, MAX_CRYPTO_BYTES, QuicProgress};
use appletap::wire::quic::QuicVersion;
use appletap::wire::tls;
use libfuzzer_sys::fuzz_target;
use ring::aead::{self, quic as hp};
use ring::hkdf;

const V1_SALT: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
const V2_SALT: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];
const MAX_DATAGRAMS: usize = 32;

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand_label(prk: &hkdf::Prk, label: &[u8], out: &mut [u8]) {
    let full = [b"tls13 ".as_slice(), label].concat();
    let info: [&[u8]; 4] = [
        &(out.len() as u16).to_be_bytes(),
        &[full.len() as u8],
        &full,
        &[0],
    ];
    prk.expand(&info, Len(out.len()))
        .unwrap()
        .fill(out)
        .unwrap();
}

struct Keys {
    aead: aead::LessSafeKey,
    iv: [u8; 12],
    hp: hp::HeaderProtectionKey,
}

fn client_keys(v2: bool, dcid: &[u8]) -> Keys {
    let (salt, labels): (&[u8], [&[u8]; 3]) = if v2 {
        (&V2_SALT, [b"quicv2 key", b"quicv2 iv", b"quicv2 hp"])
    } else {
        (&V1_SALT, [b"quic key", b"quic iv", b"quic hp"])
    };
    let initial = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(dcid);
    let mut secret = [0u8; 32];
    expand_label(&initial, b"client in", &mut secret);
    let client = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &secret);
    let (mut key, mut iv, mut hpk) = ([0u8; 16], [0u8; 12], [0u8; 16]);
    expand_label(&client, labels[0], &mut key);
    expand_label(&client, labels[1], &mut iv);
    expand_label(&client, labels[2], &mut hpk);
    Keys {
        aead: aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &key).unwrap()),
        iv,
        hp: hp::HeaderProtectionKey::new(&hp::AES_128, &hpk).unwrap(),
    }
}

/// A protected client Initial: RFC 9001 §5.3 (AEAD) and §5.4 (header protection).
fn seal(v2: bool, keys: &Keys, dcid: &[u8], pn: u64, pn_len: usize, plaintext: &[u8]) -> Vec<u8> {
    let mut payload = plaintext.to_vec();
    if payload.len() < 4 {
        payload.resize(4, 0); // PADDING: room for the header-protection sample
    }
    let (version, initial_bits) = if v2 {
        (QuicVersion::V2_WIRE, 0b01)
    } else {
        (QuicVersion::V1_WIRE, 0b00)
    };
    let mut pkt = vec![0xc0 | (initial_bits << 4) | (pn_len as u8 - 1)];
    pkt.extend_from_slice(&version.to_be_bytes());
    pkt.push(dcid.len() as u8);
    pkt.extend_from_slice(dcid);
    pkt.extend_from_slice(&[6, b'c', b'l', b'i', b'e', b'n', b't']); // SCID
    pkt.push(0); // no token
    let length = pn_len + payload.len() + 16;
    pkt.extend_from_slice(&(0x4000 | length as u16).to_be_bytes());
    let pn_offset = pkt.len();
    pkt.extend_from_slice(&pn.to_be_bytes()[8 - pn_len..]);
    let mut nonce = keys.iv;
    for (n, p) in nonce.iter_mut().rev().zip(pn.to_le_bytes()) {
        *n ^= p;
    }
    let tag = keys
        .aead
        .seal_in_place_separate_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(&pkt[..]),
            &mut payload,
        )
        .unwrap();
    pkt.extend_from_slice(&payload);
    pkt.extend_from_slice(tag.as_ref());
    let mask = keys
        .hp
        .new_mask(&pkt[pn_offset + 4..pn_offset + 20])
        .unwrap();
    pkt[0] ^= mask[0] & 0x0f;
    for i in 0..pn_len {
        pkt[pn_offset + i] ^= mask[1 + i];
    }
    pkt
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (a, b) = data.split_at(n.min(data.len()));
    *data = b;
    a
}

fn raw_datagrams(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !data.is_empty() && out.len() < MAX_DATAGRAMS {
        let len = match take(&mut data, 2) {
            [a, b] => usize::from(u16::from_be_bytes([*a, *b])),
            _ => break,
        };
        out.push(take(&mut data, len).to_vec());
    }
    out
}

fn sealed_datagrams(mut data: &[u8]) -> Vec<Vec<u8>> {
    let Some(&flags) = take(&mut data, 1).first() else {
        return Vec::new();
    };
    let v2 = flags & 1 != 0;
    let dcid = take(&mut data, usize::from((flags >> 1) & 0x1f).min(20)).to_vec();
    let other_dcid: Vec<u8> = dcid
        .iter()
        .map(|b| b ^ 0x5a)
        .chain([0x42])
        .take(20)
        .collect();
    let mut out: Vec<Vec<u8>> = Vec::new();
    while data.len() >= 4 && out.len() < MAX_DATAGRAMS {
        let head = take(&mut data, 4);
        let (pn, ctl) = (u64::from(head[0]), head[1]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]])).min(1400);
        let plaintext = take(&mut data, len);
        let key_dcid = if ctl & 4 != 0 { &other_dcid } else { &dcid };
        let pkt_v2 = v2 != (ctl & 16 != 0);
        let keys = client_keys(pkt_v2, key_dcid);
        let pkt = seal(
            pkt_v2,
            &keys,
            key_dcid,
            pn,
            usize::from(ctl & 3) + 1,
            plaintext,
        );
        match out.last_mut() {
            Some(prev) if ctl & 8 != 0 => prev.extend_from_slice(&pkt),
            _ => out.push(pkt),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let datagrams = if mode & 1 == 0 {
        raw_datagrams(rest)
    } else {
        sealed_datagrams(rest)
    };
    let mut asm = CryptoAssembler::new();
    for d in &datagrams {
        std::hint::black_box(appletap::wire::quic::is_initial(d));
        let progress = asm.push_datagram(d);
        assert!(asm.crypto_prefix().len() <= MAX_CRYPTO_BYTES);
        if progress == QuicProgress::Complete {
            let ch = asm
                .client_hello()
                .expect("complete means a ClientHello message");
            if let Ok(hello) = tls::client_hello_from_handshake(ch)
                && let Some(sni) = hello.sni.as_deref()
            {
                assert!(sni.len() <= 255 && !sni.ends_with('.'), "SNI: {sni:?}");
            }
        }
        std::hint::black_box((
            asm.version(),
            asm.original_dcid(),
            asm.dropped_bytes(),
            asm.packets(),
        ));
    }
});
