#!/usr/bin/env bats
# Registries behind a private CA and registries that want client
# certificates, set up as containers/image users set them up
# (containers-certs.d(5)): ca.crt, client.cert and client.key in
# ~/.config/containers/certs.d/HOST:PORT/, or --cert-dir DIR.  Two real
# registries speak TLS on 127.0.0.1 with a throwaway CA's certificate; the
# second also requires a client certificate.  skopeo, reading the same
# files, judges what ocib pushed.

load helpers
load lib/registry
load lib/pki

setup_file() {
    export REGISTRY_MAX_SECONDS=900
    local d=$BATS_FILE_TMPDIR
    pki_make "$d/pki"
    registry_start TLS --tls "$d/pki/server.crt" "$d/pki/server.key"
    registry_start MTLS --tls "$d/pki/server.crt" "$d/pki/server.key" --client-ca "$d/pki/ca.crt"
    make_oci_layout "$d/base" v1 2000 >"$d/base.digest"
}

teardown_file() {
    registry_stop MTLS
    registry_stop TLS
}

setup() {
    common_setup
    export HOME=$T/home
    unset XDG_CONFIG_HOME
    mkdir -p "$HOME"
    PKI=$BATS_FILE_TMPDIR/pki
    BASE=$BATS_FILE_TMPDIR/base
}

# certs_d HOST FILE:NAME...: ~/.config/containers/certs.d/HOST with each
# FILE of the PKI copied in under NAME; prints the directory.
certs_d() {
    local dir=$HOME/.config/containers/certs.d/$1 f
    shift
    mkdir -p "$dir"
    for f in "$@"; do
        cp "$PKI/${f%%:*}" "$dir/${f#*:}"
    done
    printf '%s\n' "$dir"
}

# cert_dir NAME FILE:NAME...: the same in $T/NAME, for --cert-dir.
cert_dir() {
    local dir=$T/$1 f
    shift
    mkdir -p "$dir"
    for f in "$@"; do
        cp "$PKI/${f%%:*}" "$dir/${f#*:}"
    done
    printf '%s\n' "$dir"
}

# spec_on FROM: a context in $T/ctx whose one stage starts from FROM.
spec_on() {
    mkdir -p "$T/ctx"
    jq -n --arg from "$1" '{version: 1, image: "example.com/app/x",
        stages: [{from: $from, layers: [{name: "app", files: [{path: "/app/hello", content: "hi\n"}]}]}]}' \
        >"$T/ctx/ocib.json"
}

@test "a registry behind a private CA: push, build from it and push to it with ca.crt in ~/.config/containers/certs.d/HOST:PORT" {
    certs_d "$TLS_ADDR" ca.crt:ca.crt >/dev/null
    run_ocib push "oci:$BASE:v1" "$TLS_ADDR/tls/base:v1"
    [ "$status" -eq 0 ] || { show_run; fail "push over TLS with the CA in certs.d failed"; }
    assert_eq "pushed digest" "$out" "$TLS_ADDR/tls/base@$(cat "$BATS_FILE_TMPDIR/base.digest")"
    # skopeo, trusting the same CA, finds what was pushed
    skopeo inspect --raw --cert-dir "$HOME/.config/containers/certs.d/$TLS_ADDR" \
        "docker://$TLS_ADDR/tls/base:v1" >"$T/m.json" || fail "skopeo cannot read the pushed image over TLS"
    assert_eq "manifest digest" "sha256:$(sha256sum <"$T/m.json" | cut -d' ' -f1)" "$(cat "$BATS_FILE_TMPDIR/base.digest")"
    spec_on "$TLS_ADDR/tls/base:v1"
    build_ok --repo "$TLS_ADDR/tls/app" -C "$T/ctx" -t "$TLS_ADDR/tls/app:v1" --push -o "oci:$T/out"
    skopeo inspect --raw --cert-dir "$HOME/.config/containers/certs.d/$TLS_ADDR" \
        "docker://$TLS_ADDR/tls/app:v1" >/dev/null || fail "the built image is not in the TLS registry"
    # nothing went over plain HTTP: the registry logs a TLS handshake error for that
    ! grep -q "http: TLS handshake error.*client sent an HTTP request" "$TLS_LOG" ||
        fail "ocib spoke plain HTTP to a loopback host that has a certs.d directory"
}

@test "--cert-dir DIR wins over certs.d: push, inspect and build trust DIR's CA" {
    # a certs.d directory that trusts the wrong CA, which --cert-dir overrides
    certs_d "$TLS_ADDR" other-ca.crt:ca.crt >/dev/null
    local dir
    dir=$(cert_dir certs ca.crt:my-ca.crt)
    run_ocib push --cert-dir "$dir" "oci:$BASE:v1" "$TLS_ADDR/certdir/base:v1"
    [ "$status" -eq 0 ] || { show_run; fail "push --cert-dir failed"; }
    run_ocib inspect --cert-dir "$dir" "$TLS_ADDR/certdir/base:v1"
    [ "$status" -eq 0 ] || { show_run; fail "inspect --cert-dir failed"; }
    assert_contains "inspect" "$out" "$(cat "$BATS_FILE_TMPDIR/base.digest")"
    spec_on "$TLS_ADDR/certdir/base:v1"
    build_ok --cert-dir "$dir" -C "$T/ctx" -o "oci:$T/out"
    # without --cert-dir the wrong CA of certs.d is used, and fails
    run_ocib inspect "$TLS_ADDR/certdir/base:v1"
    assert_failed 1 "registry $TLS_ADDR: TLS:" || { show_run; return 1; }
}

