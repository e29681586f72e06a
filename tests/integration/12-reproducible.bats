#!/usr/bin/env bats
# Reproducible builds, as an auditor checks them: the same spec and context
# content with the same SOURCE_DATE_EPOCH give byte-identical images whatever
# the checkout path, umask, owner, mtimes, TMPDIR and cache state.

load helpers

setup() {
    common_setup
}

# messy_copy SRC DEST: DEST has SRC's content but another path, umask 0077
# modes, other mtimes and another owner.
messy_copy() {
    mkdir -p "$(dirname "$2")"
    (
        umask 0077
        # Without -p, cp applies the umask to the source modes (0600, 0700)
        # and stamps the current time.
        cp -r "$1" "$2"
    )
    find "$2" -exec touch -h -d '2001-02-03 04:05:06' {} +
    find "$2" -type f -name '*.txt' -exec touch -d '2024-07-08 09:10:11' {} +
    chown -R -h 4321:4321 "$2"
    # cp keeps symlinks as symlinks; make sure the copy really differs in mode.
    [ "$(stat -c %a "$2/ocib.json")" = 600 ] || fail "umask 0077 copy has mode $(stat -c %a "$2/ocib.json")"
}

# blob_list DIR: the sorted blob names of a layout.
blob_list() {
    (cd "$1/blobs/sha256" && ls | LC_ALL=C sort)
}

@test "two checkouts at different paths, umask, owners, mtimes and TMPDIR give the same image for the same SOURCE_DATE_EPOCH" {
    local ex a b da db
    for ex in hello layered; do
        a=$(copy_example "$ex" "$T/$ex/checkout-one/ctx")
        messy_copy "$EXAMPLES/$ex" "$T/$ex/another/place/ctx"
        b=$T/$ex/another/place/ctx
        mkdir -p "$T/tmp-a" "$T/tmp-b/deeper"

        (
            cd "$a"
            umask 0022
            export SOURCE_DATE_EPOCH=1700000000 TMPDIR=$T/tmp-a OCIB_CACHE_DIR=$T/cache-a
            build_ok --output "oci:$T/$ex/out-a"
            echo "$DIGEST" >"$T/$ex/digest-a"
        )
        (
            cd "$T"
            umask 0077
            export TMPDIR=$T/tmp-b/deeper OCIB_CACHE_DIR=$T/cache-b
            build_ok -C "$b" --source-date-epoch 1700000000 --output "oci:$T/$ex/out-b"
            echo "$DIGEST" >"$T/$ex/digest-b"
        )
        da=$(cat "$T/$ex/digest-a")
        db=$(cat "$T/$ex/digest-b")
        [ "$da" = "$db" ] || fail "$ex: digests differ: $da vs $db
blobs only in one: $(diff <(blob_list "$T/$ex/out-a") <(blob_list "$T/$ex/out-b"))"
        assert_eq "$ex: blobs" "$(blob_list "$T/$ex/out-a")" "$(blob_list "$T/$ex/out-b")"
        # The epoch is what the image records.
        local c m ref n i
        ref=$(tag_of "$(jq -r .image "$a/ocib.json")")
        c=$(layout_config "$T/$ex/out-a" "${ref:-latest}")
        assert_eq "$ex: created" "$(jq -r .created "$c")" "$(rfc3339 1700000000)"
        m=$(layout_manifest "$T/$ex/out-a" "${ref:-latest}")
        n=$(jq '.layers | length' "$m")
        for ((i = 0; i < n; i++)); do
            assert_layer_canonical "$T/$ex/out-a" "$i" 1700000000 "${ref:-latest}"
        done
    done
}

