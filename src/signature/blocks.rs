//! Address blocks as masks, indexed by the first byte of an address: what matching a flow's
//! server address against the signature set's address rules costs, for every flow that ends.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// An IPv4 block as (network bits, mask): an address is in it when `address & mask ==
/// network` (`IpNet::contains` truncates the network on every call).
pub(super) fn v4_block(n: &Ipv4Net) -> (u32, u32) {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(n.prefix_len()))
        .unwrap_or(0);
    (n.addr().to_bits() & mask, mask)
}

/// An IPv6 block as (network bits, mask), as [`v4_block`].
pub(super) fn v6_block(n: &Ipv6Net) -> (u128, u128) {
    let mask = u128::MAX
        .checked_shl(128 - u32::from(n.prefix_len()))
        .unwrap_or(0);
    (n.addr().to_bits() & mask, mask)
}

/// The address blocks of one family, per first byte of an address: the blocks that may hold
/// addresses starting with that byte, as (network bits, mask, rule index), longest prefix
/// first. Most servers are in no block, and their first byte says so without a compare; the
/// others are compared with the few blocks of their byte. Walking every rule's `IpNet` took 600
/// instructions a flow, a flat list of masks per family 300 (callgrind).
#[derive(Debug)]
pub(super) struct Blocks {
    by_first: Vec<Vec<(u128, u128, usize)>>,
    /// Bits of an address below its first byte (24 for IPv4, 120 for IPv6).
    shift: u32,
    /// All bits of an address of the family.
    all: u128,
}

impl Blocks {
    /// Blocks of `bits`-bit addresses (32 or 128), from `(prefix, rule index)` pairs given
    /// longest prefix first.
    pub(super) fn new<'a>(bits: u32, blocks: impl Iterator<Item = (&'a IpNet, usize)>) -> Self {
        let all = u128::MAX >> (128 - bits);
        let mut by_first = vec![Vec::new(); 256];
        let shift = bits - 8;
        for (prefix, i) in blocks {
            let (net, mask) = match (prefix, bits) {
                (IpNet::V4(n), 32) => {
                    let (net, mask) = v4_block(n);
                    (u128::from(net), u128::from(mask))
                }
                (IpNet::V6(n), 128) => v6_block(n),
                _ => continue,
            };
            let (lo, hi) = (net >> shift, (net | (!mask & all)) >> shift);
            for first in &mut by_first[lo as usize..=hi as usize] {
                first.push((net, mask, i));
            }
        }
        Self {
            by_first,
            shift,
            all,
        }
    }

    /// Indexes of the rules whose block holds `addr` (an address of this family), longest
    /// prefix first.
    pub(super) fn matching(&self, addr: u128) -> impl Iterator<Item = usize> + '_ {
        let addr = addr & self.all;
        self.by_first[(addr >> self.shift) as usize]
            .iter()
            .filter(move |b| addr & b.1 == b.0)
            .map(|b| b.2)
    }
}
