"""The integration suite's harness: real fastzab-server processes on 127.0.0.1.

A Cluster writes one zoo.cfg per server (its own clientPort and dataDir, the shared server.N
lines, clusterId and secretFile) into a fresh temporary directory, starts and stops the
servers, and talks to them: the four-letter words, the binary client protocol (Client, a
Python implementation of engine/runtime/client_protocol.h), fastzab-cli and fastzab-log dump.

Every wait has a deadline. Every process a Cluster started is killed, and its directory
removed, by Cluster.close() (ClusterTestCase calls it in tearDown, even on failure; an atexit
hook and a SIGTERM handler do it for a run that is interrupted). Servers are started with
PR_SET_PDEATHSIG so that they die with the test process even if it is killed with SIGKILL:
start them from the main thread only (the signal follows the thread that forked).

The binaries come from the environment (FASTZAB_SERVER_BIN, FASTZAB_CLI_BIN, FASTZAB_LOG_BIN,
set by meson.build), or else from <repo>/build/engine/cmd/.

The servers talk over io_uring TCP on loopback, or, with FASTZAB_IT_TRANSPORT=dpdk (suite
`dpdk` runs some files so), over DPDK: one net_memif link per pair of servers, their sockets in
the cluster's directory (dpdkMemifDir), each server's EAL without hugepages; or, with
FASTZAB_IT_TRANSPORT=dpdk-afpacket, over DPDK net_af_packet ports on a veth pair per pair of
servers that the cluster makes and removes (root only; otherwise the test is skipped, saying
why), each server with its own dpdkEal and dpdkPeer table. Tests of what only
the TCP transport has (its quorum port) skip in that mode, saying so
(ClusterTestCase.require_tcp).
"""

import atexit
import base64
import ctypes
import glob
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_DEFAULT_BIN = os.path.join(REPO, 'build', 'engine', 'cmd')


def binary(name, env_var):
    path = os.environ.get(env_var) or os.path.join(_DEFAULT_BIN, name)
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(
            f'{name} is not built: no executable at {path} (set {env_var}, or run '
            f'`ninja -C build`)')
    return path


def server_bin():
    return binary('fastzab-server', 'FASTZAB_SERVER_BIN')


def cli_bin():
    return binary('fastzab-cli', 'FASTZAB_CLI_BIN')


def log_bin():
    return binary('fastzab-log', 'FASTZAB_LOG_BIN')


# ------------------------------------------------------------------ timing helpers

class Timeout(AssertionError):
    pass


def wait_until(what, predicate, timeout, interval=0.05):
    """Calls predicate() until it returns a true value (returned) or `timeout` seconds pass
    (Timeout naming `what` and the last value or exception)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except (OSError, ProtocolError, ServerError, ValueError) as e:
            last = e
        if time.monotonic() >= deadline:
            raise Timeout(f'{what}: not within {timeout:.1f} s (last: {last!r})')
        time.sleep(interval)


# ------------------------------------------------------------------ client protocol

T_WRITE, T_STATUS, T_WRITE_OK, T_STATUS_OK, T_ERROR = 0x01, 0x02, 0x81, 0x82, 0xE1
T_TRANSFER, T_TRANSFER_OK = 0x03, 0x83
T_WRITE_ONCE = 0x04
ERROR_CODES = {1: 'no_leader', 2: 'too_large', 3: 'bad_request', 4: 'unavailable',
               5: 'rejected', 6: 'transfer_refused', 7: 'unknown_outcome', 8: 'stale_sequence'}
HEADER_BYTES = 9
MAX_VALUE_BYTES = 1 << 20
MAX_BODY_BYTES = HEADER_BYTES + MAX_VALUE_BYTES + 16


class ProtocolError(Exception):
    """The server's bytes are not the client protocol, or the connection ended early."""


class ServerError(Exception):
    """An error reply."""

    def __init__(self, code, text):
        super().__init__(f'{ERROR_CODES.get(code, code)}: {text}')
        self.code = code
        self.name = ERROR_CODES.get(code, str(code))
        self.text = text


def encode_frame(type_, req_id, fields=b''):
    body = struct.pack('<BQ', type_, req_id) + fields
    return struct.pack('<I', len(body)) + body


