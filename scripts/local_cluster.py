#!/usr/bin/env python3
"""Runs a local fastzab cluster on loopback and reports what it measured.

Starts N fastzab-server processes (io_uring transport on 127.0.0.1, logs in a temporary
directory, poll=blocking so N servers share 2 cores without spinning), drives a write load
through every server's client port, kills the leader with SIGKILL and times leader loss to the
next commit, restarts it, stops everything and checks that every server's log
(fastzab-log dump) is identical. Always cleans up: processes killed, directory removed.

This is a quick look, not the benchmark (bench/cluster is a later issue): the load client is
Python, one outstanding write per connection.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.next_id = 0

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("connection closed")
            buf += chunk
        return buf

    def put(self, value):
        """Returns the commit zxid, or raises RuntimeError(error code) on an error reply."""
        self.next_id += 1
        self.sock.sendall(struct.pack("<IBQ", 9 + len(value), 1, self.next_id) + value)
        (length,) = struct.unpack("<I", self._read(4))
        body = self._read(length)
        if body[0] == 0x81:
            return struct.unpack("<Q", body[9:17])[0]
        raise RuntimeError("error %d: %s" % (body[9], body[10:].decode(errors="replace")))

    def close(self):
        self.sock.close()


def four_letter(port, word):
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(word.encode())
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out.decode(errors="replace")
            out += chunk


def mode(port):
    try:
        for line in four_letter(port, "srvr").splitlines():
            if line.startswith("Mode: "):
                return line[6:]
    except OSError:
        return None
    return None


class LocalCluster:
    def __init__(self, build, n, root, sync):
        self.build, self.n, self.root = build, n, root
        self.server_bin = os.path.join(build, "engine/cmd/fastzab-server")
        self.log_bin = os.path.join(build, "engine/cmd/fastzab-log")
        self.procs = {}
        secret = os.path.join(root, "secret")
        with open(secret, "wb") as f:
            f.write(os.urandom(48).hex().encode())
        os.chmod(secret, 0o600)
        self.client_ports = {i: free_port() for i in range(1, n + 1)}
        quorum = {i: (free_port(), free_port()) for i in range(1, n + 1)}
        for i in range(1, n + 1):
            lines = [
                "tickTime=20", "initLimit=10", "syncLimit=5",
                "dataDir=%s/data%d" % (root, i), "clientPort=%d" % self.client_ports[i],
                "clusterId=4242", "secretFile=" + secret, "poll=blocking", "sync=" + sync,
            ]
            lines += ["server.%d=127.0.0.1:%d:%d" % (j, q, e) for j, (q, e) in quorum.items()]
            with open(os.path.join(root, "s%d.cfg" % i), "w") as f:
                f.write("\n".join(lines) + "\n")

    def start(self, i):
        err = open(os.path.join(self.root, "server%d.log" % i), "ab")
        p = subprocess.Popen([self.server_bin, "--config", os.path.join(self.root, "s%d.cfg" % i),
                              "--id", str(i)], stdout=err, stderr=err)
        self.procs[i] = p
        deadline = time.time() + 10
        while time.time() < deadline:
            if p.poll() is not None:
                raise RuntimeError("server %d exited with %d (see %s/server%d.log)"
                                   % (i, p.returncode, self.root, i))
            if mode(self.client_ports[i]) is not None:
                return
            time.sleep(0.02)
        raise RuntimeError("server %d did not open its client port" % i)

    def leader(self, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for i in self.procs:
                if self.procs[i].poll() is None and mode(self.client_ports[i]) == "leader":
                    return i
            time.sleep(0.01)
        raise RuntimeError("no leader within %d s" % timeout)

    def stop_all(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def kill_all(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()

    def dump(self, i):
        r = subprocess.run([self.log_bin, "dump", os.path.join(self.root, "data%d" % i)],
                           capture_output=True, text=True)
        return r.returncode, r.stdout


def run_workers(worker, count, latencies, errors):
    """Runs worker(k) for k in 0..count-1 on threads of their own; returns the sorted
    latencies, the errors and the elapsed time."""
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(count)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(latencies), errors, time.time() - t0


def load(cluster, seconds, clients):
    """Each client thread writes through one server in turn; returns latencies (s) and count."""
    latencies, errors, lock = [], [], threading.Lock()
    stop_at = time.time() + seconds

    def worker(k):
        port = cluster.client_ports[1 + k % cluster.n]
        c = Client(port)
        mine, n = [], 0
        while time.time() < stop_at:
            t = time.perf_counter()
            try:
                c.put(b"load-%d-%d" % (k, n))
            except RuntimeError as e:
                with lock:
                    errors.append(str(e))
                continue
            mine.append(time.perf_counter() - t)
            n += 1
        c.close()
        with lock:
            latencies.extend(mine)

    return run_workers(worker, clients, latencies, errors)


def warm_up(cluster, timeout=10):
    """Until one write commits through every server (followers finish syncing after the
    leader is elected; until then they answer no_leader)."""
    deadline = time.time() + timeout
    for i in cluster.procs:
        while True:
            try:
                c = Client(cluster.client_ports[i])
                try:
                    c.put(b"warm-up")
                    break
                finally:
                    c.close()
            except (RuntimeError, OSError):
                if time.time() > deadline:
                    raise RuntimeError("server %d took no write within %d s" % (i, timeout))
                time.sleep(0.01)


def pipelined(cluster, seconds, connections, window, size):
    """Each connection keeps `window` writes in flight (to one server each, in turn); returns
    sorted latencies (s), errors and the elapsed time."""
    latencies, errors, lock = [], [], threading.Lock()
    stop_at = time.time() + seconds
    payload = b"p" * size

    def worker(k):
        c = Client(cluster.client_ports[1 + k % cluster.n])
        sent = {}
        mine, n = [], 0

        def send():
            nonlocal n
            c.next_id += 1
            sent[c.next_id] = time.perf_counter()
            c.sock.sendall(struct.pack("<IBQ", 9 + len(payload), 1, c.next_id) + payload)
            n += 1

        for _ in range(window):
            send()
        while sent:
            (length,) = struct.unpack("<I", c._read(4))
            body = c._read(length)
            (rid,) = struct.unpack("<Q", body[1:9])
            t = sent.pop(rid)
            if body[0] == 0x81:
                mine.append(time.perf_counter() - t)
            else:
                errors.append(body[10:].decode(errors="replace"))
            if time.time() < stop_at:
                send()
        c.close()
        with lock:
            latencies.extend(mine)

    return run_workers(worker, connections, latencies, errors)


def pct(v, q):
    return v[min(len(v) - 1, int(q * (len(v) - 1)))] if v else float("nan")


def failover(cluster):
    """SIGKILLs the leader; returns (old leader, ms from the kill to the next commit)."""
    old = cluster.leader()
    survivors = [i for i in cluster.procs if i != old]
    cluster.procs[old].kill()
    t0 = time.perf_counter()
    cluster.procs[old].wait()
    deadline = time.time() + 20
    k = 0
    while time.time() < deadline:
        port = cluster.client_ports[survivors[k % len(survivors)]]
        k += 1
        try:
            c = Client(port, timeout=2)
            try:
                c.put(b"after-failover")
                return old, (time.perf_counter() - t0) * 1000
            finally:
                c.close()
        except (RuntimeError, OSError):
            time.sleep(0.002)
    raise RuntimeError("no commit within 20 s of the leader's loss")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--servers", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--sync", default="fdatasync", choices=["fdatasync", "none"])
    ap.add_argument("--window", type=int, default=32,
                    help="writes in flight per connection in the pipelined phase")
    ap.add_argument("--size", type=int, default=64, help="bytes per write in the pipelined phase")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    ap.add_argument("--keep-on-failure", action="store_true",
                    help="keep the temporary directory (logs, data) when something fails")
    args = ap.parse_args()

    root = tempfile.mkdtemp(prefix="fastzab-run-")
    cluster = LocalCluster(args.build, args.servers, root, args.sync)
    result = {"servers": args.servers, "clients": args.clients, "sync": args.sync}
    ok = True
    try:
        t0 = time.perf_counter()
        for i in range(1, args.servers + 1):
            cluster.start(i)
        leader = cluster.leader()
        result["first_leader"] = leader
        result["start_to_leader_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        print("cluster: %d servers on 127.0.0.1, logs in %s, sync=%s"
              % (args.servers, root, args.sync))
        print("leader:  server %d (%.0f ms from the first start)" % (leader, result["start_to_leader_ms"]))

        warm_up(cluster)
        lat, errors, took = load(cluster, args.seconds, args.clients)
        result.update({
            "writes": len(lat), "write_errors": len(errors), "seconds": round(took, 2),
            "writes_per_second": round(len(lat) / took, 1),
            "latency_p50_us": round(pct(lat, 0.5) * 1e6), "latency_p99_us": round(pct(lat, 0.99) * 1e6),
        })
        print("load:    %d writes in %.1f s through every server (%d connections, one write in "
              "flight each): %.0f writes/s, commit latency p50 %d us, p99 %d us, %d errors"
              % (len(lat), took, args.clients, result["writes_per_second"],
                 result["latency_p50_us"], result["latency_p99_us"], len(errors)))

        plat, perr, ptook = pipelined(cluster, args.seconds, args.clients, args.window, args.size)
        result.update({
            "pipelined_writes": len(plat), "pipelined_errors": len(perr),
            "pipelined_window": args.window, "pipelined_size": args.size,
            "pipelined_writes_per_second": round(len(plat) / ptook, 1),
            "pipelined_latency_p50_us": round(pct(plat, 0.5) * 1e6),
            "pipelined_latency_p99_us": round(pct(plat, 0.99) * 1e6),
        })
        print("pipelined: %d writes of %d B in %.1f s (%d connections x %d in flight): %.0f writes/s, "
              "commit latency p50 %d us, p99 %d us, %d errors"
              % (len(plat), args.size, ptook, args.clients, args.window,
                 result["pipelined_writes_per_second"], result["pipelined_latency_p50_us"],
                 result["pipelined_latency_p99_us"], len(perr)))

        old, ms = failover(cluster)
        result["failover_ms"] = round(ms, 1)
        print("failover: SIGKILL of leader %d -> next commit after %.0f ms" % (old, ms))

        cluster.start(old)
        time.sleep(1.0)
        cluster.stop_all()
        dumps = [cluster.dump(i) for i in range(1, args.servers + 1)]
        codes = [c for c, _ in dumps]
        same = all(d == dumps[0][1] for _, d in dumps) and all(c == 0 for c in codes)
        records = dumps[0][1].count("\n")
        result["logs_identical"] = same
        result["records"] = records
        print("logs:    %s (%d records each; fastzab-log dump exit codes %s)"
              % ("identical on every server" if same else "DIFFERENT", records, codes))
        ok = same
    except Exception as e:  # report and clean up
        print("fastzab run: error: %s" % e, file=sys.stderr)
        ok = False
    finally:
        cluster.kill_all()
        if ok or not args.keep_on_failure:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print("fastzab run: kept %s for a look (server logs, data)" % root, file=sys.stderr)
    result["ok"] = ok
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
