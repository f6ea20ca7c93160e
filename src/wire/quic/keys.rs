//! QUIC Initial packet protection: owns deriving a client's Initial keys from the Destination
//! Connection ID of its first Initial (RFC 9001 §5.2; v2: RFC 9369 §3.3), which anyone can do, so
//! a passive observer reads the ClientHello exactly as the server does; and opening one Initial
//! (header protection, RFC 9001 §5.4, then the AEAD, §5.3). Crypto comes from `ring`.

use ring::aead::{self, quic as hp};
use ring::hkdf;

use super::{LongPacket, QuicError, QuicVersion};

/// RFC 9001 §5.4.2: header protection samples 16 bytes of ciphertext.
pub(crate) const SAMPLE_LEN: usize = 16;
/// RFC 9001 §5.3: AEAD_AES_128_GCM appends a 16-byte tag.
pub(crate) const TAG_LEN: usize = 16;
/// RFC 9001 §5.4.2: the sample starts 4 bytes after the packet number's start, whatever the
/// packet number's real length.
const SAMPLE_SKIP: usize = 4;

/// RFC 9001 §5.2: initial_salt for QUIC v1.
const V1_SALT: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
/// RFC 9369 §3.3.1: initial_salt for QUIC v2.
const V2_SALT: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];

impl QuicVersion {
    fn salt(self) -> &'static [u8] {
        match self {
            Self::V1 => &V1_SALT,
            Self::V2 => &V2_SALT,
        }
    }

    /// HKDF labels for key, iv and header protection: RFC 9001 §5.1 and §5.4 for v1; RFC 9369
    /// §3.3.2 renames them for v2 so that v1 and v2 keys never coincide.
    fn labels(self) -> [&'static [u8]; 3] {
        match self {
            Self::V1 => [b"quic key", b"quic iv", b"quic hp"],
            Self::V2 => [b"quicv2 key", b"quicv2 iv", b"quicv2 hp"],
        }
    }
}

/// Client Initial keys for one (version, DCID).
pub(crate) struct InitialKeys {
    pub(crate) version: QuicVersion,
    pub(crate) dcid: Vec<u8>,
    pub(super) aead: aead::LessSafeKey,
    pub(super) iv: [u8; aead::NONCE_LEN],
    pub(super) hp: hp::HeaderProtectionKey,
}

/// The raw client Initial secrets, kept apart from the `ring` key objects so tests can compare
/// them with the RFC vectors.
pub(super) struct KeyMaterial {
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) secret: [u8; 32],
    pub(super) key: [u8; 16],
    pub(super) iv: [u8; aead::NONCE_LEN],
    pub(super) hp: [u8; 16],
}

impl KeyMaterial {
    /// RFC 9001 §5.2 (v2: RFC 9369 §3.3): initial_secret = HKDF-Extract(initial_salt, DCID);
    /// client_initial_secret = HKDF-Expand-Label(initial_secret, "client in", "", 32); then the
    /// packet key, IV and header protection key by HKDF-Expand-Label with the version's labels.
    pub(super) fn derive(
        version: QuicVersion,
        dcid: &[u8],
    ) -> Result<Self, ring::error::Unspecified> {
        let initial = hkdf::Salt::new(hkdf::HKDF_SHA256, version.salt()).extract(dcid);
        let mut secret = [0u8; 32];
        expand_label(&initial, b"client in", &mut secret)?;
        let client = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &secret);
        let [key_label, iv_label, hp_label] = version.labels();
        let mut m = Self {
            secret,
            key: [0; 16],
            iv: [0; aead::NONCE_LEN],
            hp: [0; 16],
        };
        expand_label(&client, key_label, &mut m.key)?;
        expand_label(&client, iv_label, &mut m.iv)?;
        expand_label(&client, hp_label, &mut m.hp)?;
        Ok(m)
    }
}

impl InitialKeys {
    /// The client's Initial keys for `version` from `dcid`.
    pub(crate) fn derive(
        version: QuicVersion,
        dcid: &[u8],
    ) -> Result<Self, ring::error::Unspecified> {
        let m = KeyMaterial::derive(version, dcid)?;
        Ok(Self {
            version,
            dcid: dcid.to_vec(),
            aead: aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &m.key)?),
            iv: m.iv,
            hp: hp::HeaderProtectionKey::new(&hp::AES_128, &m.hp)?,
        })
    }
}

