#!/usr/bin/env python3
"""Seeds the fuzz corpora from real bytes. Run by fuzz/seed.sh; deterministic.

Sources: every capture in ../shared/pcaps (pcap and pcapng), fixtures/link, fixtures/sample,
fixtures/packets and signatures/apple.toml. Writes fuzz/corpus/<target>/<sha1> (or under the
directory given as the first argument). Only the standard library is needed: captures are read
here, link layers and IP/TCP/UDP headers are taken apart here, and QUIC seeds for the sealed
mode are plaintext frames that the fuzz target encrypts itself.

Per target:
  decode_*            whole frames of that link type, from captures of that link type, plus
                      Ethernet frames re-framed as SLL, SLL2, NULL/LOOP, PKTAP and raw IP
  decode_tunnel       the payload of every GRE, IP-in-IP, IPv6-in-IP packet and UDP datagram to
                      a tunnel port (up to 40 a capture), from the captures, fixtures/tunnels and
                      ../shared/pcaps-more, after the byte that picks its outer packet
  engine_packets      flows (first packets of each 5-tuple) and windows of consecutive packets,
                      as raw IP in the target's [ctl][len][bytes] framing
  tls_client_hello    the start of every client TCP stream that opens with a TLS handshake
                      record, plus the bare QUIC ClientHello fixture
  quic_initial        raw: client datagrams of every UDP flow that starts with a QUIC long header;
                      sealed: every ClientHello found, as CRYPTO frames in one or several Initials
                      (v1, v2, reordered, coalesced, with ACK/PING/PADDING)
  dns                 UDP payloads on ports 53, 5353 and 5355, TCP payloads on port 53, fixtures
  http_request_head   client TCP payloads that start with an HTTP method, SSDP datagrams
  capture_file        whole small captures (<= 16 KiB) and the first 16 KiB of larger ones
  signature_file      slices of signatures/apple.toml that load: a few entries with the
                      services they name
"""

import hashlib
import re
import struct
import sys
from collections import OrderedDict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "pcaps"
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fuzz" / "corpus"

ETHERNET, RAW, SLL, SLL2, NULL, LOOP, PKTAP = 1, 101, 113, 276, 0, 108, 258
RAW_TYPES = {12, 14, 101, 228, 229}


# ----- capture files ------------------------------------------------------------------------

def read_capture(path):
    """[(linktype, ts_seconds, frame)] of a pcap or pcapng file; stops quietly at damage."""
    data = path.read_bytes()
    magic = data[:4]
    out = []
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = "<" if magic[0] in (0xD4, 0x4D) else ">"
        nsec = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
        link = struct.unpack(e + "I", data[20:24])[0] & 0x03FFFFFF
        off = 24
        while off + 16 <= len(data):
            sec, frac, incl, _ = struct.unpack(e + "IIII", data[off:off + 16])
            if off + 16 + incl > len(data):
                break
            ts = sec + frac / (1e9 if nsec else 1e6)
            out.append((link, ts, data[off + 16:off + 16 + incl]))
            off += 16 + incl
    elif magic == b"\x0a\x0d\x0d\x0a":
        off, e, ifaces = 0, "<", []
        while off + 12 <= len(data):
            if data[off:off + 4] == b"\x0a\x0d\x0d\x0a":
                e = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
                ifaces = []
            btype, blen = struct.unpack(e + "II", data[off:off + 8])
            if blen < 12 or off + blen > len(data):
                break
            body = data[off + 8:off + blen - 4]
            if btype == 1:
                link = struct.unpack(e + "H", body[0:2])[0]
                res = 1e-6
                o = 8
                while o + 4 <= len(body):
                    code, olen = struct.unpack(e + "HH", body[o:o + 4])
                    if code == 0:
                        break
                    if code == 9 and olen >= 1:
                        r = body[o + 4]
                        res = 2.0 ** -(r & 0x7F) if r & 0x80 else 10.0 ** -r
                    o += 4 + ((olen + 3) & ~3)
                ifaces.append((link, res))
            elif btype == 6 and len(body) >= 20:
                iface, hi, lo, cap, _ = struct.unpack(e + "IIIII", body[:20])
                if iface < len(ifaces):
                    link, res = ifaces[iface]
                    out.append((link, ((hi << 32) | lo) * res, body[20:20 + cap]))
            elif btype == 3 and ifaces:
                out.append((ifaces[0][0], 0.0, body[4:]))
            off += blen
    return out


