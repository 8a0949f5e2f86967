"""A client-visible history of writes, and a checker of it against the servers' agreed log.

Every write a client makes is recorded (Recorder): its value, when it was sent and when its
outcome was learned (time.monotonic(), which every thread of the process shares), and the
outcome: ok with the zxid the server acknowledged, failed with the server's error code, or
unknown (a timeout, a connection that broke, no answer). After the run the servers are stopped,
their logs dumped (Cluster.dump or iter_dump: `fastzab-log dump --payload`) and merged into one
agreed log (AgreedLog), and check() compares the two:

  1. every acknowledged write is in the agreed log exactly once, at the zxid it was
     acknowledged with, holding its value ("lost" when not at that zxid, "duplicate" when
     elsewhere too);
  2. real-time order: when write A's acknowledgement came back before write B was sent (by any
     client), zxid(A) < zxid(B); a write of unknown outcome known to have committed takes part
     as B, at the zxid the log holds it;
  3. a write that failed with an error meaning "nothing was proposed" is not in the log;
  4. a write whose outcome is unknown is in the log at most once;
  5. the servers' logs agree: wherever two dumps overlap they hold the same zxids with the same
     records, each dump's zxids increase, and each record's length and CRC32C match its payload;
  6. (with owned_prefix) no value with the run's prefix is in the log unless a client sent it.

A follower caught up by SNAP drops its whole log, so after a long run with faults the final
dumps may all start late. LogArchiver copies the logs as they grow, and AgreedLog.add_archive
merges those copies: acknowledged writes dropped since are still checked (an acknowledged write
found nowhere is "unverifiable" only when it lies below everything any dump or copy holds). A
copy may hold a deposed leader's tail that was never committed; it must still agree with every
other record at its zxid (an epoch's one leader proposes each zxid once), but a record counts as
committed only when a final dump holds it or it lies below an acknowledged write of its epoch
(a leader commits in zxid order).

Values must be unique per history (clients never reuse one, and never retry a value): that is
what lets a log record be traced back to one invocation.

Error codes (engine/runtime/client_protocol.h, mapped in engine/cmd/client_port.cpp from
fastzab::WriteError, engine/runtime/replica.cpp's WriteFailure and core's RejectReason):

  no_leader    nothing proposed. Given by a server that is neither an established leader nor a
               follower in broadcast with a live session to its leader (Replica::submit), by a
               leader that gets a forwarded write while not leading, and for core refusals
               not_leader / not_established / transferring (proposal_rejected).
  too_large    nothing proposed: the client port refused the frame, or core's too_large.
  bad_request  nothing proposed: the frame was not decoded as a write (the server then closes).
  rejected     nothing proposed: core's zxid_exhausted (the epoch's counter is used up).
  unavailable  nothing proposed: the client port's queue to the core was full, or a transfer
               request was already waiting (engine/cmd/client_port.cpp).
  stale_sequence  nothing proposed: a write_once whose seq is older than its client's last
               (core's stale_sequence); the histories here send plain writes, which never get it.
  unknown_outcome  UNKNOWN: WriteError unknown_outcome (proposed, then leadership or the
               session to the leader was lost: it may still commit under the next leader) or
               stopped (the server stopped with the write in flight). It may appear in the log,
               at most once.
  transfer_refused, or any other code: not an answer to a write; taken as unknown.

A client-side timeout, a broken connection or a malformed reply is unknown too. A write that
never got an outcome recorded (a thread that died) is unknown.

Standard library only.
"""

import array
import bisect
import json
import os
import random
import shutil
import struct
import subprocess
import threading
import time

import cluster
from cluster import ProtocolError, ServerError, hexz

# The error codes that mean nothing was proposed; every other one leaves the outcome unknown.
NOT_PROPOSED = frozenset({'no_leader', 'too_large', 'bad_request', 'rejected', 'unavailable',
                          'stale_sequence'})

PENDING, OK, FAILED, UNKNOWN = 'pending', 'ok', 'failed', 'unknown'


