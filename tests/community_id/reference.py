"""Community IDs of flow tuples by the reference implementation (PyPI `communityid`).

Reads `seed` on the first line, then `proto saddr daddr sport dport` lines (ports `-` when
absent); prints one ID per line."""
import sys

import communityid

lines = sys.stdin.read().split("\n")
cid = communityid.CommunityID(int(lines[0]))
for line in lines[1:]:
    if not line:
        continue
    proto, saddr, daddr, sport, dport = line.split()
    port = lambda p: None if p == "-" else int(p)
    print(cid.calc(communityid.FlowTuple(int(proto), saddr, daddr, port(sport), port(dport))))
