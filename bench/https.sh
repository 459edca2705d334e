#!/usr/bin/env bash
# HTTPS benchmark: Weir (an `https` VServer, TLS offload) vs HAProxy (mode
# http, `bind … ssl`) vs nginx (`listen … ssl`, proxy_pass to a keepalive
# upstream), one worker thread each, plus the direct ceiling (the client
# talks TLS to the origin nginx itself). The origin is nginx (one worker),
# plain HTTP/1.1 behind every proxy.
#
#   bench/https.sh                        # ROUNDS=3 SECS=5 MEM_ROUNDS=3 by default (~6 min after the build)
#   ROUNDS=1 SECS=2 MEM_ROUNDS=1 bench/https.sh   # a quick trial; knobs: see the defaults below
#   BUILD=0 bench/https.sh                # with the binaries already in target/release
#
# Tests (in each round every contender once, the order rotated per round):
#   https-ka     wrk -t1 -c$CONNS on https://…/: HTTP/1.1 keep-alive over TLS
#                (one handshake per connection, at the start)
#   handshakes   https-idle --handshakes (bench/src/bin/https-idle.rs), $CONNS closed
#                loops of connect, full TLS 1.3 handshake, GET / with
#                `Connection: close`, close: one full handshake per request.
#                Not wrk: wrk keeps the SSL object of a closed connection
#                (SSL_shutdown + SSL_clear), so it offers the last session's
#                TLS 1.3 ticket on the next connection and resumes wherever the
#                server issues tickets (Weir always does). The script shows
#                this at the start: an `openssl s_client -sess_out` then
#                `-sess_in` per contender.
#   h2           h2load -c$CONNS -m$H2_STREAMS -D $SECS on https://…/ (ALPN h2; HTTP/1.1 upstream)
#   idle memory  RSS delta of a freshly started proxy over IDLE_CONNS idle keep-alive
#                TLS connections that each completed one request (https-idle)
# TLS everywhere: TLS 1.3 only (nginx `ssl_protocols TLSv1.3`, HAProxy
# `ssl-min-ver TLSv1.3`; Weir offers 1.2 and 1.3, every client here
# negotiates 1.3), one ECDSA P-256 certificate made with openssl for the run,
# ALPN h2 + http/1.1. Resumption off where it can be turned off: nginx
# `ssl_session_tickets off` + `ssl_session_cache off`, HAProxy
# `no-tls-tickets` + `tune.ssl.cachesize 0` (both still send OpenSSL's two
# TLS 1.3 tickets after a handshake, stateful ones that no cache holds, so
# an offer of one is refused). Weir has no setting for it: it sends two
# stateless tickets (rustls' default) and resumes on them. The handshake
# client never offers a session, so every handshake is a full one. Reuse of upstream connections everywhere
# (HAProxy `http-reuse always`, nginx `keepalive 64` + `proxy_http_version
# 1.1` + `Connection ""`); no access logs. FWD=1 (the default): every proxy
# adds X-Forwarded-For, X-Real-IP and X-Forwarded-Proto (https) and keeps the
# client's Host (Weir's defaults); FWD=0: none of them adds any.
# Client, origin and proxy are all pinned to CPU $CPU (taskset), as in
# shared/benchmarking.md. The proxy's CPU time is utime+stime from
# /proc/PID/stat around each measurement (nginx: its worker); the client's
# is the growth of this shell's reaped-children CPU (cutime+cstime) over the
# measurement (the client is its only child to end in it). Every process the
# script starts is stopped by its PID; every wait is bounded; only
# 127.0.0.0/8 addresses. The work dir (raw TSVs, logs, configs, the
# certificate) is kept unless KEEP=0. Needs root (apt-get for missing tools,
# ulimit -n).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
CONNS=${CONNS:-50}
H2_STREAMS=${H2_STREAMS:-10} # h2load -m: concurrent streams per connection
IDLE_CONNS=${IDLE_CONNS:-10000}
MEM_ROUNDS=${MEM_ROUNDS:-3}
CPU=${CPU:-1}
FWD=${FWD:-1}
KEEP=${KEEP:-1}
BUILD=${BUILD:-1} # 0: use the binaries already in target/release
TESTS=${TESTS:-https-ka handshakes h2}             # a subset for quick looks, e.g. TESTS=h2
CONTENDERS=${CONTENDERS:-direct weir haproxy nginx} # a subset, e.g. for profiling one proxy
# WEIR_COMMIT: the commit to print when the tree is not a git checkout.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/target/release
WORK=$(mktemp -d /tmp/weir-https.XXXXXX)
RESULTS=$WORK/results.tsv
MEMRES=$WORK/memory.tsv
HZ=$(getconf CLK_TCK)

