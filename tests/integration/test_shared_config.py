"""One zoo.cfg for three servers on one machine: fastzab-server --data-dir and --client-port
replace the file's dataDir and clientPort (the example engine/cmd/examples/zoo.cfg says so). The
servers elect a leader and commit a write through each of them; each wrote its own directory.
Also: a bad --client-port is a command-line error (status 2)."""

import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import cluster


class SharedConfigTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix='fastzab-shared-')
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def cli(self, port, *args):
        return subprocess.run([cluster.cli_bin(), '--server', f'127.0.0.1:{port}',
                               '--timeout', '3000', *args],
                              capture_output=True, text=True, timeout=10)

    def test_three_servers_one_file(self):
        ports, socks = cluster.free_ports(9)
        quorum, election, client = ports[0:3], ports[3:6], ports[6:9]
        secret = os.path.join(self.root, 'secret')
        with open(secret, 'w') as f:
            f.write('s' * 48)
        os.chmod(secret, 0o600)
        cfg = os.path.join(self.root, 'zoo.cfg')
        with open(cfg, 'w') as f:
            f.write('tickTime=20\ndataDir=/nonexistent/not-used\nclientPort=1\nclusterId=9\n'
                    f'secretFile={secret}\npoll=blocking\n')
            for i in range(3):
                f.write(f'server.{i + 1}=127.0.0.1:{quorum[i]}:{election[i]}\n')
        for s in socks:
            s.close()
        for i in range(3):
            log = open(os.path.join(self.root, f'server{i + 1}.log'), 'wb')
            self.procs.append(subprocess.Popen(
                [cluster.server_bin(), '--config', cfg, '--id', str(i + 1),
                 '--data-dir', os.path.join(self.root, f'data{i + 1}'),
                 '--client-port', str(client[i])], stdout=log, stderr=log))
        zxids = []
        for i in range(3):
            deadline = time.monotonic() + 20
            while True:
                r = self.cli(client[i], 'put', f'through-{i + 1}')
                if r.returncode == 0:
                    zxids.append(int(r.stdout.strip(), 16))
                    break
                self.assertLess(time.monotonic(), deadline,
                                f'server {i + 1} took no write: {r.stderr.strip()}')
                time.sleep(0.05)
        self.assertEqual(zxids, sorted(set(zxids)))
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            self.assertEqual(p.wait(timeout=10), 0)
        for i in range(3):
            d = os.path.join(self.root, f'data{i + 1}')
            self.assertTrue(any(n.startswith('log.') for n in os.listdir(d)), d)
        self.assertFalse(os.path.exists('/nonexistent/not-used'))

    def test_bad_client_port_is_a_command_line_error(self):
        r = subprocess.run([cluster.server_bin(), '--config', '/dev/null', '--id', '1',
                            '--client-port', '70000'], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn('--client-port', r.stderr)


if __name__ == '__main__':
    cluster.main()
