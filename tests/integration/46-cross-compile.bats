#!/usr/bin/env bats
# Cross-compiling for two platforms (issue 13, "Tests"): a two-stage spec
# whose build stage is "platform": "build" on the toolchain base that
# tests/bases/make-cross-base makes from this machine's packages (native gcc
# and gcc-aarch64-linux-gnu), and compiles a static C program with the
# compiler ${TARGETARCH} picks; the runtime stage, on a two-platform busybox
# base, copies the binary. Built for linux/amd64,linux/arm64 once (in
# setup_file, with this file's cache), then judged: the index (skopeo,
# oci-image-tool), each platform's binary (file), podman running each image
# (arm64 through qemu-user-static's binfmt_misc handler), the cache keys of
# the two targets' build stages, each manifest against a one-platform build,
# and a push to the real registry pulled back per platform by skopeo.

load helpers
load lib/registry
load lib/run-fixtures

APP_REPO=localhost:5000/ocib/cross-hello

setup_file() {
    need podman runc skopeo oci-image-tool file jq busybox tar || return 1
    export PODMAN_BASE=$BATS_FILE_TMPDIR/podman
    export REGISTRY_MAX_SECONDS=600
    local o
    export F=$BATS_FILE_TMPDIR
    binfmt_arm64_ready || return 1
    registry_start REG || return 1

    # The toolchain base, shared under build/bases (rebuilt only when the
    # packages, the script or ocib change), made with the ocib under test.
    export CROSS_BASE=$REPO_ROOT/build/bases/cross
    o=$(OCIB=$OCIB OCIB_CACHE_DIR=$F/base-cache "$REPO_ROOT/tests/bases/make-cross-base" "$CROSS_BASE" 2>&1) ||
        fail "tests/bases/make-cross-base failed: $o" || return 1
    export CROSS_TAG
    CROSS_TAG=$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$CROSS_BASE/index.json")

    # The two-platform busybox base.
    busybox_multiarch_ctx "$F/bbctx" || return 1
    base_build "$F/bbctx" "$F/bb" --platform linux/amd64,linux/arm64 || return 1

    write_cross_ctx "$F/app"
    export OCIB_FILE_CACHE=$F/cache
    OCIB_CACHE_DIR=$OCIB_FILE_CACHE "$OCIB" build -C "$F/app" --platform linux/amd64,linux/arm64 \
        --output "oci:$F/out:1" --progress=plain >"$F/build.out" 2>"$F/build.err" </dev/null ||
        { cat "$F/build.err" >&2; fail "the two-platform cross-compiling build failed"; return 1; }
}

teardown_file() {
    if [ -d "${PODMAN_BASE:-}" ]; then
        podman_cmd rm -a -f >/dev/null 2>&1 || true
        podman_cmd rmi -a -f >/dev/null 2>&1 || true
    fi
    registry_stop REG
}

setup() {
    common_setup
}

# write_cross_ctx DIR: hello.c (prints the architecture it was compiled for,
# and uname's machine) and the two-stage spec.
write_cross_ctx() {
    mkdir -p "$1"
    cat >"$1/hello.c" <<'EOF'
#include <stdio.h>
#include <sys/utsname.h>

#if defined(__aarch64__)
#define BUILT_FOR "aarch64"
#elif defined(__x86_64__)
#define BUILT_FOR "x86_64"
#else
#define BUILT_FOR "unknown"
#endif

int main(void)
{
    struct utsname u;

    if (uname(&u) != 0)
        return 1;
    printf("built for %s, running on %s\n", BUILT_FOR, u.machine);
    return 0;
}
EOF
    cat >"$1/ocib.json" <<EOF
{
  "version": 1,
  "image": "$APP_REPO",
  "stages": [
    {
      "name": "build",
      "from": "oci:$CROSS_BASE:$CROSS_TAG",
      "platform": "build",
      "workdir": "/src",
      "layers": [
        {"name": "src", "copy": [{"src": ["hello.c"], "dest": "/src/"}]},
        {"name": "compile", "run": "case \${TARGETARCH} in amd64) CC=cc ;; arm64) CC=aarch64-linux-gnu-gcc ;; *) exit 3 ;; esac && mkdir -p /out && \$CC -static -O2 -o /out/hello hello.c && echo compiled for \${TARGETARCH} on \${BUILDARCH} with \$CC"}
      ]
    },
    {
      "name": "runtime",
      "from": "oci:$F/bb:1",
      "layers": [
        {"name": "app", "copy": [{"from": "build", "src": ["/out/hello"], "dest": "/usr/local/bin/hello"}]}
      ],
      "config": {"cmd": ["/usr/local/bin/hello"]}
    }
  ]
}
EOF
}

# plat_digest DIR ARCH: the digest of the linux/ARCH manifest of the index
# that DIR's index.json names "1".
plat_digest() {
    local idx d
    idx=$(blob_path "$1" "$(layout_digest "$1" 1)") || return 1
    d=$(jq -r --arg a "$2" '[.manifests[] | select(.platform.os == "linux" and .platform.architecture == $a) | .digest] | .[]' "$idx")
    [[ $d =~ ^sha256:[0-9a-f]{64}$ ]] || fail "the index of $1 has no single linux/$2 manifest: $(cat "$idx")" || return 1
    printf '%s\n' "$d"
}

