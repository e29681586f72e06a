#!/usr/bin/env bats
# What a registry (or whoever answers for it) hands ocib is untrusted: an
# upload Location on another host never receives credentials; upload
# progress is read exactly as the distribution spec defines it (an empty
# upload's "Range: 0-0" is not one byte received); a digest the registry
# rejects restarts the upload from POST; a lost reply is followed by a HEAD,
# never by a second upload of a committed blob; manifests that could be read
# as an index (CVE-2021-41190) are refused; and odd answers (a 202 without
# Location, a 10 MB header, a huge Retry-After, 400s with codes) give exact
# errors. Faults come from regproxy in front of the real docker-registry;
# the "foreign host" is a second regproxy on 127.0.0.2.

load helpers
load lib/registry

MIB=$((1024 * 1024))
APW='Basic-Alice-pw!93'
TPW='Tok3n-Tom-pw#27'

setup_file() {
    export REGISTRY_MAX_SECONDS=900
    registry_start REG
    registry_start AREG --htpasswd "alice:$APW"
    proxy_start FX "$REG_ADDR"
    proxy_start TOK "$REG_ADDR" --token-auth "tom:$TPW"
    proxy_start BAS "$AREG_ADDR"
    # Another origin: the same kind of proxy, on another loopback address.
    proxy_start FOREIGN "$REG_ADDR" --listen 127.0.0.2
    proxy_start AFOREIGN "$AREG_ADDR" --listen 127.0.0.2
    local d=$BATS_FILE_TMPDIR
    export SMALL_DIGEST BIG_DIGEST
    SMALL_DIGEST=$(make_oci_layout "$d/small" v1 1000 50000)
    BIG_DIGEST=$(make_oci_layout "$d/big" v1 $((20 * MIB)) 1000)
}

teardown_file() {
    for p in AFOREIGN FOREIGN BAS TOK FX; do proxy_stop "$p"; done
    registry_stop AREG
    registry_stop REG
}

setup() {
    common_setup
    export DOCKER_CONFIG=$T/docker HOME=$T/home
    mkdir -p "$HOME" "$DOCKER_CONFIG"
    for p in FX TOK BAS; do
        proxy_config "$p" '{"clear_faults": true, "reset_stats": true}' >/dev/null
    done
    proxy_config FOREIGN '{"clear_faults": true, "reset_stats": true}' >/dev/null
    proxy_config AFOREIGN '{"clear_faults": true, "reset_stats": true}' >/dev/null
}

fired() {
    proxy_stats "$1" ".faults_fired[\"$2\"] // 0"
}

write_auths() {
    jq -n --arg h "$1" --arg a "$(printf '%s:%s' "$2" "$3" | base64 -w0)" \
        '{auths: {($h): {auth: $a}}}' >"$DOCKER_CONFIG/config.json"
}

# push_ok SRC WANT DEST REPO TAG: push succeeds with WANT, the registry
# behind holds the complete image, skopeo agrees.
push_ok() {
    local src=$1 want=$2 dest=$3 repo=$4 tag=$5
    run_ocib push "oci:$src:v1" "$dest"
    [ "$status" -eq 0 ] || { show_run; fail "ocib push $dest exited $status"; return 1; }
    assert_digest_stdout "${dest%:*}" || return 1
    assert_eq "pushed digest" "$DIGEST" "$want" || return 1
    assert_eq "registry_check_image" "$(registry_check_image REG "$repo" "$tag")" "$want" || return 1
    assert_eq "skopeo digest" \
        "$(skopeo inspect --tls-verify=false "docker://$REG_ADDR/$repo:$tag" | jq -r .Digest)" "$want"
}

