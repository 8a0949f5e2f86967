"""fastzab-cli against a scripted fake server (exact request bytes, every reply kind, exit
statuses 0/1/2/3 and their messages; a put's retries with the same write id after
unknown_outcome or a lost connection), then against a real server with no quorum (an error
reply: status 1), and exactly-once puts on a real cluster (a retry with the same id answers the
original zxid and the log holds the value once; an older seq is stale_sequence)."""

import os
import re
import socket
import struct
import threading
import unittest

import cluster
from cluster import (T_ERROR, T_STATUS, T_STATUS_OK, T_WRITE_ONCE, T_WRITE_OK, ClusterTestCase,
                     encode_frame)


def write_once(client_id, seq, value, req_id=1):
    return encode_frame(T_WRITE_ONCE, req_id, struct.pack('<QQ', client_id, seq) + value)


class FakeServer:
    """Accepts one connection, reads the first frame (kept in .request), then runs `reply(sock)`
    and closes. With a list of replies: one connection per reply, in turn (.requests holds
    each connection's first frame)."""

    def __init__(self, reply):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(4)
        self.listener.settimeout(10)
        self.port = self.listener.getsockname()[1]
        self.replies = reply if isinstance(reply, list) else [reply]
        self.request = None
        self.requests = []
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for reply in self.replies:
                conn, _ = self.listener.accept()
                with conn:
                    conn.settimeout(10)
                    (length,) = struct.unpack('<I', cluster.recv_exactly(conn, 4))
                    self.requests.append(struct.pack('<I', length) +
                                         cluster.recv_exactly(conn, length))
                    self.request = self.requests[0]
                    reply(conn)
        except Exception as e:  # reported by close()
            self.error = e

    def close(self):
        self.thread.join(timeout=15)
        self.listener.close()
        if self.error is not None:
            raise self.error


def hold_until(released):
    """Never replies; keeps the connection open until `released` is set (15 s at most)."""
    def reply(conn):
        released.wait(15)
    return reply


def send(data):
    def reply(conn):
        conn.sendall(data)
    return reply


