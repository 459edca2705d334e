#!/usr/bin/env bash
# HTTP/1.1 benchmark: Weir (an `http` VServer) vs HAProxy (mode http) vs
# nginx (proxy_pass to a keepalive upstream), one worker thread each, plus the
# direct (no proxy) ceiling. The origin is nginx (one worker).
#
#   bench/http.sh                        # ROUNDS=3 SECS=5 MEM_ROUNDS=3 by default (~6 min)
#   ROUNDS=1 SECS=2 MEM_ROUNDS=1 bench/http.sh   # a quick trial; knobs: see the defaults below
#   BUILD=0 bench/http.sh                # with the binaries already in target/release
#
# Tests (in each round every contender once, the order rotated per round),
# all with wrk -t1, keep-alive unless said:
#   small-ka     wrk -c$CONNS on /     (`return 200 "ok"` at the origin)
#   64k-ka       wrk -c$CONNS on /64k  (a static 64 KiB file, sendfile at the origin)
#   conn-close   wrk -c$CONNS on / with `Connection: close`: a new client connection per request
#   latency-c1   wrk -c1 on /: the latency a proxy adds (p50, p99), not queueing
#   idle memory  RSS delta of a freshly started proxy over IDLE_CONNS idle keep-alive
#                connections that each completed one request (bench/src/bin/http-idle.rs)
# Reuse of upstream connections everywhere: HAProxy `http-reuse always`, nginx
# `keepalive 64` + `proxy_http_version 1.1` + `Connection ""` + raised
# `keepalive_requests`; no access logs anywhere. With FWD=1 (the default)
# every proxy adds X-Forwarded-For, X-Real-IP and X-Forwarded-Proto and keeps
# the client's Host (Weir's defaults); FWD=0: none of them adds any.
# Client, origin and proxy are all pinned to CPU $CPU (taskset), as in
# shared/benchmarking.md. The proxy's CPU time is utime+stime from
# /proc/PID/stat around each measurement (nginx: its worker). Every process
# the script starts is stopped by its PID; every wait is bounded; only
# 127.0.0.0/8 addresses. The work dir (raw TSVs, logs, configs) is kept unless
# KEEP=0. Needs root (apt-get for missing tools, ulimit -n).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
CONNS=${CONNS:-50}
IDLE_CONNS=${IDLE_CONNS:-10000}
MEM_ROUNDS=${MEM_ROUNDS:-3}
CPU=${CPU:-1}
FWD=${FWD:-1}
KEEP=${KEEP:-1}
BUILD=${BUILD:-1} # 0: use the binaries already in target/release
TESTS=${TESTS:-small-ka 64k-ka conn-close latency-c1} # a subset for quick looks
CONTENDERS=${CONTENDERS:-direct weir haproxy nginx}    # a subset, e.g. for profiling one proxy
# 1: HAProxy and nginx also defer accepts until the first bytes (`defer-accept`,
# `deferred`), as Weir always does on http listeners (TCP_DEFER_ACCEPT).
PEER_DEFER=${PEER_DEFER:-0}
# WEIR_COMMIT: the commit to print when the tree is not a git checkout.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/target/release
WORK=$(mktemp -d /tmp/weir-http.XXXXXX)
RESULTS=$WORK/results.tsv
MEMRES=$WORK/memory.tsv
HZ=$(getconf CLK_TCK)

# Addresses: one 127.x per contender, the same port on every proxy.
ORIGIN=127.91.0.10 # origin nginx :8080
O_PORT=8080
HAP=127.92.0.1     # HAProxy, mode http
NGX=127.93.0.1     # nginx, proxy_pass
WEIR_SUBNET=127.90.0.0/24 # Weir's LB address is allocated from it
PORT=8000