# extract_hello DIR MANIFEST_DIGEST DEST: /usr/local/bin/hello from the
# manifest's top layer, into DEST.
extract_hello() {
    local m d mt x=$BATS_TEST_TMPDIR/x.$RANDOM
    m=$(blob_path "$1" "$2") || return 1
    d=$(jq -r '.layers[-1].digest' "$m")
    mt=$(jq -r '.layers[-1].mediaType' "$m")
    mkdir -p "$x"
    decompress "$(blob_path "$1" "$d")" "$mt" | tar -xf - -C "$x" usr/local/bin/hello ||
        fail "the top layer of $2 holds no usr/local/bin/hello" || return 1
    mv "$x/usr/local/bin/hello" "$3"
}

# layer_lines STAGE LAYER: that layer's "built"/"cached" progress lines, in order.
layer_lines() {
    grep -E "^\[$1\] layer $2: (built|cached) " "$F/build.err" || true
}

# pull_platform ARCH: pulls the linux/ARCH image of $F/out:1 into podman's
# store; prints the image id.
pull_platform() {
    local o
    o=$(cd "$F" && podman_cmd pull -q --platform "linux/$1" oci:out:1 2>&1) ||
        fail "podman pull --platform linux/$1 oci:out:1 failed: $o" || return 1
    printf '%s\n' "$o" | tail -n1
}

@test "the two-platform build prints the index's digest; skopeo and oci-image-tool read an index of linux/amd64 and linux/arm64" {
    local ref idx raw plats m c a
    ref=$(cat "$F/build.out")
    [[ $ref =~ ^$APP_REPO@(sha256:[0-9a-f]{64})$ ]] || fail "stdout is not $APP_REPO@sha256:...: '$ref'"
    assert_eq "printed digest vs index.json" "${BASH_REMATCH[1]}" "$(layout_digest "$F/out" 1)"
    idx=$(blob_path "$F/out" "${BASH_REMATCH[1]}")
    for b in "$F"/out/blobs/sha256/*; do
        [ "$(sha256sum "$b" | cut -d' ' -f1)" = "$(basename "$b")" ] || fail "blob $b does not hash to its name"
    done

    raw=$(skopeo inspect --raw "oci:$F/out:1")
    assert_eq "skopeo: the layout's bytes" "$raw" "$(cat "$idx")"
    assert_eq "index mediaType" "$(jq -r .mediaType <<<"$raw")" application/vnd.oci.image.index.v1+json
    plats=$(jq -r '[.manifests[] | "\(.platform.os)/\(.platform.architecture)\(if .platform.variant then "/" + .platform.variant else "" end)"] | sort | join(",")' <<<"$raw")
    assert_eq "platforms" "$plats" "linux/amd64,linux/arm64"
    for a in amd64 arm64; do
        m=$(blob_path "$F/out" "$(plat_digest "$F/out" "$a")")
        assert_eq "$a manifest mediaType" "$(jq -r .mediaType "$m")" "$MT_MANIFEST"
        c=$(blob_path "$F/out" "$(jq -r .config.digest "$m")")
        assert_eq "$a config" "$(jq -r '"\(.os)/\(.architecture)"' "$c")" "linux/$a"
        # skopeo picks the same manifest for the architecture.
        assert_eq "skopeo --override-arch $a" \
            "$(skopeo --override-arch "$a" inspect "oci:$F/out:1" | jq -r .Architecture)" "$a"
    done
    oci_validate "$F/out"
}

@test "each platform's binary is built for that architecture: file says x86-64 for amd64 and ARM aarch64 for arm64, both static" {
    local f
    extract_hello "$F/out" "$(plat_digest "$F/out" amd64)" "$T/hello-amd64"
    extract_hello "$F/out" "$(plat_digest "$F/out" arm64)" "$T/hello-arm64"
    f=$(file -b "$T/hello-amd64")
    assert_contains "file of the amd64 binary" "$f" "x86-64"
    assert_contains "file of the amd64 binary" "$f" "statically linked"
    f=$(file -b "$T/hello-arm64")
    assert_contains "file of the arm64 binary" "$f" "ARM aarch64"
    assert_contains "file of the arm64 binary" "$f" "statically linked"
    [[ $(file -b "$T/hello-amd64") != *aarch64* ]] || fail "the amd64 binary is an aarch64 one"
}

@test "the build stage runs on the host for both targets, keyed per target: compile built twice with different digests, the copy layer cached for the second" {
    local src compile d1 d2
    grep -q '^\[build/compile\] compiled for amd64 on amd64 with cc$' "$F/build.err" ||
        fail "no 'compiled for amd64 on amd64 with cc' line: $(cat "$F/build.err")"
    grep -q '^\[build/compile\] compiled for arm64 on amd64 with aarch64-linux-gnu-gcc$' "$F/build.err" ||
        fail "no 'compiled for arm64 on amd64 with aarch64-linux-gnu-gcc' line: $(cat "$F/build.err")"
    src=$(layer_lines build src | sed -E 's/^\[build\] layer src: (built|cached) .*/\1/' | tr '\n' ' ')
    assert_eq "the src layer of the two targets" "$src" "built cached "
    compile=$(layer_lines build compile)
    [ "$(printf '%s\n' "$compile" | grep -c ': built ')" -eq 2 ] ||
        fail "the compile layer must be built once per target: $compile"
    d1=$(printf '%s\n' "$compile" | sed -n '1s/.*: built \(sha256:[0-9a-f]*\).*/\1/p')
    d2=$(printf '%s\n' "$compile" | sed -n '2s/.*: built \(sha256:[0-9a-f]*\).*/\1/p')
    [ -n "$d1" ] && [ -n "$d2" ] && [ "$d1" != "$d2" ] ||
        fail "the two targets' compile layers have the same digest: $compile"

    # A rebuild with the same cache: every layer of both platforms cached,
    # nothing compiled, the same index.
    export OCIB_CACHE_DIR=$OCIB_FILE_CACHE
    run_ocib build -C "$F/app" --platform linux/amd64,linux/arm64 \
        --output "oci:$T/again:1" --progress=plain
    [ "$status" -eq 0 ] || { show_run; fail "the rebuild failed"; }
    assert_eq "rebuild digest" "$out" "$(cat "$F/build.out")"
    ! grep -q '^\[build/compile\]' <<<"$err" || { show_run; fail "the rebuild compiled again"; }
    [ "$(grep -cE '^\[[^]]+\] layer [^:]+: cached ' <<<"$err")" -eq 6 ] ||
        { show_run; fail "the rebuild must serve 6 layers (3 per platform) from the cache"; }
    ! grep -qE '^\[[^]]+\] layer [^:]+: built ' <<<"$err" || { show_run; fail "the rebuild built a layer"; }
}

