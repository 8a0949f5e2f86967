"""fastzab-cli against a scripted fake server (exact request bytes, every reply kind, exit
statuses 0/1/2/3 and their messages), then against a real server with no quorum (an error
reply: status 1)."""

import socket
import struct
import threading
import unittest

import cluster
from cluster import (T_ERROR, T_STATUS, T_STATUS_OK, T_WRITE, T_WRITE_OK, ClusterTestCase,
                     encode_frame)


class FakeServer:
    """Accepts one connection, reads the first frame (kept in .request), then runs `reply(sock)`
    and closes."""

    def __init__(self, reply):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(4)
        self.listener.settimeout(10)
        self.port = self.listener.getsockname()[1]
        self.reply = reply
        self.request = None
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(10)
                (length,) = struct.unpack('<I', cluster.recv_exactly(conn, 4))
                self.request = struct.pack('<I', length) + cluster.recv_exactly(conn, length)
                self.reply(conn)
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
                               'put', 'hello world')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, '0x0000000100000005\n')
        fake.close()
        self.fakes.remove(fake)
        self.assertEqual(fake.request, encode_frame(T_WRITE, 1, b'hello world'))

    def test_options_after_the_command(self):
        fake = FakeServer(send(encode_frame(T_WRITE_OK, 1, struct.pack('<Q', 7))))
        self.fakes.append(fake)
        r = self.run_cli('put', 'v', '--server', f'127.0.0.1:{fake.port}')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, '0x0000000000000007\n')

    def test_error_reply_is_status_1(self):
        for code, name in cluster.ERROR_CODES.items():
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

    def test_help(self):
        r = self.run_cli('--help')
        self.assertEqual(r.returncode, 0)
        self.assertIn('status', r.stdout)
        self.assertIn('Exit status', r.stdout)


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


if __name__ == '__main__':
    cluster.main()