@test "an upload Location on another host gets no bearer token; the push still lands" {
    write_auths "$TOK_ADDR" tom "$TPW"
    proxy_fault TOK "{\"type\": \"foreign_location\", \"value\": \"$FOREIGN_ADDR\"}"
    push_ok "$BATS_FILE_TMPDIR/small" "$SMALL_DIGEST" "$TOK_ADDR/foreign/tok:v1" foreign/tok v1
    [ "$(fired TOK foreign_location)" -ge 3 ] || fail "the fault did not fire for every blob"
    # The foreign host did receive the uploads, and never a credential.
    [ "$(proxy_stats FOREIGN '.counts.blob_upload_put // 0')" -ge 3 ] ||
        fail "uploads did not go to the foreign Location"
    assert_eq "Authorization headers at the foreign host" \
        "$(proxy_stats FOREIGN .authorization_seen)" 0
    # The registry's own origin still got its token.
    [ "$(proxy_stats TOK .authorization_seen)" -gt 0 ] || fail "no token reached the registry itself"
    [[ $err != *"$TPW"* && $err != *Bearer* ]] || fail "a credential was printed"
}

@test "an upload Location on another host never gets a Basic password: exit 1 naming that host" {
    write_auths "$BAS_ADDR" alice "$APW"
    proxy_fault BAS "{\"type\": \"foreign_location\", \"value\": \"$AFOREIGN_ADDR\"}"
    run_ocib push "oci:$BATS_FILE_TMPDIR/small:v1" "$BAS_ADDR/foreign/basic:v1"
    assert_failed 1 "127\.0\.0\.2:$AFOREIGN_PORT" "only to the registry's own origin"
    [ "$(proxy_stats AFOREIGN '.requests')" -gt 0 ] ||
        fail "the foreign host was never asked (the fault did not take)"
    assert_eq "Authorization headers at the foreign host" \
        "$(proxy_stats AFOREIGN .authorization_seen)" 0
    [[ $err != *"$APW"* ]] || fail "the password was printed"
    # Without the fault the same credentials push fine (they are right).
    proxy_config BAS '{"clear_faults": true}' >/dev/null
    run_ocib push "oci:$BATS_FILE_TMPDIR/small:v1" "$BAS_ADDR/foreign/basic:v1"
    [ "$status" -eq 0 ] || { show_run; fail "push with the right password failed"; }
}

@test "a 500, 429 or stall on the first chunk of a chunked upload: restarted from byte 0, right digest" {
    local fault n=0
    for fault in '{"type": "fail500", "kind": "blob_upload_patch"}' \
        '{"type": "fail429", "value": 1, "kind": "blob_upload_patch"}' \
        '{"type": "drop", "kind": "blob_upload_patch"}'; do
        n=$((n + 1))
        proxy_config FX '{"clear_faults": true, "reset_stats": true}' >/dev/null
        proxy_fault FX "$fault"
        push_ok "$BATS_FILE_TMPDIR/big" "$BIG_DIGEST" "$FX_ADDR/range/first$n:v1" "range/first$n" v1 ||
            { fail "after $fault"; return 1; }
        [ "$(proxy_stats FX '.faults_fired | add // 0')" -eq 1 ] || fail "$fault did not fire"
    done
}

@test "a registry that rejects the digest (DIGEST_INVALID) gets a new upload from POST" {
    # Monolithic and chunked: one byte flipped on its way to the registry.
    proxy_fault FX '{"type": "corrupt_upload", "kind": "blob_upload_put"}'
    push_ok "$BATS_FILE_TMPDIR/small" "$SMALL_DIGEST" "$FX_ADDR/digest/mono:v1" digest/mono v1
    assert_eq "corrupt_upload fired" "$(fired FX corrupt_upload)" 1
    [ "$(proxy_count FX blob_upload_post)" -ge 4 ] || fail "no second POST after DIGEST_INVALID"
    proxy_config FX '{"clear_faults": true, "reset_stats": true}' >/dev/null
    proxy_fault FX '{"type": "corrupt_upload", "kind": "blob_upload_patch"}'
    push_ok "$BATS_FILE_TMPDIR/big" "$BIG_DIGEST" "$FX_ADDR/digest/chunked:v1" digest/chunked v1
    assert_eq "corrupt_upload fired" "$(fired FX corrupt_upload)" 1
}

