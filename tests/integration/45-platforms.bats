#!/usr/bin/env bats
# Several platforms in one build (issue 13): `--platform linux/amd64,linux/arm64`
# gives an OCI image index whose every manifest is what a one-platform build
# gives; bases are picked per platform from their index; an arm64 `run`
# layer executes under qemu-user-static through binfmt_misc; the index is
# pushed to the real registry and each platform pulled back with skopeo;
# podman runs both; and the mistakes (a platform no base has, no emulator,
# an unknown platform, a docker-archive of two platforms) fail clearly.

load helpers
load lib/registry
load lib/run-fixtures

setup_file() {
    need podman runc umoci skopeo busybox jq oci-image-tool || return 1
    binfmt_arm64_ready || return 1
    export PODMAN_BASE=$BATS_FILE_TMPDIR/podman
    export REGISTRY_MAX_SECONDS=600
    registry_start REG || return 1
    local d=$BATS_FILE_TMPDIR
    busybox_multiarch_ctx "$d/bbctx" || return 1
    base_build "$d/bbctx" "$d/base" --platform linux/amd64,linux/arm64 || return 1
    base_build "$d/bbctx" "$d/base-amd64" --platform linux/amd64 || return 1
    base_push "$d/base" "$REG_ADDR/ocib/busybox-multi:1" || return 1
    export BASE="oci:$d/base:1" BASE_AMD64="oci:$d/base-amd64:1"
    export BASE_REG="$REG_ADDR/ocib/busybox-multi:1"
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

# index_of DIR: the path of the index the layout's only entry names.
index_of() {
    blob_path "$1" "$(jq -r '.manifests[0].digest' "$1/index.json")"
}

# manifest_for DIR ARCH: the digest of ARCH's manifest in the layout's index.
manifest_for() {
    jq -r --arg a "$2" '.manifests[] | select(.platform.architecture == $a) | .digest' \
        "$(index_of "$1")"
}

# app_ctx DIR FROM: a runtime image that says which file it got and, from a
# run layer, which machine it ran on.
app_ctx() {
    mkdir -p "$1"
    echo "hello from ocib" >"$1/msg.txt"
    cat >"$1/ocib.json" <<JSON
{"version": 1, "image": "localhost:5000/ocib/multi", "stages": [{"name": "app", "from": "$2",
  "layers": [
    {"name": "msg", "copy": [{"src": ["msg.txt"], "dest": "/srv/"}]},
    {"name": "arch", "run": "uname -m >/srv/arch"}],
  "config": {"cmd": ["/bin/sh", "-c", "cat /srv/msg.txt /srv/arch"]}}]}
JSON
}

@test "a copy-only image for two platforms: an index of two manifests, each what a one-platform build gives" {
    mkdir -p "$T/ctx"
    echo data >"$T/ctx/data.txt"
    echo '{"version": 1, "stages": [{"from": "scratch", "layers": [
      {"name": "d", "copy": [{"src": ["data.txt"], "dest": "/${TARGETARCH}/"}]}]}]}' >"$T/ctx/ocib.json"
    run_ocib build -C "$T/ctx" --platform linux/amd64,linux/arm64 --output "oci:$T/both:1"
    [ "$status" -eq 0 ] || { show_run; fail "the two-platform build failed"; }
    local idx
    idx=$(index_of "$T/both")
    [[ $out == "$(jq -r '.manifests[0].digest' "$T/both/index.json")" ]] ||
        fail "stdout is not the index's digest: $out"
    jq -e '.manifests[0].mediaType == "application/vnd.oci.image.index.v1+json"' \
        "$T/both/index.json" >/dev/null || fail "index.json does not name an index"
    jq -e '[.manifests[].platform | "\(.os)/\(.architecture)"] == ["linux/amd64", "linux/arm64"]' \
        "$idx" >/dev/null || fail "the index's platforms are wrong: $(cat "$idx")"
    oci_validate "$T/both"
    skopeo inspect --raw "oci:$T/both:1" | jq -e '.manifests | length == 2' >/dev/null ||
        fail "skopeo does not read the index"
    # each platform's manifest is byte for byte the one-platform build's
    local arch single
    for arch in amd64 arm64; do
        run_ocib build -C "$T/ctx" --platform "linux/$arch" --output "oci:$T/$arch:1"
        [ "$status" -eq 0 ] || { show_run; fail "the $arch build failed"; }
        single=$(jq -r '.manifests[0].digest' "$T/$arch/index.json")
        [ "$single" = "$(manifest_for "$T/both" "$arch")" ] ||
            fail "$arch: the index holds $(manifest_for "$T/both" "$arch"), a one-platform build gives $single"
        [ "$(skopeo inspect --override-arch "$arch" "oci:$T/both:1" | jq -r .Architecture)" = "$arch" ] ||
            fail "skopeo does not pick $arch from the index"
    done
    # the layer of each platform holds its own directory
    layer_listing "$T/arm64" 0 | norm_listing | cut -f1 | grep -qx 'arm64/data.txt' ||
        fail "arm64's layer lacks arm64/data.txt"
    # one platform given is exactly the default build's bytes
    run_ocib build -C "$T/ctx" --output "oci:$T/default:1"
    [ "$(jq -r '.manifests[0].digest' "$T/default/index.json")" = \
        "$(jq -r '.manifests[0].digest' "$T/$(host_arch)/index.json")" ] ||
        fail "--platform linux/$(host_arch) changed the bytes of the default build"
}

