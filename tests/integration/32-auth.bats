#!/usr/bin/env bats
# Registry authentication end to end: `ocib login` / `logout` against an
# htpasswd (Basic) registry, config.json `auths`, credential helpers
# (`credHelpers`, `credsStore`), and Bearer tokens through the token proxy.
# Credentials must never reach stdout or stderr.

load helpers
load lib/registry

APW='S3cret-Alice-pw!42'
BPW='Tok3n-Bob-pw#17'

setup_file() {
    export REGISTRY_MAX_SECONDS=900
    registry_start AREG --htpasswd "alice:$APW"
    registry_start REG
    proxy_start TOK "$REG_ADDR" --token-auth "bob:$BPW"
}

teardown_file() {
    proxy_stop TOK
    registry_stop REG
    registry_stop AREG
}

setup() {
    common_setup
    export DOCKER_CONFIG=$T/docker
    export HOME=$T/home
    mkdir -p "$HOME"
    CTX=$(copy_example hello)
}

# run_ocib_stdin INPUT ARGS...: run_ocib with INPUT (no newline added) on stdin.
run_ocib_stdin() {
    local input=$1 o=$BATS_TEST_TMPDIR/.run/stdout e=$BATS_TEST_TMPDIR/.run/stderr
    shift
    status=0
    printf '%s' "$input" | timeout -k 10 "$OCIB_TEST_TIMEOUT" "$OCIB" "$@" >"$o" 2>"$e" || status=$?
    out=$(cat "$o")
    err=$(cat "$e")
}

# assert_no_secret TEXT SECRET...: none of the secrets (nor their base64 in a
# user:pass pair) appear in TEXT.
assert_no_secret() {
    local text=$1 s
    shift
    for s in "$@"; do
        [[ $text != *"$s"* ]] || fail "a credential ('$s') appeared in the output" || return 1
    done
    [[ $text != *"Authorization"* && $text != *"Bearer "* ]] ||
        fail "an Authorization header appeared in the output" || return 1
}

# write_auths HOST USER PASS: a config.json with one auths entry.
write_auths() {
    mkdir -p "$DOCKER_CONFIG"
    jq -n --arg h "$1" --arg a "$(printf '%s:%s' "$2" "$3" | base64 -w0)" \
        '{auths: {($h): {auth: $a}}}' >"$DOCKER_CONFIG/config.json"
}

# fake_helper NAME USER SECRET: docker-credential-NAME on PATH, answering
# `get` for any server with USER/SECRET; logs "ARG<TAB>STDIN" per call.
fake_helper() {
    mkdir -p "$T/bin"
    cat >"$T/bin/docker-credential-$1" <<EOF
#!/bin/sh
input=\$(cat)
printf '%s\t%s\n' "\$1" "\$input" >>"$T/helper-$1.log"
case \$1 in
get) printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\n' "\$input" "$2" "$3" ;;
*) exit 1 ;;
esac
EOF
    chmod +x "$T/bin/docker-credential-$1"
    export PATH=$T/bin:$PATH
}

@test "login with a wrong password: exit 1 naming the registry; the password is nowhere; config.json untouched" {
    mkdir -p "$DOCKER_CONFIG"
    echo '{"auths": {"other.example:5000": {"auth": "eDp5"}}, "psFormat": "keep-me"}' >"$DOCKER_CONFIG/config.json"
    cp "$DOCKER_CONFIG/config.json" "$T/before.json"
    run_ocib_stdin 'WrongPassw0rd-XYZ' login "$AREG_ADDR" -u alice --password-stdin
    assert_failed 1 "$AREG_ADDR"
    assert_no_secret "$out$err" 'WrongPassw0rd-XYZ' "$(printf 'alice:WrongPassw0rd-XYZ' | base64 -w0)"
    cmp -s "$T/before.json" "$DOCKER_CONFIG/config.json" || fail "a failed login changed config.json: $(cat "$DOCKER_CONFIG/config.json")"
    ! grep -rq 'WrongPassw0rd' "$DOCKER_CONFIG" "$HOME" || fail "the wrong password was written somewhere"
    # an unknown user, and no config.json at all: nothing is created
    rm -rf "$DOCKER_CONFIG"
    run_ocib_stdin "$APW" login "$AREG_ADDR" -u mallory --password-stdin
    assert_failed 1 "$AREG_ADDR"
    assert_no_secret "$out$err" "$APW"
    [ ! -e "$DOCKER_CONFIG/config.json" ] || fail "a failed login wrote config.json"
}