@test "a lost reply to the final PUT: a HEAD finds the committed blob, which is not uploaded again" {
    proxy_fault FX '{"type": "lose_reply", "kind": "blob_upload_put"}'
    push_ok "$BATS_FILE_TMPDIR/small" "$SMALL_DIGEST" "$FX_ADDR/lost/reply:v1" lost/reply v1
    assert_eq "lose_reply fired" "$(fired FX lose_reply)" 1
    # Three blobs (two layers, the config): three uploads, not four.
    assert_eq "upload sessions" "$(proxy_count FX blob_upload_post)" 3
    assert_eq "upload PUTs" "$(proxy_count FX blob_upload_put)" 3
    # Chunked: the closing PUT's reply is lost.
    proxy_config FX '{"clear_faults": true, "reset_stats": true}' >/dev/null
    proxy_fault FX '{"type": "lose_reply", "kind": "blob_upload_put"}'
    push_ok "$BATS_FILE_TMPDIR/big" "$BIG_DIGEST" "$FX_ADDR/lost/chunked:v1" lost/chunked v1
    assert_eq "upload sessions" "$(proxy_count FX blob_upload_post)" 3
}

@test "odd registry answers give exact errors: 202 without Location, 400 codes, a 10 MB header" {
    proxy_fault FX '{"type": "no_location"}'
    run_ocib push "oci:$BATS_FILE_TMPDIR/small:v1" "$FX_ADDR/odd/noloc:v1"
    assert_failed 1 "without a Location header"
    proxy_config FX '{"clear_faults": true}' >/dev/null
    proxy_fault FX '{"type": "fail400", "value": "BLOB_UPLOAD_INVALID", "kind": "blob_upload_post"}'
    run_ocib push "oci:$BATS_FILE_TMPDIR/small:v1" "$FX_ADDR/odd/post400:v1"
    assert_failed 1 "HTTP 400: BLOB_UPLOAD_INVALID"
    proxy_fault FX '{"type": "fail400", "value": "MANIFEST_INVALID", "kind": "manifest_put"}'
    run_ocib push "oci:$BATS_FILE_TMPDIR/small:v1" "$FX_ADDR/odd/man400:v1"
    assert_failed 1 "HTTP 400: MANIFEST_INVALID" "odd/man400"
    proxy_fault FX "{\"type\": \"huge_header\", \"value\": $((10 * MIB)), \"kind\": \"manifest_get\"}"
    run_ocib inspect "$FX_ADDR/odd/man400:v1"
    [ "$status" -ne 0 ] || fail "the manifest was missing, inspect cannot succeed"
    run_ocib push "oci:$BATS_FILE_TMPDIR/small:v1" "$FX_ADDR/odd/hdr:v1"
    [ "$status" -eq 0 ] || { show_run; fail "push failed"; }
    proxy_fault FX "{\"type\": \"huge_header\", \"value\": $((10 * MIB)), \"kind\": \"manifest_get\"}"
    run_ocib inspect "$FX_ADDR/odd/hdr:v1"
    assert_failed 1 "response header is too large"
    [[ $err != *"Out of memory"* ]] || fail "still reported as Out of memory"
}

@test "a Retry-After too large for any integer falls back to bounded backoff" {
    proxy_fault FX '{"type": "fail429", "value": 99999999999999999999999, "kind": "manifest_put"}'
    push_ok "$BATS_FILE_TMPDIR/small" "$SMALL_DIGEST" "$FX_ADDR/retry/huge:v1" retry/huge v1
    assert_eq "fail429 fired" "$(fired FX fail429)" 1
}

# ambiguous_docs DIR MANIFEST: writes crafted variants of a manifest file.
ambiguous_docs() {
    local dir=$1 m=$2
    mkdir -p "$dir"
    jq -c '. + {manifests: [.config]}' "$m" >"$dir/both.json"
    jq -c '.mediaType = "application/vnd.oci.image.index.v1+json"' "$m" >"$dir/mtype.json"
}

