#!/usr/bin/env bash
# What metrics cost on the hot path: bench/http.sh's small-ka and conn-close
# tests against Weir built normally and Weir built with the counting compiled
# out (`--features metrics-noop`: counters, the active gauge and the TCP_INFO
# reads all gone), alternating the two builds RUNS times so drift on the host
# hits both alike. Prints requests/s and requests per proxy CPU-second of each
# and the difference (target: under 3%).
#
#   bench/metrics.sh                 # RUNS=3, each run ROUNDS=2 SECS=5 (~8 min)
#   RUNS=1 SECS=2 bench/metrics.sh   # a quick trial
#   BUILD=0 bench/metrics.sh         # both binaries already built
#   MODE=instr bench/metrics.sh      # instructions per request instead, counted by
#                                    # valgrind (callgrind) around each wrk run: the
#                                    # user-space cost without the host's timing noise
#                                    # (kernel work, e.g. the TCP_INFO call, is not in it)
#
# Same rules as bench/http.sh (which it runs): loopback only, processes
# stopped by PID, bounded waits, root for apt-get and ulimit.
set -euo pipefail

RUNS=${RUNS:-3}
BUILD=${BUILD:-1}
MODE=${MODE:-time}
export ROUNDS=${ROUNDS:-2} SECS=${SECS:-5}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ON=$ROOT/target/release/weir
OFF=$ROOT/target/metrics-noop/release/weir
OUT=$(mktemp -d /tmp/weir-metrics.XXXXXX)

log() { printf '[metrics %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if [[ $BUILD == 1 ]]; then
    log "building Weir with metrics (target/release) and without (target/metrics-noop)"
    (cd "$ROOT" && cargo build --release -q -p weir -p weir-bench)
    (cd "$ROOT" && CARGO_TARGET_DIR=$ROOT/target/metrics-noop cargo build --release -q -p weir --features metrics-noop)
fi
[[ -x $ON && -x $OFF ]] || { log "missing $ON or $OFF (BUILD=1)"; exit 1; }

if [[ $MODE == instr ]]; then
    command -v valgrind >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >/dev/null
    # Under valgrind Weir is ~50x slower: few connections, one run each.
    export CONNS=${CONNS:-4}
    RUNS=1
    {
        echo '#!/usr/bin/env bash'
        echo '# start PID: zero the counts and collect; stop PID: stop, dump (a file per measurement).'
        echo 'case $1 in'
        echo '    start) callgrind_control -z "$2" >/dev/null && callgrind_control -i on "$2" >/dev/null ;;'
        echo '    stop) callgrind_control -i off "$2" >/dev/null && callgrind_control -d "$2" >/dev/null ;;'
        echo 'esac'
    } >"$OUT/hook"
    chmod +x "$OUT/hook"
    export MEASURE_HOOK=$OUT/hook
    for variant in on off; do
        bin=$ON
        [[ $variant == off ]] && bin=$OFF
        {
            echo '#!/usr/bin/env bash'
            echo "exec valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$OUT/cg-$variant.out $bin \"\$@\""
        } >"$OUT/weir-$variant"
        chmod +x "$OUT/weir-$variant"
    done
fi

: >"$OUT/all.tsv"
for ((i = 1; i <= RUNS; i++)); do
    for variant in on off; do
        bin=$ON
        [[ $variant == off ]] && bin=$OFF
        [[ $MODE == instr ]] && bin=$OUT/weir-$variant
        log "run $i/$RUNS: metrics $variant"
        WEIR_BIN=$bin BUILD=0 MEM_ROUNDS=0 CONTENDERS=weir TESTS="small-ka conn-close" \
            "$ROOT/bench/http.sh" >"$OUT/run-$i-$variant.out" 2>"$OUT/run-$i-$variant.err"
        res=$(sed -n 's/.*raw results: \([^ ]*\) .*/\1/p' "$OUT/run-$i-$variant.err" | tail -1)
        [[ -f $res ]] || { log "no results from run $i ($variant): see $OUT/run-$i-$variant.err"; exit 1; }
        awk -F'\t' -v v="$variant" -v run="$i" '$3 == "weir" { print v "\t" run "\t" $0 }' "$res" >>"$OUT/all.tsv"
    done
done

if [[ $MODE == instr ]]; then
    # Dumps (cg-VARIANT.out.N, in measurement order) match the results' rows.
    echo "Weir metrics on vs compiled out: instructions per request (callgrind, user space), $(date -u +%Y-%m-%d), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'); ROUNDS=$ROUNDS SECS=$SECS CONNS=$CONNS"
    for variant in on off; do
        n=0
        while IFS=$'\t' read -r v _run _round test _c req _rest; do
            [[ $v == "$variant" ]] || continue
            n=$((n + 1))
            ir=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$OUT/cg-$variant.out.$n" | head -1)
            printf '%s\t%s\t%s\t%s\n' "$variant" "$test" "$req" "${ir:-0}"
        done <"$OUT/all.tsv"
    done >"$OUT/instr.tsv"
    awk -F'\t' '
        { ir[$1, $2] += $4; req[$1, $2] += $3; tests[$2] = 1 }
        END {
            printf "%-11s %14s %14s %8s\n", "test", "instr/req on", "instr/req off", "diff"
            for (t in tests) {
                on = ir["on", t] / req["on", t]; off = ir["off", t] / req["off", t]
                printf "%-11s %14.0f %14.0f %7.2f%%\n", t, on, off, (on / off - 1) * 100
            }
        }' "$OUT/instr.tsv"
    log "raw: $OUT/instr.tsv (variant, test, requests, instructions)"
    exit 0
fi

echo "Weir metrics on vs compiled out, $(date -u +%Y-%m-%d), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'); RUNS=$RUNS ROUNDS=$ROUNDS SECS=$SECS"
# all.tsv: variant run round test contender requests secs wall_s proxy_cpu_s errors …
awk -F'\t' '
    { req[$1, $4] += $6; secs[$1, $4] += $7; cpu[$1, $4] += $9; err[$1, $4] += $10; tests[$4] = 1 }
    END {
        printf "%-11s %12s %12s %8s %14s %14s %8s\n", "test", "req/s on", "req/s off", "diff", "req/cpu-s on", "req/cpu-s off", "diff"
        for (t in tests) {
            rn = req["on", t] / secs["on", t]; rf = req["off", t] / secs["off", t]
            cn = req["on", t] / cpu["on", t]; cf = req["off", t] / cpu["off", t]
            printf "%-11s %12.0f %12.0f %7.1f%% %14.0f %14.0f %7.1f%%\n", t, rn, rf, (rn / rf - 1) * 100, cn, cf, (cn / cf - 1) * 100
            if (err["on", t] + err["off", t] > 0) printf "  (%s: %d errors on, %d off)\n", t, err["on", t], err["off", t]
        }
    }' "$OUT/all.tsv"
log "raw: $OUT/all.tsv (variant, run, then bench/http.sh's columns)"
