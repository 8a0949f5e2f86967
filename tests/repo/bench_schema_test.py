#!/usr/bin/env python3
"""bench/schema.json is the contract of bench/SCHEMA.md, and fastzab-bench's output keeps it.

Checks that the schema is a valid draft 2020-12 schema; that a complete example document (one
per SCHEMA.md, below) validates; that removing any single required field fails validation (every
required path of the example, found by walking the schema along the example); that wrong types,
enums and constants fail; that null is accepted exactly where SCHEMA.md allows it; that
SCHEMA.md and schema.json name the same fields. When the environment variable
FASTZAB_BENCH_JSON is set (a meson test sets it to a file fastzab-bench wrote), that file must
exist and validate.

Needs python3-jsonschema (scripts/lib.sh installs it; Debian 12 has 4.10).
Run from anywhere: python3 tests/repo/bench_schema_test.py
"""
import copy
import json
import os
import re
import unittest

try:
    import jsonschema
except ImportError:  # reported by the tests themselves, so that the report test can import this
    jsonschema = None

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SCHEMA_PATH = os.path.join(ROOT, "bench", "schema.json")
SCHEMA_MD_PATH = os.path.join(ROOT, "bench", "SCHEMA.md")

PERCENTILE_KEYS = ("min", "mean", "p50", "p90", "p99", "p999", "p9999", "max")

# Where SCHEMA.md allows null ("[]" stands for every element of an array). Nothing else may be null.
NULLABLE = {
    "cold_start_ms",
    "failover",
    "waterfall",
    "compare",
    "runs[].window",
    "runs[].rate_per_s",
    "floors.round_trip",
    "runs[].cpu_us_per_commit",
    "runs[].ctx_switches_per_commit",
    "runs[].syscalls_per_commit",
    "runs[].allocations_per_commit",
    "runs[].mean_batch_bytes",
    "runs[].floor_ratios.p50_to_floor",
    "runs[].floor_ratios.commits_per_s_to_floor",
    "runs[].histogram_file",
}


def percentiles(unit, count, *values):
    """A PERCENTILES (unit "us") or PERCENTILES_MS (unit "ms") object: count, then min, mean,
    p50, p90, p99, p99.9, p99.99, max."""
    assert len(values) == len(PERCENTILE_KEYS)
    out = {"count": count}
    out.update({f"{k}_{unit}": float(v) for k, v in zip(PERCENTILE_KEYS, values)})
    return out


def run(name, workload, window, rate, value_bytes, commits, latency, cpu, ctx, syscalls, batch,
        p50_ratio, cps_ratio, histogram):
    measured_s = 5.0
    return {
        "name": name,
        "workload": workload,
        "window": window,
        "rate_per_s": rate,
        "value_bytes": value_bytes,
        "warmup_s": 1.0,
        "measured_s": measured_s,
        "commits": commits,
        "errors": 0,
        "commits_per_s": commits / measured_s,
        "mb_per_s": round(commits / measured_s * value_bytes / 1e6, 4),
        "latency_us": percentiles("us", commits, *latency),
        "cpu_us_per_commit": cpu,
        "ctx_switches_per_commit": ctx,
        "syscalls_per_commit": syscalls,
        "allocations_per_commit": 0.004,
        "mean_batch_bytes": batch,
        "floor_ratios": {"p50_to_floor": p50_ratio, "commits_per_s_to_floor": cps_ratio},
        "histogram_file": histogram,
    }


