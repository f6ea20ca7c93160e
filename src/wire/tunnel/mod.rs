//! Checked views over tunnel headers: GRE (with PPTP's enhanced GRE and ERSPAN), VXLAN,
//! Geneve, GTP-U, Teredo and AYIYA. Each view checks its header once and says what it carries
//! ([`Carried`]); the decapsulation itself (which ports and protocols lead here, the depth
//! bound, what is kept of the outer packet) is [`crate::decode`]'s.
//!
//! Hand-written: etherparse 0.21 reads none of these headers, and the crates that do
//! (`pnet_packet`'s GRE, single-protocol VXLAN/GTP crates) each cover one header with their
//! own buffer types; these views are a few dozen lines each over [`super::reader`].

pub mod gre;
pub mod gtp;
pub mod overlay;
pub mod teredo;

/// What a tunnel header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carried<'a> {
    /// An IP packet (v4 or v6, by its version nibble).
    Ip(&'a [u8]),
    /// An Ethernet frame.
    Ethernet(&'a [u8]),
    /// Something else (802.11 frames, MPLS, PPP control, a frame type not decoded), by its
    /// protocol number where the header names one.
    Other(u16),
}

/// EtherType-valued protocol numbers tunnel headers use (GRE, Geneve).
pub mod proto {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// IPv6.
    pub const IPV6: u16 = 0x86DD;
    /// Transparent Ethernet bridging: an Ethernet frame.
    pub const TEB: u16 = 0x6558;
    /// ERSPAN type I and II.
    pub const ERSPAN_II: u16 = 0x88BE;
    /// ERSPAN type III.
    pub const ERSPAN_III: u16 = 0x22EB;
    /// PPP (PPTP's enhanced GRE).
    pub const PPP: u16 = 0x880B;
}

/// What an EtherType-valued protocol field says follows.
pub(crate) fn by_ether_type(protocol: u16, payload: &[u8]) -> Carried<'_> {
    match protocol {
        proto::IPV4 | proto::IPV6 => Carried::Ip(payload),
        proto::TEB => Carried::Ethernet(payload),
        other => Carried::Other(other),
    }
}
