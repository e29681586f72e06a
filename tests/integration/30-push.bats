#!/usr/bin/env bats
# Pushing to a real registry (Debian's docker-registry on loopback), judged
# by skopeo and by the registry's own request log: `build --push`,
# `push oci:` / `push docker-archive:`, --digest-file, what a re-push and a
# source-only change upload, and the tag rules (git short SHA, latest).

load helpers
load lib/registry

setup_file() {
    export REGISTRY_MAX_SECONDS=900
    registry_start REG
}

teardown_file() {
    registry_stop REG
}

setup() {
    common_setup
}

# hello_ctx REPO [DEST]: the hello example with its "image" pointing at REPO.
hello_ctx() {
    local ctx
    ctx=$(copy_example hello "${2:-$BATS_TEST_TMPDIR/ctx-hello}") || return 1
    jq --arg i "$1" '.image = $i' "$ctx/ocib.json" >"$ctx/ocib.json.new" &&
        mv "$ctx/ocib.json.new" "$ctx/ocib.json"
    printf '%s\n' "$ctx"
}

# skopeo_digest REF: the manifest digest skopeo sees for docker://REF.
skopeo_digest() {
    skopeo inspect --tls-verify=false "docker://$1" | jq -r .Digest
}

# skopeo_raw REF FILE: the manifest bytes as the registry serves them.
skopeo_raw() {
    skopeo inspect --raw --tls-verify=false "docker://$1" >"$2"
}

# uploads REPO: how many blob uploads the registry completed for REPO (the
# request that carries ?digest= closes an upload: monolithic or chunked).
uploads() {
    registry_count REG 'POST|PUT' "^/v2/$1/blobs/uploads/.*[?&]digest=sha256"
}

# uploaded_digests REPO: the digests of those uploads, sorted.
uploaded_digests() {
    registry_wait_log REG
    jq -R -r --arg re "^/v2/$1/blobs/uploads/.*[?&]digest=sha256" \
        'fromjson? | select(.msg == "response completed" and (.["http.request.method"] == "PUT" or .["http.request.method"] == "POST"))
         | .["http.request.uri"] | select(test($re)) | capture("digest=(?<d>sha256(%3A|:)[0-9a-f]{64})").d
         | sub("%3A"; ":")' "$REG_LOG" | sort
}

@test "build --push: stdout and --digest-file are REPO@digest; skopeo inspects and copies back the same digest" {
    local repo=$REG_ADDR/push/hello ctx
    ctx=$(hello_ctx "$repo")
    build_ok --repo "$repo" -C "$ctx" --push --tag "$repo:v1" --digest-file "$T/digest"
    assert_contains "the push line names the tag" "$err" "pushed $repo:v1"
    # the digest file holds exactly the stdout line
    assert_eq "--digest-file" "$(cat "$T/digest")" "$REF"
    [ "$(tail -c1 "$T/digest" | od -An -c | tr -d ' ')" = '\n' ] || fail "digest file not newline-terminated"
    [ "$(wc -l <"$T/digest")" -eq 1 ] || fail "digest file has more than one line"

    assert_eq "skopeo inspect digest" "$(skopeo_digest "$repo:v1")" "$DIGEST"
    skopeo_raw "$repo:v1" "$T/raw"
    assert_eq "sha256 of the served manifest" "sha256:$(sha256sum "$T/raw" | cut -d' ' -f1)" "$DIGEST"
    jq -e --arg mt "$MT_MANIFEST" '.mediaType == $mt and .schemaVersion == 2 and (.layers | length) == 2' "$T/raw" >/dev/null ||
        fail "unexpected manifest: $(cat "$T/raw")"
    [ "$(registry_check_image REG push/hello v1)" = "$DIGEST" ]
    # by digest too
    [ "$(registry_check_image REG push/hello "$DIGEST")" = "$DIGEST" ]

    # skopeo copies it back into an OCI layout: same digest, sound layout,
    # byte-identical to what a local build writes
    skopeo copy -q --src-tls-verify=false "docker://$repo:v1" "oci:$T/back:v1"
    assert_eq "copied-back digest" "$(layout_digest "$T/back" v1)" "$DIGEST"
    assert_layout_sound "$T/back"
    oci_validate "$T/back"
    local pushed=$DIGEST
    build_ok -C "$ctx" --output "oci:$T/local"
    assert_eq "digest of a local build of the same spec" "$DIGEST" "$pushed"
    assert_same_file "$(layout_config "$T/local")" "$(layout_config "$T/back" v1)"
    local d
    for d in $(jq -r '.layers[].digest' "$T/raw"); do
        assert_same_file "$(blob_path "$T/local" "$d")" "$(blob_path "$T/back" "$d")"
    done
}

