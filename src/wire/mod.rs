//! Checked views over wire bytes, in the spirit of smoltcp's `wire`: each view checks its
//! length once, then its accessors cannot panic; unknown codes are data. No state lives here:
//! reassembly and per-flow inspection are in [`crate::inspect`].

pub mod dhcp;
pub mod dns;
pub mod icmp;
pub mod ieee80211;
pub mod ip;
pub mod link;
pub mod ports;
pub mod quic;
pub mod radiotap;
pub mod reader;
pub mod tcp;
pub mod tls;
pub mod tunnel;
pub mod udp;