def classify(op):
    """'ok', 'not_proposed' (a failure that guarantees the write is not in the log) or
    'unknown' (it may be, at most once)."""
    if op.outcome == OK:
        return 'ok'
    if op.outcome == FAILED and op.error in NOT_PROPOSED:
        return 'not_proposed'
    return 'unknown'


class Op:
    """One write invocation. `send` is taken before the request is sent, `end` after its
    outcome arrived, so [send, end] contains what the server did with it."""

    __slots__ = ('id', 'value', 'client', 'server', 'send', 'end', 'outcome', 'zxid', 'error',
                 'text')

    def __init__(self, id_, value, client, server, send):
        self.id = id_
        self.value = value
        self.client = client
        self.server = server
        self.send = send
        self.end = None
        self.outcome = PENDING
        self.zxid = None
        self.error = None
        self.text = None

    @property
    def ack(self):
        """The acknowledgement time of an ok write, else None."""
        return self.end if self.outcome == OK else None

    def describe(self):
        where = f' to server {self.server}' if self.server is not None else ''
        who = f' by {self.client}' if self.client else ''
        if self.outcome == OK:
            result = f'acknowledged at {hexz(self.zxid)}'
        elif self.outcome == FAILED:
            result = f'failed {self.error}' + (f' ({self.text})' if self.text else '')
        else:
            result = self.outcome + (f' ({self.text})' if self.text else '')
        span = f'sent {self.send:.6f}'
        if self.end is not None:
            span += f', answered {self.end:.6f}'
        return f'op {self.id} {self.value!r}{who}{where}: {result} [{span}]'

    def to_json(self):
        return {'id': self.id, 'value': self.value.hex(), 'client': self.client,
                'server': self.server, 'send': self.send, 'end': self.end,
                'outcome': self.outcome, 'zxid': self.zxid, 'error': self.error,
                'text': self.text}

    @classmethod
    def from_json(cls, d):
        op = cls(d['id'], bytes.fromhex(d['value']), d['client'], d['server'], d['send'])
        op.end, op.outcome, op.zxid = d['end'], d['outcome'], d['zxid']
        op.error, op.text = d['error'], d['text']
        return op


class Recorder:
    """Thread-safe: any number of client threads record into one history."""

    def __init__(self):
        self._lock = threading.Lock()
        self._ops = []

    def invoke(self, value, client=None, server=None):
        """Call right before sending the request; returns its Op."""
        with self._lock:
            op = Op(len(self._ops), bytes(value), client, server, time.monotonic())
            self._ops.append(op)
        return op

    def _finish(self, op, outcome, zxid=None, error=None, text=None):
        now = time.monotonic()
        with self._lock:
            if op.outcome != PENDING:
                raise AssertionError(f'{op.describe()}: a second outcome ({outcome})')
            op.end, op.outcome, op.zxid, op.error, op.text = now, outcome, zxid, error, text

    def ok(self, op, zxid):
        self._finish(op, OK, zxid=zxid)

    def failed(self, op, error, text=None):
        self._finish(op, FAILED, error=error, text=text)

    def unknown(self, op, why=None):
        self._finish(op, UNKNOWN, text=why)

    def ops(self):
        with self._lock:
            return list(self._ops)

    def __len__(self):
        with self._lock:
            return len(self._ops)

    def save(self, path):
        """JSON lines, one Op each (load() reads them back): a kept run can be checked again."""
        with open(path, 'w') as f:
            for op in self.ops():
                f.write(json.dumps(op.to_json()) + '\n')


def load(path):
    with open(path) as f:
        return [Op.from_json(json.loads(line)) for line in f if line.strip()]


# ------------------------------------------------------------------ recorded client calls

