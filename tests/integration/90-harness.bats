#!/usr/bin/env bats
# Self-tests of the registry harness (lib/registry.bash, lib/regproxy.py):
# the real registry (plain and htpasswd), the token-issuing proxy and every
# fault the proxy can inject, judged with curl and skopeo. No ocib involved.

bats_require_minimum_version 1.5.0
load lib/registry

PY=/usr/bin/python3

fail() {
    printf 'FAIL: %s\n' "$*" >&2
    return 1
}

setup_file() {
    export REGISTRY_MAX_SECONDS=900
    registry_start REG
    registry_start AREG --htpasswd alice:al1ce-pw
    proxy_start TOK "$REG_ADDR" --token-auth bob:b0b-token-pw --anonymous-pull
    proxy_start FX "$REG_ADDR"
    export LAYOUT=$BATS_FILE_TMPDIR/layout
    export LAYOUT_DIGEST
    LAYOUT_DIGEST=$(make_oci_layout "$LAYOUT" v1 1000 300000 20000)
}

teardown_file() {
    proxy_stop FX
    proxy_stop TOK
    registry_stop AREG
    registry_stop REG
}

setup() {
    cd "$BATS_TEST_TMPDIR" || return 1
    T=$BATS_TEST_TMPDIR
}

# sha FILE: sha256:<hex> of FILE.
sha() {
    printf 'sha256:%s' "$(sha256sum "$1" | cut -d' ' -f1)"
}

# hdr FILE NAME: value of header NAME in a curl -D dump (last response).
hdr() {
    tr -d '\r' <"$1" | awk -v n="$(printf '%s' "$2" | tr 'A-Z' 'a-z')" '
        BEGIN { FS = ": " } /^HTTP\// { v = "" }
        tolower($1) == n { v = substr($0, length($1) + 3) } END { print v }'
}

# code: curl ARGS, prints only the HTTP status (000 on transport error).
code() {
    curl -s -o /dev/null -w '%{http_code}' -m 20 "$@" || true
}

# absurl BASE LOCATION: LOCATION made absolute against http://BASE.
absurl() {
    case $2 in
    http://* | https://*) printf '%s' "$2" ;;
    *) printf 'http://%s%s' "$1" "$2" ;;
    esac
}

# token SCOPE...: a Bearer token from the TOK proxy for bob (all scopes asked).
token() {
    local q="service=regproxy" s
    for s in "$@"; do q+="&scope=$s"; done
    curl -sS -f -m 10 -u bob:b0b-token-pw "http://$TOK_ADDR/token?$q" | jq -r .token
}

# upload ADDR REPO FILE [CURL_ARGS...]: monolithic POST + PUT (CURL_ARGS go to
# the PUT only); prints the final status.
upload() {
    local addr=$1 repo=$2 file=$3
    shift 3
    curl -sS -m 30 -D "$T/post.h" -o /dev/null -X POST "http://$addr/v2/$repo/blobs/uploads/" || return 1
    local loc
    loc=$(absurl "$addr" "$(hdr "$T/post.h" Location)")
    local sep='?'
    case $loc in *\?*) sep='&' ;; esac
    curl -s -m 60 -o /dev/null -w '%{http_code}' -X PUT "$@" -H 'Content-Type: application/octet-stream' \
        --data-binary "@$file" "$loc${sep}digest=$(sha "$file")" || true
}

@test "registry: answers /v2/ on loopback only and exports its variables" {
    [ -n "$REG_PORT" ] && [ "$REG_ADDR" = "127.0.0.1:$REG_PORT" ]
    [ -f "$REG_LOG" ] && [ -d "$REG_DIR" ] && kill -0 "$REG_PID"
    curl -sS -D "$T/h" -o "$T/b" "http://$REG_ADDR/v2/"
    [ "$(hdr "$T/h" Docker-Distribution-Api-Version)" = registry/2.0 ] || fail "no API version header"
    grep -q "addr: 127.0.0.1:$REG_PORT" "$REG_DIR/config.yml"
    # listening sockets of that port: loopback only
    ! ss -ltnH "sport = :$REG_PORT" | awk '{print $4}' | grep -v '^127\.0\.0\.1:'
    [ "$(registry_count REG GET '^/v2/$')" -ge 1 ]
}

