#!/usr/bin/env python3
"""Checks every crates.io package of Cargo.lock against the crates.io index: a locked
version that its authors yanked (withdrawn, often for a bug or a security fix) is reported.

The RustSec advisory database (what `cargo audit` reads) is served from GitHub, which some
build machines cannot reach; the index is reachable wherever cargo can fetch crates. This is
a weaker check than `cargo audit`, not a replacement: it only sees what authors yanked.

    python3 scripts/check-lock.py [Cargo.lock]

Prints one line per yanked version and a summary; exits 1 when any is yanked, 2 when the
index could not be read.
"""

import json
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

INDEX = "https://index.crates.io"
REGISTRY = "registry+https://github.com/rust-lang/crates.io-index"


def locked_packages(path):
    """(name, version) of every crates.io package in a Cargo.lock (TOML, read by hand so
    that Python 3.10 without tomllib works too)."""
    packages, current = [], {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line == "[[package]]":
                current = {}
                packages.append(current)
            elif " = " in line and not line.startswith("["):
                key, value = line.split(" = ", 1)
                if value.startswith('"'):
                    current[key] = value.strip('"')
    return [
        (p["name"], p["version"])
        for p in packages
        if p.get("source") == REGISTRY and "name" in p and "version" in p
    ]


def index_path(name):
    n = name.lower()
    if len(n) <= 2:
        return f"{len(n)}/{n}"
    if len(n) == 3:
        return f"3/{n[0]}/{n}"
    return f"{n[:2]}/{n[2:4]}/{n}"


def yanked(package):
    name, version = package
    with urllib.request.urlopen(f"{INDEX}/{index_path(name)}", timeout=30) as r:
        for line in r.read().decode("utf-8").splitlines():
            entry = json.loads(line)
            if entry.get("vers") == version:
                return entry.get("yanked", False)
    raise LookupError(f"{name} {version} is not in the index")


def main():
    lock = sys.argv[1] if len(sys.argv) > 1 else "Cargo.lock"
    packages = locked_packages(lock)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(yanked, packages))
    except Exception as e:  # network, or a version the index does not list
        print(f"check-lock: cannot read the crates.io index: {e}", file=sys.stderr)
        return 2
    bad = [p for p, y in zip(packages, results) if y]
    for name, version in bad:
        print(f"yanked: {name} {version}")
    print(f"{len(packages)} crates.io packages in {lock}, {len(bad)} yanked")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
