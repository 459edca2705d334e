#!/usr/bin/env bash
# Layer-4 benchmark: Weir (relaying through buffers, and with splice, the default) vs
# HAProxy (mode tcp, without and with splice) vs nginx (stream), one worker
# thread each, plus the direct (no proxy) ceiling.
#
#   bench/l4.sh                      # ROUNDS=5 SECS=4 MEM_ROUNDS=3 by default (~11 min)
#   ROUNDS=3 SECS=3 bench/l4.sh      # shorter; knobs: see the defaults below
#
# Tests (in each round every contender once, the order rotated per round):
#   tcp bulk c→s / s→c  iperf3 -t SECS (and -R) through the proxy to an iperf3 server
#   tcp conn/s          l4-client connrate: CONNS closed loops of connect, 1 byte, echo, close;
#                       nginx twice: "nginx" with proxy_half_close on (each direction closed on
#                       its own, as Weir and HAProxy do) and "nginx-nohc" with nginx's default
#                       (both sides closed at the client's FIN: less work, and not equivalent,
#                       so reported but not counted as "the better")
#                       and "floor" (bench/src/bin/l4-floor.rs: accept, connect, relay with
#                       half-close, close, nothing else): how much of the CPU per connection
#                       is the kernel's, i.e. the most any user-space proxy can reach here
#   udp rt/s            l4-client udp-rtt: UDP_SOCKETS sockets (flows), each send → echo → repeat;
#                       nginx twice: "nginx" with proxy_responses 1 (a session per datagram) and
#                       "nginx-flow" without it (a session per client address:port kept until
#                       proxy_timeout, the same semantics as Weir's flow table)
#   idle memory         RSS delta of a freshly started proxy over IDLE_CONNS idle TCP connections
# Client, origin and proxy are all pinned to CPU $CPU (taskset), as in
# shared/benchmarking.md. The proxy's CPU time is utime+stime from
# /proc/PID/stat around each measurement. Every process the script starts is
# stopped by its PID; every wait is bounded; only 127.0.0.0/8 addresses.
# Needs root (apt-get for missing tools, ulimit -n).
set -euo pipefail

ROUNDS=${ROUNDS:-5}
SECS=${SECS:-4}
CONNS=${CONNS:-32}
UDP_SOCKETS=${UDP_SOCKETS:-32}
IDLE_CONNS=${IDLE_CONNS:-10000}
MEM_ROUNDS=${MEM_ROUNDS:-3}
CPU=${CPU:-1}
KEEP=${KEEP:-0}
BUILD=${BUILD:-1}                                     # 0: use the binaries already in target/release
TESTS=${TESTS:-tcp-bulk-up tcp-bulk-down tcp-conn udp-rt} # a subset for quick looks
CONTENDERS=${CONTENDERS:-direct weir weir-splice haproxy haproxy-splice nginx nginx-nohc nginx-flow floor}
# WEIR_BIN: another weir binary (an A/B against an older build)
# WEIR_COMMIT: the commit to print when the tree is not a git checkout.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/target/release
WORK=$(mktemp -d /tmp/weir-l4.XXXXXX)
RESULTS=$WORK/results.tsv
MEMRES=$WORK/memory.tsv
HZ=$(getconf CLK_TCK)

# Addresses: one 127.x per contender, the same ports everywhere.
ORIGIN=127.71.0.10          # iperf3 :5201, TCP echo :7000, UDP echo :7001
HAP=127.72.0.1              # HAProxy, mode tcp
HAPS=127.73.0.1             # HAProxy, mode tcp + splice-request/splice-response
NGX=127.74.0.1              # nginx stream
FLOOR=127.76.0.1            # l4-floor: the least a user-space proxy does (tcp-conn only)
# Weir's LB addresses are allocated from these subnets (one Weir process each).
declare -A WEIR_SUBNET_OF=([weir]=127.70.0.0/24 [weir-splice]=127.75.0.0/24)
P_BULK=9000 P_ECHO=9001 P_UDP=9002 P_UDP_FLOW=9003 P_ECHO_NOHC=9004

