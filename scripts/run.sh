#!/usr/bin/env bash
# Runs the four services natively against the local PostgreSQL and RabbitMQ
# (make run). Ctrl-C stops them all. Settings come from the environment; see
# README.md. Binaries are expected in bin/ (make build).
set -euo pipefail
cd "$(dirname "$0")/.."

export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/photopipe?sslmode=disable}
export STORAGE_DIR=${STORAGE_DIR:-$PWD/var/storage}
export LOG_FORMAT=${LOG_FORMAT:-text}
# Loopback only: make run has no API keys by default. HTTP_ADDR=:8080 serves
# every interface (set API_KEYS then).
export HTTP_ADDR=${HTTP_ADDR:-127.0.0.1:8080}
# Local use: no API keys unless you give some (README "Security"); ingest-api
# warns at start. With API_KEYS/ADMIN_API_KEYS set, keys are required.
if [ -z "${API_KEYS:-}${ADMIN_API_KEYS:-}" ]; then
  export AUTH_DISABLED=${AUTH_DISABLED:-true}
fi
# Signs callbacks (README "Callbacks"); a development secret unless you give one.
export CALLBACK_SECRET=${CALLBACK_SECRET:-photopipe-dev-callback-secret}
mkdir -p "$STORAGE_DIR"

pids=()
stop() {
  trap - INT TERM EXIT
  echo "stopping..." >&2
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait || true
}
trap stop INT TERM EXIT

bin/ingest-api migrate
start() { # name health-port
  # The output goes through a process substitution, so that $! is the
  # service itself (stop signals it), not the end of a pipeline.
  HEALTH_ADDR=127.0.0.1:$2 "bin/$1" > >(sed -u "s/^/[$1] /") 2>&1 &
  pids+=($!)
}
start recorder 8091
start resizer 8092
start downloader 8093
start ingest-api 8094
host=${HTTP_ADDR%:*}
case $host in "" | 0.0.0.0 | "[::]") host=127.0.0.1 ;; esac
echo "photopipe is running: API on http://$host:${HTTP_ADDR##*:} (Ctrl-C stops)" >&2
wait