# ----- link layers and headers --------------------------------------------------------------

def ethernet_ip(frame):
    """(ethertype, offset of the network layer) of an Ethernet frame."""
    et, off = None, 12
    for _ in range(4):
        if off + 2 > len(frame):
            return None, None
        et = struct.unpack(">H", frame[off:off + 2])[0]
        if et in (0x8100, 0x88A8, 0x9100):
            off += 4
            continue
        if et == 0x8864 and off + 10 <= len(frame):
            ppp = struct.unpack(">H", frame[off + 8:off + 10])[0]
            return {0x0021: 0x0800, 0x0057: 0x86DD}.get(ppp, et), off + 10
        return et, off + 2
    return None, None


def network_layer(link, frame):
    """The IP packet inside a frame, or None."""
    if link == ETHERNET:
        et, off = ethernet_ip(frame)
        return frame[off:] if et in (0x0800, 0x86DD) else None
    if link in RAW_TYPES:
        return frame
    if link == SLL:
        return frame[16:] if frame[14:16] in (b"\x08\x00", b"\x86\xdd") else None
    if link == SLL2:
        return frame[20:] if frame[0:2] in (b"\x08\x00", b"\x86\xdd") else None
    if link in (NULL, LOOP):
        return frame[4:] if len(frame) > 4 else None
    if link == PKTAP and len(frame) >= 12:
        hlen, _, dlt = struct.unpack("<III", frame[:12])
        return network_layer(dlt, frame[hlen:]) if hlen < len(frame) else None
    return None


def transport(ip):
    """(proto, src, dst, sport, dport, flags, seq, payload) of an IP packet, or None."""
    if len(ip) < 20:
        return None
    v = ip[0] >> 4
    if v == 4:
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        if struct.unpack(">H", ip[6:8])[0] & 0x1FFF:
            return None
        proto, src, dst = ip[9], ip[12:16], ip[16:20]
        body = ip[ihl:total] if total >= ihl else ip[ihl:]
    elif v == 6 and len(ip) >= 40:
        proto, src, dst = ip[6], ip[8:24], ip[24:40]
        plen = struct.unpack(">H", ip[4:6])[0]
        body = ip[40:40 + plen]
        while proto in (0, 43, 60) and len(body) >= 8:
            proto, body = body[0], body[(body[1] + 1) * 8:]
    else:
        return None
    if proto == 6 and len(body) >= 20:
        sport, dport, seq = struct.unpack(">HHI", body[:8])
        doff = (body[12] >> 4) * 4
        return proto, src, dst, sport, dport, body[13], seq, body[doff:]
    if proto == 17 and len(body) >= 8:
        sport, dport = struct.unpack(">HH", body[:4])
        return proto, src, dst, sport, dport, 0, 0, body[8:]
    return proto, src, dst, 0, 0, 0, 0, body


# ----- output -------------------------------------------------------------------------------

corpora = {}


def seed(target, data, cap=None):
    bucket = corpora.setdefault(target, OrderedDict())
    if not data or (cap is not None and len(bucket) >= cap):
        return
    bucket.setdefault(hashlib.sha1(data).hexdigest(), bytes(data))


def write_all():
    for target, bucket in sorted(corpora.items()):
        d = OUT / target
        d.mkdir(parents=True, exist_ok=True)
        for name, data in bucket.items():
            (d / name).write_bytes(data)
        print(f"{target:20} {len(bucket):5} seeds")


# ----- per target ---------------------------------------------------------------------------

