# shellcheck shell=bash
# Shared by scripts/test and scripts/run: install what is missing, configure, build.
# Source it; do not run it. Every function assumes `set -euo pipefail` in the caller.

# The repository root, whatever directory the caller was started from.
FZ_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FZ_BUILD_DIR="build"

# Debian 12 packages the build and the test suites need. clang and libclang-rt-14-dev build the
# libFuzzer targets; libbenchmark-dev the micro-benchmarks; libcli11-dev (CLI11) parses the
# commands' command lines; nlohmann-json3-dev reads and writes JSON.
FZ_PACKAGES=(meson ninja-build g++ pkg-config libgtest-dev libbenchmark-dev liburing-dev libsodium-dev clang libclang-rt-14-dev
             libcli11-dev nlohmann-json3-dev)

fz_log() { printf '==> %s\n' "$*"; }
fz_die() {
  local code="$1"
  shift
  printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2
  exit "$code"
}

# Installs the packages of FZ_PACKAGES that are not installed. Needs root and apt-get to install;
# otherwise names the missing packages and exits 2.
fz_ensure_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    fz_log "dpkg-query not found (not a Debian system?): not checking packages; need: ${FZ_PACKAGES[*]}"
    return 0
  fi
  local missing=() p status
  for p in "${FZ_PACKAGES[@]}"; do
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

# Configures $FZ_BUILD_DIR: a fresh `meson setup` when it is not a meson build directory yet, a
# reconfigure when it is but cannot be used as it is (no build.ninja, or written by another meson
# version). Changes to meson.build files are picked up by ninja itself.
fz_configure() {
  cd "$FZ_ROOT" || exit 1
  local dir="$FZ_BUILD_DIR"
  if [[ ! -f "$dir/meson-private/coredata.dat" ]]; then
    # Also covers a directory left over by a failed setup: meson setup writes over it.
    fz_log "configuring $dir/ (meson setup --buildtype=debugoptimized)"
    meson setup "$dir" --buildtype=debugoptimized
  elif [[ ! -f "$dir/build.ninja" ]]; then
    fz_log "reconfiguring $dir/ (no build.ninja)"
    meson setup --reconfigure "$dir"
  elif ! meson introspect "$dir" --projectinfo >/dev/null 2>&1; then
    fz_log "reconfiguring $dir/ from scratch (written by another meson version)"
    meson setup --wipe "$dir" --buildtype=debugoptimized
  fi
}

fz_build() {
  cd "$FZ_ROOT" || exit 1
  fz_log "building (ninja -C $FZ_BUILD_DIR)"
  if ! ninja -C "$FZ_BUILD_DIR"; then
    fz_die 1 "build failed (see the compiler output above)"
  fi
}

# Everything a script needs before it runs anything: packages, configure, build.
fz_prepare() {
  fz_ensure_packages
  fz_configure
  fz_build
}
