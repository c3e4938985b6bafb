#!/usr/bin/env bash
# The demo: enqueue a burst of jobs and watch a worker process them.
# Uses $AIOWORKER_REDIS_URL when set; otherwise starts a private redis-server for the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
started_pid=""
port=""
cleanup() {
  if [ -n "$started_pid" ]; then
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$started_pid" 2>/dev/null || true
    wait "$started_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
if [ -z "${AIOWORKER_REDIS_URL:-}" ]; then
  if ! command -v redis-server >/dev/null; then
    echo "redis-server not found: install it (apt-get install redis-server) or set AIOWORKER_REDIS_URL" >&2
    exit 1
  fi
  port=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
    --loglevel warning >/dev/null &
  started_pid=$!
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export AIOWORKER_REDIS_URL="redis://127.0.0.1:$port/0"
  echo "started a private Redis for the demo on port $port"
fi
echo "== enqueueing 2 x 1000 jobs"
python -m examples.quickstart.enqueue 1000
echo "== running a worker until the queues are drained (--burst)"
time aioworker run examples.quickstart.app:worker --burst
echo "== a long-running worker: enqueue from another process and wait for the results"
aioworker run examples.quickstart.app:worker &
worker_pid=$!
python -m examples.quickstart.enqueue 5 --wait
echo "== SIGTERM: the worker drains and exits"
kill -TERM "$worker_pid"
wait "$worker_pid"
