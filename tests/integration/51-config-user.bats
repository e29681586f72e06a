#!/usr/bin/env bats
# config.user naming a user or group the image lacks fails the build
# (issue 12, item 9), read the way the image has /etc/passwd and /etc/group:
# the base's, one a run layer changed, one a copy layer replaced, one a
# layer deleted (a whiteout), a base only in the registry; numeric ids need
# no entry. podman judges that an accepted name really starts.

load helpers
load lib/registry
load lib/run-fixtures

setup_file() {
    need busybox jq || return 1
    export REGISTRY_MAX_SECONDS=600
    registry_start REG || return 1
    local d=$BATS_FILE_TMPDIR
    busybox_base_ctx "$d/bbctx" || return 1
    base_build "$d/bbctx" "$d/base" || return 1
    base_push "$d/base" "$REG_ADDR/ocib/busybox:1" || return 1
    export BASE="oci:$d/base:1" BASE_REG="$REG_ADDR/ocib/busybox:1"
}

teardown_file() {
    registry_stop REG
}

setup() {
    common_setup
}

# user_spec FROM USER [LAYERS_JSON]: a one-stage spec in $T/ctx.
user_spec() {
    mkdir -p "$T/ctx"
    cat >"$T/ctx/ocib.json" <<JSON
{"version": 1, "stages": [{"name": "rt", "from": "$1", "layers": [${3:-}],
  "config": {"user": "$2", "cmd": ["/bin/id"]}}]}
JSON
}

# user_ok / user_refused PATTERN: the build of $T/ctx succeeds, or fails
# with exit 1 naming config.user and PATTERN and writing no output.
user_ok() {
    run_ocib build -C "$T/ctx" --output "oci:$T/out"
    [ "$status" -eq 0 ] || { show_run; fail "the build failed"; }
}

user_refused() {
    run_ocib build -C "$T/ctx" --output "oci:$T/refused"
    [ "$status" -eq 1 ] || { show_run; fail "expected exit 1"; }
    assert_failed "$1"
    [ ! -e "$T/refused" ] || fail "a refused build wrote its output"
}

assert_failed() {
    [ "$(grep -c '^ocib: ' <<<"$err")" -eq 1 ] || { show_run; fail "expected one error line"; }
    grep -Eq "^ocib: stages\[0\]\.config\.user \"[^\"]+\": $1" <<<"$err" ||
        { show_run; fail "the error does not say /$1/"; }
}

@test "config.user: the base's names pass, a missing user or group fails naming the key" {
    user_spec "$BASE" app
    user_ok
    user_spec "$BASE" app:app
    user_ok
    user_spec "$BASE" nobody
    user_refused "user 'nobody' is not in the stage's /etc/passwd"
    user_spec "$BASE" app:staff
    user_refused "group 'staff' is not in the stage's /etc/group"
    user_spec "$BASE" 1000:staff
    user_refused "group 'staff' is not in the stage's /etc/group"
    # numeric ids need no entry, as podman and Kubernetes run them
    user_spec "$BASE" 4242:4242
    user_ok
    # a scratch image has no /etc/passwd at all
    user_spec scratch app
    user_refused "user 'app' is not in the stage's /etc/passwd"
}

@test "config.user: a user a run layer adds passes, and podman runs the image as that user" {
    need podman runc umoci || return 1
    user_spec "$BASE" svc \
        '{"name": "adduser", "run": "echo svc:x:1234:1234::/:/bin/sh >>/etc/passwd"}'
    user_ok
    export PODMAN_BASE=$T/podman
    local id o
    mv "$T/out" "$T/svc"
    id=$(podman_pull_oci "$T/svc" latest) || return 1
    o=$(podman_run "$id" 2>&1) || fail "podman run failed: $o"
    grep -q 'uid=1234' <<<"$o" || fail "the container did not run as svc (1234): $o"
}

@test "config.user: a copied /etc/passwd shadows the base's; a deleted /etc/group removes its groups" {
    user_spec "$BASE" web '{"name": "ids", "copy": [{"src": ["passwd"], "dest": "/etc/passwd"}]}'
    echo 'web:x:2000:2000::/:/bin/sh' >"$T/ctx/passwd"
    user_ok
    user_spec "$BASE" app '{"name": "ids", "copy": [{"src": ["passwd"], "dest": "/etc/passwd"}]}'
    echo 'web:x:2000:2000::/:/bin/sh' >"$T/ctx/passwd"
    user_refused "user 'app' is not in the stage's /etc/passwd"
    # a stage built on one that deleted /etc/group: read from the layers,
    # where the whiteout decides
    mkdir -p "$T/ctx"
    cat >"$T/ctx/ocib.json" <<JSON
{"version": 1, "stages": [
  {"name": "base", "from": "$BASE", "layers": [{"name": "rm", "run": "rm /etc/group"}]},
  {"name": "rt", "from": "base", "layers": [], "config": {"user": "app"}}]}
JSON
    user_ok
    sed -i 's/"user": "app"/"user": "app:app"/' "$T/ctx/ocib.json"
    run_ocib build -C "$T/ctx" --output "oci:$T/refused"
    [ "$status" -eq 1 ] || { show_run; fail "expected exit 1"; }
    grep -Eq "^ocib: stages\[1\]\.config\.user \"app:app\": group 'app' is not in the stage's /etc/group" \
        <<<"$err" || { show_run; fail "the whiteout of /etc/group was not seen"; }
}

@test "config.user: a base only in the registry is read from its layers" {
    user_spec "$BASE_REG" app
    user_ok
    user_spec "$BASE_REG" nobody
    user_refused "user 'nobody' is not in the stage's /etc/passwd"
}
