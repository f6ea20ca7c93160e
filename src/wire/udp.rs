//! A checked view over a UDP header.

use super::reader::be16_in;

/// A UDP datagram whose 8-byte header is whole.
#[derive(Debug, Clone, Copy)]
pub struct UdpDatagram<'a> {
    header: &'a [u8; UdpDatagram::HEADER_LEN],
    payload: &'a [u8],
}

impl<'a> UdpDatagram<'a> {
    /// Header length.
    pub const HEADER_LEN: usize = 8;
    const SRC_PORT: usize = 0;
    const DST_PORT: usize = 2;
    const LENGTH: usize = 4;

    /// The datagram, if its header is whole. The length field is not applied: the payload
    /// is every byte after the header (see [`UdpDatagram::length`]).
    ///
    /// # Errors
    /// `None` if the header is cut short.
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Option<Self> {
        let (header, payload) = bytes.split_first_chunk::<{ UdpDatagram::HEADER_LEN }>()?;
        Some(Self { header, payload })
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16_in::<{ UdpDatagram::SRC_PORT }, _>(self.header)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16_in::<{ UdpDatagram::DST_PORT }, _>(self.header)
    }

    /// Length field: header and payload.
    #[inline]
    pub fn length(&self) -> usize {
        usize::from(be16_in::<{ UdpDatagram::LENGTH }, _>(self.header))
    }

    /// Every byte after the header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        let u =
            UdpDatagram::new_checked(&[0x14, 0xe9, 0x00, 0x35, 0x00, 0x09, 0, 0, 0xaa]).unwrap();
        assert_eq!((u.src_port(), u.dst_port(), u.length()), (5353, 53, 9));
        assert_eq!(u.payload(), &[0xaa]);
        assert!(UdpDatagram::new_checked(&[0; 7]).is_none());
    }
}