# Addresses: one 127.x per contender (none shared with http.sh or l4.sh, so
# they can run side by side), the same port on every proxy.
ORIGIN=127.111.0.10 # origin nginx: http :8080 (behind the proxies), https :8443 (direct)
O_PORT=8080
HAP=127.112.0.1     # HAProxy, mode http, bind … ssl
NGX=127.113.0.1     # nginx, listen … ssl, proxy_pass
WEIR_SUBNET=127.110.0.0/24 # Weir's LB address is allocated from it
PORT=8443
SNI=bench.test

log() { printf '[https %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
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

# addr port [curl options…]: until GET https://addr:port/ answers "ok" (10 s)
wait_ok() {
    local i a=$1 p=$2
    shift 2
    for ((i = 0; i < 100; i++)); do
        [[ $(curl -sk -m 1 "$@" "https://$a:$p/" 2>/dev/null) == ok ]] && return 0
        sleep 0.1
    done
    die "GET https://$a:$p/ $* does not answer \"ok\": $(curl -sSk -m 2 "$@" "https://$a:$p/" 2>&1 | head -3)"
}

# Both ALPN protocols answer: HTTP/1.1 and HTTP/2.
wait_ok_both() { # addr port
    wait_ok "$1" "$2" --http1.1
    wait_ok "$1" "$2" --http2
    local v
    v=$(curl -sk -m 2 --http2 -o /dev/null -w '%{http_version}' "https://$1:$2/")
    [[ $v == 2 ]] || die "https://$1:$2/ did not answer over HTTP/2 (curl --http2: HTTP/$v)"
}

# addr port → TCP connections the proxy still holds on its listening address
# (TIME-WAIT aside): its client connections, not its upstream pool.
# ---------------------------------------------------------------- setup
# One ECDSA P-256 certificate and key for every TLS server of the run; HAProxy
# wants both in one file.
make_cert() {
    local d=$WORK/tls
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
        -subj "/CN=$SNI" -addext "subjectAltName=DNS:$SNI" \
        -keyout "$d/key.pem" -out "$d/cert.pem" 2>"$d/openssl.err" || die "openssl req failed: $(cat "$d/openssl.err")"
    cat "$d/cert.pem" "$d/key.pem" >"$d/bench.pem"
    chmod 755 "$d"
    chmod 644 "$d/cert.pem"
    chmod 600 "$d/key.pem" "$d/bench.pem"
}

# The TLS settings of the nginx servers (the origin's direct listener, the
# proxy): TLS 1.3 only, no resumption.
nginx_tls() {
    cat <<EOF
        ssl_certificate $WORK/tls/cert.pem;
        ssl_certificate_key $WORK/tls/key.pem;
        ssl_protocols TLSv1.3;
        ssl_session_tickets off;
        ssl_session_cache off;
EOF
}

# The origin: nginx, one worker, `return 200 "ok"` at / over plain HTTP/1.1
# (what the proxies forward to), and the same over TLS on :$PORT (HTTP/1.1
# and HTTP/2) for the direct ceiling. Keep-alive without a request cap.
start_origin() {
    local d=$WORK/origin wc=$((2 * IDLE_CONNS + 400))
    mkdir -p "$d"
    chmod 755 "$WORK" "$d"
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
    tcp_nodelay on;
    keepalive_timeout 3600s;
    keepalive_requests 100000000;
    server {
        listen $ORIGIN:$O_PORT backlog=4096;
        location = / { default_type text/plain; return 200 "ok"; }
    }
    server {
        # nginx 1.22: http2 is a listen parameter (the http2 directive is 1.25.1+).
        listen $ORIGIN:$PORT ssl http2 backlog=4096;
$(nginx_tls)
        location = / { default_type text/plain; return 200 "ok"; }
    }
}
EOF
    start_bg origin nginx -c "$d/nginx.conf" -p "$d/" -e "$d/error.log"
    MAIN_OF[origin]=$LASTPID
    [[ -n $(nginx_worker "$LASTPID") ]] || die "the origin nginx started no worker (see $d/error.log)"
    wait_listen $ORIGIN $O_PORT
    [[ $(curl -s -m 1 "http://$ORIGIN:$O_PORT/") == ok ]] || die "the origin does not answer on http://$ORIGIN:$O_PORT/"
    wait_listen $ORIGIN $PORT
    wait_ok_both $ORIGIN $PORT
}