def put(recorder, client, value, label=None, server=None):
    """client.put(value), recorded. Returns the zxid; re-raises what put raised, once recorded
    (a ServerError as failed, OSError/ProtocolError as unknown)."""
    op = recorder.invoke(value, client=label, server=server)
    try:
        zxid = client.put(value)
    except ServerError as e:
        recorder.failed(op, e.name, e.text)
        raise
    except BaseException as e:  # a timeout, a broken connection, a garbled reply, anything
        recorder.unknown(op, repr(e))
        raise
    recorder.ok(op, zxid)
    return zxid


def put_many(recorder, client, values, window=64, label=None, server=None, ops=None):
    """Like Client.put_many (up to `window` writes in flight on one connection), but every
    write is recorded with its own send and reply time, and an error reply fails only its own
    write: the rest go on. Returns the Ops of the writes sent (appended to `ops` if given, which
    then has them even when this raises). A broken connection (OSError, ProtocolError) makes
    every write in flight unknown and is re-raised; writes not yet sent were never invoked."""
    values = list(values)
    ops = [] if ops is None else ops
    base = len(ops)
    first_id = client.next_id
    client.next_id += len(values)
    sent = received = 0
    try:
        while received < len(values):
            frames = []
            while sent < len(values) and sent - received < window:
                ops.append(recorder.invoke(values[sent], client=label, server=server))
                frames.append(cluster.encode_frame(cluster.T_WRITE, first_id + sent,
                                                   values[sent]))
                sent += 1
            if frames:
                client.sock.sendall(b''.join(frames))
            rtype, rid, rfields = cluster.read_frame(client.sock)
            index = rid - first_id
            if not 0 <= index < sent or ops[base + index].outcome != PENDING:
                raise ProtocolError(f'reply to request {rid}, not one in flight')
            if rtype == cluster.T_ERROR:
                if not rfields:
                    raise ProtocolError('an error reply without a code')
                recorder.failed(ops[base + index],
                                cluster.ERROR_CODES.get(rfields[0], str(rfields[0])),
                                rfields[1:].decode('utf-8', 'replace'))
            elif rtype == cluster.T_WRITE_OK and len(rfields) == 8:
                recorder.ok(ops[base + index], struct.unpack('<Q', rfields)[0])
            else:
                raise ProtocolError(f'reply of type 0x{rtype:02x} with {len(rfields)} bytes to '
                                    f'write {rid}')
            received += 1
    except BaseException as e:
        for op in ops[base:]:
            if op.outcome == PENDING:
                recorder.unknown(op, repr(e))
        raise
    return ops