log() { printf '[l4 %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

# ---------------------------------------------------------------- processes
declare -a PIDS=()
declare -A PID_OF=()     # contender → the PID doing the proxying (nginx: its worker)
declare -A MAIN_OF=()    # contender → the PID the script started
declare -A ADDR_OF=([direct]=$ORIGIN [haproxy]=$HAP [haproxy-splice]=$HAPS [nginx]=$NGX [nginx-flow]=$NGX [nginx-nohc]=$NGX [floor]=$FLOOR)

cleanup() {
    local rc=$? p
    for p in "${PIDS[@]}"; do stop_pid "$p"; done
    if [[ $rc -eq 0 && $KEEP != 1 ]]; then
        rm -rf "$WORK"
    else
        log "logs and results kept in $WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_listen() { # proto(t|u) addr port: until a socket listens there (10 s)
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -n $(ss -Hln"$1" "src $2:$3" 2>/dev/null) ]] && return 0
        sleep 0.1
    done
    die "nothing listens on $1 $2:$3"
}

# ---------------------------------------------------------------- setup
start_origin() {
    start_bg iperf3 iperf3 -s -B "$ORIGIN" -p 5201
    start_bg origin "$BIN/l4-origin" --tcp "$ORIGIN:7000" --udp "$ORIGIN:7001"
    wait_listen t "$ORIGIN" 5201
    wait_listen t "$ORIGIN" 7000
    wait_listen u "$ORIGIN" 7001
}

write_haproxy_cfg() { # addr splice(0|1) file
    # The splice variant is not in the memory test: a smaller maxconn leaves
    # descriptors for its pipes (maxpipes defaults to maxconn / 4).
    local maxconn=$((IDLE_CONNS + 200))
    [[ $2 == 1 ]] && maxconn=4000
    {
        cat <<EOF
global
    nbthread 1
    maxconn $maxconn
defaults
    mode tcp
    maxconn $maxconn
    timeout connect 5s
    timeout client 1h
    timeout server 1h
EOF
        if [[ $2 == 1 ]]; then
            printf '    option splice-request\n    option splice-response\n'
        fi
        cat <<EOF
listen bulk
    bind $1:$P_BULK
    server o $ORIGIN:5201
listen echo
    bind $1:$P_ECHO
    server o $ORIGIN:7000
EOF
    } >"$3"
}

write_nginx_cfg() {
    local wc=$((2 * IDLE_CONNS + 400))
    mkdir -p "$WORK/nginx"
    cat >"$WORK/nginx/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
worker_processes 1;
worker_rlimit_nofile $(ulimit -n);
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections $wc; }
stream {
    proxy_connect_timeout 5s;
    proxy_timeout 1h;
    # Half-close honoured, as Weir's spec and HAProxy do (nginx's default
    # closes both sides at the first FIN).
    proxy_half_close on;
    server { listen $NGX:$P_BULK; proxy_pass $ORIGIN:5201; }
    server { listen $NGX:$P_ECHO; proxy_pass $ORIGIN:7000; }
    server { listen $NGX:$P_ECHO_NOHC; proxy_pass $ORIGIN:7000; proxy_half_close off; }
    server { listen $NGX:$P_UDP udp; proxy_pass $ORIGIN:7001; proxy_responses 1; proxy_timeout 10s; }
    server { listen $NGX:$P_UDP_FLOW udp; proxy_pass $ORIGIN:7001; proxy_timeout 10s; }
}
EOF
}

start_haproxy() { # contender
    local addr=${ADDR_OF[$1]} splice=0
    [[ $1 == haproxy-splice ]] && splice=1
    write_haproxy_cfg "$addr" "$splice" "$WORK/$1.cfg"
    start_bg "$1" haproxy -db -f "$WORK/$1.cfg"
    PID_OF[$1]=$LASTPID MAIN_OF[$1]=$LASTPID
    wait_listen t "$addr" $P_BULK
    wait_listen t "$addr" $P_ECHO
}

