"""Three voters and one observer: the observer says so in srvr and status, receives every
commit (its log equals the voters'), and never votes: killing it does not stop commits, and with
two voters gone nothing commits even though the observer is up."""

import time

import cluster
from cluster import ClusterTestCase, ProtocolError, ServerError


class ObserverTest(ClusterTestCase):
    def test_observer(self):
        c = self.cluster(3, observers=1)
        obs = 4
        c.start_all()
        leader = c.wait_leader(timeout=20)
        self.assertNotEqual(leader, obs)
        self.assertEqual(c.mode(obs), 'observer')
        st = c.status(obs)
        self.assertEqual((st['role'], st['leader']), ('observer', leader))

        acked = []
        for i in range(20):
            value = f'obs-{i}'.encode()
            acked.append((c.put(leader, value), value))
        # A write sent to the observer is forwarded too.
        acked.append((c.put(obs, b'via-observer'), b'via-observer'))
        c.wait_caught_up(timeout=10)

        # Without the observer, commits go on.
        c.kill(obs)
        for i in range(10):
            value = f'no-obs-{i}'.encode()
            acked.append((c.put(leader, value), value))
        # It comes back and catches up.
        c.start(obs)
        self.assertEqual(c.wait_leader(timeout=20), leader)
        c.wait_caught_up(timeout=20)

        # Two voters gone: the last voter and the observer are two of four servers, but one of
        # three votes. Nothing commits, and nobody leads, for as long as we look.
        survivor = [sid for sid in c.voter_ids if sid != leader][0]
        for sid in c.voter_ids:
            if sid != survivor:
                c.kill(sid)
        deadline = time.monotonic() + 3.0
        attempts = 0
        while time.monotonic() < deadline:
            for sid in (survivor, obs):
                self.assertNotEqual(c.mode(sid), 'leader')
                value = f'must-not-commit-{attempts}'.encode()
                attempts += 1
                try:
                    zxid = c.put(sid, value, timeout=1.0)
                except (OSError, ProtocolError, ServerError):
                    continue
                self.fail(f'server {sid} committed {value!r} at 0x{zxid:016x} with one voter')
        self.assertIn(c.mode(obs), ('observer', 'looking'))

        statuses = c.stop_all()
        self.assertEqual(statuses, {survivor: 0, obs: 0})
        records = self.assert_dumps_equal(c)
        self.assert_acked_present(records, acked, 'the logs')
        self.assertFalse([r for r in records if r[3].startswith(b'must-not-commit')],
                         'a write made without a quorum is in the log')


if __name__ == '__main__':
    cluster.main()