class LoadWriter(threading.Thread):
    """A client thread that writes f'{prefix}-{n}' (n counts up: every value unique; `pad`
    bytes appended; `pace` seconds between requests) until stop(), recording every write.
    `target`: 'leader' (whichever server says it leads), 'follower' (one that says it follows:
    the write is forwarded) or 'any'; `window` > 0 pipelines batches of `batch` writes with
    that many in flight (put_many). After a failure it connects again, to the target as it is
    then. `acked` counts its acknowledged writes. Never starts or signals processes (the main
    thread's: PR_SET_PDEATHSIG follows the forking thread)."""

    def __init__(self, c, recorder, prefix, target='leader', window=0, batch=100, timeout=3.0,
                 rng=None, pad=0, pace=0.0):
        super().__init__(daemon=True, name=f'writer-{prefix}')
        assert target in ('leader', 'follower', 'any'), target
        self.c = c
        self.recorder = recorder
        self.prefix = prefix
        self.target = target
        self.window = window
        self.batch = batch
        self.timeout = timeout
        self.pad = b'.' * pad  # bulk after the unique part, to fill a log faster
        self.pace = pace  # seconds between requests (or batches): a rate, for long runs
        self.rng = rng or random.Random(prefix)
        self.stop_event = threading.Event()
        self.seq = 0
        self.acked = 0
        self.connects = 0

    def pick(self):
        ids = list(self.c.ids)
        self.rng.shuffle(ids)
        if self.target == 'any':
            return ids[0]
        want = ('leader',) if self.target == 'leader' else ('follower', 'observer')
        for sid in ids:
            try:
                if self.c.status(sid, timeout=0.5)['role'] in want:
                    return sid
            except (OSError, ProtocolError, ValueError, KeyError):
                pass
        return None

    def _values(self, n):
        out = []
        for _ in range(n):
            self.seq += 1
            out.append(f'{self.prefix}-{self.seq}'.encode() + self.pad)
        return out

    def run(self):
        client = None
        label = self.name
        while not self.stop_event.is_set():
            if client is None:
                sid = self.pick()
                if sid is None:
                    self.stop_event.wait(0.02)  # an election is running: pace the polling
                    continue
                try:
                    client = cluster.Client(self.c.port(sid), timeout=self.timeout)
                    self.connects += 1
                except OSError:
                    self.stop_event.wait(0.05)
                    continue
            try:
                if self.window:
                    ops = []
                    try:
                        put_many(self.recorder, client, self._values(self.batch), self.window,
                                 label=label, server=sid, ops=ops)
                    finally:
                        self.acked += sum(1 for op in ops if op.outcome == OK)
                    if any(op.outcome != OK for op in ops):
                        raise ServerError(0, 'a write of the batch failed')  # look again
                else:
                    put(self.recorder, client, self._values(1)[0], label=label, server=sid)
                    self.acked += 1
                if self.pace:
                    self.stop_event.wait(self.pace)
            except (OSError, ProtocolError, ServerError):
                client.close()
                client = None
                self.stop_event.wait(0.02)
        if client is not None:
            client.close()

    def stop(self):
        self.stop_event.set()

    def finish(self, timeout=30):
        self.stop()
        self.join(timeout=timeout)
        if self.is_alive():
            raise AssertionError(f'{self.name} did not stop within {timeout} s')


# ------------------------------------------------------------------ violations

class Violation:
    """`kind` is one of KINDS; str() is the readable description."""

    KINDS = ('log_disagreement', 'log_corrupt', 'lost', 'duplicate', 'real_time',
             'not_proposed_present', 'phantom', 'history')

    def __init__(self, kind, text):
        assert kind in self.KINDS, kind
        self.kind = kind
        self.text = text

    def __str__(self):
        return f'{self.kind}: {self.text}'

    def __repr__(self):
        return f'Violation({self.kind!r}, {self.text!r})'


# ------------------------------------------------------------------ the agreed log

def iter_dump_dir(data_dir, cluster_id, keep_hex_prefix=None, partial_ok=False, status=None):
    """The records of `fastzab-log dump --payload DATA_DIR` as Cluster.dump parses them (the
    record's length and CRC, the client's value), streamed rather than held: a soak's logs hold
    millions. fastzab-log checks each record's CRC. With `keep_hex_prefix` (a str of hex digits)
    only values that start with it are decoded; the others come as None (their length and CRC
    still compare across servers). With `partial_ok`, a bad record or tail (a copy taken while
    the server wrote) ends the records instead of raising: those before it were verified, and
    `status` (a dict) gets the exit status as 'returncode'."""
    args = [cluster.log_bin(), 'dump', '--cluster-id', str(cluster_id), '--payload', data_dir]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          bufsize=1 << 20) as p:
        for line in p.stdout:
            fields = line.split()
            if fields[-1] == 'superseded':
                continue  # under the newest snapshot, as in Cluster.dump
            payload = fields[3]
            # The value follows the entry header: 1 byte, or 17 for an identified write.
            start = 2 if payload.startswith('f0') else 34
            if keep_hex_prefix is None or payload.startswith(keep_hex_prefix, start):
                value = cluster.entry_value(bytes.fromhex(payload))
            else:
                value = None
            yield int(fields[0], 16), int(fields[1]), int(fields[2], 16), value
        err = p.stderr.read()
        if status is not None:
            status['returncode'] = p.wait()
        if p.wait() != 0 and not (partial_ok and p.returncode == 1):
            raise AssertionError(f'fastzab-log dump {data_dir}: status {p.returncode}: '
                                 f'{err.strip()}')


