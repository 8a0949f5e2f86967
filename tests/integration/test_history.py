"""The client-visible history checker (history.py): each property violated once in a synthetic
history is reported, a clean history is not; then a recorded real run (writers to the leader
and to followers, single and pipelined, through a leader kill and a frozen follower) checks
clean against the servers' logs."""

import os
import sys
import threading
import unittest

import cluster
import history
from cluster import ClusterTestCase
from history import Op, Recorder


def rec(zxid, value, crc=None, length=None):
    """A dump record as Cluster.dump returns it."""
    return (zxid, len(value) if length is None else length,
            cluster.crc32c(value) if crc is None else crc, value)


def z(epoch, counter):
    return epoch << 32 | counter


class Builder:
    """Synthetic histories: each op given its times by hand."""

    def __init__(self):
        self.ops = []

    def _op(self, value, send, end):
        op = Op(len(self.ops), value, 'c', 1, send)
        op.end = end
        self.ops.append(op)
        return op

    def ok(self, value, zxid, send, end):
        op = self._op(value, send, end)
        op.outcome, op.zxid = history.OK, zxid
        return op

    def failed(self, value, error, send, end):
        op = self._op(value, send, end)
        op.outcome, op.error = history.FAILED, error
        return op

    def unknown(self, value, send, end=None):
        op = self._op(value, send, end)
        op.outcome = history.UNKNOWN
        return op


def clean():
    """A clean history and the three servers' dumps that go with it: acknowledged writes
    across two epochs, a no_leader failure (absent), an unknown_outcome one that committed, an
    unknown one that did not, one that committed; one server's log is a prefix of the others'
    (it stopped behind) and one starts later (a snapshot superseded its first records)."""
    b = Builder()
    b.ok(b'h-1', z(1, 2), 0.0, 1.0)
    b.ok(b'h-2', z(1, 3), 1.5, 2.0)
    b.ok(b'h-3', z(1, 4), 1.6, 2.5)           # concurrent with h-2: any order
    b.failed(b'h-4', 'no_leader', 3.0, 3.1)
    b.failed(b'h-5', 'unknown_outcome', 3.2, 4.0)  # proposed before the leader died: committed
    b.unknown(b'h-6', 3.3)                     # a timeout: never committed
    b.unknown(b'h-7', 3.4, 4.5)                # connection lost: committed
    b.ok(b'h-8', z(2, 3), 5.0, 6.0)
    b.failed(b'h-9', 'too_large', 6.5, 6.6)
    full = [rec(z(1, 1), b'probe-1'), rec(z(1, 2), b'h-1'), rec(z(1, 3), b'h-2'),
            rec(z(1, 4), b'h-3'), rec(z(1, 5), b'h-5'), rec(z(2, 1), b'probe-2'),
            rec(z(2, 2), b'h-7'), rec(z(2, 3), b'h-8')]
    dumps = {1: list(full), 2: list(full[:5]), 3: list(full[2:])}
    return b, dumps


def kinds(violations):
    return sorted(v.kind for v in violations)


