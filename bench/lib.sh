#!/usr/bin/env bash
# Helpers shared by the benchmark scripts (sourced, not run): processes
# started pinned and stopped by PID, CPU ticks, RSS, descriptors, the order
# rotation of contenders. They use the caller's WORK, CPU, PIDS, PID_OF,
# MAIN_OF and log().

start_bg() { # name cmd… → LASTPID (pinned to $CPU, output in $WORK/name.{out,err})
    local name=$1
    shift
    # Emptied here, not only by the background redirection: a reader must not
    # see a previous run's output (e.g. a restarted Weir's old API address).
    : >"$WORK/$name.out"
    : >"$WORK/$name.err"
    taskset -c "$CPU" "$@" >>"$WORK/$name.out" 2>>"$WORK/$name.err" &
    LASTPID=$!
    PIDS+=("$LASTPID")
}

stop_pid() { # pid: TERM, up to 5 s, then KILL
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local keep=() p
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

cpu_ticks() { # pid → utime+stime in clock ticks (whole process, all threads)
    local s
    read -r s <"/proc/$1/stat"
    s=${s##*) }
    # shellcheck disable=SC2086
    set -- $s
    echo $((${12} + ${13}))
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

nfds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

weir_rev() { awk 'tolower($1) == "x-weir-revision:" {gsub("\r", ""); print $2}' "$WORK/api.hdr"; }

stop_contender() {
    stop_pid "${MAIN_OF[$1]}"
    unset "PID_OF[$1]" "MAIN_OF[$1]"
}

rotate() { # k items… → the items rotated left by k
    local k=$1
    shift
    local n=$# i out=()
    local items=("$@")
    for ((i = 0; i < n; i++)); do out+=("${items[$(((i + k) % n))]}"); done
    echo "${out[@]}"
}

install_tools() { # command:package… beyond the common set; installs what is missing
    local need=() pair
    for pair in haproxy:haproxy nginx:nginx jq:jq curl:curl taskset:util-linux ss:iproute2 pgrep:procps "$@"; do
        command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
    done
    if ((${#need[@]})); then
        log "installing ${need[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
}

raise_nofile() { # raises the open-files limit; lowers IDLE_CONNS to half of it
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    # A proxy holds up to two descriptors per connection (a client's and an
    # upstream one), plus its own; the client one per connection.
    local max=$((($(ulimit -n) - 1000) / 2))
    if ((IDLE_CONNS > max)); then
        log "open-files limit $(ulimit -n): IDLE_CONNS lowered to $max"
        IDLE_CONNS=$max
    fi
}

install_package() { # a Debian package (no command to check for)
    log "installing $1"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}

client_conns() { ss -Htan "src $1:$2" 2>/dev/null | awk '$1 != "LISTEN" && $1 != "TIME-WAIT"' | wc -l; }

nginx_worker() { # master pid → its worker's pid (10 s)
    local i w=""
    for ((i = 0; i < 100; i++)); do
        w=$(pgrep -P "$1" | head -1 || true)
        [[ -n $w ]] && break
        sleep 0.1
    done
    echo "$w"
}

