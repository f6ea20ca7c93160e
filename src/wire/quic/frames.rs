//! The frames of a decrypted QUIC Initial (RFC 9000 §17.2.2: only PADDING, PING, ACK, CRYPTO and
//! a transport CONNECTION_CLOSE are allowed there): owns walking them and handing out the CRYPTO
//! data, borrowed from the plaintext. Every length read from the wire is checked before use.

use super::QuicError;
use crate::wire::reader::Reader;

/// RFC 9000 §19.6: the end of CRYPTO data (offset + length) cannot exceed 2^62 - 1.
const MAX_STREAM_END: u64 = (1 << 62) - 1;

/// One frame of an Initial packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// PADDING (§19.1): one byte.
    Padding,
    /// PING (§19.2).
    Ping,
    /// ACK (§19.3), with or without ECN counts; its fields are skipped.
    Ack,
    /// CRYPTO (§19.6): handshake bytes at an offset of the Initial CRYPTO stream.
    Crypto {
        /// Stream offset of the first byte of `data`.
        offset: u64,
        /// The handshake bytes.
        data: &'a [u8],
    },
    /// CONNECTION_CLOSE of the transport kind (§19.19); its fields are skipped.
    ConnectionClose,
}

/// The frames of a decrypted Initial payload, in order. The first error ends the walk: frames
/// after a malformed or forbidden one are not read.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    r: Reader<'a>,
    failed: bool,
}

impl<'a> Frames<'a> {
    /// The frames of `plaintext`, an Initial's payload after packet protection is removed.
    pub fn new(plaintext: &'a [u8]) -> Self {
        Self {
            r: Reader::new(plaintext),
            failed: false,
        }
    }

    fn frame(&mut self) -> Result<Frame<'a>, QuicError> {
        let r = &mut self.r;
        // RFC 9000 §12.4: frame types are varints.
        let ty = r.varint().ok_or(QuicError::MalformedFrame)?;
        Ok(match ty {
            // PADDING (§19.1), PING (§19.2): the type byte is the whole frame.
            0x00 => Frame::Padding,
            0x01 => Frame::Ping,
            // ACK (§19.3), with ECN counts for 0x03.
            0x02 | 0x03 => {
                skip_ack(r, ty == 0x03).ok_or(QuicError::MalformedFrame)?;
                Frame::Ack
            }
            // CRYPTO (§19.6).
            0x06 => {
                let (offset, data) = read_crypto(r).ok_or(QuicError::MalformedFrame)?;
                Frame::Crypto { offset, data }
            }
            // CONNECTION_CLOSE of the transport kind (§19.19).
            0x1c => {
                skip_close(r).ok_or(QuicError::MalformedFrame)?;
                Frame::ConnectionClose
            }
            other => return Err(QuicError::ForbiddenFrame(other)),
        })
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, QuicError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.r.is_empty() {
            return None;
        }
        let frame = self.frame();
        self.failed = frame.is_err();
        Some(frame)
    }
}

/// Skip an ACK frame's body (RFC 9000 §19.3): Largest Acknowledged, ACK Delay, ACK Range Count,
/// First ACK Range, then Count × (Gap, ACK Range Length), then three ECN counts for type 0x03.
/// Each range takes at least two bytes, so a huge count runs out of input, not out of time.
fn skip_ack(r: &mut Reader<'_>, ecn: bool) -> Option<()> {
    r.varint()?;
    r.varint()?;
    let count = r.varint()?;
    r.varint()?;
    for _ in 0..count {
        r.varint()?;
        r.varint()?;
    }
    if ecn {
        for _ in 0..3 {
            r.varint()?;
        }
    }
    Some(())
}

/// Read a CRYPTO frame's body (RFC 9000 §19.6): Offset, Length, Crypto Data.
fn read_crypto<'a>(r: &mut Reader<'a>) -> Option<(u64, &'a [u8])> {
    let offset = r.varint()?;
    let len = r.varint()?;
    if offset.checked_add(len)? > MAX_STREAM_END {
        return None;
    }
    let data = r.bytes(usize::try_from(len).ok()?)?;
    Some((offset, data))
}

/// Skip a transport CONNECTION_CLOSE body (RFC 9000 §19.19): Error Code, Frame Type, Reason
/// Phrase Length, Reason Phrase.
fn skip_close(r: &mut Reader<'_>) -> Option<()> {
    r.varint()?;
    r.varint()?;
    let len = r.varint_len()?;
    r.bytes(len)?;
    Some(())
}
