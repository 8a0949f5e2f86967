"""Commit tracing (zoo.cfg trace=on, the `trce` four-letter word; engine/cmd/README.md).

Three servers with trace=on: writes sent one at a time to the leader, and one to a follower
(forwarded). Every server's `trce` has a line for each write with the stages its role passes,
and the stamps (CLOCK_MONOTONIC, one clock for every process on the host, and the client's
time.monotonic_ns()) are in causal order: within a server, from server to server (a PROPOSAL is
received after it was sent, an ACK after it was sent, a COMMIT after the commit) and against
the client's send and receive. The commit names whose durability completed the quorum. Stages
that no causal chain orders (a follower may apply a commit before its own fdatasync returns)
are not compared. Also: without trace=on, `trce` answers that tracing is off."""

import re
import time

import cluster
from cluster import ClusterTestCase

LINE = re.compile(r'^zxid=0x[0-9a-f]{16} server=\d+ group=\d+ role=(leader|follower)'
                  r'( [a-z_.0-9]+=\d+)*$')


def parse_trce(text):
    """{zxid: {key: int}} of one server's answer (the zxid's own key dropped)."""
    out = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if not LINE.match(line):
            raise AssertionError(f'not a trce line: {line!r}')
        fields = dict(tok.split('=', 1) for tok in line.split())
        zxid = int(fields.pop('zxid'), 16)
        role = fields.pop('role')
        values = {k: int(v) for k, v in fields.items()}
        values['role'] = role
        if zxid in out:
            raise AssertionError(f'two lines for zxid 0x{zxid:016x}')
        out[zxid] = values
    return out


def chain(where, line, stages, problems):
    """Each stage of `stages` present in `line` and not before the previous one."""
    prev = None
    for st in stages:
        if st not in line:
            problems.append(f'{where}: no {st}')
            return
        if prev is not None and line[st] < line[prev]:
            problems.append(f'{where}: {st} {line[st]} before {prev} {line[prev]}')
        prev = st


def before(where, a_name, a, b_name, b, problems):
    if a is None or b is None:
        problems.append(f'{where}: {a_name if a is None else b_name} missing')
    elif a > b:
        problems.append(f'{where}: {a_name} {a} after {b_name} {b}')


class TraceTest(ClusterTestCase):
    def test_stages_on_every_server_in_order(self):
        c = self.cluster(3, extra_config='trace=on\n')
        c.start_all()
        leader = c.wait_leader(timeout=20)
        followers = [sid for sid in c.ids if sid != leader]
        entry = followers[0]

        # Window 1: each write alone, with the client's own stamps around it.
        via_leader = []  # (zxid, sent, received)
        with cluster.Client(c.port(leader)) as client:
            for i in range(8):
                sent = time.monotonic_ns()
                zxid = client.put(f'traced-{i}'.encode())
                via_leader.append((zxid, sent, time.monotonic_ns()))
        with cluster.Client(c.port(entry)) as client:
            sent = time.monotonic_ns()
            zxid = client.put(b'traced-forwarded')
            via_follower = (zxid, sent, time.monotonic_ns())
        c.wait_caught_up()

        def problems_now():
            traces = {sid: parse_trce(cluster.four_letter(c.port(sid), 'trce')) for sid in c.ids}
            problems = []
            for sid, t in traces.items():
                for zxid, line in t.items():
                    if line['server'] != sid or line['group'] != 0:
                        problems.append(f'server {sid}: 0x{zxid:016x}: {line}')
                if list(t) != sorted(t):
                    problems.append(f'server {sid}: zxids not ascending')
            for zxid, sent, received in via_leader + [via_follower]:
                z = f'0x{zxid:016x}'
                L = traces[leader].get(zxid)
                if L is None or L['role'] != 'leader':
                    problems.append(f'{z}: no leader line on server {leader}: {L}')
                    continue
                chain(f'{z} leader', L, ['proposed', 'proposal_sent', 'log_submit', 'durable'],
                      problems)
                chain(f'{z} leader', L, ['commit', 'applied'], problems)
                for f in followers:
                    F = traces[f].get(zxid)
                    if F is None or F['role'] != 'follower':
                        problems.append(f'{z}: no follower line on server {f}: {F}')
                        continue
                    where = f'{z} follower {f}'
                    chain(where, F, ['proposal_recv', 'log_submit', 'durable', 'ack_sent'],
                          problems)
                    chain(where, F, ['commit_recv', 'applied'], problems)
                    before(where, 'leader proposal_sent', L.get('proposal_sent'),
                           'proposal_recv', F.get('proposal_recv'), problems)
                    before(where, 'ack_sent', F.get('ack_sent'),
                           f'leader ack.{f}', L.get(f'ack.{f}'), problems)
                    before(where, 'leader commit', L.get('commit'),
                           'commit_recv', F.get('commit_recv'), problems)
                q = L.get('quorum')
                if q == leader:
                    before(z, 'leader durable', L.get('durable'), 'commit', L.get('commit'),
                           problems)
                elif q in followers:
                    before(z, f'ack.{q}', L.get(f'ack.{q}'), 'commit', L.get('commit'), problems)
                else:
                    problems.append(f'{z}: quorum={q} names no server of the cluster')

                E = L if zxid != via_follower[0] else traces[entry].get(zxid, {})
                where = f'{z} entry server {leader if E is L else entry}'
                if E is L:
                    # (The leader's own durable may come before or after the commit: a quorum
                    # of followers may be faster than its disk.)
                    chain(where, L, ['sock_read', 'ring_push', 'ring_pop', 'proposed',
                                     'proposal_sent'], problems)
                    chain(where, L, ['commit', 'applied', 'reply_handed', 'reply_polled',
                                     'reply_written'], problems)
                else:
                    if 'sock_read' in L:
                        problems.append(f'{z}: client stages on the leader, written to {entry}')
                    chain(where, E, ['sock_read', 'ring_push', 'ring_pop', 'forwarded'], problems)
                    chain(where, E, ['commit_recv', 'applied', 'reply_handed', 'reply_polled',
                                     'reply_written'], problems)
                    before(where, 'forwarded', E.get('forwarded'), 'leader proposed',
                           L.get('proposed'), problems)
                before(where, 'client send', sent, 'sock_read', E.get('sock_read'), problems)
                before(where, 'reply_written', E.get('reply_written'), 'client receive',
                       received, problems)
            for f in followers:
                for zxid, *_ in via_leader:
                    if 'sock_read' in traces[f].get(zxid, {}):
                        problems.append(f'0x{zxid:016x}: follower {f} has client stages')
            return problems, traces

        # The slower follower's ACK and the followers' COMMITs may still be on their way.
        last = [None]

        def complete():
            problems, traces = problems_now()
            last[0] = (problems, traces)
            return not problems
        try:
            cluster.wait_until('every trace complete and in order', complete, 10)
        except cluster.Timeout:
            problems, traces = last[0]
            self.fail(f'{len(problems)} problems, first ones:\n' + '\n'.join(problems[:20]))
        traces = last[0][1]
        # The probe writes of wait_leader are traced too; at least ours are.
        self.assertGreaterEqual(len(traces[leader]), len(via_leader) + 1)

    def test_trce_says_off_without_trace_on(self):
        c = self.cluster(3)
        c.start_all()
        leader = c.wait_leader(timeout=20)
        c.put(leader, b'not-traced')
        for sid in c.ids:
            self.assertEqual(cluster.four_letter(c.port(sid), 'trce'),
                             'trace is off (zoo.cfg: trace=on)\n')


if __name__ == '__main__':
    cluster.main()
