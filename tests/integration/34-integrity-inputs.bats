#!/usr/bin/env bats
# Inputs from outside are checked before anything built from them is kept
# (issue 10): layers of local bases (`oci:` layouts, docker-archives, images
# a copy's `from` names) are verified against their digest, size and the
# config's diff_id; decompression bombs and huge (sparse) context files stop
# at limits (OCIB_MAX_LAYER_BYTES, OCIB_MAX_BUILD_BYTES,
# OCIB_MAX_LAYER_ENTRIES) with an error naming the layer or the file.  After
# every failure the cache holds no stage root, no temporary file and no
# layer key, and `ocib cache verify` finds nothing wrong.
#
# The bases are written by lib/input-layout.py, from scratch, so each test
# knows exactly which bytes are wrong.

load helpers

setup() {
    common_setup
    mkdir -p ctx
}

# layout ARGS...: lib/input-layout.py ARGS; sets $LAYERS (one "DIGEST
# DIFF_ID" line per layer).
layout() {
    LAYERS=$("$PY" "$BATS_TEST_DIRNAME/lib/input-layout.py" "$@") ||
        fail "input-layout.py $* failed" || return 1
}

# layer_digest K: the digest of layer K of the last layout.
layer_digest() {
    printf '%s\n' "$LAYERS" | sed -n "$(($1 + 1))p" | cut -d' ' -f1
}

# copy_spec IMAGE SRC: a spec whose one layer copies SRC out of IMAGE.
copy_spec() {
    cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/input", "stages": [
  {"from": "scratch", "layers": [
    {"name": "take", "copy": [{"from": "$1", "src": ["$2"], "dest": "/taken"}]}
  ]}
]}
EOF
}

# assert_cache_clean: no kept or half-made stage root, no temporary file, no
# layer key, and the blob store verifies.
# cache_leftovers: stage roots (not the boot marker), temporary files (a
# lease's temp directory may stay, empty) and layer keys in the cache.
cache_leftovers() {
    local c=$OCIB_CACHE_DIR
    {
        find "$c/rootfs" -mindepth 1 -maxdepth 1 ! -name .boot
        find "$c/tmp" -mindepth 1 ! -type d
        find "$c/keys" -mindepth 1
    } 2>/dev/null || true
}

assert_cache_clean() {
    local left
    left=$(cache_leftovers)
    [ -z "$left" ] || fail "the failed build left in the cache: $left" || return 1
    run_ocib cache verify
    [ "$status" -eq 0 ] || { show_run; fail "ocib cache verify failed"; return 1; }
    assert_contains "cache verify" "$out$err" " 0 bad" || return 1
}

GOOD='[{"name": "etc", "type": "dir"}, {"name": "etc/hello", "content": "hello\n"}]'

# ---------------------------------------------------------- verification

@test "a layout whose layer file holds other bytes than its digest fails naming the layer and the layout, and nothing of it is kept" {
    layout --swap-blob 0 "$T/base" "$GOOD"
    local d
    d=$(layer_digest 0)
    copy_spec "oci:$T/base:1" /etc/hello
    run_ocib build -C ctx --output "oci:$T/out"
    assert_failed 1 "layer $d" "$T/base/blobs/sha256/${d#sha256:}" "does not match its digest"
    assert_no_output "$T/out"
    assert_cache_clean

    # The same image with its real bytes builds, and gets them.
    rm -rf "$T/base"
    layout "$T/base" "$GOOD"
    build_ok -C ctx --output "oci:$T/out"
    umoci_unpack "$T/out" latest "$T/bundle"
    assert_eq "copied file" "$(cat "$T/bundle/rootfs/taken")" hello
}

@test "a layout layer that does not decompress to the config's diff_id fails naming both" {
    layout --bad-diff-id 0 "$T/base" "$GOOD"
    local d diff
    d=$(layer_digest 0)
    # The diff_id input-layout.py writes instead of the real one.
    diff=sha256:$(printf 'not the tar of layer 0' | sha256sum | cut -d' ' -f1)
    copy_spec "oci:$T/base:1" /etc/hello
    run_ocib build -C ctx --output "oci:$T/out"
    assert_failed 1 "layer $d" "$T/base/blobs/sha256" "diff_id is $diff"
    assert_no_output "$T/out"
    assert_cache_clean
}