start_nginx() {
    write_nginx_cfg
    start_bg nginx nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx/" -e "$WORK/nginx/error.log"
    MAIN_OF[nginx]=$LASTPID
    local i w=""
    for ((i = 0; i < 100; i++)); do
        w=$(pgrep -P "$LASTPID" | head -1 || true)
        [[ -n $w ]] && break
        sleep 0.1
    done
    [[ -n $w ]] || die "nginx started no worker (see $WORK/nginx/error.log)"
    PID_OF[nginx]=$w PID_OF[nginx-flow]=$w PID_OF[nginx-nohc]=$w
    wait_listen t $NGX $P_BULK
    wait_listen t $NGX $P_ECHO
    wait_listen t $NGX $P_ECHO_NOHC
    wait_listen u $NGX $P_UDP
    wait_listen u $NGX $P_UDP_FLOW
}

# Weir: API on an ephemeral port; the store (and so the configuration) lives
# in $WORK/<contender>-data, so a restart comes back with the same listeners.
# "weir" relays through buffers (`[dataplane] splice = false`), "weir-splice"
# with splice (the default).
declare -A API_OF=() REV_OF=()
weir_api() { # contender method path [json] → body on stdout; headers in $WORK/api.hdr
    local c=$1
    shift
    local args=(-sS --fail-with-body -X "$1" -H "Authorization: Bearer bench" -D "$WORK/api.hdr")
    [[ $# -ge 3 ]] && args+=(-H 'content-type: application/json' -d "$3")
    curl "${args[@]}" "${API_OF[$c]}$2"
}

start_weir() { # contender
    local c=$1 conf=() i api=""
    # Splice is the default: "weir" turns it off (relay through buffers).
    local splice=true
    [[ $c == weir ]] && splice=false
    printf '[dataplane]\nsplice = %s\n' "$splice" >"$WORK/$c.toml"
    conf=(--config "$WORK/$c.toml")
    start_bg "$c" env WEIR_ADMIN_TOKEN=bench WEIR_LOG=warn TOKIO_WORKER_THREADS=1 \
        "${WEIR_BIN:-$BIN/weir}" serve "${conf[@]}" --data-dir "$WORK/$c-data" --api-listen 127.0.0.1:0
    PID_OF[$c]=$LASTPID MAIN_OF[$c]=$LASTPID
    for ((i = 0; i < 300; i++)); do
        api=$(sed -n 's/.*API listening on \(http:[^ ]*\).*/\1/p' "$WORK/$c.out" | tail -1)
        [[ -n $api ]] && break
        kill -0 "$LASTPID" 2>/dev/null || die "$c exited: $(tail -5 "$WORK/$c.err")"
        sleep 0.1
    done
    [[ -n $api ]] || die "$c printed no API address"
    API_OF[$c]=$api
}

configure_weir() { # contender
    local c=$1 vpc subnet lb vs body
    vpc=$(weir_api "$c" POST /v1/vpcs '{"name":"b","cidr":"127.0.0.0/8"}' | jq -r .id)
    subnet=$(weir_api "$c" POST /v1/subnets \
        "{\"vpc_id\":\"$vpc\",\"name\":\"s\",\"cidr\":\"${WEIR_SUBNET_OF[$c]}\"}" | jq -r .id)
    body=$(weir_api "$c" POST /v1/load-balancers \
        "{\"name\":\"b\",\"network_type\":\"internal\",\"vpc_id\":\"$vpc\",\"subnet_id\":\"$subnet\"}")
    lb=$(jq -r .id <<<"$body")
    ADDR_OF[$c]=$(jq -r .address <<<"$body")
    # UDP flows idle out after 10 s, as nginx's UDP sessions (proxy_timeout 10s).
    local spec proto port target tport idle
    for spec in "tcp $P_BULK $ORIGIN 5201 3600" "tcp $P_ECHO $ORIGIN 7000 3600" "udp $P_UDP $ORIGIN 7001 10"; do
        read -r proto port target tport idle <<<"$spec"
        vs=$(weir_api "$c" POST "/v1/load-balancers/$lb/vservers" \
            "{\"protocol\":\"$proto\",\"port\":$port,\"idle_timeout_s\":$idle}" | jq -r .id)
        weir_api "$c" POST "/v1/load-balancers/$lb/vservers/$vs/backends" \
            "{\"address\":\"$target\",\"port\":$tport}" >/dev/null
    done
    REV_OF[$c]=$(weir_rev)
}

weir_ready() { # contender: applied_revision ≥ its last write's, listeners bound (10 s)
    local c=$1 i applied=0
    for ((i = 0; i < 100; i++)); do
        applied=$(weir_api "$c" GET /v1/system/status | jq -r .applied_revision)
        ((applied >= REV_OF[$c])) && break
        sleep 0.1
    done
    ((applied >= REV_OF[$c])) || die "$c applied revision $applied < ${REV_OF[$c]}"
    wait_listen t "${ADDR_OF[$c]}" $P_BULK
    wait_listen t "${ADDR_OF[$c]}" $P_ECHO
    wait_listen u "${ADDR_OF[$c]}" $P_UDP
}

start_floor() {
    start_bg floor "$BIN/l4-floor" --listen "$FLOOR:$P_ECHO" --to "$ORIGIN:7000"
    PID_OF[floor]=$LASTPID MAIN_OF[floor]=$LASTPID
    wait_listen t "$FLOOR" $P_ECHO
}

start_contender() {
    case $1 in
        floor) start_floor ;;
        weir | weir-splice) start_weir "$1" && weir_ready "$1" ;;
        nginx) start_nginx ;;
        haproxy | haproxy-splice) start_haproxy "$1" ;;
    esac
}

