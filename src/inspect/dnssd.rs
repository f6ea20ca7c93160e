//! DNS-SD names: the service type inside an mDNS name, shared by what records teach the name
//! stores ([`super::records`]) and the device inventory ([`super::devices`]).

/// The DNS-SD service type inside a name (`_airplay._tcp` in
/// `Living Room._airplay._tcp.local` or `_sub._x._sub._airplay._tcp.local`), if any.
pub fn service_type(name: &str) -> Option<&str> {
    // Find the first `_tcp`/`_udp` label without collecting the labels: this runs for every
    // name of every mDNS message (5% of all instructions on the benchmark capture with a
    // byte-by-byte scan; memchr finds the dots a word at a time).
    let bytes = name.as_bytes();
    let mut label_start = 0;
    let mut prev_start: Option<usize> = None;
    let dots = Dots::new(bytes).chain(std::iter::once(bytes.len()));
    for i in dots {
        let label = &bytes[label_start..i];
        if label == b"_tcp" || label == b"_udp" {
            let p = prev_start?;
            let prev = &bytes[p..label_start - 1];
            return (prev.len() >= 2 && prev[0] == b'_').then(|| &name[p..i]);
        }
        prev_start = Some(label_start);
        label_start = i + 1;
    }
    None
}

/// The places of the `.` bytes of a name, in order, found eight bytes at a time. `memchr`
/// finds them a word at a time too, but sets up a vector search for every dot, and names are
/// short: 393.0M -> 392.2M instructions on bench-small (callgrind).
struct Dots<'a> {
    bytes: &'a [u8],
    /// Where the next word starts.
    at: usize,
    /// The top bit of each byte of the last word read that is a `.`, not yet given.
    dots: u64,
}

impl<'a> Dots<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            at: 0,
            dots: 0,
        }
    }
}

impl Iterator for Dots<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.dots == 0 {
            if self.at >= self.bytes.len() {
                return None;
            }
            // Past the end, zeros: not dots.
            let word = match self.bytes.get(self.at..self.at + 8) {
                Some(w) => u64::from_le_bytes(w.try_into().ok()?),
                None => self
                    .bytes
                    .get(self.at..)
                    .unwrap_or_default()
                    .iter()
                    .rev()
                    .fold(0, |x, &b| x << 8 | u64::from(b)),
            };
            self.dots = crate::wire::dns::bytes_equal(word, b'.');
            self.at += 8;
        }
        let byte = self.dots.trailing_zeros() as usize / 8;
        self.dots &= self.dots - 1;
        Some(self.at - 8 + byte)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_types_from_names() {
        assert_eq!(service_type("_airplay._tcp.local"), Some("_airplay._tcp"));
        assert_eq!(
            service_type("Luca’s iMac._companion-link._tcp.local"),
            Some("_companion-link._tcp")
        );
        assert_eq!(
            service_type("_xyz._sub._apple-mobdev2._tcp.local"),
            Some("_apple-mobdev2._tcp")
        );
        assert_eq!(
            service_type("_sleep-proxy._udp.local"),
            Some("_sleep-proxy._udp")
        );
        assert_eq!(service_type("Lucas-iMac.local"), None);
        assert_eq!(service_type("_tcp.local"), None);
        assert_eq!(service_type("x._tcp.local"), None);
    }

    #[test]
    fn dots_are_found_as_a_byte_scan_finds_them() {
        let alphabet = b"._a\\\xe2";
        let mut state: u64 = 0x510e_527f_ade6_82d1;
        for len in 0..40 {
            for _ in 0..50 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        state = crate::testing::xorshift(state);
                        alphabet[(state % alphabet.len() as u64) as usize]
                    })
                    .collect();
                let want: Vec<usize> = (0..len).filter(|&i| bytes[i] == b'.').collect();
                assert_eq!(Dots::new(&bytes).collect::<Vec<_>>(), want, "{bytes:?}");
            }
        }
    }
}