@test "a layout layer whose size differs from its descriptor's fails naming the layer" {
    layout --bad-size 0 "$T/base" "$GOOD"
    local d
    d=$(layer_digest 0)
    copy_spec "oci:$T/base:1" /etc/hello
    run_ocib build -C ctx --output "oci:$T/out"
    assert_failed 1 "layer $d" "$T/base/blobs/sha256" "its image says"
    assert_cache_clean
}

@test "a layout config whose size differs from its descriptor's is refused" {
    layout --bad-config-size "$T/base" "$GOOD"
    copy_spec "oci:$T/base:1" /etc/hello
    run_ocib build -C ctx --output "oci:$T/out"
    assert_failed 1 "$T/base" "but its descriptor says"
    assert_cache_clean
}

@test "a local base stage (from: oci:) with a wrong layer is refused before its root is kept" {
    layout --bad-diff-id 1 "$T/base" "$GOOD" '[{"name": "etc/more", "content": "more\n"}]'
    local d
    d=$(layer_digest 1)
    cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/input", "stages": [
  {"name": "b", "from": "oci:$T/base:1", "layers": [{"name": "f", "files": [{"path": "/x", "content": "x"}]}]},
  {"from": "scratch", "layers": [{"name": "take", "copy": [{"from": "b", "src": ["/etc/hello"], "dest": "/taken"}]}]}
]}
EOF
    run_ocib build -C ctx --output "oci:$T/out"
    assert_failed 1 "layer $d" "diff_id"
    assert_no_output "$T/out"
    local kept
    kept=$(find "$OCIB_CACHE_DIR/rootfs" -mindepth 1 -maxdepth 1 \( -name 'work[.-]*' -o -name 'save[.-]*' \))
    [ -z "$kept" ] || fail "half-made roots left: $kept"
}

@test "a docker-archive base whose layer does not match the config's diff_id is refused" {
    layout --docker-archive --bad-diff-id 0 "$T/base.tar" "$GOOD"
    local d
    d=$(layer_digest 0)
    copy_spec "docker-archive:$T/base.tar" /etc/hello
    run_ocib build -C ctx --output "oci:$T/out"
    assert_failed 1 "layer $d" "diff_id"
    assert_no_output "$T/out"
    [ -z "$(cache_leftovers)" ] ||
        fail "the failed build left a root, a temporary file or a key"
}

# ------------------------------------------------------------- limits

