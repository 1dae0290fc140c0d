#!/usr/bin/env bash
# Runs cortado for the action. Every input arrives through the environment (the action's
# `env:`), so no input is ever pasted into shell code.
#
# Environment:
#   CORTADO_COMMAND            the command, e.g. `deploy` or `diff` (words of letters, digits, '-')
#   CORTADO_CONFIG             config file(s); one per line for several; empty: cortado's default
#   CORTADO_RELEASE_INPUT      a release file; when set, CORTADO_CONFIG is not used
#   CORTADO_ARGS               extra arguments (rule below)
#   CORTADO_WORKING_DIRECTORY  where to run (default .)
#   CORTADO_GITHUB_TOKEN       exported as GITHUB_TOKEN for the PR comment
#
# Exit status: cortado's, except that `diff` exiting 2 ("there are changes") counts as success
# here — in a pull-request workflow changes are the normal case; the `changed` output says so.
#
# The rule for CORTADO_ARGS: when it contains a line break, every non-empty line is one
# argument, taken verbatim (spaces kept); otherwise it is split on spaces and tabs. There is no
# quote processing, no globbing and no expansion of $, `, \ or ~ in either form.
set -euo pipefail

die() {
  local data="${1//%/%25}"
  printf '::error title=cortado::%s\n' "${data//$'\n'/%0A}"
  printf 'error: %s\n' "$1" >&2
  exit 1
}

command_words="${CORTADO_COMMAND:-deploy}"
read -ra command <<<"$command_words"
[[ ${#command[@]} -gt 0 ]] || die "the command input is empty"
for w in "${command[@]}"; do
  [[ "$w" =~ ^[a-z][a-z0-9-]*$ ]] || die "invalid command word '$w': the command input takes cortado commands such as deploy or diff; put flags in args"
done

argv=()
release="${CORTADO_RELEASE_INPUT:-}"
unset CORTADO_RELEASE_INPUT
if [[ -n "${release//[[:space:]]/}" ]]; then
  # A release names its configs; cortado must not also read CORTADO_CONFIG from the
  # environment (the `config` input's default would then choose among the release's steps;
  # pass `--config` in `args` for that).
  argv+=(--release "$release")
  unset CORTADO_CONFIG
elif [[ -n "${CORTADO_CONFIG:-}" ]]; then
  while IFS= read -r c || [[ -n "$c" ]]; do
    c="${c%$'\r'}"
    if [[ -n "${c//[[:space:]]/}" ]]; then argv+=(--config "$c"); fi
  done <<<"$CORTADO_CONFIG"
fi
argv+=("${command[@]}")

extra="${CORTADO_ARGS:-}"
if [[ "$extra" == *$'\n'* ]]; then
  while IFS= read -r a || [[ -n "$a" ]]; do
    a="${a%$'\r'}"
    if [[ -n "$a" ]]; then argv+=("$a"); fi
  done <<<"$extra"
elif [[ -n "$extra" ]]; then
  read -ra words <<<"$extra"
  argv+=("${words[@]}")
fi

if [[ -n "${CORTADO_GITHUB_TOKEN:-}" ]]; then
  export GITHUB_TOKEN="$CORTADO_GITHUB_TOKEN"
fi
unset CORTADO_GITHUB_TOKEN

cd -- "${CORTADO_WORKING_DIRECTORY:-.}" || die "cannot enter the working directory '${CORTADO_WORKING_DIRECTORY:-.}'"
printf 'cortado'
printf ' %q' "${argv[@]}"
printf '\n'
# exec: cortado itself receives the runner's SIGINT/SIGTERM on cancellation and can stop or
# roll back cleanly. (`diff` exits 0 whether or not something differs unless `--exit-code`
# asks for 2: then a change fails the step, as asked.)
exec cortado "${argv[@]}"