class CliTest(unittest.TestCase):
    def setUp(self):
        self.cli = cluster.cli_bin()
        self.fakes = []

    def tearDown(self):
        for f in self.fakes:
            f.close()

    def run_cli(self, *args, timeout=20):
        return cluster.subprocess.run([self.cli, *args], capture_output=True, text=True,
                                      timeout=timeout)

    def against(self, reply, *command, timeout_ms=3000):
        fake = FakeServer(reply)
        self.fakes.append(fake)
        r = self.run_cli('--server', f'127.0.0.1:{fake.port}', '--timeout', str(timeout_ms),
                         *command)
        return fake, r

    def test_status_prints_the_json_as_received(self):
        body = b'{"id":2,"role":"follower","leader":1,"epoch":3,' \
               b'"last_zxid":"0x0000000300000007","committed_zxid":"0x0000000300000006"}'
        fake, r = self.against(send(encode_frame(T_STATUS_OK, 1, body)), 'status')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, body.decode() + '\n')
        fake.close()
        self.fakes.remove(fake)
        self.assertEqual(fake.request, encode_frame(T_STATUS, 1))

    def test_put_prints_the_zxid(self):
        fake, r = self.against(send(encode_frame(T_WRITE_OK, 1, struct.pack('<Q', 0x100000005))),
                               'put', 'hello world', '--client-id', '77', '--seq', '9')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, '0x0000000100000005\n')
        fake.close()
        self.fakes.remove(fake)
        self.assertEqual(fake.request, write_once(77, 9, b'hello world'))

    def test_put_without_an_id_picks_a_random_client_and_seq_1(self):
        clients = set()
        for _ in range(2):
            fake, r = self.against(send(encode_frame(T_WRITE_OK, 1, bytes(8))), 'put', 'v')
            self.assertEqual(r.returncode, 0, r.stderr)
            fake.close()
            self.fakes.remove(fake)
            self.assertEqual(len(fake.request), 4 + 9 + 16 + 1)
            self.assertEqual(fake.request[4], T_WRITE_ONCE)
            client_id, seq = struct.unpack_from('<QQ', fake.request, 13)
            self.assertNotEqual(client_id, 0)
            self.assertEqual(seq, 1)
            self.assertEqual(fake.request, write_once(client_id, 1, b'v'))
            clients.add(client_id)
        self.assertEqual(len(clients), 2, 'two runs, one client id')

    def test_put_retries_the_same_id_until_the_outcome_is_known(self):
        unknown = send(encode_frame(T_ERROR, 1, b'\x07leadership lost'))
        lost = send(b'')  # closed after the request, before a reply
        ok = send(encode_frame(T_WRITE_OK, 1, struct.pack('<Q', 0x200000003)))
        fake, r = self.against([unknown, lost, ok], 'put', 'once', '--client-id', '5',
                               '--seq', '2', timeout_ms=8000)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, '0x0000000200000003\n')
        self.assertEqual(r.stderr.count('retrying with the same id (client id 5, seq 2)'), 2,
                         r.stderr)
        fake.close()
        self.fakes.remove(fake)
        self.assertEqual(fake.requests, [write_once(5, 2, b'once')] * 3)

    def test_a_retry_answered_nothing_proposed_is_retried_too(self):
        # no_leader to a retry says nothing of the first attempt, which may have committed.
        unknown = send(encode_frame(T_ERROR, 1, b'\x07lost'))
        no_leader = send(encode_frame(T_ERROR, 1, b'\x01electing'))
        ok = send(encode_frame(T_WRITE_OK, 1, struct.pack('<Q', 9)))
        fake, r = self.against([unknown, no_leader, ok], 'put', 'v', '--client-id', '3',
                               timeout_ms=8000)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, '0x0000000000000009\n')
        self.assertIn('no_leader: electing; retrying with the same id', r.stderr)
        fake.close()
        self.fakes.remove(fake)
        self.assertEqual(fake.requests, [write_once(3, 1, b'v')] * 3)

    def test_put_gives_up_after_5_attempts_and_names_the_id(self):
        unknown = send(encode_frame(T_ERROR, 1, b'\x07lost'))
        fake, r = self.against([unknown] * 5, 'put', 'v', '--client-id', '6', timeout_ms=8000)
        self.assertEqual(r.returncode, 1, r.stderr)
        lines = r.stderr.splitlines()
        self.assertEqual(lines[-2], 'fastzab-cli: unknown_outcome: lost', r.stderr)
        self.assertIn('--client-id 6 --seq 1', lines[-1])
        fake.close()
        self.fakes.remove(fake)
        self.assertEqual(fake.requests, [write_once(6, 1, b'v')] * 5)

    def test_options_after_the_command(self):
        fake = FakeServer(send(encode_frame(T_WRITE_OK, 1, struct.pack('<Q', 7))))
        self.fakes.append(fake)
        r = self.run_cli('put', 'v', '--server', f'127.0.0.1:{fake.port}')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, '0x0000000000000007\n')

    def test_error_reply_is_status_1(self):
        for code, name in cluster.ERROR_CODES.items():
            if name == 'unknown_outcome':
                continue  # a put retries it (above)
            with self.subTest(name):
                text = f'why {name}'
                _, r = self.against(send(encode_frame(T_ERROR, 1, bytes([code]) + text.encode())),
                                    'put', 'x')
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertEqual(r.stderr, f'fastzab-cli: {name}: {text}\n')
                self.assertEqual(r.stdout, '')
        _, r = self.against(send(encode_frame(T_ERROR, 1, b'\x01no leader')), 'status')
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr, 'fastzab-cli: no_leader: no leader\n')

    def assert_no_answer(self, r, port, words):
        self.assertEqual(r.returncode, 3, (r.stdout, r.stderr))
        self.assertEqual(r.stdout, '')
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith(f'fastzab-cli: 127.0.0.1:{port}: '), r.stderr)
        self.assertIn(words, lines[0])

    def test_no_usable_answer_is_status_3(self):
        cases = [
            ('closed', 'status', b'', 'closed'),
            ('garbage', 'put', b'\xff\xff\xff\xff garbage', 'garbage'),
            ('short length', 'put', struct.pack('<I', 3) + b'abc', 'garbage'),
            ('wrong id', 'put', encode_frame(T_WRITE_OK, 2, bytes(8)), 'garbage'),
            ('wrong type', 'put', encode_frame(T_STATUS_OK, 1, b'{}'), 'garbage'),
            ('wrong type', 'status', encode_frame(T_WRITE_OK, 1, bytes(8)), 'garbage'),
            ('not json', 'status', encode_frame(T_STATUS_OK, 1, b'{"id":'), 'JSON'),
            ('json, not an object', 'status', encode_frame(T_STATUS_OK, 1, b'[1]'), 'JSON'),
            ('truncated', 'status', encode_frame(T_STATUS_OK, 1, b'{"id":1}')[:-3], 'closed'),
        ]
        for name, command, reply, words in cases:
            with self.subTest(name, command=command):
                args = [command] + (['v'] if command == 'put' else [])
                fake, r = self.against(send(reply), *args)
                self.assert_no_answer(r, fake.port, words)

    def test_timeout(self):
        # The fake server never answers and keeps the connection open: the CLI must give up on
        # its own --timeout, while the fake still holds on (no clock is read here).
        released = threading.Event()
        fake, r = self.against(hold_until(released), 'status', timeout_ms=300)
        still_holding = fake.thread.is_alive()
        released.set()
        self.assert_no_answer(r, fake.port, 'no reply within 300 ms')
        self.assertTrue(still_holding, 'the CLI returned only once the server let go')

    def test_cannot_connect(self):
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        r = self.run_cli('--server', f'127.0.0.1:{port}', 'status')
        self.assert_no_answer(r, port, 'cannot connect')

    def test_bad_command_line_is_status_2(self):
        cases = [
            [],
            ['status'],                                   # no --server
            ['--server', '127.0.0.1:1'],                  # no command
            ['--server', '127.0.0.1:1', 'put'],           # no VALUE
            ['--server', '127.0.0.1:1', 'put', 'v', '--client-id', '0'],
            ['--server', '127.0.0.1:1', 'put', 'v', '--seq', '3'],  # a seq without a client
            ['--server', '127.0.0.1:1', 'put', 'v', '--client-id', 'x'],
            ['--server', '127.0.0.1:1', 'frobnicate'],
            ['--server', '127.0.0.1:1', '--bogus', 'status'],
            ['--server', '127.0.0.1', 'status'],          # no port
            ['--server', '127.0.0.1:0', 'status'],
            ['--server', '127.0.0.1:70000', 'status'],
            ['--server', '::1:2181', 'status'],           # IPv6 without brackets
            ['--server', '127.0.0.1:1', '--timeout', 'abc', 'status'],
            ['--server', '127.0.0.1:1', '--timeout', '0', 'status'],
            ['--server', '127.0.0.1:1', 'status', 'extra'],
        ]
        for args in cases:
            with self.subTest(args=args):
                r = self.run_cli(*args)
                self.assertEqual(r.returncode, 2, (r.stdout, r.stderr))
                self.assertTrue(r.stderr.strip(), 'no message for a bad command line')

    def test_unknown_outcome_is_documented_as_retryable_with_the_same_id(self):
        with open(os.path.join(cluster.REPO, 'engine', 'runtime', 'client_protocol.h')) as f:
            header = f.read()
        # The comment above unknown_outcome's line (its value is WriteOutcome's: 7, checked below).
        comment = header[header.index('transfer_refused = 6,'):header.index('unknown_outcome = static_cast')]
        doc = ' '.join(re.sub(r'//', ' ', comment).split())
        self.assertIn('Retry with write_once and the same id to learn its zxid (applied at most '
                      'once)', doc)
        self.assertEqual(cluster.ERROR_CODES[7], 'unknown_outcome')
        self.assertEqual(cluster.ERROR_CODES[8], 'stale_sequence')

    def test_help(self):
        r = self.run_cli('--help')
        self.assertEqual(r.returncode, 0)
        self.assertIn('status', r.stdout)
        self.assertIn('Exit status', r.stdout)
        self.assertIn('--client-id', r.stdout)
        self.assertIn('at most once', r.stdout)