def reframe(eth):
    """An Ethernet IP frame re-framed for the other link types."""
    et, off = ethernet_ip(eth)
    if et not in (0x0800, 0x86DD):
        return {}
    ip, etb = eth[off:], struct.pack(">H", et)
    v6 = et == 0x86DD
    sll = b"\x00\x00\x00\x01\x00\x06" + eth[6:12] + b"\x00\x00" + etb + ip
    sll2 = etb + b"\x00\x00" + struct.pack(">I", 2) + b"\x00\x01\x00\x06" + eth[6:12] + b"\x00\x00" + ip
    null = struct.pack("<I", 30 if v6 else 2) + ip
    loop = struct.pack(">I", 24 if v6 else 2) + ip
    pktap = struct.pack("<III", 108, 1, 1) + bytes(96) + eth
    # 802.11 QoS data To DS, LLC/SNAP: plain (105), and after a radiotap header with TSFT and
    # Flags saying an FCS ends the frame (127).
    dot11 = b"\x88\x01\x00\x00" + eth[6:12] + eth[6:12] + eth[0:6] + bytes(4)
    dot11 += b"\xaa\xaa\x03\x00\x00\x00" + etb + ip
    radiotap = struct.pack("<BBHI", 0, 0, 25, 0x80000003) + bytes(16) + b"\x10"
    return {
        "decode_wifi": [dot11, radiotap + dot11 + bytes(4)],
        "decode_linux_sll": sll,
        "decode_sll2": sll2,
        "decode_null": [null, loop],
        "decode_pktap": pktap,
        "decode_raw_ip": ip,
    }


LINK_TARGET = {
    ETHERNET: "decode_ethernet", SLL: "decode_linux_sll", SLL2: "decode_sll2",
    NULL: "decode_null", LOOP: "decode_null", PKTAP: "decode_pktap",
}


def shape(link, frame):
    """A key for frame diversity: link framing, protocol and a port bucket."""
    ip = network_layer(link, frame)
    t = transport(ip) if ip else None
    et = ethernet_ip(frame)[0] if link == ETHERNET else None
    if not t:
        return (link, et, None, None, len(frame) > 200)
    port = min(t[3], t[4])
    return (link, et, ip[0] >> 4, t[0], port if port < 10000 else 10000, t[5] & 0x17)


def frame_seeds(captures):
    per_shape = {}
    for _name, packets in captures:
        for link, _ts, frame in packets:
            k = shape(link, frame)
            n = per_shape.get(k, 0)
            if n >= 3:
                continue
            per_shape[k] = n + 1
            target = LINK_TARGET.get(link, "decode_raw_ip" if link in RAW_TYPES else None)
            if target:
                seed(target, frame[:2048])
            if link == ETHERNET and n == 0:
                for t, f in reframe(frame[:2048]).items():
                    for x in f if isinstance(f, list) else [f]:
                        seed(t, x)


def flow_key(t):
    a, b = (t[1], t[3]), (t[2], t[4])
    return (t[0],) + (a + b if a <= b else b + a)


def engine_record(dt, ip):
    ctl = min(int(max(dt, 0.0) * 10), 127)
    if dt > 1000:
        ctl |= 0x80
    ip = ip[:1600]
    return bytes([ctl]) + struct.pack(">H", len(ip)) + ip


