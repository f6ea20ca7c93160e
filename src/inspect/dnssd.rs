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
    let dots = memchr::memchr_iter(b'.', bytes).chain(std::iter::once(bytes.len()));
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
}
