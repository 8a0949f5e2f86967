"""Hostile clients of the client port, and what watches them: issue 10's probes, shared by
test_hostile_clients.py (shrunk to CI size), probe_report.py (the RSS and latency report) and
soak scripts.

Each probe runs for a given time (or until a stop event is set) against one server's client port
and returns a dict of counts; the keys every probe returns are in RESULT_KEYS.

  flood      many connections pipelining 1 KiB writes as fast as the server takes them, and
             reading every reply
  nonreader  connections that pipeline writes (or status requests) and never read a reply;
             when the server drops one, another takes its place
  idle       idle connections, opened until the server refuses them (per source address, and a
             batch past that), then held
  slowloris  connections that announce a 1 MiB write and send it a byte per 100 ms; when the
             server drops one, another takes its place

    run_probe(kind, host, port, seconds, stop_event=None, **options) -> dict
    python3 hostile.py KIND HOST PORT SECONDS [--source ADDR]... [--connections N]   (JSON out)

`sources` (a list of local addresses to bind, used in turn) lets hostile connections come from
other loopback addresses than a polite client's 127.0.0.1: maxClientCnxns counts per address.
Standard library only.
"""

import argparse
import json
import math
import os
import select
import selectors
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as C  # noqa: E402

KINDS = ('flood', 'nonreader', 'idle', 'slowloris')
RESULT_KEYS = ('kind', 'host', 'port', 'elapsed_s', 'bytes_sent', 'bytes_received',
               'connections_opened', 'connections_refused', 'connections_dropped',
               'connect_errors')

# A connection the server closes this soon after it was opened, before answering anything, was
# refused (maxClientCnxns, maxCnxns: accepted and closed at once) rather than dropped.
REFUSE_WINDOW_S = 0.5


# ------------------------------------------------------------------ watching a server

def memory_kb(pid):
    """{'rss', 'anon', 'file'}: VmRSS, RssAnon and RssFile of process `pid`, in kB (anon is the
    heap and stacks; file counts mapped files, the binary's pages among them)."""
    out = {}
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            key = {'VmRSS:': 'rss', 'RssAnon:': 'anon', 'RssFile:': 'file'}.get(
                line.split(None, 1)[0] if line.strip() else '')
            if key:
                out[key] = int(line.split()[1])
    if 'rss' not in out:
        raise AssertionError(f'no VmRSS for {pid}')
    return out


def rss_kb(pid):
    return memory_kb(pid)['rss']


def rss_mb(pid):
    return rss_kb(pid) / 1024


def cpu_seconds(pid):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


class RssSampler:
    """A thread that reads the memory of each of `pids` ({name: pid}) every `interval` seconds.
    `samples` is a list of (time.monotonic(), {name: VmRSS in kB, or None once the process is
    gone}); `anon` the same with RssAnon."""

    def __init__(self, pids, interval=0.5):
        self.pids = dict(pids)
        self.interval = interval
        self.samples = []
        self.anon = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self):
        row, anon = {}, {}
        for name, pid in self.pids.items():
            try:
                m = memory_kb(pid)
                row[name], anon[name] = m['rss'], m.get('anon')
            except (OSError, AssertionError):
                row[name] = anon[name] = None
        now = time.monotonic()
        self.samples.append((now, row))
        self.anon.append((now, anon))
        return row

    def _run(self):
        # Paced from the start time, so that a slow /proc read does not stretch the series.
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.sample()
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def peak_kb(self, name, since=None, until=None):
        values = [row[name] for t, row in self.samples
                  if row.get(name) is not None and (since is None or t >= since) and
                  (until is None or t <= until)]
        return max(values) if values else None

    def peak_mb(self, name, **kw):
        kb = self.peak_kb(name, **kw)
        return None if kb is None else kb / 1024

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class PolitePuts:
    """A polite client in a thread: one put at a time on its own connection, started every
    `interval` seconds (or at once when the previous one took longer), retried on a new
    connection when one fails (a leader change, a refusal). `latencies` holds (start time, seconds)
    of every acknowledged put, `failures` (start time, repr) of every failed one; `ok` and
    `errors` (the reprs) count them."""

    def __init__(self, port, host='127.0.0.1', interval=0.01, timeout=5.0):
        self.host = host
        self.port = port
        self.interval = interval
        self.timeout = timeout
        self.ok = 0
        self.errors = []
        self.latencies = []
        self.failures = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        # Connected now, before any hostile client can take the port's slots.
        self._client = C.Client(port, timeout=timeout, host=host)

    def _fail(self, t0, e):
        self.errors.append(repr(e))
        self.failures.append((t0, repr(e)))

    def _run(self):
        n = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            n += 1
            t0 = time.monotonic()
            try:
                if self._client is None:
                    self._client = C.Client(self.port, timeout=self.timeout, host=self.host)
                self._client.put(b'polite-%d' % n)
                self.latencies.append((t0, time.monotonic() - t0))
                self.ok += 1
            except (OSError, C.ProtocolError, C.ServerError) as e:
                self._fail(t0, e)
                if self._client is not None:
                    self._client.close()
                    self._client = None
                self._stop.wait(0.1)  # a refused reconnection must not spin
            # A fixed cadence, without a burst to catch up after a slow put.
            next_at = max(next_at + self.interval, time.monotonic())
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=15)
        if self._client is not None:
            self._client.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def percentile(sorted_values, q):
    """The q-quantile (0..1) of an ascending list, nearest rank; None for an empty one."""
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[k]


