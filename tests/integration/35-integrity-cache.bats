#!/usr/bin/env bats
# The cache under concurrency, kills, power loss and outside writes (issue
# 10, defects 7-10): `cache prune` looping beside concurrent builds; builds
# SIGKILLed in a large layer leave no temporary bytes, while a live build's
# stay; every blob and entry is fsync'ed before its rename and its
# directory after (strace); output layouts share no inode with the cache,
# whose blobs are read-only, as root and as an unprivileged user.

load helpers

setup() {
    common_setup
}

teardown() {
    if [ -n "${PRUNE_LOOP_PID:-}" ]; then
        kill "$PRUNE_LOOP_PID" 2>/dev/null || true
        wait "$PRUNE_LOOP_PID" 2>/dev/null || true
    fi
    if [ -n "${TEST_USER:-}" ]; then
        userdel -r "$TEST_USER" >/dev/null 2>&1 || true
    fi
}

# make_ctx DIR N: a context of its own (variant N): three copy layers of a
# few files with 256 KiB of random bytes each, and a generated file.
make_ctx() {
    local d=$1 n=$2 l
    for l in a b c; do
        mkdir -p "$d/$l"
        head -c 262144 /dev/urandom >"$d/$l/data-$n.bin"
        printf 'layer %s of variant %s\n' "$l" "$n" >"$d/$l/name.txt"
    done
    cat >"$d/ocib.json" <<EOF
{"version": 1, "image": "registry.example.com/integrity/v$n", "stages": [
  {"name": "s", "from": "scratch", "layers": [
    {"name": "a", "copy": [{"src": ["a"], "dest": "/a/"}]},
    {"name": "b", "copy": [{"src": ["b"], "dest": "/b/"}]},
    {"name": "c", "copy": [{"src": ["c"], "dest": "/c/"}]},
    {"name": "gen", "files": [{"path": "/etc/variant", "content": "$n\n"}]}
  ]}
]}
EOF
}

# digest_of_run FILE: the digest in an ocib build's stdout file, or nothing.
digest_of_run() {
    [[ $(cat "$1") =~ ^[^@[:space:]]+@(sha256:[0-9a-f]{64})$ ]] && printf '%s\n' "${BASH_REMATCH[1]}"
}

# tmp_bytes CACHE: bytes of regular files under CACHE/tmp.
tmp_bytes() {
    find "$1/tmp" -type f -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}'
}

@test "cache prune --keep-bytes 0 looping beside 4 concurrent builds: every build succeeds with its digest, verify is clean" {
    local n refs=()
    for n in 0 1 2 3; do
        make_ctx "$T/ctx$n" "$n"
        build_ok -C "$T/ctx$n" --output "oci:$T/ref$n" --cache-dir "$T/refcache$n"
        refs[n]=$DIGEST
    done

    export OCIB_CACHE_DIR=$T/shared
    mkdir -p "$T/bg"
    (
        while [ ! -e "$T/stop" ]; do
            "$OCIB" cache prune --keep-bytes 0 >/dev/null 2>>"$T/bg/prune.err" </dev/null ||
                echo "prune exited $?" >>"$T/bg/prune.err"
        done
    ) 3>&- &
    PRUNE_LOOP_PID=$!

    # 6 rounds of 4 builds at once: cold, then hits the loop removes under
    # them, and every other round a changed source so new blobs are written
    local round pid failed=0 pids=() rc got
    for round in 1 2 3 4 5 6; do
        pids=()
        for n in 0 1 2 3; do
            (
                rc=0
                timeout -k 10 "$OCIB_TEST_TIMEOUT" "$OCIB" build -C "$T/ctx$n" \
                    --output "oci:$T/out-$round-$n" >"$T/bg/$round-$n.out" 2>"$T/bg/$round-$n.err" \
                    </dev/null || rc=$?
                echo "$rc" >"$T/bg/$round-$n.rc"
            ) 3>&- &
            pids+=("$!")
        done
        for pid in "${pids[@]}"; do wait "$pid"; done
        for n in 0 1 2 3; do
            rc=$(cat "$T/bg/$round-$n.rc")
            got=$(digest_of_run "$T/bg/$round-$n.out" || true)
            if [ "$rc" != 0 ] || [ "$got" != "${refs[n]}" ]; then
                echo "round $round build $n: exit $rc, digest '$got' (want ${refs[n]}): $(cat "$T/bg/$round-$n.err")" >&2
                failed=$((failed + 1))
            else
                assert_layout_sound "$T/out-$round-$n"
            fi
        done
    done
    touch "$T/stop"
    wait "$PRUNE_LOOP_PID"
    PRUNE_LOOP_PID=
    [ ! -s "$T/bg/prune.err" ] || fail "cache prune failed beside the builds: $(cat "$T/bg/prune.err")"
    [ "$failed" -eq 0 ] || fail "$failed of 24 builds failed while cache prune looped"
    run_ocib cache verify
    [ "$status" -eq 0 ] || { show_run; fail "cache verify after the prune loop"; }
    assert_contains "cache verify" "$out" "0 bad"
    # nothing is left pinned or half-written once every build is over
    run_ocib cache prune --keep-bytes 0
    [ "$status" -eq 0 ] || { show_run; fail "final cache prune"; }
    [ -z "$(find "$OCIB_CACHE_DIR/blobs/sha256" -type f)" ] || fail "blobs left after the builds ended"
    [ -z "$(find "$OCIB_CACHE_DIR/leases" -name 'l-*')" ] || fail "leases left: $(ls "$OCIB_CACHE_DIR/leases")"
}