@test "ambiguous manifests from a registry are refused (CVE-2021-41190): both manifests and layers, a contradicting mediaType" {
    skopeo copy -q --dest-tls-verify=false "oci:$BATS_FILE_TMPDIR/small:v1" \
        "docker://$REG_ADDR/amb/base:v1"
    ambiguous_docs "$T/docs" "$(layout_manifest "$BATS_FILE_TMPDIR/small" v1)"
    mkdir -p ctx
    printf 'hi\n' >ctx/f
    cat >ctx/ocib.json <<JSON
{"version": 1, "stages": [{"name": "app", "from": "$FX_ADDR/amb/base:v1", "layers": [{"copy": [{"src": ["f"], "dest": "/"}]}]}]}
JSON
    run_ocib build -C ctx --output oci:out
    [ "$status" -eq 0 ] || { show_run; fail "the clean base does not build"; return 1; }
    for doc in both mtype; do
        proxy_config FX "{\"clear_faults\": true, \"faults\": [{\"type\": \"replace_body\", \"value\": \"$T/docs/$doc.json\"}]}" >/dev/null
        run_ocib inspect "$FX_ADDR/amb/base:v1"
        assert_failed 1 "amb/base:v1" "ambiguous|contradicts" || return 1
        rm -rf "$OCIB_CACHE_DIR"
        run_ocib build -C ctx --output oci:out2
        assert_failed 1 "ambiguous|contradicts" || return 1
        [ ! -e out2 ] || fail "an output was written"
    done
}

@test "ambiguous manifests in an oci: layout and a docker-archive are refused, naming the digest" {
    local src=$BATS_FILE_TMPDIR/small
    ambiguous_docs "$T/docs" "$(layout_manifest "$src" v1)"
    for doc in both mtype; do
        rm -rf "lay-$doc"
        cp -r "$src" "lay-$doc"
        local d
        d=sha256:$(sha256sum "$T/docs/$doc.json" | cut -d' ' -f1)
        cp "$T/docs/$doc.json" "lay-$doc/blobs/sha256/${d#sha256:}"
        jq --arg d "$d" --argjson s "$(stat -c %s "$T/docs/$doc.json")" \
            '.manifests[0].digest = $d | .manifests[0].size = $s' "$src/index.json" >"lay-$doc/index.json"
        mkdir -p "ctx-$doc"
        printf 'hi\n' >"ctx-$doc/f"
        printf '{"version": 1, "stages": [{"name": "app", "from": "oci:../lay-%s:v1", "layers": [{"copy": [{"src": ["f"], "dest": "/"}]}]}]}\n' \
            "$doc" >"ctx-$doc/ocib.json"
        run_ocib build -C "ctx-$doc" --output oci:out
        assert_failed 1 "$d" "ambiguous|contradicts" || return 1
        run_ocib push "oci:lay-$doc:v1" "$FX_ADDR/amb/layout-$doc:v1"
        assert_failed 1 "ambiguous|contradicts" || return 1
        # The same layout as a docker-archive (index.json beside the blobs).
        tar -C "lay-$doc" -cf "arch-$doc.tar" oci-layout index.json blobs
        run_ocib push "docker-archive:arch-$doc.tar" "$FX_ADDR/amb/archive-$doc:v1"
        assert_failed 1 "$d" "ambiguous|contradicts" || return 1
        assert_eq "manifests pushed" "$(registry_count REG PUT "^/v2/amb/(layout|archive)-$doc/manifests/")" 0
    done
    # An index.json that is a manifest.
    rm -rf lay-idx && cp -r "$src" lay-idx
    jq '. + {layers: []}' "$src/index.json" >lay-idx/index.json
    run_ocib push "oci:lay-idx:v1" "$FX_ADDR/amb/layout-idx:v1"
    assert_failed 1 "index.json" "ambiguous"
}
