"""A follower cut off from the cluster rejoins and catches up: frozen with SIGSTOP for 3 s
while writes go on (then SIGCONT), and killed with SIGKILL then restarted
after writes. A leader change on the way is legitimate (a loaded machine can miss a heartbeat):
writes go to whoever leads, and an unanswered one is sent again."""

import time

import cluster
from cluster import ClusterTestCase, ProtocolError, ServerError


class RejoinTest(ClusterTestCase):
    def setUp(self):
        super().setUp()
        self.c = self.cluster(3)
        self.c.start_all()
        self.leader = self.c.wait_leader(timeout=20)
        self.follower = [sid for sid in self.c.ids if sid != self.leader][0]
        self.acked = []

    def write(self, n, tag):
        for i in range(n):
            value = f'{tag}-{i}'.encode()
            for attempt in range(5):
                try:
                    with cluster.Client(self.c.port(self.leader)) as client:
                        self.acked.append((client.put(value), value))
                    break
                except (ServerError, ProtocolError, OSError):
                    # Not answered (the outcome may be unknown): the same value again, at the
                    # current leader. Only acknowledged writes are checked below.
                    if attempt == 4:
                        raise
                    self.leader = self.c.wait_leader(ids=self.live_voters(), timeout=20)

    def live_voters(self):
        return [sid for sid in self.c.ids if sid != self.follower or not self.frozen]

    frozen = False

    def finish(self):
        c = self.c
        self.leader = c.wait_leader(timeout=20)
        self.write(10, 'after')
        c.wait_caught_up(timeout=20)
        statuses = c.stop_all()
        self.assertEqual(statuses, {sid: 0 for sid in c.ids})
        records = self.assert_dumps_equal(c)
        self.assert_acked_present(records, self.acked, 'the logs')

    def test_frozen_follower(self):
        c = self.c
        self.write(10, 'before')
        c.pause(self.follower)
        self.frozen = True
        try:
            start = time.monotonic()
            self.write(30, 'frozen')  # the other two are a quorum
            # The fault's length, not a wait for a condition: 3 s is many times the leader's
            # silence and ack limits (tickTime 20 ms), so the follower is given up meanwhile.
            time.sleep(max(0.0, 3.0 - (time.monotonic() - start)))
        finally:
            c.resume(self.follower)
            self.frozen = False
        # It notices it was left behind, finds the leader again and catches up.
        c.wait_caught_up(timeout=20)
        self.finish()

    def test_killed_follower(self):
        c = self.c
        self.write(10, 'before')
        c.kill(self.follower)
        self.write(30, 'down')
        c.start(self.follower)
        c.wait_caught_up(timeout=20)
        self.finish()


if __name__ == '__main__':
    cluster.main()