@test "two platforms on a two-platform base: arm64's run layer runs under emulation, podman runs both" {
    app_ctx "$T/ctx" "$BASE"
    run_ocib build -C "$T/ctx" --platform linux/amd64,linux/arm64 --output "oci:$T/out:1" --progress=plain
    [ "$status" -eq 0 ] || { show_run; fail "the build failed"; }
    grep -q '^\[app/arch\]' <<<"$err" && fail "uname printed to the log? $err"
    grep -q '^\[app\] stage for linux/arm64$' <<<"$err" || { show_run; fail "no arm64 stage"; }
    local arch want got id
    for arch in amd64 arm64; do
        case $arch in amd64) want=x86_64 ;; arm64) want=aarch64 ;; esac
        mkdir -p "$T/p-$arch"
        skopeo copy -q --override-arch "$arch" "oci:$T/out:1" "oci:$T/p-$arch:x" ||
            fail "skopeo copy of $arch failed"
        id=$(podman_pull_oci "$T/p-$arch" x) || return 1
        got=$(podman_run --arch "$arch" "$id" 2>&1) || fail "podman run ($arch) failed: $got"
        [ "$got" = "hello from ocib
$want" ] || fail "the $arch image printed: $got"
    done
}

@test "push two platforms: the index and both manifests in the registry, each pulled back with skopeo" {
    app_ctx "$T/ctx" "$BASE_REG"
    run_ocib build -C "$T/ctx" --platform linux/amd64,linux/arm64 --push \
        --tag "$REG_ADDR/ocib/multi:1" --output "oci:$T/out:1" --progress=plain
    [ "$status" -eq 0 ] || { show_run; fail "the build failed"; }
    assert_digest_stdout "$REG_ADDR/ocib/multi"
    local raw
    raw=$(skopeo inspect --tls-verify=false --raw "docker://$REG_ADDR/ocib/multi:1")
    [ "sha256:$(printf '%s' "$raw" | sha256sum | cut -d' ' -f1)" = "$DIGEST" ] ||
        fail "the registry's index is not the one printed"
    [ "$(jq -r .mediaType <<<"$raw")" = application/vnd.oci.image.index.v1+json ] ||
        fail "the tag does not name an index: $raw"
    [ "$(jq -r '.manifests[0].digest' "$T/out/index.json")" = "$DIGEST" ] ||
        fail "the layout and the registry hold different indexes"
    local arch d got
    for arch in amd64 arm64; do
        d=$(manifest_for "$T/out" "$arch")
        got=$(skopeo inspect --tls-verify=false --raw "docker://$REG_ADDR/ocib/multi@$d" |
            sha256sum | cut -d' ' -f1)
        [ "sha256:$got" = "$d" ] || fail "$arch: the registry's manifest $d has other bytes"
        skopeo copy -q --src-tls-verify=false --override-arch "$arch" \
            "docker://$REG_ADDR/ocib/multi:1" "oci:$T/pulled-$arch:x" ||
            fail "skopeo copy of $arch from the registry failed"
        [ "$(jq -r '.manifests[0].digest' "$T/pulled-$arch/index.json")" = "$d" ] ||
            fail "$arch: skopeo pulled $(jq -r '.manifests[0].digest' "$T/pulled-$arch/index.json"), the layout says $d"
    done
    # --format docker: a manifest list of Docker manifests
    run_ocib build -C "$T/ctx" --platform linux/amd64,linux/arm64 --push --format docker \
        --tag "$REG_ADDR/ocib/multi:docker"
    [ "$status" -eq 0 ] || { show_run; fail "the docker-format build failed"; }
    raw=$(skopeo inspect --tls-verify=false --raw "docker://$REG_ADDR/ocib/multi:docker")
    jq -e '.mediaType == "application/vnd.docker.distribution.manifest.list.v2+json" and
           all(.manifests[]; .mediaType == "application/vnd.docker.distribution.manifest.v2+json")' \
        <<<"$raw" >/dev/null || fail "not a Docker manifest list: $raw"
}