/// An output length for `ring`'s HKDF-Expand.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label with an empty context (RFC 8446 §7.1, used by RFC 9001 §5.1):
/// info = uint16 length || uint8 len("tls13 " + label) || "tls13 " + label || uint8 0.
fn expand_label(
    prk: &hkdf::Prk,
    label: &[u8],
    out: &mut [u8],
) -> Result<(), ring::error::Unspecified> {
    const PREFIX: &[u8] = b"tls13 ";
    let out_len = u16::try_from(out.len()).map_err(|_| ring::error::Unspecified)?;
    let label_len =
        u8::try_from(PREFIX.len() + label.len()).map_err(|_| ring::error::Unspecified)?;
    let out_len = out_len.to_be_bytes();
    let label_len = [label_len];
    let info: [&[u8]; 5] = [&out_len, &label_len, PREFIX, label, &[0]];
    prk.expand(&info, Len(out.len()))?.fill(out)
}

/// Where the plaintext of an opened packet lies in the scratch buffer, and its packet number.
pub(crate) struct Opened {
    /// The full packet number, recovered against the largest one authenticated before.
    pub(crate) pn: u64,
    /// Start of the plaintext in the scratch buffer.
    pub(crate) start: usize,
    /// End of the plaintext in the scratch buffer.
    pub(crate) end: usize,
}

/// Remove header protection (RFC 9001 §5.4) and the AEAD (§5.3) from a copy of `pkt` in
/// `scratch`.
pub(crate) fn open_packet(
    keys: &InitialKeys,
    pkt: &LongPacket<'_>,
    largest_pn: Option<u64>,
    scratch: &mut Vec<u8>,
) -> Result<Opened, QuicError> {
    scratch.clear();
    scratch.extend_from_slice(pkt.packet);
    let sample_start = pkt
        .pn_offset
        .checked_add(SAMPLE_SKIP)
        .ok_or(QuicError::TooShortForSample)?;
    let sample = scratch
        .get(sample_start..sample_start.saturating_add(SAMPLE_LEN))
        .filter(|s| s.len() == SAMPLE_LEN)
        .ok_or(QuicError::TooShortForSample)?;
    let mask = keys.hp.new_mask(sample).map_err(|_| QuicError::Decrypt)?;
    // §5.4.1: long headers protect the low 4 bits of the first byte (reserved bits and the packet
    // number length), then the packet number's bytes.
    let first = scratch.first_mut().ok_or(QuicError::Truncated)?;
    *first ^= mask[0] & 0x0f;
    // RFC 9000 §17.2: the reserved bits (0x0c) must be zero once unprotected, and an endpoint
    // would close the connection otherwise; the AEAD below authenticates them anyway, and an
    // observer reports what the client sent rather than enforcing the rule.
    let pn_len = usize::from(*first & 0x03) + 1;
    let pn_end = pkt.pn_offset + pn_len;
    let pn_bytes = scratch
        .get_mut(pkt.pn_offset..pn_end)
        .ok_or(QuicError::Truncated)?;
    let mut truncated = 0u64;
    for (b, m) in pn_bytes.iter_mut().zip(mask.iter().skip(1)) {
        *b ^= m;
        truncated = (truncated << 8) | u64::from(*b);
    }
    // pn_len <= 4, so the shift is at most 32.
    let pn = decode_packet_number(largest_pn, truncated, 8 * pn_len as u32);
    // §5.3: nonce = IV XOR the packet number, left-padded to the IV's length.
    let mut nonce = keys.iv;
    for (n, p) in nonce.iter_mut().rev().zip(pn.to_le_bytes()) {
        *n ^= p;
    }
    // The sample check above guarantees at least 16 bytes after the packet number for the tag.
    let (header, payload) = scratch.split_at_mut(pn_end.min(pkt.packet.len()));
    if payload.len() < TAG_LEN {
        return Err(QuicError::TooShortForSample);
    }
    // §5.3: the associated data is the header as unprotected, through the packet number.
    let plaintext = keys
        .aead
        .open_in_place(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(&*header),
            payload,
        )
        .map_err(|_| QuicError::Decrypt)?;
    Ok(Opened {
        pn,
        start: pn_end,
        end: pn_end + plaintext.len(),
    })
}

/// RFC 9000 §17.1 and Appendix A.3: the full packet number closest to one past the largest
/// authenticated so far.
pub(super) fn decode_packet_number(largest: Option<u64>, truncated: u64, pn_nbits: u32) -> u64 {
    let expected = largest.map_or(0, |l| l.saturating_add(1));
    let win = 1u64 << pn_nbits;
    let hwin = win / 2;
    let mask = win - 1;
    let candidate = (expected & !mask) | truncated;
    if candidate.saturating_add(hwin) <= expected && candidate < (1u64 << 62) - win {
        candidate + win
    } else if candidate > expected.saturating_add(hwin) && candidate >= win {
        candidate - win
    } else {
        candidate
    }
}
