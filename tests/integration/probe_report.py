#!/usr/bin/env python3
"""Issue 10's closing numbers: each hostile probe (hostile.py) against a fresh 3-server cluster
on loopback while a polite client puts, with every server's RSS over time and the polite
client's put latency.

    python3 tests/integration/probe_report.py --seconds 30 [--json FILE] [--probes a,b]
        [--bin-dir DIR] [--tick-ms MS]

Per probe: a new cluster (cluster.py; tickTime 2000 ms as in engine/cmd/examples/zoo.cfg
unless --tick-ms, every client port limit at its default except where the probe names one), a
leader, a polite client on 127.0.0.1 putting to the leader every 10 ms, VmRSS of every server
every 0.5 s from 5 s before the probe to 10 s after it, and the probe for --seconds in a
process of its own (so that its Python work does not hold the polite client's interpreter),
connecting from other loopback addresses (127.0.0.2, ...) because maxClientCnxns counts per
source address. Prints a table per probe; --json writes everything, series included.

The binaries come from FASTZAB_SERVER_BIN and friends, --bin-dir, or build/engine/cmd (a
release build is what the numbers are for: see the first line printed). Not a test: nothing is
asserted, and the exit status is 0 unless a cluster could not be started.
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as C  # noqa: E402
import hostile as H  # noqa: E402

HOST = '127.0.0.1'
PRE_S = 5.0
TAIL_S = 10.0
SAMPLE_S = 0.5
SERIES_STEP_S = 2.0
P99_TARGET_MS = 100.0

# Each probe: what it does, its zoo.cfg additions, and the probe processes to run (kind, target
# 'leader' or 'follower', hostile.py options).
PROBES = {
    'flood': dict(
        what='32 connections pipelining 1 KiB writes as fast as possible, reading every reply',
        config='',
        runs=[('flood', 'leader', {'connections': 32, 'sources': ['127.0.0.2']})]),
    'nonreader': dict(
        what='4 connections pipelining without ever reading: 2 with 1 KiB writes, 2 with status '
             'requests; each one dropped is replaced',
        config='',
        runs=[('nonreader', 'leader', {'connections': 4, 'sources': ['127.0.0.2']})]),
    'idle': dict(
        what='idle connections from 127.0.0.2 and 127.0.0.3 until refused (maxClientCnxns=60 '
             'per address), 32 more per address, held; to a follower and to the leader',
        config='',
        runs=[('idle', 'follower', {'sources': ['127.0.0.2', '127.0.0.3']}),
              ('idle', 'leader', {'sources': ['127.0.0.2', '127.0.0.3']})]),
    'idle-maxcnxns': dict(
        what='as idle, from 127.0.0.2..5 with maxCnxns=100: the total cap refuses first',
        config='maxCnxns=100\n',
        runs=[('idle', 'follower', {'sources': [f'127.0.0.{i}' for i in range(2, 6)]}),
              ('idle', 'leader', {'sources': [f'127.0.0.{i}' for i in range(2, 6)]})]),
    'slowloris': dict(
        what='100 connections (50 each from 127.0.0.2 and .3) announcing a 1 MiB write and '
             'sending 1 byte per 100 ms; each one dropped is replaced',
        config='',
        runs=[('slowloris', 'leader', {'connections': 100,
                                       'sources': ['127.0.0.2', '127.0.0.3']})]),
}

MNTR_KEYS = ('zk_server_state', 'zk_epoch', 'zk_num_alive_connections',
             'zk_outstanding_requests', 'zk_commits', 'zk_client_writes_ok',
             'zk_latency_p50_us', 'zk_latency_p99_us', 'zk_latency_max_us',
             'zk_client_refused_per_source', 'zk_client_refused_total',
             'zk_client_accept_errors', 'zk_client_paused_output',
             'zk_client_paused_outstanding', 'zk_client_input_budget_waits',
             'zk_client_input_budget_used_bytes', 'zk_client_dropped_timeout',
             'zk_client_bad_frames', 'zk_client_too_large')


def latency_stats(latencies, since, until):
    """{'n', 'p50_ms', 'p99_ms', 'max_ms'} of the puts started in [since, until)."""
    v = sorted(d for t, d in latencies if since <= t < until)
    ms = (lambda x: None if x is None else round(x * 1000, 2))
    return {'n': len(v), 'p50_ms': ms(H.percentile(v, 0.50)),
            'p99_ms': ms(H.percentile(v, 0.99)), 'max_ms': ms(v[-1] if v else None)}


def mntr_or_error(cl, sid):
    # With maxCnxns reached, the operator's own mntr connection is refused too: closed at once,
    # which reads as an empty answer, or as a reset when the word was sent first.
    try:
        m = cl.mntr(sid)
    except OSError as e:
        return {'error': f'{type(e).__name__}: {e}' if str(e) else type(e).__name__}
    if not m:
        return {'error': 'no answer: the connection was closed at once (refused)'}
    return {k: v for k, v in m.items() if k in MNTR_KEYS}


def children_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def start_probe(kind, port, seconds, options):
    args = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                         'hostile.py'), kind, HOST, str(port), str(seconds)]
    for src in options.get('sources', []):
        args += ['--source', src]
    if 'connections' in options:
        args += ['--connections', str(options['connections'])]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=C._die_with_parent)


def finish_probe(proc, seconds):
    try:
        out, err = proc.communicate(timeout=seconds + 120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return {'error': f'probe did not end within {seconds + 120} s', 'stderr': err[-2000:]}
    if proc.returncode != 0:
        return {'error': f'probe exited with status {proc.returncode}', 'stderr': err[-2000:]}
    return json.loads(out)


def run_one(name, spec, seconds, tick_ms, extra_config=''):
    config = spec['config'] + extra_config
    cl = C.Cluster(3, tick_ms=tick_ms, extra_config=config)
    try:
        cl.start_all()
        leader = cl.wait_leader(timeout=30)
        followers = [sid for sid in cl.ids if sid != leader]
        pids = {sid: cl.servers[sid].proc.pid for sid in cl.ids}
        res = {'probe': name, 'what': spec['what'], 'config': config.strip(),
               'seconds': seconds, 'leader': leader, 'loadavg_before': os.getloadavg()}
        sampler = H.RssSampler(pids, interval=SAMPLE_S)
        polite = H.PolitePuts(cl.port(leader), host=HOST, interval=0.01)
        sampler.start()
        polite.start()
        t_pre = time.monotonic()
        time.sleep(PRE_S)
        cpu0 = {sid: H.cpu_seconds(pid) for sid, pid in pids.items()}
        probe_cpu0 = children_cpu_s()
        t_probe = time.monotonic()
        procs = []
        for kind, target, options in spec['runs']:
            sid = leader if target == 'leader' else followers[0]
            procs.append((kind, sid, options, start_probe(kind, cl.port(sid), seconds, options)))
        # Taken while the probe still holds its connections (an idle probe's are gone after).
        time.sleep(max(0.0, seconds - 1.5))
        res['mntr_during'] = {sid: mntr_or_error(cl, sid) for sid in cl.ids}
        res['probes'] = []
        for kind, sid, options, proc in procs:
            res['probes'].append({'kind': kind, 'server': sid,
                                  'role': 'leader' if sid == leader else 'follower',
                                  'options': options, 'result': finish_probe(proc, seconds)})
        t_end = time.monotonic()
        res['probe_cpu_pct'] = round(100 * (children_cpu_s() - probe_cpu0) / (t_end - t_probe),
                                     1)
        res['server_cpu_pct'] = {
            sid: round(100 * (H.cpu_seconds(pid) - cpu0[sid]) / (t_end - t_probe), 1)
            for sid, pid in pids.items() if cl.servers[sid].running()}
        time.sleep(TAIL_S)
        polite.stop()
        t_done = time.monotonic()
        sampler.stop()
        res['mntr_after'] = {sid: mntr_or_error(cl, sid) for sid in cl.ids}
        res['exited'] = {sid: cl.servers[sid].proc.poll() for sid in cl.ids
                         if not cl.servers[sid].running()}
        res['probe_s'] = round(t_end - t_probe, 2)
        res['polite'] = {
            'ok': polite.ok, 'failed': len(polite.failures),
            'failed_during': sum(1 for t, _ in polite.failures if t_probe <= t < t_end),
            'first_failures': [{'t': round(t - t_probe, 2), 'error': e}
                               for t, e in polite.failures[:5]],
            'before': latency_stats(polite.latencies, t_pre, t_probe),
            'during': latency_stats(polite.latencies, t_probe, t_end),
            'after': latency_stats(polite.latencies, t_end, t_done),
            'slowest': sorted(((round(d * 1000, 1), round(t - t_probe, 2))
                               for t, d in polite.latencies), reverse=True)[:5],
        }
        res['rss'] = rss_summary(sampler.samples, sampler.anon, t_probe, t_end)
        res['series'] = [{'t': round(t - t_probe, 2), 'rss_kb': row, 'anon_kb': anon}
                         for (t, row), (_, anon) in zip(sampler.samples, sampler.anon)]
        res['buckets'] = buckets(sampler.samples, polite, t_probe, t_pre, t_done)
        return res
    finally:
        cl.close()


def rss_summary(samples, anon, t_probe, t_end):
    out = {}
    for sid in samples[0][1]:
        anon_before = [row[sid] for t, row in anon if t < t_probe and row[sid] is not None]
        anon_after = [row[sid] for t, row in anon if t >= t_probe and row[sid] is not None]
        before = [row[sid] for t, row in samples if t < t_probe and row[sid] is not None]
        after = [row[sid] for t, row in samples if t >= t_probe and row[sid] is not None]
        during = [row[sid] for t, row in samples if t_probe <= t <= t_end and
                  row[sid] is not None]
        out[sid] = {'start_kb': before[-1] if before else None,
                    'peak_kb': max(after) if after else None,
                    'peak_during_kb': max(during) if during else None,
                    'end_kb': after[-1] if after else None,
                    'anon_start_kb': anon_before[-1] if anon_before else None,
                    'anon_peak_kb': max(anon_after) if anon_after else None,
                    'anon_end_kb': anon_after[-1] if anon_after else None}
    return out


def buckets(samples, polite, t_probe, t_pre, t_done):
    """One row per SERIES_STEP_S: each server's largest RSS in it, and the polite puts started
    in it (count, failures, p99, max)."""
    rows = []
    # Aligned on the probe's start, so that no row straddles it.
    t = t_probe - math.ceil(PRE_S / SERIES_STEP_S) * SERIES_STEP_S
    while t < min(t_done, samples[-1][0]):
        end = t + SERIES_STEP_S
        rss = {}
        for sid in samples[0][1]:
            vals = [row[sid] for ts, row in samples if t <= ts < end and row[sid] is not None]
            rss[sid] = max(vals) if vals else None
        lat = sorted(d for ts, d in polite.latencies if t <= ts < end)
        rows.append({'t': round(t - t_probe, 1), 'rss_kb': rss, 'puts': len(lat),
                     'failed': sum(1 for ts, _ in polite.failures if t <= ts < end),
                     'p99_ms': None if not lat else round(H.percentile(lat, 0.99) * 1000, 1),
                     'max_ms': None if not lat else round(lat[-1] * 1000, 1)})
        t = end
    return rows


def mb(kb):
    return '-' if kb is None else f'{kb / 1024:.1f}'


def fmt_ms(x):
    return '-' if x is None else f'{x:.1f}'


def print_report(res, out=sys.stdout):
    p = lambda *a: print(*a, file=out)  # noqa: E731
    leader = res['leader']
    role = lambda sid: 'leader' if sid == leader else 'follower'  # noqa: E731
    ids = sorted(res['rss'])
    p(f'\n=== {res["probe"]}: {res["what"]}')
    p(f'    {res["probe_s"]} s against a 3-server cluster, leader {leader}'
      f'{", zoo.cfg + " + res["config"].replace(chr(10), ", ") if res["config"] else ""}'
      f'; load average before '
      f'{res["loadavg_before"][0]:.2f}')
    for pr in res['probes']:
        r = dict(pr['result'])
        p(f'    probe {pr["kind"]} -> server {pr["server"]} ({pr["role"]}): ' +
          ', '.join(f'{k}={v}' for k, v in r.items() if k not in ('kind', 'host', 'port')))
    p(f'    CPU during the probe: ' +
      ', '.join(f's{sid} {pct}%' for sid, pct in sorted(res['server_cpu_pct'].items())) +
      f', probe process(es) {res["probe_cpu_pct"]}%  (100% = one core)')
    if res['exited']:
        p(f'    !! servers exited: {res["exited"]}')
    p('')
    p('    VmRSS MB        start    peak     end     RssAnon MB start    peak     end')
    for sid in ids:
        s = res['rss'][sid]
        p(f'    s{sid} {role(sid):9s} {mb(s["start_kb"]):>7} {mb(s["peak_kb"]):>7} '
          f'{mb(s["end_kb"]):>7}     {mb(s["anon_start_kb"]):>12} {mb(s["anon_peak_kb"]):>7} '
          f'{mb(s["anon_end_kb"]):>7}')
    p('    (start: the last sample before the probe; peak: from its start to 10 s after it; '
      'end: 10 s after it)')
    p('')
    pol = res['polite']
    p(f'    polite puts (one per 10 ms to the leader): ok {pol["ok"]}, failed {pol["failed"]} '
      f'({pol["failed_during"]} during the probe)')
    for phase in ('before', 'during', 'after'):
        st = pol[phase]
        flag = ''
        if phase == 'during' and st['p99_ms'] is not None and st['p99_ms'] > P99_TARGET_MS:
            flag = f'   <-- p99 over {P99_TARGET_MS:.0f} ms'
        p(f'      {phase:6s} n={st["n"]:<5d} p50 {fmt_ms(st["p50_ms"]):>7} ms  p99 '
          f'{fmt_ms(st["p99_ms"]):>7} ms  max {fmt_ms(st["max_ms"]):>7} ms{flag}')
    if pol['first_failures']:
        for f in pol['first_failures']:
            p(f'      failure at t={f["t"]} s: {f["error"]}')
    p(f'      slowest puts (ms @ t s): ' +
      ', '.join(f'{d} @ {t}' for d, t in pol['slowest']))
    p('')
    p('    series, every 2 s (t from the probe start; RSS MB the largest sample in the 2 s; '
      'polite puts started in it):')
    p('        t  ' + ''.join(f'{"s" + str(sid) + ("*" if sid == leader else ""):>8}'
                             for sid in ids) + '    puts fail  p99 ms  max ms')
    probe_s = res['probe_s']
    for row in res['buckets']:
        mark = ' ' if row['t'] < 0 or row['t'] >= probe_s else '|'
        p(f'    {mark}{row["t"]:6.1f} ' + ''.join(f'{mb(row["rss_kb"][sid]):>8}' for sid in ids) +
          f'  {row["puts"]:6d} {row["failed"]:4d} {fmt_ms(row["p99_ms"]):>7} '
          f'{fmt_ms(row["max_ms"]):>7}')
    p('    (* the leader; | the probe runs)')
    p('')
    p(f'    {"mntr":32s}' + ''.join(f'{"s" + str(sid) + " during":>14}{"after":>10}'
                                     for sid in ids))
    for k in MNTR_KEYS:
        cells = []
        for sid in ids:
            for when in ('mntr_during', 'mntr_after'):
                m = res[when][sid]
                cells.append(m.get(k, 'refused' if 'error' in m else '-'))
        p(f'    {k[3:] if k.startswith("zk_") else k:32s}' +
          ''.join(f'{c:>{14 if i % 2 == 0 else 10}}' for i, c in enumerate(cells)))
    for when in ('mntr_during', 'mntr_after'):
        for sid in ids:
            if 'error' in res[when][sid]:
                p(f'    ({when[5:]}: mntr of s{sid}: {res[when][sid]["error"]})')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--seconds', type=float, default=30)
    ap.add_argument('--json', help='write every result, series included, to this file')
    ap.add_argument('--probes', default=','.join(PROBES),
                    help=f'comma-separated, of {", ".join(PROBES)}')
    ap.add_argument('--bin-dir', help='directory with fastzab-server, -cli, -log (sets '
                                      'FASTZAB_*_BIN)')
    ap.add_argument('--tick-ms', type=int, default=2000, help='tickTime (default 2000)')
    ap.add_argument('--extra-config', action='append', default=[], metavar='KEY=VALUE',
                    help='a zoo.cfg line for every server of every probe (repeatable)')
    args = ap.parse_args()
    if args.bin_dir:
        for name, var in (('fastzab-server', 'FASTZAB_SERVER_BIN'),
                          ('fastzab-cli', 'FASTZAB_CLI_BIN'), ('fastzab-log', 'FASTZAB_LOG_BIN')):
            os.environ[var] = os.path.join(os.path.abspath(args.bin_dir), name)
    names = [n.strip() for n in args.probes.split(',') if n.strip()]
    unknown = [n for n in names if n not in PROBES]
    if unknown:
        ap.error(f'unknown probe(s) {unknown}: of {", ".join(PROBES)}')
    server = C.server_bin()
    print(f'server binary: {server} ({build_type(server)}); {os.cpu_count()} CPUs; '
          f'tickTime {args.tick_ms} ms; probes {", ".join(names)}, {args.seconds:g} s each'
          f'{"; every zoo.cfg + " + ", ".join(args.extra_config) if args.extra_config else ""}')
    results = []
    for name in names:
        res = run_one(name, PROBES[name], args.seconds, args.tick_ms,
                      ''.join(line + '\n' for line in args.extra_config))
        print_report(res)
        sys.stdout.flush()
        results.append(res)
    print('\nsummary: polite put latency during each probe (target p99 <= '
          f'{P99_TARGET_MS:.0f} ms) and the largest RSS growth of any server')
    for res in results:
        d = res['polite']['during']
        growth = max((s['peak_kb'] or 0) - (s['start_kb'] or 0) for s in res['rss'].values())
        ok = d['p99_ms'] is not None and d['p99_ms'] <= P99_TARGET_MS
        print(f'  {res["probe"]:14s} p50 {fmt_ms(d["p50_ms"]):>6} p99 {fmt_ms(d["p99_ms"]):>7} '
              f'max {fmt_ms(d["max_ms"]):>7} ms, failed {res["polite"]["failed_during"]:3d}, '
              f'RSS +{growth / 1024:.1f} MB  {"ok" if ok else "OVER"}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1, default=str)
        print(f'wrote {args.json}')
    return 0


def build_type(server):
    """The meson buildtype of the build directory the binary sits in, if it says."""
    d = os.path.dirname(server)
    for _ in range(4):
        info = os.path.join(d, 'meson-info', 'intro-buildoptions.json')
        if os.path.exists(info):
            try:
                with open(info) as f:
                    opts = {o['name']: o['value'] for o in json.load(f)}
                return f'buildtype={opts.get("buildtype")}, b_ndebug={opts.get("b_ndebug")}'
            except (OSError, ValueError, KeyError):
                break
        d = os.path.dirname(d)
    return 'build type unknown'


if __name__ == '__main__':
    sys.exit(main())
