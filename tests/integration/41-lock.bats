#!/usr/bin/env bats
# The lock file (issue 6): `ocib lock` pins every registry `from` to its
# index and per-platform manifest digests in ocib.lock.json beside the spec;
# `ocib build` follows it, so a tag moved in the registry after locking does
# not change the build; `--locked` refuses a missing or stale lock; `ocib
# lock --update` refreshes it; the lock's own bytes are deterministic and
# record ocib's version and its compressor settings.
#
# Base images live in a real loopback docker-registry (lib/registry.bash);
# they are built by ocib from scratch and pushed by skopeo, the index one is
# assembled by hand and pushed with `skopeo copy --all`.

load helpers
load lib/registry

setup_file() {
    need skopeo docker-registry jq || return 1
    export REGISTRY_MAX_SECONDS=900
    registry_start REG
}

teardown_file() {
    registry_stop REG
}

setup() {
    common_setup
    need skopeo
}

# push_base REF CONTENT [PLATFORM]: builds a one-layer scratch image whose
# /etc/base-version holds CONTENT and pushes it with skopeo to
# docker://REF; sets PUSHED to its manifest digest and BASE_LAYOUT to the
# layout it was built in.
push_base() {
    local ref=$1 content=$2 platform=${3:-} d
    d=$T/base-$(printf '%s|%s' "$ref" "$content$platform" | sha256sum | cut -c1-12)
    mkdir -p "$d/ctx"
    jq -n --arg c "$content" '{
        version: 1, image: "localhost:5000/lock/base",
        stages: [{from: "scratch",
                  layers: [{name: "v", files: [{path: "/etc/base-version", content: $c}]}],
                  config: {env: {BASE: $c}}}]}' >"$d/ctx/ocib.json"
    build_ok -C "$d/ctx" --output "oci:$d/layout" ${platform:+--platform "$platform"} || return 1
    local o
    o=$(skopeo copy -q --dest-tls-verify=false "oci:$d/layout:latest" "docker://$ref" 2>&1) ||
        fail "skopeo copy to $ref failed: $o" || return 1
    PUSHED=$(registry_digest "$ref") || return 1
    [ "$PUSHED" = "$DIGEST" ] || fail "registry has $PUSHED for $ref, ocib built $DIGEST" || return 1
    BASE_LAYOUT=$d/layout
}

# registry_digest REF: the digest the registry serves for REF (raw bytes).
registry_digest() {
    local raw
    raw=$(skopeo inspect --raw --tls-verify=false "docker://$1" | sha256sum | cut -d' ' -f1) ||
        fail "skopeo inspect --raw docker://$1 failed" || return 1
    printf 'sha256:%s\n' "$raw"
}

# app_spec DIR FROM...: an application spec with one stage per FROM (the
# last is the target), each adding one file.
app_spec() {
    local dir=$1 f i=0 stages=()
    shift
    mkdir -p "$dir"
    for f in "$@"; do
        stages+=("$(jq -n --arg f "$f" --arg n "s$i" \
            '{name: $n, from: $f, layers: [{name: "app", files: [{path: ("/app/" + $n), content: "app\n"}]}]}')")
        i=$((i + 1))
    done
    printf '%s\n' "${stages[@]}" | jq -s '{version: 1, image: "localhost:5000/lock/app", stages: .}' >"$dir/ocib.json"
}

# lock_ok ARGS...: `ocib lock ARGS` succeeds and prints the lock's path.
lock_ok() {
    run_ocib lock "$@"
    [ "$status" -eq 0 ] || { show_run; fail "ocib lock $* exited $status"; return 1; }
}