@test "mistakes: a base without the platform, an unknown platform, a list twice, a two-platform docker-archive" {
    app_ctx "$T/ctx" "$BASE_AMD64"
    run_ocib build -C "$T/ctx" --platform linux/amd64,linux/arm64 --output "oci:$T/out"
    [ "$status" -eq 1 ] || { show_run; fail "expected exit 1"; }
    grep -q '^ocib: stages\[0\]\.from: .* is linux/amd64, but the stage builds linux/arm64$' <<<"$err" ||
        { show_run; fail "the error does not name what the base has"; }
    [ ! -e "$T/out" ] || fail "a failed build wrote its output"
    run_ocib build -C "$T/ctx" --platform windows/sparc
    [ "$status" -eq 2 ] || { show_run; fail "expected exit 2"; }
    grep -q "^ocib: invalid platform 'windows/sparc': windows has no architecture sparc (known: 386, amd64, arm, arm64)$" \
        <<<"$err" || { show_run; fail "wrong error"; }
    run_ocib build -C "$T/ctx" --platform linux/amd64,linux/x86_64
    [ "$status" -eq 2 ] && grep -q "listed twice" <<<"$err" || { show_run; fail "a duplicate passed"; }
    run_ocib build -C "$T/ctx" --platform linux/amd64,linux/arm64 --output "docker-archive:$T/a.tar"
    [ "$status" -eq 2 ] || { show_run; fail "expected exit 2"; }
    grep -q 'holds one platform' <<<"$err" || { show_run; fail "wrong error"; }
    [ ! -e "$T/a.tar" ] || fail "the refused archive was written"
}

@test "an arm64 run layer with no emulator registered fails naming the fix, and writes nothing" {
    app_ctx "$T/ctx" "$BASE"
    echo 0 >/proc/sys/fs/binfmt_misc/qemu-aarch64
    run_ocib build -C "$T/ctx" --platform linux/arm64 --output "oci:$T/out"
    echo 1 >/proc/sys/fs/binfmt_misc/qemu-aarch64
    [ "$status" -eq 1 ] || { show_run; fail "expected exit 1"; }
    grep -q '^ocib: stage app, layer arch: cannot run arm64 programs on this amd64 machine: no binfmt_misc handler for them (apt-get install qemu-user-static' \
        <<<"$err" || { show_run; fail "the error does not name the fix"; }
    [ ! -e "$T/out" ] || fail "a failed build wrote its output"
}

