#!/usr/bin/env bats
# Mirrors from registries.conf, as containers/image reads them
# (containers-registries.conf(5)): [[registry]] prefix/location with
# [[registry.mirror]]s tried in order for pulls, the name's own location
# last; pushes go to the name's own registry only; blocked names refuse.
# Whatever a mirror serves is verified: a lock's digest is what a build
# gets even when the mirror's tag moved, and a mirror serving wrong bytes
# (regproxy in front of a real registry) is passed over or named.
#
# The primary "registry.invalid" never resolves, so anything that reaches
# it fails: a build that succeeds from it came through a mirror.

load helpers
load lib/registry

setup_file() {
    export REGISTRY_MAX_SECONDS=900
    local d=$BATS_FILE_TMPDIR
    registry_start MIR
    registry_start PRI
    proxy_start BAD "$MIR_ADDR"
    make_oci_layout "$d/one" v1 1500 >"$d/one.digest"
    make_oci_layout "$d/two" v1 1700 >"$d/two.digest"
    skopeo copy -q --dest-tls-verify=false "oci:$d/one:v1" "docker://$MIR_ADDR/hub/lib/base:v1"
    skopeo copy -q --dest-tls-verify=false "oci:$d/one:v1" "docker://$PRI_ADDR/lib/base:v1"
}

teardown_file() {
    proxy_stop BAD
    registry_stop PRI
    registry_stop MIR
}

setup() {
    common_setup
    export HOME=$T/home
    unset XDG_CONFIG_HOME
    mkdir -p "$HOME"
    export CONTAINERS_REGISTRIES_CONF=$T/registries.conf
    ONE=$(cat "$BATS_FILE_TMPDIR/one.digest")
    TWO=$(cat "$BATS_FILE_TMPDIR/two.digest")
}

# spec_on FROM: a context in $T/ctx whose one stage starts from FROM.
spec_on() {
    mkdir -p "$T/ctx"
    jq -n --arg from "$1" '{version: 1, image: "example.com/app/x",
        stages: [{from: $from, layers: [{name: "app", files: [{path: "/app/hello", content: "hi\n"}]}]}]}' \
        >"$T/ctx/ocib.json"
}

# base_digest LAYOUT: the base.digest annotation of the built image.
base_digest() {
    jq -r '.annotations["org.opencontainers.image.base.digest"]' "$(layout_manifest "$1")"
}

# conf_mirror PREFIX MIRROR_LOCATION...: a registries.conf whose one table
# sends PREFIX to those mirrors, in order.
conf_mirror() {
    local prefix=$1 m
    shift
    {
        printf '# written by 39-registry-mirrors\nunqualified-search-registries = ["docker.io"]\n'
        printf 'short-name-mode = "enforcing"\n\n[[registry]]\nprefix = "%s"\nlocation = "%s"\n' \
            "$prefix" "$prefix"
        for m in "$@"; do
            printf '\n[[registry.mirror]]\nlocation = "%s"\n' "$m"
        done
        printf '\n[aliases]\n"alpine" = "docker.io/library/alpine"\n'
    } >"$CONTAINERS_REGISTRIES_CONF"
}

@test "a base named by an unreachable registry is pulled through its mirror (the namespace rewritten), and progress says so" {
    conf_mirror registry.invalid "$MIR_ADDR/hub"
    spec_on registry.invalid/lib/base:v1
    build_ok -C "$T/ctx" -o "oci:$T/out" --progress=plain
    assert_eq "base digest" "$(base_digest "$T/out")" "$ONE"
    assert_contains "progress" "$err" "through mirror $MIR_ADDR/hub/lib/base" || return 1
    # the layers came from the mirror too (--output fetches them)
    [ "$(registry_count MIR GET "^/v2/hub/lib/base/blobs/")" -ge 2 ] ||
        fail "the base's blobs were not fetched from the mirror"
    # skopeo, reading the same registries.conf, agrees on the image
    # (containers/image wants a plain-HTTP mirror marked insecure)
    sed -i 's|^location = "'"$MIR_ADDR"'/hub"$|&\ninsecure = true|' "$CONTAINERS_REGISTRIES_CONF"
    skopeo --registries-conf "$CONTAINERS_REGISTRIES_CONF" copy -q --src-tls-verify=false \
        "docker://registry.invalid/lib/base:v1" "oci:$T/sk:v1" ||
        fail "skopeo cannot pull the same name through the mirror"
    assert_eq "skopeo's copy" "$(layout_digest "$T/sk" v1)" "$ONE"
    # and ocib reads the insecure mirror the same way
    rm -rf "$OCIB_CACHE_DIR"
    build_ok -C "$T/ctx" -o "oci:$T/out3"
    assert_eq "base digest with an insecure mirror" "$(base_digest "$T/out3")" "$ONE"
}

