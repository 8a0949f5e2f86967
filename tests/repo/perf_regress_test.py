#!/usr/bin/env python3
"""scripts/perf-regress: its statistics, verdicts, exit status and result readers.

Loads the script (it has no .py suffix) with importlib from its path and calls its functions;
nothing is built or run except `perf-regress --help` and two refused command lines.

Run from anywhere: python3 tests/repo/perf_regress_test.py
"""
import importlib.machinery
import importlib.util
import json
import math
import os
import subprocess
import sys
import unittest

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SCRIPT = os.path.join(ROOT, "scripts", "perf-regress")


def load():
    loader = importlib.machinery.SourceFileLoader("perf_regress", SCRIPT)
    spec = importlib.util.spec_from_loader("perf_regress", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


pr = load()

# Five runs of a benchmark at about 1000 ns with about 1 % spread.
STEADY = [1000.0, 1008.0, 995.0, 1003.0, 998.0]


def scaled(xs, factor):
    return [x * factor for x in xs]


class Median(unittest.TestCase):
    def test_odd_and_even(self):
        self.assertEqual(pr.median([3, 1, 2]), 2)
        self.assertEqual(pr.median([4, 1, 3, 2]), 2.5)
        self.assertEqual(pr.median([7.0]), 7.0)

    def test_empty_is_an_error(self):
        with self.assertRaises(ValueError):
            pr.median([])


class OrientedRatio(unittest.TestCase):
    def test_time_up_is_worse(self):
        self.assertAlmostEqual(pr.oriented_ratio(100.0, 120.0, higher_is_better=False), 1.2)

    def test_throughput_down_is_worse(self):
        self.assertAlmostEqual(pr.oriented_ratio(1000.0, 800.0, higher_is_better=True), 1.25)
        self.assertLess(pr.oriented_ratio(800.0, 1000.0, higher_is_better=True), 1)

    def test_zero(self):
        self.assertEqual(pr.oriented_ratio(0.0, 0.0, False), 1.0)
        self.assertEqual(pr.oriented_ratio(0.0, 5.0, False), math.inf)
        self.assertEqual(pr.oriented_ratio(5.0, 0.0, True), math.inf)


class Verdicts(unittest.TestCase):
    def verdict(self, a, b, **kw):
        return pr.compare(a, b, **kw)

    def test_clear_slowdown_with_small_spread_is_a_regression(self):
        r = self.verdict(STEADY, scaled(STEADY, 1.2))
        self.assertEqual(r["verdict"], "regression")
        self.assertAlmostEqual(r["ratio"], 1.2)
        lo, hi = r["interval"]
        self.assertGreater(lo, 1)
        self.assertLessEqual(lo, r["ratio"])
        self.assertGreaterEqual(hi, r["ratio"])
        self.assertEqual(pr.exit_status([r]), 1)

    def test_identical_samples_are_no_change(self):
        r = self.verdict(STEADY, list(STEADY))
        self.assertEqual(r["verdict"], "no change")
        self.assertEqual(r["ratio"], 1.0)
        lo, hi = r["interval"]
        self.assertLessEqual(lo, 1)
        self.assertGreaterEqual(hi, 1)
        self.assertEqual(pr.exit_status([r]), 0)

    def test_constant_samples_are_no_change(self):
        r = self.verdict([5.0] * 5, [5.0] * 5)
        self.assertEqual(r["verdict"], "no change")
        self.assertEqual(r["interval"], [1.0, 1.0])

    def test_noisy_overlap_is_no_change_even_with_a_large_median_ratio(self):
        a = [100.0, 130.0, 90.0, 120.0, 95.0]
        b = [110.0, 95.0, 135.0, 100.0, 125.0]
        r = self.verdict(a, b)
        self.assertGreater(r["ratio"], 1.05)  # the medians alone would call it 10 % worse
        self.assertLess(r["interval"][0], 1)
        self.assertEqual(r["verdict"], "no change")

    def test_one_outlier_run_does_not_hide_a_clear_slowdown_with_seven_runs(self):
        a = STEADY + [1002.0, 997.0]
        b = scaled(a, 1.3)
        b[2] = 990.0  # one B run as fast as A
        self.assertEqual(self.verdict(a, b)["verdict"], "regression")
        # With five runs the 95 % interval reaches the extreme samples (a resampled median of
        # five is the smallest sample 5.8 % of the time), so the same outlier keeps the verdict
        # at "no change": conservative, as documented (--runs 7 tolerates one outlier).
        b5 = scaled(STEADY, 1.3)
        b5[2] = 990.0
        self.assertEqual(self.verdict(STEADY, b5)["verdict"], "no change")

    def test_one_outlier_run_does_not_make_a_regression(self):
        b = list(STEADY)
        b[1] = 5000.0  # one B run hit by the machine's noise
        self.assertEqual(self.verdict(STEADY, b)["verdict"], "no change")

    def test_significant_but_below_the_threshold_is_no_change(self):
        r = self.verdict(STEADY, scaled(STEADY, 1.03))
        self.assertGreater(r["interval"][0], 1)  # beyond the spread...
        self.assertEqual(r["verdict"], "no change")  # ...but under 5 %
        self.assertEqual(self.verdict(STEADY, scaled(STEADY, 1.03), threshold=1.02)["verdict"],
                         "regression")

    def test_clear_speedup_is_an_improvement_and_exits_zero(self):
        r = self.verdict(STEADY, scaled(STEADY, 0.8))
        self.assertEqual(r["verdict"], "improvement")
        self.assertLess(r["interval"][1], 1)
        self.assertEqual(pr.exit_status([r]), 0)

    def test_throughput_drop_is_a_regression_and_rise_an_improvement(self):
        rate = [80000.0, 80500.0, 79800.0, 80200.0, 79900.0]
        down = self.verdict(rate, scaled(rate, 0.8), higher_is_better=True)
        self.assertEqual(down["verdict"], "regression")
        self.assertAlmostEqual(down["ratio"], 1.25)
        up = self.verdict(rate, scaled(rate, 1.2), higher_is_better=True)
        self.assertEqual(up["verdict"], "improvement")

    def test_missing_samples(self):
        r = self.verdict(STEADY, [None] * 5)
        self.assertEqual(r["verdict"], "missing")
        self.assertIsNone(r["ratio"])
        self.assertEqual(pr.exit_status([r]), 0)
        # Three samples a side are enough; the absent runs are left out.
        r = self.verdict(STEADY, [1200.0, None, 1210.0, None, 1195.0])
        self.assertEqual(r["verdict"], "regression")
        self.assertEqual(r["b_samples"], [1200.0, None, 1210.0, None, 1195.0])

    def test_pair_ratios(self):
        r = self.verdict([100.0, 200.0], [110.0, 180.0])
        self.assertEqual([round(x, 6) for x in r["pair_ratios"]], [1.1, 0.9])

    def test_exit_status_is_one_if_any_regression(self):
        ok = self.verdict(STEADY, list(STEADY))
        bad = self.verdict(STEADY, scaled(STEADY, 1.5))
        self.assertEqual(pr.exit_status([ok, ok]), 0)
        self.assertEqual(pr.exit_status([ok, bad, ok]), 1)
        self.assertEqual(pr.exit_status([]), 0)


class Bootstrap(unittest.TestCase):
    def test_deterministic(self):
        a = [100.0, 130.0, 90.0, 120.0, 95.0]
        b = [110.0, 95.0, 135.0, 100.0, 125.0]
        first = pr.bootstrap_interval(a, b)
        pr.bootstrap_interval(STEADY, scaled(STEADY, 2))  # another call in between
        self.assertEqual(pr.bootstrap_interval(a, b), first)
        self.assertEqual(pr.compare(a, b), pr.compare(a, b))

    def test_interval_bounds_lie_between_the_extreme_ratios(self):
        a = [100.0, 130.0, 90.0, 120.0, 95.0]
        b = [110.0, 95.0, 135.0, 100.0, 125.0]
        lo, hi = pr.bootstrap_interval(a, b)
        self.assertLessEqual(min(b) / max(a), lo)
        self.assertLessEqual(lo, hi)
        self.assertLessEqual(hi, max(b) / min(a))

    def test_wider_confidence_is_not_narrower(self):
        a = [100.0, 130.0, 90.0, 120.0, 95.0]
        b = [110.0, 95.0, 135.0, 100.0, 125.0]
        lo80, hi80 = pr.bootstrap_interval(a, b, confidence=0.8)
        lo99, hi99 = pr.bootstrap_interval(a, b, confidence=0.99)
        self.assertLessEqual(lo99, lo80)
        self.assertGreaterEqual(hi99, hi80)


class Readers(unittest.TestCase):
    def test_micro_metrics(self):
        doc = {"benchmarks": [
            {"name": "BM_A/real_time", "run_type": "iteration", "real_time": 2.0,
             "cpu_time": 1.0, "time_unit": "us"},
            {"name": "BM_B", "run_type": "iteration", "real_time": 5.0, "cpu_time": 4.0,
             "time_unit": "ns"},
            {"name": "BM_B", "run_type": "iteration", "real_time": 7.0, "cpu_time": 4.0,
             "time_unit": "ns"},
            {"name": "BM_B", "run_type": "iteration", "real_time": 6.0, "cpu_time": 4.0,
             "time_unit": "ns"},
            {"name": "BM_B_median", "run_type": "aggregate", "real_time": 6.0,
             "cpu_time": 4.0, "time_unit": "ns"},
            {"name": "BM_Err", "run_type": "iteration", "error_occurred": True,
             "real_time": 0, "cpu_time": 0, "time_unit": "ns"},
        ]}
        m = pr.micro_metrics(doc, "x_bench")
        self.assertEqual(m, {"x_bench BM_A/real_time": (2000.0, "ns", False),
                             "x_bench BM_B": (6.0, "ns", False)})
        self.assertEqual(pr.micro_metrics(doc, "x", "cpu_time")["x BM_A/real_time"][0], 1000.0)

    def test_cluster_metrics(self):
        doc = {"schema": "fastzab-bench", "schema_version": 1, "runs": [
            {"name": "closed w=64 64B", "commits_per_s": 82469.0, "cpu_us_per_commit": 21.4,
             "latency_us": {"p50_us": 140.0, "p99_us": 260.0}},
            {"name": "open 1000/s", "commits_per_s": 1000.0, "cpu_us_per_commit": None,
             "latency_us": {"p50_us": None}},
        ]}
        self.assertEqual(pr.cluster_metrics(doc), {
            "closed w=64 64B latency_us.p50_us": (140.0, "us", False),
            "closed w=64 64B commits_per_s": (82469.0, "1/s", True),
            "closed w=64 64B cpu_us_per_commit": (21.4, "us", False),
            "open 1000/s commits_per_s": (1000.0, "1/s", True),
        })

    def test_cluster_metrics_refuses_other_documents(self):
        with self.assertRaises(ValueError):
            pr.cluster_metrics({"schema": "something else", "schema_version": 1})
        with self.assertRaises(ValueError):
            pr.cluster_metrics({"schema": "fastzab-bench", "schema_version": 2, "runs": []})

    def test_json_has_no_non_finite_numbers(self):
        doc = pr.finite({"ratio": math.inf, "interval": [1.0, math.inf], "x": [{"y": math.nan}]})
        self.assertEqual(json.loads(json.dumps(doc, allow_nan=False)),
                         {"ratio": None, "interval": [1.0, None], "x": [{"y": None}]})


class CommandLine(unittest.TestCase):
    def run_script(self, *args):
        return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                              timeout=60, cwd=ROOT)

    def test_help_documents_the_statistic(self):
        p = self.run_script("--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        for words in ("bootstrap", "median", "--threshold", "--runs", "regression", "cluster"):
            self.assertIn(words, p.stdout)

    def test_usage_errors_exit_2(self):
        self.assertEqual(self.run_script().returncode, 2)
        self.assertEqual(self.run_script("HEAD", "HEAD", "no-such-suite").returncode, 2)
        self.assertEqual(self.run_script("HEAD", "HEAD", "--runs", "3").returncode, 2)
        self.assertEqual(self.run_script("HEAD", "HEAD", "--threshold", "0.9").returncode, 2)

    @unittest.skipUnless(os.path.exists(os.path.join(ROOT, ".git")), "not a git checkout")
    def test_unknown_revision_exits_2_before_building(self):
        p = self.run_script("no-such-revision-xyz", "HEAD")
        self.assertEqual(p.returncode, 2)
        self.assertIn("no-such-revision-xyz", p.stderr)


if __name__ == "__main__":
    unittest.main()