@test "without the registry's CA the command fails: a verify error naming the host and the CA files read, exit 1" {
    local dir
    dir=$(certs_d "$TLS_ADDR" other-ca.crt:ca.crt)
    run_ocib push "oci:$BASE:v1" "$TLS_ADDR/noca/base:v1"
    assert_failed 1 "registry $TLS_ADDR: TLS: " || { show_run; return 1; }
    assert_contains "error" "$err" "certificate problem" || { show_run; return 1; }
    assert_contains "error" "$err" "CA files read: $dir/ca.crt" || { show_run; return 1; }
    # an empty --cert-dir: the system roots only, which do not know the CA
    mkdir -p "$T/empty"
    run_ocib inspect --cert-dir "$T/empty" "$TLS_ADDR/noca/base:v1"
    assert_failed 1 "registry $TLS_ADDR: TLS: " || { show_run; return 1; }
    assert_contains "error" "$err" "system roots only" || { show_run; return 1; }
    # a --cert-dir that does not exist is the user's mistake, named
    run_ocib inspect --cert-dir "$T/nope" "$TLS_ADDR/noca/base:v1"
    assert_failed 1 "--cert-dir '$T/nope'" || { show_run; return 1; }
}

@test "a registry that wants a client certificate: client.cert and client.key work; without them the handshake is refused, naming the host" {
    local dir
    dir=$(certs_d "$MTLS_ADDR" ca.crt:ca.crt client.crt:client.cert client.key:client.key)
    run_ocib push "oci:$BASE:v1" "$MTLS_ADDR/mtls/base:v1"
    [ "$status" -eq 0 ] || { show_run; fail "push with a client certificate failed"; }
    skopeo inspect --raw --cert-dir "$dir" "docker://$MTLS_ADDR/mtls/base:v1" >/dev/null ||
        fail "skopeo with the same client certificate cannot read the image"
    spec_on "$MTLS_ADDR/mtls/base:v1"
    build_ok -C "$T/ctx" -o "oci:$T/out"
    # the key's bytes are never printed
    assert_no_output_of_key() {
        local k
        k=$(sed -n 2p "$PKI/client.key")
        [[ $out$err != *"$k"* ]] || fail "the client key appeared in the output"
    }
    assert_no_output_of_key
    rm "$dir/client.cert" "$dir/client.key"
    run_ocib inspect "$MTLS_ADDR/mtls/base:v1"
    assert_failed 1 "registry $MTLS_ADDR: TLS: " || { show_run; return 1; }
    assert_contains "error" "$err" "no client certificate in $dir" || { show_run; return 1; }
}

@test "a client.cert without its client.key (or the key alone) is an error naming both files and the host" {
    local dir
    dir=$(certs_d "$MTLS_ADDR" ca.crt:ca.crt client.crt:client.cert)
    run_ocib inspect "$MTLS_ADDR/mtls/base:v1"
    assert_failed 1 "registry $MTLS_ADDR: '$dir/client.cert' has no matching '$dir/client.key'" ||
        { show_run; return 1; }
    rm "$dir/client.cert"
    cp "$PKI/client.key" "$dir/client.key"
    run_ocib push "oci:$BASE:v1" "$MTLS_ADDR/mtls/other:v1"
    assert_failed 1 "registry $MTLS_ADDR: '$dir/client.key' has no matching '$dir/client.cert'" ||
        { show_run; return 1; }
    [[ $err != *"PRIVATE KEY"* ]] || fail "the key's content was printed"
}

@test "a ca.crt that is not a PEM certificate is an error naming the file, not a silent fallback" {
    local dir
    dir=$(certs_d "$TLS_ADDR")
    echo "not a certificate" >"$dir/ca.crt"
    run_ocib inspect "$TLS_ADDR/tls/base:v1"
    assert_failed 1 "registry $TLS_ADDR: CA file '$dir/ca.crt' holds no PEM certificate" ||
        { show_run; return 1; }
}

@test "every verb that talks to registries documents --cert-dir, and the manual page lists it" {
    local verb
    for verb in build push inspect diff lock login; do
        run_ocib help "$verb"
        [ "$status" -eq 0 ] || { show_run; fail "ocib help $verb failed"; }
        assert_contains "ocib help $verb" "$out" "--cert-dir DIR" || return 1
    done
    run_ocib help --man
    assert_contains "man page" "$out" "cert\\-dir" || return 1
    assert_contains "man page" "$out" "certs.d" || return 1
}
