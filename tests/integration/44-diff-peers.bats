#!/usr/bin/env bats
# `ocib diff` against images other tools made: one built by buildah
# (--timestamp 0) from the equivalent Dockerfile, and ocib's own image once
# skopeo has pushed it to a real registry.  An auditor compares across
# tools and transports; the comparison must work and say where they differ.

load helpers
load lib/registry

setup_file() {
    registry_start REG
}

teardown_file() {
    registry_stop REG
}

setup() {
    common_setup
}

@test "diff: buildah's image of the same Dockerfile is compared down to the layer, naming the causes" {
    need buildah
    mkdir -p ctx
    printf 'hello\n' >ctx/hello.txt
    printf 'FROM scratch\nCOPY hello.txt /hello.txt\n' >ctx/Dockerfile
    printf '{"version":1,"stages":[{"from":"scratch","layers":[{"copy":[{"src":["hello.txt"],"dest":"/hello.txt"}]}]}]}\n' >ctx/ocib.json
    local b=(buildah --storage-driver vfs --root "$T/broot" --runroot "$T/brun")
    "${b[@]}" bud --timestamp 0 -t "ocib-diff-peer-$BATS_TEST_NUMBER" ctx >"$T/bud.log" 2>&1 ||
        fail "buildah bud failed: $(tail -5 "$T/bud.log")"
    "${b[@]}" push "ocib-diff-peer-$BATS_TEST_NUMBER" "oci:$T/bud:1" >>"$T/bud.log" 2>&1 ||
        fail "buildah push failed: $(tail -5 "$T/bud.log")"
    build_ok -C ctx --output "oci:$T/ocib" --tag localhost:5000/peer/bud:1

    run_ocib diff "oci:$T/bud:1" "oci:$T/ocib:1"
    [ "$status" -eq 1 ] || { show_run; fail "diff of buildah's and ocib's images exited $status, not 1"; }
    assert_contains "the config difference is named by JSON path" "$out" "history[0].created_by"
    assert_contains "the layer difference is named" "$out" "layer 0"
    assert_contains "the diff_ids are compared" "$out" "diff_id"

    run_ocib diff --json "oci:$T/bud:1" "oci:$T/ocib:1"
    [ "$status" -eq 1 ] || { show_run; fail "diff --json exited $status"; }
    echo "$out" | jq -e '.identical == false and (.differences | length) > 0' >/dev/null ||
        fail "diff --json does not report the differences: $out"
}

@test "diff: ocib's image pushed by skopeo to a registry is identical to the layout it came from" {
    need skopeo
    mkdir -p ctx
    printf 'hello\n' >ctx/hello.txt
    printf '{"version":1,"stages":[{"from":"scratch","layers":[{"copy":[{"src":["hello.txt"],"dest":"/hello.txt"}]}]}]}\n' >ctx/ocib.json
    build_ok -C ctx --output "oci:$T/ocib" --tag "localhost:5000/peer/x:1"
    skopeo copy -q --dest-tls-verify=false "oci:$T/ocib:1" "docker://$REG_ADDR/peer/x:1" ||
        fail "skopeo copy failed"
    run_ocib diff "$REG_ADDR/peer/x:1" "oci:$T/ocib:1"
    [ "$status" -eq 0 ] || { show_run; fail "diff of the pushed image and its layout exited $status"; }
    [ "$out" = identical ] || fail "expected 'identical', got: $out"
}
