//! Well-known port numbers the packet path treats specially (not the signature set's ports,
//! which come from Apple's articles and live in `signatures/`).

/// DNS (RFC 1035), over UDP and TCP.
pub const DNS: u16 = 53;
/// SSDP, UPnP discovery over HTTPU (UDP).
pub const SSDP: u16 = 1900;
/// NAT-PMP (RFC 6886), UDP.
pub const NAT_PMP: u16 = 5350;
/// PCP (RFC 6887), UDP.
pub const PCP: u16 = 5351;
/// Multicast DNS (RFC 6762), UDP.
pub const MDNS: u16 = 5353;
