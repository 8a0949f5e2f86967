#!/usr/bin/env python3
"""Writes the seed corpora of the client_protocol, net and config fuzz targets
(tests/fuzz/corpus/<target>/seed-*) from the layouts their headers document, byte by byte with
struct, so that the seeds do not come from the encoders under test. The codec's seeds come from
make-corpus.py, the log's from make_log_corpus (a C++ program: it runs the real log writer).
Crashers (crash-*) are added by hand, never here; this script replaces only seed-* files.
Usage: tests/fuzz/make-seeds.py [TARGET...]   (default: all three)"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def u16(v): return struct.pack("<H", v)
def u32(v): return struct.pack("<I", v)
def u64(v): return struct.pack("<Q", v)


# ---- engine/runtime/client_protocol.h: u32 LE body length, u8 type, u64 LE id, fields ----
def frame(type_, id_, fields=b"", length=None):
    body = bytes([type_]) + u64(id_) + fields
    return u32(len(body) if length is None else length) + body


MAX_VALUE = 1 << 20
MAX_BODY = 9 + MAX_VALUE + 16
client_protocol = {
    "ruok": b"ruok",
    "srvr-newline": b"srvr\n",
    "mntr": b"mntr",
    "trce": b"trce\n",
    "ruok-then-write-type": b"ruok\x01" + b"\x00" * 8,
    "almost-word": b"ruoK",
    "write": frame(0x01, 1, b"hello"),
    "write-empty": frame(0x01, 2),
    "status": frame(0x02, 3),
    "transfer": frame(0x03, 4, u64(2)),
    "transfer-any": frame(0x03, 5, u64(0)),
    "write-ok": frame(0x81, 6, u64(0x100000001)),
    "status-ok": frame(0x82, 7, b'{"id":1,"role":"leader"}'),
    "transfer-ok": frame(0x83, 8, u64(3)),
    "error-no-leader": frame(0xE1, 9, b"\x01no leader"),
    "error-transfer-refused": frame(0xE1, 10, b"\x06not_leader"),
    "pipelined": frame(0x01, 11, b"a") + frame(0x02, 12) + frame(0x01, 13, b"bc") + frame(0x03, 14, u64(1)),
    "pipelined-partial": frame(0x01, 15, b"abc") + frame(0x01, 16, b"defgh")[:7],
    "write-once": frame(0x04, 17, u64(0x5eed) + u64(1) + b"once"),
    "write-once-empty": frame(0x04, 18, u64(1) + u64(0)),
    "error-stale-sequence": frame(0xE1, 19, b"\x08stale_sequence"),
    # malformed
    "bad-short-length": frame(0x02, 1, length=8),
    "bad-type": frame(0x7F, 1),
    "bad-status-with-body": frame(0x02, 1, b"x"),
    "bad-transfer-short": frame(0x03, 1, b"\x01\x02"),
    "bad-error-empty": frame(0xE1, 1),
    "bad-error-code-0": frame(0xE1, 1, b"\x00"),
    "bad-error-code-7": frame(0xE1, 1, b"\x07x"),
    "bad-error-code-9": frame(0xE1, 1, b"\x09x"),
    "bad-write-once-client-0": frame(0x04, 1, u64(0) + u64(1) + b"v"),
    "bad-write-once-short": frame(0x04, 1, u64(7)),
    "write-once-too-large-header": u32(MAX_BODY + 1) + b"\x04" + u64(96),
    "write-too-large-header": u32(MAX_BODY + 1) + b"\x01" + u64(99),
    "write-value-too-large-header": u32(9 + MAX_VALUE + 1) + b"\x01" + u64(98),
    "status-too-large": u32(MAX_BODY + 1) + b"\x02" + u64(97),
    "need-more-3": b"\x0a\x00\x00",
    "need-more-body": u32(100) + b"\x01" + u64(1) + b"abc",
}

# ---- net_fuzz.cpp: byte 0 bit 7 = handshake (64-byte hello, 32-byte MAC), else frames ----
def hello(kind=1, version=1, cluster=42, sender=1, target=2, nonce=bytes(range(32)), magic=b"FZNET",
          reserved=0):
    return magic + bytes([version, kind, reserved]) + u64(cluster) + u64(sender) + u64(target) + nonce


def net_frames(limit_index, mode, chunks):
    """limit_index picks net_fuzz's frame size limit, mode its pool flags; chunks: byte strings."""
    out = bytes([0x00, limit_index, mode])
    for c in chunks:
        assert len(c) < 256
        out += bytes([len(c)]) + c
    return out


def lframe(body): return u32(len(body)) + body


stream = lframe(b"a") + lframe(b"hello world") + lframe(bytes(range(40))) + lframe(b"z" * 200)
net = {
    "hello-dialer": b"\x80" + hello(),
    "hello-acceptor": b"\x80" + hello(kind=2, sender=2, target=1),
    "hello-with-mac": b"\x80" + hello() + bytes(range(100, 132)),
    "hello-bad-magic": b"\x80" + hello(magic=b"FZNEX"),
    "hello-bad-kind": b"\x80" + hello(kind=3),
    "hello-reserved": b"\x80" + hello(reserved=1),
    "hello-version-2": b"\x80" + hello(version=2),
    "hello-short": b"\x80" + hello()[:20],
    # limit index 12 = 65536 bytes, 7 = 100 bytes, 0 = 1 byte (kLimits in net_fuzz.cpp)
    "frames-one-chunk": net_frames(12, 0, [stream[:255]]),
    "frames-byte-by-byte": net_frames(12, 1, [bytes([b]) for b in stream[:80]]),
    "frames-split-header": net_frames(12, 0, [stream[:2], stream[2:7], stream[7:60], stream[60:]]),
    "frames-empty-chunks": net_frames(12, 1, [b"", stream[:10], b"", stream[10:30]]),
    "frames-spill-reclaim": net_frames(12, 1 | 0x80, [stream[i:i + 13] for i in range(0, len(stream), 13)]),
    "frames-reset-mid-frame": net_frames(12, 3 << 1, [stream[:30], stream[30:45], lframe(b"after reset")]),
    "frames-zero-length": net_frames(12, 0, [lframe(b"ok") + u32(0) + b"junk"]),
    "frames-oversized": net_frames(7, 0, [lframe(b"ok") + u32(101) + b"x" * 20]),
    "frames-at-limit": net_frames(7, 0, [lframe(b"y" * 100), lframe(b"q" * 100)]),
    "frames-limit-1": net_frames(0, 0, [lframe(b"a") + lframe(b"b") + lframe(b"cc")]),
    "frames-truncated": net_frames(12, 0, [lframe(b"abcdef")[:7]]),
}

