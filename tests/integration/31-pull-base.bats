#!/usr/bin/env bats
# Stages on registry bases that skopeo pushed to a real registry: OCI and
# Docker v2 schema2 manifests, a multi-platform index narrowed to the
# platform, @sha256 pins, cross-repository mounts on push, base layers
# fetched into the cache once with --output, and `ocib inspect` of registry
# images.

load helpers
load lib/registry

setup_file() {
    export REGISTRY_MAX_SECONDS=900
    registry_start REG
    local d=$BATS_FILE_TMPDIR
    # one OCI base, pushed as OCI and as Docker v2 schema2
    make_oci_layout "$d/base" v1 1000 200000 >/dev/null
    make_oci_layout "$d/base" v2 3000 >/dev/null
    skopeo copy -q --dest-tls-verify=false "oci:$d/base:v1" "docker://$REG_ADDR/base/oci:v1"
    skopeo copy -q --dest-tls-verify=false --format v2s2 "oci:$d/base:v1" "docker://$REG_ADDR/base/docker:v1"
    skopeo copy -q --dest-tls-verify=false "oci:$d/base:v1" "docker://$REG_ADDR/base/mnt:v1"
    # multi-platform indexes: arm64 with variant v8, and without a variant
    make_multi "$d/multi" v1 v8 >"$d/multi.digests"
    make_multi "$d/multi-novar" v1 "" >"$d/multi-novar.digests"
    skopeo copy -q --all --dest-tls-verify=false "oci:$d/multi:v1" "docker://$REG_ADDR/base/multi:v1"
    skopeo copy -q --all --dest-tls-verify=false "oci:$d/multi-novar:v1" "docker://$REG_ADDR/base/multi-novar:v1"
}

teardown_file() {
    registry_stop REG
}

setup() {
    common_setup
}

# make_multi DIR TAG ARM_VARIANT: an OCI layout whose TAG is an image index
# of linux/amd64 and linux/arm64[/ARM_VARIANT], one small layer each
# (/arch.txt), configs with the matching architecture. Prints "INDEX AMD ARM"
# digests.
make_multi() {
    /usr/bin/python3 - "$@" <<'EOF'
import gzip, hashlib, io, json, os, sys, tarfile
d, tag, arm_variant = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(os.path.join(d, "blobs", "sha256"), exist_ok=True)
def put(data):
    h = hashlib.sha256(data).hexdigest()
    open(os.path.join(d, "blobs", "sha256", h), "wb").write(data)
    return "sha256:" + h, len(data)
entries = []
for arch, variant in (("amd64", None), ("arm64", arm_variant or None)):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        body = ("%s %s\n" % (arch, os.urandom(8).hex())).encode()
        ti = tarfile.TarInfo("arch.txt"); ti.size, ti.mtime, ti.mode = len(body), 0, 0o644
        t.addfile(ti, io.BytesIO(body))
    tarb = raw.getvalue()
    ld, ls = put(gzip.compress(tarb, mtime=0))
    cfg = {"created": "2020-01-01T00:00:00Z", "architecture": arch, "os": "linux",
           "config": {"Env": ["ARCH=%s" % arch]},
           "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tarb).hexdigest()]},
           "history": [{"created": "2020-01-01T00:00:00Z", "created_by": "base " + arch}]}
    if variant:
        cfg["variant"] = variant
    cd, cs = put(json.dumps(cfg).encode())
    md, ms = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": ls}]}).encode())
    plat = {"architecture": arch, "os": "linux"}
    if variant:
        plat["variant"] = variant
    entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
                    "platform": plat})
idx = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                  "manifests": entries}).encode()
xd, xs = put(idx)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
           "digest": xd, "size": xs, "annotations": {"org.opencontainers.image.ref.name": tag}}]},
          open(os.path.join(d, "index.json"), "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(d, "oci-layout"), "w"))
print(xd, entries[0]["digest"], entries[1]["digest"])
EOF
}

# spec_on FROM [PLATFORM]: a context in $T/ctx whose one stage starts from
# FROM and adds /app/hello.
spec_on() {
    mkdir -p "$T/ctx"
    jq -n --arg from "$1" --arg plat "${2:-}" '{version: 1, image: "example.com/app/x",
        stages: [({from: $from, layers: [{name: "app", files: [{path: "/app/hello", content: "hi\n"}]}]}
                  + (if $plat == "" then {} else {platform: $plat} end))]}' >"$T/ctx/ocib.json"
}

