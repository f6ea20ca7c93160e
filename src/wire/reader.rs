//! The one byte reader of the crate: a cursor over borrowed wire bytes whose every read is
//! bounds-checked and returns `None` past the end (never panics), plus fixed-offset field
//! readers in either byte order. Every protocol view in [`crate::wire`] and the capture-file
//! readers read through it; nothing else keeps an ad-hoc reader.

/// Byte order of multi-byte fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Least significant byte first (pcap files written on little-endian hosts, PKTAP).
    Little,
    /// Network byte order.
    Big,
}

impl Order {
    /// The `u16` at `at`, or `None` if `bytes` is too short.
    #[inline]
    pub fn u16_at(self, bytes: &[u8], at: usize) -> Option<u16> {
        let raw = array_at::<2>(bytes, at)?;
        Some(match self {
            Order::Little => u16::from_le_bytes(raw),
            Order::Big => u16::from_be_bytes(raw),
        })
    }

    /// The `u32` at `at`, or `None` if `bytes` is too short.
    #[inline]
    pub fn u32_at(self, bytes: &[u8], at: usize) -> Option<u32> {
        let raw = array_at::<4>(bytes, at)?;
        Some(match self {
            Order::Little => u32::from_le_bytes(raw),
            Order::Big => u32::from_be_bytes(raw),
        })
    }

    /// The `u64` at `at`, or `None` if `bytes` is too short.
    #[inline]
    pub fn u64_at(self, bytes: &[u8], at: usize) -> Option<u64> {
        let raw = array_at::<8>(bytes, at)?;
        Some(match self {
            Order::Little => u64::from_le_bytes(raw),
            Order::Big => u64::from_be_bytes(raw),
        })
    }
}

impl Order {
    /// The `u16` at the constant offset `AT` of a fixed-size header. The offset is checked
    /// against the header's size when compiling, so the read cannot fail: views read their
    /// fields with it after their one length check.
    #[inline]
    pub fn u16_in<const AT: usize, const N: usize>(self, header: &[u8; N]) -> u16 {
        const { assert!(AT + 2 <= N, "field runs past the header") };
        let raw = [header[AT], header[AT + 1]];
        match self {
            Order::Little => u16::from_le_bytes(raw),
            Order::Big => u16::from_be_bytes(raw),
        }
    }

    /// The `u32` at the constant offset `AT` of a fixed-size header (see [`Order::u16_in`]).
    #[inline]
    pub fn u32_in<const AT: usize, const N: usize>(self, header: &[u8; N]) -> u32 {
        const { assert!(AT + 4 <= N, "field runs past the header") };
        let raw = [header[AT], header[AT + 1], header[AT + 2], header[AT + 3]];
        match self {
            Order::Little => u32::from_le_bytes(raw),
            Order::Big => u32::from_be_bytes(raw),
        }
    }
}

/// Big-endian `u16` at the constant offset `AT` of a fixed-size header (see [`Order::u16_in`]).
#[inline]
pub fn be16_in<const AT: usize, const N: usize>(header: &[u8; N]) -> u16 {
    Order::Big.u16_in::<AT, N>(header)
}

/// Big-endian `u32` at the constant offset `AT` of a fixed-size header (see [`Order::u16_in`]).
#[inline]
pub fn be32_in<const AT: usize, const N: usize>(header: &[u8; N]) -> u32 {
    Order::Big.u32_in::<AT, N>(header)
}

/// `N` bytes at `at`, or `None` if `bytes` is too short.
#[inline]
fn array_at<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// Big-endian `u16` at `at` (the wire's order).
#[inline]
pub fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Order::Big.u16_at(bytes, at)
}

/// Big-endian 24-bit length at `at` (TLS handshake lengths).
#[inline]
pub fn be24(bytes: &[u8], at: usize) -> Option<usize> {
    let [a, b, c] = array_at::<3>(bytes, at)?;
    Some(usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c))
}

/// Big-endian `u32` at `at`.
#[inline]
pub fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Order::Big.u32_at(bytes, at)
}

