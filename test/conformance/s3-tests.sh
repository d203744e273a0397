#!/usr/bin/env bash
# Runs the public ceph s3-tests suite against a fresh Yunhai and writes a summary.
#
#   test/conformance/s3-tests.sh [--keep] [--isolate] [--data-dir DIR] [--timeout S] <path-to-s3-tests> [pytest args...]
#
# Expects `npm run build` to have been run (it builds nothing itself) and the suite's Python
# dependencies from Debian (see docs/s3-conformance.md). Steps:
#   1. starts `node bin/yunhai.js up --driver none --port 0` on a temporary data dir and reads the
#      S3 listener from <data-dir>/endpoints.json;
#   2. creates the suite's identities (main, alt and tenant users in three tenants) through the
#      REST API with the root credentials and writes s3tests.conf (s3tests_setup.py);
#   3. runs pytest with JUnit XML output (.test-results/s3-tests.xml, log in s3-tests.log);
#   4. writes .test-results/s3-tests-summary.md (s3tests_summary.py) and prints it.
#
# With no pytest selection the default is the issue's: s3tests/functional/test_s3.py -m 'not fails_on_aws'.
# Extra pytest args are added to that default (e.g. `-k versioning`, `-x`); args naming a test path
# (s3tests/...) replace the default path, and a `-m` replaces the default marker expression.
#
# --keep         leave the server (and its data dir) running afterwards, for debugging
# --isolate      diagnostic: a fresh bucket prefix per test, so one undeletable bucket cannot
#                fail every later test's set-up (s3tests_isolation.py); not the official figure
# --data-dir DIR use DIR (must not exist yet) instead of a temporary directory
# --timeout S    per-test timeout when pytest-timeout is installed (default 300)
# S3TESTS_REF    names the suite's commit in the summary when the checkout has no .git
# YUNHAI_REF     likewise for Yunhai's own commit (when run from an exported tree)
#
# Exit status: pytest's (0 when every selected test passed), 2 when the run could not start.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/test/conformance"
RESULTS="$ROOT/.test-results"
PYTHON="${S3TESTS_PYTHON:-/usr/bin/python3}"

keep=0
isolate=0
data_dir=""
per_test_timeout=300
usage() {
  sed -n '2,/^set -e/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'
  exit 2
}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --keep) keep=1; shift ;;
    --isolate) isolate=1; shift ;;
    --data-dir) data_dir="${2:?--data-dir needs a directory}"; shift 2 ;;
    --timeout) per_test_timeout="${2:?--timeout needs seconds}"; shift 2 ;;
    -h|--help) usage ;;
    *) break ;;
  esac
