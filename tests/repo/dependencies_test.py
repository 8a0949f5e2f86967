#!/usr/bin/env python3
"""Every meson dependency() has its Debian package in scripts/lib.sh's install lists.

A fresh Debian 12 machine gets only what scripts/lib.sh installs; a package installed by hand
on a developer's or CI's machine hides a missing entry (that is how libjemalloc-dev went
missing). This test reads every meson.build of the tree, maps each dependency name to the
Debian package that provides it, and fails when a name is unknown or its package is not in a
FZ_*PACKAGES list of scripts/lib.sh.

Run from anywhere: python3 tests/repo/dependencies_test.py
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

# meson's dependency name -> the Debian 12 package that provides it. A new dependency() needs a
# line here and its package in scripts/lib.sh.
PACKAGE_OF = {
    "gtest": "libgtest-dev",
    "benchmark": "libbenchmark-dev",
    "liburing": "liburing-dev",
    "libsodium": "libsodium-dev",
    "CLI11": "libcli11-dev",
    "jemalloc": "libjemalloc-dev",
    "nlohmann_json": "nlohmann-json3-dev",
    "libzookeeper_mt": "libzookeeper-mt-dev",
    "zookeeper_mt": "libzookeeper-mt-dev",
    "libdpdk": "libdpdk-dev",
    "fmt": "libfmt-dev",
}
# Provided by meson or the compiler itself.
BUILT_IN = {"threads", "dl", "openmp"}

DEPENDENCY = re.compile(r"""\bdependency\(\s*['"]([^'"]+)['"]""")


def meson_files(root):
    for top, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git" and not d.startswith("build")]
        if "meson.build" in files:
            yield os.path.join(top, "meson.build")


def dependencies(root):
    """{name: [file:line, ...]} over every meson.build under root."""
    found = {}
    for path in meson_files(root):
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                code = line.split("#", 1)[0]
                for name in DEPENDENCY.findall(code):
                    found.setdefault(name, []).append(f"{os.path.relpath(path, root)}:{n}")
    return found


def installed_by(lib_sh):
    """Every package in the FZ_*PACKAGES arrays of lib_sh (sourced by bash, as the scripts do)."""
    script = (f'source "{lib_sh}" >/dev/null; '
              'for v in $(compgen -A variable | grep -E "^FZ_[A-Z_]*PACKAGES$"); do '
              'eval "printf \'%s\\n\' \\"\\${${v}[@]}\\""; done')
    out = subprocess.run(["bash", "-c", script], check=True, capture_output=True, text=True)
    return set(out.stdout.split())


def problems(root, lib_sh):
    """One line per dependency without an install step (empty when all is well)."""
    have = installed_by(lib_sh)
    out = []
    for name, places in sorted(dependencies(root).items()):
        if name in BUILT_IN:
            continue
        pkg = PACKAGE_OF.get(name)
        where = ", ".join(places)
        if pkg is None:
            out.append(f"{where}: dependency('{name}'): no Debian package known for it; add it to "
                       f"PACKAGE_OF in {os.path.relpath(__file__, ROOT)} and to scripts/lib.sh")
        elif pkg not in have:
            out.append(f"{where}: dependency('{name}') needs {pkg}, which scripts/lib.sh does not "
                       "install: a fresh machine cannot build")
    return out


def pkg_config_owner(name):
    """The Debian package that owns name's pkg-config file, or None when it cannot be told."""
    if not shutil.which("pkg-config") or not shutil.which("dpkg"):
        return None
    r = subprocess.run(["pkg-config", "--path", name], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip():
        return None
    path = os.path.realpath(r.stdout.strip())
    r = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    return r.stdout.split(":", 1)[0].strip()


class DependenciesTest(unittest.TestCase):
    def test_every_dependency_is_installed_by_lib_sh(self):
        found = dependencies(ROOT)
        self.assertIn("jemalloc", found, "the scan found no dependency('jemalloc'): is it broken?")
        self.assertEqual(problems(ROOT, os.path.join(ROOT, "scripts", "lib.sh")), [])

    def test_table_names_the_package_that_provides_each_dependency(self):
        # Where pkg-config finds the dependency here, dpkg says which package owns its .pc
        # file: the table must name that package, or lib.sh would install the wrong one.
        checked = 0
        for name in dependencies(ROOT):
            if name in BUILT_IN or name not in PACKAGE_OF:
                continue
            owner = pkg_config_owner(name)
            if owner is None:
                continue
            checked += 1
            self.assertEqual(owner.split(":")[0], PACKAGE_OF[name], f"dependency('{name}')")
        if checked == 0:
            self.skipTest("pkg-config or dpkg cannot tell the owners on this machine")

    def test_a_missing_install_step_is_reported(self):
        # The check itself must fail on the mistake it exists for: a tree whose meson.build asks
        # for jemalloc while lib.sh does not install libjemalloc-dev.
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "meson.build"), "w") as f:
                f.write("project('x', 'cpp')\njemalloc_dep = dependency('jemalloc', required : true)\n"
                        "# dependency('in_a_comment')\nt = dependency('threads')\n")
            lib = os.path.join(d, "lib.sh")
            with open(lib, "w") as f:
                f.write("FZ_PACKAGES=(meson g++ liburing-dev)\nFZ_OTHER_PACKAGES=(zookeeper)\n")
            found = problems(d, lib)
            self.assertEqual(len(found), 1, found)
            self.assertIn("libjemalloc-dev", found[0])
            self.assertIn("meson.build:2", found[0])
            with open(lib, "a") as f:
                f.write("FZ_PACKAGES+=(libjemalloc-dev)\n")
            self.assertEqual(problems(d, lib), [])
            with open(os.path.join(d, "meson.build"), "a") as f:
                f.write("z = dependency('zlib_unknown')\n")
            found = problems(d, lib)
            self.assertEqual(len(found), 1, found)
            self.assertIn("no Debian package known", found[0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