@test "SOURCE_DATE_EPOCH and --source-date-epoch are the same knob; unset means 0" {
    local ctx d0 d1 d2 d3
    ctx=$(copy_example hello)
    build_ok -C "$ctx" --output "oci:$T/unset"
    d0=$DIGEST
    build_ok -C "$ctx" --source-date-epoch 0 --no-cache --output "oci:$T/zero"
    assert_eq "unset vs --source-date-epoch 0" "$DIGEST" "$d0"
    SOURCE_DATE_EPOCH=1234567890 build_ok -C "$ctx" --no-cache --output "oci:$T/env"
    d1=$DIGEST
    build_ok -C "$ctx" --source-date-epoch 1234567890 --no-cache --output "oci:$T/flag"
    d2=$DIGEST
    assert_eq "SOURCE_DATE_EPOCH=1234567890 vs --source-date-epoch 1234567890" "$d2" "$d1"
    [ "$d1" != "$d0" ] || fail "a different epoch gave the same digest $d0"
    assert_eq "created" "$(jq -r .created "$(layout_config "$T/env")")" "$(rfc3339 1234567890)"
    local m
    m=$(layout_manifest "$T/env")
    assert_layer_canonical "$T/env" 0 1234567890
    assert_eq "manifest created annotation" \
        "$(jq -r '.annotations["org.opencontainers.image.created"]' "$m")" "$(rfc3339 1234567890)"
    # Layer blobs change with the epoch (tar mtimes), not just the config.
    [ "$(jq -c '[.layers[].digest]' "$m")" != "$(jq -c '[.layers[].digest]' "$(layout_manifest "$T/unset")")" ] ||
        fail "layer digests ignore the epoch"
    SOURCE_DATE_EPOCH=999 build_ok -C "$ctx" --source-date-epoch 1234567890 --no-cache --output "oci:$T/both"
    d3=$DIGEST
    assert_eq "--source-date-epoch wins over SOURCE_DATE_EPOCH" "$d3" "$d1"
}

@test "a warm cache gives the same image as --no-cache, and never serves stale content" {
    local ctx d1
    ctx=$(copy_example layered)
    build_ok -C "$ctx" --output "oci:$T/cold"
    d1=$DIGEST
    build_ok -C "$ctx" --output "oci:$T/warm"
    assert_eq "warm cache" "$DIGEST" "$d1"
    build_ok -C "$ctx" --no-cache --output "oci:$T/nocache"
    assert_eq "--no-cache" "$DIGEST" "$d1"
    build_ok -C "$ctx" --cache-dir "$T/other-cache" --output "oci:$T/othercache"
    assert_eq "--cache-dir elsewhere" "$DIGEST" "$d1"
    assert_eq "blobs" "$(blob_list "$T/warm")" "$(blob_list "$T/nocache")"

    # Touching a file (mtime only) changes nothing.
    touch -d '2030-01-01' "$ctx/app/lib/util.txt"
    build_ok -C "$ctx" --output "oci:$T/touched"
    assert_eq "after touch" "$DIGEST" "$d1"

    # Same size, same mtime, new content: the image must change.
    local mtime
    mtime=$(stat -c %Y "$ctx/app/lib/util.txt")
    printf 'HELPER LIBRARY\n' >"$ctx/app/lib/util.txt"
    touch -d "@$mtime" "$ctx/app/lib/util.txt"
    build_ok -C "$ctx" --output "oci:$T/changed"
    [ "$DIGEST" != "$d1" ] || fail "changed file content, same digest: the cache served a stale layer"
    umoci_unpack "$T/changed" 1.0 "$T/bundle"
    assert_same_file "$ctx/app/lib/util.txt" "$T/bundle/rootfs/opt/app/lib/util.txt"
    # ... and only the layers that copy it change.
    assert_eq "unchanged layers of stage base" \
        "$(jq -c '[.layers[:2][].digest]' "$(layout_manifest "$T/changed" 1.0)")" \
        "$(jq -c '[.layers[:2][].digest]' "$(layout_manifest "$T/cold" 1.0)")"

    # A new file matched by the glob changes the image too.
    local d2=$DIGEST
    echo charlie >"$ctx/src/c.txt"
    build_ok -C "$ctx" --output "oci:$T/newfile"
    [ "$DIGEST" != "$d2" ] || fail "a new file matching src/*.txt did not change the image"
    # A change to an excluded or ignored file does not.
    local d3=$DIGEST
    echo more >>"$ctx/app/lib/cache/blob.bin"
    echo more >>"$ctx/app/lib/scratch.tmp"
    build_ok -C "$ctx" --output "oci:$T/excluded"
    assert_eq "after changing excluded files" "$DIGEST" "$d3"
}

