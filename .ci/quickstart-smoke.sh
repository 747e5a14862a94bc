#!/usr/bin/env bash
# Starts the service exactly as the README's quick start does (embedded PostgreSQL, 3 workers,
# dashboard), waits for it, checks the main endpoints, then stops it gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
state=$(mktemp -d)
chmod 755 "$state"
export EMBEDDED_PG_DIR="$state/pg" EXECUTOR_STATE_DIR="$state/state" PORT=18765 EMBEDDED_PG_PORT=18766
env -u DATABASE_URL node dist/src/cli/main.js start >"$state/out.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$state"' EXIT
for _ in $(seq 1 90); do
  curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || { cat "$state/out.log"; exit 1; }
  sleep 1
done
# Printed with >&2, not `tee /dev/stderr`: reopening /dev/stderr truncates a log file CI writes to.
health=$(curl -fsS "http://127.0.0.1:$PORT/health")
echo "$health" >&2
grep -q '"connected":true' <<<"$health"
curl -fsS "http://127.0.0.1:$PORT/ready" >/dev/null
test "$(curl -fsS "http://127.0.0.1:$PORT/api/v1/workers" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).total))')" = 3
curl -fsS -H 'accept: text/html' "http://127.0.0.1:$PORT/" | grep -qi '<html'
curl -fsS -X POST -H 'content-type: application/json' -d '{"problem_id":"k8s_target_port-misconfig-detection-1"}' "http://127.0.0.1:$PORT/api/v1/tasks" | grep -q '"status":"pending"\|"status":"running"\|"status":"failed"'
kill -TERM $pid
wait $pid
echo "quick start smoke: ok"
