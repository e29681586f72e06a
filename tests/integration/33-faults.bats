#!/usr/bin/env bats
# Registry faults injected by regproxy in front of the real registry: 5xx,
# 429 with Retry-After, dropped connections, a reset in the middle of a
# chunked upload (resume, or a fresh session when the registry refuses),
# 413 on a monolithic upload, OCI-Chunk-Min-Length, a token revoked in the
# middle of a push, a stalled server, a corrupt blob on pull. Every push
# either lands the right digest or fails with a clear error, and never
# leaves a manifest that points at a missing blob.

load helpers
load lib/registry

MIB=$((1024 * 1024))

setup_file() {
    export REGISTRY_MAX_SECONDS=900
    registry_start REG
    proxy_start FX "$REG_ADDR"
    proxy_start TOK "$REG_ADDR" --token-auth "carol:C4rol-pw"
    local d=$BATS_FILE_TMPDIR
    export SMALL_DIGEST BIG_DIGEST MED_DIGEST
    SMALL_DIGEST=$(make_oci_layout "$d/small" v1 1000 50000 3000)
    MED_DIGEST=$(make_oci_layout "$d/med" v1 $((3 * MIB)) 2000)
    BIG_DIGEST=$(make_oci_layout "$d/big" v1 $((20 * MIB)) 1000)
    # a base for the pull tests, straight into the registry
    make_oci_layout "$d/base" v1 100000 2000 >/dev/null
    skopeo copy -q --dest-tls-verify=false "oci:$d/base:v1" "docker://$REG_ADDR/base/pull:v1"
}

teardown_file() {
    proxy_stop TOK
    proxy_stop FX
    registry_stop REG
}

setup() {
    common_setup
    proxy_config FX '{"clear_faults": true, "reset_stats": true, "state_fix": true}' >/dev/null
    proxy_config TOK '{"clear_faults": true, "reset_stats": true}' >/dev/null
}

# push_ok SRC_LAYOUT WANT_DIGEST REF_THROUGH_PROXY REPO TAG: `ocib push`
# succeeds with the layout's digest, and the registry behind has the complete
# image.
push_ok() {
    local src=$1 want=$2 dest=$3 repo=$4 tag=$5
    run_ocib push "oci:$src:v1" "$dest"
    [ "$status" -eq 0 ] || { show_run; fail "ocib push $dest exited $status"; return 1; }
    assert_digest_stdout "${dest%:*}" || return 1
    assert_eq "pushed digest" "$DIGEST" "$want" || return 1
    assert_eq "registry_check_image" "$(registry_check_image REG "$repo" "$tag")" "$want" || return 1
    assert_eq "skopeo digest" "$(skopeo inspect --tls-verify=false "docker://$REG_ADDR/$repo:$tag" | jq -r .Digest)" "$want"
}

# fired PROXY TYPE: how many times that fault fired.
fired() {
    proxy_stats "$1" ".faults_fired[\"$2\"] // 0"
}

# layout_bytes DIR: the sum of the sizes of the config and layers.
layout_bytes() {
    jq '[.config.size, .layers[].size] | add' "$(layout_manifest "$1" v1)"
}

# no_manifest REPO: the registry holds no manifest for REPO at all.
no_manifest() {
    assert_eq "manifest PUTs accepted for $1" "$(registry_count REG PUT "^/v2/$1/manifests/")" 0
}

@test "500 on each step of a push (HEAD, POST, PUT, manifest), then success" {
    proxy_config FX '{"faults": [
        {"type": "fail500", "kind": "blob_head", "count": 1},
        {"type": "fail500", "kind": "blob_upload_post", "count": 1},
        {"type": "fail500", "kind": "blob_upload_put", "count": 1},
        {"type": "fail500", "kind": "manifest_put", "count": 1}]}' >/dev/null
    push_ok "$BATS_FILE_TMPDIR/small" "$SMALL_DIGEST" "$FX_ADDR/f/five:v1" f/five v1
    assert_eq "500s served" "$(fired FX fail500)" 4

    # build --push through the same faults
    proxy_config FX '{"faults": [
        {"type": "fail500", "kind": "blob_head", "count": 2},
        {"type": "fail500", "kind": "manifest_put", "count": 2}]}' >/dev/null
    local ctx
    ctx=$(copy_example hello)
    build_ok --repo "$FX_ADDR/f/build" -C "$ctx" --push --tag "$FX_ADDR/f/build:v1"
    assert_eq "500s served (build)" "$(fired FX fail500)" 8
    [ "$(registry_check_image REG f/build v1)" = "$DIGEST" ]
}

