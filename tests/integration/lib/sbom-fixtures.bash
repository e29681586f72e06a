# Fixtures for the attestation tests (72-sbom, 73-attach, 74-sign).
#
# sbom_ctx DIR [IMAGE]
#     busybox_base_ctx DIR plus a "pkgs" layer copying DIR/root/: a fake
#     dpkg status (libfoo1 with a DEP-5 copyright file, bar, a removed
#     package), a node_modules tree (express with a lock entry and its
#     integrity, a nested ms, a scoped @scope/pkg, leftpad) and a
#     package-lock.json; then a run layer "gone" deleting leftpad's
#     package.json (its whiteout must hide it). IMAGE sets the spec's "image".
# artifact_doc LAYOUT ARTIFACT_TYPE
#     prints the path of the document blob of the artifact of that type
#     that index.json of LAYOUT lists.

load lib/run-fixtures

sbom_ctx() {
    local d=$1 r
    busybox_base_ctx "$d" || return 1
    r=$d/root
    mkdir -p "$r/var/lib/dpkg" "$r/usr/share/doc/libfoo1" "$r/app/node_modules/express/node_modules/ms" \
        "$r/app/node_modules/@scope/pkg" "$r/app/node_modules/leftpad" "$r/app/node_modules/express/lib"
    cat >"$r/var/lib/dpkg/status" <<'DPKG'
Package: libfoo1
Status: install ok installed
Architecture: amd64
Source: foo (1.2-3)
Version: 1:1.2-3+deb12u1
Description: foo
 more text

Package: gone
Status: deinstall ok config-files
Version: 1
Architecture: amd64

Package: bar
Status: install ok installed
Architecture: all
Version: 2.0
DPKG
    cat >"$r/usr/share/doc/libfoo1/copyright" <<'COPY'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: foo

Files: *
Copyright: 2020 Foo
License: GPL-2+

Files: debian/*
Copyright: 2021 Deb
License: Expat

License: GPL-2+
 text
COPY
    echo '{"name":"express","version":"4.19.2","license":"MIT"}' >"$r/app/node_modules/express/package.json"
    echo '{"name":"not-a-package","version":"0.0.1"}' >"$r/app/node_modules/express/lib/package.json"
    echo '{"name":"ms","version":"2.0.0","license":"MIT"}' >"$r/app/node_modules/express/node_modules/ms/package.json"
    echo '{"name":"@scope/pkg","version":"1.0.0","license":"(MIT OR Apache-2.0)"}' >"$r/app/node_modules/@scope/pkg/package.json"
    echo '{"name":"leftpad","version":"1.0.0","license":"WTFPL"}' >"$r/app/node_modules/leftpad/package.json"
    echo '{"name":"app","version":"1.0.0","lockfileVersion":3,"packages":{"":{"name":"app"},"node_modules/express":{"version":"4.19.2","integrity":"sha512-5T6nhjsT+EOMzuck8JjBHARTHfMht0POzlA60WV2pMD3gyXw2LZnZ+ueGdNxG+0calOJcWKbpFcuzLZ91YWq9Q=="}}}' >"$r/app/package-lock.json"
    jq --arg img "${2:-localhost:5000/ocib/sbom}" '.image = $img |
        .stages[0].layers += [{"name": "pkgs", "copy": [{"src": ["root/"], "dest": "/"}]},
                              {"name": "gone", "run": "rm /app/node_modules/leftpad/package.json"}]' \
        "$d/ocib.json" >"$d/ocib.json.new" && mv "$d/ocib.json.new" "$d/ocib.json"
}

artifact_doc() {
    local lay=$1 type=$2 m
    m=$(jq -r --arg t "$type" '.manifests[] | select(.artifactType == $t) | .digest' "$lay/index.json" | head -n1)
    [ -n "$m" ] || { echo "no $type artifact in $lay/index.json" >&2; return 1; }
    printf '%s/blobs/sha256/%s\n' "$lay" "$(jq -r '.layers[0].digest' "$lay/blobs/sha256/${m#sha256:}" | cut -d: -f2)"
}