def iter_dump(c, sid, keep_hex_prefix=None):
    """iter_dump_dir of a stopped server of Cluster `c`."""
    s = c.servers[sid]
    assert not s.running(), f'dump of {s} while it runs'
    return iter_dump_dir(s.data_dir, c.cluster_id, keep_hex_prefix)


class AgreedLog:
    """The union of the servers' dumps (Cluster.dump or iter_dump), added one at a time so that
    only one dump's records are held at once. Where dumps overlap they must agree; `violations`
    says where they did not (and where a dump is not a well-formed log by itself). A value of
    None is a payload left out (iter_dump): only its length and CRC are compared.

    add() takes the final dumps: servers stopped after catching up, every record committed.
    add_archive() takes records seen in a server's log earlier in the run (LogArchiver): a
    follower that is caught up by SNAP drops its whole log, so by the end the final dumps may
    all start late, and only the archive still holds the records acknowledged before. An
    archived record may be one that was never committed (a deposed leader's tail, truncated
    later); it must still agree with every other record at its zxid, since an epoch's one
    leader proposes each zxid once, but it is not checked for holes and counts as committed
    only if a final dump has it too."""

    def __init__(self, verify_crc=True):
        self.verify_crc = verify_crc
        self.records = {}       # zxid -> (length, crc, value, first server that had it, final)
        self.spans = {}         # final dumps: server -> (first zxid, last zxid, its zxids)
        self.archived_from = None  # the lowest zxid an archive holds
        self.violations = []
        self._sorted = None

    def _merge(self, who, records, final):
        self._sorted = None
        zxids = array.array('Q')
        prev = None
        for zxid, length, crc, value in records:
            if prev is not None and zxid <= prev:
                self.violations.append(Violation(
                    'log_corrupt', f'{who}: zxid {hexz(zxid)} follows {hexz(prev)} '
                                   f'(zxids must increase)'))
            prev = zxid
            # A dump's value is a cluster.LogValue (length and CRC cover its .raw payload); a
            # made-up record's is plain bytes.
            raw = getattr(value, 'raw', value)
            if value is None:
                pass
            elif length != len(raw):
                self.violations.append(Violation(
                    'log_corrupt', f'{who}: record {hexz(zxid)} says {length} bytes, '
                                   f'holds {len(raw)}'))
            elif self.verify_crc and crc != cluster.crc32c(raw):
                self.violations.append(Violation(
                    'log_corrupt', f'{who}: record {hexz(zxid)}: CRC32C '
                                   f'0x{crc:08x} does not match its payload {value!r}'))
            zxids.append(zxid)
            have = self.records.get(zxid)
            if have is None:
                self.records[zxid] = (length, crc, value, who, final)
            elif have[:2] != (length, crc) or (
                    have[2] is not None and value is not None and have[2] != value):
                self.violations.append(Violation(
                    'log_disagreement', f'at {hexz(zxid)} {have[3]} has {have[2]!r} '
                                        f'(crc 0x{have[1]:08x}), {who} has {value!r} '
                                        f'(crc 0x{crc:08x})'))
                if final and not have[4]:
                    # The committed record stands for the zxid; the copy's is the odd one.
                    self.records[zxid] = (length, crc, value, who, True)
            elif (final and not have[4]) or (have[2] is None and value is not None):
                self.records[zxid] = (length, crc, have[2] if value is None else value, have[3],
                                      have[4] or final)
        return zxids

    def add(self, server, records):
        """A final dump of `server` (stopped, caught up: all its records committed)."""
        zxids = self._merge(f'server {server}', records, True)
        if zxids:
            self.spans[server] = (min(zxids), max(zxids), zxids)

    def add_archive(self, label, records):
        """Records `label` (e.g. 'server 2 at 31.5 s') held during the run."""
        zxids = self._merge(label, records, False)
        if zxids:
            low = min(zxids)
            self.archived_from = low if self.archived_from is None else min(low,
                                                                           self.archived_from)

    def check_holes(self):
        """Every committed zxid inside a final dump's range must be in that dump (a server never
        skips a record others have between two it has). Call once all dumps are added; the
        violations are appended to `violations` and returned."""
        found = []
        order = [z for z in self.sorted_zxids() if self.records[z][4]]
        for server, (first, last, zxids) in self.spans.items():
            inside = bisect.bisect_right(order, last) - bisect.bisect_left(order, first)
            if inside == len(zxids):
                continue
            mine = set(zxids)
            missing = [z for z in order[bisect.bisect_left(order, first):
                                        bisect.bisect_right(order, last)] if z not in mine]
            if not missing:
                continue  # a zxid twice in this dump: reported as log_corrupt already
            found.append(Violation(
                'log_disagreement',
                f'server {server}\'s log ({hexz(first)}..{hexz(last)}) lacks {len(missing)} '
                f'record(s) other servers hold inside that range; first {hexz(missing[0])} '
                f'({self.records[missing[0]][2]!r}, on {self.records[missing[0]][3]})'))
        self.violations.extend(found)
        return found

    def sorted_zxids(self):
        if self._sorted is None:
            self._sorted = sorted(self.records)
        return self._sorted

    def covered_from(self):
        """The lowest zxid any dump or archive holds (records below it were superseded by
        snapshots and purged everywhere before anyone looked, or never existed); None for an
        empty log."""
        order = self.sorted_zxids()
        return order[0] if order else None

    def value_at(self, zxid):
        r = self.records.get(zxid)
        return None if r is None else r[2]

    def committed(self, zxid):
        """Whether a final dump holds `zxid` (then it is committed)."""
        r = self.records.get(zxid)
        return r is not None and r[4]

    def by_value(self):
        """value -> [zxids holding it], ascending."""
        out = {}
        for zxid in self.sorted_zxids():
            value = self.records[zxid][2]
            if value is not None:
                out.setdefault(value, []).append(zxid)
        return out

    def epochs(self):
        return sorted({z >> 32 for z in self.records})

    def archived_only(self):
        return sum(1 for r in self.records.values() if not r[4])