log() { printf '[http %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
# shellcheck source=bench/lib-l7.sh
source "$ROOT/bench/lib-l7.sh"

# ---------------------------------------------------------------- processes
declare -a PIDS=()
declare -A PID_OF=()  # contender → the PID doing the proxying (nginx: its worker)
declare -A MAIN_OF=() # contender → the PID the script started
declare -A ADDR_OF=([direct]=$ORIGIN [haproxy]=$HAP [nginx]=$NGX)
declare -A PORT_OF=([direct]=$O_PORT [haproxy]=$PORT [nginx]=$PORT [weir]=$PORT)

cleanup() {
    local rc=$? p
    for p in "${PIDS[@]}"; do stop_pid "$p"; done
    if [[ $rc -eq 0 && $KEEP == 0 ]]; then
        rm -rf "$WORK"
    else
        log "logs and raw results (results.tsv, memory.tsv) kept in $WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_listen() { # addr port: until a TCP socket listens there (10 s)
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -n $(ss -Hlnt "src $1:$2" 2>/dev/null) ]] && return 0
        sleep 0.1
    done
    die "nothing listens on $1:$2"
}

wait_ok() { # addr port: until GET / answers "ok" (10 s)
    local i
    for ((i = 0; i < 100; i++)); do
        [[ $(curl -s -m 1 "http://$1:$2/" 2>/dev/null) == ok ]] && return 0
        sleep 0.1
    done
    die "GET http://$1:$2/ does not answer \"ok\""
}

# addr port → TCP connections the proxy still holds on its listening address
# (TIME-WAIT aside): its client connections, not its upstream pool.
# ---------------------------------------------------------------- setup
# The origin: nginx, one worker, `return 200 "ok"` at / and a 64 KiB file at
# /64k with sendfile. Keep-alive without a request cap, so no proxy's upstream
# connections get closed by the origin during a run.
start_origin() {
    local d=$WORK/origin wc=$((2 * IDLE_CONNS + 400))
    mkdir -p "$d/www"
    head -c 65536 /dev/urandom >"$d/www/64k"
    # nginx's worker runs unprivileged (nobody or www-data) and must reach the file.
    chmod 755 "$WORK" "$d" "$d/www"
    chmod 644 "$d/www/64k"
    cat >"$d/nginx.conf" <<EOF
daemon off;
worker_processes 1;
worker_rlimit_nofile $(ulimit -n);
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections $wc; }
http {
    access_log off;
    client_body_temp_path $d/tmp-body;
    proxy_temp_path $d/tmp-proxy;
    fastcgi_temp_path $d/tmp-fastcgi;
    uwsgi_temp_path $d/tmp-uwsgi;
    scgi_temp_path $d/tmp-scgi;
    default_type application/octet-stream;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 3600s;
    keepalive_requests 100000000;
    server {
        listen $ORIGIN:$O_PORT backlog=4096;
        root $d/www;
        location = / { default_type text/plain; return 200 "ok"; }
        location = /64k { }
    }
}
EOF
    start_bg origin nginx -c "$d/nginx.conf" -p "$d/" -e "$d/error.log"
    MAIN_OF[origin]=$LASTPID
    [[ -n $(nginx_worker "$LASTPID") ]] || die "the origin nginx started no worker (see $d/error.log)"
    wait_listen $ORIGIN $O_PORT
    wait_ok $ORIGIN $O_PORT
    local n
    n=$(curl -s -m 2 -o /dev/null -w '%{size_download}' "http://$ORIGIN:$O_PORT/64k")
    [[ $n == 65536 ]] || die "origin /64k returned $n bytes"
}

write_haproxy_cfg() {
    local maxconn=$((IDLE_CONNS + 200))
    {
        cat <<EOF
global
    nbthread 1
    maxconn $maxconn
defaults
    mode http
    maxconn $maxconn
    http-reuse always
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout http-request 1h
    timeout http-keep-alive 1h
listen web
    bind $HAP:$PORT$([[ $PEER_DEFER == 1 ]] && printf ' defer-accept')
    server o $ORIGIN:$O_PORT
EOF
        if [[ $FWD == 1 ]]; then
            printf '    option forwardfor\n'
            printf '    http-request set-header X-Real-IP %%[src]\n'
            printf '    http-request set-header X-Forwarded-Proto http\n'
        fi
    } >"$WORK/haproxy.cfg"
}