@test "zstd layers are reproducible too, and compression changes the digest" {
    local ctx dz
    ctx=$(copy_example hello)
    build_ok -C "$ctx" --compression zstd --output "oci:$T/z1"
    dz=$DIGEST
    messy_copy "$EXAMPLES/hello" "$T/messy"
    TMPDIR=$T/tmp OCIB_CACHE_DIR=$T/cache2 build_ok -C "$T/messy" --compression zstd --output "oci:$T/z2"
    assert_eq "zstd digests" "$DIGEST" "$dz"
    build_ok -C "$ctx" --output "oci:$T/g"
    [ "$DIGEST" != "$dz" ] || fail "gzip and zstd images have the same digest"
}

@test "--tag changes only the names, never the image digest; --target picks another image" {
    local ctx d
    ctx=$(copy_example layered)
    build_ok -C "$ctx" --output "oci:$T/a"
    d=$DIGEST
    build_ok --repo localhost:5000/other/name -C "$ctx" --tag localhost:5000/other/name:x --output "oci:$T/b"
    assert_eq "digest with --tag" "$DIGEST" "$d"
    build_ok -C "$ctx" --target app --output "oci:$T/c"
    assert_eq "--target of the last stage" "$DIGEST" "$d"
    build_ok -C "$ctx" --target base --output "oci:$T/d"
    [ "$DIGEST" != "$d" ] || fail "--target base gave the default target's digest"
}

@test "the docker-archive output is byte-identical across identical builds" {
    local ctx
    ctx=$(copy_example layered)
    build_ok -C "$ctx" --output "docker-archive:$T/one.tar"
    build_ok -C "$ctx" --no-cache --output "docker-archive:$T/two.tar"
    cmp "$T/one.tar" "$T/two.tar" || fail "two docker-archive outputs of the same build differ"
}

@test "the order files were created in (directory order) does not change the digest" {
    local i d1
    mkdir -p one/d two/d
    for i in $(seq 1 40); do echo "file $i" >"one/d/f$i.txt"; done
    for i in $(seq 40 -1 1); do echo "file $i" >"two/d/f$i.txt"; done
    for c in one two; do
        echo '{"version": 1, "image": "localhost:5000/ocib/order", "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["d", "d/*.txt"], "dest": "/d/"}]}]}]}' >"$c/ocib.json"
    done
    build_ok -C one --output "oci:$T/out-one"
    d1=$DIGEST
    build_ok -C two --output "oci:$T/out-two"
    assert_eq "digest of the reversed-order tree" "$DIGEST" "$d1"
}

@test "concurrent builds sharing one cache all succeed with the same digest" {
    local ctx i pids=() digests
    ctx=$(copy_example layered)
    head -c 8000000 /dev/urandom >"$ctx/app/lib/big.bin"
    for i in 1 2 3 4; do
        (
            "$OCIB" build -C "$ctx" --progress=quiet --output "oci:$T/out$i" >"$T/digest$i" 2>"$T/err$i" </dev/null
        ) &
        pids+=($!)
    done
    for i in 1 2 3 4; do
        wait "${pids[$((i - 1))]}" || fail "concurrent build $i failed: $(cat "$T/err$i")"
    done
    digests=$(cat "$T"/digest? | sort -u)
    [ "$(printf '%s\n' "$digests" | wc -l)" -eq 1 ] || fail "concurrent builds disagree: $digests"
    for i in 1 2 3 4; do
        assert_layout_sound "$T/out$i"
    done
    build_ok -C "$ctx" --no-cache --output "oci:$T/fresh"
    assert_eq "cached vs --no-cache" "$REF" "$digests"
}