@test "registry: skopeo push and pull back, digests equal; a re-push uploads no blob" {
    skopeo copy -q --dest-tls-verify=false "oci:$LAYOUT:v1" "docker://$REG_ADDR/harness/direct:v1"
    local got
    got=$(skopeo inspect --tls-verify=false "docker://$REG_ADDR/harness/direct:v1" | jq -r .Digest)
    [ "$got" = "$LAYOUT_DIGEST" ] || fail "registry digest $got != layout $LAYOUT_DIGEST"
    skopeo copy -q --src-tls-verify=false "docker://$REG_ADDR/harness/direct:v1" "oci:$T/back:v1"
    [ "$(jq -r '.manifests[0].digest' "$T/back/index.json")" = "$LAYOUT_DIGEST" ]

    local uploads
    uploads=$(registry_count REG 'POST|PATCH|PUT' '^/v2/harness/direct/blobs/uploads/')
    [ "$uploads" -ge 4 ] || fail "expected uploads for 4 blobs, counted $uploads"
    skopeo copy -q --dest-tls-verify=false "oci:$LAYOUT:v1" "docker://$REG_ADDR/harness/direct:v1"
    [ "$(registry_count REG 'POST|PATCH|PUT' '^/v2/harness/direct/blobs/uploads/')" = "$uploads" ] ||
        fail "re-push uploaded blobs"
    [ "$(registry_count REG HEAD '^/v2/harness/direct/blobs/sha256:[0-9a-f]{64}$')" -ge 4 ]
    [ "$(registry_count REG PUT '^/v2/harness/direct/manifests/v1$')" -eq 2 ]
    [ "$(registry_check_image REG harness/direct v1)" = "$LAYOUT_DIGEST" ]
    # a manifest whose layer is missing is reported
    local layer
    layer=$(jq -r '.layers[0].digest' "$LAYOUT/blobs/sha256/${LAYOUT_DIGEST#sha256:}")
    curl -sS -f -X DELETE "http://$REG_ADDR/v2/harness/direct/blobs/$layer"
    run ! registry_check_image REG harness/direct v1
    [[ $output == *"references $layer, missing"* ]]
    skopeo copy -q --dest-tls-verify=false "oci:$LAYOUT:v1" "docker://$REG_ADDR/harness/direct:v1"
    [ "$(registry_check_image REG harness/direct v1)" = "$LAYOUT_DIGEST" ]
}