write_nginx_cfg() {
    local d=$WORK/nginx wc=$((2 * IDLE_CONNS + 400)) fwd=""
    mkdir -p "$d"
    # proxy_set_header at a level replaces every inherited one: all in one place.
    if [[ $FWD == 1 ]]; then
        # shellcheck disable=SC2016 # nginx variables, for nginx to expand
        fwd='proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;'
    fi
    cat >"$d/nginx.conf" <<EOF
daemon off;
worker_processes 1;
worker_rlimit_nofile $(ulimit -n);
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections $wc; }
http {
    access_log off;
    client_body_temp_path $d/tmp-body;
    proxy_temp_path $d/tmp-proxy;
    fastcgi_temp_path $d/tmp-fastcgi;
    uwsgi_temp_path $d/tmp-uwsgi;
    scgi_temp_path $d/tmp-scgi;
    keepalive_timeout 3600s;
    keepalive_requests 100000000;
    upstream origin {
        server $ORIGIN:$O_PORT;
        keepalive 64;
        keepalive_requests 100000000;
        keepalive_timeout 3600s;
    }
    server {
        listen $NGX:$PORT backlog=4096$([[ $PEER_DEFER == 1 ]] && printf ' deferred');
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            $fwd
            # Bodies larger than the proxy buffers go to the client as they
            # free up, never to a temp file on disk.
            proxy_max_temp_file_size 0;
            proxy_connect_timeout 5s;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }
    }
}
EOF
}



# Weir: API on an ephemeral port; the store (and so the configuration) lives
# in $WORK/weir-data, so a restart comes back with the same listener. One
# worker thread: TOKIO_WORKER_THREADS=1 (its runtime is tokio's multi-thread
# one, built with the defaults, which read that variable), as in l4.sh.
API=""
REV=0
LB="" VS="" BE=""
configure_weir() { weir_lab "\"protocol\":\"http\",\"port\":$PORT"; }
proxy_ok() { wait_ok "$@"; }

start_contender() {
    case $1 in
        weir) start_weir && weir_ready ;;
        nginx) start_nginx ;;
        haproxy) start_haproxy ;;
    esac
}

# ---------------------------------------------------------------- measurements
# wrk prints one machine-readable line at the end (latency in µs).
write_wrk_lua() {
    cat >"$WORK/report.lua" <<'EOF'
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "RESULT requests=%d duration_us=%d bytes=%d errors=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d\n",
        summary.requests, summary.duration, summary.bytes,
        e.connect + e.read + e.write + e.status + e.timeout,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(99)))
end
EOF
}

# measure test contender cmd…: runs cmd pinned, bounded, with the proxy's CPU
# ticks and the wall time around it; output in $WORK/run.out.
measure() {
    local pid=${PID_OF[$2]:-} c0=0 c1=0 t0 t1 rc=0
    [[ -n $pid ]] && c0=$(cpu_ticks "$pid")
    # MEASURE_HOOK (bench/metrics.sh): a command told "start PID" and
    # "stop PID" around each measurement (e.g. to count instructions).
    if [[ -n ${MEASURE_HOOK:-} && -n $pid ]]; then "$MEASURE_HOOK" start "$pid"; fi
    t0=$(date +%s.%N)
    timeout $((SECS + 30)) taskset -c "$CPU" "${@:3}" >"$WORK/run.out" 2>"$WORK/run.err" || rc=$?
    t1=$(date +%s.%N)
    if [[ -n ${MEASURE_HOOK:-} && -n $pid ]]; then "$MEASURE_HOOK" stop "$pid"; fi
    [[ -n $pid ]] && c1=$(cpu_ticks "$pid")
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then die "$2 died during $1"; fi
    M_WALL=$(echo "$t1 - $t0" | bc -l)
    M_CPU=NA
    [[ -n $pid ]] && M_CPU=$(echo "($c1 - $c0) / $HZ" | bc -l)
    M_RC=$rc
}

kv() { sed -n "s/^RESULT.*\\b$1=\\([0-9.]*\\).*/\\1/p" "$WORK/run.out" | head -1; }