class LogArchiver(threading.Thread):
    """Every `interval` seconds, copies the log segments of each server of Cluster `c` that are
    new or changed since its last copy (running or not: a record being written ends the copy's
    dump early, the next copy has it) into `scratch`, dumps the copy and hands the records `log`
    does not hold yet, or holds with another length or CRC, to `log.add_archive`. A copy holds
    only the newest segments, so each record is read about once per server."""

    def __init__(self, c, log, scratch, interval=2.0, keep_hex_prefix=None):
        super().__init__(daemon=True, name='log-archiver')
        self.c = c
        self.log = log
        self.scratch = scratch
        self.interval = interval
        self.keep_hex_prefix = keep_hex_prefix
        self.stop_event = threading.Event()
        self.lock = threading.Lock()  # held while a pass runs: log is not read meanwhile
        self.seen = {sid: {} for sid in c.ids}   # sid -> {segment name: (size, mtime_ns)}
        self.passes = 0
        self.records = 0
        self.errors = []

    def run(self):
        t0 = time.monotonic()
        while not self.stop_event.wait(self.interval):
            self.archive_all(f'{time.monotonic() - t0:.1f} s')

    def archive_all(self, when=''):
        with self.lock:
            for sid in self.c.ids:
                try:
                    self._archive(sid, when)
                except (OSError, AssertionError) as e:
                    self.errors.append(f'server {sid}: {e}')
            self.passes += 1

    def _archive(self, sid, when):
        src = self.c.servers[sid].data_dir
        names = sorted(n for n in os.listdir(src) if n.startswith('log.') and '.' not in n[4:])
        seen = self.seen[sid]
        changed = []
        for n in names:
            try:
                st = os.stat(os.path.join(src, n))
            except FileNotFoundError:
                continue  # purged or replaced under us
            if seen.get(n) != (st.st_size, st.st_mtime_ns):
                changed.append((n, (st.st_size, st.st_mtime_ns)))
        if not changed:
            return
        # From the oldest changed segment on: the copy is a contiguous tail of the log.
        first = names.index(changed[0][0])
        dst = os.path.join(self.scratch, f's{sid}')
        shutil.rmtree(dst, ignore_errors=True)
        os.makedirs(dst)
        try:
            for n in names[first:]:
                try:
                    shutil.copyfile(os.path.join(src, n), os.path.join(dst, n))
                except FileNotFoundError:
                    break
            have = self.log.records
            fresh = []
            status = {}
            for rec in iter_dump_dir(dst, self.c.cluster_id, self.keep_hex_prefix,
                                     partial_ok=True, status=status):
                h = have.get(rec[0])
                if h is None or h[:2] != rec[1:3]:  # new, or a disagreement to report
                    fresh.append(rec)
            if fresh:
                self.log.add_archive(f'server {sid}' + (f' at {when}' if when else ''), fresh)
                self.records += len(fresh)
            if status.get('returncode') == 0:
                # (After a dump cut short, the segments are read again next time, whole.)
                for n, key in changed:
                    seen[n] = key
        finally:
            shutil.rmtree(dst, ignore_errors=True)

    def finish(self, timeout=60):
        self.stop_event.set()
        self.join(timeout=timeout)
        if self.is_alive():
            raise AssertionError(f'the log archiver did not stop within {timeout} s')