@test "a lock pins digest D: after the mirror's tag moves, the build still gets D through the mirror" {
    conf_mirror registry.invalid "$MIR_ADDR/hub"
    skopeo copy -q --dest-tls-verify=false "oci:$BATS_FILE_TMPDIR/one:v1" "docker://$MIR_ADDR/hub/lib/moving:v1"
    spec_on registry.invalid/lib/moving:v1
    run_ocib lock -C "$T/ctx"
    [ "$status" -eq 0 ] || { show_run; fail "ocib lock through the mirror failed"; }
    assert_eq "locked digest" "$(jq -r '.images[].manifests[]' "$T/ctx/ocib.lock.json")" "$ONE"
    # the mirror's tag moves to another image
    skopeo copy -q --dest-tls-verify=false "oci:$BATS_FILE_TMPDIR/two:v1" "docker://$MIR_ADDR/hub/lib/moving:v1"
    build_ok -C "$T/ctx" -o "oci:$T/out" --locked --progress=plain
    assert_eq "base of the locked build" "$(base_digest "$T/out")" "$ONE"
    assert_contains "progress" "$err" "locked to registry.invalid/lib/moving@$ONE" || return 1
    # without the lock the moved tag is what comes (so the lock mattered)
    rm "$T/ctx/ocib.lock.json"
    build_ok -C "$T/ctx" -o "oci:$T/out2"
    assert_eq "base of the unlocked build" "$(base_digest "$T/out2")" "$TWO"
}