def example_document():
    """A complete, realistic fastzab-bench document: every field present, none of the optional
    parts (failover, waterfall, compare) null. A fresh copy on every call."""
    return {
        "schema": "fastzab-bench",
        "schema_version": 1,
        "started_at": "2026-12-04T14:31:50Z",
        "duration_s": 61.2,
        "command": ["fastzab-bench", "--processes", "--servers", "3", "--json", "bench-out/result.json",
                    "--failover", "20", "--trace", "--compare", "base.json"],
        "machine": {
            "hostname": "bench-1",
            "kernel": "6.1.0-28-amd64",
            "cpus": 2,
            "cpu_model": "Intel(R) Xeon(R) CPU @ 2.20GHz",
            "memory_bytes": 25769803776,
        },
        "build": {
            "git_rev": "1e60291c0ffee5a1d2b3c4d5e6f708192a3b4c5d",
            "git_dirty": False,
            "buildtype": "release",
            "compiler": "gcc 12.2.0",
            "fastzab_version": "0.1.0",
        },
        "config": {
            "mode": "processes",
            "servers": 3,
            "groups": 1,
            "transport": "uring",
            "busy_servers": 0,
            "poll": "blocking",
            "sync": "fdatasync",
            "target": "leader",
            "connections": 1,
            "tick_ms": 100,
            "server_options": ["electionFinalizeWaitMs=10"],
        },
        "floors": {
            "round_trip": {
                "transport": "uring",
                "poll": "blocking",
                "samples": 20000,
                "latency_us": percentiles("us", 20000, 18.2, 24.9, 23.5, 29.8, 41.0, 95.0, 240.0, 610.0),
            },
            "fdatasync": [
                {"batch_bytes": 4096, "samples": 500,
                 "latency_us": percentiles("us", 500, 61.0, 92.4, 88.0, 120.0, 190.0, 410.0, 410.0, 410.0)},
                {"batch_bytes": 65536, "samples": 500,
                 "latency_us": percentiles("us", 500, 102.0, 141.7, 135.0, 176.0, 260.0, 590.0, 590.0, 590.0)},
            ],
        },
        "runs": [
            run("closed w=1 64B", "closed", 1, None, 64, 21410,
                (98.0, 233.1, 228.0, 262.0, 340.0, 820.0, 1900.0, 2450.0),
                41.8, 6.2, 9.1, 182.0, 1.6, 0.38, "closed-w1-64B.hgrm"),
            run("closed w=64 64B", "closed", 64, None, 64, 412345,
                (30.1, 150.2, 140.0, 190.0, 260.0, 900.0, 2100.0, 3400.0),
                21.4, 1.9, 3.2, 5120.0, 1.1, 0.4, "bench-out/closed-w64-64B.hgrm"),
            run("open 20000/s 1KiB", "open", None, 20000.0, 1024, 99987,
                (101.0, 260.4, 244.0, 310.0, 455.0, 1400.0, 3900.0, 5200.0),
                30.2, 3.4, 4.8, 2300.0, 2.3, 0.52, "open-r20000-1KiB.hgrm"),
        ],
        "failover": {
            "kind": "kill",
            "trials": [
                {"window": 1, "killed_server": 2, "new_leader": 3, "kill_to_commit_ms": 41.2, "unavailable_ms": 45.0, "refused": False},
                {"window": 1, "killed_server": 3, "new_leader": 1, "kill_to_commit_ms": 38.7, "unavailable_ms": 42.9, "refused": False},
                {"window": 64, "killed_server": 1, "new_leader": 2, "kill_to_commit_ms": 52.3, "unavailable_ms": 57.1, "refused": False},
                {"window": 64, "killed_server": 2, "new_leader": 3, "kill_to_commit_ms": 47.8, "unavailable_ms": 50.2, "refused": False},
            ],
            "summary": [
                {"window": 1, "trials": 2, "refused": 0,
                 "kill_to_commit_ms": percentiles("ms", 2, 38.7, 39.95, 38.7, 41.2, 41.2, 41.2, 41.2, 41.2),
                 "unavailable_ms": percentiles("ms", 2, 42.9, 43.95, 42.9, 45.0, 45.0, 45.0, 45.0, 45.0)},
                {"window": 64, "trials": 2, "refused": 0,
                 "kill_to_commit_ms": percentiles("ms", 2, 47.8, 50.05, 47.8, 52.3, 52.3, 52.3, 52.3, 52.3),
                 "unavailable_ms": percentiles("ms", 2, 50.2, 53.65, 50.2, 57.1, 57.1, 57.1, 57.1, 57.1)},
            ],
        },
        "waterfall": {
            "samples": 500,
            "stages": [
                {"stage": "client to server", "p50_us": 12.0, "p90_us": 20.0},
                {"stage": "propose to send", "p50_us": 4.0, "p90_us": 7.5},
                {"stage": "leader fdatasync", "p50_us": 90.0, "p90_us": 124.0},
                {"stage": "follower ack", "p50_us": 48.0, "p90_us": 66.0},
                {"stage": "commit to reply", "p50_us": 26.0, "p90_us": 31.0},
            ],
            "total_p50_us": 180.0,
        },
        "compare": {
            "baseline": "base.json",
            "baseline_git_rev": "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
            "ratios": [
                {"run": "closed w=64 64B", "metric": "commits_per_s", "baseline": 80000.0,
                 "current": 82469.0, "ratio": 1.03},
                {"run": "closed w=64 64B", "metric": "p99_us", "baseline": 280.0, "current": 260.0,
                 "ratio": 0.93},
            ],
        },
        "cold_start_ms": 412.5,
        "notes": ["syscalls: counted with perf_event_open (perf_event_paranoid=1)"],
    }