@test "a registry that keeps answering 500: a bounded number of retries, then exit 1 naming it" {
    proxy_config FX '{"faults": [{"type": "fail500", "kind": "manifest_put", "count": -1}]}' >/dev/null
    local t0=$SECONDS
    run_ocib push "oci:$BATS_FILE_TMPDIR/small:v1" "$FX_ADDR/f/always500:v1"
    assert_failed 1 "$FX_ADDR"
    assert_contains "error of a push that always gets 500" "$err" 500
    [ "$(fired FX fail500)" -ge 2 ] || fail "a 500 was not retried"
    [ $((SECONDS - t0)) -lt 60 ] || fail "retrying took $((SECONDS - t0)) s"
    no_manifest f/always500
}

@test "429 with Retry-After is honoured, then the push completes" {
    proxy_config FX '{"faults": [
        {"type": "fail429", "kind": "blob_head", "value": 1, "count": 1},
        {"type": "fail429", "kind": "manifest_put", "value": 2, "count": 1}]}' >/dev/null
    local t0=$SECONDS
    push_ok "$BATS_FILE_TMPDIR/small" "$SMALL_DIGEST" "$FX_ADDR/f/slow:v1" f/slow v1
    assert_eq "429s served" "$(fired FX fail429)" 2
    [ $((SECONDS - t0)) -ge 2 ] || fail "the push did not wait the 2 s Retry-After asked"
    # the manifest PUT was repeated only after the wait: 2 PUTs seen by the proxy
    assert_eq "manifest PUTs seen" "$(proxy_count FX manifest_put)" 2
}

@test "dropped connections are retried, on push and on pull" {
    proxy_config FX '{"faults": [
        {"type": "drop", "kind": "blob_head", "count": 1},
        {"type": "drop", "kind": "blob_upload_post", "count": 1},
        {"type": "drop", "kind": "manifest_put", "count": 1}]}' >/dev/null
    push_ok "$BATS_FILE_TMPDIR/small" "$SMALL_DIGEST" "$FX_ADDR/f/drop:v1" f/drop v1
    assert_eq "drops" "$(fired FX drop)" 3

    proxy_config FX '{"faults": [
        {"type": "drop", "kind": "manifest_get", "count": 1},
        {"type": "drop", "kind": "blob_get", "count": 2}]}' >/dev/null
    mkdir -p "$T/ctx"
    jq -n --arg f "$FX_ADDR/base/pull:v1" '{version: 1, image: "example.com/x/y",
        stages: [{from: $f, layers: [{files: [{path: "/x", content: "x"}]}]}]}' >"$T/ctx/ocib.json"
    build_ok -C "$T/ctx" --output "oci:$T/out"
    assert_layout_sound "$T/out"
    assert_eq "drops on pull" "$(fired FX drop)" 6
}

@test "connection reset in the middle of a chunk of a >16 MiB layer: the upload resumes where the registry got to" {
    local size
    size=$(layout_bytes "$BATS_FILE_TMPDIR/big")
    proxy_config FX "{\"faults\": [{\"type\": \"reset_upload_after\", \"value\": $((6 * MIB)), \"kind\": \"blob_upload_patch\"}]}" >/dev/null
    push_ok "$BATS_FILE_TMPDIR/big" "$BIG_DIGEST" "$FX_ADDR/f/reset:v1" f/reset v1
    assert_eq "resets" "$(fired FX reset_upload_after)" 1
    [ "$(proxy_count FX blob_upload_get)" -ge 1 ] || fail "ocib did not ask the registry where the upload stood (GET)"
    # resumed, not restarted: the 6 MiB that reached the registry were not sent again
    local sent
    sent=$(proxy_stats FX .bytes_uploaded)
    [ "$sent" -lt $((size + 3 * MIB)) ] ||
        fail "uploaded $sent bytes for $size bytes of blobs: the interrupted upload started over"
}

@test "connection reset when the registry refuses to resume: a fresh upload session, right digest" {
    # without the proxy's state fix, distribution cancels a session resumed
    # with the stale upload URL the client kept
    proxy_config FX "{\"state_fix\": false, \"faults\": [{\"type\": \"reset_upload_after\", \"value\": $((6 * MIB)), \"kind\": \"blob_upload_patch\"}]}" >/dev/null
    push_ok "$BATS_FILE_TMPDIR/big" "$BIG_DIGEST" "$FX_ADDR/f/restart:v1" f/restart v1
    assert_eq "resets" "$(fired FX reset_upload_after)" 1
    [ "$(proxy_count FX blob_upload_post)" -ge 3 ] || fail "no new upload session was started"
}

