"""Catch-up by TRUNC and by SNAP, with real servers.

TRUNC: a leader logs writes that never reach a quorum, then dies; the others elect a new leader
and commit more; the old leader, restarted, must drop its uncommitted tail (a truncation) and end
with the same log as everyone else, without any of those writes.

SNAP: with snapCount=200 and 2 MiB segments (preAllocSize=2048) the servers snapshot and purge
as they go, so the oldest segments are deleted; a follower that was stopped
while 1500 writes committed is further behind than the leader keeps entries in memory for a DIFF
(1024), so it is sent a snapshot, installs it, and ends with the same records as the others from
there on."""

import glob
import os
import socket
import sys
import time

import cluster
from cluster import ClusterTestCase, encode_frame, hexz, T_WRITE


def mntr_int(c, sid, key):
    """A numeric mntr value (zxids are written in hex)."""
    return int(c.mntr(sid)[key], 0)


def wait_same_last_zxid(c, sid, reference, timeout, quiet=0.5):
    """Until `sid` reports (mntr zk_last_zxid) the same last zxid as `reference`, and both stay
    unchanged for `quiet` seconds. Returns that zxid."""
    state = {'zxid': None, 'since': None}

    def settled():
        mine = mntr_int(c, sid, 'zk_last_zxid')
        theirs = mntr_int(c, reference, 'zk_last_zxid')
        now = time.monotonic()
        if mine != theirs:
            state['zxid'] = None
            return None
        if state['zxid'] != mine:
            state['zxid'], state['since'] = mine, now
            return None
        return mine if now - state['since'] >= quiet else None
    return cluster.wait_until(f'server {sid} at the last zxid of server {reference}, then quiet',
                              settled, timeout)


