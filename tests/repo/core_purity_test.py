#!/usr/bin/env python3
"""engine/core/ is the pure protocol state machine (engine/core/README.md): it may include only
itself and those parts of the C++ standard library that reach no clock, thread, file, socket or
source of randomness. net/ and log/ have their leaf rule (tests/net, tests/log); this is the
core's. Exits 1 naming every include that breaks the rule, and checks itself first on made-up
sources so that a rule that can no longer fire is noticed."""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORE = os.path.join(ROOT, 'engine', 'core')

# Standard headers the core may use: containers, algorithms, vocabulary types, text formatting
# into memory. Not here, on purpose: <chrono> <ctime> (clocks), <thread> <mutex> <atomic>
# <condition_variable> <future> <semaphore> <latch> <barrier> <stop_token> <shared_mutex>
# (threads), <fstream> <filesystem> <iostream> (files), <random> (random_device), <csignal>.
ALLOWED_STD = {
    'algorithm', 'array', 'bit', 'bitset', 'cassert', 'cctype', 'charconv', 'climits', 'cmath',
    'compare', 'concepts', 'cstddef', 'cstdint', 'cstdio', 'cstdlib', 'cstring', 'deque',
    'expected', 'functional', 'initializer_list', 'iterator', 'limits', 'map', 'memory',
    'new', 'numeric', 'optional', 'set', 'span', 'stdexcept', 'string', 'string_view',
    'tuple', 'type_traits', 'unordered_map', 'unordered_set', 'utility', 'variant', 'vector',
    'version',
}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def violations(sources):
    """sources: {file name: text}, all in engine/core/. Returns 'file:line: why' lines."""
    found = []
    for name, text in sorted(sources.items()):
        for number, line in enumerate(text.splitlines(), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            kind, header = m.groups()
            where = f'engine/core/{name}:{number}'
            if kind == '<':
                if header not in ALLOWED_STD:
                    found.append(f'{where}: <{header}> is not on the core\'s standard list')
            else:
                local = header[len('engine/core/'):] if header.startswith('engine/core/') else header
                if '/' in local or local not in sources:
                    found.append(f'{where}: "{header}" is not a file of engine/core/')
    return found


def self_check():
    fake = {
        'a.h': '#include <vector>\n#include "b.h"\n#include "engine/core/b.h"\n',
        'b.h': '#include <chrono>\n#include "net/transport.h"\n  #  include <sys/socket.h>\n'
               '#include "engine/runtime/replica.h"\n#include "missing.h"\n',
    }
    got = violations(fake)
    want = ['engine/core/b.h:1', 'engine/core/b.h:2', 'engine/core/b.h:3', 'engine/core/b.h:4',
            'engine/core/b.h:5']
    if [g.split(': ')[0] for g in got] != want:
        print('core_purity_test: the check itself is broken:', got, file=sys.stderr)
        sys.exit(1)


def main():
    self_check()
    sources = {}
    for name in os.listdir(CORE):
        if name.endswith(('.h', '.cpp')):
            with open(os.path.join(CORE, name), encoding='utf-8') as f:
                sources[name] = f.read()
    if len(sources) < 10:
        print(f'core_purity_test: only {len(sources)} sources in {CORE}?', file=sys.stderr)
        return 1
    bad = violations(sources)
    for line in bad:
        print(line)
    print(f'{len(sources)} files of engine/core/ checked: {len(bad)} include(s) break the rule')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