@test "lock: a tag moved after locking does not change the build; --update follows it" {
    local from=$REG_ADDR/lock/base:1
    push_base "$from" "one"
    local base1=$PUSHED
    app_spec "$T/app" "$from"

    lock_ok -C "$T/app"
    [ -f "$T/app/ocib.lock.json" ] || fail "no ocib.lock.json beside the spec: $(ls -A "$T/app")"
    assert_eq "lock prints the lock file's path" "$(realpath -m "$out")" "$(realpath "$T/app/ocib.lock.json")"
    assert_eq "pinned manifest" "$(jq -r --arg f "$from" --arg p "linux/$(host_arch)" \
        '.images[$f].manifests[$p]' "$T/app/ocib.lock.json")" "$base1"

    build_ok -C "$T/app" --output "oci:$T/out1" --progress=plain
    local d1=$DIGEST
    assert_contains "progress names the lock" "$err" "(locked to $REG_ADDR/lock/base@$base1)"
    assert_eq "base.digest annotation" \
        "$(jq -r '.annotations["org.opencontainers.image.base.digest"]' "$(layout_manifest "$T/out1")")" "$base1"

    # the tag moves to a different image
    push_base "$from" "two"
    local base2=$PUSHED
    [ "$base2" != "$base1" ] || fail "the second base has the same digest"
    assert_eq "the tag moved" "$(registry_digest "$from")" "$base2"

    # a cold cache: the base is really fetched again, by the locked digest
    rm -rf "$OCIB_CACHE_DIR"
    build_ok -C "$T/app" --output "oci:$T/out2" --progress=plain
    assert_eq "locked build after the tag moved" "$DIGEST" "$d1"
    assert_contains "progress names the lock" "$err" "(locked to $REG_ADDR/lock/base@$base1)"
    assert_eq "the lock is untouched by a build" \
        "$(jq -r --arg f "$from" '.images[$f].manifests[]' "$T/app/ocib.lock.json")" "$base1"

    # --verify's two isolated builds follow the lock too
    run_ocib build -C "$T/app" --output "oci:$T/out2v" --verify
    [ "$status" -eq 0 ] || { show_run; fail "build --verify with a lock exited $status"; }
    assert_digest_stdout ""
    assert_eq "locked --verify build" "$DIGEST" "$d1"
    assert_contains "verify" "$err" "verify: reproducible, both builds gave $d1"

    # without the lock, the moved tag gives another image (so the lock mattered)
    mv "$T/app/ocib.lock.json" "$T/lock.saved"
    build_ok -C "$T/app" --output "oci:$T/out3" --progress=plain
    local unlocked=$DIGEST
    [ "$unlocked" != "$d1" ] || fail "the moved tag did not change an unlocked build"
    [[ $err != *"locked to"* ]] || fail "an unlocked build says it is locked: $err"
    mv "$T/lock.saved" "$T/app/ocib.lock.json"

    # `ocib lock` without --update keeps the pin
    lock_ok -C "$T/app"
    assert_eq "lock without --update keeps the old digest" \
        "$(jq -r --arg f "$from" '.images[$f].manifests[]' "$T/app/ocib.lock.json")" "$base1"

    # --update follows the tag
    lock_ok -C "$T/app" --update
    assert_eq "lock --update pins the new digest" \
        "$(jq -r --arg f "$from" '.images[$f].manifests[]' "$T/app/ocib.lock.json")" "$base2"
    build_ok -C "$T/app" --output "oci:$T/out4" --progress=plain --locked
    [ "$DIGEST" != "$d1" ] || fail "after lock --update the build still gives $d1"
    assert_eq "updated lock builds what the tag names" "$DIGEST" "$unlocked"
    assert_contains "progress names the new pin" "$err" "(locked to $REG_ADDR/lock/base@$base2)"
}

@test "lock: --locked without a lock file fails with exit 1 and says so" {
    local from=$REG_ADDR/lock/nolock:1
    push_base "$from" "nolock"
    app_spec "$T/app" "$from"
    snapshot_dir "$T"
    run_ocib build -C "$T/app" --output "oci:$T/out" --locked
    assert_failed 1 '--locked' 'no .*ocib\.lock\.json'
    assert_contains "names the lock path" "$err" "$T/app/ocib.lock.json"
    assert_no_output "$T/out"
    [ ! -e "$T/app/ocib.lock.json" ] || fail "a failed --locked build wrote a lock"
    # and the same build without --locked works
    build_ok -C "$T/app" --output "oci:$T/out"
}