def agreed_log(dumps, verify_crc=True):
    """An AgreedLog from {server: records} (holes checked)."""
    log = AgreedLog(verify_crc=verify_crc)
    for server, records in dumps.items():
        log.add(server, records)
    log.check_holes()
    return log


# ------------------------------------------------------------------ the checker

class Report:
    """What check_history found: `violations`, and counts for a summary."""

    def __init__(self):
        self.violations = []
        self.counts = {'ok': 0, 'not_proposed': 0, 'unknown': 0, 'unknown_committed': 0,
                       'unknown_archived': 0, 'unverifiable': 0}
        self.errors = {}   # error code (or 'timeout/connection') -> count, failed and unknown
        self.lost = 0      # acknowledged writes not at their zxid with their value
        self.epochs_acked = set()


def check_history(ops, log, owned_prefix=None):
    """Checks the Ops of a history against an AgreedLog; returns a Report (its violations
    include the log's own)."""
    rep = Report()
    rep.violations.extend(log.violations)
    where = log.by_value()
    covered_from = log.covered_from()

    seen_values = {}
    for op in ops:
        if op.value in seen_values:
            rep.violations.append(Violation(
                'history', f'{op.describe()} reuses the value of op {seen_values[op.value]}: '
                           f'values must be unique for the log to name their write'))
        else:
            seen_values[op.value] = op.id

    # A leader commits its proposals in zxid order: below an acknowledged write of the same
    # epoch, every record is committed too (an archived one included).
    acked_top = {}
    for op in ops:
        if op.outcome == OK and log.value_at(op.zxid) == op.value:
            epoch = op.zxid >> 32
            acked_top[epoch] = max(acked_top.get(epoch, 0), op.zxid)

    def committed(zxid):
        return log.committed(zxid) or zxid <= acked_top.get(zxid >> 32, -1)

    effective = []  # (op, zxid) of writes known to be in the history's order
    for op in ops:
        cls = classify(op)
        rep.counts[cls] += 1
        if cls != 'ok':
            key = op.error if op.outcome == FAILED else 'no answer (timeout, connection lost)'
            rep.errors[key] = rep.errors.get(key, 0) + 1
        zxids = where.get(op.value, [])
        if cls == 'ok':
            rep.epochs_acked.add(op.zxid >> 32)
            effective.append((op, op.zxid))
            at = log.value_at(op.zxid)
            if at != op.value:
                if at is None and covered_from is not None and op.zxid < covered_from \
                        and not zxids:
                    rep.counts['unverifiable'] += 1  # purged everywhere before it was seen
                    continue
                rep.lost += 1
                found = (f'the value is at {", ".join(hexz(z) for z in zxids)}' if zxids
                         else 'the value is nowhere in the log')
                held = ('no record' if op.zxid not in log.records else
                        'a record of no client of this history' if at is None else f'{at!r}')
                rep.violations.append(Violation(
                    'lost', f'{op.describe()}, but the log has {held} at {hexz(op.zxid)}; '
                            f'{found}'))
            elif len(zxids) > 1:
                rep.violations.append(Violation(
                    'duplicate', f'{op.describe()}, and the log holds the value {len(zxids)} '
                                 f'times: {", ".join(hexz(z) for z in zxids)}'))
            elif not log.committed(op.zxid):
                # Only an archive has it: every final dump that spans it should have it too.
                lacking = [sid for sid, (first, last, _) in log.spans.items()
                           if first <= op.zxid <= last]
                if lacking:
                    rep.lost += 1
                    rep.violations.append(Violation(
                        'lost', f'{op.describe()}: a log held it during the run, but the final '
                                f'logs of servers {lacking} lack it, inside their range'))
        elif cls == 'not_proposed':
            if zxids:
                rep.violations.append(Violation(
                    'not_proposed_present',
                    f'{op.describe()}: {op.error} means nothing was proposed, yet the log holds '
                    f'the value at {", ".join(hexz(z) for z in zxids)}'))
        else:
            known = [z for z in zxids if committed(z)]
            if known:
                rep.counts['unknown_committed'] += 1
                effective.append((op, known[0]))
            elif zxids:
                rep.counts['unknown_archived'] += 1  # proposed; committed or not, unknown
            if len(zxids) > 1:
                rep.violations.append(Violation(
                    'duplicate', f'{op.describe()}: the log holds the value {len(zxids)} times '
                                 f'(at most once): {", ".join(hexz(z) for z in zxids)}'))

    rep.violations.extend(_real_time_violations(effective))

    if owned_prefix is not None:
        for value, zxids in where.items():
            if value.startswith(owned_prefix) and value not in seen_values:
                rep.violations.append(Violation(
                    'phantom', f'the log holds {value!r} at {", ".join(hexz(z) for z in zxids)}, '
                               f'a value no client of this history sent'))
    return rep