/// A bounds-checked cursor over borrowed bytes. Reads advance it; a read past the end
/// returns `None` and leaves it where it was.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A cursor at the start of `buf`.
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// A cursor at `pos` in `buf` (past the end reads nothing).
    #[inline]
    pub fn at(buf: &'a [u8], pos: usize) -> Self {
        Self { buf, pos }
    }

    /// The whole buffer, read or not (DNS compression pointers point back into it).
    #[inline]
    pub fn buffer(&self) -> &'a [u8] {
        self.buf
    }

    /// Where the cursor is.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Moves the cursor to `pos` (past the end reads nothing).
    #[inline]
    pub fn seek(&mut self, pos: usize) {
        self.pos = pos;
    }

    /// Bytes left.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Whether nothing is left.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The bytes not read yet, without moving.
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// The next `n` bytes.
    #[inline]
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    /// Skips `n` bytes.
    #[inline]
    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.bytes(n).map(|_| ())
    }

    /// The next `n` bytes as a reader of their own (a length-delimited structure).
    #[inline]
    pub fn sub(&mut self, n: usize) -> Option<Reader<'a>> {
        self.bytes(n).map(Reader::new)
    }

    /// The next byte, without moving.
    #[inline]
    pub fn peek_u8(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// The next byte.
    #[inline]
    pub fn u8(&mut self) -> Option<u8> {
        let b = self.peek_u8()?;
        self.pos += 1;
        Some(b)
    }

    /// The next big-endian `u16`.
    #[inline]
    pub fn u16(&mut self) -> Option<u16> {
        let v = be16(self.buf, self.pos)?;
        self.pos += 2;
        Some(v)
    }

    /// The next big-endian 24-bit value (TLS handshake lengths).
    #[inline]
    pub fn u24(&mut self) -> Option<usize> {
        let v = be24(self.buf, self.pos)?;
        self.pos += 3;
        Some(v)
    }

    /// The next big-endian `u32`.
    #[inline]
    pub fn u32(&mut self) -> Option<u32> {
        let v = be32(self.buf, self.pos)?;
        self.pos += 4;
        Some(v)
    }

    /// A field prefixed by a one-byte length.
    #[inline]
    pub fn u8_prefixed(&mut self) -> Option<&'a [u8]> {
        let save = self.pos;
        let n = usize::from(self.u8()?);
        self.bytes(n).or_else(|| {
            self.pos = save;
            None
        })
    }

    /// A field prefixed by a three-byte length.
    #[inline]
    pub fn u24_prefixed(&mut self) -> Option<&'a [u8]> {
        let save = self.pos;
        let n = self.u24()?;
        self.bytes(n).or_else(|| {
            self.pos = save;
            None
        })
    }

    /// A QUIC variable-length integer (RFC 9000 §16: the two high bits of the first byte give
    /// the length, 1, 2, 4 or 8 bytes).
    #[inline]
    pub fn varint(&mut self) -> Option<u64> {
        let save = self.pos;
        let first = self.u8()?;
        let extra = (1usize << (first >> 6)) - 1;
        let Some(rest) = self.bytes(extra) else {
            self.pos = save;
            return None;
        };
        let mut value = u64::from(first & 0x3f);
        for &b in rest {
            value = (value << 8) | u64::from(b);
        }
        Some(value)
    }

    /// A QUIC varint used as a byte count.
    #[inline]
    pub fn varint_len(&mut self) -> Option<usize> {
        usize::try_from(self.varint()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_the_end_return_none_and_do_not_move() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16(), Some(0x0102));
        assert_eq!(r.u16(), None);
        assert_eq!(r.position(), 2);
        assert_eq!(r.u8(), Some(3));
        assert_eq!(r.u8(), None);
        assert!(r.is_empty());
        assert_eq!(Reader::at(&[1], 5).rest(), &[] as &[u8]);
        assert_eq!(Reader::at(&[1], usize::MAX).bytes(2), None);
    }

    #[test]
    fn length_prefixed_fields_are_all_or_nothing() {
        let mut r = Reader::new(&[2, 0xaa, 0xbb, 5, 0xcc]);
        assert_eq!(r.u8_prefixed(), Some(&[0xaa, 0xbb][..]));
        assert_eq!(r.u8_prefixed(), None, "claims 5 bytes, has 1");
        assert_eq!(r.position(), 3);
        let mut r = Reader::new(&[0, 0, 1, 7]);
        assert_eq!(r.u24_prefixed(), Some(&[7][..]));
    }

    #[test]
    fn quic_varints_of_every_length() {
        // RFC 9000 §A.1's examples.
        let cases: [(&[u8], u64); 4] = [
            (
                &[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c],
                151_288_809_941_952_652,
            ),
            (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
            (&[0x7b, 0xbd], 15_293),
            (&[0x25], 37),
        ];
        for (bytes, value) in cases {
            assert_eq!(Reader::new(bytes).varint(), Some(value));
        }
        let mut short = Reader::new(&[0x7b]);
        assert_eq!(short.varint(), None);
        assert_eq!(short.position(), 0);
    }

    #[test]
    fn fixed_offset_fields_in_both_orders() {
        let b = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(Order::Big.u16_at(&b, 1), Some(0x0203));
        assert_eq!(Order::Little.u32_at(&b, 0), Some(0x0403_0201));
        assert_eq!(Order::Big.u64_at(&b, 0), Some(0x0102_0304_0506_0708));
        assert_eq!(be24(&b, 5), Some(0x06_0708));
        assert_eq!(be32(&b, 5), None);
        assert_eq!(be16(&b, usize::MAX), None);
    }

    #[test]
    fn fields_of_fixed_size_headers_in_both_orders() {
        let h = [1, 2, 3, 4, 5, 6];
        assert_eq!(be16_in::<0, 6>(&h), 0x0102);
        assert_eq!(be16_in::<4, _>(&h), 0x0506);
        assert_eq!(be32_in::<2, _>(&h), 0x0304_0506);
        assert_eq!(Order::Little.u16_in::<1, _>(&h), 0x0302);
        assert_eq!(Order::Little.u32_in::<0, _>(&h), 0x0403_0201);
    }
}
