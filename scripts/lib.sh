# shellcheck shell=bash
# Shared by scripts/test and scripts/run: install what is missing, configure, build.
# Source it; do not run it. Every function assumes `set -euo pipefail` in the caller.

# The repository root, whatever directory the caller was started from.
FZ_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FZ_BUILD_DIR="build"
FZ_BUILD_OPTIONS=(-Dbuildtype=release -Ddebug=true -Dwerror=true)
FZ_RELEASE_DIR="build-release"
FZ_RELEASE_OPTIONS=(-Dbuildtype=release)

# Debian 12 packages the build and the test suites need. Every meson `dependency()` needs its
# package here (tests/repo/dependencies_test.py checks it). clang and libclang-rt-14-dev build the
# libFuzzer targets; libbenchmark-dev the micro-benchmarks; libcli11-dev (CLI11) parses the
# commands' command lines; nlohmann-json3-dev reads and writes JSON; libjemalloc-dev is the
# server's allocator; gnuplot-nox draws the benchmark report's pictures; python3-jsonschema
# checks fastzab-bench's JSON against bench/schema.json. clang-16 and libclang-rt-16-dev build
# the fuzz targets that include <expected> (log, net, config) and the sanitizer builds of
# `scripts/test --sanitize` (clang 14 cannot compile libstdc++ 12's std::expected; see below).
# libdpdk-dev (DPDK 22.11) is the kernel-bypass transport's (net/dpdk_port.*, suite `dpdk`).
FZ_PACKAGES=(meson ninja-build g++ pkg-config libgtest-dev libbenchmark-dev liburing-dev libsodium-dev libdpdk-dev clang libclang-rt-14-dev
             clang-16 libclang-rt-16-dev
             libcli11-dev nlohmann-json3-dev libjemalloc-dev gnuplot-nox python3-jsonschema
             e2fsprogs)  # mkfs.ext4 for the durability audit (tests/log/durability-audit)

# Only `scripts/test --sanitize` needs this: llvm-symbolizer-16, with which the sanitizers' reports
# name functions, files and lines instead of bare addresses.
FZ_SANITIZER_PACKAGES=(llvm-16)

# Only scripts/compare-zookeeper needs these: Apache ZooKeeper 3.8 (with a Java runtime) and its
# C client, which the ZooKeeper load driver (bench/compare/) links.
FZ_ZOOKEEPER_PACKAGES=(zookeeper libzookeeper-mt-dev)

fz_log() { printf '==> %s\n' "$*"; }
fz_die() {
  local code="$1"
  shift
  printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2
  exit "$code"
}