done
[[ $# -ge 1 ]] || usage
suite="$(cd "$1" 2>/dev/null && pwd)" || { echo "s3-tests: no such directory: $1" >&2; exit 2; }
shift
[[ -f "$suite/s3tests/functional/test_s3.py" ]] || {
  echo "s3-tests: $suite does not look like a ceph/s3-tests checkout (no s3tests/functional/test_s3.py)" >&2
  exit 2
}

die() { echo "s3-tests: $*" >&2; exit 2; }

[[ -f "$ROOT/dist/cli/main.js" ]] || die "dist/ is missing: run \`npm run build\` first"
"$PYTHON" -c 'import boto3, pytest, munch, gevent, isodate, requests, httplib2, lxml, pytz, yaml' 2>/dev/null || die \
  "$PYTHON lacks the suite's modules: apt-get install -y python3-boto3 python3-pytest python3-munch python3-gevent python3-isodate python3-requests python3-httplib2 python3-lxml python3-tz python3-yaml"

# ---- pytest selection -------------------------------------------------------------------
has_path=0
has_marker=0
for a in "$@"; do
  [[ "$a" == s3tests/* ]] && has_path=1
  [[ "$a" == -m || "$a" == -m* ]] && has_marker=1
done
selection=()
[[ $has_path -eq 1 ]] || selection+=(s3tests/functional/test_s3.py)
[[ $has_marker -eq 1 ]] || selection+=(-m 'not fails_on_aws')
[[ $isolate -eq 0 ]] || selection+=(-p s3tests_isolation)
if "$PYTHON" -c 'import pytest_timeout' 2>/dev/null; then
  selection+=(--timeout="$per_test_timeout")
fi

# ---- server -----------------------------------------------------------------------------
if [[ -z "$data_dir" ]]; then
  data_dir="$(mktemp -d "${TMPDIR:-/tmp}/yunhai-s3-tests-XXXXXX")"
else
  [[ ! -e "$data_dir" ]] || die "--data-dir $data_dir already exists (a fresh one is needed for the root credentials)"
  mkdir -p "$data_dir"
  data_dir="$(cd "$data_dir" && pwd)"
fi
server_pid=""
cleanup() {
  if [[ $keep -eq 1 && -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    echo "s3-tests: --keep: server pid $server_pid left running; data dir $data_dir"
    echo "s3-tests: stop it with: kill $server_pid && rm -rf $data_dir"
    return
  fi
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  if [[ $keep -eq 1 ]]; then
    echo "s3-tests: --keep: data dir $data_dir (server log: $data_dir/server.log)"
  else
    rm -rf "$data_dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$RESULTS"
echo "s3-tests: starting yunhai (data dir $data_dir)"
node "$ROOT/bin/yunhai.js" up --data-dir "$data_dir" --port 0 --driver none --log-level warn \
  >"$data_dir/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 300); do
  [[ -s "$data_dir/endpoints.json" ]] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$data_dir/server.log" >&2; die "yunhai up exited before it was ready"; }
  sleep 0.1
done
[[ -s "$data_dir/endpoints.json" ]] || die "yunhai up wrote no endpoints.json within 30 s (log: $data_dir/server.log)"
s3_url="$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("s3", ""))' "$data_dir/endpoints.json")"
[[ -n "$s3_url" ]] || die "endpoints.json has no \"s3\" listener: this build has no S3 endpoint yet (issue 4). Endpoints: $(tr -d '\n ' <"$data_dir/endpoints.json")"
echo "s3-tests: S3 endpoint $s3_url"

conf="$data_dir/s3tests.conf"
"$PYTHON" "$HERE/s3tests_setup.py" "$data_dir" "$conf"
echo "s3-tests: wrote $conf"

# ---- run --------------------------------------------------------------------------------
# The suite's commit, for the summary; S3TESTS_REF names it when the checkout is not a git work tree.
suite_ref="${S3TESTS_REF:-$(git -C "$suite" rev-parse --short HEAD 2>/dev/null || echo unknown)}"
junit="$RESULTS/s3-tests.xml"
log="$RESULTS/s3-tests.log"
rm -f "$junit"
echo "s3-tests: pytest ${selection[*]} $* (log: $log)"
set +e
(
  cd "$suite"
  # A clean AWS environment: no profile, CA bundle or proxy may reach the suite's boto3 clients.
  env -u AWS_CA_BUNDLE -u AWS_PROFILE -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
    -u AWS_ENDPOINT_URL -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy \
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null NO_PROXY='*' \
    S3TEST_CONF="$conf" PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" \
    "$PYTHON" -m pytest -p no:cacheprovider -o junit_family=xunit1 --junitxml="$junit" -q -rfE \
    "${selection[@]}" "$@"
) 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

[[ -s "$junit" ]] || die "pytest wrote no JUnit report (exit $status); see $log"
summary="$RESULTS/s3-tests-summary.md"
title="s3-tests @ $suite_ref"
[[ $isolate -eq 0 ]] || title="$title, --isolate (diagnostic)"
{
  "$PYTHON" "$HERE/s3tests_summary.py" "$junit" "$title"
  echo
  echo "Selection: \`${selection[*]@Q} ${*@Q}\`; Yunhai ${YUNHAI_REF:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)}; $(date -u +%Y-%m-%dT%H:%MZ)."
} >"$summary"
echo
cat "$summary"
echo
echo "s3-tests: summary in $summary, JUnit XML in $junit"
exit "$status"