def recv_exactly(sock, n):
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ProtocolError(f'connection closed after {len(out)} of {n} bytes')
        out += chunk
    return bytes(out)


def read_frame(sock):
    """One reply frame: (type, id, fields)."""
    (length,) = struct.unpack('<I', recv_exactly(sock, 4))
    if length < HEADER_BYTES or length > MAX_BODY_BYTES:
        raise ProtocolError(f'bad reply length {length}')
    body = recv_exactly(sock, length)
    type_, req_id = struct.unpack_from('<BQ', body)
    return type_, req_id, body[HEADER_BYTES:]


class Client:
    """One connection to a client port; requests are sent one at a time."""

    def __init__(self, port, timeout=5.0, host='127.0.0.1'):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.next_id = 1

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, type_, fields, want):
        req_id = self.next_id
        self.next_id += 1
        self.sock.sendall(encode_frame(type_, req_id, fields))
        rtype, rid, rfields = read_frame(self.sock)
        if rid != req_id:
            raise ProtocolError(f'reply to request {rid}, sent {req_id}')
        if rtype == T_ERROR:
            if not rfields:
                raise ProtocolError('an error reply without a code')
            raise ServerError(rfields[0], rfields[1:].decode('utf-8', 'replace'))
        if rtype != want:
            raise ProtocolError(f'reply of type 0x{rtype:02x}, wanted 0x{want:02x}')
        return rfields

    def put(self, value):
        """Writes `value` (bytes); returns the zxid it committed at."""
        fields = self._call(T_WRITE, value, T_WRITE_OK)
        if len(fields) != 8:
            raise ProtocolError(f'write_ok of {len(fields)} bytes')
        return struct.unpack('<Q', fields)[0]

    def put_once(self, client_id, seq, value):
        """A write_once of `value` (bytes) named (client_id, seq); returns its zxid (a retry of
        one that committed: the original zxid)."""
        fields = self._call(T_WRITE_ONCE, struct.pack('<QQ', client_id, seq) + value, T_WRITE_OK)
        if len(fields) != 8:
            raise ProtocolError(f'write_ok of {len(fields)} bytes')
        return struct.unpack('<Q', fields)[0]

    def put_many(self, values, window=64):
        """Writes every value of `values`, pipelined: up to `window` requests in flight on this
        connection. Returns their zxids in the order of `values`; the first error reply raises
        ServerError (the requests still in flight are abandoned with the connection)."""
        values = list(values)
        zxids = [None] * len(values)
        first_id = self.next_id
        self.next_id += len(values)
        sent = received = 0
        while received < len(values):
            frames = []
            while sent < len(values) and sent - received < window:
                frames.append(encode_frame(T_WRITE, first_id + sent, values[sent]))
                sent += 1
            if frames:
                self.sock.sendall(b''.join(frames))
            rtype, rid, rfields = read_frame(self.sock)
            index = rid - first_id
            if not 0 <= index < sent or zxids[index] is not None:
                raise ProtocolError(f'reply to request {rid}, not one in flight')
            if rtype == T_ERROR:
                if not rfields:
                    raise ProtocolError('an error reply without a code')
                raise ServerError(rfields[0], rfields[1:].decode('utf-8', 'replace'))
            if rtype != T_WRITE_OK or len(rfields) != 8:
                raise ProtocolError(f'reply of type 0x{rtype:02x} with {len(rfields)} bytes to '
                                    f'write {rid}')
            zxids[index] = struct.unpack('<Q', rfields)[0]
            received += 1
        return zxids

    def status(self):
        return json.loads(self._call(T_STATUS, b'', T_STATUS_OK).decode())

    def transfer(self, target=0):
        """Asks the server (the leader) to hand leadership to `target` (0: its choice);
        returns the id of the server it handed to. A refusal raises ServerError."""
        fields = self._call(T_TRANSFER, struct.pack('<Q', target), T_TRANSFER_OK)
        if len(fields) != 8:
            raise ProtocolError(f'transfer_ok of {len(fields)} bytes')
        return struct.unpack('<Q', fields)[0]