# Installs those of the given packages (default: FZ_PACKAGES) that are not installed. Needs root
# and apt-get to install; otherwise names the missing packages and exits 2.
fz_ensure_packages() {
  local wanted=("$@")
  ((${#wanted[@]})) || wanted=("${FZ_PACKAGES[@]}")
  if ! command -v dpkg-query >/dev/null 2>&1; then
    fz_log "dpkg-query not found (not a Debian system?): not checking packages; need: ${wanted[*]}"
    return 0
  fi
  local missing=() p status
  for p in "${wanted[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
    [[ "$status" == "installed" ]] || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  if [[ "$(id -u)" -ne 0 ]]; then
    fz_die 2 "missing packages: ${missing[*]}
  install them as root:  apt-get install -y --no-install-recommends ${missing[*]}"
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    fz_die 2 "missing packages: ${missing[*]} (and apt-get is not available to install them)"
  fi
  fz_log "installing missing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# fz_configure DIR OPTION...: makes DIR a meson build directory with the given -Dkey=value
# options: a fresh `meson setup` when it is not one yet, a reconfigure when it cannot be used as it
# is (no build.ninja, or written by another meson version), `meson configure` when an option
# differs. Changes to meson.build files are picked up by ninja itself.
fz_configure() {
  cd "$FZ_ROOT" || exit 1
  local dir="$1"
  shift
  if [[ ! -f "$dir/meson-private/coredata.dat" ]]; then
    # Also covers a directory left over by a failed setup: meson setup writes over it.
    fz_log "configuring $dir/ (meson setup $*)"
    meson setup "$dir" "$@"
  elif [[ ! -f "$dir/build.ninja" ]]; then
    fz_log "reconfiguring $dir/ (no build.ninja)"
    meson setup --reconfigure "$dir" "$@"
  elif ! meson introspect "$dir" --projectinfo >/dev/null 2>&1; then
    fz_log "reconfiguring $dir/ from scratch (written by another meson version)"
    meson setup --wipe "$dir" "$@"
  elif ! meson introspect "$dir" --buildoptions | python3 -c '
import json, sys
have = {o["name"]: o["value"] for o in json.load(sys.stdin)}
def same(v, want):
    return str(v).lower() == want.lower() if isinstance(v, bool) else str(v) == want
sys.exit(0 if all(same(have.get(k), v) for k, v in (a[2:].split("=", 1) for a in sys.argv[1:])) else 1)
' "$@"; then
    fz_log "setting $dir/'s options ($*)"
    meson configure "$dir" "$@"
  fi
}

# fz_build DIR [TARGET...]: ninja in DIR (every target, or the named ones).
fz_build() {
  cd "$FZ_ROOT" || exit 1
  local dir="$1"
  shift
  fz_log "building (ninja -C $dir${*:+ $*})"
  if ! ninja -C "$dir" "$@"; then
    fz_die 1 "build failed (see the compiler output above)"
  fi
}

# The dev and CI build, which the test suites run on: optimized as a release (-O3), with debug
# information and -Werror, so that a warning only optimization brings out fails CI, not a user.
fz_prepare() {
  fz_ensure_packages
  fz_configure "$FZ_BUILD_DIR" "${FZ_BUILD_OPTIONS[@]}"
  fz_build "$FZ_BUILD_DIR"
}

# Sanitizer builds (scripts/test --sanitize), with clang: build-asan/ with AddressSanitizer and
# UndefinedBehaviorSanitizer (every UB report aborts: -fno-sanitize-recover), build-tsan/ with
# ThreadSanitizer. Optimised (-O2) with debug information for readable stacks; no -Werror: these
# builds look for reports at run time, and clang warns differently from the g++ dev build, which
# keeps -Werror. FZ_ASAN_BUILD_DIR / FZ_TSAN_BUILD_DIR move them (e.g. outside the checkout).
#
# The compiler is clang 16 (Debian clang-16), not Debian 12's default clang 14: libstdc++ 12's
# <expected>, which log/, net/ and engine/runtime use, needs conditionally trivial special
# members (P0848). clang 16 implements them but still reports __cpp_concepts 201907, so
# <expected> hides std::expected; FZ_CLANG_EXPECTED_FLAGS define the feature macro as libstdc++
# expects. (clang 14 lacks P0848: it cannot compile std::expected at all.) tests/fuzz/run-fuzzer
# uses the same compiler and flags.
FZ_SANITIZER_CXX="${FZ_SANITIZER_CXX:-clang++-16}"
FZ_CLANG_EXPECTED_FLAGS=(-U__cpp_concepts -D__cpp_concepts=202002L)
# The cpp_args lists are written as Python lists so that fz_configure's comparison with
# `meson introspect` sees them unchanged.
FZ_ASAN_DIR="${FZ_ASAN_BUILD_DIR:-build-asan}"
FZ_ASAN_OPTIONS=(-Dbuildtype=debugoptimized -Dwerror=false -Db_sanitize=address,undefined
                 "-Dcpp_args=['-U__cpp_concepts', '-D__cpp_concepts=202002L', '-fno-sanitize-recover=undefined', '-fno-omit-frame-pointer']")
FZ_TSAN_DIR="${FZ_TSAN_BUILD_DIR:-build-tsan}"
FZ_TSAN_OPTIONS=(-Dbuildtype=debugoptimized -Dwerror=false -Db_sanitize=thread
                 "-Dcpp_args=['-U__cpp_concepts', '-D__cpp_concepts=202002L', '-fno-omit-frame-pointer']")

# fz_configure_sanitizer DIR OPTION...: fz_configure with CXX=$FZ_SANITIZER_CXX. A directory
# configured with another compiler is set up again from scratch (meson keeps a build
# directory's compiler).
fz_configure_sanitizer() {
  cd "$FZ_ROOT" || exit 1
  local dir="$1" have=""
  if [[ -f "$dir/meson-private/coredata.dat" ]]; then
    have="$(meson introspect "$dir" --compilers 2>/dev/null |
            python3 -c 'import json, os, sys; print(os.path.basename(json.load(sys.stdin)["host"]["cpp"]["exelist"][0]))' \
            2>/dev/null || true)"
  fi
  if [[ -n "$have" && "$have" != "$(basename "$FZ_SANITIZER_CXX")" ]]; then
    fz_log "$dir/ was configured with $have, not $FZ_SANITIZER_CXX: setting it up again"
    CXX="$FZ_SANITIZER_CXX" meson setup --wipe "$@"
  else
    CXX="$FZ_SANITIZER_CXX" fz_configure "$@"
  fi
}

# fz_suite_targets DIR SUITE...: the ninja targets (paths relative to DIR) that the tests of the
# named suites run or depend on, one per line; and, for `meson test NAME...`, tests named
# `name:NAME` are taken as single tests. Lets a sanitizer build compile only what it runs.
fz_suite_targets() {
  local dir="$1"
  shift
  # Regenerate first (meson.build files may have changed since), so the introspection is current.
  (cd "$FZ_ROOT" && ninja -C "$dir" build.ninja >/dev/null) || fz_die 1 "cannot regenerate $dir"
  (cd "$FZ_ROOT" && meson introspect "$dir" --tests --targets) | python3 -c '
import json, os, sys
info = json.load(sys.stdin)
build = os.path.realpath(sys.argv[1])
suites = {a for a in sys.argv[2:] if not a.startswith("name:")}
names = {a[5:] for a in sys.argv[2:] if a.startswith("name:")}
by_id = {t["id"]: t for t in info["targets"]}
want = set()
for t in info["tests"]:
    mine = {s.split(":", 1)[-1] for s in t.get("suite", [])}
    if not (mine & suites or t["name"] in names):
        continue
    files = [t["cmd"][0]] if t.get("cmd") else []
    for dep in t.get("depends", []):
        files += by_id.get(dep, {}).get("filename", [])
    for f in files:
        f = os.path.realpath(f)
        if f.startswith(build + os.sep):
            want.add(os.path.relpath(f, build))
print("\n".join(sorted(want)))
' "$dir" "$@"
}

# A plain release build, as a user would make it (no -Werror): what benchmarks and scripts/run
# use. fz_prepare_release [TARGET...] builds only the named targets.
fz_prepare_release() {
  fz_ensure_packages
  fz_configure "$FZ_RELEASE_DIR" "${FZ_RELEASE_OPTIONS[@]}"
  fz_build "$FZ_RELEASE_DIR" "$@"
}
