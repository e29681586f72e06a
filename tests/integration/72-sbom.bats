#!/usr/bin/env bats
# build --sbom / --sbom=cyclonedx / --provenance into oci: layouts: what the
# documents list (dpkg, npm, whiteouts applied, licenses, purls, the lock's
# integrity, layers, base), every field SPDX 2.3 requires, that two builds
# in different paths and umasks give the same bytes, what the provenance
# names (base digest, git commit and remote without credentials), and that
# a rebuild reuses the cached scan.

load helpers
load lib/sbom-fixtures

setup() {
    common_setup
    export SOURCE_DATE_EPOCH=1700000000
}

SPDX=application/spdx+json
CDX=application/vnd.cyclonedx+json
INTOTO=application/vnd.in-toto+json

@test "sbom: SPDX lists the dpkg and npm packages the final file system holds, with licenses, purls and the lock's integrity" {
    sbom_ctx "$T/ctx"
    build_ok -C "$T/ctx" --sbom --output "oci:$T/out"
    doc=$(artifact_doc "$T/out" $SPDX)
    names=$(jq -r '[.packages[] | select(.primaryPackagePurpose == "LIBRARY") | .name] | join(" ")' "$doc")
    [ "$names" = "bar libfoo1 @scope/pkg express ms" ] || fail "packages: $names"
    p() { jq -c --arg n "$1" '.packages[] | select(.name == $n)' "$doc"; }
    [ "$(p libfoo1 | jq -r .versionInfo)" = "1:1.2-3+deb12u1" ]
    [ "$(p libfoo1 | jq -r .licenseDeclared)" = "MIT AND GPL-2.0-or-later" ]
    [ "$(p libfoo1 | jq -r .sourceInfo)" = "built package from: foo (1.2-3)" ]
    [ "$(p libfoo1 | jq -r '.externalRefs[0].referenceLocator')" = "pkg:deb/debian/libfoo1@1%3A1.2-3%2Bdeb12u1?arch=amd64" ]
    [ "$(p bar | jq -r .licenseDeclared)" = NOASSERTION ]
    [ "$(p express | jq -r '.externalRefs[0].referenceLocator')" = "pkg:npm/express@4.19.2" ]
    [ "$(p express | jq -r '.checksums[0].algorithm')" = SHA512 ]
    [ "$(p express | jq -r '.checksums[0].checksumValue')" = e53ea7863b13f8438ccee724f098c11c04531df321b743cece503ad16576a4c0f78325f0d8b66767eb9e19d3711bed1c6a538971629ba4572eccb67dd585aaf5 ]
    [ "$(p @scope/pkg | jq -r '.externalRefs[0].referenceLocator')" = "pkg:npm/%40scope/pkg@1.0.0" ]
    [ "$(p @scope/pkg | jq -r .licenseDeclared)" = "(MIT OR Apache-2.0)" ]
    # leftpad's package.json was deleted by a later layer; lib/package.json is no package root.
    ! grep -q leftpad "$doc"
    ! grep -q not-a-package "$doc"
    # the layers, by digest, and the image by its manifest digest
    img=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]) | .digest' "$T/out/index.json")
    [ "$(jq -r '.packages[] | select(.SPDXID == "SPDXRef-image") | .versionInfo' "$doc")" = "$img" ]
    m=$T/out/blobs/sha256/${img#sha256:}
    [ "$(jq -r '[.layers[].digest] | join(" ")' "$m")" = \
      "$(jq -r '[.packages[] | select(.primaryPackagePurpose == "ARCHIVE") | .versionInfo] | join(" ")' "$doc")" ]
    [ "$(jq -r .creationInfo.created "$doc")" = 2023-11-14T22:13:20Z ]
    [ "$(jq -r .documentNamespace "$doc")" = "https://ocib.dev/spdx/localhost:5000/ocib/sbom/${img#sha256:}" ]
}

