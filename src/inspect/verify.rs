//! Cheap checks that a UDP payload is the discovery protocol its port suggests (SSDP,
//! NAT-PMP/PCP). A verified message lifts a port-only `bonjour` label to `likely`.

/// SSDP (UPnP discovery over HTTPU, UDP 1900): a request line or status line of HTTP/1.1.
pub fn is_ssdp(payload: &[u8]) -> bool {
    const STARTS: [&[u8]; 4] = [
        b"M-SEARCH * HTTP/1.1\r\n",
        b"NOTIFY * HTTP/1.1\r\n",
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 200 OK\n",
    ];
    STARTS
        .iter()
        .any(|s| payload.len() >= s.len() && payload[..s.len()].eq_ignore_ascii_case(s))
}

/// NAT-PMP (RFC 6886, version 0) or PCP (RFC 6887, version 2) on UDP 5350/5351: a version
/// byte and an opcode this protocol defines, with a length the opcode allows.
pub fn is_nat_pmp(payload: &[u8]) -> bool {
    match payload {
        // NAT-PMP requests: opcode 0 (external address, 2 bytes), 1/2 (map UDP/TCP, 12 bytes).
        [0, 0] => true,
        [0, 1 | 2, ..] => payload.len() == 12,
        // NAT-PMP responses: opcode 128 + n, result code, epoch...
        [0, 128, ..] => payload.len() == 12,
        [0, 129 | 130, ..] => payload.len() == 16,
        // PCP: version 2, R bit + opcode (0 announce, 1 map, 2 peer); 24-byte header minimum.
        [2, op, ..] => {
            matches!(op & 0x7f, 0..=2) && payload.len() >= 24 && payload.len().is_multiple_of(4)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssdp_forms() {
        assert!(is_ssdp(
            b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n"
        ));
        assert!(is_ssdp(b"NOTIFY * HTTP/1.1\r\n"));
        assert!(is_ssdp(
            b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\n"
        ));
        assert!(!is_ssdp(b"<?xml version=\"1.0\"?><soap:Envelope"));
        assert!(!is_ssdp(b""));
    }

    #[test]
    fn nat_pmp_forms() {
        assert!(is_nat_pmp(&[0, 0]));
        assert!(is_nat_pmp(&[0, 128, 0, 0, 0, 0, 0, 1, 192, 168, 1, 1]));
        assert!(!is_nat_pmp(&[0, 1, 0]));
        assert!(!is_nat_pmp(b"garbage"));
        let mut pcp = vec![2u8, 1];
        pcp.resize(60, 0);
        assert!(is_nat_pmp(&pcp));
    }
}
