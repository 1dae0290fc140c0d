#!/usr/bin/env bash
# Installs a released cortado binary for the runner, verified against a SHA-256 committed in
# this repository (checksums/<version>.sha256), into the tool cache, and puts it on PATH.
#
# Environment (the action's `env:` sets these; no workflow expression is pasted into this script):
#   CORTADO_VERSION           `latest`, `source`, or a release tag like `v1.2.3` (`1.2.3` works too)
#   CORTADO_TOKEN             token for the GitHub API (resolving `latest`); optional
#   CORTADO_REPO              owner/name of cortado's repository (default cortado-dev/cortado)
#   CORTADO_RELEASE_BASE_URL  where release files live (default https://github.com/$CORTADO_REPO/releases/download)
#   CORTADO_API_URL           GitHub API root (default $GITHUB_API_URL, else https://api.github.com)
#   CORTADO_CHECKSUMS_DIR     committed checksums (default: checksums/ next to this script's folder)
#   CORTADO_TARGET            override the target triple (default: from RUNNER_OS/RUNNER_ARCH or uname)
#   CORTADO_SOURCE_ROOT       where `source` installs (default $RUNNER_TEMP/cortado-source, the
#                             folder the action's cache restores and saves)
#   RUNNER_OS, RUNNER_ARCH, RUNNER_TOOL_CACHE, RUNNER_TEMP, GITHUB_PATH, GITHUB_ACTION_PATH
#
# Fails (never skips) when: the version has no committed checksum, the download's SHA-256
# differs, or neither sha256sum nor shasum is available.
set -euo pipefail

repo="${CORTADO_REPO:-cortado-dev/cortado}"
version="${CORTADO_VERSION:-latest}"
script_dir="${BASH_SOURCE[0]%/*}"
if [[ "$script_dir" == "${BASH_SOURCE[0]}" ]]; then script_dir=.; fi
action_dir="${GITHUB_ACTION_PATH:-$script_dir/..}"
checksums_dir="${CORTADO_CHECKSUMS_DIR:-$script_dir/../checksums}"

die() {
  local data="${1//%/%25}"
  data="${data//$'\r'/%0D}"
  printf '::error title=cortado install::%s\n' "${data//$'\n'/%0A}"
  printf 'error: %s\n' "$1" >&2
  exit 1
}
note() { printf 'cortado install: %s\n' "$1" >&2; }

add_to_path() {
  if [[ -n "${GITHUB_PATH:-}" ]]; then
    printf '%s\n' "$1" >>"$GITHUB_PATH"
  else
    note "GITHUB_PATH is not set; add $1 to PATH yourself"
  fi
}

# --- build from the action's own checkout -------------------------------------------------
# The action restores $root from its cache before this step (key: scripts/source-key.sh, the
# sources' hash and the runner) and saves it right after, so only the first job that uses a
# given commit on a given runner kind pays for the build.
if [[ "$version" == "source" ]]; then
  root="${CORTADO_SOURCE_ROOT:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}/cortado-source}"
  if [[ -f "$root/bin/cortado" && ! -L "$root/bin/cortado" ]] && "$root/bin/cortado" version >/dev/null 2>&1; then
    note "using cortado built from $action_dir by an earlier job (restored from the cache into $root)"
    add_to_path "$root/bin"
    exit 0
  fi
  command -v cargo >/dev/null 2>&1 || die "version 'source' needs cargo on the runner (install a Rust toolchain first)"
  note "building cortado from $action_dir (a release build: the first job pays, later ones restore it)"
  cargo install --locked --path "$action_dir" --root "$root"
  add_to_path "$root/bin"
  exit 0
fi

# --- target triple -------------------------------------------------------------------------
if [[ -n "${CORTADO_TARGET:-}" ]]; then
  target="$CORTADO_TARGET"
else
  os="${RUNNER_OS:-$(uname -s)}"
  arch="${RUNNER_ARCH:-$(uname -m)}"
  case "$os" in
    Linux | linux) os=linux ;;
    macOS | Darwin | darwin) os=macos ;;
    *) die "cortado has no release for $os runners (Linux and macOS only); use version: source to build it" ;;
  esac
  case "$arch" in
    X64 | x86_64 | amd64) arch=x86_64 ;;
    ARM64 | arm64 | aarch64) arch=aarch64 ;;
    *) die "cortado has no release for $arch runners (x86_64 and arm64 only)" ;;
  esac
  case "$os" in
    linux) target="$arch-unknown-linux-musl" ;;
    macos) target="$arch-apple-darwin" ;;
  esac
fi
[[ "$target" =~ ^[a-z0-9_]+-[a-z0-9_-]+$ ]] || die "invalid target triple '$target'"

