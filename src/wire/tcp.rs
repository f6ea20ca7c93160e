//! A checked view over a TCP header: the fixed 20 bytes, the options the data offset
//! claims, and the segment's data.

use super::reader::{be16_in, be32_in};

/// TCP flag bits as they sit in byte 13 of the TCP header.
pub mod tcp_flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push function.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field significant.
    pub const ACK: u8 = 0x10;
}

/// A TCP segment whose header (options included) is whole.
#[derive(Debug, Clone, Copy)]
pub struct TcpSegment<'a> {
    header: &'a [u8; TcpSegment::MIN_HEADER_LEN],
    payload: &'a [u8],
}

impl<'a> TcpSegment<'a> {
    /// The fixed header's length (no options).
    pub const MIN_HEADER_LEN: usize = 20;
    const SRC_PORT: usize = 0;
    const DST_PORT: usize = 2;
    const SEQ: usize = 4;
    const ACK: usize = 8;
    const DATA_OFFSET: usize = 12;
    const FLAGS: usize = 13;
    const WINDOW: usize = 14;

    /// The segment, if its fixed header is whole, its data offset covers it and the options
    /// the offset claims are there.
    ///
    /// # Errors
    /// `None` otherwise.
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Option<Self> {
        let header = bytes.first_chunk::<{ TcpSegment::MIN_HEADER_LEN }>()?;
        let header_len = usize::from(header[Self::DATA_OFFSET] >> 4) * 4;
        if header_len < Self::MIN_HEADER_LEN {
            return None;
        }
        let payload = bytes.get(header_len..)?;
        Some(Self { header, payload })
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16_in::<{ TcpSegment::SRC_PORT }, _>(self.header)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16_in::<{ TcpSegment::DST_PORT }, _>(self.header)
    }

    /// Sequence number.
    #[inline]
    pub fn seq(&self) -> u32 {
        be32_in::<{ TcpSegment::SEQ }, _>(self.header)
    }

    /// Acknowledgment number.
    #[inline]
    pub fn ack(&self) -> u32 {
        be32_in::<{ TcpSegment::ACK }, _>(self.header)
    }

    /// The flags byte (CWR..FIN, see [`tcp_flags`]).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.header[Self::FLAGS]
    }

    /// Window size.
    #[inline]
    pub fn window(&self) -> u16 {
        be16_in::<{ TcpSegment::WINDOW }, _>(self.header)
    }

    /// The segment's data, after the options.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rustfmt::skip]
    static SYN: [u8; 26] = [
        0xc3, 0x50, 0x14, 0x67, // src port 50000, dst port 5223
        0, 0, 0, 1,             // seq
        0, 0, 0, 2,             // ack
        0x60, 0x02, 0xff, 0xff, // data offset 6, flags SYN, window
        0, 0, 0, 0,             // checksum, urgent
        2, 4, 5, 0xb4,          // MSS option
        0xaa, 0xbb,             // data
    ];

    #[test]
    fn fields_options_and_data() {
        let t = TcpSegment::new_checked(&SYN).unwrap();
        assert_eq!((t.src_port(), t.dst_port()), (50000, 5223));
        assert_eq!((t.seq(), t.ack(), t.window()), (1, 2, 0xffff));
        assert_eq!(t.flags(), tcp_flags::SYN);
        assert_eq!(t.payload(), &[0xaa, 0xbb]);
        assert!(
            TcpSegment::new_checked(&SYN[..23]).is_none(),
            "options cut short"
        );
        let mut small = SYN;
        small[12] = 0x40;
        assert!(
            TcpSegment::new_checked(&small).is_none(),
            "data offset under 5"
        );
    }
}
