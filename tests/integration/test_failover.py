"""Leader failover under load: a writer thread puts unique values; the leader is killed with
SIGKILL; a new leader is elected and writes resume; every acknowledged write is in every
server's log with its value; the old leader, restarted, catches up to the same log."""

import sys
import threading
import time

import cluster
import history
from cluster import ClusterTestCase, ProtocolError, ServerError


class Writer(threading.Thread):
    """Puts f'{prefix}-{n}' (n never reused, so every value is unique) to whichever server says
    it leads, one at a time; records each acknowledged (zxid, value) and each failure, and every
    write's invocation and outcome in `history` (history.py's checker reads it). Never starts or
    signals processes (that is the main thread's)."""

    def __init__(self, c, prefix):
        super().__init__(daemon=True)
        self.c = c
        self.prefix = prefix
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.acked = []  # (zxid, value, monotonic time)
        self.failures = []
        self.history = history.Recorder()
        self.seq = 0

    def find_leader(self):
        for sid in self.c.ids:
            try:
                if self.c.status(sid, timeout=0.5)['role'] == 'leader':
                    return sid
            except (OSError, ProtocolError, ValueError):
                pass
        return None

    def run(self):
        client = None
        while not self.stop_event.is_set():
            if client is None:
                target = self.find_leader()
                if target is None:
                    time.sleep(0.02)
                    continue
                try:
                    client = cluster.Client(self.c.port(target), timeout=2.0)
                except OSError as e:
                    self.failures.append(repr(e))
                    time.sleep(0.02)
                    continue
            self.seq += 1
            value = f'{self.prefix}-{self.seq}'.encode()
            try:
                zxid = history.put(self.history, client, value, label=self.prefix,
                                   server=target)
            except (OSError, ProtocolError, ServerError) as e:
                self.failures.append(repr(e))
                client.close()
                client = None
                time.sleep(0.02)
                continue
            with self.lock:
                self.acked.append((zxid, value, time.monotonic()))
        if client is not None:
            client.close()

    def count(self):
        with self.lock:
            return len(self.acked)

    def finish(self):
        self.stop_event.set()
        self.join(timeout=10)
        assert not self.is_alive(), 'the writer did not stop'
        return [(z, v) for z, v, _ in self.acked]


class FailoverTest(ClusterTestCase):
    def test_leader_killed_under_load(self):
        c = self.cluster(3)
        c.start_all()
        old = c.wait_leader(timeout=20)
        writer = Writer(c, 'fo')
        writer.start()
        try:
            cluster.wait_until('200 writes before the kill', lambda: writer.count() >= 200, 30)
            c.kill(old)
            killed_at = writer.count()
            survivors = [sid for sid in c.ids if sid != old]
            new = c.wait_leader(ids=survivors, timeout=20)
            self.assertNotEqual(new, old)
            cluster.wait_until('200 writes after the failover',
                               lambda: writer.count() >= killed_at + 200, 30)
        finally:
            acked = writer.finish()

        print(f'\nwriter: {len(acked)} writes acknowledged, {len(writer.failures)} failed '
              f'(first: {writer.failures[:1]}); leader {old} -> {new}', file=sys.stderr)
        zxids = [z for z, _ in acked]
        self.assertEqual(zxids, sorted(set(zxids)), 'acknowledged zxids not increasing')
        # The writes after the failover are in a later epoch (the zxid's high 32 bits).
        self.assertGreater(acked[-1][0] >> 32, acked[0][0] >> 32)

        # The old leader comes back as a follower of the new one and catches up.
        c.start(old)
        self.assertEqual(c.wait_leader(timeout=20), new)
        for i in range(10):  # and keeps up with new writes
            value = f'after-restart-{i}'.encode()
            acked.append((c.put(new, value), value))
        c.wait_caught_up(timeout=20)

        statuses = c.stop_all()
        self.assertEqual(statuses, {sid: 0 for sid in c.ids})
        records = self.assert_dumps_equal(c)
        self.assert_acked_present(records, acked, 'the logs')
        # Nothing was committed twice: every value in the log is one the writer sent once.
        values = [r[3] for r in records]
        self.assertEqual(len(values), len(set(values)), 'a value appears twice in the log')
        # The writer's whole history against the log: real-time order, and every failed or
        # unanswered write at most once (never, for a failure that proposed nothing).
        # (The dumps are identical, as asserted above: one stands for all.)
        violations = history.check(writer.history.ops(), {new: records}, owned_prefix=b'fo-')
        self.assertEqual([str(v) for v in violations], [])


    def test_restart_with_a_history_longer_than_one_batch(self):
        """A restarted leader whose log holds more entries than one output batch (4096) may
        deliver: a core bug once put them all in one deliver, which the host could not decode
        (the server aborted). 10,000 pipelined writes, kill -9 of the leader, restart."""
        c = self.cluster(3)
        c.start_all()
        old = c.wait_leader(timeout=20)
        values = [f'long-{i}'.encode() for i in range(10000)]
        with cluster.Client(c.port(old), timeout=20.0) as client:
            zxids = client.put_many(values, window=64)
        acked = list(zip(zxids, values))
        c.kill(old)
        survivors = [sid for sid in c.ids if sid != old]
        new = c.wait_leader(ids=survivors, timeout=20)
        c.start(old)
        self.assertEqual(c.wait_leader(timeout=20), new)
        c.wait_caught_up(timeout=30)
        statuses = c.stop_all()
        self.assertEqual(statuses, {sid: 0 for sid in c.ids})
        records = self.assert_dumps_equal(c)
        self.assert_acked_present(records, acked, 'the logs')

    def test_a_write_cut_off_from_its_quorum_is_unknown_outcome(self):
        """A write the leader proposed but could not commit before it lost its quorum is
        answered unknown_outcome (it may still commit), never unavailable, which promises that
        nothing was proposed. Both followers frozen, one write to the leader, the followers
        thawed: the write is in the agreed log at most once."""
        c = self.cluster(3)
        c.start_all()
        leader = c.wait_leader(timeout=20)
        followers = [sid for sid in c.ids if sid != leader]
        for sid in followers:
            c.pause(sid)
        try:
            with self.assertRaises(ServerError) as caught:
                c.put(leader, b'cut-off', timeout=20.0)
        finally:
            for sid in followers:
                c.resume(sid)
        self.assertEqual(caught.exception.name, 'unknown_outcome', str(caught.exception))
        c.wait_leader(timeout=20)
        c.wait_caught_up(timeout=20)
        statuses = c.stop_all()
        self.assertEqual(statuses, {sid: 0 for sid in c.ids})
        records = self.assert_dumps_equal(c)
        self.assertLessEqual([r[3] for r in records].count(b'cut-off'), 1)

if __name__ == '__main__':
    cluster.main()