class CheckerTest(unittest.TestCase):
    """No servers: synthetic histories and dumps."""

    def check(self, b, dumps, **kw):
        violations = history.check(b.ops, dumps, **kw)
        for v in violations:
            print(f'  reported: {v}', file=sys.stderr)
        return violations

    def test_clean_history_has_no_violation(self):
        b, dumps = clean()
        self.assertEqual(self.check(b, dumps, owned_prefix=b'h-'), [])
        report = history.check_history(b.ops, history.agreed_log(dumps))
        self.assertEqual(report.counts['ok'], 4)
        self.assertEqual(report.counts['not_proposed'], 2)
        self.assertEqual(report.counts['unknown'], 3)
        self.assertEqual(report.counts['unknown_committed'], 2)
        self.assertEqual(report.lost, 0)

    def test_acknowledged_write_missing(self):
        b, dumps = clean()
        for sid in dumps:
            dumps[sid] = [r for r in dumps[sid] if r[3] != b'h-2']
        v = self.check(b, dumps)
        self.assertEqual(kinds(v), ['lost'])
        self.assertIn("b'h-2'", str(v[0]))
        self.assertIn('nowhere in the log', str(v[0]))

    def test_acknowledged_write_at_another_zxid(self):
        b, dumps = clean()
        b.ops[7].zxid = z(2, 2)  # h-8 acknowledged where the log holds h-7
        v = self.check(b, dumps)
        self.assertEqual(kinds(v), ['lost'])
        self.assertIn('0x0000000200000003', str(v[0]))  # where it really is

    def test_acknowledged_write_twice_in_the_log(self):
        b, dumps = clean()
        for sid in (1, 3):
            dumps[sid].append(rec(z(2, 4), b'h-1'))
        v = self.check(b, dumps)
        self.assertEqual(kinds(v), ['duplicate'])

    def test_real_time_order(self):
        b, dumps = clean()
        # h-10 was acknowledged before h-11 was sent, yet h-11 committed below it.
        b.ok(b'h-10', z(2, 5), 7.0, 8.0)
        b.ok(b'h-11', z(2, 4), 9.0, 10.0)
        for sid in (1, 3):
            dumps[sid] += [rec(z(2, 4), b'h-11'), rec(z(2, 5), b'h-10')]
        v = self.check(b, dumps)
        self.assertEqual(kinds(v), ['real_time'])
        self.assertIn("b'h-10'", str(v[0]))
        self.assertIn("b'h-11'", str(v[0]))

    def test_real_time_order_of_a_committed_unknown_write(self):
        b, dumps = clean()
        b.ok(b'h-10', z(2, 5), 7.0, 8.0)
        b.unknown(b'h-11', 9.0)  # sent after h-10's ack, committed below it
        for sid in (1, 3):
            dumps[sid] += [rec(z(2, 4), b'h-11'), rec(z(2, 5), b'h-10')]
        self.assertEqual(kinds(self.check(b, dumps)), ['real_time'])

    def test_overlapping_writes_may_commit_in_any_order(self):
        b, dumps = clean()
        b.ok(b'h-10', z(2, 5), 7.0, 9.5)
        b.ok(b'h-11', z(2, 4), 9.0, 10.0)  # sent before h-10's ack came back
        for sid in (1, 3):
            dumps[sid] += [rec(z(2, 4), b'h-11'), rec(z(2, 5), b'h-10')]
        self.assertEqual(self.check(b, dumps), [])

    def test_nothing_proposed_yet_present(self):
        for code in sorted(history.NOT_PROPOSED):
            with self.subTest(code=code):
                b, dumps = clean()
                b.failed(b'h-10', code, 7.0, 7.1)
                for sid in (1, 3):
                    dumps[sid].append(rec(z(2, 4), b'h-10'))
                v = self.check(b, dumps)
                self.assertEqual(kinds(v), ['not_proposed_present'])
                self.assertIn(code, str(v[0]))

    def test_unknown_outcome_twice_in_the_log(self):
        b, dumps = clean()
        for sid in (1, 3):
            dumps[sid] += [rec(z(2, 4), b'h-6'), rec(z(2, 5), b'h-6')]
        v = self.check(b, dumps)
        self.assertEqual(kinds(v), ['duplicate'])
        self.assertIn('at most once', str(v[0]))

    def test_unknown_outcome_code_twice_in_the_log(self):
        b, dumps = clean()
        for sid in (1, 3):
            dumps[sid].append(rec(z(2, 4), b'h-5'))
        self.assertEqual(kinds(self.check(b, dumps)), ['duplicate'])

    def test_dumps_disagree(self):
        b, dumps = clean()
        dumps[3][1] = rec(z(1, 4), b'h-3-other')  # same zxid, another record
        v = self.check(b, dumps)
        self.assertIn('log_disagreement', kinds(v))
        self.assertIn('0x0000000100000004', str(v[0]))

    def test_a_dump_with_a_hole(self):
        b, dumps = clean()
        del dumps[1][3]  # server 1 skips h-3, which servers 2 and 3 hold
        v = self.check(b, dumps)
        self.assertEqual(kinds(v), ['log_disagreement'])
        self.assertIn('server 1', str(v[0]))

    def test_a_corrupt_record(self):
        b, dumps = clean()
        dumps[2][0] = rec(z(1, 1), b'probe-1', crc=0x1234)
        self.assertEqual(kinds(self.check(b, dumps)), ['log_corrupt', 'log_disagreement'])
        b, dumps = clean()
        dumps[2][0], dumps[2][1] = dumps[2][1], dumps[2][0]
        self.assertEqual(kinds(self.check(b, dumps)), ['log_corrupt'])

    def test_a_value_nobody_sent(self):
        b, dumps = clean()
        for sid in (1, 3):
            dumps[sid].append(rec(z(2, 4), b'h-99'))
        self.assertEqual(kinds(self.check(b, dumps, owned_prefix=b'h-')), ['phantom'])
        self.assertEqual(self.check(b, dumps), [])  # without a prefix it is not ours to judge

    def test_a_reused_value(self):
        b, dumps = clean()
        b.failed(b'h-1', 'no_leader', 7.0, 7.1)
        self.assertIn('history', kinds(self.check(b, dumps)))

    def test_acknowledged_below_every_snapshot_is_unverifiable(self):
        b, dumps = clean()
        for sid in dumps:
            dumps[sid] = [r for r in dumps[sid] if r[0] > z(1, 3)]
        report = history.check_history(b.ops, history.agreed_log(dumps))
        self.assertEqual(report.violations, [])
        self.assertEqual(report.counts['unverifiable'], 2)

    def archived(self, b, dumps, archives, **kw):
        log = history.AgreedLog()
        for label, records in archives:
            log.add_archive(label, records)
        for sid, records in dumps.items():
            log.add(sid, records)
        log.check_holes()
        report = history.check_history(b.ops, log, **kw)
        for v in report.violations:
            print(f'  reported: {v}', file=sys.stderr)
        return report

    def test_archive_holds_what_every_final_log_dropped(self):
        b, dumps = clean()
        archive = [r for r in dumps[1] if r[0] <= z(1, 3)]
        for sid in dumps:  # every server caught up by SNAP since: their logs start later
            dumps[sid] = [r for r in dumps[sid] if r[0] > z(1, 3)]
        report = self.archived(b, dumps, [('server 1 at 3.0 s', archive)])
        self.assertEqual(report.violations, [])
        self.assertEqual(report.counts['unverifiable'], 0)
        self.assertEqual(report.lost, 0)

    def test_archived_tail_never_committed(self):
        # A deposed leader's tail, seen in a copy, then truncated: not a hole in the final logs,
        # and the unknown write in it takes no part in the real-time order.
        b, dumps = clean()
        b.ok(b'h-10', z(2, 4), 7.0, 8.0)
        b.unknown(b'h-11', 9.0)
        tail = [rec(z(2, 4), b'h-10'), rec(z(2, 5), b'h-11')]
        for sid in (1, 3):
            dumps[sid] += [rec(z(2, 4), b'h-10'), rec(z(3, 1), b'probe-3')]
        report = self.archived(b, dumps, [('server 2 at 9.5 s', [rec(z(1, 1), b'probe-1')] + tail)])
        self.assertEqual(report.violations, [])
        self.assertEqual(report.counts['unknown_archived'], 1)

    def test_archived_below_an_acknowledged_write_is_committed(self):
        # h-11's only trace is a copy, below h-12 of the same epoch, which was acknowledged:
        # it committed, after h-10 had been acknowledged at a higher zxid.
        b, dumps = clean()
        b.ok(b'h-10', z(2, 6), 7.0, 8.0)
        b.unknown(b'h-11', 9.0)
        b.ok(b'h-12', z(2, 7), 9.5, 10.0)
        archive = [rec(z(2, 4), b'h-11'), rec(z(2, 5), b'probe-3'), rec(z(2, 6), b'h-10'),
                   rec(z(2, 7), b'h-12')]
        report = self.archived(b, dumps, [('server 1 at 10.0 s', archive)])
        self.assertEqual(kinds(report.violations), ['real_time'])
        self.assertIn("b'h-11'", str(report.violations[0]))
        self.assertEqual(report.counts['unknown_committed'], 3)

    def test_archive_disagrees_with_a_final_log(self):
        b, dumps = clean()
        report = self.archived(b, dumps, [('server 2 at 1.0 s', [rec(z(1, 2), b'h-1-other')])])
        self.assertEqual(kinds(report.violations), ['log_disagreement'])

    def test_acknowledged_only_in_an_archive_inside_a_final_range(self):
        b, dumps = clean()
        archive = [r for r in dumps[1] if r[3] == b'h-2']
        for sid in dumps:
            dumps[sid] = [r for r in dumps[sid] if r[3] != b'h-2']
        report = self.archived(b, dumps, [('server 1 at 2.0 s', archive)])
        self.assertEqual(kinds(report.violations), ['lost'])
        self.assertIn('final logs of servers [1, 2]', str(report.violations[0]))

    def test_nothing_proposed_yet_in_an_archive(self):
        b, dumps = clean()
        report = self.archived(b, dumps, [('server 3 at 3.5 s', [rec(z(2, 9), b'h-4')])])
        self.assertEqual(kinds(report.violations), ['not_proposed_present'])

    def test_recorder_from_many_threads(self):
        r = Recorder()

        def work(t):
            for i in range(500):
                op = r.invoke(f't{t}-{i}'.encode())
                if i % 3 == 0:
                    r.ok(op, t << 32 | i)
                elif i % 3 == 1:
                    r.failed(op, 'no_leader')
                else:
                    r.unknown(op, 'timeout')
        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ops = r.ops()
        self.assertEqual(len(ops), 4000)
        self.assertEqual(sorted(op.id for op in ops), list(range(4000)))
        self.assertTrue(all(op.end >= op.send for op in ops))
        with self.assertRaises(AssertionError):
            r.ok(ops[0], 1)  # a second outcome


