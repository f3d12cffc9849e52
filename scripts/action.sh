#!/usr/bin/env bash
# The script of action.yml, runnable outside GitHub (scripts/action-test.sh runs it): from the
# repository to check (the current directory), finds the merge base with ROLEGATE_BASE_REF, checks
# it out in a temporary worktree and runs `rolegate check PATHS --base <merge base>/PATHS`.
# Environment: ROLEGATE_PATHS (default .), ROLEGATE_BASE_REF (empty: no --base), ROLEGATE_OUTPUT
# (default github), ROLEGATE_INSTALL (build | path), ROLEGATE_ACTION_SOURCE (the rolegate source).
# Exits with rolegate's exit code: 0 clean, 1 findings, 2 unreadable input.
set -euo pipefail
source_dir="${ROLEGATE_ACTION_SOURCE:-$(cd "$(dirname "$0")/.." && pwd)}"
read -r -a paths <<< "${ROLEGATE_PATHS:-.}"
base_ref="${ROLEGATE_BASE_REF:-}"
output="${ROLEGATE_OUTPUT:-github}"

case "${ROLEGATE_INSTALL:-build}" in
  build)
    root="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/rolegate-action"
    cargo install --quiet --locked --path "$source_dir" --root "$root" --bin rolegate >&2
    rolegate="$root/bin/rolegate"
    ;;
  path) rolegate="$(command -v rolegate)" ;;
  *) echo "ROLEGATE_INSTALL must be build or path, not ${ROLEGATE_INSTALL}" >&2; exit 2 ;;
esac

args=(check --output "$output" "${paths[@]}")
if [ -n "$base_ref" ]; then
  # A shallow checkout may not have the base branch: fetch it (and enough history to meet it).
  if ! git rev-parse --verify --quiet "origin/$base_ref^{commit}" >/dev/null; then
    git fetch --quiet --no-tags origin "+refs/heads/$base_ref:refs/remotes/origin/$base_ref" >&2
  fi
  merge_base="$(git merge-base "origin/$base_ref" HEAD)"
  base_tree="$(mktemp -d)"
  trap 'git worktree remove --force "$base_tree" >/dev/null 2>&1 || true; rm -rf "$base_tree"' EXIT
  git worktree add --quiet --detach "$base_tree" "$merge_base" >&2
  for path in "${paths[@]}"; do
    # A path the base does not have yet is an empty base: everything under it is new.
    if [ -e "$base_tree/$path" ]; then
      args+=(--base "$base_tree/$path")
    fi
  done
  echo "rolegate: checking ${paths[*]} against merge base $merge_base of origin/$base_ref" >&2
fi
set +e
"$rolegate" "${args[@]}"
code=$?
set -e
exit "$code"