@test "sbom: the SPDX document has every field SPDX 2.3 requires, and its relationships resolve" {
    sbom_ctx "$T/ctx"
    build_ok -C "$T/ctx" --sbom=spdx --output "oci:$T/out"
    doc=$(artifact_doc "$T/out" $SPDX)
    # document creation information (SPDX 2.3 clause 6): all mandatory
    jq -e '.spdxVersion == "SPDX-2.3" and .dataLicense == "CC0-1.0" and .SPDXID == "SPDXRef-DOCUMENT"
           and (.name | length > 0) and (.documentNamespace | test("^https://[^#]+$"))
           and (.creationInfo.created | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"))
           and (.creationInfo.creators | length > 0 and all(test("^(Tool|Person|Organization): .+"))) ' "$doc"
    # package information (clause 7): name, SPDXID, downloadLocation mandatory;
    # filesAnalyzed false needs no verification code; ids are idstrings, unique
    jq -e '.packages | all((.name | length > 0) and (.SPDXID | test("^SPDXRef-[A-Za-z0-9.-]+$"))
                           and (.downloadLocation | length > 0) and .filesAnalyzed == false)' "$doc"
    jq -e '[.packages[].SPDXID] | length == (unique | length)' "$doc"
    jq -e '.packages | all(.externalRefs // [] | all(.referenceCategory == "PACKAGE-MANAGER" and .referenceType == "purl" and (.referenceLocator | startswith("pkg:"))))' "$doc"
    jq -e '.packages | all(.checksums // [] | all((.algorithm | IN("SHA1","SHA256","SHA384","SHA512")) and (.checksumValue | test("^[0-9a-f]+$"))))' "$doc"
    jq -e '([.packages[].SPDXID] + ["SPDXRef-DOCUMENT"]) as $ids | .relationships | length > 0 and
           all((.spdxElementId | IN($ids[])) and (.relatedSpdxElement | IN($ids[])) and
               (.relationshipType | IN("DESCRIBES","CONTAINS","DESCENDANT_OF")))' "$doc"
    jq -e '.relationships | any(.spdxElementId == "SPDXRef-DOCUMENT" and .relationshipType == "DESCRIBES" and .relatedSpdxElement == "SPDXRef-image")' "$doc"
    # every package the image holds is CONTAINED by it
    jq -e '[.packages[] | select(.primaryPackagePurpose == "LIBRARY") | .SPDXID] as $p | [.relationships[] | select(.relationshipType == "CONTAINS") | .relatedSpdxElement] as $c | $p - $c == []' "$doc"
}

@test "sbom: CycloneDX 1.5 document: format, serial number, components with purls, licenses and hashes" {
    sbom_ctx "$T/ctx"
    build_ok -C "$T/ctx" --sbom=cyclonedx --output "oci:$T/out"
    doc=$(artifact_doc "$T/out" $CDX)
    jq -e '.bomFormat == "CycloneDX" and .specVersion == "1.5" and .version == 1
           and (.serialNumber | test("^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"))
           and .metadata.component.type == "container" and .metadata.timestamp == "2023-11-14T22:13:20Z"' "$doc"
    [ "$(jq -r '[.components[].name] | join(" ")' "$doc")" = "bar libfoo1 @scope/pkg express ms" ]
    jq -e '.components[] | select(.name == "express") | .licenses == [{"license": {"id": "MIT"}}] and .hashes[0].alg == "SHA-512"' "$doc"
    jq -e '.components[] | select(.name == "@scope/pkg") | .licenses == [{"expression": "(MIT OR Apache-2.0)"}]' "$doc"
    jq -e '[.components[]."bom-ref"] | length == (unique | length)' "$doc"
    jq -e '[.components[]."bom-ref"] as $r | .dependencies[0].ref == "image" and (.dependencies[0].dependsOn - $r == [])' "$doc"
    [ "$(jq -r '[.metadata.component.properties[] | select(.name == "ocib:layer")] | length' "$doc")" = 5 ]
}

# build_in DIR UMASK ARGS...: the sbom context copied to DIR, built there
# under UMASK into DIR/out; prints index.json's manifest digests.
build_in() {
    local dir=$1 um=$2
    shift 2
    mkdir -p "$dir"
    sbom_ctx "$dir/ctx"
    (umask "$um" && cd "$dir" && OCIB_CACHE_DIR=$dir/cache "$OCIB" build -C ctx --output oci:out "$@" \
        >/dev/null 2>"$dir/err") || { cat "$dir/err" >&2; return 1; }
    jq -r '[.manifests[].digest] | join(" ")' "$dir/out/index.json"
}