fmt_us() { # µs → "123 µs" or "1.23 ms"
    if (($1 >= 1000)); then echo "$1" | awk '{printf "%.2f ms", $1 / 1000}'; else echo "$1 µs"; fi
}

run_wrk() { # round test contender
    local r=$1 t=$2 c=$3 url="http://${ADDR_OF[$3]}:${PORT_OF[$3]}" args=(-t1 -c"$CONNS")
    case $t in
        small-ka) url+=/ ;;
        64k-ka) url+=/64k ;;
        conn-close) url+=/ args+=(-H 'Connection: close') ;;
        latency-c1) url+=/ args=(-t1 -c1) ;;
    esac
    measure "$t" "$c" wrk "${args[@]}" -d"${SECS}s" --latency -s "$WORK/report.lua" "$url"
    local req dur errs p50 p99 bytes
    req=$(kv requests) dur=$(kv duration_us) errs=$(kv errors) p50=$(kv p50_us) p99=$(kv p99_us) bytes=$(kv bytes)
    if [[ $M_RC != 0 || -z $req ]]; then
        log "  $t $c: wrk failed (rc $M_RC): $(head -3 "$WORK/run.err")"
        req=0 dur=1000000 errs=1 p50=0 p99=0 bytes=0
    fi
    local cpu_col=NA
    [[ $M_CPU != NA ]] && cpu_col=$(printf '%.2f' "$M_CPU")
    printf '%s\t%s\t%s\t%s\t%.6f\t%.6f\t%s\t%s\t%s\t%s\t%s\n' "$r" "$t" "$c" "$req" \
        "$(echo "$dur / 1000000" | bc -l)" "$M_WALL" "$cpu_col" "$errs" "$p50" "$p99" "$bytes" >>"$RESULTS"
    local rate cpu="" eff=""
    rate=$(echo "$req * 1000000 / $dur" | bc)
    if [[ $M_CPU != NA ]]; then
        cpu=", proxy CPU $cpu_col s"
        [[ $M_CPU != 0 ]] && eff=", $(echo "$req / $M_CPU" | bc) per CPU-s"
    fi
    log "  $t $c: $rate req/s ($errs errors), p50 $(fmt_us "$p50"), p99 $(fmt_us "$p99")$cpu$eff"
}

memory_one() { # round contender
    local c=$2 pid addr before after ok errs client
    start_contender "$c"
    addr=${ADDR_OF[$c]}:${PORT_OF[$c]}
    pid=${PID_OF[$c]}
    # Warm-up: 200 connections, one request each, then closed.
    timeout 60 taskset -c "$CPU" "$BIN/http-idle" --addr "$addr" --conns 200 --hold 0 >/dev/null
    sleep 1
    before=$(rss_kib "$pid")
    local fd0 fd1 fd2 i
    fd0=$(nfds "$pid")
    start_bg idle-client "$BIN/http-idle" --addr "$addr" --conns "$IDLE_CONNS" --hold 300
    client=$LASTPID
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
    # The clients are gone: every client connection should end at the proxy
    # (10 s). Its descriptors too, give or take its pool of idle upstream
    # connections (HAProxy's and nginx's vary between samples).
    local left
    for ((i = 0; i < 100; i++)); do
        left=$(client_conns "${ADDR_OF[$c]}" "${PORT_OF[$c]}")
        ((left == 0)) && break
        sleep 0.1
    done
    fd2=$(nfds "$pid")
    stop_contender "$c"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$c" "$before" "$after" "$ok" "$errs" "$((fd2 - fd0))" "$((fd1 - fd0))" "$left" >>"$MEMRES"
    log "  memory $c: RSS $before → $after KiB over $ok idle connections ($errs errors): $(((after - before) * 1024 / (ok > 0 ? ok : 1))) B/conn; fds $fd0 → $fd1 → $fd2 and $left client connections left after the clients closed"
}

