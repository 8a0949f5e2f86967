"""CPU placement (engine/runtime/README.md, "CPU placement"): `cpus=` in zoo.cfg, or
fastzab-server --cpus, pins the group threads; without it no thread is pinned; poll=busy without
one listed CPU per group is refused at start-up (status 2, one line saying what to set).

Reads each thread's Cpus_allowed_list from /proc/<pid>/task/*/status. A busy server spins a CPU,
so each busy run is one server, stopped as soon as it has been looked at."""

import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import cluster


def allowed_lists(pid):
    """{tid: Cpus_allowed_list} of every thread of `pid`."""
    out = {}
    task = f'/proc/{pid}/task'
    for tid in os.listdir(task):
        try:
            with open(f'{task}/{tid}/status') as f:
                for line in f:
                    if line.startswith('Cpus_allowed_list:'):
                        out[int(tid)] = line.split(':', 1)[1].strip()
        except OSError:
            pass  # a thread that just exited (an io_uring worker)
    return out


def own_allowed_list():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('Cpus_allowed_list:'):
                return line.split(':', 1)[1].strip()
    raise AssertionError('no Cpus_allowed_list in /proc/self/status')


def put_until_committed(port):
    """One write through the server (a lone server leads after its election)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            with cluster.Client(port) as c:
                return c.put(b'x')
        except (cluster.ServerError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class CpuPlacementTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix='fastzab-cpus-')
        self.procs = []
        self.available = sorted(os.sched_getaffinity(0))
        secret = os.path.join(self.root, 'secret')
        with open(secret, 'w') as f:
            f.write('c' * 48)
        os.chmod(secret, 0o600)
        self.secret = secret

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def config(self, name, extra):
        """A one-server zoo.cfg with `extra` lines; returns (path, client port)."""
        ports, socks = cluster.free_ports(3)
        path = os.path.join(self.root, name + '.cfg')
        with open(path, 'w') as f:
            f.write(f'tickTime=20\ndataDir={self.root}/{name}\nclientPort={ports[0]}\n'
                    f'clusterId=11\nsecretFile={self.secret}\n'
                    f'server.1=127.0.0.1:{ports[1]}:{ports[2]}\n{extra}')
        for s in socks:
            s.close()
        return path, ports[0]

    def start(self, cfg, *args):
        """Starts a server, waits for its "ready" line; returns the process."""
        log_path = cfg + '.log'
        with open(log_path, 'w') as log:
            p = subprocess.Popen([cluster.server_bin(), '--config', cfg, '--id', '1', *args],
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                 preexec_fn=cluster._die_with_parent)
        self.procs.append(p)
        deadline = time.monotonic() + 10
        while True:
            with open(log_path) as f:
                text = f.read()
            if 'ready' in text:
                return p
            self.assertIsNone(p.poll(), f'exited before ready:\n{text}')
            self.assertLess(time.monotonic(), deadline, f'not ready within 10 s:\n{text}')
            time.sleep(0.02)

    def stop(self, p):
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=10), 0)

    def refused(self, cfg, *args):
        r = subprocess.run([cluster.server_bin(), '--config', cfg, '--id', '1', *args],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        return r.stderr

    def assert_group_thread_on(self, p, cpu, port):
        """One thread (the group's) may run on `cpu` alone; the others are as the test is."""
        put_until_committed(port)
        lists = allowed_lists(p.pid)
        default = own_allowed_list()
        self.assertEqual(lists[p.pid], default, 'the main thread is not pinned')
        pinned = [tid for tid, l in lists.items() if l == str(cpu)]
        self.assertGreaterEqual(len(pinned), 1, lists)
        # Nothing else is pinned anywhere else (io_uring workers may inherit the group's CPU).
        self.assertEqual(set(lists.values()) - {default, str(cpu)}, set(), lists)

    def test_busy_server_runs_its_group_thread_on_the_listed_cpu(self):
        cpu = self.available[-1]
        cfg, port = self.config('busy', f'poll=busy\ncpus={cpu}\n')
        p = self.start(cfg)
        try:
            self.assert_group_thread_on(p, cpu, port)
        finally:
            self.stop(p)

    def test_cpus_option_wins_over_the_file(self):
        # The file names the first CPU, --cpus the last: the last wins. Not busy: the pinning
        # is the same in every poll mode, and this one does not spin.
        first, last = self.available[0], self.available[-1]
        cfg, port = self.config('override', f'poll=blocking\ncpus={first}\n')
        p = self.start(cfg, '--cpus', str(last))
        try:
            self.assert_group_thread_on(p, last, port)
        finally:
            self.stop(p)

    def test_no_thread_is_pinned_without_the_setting(self):
        cfg, port = self.config('unpinned', 'poll=adaptive\n')
        p = self.start(cfg)
        try:
            put_until_committed(port)
            lists = allowed_lists(p.pid)
            self.assertEqual(set(lists.values()), {own_allowed_list()}, lists)
        finally:
            self.stop(p)

    def test_busy_without_cpus_is_refused(self):
        cfg, _ = self.config('busy-unpinned', 'poll=busy\n')
        err = self.refused(cfg)
        self.assertIn(f'{cfg}: cpus: poll=busy needs one CPU per group: list them, e.g. cpus=',
                      err)
        self.assertIn('fastzab-server --cpus', err)
        self.assertEqual(err.count('\n'), 1, err)  # one line

    def test_busy_with_too_few_cpus_is_refused(self):
        cfg, _ = self.config('busy-short', f'poll=busy\ngroups=2\ncpus={self.available[0]}\n')
        err = self.refused(cfg)
        self.assertIn(f'{cfg}:9: cpus: poll=busy needs one CPU per group: ', err)
        if len(self.available) >= 2:
            self.assertIn('(2 groups, 1 listed)', err)
        # The same through --cpus.
        err = self.refused(cfg, '--cpus', str(self.available[-1]))
        self.assertIn('--cpus: poll=busy needs one CPU per group: ', err)
        if len(self.available) >= 2:
            self.assertIn('set --cpus ', err)

    def test_bad_cpu_lists_are_refused(self):
        cfg, _ = self.config('absent', 'cpus=1023\n')
        if 1023 not in self.available:
            err = self.refused(cfg)
            self.assertIn(f'{cfg}:7: cpus: CPU 1023 is not available on this machine', err)
        cfg, _ = self.config('twice', 'cpus=0,0\n')
        self.assertIn(f'{cfg}:7: cpus: CPU 0 is listed twice', self.refused(cfg))
        cfg, _ = self.config('fine', '')
        self.assertIn('--cpus: range 3-1 runs backwards', self.refused(cfg, '--cpus', '3-1'))


if __name__ == '__main__':
    cluster.main()