# ---------------------------------------------------------------- measurements
# measure round test contender cmd…: runs cmd pinned, bounded, with the
# proxy's CPU ticks and the wall time around it; output in $WORK/run.out.
measure() {
    local pid=${PID_OF[$3]:-} c0=0 c1=0 t0 t1 rc=0
    [[ -n $pid ]] && c0=$(cpu_ticks "$pid")
    t0=$(date +%s.%N)
    timeout $((SECS + 30)) taskset -c "$CPU" "${@:4}" >"$WORK/run.out" 2>"$WORK/run.err" || rc=$?
    t1=$(date +%s.%N)
    [[ -n $pid ]] && c1=$(cpu_ticks "$pid")
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then die "$3 died during $2"; fi
    M_WALL=$(echo "$t1 - $t0" | bc -l)
    M_CPU=NA
    [[ -n $pid ]] && M_CPU=$(echo "($c1 - $c0) / $HZ" | bc -l)
    M_RC=$rc
}

record() { # round test contender units secs errors
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$M_WALL" "$M_CPU" "$6" >>"$RESULTS"
}

kv() { sed -n "s/.*\\b$1=\\([0-9.]*\\).*/\\1/p" "$WORK/run.out" | head -1; }

run_bulk() { # round contender dir(up|down)
    local addr=${ADDR_OF[$2]} port=$P_BULK rev=() test=tcp-bulk-up
    [[ $2 == direct ]] && port=5201
    [[ $3 == down ]] && rev=(-R) test=tcp-bulk-down
    measure "$1" "$test" "$2" iperf3 -c "$addr" -p "$port" -t "$SECS" --connect-timeout 3000 -J "${rev[@]}"
    local bytes secs err
    err=$(jq -r '.error // empty' "$WORK/run.out" 2>/dev/null || echo "bad iperf3 output")
    if [[ $M_RC != 0 || -n $err ]]; then
        log "  $test $2: iperf3 failed (rc $M_RC): $err"
        record "$1" "$test" "$2" 0 1 1
        return
    fi
    bytes=$(jq -r .end.sum_received.bytes "$WORK/run.out")
    secs=$(jq -r .end.sum_received.seconds "$WORK/run.out")
    record "$1" "$test" "$2" "$bytes" "$secs" 0
    log "  $test $2: $(echo "$bytes * 8 / $secs / 1000000000" | bc -l | xargs printf '%.2f') Gbit/s, proxy CPU ${M_CPU:0:5} s"
}

run_conn() { # round contender
    local port=$P_ECHO
    [[ $2 == direct ]] && port=7000
    [[ $2 == nginx-nohc ]] && port=$P_ECHO_NOHC
    measure "$1" tcp-conn "$2" "$BIN/l4-client" connrate --addr "${ADDR_OF[$2]}:$port" --conns "$CONNS" --secs "$SECS"
    local ok errs secs
    ok=$(kv ok) errs=$(kv errors) secs=$(kv secs)
    [[ -n $ok ]] || { ok=0 errs=1 secs=1; log "  tcp-conn $2: client failed: $(head -3 "$WORK/run.err")"; }
    record "$1" tcp-conn "$2" "$ok" "$secs" "$errs"
    log "  tcp-conn $2: $ok conns in ${secs:0:5} s ($errs errors), proxy CPU ${M_CPU:0:5} s"
}

