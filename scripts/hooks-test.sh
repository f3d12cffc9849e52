#!/usr/bin/env bash
# Tests the CI integrations on a sample repository made in a temp dir:
# - the composite action's script (scripts/action.sh, what action.yml runs) on a pull request
#   branch: a change only --base can judge (R11, a binding's role changed) fails with a GitHub
#   annotation, the same tree without the merge base passes, and a legal change passes;
# - the pre-commit hook `rolegate-check` (.pre-commit-hooks.yaml) through `pre-commit try-repo`
#   (pre-commit from PyPI, installed by scripts/venv.sh): a clean tree passes, a broken one fails
#   with rolegate's message.
# pre-commit builds the hook with `cargo install`; its target dir is kept under target/ with a
# cheap release profile, so only the first run compiles the dependencies.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
cargo build --quiet --bin rolegate
bin="${CARGO_TARGET_DIR:-$repo/target}/debug/rolegate"
venv="$(bash scripts/venv.sh)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

git_() { git -c user.name=ci -c user.email=ci@example.invalid -c init.defaultBranch=main "$@"; }

# The sample repository, its origin, and a pull request branch.
git_ init --quiet --bare "$work/origin.git"
git_ clone --quiet "$work/origin.git" "$work/sample" 2>/dev/null
cd "$work/sample"
mkdir deploy && cp "$repo"/examples/tenant/*.yaml deploy/
git_ add deploy && git_ commit --quiet -m base && git_ push --quiet origin HEAD:main 2>/dev/null
git_ checkout --quiet -b pr
sed -i 's/spec: {account: globex, member: hank, role: support}/spec: {account: globex, member: hank, role: billing}/' deploy/globex.yaml
grep -q 'member: hank, role: billing' deploy/globex.yaml || fail "sample edit did not apply"
git_ commit --quiet -am "change hank-support's role"

echo "== action script: a transition only --base judges (R11)"
set +e
out="$(PATH="$(dirname "$bin"):$PATH" ROLEGATE_INSTALL=path ROLEGATE_PATHS=deploy ROLEGATE_BASE_REF=main \
  bash "$repo/scripts/action.sh" 2>"$work/err")"
code=$?
set -e
[ "$code" = 1 ] || fail "action script exit $code, want 1: $out $(cat "$work/err")"
echo "$out" | grep -q '^::error file=.*deploy/globex.yaml,line=[0-9]*,title=R11 immutable::RoleBinding/hank-support: \[R11\] spec.role is immutable' \
  || fail "no R11 annotation: $out"
grep -q 'against merge base' "$work/err" || fail "no merge base used: $(cat "$work/err")"
[ -z "$(git worktree list | sed 1d)" ] || fail "the base worktree was left behind"
"$bin" check deploy >/dev/null 2>&1 || fail "without --base the same tree should pass"

echo "== action script: a legal change passes"
git_ checkout --quiet main 2>/dev/null || git_ checkout --quiet -b main origin/main
git_ checkout --quiet -b pr-ok
sed -i 's/displayName: Globex Corporation/displayName: Globex Corp./' deploy/globex.yaml
git_ commit --quiet -am "rename globex"
PATH="$(dirname "$bin"):$PATH" ROLEGATE_INSTALL=path ROLEGATE_PATHS=deploy ROLEGATE_BASE_REF=main \
  bash "$repo/scripts/action.sh" >"$work/out" 2>"$work/err" || fail "legal change failed: $(cat "$work/out" "$work/err")"

echo "== pre-commit try-repo rolegate-check"
export CARGO_TARGET_DIR="$repo/target/pre-commit"
export CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_INCREMENTAL=true
export PRE_COMMIT_HOME="$repo/target/pre-commit-home"
"$venv/bin/pre-commit" try-repo "$repo" rolegate-check --all-files >"$work/out" 2>&1 \
  || fail "hook failed on a clean tree: $(cat "$work/out")"
grep -q 'rolegate check.*Passed' "$work/out" || fail "hook did not run: $(cat "$work/out")"
cp "$repo/examples/broken/head/r05-exclusive.yaml" deploy/
git_ add deploy
set +e
"$venv/bin/pre-commit" try-repo "$repo" rolegate-check --all-files >"$work/out" 2>&1
code=$?
set -e
[ "$code" = 1 ] || fail "hook exit $code on a broken tree: $(cat "$work/out")"
grep -q 'rolegate check.*Failed' "$work/out" || fail "$(cat "$work/out")"
grep -q 'r05-exclusive.yaml:[0-9]*: error\[R[0-9]*\]' "$work/out" || fail "no finding: $(cat "$work/out")"
echo "hooks and action: ok"