# reg_manifest REPO REF FILE: the manifest (as served, any type) into FILE.
reg_manifest() {
    skopeo inspect --raw --tls-verify=false "docker://$REG_ADDR/$1:$2" >"$3"
}

# base_layers REPO:TAG: the layer digests of a single-image base, in order.
base_layers() {
    skopeo inspect --raw --tls-verify=false "docker://$REG_ADDR/$1" | jq -r '.layers[].digest'
}

# blob_gets REPO HEX: how many GETs of that blob of REPO the registry served.
blob_gets() {
    registry_count REG GET "^/v2/$1/blobs/sha256:$2\$"
}

# same_image_but_base A B: two layouts hold the same config and layers (the
# manifests differ only in their base annotations).
same_image_but_base() {
    local ma mb
    ma=$(layout_manifest "$1") && mb=$(layout_manifest "$2") || return 1
    assert_eq "config of $1 vs $2" "$(jq -r .config.digest "$ma")" "$(jq -r .config.digest "$mb")" || return 1
    assert_eq "layers of $1 vs $2" "$(jq -c '[.layers[].digest]' "$ma")" "$(jq -c '[.layers[].digest]' "$mb")"
}

# base_annotation LAYOUT KEY: org.opencontainers.image.base.KEY of the manifest.
base_annotation() {
    jq -r --arg k "org.opencontainers.image.base.$2" '.annotations[$k] // empty' "$(layout_manifest "$1")"
}

# assert_on_base LAYOUT BASE_LAYERS: LAYOUT's image is the base layers, in
# order, then one more; its config's diff_ids start with the base's.
assert_on_base() {
    local dir=$1 want=$2 m c n
    m=$(layout_manifest "$dir") || return 1
    c=$(layout_config "$dir") || return 1
    n=$(printf '%s\n' "$want" | grep -c .)
    assert_eq "base layers of the built image" "$(jq -r ".layers[:$n][].digest" "$m")" "$want" || return 1
    assert_eq "layer count" "$(jq '.layers | length' "$m")" $((n + 1)) || return 1
    assert_eq "diff_ids" "$(jq '.rootfs.diff_ids | length' "$c")" $((n + 1)) || return 1
    # the added layer holds the file
    layer_listing "$dir" "$n" | norm_listing | cut -f1 | grep -qx 'app/hello' ||
        fail "the stage's own layer lacks app/hello" || return 1
}