write_haproxy_cfg() {
    local maxconn=$((IDLE_CONNS + 200))
    {
        cat <<EOF
global
    nbthread 1
    maxconn $maxconn
    tune.ssl.cachesize 0
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
    bind $HAP:$PORT ssl crt $WORK/tls/bench.pem alpn h2,http/1.1 ssl-min-ver TLSv1.3 no-tls-tickets
    server o $ORIGIN:$O_PORT
EOF
        if [[ $FWD == 1 ]]; then
            printf '    option forwardfor\n'
            printf '    http-request set-header X-Real-IP %%[src]\n'
            printf '    http-request set-header X-Forwarded-Proto https\n'
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
        # nginx 1.22: http2 is a listen parameter (the http2 directive is 1.25.1+).
        listen $NGX:$PORT ssl http2 backlog=4096;
$(nginx_tls)
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            $fwd
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
# worker thread: TOKIO_WORKER_THREADS=1, as in http.sh.
API=""
REV=0
LB="" VS="" BE="" CERT=""
configure_weir() {
    local cert
    cert=$(jq -n --rawfile c "$WORK/tls/cert.pem" --rawfile k "$WORK/tls/key.pem" \
        '{type: "server", name: "bench", certificate: $c, private_key: $k}')
    CERT=$(weir_api POST /v1/certificates "$cert" | jq -r .id)
    [[ $CERT == cert-* ]] || die "weir did not store the certificate (id \"$CERT\")"
    weir_lab "\"protocol\":\"https\",\"port\":$PORT,\"tls\":{\"mode\":\"one_way\",\"server_certificate_id\":\"$CERT\"}"
}
proxy_ok() { wait_ok_both "$@"; }

start_contender() {
    case $1 in
        weir) start_weir && weir_ready ;;
        nginx) start_nginx ;;
        haproxy) start_haproxy ;;
    esac
}

# What each TLS server negotiates with an OpenSSL client (protocol, cipher,
# key exchange, ALPN), how many TLS 1.3 tickets it sends after a handshake,
# and whether it lets a session resume: a first connection saves the session
# (`-sess_out`: written when a ticket arrives), a second offers it
# (`-sess_in`). Logged, and kept in $WORK/tls.tsv.
tls_probe() { # contender
    local c=$1 a="${ADDR_OF[$1]}:$PORT" out f=$WORK/tls/sess-$1.pem req resumed proto cipher kx alpn nst
    req=$'GET / HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n'
    rm -f "$f"
    # ALPN http/1.1 here (the request is HTTP/1.1); the h2 offer is the second probe.
    out=$(printf '%s' "$req" | timeout 10 openssl s_client -connect "$a" -servername $SNI -alpn http/1.1 \
        -sess_out "$f" -ign_eof 2>&1 || true)
    proto=$(sed -n 's/^New, \(TLSv[0-9.]*\), Cipher is \(.*\)/\1/p' <<<"$out" | head -1)
    cipher=$(sed -n 's/^New, TLSv[0-9.]*, Cipher is \(.*\)/\1/p' <<<"$out" | head -1)
    kx=$(sed -n 's/^Server Temp Key: \([^,]*\).*/\1/p' <<<"$out" | head -1)
    nst=$(grep -c 'Post-Handshake New Session Ticket arrived' <<<"$out" || true)
    [[ -n $proto ]] || die "openssl s_client could not talk TLS to $c at $a: $(tail -5 <<<"$out")"
    grep -q '^HTTP/1.1 200' <<<"$out" || die "openssl s_client got no 200 from $c at $a: $(grep -m3 '^HTTP' <<<"$out")"
    if [[ -s $f ]]; then
        out=$(printf '%s' "$req" | timeout 10 openssl s_client -connect "$a" -servername $SNI -alpn http/1.1 \
            -sess_in "$f" -ign_eof 2>&1 || true)
        if grep -q '^Reused, ' <<<"$out"; then resumed=resumed; else resumed="refused (full handshake)"; fi
    else
        resumed="nothing to offer"
    fi
    # (h2's binary frames that follow are dropped: no NUL bytes in a shell variable.)
    out=$(timeout 10 openssl s_client -connect "$a" -servername $SNI -alpn h2,http/1.1 </dev/null 2>&1 | tr -d '\0' || true)
    alpn=$(sed -n 's/^ALPN protocol: \(.*\)/\1/p' <<<"$out" | head -1)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$proto" "$cipher" "$kx" "${alpn:-none}" "$nst" "$resumed" >>"$WORK/tls.tsv"
    log "  tls $c: $proto $cipher, $kx, ALPN ${alpn:-none} (offered h2,http/1.1); $nst tickets after a handshake; the session offered again: $resumed"
}

