#!/usr/bin/env python3
"""report.py RESULT.json OUT.html: fastzab-bench's JSON results (bench/SCHEMA.md) as one
self-contained HTML page.

The page holds the runs table, the floors, the failover trials and their summary, the waterfall
and the comparison with a baseline when the JSON has them, and the machine, build and config. The
pictures are drawn by gnuplot as inline SVG: a latency plot per run (and all runs together) from
the HdrHistogram percentile-distribution files named in runs[].histogram_file (a relative name is
taken from RESULT.json's directory, else, with a note, from the current directory; without a
file, from the JSON's own percentiles), and the
distribution of the failover times per window. Without gnuplot the page has no pictures and says
so.

Exit status: 0 when the page was written (with or without pictures), 1 when OUT.html cannot be
written, 2 for a wrong command line or a RESULT.json that is not fastzab-bench's JSON.
Python 3 standard library only, plus the gnuplot program (Debian: gnuplot-nox).
"""
import html
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys

SCHEMA_VERSION = 1
GNUPLOT_TIMEOUT_S = 60
MAX_POINTS = 2000  # per plotted series; longer histogram files are thinned evenly

PERCENTILE_COLUMNS = (("min", "min"), ("mean", "mean"), ("p50", "p50"), ("p90", "p90"), ("p99", "p99"),
                      ("p999", "p99.9"), ("p9999", "p99.99"), ("max", "max"))
KNOWN_TOP_LEVEL = {"schema", "schema_version", "started_at", "duration_s", "command", "machine", "build",
                   "config", "floors", "runs", "failover", "waterfall", "compare", "notes"}