@test "lock pins every platform, --locked builds both; inspect shows the index; diff pairs images by platform" {
    app_ctx "$T/ctx" "$BASE_REG"
    run_ocib lock -C "$T/ctx" --platform linux/amd64,linux/arm64
    [ "$status" -eq 0 ] || { show_run; fail "lock failed"; }
    local lock=$T/ctx/ocib.lock.json
    jq -e --arg r "$BASE_REG" '.images[$r].manifests | keys == ["linux/amd64", "linux/arm64"]' \
        "$lock" >/dev/null || fail "the lock does not pin both platforms: $(cat "$lock")"
    [ "$(jq -r --arg r "$BASE_REG" '.images[$r].manifests["linux/arm64"]' "$lock")" = \
        "$(manifest_for "$BATS_FILE_TMPDIR/base" arm64)" ] || fail "arm64's pin is not the base's arm64 manifest"
    run_ocib build -C "$T/ctx" --platform linux/amd64,linux/arm64 --locked --output "oci:$T/a:1"
    [ "$status" -eq 0 ] || { show_run; fail "the --locked build failed"; }
    # a platform the lock lacks fails --locked
    run_ocib build -C "$T/ctx" --platform linux/amd64,linux/arm/v7 --locked --output "oci:$T/x"
    [ "$status" -ne 0 ] || { show_run; fail "--locked passed with a platform the lock lacks"; }
    grep -q 'linux/arm/v7' <<<"$err" || { show_run; fail "the error does not name the platform"; }
    # inspect: the index, its platforms, the one picked
    run_ocib inspect --platform linux/arm64 "oci:$T/a:1"
    [ "$status" -eq 0 ] || { show_run; fail "inspect failed"; }
    grep -q '^Platforms:  linux/amd64 linux/arm64$' <<<"$out" || fail "inspect lists no platforms: $out"
    grep -q '^Picked:     linux/arm64$' <<<"$out" || fail "inspect did not pick arm64: $out"
    # diff: the same build twice is identical platform by platform; a change
    # in one file differs in both platforms, each named
    run_ocib build -C "$T/ctx" --platform linux/amd64,linux/arm64 --locked --output "oci:$T/b:1"
    run_ocib diff "oci:$T/a:1" "oci:$T/b:1"
    [ "$status" -eq 0 ] || { show_run; fail "two identical builds differ"; }
    [ "$out" = "== linux/amd64
identical
== linux/arm64
identical" ] || fail "diff of identical indexes printed: $out"
    echo changed >"$T/ctx/msg.txt"
    run_ocib build -C "$T/ctx" --platform linux/amd64,linux/arm64 --locked --output "oci:$T/c:1"
    run_ocib diff --json "oci:$T/a:1" "oci:$T/c:1"
    [ "$status" -eq 1 ] || { show_run; fail "expected exit 1 for different images"; }
    jq -e '.identical == false and ([.platforms[] | select(.identical == false) | .platform] ==
           ["linux/amd64", "linux/arm64"])' <<<"$out" >/dev/null || fail "diff --json: $out"
    jq -e '[.platforms[0].differences[] | select(.path == "srv/msg.txt")] | length >= 1' \
        <<<"$out" >/dev/null || fail "the changed file is not named: $out"
    # an index against a one-platform image of it: only the platforms both have
    run_ocib build -C "$T/ctx" --platform linux/amd64 --locked --output "oci:$T/d:1"
    run_ocib diff --platform linux/amd64 "oci:$T/c:1" "oci:$T/d:1"
    [ "$status" -eq 0 ] || { show_run; fail "amd64 of the index differs from the amd64 build"; }
}

@test "--verify on two platforms: reproducible ones pass; one platform that is not is named with its diff" {
    app_ctx "$T/ctx" "$BASE"
    run_ocib build -C "$T/ctx" --platform linux/amd64,linux/arm64 --verify --output "oci:$T/out:1"
    [ "$status" -eq 0 ] || { show_run; fail "--verify of a reproducible two-platform build failed"; }
    grep -q '^verify: reproducible, both builds gave sha256:' <<<"$err" || { show_run; fail "no verdict"; }
    [[ $err == *"both builds gave $(jq -r '.manifests[0].digest' "$T/out/index.json")"* ]] ||
        { show_run; fail "the verdict does not name the index's digest"; }
    cat >"$T/ctx/ocib.json" <<JSON
{"version": 1, "stages": [{"name": "app", "from": "$BASE", "layers": [
  {"name": "clock", "run": "if [ \${TARGETARCH} = arm64 ]; then head -c 16 /dev/urandom >/clock; else echo fixed >/clock; fi"}]}]}
JSON
    run_ocib build -C "$T/ctx" --platform linux/amd64,linux/arm64 --verify --output "oci:$T/out2"
    [ "$status" -eq 1 ] || { show_run; fail "expected exit 1"; }
    grep -q '^verify: not reproducible: sha256:[0-9a-f]* vs sha256:[0-9a-f]* (linux/arm64 differs)$' <<<"$err" ||
        { show_run; fail "the platform that differs is not named"; }
    grep -q 'clock' <<<"$err" || { show_run; fail "the diff does not name /clock"; }
}
