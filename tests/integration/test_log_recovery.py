"""Log recovery (issue 10, bug 5): a corrupt record that a later synced record vouches for stops
the server under the default logRecovery and names the key; logRecovery=truncate_at_corruption
cuts there, and the server, whose log may have lost records it acknowledged, neither votes nor
counts in a quorum until it has fetched them again from an established leader."""
import glob
import os
import time
import unittest

from cluster import Client, ClusterTestCase, wait_until

RECORDS = 3000
BAD = 1001  # the record whose payload gets one flipped byte


def value(i):
    return b'rec-%05d-' % i + b'x' * 90


def flip_payload_byte(data_dir, payload):
    """Flips one byte of `payload` in the segment that holds it; returns the file."""
    for path in sorted(glob.glob(os.path.join(data_dir, 'log.*'))):
        with open(path, 'r+b') as f:
            data = f.read()
            at = data.find(payload)
            if at < 0:
                continue
            assert data.find(payload, at + 1) < 0, 'the payload must be unique'
            f.seek(at + 4)
            f.write(bytes([data[at + 4] ^ 0x01]))
            f.flush()
            os.fsync(f.fileno())
            return path
    raise AssertionError(f'no segment in {data_dir} holds {payload!r}')


class LogRecoveryTest(ClusterTestCase):
    def test_corruption_refused_then_cut_and_refetched_without_voting(self):
        c = self.cluster(3)
        c.start_all()
        leader = c.wait_leader()
        with Client(c.port(leader), timeout=10.0) as cl:
            acked = cl.put_many([value(i) for i in range(1, RECORDS + 1)], window=64)
        self.assertEqual(len(acked), RECORDS)
        c.wait_caught_up()
        lost, keeper, other = [s for s in c.ids if s != leader][0], \
            [s for s in c.ids if s != leader][1], leader
        self.assertEqual(c.stop(lost), 0)
        flip_payload_byte(c.servers[lost].data_dir, value(BAD))

        # Default logRecovery: the record is below a point later records say was synced, so it
        # cannot be a torn write: refused, naming the file, and the key that would cut it.
        s = c.start(lost, wait_ready=False)
        self.assertNotEqual(s.proc.wait(timeout=20), 0)
        text = s.log_text()
        self.assertIn('payload checksum mismatch', text)
        self.assertIn('logRecovery=truncate_at_corruption', text)
        self.assertFalse(os.path.exists(os.path.join(c.servers[lost].data_dir, 'state-lost')))

        # With the leader gone too (SIGKILL: SIGTERM would hand leadership over), the node that
        # cut records must not help elect anyone: the remaining voter alone is no quorum.
        c.kill(other)
        wait_until('the remaining voter looking', lambda: c.mode(keeper) == 'looking',
                   timeout=15)
        with open(c.servers[lost].config, 'a') as f:
            f.write('logRecovery=truncate_at_corruption\n')
        c.start(lost)
        self.assertTrue(os.path.exists(os.path.join(c.servers[lost].data_dir, 'state-lost')))
        mntr = c.mntr(lost)
        self.assertEqual(mntr['zk_state_lost'], '1')
        self.assertGreaterEqual(int(mntr['zk_recovery_records_cut']), RECORDS - BAD)
        self.assertIn('may have lost acknowledged records', c.servers[lost].log_text())
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            for sid in (lost, keeper):
                self.assertEqual(c.mode(sid), 'looking', f'server {sid} left the election')
            time.sleep(0.1)

        # The old leader back: the two whole voters elect, the lost node follows, fetches the
        # cut records and votes again.
        c.start(other)
        c.wait_leader()
        wait_until('the state-lost mark cleared',
                   lambda: c.mntr(lost).get('zk_state_lost') == '0', timeout=30)
        self.assertFalse(os.path.exists(os.path.join(c.servers[lost].data_dir, 'state-lost')))
        self.assertIn('state-lost mark removed', c.servers[lost].log_text())
        c.wait_caught_up()
        self.assertEqual(c.stop_all(), {sid: 0 for sid in c.ids})
        whole = self.assert_dumps_equal(c, [other, keeper])
        self.assert_acked_present(
            whole, [(z, value(i)) for i, z in enumerate(acked, start=1)], 'the logs')
        # The lost node fetched the cut records again: by a snapshot (it advertised zxid -1, so
        # the leader cannot DIFF it) covering every acknowledged write, then the same records.
        newest = c.newest_snapshot(lost)
        self.assertNotEqual(newest, 0, 'the lost node got no snapshot')
        self.assertGreaterEqual(newest, max(acked))
        mine = c.dump(lost)
        self.assertEqual(mine, [r for r in whole if r[0] > newest])


if __name__ == '__main__':
    unittest.main()