class CatchUpTest(ClusterTestCase):
    def write(self, c, sid, tag, n):
        """n writes through server `sid` on one connection, one at a time: [(zxid, value)]."""
        out = []
        with cluster.Client(c.port(sid)) as client:
            for i in range(n):
                value = f'{tag}-{i}'.encode()
                out.append((client.put(value), value))
        return out

    def write_through_leader_changes(self, c, tag, n, timeout=30.0):
        """n writes, one at a time, each with a write id and sent again (to whichever server
        leads then) while its outcome is unknown: a leader change on a loaded 2-core machine
        (tickTime=20 ms) must not fail a test of catch-up. Exactly once, so [(zxid, value)] is
        what the logs hold. No probe writes: the caller compares the logs' last records."""
        client_id = int.from_bytes(os.urandom(8), 'little') | 1
        out = []
        for i in range(n):
            value = f'{tag}-{i}'.encode()

            def attempt():
                try:
                    leader = c.leader_view()
                    if leader is None:
                        return None
                    return c.put_once(leader, client_id, i + 1, value)
                except cluster.ServerError as e:
                    if e.name in ('unknown_outcome', 'no_leader', 'unavailable'):
                        return None
                    raise
                except OSError:
                    return None
            zxid = cluster.wait_until(f'write {value!r} acknowledged', attempt, timeout)
            out.append((zxid, value))
        return out

    def test_leader_with_an_uncommitted_tail_is_truncated(self):
        c = self.cluster(3)
        c.start_all()
        old = c.wait_leader(timeout=20)
        followers = [sid for sid in c.ids if sid != old]
        acked = self.write(c, old, 'before', 10)
        c.wait_caught_up(timeout=20)

        # Cut the leader off and give it writes it can log but never commit. The followers are
        # stopped, not dead, so the leader keeps its role for a few ticks (syncLimit) and logs
        # what arrives meanwhile; no reply can come.
        for sid in followers:
            c.pause(sid)
        uncommitted = [f'uncommitted-{i}'.encode() for i in range(20)]
        socks = []
        try:
            for value in uncommitted:
                s = socket.create_connection(('127.0.0.1', c.port(old)), timeout=2.0)
                s.sendall(encode_frame(T_WRITE, 1, value))
                socks.append(s)
            def logged_uncommitted():
                m = c.mntr(old)
                return int(m['zk_last_zxid'], 0) > int(m['zk_committed_zxid'], 0)

            cluster.wait_until('the cut-off leader logs writes it cannot commit',
                               logged_uncommitted, timeout=10, interval=0.01)
            m = c.mntr(old)
            last, committed = int(m['zk_last_zxid'], 0), int(m['zk_committed_zxid'], 0)
            c.kill(old)
        finally:
            for s in socks:
                s.close()
        print(f'\nleader {old} logged up to {hexz(last)}, committed {hexz(committed)}',
              file=sys.stderr)
        self.assertGreater(last, committed, 'the cut-off leader logged none of the writes')

        # The stopped followers may hold the leader's proposals in their sockets' receive
        # buffers (the kernel accepted them while the processes were stopped). Resumed, they
        # would log them, and the next leader would rightly commit them: ZAB commits whatever a
        # new leader has in its log. Kill them instead, so that the proposals are lost with the
        # buffers and the old leader alone holds them.
        for sid in followers:
            c.kill(sid)
        for sid in followers:
            c.start(sid)
        new = c.wait_leader(ids=followers, timeout=20)
        self.assertNotEqual(new, old)
        acked += self.write(c, new, 'after', 20)

        # The old leader comes back: its tail is of an epoch the new leader did not continue.
        c.start(old)
        wait_same_last_zxid(c, old, new, timeout=20)
        m = c.mntr(old)
        print(f'old leader after catching up: zk_truncations {m["zk_truncations"]}, '
              f'zk_records_truncated {m["zk_records_truncated"]}, '
              f'zk_snapshots_installed {m["zk_snapshots_installed"]}', file=sys.stderr)
        self.assertGreaterEqual(int(m['zk_truncations']), 1, 'the old leader was not truncated')
        self.assertGreaterEqual(int(m['zk_records_truncated']), 1)

        statuses = c.stop_all()
        self.assertEqual(statuses, {sid: 0 for sid in c.ids})
        records = self.assert_dumps_equal(c)
        self.assert_acked_present(records, acked, 'the logs')
        values = {r[3] for r in records}
        present = [v for v in uncommitted if v in values]
        self.assertEqual(present, [], 'writes that never reached a quorum are in the logs')

    def test_follower_behind_the_purge_gets_a_snapshot(self):
        c = self.cluster(3, extra_config='snapCount=200\npreAllocSize=2048\n')
        c.start_all()
        leader = c.wait_leader(timeout=20)
        lagging, other = [sid for sid in c.ids if sid != leader]
        acked = self.write(c, leader, 'before', 10)
        c.wait_caught_up(timeout=20)
        self.assertEqual(c.stop(lagging), 0)

        commits = 1500
        # 4 KiB each: 1500 of them fill three 2 MiB segments, so the purge has whole segments
        # below the snapshots to remove.
        values = [f'snap-{i}-'.encode().ljust(4096, b'.') for i in range(commits)]
        started = time.monotonic()
        with cluster.Client(c.port(leader), timeout=10.0) as client:
            zxids = client.put_many(values, window=64)
        print(f'\n{commits} pipelined writes in {time.monotonic() - started:.2f} s',
              file=sys.stderr)
        self.assertEqual(zxids, sorted(set(zxids)), 'acknowledged zxids not increasing')
        acked += list(zip(zxids, values))

        leader_dir = c.servers[leader].data_dir
        snapshots = cluster.wait_until(
            f'snapshot files in {leader_dir}',
            lambda: glob.glob(os.path.join(leader_dir, 'snapshot.*')), 10)
        print(f'leader {leader}: {sorted(os.path.basename(p) for p in snapshots)}, segments '
              f'{sorted(os.path.basename(p) for p in glob.glob(os.path.join(leader_dir, "log.*")))}',
              file=sys.stderr)

        c.start(lagging)
        wait_same_last_zxid(c, lagging, leader, timeout=30)
        m = c.mntr(lagging)
        print(f'follower {lagging} after catching up: zk_snapshots_installed '
              f'{m["zk_snapshots_installed"]}, zk_truncations {m["zk_truncations"]}',
              file=sys.stderr)
        self.assertGreaterEqual(int(m['zk_snapshots_installed']), 1,
                                'the follower caught up without a snapshot')

        # Writes after the snapshot reach every log, the caught-up follower's too.
        tail = self.write_through_leader_changes(c, 'after', 10)
        acked += tail
        c.wait_caught_up(timeout=20)
        statuses = c.stop_all()
        self.assertEqual(statuses, {sid: 0 for sid in c.ids})

        dumps = {sid: c.dump(sid) for sid in c.ids}
        for sid, records in dumps.items():
            zs = [r[0] for r in records]
            self.assertEqual(zs, sorted(set(zs)), f'zxids of server {sid} not increasing')
            for zxid, length, crc, value in records:
                self.assertEqual((length, crc), (len(value.raw), cluster.crc32c(value.raw)),
                                 f'server {sid}, record {hexz(zxid)}')
            # The last records are the writes made after the catch-up, identical everywhere,
            # but for those under a snapshot taken since (snapCount=200 can land on one).
            snapshot = c.newest_snapshot(sid)
            self.assertEqual([(r[0], r[3]) for r in records if r[0] >= tail[0][0]],
                             [t for t in tail if t[0] > snapshot],
                             f'the last records of server {sid} (newest snapshot {hexz(snapshot)})')
        # Whatever two servers both hold at a zxid is the same record.
        by_zxid = {sid: {r[0]: r for r in records} for sid, records in dumps.items()}
        for sid in c.ids:
            for peer in c.ids:
                if peer == sid:
                    continue
                for zxid, record in by_zxid[sid].items():
                    theirs = by_zxid[peer].get(zxid)
                    if theirs is not None and theirs != record:
                        self.fail(f'record {hexz(zxid)}: server {sid} has {record[3]!r}, '
                                  f'server {peer} {theirs[3]!r}')
        # The servers that never stopped hold every acknowledged write the purge left them.
        self.assert_acked_present(dumps[other], [a for a in acked if a[0] in by_zxid[other]],
                                  f'server {other}')
        # The purge removed the oldest segments: the leader no longer holds every write.
        segments = glob.glob(os.path.join(leader_dir, 'log.*'))
        kept = len(dumps[leader])
        print(f'purge: the leader keeps {kept} records of {commits + 20} in {len(segments)} '
              f'segment(s)', file=sys.stderr)
        self.assertLess(kept, commits, 'the purge removed no segment')
        self.assertGreater(min(r[0] for r in dumps[leader]), acked[0][0],
                           'the oldest writes are still in the leader\'s log')

if __name__ == '__main__':
    cluster.main()