def four_letter(port, word, timeout=3.0):
    """Sends a four-letter word; returns the whole answer (the server closes after it)."""
    with socket.create_connection(('127.0.0.1', port), timeout=timeout) as s:
        s.sendall(word.encode())
        out = bytearray()
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise socket.timeout(f'{word}: no end of answer within {timeout} s')
            chunk = s.recv(65536)
            if not chunk:
                return out.decode('utf-8', 'replace')
            out += chunk


def parse_srvr(text):
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(':')
        if sep:
            out[key.strip()] = value.strip()
    return out


def parse_mntr(text):
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition('\t')
        if sep:
            out[key] = value
    return out


def expect_closed(sock, timeout=3.0):
    """Reads until the peer closes; True if it did within `timeout` (EOF or a reset), False if
    it still holds the connection open. Whatever the peer sent first is discarded."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            continue
        except ConnectionError:
            return True
    return False


# ------------------------------------------------------------------ quorum handshake (net/)

HELLO_BYTES = 64
MAC_BYTES = 32


def quorum_key(secret_file_text):
    """The transport key a server derives from its secret file: BLAKE2b-256 of the trimmed
    content (libsodium's crypto_generichash, no key)."""
    return hashlib.blake2b(secret_file_text.strip().encode(), digest_size=32).digest()


def encode_hello(kind, cluster_id, sender, target, nonce):
    return b'FZNET' + bytes([1, kind, 0]) + struct.pack('<QQQ', cluster_id, sender, target) + nonce


def dialer_mac(key, dialer_hello, acceptor_hello):
    return hmac.new(key, b'dialer' + dialer_hello + acceptor_hello, hashlib.sha256).digest()


def acceptor_mac(key, dialer_hello, acceptor_hello):
    return hmac.new(key, b'acceptor' + dialer_hello + acceptor_hello, hashlib.sha256).digest()


# ------------------------------------------------------------------ processes

_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:
    _libc = None


def _die_with_parent():
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _limit_descriptors(n):
    _die_with_parent()
    import resource
    resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1, with their sockets still bound (close them right
    before the servers start, so that nothing else takes the ports in between)."""
    # Below the kernel's ephemeral range: a port from it, once released for a server, can become
    # the local end of another server's outgoing connection first (EADDRINUSE, seen in CI).
    try:
        with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    first = max(1024, low - 16384)
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    socks = []
    tries = 0
    while len(socks) < n:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        port = rng.randrange(first, low) if first < low and tries < 64 * n else 0
        tries += 1
        try:
            s.bind(('127.0.0.1', port))
        except OSError:
            s.close()
            continue
        socks.append(s)
    return [s.getsockname()[1] for s in socks], socks


_live_clusters = set()


def _close_all():
    for c in list(_live_clusters):
        c.close()


atexit.register(_close_all)


def _on_sigterm(signum, frame):
    _close_all()
    sys.exit(128 + signum)


if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _on_sigterm)


class Server:
    def __init__(self, cluster, sid, observer):
        self.cluster = cluster
        self.id = sid
        self.observer = observer
        self.dir = os.path.join(cluster.root, f's{sid}')
        self.data_dir = os.path.join(self.dir, 'data')
        self.config = os.path.join(self.dir, 'zoo.cfg')
        self.log_path = os.path.join(self.dir, 'server.log')
        self.client_port = None
        self.quorum_port = None
        self.election_port = None
        self.proc = None
        self.starts = 0

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        try:
            with open(self.log_path, 'r', errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def __repr__(self):
        return f'server {self.id}'


TRANSPORTS = ('uring', 'dpdk', 'dpdk-afpacket')


def transport_under_test():
    """'uring' (the default), 'dpdk' (memif links) or 'dpdk-afpacket' (FASTZAB_IT_TRANSPORT)."""
    t = os.environ.get('FASTZAB_IT_TRANSPORT', 'uring')
    if t not in TRANSPORTS:
        raise AssertionError(f'FASTZAB_IT_TRANSPORT={t}: expected one of {", ".join(TRANSPORTS)}')
    return t


def _quiet(*command):
    return subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


class Cluster:
    """`voters` participants with ids 1..voters, then `observers` observers."""

    def __init__(self, voters, observers=0, tick_ms=20, extra_config='', transport=None):
        self.root = tempfile.mkdtemp(prefix='fastzab-it-')
        self.transport = transport or transport_under_test()
        _live_clusters.add(self)
        self.cluster_id = 0x5eed
        self.tick_ms = tick_ms
        self.extra_config = extra_config
        self.probes = 0
        self.servers = {}
        for sid in range(1, voters + observers + 1):
            self.servers[sid] = Server(self, sid, observer=sid > voters)
        self.secret_file = os.path.join(self.root, 'secret')
        self.secret_text = base64.b64encode(os.urandom(48)).decode() + '\n'
        fd = os.open(self.secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(self.secret_text)
        self._reserved = []
        ports, self._reserved = free_ports(3 * len(self.servers))
        for i, s in enumerate(self.servers.values()):
            s.client_port, s.quorum_port, s.election_port = ports[3 * i:3 * i + 3]
            os.makedirs(s.data_dir)
        if self.transport == 'dpdk':
            os.makedirs(os.path.join(self.root, 'memif'))
        self._veths = {}  # (low id, high id) -> (low end, high end), dpdk-afpacket
        if self.transport == 'dpdk-afpacket':
            self._make_veth_pairs()
        for s in self.servers.values():
            self._write_config(s)

    # -------------------------------------------------------------- configuration

    def server_lines(self):
        lines = []
        for s in self.servers.values():
            suffix = ':observer' if s.observer else ''
            lines.append(f'server.{s.id}=127.0.0.1:{s.quorum_port}:{s.election_port}{suffix}')
        return '\n'.join(lines)

    def _write_config(self, s):
        with open(s.config, 'w') as f:
            f.write(f'# written by tests/integration/cluster.py for server {s.id}\n'
                    f'tickTime={self.tick_ms}\ninitLimit=10\nsyncLimit=5\n'
                    f'dataDir={s.data_dir}\nclientPort={s.client_port}\n'
                    f'{self.server_lines()}\n'
                    f'clusterId={self.cluster_id}\nsecretFile={self.secret_file}\n'
                    f'poll=blocking\n{self.transport_config(s)}{self.extra_config}')

    def transport_config(self, s):
        """The zoo.cfg lines of the transport under test, for server `s`."""
        if self.transport == 'dpdk':
            return f'transport=dpdk\ndpdkMemifDir={os.path.join(self.root, "memif")}\n'
        if self.transport == 'dpdk-afpacket':
            # Each server's own EAL and peer table: a net_af_packet port on its end of the veth
            # pair to each other server, ports numbered in the order of the --vdev arguments.
            vdevs, peers = [], []
            for other in sorted(self.servers):
                if other == s.id:
                    continue
                low, high = self._veths[(min(s.id, other), max(s.id, other))]
                end = low if s.id < other else high
                peers.append(f'dpdkPeer.{other}={len(vdevs)}')
                vdevs.append(f'--vdev=net_af_packet_{s.id}_{other},iface={end}')
            return ('transport=dpdk\ndpdkEal=--no-huge -m 256 --no-pci --iova-mode=va '
                    f'--no-telemetry --log-level=lib.eal:notice {" ".join(vdevs)}\n' +
                    ''.join(p + '\n' for p in peers))
        return ''

    def _make_veth_pairs(self):
        """A veth pair per pair of servers, in the root network namespace (the harness reaches
        the servers' client ports on 127.0.0.1 from here; tests/net's pair test puts its ends
        in namespaces). Skips the test, saying why, where the machine does not allow it."""
        why = None
        if os.geteuid() != 0:
            why = 'needs root to make veth pairs'
        elif not _quiet('ip', '-V'):
            why = 'no `ip` command (iproute2)'
        tag = os.urandom(2).hex()
        ids = sorted(self.servers)
        for i in ids:
            for j in ids:
                if why is not None or j <= i:
                    continue
                low, high = f'fz{tag}{i}{j}a', f'fz{tag}{i}{j}b'
                self._veths[(i, j)] = (low, high)
                # DPDK 22.11's af_packet PMD names its PACKET_FANOUT group (pid ^ ifindex) &
                # 0xffff, and groups are shared by the whole namespace: two servers with
                # consecutive pids and interface indexes collided (EINVAL at probe). A server's
                # ends get indexes with its id in bits 13-15, so (pid ^ index) differs between
                # servers whose pids differ by less than 8192.
                made = False
                for _ in range(5):
                    r = random.randrange(1, 4096)
                    made = _quiet('ip', 'link', 'add', low, 'index', str(i << 13 | r), 'type',
                                  'veth', 'peer', 'name', high, 'index', str(j << 13 | r))
                    if made:
                        break
                for end in (low, high):
                    # No IPv6 autoconfiguration chatter on the links; then up.
                    _quiet('sysctl', '-q', '-w', f'net.ipv6.conf.{end}.disable_ipv6=1')
                    made = made and _quiet('ip', 'link', 'set', end, 'up')
                if not made:
                    why = 'this machine refused a veth pair'
        if why is not None:
            self.close()
            raise unittest.SkipTest(f'dpdk-afpacket: {why}')

    def _remove_veth_pairs(self):
        for low, _ in getattr(self, "_veths", {}).values():
            _quiet('ip', 'link', 'del', low)  # removes both ends
        self._veths = {}

    @property
    def ids(self):
        return list(self.servers)

    @property
    def voter_ids(self):
        return [s.id for s in self.servers.values() if not s.observer]

    def live_ids(self):
        return [s.id for s in self.servers.values() if s.running()]

    # -------------------------------------------------------------- processes

    def _release_ports(self):
        for sock in self._reserved:
            sock.close()
        self._reserved = []

    def start(self, sid, wait_ready=True, timeout=10.0, nofile=None):
        """Starts server `sid`; `nofile` sets its descriptor limit (ulimit -n, soft and hard)."""
        assert threading.current_thread() is threading.main_thread(), \
            'start servers from the main thread (PR_SET_PDEATHSIG follows the forking thread)'
        s = self.servers[sid]
        assert not s.running(), f'{s} is already running'
        self._release_ports()
        s.starts += 1
        log = open(s.log_path, 'a')
        log.write(f'==== start #{s.starts} at {time.strftime("%H:%M:%S")}\n')
        log.flush()
        s.log_offset = log.tell()
        s.proc = subprocess.Popen([server_bin(), '--config', s.config, '--id', str(sid)],
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                  preexec_fn=_die_with_parent if nofile is None else
                                  lambda: _limit_descriptors(nofile))
        log.close()
        if wait_ready:
            self.wait_ready(sid, timeout)
        return s

    def start_all(self, wait_ready=True):
        for sid in self.ids:
            self.start(sid, wait_ready=False)
        if wait_ready:
            for sid in self.ids:
                self.wait_ready(sid)

    def wait_ready(self, sid, timeout=10.0):
        s = self.servers[sid]
        deadline = time.monotonic() + timeout
        while True:
            with open(s.log_path, 'r', errors='replace') as f:
                f.seek(s.log_offset)
                text = f.read()
            if 'ready' in text:
                return
            rc = s.proc.poll()
            if rc is not None:
                raise AssertionError(f'{s} exited with status {rc} before it was ready:\n'
                                     f'{text[-2000:]}')
            if time.monotonic() > deadline:
                raise Timeout(f'{s} did not print "ready" within {timeout} s:\n{text[-2000:]}')
            time.sleep(0.02)

    def signal(self, sid, sig):
        s = self.servers[sid]
        if s.running():
            s.proc.send_signal(sig)

    def kill(self, sid):
        """SIGKILL, and reap."""
        s = self.servers[sid]
        if s.proc is not None and s.proc.poll() is None:
            s.proc.kill()
        if s.proc is not None:
            s.proc.wait(timeout=10)

    def pause(self, sid, timeout=5.0):
        """SIGSTOP, and wait until every thread of the server has stopped: kill() returns before
        a running (or runnable) thread takes the signal, and a test that then talks to the
        cluster must not race a server that is still working. The kernel's io_uring workers
        (iou-*) do not stop for signals and are not waited for."""
        s = self.servers[sid]
        if not s.running():
            return
        s.proc.send_signal(signal.SIGSTOP)
        tasks = f'/proc/{s.proc.pid}/task'
        deadline = time.monotonic() + timeout
        while True:
            running = []
            for tid in os.listdir(tasks):
                try:
                    with open(f'{tasks}/{tid}/stat') as f:
                        stat = f.read()
                except OSError:
                    continue  # the thread exited
                comm = stat[stat.index('(') + 1:stat.rindex(')')]
                state = stat[stat.rindex(')') + 2]
                if not comm.startswith('iou-') and state not in 'Tt':
                    running.append(f'{tid} ({comm}) {state}')
            if not running:
                return
            if time.monotonic() > deadline:
                raise Timeout(f'server {sid} did not stop within {timeout} s: {running}')
            time.sleep(0.001)

    def resume(self, sid):
        self.signal(sid, signal.SIGCONT)

    def stop(self, sid, timeout=5.0):
        """SIGTERM; returns the exit status (SIGKILL, and an AssertionError, after `timeout`)."""
        s = self.servers[sid]
        if s.proc is None:
            return None
        if s.proc.poll() is None:
            s.proc.send_signal(signal.SIGCONT)
            s.proc.send_signal(signal.SIGTERM)
            try:
                s.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                s.proc.kill()
                s.proc.wait(timeout=10)
                raise AssertionError(f'{s} did not exit within {timeout} s of SIGTERM')
        return s.proc.returncode

    def stop_all(self, timeout=5.0):
        """SIGTERM to every running server at once; returns {id: status}."""
        live = [s for s in self.servers.values() if s.running()]
        for s in live:
            s.proc.send_signal(signal.SIGCONT)
            s.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        stuck = []
        for s in live:
            try:
                s.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                s.proc.kill()
                s.proc.wait(timeout=10)
                stuck.append(s.id)
        if stuck:
            raise AssertionError(f'servers {stuck} did not exit within {timeout} s of SIGTERM')
        return {s.id: s.proc.returncode for s in live}

    def close(self):
        """Kills every process and removes the directory; safe to call twice."""
        for s in self.servers.values():
            if s.proc is not None and s.proc.poll() is None:
                try:
                    s.proc.kill()
                except OSError:
                    pass
        for s in self.servers.values():
            if s.proc is not None:
                try:
                    s.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        self._release_ports()
        self._remove_veth_pairs()
        for s in self.servers.values():
            # A server killed with SIGKILL leaves DPDK's runtime directory (its EAL named it).
            for d in set(re.findall(r'DPDK EAL up .*; runtime directory (\S+)', s.log_text())):
                if os.path.basename(d).startswith('fastzab-'):
                    shutil.rmtree(d, ignore_errors=True)
        if os.environ.get('FASTZAB_IT_KEEP'):
            print(f'kept {self.root}', file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)
        _live_clusters.discard(self)

    def logs_tail(self, lines=40):
        out = []
        for s in self.servers.values():
            text = s.log_text().splitlines()
            out.append(f'---- {s} (status {s.proc.poll() if s.proc else "never started"}), '
                       f'last {lines} lines of {s.log_path}:')
            out.extend(text[-lines:])
        return '\n'.join(out)

    # -------------------------------------------------------------- talking to servers

    def port(self, sid):
        return self.servers[sid].client_port

    def srvr(self, sid):
        return parse_srvr(four_letter(self.port(sid), 'srvr'))

    def mntr(self, sid):
        return parse_mntr(four_letter(self.port(sid), 'mntr'))

    def mode(self, sid):
        return self.srvr(sid).get('Mode')

    def status(self, sid, timeout=3.0):
        with Client(self.port(sid), timeout=timeout) as c:
            return c.status()

    def put(self, sid, value, timeout=5.0):
        with Client(self.port(sid), timeout=timeout) as c:
            return c.put(value)

    def put_once(self, sid, client_id, seq, value, timeout=5.0):
        with Client(self.port(sid), timeout=timeout) as c:
            return c.put_once(client_id, seq, value)

    def cli(self, *args, timeout=10.0):
        """Runs fastzab-cli; returns the CompletedProcess (text)."""
        return subprocess.run([cli_bin(), *args], capture_output=True, text=True,
                              timeout=timeout)

    def cli_put(self, sid, value, timeout_ms=5000):
        r = self.cli('--server', f'127.0.0.1:{self.port(sid)}', '--timeout', str(timeout_ms),
                     'put', value)
        if r.returncode != 0:
            raise AssertionError(f'fastzab-cli put to server {sid}: status {r.returncode}: '
                                 f'{r.stderr.strip()}')
        return int(r.stdout.strip(), 16)

    def cli_status(self, sid):
        r = self.cli('--server', f'127.0.0.1:{self.port(sid)}', 'status')
        if r.returncode != 0:
            raise AssertionError(f'fastzab-cli status of server {sid}: status {r.returncode}: '
                                 f'{r.stderr.strip()}')
        return json.loads(r.stdout)

    def leader_view(self, ids=None):
        """The live servers' srvr Mode and status, if they agree on one leader: that leader's
        id; else None. Every one of `ids` must be a follower/observer of it, or the leader."""
        ids = self.live_ids() if ids is None else ids
        leaders = []
        views = {}
        for sid in ids:
            mode = self.mode(sid)
            st = self.status(sid)
            if mode != st['role']:
                return None  # changing under us; ask again
            views[sid] = (mode, st['leader'])
            if mode == 'leader':
                leaders.append(sid)
        if len(leaders) != 1:
            return None
        leader = leaders[0]
        for sid, (mode, said) in views.items():
            want = 'observer' if self.servers[sid].observer else 'follower'
            if sid != leader and (mode != want or said != leader):
                return None
            if sid == leader and said != leader:
                return None
        return leader

    def wait_leader(self, ids=None, timeout=15.0, writable=True):
        """Until the live servers (or `ids`) agree on one leader; with `writable`, also until
        that leader commits a write (a probe value, b'probe-<n>', left in the log). A leader
        says so in srvr/status as soon as the election picks it, but answers writes with
        no_leader until a quorum has synchronised with it (ZAB's discovery and sync phases)."""
        def established():
            leader = self.leader_view(ids)
            if leader is None or not writable:
                return leader
            self.probes += 1
            try:
                self.put(leader, f'probe-{self.probes}'.encode(), timeout=2.0)
            except ServerError as e:
                if e.name in ('no_leader', 'unavailable'):
                    return None
                raise
            return leader
        return wait_until('one leader that every live server follows' +
                          (', committing writes' if writable else ''), established, timeout)

    def wait_caught_up(self, ids=None, timeout=15.0):
        """Until every server of `ids` (default: live ones) reports the same last_zxid and
        committed_zxid (their logs hold the same records up to it)."""
        ids = self.live_ids() if ids is None else ids

        def same():
            sts = [self.status(sid) for sid in ids]
            lasts = {st['last_zxid'] for st in sts}
            committed = {st['committed_zxid'] for st in sts}
            return len(lasts) == 1 and committed == lasts
        return wait_until(f'servers {ids} at the same last and committed zxid', same, timeout)

    # -------------------------------------------------------------- logs

    def newest_snapshot(self, sid):
        """The zxid of server `sid`'s newest snapshot file, or 0 if it has none."""
        paths = glob.glob(os.path.join(self.servers[sid].data_dir, 'snapshot.*'))
        return max((int(os.path.basename(p).split('.')[1], 16) for p in paths), default=0)

    def dump(self, sid, payload=True):
        """`fastzab-log dump --payload DATADIR` of a stopped server: a list of (zxid, length,
        crc, value) in the log's order, without the records its newest snapshot supersedes.
        length and crc are the record's; with `payload` they are checked here against its
        payload, and value is the client's value in it (entry_value: a LogValue, compared as
        what clients wrote, whose .raw is the whole payload). Without it, b''."""
        s = self.servers[sid]
        assert not s.running(), f'dump of {s} while it runs'
        args = [log_bin(), 'dump', '--cluster-id', str(self.cluster_id)]
        if payload:
            args.append('--payload')
        r = subprocess.run([*args, s.data_dir], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f'fastzab-log dump {s.data_dir}: status {r.returncode}: '
                                 f'{r.stderr.strip()}')
        records = []
        for line in r.stdout.splitlines():
            fields = line.split()
            if fields[-1] == 'superseded':
                continue  # under the newest snapshot: not part of the log the servers agree on
            zxid, length, crc = int(fields[0], 16), int(fields[1]), int(fields[2], 16)
            value = b''
            if payload:
                raw = bytes.fromhex(fields[3]) if fields[3] != '-' else b''
                if length != len(raw) or crc != crc32c(raw):
                    raise AssertionError(f'{s.data_dir}: record 0x{zxid:016x} says {length} '
                                         f'bytes and CRC32C 0x{crc:08x}, holds {raw!r}')
                value = entry_value(raw)
            records.append((zxid, length, crc, value))
        return records


class LogValue(bytes):
    """A client's value as a log record holds it: compares as the value; `raw` is the record's
    whole payload (what its length and CRC32C cover)."""
    raw = b''


def entry_value(payload):
    """The client's value in a log record's payload, as a LogValue. engine/core/codec.h: a
    header (byte 0xf0 for an anonymous write; byte 0xf1, int64 client id and int64 sequence for
    an identified one), then the value."""
    if payload[:1] == b'\xf0':
        v = LogValue(payload[1:])
    elif payload[:1] == b'\xf1' and len(payload) >= 17:
        v = LogValue(payload[17:])
    else:
        raise AssertionError(f'a log record without an entry header: {payload[:24]!r}')
    v.raw = payload
    return v


# ------------------------------------------------------------------ CRC32C (for dump lines)

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


# ------------------------------------------------------------------ test base

class ClusterTestCase(unittest.TestCase):
    """Creates clusters through self.cluster(...); tearDown kills them and removes their
    directories, printing the servers' logs first when the test failed."""

    def setUp(self):
        self._clusters = []
        # Fail here, clearly, when a binary is missing.
        server_bin()
        log_bin()

    def require_tcp(self, what):
        """Skips (saying why) a test of something only the io_uring TCP transport has."""
        if transport_under_test() != 'uring':
            self.skipTest(f'{what}: the TCP transport only (FASTZAB_IT_TRANSPORT='
                          f'{transport_under_test()})')

    def cluster(self, voters, observers=0, **kw):
        c = Cluster(voters, observers, **kw)
        self._clusters.append(c)
        return c

    def tearDown(self):
        failed = self._failed()
        for c in self._clusters:
            if failed:
                print(f'\n==== {self.id()} failed; the servers\' logs:\n{c.logs_tail()}',
                      file=sys.stderr)
            c.close()

    def _failed(self):
        # unittest resets its outcome's `success` for tearDown; look for this test (or one of
        # its subtests) among the results' errors and failures instead.
        outcome = getattr(self, '_outcome', None)
        result = getattr(outcome, 'result', None)
        if result is None:
            return False
        for test, _ in list(result.errors) + list(result.failures):
            if test is self or getattr(test, 'test_case', None) is self:
                return True
        return False

    # The log checks the tests share.
    def assert_dumps_equal(self, cluster, ids=None):
        """Every server of `ids` (default: all) stopped; their dumps are identical and not
        empty. Returns the common dump."""
        ids = cluster.ids if ids is None else ids
        dumps = {sid: cluster.dump(sid) for sid in ids}
        first = dumps[ids[0]]
        for sid in ids[1:]:
            if dumps[sid] != first:
                self.fail(f'dump of server {sid} differs from server {ids[0]}\'s:\n'
                          f'{describe_difference(first, dumps[sid])}')
        self.assertTrue(first, 'the logs are empty')
        zxids = [r[0] for r in first]
        self.assertEqual(zxids, sorted(set(zxids)), 'zxids not strictly increasing in the dump')
        for zxid, length, crc, value in first:
            self.assertEqual(length, len(value.raw))
            self.assertEqual(crc, crc32c(value.raw), f'crc of 0x{zxid:016x}')
        return first

    def assert_acked_present(self, records, acked, where):
        """Every acknowledged (zxid, value) is a record of `records` with exactly that value."""
        by_zxid = {r[0]: r[3] for r in records}
        missing = [(z, v) for z, v in acked if by_zxid.get(z) != v]
        if missing:
            z, v = missing[0]
            self.fail(f'{len(missing)} of {len(acked)} acknowledged writes missing from {where}; '
                      f'first: zxid 0x{z:016x} value {v!r}, the log has {by_zxid.get(z)!r}')


def describe_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f'record {i}: 0x{x[0]:016x} {x[3]!r} vs 0x{y[0]:016x} {y[3]!r}'
    return f'{len(a)} records vs {len(b)} (the shorter is a prefix of the longer)'


def hexz(zxid):
    return f'0x{zxid:016x}'


def main():
    unittest.main(verbosity=2)