run_udp() { # round contender
    local port=$P_UDP
    [[ $2 == direct ]] && port=7001
    [[ $2 == nginx-flow ]] && port=$P_UDP_FLOW
    measure "$1" udp-rt "$2" "$BIN/l4-client" udp-rtt --addr "${ADDR_OF[$2]}:$port" --sockets "$UDP_SOCKETS" --secs "$SECS"
    local ok to errs secs
    ok=$(kv ok) to=$(kv timeouts) errs=$(kv errors) secs=$(kv secs)
    [[ -n $ok ]] || { ok=0 to=0 errs=1 secs=1; log "  udp-rt $2: client failed: $(head -3 "$WORK/run.err")"; }
    record "$1" udp-rt "$2" "$ok" "$secs" "$((to + errs))"
    log "  udp-rt $2: $ok round trips in ${secs:0:5} s ($to timeouts, $errs errors), proxy CPU ${M_CPU:0:5} s"
}

memory_one() { # round contender
    local c=$2 pid addr=${ADDR_OF[$2]:-} before after ok errs client
    start_contender "$c"
    addr=${ADDR_OF[$c]}
    pid=${PID_OF[$c]}
    # Warm-up: 200 connections opened, used once and closed.
    timeout 60 taskset -c "$CPU" "$BIN/l4-client" idle --addr "$addr:$P_ECHO" --conns 200 --hold 0 >/dev/null
    sleep 1
    before=$(rss_kib "$pid")
    local fd0 fd1 fd2
    fd0=$(nfds "$pid")
    start_bg idle-client "$BIN/l4-client" idle --addr "$addr:$P_ECHO" --conns "$IDLE_CONNS" --hold 300
    client=$LASTPID
    local i
    for ((i = 0; i < 600; i++)); do
        grep -q '^ready' "$WORK/idle-client.out" 2>/dev/null && break
        kill -0 "$client" 2>/dev/null || break
        sleep 0.1
    done
    grep -q '^ready' "$WORK/idle-client.out" || die "idle client not ready for $c: $(head -3 "$WORK/idle-client.err")"
    sleep 2
    after=$(rss_kib "$pid")
    fd1=$(nfds "$pid")
    ok=$(sed -n 's/.*ok=\([0-9]*\).*/\1/p' "$WORK/idle-client.out")
    errs=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' "$WORK/idle-client.out")
    stop_pid "$client"
    # The clients are gone: every proxied connection should end (10 s).
    for ((i = 0; i < 100; i++)); do
        fd2=$(nfds "$pid")
        ((fd2 <= fd0)) && break
        sleep 0.1
    done
    stop_contender "$c"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$c" "$before" "$after" "$ok" "$errs" "$((fd2 - fd0))" "$((fd1 - fd0))" >>"$MEMRES"
    log "  memory $c: RSS $before → $after KiB over $ok idle connections ($errs errors): $(((after - before) * 1024 / (ok > 0 ? ok : 1))) B/conn; fds $fd0 → $fd1 → $fd2 after the clients closed"
}

