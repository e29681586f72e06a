#!/usr/bin/env bats
# --sign-key: cosign-style signatures (simple-signing payload under the
# sha256-<hex>.sig tag, the signature in the layer's annotation), checked
# with openssl against the public key: the image's and each artifact's
# signature verifies, a flipped byte does not, an unsigned image has none,
# and the key reaches no log, cache or output.
#
# Debian 12's skopeo and podman are built with sigstore disabled ("Debian-
# local change: sigstore disabled"): they refuse every sigstoreSigned
# policy, signed or not, so the policy check cannot be run here.

load helpers
load lib/registry
load lib/sbom-fixtures

setup_file() {
    export REGISTRY_MAX_SECONDS=900
    registry_start REG
}

teardown_file() {
    registry_stop REG
}

setup() {
    common_setup
    need openssl
    openssl ecparam -name prime256v1 -genkey -noout -out "$T/key.pem" 2>/dev/null
    openssl ec -in "$T/key.pem" -pubout -out "$T/pub.pem" 2>/dev/null
}

# check_sig REPO DIGEST: the .sig manifest of DIGEST verifies with pub.pem;
# leaves the payload in $T/payload and the DER signature in $T/sig.der.
check_sig() {
    local m
    m=$(curl -sf -H "Accept: application/vnd.oci.image.manifest.v1+json" \
        "http://$REG_ADDR/v2/$1/manifests/sha256-${2#sha256:}.sig") || fail "no signature tag for $2" || return 1
    jq -e '.layers | length == 1 and .[0].mediaType == "application/vnd.dev.cosign.simplesigning.v1+json"' <<<"$m" >/dev/null || return 1
    curl -sf "http://$REG_ADDR/v2/$1/blobs/$(jq -r '.layers[0].digest' <<<"$m")" >"$T/payload"
    jq -r '.layers[0].annotations["dev.cosignproject.cosign/signature"]' <<<"$m" | base64 -d >"$T/sig.der"
    jq -e --arg d "$2" '.critical.image["docker-manifest-digest"] == $d and .critical.type == "cosign container image signature"
        and .optional == null' "$T/payload" >/dev/null || return 1
    openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/sig.der" "$T/payload" >/dev/null
}

@test "sign: the image and each artifact carry a signature that verifies with the public key" {
    local repo=sign/one
    sbom_ctx "$T/ctx"
    build_ok -C "$T/ctx" --sbom --provenance --sign-key "$T/key.pem" --push --tag "$REG_ADDR/$repo:v1" --progress plain
    check_sig $repo "$DIGEST"
    [ "$(jq -r '.critical.identity["docker-reference"]' "$T/payload")" = "$REG_ADDR/$repo:v1" ]
    idx=$(curl -sf -H "Accept: application/vnd.oci.image.index.v1+json" "http://$REG_ADDR/v2/$repo/manifests/sha256-${DIGEST#sha256:}")
    for a in $(jq -r '.manifests[].digest' <<<"$idx"); do
        check_sig $repo "$a"
    done
    # the key: not in the log, the cache or the pushed bytes
    body=$(grep -v '^-----' "$T/key.pem" | tr -d '\n' | cut -c1-40)
    ! grep -q "$body" <<<"$err"
    ! grep -rqF "$body" "$OCIB_CACHE_DIR"
    ! grep -rqF "$body" "$REG_DIR"
}

@test "sign: a tampered signature or payload does not verify; an unsigned image has no signature" {
    local repo=sign/two
    sbom_ctx "$T/ctx"
    build_ok -C "$T/ctx" --sign-key "$T/key.pem" --push --tag "$REG_ADDR/$repo:v1"
    check_sig $repo "$DIGEST"
    cp "$T/sig.der" "$T/bad.der"
    printf '\x01' | dd of="$T/bad.der" bs=1 seek=10 conv=notrunc 2>/dev/null
    ! openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/bad.der" "$T/payload" >/dev/null 2>&1
    sed 's/sha256:/sha256:0/' "$T/payload" >"$T/bad.payload"
    ! openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/sig.der" "$T/bad.payload" >/dev/null 2>&1
    # the same image pushed unsigned elsewhere has no signature tag
    build_ok -C "$T/ctx" --push --tag "$REG_ADDR/sign/unsigned:v1"
    ! curl -sf "http://$REG_ADDR/v2/sign/unsigned/manifests/sha256-${DIGEST#sha256:}.sig" >/dev/null
}

@test "sign: a key that is not ECDSA P-256 is refused before anything is built" {
    sbom_ctx "$T/ctx"
    openssl genpkey -algorithm ed25519 -out "$T/ed.pem" 2>/dev/null
    run_ocib build -C "$T/ctx" --sign-key "$T/ed.pem" --push --tag "$REG_ADDR/sign/bad:v1"
    [ "$status" -eq 2 ]
    [[ "$err" == *"--sign-key '$T/ed.pem': not an ECDSA P-256 key"* ]]
    run_ocib build -C "$T/ctx" --sign-key "$T/missing.pem" --output "oci:$T/out"
    [ "$status" -eq 1 ]
    [[ "$err" == *"cannot open"* ]]
}