@test "a gzip bomb base layer stops at OCIB_MAX_LAYER_BYTES, naming the layer, before anything is written; a raised limit takes it" {
    layout "$T/base" zeros:big:67108864
    local d
    d=$(layer_digest 0)
    [ "$(stat -c %s "$T/base/blobs/sha256/${d#sha256:}")" -lt 1000000 ] || fail "the bomb is not small"
    copy_spec "oci:$T/base:1" /big
    OCIB_MAX_LAYER_BYTES=16M run_ocib build -C ctx --output "oci:$T/out"
    assert_failed 1 "layer $d: more than 16777216 bytes uncompressed" "OCIB_MAX_LAYER_BYTES"
    assert_no_output "$T/out"
    assert_cache_clean

    OCIB_MAX_LAYER_BYTES=1G build_ok -C ctx --output "oci:$T/out"
    umoci_unpack "$T/out" latest "$T/bundle"
    assert_eq "size of the copied file" "$(stat -c %s "$T/bundle/rootfs/taken")" 67108864
}

@test "the layers one build unpacks stop at OCIB_MAX_BUILD_BYTES with the per-layer default, naming the layer that crossed it" {
    layout "$T/base" zeros:a:12582912 zeros:b:12582912
    local d
    d=$(layer_digest 1)
    copy_spec "oci:$T/base:1" /a
    OCIB_MAX_BUILD_BYTES=20M run_ocib build -C ctx --output "oci:$T/out"
    assert_failed 1 "layer $d: the build's layers are more than 20971520 bytes" "OCIB_MAX_BUILD_BYTES"
    assert_cache_clean
}

@test "a small layer of a million and one entries stops at the default entry limit; OCIB_MAX_LAYER_ENTRIES sets it" {
    layout "$T/base" files:1000001
    local d
    d=$(layer_digest 0)
    [ "$(stat -c %s "$T/base/blobs/sha256/${d#sha256:}")" -lt 20000000 ] || fail "the layer is not small"
    copy_spec "oci:$T/base:1" /f7
    run_ocib build -C ctx --output "oci:$T/out"
    assert_failed 1 "layer $d: more than 1000000 entries" "OCIB_MAX_LAYER_ENTRIES"
    assert_cache_clean

    rm -rf "$T/base"
    layout "$T/base" files:10
    d=$(layer_digest 0)
    OCIB_MAX_LAYER_ENTRIES=9 run_ocib build -C ctx --output "oci:$T/out"
    assert_failed 1 "layer $d: more than 9 entries"
    OCIB_MAX_LAYER_ENTRIES=10 build_ok -C ctx --output "oci:$T/out"
}

@test "bad limit values are usage errors naming the variable" {
    local var v
    copy_spec "oci:$T/none:1" /x
    for var in OCIB_MAX_LAYER_BYTES OCIB_MAX_BUILD_BYTES OCIB_MAX_LAYER_ENTRIES; do
        for v in "" 0 -1 12X 1.5G " 5" 99999999999999999999999; do
            env "$var=$v" "$OCIB" build -C ctx --output "oci:$T/out" >"$T/o" 2>"$T/e" </dev/null && status=0 || status=$?
            out=$(cat "$T/o") err=$(cat "$T/e")
            assert_failed 2 "^ocib: $var: " || fail "$var='$v'"
        done
    done
    OCIB_MAX_LAYER_BYTES=20T OCIB_MAX_LAYER_ENTRIES=5 run_ocib build -C ctx --output "oci:$T/out"
    [ "$status" -eq 1 ] || { show_run; fail "valid limits must pass the command line"; }
}

@test "a 1 TB sparse file in the context is refused at once, naming it, and leaves no temporary blob" {
    truncate -s 1T ctx/huge.img
    echo small >ctx/small.txt
    cat >ctx/ocib.json <<'EOF'
{"version": 1, "image": "localhost:5000/ocib/input", "stages": [
  {"from": "scratch", "layers": [{"name": "data", "copy": [{"src": ["huge.img", "small.txt"], "dest": "/data/"}]}]}
]}
EOF
    local t0=$SECONDS
    OCIB_TEST_TIMEOUT=60 run_ocib build -C ctx --output "oci:$T/out"
    assert_failed 1 "'huge.img'" "1099511627776 bytes \(sparse\)" "OCIB_MAX_LAYER_BYTES"
    [ $((SECONDS - t0)) -lt 30 ] || fail "refusing took $((SECONDS - t0)) s"
    assert_no_output "$T/out"
    assert_cache_clean
}

@test "context files that together exceed the layer limit are refused before one is read" {
    head -c 700000 /dev/zero >ctx/a
    head -c 700000 /dev/zero >ctx/b
    cat >ctx/ocib.json <<'EOF'
{"version": 1, "image": "localhost:5000/ocib/input", "stages": [
  {"from": "scratch", "layers": [{"name": "data", "copy": [{"src": ["a", "b"], "dest": "/d/"}]}]}
]}
EOF
    OCIB_MAX_LAYER_BYTES=1M run_ocib build -C ctx --output "oci:$T/out"
    assert_failed 1 "layer data: its files are 1400000 bytes" "OCIB_MAX_LAYER_BYTES"
    assert_cache_clean
    OCIB_MAX_LAYER_BYTES=2M build_ok -C ctx --output "oci:$T/out"
}

# ------------------------------------------------ copy destinations

LINKS='[{"name": "srv", "type": "dir"}, {"name": "srv/keep", "content": "base\n"},
        {"name": "app", "type": "symlink", "linkname": "/srv"},
        {"name": "rel", "type": "symlink", "linkname": "srv"},
        {"name": "top", "type": "symlink", "linkname": "/"},
        {"name": "esc", "type": "symlink", "linkname": "../../../../srv"}]'

# links_ctx: a context whose layers copy through the base's symlinks.
links_ctx() {
    echo hi >ctx/f.txt
    mkdir -p ctx/d
    echo inner >ctx/d/inner
    cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/links", "stages": [
  {"from": "oci:$T/base:1", "layers": [
    {"name": "a", "copy": [{"src": ["f.txt"], "dest": "/app/"}]},
    {"name": "b", "copy": [{"src": ["d"], "dest": "/rel/d2"}, {"src": ["f.txt"], "dest": "/top/f-top"},
                           {"src": ["f.txt"], "dest": "/esc/f-esc"}]},
    {"name": "c", "files": [{"path": "/app/made", "content": "m\n"}]}
  ]}
]}
EOF
}

@test "copy and files destinations resolve the base's symlinks inside the root: the links survive, the files land at their targets" {
    layout "$T/base" "$LINKS"
    links_ctx
    build_ok -C ctx --output "oci:$T/out"
    local first=$DIGEST
    umoci_unpack "$T/out" latest "$T/bundle"
    local r=$T/bundle/rootfs
    [ -L "$r/app" ] || fail "/app is no longer a symlink: $(ls -ld "$r/app")"
    assert_eq "/app" "$(readlink "$r/app")" /srv
    [ -L "$r/rel" ] && [ -L "$r/top" ] && [ -L "$r/esc" ] || fail "a symlink of the base was replaced"
    assert_eq "/srv/f.txt (copied to /app/)" "$(cat "$r/srv/f.txt")" hi
    assert_eq "/srv/d2/inner (copied to /rel/d2)" "$(cat "$r/srv/d2/inner")" inner
    assert_eq "/f-top (copied to /top/f-top, top -> /)" "$(cat "$r/f-top")" hi
    assert_eq "/srv/f-esc (esc -> ../../../../srv, clamped at the root)" "$(cat "$r/srv/f-esc")" hi
    assert_eq "/srv/made (a files path through /app)" "$(cat "$r/srv/made")" m
    assert_eq "/srv/keep (the base's file)" "$(cat "$r/srv/keep")" base
    # No layer of ours names a path through a link.
    local m l
    m=$(jq -r '.manifests[0].digest' "$T/out/index.json")
    for l in $(jq -r '.layers[1:][].digest' "$T/out/blobs/sha256/${m#sha256:}"); do
        if tar tzf "$T/out/blobs/sha256/${l#sha256:}" | grep -Eq '^(\./)?(app|rel|top|esc)(/|$)|\.\.'; then
            fail "layer $l has entries through a symlink: $(tar tzf "$T/out/blobs/sha256/${l#sha256:}" | tr '\n' ' ')"
        fi
    done

    # The resolution is decided by the parent layers, which the key covers:
    # a rebuild hits every layer, and a fresh cache gives the same image.
    build_ok -C ctx --output "oci:$T/out2"
    assert_eq "rebuild digest" "$DIGEST" "$first"
    [[ $err == *"layer a: cached"* && $err == *"layer b: cached"* && $err == *"layer c: cached"* ]] ||
        { show_run; fail "the rebuild missed a layer"; }
    OCIB_CACHE_DIR=$T/cache-fresh build_ok -C ctx --output "oci:$T/out3"
    assert_eq "digest from a fresh cache" "$DIGEST" "$first"
}

@test "a copy destination through a symlink loop in the base fails naming the destination" {
    layout "$T/base" '[{"name": "l1", "type": "symlink", "linkname": "l2"}, {"name": "l2", "type": "symlink", "linkname": "/l1"}]'
    echo hi >ctx/f.txt
    cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/links", "stages": [
  {"from": "oci:$T/base:1", "layers": [{"name": "a", "copy": [{"src": ["f.txt"], "dest": "/l1/x"}]}]}
]}
EOF
    run_ocib build -C ctx --output "oci:$T/out"
    assert_failed 1 "layer a" "destination '/l1" "too many levels of symlinks"
    assert_no_output "$T/out"
}