@test "lock: --locked with a stale lock (from changed, platform not pinned) fails" {
    local from=$REG_ADDR/lock/stale:1
    push_base "$from" "stale-1"
    push_base "$REG_ADDR/lock/stale:2" "stale-2"
    app_spec "$T/app" "$from"
    lock_ok -C "$T/app"
    build_ok -C "$T/app" --output "oci:$T/ok" --locked

    # the spec now names another tag
    app_spec "$T/app" "$REG_ADDR/lock/stale:2"
    snapshot_dir "$T"
    run_ocib build -C "$T/app" --output "oci:$T/out" --locked
    assert_failed 1 '--locked' 'ocib\.lock\.json is stale' "does not pin \"$REG_ADDR/lock/stale:2\""
    assert_no_output "$T/out"

    # a new stage added to the spec
    app_spec "$T/app" "$from" "$REG_ADDR/lock/stale:2"
    run_ocib build -C "$T/app" --output "oci:$T/out" --locked
    assert_failed 1 'is stale' "does not pin \"$REG_ADDR/lock/stale:2\""

    # locking again (no --update) adds the new image and keeps the old pin
    local old
    old=$(jq -r --arg f "$from" '.images[$f].manifests[]' "$T/app/ocib.lock.json")
    lock_ok -C "$T/app"
    jq -e --arg a "$from" --arg b "$REG_ADDR/lock/stale:2" '.images | has($a) and has($b)' \
        "$T/app/ocib.lock.json" >/dev/null || fail "lock did not add the new image: $(cat "$T/app/ocib.lock.json")"
    assert_eq "old pin kept" "$(jq -r --arg f "$from" '.images[$f].manifests[]' "$T/app/ocib.lock.json")" "$old"
    build_ok -C "$T/app" --output "oci:$T/out" --locked

    # another platform than the one locked
    local other=linux/arm64
    [ "$(host_arch)" != arm64 ] || other=linux/amd64
    run_ocib build -C "$T/app" --output "oci:$T/out-p" --locked --platform "$other"
    assert_failed 1 '--locked' 'is stale' "is not pinned for $other"
}

@test "lock: its bytes are deterministic, canonical, and record version and compressor settings" {
    local from=$REG_ADDR/lock/det:1
    push_base "$from" "det"
    push_base "$REG_ADDR/lock/det2:1" "det2"
    app_spec "$T/app" "$from" "$REG_ADDR/lock/det2:1"
    cp -a "$T/app" "$T/app2"

    lock_ok -C "$T/app"
    cp "$T/app/ocib.lock.json" "$T/first.json"
    # locked again from nothing, in another directory, with another cache and umask
    rm -rf "$OCIB_CACHE_DIR"
    (umask 077 && cd / && timeout 60 "$OCIB" lock -C "$T/app2" >/dev/null 2>&1) ||
        fail "ocib lock in app2 failed"
    cmp "$T/first.json" "$T/app2/ocib.lock.json" ||
        fail "two locks of the same spec differ: $(diff "$T/first.json" "$T/app2/ocib.lock.json")"
    # re-locking an up-to-date lock rewrites the same bytes; so does --update
    lock_ok -C "$T/app"
    cmp "$T/first.json" "$T/app/ocib.lock.json" || fail "re-locking changed the bytes"
    lock_ok -C "$T/app" --update
    cmp "$T/first.json" "$T/app/ocib.lock.json" || fail "lock --update of unchanged tags changed the bytes"

    # canonical JSON: sorted keys, compact, one trailing newline
    assert_eq "canonical form" "$(cat "$T/first.json")" "$(jq -cS . "$T/first.json")"
    [ "$(tail -c1 "$T/first.json" | od -An -c | tr -d ' ')" = '\n' ] || fail "no trailing newline"
    [ "$(wc -l <"$T/first.json")" -eq 1 ] || fail "lock is not one line"

    local L=$T/first.json ver
    jq -e '.lockVersion == 1' "$L" >/dev/null || fail "lockVersion is not 1: $(cat "$L")"
    run_ocib version
    ver=$(printf '%s' "$out" | awk '{print $2}')
    assert_eq "ocib version in the lock" "$(jq -r .ocib "$L")" "$ver"
    assert_eq "output format in the lock" "$(jq -r .format "$L")" "1"
    jq -e --arg f "$from" '.images[$f].reference == $f' "$L" >/dev/null ||
        fail "reference not recorded as written: $(cat "$L")"

    # the compressor settings are the exact strings the images carry
    build_ok -C "$T/app" --output "oci:$T/gz" --compression gzip
    build_ok -C "$T/app" --output "oci:$T/zs" --compression zstd
    local gz zs
    gz=$(jq -r '.annotations["dev.ocib.compression"]' "$(layout_manifest "$T/gz")")
    zs=$(jq -r '.annotations["dev.ocib.compression"]' "$(layout_manifest "$T/zs")")
    [[ $gz == gzip* ]] || fail "gzip annotation: '$gz'"
    [[ $zs == zstd* ]] || fail "zstd annotation: '$zs'"
    assert_eq "gzip settings in the lock" "$(jq -r .compression.gzip "$L")" "$gz"
    assert_eq "zstd settings in the lock" "$(jq -r .compression.zstd "$L")" "$zs"
}

