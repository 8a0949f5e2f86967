#!/usr/bin/env python3
"""bench/cluster/report.py turns fastzab-bench's JSON into a self-contained HTML report.

Runs report.py on a sample result (bench_schema_test.py's complete example, plus a run with
nulls and a name full of markup) and sample HdrHistogram percentile files written into a
temporary directory, then checks the tables' rows, the inline SVG pictures (when gnuplot is
installed: well-formed, ids unique across the page), the page without gnuplot, and the one-line
error with exit status 2 for input that is not fastzab-bench's JSON.

Python 3 standard library; the pictures need gnuplot (scripts/lib.sh installs gnuplot-nox).
Run from anywhere: python3 tests/repo/bench_report_test.py
"""
import html.parser
import importlib.util
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
REPORT = os.path.join(ROOT, "bench", "cluster", "report.py")

sys.path.insert(0, HERE)
from bench_schema_test import example_document  # noqa: E402  (the sample shares its example)

# A run name that must come out as text, never as markup or a gnuplot command.
NASTY_NAME = "open 500/s <b>64B</b> & 'quoted' \"double\" `touch PWNED` @x $d"


def load_report_module():
    spec = importlib.util.spec_from_file_location("fastzab_bench_report", REPORT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_hgrm(path, seed, median_us, count, last_row_inf=True):
    """A percentile-distribution file as fastzab-bench writes it (HdrHistogram's text format),
    with a line of garbage in the middle that a reader must skip. Returns the sorted values."""
    rng = random.Random(seed)
    values = sorted(round(rng.lognormvariate(0, 0.45) * median_us, 3) for _ in range(count))
    levels, half = [], 0
    while True:  # five rows per halving of the distance to 100 %, as HdrHistogram reports
        lo, hi = 1 - 0.5 ** half, 1 - 0.5 ** (half + 1)
        levels += [lo + (hi - lo) * t / 5 for t in range(5)]
        if hi > 1 - 1 / count:
            break
        half += 1
    lines = ["       Value     Percentile TotalCount 1/(1-Percentile)", ""]
    for i, p in enumerate(levels):
        k = min(count - 1, int(p * count))
        lines.append("%12.3f %2.12f %10d %14.2f" % (values[k], p, k + 1, 1 / (1 - p)))
        if i == 7:
            lines.append("this line is not a row")
    last = "%12.3f %2.12f %10d" % (values[-1], 1.0, count)
    lines.append(last + ("            inf" if last_row_inf else ""))
    mean = sum(values) / count
    sd = (sum((v - mean) ** 2 for v in values) / count) ** 0.5
    lines += ["#[Mean    = %12.3f, StdDeviation   = %12.3f]" % (mean, sd),
              "#[Max     = %12.3f, Total count    = %12d]" % (values[-1], count),
              "#[Buckets = %12d, SubBuckets     = %12d]" % (22, 2048)]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return values


class Page(html.parser.HTMLParser):
    """The tables of an HTML page as lists of rows of cell texts, and its inline SVGs' sources."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tables, self._row, self._cell = [], None, None
        self.feed(text)
        self.close()
        self.svgs = re.findall(r"<svg\b.*?</svg>", text, re.S)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self._row = []
            self.tables[-1].append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def rows(self, *header):
        """The rows of the tables whose header row starts with header (every table's without)."""
        return [r for t in self.tables if t and t[0][:len(header)] == list(header) for r in t]

    def row(self, first, *header):
        """The row whose first cell is first, in the tables that header picks (the test fails
        when there is none or several)."""
        found = [r for r in self.rows(*header) if r and r[0] == first]
        assert len(found) == 1, f"{len(found)} rows start with {first!r}"
        return found[0]


class BenchReportTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.name
        elsewhere = os.path.join(self.dir, "elsewhere")
        os.makedirs(os.path.join(self.dir, "results", "bench-out"))
        os.makedirs(elsewhere)
        doc = example_document()
        runs = doc["runs"]
        # Relative names are taken from the JSON's directory (results/), absolute ones as they are.
        runs[0]["histogram_file"] = "closed-w1-64B.hgrm"
        runs[1]["histogram_file"] = "bench-out/closed-w64-64B.hgrm"
        runs[2]["histogram_file"] = os.path.join(elsewhere, "open.hgrm")
        write_hgrm(os.path.join(self.dir, "results", "closed-w1-64B.hgrm"), 1, 228.0, runs[0]["commits"])
        write_hgrm(os.path.join(self.dir, "results", "bench-out", "closed-w64-64B.hgrm"), 2, 140.0, 50000,
                   last_row_inf=False)
        write_hgrm(runs[2]["histogram_file"], 3, 244.0, 30000)
        nasty = dict(runs[2], name=NASTY_NAME, rate_per_s=500.0, syscalls_per_commit=None, mean_batch_bytes=None,
                     floor_ratios={"p50_to_floor": None, "commits_per_s_to_floor": None}, histogram_file=None)
        runs.append(nasty)
        doc["compare"]["ratios"].append({"run": NASTY_NAME, "metric": "p50_us", "baseline": 250.0,
                                         "current": 244.0, "ratio": 0.976})
        self.doc = doc
        self.json_path = self.write_json(doc)

    def write_json(self, doc, name="result.json"):
        path = os.path.join(self.dir, "results", name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
        return path

    def report(self, json_path, env=None):
        """(completed process, the page's text or None)."""
        out = os.path.join(self.dir, "report.html")
        if os.path.exists(out):
            os.unlink(out)
        r = subprocess.run([sys.executable, REPORT, json_path, out], capture_output=True, text=True,
                           cwd=self.dir, env=env, timeout=300)
        page = None
        if os.path.exists(out):
            with open(out, encoding="utf-8") as f:
                page = f.read()
        return r, page

    def assertTablesHold(self, page):
        p = Page(page)
        run = p.row("closed w=64 64B", "run", "workload")
        # name, workload, window, value B, commits, errors, commits/s, MB/s, p50 .. max, CPU, ctx, syscalls,
        # batch, ratios
        self.assertEqual(run, ["closed w=64 64B", "closed", "w=64", "64", "412,345", "0", "82,469", "5.28",
                               "140", "190", "260", "900", "2,100", "3,400", "21.4", "1.90", "3.20", "5,120",
                               "1.10", "0.40"])
        self.assertEqual(p.row("open 20000/s 1KiB", "run", "workload")[:8],
                         ["open 20000/s 1KiB", "open", "20,000/s", "1,024", "99,987", "0", "19,997", "20.5"])
        nasty = p.row(NASTY_NAME, "run", "workload")
        self.assertEqual(nasty[2], "500/s")
        self.assertEqual(nasty[16:], ["n/a", "n/a", "n/a", "n/a"], "nulls are shown as n/a")
        self.assertEqual(p.row("closed w=1 64B", "run", "workload")[10], "340")
        # Floors.
        self.assertEqual(p.row("round trip")[:6], ["round trip", "uring, poll blocking", "20,000", "20,000",
                                                   "18.2", "24.9"])
        fsync = [r for r in p.rows() if r and r[0] == "append + fdatasync"]
        self.assertEqual([r[1] for r in fsync], ["4,096 B batch", "65,536 B batch"])
        # Failover: the trials, and the summary per window and metric.
        trials = p.rows("trial", "window")[1:]
        self.assertEqual(trials, [["1", "1", "2", "3", "41.2", "45.0"], ["2", "1", "3", "1", "38.7", "42.9"],
                                  ["3", "64", "1", "2", "52.3", "57.1"], ["4", "64", "2", "3", "47.8", "50.2"]])
        summary = [r[:4] for r in p.rows() if len(r) > 3 and r[1] in ("kill_to_commit_ms", "unavailable_ms")]
        self.assertEqual(summary, [["1", "kill_to_commit_ms", "2", "2"], ["1", "unavailable_ms", "2", "2"],
                                   ["64", "kill_to_commit_ms", "2", "2"], ["64", "unavailable_ms", "2", "2"]])
        # Waterfall and compare.
        self.assertEqual(p.row("leader fdatasync"), ["leader fdatasync", "90.0", "124"])
        self.assertEqual(p.row("total")[:2], ["total", "180"])
        ratios = p.rows("run", "metric", "baseline")[1:]
        self.assertEqual(ratios, [["closed w=64 64B", "commits_per_s", "80,000", "82,469", "1.03"],
                                  ["closed w=64 64B", "p99_us", "280", "260", "0.93"],
                                  [NASTY_NAME, "p50_us", "250", "244", "0.98"]])
        # Machine, build, config.
        self.assertEqual(p.row("hostname"), ["hostname", "bench-1"])
        self.assertEqual(p.row("git_rev"), ["git_rev", self.doc["build"]["git_rev"]])
        self.assertEqual(p.row("poll"), ["poll", "blocking"])
        self.assertEqual(p.row("memory_bytes"), ["memory_bytes", "25,769,803,776"])
        # Markup in names is text: no <b> element made it into the page.
        self.assertNotIn("<b>64B</b>", page)
        self.assertIn(self.doc["notes"][0], page)
        return p

    def test_report_holds_every_table(self):
        r, page = self.report(self.json_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        self.assertTrue(page.startswith("<!DOCTYPE html>"))
        self.assertTablesHold(page)
        self.assertNotIn("cannot read", page, "every histogram file was found")
        self.assertNotRegex(page, r"<(script|link|img)\b", "the page is self-contained")

    def test_pictures_are_inline_svg(self):
        if shutil.which("gnuplot") is None:
            self.skipTest("gnuplot is not installed (scripts/lib.sh installs gnuplot-nox)")
        r, page = self.report(self.json_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        p = Page(page)
        # All runs together, one per run (4), failover kill-to-commit and unavailability.
        self.assertEqual(len(p.svgs), 1 + 4 + 2, "pictures")
        ids = []
        for svg in p.svgs:
            root = ET.fromstring(svg)  # well-formed: names with markup were escaped
            ids += [e.get("id") for e in root.iter() if e.get("id")]
        self.assertEqual(len(ids), len(set(ids)), "ids must be unique across the page")
        self.assertNotIn("gnuplot was not found", page)
        self.assertNotIn("no picture", page)
        # The histogram files were read (relative to the JSON's directory, or absolute); the run
        # without one is drawn from the JSON's percentiles.
        self.assertIn("from closed-w1-64B.hgrm, 21,410 values", page)
        self.assertIn("from closed-w64-64B.hgrm, 50,000 values", page)
        self.assertIn("from open.hgrm, 30,000 values", page)
        self.assertIn("from the JSON&#x27;s percentiles (no histogram file)", page)
        self.assertIn("percentile", page)
        self.assertIn("latency (µs", page)
        self.assertIn("SIGKILL to first commit (ms)", page)
        self.assertIn("window 64 (n=2)", page)
        # A backquote in a run name never reaches a shell through gnuplot.
        self.assertFalse(os.path.exists(os.path.join(self.dir, "PWNED")))

    def test_without_gnuplot_the_report_says_so(self):
        empty = os.path.join(self.dir, "no-programs")
        os.makedirs(empty)
        env = dict(os.environ, PATH=empty)
        r, page = self.report(self.json_path, env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("<svg", page)
        self.assertIn("gnuplot was not found", page)
        self.assertIn("no picture: gnuplot not found", page)
        self.assertTablesHold(page)

    def test_a_missing_histogram_file_is_noted(self):
        self.doc["runs"][0]["histogram_file"] = "gone.hgrm"
        with open(os.path.join(self.dir, "results", "empty.hgrm"), "w") as f:
            f.write("       Value     Percentile TotalCount 1/(1-Percentile)\n\nnothing here\n")
        self.doc["runs"][1]["histogram_file"] = "empty.hgrm"
        r, page = self.report(self.write_json(self.doc))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("gone.hgrm: cannot read", page)
        self.assertIn("empty.hgrm: no percentile rows in it", page)
        self.assertTablesHold(page)

    def test_a_histogram_relative_to_the_current_directory_is_drawn_and_noted(self):
        # Relative names belong to the JSON's directory (results/); one that is found only from
        # the current directory (the test runs report.py in self.dir) is still read, with a note.
        os.makedirs(os.path.join(self.dir, "cwd-only"))
        write_hgrm(os.path.join(self.dir, "cwd-only", "w64.hgrm"), 4, 150.0, 20000)
        self.doc["runs"][1]["histogram_file"] = "cwd-only/w64.hgrm"
        r, page = self.report(self.write_json(self.doc))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("cwd-only/w64.hgrm is not relative to the JSON&#x27;s directory", page)
        self.assertIn("from w64.hgrm, 20,000 values", page)

    def test_the_optional_parts_may_be_null(self):
        doc = self.doc
        doc["failover"] = doc["waterfall"] = doc["compare"] = None
        r, page = self.report(self.write_json(doc))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("No failover trial ran.", page)
        self.assertIn("No waterfall", page)
        self.assertIn("No baseline", page)
        self.assertIn("82,469", page)

    def test_a_bare_document_gives_a_page(self):
        r, page = self.report(self.write_json({"schema": "fastzab-bench", "schema_version": 1, "runs": []}))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("No runs.", page)

    def test_bad_json_is_one_line_and_exit_status_2(self):
        cases = {"broken.json": "{\"schema\": \"fastzab-bench\",", "list.json": "[1, 2]",
                 "other.json": "{\"schema\": \"something-else\"}",
                 "runs.json": "{\"schema\": \"fastzab-bench\", \"runs\": {}}"}
        for name, text in list(cases.items()) + [("absent.json", None)]:
            with self.subTest(name):
                path = os.path.join(self.dir, name)
                if text is not None:
                    with open(path, "w") as f:
                        f.write(text)
                r, page = self.report(path)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
                self.assertIn(name, r.stderr)
                self.assertIsNone(page, "no page for bad input")
        r = subprocess.run([sys.executable, REPORT, self.json_path], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage", r.stderr)

    def test_hgrm_parser(self):
        report = load_report_module()
        path = os.path.join(self.dir, "results", "closed-w1-64B.hgrm")
        with open(path) as f:
            text = f.read()
        rows, footer = report.parse_hgrm(text)
        data_lines = [l for l in text.splitlines() if re.match(r"\s*\d+\.\d{3} [01]\.\d{12} ", l)]
        self.assertEqual(len(rows), len(data_lines), "every row, the garbage line skipped")
        self.assertEqual(rows[0][1], 0.0)
        self.assertEqual(rows[-1][1], 1.0)
        self.assertEqual([p for _, p in rows], sorted(p for _, p in rows))
        self.assertEqual(footer["total count"], self.doc["runs"][0]["commits"])
        self.assertAlmostEqual(footer["max"], rows[-1][0], places=3)
        self.assertIn("mean", footer)
        self.assertEqual(report.parse_hgrm("garbage\n1.0\nx y z\n#[broken\n-1 0.5 3\n5 1.5 2\n")[0], [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
