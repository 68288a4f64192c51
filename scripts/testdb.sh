#!/usr/bin/env bash
# testdb.sh - a throwaway PostgreSQL 15 cluster with pgvector, for tests.
#
#   scripts/testdb.sh run -- CMD [ARGS...]   start a cluster, run CMD with
#                                            TEST_DATABASE_URL set, then stop
#                                            the cluster and delete it; exits
#                                            with CMD's status
#   scripts/testdb.sh install                only make sure pgvector (and the
#                                            PostgreSQL 15 server dev files) is
#                                            installed; needs root
#   scripts/testdb.sh start                  start a cluster for interactive
#                                            use; prints `export ...` lines
#   scripts/testdb.sh stop                   stop the cluster made by `start`
#
# TESTDB_CONF, when set, is appended to the cluster's postgresql.conf (one
# setting per line), e.g. TESTDB_CONF="shared_buffers = 1GB" for benchmarks.
#
# See docs/development.md for the details.
set -euo pipefail

PG_MAJOR=15
PGBIN=${TESTDB_PGBIN:-/usr/lib/postgresql/$PG_MAJOR/bin}
PG_CONFIG=$PGBIN/pg_config
DB_NAME=${TESTDB_NAME:-assay_test}
# Debian suite whose *source* package of pgvector is built for bookworm.
PGVECTOR_SUITE=${TESTDB_PGVECTOR_SUITE:-trixie}
TMP_BASE=${TESTDB_TMPDIR:-/tmp}
STATE_FILE=${TESTDB_STATE_FILE:-$TMP_BASE/assay-testdb.$(id -u).state}

PROG=testdb
WORKDIR=""     # temp dir of this invocation (cluster data, build, logs)
LOG=/dev/null  # full log; lives in WORKDIR once that exists
LOG_SHOWN=0
KEEP_WORKDIR=0 # set by `start` on success

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }

show_log() {
	[ "$LOG_SHOWN" = 0 ] || return 0
	LOG_SHOWN=1
	local shown=0
	if [ -s "$LOG" ]; then
		printf '%s: ---- full log (%s) ----\n' "$PROG" "$LOG" >&2
		cat "$LOG" >&2
		shown=1
	fi
	if [ -n "$WORKDIR" ] && [ -s "$WORKDIR/postgres.log" ]; then
		printf '%s: ---- server log ----\n' "$PROG" >&2
		cat "$WORKDIR/postgres.log" >&2
		shown=1
	fi
	if [ "$shown" = 1 ]; then
		printf '%s: ---- end of log ----\n' "$PROG" >&2
	fi
}

die() {
	log "error: $*"
	show_log
	exit 1
}

# quiet CMD...: run CMD with its output going to the log; on failure show the
# log and exit.
quiet() {
	printf '+ %s\n' "$*" >>"$LOG"
	if ! "$@" >>"$LOG" 2>&1; then
		die "command failed: $*"
	fi
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# as_pg CMD...: run CMD as the `postgres` user when we are root (the server
# refuses to run as root), else as ourselves.
as_pg() {
	if ! is_root; then
		"$@"
	elif command -v runuser >/dev/null 2>&1; then
		# From /: postgres may not be allowed into the caller's cwd.
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && su postgres -s /bin/sh -c "$(printf '%q ' "$@")")
	fi
}

make_workdir() {
	mkdir -p "$TMP_BASE"
	WORKDIR=$(mktemp -d "$TMP_BASE/assay-testdb.XXXXXX")
	LOG=$WORKDIR/testdb.log
	: >"$LOG"
	if is_root; then
		chown postgres:postgres "$WORKDIR"
		# The server runs as postgres and must reach the dir.
		if ! runuser -u postgres -- test -w "$WORKDIR" 2>/dev/null; then
			die "user postgres cannot write to $WORKDIR; set TESTDB_TMPDIR to a dir it can reach (e.g. /tmp)"
		fi
	fi
}

remove_workdir() {
	if [ -n "$WORKDIR" ] && [ -d "$WORKDIR" ]; then
		rm -rf -- "$WORKDIR"
	fi
}

# ---------------------------------------------------------------------------
# installation

apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	printf '+ apt-get install %s\n' "$*" >>"$LOG"
	if ! apt-get install -y --no-install-recommends "$@" >>"$LOG" 2>&1; then
		# The package lists may be missing or stale: refresh them once.
		quiet apt-get update
		quiet apt-get install -y --no-install-recommends "$@"
	fi
}

