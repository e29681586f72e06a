#!/usr/bin/env bats
# Attaching SBOMs and provenance to pushed images (OCI 1.1 artifacts):
# Debian's registry (distribution 2.8, no referrers API) gets the
# sha256-<hex> referrers tag, which keeps both artifacts when two builds
# attach to the same image at once; through regproxy --referrers-api (a
# 1.1 registry: OCI-Subject, /referrers/) no tag is written.

load helpers
load lib/registry
load lib/sbom-fixtures

setup_file() {
    export REGISTRY_MAX_SECONDS=900
    registry_start REG
    proxy_start PX "$REG_ADDR" --referrers-api
}

teardown_file() {
    proxy_stop PX
    registry_stop REG
}

setup() {
    common_setup
    export SOURCE_DATE_EPOCH=1700000000
}

# referrers_tag ADDR REPO DIGEST: the fallback tag's index (or "" when none).
referrers_tag() {
    curl -sf -H "Accept: application/vnd.oci.image.index.v1+json" \
        "http://$1/v2/$2/manifests/sha256-${3#sha256:}" || true
}

@test "attach: --sbom --provenance on distribution 2.8: artifacts with subject and artifactType, listed by the referrers tag" {
    local repo=att/one
    sbom_ctx "$T/ctx"
    build_ok -C "$T/ctx" --sbom --provenance --push --tag "$REG_ADDR/$repo:v1"
    idx=$(referrers_tag "$REG_ADDR" $repo "$DIGEST")
    [ -n "$idx" ] || fail "no referrers tag sha256-${DIGEST#sha256:}"
    [ "$(jq -r '[.manifests[].artifactType] | sort | join(" ")' <<<"$idx")" = "application/spdx+json application/vnd.in-toto+json" ]
    for d in $(jq -r '.manifests[].digest' <<<"$idx"); do
        m=$(curl -sf -H "Accept: application/vnd.oci.image.manifest.v1+json" "http://$REG_ADDR/v2/$repo/manifests/$d")
        jq -e --arg s "$DIGEST" '.subject.digest == $s and .config.mediaType == "application/vnd.oci.empty.v1+json"
              and .config.digest == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
              and (.layers | length) == 1 and .layers[0].mediaType == .artifactType' <<<"$m"
        doc=$(jq -r '.layers[0].digest' <<<"$m")
        curl -sf "http://$REG_ADDR/v2/$repo/blobs/$doc" | jq -e . >/dev/null
    done
    registry_check_image REG $repo v1 >/dev/null
    # attaching again (a rebuild) adds nothing
    build_ok -C "$T/ctx" --sbom --provenance --push --tag "$REG_ADDR/$repo:v1"
    [ "$(referrers_tag "$REG_ADDR" $repo "$DIGEST" | jq '.manifests | length')" = 2 ]
}

@test "attach: two builds attaching to the same image at once both stay in the referrers tag" {
    local repo i
    sbom_ctx "$T/ctx"
    for i in 1 2 3; do
        repo=att/race$i
        (OCIB_CACHE_DIR=$T/c1 "$OCIB" build -C "$T/ctx" --sbom=spdx --push --tag "$REG_ADDR/$repo:v$i" --progress quiet >"$T/a$i" 2>"$T/a$i.err") &
        (OCIB_CACHE_DIR=$T/c2 "$OCIB" build -C "$T/ctx" --sbom=cyclonedx --provenance --push --tag "$REG_ADDR/$repo:v$i" --progress quiet >"$T/b$i" 2>"$T/b$i.err") &
        wait
        cat "$T/a$i.err" "$T/b$i.err" >&2
        d=$(cut -d@ -f2 "$T/a$i")
        [ "$d" = "$(cut -d@ -f2 "$T/b$i")" ]
        types=$(referrers_tag "$REG_ADDR" $repo "$d" | jq -r '[.manifests[].artifactType] | sort | join(" ")')
        [ "$types" = "application/spdx+json application/vnd.cyclonedx+json application/vnd.in-toto+json" ] ||
            fail "round $i: the referrers tag lists: $types"
    done
}

@test "attach: a registry with the referrers API (OCI-Subject) keeps them; no fallback tag is written" {
    local repo=att/api
    sbom_ctx "$T/ctx"
    build_ok -C "$T/ctx" --sbom --provenance --push --tag "$PX_ADDR/$repo:v1" --insecure-registry "$PX_ADDR"
    [ -z "$(referrers_tag "$REG_ADDR" $repo "$DIGEST")" ] || fail "a fallback tag was written"
    idx=$(curl -sf "http://$PX_ADDR/v2/$repo/referrers/$DIGEST")
    [ "$(jq -r '[.manifests[].artifactType] | sort | join(" ")' <<<"$idx")" = "application/spdx+json application/vnd.in-toto+json" ]
}

@test "verbs: ocib referrers lists type, digest, size and signature; ocib sbom prints the attached document or --generate computes one" {
    local repo=att/verbs
    sbom_ctx "$T/ctx"
    openssl ecparam -name prime256v1 -genkey -noout -out "$T/key.pem" 2>/dev/null
    build_ok -C "$T/ctx" --sbom --provenance --sign-key "$T/key.pem" --push --tag "$REG_ADDR/$repo:v1"
    run_ocib referrers "$REG_ADDR/$repo:v1"
    [ "$status" -eq 0 ]
    [ "$(wc -l <<<"$out")" = 2 ]
    grep -Eq '^application/spdx\+json +sha256:[0-9a-f]{64} +[0-9]+ signed$' <<<"$out" || fail "$out"
    run_ocib referrers "$REG_ADDR/$repo:v1" --json
    jq -e '.manifests | length == 2 and all(.signed == true and (.size > 0))' <<<"$out"
    run_ocib sbom "docker://$REG_ADDR/$repo:v1"
    [ "$status" -eq 0 ]
    jq -e --arg d "$DIGEST" '.spdxVersion == "SPDX-2.3" and (.packages[] | select(.SPDXID == "SPDXRef-image") | .versionInfo == $d)' <<<"$out"
    build_ok -C "$T/ctx" --output "oci:$T/plain"
    run_ocib sbom "oci:$T/plain"
    [ "$status" -eq 1 ]
    [[ "$err" == *"has no SBOM attached"* ]]
    run_ocib sbom --generate "oci:$T/plain"
    [ "$status" -eq 0 ]
    [ "$(jq -r '[.packages[] | select(.primaryPackagePurpose == "LIBRARY") | .name] | join(" ")' <<<"$out")" = "bar libfoo1 @scope/pkg express ms" ]
}

@test "verify-against: a rebuild passes against the pushed image and fails naming the file after one source byte changes" {
    local repo=att/audit
    sbom_ctx "$T/ctx"
    build_ok -C "$T/ctx" --push --tag "$REG_ADDR/$repo:v1"
    pushed=$DIGEST
    OCIB_CACHE_DIR=$T/other-cache build_ok -C "$T/ctx" --output "oci:$T/re" --verify-against "$REG_ADDR/$repo:v1"
    [ "$DIGEST" = "$pushed" ]
    sed -i 's/4.19.2/4.19.3/' "$T/ctx/root/app/node_modules/express/package.json"
    run_ocib build -C "$T/ctx" --output "oci:$T/re2" --verify-against "$REG_ADDR/$repo:v1"
    [ "$status" -eq 1 ]
    [[ "$err" == *"app/node_modules/express/package.json"* ]] || fail "the report does not name the file: $err"
    [[ "$err" == *"differs from $REG_ADDR/$repo:v1"* ]]
    [ -z "$out" ]
}