# ---------------------------------------------------------------- report
report() {
    awk -F'\t' -v results="$RESULTS" -v memres="$MEMRES" '
    function sort(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
    function stats(list,   a, n) { n = split(list, a, " "); if (n == 0) return "n/a"; sort(a, n)
        MED = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2; MIN = a[1]; MAX = a[n]; return n }
    function add(k, v) { L[k] = (k in L) ? L[k] " " v : v }
    function fmt(x, t) { if (t ~ /bulk/) return sprintf("%.2f Gbit/s", x * 8 / 1e9); return sprintf("%.0f /s", x) }
    function fmte(x, t) { if (t ~ /bulk/) return sprintf("%.2f Gbit", x * 8 / 1e9); return sprintf("%.0f", x) }
    function ratio(k) { if (!(k in L) || stats(L[k]) == "n/a") return "n/a"; return sprintf("%.2f (%.2f–%.2f)", MED, MIN, MAX) }
    FILENAME == results {
        r = $1; t = $2; c = $3; rate = ($5 > 0) ? $4 / $5 : 0
        RATE[r, t, c] = rate; ERR[t, c] += $8; SEEN[t, c] = 1; TESTS[t] = 1; ROUND[r] = 1
        add("rate|" t "|" c, rate)
        if ($7 != "NA" && $7 > 0) { EFF[r, t, c] = $4 / $7; add("eff|" t "|" c, $4 / $7); add("share|" t "|" c, $7 / $6) }
        next
    }
    FILENAME == memres {
        if ($5 > 0) { add("mem|" $2, ($4 - $3) * 1024 / $5); add("fdper|" $2, $8 / $5); MEMSEEN[$2] = 1; NMEM++; PER[$1, $2] = ($4 - $3) * 1024 / $5 }
        MERR[$2] += $6; if ($7 > MLEFT[$2]) MLEFT[$2] = $7; MROUND[$1] = 1; next
    }
    END {
        NT = split("tcp-bulk-up tcp-bulk-down tcp-conn udp-rt", order, " ")
        NC = split("direct weir weir-splice haproxy haproxy-splice nginx nginx-flow nginx-nohc floor", cs, " ")
        # Per-round ratios: to direct (rate), and of each Weir variant to every other contender (per CPU-s).
        for (r in ROUND) for (i = 1; i <= NT; i++) { t = order[i]
            for (j = 1; j <= NC; j++) { c = cs[j]
                if ((r, t, c) in RATE && (r, t, "direct") in RATE && RATE[r, t, "direct"] > 0)
                    add("vsdirect|" t "|" c, RATE[r, t, c] / RATE[r, t, "direct"])
                for (w = 2; w <= 3; w++) { W = cs[w]
                    if (c != W && (r, t, c) in EFF && (r, t, W) in EFF && EFF[r, t, c] > 0)
                        add("vs|" W "|" t "|" c, EFF[r, t, W] / EFF[r, t, c])
                }
            }
            best = 0
            for (j = 4; j <= 6; j++) if ((r, t, cs[j]) in EFF && EFF[r, t, cs[j]] > best) best = EFF[r, t, cs[j]]
            for (w = 2; w <= 3; w++) if (best > 0 && (r, t, cs[w]) in EFF) add("vsbest|" cs[w] "|" t, EFF[r, t, cs[w]] / best)
            if (best > 0 && (r, t, "floor") in EFF) add("vsbest|floor|" t, EFF[r, t, "floor"] / best)
        }
        print ""
        print "| test | contender | rate | proxy CPU share | per proxy CPU-s | rate ÷ direct | weir ÷ this, per CPU-s | weir-splice ÷ this, per CPU-s | errors |"
        print "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        for (i = 1; i <= NT; i++) { t = order[i]; if (!(t in TESTS)) continue
            for (j = 1; j <= NC; j++) { c = cs[j]; if (!((t, c) in SEEN)) continue
                stats(L["rate|" t "|" c]); rate = fmt(MED, t)
                share = "–"; eff = "–"
                if (("share|" t "|" c) in L) { stats(L["share|" t "|" c]); share = sprintf("%.0f%%", MED * 100)
                    stats(L["eff|" t "|" c]); eff = fmte(MED, t) }
                vd = (c == "direct") ? "1" : ratio("vsdirect|" t "|" c)
                w1 = (c == "direct" || c == "weir") ? "–" : ratio("vs|weir|" t "|" c)
                w2 = (c == "direct" || c == "weir-splice") ? "–" : ratio("vs|weir-splice|" t "|" c)
                printf "| %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", t, c, rate, share, eff, vd, w1, w2, ERR[t, c]
            }
        }
        n = 0; for (r in ROUND) n++
        print ""
        print "Medians over " n " rounds; ratios are medians of per-round ratios (min–max). Per proxy CPU-s: Gbit (bulk), connections (conn), round trips (udp). n/a: not measured."
        if (NMEM > 0) {
            m = 0; for (r in MROUND) m++
            for (r in MROUND) for (j = 2; j <= NC; j++) { c = cs[j]
                if ((r, c) in PER && (r, "haproxy") in PER && PER[r, "haproxy"] > 0) add("memvshap|" c, PER[r, c] / PER[r, "haproxy"]) }
            print ""
            print "| idle TCP connections | bytes of RSS per connection | ÷ HAProxy | fds per connection | errors | fds left 10 s after the clients closed (max) |"
            print "| --- | --- | --- | --- | --- | --- |"
            for (j = 2; j <= NC; j++) { c = cs[j]; if (!(c in MEMSEEN)) continue
                stats(L["mem|" c]); v = sprintf("%.0f (%.0f–%.0f)", MED, MIN, MAX)
                stats(L["fdper|" c]); fp = sprintf("%.2f", MED)
                printf "| %s | %s | %s | %s | %d | %d |\n", c, v, ratio("memvshap|" c), fp, MERR[c], MLEFT[c]
            }
            print ""
            print "Median (min–max) over " m " rounds, each on a freshly started proxy."
        }
        print ""
        print "Targets (per proxy CPU-second, same run):"
        for (w = 2; w <= 3; w++) { W = cs[w]
            verdict(W ": TCP bulk c→s ≥ HAProxy with splice", "vs|" W "|tcp-bulk-up|haproxy-splice", 1.0, 0)
            verdict(W ": TCP bulk s→c ≥ HAProxy with splice", "vs|" W "|tcp-bulk-down|haproxy-splice", 1.0, 0)
            verdict(W ": new TCP connections ≥ 1.2× the better of HAProxy (±splice) and nginx", "vsbest|" W "|tcp-conn", 1.2, 0)
            verdict(W ": (not a target) new TCP connections ≥ 1.2× nginx without half-close", "vs|" W "|tcp-conn|nginx-nohc", 1.2, 0)
        }
        verdict("(not a target) floor: new TCP connections ≥ 1.2× the better (the most a user-space proxy reaches here)", "vsbest|floor|tcp-conn", 1.2, 0)
        verdict("weir: UDP round trips ≥ 2× nginx (proxy_responses 1)", "vs|weir|udp-rt|nginx", 2.0, 0)
        verdict("weir: UDP round trips ≥ 2× nginx-flow (sessions kept, as Weir keeps flows)", "vs|weir|udp-rt|nginx-flow", 2.0, 0)
        for (w = 2; w <= 3; w++)
            verdict(cs[w] ": idle memory per TCP connection ≤ HAProxy (÷ HAProxy ≤ 1)", "memvshap|" cs[w], 1.0, 1)
    }
    function verdict(name, k, target, lower,   ok) {
        if (!(k in L)) { printf "  - %s: n/a\n", name; return }
        stats(L[k]); ok = lower ? (MED <= target) : (MED >= target)
        printf "  - %s: %.3f (%.3f–%.3f) → %s\n", name, MED, MIN, MAX, ok ? "MET" : "MISSED"
    }
    ' "$RESULTS" "$MEMRES"
}

