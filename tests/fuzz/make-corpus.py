#!/usr/bin/env python3
"""Writes the codec seed corpus (tests/fuzz/corpus/codec/seed-*), byte by byte with struct, so the
seeds do not depend on the encoder under test. Crashers (crash-*) and fuzzer-found inputs
(fuzz-*) are added by hand, never here.
Usage: tests/fuzz/make-corpus.py [OUT_DIR]"""
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "codec")
os.makedirs(out, exist_ok=True)


def i32(v): return struct.pack(">i", v)
def i64(v): return struct.pack(">q", v)


def notif(state=0, leader=3, zxid=0x100000002, rnd=7, peer_epoch=1, version=2, config=b"", cfg_len=None):
    body = i32(state) + i64(leader) + i64(zxid) + i64(rnd) + i64(peer_epoch) + i32(version)
    body += i32(len(config) if cfg_len is None else cfg_len) + config
    return b"\x01" + body


def packet(ptype, zxid, data=None, auth=-1, data_len=None):
    n = -1 if data is None else len(data)
    return b"\x02" + i32(ptype) + i64(zxid) + i32(n if data_len is None else data_len) + (data or b"") + i32(auth)


def batch(entries, count=None):
    return i32(len(entries) if count is None else count) + b"".join(i32(len(e)) + e for e in entries)


config = b"server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181\nserver.2=10.0.0.2:2888:3888:observer\nversion=100000000"
txn = b"\x00\x00\x00\x01\x00\x00\x00\x02create /a"
seeds = {
    # notifications
    "notif-looking": notif(),
    "notif-following": notif(state=1, leader=2, zxid=0x500000010, rnd=3, peer_epoch=5),
    "notif-leading-config": notif(state=2, leader=1, config=config),
    "notif-observing": notif(state=3, leader=-1, zxid=-1, rnd=-1, peer_epoch=-1, version=3),
    "notif-legacy33": notif()[:29],
    "notif-legacy346": notif(version=1)[:41],
    "notif-36-byte-345": notif()[:37],
    "notif-version1-trailing": notif(version=1),
    "notif-bad-state": notif(state=4),
    "notif-negative-config-length": notif(cfg_len=-1),
    "notif-config-past-end": notif(config=b"abc", cfg_len=4),
    "notif-trailing": notif() + b"\x00",
    "notif-extremes": notif(leader=-2**63, zxid=2**63 - 1, rnd=-2**63, peer_epoch=2**63 - 1, version=2**31 - 1),
    # every packet type, with the data it carries
    "pkt-01-request": packet(1, -1, i64(0x1234) + i32(5) + i32(1) + b"req", auth=0),
    "pkt-02-proposal-batch": packet(2, 0x100000001, batch([txn, b"", b"x"])),
    "pkt-02-proposal-batch-many": packet(2, 0x100000001, batch([bytes([i]) * (i % 5) for i in range(40)])),
    "pkt-03-ack": packet(3, 0x100000001),
    "pkt-04-commit": packet(4, 0x100000001),
    "pkt-05-ping-leader": packet(5, 0x100000003),
    "pkt-05-ping-sessions": packet(5, 0x100000003, i64(1) + i32(30000) + i64(2) + i32(4000)),
    "pkt-06-revalidate": packet(6, -1, i64(77) + i32(3000)),
    "pkt-07-sync": packet(7, 0, b"/path"),
    "pkt-08-inform-batch": packet(8, 0x100000002, batch([txn])),
    "pkt-09-commitandactivate": packet(9, 0x200000001, i64(3)),
    "pkt-10-newleader": packet(10, 0x300000000, config),
    "pkt-11-followerinfo": packet(11, 0x200000000, i64(2) + i32(0x10000) + i64(0x100000000)),
    "pkt-12-uptodate": packet(12, -1),
    "pkt-13-diff": packet(13, 0x100000005),
    "pkt-14-trunc": packet(14, 0x100000003),
    "pkt-15-snap": packet(15, 0x100000009),
    "pkt-16-observerinfo": packet(16, 0x200000000, i64(9) + i32(0x10000) + i64(-1)),
    "pkt-17-leaderinfo": packet(17, 0x300000000, i32(0x10000)),
    "pkt-18-ackepoch-zk": packet(18, 0x200000004, i32(2)),
    "pkt-18-ackepoch-none": packet(18, 0x200000004, i32(-1)),
    "pkt-18-ackepoch-fastzab": packet(18, 0x200000004, i32(2) + i64(0x200000003)),
    "pkt-19-informandactivate": packet(19, 0x200000001, i64(3) + txn),
    # malformed frames
    "bad-empty": b"",
    "bad-kind-0": b"\x00" + notif()[1:],
    "bad-kind-3": b"\x03",
    "bad-notif-kind-only": b"\x01",
    "bad-quorum-kind-only": b"\x02",
    "bad-type-0": packet(0, 1),
    "bad-type-20": packet(20, 1),
    "bad-data-length-neg": packet(2, 1, b"abcd", data_len=-2),
    "bad-data-length-big": packet(2, 1, b"abcd", data_len=0x7fffffff),
    "bad-data-length-into-auth": packet(2, 1, b"abcd", data_len=6),
    "bad-auth-count": packet(3, 1, auth=1),
    "ok-auth-empty-zero-data": packet(3, 1, b"", auth=0),
    "bad-trailing-packet": packet(4, 1) + b"\xff",
    "bad-truncated-zxid": packet(4, 0x100000001)[:9],
    "batch-count-0": packet(2, 1, batch([], count=0)),
    "batch-count-4097": packet(2, 1, batch([b""], count=4097)),
    "batch-entry-neg": packet(2, 1, i32(1) + i32(-1)),
    "batch-entry-past-end": packet(2, 1, i32(1) + i32(10) + b"abc"),
    "batch-trailing": packet(2, 1, batch([b"a"]) + b"\x00"),
    "batch-missing-entry": packet(2, 1, batch([b"a"], count=2)),
    "learnerinfo-19": packet(11, 1, b"\x00" * 19),
    "ackepoch-8": packet(18, 1, b"\x00" * 8),
}
for name, data in seeds.items():
    with open(os.path.join(out, "seed-" + name), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {out}")