# ---------------------------------------------------------------- measurements
# wrk prints one machine-readable line at the end (latency in µs); so does
# https-idle --handshakes; h2load's summary is turned into one (run_h2load).
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

children_ticks() { # → cutime+cstime of this shell: CPU of its children reaped so far
    local s
    read -r s <"/proc/$$/stat"
    s=${s##*) }
    # shellcheck disable=SC2086
    set -- $s
    echo $((${14} + ${15}))
}

# measure test contender cmd…: runs cmd pinned, bounded, with the proxy's CPU
# ticks, the client's and the wall time around it; output in $WORK/run.out.
measure() {
    local pid=${PID_OF[$2]:-} c0=0 c1=0 k0 k1 t0 t1 rc=0
    [[ -n $pid ]] && c0=$(cpu_ticks "$pid")
    k0=$(children_ticks)
    t0=$(date +%s.%N)
    timeout $((SECS + 30)) taskset -c "$CPU" "${@:3}" >"$WORK/run.out" 2>"$WORK/run.err" || rc=$?
    t1=$(date +%s.%N)
    k1=$(children_ticks)
    [[ -n $pid ]] && c1=$(cpu_ticks "$pid")
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then die "$2 died during $1"; fi
    M_WALL=$(echo "$t1 - $t0" | bc -l)
    M_CPU=NA
    [[ -n $pid ]] && M_CPU=$(echo "($c1 - $c0) / $HZ" | bc -l)
    M_CCPU=$(echo "($k1 - $k0) / $HZ" | bc -l)
    M_RC=$rc
}

kv() { sed -n "s/^RESULT.*\\b$1=\\([0-9.]*\\).*/\\1/p" "$WORK/run.out" | head -1; }

fmt_us() { # µs → "123 µs" or "1.23 ms"
    if (($1 >= 1000)); then echo "$1" | awk '{printf "%.2f ms", $1 / 1000}'; else echo "$1 µs"; fi
}

# h2load's summary → a RESULT line in run.out. Requests: those that
# succeeded (2xx/3xx); errors: h2load's `failed` (errors, timeouts, 4xx/5xx).
h2load_result() {
    local line
    line=$(awk '
    /^finished in / { d = $3; sub(/,$/, "", d); v = d + 0
        if (d ~ /ms$/) us = v * 1000; else if (d ~ /us$/) us = v; else us = v * 1000000 }
    /^requests: / { ok = $8; failed = $10 }
    /^traffic: / { bytes = $3; gsub(/[()]/, "", bytes) }
    END { if (us > 0 && ok != "") printf "RESULT requests=%d duration_us=%d bytes=%d errors=%d p50_us=0 p99_us=0\n", ok, us, bytes, failed }
    ' "$WORK/run.out")
    [[ -z $line ]] || echo "$line" >>"$WORK/run.out"
}

run_one() { # round test contender
    local r=$1 t=$2 c=$3 a="${ADDR_OF[$3]}:$PORT"
    case $t in
        https-ka)
            measure "$t" "$c" wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -s "$WORK/report.lua" "https://$a/"
            ;;
        handshakes)
            measure "$t" "$c" "$BIN/https-idle" --handshakes --addr "$a" --conns "$CONNS" --secs "$SECS" --sni $SNI
            ;;
        h2)
            measure "$t" "$c" h2load -c"$CONNS" -m"$H2_STREAMS" -D "$SECS" "https://$a/"
            h2load_result
            ;;
    esac
    local req dur errs p50 p99 bytes
    req=$(kv requests) dur=$(kv duration_us) errs=$(kv errors) p50=$(kv p50_us) p99=$(kv p99_us) bytes=$(kv bytes)
    if [[ $M_RC != 0 || -z $req || -z $dur || $dur == 0 ]]; then
        log "  $t $c: the client failed (rc $M_RC): $(head -3 "$WORK/run.err") $(grep -m2 -i 'error\|fail' "$WORK/run.out" || true)"
        req=0 dur=1000000 errs=1 p50=0 p99=0 bytes=0
    fi
    if [[ $errs != 0 ]]; then
        log "  $t $c: $errs errors: $(head -3 "$WORK/run.err" | tr '\n' ' ')"
        cp "$WORK/run.out" "$WORK/errors-$r-$t-$c.out"
        cp "$WORK/run.err" "$WORK/errors-$r-$t-$c.err"
    fi
    local cpu_col=NA
    [[ $M_CPU != NA ]] && cpu_col=$(printf '%.2f' "$M_CPU")
    printf '%s\t%s\t%s\t%s\t%.6f\t%.6f\t%s\t%s\t%s\t%s\t%s\t%.2f\n' "$r" "$t" "$c" "$req" \
        "$(echo "$dur / 1000000" | bc -l)" "$M_WALL" "$cpu_col" "$errs" "$p50" "$p99" "${bytes:-0}" "$M_CCPU" >>"$RESULTS"
    local rate cpu="" eff="" lat=""
    rate=$(echo "$req * 1000000 / $dur" | bc)
    if [[ $M_CPU != NA ]]; then
        cpu=", proxy CPU $cpu_col s"
        [[ $M_CPU != 0 ]] && eff=", $(echo "$req / $M_CPU" | bc) per CPU-s"
    fi
    [[ $p50 != 0 ]] && lat=", p50 $(fmt_us "$p50"), p99 $(fmt_us "$p99")"
    log "  $t $c: $rate req/s ($errs errors)$lat$cpu$eff, client CPU $(printf '%.2f' "$M_CCPU") s"
}