# start_big_build NAME CTX: a build of CTX in the background (its pid in
# $BIG_PID), once a temporary file it made in the cache (in its lease's
# directory, named after its pid) holds more than 8 MiB (that file in
# $BIG_FILE).
start_big_build() {
    local name=$1 ctx=$2 i
    touch "$T/$name.start"
    "$OCIB" build -C "$ctx" --output "oci:$T/$name" >"$T/$name.out" 2>"$T/$name.err" </dev/null 3>&- &
    BIG_PID=$!
    for ((i = 0; i < 600; i++)); do
        BIG_FILE=$(find "$OCIB_CACHE_DIR/tmp" -path "*/l-$BIG_PID-*" -type f -size +8M 2>/dev/null | head -n1)
        # (a build without leases writes straight into tmp/)
        [ -n "$BIG_FILE" ] || BIG_FILE=$(find "$OCIB_CACHE_DIR/tmp" -maxdepth 1 -type f -size +8M \
            -newer "$T/$name.start" 2>/dev/null | head -n1)
        [ -n "$BIG_FILE" ] && return 0
        kill -0 "$BIG_PID" 2>/dev/null || break
        sleep 0.05
    done
    fail "build $name never wrote 8 MiB into $OCIB_CACHE_DIR/tmp: $(cat "$T/$name.err")"
}

@test "builds SIGKILLed in a 200 MB layer leave no temporary bytes after the next build or prune; a live build's stay" {
    mkdir -p "$T/big/data" "$T/small"
    head -c $((200 * 1024 * 1024)) /dev/urandom >"$T/big/data/blob.bin"
    cat >"$T/big/ocib.json" <<EOF
{"version": 1, "image": "registry.example.com/integrity/big", "stages": [
  {"from": "scratch", "layers": [{"name": "big", "copy": [{"src": ["data"], "dest": "/data/"}]}]}
]}
EOF
    printf 'small\n' >"$T/small/f"
    cat >"$T/small/ocib.json" <<EOF
{"version": 1, "image": "registry.example.com/integrity/small", "stages": [
  {"from": "scratch", "layers": [{"name": "f", "copy": [{"src": ["f"], "dest": "/f"}]}]}
]}
EOF
    local k left
    for k in 1 2 3; do
        start_big_build "killed-$k" "$T/big"
        kill -KILL "$BIG_PID"
        wait "$BIG_PID" || true
        [ -e "$BIG_FILE" ] || fail "killed build $k left no temporary file"
        echo "SIGKILLed build $k left $(stat -c %s "$BIG_FILE") bytes in $BIG_FILE" >&3
    done

    # the next build (of something else) removes them at once
    build_ok -C "$T/small" --output "oci:$T/small-out"
    assert_eq "temporary bytes after the next build" "$(tmp_bytes "$OCIB_CACHE_DIR")" 0

    # a live build writing its own big layer, and one more killed beside it
    mkdir -p "$T/big2/data"
    cp -l "$T/big/data/blob.bin" "$T/big2/data/blob.bin"
    sed 's#"/data/"#"/data2/"#' "$T/big/ocib.json" >"$T/big2/ocib.json"
    start_big_build live "$T/big2"
    local live_pid=$BIG_PID live=$BIG_FILE dead
    start_big_build "killed-4" "$T/big"
    kill -KILL "$BIG_PID"
    wait "$BIG_PID" || true
    dead=$BIG_FILE
    [ -e "$live" ] || fail "the killed build's start removed the live build's temporary file $live"
    run_ocib cache prune --keep-bytes 0
    [ "$status" -eq 0 ] || { show_run; fail "cache prune beside a live build"; }
    [ -e "$live" ] || fail "cache prune removed the live build's temporary file $live"
    [ ! -e "$dead" ] || fail "cache prune left the dead build's temporary file $dead"
    assert_eq "temporary files beside the live build" "$(find "$OCIB_CACHE_DIR/tmp" -type f)" "$live"
    wait "$live_pid" || fail "the live build failed: $(cat "$T/live.err")"
    [[ $(cat "$T/live.out") == *@sha256:* ]] || fail "the live build printed: $(cat "$T/live.out")"
    assert_layout_sound "$T/live"
    run_ocib cache verify
    [ "$status" -eq 0 ] || { show_run; fail "cache verify"; }
    assert_eq "temporary bytes once every build is over" "$(tmp_bytes "$OCIB_CACHE_DIR")" 0
}