ensure_postgres() {
	if [ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/pg_ctl" ] && [ -x "$PGBIN/postgres" ]; then
		return 0
	fi
	if ! is_root; then
		die "PostgreSQL $PG_MAJOR server binaries not found in $PGBIN.
  Install them (Debian/Ubuntu: sudo apt-get install postgresql-$PG_MAJOR), or run
  the tests against your own database: TEST_DATABASE_URL=postgres://... go test ./..."
	fi
	log "installing postgresql-$PG_MAJOR"
	apt_install "postgresql-$PG_MAJOR"
	[ -x "$PGBIN/initdb" ] || die "postgresql-$PG_MAJOR installed but $PGBIN/initdb is still missing"
}

pgvector_installed() {
	[ -x "$PG_CONFIG" ] || return 1
	[ -f "$("$PG_CONFIG" --sharedir)/extension/vector.control" ] &&
		[ -f "$("$PG_CONFIG" --pkglibdir)/vector.so" ]
}

pgvector_version() {
	sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" \
		"$("$PG_CONFIG" --sharedir)/extension/vector.control" 2>/dev/null || true
}

# debian_mirror: print "URI<TAB>SIGNED-BY" of the machine's main Debian archive
# entry (a `deb` entry of a plain suite like bookworm, not -updates or
# -security), read from its own apt sources. SIGNED-BY may be empty.
debian_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '
			function flush(   n, i, s, u) {
				if (uris != "" && types ~ /(^|[ \t])deb([ \t]|$)/ && enabled != "no") {
					n = split(suites, s, /[ \t]+/)
					for (i = 1; i <= n; i++) {
						if (s[i] != "" && s[i] !~ /[-\/]/) {
							split(uris, u, /[ \t]+/)
							if (signed !~ /^\//) signed = ""
							print u[1] "\t" signed
							found = 1
							exit
						}
					}
				}
				types = uris = suites = signed = enabled = ""
			}
			/^#/ { next }
			/^[ \t]*$/ { flush(); next }
			/^[ \t]/ { next }
			{
				k = tolower(substr($0, 1, index($0, ":") - 1))
				v = substr($0, index($0, ":") + 1)
				gsub(/^[ \t]+|[ \t]+$/, "", v)
				if (k == "types") types = v
				else if (k == "uris") uris = v
				else if (k == "suites") suites = v
				else if (k == "signed-by") signed = v
				else if (k == "enabled") enabled = tolower(v)
			}
			END { if (!found) flush() }
		' "$f" | head -n1 | grep . && return 0
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk '
			$1 != "deb" { next }
			{
				i = 2; signed = ""
				if ($i ~ /^\[/) {
					for (; i <= NF; i++) {
						o = $i; gsub(/[\[\]]/, "", o)
						if (o ~ /^signed-by=/) { sub(/^signed-by=/, "", o); signed = o }
						if ($i ~ /\]$/) { i++; break }
					}
				}
				uri = $i; suite = $(i + 1)
				if (uri != "" && suite != "" && suite !~ /[-\/]/) { print uri "\t" signed; exit }
			}
		' "$f" | head -n1 | grep . && return 0
	done
	return 1
}

# fetch_pgvector_source DIR: download and unpack Debian's pgvector source
# package from $PGVECTOR_SUITE into DIR. The deb-src entry lives in its own
# sources file inside WORKDIR and apt is pointed at that file alone, so the
# machine's apt configuration is never changed.
fetch_pgvector_source() {
	local dir=$1 mirror uri signed keyring srcfile
	mirror=$(debian_mirror) ||
		die "could not find a Debian archive entry in /etc/apt/sources.list{,.d} to take the mirror from"
	uri=${mirror%%$'\t'*}
	signed=${mirror#*$'\t'}
	keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	if [ -z "$signed" ] && [ -f "$keyring" ]; then
		signed=$keyring
	fi
	srcfile=$WORKDIR/pgvector-src.sources
	{
		echo "Types: deb-src"
		echo "URIs: $uri"
		echo "Suites: $PGVECTOR_SUITE"
		echo "Components: main"
		if [ -n "$signed" ]; then echo "Signed-By: $signed"; fi
	} >"$srcfile"
	printf '+ cat %s\n' "$srcfile" >>"$LOG"
	cat "$srcfile" >>"$LOG"
	local -a aptopts=(
		-o "Dir::Etc::SourceList=$srcfile"
		-o "Dir::Etc::SourceParts=-"
		-o "APT::Get::List-Cleanup=0"
	)
	quiet apt-get "${aptopts[@]}" update
	mkdir -p "$dir"
	cd "$dir"
	quiet apt-get "${aptopts[@]}" source pgvector
	cd - >/dev/null
}

ensure_pgvector() {
	if pgvector_installed; then
		return 0
	fi
	if ! is_root; then
		die "pgvector is not installed for PostgreSQL $PG_MAJOR (no vector.control in $("$PG_CONFIG" --sharedir 2>/dev/null || echo "$PGBIN/..")/extension).
  Install it once as root:  sudo scripts/testdb.sh install
  (that builds pgvector from Debian's $PGVECTOR_SUITE source package), or install
  pgvector for PostgreSQL $PG_MAJOR another way, or run the tests against your own
  database that has it: TEST_DATABASE_URL=postgres://... go test ./..."
	fi
	local start=$SECONDS src pkgs=()
	log "building pgvector from Debian $PGVECTOR_SUITE source (log: $LOG)"

	if [ ! -f "$("$PG_CONFIG" --includedir-server 2>/dev/null)/postgres.h" ] ||
		[ ! -f "$("$PG_CONFIG" --pgxs 2>/dev/null)" ]; then
		pkgs+=("postgresql-server-dev-$PG_MAJOR")
	fi
	if ! command -v make >/dev/null 2>&1 || ! command -v cc >/dev/null 2>&1; then
		pkgs+=(build-essential)
	fi
	command -v dpkg-source >/dev/null 2>&1 || pkgs+=(dpkg-dev)
	if [ ${#pkgs[@]} -gt 0 ]; then
		apt_install "${pkgs[@]}"
	fi

	fetch_pgvector_source "$WORKDIR/src"
	src=$(find "$WORKDIR/src" -mindepth 1 -maxdepth 1 -type d -name 'pgvector-*' | head -n1)
	[ -n "$src" ] || die "apt-get source pgvector produced no pgvector-* directory"
	# OPTFLAGS= : no -march=native, so the build does not depend on this CPU.
	quiet make -C "$src" PG_CONFIG="$PG_CONFIG" OPTFLAGS=
	quiet make -C "$src" PG_CONFIG="$PG_CONFIG" OPTFLAGS= install
	rm -rf -- "$WORKDIR/src"

	pgvector_installed || die "make install finished but pgvector is still not installed"
	log "pgvector $(pgvector_version) built ($((SECONDS - start)) s)"
}

# ---------------------------------------------------------------------------
# the cluster

free_port() {
	local port _
	if command -v python3 >/dev/null 2>&1 &&
		port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null) &&
		[ -n "$port" ]; then
		echo "$port"
		return 0
	fi
	for _ in $(seq 1 50); do
		port=$((20000 + RANDOM % 30000))
		# A refused connection means nobody listens there.
		if ! (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	return 1
}

PORT=""
DATABASE_URL=""

# start_cluster: initdb + start in WORKDIR, create $DB_NAME with pgvector.
start_cluster() {
	local data=$WORKDIR/data try
	quiet as_pg "$PGBIN/initdb" -D "$data" -U postgres --auth=trust \
		-E UTF8 --no-locale --no-sync
	cat >>"$data/postgresql.conf" <<EOF

# testdb.sh: throwaway test cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORKDIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
	if [ -n "${TESTDB_CONF:-}" ]; then
		printf '\n# TESTDB_CONF\n%s\n' "$TESTDB_CONF" >>"$data/postgresql.conf"
	fi
	for try in 1 2 3 4 5; do
		PORT=$(free_port) || die "could not find a free TCP port on 127.0.0.1"
		printf '+ start server on port %s\n' "$PORT" >>"$LOG"
		if as_pg "$PGBIN/pg_ctl" start -w -t 60 -D "$data" \
			-l "$WORKDIR/postgres.log" -o "-p $PORT" >>"$LOG" 2>&1; then
			break
		fi
		# Someone took the port between picking and binding: try another.
		if [ "$try" -lt 5 ] && grep -q 'Address already in use' "$WORKDIR/postgres.log" 2>/dev/null; then
			continue
		fi
		die "PostgreSQL did not start"
	done

	local -a psql=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres)
	quiet "${psql[@]}" -d postgres -c "CREATE DATABASE \"$DB_NAME\""
	quiet "${psql[@]}" -d "$DB_NAME" -c "CREATE EXTENSION IF NOT EXISTS vector"
	DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/$DB_NAME?sslmode=disable"
	log "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT, database $DB_NAME, pgvector $(pgvector_version)"
}

# stop_cluster DIR: stop the server whose data dir is DIR/data, if running.
stop_cluster() {
	local data=$1/data pid
	[ -f "$data/postmaster.pid" ] || return 0
	if ! as_pg "$PGBIN/pg_ctl" stop -D "$data" -m fast -w -t 30 >>"$LOG" 2>&1; then
		as_pg "$PGBIN/pg_ctl" stop -D "$data" -m immediate -w -t 30 >>"$LOG" 2>&1 || true
	fi
	if [ -f "$data/postmaster.pid" ]; then
		pid=$(head -n1 "$data/postmaster.pid" 2>/dev/null || true)
		case $pid in '' | *[!0-9]*) ;; *) kill -KILL "$pid" 2>/dev/null || true ;; esac
	fi
}

# ---------------------------------------------------------------------------
# commands

on_exit() {
	local rc=$?
	trap - EXIT INT TERM
	if [ "$KEEP_WORKDIR" = 0 ] && [ -n "$WORKDIR" ]; then
		if [ "$rc" -ne 0 ] && [ "${CMD_RAN:-0}" = 0 ]; then
			show_log
		fi
		stop_cluster "$WORKDIR"
		remove_workdir
	fi
	exit "$rc"
}

setup_traps() {
	trap on_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

cmd_install() {
	setup_traps
	make_workdir
	ensure_postgres
	if pgvector_installed; then
		log "pgvector $(pgvector_version) already installed for PostgreSQL $PG_MAJOR"
		return 0
	fi
	ensure_pgvector
}

cmd_run() {
	[ $# -gt 0 ] || die "usage: $0 run -- CMD [ARGS...]"
	setup_traps
	make_workdir
	ensure_postgres
	ensure_pgvector
	start_cluster
	export TEST_DATABASE_URL=$DATABASE_URL
	local rc=0
	CMD_RAN=1
	"$@" || rc=$?
	exit "$rc"
}

cmd_start() {
	if [ -f "$STATE_FILE" ]; then
		local old
		old=$(cat "$STATE_FILE")
		if [ -f "$old/data/postmaster.pid" ]; then
			die "a test cluster is already running in $old (state: $STATE_FILE); run '$0 stop' first"
		fi
		rm -f -- "$STATE_FILE"
	fi
	setup_traps
	make_workdir
	ensure_postgres
	ensure_pgvector
	start_cluster
	printf '%s\n' "$WORKDIR" >"$STATE_FILE"
	KEEP_WORKDIR=1
	printf "export TEST_DATABASE_URL='%s'\n" "$DATABASE_URL"
	printf '# data dir: %s (logs: %s, %s)\n' "$WORKDIR/data" "$LOG" "$WORKDIR/postgres.log"
	printf '# stop with: %s stop\n' "$0"
}

cmd_stop() {
	if [ ! -f "$STATE_FILE" ]; then
		log "no test cluster running (no $STATE_FILE)"
		return 0
	fi
	local dir
	dir=$(cat "$STATE_FILE")
	case $dir in
	"$TMP_BASE"/assay-testdb.*) ;;
	*) die "unexpected dir '$dir' in $STATE_FILE" ;;
	esac
	stop_cluster "$dir"
	rm -rf -- "$dir"
	rm -f -- "$STATE_FILE"
	log "stopped and removed $dir"
}

usage() {
	cat >&2 <<EOF
usage: $0 run -- CMD [ARGS...]   run CMD against a throwaway cluster (TEST_DATABASE_URL set)
       $0 install                make sure pgvector for PostgreSQL $PG_MAJOR is installed (root)
       $0 start                  start a cluster, print 'export TEST_DATABASE_URL=...'
       $0 stop                   stop the cluster made by 'start'
EOF
}

main() {
	case $DB_NAME in
	'' | [0-9]* | *[!a-z0-9_]*) die "TESTDB_NAME must be a lower-case identifier ([a-z0-9_]), got '$DB_NAME'" ;;
	esac
	local cmd=${1:-}
	[ $# -gt 0 ] && shift
	case $cmd in
	run)
		[ "${1:-}" = "--" ] && shift
		cmd_run "$@"
		;;
	install) cmd_install ;;
	start) cmd_start ;;
	stop) cmd_stop ;;
	-h | --help | help) usage ;;
	*)
		usage
		exit 2
		;;
	esac
}

main "$@"
