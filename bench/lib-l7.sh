#!/usr/bin/env bash
# The contenders of the layer-7 benchmarks (http.sh, https.sh; sourced after
# lib.sh): HAProxy and nginx started from the caller's configs; Weir started
# with one worker, configured through its API. Uses the caller's
# BIN, WORK, WEIR_SUBNET, PORT, ORIGIN, O_PORT, FWD, HAP, NGX, the arrays
# PID_OF, MAIN_OF, ADDR_OF, its config writers (write_haproxy_cfg,
# write_nginx_cfg), wait_listen and proxy_ok (the "GET / answers" check, over
# TLS or not).
# shellcheck disable=SC2034,SC2154 # arrays and settings are the caller's

weir_api() { # method path [json] → body on stdout; headers in $WORK/api.hdr
    local args=(-sS -m 10 --fail-with-body -X "$1" -H "Authorization: Bearer bench" -D "$WORK/api.hdr")
    [[ $# -ge 3 ]] && args+=(-H 'content-type: application/json' -d "$3")
    curl "${args[@]}" "$API$2"
}

start_weir() {
    local i api=""
    start_bg weir env WEIR_ADMIN_TOKEN=bench WEIR_LOG=warn TOKIO_WORKER_THREADS=1 \
        "${WEIR_BIN:-$BIN/weir}" serve --data-dir "$WORK/weir-data" --api-listen 127.0.0.1:0
    PID_OF[weir]=$LASTPID MAIN_OF[weir]=$LASTPID
    for ((i = 0; i < 300; i++)); do
        api=$(sed -n 's/.*API listening on \(http:[^ ]*\).*/\1/p' "$WORK/weir.out" | tail -1)
        [[ -n $api ]] && break
        kill -0 "$LASTPID" 2>/dev/null || die "weir exited: $(tail -5 "$WORK/weir.err")"
        sleep 0.1
    done
    [[ -n $api ]] || die "weir printed no API address"
    API=$api
}

weir_lab() { # VServer fields as JSON text (protocol, port, …): a VPC, subnet, LB, that VServer, the origin as its backend
    local vpc subnet body fwd=""
    vpc=$(weir_api POST /v1/vpcs '{"name":"b","cidr":"127.0.0.0/8"}' | jq -r .id)
    subnet=$(weir_api POST /v1/subnets "{\"vpc_id\":\"$vpc\",\"name\":\"s\",\"cidr\":\"$WEIR_SUBNET\"}" | jq -r .id)
    body=$(weir_api POST /v1/load-balancers \
        "{\"name\":\"b\",\"network_type\":\"internal\",\"vpc_id\":\"$vpc\",\"subnet_id\":\"$subnet\"}")
    LB=$(jq -r .id <<<"$body")
    ADDR_OF[weir]=$(jq -r .address <<<"$body")
    [[ $FWD == 1 ]] || fwd=',"forward_headers":{"x_forwarded_for":false,"x_real_ip":false,"x_forwarded_proto":false}'
    # Health probes every 300 s (the longest allowed): out of the way of the
    # measurements; the first one runs at once and admits the backend.
    VS=$(weir_api POST "/v1/load-balancers/$LB/vservers" \
        "{$1,\"idle_timeout_s\":3600,\"health_check\":{\"interval_s\":300}$fwd}" | jq -r .id)
    BE=$(weir_api POST "/v1/load-balancers/$LB/vservers/$VS/backends" \
        "{\"address\":\"$ORIGIN\",\"port\":$O_PORT,\"weight\":1}" | jq -r .id)
    REV=$(weir_rev)
}

weir_ready() { # applied revision ≥ the last write's, VServer running, backend valid, the caller's proxy_ok (10 s each)
    local i applied=0 st="" bst=""
    for ((i = 0; i < 100; i++)); do
        applied=$(weir_api GET /v1/system/status | jq -r .applied_revision)
        ((applied >= REV)) && break
        sleep 0.1
    done
    ((applied >= REV)) || die "weir applied revision $applied < $REV"
    for ((i = 0; i < 100; i++)); do
        st=$(weir_api GET "/v1/load-balancers/$LB/vservers/$VS" | jq -r .status)
        [[ $st == running ]] && break
        sleep 0.1
    done
    [[ $st == running ]] || die "weir VServer status $st, not running: $(weir_api GET "/v1/load-balancers/$LB/vservers/$VS" | jq -c '{status, status_message}')"
    for ((i = 0; i < 100; i++)); do
        bst=$(weir_api GET "/v1/load-balancers/$LB/vservers/$VS/backends/$BE" | jq -r .status)
        [[ $bst == valid ]] && break
        sleep 0.1
    done
    [[ $bst == valid ]] || die "weir backend status $bst, not valid"
    wait_listen "${ADDR_OF[weir]}" "$PORT"
    proxy_ok "${ADDR_OF[weir]}" "$PORT"
}

start_haproxy() {
    write_haproxy_cfg
    start_bg haproxy haproxy -db -f "$WORK/haproxy.cfg"
    PID_OF[haproxy]=$LASTPID MAIN_OF[haproxy]=$LASTPID
    sleep 0.2
    kill -0 "$LASTPID" 2>/dev/null || die "haproxy exited: $(grep -m3 ALERT "$WORK/haproxy.err")"
    wait_listen "$HAP" "$PORT"
    proxy_ok "$HAP" "$PORT"
}

start_nginx() {
    write_nginx_cfg
    start_bg nginx nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx/" -e "$WORK/nginx/error.log"
    MAIN_OF[nginx]=$LASTPID
    local w
    w=$(nginx_worker "$LASTPID")
    [[ -n $w ]] || die "nginx started no worker (see $WORK/nginx/error.log)"
    PID_OF[nginx]=$w
    wait_listen "$NGX" "$PORT"
    proxy_ok "$NGX" "$PORT"
}