# ---- engine/runtime/config.h: zoo.cfg text ----
three = (b"server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n"
         b"server.3=127.0.0.1:2890:3890\nsecretFile=/etc/fastzab/secret\n")
base = b"dataDir=/var/lib/fastzab\nclientPort=2181\nclusterId=1\n"
config = {
    "minimal": base + b"server.1=127.0.0.1:2888:3888\n",
    "three": b"tickTime=2000\ninitLimit=10\nsyncLimit=5\n" + base + three,
    "observer": base + three + b"server.4=127.0.0.1:2891:3891:observer\n",
    "participant-suffix": base + b"server.1=127.0.0.1:2888:3888:participant\n",
    "ipv6": base + b"server.1=[::1]:2888:3888\nserver.2=[fe80::1]:2888:3888\nsecretFile=s\n",
    "hierarchical": base + three + b"group.1=1:2\ngroup.2=3\nweight.3=2\nweight.1=0\n",
    "fastzab-keys": base + three + (
        b"transport=uring\npoll=adaptive\nsync=none\ngroups=4\ntrace=on\ncpus=0,2-3,5\n"
        b"snapCount=1000\npreAllocSize=4096\n"),
    "timing": base + three + (
        b"tickResolutionMs=1\nelectionFinalizeWaitMs=5\nelectionNotificationMaxMs=1000\n"
        b"learnerHelloRetryMs=2\nheartbeatMs=10\nleaderSilenceMs=50\ntransferTimeoutMs=300\n"),
    "timing-derived": b"tickTime=50\nsyncLimit=2\n" + base + three,
    "comments-whitespace": b"# a comment\n\n   dataDir = /d  \r\n\tclientPort=2181\nclusterId=7\r\n"
                           b"server.1 = 10.0.0.1:1:2\n# trailing\n",
    "zookeeper-only-keys": base + b"server.1=h:1:2\ndataLogDir=/x\nforceSync=no\nmaxClientCnxns=10\n"
                           b"autopurge.purgeInterval=1\n4lw.commands.whitelist=*\n",
    "unknown-and-typo": base + b"server.1=h:1:2\ntickTim=2000\nfoo=bar\n",
    "client-limits": base + b"server.1=h:1:2\nmaxClientCnxns=0\nmaxCnxns=100\n"
                     b"clientOutputLimitBytes=65536\nclientOutstandingLimit=10\n"
                     b"clientInputBudgetBytes=2097152\nclientTimeoutMs=500\n",
    # refusals
    "missing-datadir": b"clientPort=2181\nclusterId=1\nserver.1=h:1:2\n",
    "duplicate-key": base + b"clientPort=2182\nserver.1=h:1:2\n",
    "duplicate-server": base + b"server.1=h:1:2\nserver.1=h:3:4\n",
    "same-address": base + b"server.1=h:1:2\nserver.2=h:1:2\nsecretFile=s\n",
    "bad-port": base + b"server.1=h:0:70000\n",
    "bad-number": b"tickTime=-1\n" + base + b"server.1=h:1:2\n",
    "number-overflow": b"clusterId=99999999999999999999999\n" + base[:-12] + b"server.1=h:1:2\n",
    "no-equals": base + b"server.1=h:1:2\njust a line\n",
    "group-observer": base + three + b"server.4=h:9:10:observer\ngroup.1=1:2:4\ngroup.2=3\n",
    "weight-without-group": base + three + b"weight.1=2\n",
    "cpus-backwards": base + b"server.1=h:1:2\ncpus=5-2\n",
    "cpus-twice": base + b"server.1=h:1:2\ncpus=1,1\n",
    "busy-no-cpus": base + b"server.1=h:1:2\npoll=busy\ngroups=2\n",
    "timing-conflict": base + b"server.1=h:1:2\nheartbeatMs=1000\nleaderSilenceMs=1500\n",
    "empty": b"",
    "binary": bytes(range(256)),
}

TARGETS = {"client_protocol": client_protocol, "net": net, "config": config}


def main():
    names = sys.argv[1:] or list(TARGETS)
    for name in names:
        if name not in TARGETS:
            sys.exit(f"make-seeds.py: unknown target {name!r} ({', '.join(TARGETS)})")
        out = os.path.join(HERE, "corpus", name)
        os.makedirs(out, exist_ok=True)
        for old in os.listdir(out):
            if old.startswith("seed-"):
                os.remove(os.path.join(out, old))
        for seed, data in TARGETS[name].items():
            with open(os.path.join(out, "seed-" + seed), "wb") as f:
                f.write(data)
        print(f"wrote {len(TARGETS[name])} seeds to {out}")


if __name__ == "__main__":
    main()
