#!/usr/bin/env bash
# The cache of a `version: source` install: writes `key` and `dir` to $GITHUB_OUTPUT (or prints
# them) for the action's actions/cache/restore and actions/cache/save steps.
#
# The key is what decides the binary: a SHA-256 over the files `cargo install` builds from
# (Cargo.toml, Cargo.lock, src/, crates/ of the action's checkout, so the same commit always
# gives the same key), the runner's OS, architecture and image (a binary linked on one image's
# libc may not run on an older one). The toolchain is left out on purpose: any rustc the
# manifest accepts builds a working binary, and a weekly runner-image update must not cost a
# rebuild.
#
# Environment: GITHUB_ACTION_PATH (the action's checkout; default: this script's folder's
# parent), RUNNER_OS, RUNNER_ARCH, ImageOS, RUNNER_TEMP, GITHUB_OUTPUT.
set -euo pipefail

script_dir="${BASH_SOURCE[0]%/*}"
if [[ "$script_dir" == "${BASH_SOURCE[0]}" ]]; then script_dir=.; fi
action_dir="${GITHUB_ACTION_PATH:-$script_dir/..}"

if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256; }
else
  echo "error: neither sha256sum nor shasum is installed" >&2
  exit 1
fi

cd "$action_dir"
files=(Cargo.toml Cargo.lock)
for d in src crates; do
  if [[ -d "$d" ]]; then files+=("$d"); fi
done
# One line per file, `DIGEST  PATH`, in a fixed order; then the digest of that list.
sources="$(find "${files[@]}" -type f -print | LC_ALL=C sort | while IFS= read -r f; do
  printf '%s  %s\n' "$(sha256 <"$f" | cut -c1-64)" "$f"
done | sha256 | cut -c1-64)"

runner="${RUNNER_OS:-$(uname -s)}-${RUNNER_ARCH:-$(uname -m)}-${ImageOS:-unknown}"
key="cortado-source-$runner-$sources"
dir="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/cortado-source"
if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
  printf 'key=%s\ndir=%s\n' "$key" "$dir" >>"$GITHUB_OUTPUT"
fi
printf 'cortado source build cache: key %s, folder %s\n' "$key" "$dir"