memory_one() { # round contender
    local c=$2 pid addr before after ok errs client
    start_contender "$c"
    addr=${ADDR_OF[$c]}:$PORT
    pid=${PID_OF[$c]}
    # Warm-up: 200 connections, one request each, then closed.
    timeout 60 taskset -c "$CPU" "$BIN/https-idle" --addr "$addr" --conns 200 --hold 0 >/dev/null
    sleep 1
    before=$(rss_kib "$pid")
    local fd0 fd1 fd2 i
    fd0=$(nfds "$pid")
    start_bg idle-client "$BIN/https-idle" --addr "$addr" --conns "$IDLE_CONNS" --hold 300
    client=$LASTPID
    # A full handshake per connection: up to 120 s for them all.
    for ((i = 0; i < 1200; i++)); do
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
    [[ $errs == 0 ]] || log "  memory $c: idle client errors: $(head -3 "$WORK/idle-client.err" | tr '\n' ' ')"
    stop_pid "$client"
    # The clients are gone: every client connection should end at the proxy (10 s).
    local left
    for ((i = 0; i < 100; i++)); do
        left=$(client_conns "${ADDR_OF[$c]}" "$PORT")
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
    function us(x) { if (x == 0) return "–"; return (x >= 1000) ? sprintf("%.2f ms", x / 1000) : sprintf("%.0f µs", x) }
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
        add("rate|" t "|" c, rate); add("cshare|" t "|" c, $12 / $6)
        if ($9 > 0) { P50[r, t, c] = $9; P99[r, t, c] = $10; add("p50|" t "|" c, $9); add("p99|" t "|" c, $10) }
        if ($7 != "NA" && $7 > 0) { EFF[r, t, c] = $4 / $7; add("eff|" t "|" c, $4 / $7); add("share|" t "|" c, $7 / $6) }
        next
    }
    FILENAME == memres {
        if ($5 > 0) { add("mem|" $2, ($4 - $3) * 1024 / $5); add("fdper|" $2, $8 / $5); MEMSEEN[$2] = 1; NMEM++; PER[$1, $2] = ($4 - $3) * 1024 / $5 }
        MERR[$2] += $6; if ($9 > MLEFT[$2]) MLEFT[$2] = $9; MROUND[$1] = 1; next
    }
    END {
        NT = split("https-ka handshakes h2", order, " ")
        NC = split("direct weir haproxy nginx", cs, " ")
        for (r in ROUND) for (i = 1; i <= NT; i++) { t = order[i]
            for (j = 1; j <= NC; j++) { c = cs[j]
                if ((r, t, c) in RATE && (r, t, "direct") in RATE && RATE[r, t, "direct"] > 0)
                    add("vsdirect|" t "|" c, RATE[r, t, c] / RATE[r, t, "direct"])
            }
            vs("eff", EFF, r, t, 1); vs("rate", RATE, r, t, 1); vs("p50", P50, r, t, 0); vs("p99", P99, r, t, 0)
        }
        print ""
        print "| test | contender | req/s | proxy CPU share | req per proxy CPU-s | rate ÷ direct | client CPU share | p50 | p99 | errors |"
        print "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        for (i = 1; i <= NT; i++) { t = order[i]; if (!(t in TESTS)) continue
            for (j = 1; j <= NC; j++) { c = cs[j]; if (!((t, c) in SEEN)) continue
                stats(L["rate|" t "|" c]); rate = sprintf("%.0f", MED)
                share = "–"; eff = "–"
                if (("share|" t "|" c) in L) { stats(L["share|" t "|" c]); share = sprintf("%.0f%%", MED * 100)
                    stats(L["eff|" t "|" c]); eff = sprintf("%.0f", MED) }
                stats(L["cshare|" t "|" c]); cshare = sprintf("%.0f%%", MED * 100)
                vd = (c == "direct") ? "1" : ratio("vsdirect|" t "|" c)
                p50 = "–"; p99 = "–"
                if (("p50|" t "|" c) in L) { stats(L["p50|" t "|" c]); p50 = us(MED); stats(L["p99|" t "|" c]); p99 = us(MED) }
                printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", t, c, rate, share, eff, vd, cshare, p50, p99, ERR[t, c]
            }
        }
        n = 0; for (r in ROUND) n++
        print ""
        print "Medians over " n " rounds (ratios: medians of per-round ratios, min–max). n/a: not measured."
        print "direct: the client talks TLS to the origin nginx itself (no proxy). Requests of the handshakes test are full TLS 1.3 handshakes."
        print ""
        print "| test | figure | weir ÷ the better of HAProxy and nginx | weir ÷ HAProxy | weir ÷ nginx |"
        print "| --- | --- | --- | --- | --- |"
        for (i = 1; i <= NT; i++) { t = order[i]; if (!(t in TESTS)) continue
            row(t, (t == "handshakes") ? "handshakes per proxy CPU-s" : "req per proxy CPU-s", "eff")
            row(t, (t == "handshakes") ? "handshakes/s" : "req/s", "rate")
            if (t != "h2") { row(t, "p50 latency (lower is better)", "p50"); row(t, "p99 latency (lower is better)", "p99") }
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
            row("idle", "RSS per idle keep-alive TLS connection (lower is better)", "mem")
            print ""
            print "| idle keep-alive TLS connections | bytes of RSS per connection | fds per connection | errors | client connections left 10 s after the clients closed (max) |"
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
        verdict("HTTPS keep-alive ≥ 1.1× HAProxy", "eff|hap|https-ka", 1.1, 0)
        verdict("TLS 1.3 full handshakes ≥ 1.5× the better", "eff|best|handshakes", 1.5, 0)
        verdict("HTTP/2 over TLS (h2load) ≥ HAProxy", "eff|hap|h2", 1.0, 0)
        verdict("idle memory per TLS keep-alive connection ≤ HAProxy (weir ÷ HAProxy ≤ 1)", "mem|hap|idle", 1.0, 1)
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

versions() {
    echo "$(haproxy -v | head -1 | cut -d' ' -f1-3) ($(haproxy -vv 2>/dev/null | sed -n 's/^Running on OpenSSL version : \(OpenSSL [^ ]*\).*/\1/p' | head -1)), nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(h2load --version 2>&1 | head -1), $(openssl version | cut -d' ' -f1-2); $(nproc) CPUs, all pinned to CPU $CPU"
}

# ---------------------------------------------------------------- main
main() {
    [[ $(id -u) == 0 ]] || die "run as root (apt-get, ulimit -n)"
    install_tools wrk:wrk h2load:nghttp2-client openssl:openssl bc:bc
    raise_nofile
    if [[ $BUILD == 1 ]]; then
        log "building (cargo build --release -p weir -p weir-bench)"
        (cd "$ROOT" && cargo build --release -q -p weir -p weir-bench)
    fi
    local b
    for b in weir https-idle; do [[ -x $BIN/$b ]] || die "$BIN/$b is missing (build with BUILD=1)"; done
    printf 'round\ttest\tcontender\trequests\tsecs\twall_s\tproxy_cpu_s\terrors\tp50_us\tp99_us\tbytes\tclient_cpu_s\n' >"$WORK/results.columns"
    printf 'round\tcontender\trss_before_kib\trss_after_kib\tconns_ok\tconn_errors\tfds_left_after_close\tfds_added\tclient_conns_left\n' >"$WORK/memory.columns"
    printf 'contender\tprotocol\tcipher\tkey_exchange\talpn\ttickets_sent\tsession_offered_again\n' >"$WORK/tls.columns"
    : >"$RESULTS"
    : >"$MEMRES"
    : >"$WORK/tls.tsv"
    write_wrk_lua
    log "versions: $(versions)"
    log "load average: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the figures)"
    log "work dir $WORK; ROUNDS=$ROUNDS SECS=$SECS CONNS=$CONNS H2_STREAMS=$H2_STREAMS IDLE_CONNS=$IDLE_CONNS MEM_ROUNDS=$MEM_ROUNDS FWD=$FWD CPU=$CPU"

    make_cert
    start_origin
    start_weir
    configure_weir
    weir_ready
    log "weir LB at ${ADDR_OF[weir]} (revision $REV), https VServer $VS running (certificate $CERT), backend valid"
    start_haproxy
    start_nginx

    log "TLS as an OpenSSL client sees it (and whether a session resumes):"
    local c
    for c in direct weir haproxy nginx; do tls_probe "$c"; done

    local r t
    for ((r = 1; r <= ROUNDS; r++)); do
        log "round $r/$ROUNDS"
        for t in $TESTS; do
            # shellcheck disable=SC2086 # a list, split on purpose
            for c in $(rotate $((r - 1)) $CONTENDERS); do
                run_one "$r" "$t" "$c"
                if [[ $t == handshakes ]]; then sleep 1; else sleep 0.5; fi
            done
        done
    done

    # Diagnostics: where Weir's CPU went (per thread), its counters.
    local line="" task
    for task in /proc/"${PID_OF[weir]}"/task/*; do
        line+="$(cat "$task/comm")[${task##*/}]=$(cpu_ticks "${PID_OF[weir]}/task/${task##*/}") "
    done
    log "weir CPU ticks per thread: $line"
    log "weir data-plane counters: $(weir_api GET /v1/system/status | jq -c '.dataplane // "n/a"')"
    for c in weir haproxy nginx; do stop_contender "$c"; done

    if ((MEM_ROUNDS > 0)); then
        log "idle memory: $IDLE_CONNS keep-alive TLS connections, $MEM_ROUNDS rounds"
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
    echo "Weir HTTPS benchmark, $(date -u +%Y-%m-%d), commit $commit"
    versions
    echo "ROUNDS=$ROUNDS SECS=$SECS CONNS=$CONNS H2_STREAMS=$H2_STREAMS IDLE_CONNS=$IDLE_CONNS MEM_ROUNDS=$MEM_ROUNDS FWD=$FWD"
    echo
    echo "| contender (openssl s_client) | protocol | cipher | key exchange | ALPN (offered h2,http/1.1) | TLS 1.3 tickets sent per handshake | a saved session offered again |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }' "$WORK/tls.tsv"
    report
    log "raw results: $RESULTS (columns: $WORK/results.columns), $MEMRES (columns: $WORK/memory.columns)"
    log "done in $((SECONDS / 60)) min $((SECONDS % 60)) s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

main "$@"
