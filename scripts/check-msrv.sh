#!/usr/bin/env bash
# Checks that Cargo.toml's rust-version is the minimum the locked dependencies really need:
# the highest `rust-version` any package in Cargo.lock declares. Cheap (no second toolchain);
# CI runs it from scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 --locked | python3 -c '
import json, sys
meta = json.load(sys.stdin)
def key(v): return tuple(int(x) for x in (v.split(".") + ["0", "0"])[:3])
root = next(p for p in meta["packages"] if p["id"] in meta["workspace_members"])
deps = [(key(p["rust_version"]), p["name"], p["rust_version"]) for p in meta["packages"]
        if p.get("rust_version") and p["id"] not in meta["workspace_members"]]
need, name, text = max(deps)
declared = root.get("rust_version")
if declared is None or key(declared) != need:
    sys.exit(f"Cargo.toml declares rust-version {declared}, but the lockfile needs {text} ({name})")
print(f"rust-version {declared} matches the lockfile")
'
