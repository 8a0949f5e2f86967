"""Hostile clients on the client port: each takes a bounded share of the server, is counted in
`mntr`, and never stops a polite client's writes or the replication group.

Each test is one of issue 10's probes, shrunk to CI size: a pipelining client that never reads
its replies (writes, then status requests, whose replies are larger than the requests), idle
connections past maxClientCnxns and past the descriptor limit, slowloris frames, and values
larger than the largest entry. Every wait has a deadline; nothing here asserts a duration.
"""

import os
import socket
import time
import unittest

import cluster as C
import hostile as H
from hostile import rss_mb, cpu_seconds, closed_by_server, PolitePuts

T_WRITE, T_STATUS = 0x01, 0x02
T_WRITE_OK, T_ERROR = 0x81, 0xE1
E_TOO_LARGE = 2


class HostileClientsTest(C.ClusterTestCase):

    def start(self, extra_config='', nofile=None):
        cl = self.cluster(3, extra_config=extra_config)
        for sid in cl.ids:
            cl.start(sid, wait_ready=False, nofile=nofile)
        for sid in cl.ids:
            cl.wait_ready(sid)
        leader = cl.wait_leader()
        return cl, leader

    def flood_without_reading(self, cl, sid, frame, what):
        """Pipelines `frame` to server `sid` without ever reading a reply, until the server
        stops reading (the client's sends block for a second on end) or 60 s pass. Returns
        (bytes sent, whether it was stopped, peak RSS in MB)."""
        pid = cl.servers[sid].proc.pid
        s = socket.create_connection(('127.0.0.1', cl.port(sid)))
        with H.RssSampler({'server': pid}, interval=0.05) as rss:
            try:
                out = H.pipeline_unread(s, frame, time.monotonic() + 60, stop_when_blocked=1.0)
            finally:
                s.close()
            rss.sample()
        sent, stopped, peak = out['bytes_sent'], out['stopped_reading'], rss.peak_mb('server')
        print(f'{what}: sent {sent >> 20} MiB before the server stopped reading: {stopped}; '
              f'peak RSS {peak:.0f} MB')
        return sent, stopped, peak

    def test_a_client_that_never_reads_is_paused_not_buffered(self):
        cl, leader = self.start(extra_config='clientOutputLimitBytes=262144\n')
        pid = cl.servers[leader].proc.pid
        before = rss_mb(pid)
        with PolitePuts(cl.port(leader)) as polite:
            sent_w, stopped_w, peak_w = self.flood_without_reading(
                cl, leader, C.encode_frame(T_WRITE, 1, b'w' * 1024), 'writes')
            sent_s, stopped_s, peak_s = self.flood_without_reading(
                cl, leader, C.encode_frame(T_STATUS, 2), 'status requests')
            ok_before = polite.ok
            C.wait_until('polite writes after the floods', lambda: polite.ok >= ok_before + 5,
                         timeout=20)
        self.assertTrue(stopped_w, f'the server read all {sent_w} bytes of unanswered writes')
        self.assertTrue(stopped_s, f'the server read all {sent_s} bytes of status requests')
        # A 256 KiB output limit, kernel buffers and the writes in flight: tens of MB at most.
        self.assertLess(max(peak_w, peak_s) - before, 200, 'RSS grew past the limits')
        m = cl.mntr(leader)
        # Unread write_ok replies pile up, or the writes awaiting them do: either limit pauses.
        self.assertGreaterEqual(int(m['zk_client_paused_output']) +
                                int(m['zk_client_paused_outstanding']), 2)
        self.assertGreater(polite.ok, 0)
        # Memory goes back once the flooders are gone.
        C.wait_until('RSS back near its start', lambda: rss_mb(pid) - before < 100, timeout=20)

    def test_connections_past_max_client_cnxns_are_refused(self):
        cl, leader = self.start(extra_config='maxClientCnxns=20\n')
        with PolitePuts(cl.port(leader)) as polite:  # holds one of the 20
            held = [socket.create_connection(('127.0.0.1', cl.port(leader))) for _ in range(50)]
            try:
                _, refused = H.split_refused(held)
                self.assertEqual(len(refused), 31, 'expected 20 connections from 127.0.0.1')
                ok_before = polite.ok
                C.wait_until('polite writes with the port full',
                             lambda: polite.ok >= ok_before + 5, timeout=20)
            finally:
                for s in held:
                    s.close()
        # (mntr needs a connection of its own: asked once the others are closed.)
        C.wait_until('the refusals counted',
                     lambda: int(cl.mntr(leader)['zk_client_refused_per_source']) >= 31,
                     timeout=10)

    def test_descriptor_shortage_never_stops_the_group(self):
        # Every server has only 200 descriptors. 400 idle connections to a follower: it keeps
        # some for its log and the quorum, refuses what is left over without spinning, and still
        # takes part in an election (writing its epoch file) when the leader dies.
        cl, leader = self.start(extra_config='maxClientCnxns=0\n', nofile=200)
        follower = next(sid for sid in cl.ids if sid != leader)
        pid = cl.servers[follower].proc.pid
        held = []
        try:
            for _ in range(400):
                try:
                    held.append(socket.create_connection(('127.0.0.1', cl.port(follower)),
                                                         timeout=2))
                except OSError:
                    pass
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            time.sleep(2)
            busy = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
            self.assertLess(busy, 0.5, f'the follower spins at {busy:.0%} CPU with its '
                                       f'connections full')
            refused = sum(1 for s in held if closed_by_server(s, 0.05))
            self.assertGreater(refused, 0)
            # The follower's port is full, so the cluster is watched through the other
            # survivor, which can only establish a new epoch with the follower's votes and
            # acknowledgements (two of three).
            cl.kill(leader)
            other = next(sid for sid in cl.ids if sid not in (leader, follower))
            C.wait_until('the survivors in a new epoch',
                         lambda: cl.status(other)['epoch'] > 1 and
                         cl.status(other)['role'] in ('leader', 'follower') and
                         cl.put(other, b'during the shortage'), timeout=30)
            self.assertTrue(cl.servers[follower].running(),
                            f'server {follower} died:\n{cl.servers[follower].log_text()[-2000:]}')
        finally:
            for s in held:
                s.close()
        new_leader = cl.wait_leader(ids=[sid for sid in cl.ids if sid != leader], timeout=30)
        C.wait_until('a write through the new leader',
                     lambda: cl.put(new_leader, b'after the election'), timeout=20)
        m = cl.mntr(follower)
        self.assertGreater(int(m['zk_client_refused_total']), 0)

    def test_slowloris_frames_are_dropped_and_budgeted(self):
        cl, leader = self.start(
            extra_config='clientTimeoutMs=1000\nclientInputBudgetBytes=4194304\n')
        pid = cl.servers[leader].proc.pid
        with PolitePuts(cl.port(leader)) as polite:
            # 40 connections announce a 1 MiB value and send it a byte at a time: 40 MiB
            # announced against a 4 MiB budget.
            with H.RssSampler({'server': pid}, interval=0.1) as rss:
                r = H.slowloris('127.0.0.1', cl.port(leader), 30, connections=40,
                                reconnect=False)
            peak = rss.peak_mb('server')
            self.assertEqual(r['connections_opened'], 40)
            self.assertEqual(r['open_at_end'], 0,
                             f'{r["open_at_end"]} slow connections were never dropped')
            ok_before = polite.ok
            C.wait_until('polite writes after the slow clients',
                         lambda: polite.ok >= ok_before + 5, timeout=20)
        m = cl.mntr(leader)
        self.assertGreaterEqual(int(m['zk_client_dropped_timeout']), 40)
        self.assertGreater(int(m['zk_client_input_budget_waits']), 0)
        self.assertEqual(int(m['zk_client_input_budget_used_bytes']), 0)
        print(f'slowloris: peak RSS {peak:.0f} MB')

    def test_a_value_too_large_is_answered_too_large_and_the_connection_stays(self):
        cl, leader = self.start()
        with C.Client(cl.port(leader)) as c:
            for size in ((1 << 20) + 1, 8 << 20):
                frame = C.encode_frame(T_WRITE, size, b'v' * size)
                c.sock.sendall(frame)
                type_, req_id, fields = C.read_frame(c.sock)
                self.assertEqual((type_, req_id), (T_ERROR, size))
                self.assertEqual(fields[0], E_TOO_LARGE, fields)
            # The same connection goes on: its next write commits.
            self.assertGreater(c.put(b'small after large'), 0)
        self.assertEqual(int(cl.mntr(leader)['zk_client_too_large']), 2)

    def test_cli_put_reads_a_large_value_from_a_file_and_from_stdin(self):
        cl, leader = self.start()
        path = os.path.join(cl.root, 'value')
        value = os.urandom(300 * 1024)  # far past what a command line holds
        with open(path, 'wb') as f:
            f.write(value)
        server = f'127.0.0.1:{cl.port(leader)}'
        r = cl.cli('--server', server, 'put', '--file', path)
        self.assertEqual(r.returncode, 0, r.stderr)
        from_file = int(r.stdout, 16)
        r2 = C.subprocess.run([C.cli_bin(), '--server', server, 'put', '--file', '-'],
                              input=value[::-1], capture_output=True, timeout=20)
        self.assertEqual(r2.returncode, 0, r2.stderr)
        from_stdin = int(r2.stdout, 16)
        too_big = C.subprocess.run([C.cli_bin(), '--server', server, 'put', '--file', '-'],
                                   input=b'x' * ((1 << 20) + 1), capture_output=True, timeout=20)
        self.assertEqual(too_big.returncode, 2)
        self.assertIn(b'more than 1048576 bytes', too_big.stderr)
        cl.wait_caught_up()
        cl.stop_all()
        records = {zxid: payload for zxid, _, _, payload in cl.dump(leader)}
        self.assertEqual(records[from_file], value)
        self.assertEqual(records[from_stdin], value[::-1])


if __name__ == '__main__':
    unittest.main(verbosity=2)