@test "build --push to several --tag: one upload of each blob, every tag names the same manifest" {
    local repo=$REG_ADDR/push/multitag ctx
    ctx=$(hello_ctx "$repo")
    build_ok --repo "$repo" -C "$ctx" --push --tag "$repo:a" --tag "$repo:b" --tag "$repo:c"
    local t
    for t in a b c; do
        assert_eq "digest of tag $t" "$(skopeo_digest "$repo:$t")" "$DIGEST"
        [ "$(registry_check_image REG push/multitag "$t")" = "$DIGEST" ]
    done
    assert_eq "blob uploads" "$(uploads push/multitag)" 3
    [ "$(registry_count REG PUT '^/v2/push/multitag/manifests/(a|b|c)$')" -eq 3 ] ||
        fail "expected one manifest PUT per tag"
    # each blob uploaded once: no digest appears twice
    [ -z "$(uploaded_digests push/multitag | uniq -d)" ] || fail "a blob was uploaded twice"
}

@test "a second push of an unchanged image uploads no blob, even from an empty cache" {
    local repo=$REG_ADDR/push/again ctx
    ctx=$(hello_ctx "$repo")
    build_ok --repo "$repo" -C "$ctx" --push --tag "$repo:v1"
    local first=$DIGEST n
    n=$(uploads push/again)
    assert_eq "uploads of the first push (2 layers + config)" "$n" 3
    local heads
    heads=$(registry_count REG HEAD '^/v2/push/again/blobs/sha256:')

    build_ok --repo "$repo" -C "$ctx" --push --tag "$repo:v2"
    assert_eq "digest of the re-push" "$DIGEST" "$first"
    assert_eq "uploads after the re-push" "$(uploads push/again)" "$n"
    assert_eq "upload sessions after the re-push" \
        "$(registry_count REG 'POST|PATCH' '^/v2/push/again/blobs/uploads/')" 3
    [ "$(registry_count REG HEAD '^/v2/push/again/blobs/sha256:')" -ge $((heads + 3)) ] ||
        fail "the re-push did not ask the registry (HEAD) about its blobs"

    # a fresh cache rebuilds the same bytes, and still uploads nothing
    export OCIB_CACHE_DIR=$T/cache2
    build_ok --repo "$repo" -C "$ctx" --push --tag "$repo:v3"
    assert_eq "digest from an empty cache" "$DIGEST" "$first"
    assert_eq "uploads after the push from an empty cache" "$(uploads push/again)" "$n"
    local t
    for t in v1 v2 v3; do
        assert_eq "digest of $t" "$(skopeo_digest "$repo:$t")" "$first"
    done
    [ "$(registry_check_image REG push/again v3)" = "$first" ]
}

@test "a source-only change uploads only the changed layer, the config and the manifest" {
    local repo=$REG_ADDR/push/change ctx
    ctx=$(hello_ctx "$repo")
    build_ok --repo "$repo" -C "$ctx" --push --tag "$repo:v1"
    local first=$DIGEST before
    skopeo_raw "$repo:v1" "$T/m1"
    before=$(uploaded_digests push/change)
    [ "$(printf '%s\n' "$before" | grep -c .)" -eq 3 ] || fail "first push: uploads $before"

    echo "a changed greeting" >"$ctx/greeting.txt"
    build_ok --repo "$repo" -C "$ctx" --push --tag "$repo:v2"
    [ "$DIGEST" != "$first" ] || fail "the change did not change the image"
    skopeo_raw "$repo:v2" "$T/m2"
    assert_eq "served manifest digest" "sha256:$(sha256sum "$T/m2" | cut -d' ' -f1)" "$DIGEST"
    # the site layer (0) changed, the generated one (1) did not
    [ "$(jq -r '.layers[0].digest' "$T/m1")" != "$(jq -r '.layers[0].digest' "$T/m2")" ] ||
        fail "layer 0 did not change"
    assert_eq "unchanged layer 1" "$(jq -r '.layers[1].digest' "$T/m2")" "$(jq -r '.layers[1].digest' "$T/m1")"
    local want got
    want=$(jq -r '.layers[0].digest, .config.digest' "$T/m2" | sort)
    got=$(comm -13 <(printf '%s\n' "$before") <(uploaded_digests push/change))
    assert_eq "blobs uploaded by the second push" "$got" "$want"
    assert_eq "upload sessions in all" "$(registry_count REG POST '^/v2/push/change/blobs/uploads/')" 5
    assert_eq "manifest PUTs" "$(registry_count REG PUT '^/v2/push/change/manifests/')" 2
    [ "$(registry_check_image REG push/change v2)" = "$DIGEST" ]
    [ "$(registry_check_image REG push/change v1)" = "$first" ]
}