@test "a mirror that serves a corrupt layer is passed over for the next (the registry itself); with no other place the build fails naming the digest" {
    local layer
    layer=$(jq -r '.layers[0].digest' "$(layout_manifest "$BATS_FILE_TMPDIR/one" v1)")
    proxy_config BAD '{"clear_faults": true, "reset_stats": true}' >/dev/null
    proxy_fault BAD "{\"type\": \"corrupt_blob\", \"value\": \"$layer\", \"count\": -1}"
    # the mirror (BAD, rewritten to hub/) first, then the registry itself
    conf_mirror "$PRI_ADDR" "$BAD_ADDR/hub"
    spec_on "$PRI_ADDR/lib/base:v1"
    build_ok -C "$T/ctx" -o "oci:$T/out"
    [ "$(proxy_stats BAD '.faults_fired["corrupt_blob"] // 0')" -ge 1 ] ||
        fail "the mirror never served the corrupt layer"
    [ "$(registry_count PRI GET "^/v2/lib/base/blobs/$layer\$")" -ge 1 ] ||
        fail "the layer was not fetched again from the registry after the mirror's bad copy"
    assert_eq "layer of the built image" "$(jq -r '.layers[0].digest' "$(layout_manifest "$T/out")")" "$layer"
    [ "$(sha256sum <"$OCIB_CACHE_DIR/blobs/sha256/${layer#sha256:}" | cut -d' ' -f1)" = "${layer#sha256:}" ] ||
        fail "the cache holds wrong bytes for $layer"
    # only the corrupt mirror and an unreachable registry: fail, naming the digest
    rm -rf "$OCIB_CACHE_DIR"
    conf_mirror registry.invalid "$BAD_ADDR/hub"
    spec_on registry.invalid/lib/base:v1
    run_ocib build -C "$T/ctx" -o "oci:$T/out2"
    assert_failed 1 "${layer#sha256:}" "content does not match its digest" "mirror $BAD_ADDR/hub/lib/base" ||
        return 1
    [ ! -e "$OCIB_CACHE_DIR/blobs/sha256/${layer#sha256:}" ] || fail "the corrupt layer is in the cache"
}

@test "a manifest pinned by digest that a mirror serves different bytes for is refused" {
    skopeo inspect --raw --tls-verify=false "docker://$MIR_ADDR/hub/lib/base:v1" >/dev/null
    # the mirror answers every manifest request with the other image's manifest
    cp "$(layout_manifest "$BATS_FILE_TMPDIR/two" v1)" "$T/other.json"
    proxy_config BAD "{\"clear_faults\": true, \"faults\": [{\"type\": \"replace_body\", \"value\": \"$T/other.json\", \"kind\": \"manifest_get\", \"count\": -1}]}" >/dev/null
    conf_mirror registry.invalid "$BAD_ADDR/hub"
    spec_on "registry.invalid/lib/base@$ONE"
    run_ocib build -C "$T/ctx" -o "oci:$T/out"
    assert_failed 1 "$ONE" "mirror $BAD_ADDR/hub/lib/base" || return 1
    assert_contains "error" "$err" "does not match" || return 1
    # with the registry itself after the lying mirror, the right image comes
    conf_mirror "$PRI_ADDR" "$BAD_ADDR/hub"
    spec_on "$PRI_ADDR/lib/base@$ONE"
    build_ok -C "$T/ctx" -o "oci:$T/out"
    assert_eq "base digest" "$(base_digest "$T/out")" "$ONE"
    proxy_config BAD '{"clear_faults": true}' >/dev/null
}

@test "pull-from-mirror = \"digest-only\": a tag is not pulled from the mirror, a digest is" {
    cat >"$CONTAINERS_REGISTRIES_CONF" <<EOF
[[registry]]
location = "registry.invalid"
[[registry.mirror]]
location = "$MIR_ADDR/hub"
pull-from-mirror = "digest-only"
EOF
    spec_on registry.invalid/lib/base:v1
    run_ocib build -C "$T/ctx" -o "oci:$T/out"
    assert_failed 1 "registry.invalid" || return 1
    spec_on "registry.invalid/lib/base@$ONE"
    build_ok -C "$T/ctx" -o "oci:$T/out"
    assert_eq "base digest" "$(base_digest "$T/out")" "$ONE"
}

@test "pushes go to the named registry only, never to its mirror" {
    local before
    conf_mirror "$PRI_ADDR" "$MIR_ADDR/hub"
    before=$(registry_count MIR 'PUT|POST|PATCH' '^/v2/')
    run_ocib push "oci:$BATS_FILE_TMPDIR/two:v1" "$PRI_ADDR/pushed/app:v1"
    [ "$status" -eq 0 ] || { show_run; fail "push failed"; }
    registry_check_image PRI pushed/app v1 >/dev/null || fail "the image is not in the named registry"
    [ "$(registry_count MIR 'PUT|POST|PATCH' '^/v2/')" -eq "$before" ] ||
        fail "something was pushed to the mirror"
}

@test "blocked = true refuses pulls and pushes, naming the file and line" {
    cat >"$CONTAINERS_REGISTRIES_CONF" <<EOF
# line 1
[[registry]]
prefix = "$PRI_ADDR/lib"
location = "$PRI_ADDR/lib"
blocked = true
EOF
    spec_on "$PRI_ADDR/lib/base:v1"
    run_ocib build -C "$T/ctx" -o "oci:$T/out"
    assert_failed 1 "registry $PRI_ADDR/lib/base: blocked by $CONTAINERS_REGISTRIES_CONF:2" || return 1
    run_ocib push "oci:$BATS_FILE_TMPDIR/two:v1" "$PRI_ADDR/lib/pushed:v1"
    assert_failed 1 "registry $PRI_ADDR/lib/pushed: blocked" || return 1
    run_ocib inspect "$PRI_ADDR/lib/base:v1"
    assert_failed 1 ": blocked by" || return 1
    # a name outside the blocked prefix is not
    run_ocib push "oci:$BATS_FILE_TMPDIR/two:v1" "$PRI_ADDR/other/pushed:v1"
    [ "$status" -eq 0 ] || { show_run; fail "a push outside the blocked prefix failed"; }
}

@test "a registries.conf mistake fails naming the file, line and key; a missing default file is no mirror" {
    printf '[[registry]]\nlocation = "%s"\n\n[[registry.mirror]]\nlocation = "%s"\ninsecure = "yes"\n' \
        registry.invalid "$MIR_ADDR" >"$CONTAINERS_REGISTRIES_CONF"
    spec_on registry.invalid/lib/base:v1
    run_ocib build -C "$T/ctx" -o "oci:$T/out"
    assert_failed 1 "$CONTAINERS_REGISTRIES_CONF:6: registry.mirror.insecure: expected a boolean" || return 1
    printf '[registry]\nlocation = "x.io"\n' >"$CONTAINERS_REGISTRIES_CONF"
    run_ocib inspect "$PRI_ADDR/lib/base:v1"
    assert_failed 1 "$CONTAINERS_REGISTRIES_CONF:1: registry: expected \[\[registry\]\]" || return 1
    # CONTAINERS_REGISTRIES_CONF naming a missing file is an error ...
    rm "$CONTAINERS_REGISTRIES_CONF"
    run_ocib inspect "$PRI_ADDR/lib/base:v1"
    assert_failed 1 "registries.conf" || return 1
    # ... but no ~/.config/containers/registries.conf is fine
    unset CONTAINERS_REGISTRIES_CONF
    run_ocib inspect "$PRI_ADDR/lib/base:v1"
    [ "$status" -eq 0 ] || { show_run; fail "inspect without any user registries.conf failed"; }
}

@test "~/.config/containers/registries.conf is read when CONTAINERS_REGISTRIES_CONF is not set" {
    unset CONTAINERS_REGISTRIES_CONF
    mkdir -p "$HOME/.config/containers"
    printf '[[registry]]\nlocation = "registry.invalid"\n[[registry.mirror]]\nlocation = "%s/hub"\n' \
        "$MIR_ADDR" >"$HOME/.config/containers/registries.conf"
    run_ocib inspect registry.invalid/lib/base:v1
    [ "$status" -eq 0 ] || { show_run; fail "inspect through the user's registries.conf failed"; }
    assert_contains "inspect" "$out" "$ONE" || return 1
}