def engine_seeds(captures):
    for _name, packets in captures:
        ips = [(ts, network_layer(link, f)) for link, ts, f in packets]
        ips = [(ts, ip) for ts, ip in ips if ip]
        flows = OrderedDict()
        for ts, ip in ips:
            t = transport(ip)
            if t:
                flows.setdefault(flow_key(t), []).append((ts, ip))
        for pkts in list(flows.values())[:40]:
            out, last = b"", pkts[0][0]
            for ts, ip in pkts[:10]:
                out += engine_record(ts - last, ip)
                last = ts
            seed("engine_packets", out[:12000])
        for start in (0, len(ips) // 2):
            window = ips[start:start + 24]
            if window:
                out, last = b"", window[0][0]
                for ts, ip in window:
                    out += engine_record(ts - last, ip)
                    last = ts
                seed("engine_packets", out[:12000])


def client_streams(captures):
    """The first payload bytes of every TCP client stream: {(file, key): bytes} (in arrival
    order, up to 16 KiB), and every UDP datagram with its flow."""
    streams, udp = OrderedDict(), []
    for name, packets in captures:
        for link, ts, f in packets:
            ip = network_layer(link, f)
            t = ip and transport(ip)
            if not t:
                continue
            proto, src, dst, sport, dport, flags, seq, payload = t
            if proto == 6 and payload:
                k = (name, src, sport, dst, dport)
                s = streams.setdefault(k, b"")
                if len(s) < 16384:
                    streams[k] = s + payload
            elif proto == 17:
                udp.append((name, src, sport, dst, dport, payload))
    return streams, udp


def handshake_messages(stream):
    """The TLS handshake message carried at the start of a record stream (records joined)."""
    body, off = b"", 0
    while off + 5 <= len(stream) and stream[off] == 0x16:
        n = struct.unpack(">H", stream[off + 3:off + 5])[0]
        body += stream[off + 5:off + 5 + n]
        off += 5 + n
        if len(body) >= 4 and len(body) >= 4 + int.from_bytes(body[1:4], "big"):
            return body[:4 + int.from_bytes(body[1:4], "big")]
    return None


def varint(v):
    if v < 0x40:
        return bytes([v])
    if v < 0x4000:
        return struct.pack(">H", 0x4000 | v)
    return struct.pack(">I", 0x80000000 | v)


def crypto(offset, data):
    return b"\x06" + varint(offset) + varint(len(data)) + data


def sealed(flags, dcid, packets):
    """A sealed-mode quic_initial input: packets are (pn, ctl, plaintext)."""
    out = bytes([1, flags]) + dcid
    for pn, ctl, pt in packets:
        out += bytes([pn, ctl]) + struct.pack(">H", len(pt)) + pt
    return out


def payload_seeds(captures):
    streams, udp = client_streams(captures)
    hellos = []
    for (name, src, sport, dst, dport), s in streams.items():
        if len(s) >= 6 and s[0] == 0x16 and s[1] == 3 and s[5] == 1:
            seed("tls_client_hello", s[:8192], cap=400)
            m = handshake_messages(s)
            if m and m not in hellos:
                hellos.append(m)
        if re.match(rb"(GET|POST|HEAD|PUT|DELETE|OPTIONS|CONNECT|PATCH|PROPFIND|M-SEARCH|NOTIFY) ", s):
            seed("http_request_head", s[:8192], cap=300)
        if 53 in (sport, dport):
            seed("dns", s[:4096], cap=600)
    udp_flows = OrderedDict()
    for name, src, sport, dst, dport, payload in udp:
        if 53 in (sport, dport) or 5353 in (sport, dport) or 5355 in (sport, dport):
            seed("dns", payload, cap=600)
        if payload[:8] in (b"M-SEARCH", b"NOTIFY *"):
            seed("http_request_head", payload, cap=300)
        udp_flows.setdefault((name, src, sport, dst, dport), []).append(payload)
    for key, datagrams in udp_flows.items():
        first = datagrams[0]
        if len(first) > 6 and first[0] & 0x80 and first[1:5] != b"\x00\x00\x00\x00":
            one = b"\x00" + struct.pack(">H", len(first)) + first
            seed("quic_initial", one, cap=300)
            many = b"\x00" + b"".join(struct.pack(">H", len(d)) + d for d in datagrams[:6])
            seed("quic_initial", many[:12000], cap=300)
    # Sealed mode: every distinct ClientHello as CRYPTO data of client Initials.
    fixture_ch = (ROOT / "fixtures/packets/quic_client_hello_google_de.bin").read_bytes()
    hellos.append(fixture_ch)
    seed("tls_client_hello", fixture_ch)
    dcid = bytes.fromhex("8394c8f03e515708")
    flags_v1, flags_v2 = len(dcid) << 1, (len(dcid) << 1) | 1
    for m in hellos[:24]:
        seed("quic_initial", sealed(flags_v1, dcid, [(0, 1, crypto(0, m))]))
        seed("quic_initial", sealed(flags_v2, dcid, [(0, 0, b"\x01" + crypto(0, m) + bytes(8))]))
        a, b = len(m) // 3, 2 * len(m) // 3
        seed("quic_initial", sealed(flags_v1, dcid, [
            (2, 1, crypto(b, m[b:])),
            (0, 1, b"\x02\x00\x00\x00\x00" + crypto(0, m[:a])),
            (1, 1 | 8, crypto(a, m[a:b]) + b"\x00" * 4),
        ]))
    for f in sorted((ROOT / "fixtures/packets").glob("*.bin")):
        data = f.read_bytes()
        if f.name.startswith("quic_") and f.name != "quic_client_hello_google_de.bin":
            seed("quic_initial", b"\x00" + struct.pack(">H", len(data)) + data)
        elif f.name.startswith("client_hello_"):
            seed("tls_client_hello", data)
        elif f.name.startswith(("dns_", "mdns_")):
            seed("dns", data)


TUNNEL_PICK = {(False, 47, 0): 0, (True, 47, 0): 1, (False, 4, 0): 2, (True, 4, 0): 3,
               (False, 41, 0): 4, (True, 41, 0): 5}
TUNNEL_PORTS = [4789, 6081, 2152, 3544, 5072]


def tunnel_seeds(captures):
    """decode_tunnel: the payload of each tunnel packet, after the pick of its outer packet."""
    for _name, packets in captures:
        taken = 0
        for link, _ts, frame in packets:
            ip = network_layer(link, frame)
            t = transport(ip) if ip else None
            if not t or taken >= 40:
                continue
            v6, proto = ip[0] >> 4 == 6, t[0]
            pick = TUNNEL_PICK.get((v6, proto, 0))
            if proto == 17:
                port = next((p for p in TUNNEL_PORTS if p in (t[3], t[4])), None)
                if port is None:
                    continue
                pick = 6 + TUNNEL_PORTS.index(port) + (5 if v6 else 0)
            if pick is not None:
                taken += 1
                seed("decode_tunnel", bytes([pick]) + t[7][:2048])


def capture_seeds(paths):
    for p in paths:
        data = p.read_bytes()
        seed("capture_file", data if len(data) <= 16384 else data[:16384])


def signature_seeds():
    text = (ROOT / "signatures/apple.toml").read_text()
    parts = re.split(r"(?m)^(?=\[\[)", text)
    header, entries = parts[0], parts[1:]
    services = {}
    others = []
    for e in entries:
        if e.startswith("[[service]]"):
            m = re.search(r'(?m)^id = "([^"]+)"', e)
            services[m.group(1)] = e
        else:
            others.append(e)
    for i in range(0, len(others), 6):
        group = others[i:i + 6]
        ids = ["apple"]
        for e in group:
            for m in re.finditer(r'(?m)^(?:service|on_apple) = "([^"]+)"', e):
                if m.group(1) not in ids:
                    ids.append(m.group(1))
        body = header + "".join(services[x] for x in ids if x in services) + "".join(group)
        seed("signature_file", body.encode())
    seed("signature_file", (header + services["apple"]).encode())


def main():
    shared = sorted(p for p in SHARED.iterdir() if p.suffix in (".pcap", ".pcapng"))
    fixtures = sorted((ROOT / "fixtures/link").glob("*.pcap*")) + [ROOT / "fixtures/sample/iphone.pcap"]
    tunnels = sorted((ROOT / "fixtures/tunnels").glob("*.pcap")) + sorted(
        (ROOT.parent / "shared" / "pcaps-more").glob("zeek__*.pcap"))
    captures = [(p.name, read_capture(p)) for p in fixtures + shared]
    frame_seeds(captures)
    tunnel_seeds(captures + [(p.name, read_capture(p)) for p in tunnels])
    engine_seeds(captures)
    payload_seeds(captures)
    capture_seeds(fixtures + shared)
    signature_seeds()
    write_all()


if __name__ == "__main__":
    main()