@test "podman runs the arm64 image through qemu (prints aarch64) and the amd64 one natively (prints x86_64)" {
    local id o
    [ "$(head -n1 /proc/sys/fs/binfmt_misc/qemu-aarch64)" = enabled ] || fail "the qemu-aarch64 handler is not enabled"
    id=$(pull_platform arm64)
    assert_eq "architecture of the pulled arm64 image" "$(podman_cmd image inspect "$id" --format '{{.Architecture}}')" arm64
    o=$(podman_run --platform linux/arm64 "$id" 2>&1) || fail "podman run of the arm64 image failed: $o"
    assert_eq "arm64 image output" "$o" "built for aarch64, running on aarch64"

    id=$(pull_platform amd64)
    assert_eq "architecture of the pulled amd64 image" "$(podman_cmd image inspect "$id" --format '{{.Architecture}}')" amd64
    o=$(podman_run --platform linux/amd64 "$id" 2>&1) || fail "podman run of the amd64 image failed: $o"
    assert_eq "amd64 image output" "$o" "built for x86_64, running on x86_64"
}

@test "each platform's manifest is byte-identical to a build for that platform alone (fresh cache)" {
    local a
    for a in amd64 arm64; do
        build_ok --repo "$APP_REPO" -C "$F/app" --platform "linux/$a" --output "oci:$T/only-$a:1" --progress=quiet
        assert_eq "one-platform linux/$a digest vs the index's" "$DIGEST" "$(plat_digest "$F/out" "$a")"
        assert_eq "one-platform linux/$a layout" "$(layout_digest "$T/only-$a" 1)" "$DIGEST"
    done
}

@test "push to the registry: the index and both manifests; skopeo pulls each platform back (--override-arch) with the layout's digests" {
    local dest=$REG_ADDR/ocib/cross-hello a want got f
    export OCIB_CACHE_DIR=$OCIB_FILE_CACHE
    build_ok --repo "$dest" -C "$F/app" --platform linux/amd64,linux/arm64 \
        --push --tag "$dest:1" --progress=quiet
    want=$(layout_digest "$F/out" 1)
    assert_eq "pushed digest" "$DIGEST" "$want"
    assert_eq "the registry's index (and every blob it references)" \
        "$(registry_check_image REG ocib/cross-hello 1)" "$want"
    skopeo inspect --raw --tls-verify=false "docker://$dest:1" >"$T/raw"
    assert_same_file "$T/raw" "$(blob_path "$F/out" "$want")"
    for a in amd64 arm64; do
        skopeo --override-arch "$a" --override-os linux copy -q --src-tls-verify=false \
            "docker://$dest:1" "oci:$T/pulled-$a:1" || fail "skopeo copy --override-arch $a failed"
        got=$(layout_digest "$T/pulled-$a" 1)
        assert_eq "skopeo --override-arch $a" "$got" "$(plat_digest "$F/out" "$a")"
        extract_hello "$T/pulled-$a" "$got" "$T/hello-$a"
        f=$(file -b "$T/hello-$a")
        case $a in
        amd64) assert_contains "pulled amd64 binary" "$f" "x86-64" ;;
        arm64) assert_contains "pulled arm64 binary" "$f" "ARM aarch64" ;;
        esac
    done
}
