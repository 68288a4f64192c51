#!/usr/bin/env bash
# bench.sh - Assay's end-to-end performance benchmark (make bench).
#
# Starts a throwaway PostgreSQL 15 + pgvector (scripts/testdb.sh run), the
# mock LLM (cmd/mockllm) with a fixed latency, and the API binary in
# PostgreSQL mode with the LLM grader pointed at the mock; drives load at it
# from a separate process (cmd/loadgen); measures the mock directly with the
# same concurrency as the reference; runs the Go benchmarks; and writes the
# figures into docs/performance.md between its "bench:begin" and
# "bench:end" markers. Every figure of a report comes from one run on one
# machine.
#
# Settings (environment):
#   BENCH_OUT=DIR          where the raw results go (default: a new temp dir)
#   BENCH_PARTS="load scale go"  which parts to run
#   BENCH_SCENARIOS="llm cache heuristic"  which load scenarios to run
#   BENCH_LATENCY=100ms    the mock's latency L for the load scenarios
#   BENCH_CLIENTS=200      concurrent clients of the load scenarios
#   BENCH_DURATION=20s     measured time of each load scenario
#   BENCH_WARMUP=3s        unmeasured load before each
#   BENCH_LIGHT_CLIENTS=20 clients of an extra, unsaturated LLM scenario (0: none)
#   BENCH_SCALE_N=10000    in-flight gradings of the scale scenario
#   BENCH_SCALE_LATENCY=2s the mock's latency there
#   BENCH_SCALE_GOMEMLIMIT=400MiB  the scale scenario runs a second time with
#                          the server under this soft memory limit ("" skips it)
#   BENCH_SEARCH_SIZES=1000,10000,100000  vector counts of the search benchmark
#   BENCH_SERVER_BIN=PATH  run this API binary instead of building cmd/api
#                          (to measure an older build the same way)
#   BENCH_PROFILE=1        run the API under `go test -cpuprofile/-memprofile`
#                          (cmd/api TestServeForProfile) for every load
#                          scenario and the scale one (cpu-NAME.pprof,
#                          mem-NAME.pprof, heap-NAME.pprof 6 s in); the
#                          profiles land in BENCH_OUT
#   BENCH_REPORT=FILE      the report to update (default docs/performance.md;
#                          "-" for none)
#   BENCH_PG_CONF="shared_buffers = 1GB"  settings of the throwaway cluster
#                          (TESTDB_CONF): enough cache for the 100,000-vector
#                          search's index and vectors, as a server sized for
#                          that bank would have ("" for PostgreSQL's defaults)
#   BENCH_DATABASE_URL=URL use this database (PostgreSQL 15 + pgvector, a
#                          superuser for the benchmark's schemas) instead of a
#                          throwaway cluster
set -euo pipefail

cd "$(dirname "$0")/.."

if [ -n "${BENCH_DATABASE_URL:-}" ]; then
	export TEST_DATABASE_URL=$BENCH_DATABASE_URL
elif [ "${BENCH_IN_TESTDB:-}" != 1 ]; then
	# Re-run inside a throwaway cluster, removed afterwards.
	BENCH_IN_TESTDB=1 TESTDB_CONF=${BENCH_PG_CONF-shared_buffers = 1GB} exec scripts/testdb.sh run -- "$0" "$@"
fi

PARTS=${BENCH_PARTS:-load scale go}
SCENARIOS=${BENCH_SCENARIOS:-llm cache heuristic}
L=${BENCH_LATENCY:-100ms}
C=${BENCH_CLIENTS:-200}
D=${BENCH_DURATION:-20s}
W=${BENCH_WARMUP:-3s}
LIGHT=${BENCH_LIGHT_CLIENTS:-20}
SCALE_N=${BENCH_SCALE_N:-10000}
SCALE_L=${BENCH_SCALE_LATENCY:-2s}
SCALE_MEMLIMIT=${BENCH_SCALE_GOMEMLIMIT-400MiB}
REPORT=${BENCH_REPORT:-docs/performance.md}
OUT=${BENCH_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/assay-bench.XXXXXX")}
mkdir -p "$OUT/bin"
GO=${GO:-go}
PSQL=$(command -v psql || echo "${TESTDB_PGBIN:-/usr/lib/postgresql/15/bin}/psql")

log() { printf 'bench: %s\n' "$*" >&2; }

PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
}
trap cleanup EXIT

# Many sockets: 10,000 in-flight gradings need 10,000 connections into the
# server and as many out of it to the mock.
if ! ulimit -n 65536 2>/dev/null; then
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
NOFILE=$(ulimit -n)
log "open files limit: $NOFILE (hard $(ulimit -Hn)); results in $OUT"

