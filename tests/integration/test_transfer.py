"""Leadership transfer (planned failover) with real servers: on the client port under load, with
fastzab-cli, refused where it cannot run, and on SIGTERM. Every acknowledged write must be in
every server's log afterwards, and the new leader is the one the transfer named."""

import sys

import cluster
from cluster import ClusterTestCase, ServerError
from test_failover import Writer


class TransferTest(ClusterTestCase):
    def test_transfer_under_load_keeps_every_acknowledged_write(self):
        c = self.cluster(3)
        c.start_all()
        old = c.wait_leader(timeout=20)
        target = next(sid for sid in c.ids if sid != old)
        writer = Writer(c, 'tr')
        writer.start()
        try:
            cluster.wait_until('200 writes before the transfer', lambda: writer.count() >= 200, 30)
            with cluster.Client(c.port(old), timeout=5.0) as client:
                handed_to = client.transfer(target)
            self.assertEqual(handed_to, target)
            at = writer.count()
            self.assertEqual(c.wait_leader(timeout=20), target)
            cluster.wait_until('200 writes after the transfer',
                               lambda: writer.count() >= at + 200, 30)
            # And back, with fastzab-cli and the leader's own choice (the only other caught-up
            # voter may be either follower).
            r = c.cli('--server', f'127.0.0.1:{c.port(target)}', 'transfer')
            self.assertEqual(r.returncode, 0, r.stderr)
            chosen = int(r.stdout.strip())
            self.assertIn(chosen, [sid for sid in c.ids if sid != target])
            at = writer.count()
            self.assertEqual(c.wait_leader(timeout=20), chosen)
            cluster.wait_until('100 writes after the second transfer',
                               lambda: writer.count() >= at + 100, 30)
        finally:
            acked = writer.finish()
        print(f'\nwriter: {len(acked)} writes acknowledged, {len(writer.failures)} failed '
              f'(first: {writer.failures[:1]}); leader {old} -> {target} -> {chosen}',
              file=sys.stderr)
        zxids = [z for z, _ in acked]
        self.assertEqual(zxids, sorted(set(zxids)), 'acknowledged zxids not increasing')
        # Two hand-overs: two new epochs (the zxid's high 32 bits), no election in between.
        self.assertEqual((acked[-1][0] >> 32) - (acked[0][0] >> 32), 2)
        c.wait_caught_up(timeout=20)
        statuses = c.stop_all()
        self.assertEqual(statuses, {sid: 0 for sid in c.ids})
        records = self.assert_dumps_equal(c)
        self.assert_acked_present(records, acked, 'the logs')

    def test_refused_by_a_follower_and_for_an_unknown_target(self):
        c = self.cluster(3)
        c.start_all()
        leader = c.wait_leader(timeout=20)
        follower = next(sid for sid in c.ids if sid != leader)
        with cluster.Client(c.port(follower), timeout=5.0) as client:
            with self.assertRaises(ServerError) as e:
                client.transfer(leader)
        self.assertEqual(e.exception.name, 'transfer_refused')
        self.assertIn('not_leader', str(e.exception))
        r = c.cli('--server', f'127.0.0.1:{c.port(leader)}', 'transfer', '--to', '99')
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn('no_candidate', r.stderr)
        r = c.cli('--server', f'127.0.0.1:{c.port(leader)}', 'transfer', '--to', '0')
        self.assertEqual(r.returncode, 2, r.stderr)  # ids start at 1: a usage error
        self.assertEqual(c.wait_leader(timeout=5), leader, 'a refused transfer changes nothing')

    def test_sigterm_of_the_leader_hands_leadership_over(self):
        c = self.cluster(3)
        c.start_all()
        old = c.wait_leader(timeout=20)
        acked = []
        for i in range(20):
            value = f'before-{i}'.encode()
            acked.append((c.put(old, value), value))
        self.assertEqual(c.stop(old), 0)
        self.assertIn('leadership transfer to', c.servers[old].log_text())
        self.assertIn('handed_off', c.servers[old].log_text())
        survivors = [sid for sid in c.ids if sid != old]
        new = c.wait_leader(ids=survivors, timeout=10)
        value = b'after-sigterm'
        acked.append((c.put(new, value), value))
        # A hand-over, not an election: the next epoch, and no LOOKING in the survivors' logs
        # after their start.
        self.assertEqual((acked[-1][0] >> 32) - (acked[0][0] >> 32), 1)
        for sid in survivors:
            text = c.servers[sid].log_text()
            first_established = text.find('established')
            self.assertGreaterEqual(first_established, 0)
            self.assertNotIn('looking', text[first_established:], f'server {sid} ran an election')
        c.start(old)
        c.wait_caught_up(timeout=20)
        statuses = c.stop_all()
        self.assertEqual(statuses, {sid: 0 for sid in c.ids})
        records = self.assert_dumps_equal(c)
        self.assert_acked_present(records, acked, 'the logs')


if __name__ == '__main__':
    cluster.main()