# make_index_layout DIR TAG [SALT]: an OCI layout whose TAG is an image
# index (linux/amd64 and linux/arm64, each a different ocib-built image whose
# /etc/platform also holds SALT); sets INDEX_DIGEST, AMD64_DIGEST,
# ARM64_DIGEST.
make_index_layout() {
    local dir=$1 tag=$2 salt=${3:-} p l d
    mkdir -p "$dir/blobs/sha256"
    local entries=()
    for p in linux/amd64 linux/arm64; do
        l=$T/plat-${p//\//-}$salt
        mkdir -p "$l.ctx"
        jq -n --arg p "$p" --arg s "$salt" '{version: 1, image: "localhost:5000/lock/multi",
            stages: [{from: "scratch", platform: $p,
                      layers: [{name: "p", files: [{path: "/etc/platform", content: ($p + $s)}]}]}]}' >"$l.ctx/ocib.json"
        build_ok -C "$l.ctx" --output "oci:$l" || return 1
        cp "$l"/blobs/sha256/* "$dir/blobs/sha256/"
        d=$DIGEST
        entries+=("$(jq -n --arg d "$d" --argjson s "$(stat -c %s "$(blob_path "$l" "$d")")" \
            --arg os "${p%/*}" --arg arch "${p#*/}" \
            '{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
              platform: {os: $os, architecture: $arch}}')")
        case $p in
        */amd64) AMD64_DIGEST=$d ;;
        */arm64) ARM64_DIGEST=$d ;;
        esac
    done
    printf '%s\n' "${entries[@]}" |
        jq -cs '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: .}' \
            >"$dir/index.tmp"
    INDEX_DIGEST=sha256:$(sha256sum "$dir/index.tmp" | cut -d' ' -f1)
    mv "$dir/index.tmp" "$dir/blobs/sha256/${INDEX_DIGEST#sha256:}"
    jq -n --arg d "$INDEX_DIGEST" --argjson s "$(stat -c %s "$dir/blobs/sha256/${INDEX_DIGEST#sha256:}")" \
        --arg t "$tag" \
        '{schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.index.v1+json",
          digest: $d, size: $s, annotations: {"org.opencontainers.image.ref.name": $t}}]}' >"$dir/index.json"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
}

@test "lock: an index records the index digest and the platform's manifest digest" {
    local from=$REG_ADDR/lock/multi:1 o
    make_index_layout "$T/idx" 1
    o=$(skopeo copy -q --all --dest-tls-verify=false "oci:$T/idx:1" "docker://$from" 2>&1) ||
        fail "skopeo copy --all failed: $o"
    assert_eq "the registry serves the index as made" "$(registry_digest "$from")" "$INDEX_DIGEST"

    app_spec "$T/app" "$from"
    local host=linux/$(host_arch) want
    case $host in
    linux/amd64) want=$AMD64_DIGEST ;;
    linux/arm64) want=$ARM64_DIGEST ;;
    *) fail "this test needs an amd64 or arm64 host" ;;
    esac
    lock_ok -C "$T/app"
    local L=$T/app/ocib.lock.json
    assert_eq "index digest" "$(jq -r --arg f "$from" '.images[$f].index' "$L")" "$INDEX_DIGEST"
    assert_eq "manifest for $host" "$(jq -r --arg f "$from" --arg p "$host" '.images[$f].manifests[$p]' "$L")" "$want"
    assert_eq "only the platform built is pinned" \
        "$(jq -r --arg f "$from" '.images[$f].manifests | keys | join(",")' "$L")" "$host"

    # a build follows the pinned per-platform manifest
    build_ok -C "$T/app" --output "oci:$T/out" --locked --progress=plain
    assert_eq "base.digest annotation" \
        "$(jq -r '.annotations["org.opencontainers.image.base.digest"]' "$(layout_manifest "$T/out")")" "$want"
    assert_contains "progress names the lock" "$err" "locked to $REG_ADDR/lock/multi@$want"

    # --platform picks another entry of the same index (locked separately)
    cp -a "$T/app" "$T/app-arm"
    rm "$T/app-arm/ocib.lock.json"
    lock_ok -C "$T/app-arm" --platform linux/arm64
    L=$T/app-arm/ocib.lock.json
    assert_eq "index digest (arm64)" "$(jq -r --arg f "$from" '.images[$f].index' "$L")" "$INDEX_DIGEST"
    assert_eq "manifest for linux/arm64" \
        "$(jq -r --arg f "$from" '.images[$f].manifests["linux/arm64"]' "$L")" "$ARM64_DIGEST"
}

