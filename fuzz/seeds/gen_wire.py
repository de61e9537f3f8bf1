#!/usr/bin/env python3
"""Writes the seed corpus of the `wire` fuzz target: valid IPv4/IPv6 TCP segments with every
option layout, ICMP/ICMPv6 echo and too-big messages, and a few near-misses (bad checksum,
fragment, IPv6 extension header). Run from anywhere; rewrites fuzz/seeds/wire/."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wire")


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


V4 = (bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
V6 = (bytes.fromhex("fd000000000000000000000000000001"), bytes.fromhex("fd000000000000000000000000000002"))


def ipv4(proto, payload, src=V4[0], dst=V4[1], frag=0x4000):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, frag, 64, proto, 0, src, dst)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def ipv6(nh, payload, src=V6[0], dst=V6[1]):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), nh, 64, src, dst) + payload


def pseudo(v6, proto, length):
    s, d = V6 if v6 else V4
    if v6:
        return s + d + struct.pack("!IxxxB", length, proto)
    return s + d + struct.pack("!xBH", proto, length)


def tcp(v6, flags, opts=b"", payload=b"", seq=1000, ack=2000, win=65535, urg=0):
    opts += b"\0" * (-len(opts) % 4)
    off = (20 + len(opts)) // 4
    h = struct.pack("!HHIIBBHHH", 40000, 80, seq, ack, off << 4, flags, win, 0, urg) + opts + payload
    c = csum(pseudo(v6, 6, len(h)) + h)
    seg = h[:16] + struct.pack("!H", c) + h[18:]
    return ipv6(6, seg) if v6 else ipv4(6, seg)


def icmp(v6, ty, code, rest, body):
    m = struct.pack("!BBH", ty, code, 0) + rest + body
    c = csum((pseudo(True, 58, len(m)) if v6 else b"") + m)
    m = m[:2] + struct.pack("!H", c) + m[4:]
    return ipv6(58, m) if v6 else ipv4(1, m)


MSS = b"\x02\x04\x05\xb4"
SACKP_TS = b"\x04\x02\x08\x0a" + struct.pack("!II", 12345, 678)
NOP_TS = b"\x01\x01\x08\x0a" + struct.pack("!II", 12345, 678)
WS = b"\x01\x03\x03\x07"
SACK = lambda n: b"\x01\x01\x05" + bytes([2 + 8 * n]) + b"".join(struct.pack("!II", 3000 + 100 * i, 3050 + 100 * i) for i in range(n))

SYN, ACK, FIN, RST, PSH, URG = 0x02, 0x10, 0x01, 0x04, 0x08, 0x20
seeds = {}
for v6 in (False, True):
    f = "v6" if v6 else "v4"
    seeds[f"{f}_syn_all_options"] = tcp(v6, SYN, MSS + SACKP_TS + WS, ack=0)
    seeds[f"{f}_synack"] = tcp(v6, SYN | ACK, MSS + b"\x01\x01\x04\x02" + WS)
    seeds[f"{f}_ack_ts"] = tcp(v6, ACK, NOP_TS)
    seeds[f"{f}_data_psh"] = tcp(v6, ACK | PSH, NOP_TS, b"hello, world\n" * 3)
    seeds[f"{f}_sack3_ts"] = tcp(v6, ACK, NOP_TS + SACK(3))
    seeds[f"{f}_sack4"] = tcp(v6, ACK, SACK(4))
    seeds[f"{f}_fin"] = tcp(v6, FIN | ACK, payload=b"x")
    seeds[f"{f}_rst"] = tcp(v6, RST)
    seeds[f"{f}_urg"] = tcp(v6, ACK | URG, payload=b"urgent!", urg=3)
    seeds[f"{f}_unknown_option"] = tcp(v6, ACK, b"\x1e\x06abcd\x00")
    seeds[f"{f}_bad_option_len"] = tcp(v6, ACK, b"\x02\x03\x05\xb4")
    quote = (ipv6(6, b"") if v6 else ipv4(6, b""))[:40 if v6 else 20] + struct.pack("!HHI", 40000, 80, 1000)
    seeds[f"{f}_echo_request"] = icmp(v6, 128 if v6 else 8, 0, struct.pack("!HH", 7, 1), b"ping" * 8)
    seeds[f"{f}_echo_reply"] = icmp(v6, 129 if v6 else 0, 0, struct.pack("!HH", 7, 1), b"pong")
    if v6:
        seeds["v6_packet_too_big"] = icmp(True, 2, 0, struct.pack("!I", 1280), quote)
    else:
        seeds["v4_frag_needed"] = icmp(False, 3, 4, struct.pack("!HH", 0, 1400), quote)
bad = bytearray(seeds["v4_data_psh"])
bad[-1] ^= 1
seeds["v4_bad_tcp_checksum"] = bytes(bad)
seeds["v4_fragment"] = ipv4(6, b"\0" * 20, frag=0x2000)
seg = tcp(True, ACK)[40:]
seeds["v6_hop_by_hop"] = ipv6(0, bytes([6, 0]) + b"\x01\x04\0\0\0\0" + seg)
seeds["v6_fragment_header"] = ipv6(44, bytes([6, 0, 0, 1, 0, 0, 0, 1]) + seg)
v4_opts = bytearray(ipv4(6, tcp(False, ACK)[20:]))
seeds["v4_ihl6_options"] = bytes([0x46]) + bytes(v4_opts[1:20]) + b"\x01\x01\x01\x00" + bytes(v4_opts[20:])

os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as fh:
        fh.write(data)
print(f"{len(seeds)} seeds in {OUT}")