# ------------------------------------------------------------------ sockets

def connect(host, port, source=None, timeout=2.0):
    """A TCP connection (blocking, with `timeout`), bound to local address `source` if given."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if source:
            s.bind((source, 0))
        s.settimeout(timeout)
        s.connect((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        s.close()
        raise
    return s


def _gone(sock):
    """Whether the peer has closed `sock` (EOF, a reset); drops whatever bytes came first.
    Never blocks."""
    # A socket with a timeout waits for data before each recv(), MSG_DONTWAIT or not.
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        while True:
            try:
                if not sock.recv(65536):
                    return True
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                return True
    finally:
        sock.settimeout(timeout)


def closed_sockets(socks, timeout=0.0):
    """The sockets of `socks` that the server has closed (EOF or reset), waiting up to `timeout`
    seconds for the first; whatever they were sent first is discarded. poll(), not select():
    descriptors past 1024 are fine."""
    if not socks:
        return []
    p = select.poll()
    by_fd = {}
    for s in socks:
        by_fd[s.fileno()] = s
        p.register(s, select.POLLIN | select.POLLERR | select.POLLHUP)
    events = p.poll(max(0, int(timeout * 1000)))
    return [by_fd[fd] for fd, _ in events if _gone(by_fd[fd])]


def closed_by_server(sock, timeout):
    """True once the server has closed `sock` (EOF or reset) within `timeout` seconds; reads and
    drops whatever replies come first."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if closed_sockets([sock], max(0.0, left)):
            return True
        if left <= 0:
            return False


def split_refused(socks, timeout=REFUSE_WINDOW_S):
    """Waits `timeout` seconds, then splits freshly opened `socks` into (alive, refused): the
    server closes a refused connection at once (maxClientCnxns, maxCnxns)."""
    time.sleep(timeout)
    refused = closed_sockets(socks, 0.0)
    ids = {id(s) for s in refused}
    return [s for s in socks if id(s) not in ids], refused