def _real_time_violations(effective):
    """A sweep: writes in order of sending, against the largest zxid of those acknowledged
    strictly before; one violation per write that comes at or below it."""
    out = []
    acked = sorted(((op.ack, zxid, op) for op, zxid in effective if op.ack is not None),
                   key=lambda t: t[0])
    by_send = sorted(effective, key=lambda t: t[0].send)
    i = 0
    best = None  # (zxid, op) with the largest zxid acknowledged so far
    for op, zxid in by_send:
        while i < len(acked) and acked[i][0] < op.send:
            if best is None or acked[i][1] > best[0]:
                best = (acked[i][1], acked[i][2])
            i += 1
        if best is not None and best[0] >= zxid and best[1] is not op:
            a = best[1]
            how = 'acknowledged at' if op.outcome == OK else 'of unknown outcome, in the log at'
            out.append(Violation(
                'real_time', f'op {a.id} {a.value!r} was acknowledged at {hexz(best[0])} '
                             f'({a.end:.6f}) before op {op.id} {op.value!r} was sent '
                             f'({op.send:.6f}), but op {op.id} is {how} {hexz(zxid)}: '
                             f'not after it'))
    return out


def check(ops, dumps, owned_prefix=None, verify_crc=True):
    """The checker in one call: `dumps` is {server: Cluster.dump(server)} or an AgreedLog.
    Returns the list of Violations (empty: the history is consistent with the log)."""
    log = dumps if isinstance(dumps, AgreedLog) else agreed_log(dumps, verify_crc)
    return check_history(ops, log, owned_prefix).violations