class HistoryClusterTest(ClusterTestCase):
    def test_recorded_run_through_a_leader_kill(self):
        """Also copies the logs as they grow (LogArchiver, as scripts/soak-cluster does); the
        final dumps are checked against those copies too."""
        c = self.cluster(3)
        c.start_all()
        old = c.wait_leader(timeout=20)
        r = Recorder()
        log = history.AgreedLog()
        archiver = history.LogArchiver(c, log, os.path.join(c.root, 'scratch'), interval=0.5,
                                       keep_hex_prefix=b'h'.hex())
        archiver.start()
        writers = [history.LoadWriter(c, r, 'hl', target='leader'),
                   history.LoadWriter(c, r, 'hf', target='follower'),
                   history.LoadWriter(c, r, 'hp', target='leader', window=16, batch=50),
                   history.LoadWriter(c, r, 'hq', target='follower', window=8, batch=20)]
        for w in writers:
            w.start()

        def acked_by_all(n):
            return lambda: all(w.acked >= n for w in writers)
        try:
            cluster.wait_until('100 writes by every writer', acked_by_all(100), 30)
            base = [w.acked for w in writers]
            c.kill(old)
            archiver.archive_all('after the kill')
            survivors = [sid for sid in c.ids if sid != old]
            new = c.wait_leader(ids=survivors, timeout=20)
            cluster.wait_until('100 more writes by every writer after the kill',
                               lambda: all(w.acked >= b + 100 for w, b in zip(writers, base)),
                               30)
            c.start(old)
            self.assertEqual(c.wait_leader(timeout=20), new)
            # A follower frozen, then thawed: its clients time out or wait.
            frozen = next(sid for sid in c.ids if sid != new)
            c.pause(frozen)
            base = [w.acked for w in writers]
            cluster.wait_until('writes while a follower is frozen',
                               lambda: writers[0].acked >= base[0] + 50, 30)
            c.resume(frozen)
            cluster.wait_until('50 more writes by every writer after the thaw',
                               lambda: all(w.acked >= b + 50 for w, b in zip(writers, base)),
                               30)
        finally:
            for w in writers:
                w.stop()
            for w in writers:
                w.finish()
            archiver.finish()
        c.wait_caught_up(timeout=20)
        statuses = c.stop_all()
        self.assertEqual(statuses, {sid: 0 for sid in c.ids})
        self.assertEqual(archiver.errors, [])
        self.assertGreater(archiver.records, 0)
        for sid in c.ids:
            log.add(sid, c.dump(sid))
        log.check_holes()
        report = history.check_history(r.ops(), log, owned_prefix=b'h')
        print(f'\nhistory: {len(r)} writes, {report.counts}, errors {report.errors}, '
              f'epochs {log.epochs()}', file=sys.stderr)
        self.assertEqual([str(v) for v in report.violations], [])
        self.assertEqual(report.lost, 0)
        self.assertEqual(report.counts['unverifiable'], 0)
        self.assertGreaterEqual(report.counts['ok'], 4 * 250)
        self.assertGreater(len(log.epochs()), 1)


if __name__ == '__main__':
    cluster.main()