@test "an OCI base pushed by skopeo: resolved, printed, its layers first; fetched into the cache once" {
    local want diffs
    want=$(base_layers base/oci:v1)
    reg_manifest base/oci v1 "$T/bm"
    local bdig="sha256:$(sha256sum "$T/bm" | cut -d' ' -f1)"
    skopeo inspect --config --tls-verify=false "docker://$REG_ADDR/base/oci:v1" >"$T/bc"
    spec_on "$REG_ADDR/base/oci:v1"
    build_ok -C "$T/ctx" --output "oci:$T/out"
    assert_contains "progress names the base's digest" "$err" "$bdig"
    assert_on_base "$T/out" "$want"
    assert_layout_sound "$T/out"
    oci_validate "$T/out"
    local c
    c=$(layout_config "$T/out")
    assert_eq "base diff_ids kept" "$(jq -c '.rootfs.diff_ids[:2]' "$c")" "$(jq -c '.rootfs.diff_ids' "$T/bc")"
    assert_eq "base env kept" "$(jq -c '.config.Env' "$c")" "$(jq -c '.config.Env' "$T/bc")"
    # every base layer in the cache, each fetched exactly once
    local d
    for d in $want; do
        [ -f "$OCIB_CACHE_DIR/blobs/sha256/${d#sha256:}" ] || fail "base layer $d not in the cache"
        assert_eq "GETs of base layer $d" "$(blob_gets base/oci "${d#sha256:}")" 1
    done
    # a second build, another output: no base layer downloaded again
    local first=$DIGEST
    build_ok -C "$T/ctx" --output "oci:$T/out2"
    assert_eq "digest of the rebuild" "$DIGEST" "$first"
    for d in $want; do
        assert_eq "GETs of base layer $d after a rebuild" "$(blob_gets base/oci "${d#sha256:}")" 1
    done
}

@test "a Docker v2 schema2 base pushed by skopeo --format v2s2" {
    reg_manifest base/docker v1 "$T/bm"
    jq -e '.mediaType == "application/vnd.docker.distribution.manifest.v2+json"' "$T/bm" >/dev/null ||
        fail "skopeo did not push a v2s2 manifest: $(cat "$T/bm")"
    local want
    want=$(jq -r '.layers[].digest' "$T/bm")
    assert_eq "same layer blobs as the OCI base" "$want" "$(base_layers base/oci:v1)"
    spec_on "$REG_ADDR/base/docker:v1"
    build_ok -C "$T/ctx" --output "oci:$T/out"
    assert_contains "progress names the base's digest" "$err" "sha256:$(sha256sum "$T/bm" | cut -d' ' -f1)"
    assert_on_base "$T/out" "$want"
    assert_layout_sound "$T/out"
    oci_validate "$T/out"
    assert_eq "base.digest annotation" "$(base_annotation "$T/out" digest)" "sha256:$(sha256sum "$T/bm" | cut -d' ' -f1)"
    # the same image as on the OCI base: only the base annotations differ
    spec_on "$REG_ADDR/base/oci:v1"
    build_ok -C "$T/ctx" --output "oci:$T/out-oci"
    same_image_but_base "$T/out" "$T/out-oci"
}

@test "a multi-platform index is narrowed to the platform (arm64 <=> arm64/v8) and the choice is printed" {
    local idx amd arm
    read -r idx amd arm <"$BATS_FILE_TMPDIR/multi.digests"
    reg_manifest base/multi v1 "$T/idx"
    assert_eq "index digest in the registry" "sha256:$(sha256sum "$T/idx" | cut -d' ' -f1)" "$idx"
    local amd_layer arm_layer
    amd_layer=$(skopeo inspect --raw --tls-verify=false "docker://$REG_ADDR/base/multi@$amd" | jq -r '.layers[0].digest')
    arm_layer=$(skopeo inspect --raw --tls-verify=false "docker://$REG_ADDR/base/multi@$arm" | jq -r '.layers[0].digest')
    [ "$amd_layer" != "$arm_layer" ] || fail "test setup: both platforms have the same layer"

    spec_on "$REG_ADDR/base/multi:v1"
    build_ok -C "$T/ctx" --platform linux/arm64 --output "oci:$T/arm"
    assert_on_base "$T/arm" "$arm_layer"
    assert_contains "progress names the chosen manifest" "$err" "$arm"
    assert_contains "progress names the chosen platform" "$err" "linux/arm64/v8"
    jq -e '.architecture == "arm64" and .os == "linux"' "$(layout_config "$T/arm")" >/dev/null ||
        fail "config of the arm64 build: $(cat "$(layout_config "$T/arm")")"

    build_ok -C "$T/ctx" --platform linux/amd64 --output "oci:$T/amd"
    assert_on_base "$T/amd" "$amd_layer"
    assert_contains "progress names the chosen manifest" "$err" "$amd"
    jq -e '.architecture == "amd64"' "$(layout_config "$T/amd")" >/dev/null || fail "amd64 config"

    # the stage's own platform, with a variant
    spec_on "$REG_ADDR/base/multi:v1" linux/arm64/v8
    build_ok -C "$T/ctx" --output "oci:$T/arm-stage"
    assert_on_base "$T/arm-stage" "$arm_layer"

    # an index whose arm64 entry has no variant answers linux/arm64/v8
    local idx2 amd2 arm2 arm2_layer
    read -r idx2 amd2 arm2 <"$BATS_FILE_TMPDIR/multi-novar.digests"
    arm2_layer=$(skopeo inspect --raw --tls-verify=false "docker://$REG_ADDR/base/multi-novar@$arm2" | jq -r '.layers[0].digest')
    spec_on "$REG_ADDR/base/multi-novar:v1"
    build_ok -C "$T/ctx" --platform linux/arm64/v8 --output "oci:$T/arm-novar"
    assert_on_base "$T/arm-novar" "$arm2_layer"
    assert_contains "progress names the chosen manifest" "$err" "$arm2"

    # no such platform: exit 1, naming what was asked and what there is
    spec_on "$REG_ADDR/base/multi:v1"
    run_ocib build -C "$T/ctx" --platform linux/s390x --output "oci:$T/none"
    assert_failed 1 's390x' 'amd64' 'arm64'
    [ ! -e "$T/none" ] || fail "a failed build left $T/none"
}

@test "@sha256 pins: the pinned manifest is used even after the tag moved; an unknown digest fails naming it" {
    local want pin
    want=$(base_layers base/oci:v1)
    reg_manifest base/oci v1 "$T/bm"
    pin="sha256:$(sha256sum "$T/bm" | cut -d' ' -f1)"
    # the tag moves to another image; the registry still has the pinned one
    skopeo copy -q --dest-tls-verify=false "oci:$BATS_FILE_TMPDIR/base:v2" "docker://$REG_ADDR/base/pin:v1"
    skopeo copy -q --dest-tls-verify=false "oci:$BATS_FILE_TMPDIR/base:v1" "docker://$REG_ADDR/base/pin:old"
    spec_on "$REG_ADDR/base/pin@$pin"
    build_ok -C "$T/ctx" --output "oci:$T/out"
    assert_on_base "$T/out" "$want"
    assert_eq "base.digest annotation" "$(base_annotation "$T/out" digest)" "$pin"
    # the same image as through the tag
    spec_on "$REG_ADDR/base/oci:v1"
    build_ok -C "$T/ctx" --output "oci:$T/out2"
    same_image_but_base "$T/out" "$T/out2"

    # a pin of a multi-platform index, narrowed as usual
    local idx amd arm
    read -r idx amd arm <"$BATS_FILE_TMPDIR/multi.digests"
    spec_on "$REG_ADDR/base/multi@$idx"
    build_ok -C "$T/ctx" --platform linux/arm64 --output "oci:$T/arm"
    assert_contains "progress names the chosen manifest" "$err" "$arm"

    # a digest the registry does not have
    local bogus=sha256:$(printf 'nope' | sha256sum | cut -d' ' -f1)
    spec_on "$REG_ADDR/base/pin@$bogus"
    run_ocib build -C "$T/ctx" --output "oci:$T/bad"
    assert_failed 1 "${bogus#sha256:}"
    [ ! -e "$T/bad" ] || fail "a failed build left $T/bad"
}

@test "push to another repository of the same registry mounts the base layers; they are never uploaded" {
    local want d
    want=$(base_layers base/mnt:v1)
    local gets_before
    gets_before=$(registry_count REG GET '^/v2/.*/blobs/sha256:')
    spec_on "$REG_ADDR/base/mnt:v1"
    build_ok --repo "$REG_ADDR/app/mnt" -C "$T/ctx" --push --tag "$REG_ADDR/app/mnt:v1"
    # downloaded: the base's config, and each base layer once, read to
    # resolve the copy's destination through the base's symlinks (as Docker
    # does); the push itself mounts them
    assert_eq "blob GETs during the build and push" \
        "$(registry_count REG GET '^/v2/.*/blobs/sha256:')" $((gets_before + 1 + $(wc -w <<<"$want")))
    assert_eq "skopeo digest" "$(skopeo inspect --tls-verify=false "docker://$REG_ADDR/app/mnt:v1" | jq -r .Digest)" "$DIGEST"
    [ "$(registry_check_image REG app/mnt v1)" = "$DIGEST" ]
    for d in $want; do
        local h=${d#sha256:}
        assert_eq "mount POSTs for $d" \
            "$(registry_count REG POST "^/v2/app/mnt/blobs/uploads/\\?mount=sha256(:|%3A)$h&from=base(/|%2F)mnt\$")" 1
        assert_eq "uploads of base layer $d" \
            "$(registry_count REG 'PUT|POST' "^/v2/app/mnt/blobs/uploads/.*[?&]digest=sha256(:|%3A)$h")" 0
        assert_eq "GETs of base layer $d (once, by the build)" "$(blob_gets base/mnt "$h")" 1
    done
    # our layer and the config were uploaded (2), nothing else
    assert_eq "blob uploads to app/mnt" \
        "$(registry_count REG 'PUT|POST' '^/v2/app/mnt/blobs/uploads/.*[?&]digest=sha256')" 2

    # after an --output build put the base layers in the cache, a push to a
    # third repository still mounts them instead of uploading
    build_ok -C "$T/ctx" --output "oci:$T/out"
    build_ok --repo "$REG_ADDR/app/mnt2" -C "$T/ctx" --push --tag "$REG_ADDR/app/mnt2:v1"
    for d in $want; do
        local h=${d#sha256:}
        assert_eq "mount POSTs for $d (app/mnt2)" \
            "$(registry_count REG POST "^/v2/app/mnt2/blobs/uploads/\\?mount=sha256(:|%3A)$h&from=base(/|%2F)mnt\$")" 1
        assert_eq "uploads of base layer $d (app/mnt2)" \
            "$(registry_count REG 'PUT|POST' "^/v2/app/mnt2/blobs/uploads/.*[?&]digest=sha256(:|%3A)$h")" 0
    done
    [ "$(registry_check_image REG app/mnt2 v1)" = "$DIGEST" ]
}

@test "inspect a registry image: digest, platform, layers; --json agrees with skopeo" {
    reg_manifest base/oci v1 "$T/bm"
    local dig="sha256:$(sha256sum "$T/bm" | cut -d' ' -f1)" d
    run_ocib inspect "$REG_ADDR/base/oci:v1"
    [ "$status" -eq 0 ] || { show_run; fail "inspect exited $status"; }
    assert_contains "inspect output" "$out" "$dig"
    assert_contains "inspect output" "$out" "linux/amd64"
    while read -r d size; do
        printf '%s\n' "$out" | grep -F "$d" | grep -qw "$size" || fail "no line for layer $d with size $size: $out"
    done < <(jq -r '.layers[] | "\(.digest) \(.size)"' "$T/bm")

    run_ocib inspect --json "$REG_ADDR/base/oci:v1"
    [ "$status" -eq 0 ] || { show_run; fail "inspect --json exited $status"; }
    printf '%s' "$out" >"$T/j"
    assert_eq "--json digest" "$(jq -r .digest "$T/j")" "$dig"
    assert_eq "--json layers" "$(jq -c '[.layers[].digest]' "$T/j")" "$(jq -c '[.layers[].digest]' "$T/bm")"
    assert_eq "--json diff_ids" "$(jq -c '[.layers[].diff_id]' "$T/j")" \
        "$(skopeo inspect --config --tls-verify=false "docker://$REG_ADDR/base/oci:v1" | jq -c .rootfs.diff_ids)"

    # a Docker v2s2 manifest
    reg_manifest base/docker v1 "$T/dm"
    run_ocib inspect --json "$REG_ADDR/base/docker:v1"
    [ "$status" -eq 0 ] || { show_run; fail "inspect --json (v2s2) exited $status"; }
    assert_eq "--json digest (v2s2)" "$(printf '%s' "$out" | jq -r .digest)" "sha256:$(sha256sum "$T/dm" | cut -d' ' -f1)"

    # an index, narrowed by --platform
    local idx amd arm
    read -r idx amd arm <"$BATS_FILE_TMPDIR/multi.digests"
    run_ocib inspect --platform linux/arm64 "$REG_ADDR/base/multi:v1"
    [ "$status" -eq 0 ] || { show_run; fail "inspect --platform exited $status"; }
    assert_contains "inspect of an index (arm64)" "$out" "$arm"
    assert_contains "inspect of an index (arm64)" "$out" "linux/arm64/v8"
    run_ocib inspect --json --platform linux/amd64 "$REG_ADDR/base/multi:v1"
    [ "$status" -eq 0 ] || { show_run; fail "inspect --json --platform exited $status"; }
    assert_eq "--json digest (amd64 of the index)" "$(printf '%s' "$out" | jq -r .digest)" "$amd"

    # a reference that does not exist: exit 1, naming it
    run_ocib inspect "$REG_ADDR/base/oci:nope"
    assert_failed 1 'base/oci'
}

@test "inspect of a multi-platform image shows the index: its digest and every platform" {
    local idx amd arm
    read -r idx amd arm <"$BATS_FILE_TMPDIR/multi.digests"
    run_ocib inspect "$REG_ADDR/base/multi:v1"
    [ "$status" -eq 0 ] || { show_run; fail "inspect exited $status"; }
    assert_contains "inspect of an index names the index digest" "$out" "$idx"
    assert_contains "inspect of an index lists linux/arm64/v8" "$out" "linux/arm64/v8"
    assert_contains "inspect of an index lists linux/amd64" "$out" "linux/amd64"
    run_ocib inspect --json "$REG_ADDR/base/multi:v1"
    [ "$status" -eq 0 ] || { show_run; fail "inspect --json exited $status"; }
    assert_contains "inspect --json of an index names the index digest" "$out" "$idx"
    assert_contains "inspect --json of an index names the arm64 manifest" "$out" "$arm"
}