@test "push oci:DIR[:tag] and docker-archive:FILE keep the manifest digest" {
    local ctx
    ctx=$(hello_ctx "$REG_ADDR/push/ignored")
    build_ok -C "$ctx" --output "oci:$T/out" --output "docker-archive:$T/img.tar"
    local built=$DIGEST tag
    assert_eq "layout digest" "$(layout_digest "$T/out")" "$built"
    tag=$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$T/out/index.json")

    run_ocib push "oci:$T/out" "$REG_ADDR/push/fromoci:v1"
    [ "$status" -eq 0 ] || { show_run; fail "push oci:DIR exited $status"; }
    assert_digest_stdout "$REG_ADDR/push/fromoci"
    assert_eq "pushed digest (oci:DIR)" "$DIGEST" "$built"
    assert_eq "skopeo digest (oci:DIR)" "$(skopeo_digest "$REG_ADDR/push/fromoci:v1")" "$built"
    [ "$(registry_check_image REG push/fromoci v1)" = "$built" ]

    if [ -n "$tag" ] && [ "$tag" != null ]; then
        run_ocib push --digest-file "$T/d2" "oci:$T/out:$tag" "$REG_ADDR/push/fromoci:v2"
        [ "$status" -eq 0 ] || { show_run; fail "push oci:DIR:$tag exited $status"; }
        assert_digest_stdout "$REG_ADDR/push/fromoci"
        assert_eq "pushed digest (oci:DIR:$tag)" "$DIGEST" "$built"
        assert_eq "push --digest-file" "$(cat "$T/d2")" "$out"
        # the blobs were there already
        assert_eq "uploads for the second tag" "$(uploads push/fromoci)" 3
    fi

    run_ocib push "docker-archive:$T/img.tar" "$REG_ADDR/push/fromarchive:v1"
    [ "$status" -eq 0 ] || { show_run; fail "push docker-archive: exited $status"; }
    assert_digest_stdout "$REG_ADDR/push/fromarchive"
    assert_eq "pushed digest (docker-archive)" "$DIGEST" "$built"
    assert_eq "skopeo digest (docker-archive)" "$(skopeo_digest "$REG_ADDR/push/fromarchive:v1")" "$built"
    [ "$(registry_check_image REG push/fromarchive v1)" = "$built" ]
}

@test "skopeo's docker:// prefix works wherever a reference is read; --output oci:DIR:TAG names the image TAG" {
    local ctx built
    ctx=$(hello_ctx "docker://$REG_ADDR/push/dprefix")
    # the spec's image, --tag and the layout tag
    build_ok --repo "$REG_ADDR/push/dprefix" -C "$ctx" --push --tag "docker://$REG_ADDR/push/dprefix:v1" \
        --output "oci:$T/out:release-1"
    built=$DIGEST
    assert_eq "skopeo digest of the pushed tag" "$(skopeo_digest "$REG_ADDR/push/dprefix:v1")" "$built"
    assert_eq "the layout's only ref name" \
        "$(jq -r '[.manifests[].annotations["org.opencontainers.image.ref.name"]] | join(",")' "$T/out/index.json")" release-1
    assert_eq "skopeo reads oci:DIR:TAG" "$(skopeo inspect "oci:$T/out:release-1" | jq -r .Digest)" "$built"
    # push DEST, inspect, diff and a spec's from
    run_ocib push "oci:$T/out:release-1" "docker://$REG_ADDR/push/dprefix:v2"
    [ "$status" -eq 0 ] || { show_run; fail "push to docker:// exited $status"; }
    assert_eq "skopeo digest after push to docker://" "$(skopeo_digest "$REG_ADDR/push/dprefix:v2")" "$built"
    run_ocib inspect --json "docker://$REG_ADDR/push/dprefix:v2"
    [ "$status" -eq 0 ] || { show_run; fail "inspect docker:// exited $status"; }
    assert_eq "inspect docker:// digest" "$(jq -r .digest <<<"$out")" "$built"
    run_ocib diff "docker://$REG_ADDR/push/dprefix:v1" "oci:$T/out:release-1"
    [ "$status" -eq 0 ] || { show_run; fail "diff docker:// vs oci: exited $status"; }
    mkdir "$T/ctx2"
    cat >"$T/ctx2/ocib.json" <<EOF
{"version": 1, "image": "$REG_ADDR/push/dprefix2", "stages": [
  {"from": "docker://$REG_ADDR/push/dprefix:v2", "layers": [{"files": [{"path": "/x", "content": "x"}]}]}]}
EOF
    build_ok -C "$T/ctx2" --output "oci:$T/out2"
    # a local name where a reference is wanted, and the reverse, are refused
    run_ocib push "oci:$T/out" "oci:$T/elsewhere"
    assert_failed 2 'expected a registry reference'
    run_ocib push "docker://$REG_ADDR/push/dprefix:v2" "$REG_ADDR/push/x:v1"
    assert_failed 2 'expected oci:DIR.* or docker-archive:FILE'
    run_ocib build -C "$ctx" --output "docker://$REG_ADDR/push/x"
    assert_failed 2 '--output: invalid image name'
}