@test "sbom: two builds in different paths and umasks give byte-identical images, SBOMs and provenance" {
    a=$(build_in "$T/one" 022 --sbom --provenance)
    b=$(build_in "$T/elsewhere/two" 077 --sbom --provenance)
    [ "$a" = "$b" ] || fail "index.json digests differ: $a vs $b"
    [ "$(echo "$a" | wc -w)" = 3 ]
    cmp "$(artifact_doc "$T/one/out" $SPDX)" "$(artifact_doc "$T/elsewhere/two/out" $SPDX)"
    cmp "$(artifact_doc "$T/one/out" $INTOTO)" "$(artifact_doc "$T/elsewhere/two/out" $INTOTO)"
    c=$(build_in "$T/three" 002 --sbom=cyclonedx)
    d=$(build_in "$T/four" 027 --sbom=cyclonedx)
    [ "$c" = "$d" ]
    ! grep -q "$T" "$(artifact_doc "$T/one/out" $INTOTO)" || fail "provenance names a host path"
}

@test "provenance: in-toto v1 with SLSA v1: subject, spec digest, base by digest, git commit and remote without credentials, layer keys" {
    sbom_ctx "$T/basectx"
    build_ok -C "$T/basectx" --output "oci:$T/ctx/base:b1"
    base=$(jq -r '.manifests[0].digest' "$T/ctx/base/index.json")
    cat >"$T/ctx/ocib.json" <<'JSON'
{"version": 1, "image": "localhost:5000/ocib/prov", "args": {"GREETING": "hi"},
 "stages": [{"from": "oci:base:b1", "layers": [{"name": "hello", "files": [{"path": "/hello", "content": "${GREETING}\n"}]}]}]}
JSON
    (cd "$T/ctx" && git init -q && git add ocib.json && git -c user.email=t@t -c user.name=t commit -qm one &&
        git remote add origin https://ci:s3cret-token@git.example.com/acme/app.git)
    commit=$(git -C "$T/ctx" rev-parse HEAD)
    echo base >>"$T/ctx/.git/info/exclude"
    build_ok -C "$T/ctx" --provenance --build-arg GREETING=hello --output "oci:$T/out"
    doc=$(artifact_doc "$T/out" $INTOTO)
    img=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]) | .digest' "$T/out/index.json")
    jq -e --arg d "${img#sha256:}" '._type == "https://in-toto.io/Statement/v1" and .predicateType == "https://slsa.dev/provenance/v1"
           and .subject == [{"name": "localhost:5000/ocib/prov", "digest": {"sha256": $d}}]' "$doc"
    jq -e --arg s "$(sha256sum "$T/ctx/ocib.json" | cut -d' ' -f1)" '.predicate.buildDefinition.externalParameters |
           .spec == {"path": "ocib.json", "digest": {"sha256": $s}} and .buildArgs == {"GREETING": "hello"} and .platforms == ["linux/amd64"]' "$doc"
    jq -e '.predicate.buildDefinition.buildType | startswith("https://ocib.dev/")' "$doc"
    jq -e '.predicate.buildDefinition.internalParameters | .sourceDateEpoch == 1700000000 and .format == "oci" and (.compression | startswith("gzip"))' "$doc"
    jq -e --arg b "${base#sha256:}" '.predicate.buildDefinition.resolvedDependencies | any(.uri == "oci:base:b1" and .digest.sha256 == $b)' "$doc"
    jq -e --arg c "$commit" '.predicate.buildDefinition.resolvedDependencies | any(.uri == "git+https://git.example.com/acme/app.git" and .digest.gitCommit == $c)' "$doc"
    ! grep -q s3cret "$doc" || fail "the remote's credentials are in the provenance"
    jq -e '.predicate.runDetails.byproducts | length >= 1 and all(.digest.sha256 | test("^[0-9a-f]{64}$"))' "$doc"
    ! grep -Eq '"(startedOn|finishedOn)"' "$doc"
}

@test "sbom: a rebuild reads no layer again (the scan is cached by the layers' digests)" {
    sbom_ctx "$T/ctx"
    build_ok -C "$T/ctx" --sbom --output "oci:$T/out" --progress json
    grep -q "scanning layers for the SBOM" <<<"$err" || fail "the first build did not scan: $err"
    first=$(jq -r '[.manifests[].digest] | join(" ")' "$T/out/index.json")
    build_ok -C "$T/ctx" --sbom --output "oci:$T/out" --progress json
    ! grep -q "scanning layers for the SBOM" <<<"$err" || fail "the rebuild scanned again"
    [ "$(jq -r '[.manifests[].digest] | join(" ")' "$T/out/index.json")" = "$first" ]
}

@test "sbom: a wrong --sbom value is a usage error" {
    sbom_ctx "$T/ctx"
    run_ocib build -C "$T/ctx" --sbom=xml
    [ "$status" -eq 2 ]
    [[ "$err" == *"--sbom: invalid value 'xml'"* ]]
}