def pipeline_unread(sock, frame, until, stop_event=None, stop_when_blocked=None):
    """Pipelines `frame` on `sock` as fast as the server takes it and never reads a reply, until
    time.monotonic() passes `until`, `stop_event` is set, the server closes the connection, or
    (with `stop_when_blocked`) the server has taken nothing for that many seconds. Returns
    {'bytes_sent', 'stopped_reading' (a send blocked for a second or more), 'dropped'}."""
    sock.setblocking(False)
    writable = select.poll()
    writable.register(sock, select.POLLOUT)
    # Whole frames, so that a cyclic offset stays aligned on them.
    buf = memoryview(frame * (65536 // len(frame) + 1))
    pos = sent = 0
    blocked_since = None
    out = {'bytes_sent': 0, 'stopped_reading': False, 'dropped': False}
    while time.monotonic() < until and not (stop_event is not None and stop_event.is_set()):
        try:
            k = sock.send(buf[pos:])
            sent += k
            pos = (pos + k) % len(buf)
            blocked_since = None
            continue
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            out['dropped'] = True
            break
        now = time.monotonic()
        blocked_since = blocked_since or now
        if now - blocked_since >= 1.0:
            out['stopped_reading'] = True
            if stop_when_blocked is not None and now - blocked_since >= stop_when_blocked:
                break
        # A reset also wakes this (POLLERR), and the next send raises.
        writable.poll(50)
    out['bytes_sent'] = sent
    return out


def _result(kind, host, port, started):
    r = dict.fromkeys(RESULT_KEYS, 0)
    r.update(kind=kind, host=host, port=port, elapsed_s=0.0)
    r['_started'] = started
    return r


def _finish(r):
    r['elapsed_s'] = round(time.monotonic() - r.pop('_started'), 3)
    return r


def _stopping(until, stop_event):
    return time.monotonic() >= until or (stop_event is not None and stop_event.is_set())


def _pause(seconds, until, stop_event):
    # Only is_set() is asked of stop_event, so any event-like object will do.
    end = min(time.monotonic() + seconds, until)
    while not _stopping(until, stop_event) and time.monotonic() < end:
        time.sleep(min(0.05, max(0.0, end - time.monotonic())))


def _source(sources, i):
    return sources[i % len(sources)] if sources else None


# ------------------------------------------------------------------ the probes

def flood(host, port, seconds, stop_event=None, connections=32, value_bytes=1024, sources=None):
    """`connections` connections, each pipelining writes of `value_bytes` as fast as its socket
    takes them and reading every reply; a connection the server closes is replaced. Adds
    writes_acked, error_replies (by name) and stopped_reading (a send blocked a second or more,
    summed over connections: the server's backpressure)."""
    started = time.monotonic()
    until = started + seconds
    r = _result('flood', host, port, started)
    r.update(writes_acked=0, error_replies={}, stopped_reading=0)
    frame = C.encode_frame(C.T_WRITE, 0, b'f' * value_bytes)
    chunk = memoryview(frame * max(1, 65536 // len(frame)))
    sel = selectors.DefaultSelector()
    retry = []  # (time, slot): a slot to reconnect, after a pause if it was refused

    def open_slot(slot):
        try:
            s = connect(host, port, _source(sources, slot))
        except OSError:
            r['connect_errors'] += 1
            retry.append((time.monotonic() + 0.1, slot))
            return
        s.setblocking(False)
        r['connections_opened'] += 1
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE,
                     {'slot': slot, 'pos': 0, 'in': bytearray(), 'opened': time.monotonic(),
                      'replies': 0, 'blocked_since': None, 'counted_block': False})

    def close_slot(s, st):
        sel.unregister(s)
        s.close()
        now = time.monotonic()
        if st['replies'] == 0 and now - st['opened'] < REFUSE_WINDOW_S:
            r['connections_refused'] += 1
            retry.append((now + REFUSE_WINDOW_S, st['slot']))
        else:
            r['connections_dropped'] += 1
            retry.append((now, st['slot']))

    for slot in range(connections):
        open_slot(slot)
    while not _stopping(until, stop_event):
        now = time.monotonic()
        due = [x for x in retry if x[0] <= now]
        retry[:] = [x for x in retry if x[0] > now]
        for _, slot in due:
            open_slot(slot)
        for key, ev in sel.select(timeout=0.05):
            s, st = key.fileobj, key.data
            if ev & selectors.EVENT_READ:
                try:
                    data = s.recv(262144)
                except (BlockingIOError, InterruptedError):
                    data = None
                except OSError:
                    data = b''
                if data == b'':
                    close_slot(s, st)
                    continue
                if data:
                    r['bytes_received'] += len(data)
                    buf = st['in']
                    buf += data
                    off = 0
                    while len(buf) - off >= 4 + C.HEADER_BYTES:
                        (length,) = struct.unpack_from('<I', buf, off)
                        if len(buf) - off < 4 + length:
                            break
                        type_ = buf[off + 4]
                        if type_ == C.T_WRITE_OK:
                            r['writes_acked'] += 1
                        elif type_ == C.T_ERROR:
                            code = buf[off + 4 + C.HEADER_BYTES]
                            name = C.ERROR_CODES.get(code, str(code))
                            r['error_replies'][name] = r['error_replies'].get(name, 0) + 1
                        st['replies'] += 1
                        off += 4 + length
                    del buf[:off]
            if ev & selectors.EVENT_WRITE:
                try:
                    k = s.send(chunk[st['pos']:])
                    r['bytes_sent'] += k
                    st['pos'] = (st['pos'] + k) % len(chunk)
                    st['blocked_since'] = None
                    st['counted_block'] = False
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    close_slot(s, st)
                    continue
        # Every send above clears blocked_since, so it ages only on a connection whose socket
        # has not been writable since: a second of that means the server stopped reading it.
        now = time.monotonic()
        for key in list(sel.get_map().values()):
            st = key.data
            if st['blocked_since'] is None:
                st['blocked_since'] = now
            elif not st['counted_block'] and now - st['blocked_since'] >= 1.0:
                st['counted_block'] = True
                r['stopped_reading'] += 1
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    sel.close()
    return _finish(r)


def nonreader(host, port, seconds, stop_event=None, connections=2, value_bytes=1024,
              sources=None):
    """`connections` connections (even slots pipeline writes of `value_bytes`, odd ones status
    requests, whose replies are larger than the requests) that never read a reply; each one the
    server drops is replaced. Adds stopped_reading: how many connections the server stopped
    reading (their sends blocked a second or more)."""
    started = time.monotonic()
    until = started + seconds
    r = _result('nonreader', host, port, started)
    r.update(stopped_reading=0, write_connections=(connections + 1) // 2,
             status_connections=connections // 2)
    lock = threading.Lock()

    def slot_loop(slot):
        frame = (C.encode_frame(C.T_WRITE, slot, b'n' * value_bytes) if slot % 2 == 0 else
                 C.encode_frame(C.T_STATUS, slot))
        while not _stopping(until, stop_event):
            try:
                s = connect(host, port, _source(sources, slot))
            except OSError:
                with lock:
                    r['connect_errors'] += 1
                time.sleep(0.1)
                continue
            opened = time.monotonic()
            with lock:
                r['connections_opened'] += 1
            try:
                out = pipeline_unread(s, frame, until, stop_event)
            finally:
                s.close()
            with lock:
                r['bytes_sent'] += out['bytes_sent']
                r['stopped_reading'] += out['stopped_reading']
                if out['dropped']:
                    if time.monotonic() - opened < REFUSE_WINDOW_S:
                        r['connections_refused'] += 1
                    else:
                        r['connections_dropped'] += 1
            if out['dropped'] and time.monotonic() - opened < REFUSE_WINDOW_S:
                time.sleep(REFUSE_WINDOW_S)

    threads = [threading.Thread(target=slot_loop, args=(i,), daemon=True)
               for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return _finish(r)


def idle(host, port, seconds, stop_event=None, sources=None, max_connections=20000, batch=16,
         past_cap=32):
    """From each address of `sources` (or the default one) in turn: opens idle connections in
    batches until the server refuses them, then `past_cap` more (refused too, if the cap holds),
    and holds the accepted ones until the time is up, counting those the server drops. Adds
    held (at the end), held_max, and per_source {address: {'held', 'refused'}}."""
    started = time.monotonic()
    until = started + seconds
    r = _result('idle', host, port, started)
    r.update(held=0, held_max=0, per_source={})
    held = []
    for i, src in enumerate(sources or [None]):
        name = src or 'default'
        mine = {'held': 0, 'refused': 0}
        r['per_source'][name] = mine
        extra = None  # connections still to try past the first refusal
        while (extra is None or extra > 0) and len(held) < max_connections and \
                not _stopping(until, stop_event):
            n = min(batch, max_connections - len(held))
            if extra is not None:
                n = min(n, extra)
            fresh = []
            for _ in range(n):
                try:
                    fresh.append(connect(host, port, src))
                except OSError:
                    r['connect_errors'] += 1
            r['connections_opened'] += len(fresh)
            alive, refused = split_refused(fresh)
            for s in refused:
                s.close()
            r['connections_refused'] += len(refused)
            mine['refused'] += len(refused)
            held += alive
            mine['held'] += len(alive)
            if extra is not None:
                extra -= n
            elif refused or (not fresh and n):
                extra = past_cap
        r['held_max'] = max(r['held_max'], len(held))
    while not _stopping(until, stop_event):
        gone = closed_sockets(held, 0.0)
        if gone:
            ids = {id(s) for s in gone}
            held = [s for s in held if id(s) not in ids]
            for s in gone:
                s.close()
            r['connections_dropped'] += len(gone)
        _pause(0.5, until, stop_event)
    r['held'] = len(held)
    for s in held:
        s.close()
    return _finish(r)


SLOWLORIS_VALUE_BYTES = 1 << 20


def slowloris(host, port, seconds, stop_event=None, connections=100, sources=None,
              interval=0.1, reconnect=True):
    """`connections` connections that each announce a write of 1 MiB and send one byte of it
    every `interval` seconds; with `reconnect`, each one the server closes is replaced, else the
    probe ends when the server has closed them all. Adds open_at_end."""
    started = time.monotonic()
    until = started + seconds
    r = _result('slowloris', host, port, started)
    r.update(open_at_end=0)
    header = struct.pack('<IBQ', C.HEADER_BYTES + SLOWLORIS_VALUE_BYTES, C.T_WRITE, 0)
    conns = {}  # slot -> (socket, opened at)
    retry = {}  # slot -> time to reconnect

    def open_slot(slot):
        try:
            s = connect(host, port, _source(sources, slot))
            s.sendall(header)
        except OSError:
            r['connect_errors'] += 1
            retry[slot] = time.monotonic() + 0.1
            return
        s.setblocking(False)
        r['connections_opened'] += 1
        r['bytes_sent'] += len(header)
        conns[slot] = (s, time.monotonic())

    def closed(slot):
        s, opened = conns.pop(slot)
        s.close()
        now = time.monotonic()
        refused = now - opened < REFUSE_WINDOW_S
        r['connections_refused' if refused else 'connections_dropped'] += 1
        if reconnect:
            retry[slot] = now + (REFUSE_WINDOW_S if refused else 0.0)

    for slot in range(connections):
        open_slot(slot)
    next_tick = time.monotonic()
    while not _stopping(until, stop_event) and (conns or retry):
        now = time.monotonic()
        for slot in [k for k, t in retry.items() if t <= now]:
            del retry[slot]
            open_slot(slot)
        for slot in list(conns):
            try:
                r['bytes_sent'] += conns[slot][0].send(b's')
            except (BlockingIOError, InterruptedError):
                pass  # the server is not reading it (waiting for the input budget)
            except OSError:
                closed(slot)
        by_sock = {id(s): slot for slot, (s, _) in conns.items()}
        for s in closed_sockets([s for s, _ in conns.values()], 0.0):
            closed(by_sock[id(s)])
        next_tick += interval
        _pause(next_tick - time.monotonic(), until, stop_event)
    r['open_at_end'] = len(conns)
    for s, _ in conns.values():
        s.close()
    return _finish(r)


_PROBES = {'flood': flood, 'nonreader': nonreader, 'idle': idle, 'slowloris': slowloris}


def run_probe(kind, host, port, seconds, stop_event=None, **options):
    """Runs probe `kind` (one of KINDS) against host:port for `seconds`, or until `stop_event`
    (anything with is_set(): a threading or multiprocessing Event) is set.
    `options` go to the probe's function (connections, sources, ...). Returns its counts: every
    key of RESULT_KEYS, and the probe's own."""
    if kind not in _PROBES:
        raise ValueError(f'unknown probe {kind!r}: one of {", ".join(KINDS)}')
    return _PROBES[kind](host, port, seconds, stop_event=stop_event, **options)


def main(argv=None):
    p = argparse.ArgumentParser(description='Runs one hostile client probe; prints its counts '
                                            'as JSON.')
    p.add_argument('kind', choices=KINDS)
    p.add_argument('host')
    p.add_argument('port', type=int)
    p.add_argument('seconds', type=float)
    p.add_argument('--source', action='append', dest='sources',
                   help='local address to connect from (repeat: used in turn)')
    p.add_argument('--connections', type=int, help='flood, nonreader, slowloris')
    args = p.parse_args(argv)
    stop = threading.Event()
    # SIGTERM ends the probe early with its counts still printed.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    options = {}
    if args.sources:
        options['sources'] = args.sources
    if args.connections is not None:
        if args.kind == 'idle':
            p.error('--connections: not for idle (it opens until refused)')
        options['connections'] = args.connections
    result = run_probe(args.kind, args.host, args.port, args.seconds, stop, **options)
    json.dump(result, sys.stdout)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