@test "413 on a large monolithic upload falls back to chunks; OCI-Chunk-Min-Length is honoured" {
    proxy_config FX "{\"faults\": [{\"type\": \"reject_monolithic_over\", \"value\": $MIB}]}" >/dev/null
    push_ok "$BATS_FILE_TMPDIR/med" "$MED_DIGEST" "$FX_ADDR/f/toolarge:v1" f/toolarge v1
    [ "$(fired FX reject_monolithic_over)" -ge 1 ] || fail "the 413 never fired: the 3 MiB blob was not sent whole first"
    [ "$(proxy_count FX blob_upload_patch)" -ge 1 ] || fail "no chunk (PATCH) after the 413"
    [ "$(proxy_stats FX '.statuses["blob_upload_put 413"] // 0')" -ge 1 ] || fail "no 413 answered"

    # the registry announces a minimum chunk length: chunked uploads for
    # every blob, whatever its size, and no monolithic PUT with a body
    proxy_config FX "{\"reset_stats\": true, \"faults\": [{\"type\": \"chunk_min_length\", \"value\": 65536},
        {\"type\": \"reject_monolithic_over\", \"value\": 0}]}" >/dev/null
    push_ok "$BATS_FILE_TMPDIR/small" "$SMALL_DIGEST" "$FX_ADDR/f/minchunk:v1" f/minchunk v1
    assert_eq "413s with OCI-Chunk-Min-Length announced" "$(fired FX reject_monolithic_over)" 0
    [ "$(proxy_count FX blob_upload_patch)" -ge 4 ] || fail "expected one PATCH per blob (4)"
}

@test "a token revoked in the middle of a push: re-authenticated once, push completes" {
    mkdir -p "$T/docker"
    export DOCKER_CONFIG=$T/docker
    jq -n --arg h "$TOK_ADDR" --arg a "$(printf 'carol:C4rol-pw' | base64 -w0)" '{auths: {($h): {auth: $a}}}' \
        >"$DOCKER_CONFIG/config.json"
    proxy_config TOK '{"faults": [{"type": "expire_tokens_after", "value": 4}]}' >/dev/null
    run_ocib push "oci:$BATS_FILE_TMPDIR/small:v1" "$TOK_ADDR/f/tok:v1"
    [ "$status" -eq 0 ] || { show_run; fail "push through the token proxy exited $status"; }
    assert_digest_stdout "$TOK_ADDR/f/tok"
    assert_eq "pushed digest" "$DIGEST" "$SMALL_DIGEST"
    assert_eq "expiries" "$(fired TOK expire_tokens_after)" 1
    [ "$(proxy_stats TOK .tokens_issued)" -ge 2 ] || fail "no new token after the revocation"
    [ "$(registry_check_image REG f/tok v1)" = "$SMALL_DIGEST" ]
    [[ $err != *C4rol-pw* ]] || fail "the password reached stderr"
}

@test "a stalled registry: OCIB_HTTP_TIMEOUT=3 gives a clear error and exit 1, no dangling manifest; a stall once is survived" {
    proxy_config FX '{"faults": [{"type": "stall", "value": 20, "kind": "blob_upload_put", "count": -1}]}' >/dev/null
    export OCIB_HTTP_TIMEOUT=3
    local t0=$SECONDS
    run_ocib push "oci:$BATS_FILE_TMPDIR/small:v1" "$FX_ADDR/f/stall:v1"
    local took=$((SECONDS - t0))
    assert_failed 1 "$FX_ADDR"
    printf '%s\n' "$err" | grep -m1 '^ocib: ' | grep -Eiq 'time(d)? ?out|too slow|no progress|stall' ||
        { show_run; fail "the error does not say the registry timed out"; }
    [ "$took" -lt 45 ] || fail "giving up took $took s with OCIB_HTTP_TIMEOUT=3"
    [ "$(fired FX stall)" -ge 1 ]
    no_manifest f/stall

    # a download that stalls once in the middle (the first blob fetched, the
    # config or a layer): given up after the timeout,
    # fetched again from the start, the cache holds the right bytes
    local layer
    layer=$(skopeo inspect --raw --tls-verify=false "docker://$REG_ADDR/base/pull:v1" | jq -r '.layers[0].digest')
    proxy_config FX '{"clear_faults": true, "reset_stats": true, "faults": [{"type": "stall", "value": 20, "after": 200, "kind": "blob_get", "count": 1}]}' >/dev/null
    mkdir -p "$T/ctx"
    jq -n --arg f "$FX_ADDR/base/pull:v1" '{version: 1, image: "example.com/x/y",
        stages: [{from: $f, layers: [{files: [{path: "/x", content: "x"}]}]}]}' >"$T/ctx/ocib.json"
    t0=$SECONDS
    build_ok -C "$T/ctx" --output "oci:$T/out"
    took=$((SECONDS - t0))
    assert_eq "stalls" "$(fired FX stall)" 1
    [ "$took" -ge 3 ] && [ "$took" -lt 20 ] || fail "the stalled download took $took s (timeout 3 s)"
    local f=$OCIB_CACHE_DIR/blobs/sha256/${layer#sha256:}
    [ -f "$f" ] || fail "the layer is not in the cache"
    assert_eq "cached layer digest" "sha256:$(sha256sum "$f" | cut -d' ' -f1)" "$layer"
    assert_layout_sound "$T/out"
}

@test "a corrupt blob on pull: exit 1 naming the digest; nothing of it in the cache; fine once the registry is" {
    skopeo inspect --raw --tls-verify=false "docker://$REG_ADDR/base/pull:v1" >"$T/bm"
    local layer config
    layer=$(jq -r '.layers[0].digest' "$T/bm")
    config=$(jq -r '.config.digest' "$T/bm")
    mkdir -p "$T/ctx"
    jq -n --arg f "$FX_ADDR/base/pull:v1" '{version: 1, image: "example.com/x/y",
        stages: [{from: $f, layers: [{files: [{path: "/x", content: "x"}]}]}]}' >"$T/ctx/ocib.json"

    proxy_fault FX "{\"type\": \"corrupt_blob\", \"value\": \"$layer\"}"
    run_ocib build -C "$T/ctx" --output "oci:$T/out"
    assert_failed 1 "${layer#sha256:}"
    [ "$(fired FX corrupt_blob)" -ge 1 ]
    [ ! -e "$T/out" ] || fail "a failed build left $T/out"
    [ ! -e "$OCIB_CACHE_DIR/blobs/sha256/${layer#sha256:}" ] || fail "the corrupt blob is in the cache"
    local f
    if [ -d "$OCIB_CACHE_DIR" ]; then
        # no leftover of any size of the blob anywhere in the cache
        while IFS= read -r -d '' f; do
            [ "$(stat -c %s "$f")" -ne "$(jq -r '.layers[0].size' "$T/bm")" ] ||
                fail "a file of the corrupt blob's size stayed in the cache: $f"
        done < <(find "$OCIB_CACHE_DIR" -type f -print0)
    fi

    # a corrupt config (the first build kept the good config in the cache,
    # which ocib then never fetches again: start from a cache without it)
    rm -f "$OCIB_CACHE_DIR/blobs/sha256/${config#sha256:}"
    proxy_config FX "{\"clear_faults\": true, \"faults\": [{\"type\": \"corrupt_blob\", \"value\": \"$config\"}]}" >/dev/null
    run_ocib build -C "$T/ctx" --output "oci:$T/out"
    assert_failed 1 "${config#sha256:}"

    # a corrupt manifest fetched by digest
    local mdig="sha256:$(sha256sum "$T/bm" | cut -d' ' -f1)"
    proxy_config FX "{\"clear_faults\": true, \"faults\": [{\"type\": \"corrupt_blob\", \"value\": \"$mdig\", \"kind\": \"manifest_get\"}]}" >/dev/null
    jq -n --arg f "$FX_ADDR/base/pull@$mdig" '{version: 1, image: "example.com/x/y",
        stages: [{from: $f, layers: [{files: [{path: "/x", content: "x"}]}]}]}' >"$T/ctx/ocib.json"
    run_ocib build -C "$T/ctx" --output "oci:$T/out"
    assert_failed 1 "${mdig#sha256:}"
    [ "$(fired FX corrupt_blob)" -ge 3 ]

    # the registry heals: the build works and the cache holds the right bytes
    proxy_config FX '{"clear_faults": true}' >/dev/null
    build_ok -C "$T/ctx" --output "oci:$T/out"
    f=$OCIB_CACHE_DIR/blobs/sha256/${layer#sha256:}
    [ -f "$f" ] || fail "the layer is not in the cache after a good pull"
    assert_eq "cached layer digest" "sha256:$(sha256sum "$f" | cut -d' ' -f1)" "$layer"
}