@test "a build killed at any moment leaves no output, and the cache still gives the right image" {
    local ctx t want
    ctx=$(copy_example layered)
    head -c 40000000 /dev/urandom >"$ctx/app/lib/big.bin"
    OCIB_CACHE_DIR=$T/reference build_ok -C "$ctx" --output "oci:$T/reference-out"
    want=$DIGEST
    for t in 0.1 0.3 0.5 0.8 1.2; do
        timeout -s KILL "$t" "$OCIB" build -C "$ctx" --progress=quiet --output "oci:$T/killed" \
            --output "docker-archive:$T/killed.tar" >/dev/null 2>&1 </dev/null || true
        if [ -e "$T/killed" ]; then
            # A layout may appear only once complete.
            assert_layout_sound "$T/killed"
            rm -rf "$T/killed" "$T/killed.tar"
        fi
    done
    build_ok -C "$ctx" --output "oci:$T/after"
    assert_eq "digest after interrupted builds" "$DIGEST" "$want"
    assert_layout_sound "$T/after"
}

@test "the cache lives in OCIB_CACHE_DIR, else XDG_CACHE_HOME/ocib, else ~/.cache/ocib, else --cache-dir says where" {
    local ctx
    ctx=$(copy_example hello)
    build_ok -C "$ctx" --output "oci:$T/a"
    [ -n "$(find "$OCIB_CACHE_DIR" -type f 2>/dev/null)" ] || fail "nothing cached in OCIB_CACHE_DIR=$OCIB_CACHE_DIR"

    mkdir -p "$T/home"
    (
        unset OCIB_CACHE_DIR
        export XDG_CACHE_HOME=$T/xdg HOME=$T/home
        build_ok -C "$ctx" --output "oci:$T/b"
    )
    [ -n "$(find "$T/xdg/ocib" -type f 2>/dev/null)" ] || fail "nothing cached in \$XDG_CACHE_HOME/ocib"
    (
        unset OCIB_CACHE_DIR XDG_CACHE_HOME
        export HOME=$T/home
        build_ok -C "$ctx" --output "oci:$T/c"
    )
    [ -n "$(find "$T/home/.cache/ocib" -type f 2>/dev/null)" ] || fail "nothing cached in ~/.cache/ocib"
    (
        export HOME=$T/home2
        build_ok -C "$ctx" --cache-dir "$T/explicit" --output "oci:$T/d"
    )
    [ -n "$(find "$T/explicit" -type f 2>/dev/null)" ] || fail "nothing cached in --cache-dir"
    [ ! -e "$T/home2/.cache/ocib" ] || fail "--cache-dir given, yet ~/.cache/ocib was used"
}

@test "the flag and the environment take SOURCE_DATE_EPOCH through one parser, with one range" {
    local ctx
    ctx=$(copy_example hello)
    # The last second RFC 3339 can write is accepted by both.
    build_ok -C "$ctx" --source-date-epoch 253402300799 --no-cache --output "oci:$T/max-flag"
    local d1=$DIGEST
    SOURCE_DATE_EPOCH=253402300799 build_ok -C "$ctx" --no-cache --output "oci:$T/max-env"
    assert_eq "flag and environment at the maximum" "$DIGEST" "$d1"
    assert_eq "created" "$(jq -r .created "$(layout_config "$T/max-env")")" "9999-12-31T23:59:59Z"
    # One second later, a sign, or garbage: both refuse, exit 2, naming the value.
    local v
    for v in 253402300800 -5 +5 12x; do
        run_ocib build -C "$ctx" --source-date-epoch "$v" --output "oci:$T/bad-flag"
        [ "$status" -eq 2 ] || fail "--source-date-epoch $v: exit $status, expected 2: $err"
        [[ "$err" == *"--source-date-epoch: invalid value '$v'"* ]] || fail "--source-date-epoch $v: $err"
        SOURCE_DATE_EPOCH=$v run_ocib build -C "$ctx" --output "oci:$T/bad-env"
        [ "$status" -eq 2 ] || fail "SOURCE_DATE_EPOCH=$v: exit $status, expected 2: $err"
        [[ "$err" == *"invalid SOURCE_DATE_EPOCH '$v'"* ]] || fail "SOURCE_DATE_EPOCH=$v: $err"
    done
    [ ! -e "$T/bad-flag" ] && [ ! -e "$T/bad-env" ] || fail "a refused epoch left an output"
}