# free_port: a port below the ephemeral range (32768 and up), where the
# load's own client sockets would collide with it.
free_port() {
	local port
	for _ in $(seq 1 100); do
		port=$((20000 + RANDOM % 12000))
		if ! (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	return 1
}

wait_http() { # URL PID: wait until URL answers 200, or PID exits
	for _ in $(seq 1 600); do
		if curl -sf -o /dev/null "$1" 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$2" 2>/dev/null; then
			return 1
		fi
		sleep 0.1
	done
	log "no answer from $1"
	return 1
}

log "building"
$GO build -o "$OUT/bin/mockllm" ./cmd/mockllm
$GO build -o "$OUT/bin/loadgen" ./cmd/loadgen
if [ -n "${BENCH_SERVER_BIN:-}" ]; then
	cp "$BENCH_SERVER_BIN" "$OUT/bin/api"
else
	$GO build -o "$OUT/bin/api" ./cmd/api
fi
if [ "${BENCH_PROFILE:-}" = 1 ]; then
	$GO test -c -o "$OUT/bin/api.test" ./cmd/api
fi
LOADGEN=$OUT/bin/loadgen
# PostgreSQL's postmaster, whose process tree's CPU time is reported.
PGPID=""
if PGDATA_DIR=$("$PSQL" "$TEST_DATABASE_URL" -XAtc "SHOW data_directory" 2>/dev/null) && [ -r "$PGDATA_DIR/postmaster.pid" ]; then
	PGPID=$(head -1 "$PGDATA_DIR/postmaster.pid")
fi

MOCK_PID=""
MOCK_PORT=""
start_mock() { # LATENCY
	stop_mock
	for _ in 1 2 3 4 5; do # another port if this one is taken
		MOCK_PORT=$(free_port)
		"$OUT/bin/mockllm" --addr "127.0.0.1:$MOCK_PORT" --latency "$1" >>"$OUT/mockllm.log" 2>&1 &
		MOCK_PID=$!
		PIDS+=("$MOCK_PID")
		if wait_http "http://127.0.0.1:$MOCK_PORT/v1/models" "$MOCK_PID"; then
			return 0
		fi
	done
	log "the mock did not start; see $OUT/mockllm.log"
	exit 1
}
stop_mock() {
	if [ -n "$MOCK_PID" ]; then
		kill "$MOCK_PID" 2>/dev/null || true
		wait "$MOCK_PID" 2>/dev/null || true
		MOCK_PID=""
	fi
}

API_PID=""
API_PORT=""
start_api() { # NAME [profile]: a fresh server for one scenario
	stop_api
	API_PORT=$(free_port)
	local -a env=(
		DATABASE_URL="$TEST_DATABASE_URL"
		OPENAI_BASE_URL="http://127.0.0.1:$MOCK_PORT/v1"
		ASSAY_LLM_MODEL=mock-grader
		ASSAY_ADDR="127.0.0.1:$API_PORT"
		ASSAY_RATE_LIMIT_RPS=1000000
		ASSAY_RATE_LIMIT_BURST=1000000
		ASSAY_LOG_LEVEL=info
	)
	if [ -n "${API_EXTRA_ENV:-}" ]; then
		env+=("$API_EXTRA_ENV")
	fi
	for _ in 1 2 3 4 5; do # another port if this one is taken
		env[3]="ASSAY_ADDR=127.0.0.1:$API_PORT"
		if [ "${2:-}" = profile ]; then
			# Served for at most an hour; stop_api's SIGTERM ends it and
			# the profiles are written.
			# The heap in use is taken 6 s in: during the scale burst, at its
			# peak (loadgen starts as soon as the server is ready).
			env "${env[@]}" ASSAY_PROFILE_SERVE=1h ASSAY_PROFILE_LOG="$OUT/api-$1.log" \
				ASSAY_PROFILE_HEAP_AT=6s ASSAY_PROFILE_HEAP_FILE="$OUT/heap-$1.pprof" \
				"$OUT/bin/api.test" -test.run TestServeForProfile -test.count=1 -test.timeout 2h \
				-test.cpuprofile "$OUT/cpu-$1.pprof" -test.memprofile "$OUT/mem-$1.pprof" \
				>"$OUT/api-$1.test.log" 2>&1 &
		else
			env "${env[@]}" "$OUT/bin/api" >"$OUT/api-$1.log" 2>&1 &
		fi
		API_PID=$!
		PIDS+=("$API_PID")
		if wait_http "http://127.0.0.1:$API_PORT/readyz" "$API_PID"; then
			return 0
		fi
		API_PORT=$(free_port)
	done
	log "the API did not start; see $OUT/api-$1.log"
	exit 1
}
stop_api() {
	if [ -n "$API_PID" ]; then
		kill -TERM "$API_PID" 2>/dev/null || true
		wait "$API_PID" 2>/dev/null || true
		API_PID=""
	fi
}

watch_args() {
	local -a a=(-watch "mock=$MOCK_PID")
	[ -n "$API_PID" ] && a+=(-watch "server=$API_PID")
	[ -n "$PGPID" ] && a+=(-watch-tree "postgres=$PGPID")
	printf '%s\n' "${a[@]}"
}

run_loadgen() { # NAME ARGS...: one measurement, JSON into $OUT/NAME.json
	local name=$1
	shift
	local -a w
	mapfile -t w < <(watch_args)
	log "$name: loadgen $*"
	"$LOADGEN" -label "$name" "${w[@]}" -o "$OUT/$name.json" "$@" >/dev/null
	"$LOADGEN" summary "$OUT/$name.json" >&2
}

{
	echo "command=make bench"
	echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "cores=$(nproc)"
	echo "cpu=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "mem=$(awk '/^MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo)"
	echo "kernel=$(uname -r)"
	echo "go=$($GO env GOVERSION)"
	echo "postgres=$("$PSQL" "$TEST_DATABASE_URL" -XAtc 'SHOW server_version' 2>/dev/null)"
	echo "pgvector=$("$PSQL" "$TEST_DATABASE_URL" -XAtc "SELECT extversion FROM pg_extension WHERE extname = 'vector'" 2>/dev/null)"
	echo "shared_buffers=$("$PSQL" "$TEST_DATABASE_URL" -XAtc 'SHOW shared_buffers' 2>/dev/null)"
	echo "nofile=$NOFILE"
	echo "latency=$L"
	echo "clients=$C"
	echo "light_clients=$LIGHT"
	echo "duration=$D"
	echo "warmup=$W"
	echo "scale_n=$SCALE_N"
	echo "scale_latency=$SCALE_L"
	echo "scale_gomemlimit=$SCALE_MEMLIMIT"
	echo "server_bin=${BENCH_SERVER_BIN:-built from this tree}"
	echo "loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/env.txt"

if [[ " $PARTS " == *" load "* ]]; then
	start_mock "$L"
	# The references: the mock's own latency at the same concurrency, and a
	# bare HTTP round trip (GET /v1/models, no latency).
	run_loadgen ref-mock -target mock -url "http://127.0.0.1:$MOCK_PORT/v1" -c "$C" -d "$D" -warmup "$W"
	run_loadgen ref-floor -target mock-models -url "http://127.0.0.1:$MOCK_PORT/v1" -c "$C" -d "$D" -warmup "$W"

	for sc in $SCENARIOS; do
		if [ "${BENCH_PROFILE:-}" = 1 ]; then start_api "$sc" profile; else start_api "$sc"; fi
		run_loadgen "$sc" -url "http://127.0.0.1:$API_PORT" -scenario "$sc" -c "$C" -d "$D" -warmup "$W"
		stop_api
	done

	# The same LLM path with fewer clients, so that the machine is not
	# saturated: the overhead of Assay itself rather than of a full CPU.
	if [ "$LIGHT" -gt 0 ]; then
		run_loadgen light-ref-mock -target mock -url "http://127.0.0.1:$MOCK_PORT/v1" -c "$LIGHT" -d "$D" -warmup "$W"
		start_api light-llm
		run_loadgen light-llm -url "http://127.0.0.1:$API_PORT" -scenario llm -c "$LIGHT" -d "$D" -warmup "$W"
		stop_api
	fi
fi

if [[ " $PARTS " == *" scale "* ]]; then
	start_mock "$SCALE_L"
	# Every client sends one request; the clients start within a second, so
	# all gradings are in flight together (each takes at least L).
	run_loadgen scale-ref-mock -target mock -url "http://127.0.0.1:$MOCK_PORT/v1" -c "$SCALE_N" -n "$SCALE_N" -ramp 1s -timeout 120s
	if [ "${BENCH_PROFILE:-}" = 1 ]; then start_api scale profile; else start_api scale; fi
	run_loadgen scale-llm -url "http://127.0.0.1:$API_PORT" -scenario llm -c "$SCALE_N" -n "$SCALE_N" -ramp 1s -timeout 120s
	stop_api
	if [ -n "$SCALE_MEMLIMIT" ]; then
		# The same burst with the server under a soft memory limit, as a
		# deployment in a memory-limited container would run it.
		API_EXTRA_ENV="GOMEMLIMIT=$SCALE_MEMLIMIT" start_api scale-memlimit
		run_loadgen scale-llm-memlimit -url "http://127.0.0.1:$API_PORT" -scenario llm -c "$SCALE_N" -n "$SCALE_N" -ramp 1s -timeout 120s
		stop_api
	fi
	stop_mock
fi
stop_mock

if [[ " $PARTS " == *" go "* ]]; then
	log "go benchmarks"
	{
		$GO test -run '^$' -bench . -benchmem ./internal/embed ./internal/text
		$GO test -run '^$' -bench 'HeuristicGrade|IsInjection|InjectionFlags|LLMRender|LLMValidate' -benchmem ./internal/grader
		BENCH_SEARCH_SIZES=${BENCH_SEARCH_SIZES:-1000,10000,100000} \
			$GO test -run '^$' -bench SearchTop5 -benchtime 500x -timeout 30m ./internal/postgres
	} 2>&1 | tee "$OUT/gobench.txt" | grep -E '^(Benchmark|ok|FAIL|---)' >&2
fi

echo "loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/env.txt"

if [ "$REPORT" != - ]; then
	"$LOADGEN" report -dir "$OUT" -o "$REPORT"
	log "figures written to $REPORT"
fi
log "raw results in $OUT"