@test "push of a foreign OCI layout (several layers, one over 16 MiB) equals skopeo's push" {
    local want
    want=$(make_oci_layout "$T/lay" v1 1000 300000 $((17 * 1024 * 1024)))
    run_ocib push "oci:$T/lay:v1" "$REG_ADDR/push/foreign:v1"
    [ "$status" -eq 0 ] || { show_run; fail "push exited $status"; }
    assert_digest_stdout "$REG_ADDR/push/foreign"
    assert_eq "pushed digest" "$DIGEST" "$want"
    [ "$(registry_check_image REG push/foreign v1)" = "$want" ]
    # the big layer went in chunks (PATCH), the small ones not necessarily
    [ "$(registry_count REG PATCH '^/v2/push/foreign/blobs/uploads/')" -ge 2 ] ||
        fail "a 17 MiB blob was not sent in chunks"
    skopeo copy -q --dest-tls-verify=false "oci:$T/lay:v1" "docker://$REG_ADDR/push/foreign-skopeo:v1"
    assert_eq "skopeo's digest" "$(skopeo_digest "$REG_ADDR/push/foreign-skopeo:v1")" "$(skopeo_digest "$REG_ADDR/push/foreign:v1")"
    skopeo copy -q --src-tls-verify=false "docker://$REG_ADDR/push/foreign:v1" "oci:$T/back:v1"
    local d
    for d in $(jq -r '.config.digest, .layers[].digest' "$(layout_manifest "$T/lay" v1)"); do
        assert_same_file "$(blob_path "$T/lay" "$d")" "$(blob_path "$T/back" "$d")"
    done
}

@test "tags: without --tag the git short SHA; latest alone gets the SHA added; outside git it is an error" {
    local repo=$REG_ADDR/push/gitrepo ctx sha
    ctx=$(hello_ctx "$repo")
    git -C "$ctx" init -q
    git -C "$ctx" add -A
    git -C "$ctx" -c user.name=t -c user.email=t@example.com commit -q -m init
    sha=$(git -C "$ctx" rev-parse --short HEAD)

    build_ok --repo "$repo" -C "$ctx" --push
    local first=$DIGEST
    skopeo list-tags --tls-verify=false "docker://$repo" | jq -r '.Tags[]' | sort >"$T/tags"
    assert_eq "tags after a push without --tag" "$(cat "$T/tags")" "$sha"
    assert_eq "digest of :$sha" "$(skopeo_digest "$repo:$sha")" "$first"

    # latest alone: the short SHA is pushed alongside
    local repo2=$REG_ADDR/push/gitlatest
    build_ok --repo "$repo2" -C "$ctx" --push --tag "$repo2:latest"
    skopeo list-tags --tls-verify=false "docker://$repo2" | jq -r '.Tags[]' | sort >"$T/tags2"
    assert_eq "tags after --tag :latest" "$(cat "$T/tags2")" "$(printf '%s\n' "$sha" latest | sort)"
    assert_eq "digest of :latest" "$(skopeo_digest "$repo2:latest")" "$DIGEST"
    assert_eq "digest of :$sha" "$(skopeo_digest "$repo2:$sha")" "$DIGEST"
    # latest next to another tag: no SHA added
    local repo3=$REG_ADDR/push/gitboth
    build_ok --repo "$repo3" -C "$ctx" --push --tag "$repo3:latest" --tag "$repo3:1.0"
    skopeo list-tags --tls-verify=false "docker://$repo3" | jq -r '.Tags[]' | sort >"$T/tags3"
    assert_eq "tags after --tag :latest --tag :1.0" "$(cat "$T/tags3")" "$(printf '%s\n' 1.0 latest | sort)"

    # outside git: no --tag, or only latest, is a usage error, nothing pushed
    local plain
    plain=$(hello_ctx "$REG_ADDR/push/nogit" "$T/plain")
    local manifests_before
    manifests_before=$(registry_count REG PUT '^/v2/push/nogit/manifests/')
    run_ocib build -C "$plain" --push
    assert_failed 2 'tag'
    run_ocib build -C "$plain" --push --tag "$REG_ADDR/push/nogit:latest"
    assert_failed 2 'latest'
    run_ocib build -C "$plain" --push --tag "$REG_ADDR/push/nogit"
    assert_failed 2 'latest'
    assert_eq "manifest PUTs for a refused push" \
        "$(registry_count REG 'PUT|POST' '^/v2/push/nogit/')" "$manifests_before"
    # a plain --tag outside git works
    build_ok --repo "$REG_ADDR/push/nogit" -C "$plain" --push --tag "$REG_ADDR/push/nogit:1"
    assert_eq "digest outside git" "$(skopeo_digest "$REG_ADDR/push/nogit:1")" "$DIGEST"
}

