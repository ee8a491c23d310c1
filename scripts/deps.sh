#!/usr/bin/env bash
# Makes sure PostgreSQL and RabbitMQ answer on 127.0.0.1, starting them when
# they are installed but stopped and installing them (Debian packages) when
# they are missing and we may. Creates the "photopipe" database for make run.
set -euo pipefail

say() { printf 'deps: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

apt_install() {
  can_install || die "$1 is not installed; install it (Debian/Ubuntu: sudo apt-get install $1) and run this again"
  say "installing $1 with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
mq_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

wait_for() { # name check seconds
  local i
  for ((i = 0; i < $3 * 2; i++)); do "$2" && return 0; sleep 0.5; done
  die "$1 did not come up within $3 s"
}

# PostgreSQL
if ! pg_up; then
  command -v pg_ctlcluster >/dev/null 2>&1 || apt_install postgresql
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$version" ] || die "PostgreSQL is installed but has no cluster in /etc/postgresql"
  say "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for PostgreSQL pg_up 60
fi

# RabbitMQ
if ! mq_up; then
  command -v rabbitmq-server >/dev/null 2>&1 || apt_install rabbitmq-server
  say "starting RabbitMQ"
  rabbitmq-server -detached || true
  wait_for RabbitMQ mq_up 120
fi

# The management plugin: the operator's console on :15672, and tests use its
# API to create their virtual hosts quickly.
if command -v rabbitmq-plugins >/dev/null 2>&1 && ! (exec 3<>/dev/tcp/127.0.0.1/15672) 2>/dev/null; then
  say "enabling the RabbitMQ management plugin"
  rabbitmq-plugins enable rabbitmq_management >/dev/null 2>&1 || say "could not enable rabbitmq_management (tests fall back to rabbitmqctl)"
fi

# The application database for make run (tests make their own).
psql_cmd=(psql -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt)
if command -v psql >/dev/null 2>&1; then
  if [ "$("${psql_cmd[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'photopipe'" 2>/dev/null)" != 1 ]; then
    "${psql_cmd[@]}" -c "CREATE DATABASE photopipe" >/dev/null 2>&1 || say "could not create database photopipe (create it yourself if make run needs it)"
  fi
fi
say "PostgreSQL and RabbitMQ are up"