@test "every blob and key entry published into the cache, and the output layout, is fsync'ed before its rename and its directory after (strace)" {
    need strace
    make_ctx "$T/ctx" 7
    local rc=0
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        strace -f -y -qq -s 4096 -o "$T/trace" -e trace=fsync,fdatasync,rename,renameat,renameat2 \
        "$OCIB" build -C "$T/ctx" --output "oci:$T/out" >"$T/build.out" 2>"$T/build.err" </dev/null || rc=$?
    [ "$rc" -eq 0 ] || fail "the traced build exited $rc: $(cat "$T/build.err")"
    assert_layout_sound "$T/out"
    run "$PY" "$BATS_TEST_DIRNAME/lib/cache-fsync-order.py" "$T/trace" "$OCIB_CACHE_DIR" "$T/out"
    echo "$output" >&3
    [ "$status" -eq 0 ] || fail "publishing order: $output"
}

# assert_output_apart OUT CACHE: no blob of layout OUT shares an inode with
# a cache blob, and every cache blob is 0444.
assert_output_apart() {
    local out=$1 cache=$2 f c
    for f in "$cache"/blobs/sha256/*; do
        assert_eq "mode of cache blob $(basename "$f")" "$(stat -c %a "$f")" 444 || return 1
    done
    for f in "$out"/blobs/sha256/*; do
        c=$cache/blobs/sha256/$(basename "$f")
        [ -e "$c" ] || continue
        [ "$(stat -c %d:%i "$f")" != "$(stat -c %d:%i "$c")" ] ||
            fail "output blob $f is the cache's inode" || return 1
        assert_eq "link count of output blob $(basename "$f")" "$(stat -c %h "$f")" 1 || return 1
    done
}

@test "a write into an output layout's blob does not reach the cache: verify stays clean, the rebuilt output is right" {
    need oci-image-tool
    make_ctx "$T/ctx" 8
    build_ok -C "$T/ctx" --output "oci:$T/out"
    local d1=$DIGEST layer
    layer=$(jq -r '.layers[0].digest' "$(layout_manifest "$T/out")")
    [ -e "$OCIB_CACHE_DIR/blobs/sha256/${layer#sha256:}" ] || fail "layer $layer is not in the cache"

    chmod u+w "$T/out/blobs/sha256/${layer#sha256:}"
    echo x >>"$T/out/blobs/sha256/${layer#sha256:}"
    assert_eq "cache blob after the write into the output" \
        "sha256:$(sha256sum "$OCIB_CACHE_DIR/blobs/sha256/${layer#sha256:}" | cut -d' ' -f1)" "$layer"
    run_ocib cache verify
    [ "$status" -eq 0 ] || { show_run; fail "cache verify after a write into the output"; }
    assert_contains "cache verify" "$out" "0 bad"
    assert_output_apart "$T/out" "$OCIB_CACHE_DIR"

    build_ok -C "$T/ctx" --output "oci:$T/out" --progress=plain
    assert_eq "digest of the rebuild" "$DIGEST" "$d1"
    [[ $err == *"layer a: cached"* ]] || fail "layer a was not served from the cache: $err"
    assert_layout_sound "$T/out"
    oci_validate "$T/out"
    assert_output_apart "$T/out" "$OCIB_CACHE_DIR"
}

@test "as an unprivileged user: cache blobs are 0444 and apart from the output; cache verify and prune work on them" {
    local u udir
    if [ "$(id -u)" -eq 0 ]; then
        need useradd userdel su
        u=ocib35-$$
        useradd -m "$u" || fail "useradd $u failed"
        TEST_USER=$u
        udir=$(getent passwd "$u" | cut -d: -f6)/work
    else
        u=$(id -un)
        udir=$T/user
    fi
    mkdir -p "$udir"
    make_ctx "$udir/ctx" 9
    [ "$(id -u)" -ne 0 ] || chown -R "$u:" "$udir"
    as_user() {
        local cmd="cd '$udir' && env OCIB_CACHE_DIR='$udir/cache' TMPDIR='$udir' $*"
        status=0
        if [ "$(id -u)" -eq 0 ]; then
            su "$u" -s /bin/sh -c "$cmd" >"$T/user.out" 2>"$T/user.err" </dev/null || status=$?
        else
            sh -c "$cmd" >"$T/user.out" 2>"$T/user.err" </dev/null || status=$?
        fi
        out=$(cat "$T/user.out")
        err=$(cat "$T/user.err")
    }
    as_user "$OCIB" build -C ctx --output "oci:$udir/out"
    [ "$status" -eq 0 ] || { show_run; fail "build as $u"; }
    local d1=$out layer blob
    assert_output_apart "$udir/out" "$udir/cache"
    layer=$(jq -r '.layers[1].digest' "$(layout_manifest "$udir/out")")
    blob=$udir/out/blobs/sha256/${layer#sha256:}
    as_user "chmod u+w '$blob' && echo x >> '$blob'"
    [ "$status" -eq 0 ] || { show_run; fail "$u cannot write its own output"; }
    as_user "$OCIB" cache verify
    [ "$status" -eq 0 ] || { show_run; fail "cache verify as $u"; }
    assert_contains "cache verify as $u" "$out" "0 bad"
    as_user "$OCIB" build -C ctx --output "oci:$udir/out"
    [ "$status" -eq 0 ] || { show_run; fail "rebuild as $u"; }
    assert_eq "rebuild as $u" "$out" "$d1"
    assert_layout_sound "$udir/out"
    as_user "$OCIB" cache prune --keep-bytes 0
    [ "$status" -eq 0 ] || { show_run; fail "cache prune as $u"; }
    [ -z "$(find "$udir/cache/blobs/sha256" -type f)" ] || fail "prune as $u left read-only blobs"
    [ -z "$(find "$udir/cache/tmp" -mindepth 1)" ] || fail "temporary files left: $(find "$udir/cache/tmp")"
}

@test "a kept stage root from an earlier boot (what a power loss may have torn) is dropped, never cloned into a build" {
    mkdir -p "$T/ctx"
    printf 'hi\n' >"$T/ctx/f"
    cat >"$T/ctx/ocib.json" <<EOF2
{"version": 1, "image": "registry.example.com/integrity/boot", "stages": [
  {"name": "a", "from": "scratch", "layers": [{"name": "f", "copy": [{"src": ["f"], "dest": "/f"}]}]},
  {"name": "b", "from": "scratch", "layers": [{"name": "g", "copy": [{"from": "a", "src": ["/f"], "dest": "/g"}]}]}
]}
EOF2
    build_ok -C "$T/ctx" --output "oci:$T/o1"
    local d1=$DIGEST kept
    kept=$(find "$OCIB_CACHE_DIR/rootfs" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended \
        -regex '.*/[0-9a-f]{64}')
    [ -n "$kept" ] || fail "stage a's root was not kept: $(ls -a "$OCIB_CACHE_DIR/rootfs")"
    # as a power loss could leave it: a file's bytes lost, in a root kept
    # in the boot before this one
    echo torn >"$kept/f"
    echo 00000000-0000-0000-0000-000000000000 >"$OCIB_CACHE_DIR/rootfs/.boot"
    build_ok -C "$T/ctx" --output "oci:$T/o2" --no-cache
    assert_eq "digest when the kept root is from an earlier boot" "$DIGEST" "$d1"
    assert_eq "boot of the kept roots" "$(cat "$OCIB_CACHE_DIR/rootfs/.boot")" \
        "$(cat /proc/sys/kernel/random/boot_id)"
    # roots kept in this boot are used again
    build_ok -C "$T/ctx" --output "oci:$T/o3" --no-cache
    assert_eq "digest from a root kept in this boot" "$DIGEST" "$d1"
}
