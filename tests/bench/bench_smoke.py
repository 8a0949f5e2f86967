#!/usr/bin/env python3
"""One short real run of fastzab-bench (3 fastzab-server processes on 127.0.0.1): it must exit 0,
print its table, and write JSON that validates against bench/schema.json and holds what was asked
for (both windows, one failover trial, the floors), and HdrHistogram files that parse. Shorter
runs check the other failover kinds: a silent (SIGSTOPped) leader and leadership transfer.

The numbers themselves are not asserted (tests never assert timing); only that they exist and
are consistent (commits counted in every run, percentiles ordered).
Needs FASTZAB_BENCH_BIN (meson passes it) and python3-jsonschema.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import jsonschema

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


class BenchSmoke(unittest.TestCase):
    def test_quick_run_writes_valid_json(self):
        bench = os.environ.get("FASTZAB_BENCH_BIN")
        self.assertTrue(bench and os.access(bench, os.X_OK), "FASTZAB_BENCH_BIN is not set to fastzab-bench")
        with tempfile.TemporaryDirectory(prefix="fastzab-bench-smoke-") as tmp:
            out = os.path.join(tmp, "result.json")
            r = subprocess.run([bench, "--quick", "--windows", "1,16", "--failover-trials", "1",
                                "--failover-windows", "1", "--json", out],
                               capture_output=True, text=True, timeout=240)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            self.assertIn("closed w=16 64B", r.stdout)
            self.assertIn("floors (same run):", r.stdout)
            with open(out, encoding="utf-8") as f:
                doc = json.load(f)
            with open(os.path.join(ROOT, "bench", "schema.json"), encoding="utf-8") as f:
                schema = json.load(f)
            jsonschema.validate(doc, schema)
            self.assertEqual([run["window"] for run in doc["runs"]], [1, 16])
            for run in doc["runs"]:
                lat = run["latency_us"]
                self.assertGreater(run["commits"], 0)
                self.assertEqual(lat["count"], run["commits"])
                keys = ["min_us", "p50_us", "p90_us", "p99_us", "p999_us", "p9999_us", "max_us"]
                values = [lat[k] for k in keys]
                self.assertEqual(values, sorted(values), run["name"])
                self.assertIsNotNone(run["cpu_us_per_commit"])
                # Relative to the JSON file's directory (bench/SCHEMA.md).
                self.assertFalse(os.path.isabs(run["histogram_file"]), run["histogram_file"])
                with open(os.path.join(tmp, run["histogram_file"]), encoding="utf-8") as f:
                    rows = [l for l in f if l.strip() and not l.startswith("#") and l.split()[0][0].isdigit()]
                self.assertEqual(int(rows[-1].split()[2]), run["commits"])
            self.assertEqual(len(doc["failover"]["trials"]), 1)
            trial = doc["failover"]["trials"][0]
            self.assertNotEqual(trial["killed_server"], trial["new_leader"])
            self.assertGreater(trial["kill_to_commit_ms"], 0)
            self.assertIsNotNone(doc["floors"]["round_trip"])
            self.assertGreaterEqual(len(doc["floors"]["fdatasync"]), 1)

    def test_silent_leader_trial(self):
        """--failover-kind stop: the leader is SIGSTOPped (its connections stay open); the
        followers notice only after leaderSilenceMs without a word from it, so the first commit
        of the next epoch cannot come sooner than that."""
        bench = os.environ.get("FASTZAB_BENCH_BIN")
        with tempfile.TemporaryDirectory(prefix="fastzab-bench-smoke-") as tmp:
            out = os.path.join(tmp, "result.json")
            r = subprocess.run([bench, "--quick", "--no-floors", "--windows", "1", "--failover-trials", "1",
                                "--failover-windows", "1", "--failover-kind", "stop",
                                "--server-option", "heartbeatMs=20", "--server-option", "leaderSilenceMs=300",
                                "--json", out], capture_output=True, text=True, timeout=240)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            self.assertIn("a silent leader", r.stdout)
            with open(out, encoding="utf-8") as f:
                doc = json.load(f)
            self.assertEqual(doc["failover"]["kind"], "stop")
            self.assertEqual(doc["config"]["server_options"], ["heartbeatMs=20", "leaderSilenceMs=300"])
            trial = doc["failover"]["trials"][0]
            self.assertNotEqual(trial["killed_server"], trial["new_leader"])
            self.assertGreaterEqual(trial["kill_to_commit_ms"], 300.0)

    def test_leadership_transfer_trials(self):
        """--failover-kind transfer: the leader is asked over its client port to hand over to the
        next server; nothing is killed, so each trial starts from the leader the previous one
        handed to. A refused transfer is a result (counted, kept in the trials), not a failure."""
        bench = os.environ.get("FASTZAB_BENCH_BIN")
        with tempfile.TemporaryDirectory(prefix="fastzab-bench-smoke-") as tmp:
            out = os.path.join(tmp, "result.json")
            r = subprocess.run([bench, "--quick", "--no-floors", "--windows", "1", "--failover-trials", "2",
                                "--failover-windows", "1", "--failover-kind", "transfer", "--json", out],
                               capture_output=True, text=True, timeout=240)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            self.assertIn("leadership transfer", r.stdout)
            self.assertIn("request to first commit", r.stdout)
            with open(out, encoding="utf-8") as f:
                doc = json.load(f)
            with open(os.path.join(ROOT, "bench", "schema.json"), encoding="utf-8") as f:
                jsonschema.validate(doc, json.load(f))
            fo = doc["failover"]
            self.assertEqual(fo["kind"], "transfer")
            trials = fo["trials"]
            self.assertEqual(len(trials), 2)
            for t in trials:
                if t["refused"]:
                    self.assertEqual(t["new_leader"], t["killed_server"], t)
                else:
                    self.assertNotEqual(t["new_leader"], t["killed_server"], t)
                    self.assertGreater(t["kill_to_commit_ms"], 0)
            self.assertEqual(trials[1]["killed_server"], trials[0]["new_leader"])
            refused = sum(1 for t in trials if t["refused"])
            [summary] = fo["summary"]
            self.assertEqual((summary["trials"], summary["refused"]), (2, refused))
            self.assertEqual(summary["kill_to_commit_ms"]["count"], 2 - refused)
            self.assertEqual(sum(1 for n in doc["notes"] if "refused to transfer" in n), refused)
        # A transfer moves group 0 only: more groups are refused before anything starts.
        r = subprocess.run([bench, "--failover-kind", "transfer", "--failover-trials", "1", "--groups", "2"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertTrue(r.stderr.startswith("fastzab-bench: --failover-kind transfer needs --groups 1"), r.stderr)

    def test_bad_arguments_are_refused_with_a_message(self):
        bench = os.environ.get("FASTZAB_BENCH_BIN")
        for args in (["--windows", "0"], ["--sync", "sometimes"], ["--sizes", "0"],
                     ["--in-process", "--failover-trials", "1"], ["--compare", "/nonexistent.json"],
                     ["--failover-kind", "pause"], ["--server-option", "noequals"]):
            r = subprocess.run([bench] + args, capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, args)
            self.assertTrue(r.stderr.startswith("fastzab-bench: "), r.stderr)

    def test_busy_servers_need_a_cpu_each(self):
        # Three busy servers need three CPUs of their own (this machine has two, so the default
        # --servers 3 is refused here); 9 servers x 64 groups is refused on any ordinary machine.
        # Refused before any server starts, so nothing spins.
        bench = os.environ.get("FASTZAB_BENCH_BIN")
        cpus = len(os.sched_getaffinity(0))
        for needed, args in ((3, ["--servers", "3"]), (9 * 64, ["--servers", "9", "--groups", "64"]),
                             (9, ["--in-process", "--servers", "9"])):
            if needed <= cpus:
                continue
            r = subprocess.run([bench, "--poll", "busy", "--quick"] + args,
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("fastzab-bench: --poll busy needs a CPU of its own for each spinning "
                          "group thread: ", r.stderr)
            self.assertIn(f"= {needed} CPUs, but this machine has {cpus} ", r.stderr)
            self.assertIn("use --poll adaptive or blocking", r.stderr)
            self.assertEqual(r.stdout, "")


if __name__ == "__main__":
    unittest.main(verbosity=2)