@test "htpasswd registry: 401 without or with a wrong password, skopeo works with the right one" {
    [ "$AREG_USER" = alice ] && [ "$AREG_PASS" = al1ce-pw ]
    curl -s -D "$T/h" -o /dev/null "http://$AREG_ADDR/v2/"
    grep -q '^HTTP/1.1 401' "$T/h"
    hdr "$T/h" WWW-Authenticate | grep -q '^Basic realm="ocib-test-AREG"'
    [ "$(code -u alice:wrong "http://$AREG_ADDR/v2/")" = 401 ]
    [ "$(code -u alice:al1ce-pw "http://$AREG_ADDR/v2/")" = 200 ]
    run -0 skopeo copy -q --dest-tls-verify=false --dest-creds alice:al1ce-pw \
        "oci:$LAYOUT:v1" "docker://$AREG_ADDR/harness/basic:v1"
    run ! skopeo inspect --tls-verify=false --creds alice:nope "docker://$AREG_ADDR/harness/basic:v1"
    [ "$(skopeo inspect --tls-verify=false --creds alice:al1ce-pw "docker://$AREG_ADDR/harness/basic:v1" |
        jq -r .Digest)" = "$LAYOUT_DIGEST" ]
    [ "$(registry_check_image AREG harness/basic v1)" = "$LAYOUT_DIGEST" ]
}

@test "token proxy: Bearer challenges, token endpoint, scopes" {
    curl -s -D "$T/h" -o /dev/null "http://$TOK_ADDR/v2/"
    grep -q '^HTTP/1.1 401' "$T/h"
    [ "$(hdr "$T/h" WWW-Authenticate)" = "Bearer realm=\"http://$TOK_ADDR/token\",service=\"regproxy\"" ]
    curl -s -D "$T/h" -o /dev/null -X POST "http://$TOK_ADDR/v2/harness/tok/blobs/uploads/"
    hdr "$T/h" WWW-Authenticate | grep -qF 'scope="repository:harness/tok:pull,push"'
    curl -s -D "$T/h" -o /dev/null "http://$TOK_ADDR/v2/harness/tok/tags/list"
    hdr "$T/h" WWW-Authenticate | grep -qF 'scope="repository:harness/tok:pull"'

    # wrong password: 401 from the token endpoint
    [ "$(code -u bob:wrong "http://$TOK_ADDR/token?service=regproxy&scope=repository:harness/tok:pull")" = 401 ]
    curl -sS -f -u bob:b0b-token-pw -o "$T/tok.json" \
        "http://$TOK_ADDR/token?service=regproxy&scope=repository:harness/tok:pull,push"
    jq -e '(.token|length) > 10 and .token == .access_token and .expires_in == 300 and (.issued_at|test("Z$"))' "$T/tok.json"
    local t
    t=$(jq -r .token "$T/tok.json")
    [ "$(code -H "Authorization: Bearer $t" "http://$TOK_ADDR/v2/")" = 200 ]
    [ "$(code -X POST -H "Authorization: Bearer $t" "http://$TOK_ADDR/v2/harness/tok/blobs/uploads/")" = 202 ]
    # not in scope: another repository
    curl -s -D "$T/h" -o /dev/null -H "Authorization: Bearer $t" "http://$TOK_ADDR/v2/harness/other/tags/list"
    grep -q '^HTTP/1.1 401' "$T/h"
    hdr "$T/h" WWW-Authenticate | grep -qF 'error="insufficient_scope"'
    # pull-only token cannot push
    t=$(token repository:harness/tok:pull)
    [ "$(code -X POST -H "Authorization: Bearer $t" "http://$TOK_ADDR/v2/harness/tok/blobs/uploads/")" = 401 ]
    # unknown token
    [ "$(code -H "Authorization: Bearer rp-forged" "http://$TOK_ADDR/v2/")" = 401 ]
    # the upstream registry never sees Authorization: the proxy strips it (no auth there anyway),
    # and Location headers point at the proxy
    curl -s -D "$T/h" -o /dev/null -X POST -H "Authorization: Bearer $(token repository:harness/tok:pull,push)" \
        "http://$TOK_ADDR/v2/harness/tok/blobs/uploads/"
    hdr "$T/h" Location | grep -q "^http://$TOK_ADDR/v2/harness/tok/blobs/uploads/"
}

@test "token proxy: anonymous gets pull only; POST /token with a password grant" {
    curl -sS -f -o "$T/a.json" "http://$TOK_ADDR/token?service=regproxy&scope=repository:harness/tok:pull,push"
    local t
    t=$(jq -r .token "$T/a.json")
    [ "$(code -H "Authorization: Bearer $t" "http://$TOK_ADDR/v2/harness/tok/tags/list")" != 401 ]
    [ "$(code -X POST -H "Authorization: Bearer $t" "http://$TOK_ADDR/v2/harness/tok/blobs/uploads/")" = 401 ]
    curl -sS -f -o "$T/p.json" -d grant_type=password -d username=bob -d password=b0b-token-pw \
        -d service=regproxy -d scope=repository:harness/tok:pull,push "http://$TOK_ADDR/token"
    t=$(jq -r .access_token "$T/p.json")
    [ "$(code -X POST -H "Authorization: Bearer $t" "http://$TOK_ADDR/v2/harness/tok/blobs/uploads/")" = 202 ]
    [ "$(code -d grant_type=password -d username=bob -d password=bad "http://$TOK_ADDR/token")" = 401 ]
}

@test "token proxy: skopeo push and pull through it; no credential in its log" {
    run -0 skopeo copy -q --dest-tls-verify=false --dest-creds bob:b0b-token-pw \
        "oci:$LAYOUT:v1" "docker://$TOK_ADDR/harness/viatoken:v1"
    [ "$(skopeo inspect --tls-verify=false --creds bob:b0b-token-pw "docker://$TOK_ADDR/harness/viatoken:v1" |
        jq -r .Digest)" = "$LAYOUT_DIGEST" ]
    # the image really is in the registry behind
    [ "$(skopeo inspect --tls-verify=false "docker://$REG_ADDR/harness/viatoken:v1" | jq -r .Digest)" = "$LAYOUT_DIGEST" ]
    run ! skopeo copy -q --dest-tls-verify=false --dest-creds bob:wrong-pw \
        "oci:$LAYOUT:v1" "docker://$TOK_ADDR/harness/viatoken:v2"
    [ "$(proxy_stats TOK .tokens_issued)" -ge 2 ]
    [ "$(proxy_count TOK token)" -ge 2 ]
    [ "$(proxy_count TOK manifest_put)" -ge 1 ]
    grep -q 'PUT /v2/harness/viatoken/manifests/v1 201' "$TOK_LOG"
    ! grep -qiE 'b0b-token-pw|wrong-pw|authorization|bearer|basic|rp-[0-9a-f]{8}' "$TOK_LOG" ||
        fail "a credential reached the proxy log"
}

@test "token proxy: a cross-repository mount needs pull on the source" {
    head -c 5000 /dev/urandom >"$T/blob"
    local d
    d=$(sha "$T/blob")
    [ "$(upload "$REG_ADDR" harness/mountsrc "$T/blob")" = 201 ]
    local before t
    before=$(proxy_stats TOK .mounts)
    t=$(token repository:harness/mountdst:pull,push)
    curl -s -D "$T/h" -o /dev/null -X POST -H "Authorization: Bearer $t" \
        "http://$TOK_ADDR/v2/harness/mountdst/blobs/uploads/?mount=$d&from=harness/mountsrc"
    grep -q '^HTTP/1.1 401' "$T/h"
    hdr "$T/h" WWW-Authenticate |
        grep -qF 'scope="repository:harness/mountdst:pull,push repository:harness/mountsrc:pull"'
    t=$(token repository:harness/mountdst:pull,push repository:harness/mountsrc:pull)
    [ "$(code -X POST -H "Authorization: Bearer $t" \
        "http://$TOK_ADDR/v2/harness/mountdst/blobs/uploads/?mount=$d&from=harness/mountsrc")" = 201 ]
    [ "$(proxy_stats TOK .mounts)" -eq $((before + 1)) ]
    [ "$(code -I "http://$REG_ADDR/v2/harness/mountdst/blobs/$d")" = 200 ]
}

@test "token proxy: --mount-fallback turns an unauthorised mount into a plain upload; token TTL" {
    head -c 3000 /dev/urandom >"$T/blob"
    local d t
    d=$(sha "$T/blob")
    [ "$(upload "$REG_ADDR" harness/fbsrc "$T/blob")" = 201 ]
    proxy_config TOK '{"mount_fallback": true}' >/dev/null
    t=$(token repository:harness/fbdst:pull,push)
    curl -s -D "$T/h" -o /dev/null -X POST -H "Authorization: Bearer $t" \
        "http://$TOK_ADDR/v2/harness/fbdst/blobs/uploads/?mount=$d&from=harness/fbsrc"
    grep -q '^HTTP/1.1 202' "$T/h"
    [ "$(proxy_stats TOK .mount_fallbacks)" -ge 1 ]
    proxy_config TOK '{"mount_fallback": false, "token_ttl": 1}' >/dev/null
    t=$(token repository:harness/fbdst:pull)
    [ "$(code -H "Authorization: Bearer $t" "http://$TOK_ADDR/v2/")" = 200 ]
    sleep 1.5
    [ "$(code -H "Authorization: Bearer $t" "http://$TOK_ADDR/v2/")" = 401 ]
    proxy_config TOK '{"token_ttl": 300}' >/dev/null
}

@test "token proxy: expire_tokens_after revokes tokens mid-way; a new token works" {
    local t
    t=$(token repository:harness/exp:pull)
    proxy_fault TOK '{"type": "expire_tokens_after", "value": 2}'
    [ "$(code -H "Authorization: Bearer $t" "http://$TOK_ADDR/v2/harness/direct/tags/list")" = 401 ] # not in scope
    [ "$(code -H "Authorization: Bearer $t" "http://$TOK_ADDR/v2/harness/exp/tags/list")" = 404 ]
    [ "$(code -H "Authorization: Bearer $t" "http://$TOK_ADDR/v2/harness/exp/tags/list")" = 404 ]
    curl -s -D "$T/h" -o /dev/null -H "Authorization: Bearer $t" "http://$TOK_ADDR/v2/harness/exp/tags/list"
    grep -q '^HTTP/1.1 401' "$T/h"
    hdr "$T/h" WWW-Authenticate | grep -qF 'error="invalid_token"'
    [ "$(code -H "Authorization: Bearer $t" "http://$TOK_ADDR/v2/")" = 401 ]
    t=$(token repository:harness/exp:pull)
    [ "$(code -H "Authorization: Bearer $t" "http://$TOK_ADDR/v2/harness/exp/tags/list")" = 404 ]
    [ "$(code -H "Authorization: Bearer $t" "http://$TOK_ADDR/v2/harness/exp/tags/list")" = 404 ]
    [ "$(code -H "Authorization: Bearer $t" "http://$TOK_ADDR/v2/harness/exp/tags/list")" = 404 ]
    [ "$(proxy_stats TOK '.faults_fired.expire_tokens_after')" = 1 ]
}

@test "fault proxy: fail500 twice then success; fail429 with Retry-After" {
    proxy_config FX '{"faults": [{"type": "fail500", "kind": "manifest_get", "count": 2},
                                 {"type": "fail429", "kind": "blob_head", "value": 1}]}' >/dev/null
    local m=http://$FX_ADDR/v2/harness/direct/manifests/v1
    local accept='Accept: application/vnd.oci.image.manifest.v1+json'
    [ "$(code "http://$FX_ADDR/v2/")" = 200 ]
    [ "$(code -H "$accept" "$m")" = 500 ]
    [ "$(code -H "$accept" "$m")" = 500 ]
    [ "$(code -H "$accept" "$m")" = 200 ]
    curl -s -D "$T/h" -o /dev/null -I "http://$FX_ADDR/v2/harness/direct/blobs/$LAYOUT_DIGEST"
    grep -q '^HTTP/1.1 429' "$T/h"
    [ "$(hdr "$T/h" Retry-After)" = 1 ]
    [ "$(code -I "http://$FX_ADDR/v2/harness/direct/manifests/v1" -H "$accept")" = 200 ]
    proxy_config FX '{}' | jq -e '[.faults[].count] == [0, 0]'
    [ "$(proxy_stats FX '.faults_fired.fail500')" = 2 ]
    grep -q 'GET /v2/harness/direct/manifests/v1 500 kind=manifest_get .* fault=fail500' "$FX_LOG"
}

@test "fault proxy: 413 for a large monolithic PUT; OCI-Chunk-Min-Length on upload POST" {
    proxy_config FX '{"faults": [{"type": "reject_monolithic_over", "value": 100000},
                                 {"type": "chunk_min_length", "value": 65536}]}' >/dev/null
    head -c 200000 /dev/urandom >"$T/big"
    head -c 1000 /dev/urandom >"$T/small"
    [ "$(upload "$FX_ADDR" harness/mono "$T/big")" = 413 ]
    [ "$(hdr "$T/post.h" OCI-Chunk-Min-Length)" = 65536 ]
    [ "$(upload "$FX_ADDR" harness/mono "$T/small")" = 201 ]
    # chunked transfer encoding: also rejected once over the limit, accepted under it
    [ "$(upload "$FX_ADDR" harness/mono "$T/big" -H 'Transfer-Encoding: chunked')" = 413 ]
    head -c 2000 /dev/urandom >"$T/small2"
    [ "$(upload "$FX_ADDR" harness/mono "$T/small2" -H 'Transfer-Encoding: chunked')" = 201 ]
    [ "$(code -I "http://$REG_ADDR/v2/harness/mono/blobs/$(sha "$T/small2")")" = 200 ]
    proxy_config FX '{"clear_faults": true}' >/dev/null
}

@test "fault proxy: reset mid-PATCH; GET on the upload URL reports the Range; resume completes" {
    proxy_config FX '{"faults": [{"type": "reset_upload_after", "value": 100000}]}' >/dev/null
    head -c 300000 /dev/urandom >"$T/blob"
    curl -sS -D "$T/post.h" -o /dev/null -X POST "http://$FX_ADDR/v2/harness/reset/blobs/uploads/"
    local loc
    loc=$(absurl "$FX_ADDR" "$(hdr "$T/post.h" Location)")
    run curl -sS -m 20 -o /dev/null -X PATCH -H 'Content-Type: application/octet-stream' \
        -H 'Content-Range: 0-299999' --data-binary "@$T/blob" "$loc"
    [ "$status" -ne 0 ] || fail "the PATCH was not interrupted: $output"
    # the client only knows the old URL
    curl -sS -D "$T/get.h" -o /dev/null "$loc"
    grep -q '^HTTP/1.1 204' "$T/get.h"
    [ "$(hdr "$T/get.h" Range)" = 0-99999 ]
    loc=$(absurl "$FX_ADDR" "$(hdr "$T/get.h" Location)")
    tail -c +100001 "$T/blob" >"$T/rest"
    curl -sS -D "$T/patch.h" -o /dev/null -X PATCH -H 'Content-Type: application/octet-stream' \
        -H 'Content-Range: 100000-299999' --data-binary "@$T/rest" "$loc"
    [ "$(hdr "$T/patch.h" Range)" = 0-299999 ]
    loc=$(absurl "$FX_ADDR" "$(hdr "$T/patch.h" Location)")
    [ "$(code -X PUT "$loc&digest=$(sha "$T/blob")")" = 201 ]
    curl -sS -o "$T/got" "http://$REG_ADDR/v2/harness/reset/blobs/$(sha "$T/blob")"
    cmp "$T/got" "$T/blob"
    [ "$(proxy_stats FX '.faults_fired.reset_upload_after')" = 1 ]
    [ "$(proxy_stats FX .state_fixes)" -ge 1 ]
}

@test "fault proxy: reset during a monolithic PUT keeps the forwarded bytes in the session" {
    proxy_config FX '{"faults": [{"type": "reset_upload_after", "value": 70000, "kind": "blob_upload_put"}]}' >/dev/null
    head -c 150000 /dev/urandom >"$T/blob"
    run upload "$FX_ADDR" harness/reset2 "$T/blob"
    [ "$output" = 000 ] || fail "monolithic PUT was not reset: $output"
    local loc
    loc=$(absurl "$FX_ADDR" "$(hdr "$T/post.h" Location)")
    curl -sS -D "$T/get.h" -o /dev/null "$loc"
    [ "$(hdr "$T/get.h" Range)" = 0-69999 ]
    [ "$(code -I "http://$REG_ADDR/v2/harness/reset2/blobs/$(sha "$T/blob")")" = 404 ]
}

@test "fault proxy: stall makes a client time out, then the proxy behaves; stall mid-body" {
    proxy_config FX '{"faults": [{"type": "stall", "value": 3, "kind": "base"}]}' >/dev/null
    local t0=$SECONDS
    [ "$(code -m 1 "http://$FX_ADDR/v2/")" = 000 ]
    [ "$(code -m 5 "http://$FX_ADDR/v2/")" = 200 ]
    # after=N: headers and N body bytes, then silence
    proxy_config FX "{\"faults\": [{\"type\": \"stall\", \"value\": 3, \"after\": 1000, \"kind\": \"blob_get\"}]}" >/dev/null
    local layer
    layer=$(jq -r '.layers[1].digest' "$LAYOUT/blobs/sha256/${LAYOUT_DIGEST#sha256:}")
    run curl -sS -m 1 -o "$T/part" "http://$FX_ADDR/v2/harness/direct/blobs/$layer"
    [ "$status" -eq 28 ] || fail "curl status $status, expected a timeout (28)"
    [ "$(stat -c %s "$T/part")" -eq 1000 ]
    curl -sS -m 10 -o "$T/full" "http://$FX_ADDR/v2/harness/direct/blobs/$layer"
    [ "$(sha "$T/full")" = "$layer" ]
}

@test "fault proxy: corrupt_blob flips one byte, same length; drop closes the connection" {
    local layer
    layer=$(jq -r '.layers[1].digest' "$LAYOUT/blobs/sha256/${LAYOUT_DIGEST#sha256:}")
    proxy_fault FX "{\"type\": \"corrupt_blob\", \"value\": \"$layer\"}"
    curl -sS -D "$T/h" -o "$T/bad" "http://$FX_ADDR/v2/harness/direct/blobs/$layer"
    grep -q '^HTTP/1.1 200' "$T/h"
    [ "$(stat -c %s "$T/bad")" -eq "$(stat -c %s "$LAYOUT/blobs/sha256/${layer#sha256:}")" ]
    [ "$(sha "$T/bad")" != "$layer" ]
    [ "$(cmp -l "$T/bad" "$LAYOUT/blobs/sha256/${layer#sha256:}" | wc -l)" -eq 1 ]
    # other blobs untouched; the registry itself has the right bytes
    curl -sS -o "$T/good" "http://$REG_ADDR/v2/harness/direct/blobs/$layer"
    [ "$(sha "$T/good")" = "$layer" ]
    proxy_config FX '{"faults": [{"type": "drop", "kind": "base"}]}' >/dev/null
    run curl -sS -m 5 "http://$FX_ADDR/v2/"
    [ "$status" -eq 52 ] || [ "$status" -eq 56 ] || fail "curl status $status after drop"
    [ "$(code "http://$FX_ADDR/v2/")" = 200 ]
    proxy_config FX '{"clear_faults": true}' >/dev/null
}

@test "fault proxy: streams a large chunked upload without holding it in memory" {
    head -c $((48 * 1024 * 1024)) /dev/urandom >"$T/large"
    [ "$(upload "$FX_ADDR" harness/large "$T/large" -H 'Transfer-Encoding: chunked')" = 201 ]
    [ "$(upload "$FX_ADDR" harness/large2 "$T/large")" = 201 ]
    curl -sS -o "$T/back" "http://$FX_ADDR/v2/harness/large/blobs/$(sha "$T/large")"
    cmp "$T/back" "$T/large"
    local py hwm
    py=$(cat "/proc/$FX_PID/task/$FX_PID/children" | awk '{print $1}')
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$py/status")
    [ "$hwm" -lt 40000 ] || fail "proxy peak RSS ${hwm} kB"
    [ "$(proxy_stats FX .bytes_uploaded)" -ge $((96 * 1024 * 1024)) ]
}

@test "fault proxy: skopeo push through injected 429s still lands the right digest" {
    # (skopeo retries a bodyless request on 429 by itself, the whole copy on a
    # 429 for the manifest with --retry-times; it does not retry 500s)
    proxy_config FX '{"reset_stats": true, "faults": [
        {"type": "fail429", "kind": "blob_head", "count": 2},
        {"type": "fail429", "kind": "manifest_put", "count": 1}]}' >/dev/null
    run skopeo copy -q --retry-times 2 --dest-tls-verify=false "oci:$LAYOUT:v1" "docker://$FX_ADDR/harness/faulty:v1"
    [ "$status" -eq 0 ] || fail "skopeo: $output"
    [ "$(skopeo inspect --tls-verify=false "docker://$REG_ADDR/harness/faulty:v1" | jq -r .Digest)" = "$LAYOUT_DIGEST" ]
    proxy_stats FX '.faults_fired' | jq -e '.fail429 == 3'
    proxy_stats FX '.counts' | jq -e '.blob_head >= 6 and .manifest_put >= 2'
    proxy_config FX '{"clear_faults": true}' >/dev/null
}

@test "control endpoint: bad input is a 400; config reflects runtime changes" {
    [ "$(code -X POST -d '{"faults": [{"type": "nonsense"}]}' "http://$FX_ADDR/__proxy/config")" = 400 ]
    [ "$(code -X POST -d 'not json' "http://$FX_ADDR/__proxy/config")" = 400 ]
    proxy_config FX '{"faults": [{"type": "fail500", "kind": "blob_*|manifest_get", "count": -1}], "token_ttl": 5}' |
        jq -e '.faults[0].kind == "blob_*|manifest_get" and .faults[0].count == -1 and .token_ttl == 5'
    [ "$(code -I "http://$FX_ADDR/v2/harness/direct/blobs/$LAYOUT_DIGEST")" = 500 ]
    [ "$(code -I "http://$FX_ADDR/v2/harness/direct/blobs/$LAYOUT_DIGEST")" = 500 ]
    proxy_config FX '{"clear_faults": true, "reset_stats": true}' | jq -e '.faults == []'
    [ "$(proxy_stats FX .requests)" = 0 ]
}

@test "lifetimes: proxy and registry exit by themselves" {
    REGISTRY_MAX_SECONDS=2 registry_start SHORT
    proxy_start SP "$SHORT_ADDR" --max-seconds 1
    [ "$(code "http://$SP_ADDR/v2/")" = 200 ]
    sleep 4
    ! kill -0 "$SP_PID" 2>/dev/null || fail "proxy still running"
    ! kill -0 "$SHORT_PID" 2>/dev/null || fail "registry still running"
    [ "$(code -m 2 "http://$SHORT_ADDR/v2/")" = 000 ]
    registry_stop SHORT
    proxy_stop SP
    # registry_stop ends a running registry
    registry_start STOPME
    kill -0 "$STOPME_PID"
    local pid=$STOPME_PID
    registry_stop STOPME
    ! kill -0 "$pid" 2>/dev/null
}