# ---------------------------------------------------------------- main
wanted() { [[ " $TESTS " == *" $1 "* ]]; }
among() { # contenders… → those of them in $CONTENDERS
    local c out=()
    for c in "$@"; do [[ " $CONTENDERS " == *" $c "* ]] && out+=("$c"); done
    echo "${out[@]}"
}

main() {
    [[ $(id -u) == 0 ]] || die "run as root (apt-get, ulimit -n)"
    install_tools iperf3:iperf3
    [[ -e /usr/lib/nginx/modules/ngx_stream_module.so ]] || install_package libnginx-mod-stream
    raise_nofile
    if [[ $BUILD == 1 ]]; then
        log "building (cargo build --release -p weir -p weir-bench)"
        (cd "$ROOT" && cargo build --release -q -p weir -p weir-bench)
    fi
    local b
    for b in weir l4-client l4-origin l4-floor; do [[ -x $BIN/$b ]] || die "$BIN/$b is missing (build with BUILD=1)"; done
    : >"$RESULTS"
    : >"$MEMRES"
    log "load average: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the figures)"
    log "work dir $WORK; ROUNDS=$ROUNDS SECS=$SECS CONNS=$CONNS UDP_SOCKETS=$UDP_SOCKETS IDLE_CONNS=$IDLE_CONNS CPU=$CPU"

    start_origin
    for c in weir weir-splice; do
        start_weir "$c"
        configure_weir "$c"
        weir_ready "$c"
        log "$c LB at ${ADDR_OF[$c]} (revision ${REV_OF[$c]})"
    done
    local weir_fds0
    weir_fds0=$(nfds "${PID_OF[weir]}")
    start_haproxy haproxy
    start_haproxy haproxy-splice
    start_nginx
    [[ " $CONTENDERS " == *" floor "* ]] && start_floor

    local r
    for ((r = 1; r <= ROUNDS; r++)); do
        log "round $r/$ROUNDS"
        # shellcheck disable=SC2086 # lists, split on purpose
        if wanted tcp-bulk-up; then
            for c in $(rotate $((r - 1)) $(among direct weir weir-splice haproxy haproxy-splice nginx)); do
                run_bulk "$r" "$c" up
                sleep 0.5
            done
        fi
        if wanted tcp-bulk-down; then
            for c in $(rotate $((r - 1)) $(among direct weir weir-splice haproxy haproxy-splice nginx)); do
                run_bulk "$r" "$c" down
                sleep 0.5
            done
        fi
        if wanted tcp-conn; then
            for c in $(rotate $((r - 1)) $(among direct weir weir-splice haproxy haproxy-splice nginx nginx-nohc floor)); do
                run_conn "$r" "$c"
                sleep 1
            done
        fi
        if wanted udp-rt; then
            for c in $(rotate $((r - 1)) $(among direct weir nginx nginx-flow)); do
                run_udp "$r" "$c"
                sleep 0.5
            done
        fi
    done

    # Diagnostics: where Weir's CPU went (per thread), and descriptors still
    # open once every client is done (the origin's and the listeners' only).
    local t line=""
    for t in /proc/"${PID_OF[weir]}"/task/*; do
        line+="$(cat "$t/comm")[${t##*/}]=$(cpu_ticks "${PID_OF[weir]}/task/${t##*/}") "
    done
    log "weir CPU ticks per thread: $line"
    sleep 2
    local fds=""
    for c in weir weir-splice haproxy haproxy-splice nginx; do fds+="$c $(nfds "${PID_OF[$c]}"), "; done
    log "open fds 2 s after the rounds (weir and nginx-flow keep one upstream UDP socket per live flow): ${fds%, }; weir had $weir_fds0 before the rounds"
    # UDP flows idle out after 10 s (swept every 250 ms): Weir should be back
    # to the descriptors it had before the rounds.
    local i n
    for ((i = 0; i < 150; i++)); do
        n=$(nfds "${PID_OF[weir]}")
        ((n <= weir_fds0)) && break
        sleep 0.1
    done
    log "weir fds after the UDP flows' idle timeout: $n (before the rounds: $weir_fds0)"
    for c in weir weir-splice; do
        log "$c data-plane counters: $(weir_api "$c" GET /v1/system/status | jq -c '.dataplane // "n/a"')"
    done
    for c in weir weir-splice haproxy haproxy-splice nginx; do stop_contender "$c"; done

    log "idle memory: $IDLE_CONNS connections, $MEM_ROUNDS rounds"
    for ((r = 1; r <= MEM_ROUNDS; r++)); do
        for c in $(rotate $((r - 1)) weir weir-splice haproxy nginx); do
            memory_one "$r" "$c"
            sleep 1
        done
    done

    echo
    local commit=${WEIR_COMMIT:-}
    if [[ -z $commit ]]; then
        commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
        [[ -n $(git -C "$ROOT" status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null) ]] && commit+=" + uncommitted changes"
    fi
    echo "Weir L4 benchmark, $(date -u +%Y-%m-%d), commit $commit"
    echo "$(haproxy -v | head -1 | cut -d' ' -f1-3), nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), $(iperf3 --version | head -1 | cut -d' ' -f1-2); $(nproc) CPUs, all pinned to CPU $CPU"
    echo "ROUNDS=$ROUNDS SECS=$SECS CONNS=$CONNS UDP_SOCKETS=$UDP_SOCKETS IDLE_CONNS=$IDLE_CONNS"
    report
    log "done in $((SECONDS / 60)) min $((SECONDS % 60)) s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

main "$@"