class BadInput(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Input

def load_result(path):
    """The JSON document at path; BadInput (one line) when it is not fastzab-bench's JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise BadInput(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise BadInput(f"{path}: not UTF-8 text: {e.reason}") from None
    except json.JSONDecodeError as e:
        raise BadInput(f"{path}: not JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise BadInput(f"{path}: not JSON: nested too deeply") from None
    if not isinstance(doc, dict):
        raise BadInput(f"{path}: not fastzab-bench's JSON: the top level is a {type(doc).__name__}, "
                       "not an object")
    if doc.get("schema") != "fastzab-bench":
        raise BadInput(f"{path}: not fastzab-bench's JSON: \"schema\" is {json.dumps(doc.get('schema'))}, "
                       "not \"fastzab-bench\"")
    for key, kind in (("runs", list), ("notes", list), ("command", list), ("machine", dict),
                      ("build", dict), ("config", dict), ("floors", dict)):
        if key in doc and doc[key] is not None and not isinstance(doc[key], kind):
            raise BadInput(f"{path}: \"{key}\" should be {'a list' if kind is list else 'an object'}")
    for key in ("failover", "waterfall", "compare"):
        if doc.get(key) is not None and not isinstance(doc[key], dict):
            raise BadInput(f"{path}: \"{key}\" should be an object or null")
    return doc


def obj(v):
    return v if isinstance(v, dict) else {}


def arr(v):
    return v if isinstance(v, list) else []


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def parse_hgrm(text):
    """HdrHistogram percentile-distribution text -> (rows, footer). rows: [(value, percentile)]
    in file order, percentile a fraction 0..1; footer: {"mean": .., "max": .., "total count": ..}.
    Lines that do not parse (the header, blank lines, garbage) are skipped."""
    rows, footer = [], {}
    for line in text.splitlines():
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            m = re.match(r"#\s*\[(.*)\]\s*$", s)
            if m:
                for part in m.group(1).split(","):
                    name, eq, value = part.partition("=")
                    if not eq:
                        continue
                    try:
                        footer[" ".join(name.split()).lower()] = float(value)
                    except ValueError:
                        pass
            continue
        fields = re.split(r"[\s,]+", s)
        if len(fields) < 2:
            continue
        try:
            value, pct = float(fields[0]), float(fields[1])
        except ValueError:
            continue
        if not (math.isfinite(value) and math.isfinite(pct)) or value < 0 or not 0 <= pct <= 1:
            continue
        rows.append((value, pct))
    return rows, footer


# ---------------------------------------------------------------------------------------------
# Formatting

def esc(v):
    return html.escape(str(v), quote=True)


def sig(v):
    """A measurement, with about three significant digits."""
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    if a == 0:
        return "0"
    return f"{v:.3g}"


def fmt_int(v):
    return f"{v:,}" if isinstance(v, int) else sig(v)


def fmt_ratio(v):
    return f"{v:.2f}" if abs(v) < 100 else sig(v)


MISSING = object()


def value_html(v, fmt=sig):
    """A value for a table cell: numbers through fmt, null as n/a, absent as a dash."""
    if v is MISSING:
        return '<span class="missing" title="not in the JSON">&#8212;</span>'
    if v is None:
        return '<span class="null" title="null: could not be measured (see the notes)">n/a</span>'
    if isinstance(v, bool):
        return "yes" if v else "no"
    if is_num(v):
        return esc(fmt(v))
    if isinstance(v, (dict, list)):
        return f"<code>{esc(json.dumps(v))}</code>"
    return esc(v)


def get(d, key):
    return d.get(key, MISSING) if isinstance(d, dict) else MISSING


def td(v, fmt=sig, cls="num"):
    return f'<td class="{cls}">{value_html(v, fmt)}</td>'


def td_text(v):
    return f"<td>{value_html(v)}</td>"


def table(headers, rows, cls=""):
    """headers: [(text, is_numeric)]; rows: lists of ready <td> strings."""
    out = [f'<table class="{cls}"><thead><tr>']
    for text, numeric in headers:
        out.append(f'<th class="{"num" if numeric else ""}">{text}</th>')
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>" + "".join(r) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def kv_table(d, order=()):
    keys = [k for k in order if k in d] + [k for k in d if k not in order]
    rows = [[f"<th>{esc(k)}</th>", f"<td>{value_html(d[k], fmt_plain)}</td>"] for k in keys]
    return '<table class="kv"><tbody>' + "".join("<tr>" + "".join(r) + "</tr>" for r in rows) + "</tbody></table>"


def fmt_plain(v):
    return f"{v:,}" if isinstance(v, int) else f"{v:,g}"


def percentile_cells(p, unit):
    p = obj(p) if p is not None else None
    if p is None:
        return [td(None, fmt_int)] + [td(None) for _ in PERCENTILE_COLUMNS]
    return [td(get(p, "count"), fmt_int)] + [td(get(p, f"{k}_{unit}")) for k, _ in PERCENTILE_COLUMNS]


def percentile_headers(unit):
    return [("count", True)] + [(f"{label} ({unit})", True) for _, label in PERCENTILE_COLUMNS]


# ---------------------------------------------------------------------------------------------
# Pictures

class Plotter:
    """Runs gnuplot once per picture and returns inline SVG (ids made unique per picture)."""

    def __init__(self, program):
        self.program = program
        self.count = 0
        self.failures = []

    def svg(self, name, script):
        """The SVG markup for script, or None (the reason is in self.failures)."""
        if self.program is None:
            return None
        head = ('set terminal svg size 760,420 font "sans,11" noenhanced background rgb "white"\n'
                "set encoding utf8\nset output\n")
        try:
            r = subprocess.run([self.program], input=(head + script).encode("utf-8"), capture_output=True,
                               timeout=GNUPLOT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.failures.append(f"{name}: gnuplot took more than {GNUPLOT_TIMEOUT_S} s")
            return None
        except OSError as e:
            self.failures.append(f"{name}: cannot run gnuplot: {e.strerror or e}")
            return None
        out = r.stdout.decode("utf-8", "replace")
        start = out.find("<svg")
        end = out.rfind("</svg>")
        if r.returncode != 0 or start < 0 or end < 0:
            err = next((l.strip() for l in r.stderr.decode("utf-8", "replace").splitlines() if l.strip()), "")
            self.failures.append(f"{name}: gnuplot failed (exit {r.returncode}){': ' + err if err else ''}")
            return None
        self.count += 1
        return self._unique_ids(out[start:end + len("</svg>")], f"fzp{self.count}-")

    @staticmethod
    def _unique_ids(svg, prefix):
        # Several SVGs in one page share one id namespace: gnuplot names its markers and filters
        # alike in every picture, so each picture's ids get a prefix of their own.
        svg = re.sub(r"""\bid=(["'])([^"']+)\1""", lambda m: f"id={m[1]}{prefix}{m[2]}{m[1]}", svg)
        svg = re.sub(r"""\bhref=(["'])#([^"']+)\1""", lambda m: f"href={m[1]}#{prefix}{m[2]}{m[1]}", svg)
        return re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m[1]})", svg)


def gp_str(s):
    """s as a gnuplot single-quoted string: no escapes, no backquote substitution there."""
    s = re.sub(r"[\x00-\x1f\x7f`]", " ", str(s))
    return "'" + s.replace("'", "''") + "'"


def datablock(name, rows):
    return f"${name} << EOD\n" + "".join(" ".join(repr(float(x)) for x in r) + "\n" for r in rows) + "EOD\n"


def thin(points):
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / (MAX_POINTS - 1)
    return [points[int(i * step)] for i in range(MAX_POINTS - 1)] + [points[-1]]


def latency_series(run, json_dir):
    """(points, source, problem, from_json) for a run's latency plot: points [(1/(1-p), value_us)]
    for p < 1, from its histogram file, else from the JSON's percentiles (from_json True).
    histogram_file, when relative, is taken from the JSON's directory (json_dir)."""
    problem = None
    hf = run.get("histogram_file")
    if isinstance(hf, str) and hf:
        path = hf if os.path.isabs(hf) else os.path.join(json_dir, hf)
        moved = ""
        if not os.path.exists(path) and not os.path.isabs(hf) and os.path.isfile(hf):
            # Not where it should be (beside the JSON), but where the current directory puts it:
            # draw it, and say so.
            path = hf
            moved = (f"{hf} is not relative to the JSON's directory; read it relative to the current "
                     "directory instead")
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                rows, footer = parse_hgrm(f.read())
            pts = [(1 / (1 - p), v) for v, p in rows if p < 1 and v > 0]
            if pts:
                extra = ""
                if is_num(footer.get("total count")):
                    extra += f", {int(footer['total count']):,} values"
                if is_num(footer.get("max")):
                    extra += f", max {sig(footer['max'])} µs"
                return thin(pts), f"from {os.path.basename(hf)}{extra}", moved or None, False
            problem = f"{hf}: no percentile rows in it"
        except OSError as e:
            problem = f"{hf}: cannot read ({e.strerror or e})"
    lat = obj(run.get("latency_us"))
    pts = []
    for key, p in (("min_us", 0.0), ("p50_us", 0.5), ("p90_us", 0.9), ("p99_us", 0.99), ("p999_us", 0.999),
                   ("p9999_us", 0.9999)):
        v = lat.get(key)
        if is_num(v) and v > 0:
            pts.append((1 / (1 - p), v))
    why = "no histogram file" if problem is None else problem
    return pts, f"from the JSON's percentiles ({why})", problem, True


def percentile_axis(max_x):
    """gnuplot commands for a log x axis of 1/(1-p), labelled as percentiles."""
    decades = max(2, math.ceil(math.log10(max(max_x, 10)) - 1e-9))
    tics = []
    for d in range(decades + 1):
        p = 100 * (1 - 10 ** -d)
        label = "0%%" if d == 0 else (f"{p:.{max(0, d - 2)}f}%%")
        tics.append(f'"{label}" {10 ** d:g}')
    return (f"set logscale x 10\nset xrange [1:{10 ** decades:g}]\nset xtics ({', '.join(tics)})\n"
            "set mxtics 10\nset xlabel 'percentile (log scale of 1/(1-p))'\n")


def latency_picture(plotter, title, series):
    """series: [(label, points, with_points)]; one curve each."""
    series = [s for s in series if s[1]]
    if not series:
        return None
    script = ""
    max_x = 10
    for i, (_, pts, _) in enumerate(series):
        script += datablock(f"d{i}", pts)
        max_x = max(max_x, max(x for x, _ in pts))
    script += percentile_axis(max_x)
    script += (f"set title {gp_str(title)}\nset ylabel 'latency (µs, log scale)'\nset logscale y 10\n"
               "set grid xtics ytics mytics\nset key left top\n")
    plots = []
    for i, (label, _, with_points) in enumerate(series):
        style = "linespoints pt 7 ps 0.6" if with_points else "lines"
        plots.append(f"$d{i} using 1:2 with {style} lw 1.5 title {gp_str(label)}")
    script += "plot " + ", \\\n     ".join(plots) + "\n"
    return plotter.svg(title, script)


def cdf_picture(plotter, title, xlabel, groups):
    """groups: [(label, values)]; an empirical CDF (steps through the sorted values) each."""
    groups = [(label, sorted(v)) for label, v in groups if v]
    if not groups:
        return None
    script = ""
    plots = []
    for i, (label, vals) in enumerate(groups):
        n = len(vals)
        steps = [(vals[0], 0.0)] + [(v, (k + 1) / n) for k, v in enumerate(vals)]
        script += datablock(f"s{i}", steps)
        plots.append(f"$s{i} using 1:2 with steps lw 1.5 lc {i + 1} title {gp_str(f'{label} (n={n})')}")
        plots.append(f"$s{i} every ::1 using 1:2 with points pt 7 ps 0.6 lc {i + 1} notitle")
    lo, hi = groups[0][1][0], groups[0][1][-1]
    for _, vals in groups:
        lo, hi = min(lo, vals[0]), max(hi, vals[-1])
    pad = (hi - lo) * 0.05 or max(abs(hi) * 0.05, 1.0)
    script += (f"set title {gp_str(title)}\nset xlabel {gp_str(xlabel)}\n"
               "set ylabel 'fraction of trials at or below'\nset yrange [0:1.05]\n"
               f"set xrange [{max(0.0, lo - pad)!r}:{hi + pad!r}]\n"
               "set grid\nset key right bottom\n")
    script += "plot " + ", \\\n     ".join(plots) + "\n"
    return plotter.svg(title, script)


def figure(svg, caption, plotter):
    if svg is None:
        why = "gnuplot not found" if plotter.program is None else "gnuplot failed, see the report notes"
        return f'<figure class="nopicture"><figcaption>{esc(caption)} (no picture: {why})</figcaption></figure>'
    return f"<figure>{svg}<figcaption>{esc(caption)}</figcaption></figure>"


# ---------------------------------------------------------------------------------------------
# Sections

def section_runs(doc):
    runs = [obj(r) for r in arr(doc.get("runs"))]
    if not runs:
        return "<p>No runs.</p>"
    headers = [("run", False), ("workload", False), ("window / rate", True), ("value B", True),
               ("commits", True), ("errors", True), ("commits/s", True), ("MB/s", True),
               ("p50 (µs)", True), ("p90 (µs)", True), ("p99 (µs)", True), ("p99.9 (µs)", True),
               ("p99.99 (µs)", True), ("max (µs)", True), ("CPU µs/commit", True),
               ("ctx switches/commit", True), ("syscalls/commit", True), ("mean batch B", True),
               ("p50 / floor", True), ("commits/s / floor", True)]
    rows = []
    for r in runs:
        lat = r.get("latency_us")
        lat = obj(lat) if lat is not None else None
        fr = r.get("floor_ratios")
        fr = obj(fr) if fr is not None else None
        if r.get("workload") == "open" or (r.get("window") is None and is_num(r.get("rate_per_s"))):
            wr = f"{value_html(r.get('rate_per_s'), fmt_plain)}/s"
        elif is_num(r.get("window")):
            wr = f"w={value_html(r.get('window'), fmt_plain)}"
        else:
            wr = value_html(get(r, "window"))
        rows.append([
            f'<td class="name">{value_html(get(r, "name"))}</td>', td_text(get(r, "workload")),
            f'<td class="num">{wr}</td>', td(get(r, "value_bytes"), fmt_int),
            td(get(r, "commits"), fmt_int), td(get(r, "errors"), fmt_int),
            td(get(r, "commits_per_s")), td(get(r, "mb_per_s")),
            *[td(None if lat is None else get(lat, k)) for k in
              ("p50_us", "p90_us", "p99_us", "p999_us", "p9999_us", "max_us")],
            td(get(r, "cpu_us_per_commit")), td(get(r, "ctx_switches_per_commit")),
            td(get(r, "syscalls_per_commit")), td(get(r, "mean_batch_bytes")),
            td(None if fr is None else get(fr, "p50_to_floor"), fmt_ratio),
            td(None if fr is None else get(fr, "commits_per_s_to_floor"), fmt_ratio),
        ])
    return table(headers, rows, "runs")


def section_floors(doc):
    floors = obj(doc.get("floors"))
    rows = []
    rt = floors.get("round_trip")
    if isinstance(rt, dict):
        what = f"{value_html(get(rt, 'transport'))}, poll {value_html(get(rt, 'poll'))}"
        rows.append(["<td>round trip</td>", f"<td>{what}</td>", td(get(rt, "samples"), fmt_int),
                     *percentile_cells(rt.get("latency_us"), "us")])
    elif "round_trip" in floors:
        rows.append(["<td>round trip</td>", "<td>not measured (see the notes)</td>", td(None, fmt_int),
                     *percentile_cells(None, "us")])
    for f in arr(floors.get("fdatasync")):
        f = obj(f)
        rows.append(["<td>append + fdatasync</td>", f"<td>{value_html(get(f, 'batch_bytes'), fmt_int)} B batch</td>",
                     td(get(f, "samples"), fmt_int), *percentile_cells(f.get("latency_us"), "us")])
    if not rows:
        return "<p>No floors measured.</p>"
    headers = [("floor", False), ("of", False), ("samples", True)] + percentile_headers("µs")
    return table(headers, rows, "floors")


def section_failover(doc, plotter):
    fo = doc.get("failover")
    if not isinstance(fo, dict):
        return "<p>No failover trial ran.</p>"
    out = []
    # What started each trial: kill_to_commit_ms counts from it (results before "kind" were kills).
    cause, subject = {"stop": ("SIGSTOP", "stopped server"),
                      "transfer": ("transfer request", "leader asked")}.get(fo.get("kind"), ("SIGKILL", "killed server"))
    # A refused column only when a transfer was refused (kills never are).
    refusals = any(isinstance(t, dict) and t.get("refused") is True for t in arr(fo.get("trials")))
    summary = [obj(s) for s in arr(fo.get("summary"))]
    if summary:
        rows = []
        for s in summary:
            for metric in ("kill_to_commit_ms", "unavailable_ms"):
                rows.append([td(get(s, "window"), fmt_int), td_text(metric), td(get(s, "trials"), fmt_int),
                             *([td(get(s, "refused"), fmt_int)] if refusals else []),
                             *percentile_cells(s.get(metric, {}), "ms")])
        out.append("<h3>Summary</h3>")
        if refusals:
            out.append("<p>The percentiles leave out the refused trials.</p>")
        out.append(table([("window", True), ("metric", False), ("trials", True)] +
                         ([("refused", True)] if refusals else []) + percentile_headers("ms"),
                         rows, "failover-summary"))
    trials = [obj(t) for t in arr(fo.get("trials"))]
    if trials:
        rows = [[td(i, fmt_int), td(get(t, "window"), fmt_int), td(get(t, "killed_server"), fmt_int),
                 td(get(t, "new_leader"), fmt_int), td(get(t, "kill_to_commit_ms")), td(get(t, "unavailable_ms")),
                 *([td_text(get(t, "refused"))] if refusals else [])]
                for i, t in enumerate(trials, 1)]
        out.append("<h3>Trials</h3>")
        out.append(table([("trial", True), ("window", True), (subject, True), ("new leader", True),
                          (f"{cause} to commit (ms)", True), ("unavailable (ms)", True)] +
                         ([("refused", False)] if refusals else []), rows, "failover-trials"))
        for metric, title, xlabel in (
                ("kill_to_commit_ms", f"failover: {cause} to the first write acknowledged by the new leader",
                 f"{cause} to first commit (ms)"),
                ("unavailable_ms", "failover: longest gap between two acknowledgements",
                 "longest gap without acknowledgements (ms)")):
            by_window = {}
            for t in trials:
                if is_num(t.get(metric)) and t.get("refused") is not True:
                    by_window.setdefault(t.get("window"), []).append(float(t[metric]))
            groups = [(f"window {w}", v) for w, v in sorted(by_window.items(), key=lambda kv: str(kv[0]).zfill(12))]
            if groups:
                svg = cdf_picture(plotter, title, xlabel, groups)
                out.append(figure(svg, f"{title}: cumulative distribution per window", plotter))
    if not out:
        return "<p>The failover section is empty.</p>"
    return "\n".join(out)


def section_waterfall(doc):
    wf = doc.get("waterfall")
    if not isinstance(wf, dict):
        return "<p>No waterfall (fastzab-bench --trace records one).</p>"
    rows = [[td_text(get(obj(s), "stage")), td(get(obj(s), "p50_us")), td(get(obj(s), "p90_us"))]
            for s in arr(wf.get("stages"))]
    rows.append(['<td class="total">total</td>', td(get(wf, "total_p50_us")), td(MISSING)])
    return (f"<p>Window-1 writes stamped at each stage: {value_html(get(wf, 'samples'), fmt_int)} samples.</p>"
            + table([("stage", False), ("p50 (µs)", True), ("p90 (µs)", True)], rows, "waterfall"))


def section_compare(doc):
    cmp_ = doc.get("compare")
    if not isinstance(cmp_, dict):
        return "<p>No baseline (fastzab-bench --compare BASE.json compares with one).</p>"
    rows = []
    for r in arr(cmp_.get("ratios")):
        r = obj(r)
        ratio = r.get("ratio")
        cls = "num"
        if is_num(ratio) and abs(ratio - 1) >= 0.05:
            cls = "num changed"
        rows.append([td_text(get(r, "run")), td_text(get(r, "metric")), td(get(r, "baseline")),
                     td(get(r, "current")), td(get(r, "ratio"), fmt_ratio, cls)])
    head = (f"<p>Baseline {value_html(get(cmp_, 'baseline'))} at git "
            f"<code>{value_html(get(cmp_, 'baseline_git_rev'))}</code>; ratio = current / baseline "
            "(highlighted when it is 5 % or more away from 1).</p>")
    if not rows:
        return head + "<p>No run and metric in common.</p>"
    return head + table([("run", False), ("metric", False), ("baseline", True), ("current", True),
                         ("ratio", True)], rows, "compare")


def section_latency_pictures(doc, json_dir, plotter, report_notes):
    runs = [obj(r) for r in arr(doc.get("runs"))]
    series = []
    for i, r in enumerate(runs):
        name = r.get("name") if isinstance(r.get("name"), str) else f"run {i + 1}"
        pts, source, problem, from_json = latency_series(r, json_dir)
        if problem and from_json:
            report_notes.append(f"run {name}: histogram {problem}; its plot uses the JSON's percentiles")
        elif problem:
            report_notes.append(f"run {name}: histogram {problem}")
        series.append((name, pts, source, from_json))
    drawable = [s for s in series if s[1]]
    if not drawable:
        return "<p>No latency to draw.</p>"
    out = []
    if len(drawable) > 1:
        svg = latency_picture(plotter, "latency of every run", [(n, p, j) for n, p, _, j in drawable])
        out.append(figure(svg, "Latency of every run, by percentile.", plotter))
    for name, pts, source, from_json in series:
        if not pts:
            out.append(f"<p>{esc(name)}: no latency to draw.</p>")
            continue
        svg = latency_picture(plotter, f"latency: {name}", [(name, pts, from_json)])
        out.append(figure(svg, f"{name}: latency by percentile, {source}.", plotter))
    return "\n".join(out)


def section_setup(doc):
    out = []
    for key, title, order in (
            ("machine", "Machine", ("hostname", "kernel", "cpus", "cpu_model", "memory_bytes")),
            ("build", "Build", ("git_rev", "git_dirty", "buildtype", "compiler", "fastzab_version")),
            ("config", "Config", ("mode", "servers", "groups", "transport", "poll", "sync", "target",
                                  "connections", "tick_ms"))):
        d = doc.get(key)
        out.append(f'<div class="setup"><h3>{title}</h3>'
                   + (kv_table(d, order) if isinstance(d, dict) else "<p>Not in the JSON.</p>") + "</div>")
    cmd = doc.get("command")
    cmd_text = shlex.join(str(c) for c in cmd) if isinstance(cmd, list) else "(not in the JSON)"
    run = (f"<p>Started {value_html(get(doc, 'started_at'))}, {value_html(get(doc, 'duration_s'))} s in all; "
           f"schema_version {value_html(get(doc, 'schema_version'), fmt_plain)}.</p>")
    return (run + f"<p>Command: <code>{esc(cmd_text)}</code></p>"
            + '<div class="setups">' + "".join(out) + "</div>")


def section_extra(doc):
    extra = {k: v for k, v in doc.items() if k not in KNOWN_TOP_LEVEL}
    if not extra:
        return ""
    return ("<h2>Other fields</h2><details><summary>Fields this report does not know "
            f"({esc(', '.join(sorted(extra)))})</summary><pre>{esc(json.dumps(extra, indent=2))}</pre></details>")


CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; vertical-align: top; }
thead th { background: #f0f0f0; position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv th { text-align: left; background: #f7f7f7; font-weight: normal; }
.null, .missing { color: #999; }
td.changed { background: #fff3c4; font-weight: bold; }
td.total { font-weight: bold; }
.scroll { overflow-x: auto; }
.notes { background: #fff8e1; border: 1px solid #e0c870; padding: 0.4em 1em; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; }
.setups { display: flex; flex-wrap: wrap; gap: 2em; }
code { font-size: 0.95em; }
"""


def render(doc, json_path, plotter):
    json_dir = os.path.dirname(os.path.abspath(json_path))
    report_notes = []
    if plotter.program is None:
        report_notes.append("gnuplot was not found: this report has no pictures "
                            "(install gnuplot, e.g. Debian's gnuplot-nox, and run report.py again).")
    if doc.get("schema_version") != SCHEMA_VERSION:
        report_notes.append(f"schema_version is {json.dumps(doc.get('schema_version'))}; this report knows "
                            f"version {SCHEMA_VERSION}: what it does not know is shown raw or left out.")
    pictures = section_latency_pictures(doc, json_dir, plotter, report_notes)
    failover = section_failover(doc, plotter)
    report_notes += [f"picture {f}" for f in plotter.failures]

    build = obj(doc.get("build"))
    config = obj(doc.get("config"))
    rev = build.get("git_rev")
    rev_text = (rev[:12] if isinstance(rev, str) else "?") + (" (dirty)" if build.get("git_dirty") is True else "")
    subtitle = " · ".join(esc(x) for x in (
        doc.get("started_at", "?"), f"git {rev_text}", f"{config.get('mode', '?')}",
        f"{config.get('servers', '?')} servers", f"transport {config.get('transport', '?')}",
        f"poll {config.get('poll', '?')}", f"sync {config.get('sync', '?')}", f"target {config.get('target', '?')}"))
    notes = [n for n in arr(doc.get("notes"))]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>fastzab-bench report: {esc(doc.get('started_at', os.path.basename(json_path)))}</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>fastzab-bench report</h1>",
        f"<p>{subtitle}</p>",
    ]
    if report_notes:
        parts.append('<div class="notes report-notes"><strong>About this report</strong><ul>'
                     + "".join(f"<li>{esc(n)}</li>" for n in report_notes) + "</ul></div>")
    parts += [
        "<h2>Runs</h2>", '<div class="scroll">', section_runs(doc), "</div>",
        "<p>Latency: open loop from the scheduled send time (coordinated omission corrected), closed loop from "
        "the actual send. CPU and context switches: every server process. Floor ratios: this run / its floor "
        "(see Floors).</p>",
        "<h2>Latency</h2>", pictures,
        "<h2>Floors</h2>", '<div class="scroll">', section_floors(doc), "</div>",
        "<h2>Failover</h2>", '<div class="scroll">', failover, "</div>",
        "<h2>Waterfall</h2>", section_waterfall(doc),
        "<h2>Compared with a baseline</h2>", '<div class="scroll">', section_compare(doc), "</div>",
        "<h2>Notes</h2>",
        ("<ul>" + "".join(f"<li>{value_html(n)}</li>" for n in notes) + "</ul>") if notes else "<p>None.</p>",
        "<h2>Machine, build and config</h2>", section_setup(doc),
        section_extra(doc),
        f'<p class="footer"><small>Written by bench/cluster/report.py from {esc(os.path.basename(json_path))}.'
        '</small></p>',
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(f"usage: {os.path.basename(argv[0])} RESULT.json OUT.html", file=sys.stderr)
        return 0 if len(argv) == 2 and argv[1] in ("-h", "--help") else 2
    json_path, out_path = argv[1], argv[2]
    try:
        doc = load_result(json_path)
    except BadInput as e:
        print(f"report.py: error: {e}", file=sys.stderr)
        return 2
    plotter = Plotter(shutil.which("gnuplot"))
    page = render(doc, json_path, plotter)
    tmp = f"{out_path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(page)
        os.replace(tmp, out_path)
    except OSError as e:
        print(f"report.py: error: {out_path}: cannot write: {e.strerror or e}", file=sys.stderr)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