@test "--format docker pushes Docker's media types without annotations; podman keeps the Healthcheck an OCI image loses" {
    need podman runc
    local ctx docker_digest oci_digest
    ctx=$(hello_ctx "$REG_ADDR/push/fmt")
    jq '.stages[0].config.healthcheck = {"test": "cat greeting.txt", "interval": "30s", "retries": 2}' \
        "$ctx/ocib.json" >"$ctx/o.json" && mv "$ctx/o.json" "$ctx/ocib.json"
    build_ok --repo "$REG_ADDR/push/fmt" -C "$ctx" --format docker --push --tag "$REG_ADDR/push/fmt:docker"
    docker_digest=$DIGEST
    skopeo_raw "$REG_ADDR/push/fmt:docker" "$T/raw"
    assert_eq "the pushed manifest is what build printed" "sha256:$(sha256sum "$T/raw" | cut -d' ' -f1)" "$docker_digest"
    assert_eq "manifest type" "$(jq -r .mediaType "$T/raw")" application/vnd.docker.distribution.manifest.v2+json
    assert_eq "config type" "$(jq -r .config.mediaType "$T/raw")" application/vnd.docker.container.image.v1+json
    assert_eq "layer types" "$(jq -r '[.layers[].mediaType] | unique | join(",")' "$T/raw")" application/vnd.docker.image.rootfs.diff.tar.gzip
    assert_eq "annotations" "$(jq -r '.annotations // "none"' "$T/raw")" none
    build_ok --repo "$REG_ADDR/push/fmt" -C "$ctx" --push --tag "$REG_ADDR/push/fmt:oci"
    oci_digest=$DIGEST
    [ "$oci_digest" != "$docker_digest" ] || fail "both formats gave one manifest"
    skopeo_raw "$REG_ADDR/push/fmt:oci" "$T/raw-oci"
    assert_eq "the same config in both formats" "$(jq -r .config.digest "$T/raw")" "$(jq -r .config.digest "$T/raw-oci")"
    build_ok --repo "$REG_ADDR/push/fmt" -C "$ctx" --format docker --push --tag "$REG_ADDR/push/fmt:docker2"
    assert_eq "--format docker is reproducible" "$DIGEST" "$docker_digest"

    local hc
    podman_cmd pull -q --tls-verify=false "docker://$REG_ADDR/push/fmt:docker" >/dev/null 2>"$T/pull.err" ||
        fail "podman pull of the Docker-format image failed: $(cat "$T/pull.err")"
    hc=$(podman_cmd image inspect --format '{{json .HealthCheck}}' "$REG_ADDR/push/fmt:docker")
    [[ $hc == *'cat greeting.txt'* ]] || fail "podman lost the Healthcheck of the Docker-format image: $hc"
    podman_cmd pull -q --tls-verify=false "docker://$REG_ADDR/push/fmt:oci" >/dev/null 2>"$T/pull.err" ||
        fail "podman pull of the OCI image failed: $(cat "$T/pull.err")"
    hc=$(podman_cmd image inspect --format '{{json .HealthCheck}}' "$REG_ADDR/push/fmt:oci")
    [[ $hc != *'cat greeting.txt'* ]] || echo "# note: this podman keeps an OCI image's Healthcheck too" >&3

    run_ocib build -C "$ctx" --format docker --compression zstd --push
    assert_failed 2 "--compression zstd needs --format oci"
    run_ocib build -C "$ctx" --format docker --output "oci:$T/no"
    assert_failed 2 "an OCI layout holds OCI manifests"
    run_ocib build -C "$ctx" --format docker
    assert_failed 2 "--format docker: needs --push or --output docker-archive:FILE"
    run_ocib build -C "$ctx" --format dockr --push
    assert_failed 2 "--format: invalid value 'dockr'"
    [ ! -e "$T/no" ] || fail "a refused build wrote its output"
}