# ---------------------------------------------------------------- report
report() {
    awk -F'\t' -v results="$RESULTS" -v memres="$MEMRES" '
    function sort(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
    function stats(list,   a, n) { n = split(list, a, " "); if (n == 0) return "n/a"; sort(a, n)
        MED = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2; MIN = a[1]; MAX = a[n]; return n }
    function add(k, v) { L[k] = (k in L) ? L[k] " " v : v }
    function us(x) { return (x >= 1000) ? sprintf("%.2f ms", x / 1000) : sprintf("%.0f µs", x) }
    function ratio(k) { if (!(k in L) || stats(L[k]) == "n/a") return "n/a"; return sprintf("%.2f (%.2f–%.2f)", MED, MIN, MAX) }
    # Per round: weir ÷ the better of haproxy and nginx, ÷ haproxy, ÷ nginx.
    # hi: a higher figure is better (rates); otherwise lower (latency).
    function vs(name, A, r, t, hi,   h, n, best) {
        if (!((r, t, "weir") in A)) return
        h = ((r, t, "haproxy") in A) ? A[r, t, "haproxy"] : ""
        n = ((r, t, "nginx") in A) ? A[r, t, "nginx"] : ""
        if (h != "" && h > 0) add(name "|hap|" t, A[r, t, "weir"] / h)
        if (n != "" && n > 0) add(name "|ngx|" t, A[r, t, "weir"] / n)
        best = ""
        if (h != "" && n != "") best = hi ? ((h > n) ? h : n) : ((h < n) ? h : n)
        else if (h != "") best = h
        else if (n != "") best = n
        if (best != "" && best > 0) add(name "|best|" t, A[r, t, "weir"] / best)
    }
    FILENAME == results {
        r = $1; t = $2; c = $3; rate = ($5 > 0) ? $4 / $5 : 0
        RATE[r, t, c] = rate; ERR[t, c] += $8; SEEN[t, c] = 1; TESTS[t] = 1; ROUND[r] = 1
        P50[r, t, c] = $9; P99[r, t, c] = $10
        add("rate|" t "|" c, rate); add("p50|" t "|" c, $9); add("p99|" t "|" c, $10)
        if ($7 != "NA" && $7 > 0) { EFF[r, t, c] = $4 / $7; add("eff|" t "|" c, $4 / $7); add("share|" t "|" c, $7 / $6) }
        next
    }
    FILENAME == memres {
        if ($5 > 0) { add("mem|" $2, ($4 - $3) * 1024 / $5); add("fdper|" $2, $8 / $5); MEMSEEN[$2] = 1; NMEM++; PER[$1, $2] = ($4 - $3) * 1024 / $5 }
        MERR[$2] += $6; if ($9 > MLEFT[$2]) MLEFT[$2] = $9; MROUND[$1] = 1; next
    }
    END {
        NT = split("small-ka 64k-ka conn-close latency-c1", order, " ")
        NC = split("direct weir haproxy nginx", cs, " ")
        for (r in ROUND) for (i = 1; i <= NT; i++) { t = order[i]
            for (j = 1; j <= NC; j++) { c = cs[j]
                if ((r, t, c) in RATE && (r, t, "direct") in RATE && RATE[r, t, "direct"] > 0)
                    add("vsdirect|" t "|" c, RATE[r, t, c] / RATE[r, t, "direct"])
            }
            vs("eff", EFF, r, t, 1); vs("rate", RATE, r, t, 1); vs("p50", P50, r, t, 0); vs("p99", P99, r, t, 0)
        }
        print ""
        print "| test | contender | req/s | proxy CPU share | req per proxy CPU-s | rate ÷ direct | p50 | p99 | errors |"
        print "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        for (i = 1; i <= NT; i++) { t = order[i]; if (!(t in TESTS)) continue
            for (j = 1; j <= NC; j++) { c = cs[j]; if (!((t, c) in SEEN)) continue
                stats(L["rate|" t "|" c]); rate = sprintf("%.0f", MED)
                share = "–"; eff = "–"
                if (("share|" t "|" c) in L) { stats(L["share|" t "|" c]); share = sprintf("%.0f%%", MED * 100)
                    stats(L["eff|" t "|" c]); eff = sprintf("%.0f", MED) }
                vd = (c == "direct") ? "1" : ratio("vsdirect|" t "|" c)
                stats(L["p50|" t "|" c]); p50 = us(MED); stats(L["p99|" t "|" c]); p99 = us(MED)
                printf "| %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", t, c, rate, share, eff, vd, p50, p99, ERR[t, c]
            }
        }
        n = 0; for (r in ROUND) n++
        print ""
        print "Medians over " n " rounds (ratios: medians of per-round ratios, min–max). n/a: not measured."
        print ""
        print "| test | figure | weir ÷ the better of HAProxy and nginx | weir ÷ HAProxy | weir ÷ nginx |"
        print "| --- | --- | --- | --- | --- |"
        for (i = 1; i <= NT; i++) { t = order[i]; if (!(t in TESTS)) continue
            row(t, "req per proxy CPU-s", "eff"); row(t, "req/s", "rate")
            if (t == "latency-c1" || t == "small-ka") { row(t, "p50 latency (lower is better)", "p50"); row(t, "p99 latency (lower is better)", "p99") }
        }
        if (NMEM > 0) {
            m = 0; for (r in MROUND) m++
            for (r in MROUND) {
                if ((r, "weir") in PER && (r, "haproxy") in PER && PER[r, "haproxy"] > 0) add("mem|hap|idle", PER[r, "weir"] / PER[r, "haproxy"])
                if ((r, "weir") in PER && (r, "nginx") in PER && PER[r, "nginx"] > 0) add("mem|ngx|idle", PER[r, "weir"] / PER[r, "nginx"])
                b = ""
                if ((r, "haproxy") in PER) b = PER[r, "haproxy"]
                if ((r, "nginx") in PER && (b == "" || PER[r, "nginx"] < b)) b = PER[r, "nginx"]
                if ((r, "weir") in PER && b != "" && b > 0) add("mem|best|idle", PER[r, "weir"] / b)
            }
            row("idle", "RSS per idle keep-alive connection (lower is better)", "mem")
            print ""
            print "| idle keep-alive connections | bytes of RSS per connection | fds per connection | errors | client connections left 10 s after the clients closed (max) |"
            print "| --- | --- | --- | --- | --- |"
            for (j = 2; j <= NC; j++) { c = cs[j]; if (!(c in MEMSEEN)) continue
                stats(L["mem|" c]); v = sprintf("%.0f (%.0f–%.0f)", MED, MIN, MAX)
                stats(L["fdper|" c]); fp = sprintf("%.2f", MED)
                printf "| %s | %s | %s | %d | %d |\n", c, v, fp, MERR[c], MLEFT[c]
            }
            print ""
            print "Median (min–max) over " m " rounds, each on a freshly started proxy."
        }
        print ""
        print "Targets (same run; per proxy CPU-second unless said):"
        verdict("HTTP/1.1 keep-alive small responses ≥ 1.2× the better", "eff|best|small-ka", 1.2, 0)
        verdict("-c1 p99 ≤ HAProxy (weir ÷ HAProxy ≤ 1)", "p99|hap|latency-c1", 1.0, 1)
        verdict("HTTP/1.1 64 KiB responses ≥ 1.1× the better", "eff|best|64k-ka", 1.1, 0)
        verdict("new connection per request (Connection: close) ≥ the better", "eff|best|conn-close", 1.0, 0)
        verdict("idle memory per keep-alive connection ≤ HAProxy (weir ÷ HAProxy ≤ 1)", "mem|hap|idle", 1.0, 1)
    }
    function row(t, name, k) {
        printf "| %s | %s | %s | %s | %s |\n", t, name, ratio(k "|best|" t), ratio(k "|hap|" t), ratio(k "|ngx|" t)
    }
    function verdict(name, k, target, lower,   ok) {
        if (!(k in L)) { printf "  - %s: n/a\n", name; return }
        stats(L[k]); ok = lower ? (MED <= target) : (MED >= target)
        printf "  - %s: %.3f (%.3f–%.3f) → %s\n", name, MED, MIN, MAX, ok ? "MET" : "MISSED"
    }
    ' "$RESULTS" "$MEMRES"
}