@test "login: config.json with mode 0600, other keys kept; build --push works; logout forgets" {
    mkdir -p "$DOCKER_CONFIG"
    echo '{"auths": {"other.example:5000": {"auth": "eDp5"}}, "psFormat": "keep-me"}' >"$DOCKER_CONFIG/config.json"
    chmod 0644 "$DOCKER_CONFIG/config.json"
    # without credentials: refused, naming the registry
    run_ocib build -C "$CTX" --push --tag "$AREG_ADDR/auth/hello:v1"
    assert_failed 1 "$AREG_ADDR"

    run_ocib_stdin "$APW" login "$AREG_ADDR" -u alice --password-stdin
    [ "$status" -eq 0 ] || { show_run; fail "login exited $status"; }
    assert_no_secret "$out$err" "$APW" "$(printf 'alice:%s' "$APW" | base64 -w0)"
    local cfg=$DOCKER_CONFIG/config.json
    assert_eq "mode of config.json" "$(stat -c %a "$cfg")" 600
    assert_eq "stored credential" "$(jq -r --arg h "$AREG_ADDR" '.auths[$h].auth' "$cfg" | base64 -d)" "alice:$APW"
    assert_eq "other auths kept" "$(jq -r '.auths["other.example:5000"].auth' "$cfg")" eDp5
    assert_eq "other keys kept" "$(jq -r .psFormat "$cfg")" keep-me

    build_ok --repo "$AREG_ADDR/auth/hello" -C "$CTX" --push --tag "$AREG_ADDR/auth/hello:v1"
    assert_no_secret "$out$err" "$APW" "$(printf 'alice:%s' "$APW" | base64 -w0)"
    assert_eq "skopeo digest" "$(skopeo inspect --tls-verify=false --creds "alice:$APW" \
        "docker://$AREG_ADDR/auth/hello:v1" | jq -r .Digest)" "$DIGEST"
    [ "$(registry_check_image AREG auth/hello v1)" = "$DIGEST" ]
    # and pulls as a base, and inspects
    local pushed=$DIGEST
    mkdir -p "$T/ctx2"
    jq -n --arg f "$AREG_ADDR/auth/hello:v1" '{version: 1, image: "example.com/x/y", stages: [{from: $f, layers: [{files: [{path: "/x", content: "x"}]}]}]}' \
        >"$T/ctx2/ocib.json"
    build_ok -C "$T/ctx2" --output "oci:$T/out"
    run_ocib inspect --json "$AREG_ADDR/auth/hello:v1"
    [ "$status" -eq 0 ] || { show_run; fail "inspect exited $status"; }
    assert_eq "inspect digest" "$(printf '%s' "$out" | jq -r .digest)" "$pushed"

    run_ocib logout "$AREG_ADDR"
    [ "$status" -eq 0 ] || { show_run; fail "logout exited $status"; }
    jq -e --arg h "$AREG_ADDR" '.auths[$h] == null' "$cfg" >/dev/null || fail "logout kept the entry: $(cat "$cfg")"
    assert_eq "other auths kept by logout" "$(jq -r '.auths["other.example:5000"].auth' "$cfg")" eDp5
    ! grep -q "$(printf 'alice:%s' "$APW" | base64 -w0)" "$cfg" || fail "logout left the credential in config.json"
    run_ocib inspect "$AREG_ADDR/auth/hello:v1"
    assert_failed 1 "$AREG_ADDR"
}

@test "login without DOCKER_CONFIG writes ~/.docker/config.json" {
    unset DOCKER_CONFIG
    run_ocib_stdin "$APW" login "$AREG_ADDR" -u alice --password-stdin
    [ "$status" -eq 0 ] || { show_run; fail "login exited $status"; }
    assert_eq "mode of ~/.docker/config.json" "$(stat -c %a "$HOME/.docker/config.json")" 600
    build_ok -C "$CTX" --push --tag "$AREG_ADDR/auth/home:v1"
    [ "$(registry_check_image AREG auth/home v1)" = "$DIGEST" ]
}

