"""Hostile bytes on the client port and on the quorum port. Each bad connection is dropped by
the server; the mntr counters that count it rise; no server exits; the cluster keeps
committing."""

import os
import socket
import struct
import time

import cluster
from cluster import (MAX_BODY_BYTES, T_ERROR, T_STATUS, T_STATUS_OK, T_WRITE, T_WRITE_OK,
                     ClusterTestCase, encode_frame)


class BadInputTest(ClusterTestCase):
    def setUp(self):
        super().setUp()
        self.c = self.cluster(3)
        self.c.start_all()
        self.leader = self.c.wait_leader(timeout=20)
        self.acked = [(self.c.put(self.leader, b'before'), b'before')]

    def connect(self, port):
        s = socket.create_connection(('127.0.0.1', port), timeout=3)
        self.addCleanup(s.close)
        return s

    def assert_dropped(self, s, what, timeout=3.0):
        self.assertTrue(cluster.expect_closed(s, timeout), f'{what}: the connection stayed open')

    def assert_healthy(self, note):
        for sid in self.c.ids:
            self.assertTrue(self.c.servers[sid].running(), f'server {sid} exited ({note})')
        leader = self.c.wait_leader(timeout=20)
        value = f'after {note}'.encode()
        self.acked.append((self.c.put(leader, value), value))
        return leader

    def counter(self, sid, key):
        m = self.c.mntr(sid)
        self.assertIn(key, m, f'mntr of server {sid} has no {key}')
        return int(m[key])

    def test_client_port(self):
        for target in self.c.ids:
            port = self.c.port(target)
            before = self.counter(target, 'zk_client_bad_frames')
            bad_frames = {
                'garbage': b'\xde\xad\xbe\xef' * 8,
                'unknown four-letter word': b'stat',
                'length below the header': struct.pack('<I', 3) + b'abc',
                'zero length': struct.pack('<I', 0),
                'oversized length': struct.pack('<I', MAX_BODY_BYTES + 1) + b'x' * 64,
                'huge length': b'\xff\xff\xff\xff',
                'unknown type': encode_frame(0x7f, 5),
                'a reply type': encode_frame(T_WRITE_OK, 5, bytes(8)),
                'status with a body': encode_frame(T_STATUS, 5, b'x'),
            }
            for name, data in bad_frames.items():
                with self.subTest(name, server=target):
                    s = self.connect(port)
                    s.sendall(data)
                    self.assert_dropped(s, name)
            after = self.counter(target, 'zk_client_bad_frames')
            self.assertGreaterEqual(after - before, len(bad_frames),
                                    f'zk_client_bad_frames of server {target}')

            # A good request before garbage on the same connection is answered, then the
            # garbage gets a bad_request error, then the connection closes.
            s = self.connect(port)
            s.sendall(encode_frame(T_STATUS, 41) + b'\x01\x00\x00\x00\x00')
            rtype, rid, _ = cluster.read_frame(s)
            self.assertEqual((rtype, rid), (T_STATUS_OK, 41))
            rtype, _, fields = cluster.read_frame(s)
            self.assertEqual(rtype, T_ERROR)
            self.assertEqual(fields[0], 3, 'not bad_request')
            self.assert_dropped(s, 'status then garbage')

            # A truncated frame, then the client half-closes: the server closes too.
            s = self.connect(port)
            s.sendall(encode_frame(T_WRITE, 1, b'v' * 100)[:50])
            s.shutdown(socket.SHUT_WR)
            self.assert_dropped(s, 'truncated frame then EOF')
            # A truncated frame left hanging: the server serves others meanwhile.
            hanging = self.connect(port)
            hanging.sendall(encode_frame(T_WRITE, 1, b'v' * 100)[:50])
            self.assertEqual(cluster.four_letter(port, 'ruok'), 'imok')
            hanging.close()

            # Clients that vanish (a reset) with a write pending. The reply to that write must
            # go nowhere: not to a new connection that happens to get the same descriptor.
            for i in range(20):
                with self.subTest('vanishing writer', server=target, attempt=i):
                    s = socket.create_connection(('127.0.0.1', port), timeout=3)
                    s.sendall(encode_frame(T_WRITE, 1000 + i, f'vanishing-{i}'.encode()))
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
                    s.close()
                    self.assertEqual(cluster.four_letter(port, 'ruok'), 'imok')
                    with cluster.Client(port) as client:
                        client.next_id = 5000 + i  # a reply with another id is a ProtocolError
                        self.assertEqual(client.status()['id'], target)
            self.assert_healthy(f'client-port input to server {target}')

        self.finish()

    def test_quorum_port(self):
        # Over DPDK there is no quorum port; malformed packets on a memif link are
        # test_dpdk_garbage's.
        self.require_tcp('garbage on the quorum port')
        c = self.c
        # Attack server 1: it accepts connections from every larger id.
        target = c.servers[1]
        others = [sid for sid in c.ids if sid != 1]
        key = cluster.quorum_key(c.secret_text)
        wrong_key = bytes(32)

        garbage0 = self.counter(1, 'zk_frames_dropped_garbage')
        refused0 = self.counter(1, 'zk_quorum_handshakes_refused')

        with self.subTest('garbage instead of a hello'):
            s = self.connect(target.quorum_port)
            s.sendall(os.urandom(64))
            self.assert_dropped(s, 'garbage hello')
        with self.subTest('truncated hello, then EOF'):
            s = self.connect(target.quorum_port)
            hello = cluster.encode_hello(1, c.cluster_id, others[-1], 1, os.urandom(32))
            s.sendall(hello[:30])
            s.shutdown(socket.SHUT_WR)
            self.assert_dropped(s, 'truncated hello then EOF')
        with self.subTest('truncated hello, left hanging: the handshake times out'):
            s = self.connect(target.quorum_port)
            hello = cluster.encode_hello(1, c.cluster_id, others[-1], 1, os.urandom(32))
            s.sendall(hello[:30])
            self.assert_dropped(s, 'hanging hello', timeout=10)
        with self.subTest('wrong secret'):
            s, ok = self.handshake(target, others[-1], key, wrong_key)
            self.assertTrue(ok, 'the acceptor\'s MAC does not verify with the right key')
            self.assert_dropped(s, 'confirm under a wrong secret')
        with self.subTest('wrong cluster id'):
            s = self.connect(target.quorum_port)
            s.sendall(cluster.encode_hello(1, c.cluster_id + 1, others[-1], 1, os.urandom(32)))
            self.assert_dropped(s, 'wrong cluster id')

        wait_rise = lambda key_, base: cluster.wait_until(  # noqa: E731
            f'{key_} of server 1 to rise above {base}',
            lambda: self.counter(1, key_) > base, 5)
        wait_rise('zk_frames_dropped_garbage', garbage0)
        wait_rise('zk_quorum_handshakes_refused', refused0)
        self.assert_healthy('bad handshakes')

        # With the right secret, posing as server 3 (the real one's session is replaced), then
        # frames no server would send: an oversized length, then (on a second connection) a
        # zero one. The real server 3 is frozen meanwhile, so that its redial cannot replace
        # our session first (servers 1 and 2 are a quorum).
        for name, frame, key_ in (
                ('oversized frame', b'\xff\xff\xff\x7f' + os.urandom(60),
                 'zk_quorum_frames_oversized'),
                ('zero-length frame', b'\x00\x00\x00\x00' + os.urandom(60),
                 'zk_frames_dropped_garbage')):
            with self.subTest(name):
                base = self.counter(1, key_)
                c.pause(others[-1])
                try:
                    s, ok = self.handshake(target, others[-1], key, key)
                    self.assertTrue(ok)
                    s.sendall(frame)
                    self.assert_dropped(s, name)
                    wait_rise(key_, base)
                finally:
                    c.resume(others[-1])
                self.assert_healthy(name)
        self.finish()

    def handshake(self, target, claimed_id, true_key, our_key):
        """Dials `target`'s quorum port as server `claimed_id`; reads the acceptor's reply and
        sends a CONFIRM made with `our_key`. Returns the socket and whether the acceptor's MAC
        verified under `true_key`."""
        s = self.connect(target.quorum_port)
        hello = cluster.encode_hello(1, self.c.cluster_id, claimed_id, target.id, os.urandom(32))
        s.sendall(hello)
        reply = cluster.recv_exactly(s, cluster.HELLO_BYTES + cluster.MAC_BYTES)
        acceptor_hello, mac = reply[:cluster.HELLO_BYTES], reply[cluster.HELLO_BYTES:]
        self.assertEqual(acceptor_hello[:5], b'FZNET')
        self.assertEqual(acceptor_hello[6], 2, 'not an acceptor hello')
        ok = cluster.acceptor_mac(true_key, hello, acceptor_hello) == mac
        s.sendall(cluster.dialer_mac(our_key, hello, acceptor_hello))
        return s, ok

    def finish(self):
        c = self.c
        c.wait_caught_up(timeout=20)
        statuses = c.stop_all()
        self.assertEqual(statuses, {sid: 0 for sid in c.ids})
        records = self.assert_dumps_equal(c)
        self.assert_acked_present(records, self.acked, 'the logs')


if __name__ == '__main__':
    cluster.main()
