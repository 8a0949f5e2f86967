"""A server says it leads only once it accepts writes.

srvr's Mode, mntr's zk_server_state and the status reply's role say `leader` only when the leader
has finished discovery and synchronization (ZAB's broadcast phase); before that they say which
phase it is in (`leader-discovery`, `leader-synchronization`). A client that trusts them must
never get `no_leader` from the server they name. Checked at a cold start and at a failover, by
asking every live server as fast as it answers and writing to the first one that says `leader`;
a longer tick (100 ms) widens the window between election and broadcast.
"""

import sys
import time

import cluster
from cluster import ClusterTestCase, ProtocolError, ServerError

ALLOWED = {'looking', 'leader', 'follower', 'observer'} | {
    f'{role}-{phase}' for role in ('leader', 'follower', 'observer')
    for phase in ('discovery', 'synchronization')}


class ModeTest(ClusterTestCase):
    def first_leader_accepts_a_write(self, c, candidates, timeout=30.0):
        """Polls srvr on `candidates` until one says leader, then writes to it at once. Returns
        (that server, every Mode seen)."""
        seen = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for sid in candidates:
                try:
                    mode = c.mode(sid)
                except (OSError, ProtocolError):
                    continue
                if mode is None:
                    continue
                seen.add(mode)
                self.assertIn(mode, ALLOWED, f'server {sid} srvr Mode')
                if mode != 'leader':
                    continue
                with cluster.Client(c.port(sid)) as client:
                    try:
                        client.put(b'first write to the announced leader')
                    except ServerError as e:
                        self.fail(f'server {sid} said Mode: leader but refused a write: {e} '
                                  f'(modes seen: {sorted(seen)})')
                    st = client.status()
                self.assertEqual((st['role'], st['phase']), ('leader', 'broadcast'))
                m = c.mntr(sid)
                self.assertEqual((m['zk_server_state'], m['zk_zab_phase']), ('leader', 'broadcast'))
                return sid, seen
        self.fail(f'no server said Mode: leader within {timeout} s (modes seen: {sorted(seen)})')

    def test_leader_only_once_writes_are_accepted(self):
        c = self.cluster(3, tick_ms=100)
        c.start_all(wait_ready=False)
        leader, seen = self.first_leader_accepts_a_write(c, c.ids)
        print(f'cold start: modes seen {sorted(seen)}', file=sys.stderr)

        c.kill(leader)
        survivors = [sid for sid in c.ids if sid != leader]
        new_leader, seen = self.first_leader_accepts_a_write(c, survivors)
        self.assertNotEqual(new_leader, leader)
        print(f'failover: modes seen {sorted(seen)}', file=sys.stderr)

        # A follower that is caught up says so, in all three places.
        follower = next(sid for sid in survivors if sid != new_leader)
        cluster.wait_until('the survivor follows', lambda: c.mode(follower) == 'follower', 10)
        st = c.status(follower)
        self.assertEqual((st['role'], st['phase']), ('follower', 'broadcast'))


if __name__ == '__main__':
    cluster.main()
