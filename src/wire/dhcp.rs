//! A checked view over DHCP (BOOTP) messages (RFC 2131, options RFC 2132): the fixed header
//! and the options a device inventory reads (host name, vendor class, parameter request list,
//! message type, requested address).
//!
//! Hand-written: the few fields needed sit at fixed offsets and in a flat type-length-value
//! list; the DHCP crates on crates.io (dhcproto) build owned structures of every option for
//! each message, far more than a passive reader needs, with their own error types for bytes
//! that are data here.

use std::net::Ipv4Addr;

use super::reader::{Reader, be32};

/// DHCP server port.
pub const SERVER_PORT: u16 = 67;
/// DHCP client port.
pub const CLIENT_PORT: u16 = 68;

/// The BOOTP header up to the magic cookie: 236 bytes, then the 4-byte cookie.
const FIXED_LEN: usize = 236;
/// The options' magic cookie (99.130.83.99).
const MAGIC: [u8; 4] = [99, 130, 83, 99];

/// Option codes read here.
pub mod option {
    /// Padding (no length byte).
    pub const PAD: u8 = 0;
    /// Host name.
    pub const HOST_NAME: u8 = 12;
    /// Requested IP address.
    pub const REQUESTED_IP: u8 = 50;
    /// DHCP message type.
    pub const MESSAGE_TYPE: u8 = 53;
    /// Parameter request list.
    pub const PARAMETER_LIST: u8 = 55;
    /// Vendor class identifier.
    pub const VENDOR_CLASS: u8 = 60;
    /// End of the options (no length byte).
    pub const END: u8 = 255;
}

/// BOOTREQUEST: a message from a client.
pub const BOOTREQUEST: u8 = 1;

/// A DHCP message: its fixed header read, its options left in place.
#[derive(Debug, Clone, Copy)]
pub struct DhcpMessage<'a> {
    header: &'a [u8; FIXED_LEN],
    options: &'a [u8],
}

impl<'a> DhcpMessage<'a> {
    /// The message, if `payload` holds the whole fixed header and the magic cookie.
    pub fn new_checked(payload: &'a [u8]) -> Option<Self> {
        let (header, rest) = payload.split_first_chunk::<FIXED_LEN>()?;
        let (cookie, options) = rest.split_first_chunk::<4>()?;
        (*cookie == MAGIC).then_some(Self { header, options })
    }

    /// `op`: 1 for a request from a client, 2 for a reply.
    pub fn op(&self) -> u8 {
        self.header[0]
    }

    /// Whether it comes from a client.
    pub fn is_request(&self) -> bool {
        self.op() == BOOTREQUEST
    }

    /// The client's hardware address, if it is an Ethernet one (htype 1, hlen 6).
    pub fn client_mac(&self) -> Option<[u8; 6]> {
        let [_, htype, hlen, ..] = *self.header;
        if htype != 1 || hlen != 6 {
            return None;
        }
        Reader::at(self.header, 28).bytes(6)?.try_into().ok()
    }

    /// `ciaddr`: the address the client already holds (0.0.0.0 when none).
    pub fn client_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(be32(self.header, 12).unwrap_or(0))
    }

    /// The data of the first option `code`, if present and whole. A message whose options
    /// run past the end gives what came before.
    pub fn option(&self, code: u8) -> Option<&'a [u8]> {
        self.options().find_map(|(c, d)| (c == code).then_some(d))
    }

    /// Every whole option, as (code, data), up to the end option or the first cut one.
    pub fn options(&self) -> impl Iterator<Item = (u8, &'a [u8])> + use<'a> {
        let mut r = Reader::new(self.options);
        std::iter::from_fn(move || {
            loop {
                let code = r.u8()?;
                match code {
                    option::PAD => continue,
                    option::END => return None,
                    _ => return Some((code, r.u8_prefixed()?)),
                }
            }
        })
    }

    /// Option 53: the DHCP message type (1 DISCOVER, 3 REQUEST, 8 INFORM, ...).
    pub fn message_type(&self) -> Option<u8> {
        match self.option(option::MESSAGE_TYPE)? {
            [t] => Some(*t),
            _ => None,
        }
    }

    /// Option 50: the address the client asks for.
    pub fn requested_ip(&self) -> Option<Ipv4Addr> {
        let [a, b, c, d] = *self.option(option::REQUESTED_IP)?.first_chunk::<4>()?;
        Some(Ipv4Addr::new(a, b, c, d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DHCP REQUEST from a client: the header, then `options`.
    fn request(options: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; FIXED_LEN];
        m[0] = 1;
        m[1] = 1;
        m[2] = 6;
        m[28..34].copy_from_slice(&[0xc4, 0x61, 0x8b, 0x35, 0x82, 0xa9]);
        m.extend(MAGIC);
        m.extend(options);
        m
    }

    #[test]
    fn options_are_read_up_to_the_end_or_a_cut() {
        let m = request(&[
            53, 1, 3, 0, 12, 4, b'L', b'u', b'c', b'a', 55, 3, 1, 3, 6, 50, 4, 192, 168, 2, 17,
            255, 60, 1, b'x',
        ]);
        let d = DhcpMessage::new_checked(&m).unwrap();
        assert!(d.is_request());
        assert_eq!(d.client_mac(), Some([0xc4, 0x61, 0x8b, 0x35, 0x82, 0xa9]));
        assert_eq!(d.message_type(), Some(3));
        assert_eq!(d.option(option::HOST_NAME), Some(&b"Luca"[..]));
        assert_eq!(d.option(option::PARAMETER_LIST), Some(&[1, 3, 6][..]));
        assert_eq!(d.requested_ip(), Some(Ipv4Addr::new(192, 168, 2, 17)));
        // After the end option nothing counts.
        assert_eq!(d.option(option::VENDOR_CLASS), None);
        // Cut inside an option: what came before is still read, nothing panics.
        for cut in 0..m.len() {
            if let Some(d) = DhcpMessage::new_checked(&m[..cut]) {
                let _ = d.options().count();
                let _ = (d.requested_ip(), d.message_type(), d.client_mac());
            }
        }
        assert!(DhcpMessage::new_checked(&m[..FIXED_LEN + 3]).is_none());
    }

    #[test]
    fn no_magic_cookie_is_not_dhcp() {
        let mut m = request(&[255]);
        m[FIXED_LEN] = 0;
        assert!(DhcpMessage::new_checked(&m).is_none());
    }
}