# --- version -------------------------------------------------------------------------------
if [[ "$version" == "latest" ]]; then
  api="${CORTADO_API_URL:-${GITHUB_API_URL:-https://api.github.com}}"
  headers=(-H "Accept: application/vnd.github+json" -H "X-GitHub-Api-Version: 2022-11-28")
  if [[ -n "${CORTADO_TOKEN:-}" ]]; then
    headers+=(-H "Authorization: Bearer $CORTADO_TOKEN")
  fi
  body="$(curl -fsSL --retry 3 "${headers[@]}" "$api/repos/$repo/releases/latest")" ||
    die "cannot resolve the latest cortado release from $api/repos/$repo/releases/latest; set version: to a release tag"
  re='"tag_name"[[:space:]]*:[[:space:]]*"([^"]+)"'
  [[ "$body" =~ $re ]] || die "the latest-release answer from $api has no tag_name; set version: to a release tag"
  version="${BASH_REMATCH[1]}"
  note "latest release is $version"
fi
[[ "$version" == v* ]] || version="v$version"
[[ "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] ||
  die "invalid cortado version '$version': use latest, source, or a release tag like v1.2.3"

file="cortado-$version-$target.tar.gz"

# --- the committed checksum ---------------------------------------------------------------
sums="$checksums_dir/$version.sha256"
[[ -f "$sums" ]] || die "no committed checksum for cortado $version (expected $sums); use a version listed in the action's checksums/ folder, or version: source"
expected=""
while read -r sum name rest || [[ -n "${sum:-}" ]]; do
  name="${name#\*}"
  if [[ "$name" == "$file" ]]; then
    expected="$sum"
    break
  fi
done <"$sums"
[[ -n "$expected" ]] || die "$sums has no checksum for $file"
[[ "$expected" =~ ^[0-9a-f]{64}$ ]] || die "$sums has a malformed checksum for $file (want 64 lowercase hex digits)"

if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$1"; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256 "$1"; }
else
  die "cannot verify the download: neither sha256sum nor shasum is installed (refusing to install an unverified binary)"
fi

# --- the tool cache -------------------------------------------------------------------------
# The cache keeps the verified archive beside the binary. Nothing in the cache is trusted as
# it is: on every hit the archive is checked against the committed checksum again, and the
# cached binary against the one in that archive, byte for byte by SHA-256. A cache on a
# persistent or self-hosted runner can be written by other jobs; a binary that differs is
# replaced from the archive, an archive that differs is downloaded again.
cache="${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}/tool-cache}"
dest="$cache/cortado/$version/$target"
work="$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/cortado-install.XXXXXX")"
trap 'rm -rf "$work"' EXIT

digest() {
  local d
  d="$(sha256 "$1")" || die "cannot compute the SHA-256 of $1"
  printf '%s' "${d%% *}"
}

# Unpacks a verified archive into $work/unpacked (the binary only at its top level).
unpack() {
  rm -rf "$work/unpacked"
  mkdir -p "$work/unpacked"
  tar -xzf "$1" -C "$work/unpacked" --no-same-owner || die "cannot unpack $file"
  [[ -f "$work/unpacked/cortado" && ! -L "$work/unpacked/cortado" ]] || die "$file has no cortado binary at its top level"
  chmod 0755 "$work/unpacked/cortado"
}

# Puts $work/unpacked, with the verified archive $1 beside the binary, in the cache.
install_unpacked() {
  cp "$1" "$work/unpacked/$file"
  mkdir -p "${dest%/*}"
  rm -rf "$dest"
  mv "$work/unpacked" "$dest"
}

if [[ -f "$dest/$file" && ! -L "$dest/$file" ]]; then
  if [[ "$(digest "$dest/$file")" == "$expected" ]]; then
    cp "$dest/$file" "$work/$file"
    unpack "$work/$file"
    want="$(digest "$work/unpacked/cortado")"
    have=""
    if [[ -f "$dest/cortado" && -x "$dest/cortado" && ! -L "$dest/cortado" ]]; then
      have="$(digest "$dest/cortado")"
    fi
    if [[ "$have" == "$want" ]]; then
      note "using cached cortado $version ($target) from $dest (archive and binary sha256 verified)"
      add_to_path "$dest"
      exit 0
    fi
    note "the cached cortado binary in $dest differs from its verified archive; reinstalling it"
    install_unpacked "$work/$file"
    note "installed cortado $version ($target) in $dest"
    add_to_path "$dest"
    exit 0
  fi
  note "the cached archive in $dest does not match the committed checksum; downloading again"
fi

# --- download, verify, unpack ---------------------------------------------------------------
base="${CORTADO_RELEASE_BASE_URL:-https://github.com/$repo/releases/download}"
url="$base/$version/$file"
note "downloading $url"
curl -fsSL --retry 3 -o "$work/$file" "$url" || die "cannot download $url"
actual="$(digest "$work/$file")"
if [[ "$actual" != "$expected" ]]; then
  die "checksum mismatch for $file: expected $expected (committed in $sums), got $actual; the download was not installed"
fi
note "sha256 ok: $actual"

unpack "$work/$file"
install_unpacked "$work/$file"
note "installed cortado $version ($target) in $dest"
add_to_path "$dest"
