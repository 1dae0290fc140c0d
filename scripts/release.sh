#!/usr/bin/env bash
# Cuts a cortado release, start to end, from a maintainer's clone:
#   1. checks: the version is vX.Y.Z, Cargo.toml says X.Y.Z, CHANGELOG.md has a `## [X.Y.Z]`
#      section, the tree is clean and on main, in step with origin, and the tag is new;
#   2. tags vX.Y.Z (annotated) and pushes the tag: .github/workflows/release.yml builds the four
#      archives, writes SHA256SUMS and uploads them to the GitHub release;
#   3. waits for that workflow run, downloads SHA256SUMS and the archives, checks every archive
#      against SHA256SUMS on this machine, and commits SHA256SUMS as checksums/vX.Y.Z.sha256;
#   4. pushes that commit: from then on the action installs vX.Y.Z (`version: latest` too).
# The checksum commit is the human-reviewed record of what was built; the workflow never
# writes it (see checksums/README.md).
#
# Usage: scripts/release.sh vX.Y.Z [--dry-run]
#   --dry-run   run the checks and print the steps without tagging or pushing anything
# Needs: git, gh (logged in, allowed to push to the repository), sha256sum or shasum.
# Environment: CORTADO_RELEASE_REMOTE (default origin), CORTADO_RELEASE_BRANCH (default main).
set -euo pipefail

die() {
  printf 'release: %s\n' "$1" >&2
  exit 1
}
step() { printf '== %s\n' "$1"; }

[[ $# -ge 1 && $# -le 2 ]] || die "usage: scripts/release.sh vX.Y.Z [--dry-run]"
tag="$1"
dry_run=false
if [[ $# -eq 2 ]]; then
  [[ "$2" == "--dry-run" ]] || die "unknown argument '$2' (usage: scripts/release.sh vX.Y.Z [--dry-run])"
  dry_run=true
fi
[[ "$tag" =~ ^v([0-9]+\.[0-9]+\.[0-9]+)$ ]] || die "'$tag' is not a version tag like v1.2.3"
version="${BASH_REMATCH[1]}"
remote="${CORTADO_RELEASE_REMOTE:-origin}"
branch="${CORTADO_RELEASE_BRANCH:-main}"

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# --- what must be true before anything is pushed ----------------------------------------------
manifest_version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
[[ "$manifest_version" == "$version" ]] ||
  die "Cargo.toml's version is $manifest_version, not $version: bump it (and Cargo.lock) in a commit first"
grep -qs "^## \[$version\]" CHANGELOG.md ||
  die "CHANGELOG.md has no '## [$version]' section: move the Unreleased entries under it first"
[[ ! -e "checksums/$tag.sha256" ]] || die "checksums/$tag.sha256 already exists"
if command -v sha256sum >/dev/null 2>&1; then
  check_sums() { sha256sum -c "$1"; }
elif command -v shasum >/dev/null 2>&1; then
  check_sums() { shasum -a 256 -c "$1"; }
else
  die "neither sha256sum nor shasum is installed: the archives could not be checked"
fi
command -v gh >/dev/null 2>&1 || die "gh (the GitHub CLI) is needed: https://cli.github.com"
[[ -z "$(git status --porcelain)" ]] || die "the working tree has changes: commit or remove them first"
[[ "$(git rev-parse --abbrev-ref HEAD)" == "$branch" ]] || die "not on $branch"
git fetch --quiet "$remote" "$branch" --tags
[[ "$(git rev-parse HEAD)" == "$(git rev-parse "$remote/$branch")" ]] ||
  die "$branch is not in step with $remote/$branch: pull or push first"
! git rev-parse -q --verify "refs/tags/$tag" >/dev/null || die "tag $tag exists already"

if $dry_run; then
  step "dry run: checks passed for $tag at $(git rev-parse --short HEAD)"
  echo "would: git tag -a $tag; git push $remote $tag; wait for release.yml;"
  echo "       download SHA256SUMS and the archives; check them; commit checksums/$tag.sha256; push"
  exit 0
fi

# --- tag, build, checksum -------------------------------------------------------------------
step "tagging $tag at $(git rev-parse --short HEAD)"
git tag -a "$tag" -m "cortado $tag"
git push "$remote" "refs/tags/$tag"

step "waiting for the release workflow of $tag"
run_id=""
for _ in $(seq 1 60); do
  run_id="$(gh run list --workflow release.yml --branch "$tag" --limit 1 --json databaseId --jq '.[0].databaseId // empty')"
  [[ -n "$run_id" ]] && break
  sleep 5
done
[[ -n "$run_id" ]] || die "no run of release.yml started for $tag within 5 minutes (see the repository's Actions tab)"
gh run watch "$run_id" --exit-status || die "the release workflow failed: gh run view $run_id --log-failed"

step "checking the archives against SHA256SUMS"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
gh release download "$tag" --dir "$work" --pattern 'SHA256SUMS' --pattern 'cortado-*.tar.gz'
(cd "$work" && check_sums SHA256SUMS) || die "an archive does not match SHA256SUMS: nothing was committed"
[[ "$(wc -l <"$work/SHA256SUMS")" -eq 4 ]] || die "SHA256SUMS does not list the four archives"
cp "$work/SHA256SUMS" "checksums/$tag.sha256"

step "committing checksums/$tag.sha256"
git add "checksums/$tag.sha256"
git commit -m "checksums: $tag"
git push "$remote" "$branch"
step "released $tag: the action installs it once this commit is the one a workflow pins"