class CliRealServerTest(ClusterTestCase):
    def test_no_quorum_is_an_error_reply(self):
        # One server of three: it can never elect, so it answers writes with no_leader.
        c = self.cluster(3)
        c.start(1)
        st = c.cli_status(1)
        self.assertEqual(st['role'], 'looking')
        self.assertEqual(st['id'], 1)
        r = c.cli('--server', f'127.0.0.1:{c.port(1)}', '--timeout', '3000', 'put', 'v')
        self.assertEqual(r.returncode, 1, (r.stdout, r.stderr))
        self.assertTrue(r.stderr.startswith('fastzab-cli: no_leader: '), r.stderr)

    def test_put_with_an_id_is_applied_once(self):
        c = self.cluster(3)
        c.start_all()
        leader = c.wait_leader(timeout=20)
        follower = next(sid for sid in c.ids if sid != leader)
        client_id = 0x5eed0000abcd

        def put(sid, value, seq):
            return c.cli('--server', f'127.0.0.1:{c.port(sid)}', '--timeout', '5000', 'put',
                         value, '--client-id', str(client_id), '--seq', str(seq))

        first = put(leader, 'exactly-once', 7)
        self.assertEqual(first.returncode, 0, first.stderr)
        zxid = int(first.stdout, 16)
        # The same id again, through the leader and through a follower (forwarded), with the
        # CLI and with the Python client: the original zxid each time, nothing applied again.
        again = put(leader, 'exactly-once', 7)
        self.assertEqual((again.returncode, again.stdout), (0, first.stdout), again.stderr)
        via_follower = put(follower, 'exactly-once', 7)
        self.assertEqual((via_follower.returncode, via_follower.stdout), (0, first.stdout),
                         via_follower.stderr)
        self.assertEqual(c.put_once(leader, client_id, 7, b'exactly-once'), zxid)
        # An older seq of that client: refused.
        older = put(leader, 'too-old', 6)
        self.assertEqual(older.returncode, 1, older.stderr)
        self.assertTrue(older.stderr.startswith('fastzab-cli: stale_sequence: '), older.stderr)
        with self.assertRaises(cluster.ServerError) as refused:
            c.put_once(leader, client_id, 6, b'too-old')
        self.assertEqual(refused.exception.name, 'stale_sequence')
        # A newer one commits after it; an anonymous write too.
        newer = put(leader, 'next', 8)
        self.assertEqual(newer.returncode, 0, newer.stderr)
        self.assertGreater(int(newer.stdout, 16), zxid)
        c.put(leader, b'anonymous')
        c.wait_caught_up()
        c.stop_all()
        for sid in c.ids:
            values = [(z, bytes(v)) for z, _, _, v in c.dump(sid)]
            self.assertEqual([z for z, v in values if v == b'exactly-once'], [zxid], sid)
            self.assertEqual([v for _, v in values if v == b'too-old'], [], sid)
            self.assertEqual(sum(v == b'next' for _, v in values), 1, sid)


if __name__ == '__main__':
    cluster.main()