@test "lock: locking a second platform keeps the first pin and uses the pinned index, even after the tag moved" {
    local from=$REG_ADDR/lock/multi2:1 o
    make_index_layout "$T/idx" 1
    o=$(skopeo copy -q --all --dest-tls-verify=false "oci:$T/idx:1" "docker://$from" 2>&1) ||
        fail "skopeo copy --all failed: $o"
    app_spec "$T/app" "$from"
    lock_ok -C "$T/app" --platform linux/amd64
    local idx1=$INDEX_DIGEST amd1=$AMD64_DIGEST arm1=$ARM64_DIGEST
    # the tag moves to another index before the second platform is locked:
    # the new pin still comes from the index already pinned
    make_index_layout "$T/idx2" 1 -moved
    o=$(skopeo copy -q --all --dest-tls-verify=false "oci:$T/idx2:1" "docker://$from" 2>&1) ||
        fail "skopeo copy --all failed: $o"
    [ "$INDEX_DIGEST" != "$idx1" ] || fail "the second index is the same as the first"
    lock_ok -C "$T/app" --platform linux/arm64
    local L=$T/app/ocib.lock.json
    jq -e --arg f "$from" --arg a "$amd1" --arg b "$arm1" --arg i "$idx1" \
        '.images[$f].manifests == {"linux/amd64": $a, "linux/arm64": $b} and .images[$f].index == $i' \
        "$L" >/dev/null ||
        fail "locking linux/arm64 after linux/amd64 lost a pin or left the pinned index: $(jq -c .images "$L")"
    build_ok -C "$T/app" --output "oci:$T/a" --locked --platform linux/amd64
    build_ok -C "$T/app" --output "oci:$T/b" --locked --platform linux/arm64
    # --update moves every platform to the new index
    lock_ok -C "$T/app" --update --platform linux/arm64
    jq -e --arg f "$from" --arg b "$ARM64_DIGEST" --arg i "$INDEX_DIGEST" \
        '.images[$f].manifests["linux/arm64"] == $b and .images[$f].index == $i' "$L" >/dev/null ||
        fail "lock --update did not follow the moved tag: $(jq -c .images "$L")"
}

@test "lock: an unknown tag fails with exit 1 and leaves no lock, or the old lock intact" {
    local from=$REG_ADDR/lock/gone:1
    push_base "$from" "gone"
    app_spec "$T/app" "$REG_ADDR/lock/never-pushed:1"
    snapshot_dir "$T/app"
    run_ocib lock -C "$T/app"
    assert_failed 1 "lock/never-pushed:1"
    assert_no_output "$T/app/ocib.lock.json"

    app_spec "$T/app" "$from"
    lock_ok -C "$T/app"
    cp "$T/app/ocib.lock.json" "$T/good.json"
    # the repository's tag disappears: --update fails and keeps the old lock
    local o
    o=$(skopeo delete --tls-verify=false "docker://$REG_ADDR/lock/gone@$PUSHED" 2>&1) ||
        fail "skopeo delete failed: $o"
    local before
    before=$(ls -A "$T/app")
    run_ocib lock -C "$T/app" --update
    assert_failed 1 "lock/gone:1"
    cmp "$T/good.json" "$T/app/ocib.lock.json" || fail "a failed lock --update changed the lock"
    assert_eq "entries beside the spec after a failed lock" "$(ls -A "$T/app")" "$before"
}
