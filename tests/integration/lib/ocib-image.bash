# ocib's own image (ocib.image.json, `make image`) for the tests that run
# ocib in containers. Load after helpers.bash (podman_cmd, fail).
#
# ocib_image_build
#     builds the image once per test run (bats' $BATS_RUN_TMPDIR holds a
#     stamp; a lock serialises parallel files): the build stage's base with
#     tests/bases/make-ocib-build-base (into build/bases/ocib-build, where
#     ocib.image.json names it), then `ocib build -C REPO -f ocib.image.json`
#     with $OCIB into the layout $OCIB_IMAGE_DIR/layout, tag "ocib", in a
#     cache of its own, $OCIB_IMAGE_DIR/cache, kept between runs so that an
#     unchanged tree rebuilds from the cache. OCIB_IMAGE_DIR defaults to
#     build/ocib-image under the repository. Prints "oci:LAYOUT:ocib"; the
#     digest reference the build printed is in $OCIB_IMAGE_DIR/ref.
# ocib_image_load [NAME]
#     ocib_image_build, then pulls the layout into podman_cmd's storage
#     (this test file's $PODMAN_BASE) and tags it NAME (default
#     localhost/ocib/ocib:test). Prints NAME.
# ocib_image_size LAYOUT
#     the image's compressed size in bytes: the sum of its layers' sizes as
#     its manifest lists them (what a registry stores and a pull downloads).

OCIB_IMAGE_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
OCIB_IMAGE_DIR=${OCIB_IMAGE_DIR:-$OCIB_IMAGE_REPO/build/ocib-image}

ocib_image_build() {
    local d=$OCIB_IMAGE_DIR stamp=${BATS_RUN_TMPDIR:-/tmp}/ocib-image.built
    mkdir -p "$d" || return 1
    (
        flock 9 || exit 1
        if [ -f "$stamp" ] && [ -f "$d/layout/index.json" ]; then
            exit 0
        fi
        OCIB=$OCIB OCIB_CACHE_DIR=$d/cache "$OCIB_IMAGE_REPO/tests/bases/make-ocib-build-base" \
            >"$d/base.log" 2>&1 ||
            { cat "$d/base.log" >&2; echo "ocib_image_build: the build base failed" >&2; exit 1; }
        OCIB_CACHE_DIR=$d/cache "$OCIB" build -C "$OCIB_IMAGE_REPO" -f ocib.image.json \
            --output "oci:$d/layout:ocib" --progress=plain --lint=off \
            >"$d/ref" 2>"$d/build.log" </dev/null ||
            { tail -n 40 "$d/build.log" >&2; echo "ocib_image_build: ocib build -f ocib.image.json failed" >&2; exit 1; }
        touch "$stamp"
    ) 9>"$d/.lock" || return 1
    printf 'oci:%s/layout:ocib\n' "$d"
}

ocib_image_load() {
    local name=${1:-localhost/ocib/ocib:test} src id
    src=$(ocib_image_build) || return 1
    id=$(podman_cmd pull -q "$src" 2>&1 | tail -n1) || { fail "podman pull $src: $id"; return 1; }
    podman_cmd tag "$id" "$name" >/dev/null || { fail "podman tag $id $name failed"; return 1; }
    printf '%s\n' "$name"
}

ocib_image_size() {
    local dir=$1 d
    dir=${dir#oci:}
    dir=${dir%:*}
    d=$(jq -r '.manifests[0].digest' "$dir/index.json") || return 1
    jq '[.layers[].size] | add' "$dir/blobs/sha256/${d#sha256:}"
}
