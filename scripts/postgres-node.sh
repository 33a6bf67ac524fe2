#!/usr/bin/env bash
# Start a throw-away PostgreSQL cluster for the tests on a free loopback port, its data and
# socket in a temporary folder, and print `PORT PID DIR URL` once it accepts connections:
#
#   read -r port pid dir url < <(scripts/postgres-node.sh)
#   KB_TEST_POSTGRES_URL="$url" cargo test -p kb-catalog -p kb-usage
#   kill "$pid"; rm -rf "$dir"      # (as root: the files belong to the postgres user)
#
# URL is `postgres://kb@127.0.0.1:PORT/kb`: a superuser `kb` (the tests create and drop a
# database per test) with trust authentication on 127.0.0.1 and the socket only, and an empty
# database `kb`. Durability is off (fsync, synchronous_commit): the cluster is for tests.
#
# The binaries: $KB_POSTGRES_BIN (a folder with initdb and pg_ctl), else the newest
# /usr/lib/postgresql/*/bin (Debian's `postgresql` package, installed with apt-get when it is
# missing), else initdb and pg_ctl on PATH. initdb refuses to run as root: as root the cluster
# runs as the `postgres` user (made by the package) through runuser.
set -euo pipefail

bindir() {
  if [ -n "${KB_POSTGRES_BIN:-}" ]; then
    echo "$KB_POSTGRES_BIN"
    return
  fi
  local newest
  newest="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  if [ -n "$newest" ] && [ -x "$newest/initdb" ]; then
    echo "$newest"
    return
  fi
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return
  fi
  echo "PostgreSQL is not installed; installing Debian's postgresql package" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >&2
  newest="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  if [ -z "$newest" ] || [ ! -x "$newest/initdb" ]; then
    echo "no initdb after installing postgresql; set KB_POSTGRES_BIN to the folder holding initdb and pg_ctl" >&2
    exit 1
  fi
  echo "$newest"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

bin="$(bindir)"
port="$(free_port)"
dir="$(mktemp -d "${TMPDIR:-/tmp}/kb-postgres.XXXXXX")"
chmod 755 "$dir"

# As root, run the cluster as the package's `postgres` user.
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    echo "running as root and there is no postgres user to run the cluster as; install Debian's postgresql package or run as another user" >&2
    exit 1
  fi
  chown postgres: "$dir"
  as_owner=(runuser -u postgres --)
fi

"${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U kb --auth-local=trust --auth-host=trust \
  --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
  echo "initdb failed; its output ($dir/initdb.log):" >&2
  tail -20 "$dir/initdb.log" >&2
  exit 1
}
if ! "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 start \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  >/dev/null 2>&1; then
  echo "the PostgreSQL server did not start; its log ($dir/postgres.log):" >&2
  tail -20 "$dir/postgres.log" >&2 || true
  exit 1
fi
pid="$(head -1 "$dir/data/postmaster.pid")"
if ! "${as_owner[@]}" "$bin/psql" -h "$dir" -p "$port" -U kb -d postgres -qAt \
  -c "CREATE DATABASE kb" >/dev/null 2>"$dir/createdb.log"; then
  echo "cannot create the database kb: $(cat "$dir/createdb.log")" >&2
  kill "$pid" 2>/dev/null || true
  exit 1
fi
echo "$port $pid $dir postgres://kb@127.0.0.1:$port/kb"