# ---------------------------------------------------------------- main
main() {
    [[ $(id -u) == 0 ]] || die "run as root (apt-get, ulimit -n)"
    install_tools wrk:wrk bc:bc
    raise_nofile
    if [[ $BUILD == 1 ]]; then
        log "building (cargo build --release -p weir -p weir-bench)"
        (cd "$ROOT" && cargo build --release -q -p weir -p weir-bench)
    fi
    local b
    for b in weir http-idle; do [[ -x $BIN/$b ]] || die "$BIN/$b is missing (build with BUILD=1)"; done
    printf 'round\ttest\tcontender\trequests\tsecs\twall_s\tproxy_cpu_s\terrors\tp50_us\tp99_us\tbytes\n' >"$WORK/results.columns"
    printf 'round\tcontender\trss_before_kib\trss_after_kib\tconns_ok\tconn_errors\tfds_left_after_close\tfds_added\tclient_conns_left\n' >"$WORK/memory.columns"
    : >"$RESULTS"
    : >"$MEMRES"
    write_wrk_lua
    log "load average: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the figures)"
    log "work dir $WORK; ROUNDS=$ROUNDS SECS=$SECS CONNS=$CONNS IDLE_CONNS=$IDLE_CONNS MEM_ROUNDS=$MEM_ROUNDS FWD=$FWD CPU=$CPU"

    start_origin
    start_weir
    configure_weir
    weir_ready
    log "weir LB at ${ADDR_OF[weir]} (revision $REV), VServer $VS running, backend valid"
    start_haproxy
    start_nginx

    local r t c
    for ((r = 1; r <= ROUNDS; r++)); do
        log "round $r/$ROUNDS"
        for t in $TESTS; do
            # shellcheck disable=SC2086 # a list, split on purpose
            for c in $(rotate $((r - 1)) $CONTENDERS); do
                run_wrk "$r" "$t" "$c"
                if [[ $t == conn-close ]]; then sleep 1; else sleep 0.5; fi
            done
        done
    done

    # Diagnostics: where Weir's CPU went (per thread).
    local line="" task
    for task in /proc/"${PID_OF[weir]}"/task/*; do
        line+="$(cat "$task/comm")[${task##*/}]=$(cpu_ticks "${PID_OF[weir]}/task/${task##*/}") "
    done
    log "weir CPU ticks per thread: $line"
    log "weir data-plane counters: $(weir_api GET /v1/system/status | jq -c '.dataplane // "n/a"')"
    for c in weir haproxy nginx; do stop_contender "$c"; done

    if ((MEM_ROUNDS > 0)); then
        log "idle memory: $IDLE_CONNS keep-alive connections, $MEM_ROUNDS rounds"
        for ((r = 1; r <= MEM_ROUNDS; r++)); do
            for c in $(rotate $((r - 1)) weir haproxy nginx); do
                memory_one "$r" "$c"
                sleep 1
            done
        done
    fi

    echo
    local commit=${WEIR_COMMIT:-}
    if [[ -z $commit ]]; then
        commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
        [[ -n $(git -C "$ROOT" status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null) ]] && commit+=" + uncommitted changes"
    fi
    echo "Weir HTTP/1.1 benchmark, $(date -u +%Y-%m-%d), commit $commit"
    echo "$(haproxy -v | head -1 | cut -d' ' -f1-3), nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); $(nproc) CPUs, all pinned to CPU $CPU"
    echo "ROUNDS=$ROUNDS SECS=$SECS CONNS=$CONNS IDLE_CONNS=$IDLE_CONNS MEM_ROUNDS=$MEM_ROUNDS FWD=$FWD PEER_DEFER=$PEER_DEFER"
    report
    log "raw results: $RESULTS (columns: $WORK/results.columns), $MEMRES (columns: $WORK/memory.columns)"
    log "done in $((SECONDS / 60)) min $((SECONDS % 60)) s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

main "$@"
