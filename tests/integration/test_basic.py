"""3- and 5-server clusters: one leader (srvr Mode, status, fastzab-cli status agree), 50 writes
through the leader at increasing zxids, writes through followers (forwarded) commit too, the
four-letter words, SIGTERM exits 0, and afterwards every server's log is the same and holds
every acknowledged write. Also: a bad configuration is one line on stderr and status 2."""

import os
import re
import subprocess

import cluster
from cluster import ClusterTestCase

ZXID = re.compile(r'^0x[0-9a-f]{16}$')
STATUS_KEYS = {'id', 'role', 'phase', 'leader', 'epoch', 'last_zxid', 'committed_zxid'}


class BasicTest(ClusterTestCase):
    def check_cluster(self, n):
        c = self.cluster(n)
        c.start_all()
        leader = c.wait_leader(timeout=20)
        followers = [sid for sid in c.ids if sid != leader]

        # A follower reports its epoch once it has synchronized with the leader (its
        # currentEpoch); the probe write needed only a quorum, so the last one may still be
        # syncing: wait for every server to be in the leader's epoch.
        cluster.wait_until('every server in an established epoch',
                           lambda: all(c.cli_status(sid)['epoch'] > 0 for sid in c.ids), 20)

        # Exactly one leader, by srvr, by status, and by fastzab-cli status.
        modes = {sid: c.mode(sid) for sid in c.ids}
        self.assertEqual([sid for sid, m in modes.items() if m == 'leader'], [leader], modes)
        self.assertTrue(all(modes[f] == 'follower' for f in followers), modes)
        for sid in c.ids:
            st = c.cli_status(sid)
            self.assertEqual(set(st), STATUS_KEYS, st)
            self.assertEqual(st['id'], sid)
            self.assertEqual(st['role'], 'leader' if sid == leader else 'follower')
            self.assertEqual(st['leader'], leader)
            self.assertGreater(st['epoch'], 0)
            self.assertRegex(st['last_zxid'], ZXID)
            self.assertRegex(st['committed_zxid'], ZXID)

        # 50 writes through the leader (fastzab-cli), each at a larger zxid.
        acked = []
        for i in range(50):
            value = f'n{n}-leader-{i}'
            zxid = c.cli_put(leader, value)
            if acked:
                self.assertGreater(zxid, acked[-1][0], f'write {i}')
            acked.append((zxid, value.encode()))
        # Writes through each follower are forwarded and commit (the Python client, and one
        # with fastzab-cli).
        for f in followers:
            with cluster.Client(c.port(f)) as client:
                for i in range(5):
                    value = f'n{n}-via-{f}-{i}'.encode()
                    zxid = client.put(value)
                    self.assertGreater(zxid, acked[-1][0])
                    acked.append((zxid, value))
            value = f'n{n}-cli-via-{f}'
            acked.append((c.cli_put(f, value), value.encode()))
            self.assertGreater(acked[-1][0], acked[-2][0])
        self.assertEqual(c.leader_view(), leader, 'the leader changed during the test')

        c.wait_caught_up(timeout=10)
        last = c.status(leader)['last_zxid']
        self.assertEqual(int(last, 16), acked[-1][0])

        # The four-letter words.
        for sid in c.ids:
            self.assertEqual(cluster.four_letter(c.port(sid), 'ruok'), 'imok')
            srvr = c.srvr(sid)
            self.assertEqual(srvr['Zxid'], last)
            m = c.mntr(sid)
            for key in ('zk_server_state', 'zk_last_zxid', 'zk_commits', 'zk_latency_p50_us',
                        'zk_latency_p99_us', 'zk_frames_dropped_garbage'):
                self.assertIn(key, m, f'mntr of server {sid}')
            self.assertEqual(m['zk_server_state'], modes[sid])
            self.assertEqual(m['zk_last_zxid'], last)
            self.assertGreaterEqual(int(m['zk_commits']), len(acked))
            self.assertEqual(m['zk_frames_dropped_garbage'], '0')
            # Every server logged every record, in batches of at least one record each.
            batches, records = int(m['zk_log_batches']), int(m['zk_log_records_written'])
            self.assertGreaterEqual(records, len(acked), f'zk_log_records_written of server {sid}')
            self.assertTrue(1 <= batches <= records, f'server {sid}: {batches} batches, {records} records')
            self.assertGreater(int(m['zk_log_bytes_written']), records * 24, 'a record has a 24-byte header')
        m = c.mntr(leader)
        self.assertGreater(int(m['zk_latency_p50_us']), 0)
        self.assertGreaterEqual(int(m['zk_latency_p99_us']), int(m['zk_latency_p50_us']))

        # SIGTERM: each exits 0 within 2 s. Then the logs are the same everywhere.
        statuses = c.stop_all(timeout=2.0)
        self.assertEqual(statuses, {sid: 0 for sid in c.ids})
        records = self.assert_dumps_equal(c)
        self.assert_acked_present(records, acked, 'the logs')
        self.assertEqual(records[-1][0], acked[-1][0])

    def test_three_servers(self):
        self.check_cluster(3)

    def test_five_servers(self):
        self.check_cluster(5)

    def test_bad_configuration(self):
        c = self.cluster(3)
        s = c.servers[1]
        with open(s.config) as f:
            good = f.read()
        cases = {
            'zero client port': good.replace(f'clientPort={s.client_port}', 'clientPort=0'),
            'no dataDir': '\n'.join(l for l in good.splitlines() if not l.startswith('dataDir=')),
            'missing secret file': good.replace(c.secret_file, c.secret_file + '.missing'),
            'duplicate server': good + f'server.1=127.0.0.1:{s.quorum_port}:{s.election_port}\n',
        }
        for name, text in cases.items():
            with self.subTest(name):
                path = os.path.join(c.root, 'bad.cfg')
                with open(path, 'w') as f:
                    f.write(text)
                r = subprocess.run([cluster.server_bin(), '--config', path, '--id', '1'],
                                   capture_output=True, text=True, timeout=10)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
                self.assertIn('bad.cfg', r.stderr)
        with self.subTest('id not in the file'):
            r = subprocess.run([cluster.server_bin(), '--config', s.config, '--id', '9'],
                               capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        with self.subTest('no such file'):
            r = subprocess.run([cluster.server_bin(), '--config', s.config + '.nope', '--id', '1'],
                               capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)


if __name__ == '__main__':
    cluster.main()