@test "credential helpers: credHelpers per registry, credsStore by default" {
    fake_helper ocibtest alice "$APW"
    mkdir -p "$DOCKER_CONFIG"
    jq -n --arg h "$AREG_ADDR" '{credHelpers: {($h): "ocibtest"}}' >"$DOCKER_CONFIG/config.json"
    build_ok --repo "$AREG_ADDR/helper/hello" -C "$CTX" --push --tag "$AREG_ADDR/helper/hello:v1"
    assert_no_secret "$out$err" "$APW"
    [ "$(registry_check_image AREG helper/hello v1)" = "$DIGEST" ]
    grep -q "^get	.*$AREG_ADDR" "$T/helper-ocibtest.log" ||
        fail "the helper was not asked for $AREG_ADDR: $(cat "$T/helper-ocibtest.log" 2>&1)"

    # credsStore for every registry without a credHelpers entry
    fake_helper ocibstore alice "$APW"
    jq -n '{credsStore: "ocibstore"}' >"$DOCKER_CONFIG/config.json"
    build_ok --repo "$AREG_ADDR/helper/store" -C "$CTX" --push --tag "$AREG_ADDR/helper/store:v1"
    [ "$(registry_check_image AREG helper/store v1)" = "$DIGEST" ]
    grep -q "^get	.*$AREG_ADDR" "$T/helper-ocibstore.log" || fail "credsStore helper not asked"

    # a helper that answers a wrong secret: exit 1, naming the registry, no secret shown
    fake_helper ocibbad alice 'Helper-Wr0ng-Secret'
    jq -n --arg h "$AREG_ADDR" '{credHelpers: {($h): "ocibbad"}}' >"$DOCKER_CONFIG/config.json"
    run_ocib build -C "$CTX" --push --tag "$AREG_ADDR/helper/bad:v1"
    assert_failed 1 "$AREG_ADDR"
    assert_no_secret "$out$err" 'Helper-Wr0ng-Secret'
}

@test "Bearer tokens through the token proxy: push, pull as a base, mount with the source's pull scope" {
    write_auths "$TOK_ADDR" bob "$BPW"
    local before
    before=$(proxy_stats TOK .tokens_issued)
    build_ok --repo "$TOK_ADDR/tok/base" -C "$CTX" --push --tag "$TOK_ADDR/tok/base:v1"
    assert_no_secret "$out$err" "$BPW"
    local base=$DIGEST
    # the image is in the registry behind the proxy
    assert_eq "digest behind the proxy" "$(skopeo inspect --tls-verify=false "docker://$REG_ADDR/tok/base:v1" | jq -r .Digest)" "$base"
    [ "$(registry_check_image REG tok/base v1)" = "$base" ]
    [ "$(proxy_stats TOK .tokens_issued)" -gt "$before" ] || fail "no token was issued"

    # a stage on it, pushed to another repository: base layers mounted
    mkdir -p "$T/ctx2"
    jq -n --arg f "$TOK_ADDR/tok/base:v1" '{version: 1, image: "example.com/x/y", stages: [{from: $f, layers: [{files: [{path: "/x", content: "x"}]}]}]}' \
        >"$T/ctx2/ocib.json"
    local mounts
    mounts=$(proxy_stats TOK .mounts)
    build_ok --repo "$TOK_ADDR/tok/app" -C "$T/ctx2" --push --tag "$TOK_ADDR/tok/app:v1"
    assert_no_secret "$out$err" "$BPW"
    assert_eq "mounts through the token proxy" "$(proxy_stats TOK .mounts)" $((mounts + 2))
    [ "$(registry_check_image REG tok/app v1)" = "$DIGEST" ]
    # pulled with --output from an empty cache: fetched through Bearer auth
    local gets
    gets=$(proxy_count TOK blob_get)
    export OCIB_CACHE_DIR=$T/cache-pull
    build_ok -C "$T/ctx2" --output "oci:$T/out"
    assert_layout_sound "$T/out"
    [ "$(proxy_count TOK blob_get)" -ge $((gets + 3)) ] || fail "base layers and config not fetched through the proxy"
    local d
    for d in $(skopeo inspect --raw --tls-verify=false "docker://$REG_ADDR/tok/base:v1" | jq -r '.layers[].digest'); do
        [ -f "$OCIB_CACHE_DIR/blobs/sha256/${d#sha256:}" ] || fail "base layer $d not fetched into the cache"
    done
    ! grep -qiE "$BPW|authorization|bearer" "$TOK_LOG" || fail "a credential reached the proxy log"

    # wrong password: exit 1, naming the registry, no secret shown
    write_auths "$TOK_ADDR" bob 'Not-The-Pw-99'
    run_ocib build -C "$CTX" --push --tag "$TOK_ADDR/tok/base:v2"
    assert_failed 1 "$TOK_ADDR"
    assert_no_secret "$out$err" 'Not-The-Pw-99' "$BPW"
    # and login through the token server
    rm -f "$DOCKER_CONFIG/config.json"
    run_ocib_stdin 'Not-The-Pw-99' login "$TOK_ADDR" -u bob --password-stdin
    assert_failed 1 "$TOK_ADDR"
    run_ocib_stdin "$BPW" login "$TOK_ADDR" -u bob --password-stdin
    [ "$status" -eq 0 ] || { show_run; fail "login through the token server exited $status"; }
    assert_no_secret "$out$err" "$BPW"
    assert_eq "mode of config.json" "$(stat -c %a "$DOCKER_CONFIG/config.json")" 600
}