def load_schema():
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        return json.load(f)


def resolve(node, root):
    """node with a local "$ref" replaced by its target (the node's own keywords win)."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local references are expected, not {ref}")
        target = root
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def walk_required(schema, instance, root=None, path=()):
    """(present, missing): the paths of every required field of instance, walking schema along
    instance (objects through properties, arrays through items); missing lists required fields
    instance lacks. A path is a tuple of keys and array indices."""
    root = schema if root is None else root
    node = resolve(schema, root)
    present, missing = [], []
    if isinstance(instance, dict):
        props = node.get("properties", {})
        for key in node.get("required", []):
            if key not in instance:
                missing.append(path + (key,))
                continue
            present.append(path + (key,))
            if key in props:
                p, m = walk_required(props[key], instance[key], root, path + (key,))
                present += p
                missing += m
    elif isinstance(instance, list) and "items" in node:
        for i, item in enumerate(instance):
            p, m = walk_required(node["items"], item, root, path + (i,))
            present += p
            missing += m
    return present, missing


def schema_objects(node, root, where=""):
    """(where, object schema) for every schema in node with "properties", "where" being a
    SCHEMA.md-like path ("runs[].floor_ratios"). Conditionals (if/then/else) are skipped: they
    narrow types, they declare no fields."""
    node = resolve(node, root)
    if "properties" in node:
        yield where, node
        for key, sub in node["properties"].items():
            yield from schema_objects(sub, root, f"{where}.{key}" if where else key)
    if "items" in node:
        yield from schema_objects(node["items"], root, f"{where}[]")


def allows_null(node, root):
    node = resolve(node, root)
    t = node.get("type")
    return t == "null" or (isinstance(t, list) and "null" in t) or node.get("const", 0) is None


def fmt(path):
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def parent_of(doc, path):
    for p in path[:-1]:
        doc = doc[p]
    return doc


class BenchSchemaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if jsonschema is None:
            raise RuntimeError("python3-jsonschema is not installed (scripts/lib.sh installs it: "
                               "apt-get install python3-jsonschema)")
        cls.schema = load_schema()
        cls.validator = jsonschema.Draft202012Validator(cls.schema)

    def errors(self, doc, schema=None):
        v = self.validator if schema is None else jsonschema.Draft202012Validator(schema)
        return list(v.iter_errors(doc))

    def assertValid(self, doc, what="document", schema=None):
        errs = self.errors(doc, schema)
        self.assertEqual([], [f"{fmt(e.absolute_path) or '(root)'}: {e.message}" for e in errs],
                         f"{what} should be valid")

    def test_schema_is_a_valid_draft_2020_12_schema(self):
        self.assertEqual(self.schema.get("$schema"), "https://json-schema.org/draft/2020-12/schema")
        jsonschema.Draft202012Validator.check_schema(self.schema)
        self.assertEqual(self.schema["properties"]["schema_version"], {"const": 1})

    def test_the_example_is_valid(self):
        self.assertValid(example_document(), "the example")

    def test_the_example_has_every_field_and_no_null_part(self):
        doc = example_document()
        present, missing = walk_required(self.schema, doc)
        self.assertEqual([], [fmt(p) for p in missing], "the example lacks required fields")
        for part in ("failover", "waterfall", "compare"):
            self.assertIsNotNone(doc[part], f"{part}: the example must exercise it")
        # The walk reaches every level: into $refs, arrays and nested objects.
        paths = {fmt(p) for p in present}
        for deep in ("runs[2].floor_ratios.commits_per_s_to_floor", "runs[0].latency_us.p9999_us",
                     "floors.fdatasync[1].latency_us.max_us", "floors.round_trip.latency_us.count",
                     "failover.summary[1].unavailable_ms.p9999_ms", "failover.trials[3].new_leader",
                     "waterfall.stages[4].p90_us", "compare.ratios[1].ratio", "machine.memory_bytes"):
            self.assertIn(deep, paths)

    def test_every_documented_field_is_required(self):
        # SCHEMA.md: every field it lists is present (null where allowed), so required == properties.
        for where, node in schema_objects(self.schema, self.schema):
            with self.subTest(object=where or "(root)"):
                self.assertEqual(sorted(node.get("required", [])), sorted(node["properties"]))
                self.assertNotEqual(node.get("additionalProperties"), False,
                                    "compatible additions must stay valid")

    def test_removing_any_required_field_fails(self):
        doc = example_document()
        present, _ = walk_required(self.schema, doc)
        self.assertGreater(len(present), 250, "the walk found too few required fields")
        for path in present:
            with self.subTest(removed=fmt(path)):
                broken = copy.deepcopy(doc)
                del parent_of(broken, path)[path[-1]]
                errs = self.errors(broken)
                self.assertTrue(
                    any(e.validator == "required" and tuple(e.absolute_path) == path[:-1] for e in errs),
                    f"removing {fmt(path)} gave {[(fmt(e.absolute_path), e.message) for e in errs]}")

    def test_wrong_types_enums_and_constants_fail(self):
        wrong_us_for_ms = percentiles("us", 2, 1, 1, 1, 1, 1, 1, 1, 1)
        cases = [
            (("schema",), "zab-bench"),
            (("schema_version",), 2),
            (("schema_version",), "1"),
            (("started_at",), "2026-12-04 14:31:50"),
            (("started_at",), "2026-12-04T14:31:50+01:00"),
            (("duration_s",), "61.2"),
            (("duration_s",), -1.0),
            (("command",), []),
            (("command",), "fastzab-bench --quick"),
            (("machine", "cpus"), 2.5),
            (("machine", "memory_bytes"), None),
            (("build", "git_dirty"), "no"),
            (("build", "git_rev"), None),
            (("config", "mode"), "threads"),
            (("config", "poll"), "spin"),
            (("config", "sync"), "fsync"),
            (("config", "target"), "observer"),
            (("config", "servers"), 0),
            (("floors", "round_trip", "poll"), "Blocking"),
            (("floors", "fdatasync"), {"batch_bytes": 4096}),
            (("floors", "fdatasync", 0, "samples"), 500.5),
            (("runs",), {}),
            (("runs", 0, "workload"), "burst"),
            (("runs", 0, "window"), None),          # closed: a window
            (("runs", 0, "rate_per_s"), 1000.0),    # closed: no rate
            (("runs", 2, "window"), 64),            # open: no window
            (("runs", 2, "rate_per_s"), None),      # open: a rate
            (("runs", 1, "window"), 0),
            (("runs", 1, "commits"), 1.5),
            (("runs", 1, "commits"), -1),
            (("runs", 1, "commits"), True),
            (("runs", 1, "errors"), None),
            (("runs", 1, "commits_per_s"), "82469"),
            (("runs", 1, "syscalls_per_commit"), "n/a"),
            (("runs", 1, "latency_us", "p50_us"), "140"),
            (("runs", 1, "latency_us", "count"), None),
            (("runs", 1, "latency_us"), None),
            (("runs", 1, "floor_ratios"), None),
            (("runs", 1, "floor_ratios", "p50_to_floor"), "1.1"),
            (("runs", 1, "histogram_file"), 3),
            (("runs", 1, "histogram_file"), ""),
            (("failover",), "none"),
            (("failover", "trials"), None),
            (("failover", "trials", 0, "kill_to_commit_ms"), None),
            (("failover", "trials", 0, "killed_server"), "2"),
            (("failover", "summary", 0, "kill_to_commit_ms"), wrong_us_for_ms),
            (("waterfall",), []),
            (("waterfall", "stages", 0, "stage"), 1),
            (("waterfall", "total_p50_us"), None),
            (("compare",), "base.json"),
            (("compare", "ratios", 0, "ratio"), "1.03"),
            (("notes",), "x"),
            (("notes",), [1]),
            (("notes",), None),
        ]
        for path, value in cases:
            with self.subTest(field=fmt(path), value=value):
                broken = example_document()
                parent_of(broken, path)[path[-1]] = value
                errs = self.errors(broken)
                self.assertTrue(errs, f"{fmt(path)} = {value!r} should be invalid")
                # The failure is about that field (or, for a wrong PERCENTILES_MS, inside it).
                self.assertTrue(any(tuple(e.absolute_path)[:len(path)] == path for e in errs),
                                [(fmt(e.absolute_path), e.message) for e in errs])

    def test_documented_nulls_are_accepted(self):
        doc = example_document()
        for r in doc["runs"]:
            r["syscalls_per_commit"] = None
            r["allocations_per_commit"] = None
            r["mean_batch_bytes"] = None
            r["floor_ratios"] = {"p50_to_floor": None, "commits_per_s_to_floor": None}
            r["histogram_file"] = None
        doc["failover"] = None
        doc["waterfall"] = None
        doc["compare"] = None
        doc["notes"] = ["syscalls: perf_event_open not permitted (perf_event_paranoid=3)"]
        self.assertValid(doc, "a document with every documented null")
        # Empty lists are results too (no run asked for, no fdatasync floor with sync=none).
        doc["runs"] = []
        doc["floors"]["fdatasync"] = []
        doc["config"]["sync"] = "none"
        doc["notes"] = []
        self.assertValid(doc, "a document without runs")

    def test_null_is_allowed_exactly_where_schema_md_allows_it(self):
        nullable = set()
        for where, node in schema_objects(self.schema, self.schema):
            for key, sub in node["properties"].items():
                if allows_null(sub, self.schema):
                    nullable.add(f"{where}.{key}" if where else key)
        self.assertEqual(sorted(nullable), sorted(NULLABLE))

    def test_compatible_additions_are_accepted(self):
        doc = example_document()
        doc["new_top_level_field"] = {"anything": [1, 2]}
        doc["machine"]["numa_nodes"] = 1
        doc["config"]["payload"] = "random"
        doc["runs"][0]["p75_us"] = 180.0
        doc["runs"][0]["latency_us"]["p75_us"] = 180.0
        doc["failover"]["summary"][0]["kill_to_commit_ms"]["p75_ms"] = 40.0
        doc["compare"]["ratios"][0]["note"] = "faster"
        self.assertValid(doc, "a document with added fields")

    def test_schema_md_and_schema_json_name_the_same_fields(self):
        with open(SCHEMA_MD_PATH, encoding="utf-8") as f:
            blocks = re.findall(r"^```[^\n]*\n(.*?)^```", f.read(), re.S | re.M)
        self.assertGreaterEqual(len(blocks), 4, "SCHEMA.md's examples were not found")
        in_md = set()
        for b in blocks:
            code = re.sub(r"//[^\n]*", "", b)  # comments quote values too ("leader" or "follower": ...)
            in_md.update(re.findall(r'"([A-Za-z_][A-Za-z0-9_]*)"\s*:', code))
        in_schema = set()
        for _, node in schema_objects(self.schema, self.schema):
            in_schema.update(node["properties"])
        for d in ("PERCENTILES", "PERCENTILES_MS"):
            in_schema.update(self.schema["$defs"][d]["properties"])
        # SCHEMA.md spells out PERCENTILES only; PERCENTILES_MS is "the same, _ms instead of _us".
        ms_keys = {f"{k}_ms" for k in PERCENTILE_KEYS}
        self.assertEqual(sorted(in_md | ms_keys), sorted(in_schema))

    def test_schema_md_percentiles_example_is_valid(self):
        with open(SCHEMA_MD_PATH, encoding="utf-8") as f:
            md = f.read()
        m = re.search(r'^```\n(\{ "count".*?\})\n```', md, re.S | re.M)
        self.assertIsNotNone(m, "SCHEMA.md's PERCENTILES example was not found")
        example = json.loads(m.group(1))
        sub = {"$schema": self.schema["$schema"], "$defs": self.schema["$defs"]}
        self.assertValid(example, "SCHEMA.md's PERCENTILES example", {**sub, "$ref": "#/$defs/PERCENTILES"})
        as_ms = {k.replace("_us", "_ms"): v for k, v in example.items()}
        self.assertValid(as_ms, "its _ms twin", {**sub, "$ref": "#/$defs/PERCENTILES_MS"})
        self.assertTrue(self.errors(example, {**sub, "$ref": "#/$defs/PERCENTILES_MS"}))

    def test_fastzab_bench_output(self):
        path = os.environ.get("FASTZAB_BENCH_JSON")
        if not path:
            self.skipTest("FASTZAB_BENCH_JSON is not set (a meson test sets it to fastzab-bench's output)")
        self.assertTrue(os.path.isfile(path), f"FASTZAB_BENCH_JSON={path}: no such file")
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        self.assertValid(doc, path)


if __name__ == "__main__":
    unittest.main(verbosity=2)
