#!/usr/bin/env bats
# `ocib build` on the bundled examples, judged by third-party tools:
# oci-image-tool validates the layout, umoci unpacks it, skopeo reads the
# OCI layout and the docker-archive, GNU tar and python's tarfile read layers.

load helpers

setup() {
    common_setup
}

# config_json DIR REF: the image config as skopeo reads it.
config_json() {
    need skopeo || return 1
    skopeo inspect --config "oci:$1:$2" || fail "skopeo inspect --config oci:$1:$2 failed"
}

# assert_config_matches_spec CONFIG_JSON SPEC STAGE_INDEX: every field the
# stage's "config" sets appears in the image config as Docker/OCI spell it.
assert_config_matches_spec() {
    local cfg=$1 spec=$2 s=$3
    printf '%s' "$cfg" >"$BATS_TEST_TMPDIR/.run/config.json"
    "$PY" - "$spec" "$s" "$BATS_TEST_TMPDIR/.run/config.json" <<'PY' || fail "image config does not carry the spec's config (above)"
import json, re, sys
cfg = json.load(open(sys.argv[3]))
spec = json.load(open(sys.argv[1]))
want = spec["stages"][int(sys.argv[2])].get("config", {})
c = cfg.get("config", {})
bad = []
def check(what, got, exp):
    if got != exp:
        bad.append("%s: image has %r, spec says %r" % (what, got, exp))
env = c.get("Env") or []
for k, v in want.get("env", {}).items():
    if "%s=%s" % (k, v) not in env:
        bad.append("Env lacks %s=%s: %r" % (k, v, env))
names = [e.split("=", 1)[0] for e in env]
if len(names) != len(set(names)):
    bad.append("Env has duplicate names: %r" % env)
if "cmd" in want: check("Cmd", c.get("Cmd"), want["cmd"])
if "entrypoint" in want: check("Entrypoint", c.get("Entrypoint"), want["entrypoint"])
if "user" in want: check("User", c.get("User"), want["user"])
if "workdir" in want: check("WorkingDir", c.get("WorkingDir"), want["workdir"])
if "stop_signal" in want: check("StopSignal", c.get("StopSignal"), want["stop_signal"])
if "expose" in want:
    check("ExposedPorts", sorted((c.get("ExposedPorts") or {}).keys()),
          sorted(p if "/" in p else p + "/tcp" for p in want["expose"]))
if "volumes" in want:
    check("Volumes", sorted((c.get("Volumes") or {}).keys()), sorted(want["volumes"]))
for k, v in want.get("labels", {}).items():
    check("Labels[%s]" % k, (c.get("Labels") or {}).get(k), v)
if "healthcheck" in want:
    h, hc = want["healthcheck"], c.get("Healthcheck") or {}
    def ns(d):
        units = {"ns": 1, "us": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
        return sum(int(float(n) * units[u]) for n, u in re.findall(r"([0-9.]+)(ns|us|ms|s|m|h)", d))
    check("Healthcheck.Test", hc.get("Test"), h["test"])
    for k, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod")):
        if k in h: check("Healthcheck." + key + " (ns)", hc.get(key), ns(h[k]))
    if "retries" in h: check("Healthcheck.Retries", hc.get("Retries"), h["retries"])
for b in bad: print(b)
sys.exit(1 if bad else 0)
PY
}

# assert_diff_ids DIR REF: config.rootfs.diff_ids are the sha256 of the
# uncompressed layers, in manifest order.
assert_diff_ids() {
    local dir=$1 ref=$2 m c n i d mt f want got
    m=$(layout_manifest "$dir" "$ref") || return 1
    c=$(layout_config "$dir" "$ref") || return 1
    n=$(jq '.layers | length' "$m")
    assert_eq "number of diff_ids" "$(jq '.rootfs.diff_ids | length' "$c")" "$n" || return 1
    assert_eq "rootfs.type" "$(jq -r .rootfs.type "$c")" layers || return 1
    for ((i = 0; i < n; i++)); do
        d=$(jq -r ".layers[$i].digest" "$m")
        mt=$(jq -r ".layers[$i].mediaType" "$m")
        f=$(blob_path "$dir" "$d") || return 1
        want="sha256:$(decompress "$f" "$mt" | sha256sum | cut -d' ' -f1)"
        got=$(jq -r ".rootfs.diff_ids[$i]" "$c")
        assert_eq "diff_id of layer $i" "$got" "$want" || return 1
    done
}

@test "the README's example: 'ocib build -C specs/examples/hello' writes ./ocib-out in the current directory" {
    local before after head_before
    before=$(cd "$EXAMPLES/hello" && find . | LC_ALL=C sort)
    head_before=$(git -C "$EXAMPLES/hello" rev-parse HEAD 2>/dev/null || true)
    mkdir work && cd work
    build_ok --repo "$(example_repo hello)" -C "$EXAMPLES/hello"
    after=$(cd "$EXAMPLES/hello" && find . | LC_ALL=C sort)
    if [ "$before" != "$after" ]; then
        rm -rf "$EXAMPLES/hello/ocib-out"
        fail "the build wrote into the example's context: $(diff <(echo "$before") <(echo "$after"))"
    fi
    assert_layout_sound ocib-out
    assert_eq "digest on stdout vs index.json" "$DIGEST" "$(layout_digest ocib-out)"
    oci_validate ocib-out
    # Inside a git checkout the tag defaults to the short commit id.
    local name head
    name=$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' ocib-out/index.json)
    if head=$(git -C "$EXAMPLES/hello" rev-parse HEAD 2>/dev/null); then
        # HEAD read before and after the build, in case a commit landed meanwhile.
        if [ "$head" != "$head_before" ] && [[ $head_before == "${name%-dirty}"* ]]; then
            head=$head_before
        fi
        [[ $name =~ ^[0-9a-f]{7,40}(-dirty)?$ ]] && [[ $head == "${name%-dirty}"* ]] ||
            fail "ref.name '$name' is not the git short SHA of $head"
        local rev
        rev=$(jq -r '.annotations["org.opencontainers.image.revision"] // empty' "$(layout_manifest ocib-out)")
        [[ $rev == "$head"* ]] || fail "manifest annotation org.opencontainers.image.revision '$rev' is not HEAD $head"
    else
        assert_eq "ref.name outside git" "$name" latest
    fi
}

@test "hello to oci:DIR: the printed digest is the layout's manifest, which oci-image-tool and skopeo accept" {
    need skopeo
    local ctx
    ctx=$(copy_example hello)
    build_ok --repo localhost:5000/ocib/hello -C "$ctx" --output "oci:$T/out"
    [ ! -e ocib-out ] || fail "--output oci:DIR must replace the default ./ocib-out, which was written too"
    assert_layout_sound "$T/out"
    # Outside a git checkout and with no tag in "image", the tag is "latest".
    assert_eq "index.json digest for tag latest" "$(layout_digest "$T/out" latest)" "$DIGEST"
    assert_eq "manifest descriptors in index.json" "$(jq '.manifests | length' "$T/out/index.json")" 1
    oci_validate "$T/out"
    local si
    si=$(skopeo inspect "oci:$T/out:latest") || fail "skopeo inspect oci:$T/out:latest failed"
    assert_eq "skopeo's digest" "$(jq -r .Digest <<<"$si")" "$DIGEST"
    assert_eq "skopeo's layer count" "$(jq '.Layers | length' <<<"$si")" 2
    assert_eq "architecture" "$(jq -r .Architecture <<<"$si")" "$(host_arch)"
    assert_eq "os" "$(jq -r .Os <<<"$si")" linux
    assert_eq "skopeo's created" "$(jq -r .Created <<<"$si")" "$(rfc3339 0)"
    jq -e '.Env | index("GREETING_FILE=/srv/hello/greeting.txt")' <<<"$si" >/dev/null ||
        fail "skopeo shows no GREETING_FILE in Env: $si"
    assert_eq "label title" "$(jq -r '.Labels["org.opencontainers.image.title"]' <<<"$si")" hello
    local m
    m=$(layout_manifest "$T/out")
    jq -e --arg g "$MT_GZIP" 'all(.layers[]; .mediaType == $g)' "$m" >/dev/null ||
        fail "gzip must be the default compression: $(jq -c '[.layers[].mediaType]' "$m")"
}

@test "hello's image config: env, cmd, user, workdir, expose and labels from the spec; created, platform, diff_ids, history" {
    local ctx cfg c m
    ctx=$(copy_example hello)
    build_ok -C "$ctx" --output "oci:$T/out"
    cfg=$(config_json "$T/out" latest)
    assert_config_matches_spec "$cfg" "$ctx/ocib.json" 0
    c=$(layout_config "$T/out" latest)
    m=$(layout_manifest "$T/out" latest)
    assert_config_matches_spec "$(cat "$c")" "$ctx/ocib.json" 0
    assert_eq "created" "$(jq -r .created "$c")" "$(rfc3339 0)"
    assert_eq "architecture" "$(jq -r .architecture "$c")" "$(host_arch)"
    assert_eq "os" "$(jq -r .os "$c")" linux
    assert_diff_ids "$T/out" latest
    # One history entry per layer, each naming the spec's layer.
    assert_eq "non-empty history entries" "$(jq '[.history[] | select(.empty_layer != true)] | length' "$c")" 2
    local i name
    for i in 0 1; do
        name=$(jq -r ".stages[0].layers[$i].name" "$ctx/ocib.json")
        jq -e --argjson i "$i" --arg n "$name" \
            '[.history[] | select(.empty_layer != true)][$i] | tostring | contains($n)' "$c" >/dev/null ||
            fail "history entry $i does not name layer '$name': $(jq -c .history "$c")"
    done
    assert_eq "manifest annotation created" \
        "$(jq -r '.annotations["org.opencontainers.image.created"]' "$m")" "$(rfc3339 0)"
    jq -e '(.annotations // {}) | has("org.opencontainers.image.base.digest") | not' "$m" >/dev/null ||
        fail "an image FROM scratch has no base, yet the manifest names one: $(jq -c .annotations "$m")"
}

@test "hello unpacked by umoci matches the context: copied tree, exclude and .ocibignore applied, generated file and symlink" {
    local ctx
    ctx=$(copy_example hello)
    build_ok -C "$ctx" --output "oci:$T/out"
    umoci_unpack "$T/out" latest "$T/bundle"
    local r=$T/bundle/rootfs
    local got want
    got=$(rootfs_listing "$r")
    want=$(LC_ALL=C sort <<'EOF'
srv d 755
srv/hello d 755
srv/hello/build-info.txt f 644
srv/hello/current l -> greeting.txt
srv/hello/docs d 755
srv/hello/docs/guide.txt f 644
srv/hello/docs/readme.txt f 644
srv/hello/greeting.txt f 644
srv/hello/index.html f 644
EOF
)
    [ "$got" = "$want" ] || fail "unpacked rootfs differs from what the spec asks for:
$(diff <(echo "$want") <(echo "$got"))"
    local f
    for f in greeting.txt index.html docs/guide.txt docs/readme.txt; do
        assert_same_file "$ctx/$f" "$r/srv/hello/$f"
    done
    assert_eq "generated build-info.txt" "$(cat "$r/srv/hello/build-info.txt"; echo x)" \
        "$(jq -j '.stages[0].layers[1].files[0].content' "$ctx/ocib.json"; echo x)"
}

@test "layered unpacked by umoci: globs, a directory into dest/, nested excludes, .ocibignore '**' and '!', symlink, modes" {
    local ctx
    ctx=$(copy_example layered)
    build_ok --repo localhost:5000/ocib/layered -C "$ctx" --output "oci:$T/out"
    assert_eq "index.json digest for tag 1.0 (from \"image\")" "$(layout_digest "$T/out" 1.0)" "$DIGEST"
    oci_validate "$T/out"
    umoci_unpack "$T/out" 1.0 "$T/bundle"
    local r=$T/bundle/rootfs got want
    got=$(rootfs_listing "$r")
    want=$(LC_ALL=C sort <<'EOF'
data d 755
data/a.txt f 644
data/b.txt f 644
etc d 755
etc/app.conf f 600
opt d 755
opt/app d 755
opt/app/VERSION f 644
opt/app/bin d 755
opt/app/bin/run.sh f 755
opt/app/current l -> lib/util.txt
opt/app/keep.tmp f 644
opt/app/lib d 755
opt/app/lib/util.txt f 644
opt/app/motd f 640
var d 755
var/lib d 755
var/lib/app d 755
EOF
)
    [ "$got" = "$want" ] || fail "unpacked rootfs differs from what the spec asks for:
$(diff <(echo "$want") <(echo "$got"))"
    assert_same_file "$ctx/src/a.txt" "$r/data/a.txt"
    assert_same_file "$ctx/src/b.txt" "$r/data/b.txt"
    assert_same_file "$ctx/config/app.conf" "$r/etc/app.conf"
    assert_same_file "$ctx/app/bin/run.sh" "$r/opt/app/bin/run.sh"
    assert_same_file "$ctx/app/lib/util.txt" "$r/opt/app/lib/util.txt"
    assert_same_file "$ctx/app/keep.tmp" "$r/opt/app/keep.tmp"
    assert_eq "motd from content_base64" "$(base64 <"$r/opt/app/motd")" \
        "$(jq -r '.stages[1].layers[1].files[1].content_base64' "$ctx/ocib.json")"
    assert_eq "layers (2 from stage base, 2 from stage app)" \
        "$(jq '.layers | length' "$(layout_manifest "$T/out" 1.0)")" 4
}

@test "owner and mode asked for in the spec are in the layer tar; everything else is 0:0 (GNU tar and tarfile agree)" {
    local ctx entries e
    ctx=$(copy_example layered)
    build_ok -C "$ctx" --output "oci:$T/out"
    entries=$(layout_entries "$T/out" 1.0)
    # path -> expected "type mode uid:gid"
    while read -r p want; do
        e=$(entry_of "$entries" "$p")
        [ -n "$e" ] || fail "no tar entry for $p in any layer"
        assert_eq "tar entry $p (type mode owner)" "$(field 3 "$e") $(field 4 "$e") $(field 5 "$e")" "$want"
    done <<'EOF'
data/a.txt - 0644 1000:1000
data/b.txt - 0644 1000:1000
etc/app.conf - 0600 1000:1000
opt/app/bin/run.sh - 0755 0:0
opt/app/lib/util.txt - 0644 0:0
opt/app/current l 0777 0:0
opt/app/motd - 0640 0:1000
var/lib/app d 0755 1000:1000
opt/app/VERSION - 0644 0:0
EOF
    assert_eq "symlink target" "$(field 7 "$(entry_of "$entries" opt/app/current)")" lib/util.txt
    # GNU tar's own listing of the layer holding /etc/app.conf.
    local m d f line
    m=$(layout_manifest "$T/out" 1.0)
    d=$(jq -r '.layers[1].digest' "$m")
    f=$(blob_path "$T/out" "$d")
    line=$(tar --numeric-owner -tvzf "$f" | grep 'etc/app.conf$') || fail "GNU tar finds no etc/app.conf in layer 1"
    [[ $line =~ ^-rw-------\ 1000/1000\  ]] || fail "GNU tar lists '$line', expected -rw------- 1000/1000"
}

@test "every layer tar is canonical: sorted, numeric owners, mtime = epoch, parent directories, no host PAX records" {
    local ex ctx n i m ref
    for ex in hello layered; do
        ctx=$(copy_example "$ex")
        build_ok -C "$ctx" --output "oci:$T/out-$ex"
        ref=$(tag_of "$(jq -r .image "$ctx/ocib.json")")
        m=$(layout_manifest "$T/out-$ex" "${ref:-latest}")
        n=$(jq '.layers | length' "$m")
        [ "$n" -ge 2 ] || fail "$ex: expected at least 2 layers, got $n"
        for ((i = 0; i < n; i++)); do
            assert_layer_canonical "$T/out-$ex" "$i" 0 "${ref:-latest}"
        done
    done
}

@test "gzip layers carry no file name and no timestamp in the gzip header" {
    local ctx m d f hdr
    ctx=$(copy_example hello)
    build_ok -C "$ctx" --output "oci:$T/out"
    m=$(layout_manifest "$T/out")
    for d in $(jq -r '.layers[].digest' "$m"); do
        f=$(blob_path "$T/out" "$d")
        hdr=$(od -An -tx1 -N10 "$f" | tr -d ' \n')
        assert_eq "gzip magic and method of $d" "${hdr:0:6}" 1f8b08
        [ $((0x${hdr:6:2} & 0x08)) -eq 0 ] || fail "gzip header of $d stores a file name (FNAME flag)"
        assert_eq "gzip header MTIME of $d" "${hdr:8:8}" 00000000
        gzip -t "$f" || fail "gzip -t rejects layer $d"
    done
}

@test "layered's image config: entrypoint, cmd, volumes, stop signal, healthcheck (Docker's field), annotations" {
    local ctx cfg m
    ctx=$(copy_example layered)
    build_ok -C "$ctx" --output "oci:$T/out"
    # skopeo drops Docker's Healthcheck extension, so read the config blob itself.
    cfg=$(cat "$(layout_config "$T/out" 1.0)")
    assert_config_matches_spec "$cfg" "$ctx/ocib.json" 1
    # skopeo still reads every OCI field of it.
    cfg=$(config_json "$T/out" 1.0)
    assert_eq "Entrypoint (skopeo)" "$(jq -c .config.Entrypoint <<<"$cfg")" "$(jq -c '.stages[1].config.entrypoint' "$ctx/ocib.json")"
    assert_eq "StopSignal (skopeo)" "$(jq -r .config.StopSignal <<<"$cfg")" SIGTERM
    assert_diff_ids "$T/out" 1.0
    m=$(layout_manifest "$T/out" 1.0)
    assert_eq "manifest annotation from the spec" \
        "$(jq -r '.annotations["org.opencontainers.image.vendor"]' "$m")" \
        "$(jq -r '.stages[1].config.annotations["org.opencontainers.image.vendor"]' "$ctx/ocib.json")"
    assert_eq "manifest annotation created" \
        "$(jq -r '.annotations["org.opencontainers.image.created"]' "$m")" "$(rfc3339 0)"
}

@test "--target base builds only the first stage, with its own config" {
    local ctx c m
    ctx=$(copy_example layered)
    build_ok --repo localhost:5000/ocib/layered -C "$ctx" --target base --output "oci:$T/base"
    assert_layout_sound "$T/base"
    oci_validate "$T/base"
    m=$(layout_manifest "$T/base" 1.0)
    assert_eq "layers of stage base" "$(jq '.layers | length' "$m")" 2
    c=$(layout_config "$T/base" 1.0)
    jq -e '.config.Env | index("DATA_DIR=/data")' "$c" >/dev/null || fail "stage base's env missing: $(jq -c .config "$c")"
    assert_eq "label" "$(jq -r '.config.Labels["org.opencontainers.image.title"]' "$c")" layered-base
    umoci_unpack "$T/base" 1.0 "$T/bundle"
    assert_eq "rootfs of stage base" "$(rootfs_listing "$T/bundle/rootfs" | tr '\n' ' ')" \
        "data d 755 data/a.txt f 644 data/b.txt f 644 etc d 755 etc/app.conf f 600 "
    # The default target is the last stage, which contains base's layers.
    build_ok -C "$ctx" --output "oci:$T/app"
    [ "$DIGEST" != "$(layout_digest "$T/base")" ] || fail "--target base and the default target gave the same image"
    assert_eq "base's layers are the app's first layers" \
        "$(jq -c '[.layers[:2][] | .digest]' "$(layout_manifest "$T/app")")" "$(jq -c '[.layers[].digest]' "$m")"
}

@test "--tag names the image: ref names in index.json and the repository printed" {
    local ctx
    ctx=$(copy_example hello)
    build_ok --repo localhost:5000/ocib/hello -C "$ctx" --tag localhost:5000/ocib/hello:v1 \
        --tag localhost:5000/ocib/hello:v2 --output "oci:$T/out"
    assert_eq "tag v1" "$(layout_digest "$T/out" v1)" "$DIGEST"
    assert_eq "tag v2" "$(layout_digest "$T/out" v2)" "$DIGEST"
    jq -e 'all(.manifests[]; .annotations["org.opencontainers.image.ref.name"] != "latest")' "$T/out/index.json" >/dev/null ||
        fail "--tag given, yet index.json still names 'latest': $(cat "$T/out/index.json")"
    oci_validate "$T/out"
    build_ok --repo registry.example.com/team/renamed -C "$ctx" --tag registry.example.com/team/renamed:3.1 \
        --output "oci:$T/renamed"
    assert_eq "tag 3.1" "$(layout_digest "$T/renamed" 3.1)" "$DIGEST"
}

@test "docker-archive:FILE is 'docker save' format that skopeo reads and copies" {
    need skopeo
    local ctx
    ctx=$(copy_example hello)
    build_ok --repo localhost:5000/ocib/hello -C "$ctx" --output "docker-archive:$T/hello.tar"
    [ -f "$T/hello.tar" ] || fail "no docker-archive written"
    [ ! -e ocib-out ] || fail "--output docker-archive must replace the default ./ocib-out"
    mkdir x && tar -xf "$T/hello.tar" -C x || fail "the archive is not a tar file"
    jq -e 'length == 1 and (.[0].Layers | length) == 2' x/manifest.json >/dev/null ||
        fail "manifest.json is not one image with 2 layers: $(cat x/manifest.json)"
    assert_eq "RepoTags" "$(jq -c '.[0].RepoTags' x/manifest.json)" '["localhost:5000/ocib/hello:latest"]'
    local cfgfile
    cfgfile=x/$(jq -r '.[0].Config' x/manifest.json)
    [ -f "$cfgfile" ] || fail "manifest.json's Config $cfgfile is not in the archive"
    jq -e '.rootfs.diff_ids | length == 2' "$cfgfile" >/dev/null || fail "config in the archive lacks 2 diff_ids"
    local l
    for l in $(jq -r '.[0].Layers[]' x/manifest.json); do
        [ -f "x/$l" ] || fail "layer $l listed in manifest.json is not in the archive"
    done
    local si
    si=$(skopeo inspect "docker-archive:$T/hello.tar") || fail "skopeo inspect docker-archive failed"
    jq -e '.Env | index("GREETING_FILE=/srv/hello/greeting.txt")' <<<"$si" >/dev/null || fail "Env lost: $si"
    assert_eq "label" "$(jq -r '.Labels["org.opencontainers.image.title"]' <<<"$si")" hello
    assert_eq "layers" "$(jq '.Layers | length' <<<"$si")" 2
    si=$(skopeo inspect --config "docker-archive:$T/hello.tar") || fail "skopeo inspect --config docker-archive failed"
    assert_eq "Cmd" "$(jq -c .config.Cmd <<<"$si")" "$(jq -c '.stages[0].config.cmd' "$ctx/ocib.json")"
    assert_eq "User" "$(jq -r .config.User <<<"$si")" 1000:1000
    skopeo copy -q "docker-archive:$T/hello.tar" "oci:$T/copied:t" || fail "skopeo copy docker-archive -> oci failed"
    oci_validate "$T/copied"
    assert_eq "diff_ids survive skopeo copy" "$(jq -c .rootfs.diff_ids "$(layout_config "$T/copied" t)")" \
        "$(jq -c .rootfs.diff_ids "$cfgfile")"
}

@test "oci:DIR and docker-archive:FILE in one run: one digest, the same config and layer blobs stored as-is" {
    local ctx m
    ctx=$(copy_example layered)
    build_ok --repo localhost:5000/ocib/layered -C "$ctx" --output "oci:$T/out" --output "docker-archive:$T/img.tar"
    assert_eq "digest" "$(layout_digest "$T/out" 1.0)" "$DIGEST"
    mkdir x && tar -xf "$T/img.tar" -C x
    assert_eq "RepoTags" "$(jq -c '.[0].RepoTags' x/manifest.json)" '["localhost:5000/ocib/layered:1.0"]'
    m=$(layout_manifest "$T/out" 1.0)
    local want got l
    want=$(jq -r '.config.digest, .layers[].digest' "$m" | sed 's/^sha256://')
    got=$(for l in $(jq -r '.[0].Config, .[0].Layers[]' x/manifest.json); do sha256sum "x/$l" | cut -d' ' -f1; done)
    assert_eq "sha256 of the archive's config and layers vs the layout's descriptors" "$got" "$want"
    # Like Docker 25's, the archive is also an OCI layout (blobs/sha256, oci-layout, index.json)
    # naming the same manifest.
    ! jq -r '.[0].Config, .[0].Layers[]' x/manifest.json | grep -qv '^blobs/sha256/[0-9a-f]\{64\}$' ||
        fail "manifest.json paths are not blobs/sha256/<hex>: $(cat x/manifest.json)"
    [ -f x/oci-layout ] && [ -f x/index.json ] || fail "the archive has no oci-layout and index.json"
    jq -e --arg d "$DIGEST" '[.manifests[].digest] | index($d)' x/index.json >/dev/null ||
        fail "the archive's index.json does not list $DIGEST: $(cat x/index.json)"
    assert_layout_sound x
    oci_validate x
}

@test "--compression zstd writes tar+zstd layers that zstd reads; gzip stays the default" {
    need zstd skopeo
    local ctx m n i d f
    ctx=$(copy_example layered)
    build_ok -C "$ctx" --compression zstd --output "oci:$T/z"
    assert_layout_sound "$T/z"
    m=$(layout_manifest "$T/z" 1.0)
    jq -e --arg z "$MT_ZSTD" 'all(.layers[]; .mediaType == $z)' "$m" >/dev/null ||
        fail "--compression zstd gave layers $(jq -c '[.layers[].mediaType]' "$m")"
    n=$(jq '.layers | length' "$m")
    for ((i = 0; i < n; i++)); do
        d=$(jq -r ".layers[$i].digest" "$m")
        f=$(blob_path "$T/z" "$d")
        zstd -tq "$f" || fail "zstd -t rejects layer $d"
        zstd -dcq "$f" | tar -tf - >/dev/null || fail "layer $d is not a tar once decompressed"
        assert_layer_canonical "$T/z" "$i" 0 1.0
    done
    assert_diff_ids "$T/z" 1.0
    skopeo inspect "oci:$T/z:1.0" >/dev/null || fail "skopeo cannot inspect the zstd image"
    # Same content, other compression: same diff_ids, different layer digests.
    build_ok -C "$ctx" --compression gzip --output "oci:$T/g"
    local mg
    mg=$(layout_manifest "$T/g" 1.0)
    jq -e --arg g "$MT_GZIP" 'all(.layers[]; .mediaType == $g)' "$mg" >/dev/null ||
        fail "--compression gzip gave $(jq -c '[.layers[].mediaType]' "$mg")"
    assert_eq "diff_ids do not depend on compression" \
        "$(jq -c .rootfs.diff_ids "$(layout_config "$T/g" 1.0)")" "$(jq -c .rootfs.diff_ids "$(layout_config "$T/z" 1.0)")"
}

@test "-f FILE reads a spec kept outside the context" {
    local ctx
    ctx=$(copy_example hello)
    mkdir specs
    mv "$ctx/ocib.json" specs/hello.json
    build_ok --repo localhost:5000/ocib/hello -C "$ctx" -f specs/hello.json --output "oci:$T/out"
    assert_eq "digest" "$(layout_digest "$T/out")" "$DIGEST"
    # The same spec and context give the same image whichever way the spec is found.
    cp specs/hello.json "$ctx/ocib.json"
    build_ok -C "$ctx" --output "oci:$T/out2"
    assert_eq "digest with the spec in the context" "$DIGEST" "$(layout_digest "$T/out")"
}

@test "--digest-file FILE records the printed digest" {
    local ctx
    ctx=$(copy_example hello)
    build_ok -C "$ctx" --digest-file "$T/digest" --output "oci:$T/out"
    [ -f "$T/digest" ] || fail "--digest-file wrote nothing"
    grep -q "${DIGEST}" "$T/digest" || fail "digest file holds '$(cat "$T/digest")', not $DIGEST"
}

@test "--progress=quiet keeps stderr empty; --progress=json writes one JSON object per line" {
    local ctx
    ctx=$(copy_example hello)
    build_ok -C "$ctx" --progress=quiet --output "oci:$T/q"
    assert_eq "stderr with --progress=quiet" "$err" ""
    build_ok -C "$ctx" --progress=json --no-cache --output "oci:$T/j"
    [ -n "$err" ] || fail "--progress=json printed nothing"
    printf '%s\n' "$err" | jq -e -s 'length > 0 and all(.[]; type == "object")' >/dev/null ||
        fail "--progress=json stderr is not JSON lines: $err"
    build_ok -C "$ctx" --progress=plain --no-cache --output "oci:$T/p"
    [ -n "$err" ] || fail "--progress=plain printed no progress on stderr"
}

@test "a symlink to a path outside the context is stored as a symlink; its target is never read" {
    mkdir -p ctx/links outside
    echo "host secret" >outside/secret.txt
    ln -s "$T/outside/secret.txt" ctx/links/abs
    ln -s ../../outside/secret.txt ctx/links/rel
    cat >ctx/ocib.json <<'EOF'
{"version": 1, "image": "localhost:5000/ocib/links",
 "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["links"], "dest": "/links/"}]}]}]}
EOF
    build_ok -C ctx --output "oci:$T/out"
    local entries
    entries=$(layout_entries "$T/out")
    assert_eq "links/abs" "$(field 3 "$(entry_of "$entries" links/abs)") $(field 7 "$(entry_of "$entries" links/abs)")" \
        "l $T/outside/secret.txt"
    assert_eq "links/rel" "$(field 3 "$(entry_of "$entries" links/rel)") $(field 7 "$(entry_of "$entries" links/rel)")" \
        "l ../../outside/secret.txt"
    local f
    for f in "$T"/out/blobs/sha256/*; do
        ! { gzip -dc "$f" 2>/dev/null | grep -q "host secret"; } || fail "the symlink's target was read into a layer"
    done
}

@test "hard links within a layer are kept as hard links" {
    mkdir -p ctx/d
    echo "same inode" >ctx/d/one
    ln ctx/d/one ctx/d/two
    cat >ctx/ocib.json <<'EOF'
{"version": 1, "image": "localhost:5000/ocib/hardlinks",
 "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["d"], "dest": "/d/"}]}]}]}
EOF
    build_ok -C ctx --output "oci:$T/out"
    local entries
    entries=$(layout_entries "$T/out")
    assert_eq "d/one" "$(field 3 "$(entry_of "$entries" d/one)")" -
    assert_eq "d/two (hard link to d/one)" \
        "$(field 3 "$(entry_of "$entries" d/two)") $(field 7 "$(entry_of "$entries" d/two)" | sed 's|^\./||; s|^/||')" "h d/one"
    umoci_unpack "$T/out" latest "$T/bundle"
    assert_same_file ctx/d/one "$T/bundle/rootfs/d/two"
}

@test "file names with spaces, UTF-8 characters and long paths are copied intact" {
    local long
    long=$(printf 'd%.0s' {1..120})
    mkdir -p "ctx/files/$long" "ctx/files/sub dir"
    printf 'spaces\n' >"ctx/files/sub dir/with space.txt"
    printf 'utf-8\n' >"ctx/files/ünïcödé-名前.txt"
    printf 'long\n' >"ctx/files/$long/$long.txt"
    cat >ctx/ocib.json <<'JSON'
{"version": 1, "image": "localhost:5000/ocib/names",
 "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["files"], "dest": "/files/"}]}]}]}
JSON
    build_ok -C ctx --output "oci:$T/out"
    assert_layer_canonical "$T/out" 0 0
    umoci_unpack "$T/out" latest "$T/bundle"
    assert_same_file "ctx/files/sub dir/with space.txt" "$T/bundle/rootfs/files/sub dir/with space.txt"
    assert_same_file "ctx/files/ünïcödé-名前.txt" "$T/bundle/rootfs/files/ünïcödé-名前.txt"
    assert_same_file "ctx/files/$long/$long.txt" "$T/bundle/rootfs/files/$long/$long.txt"
}

@test "in a git checkout the tag defaults to the short commit id and the manifest records the revision" {
    need git
    copy_example hello "$T/repo" >/dev/null
    git -C repo init -q
    git -C repo add -A
    git -C repo -c user.name=ocib-tests -c user.email=tests@ocib.invalid commit -q -m "hello"
    local head short name rev
    head=$(git -C repo rev-parse HEAD)
    short=$(git -C repo rev-parse --short HEAD)
    build_ok --repo localhost:5000/ocib/hello -C repo --output "oci:$T/out"
    name=$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$T/out/index.json")
    assert_eq "ref.name in a git checkout" "$name" "$short"
    rev=$(jq -r '.annotations["org.opencontainers.image.revision"] // empty' "$(layout_manifest "$T/out")")
    assert_eq "org.opencontainers.image.revision" "$rev" "$head"
    # --tag still wins over the commit id.
    build_ok -C repo --tag localhost:5000/ocib/hello:release --output "oci:$T/tagged"
    assert_eq "digest under --tag" "$(layout_digest "$T/tagged" release)" "$DIGEST"
}

@test "--platform and stage.platform set the image's os, architecture and variant" {
    need skopeo
    local ctx c
    ctx=$(copy_example hello)
    build_ok -C "$ctx" --platform linux/arm64 --output "oci:$T/arm64"
    c=$(layout_config "$T/arm64")
    assert_eq "architecture" "$(jq -r .architecture "$c")" arm64
    assert_eq "os" "$(jq -r .os "$c")" linux
    assert_eq "skopeo's architecture" "$(skopeo inspect "oci:$T/arm64:latest" | jq -r .Architecture)" arm64
    jq '.stages[0].platform = "linux/arm/v7"' "$ctx/ocib.json" >"$T/spec.json"
    cp "$T/spec.json" "$ctx/ocib.json"
    build_ok -C "$ctx" --output "oci:$T/armv7"
    c=$(layout_config "$T/armv7")
    assert_eq "architecture/variant from stage.platform" "$(jq -r '"\(.os)/\(.architecture)/\(.variant)"' "$c")" linux/arm/v7
    oci_validate "$T/armv7"
}

@test "dest \".\" is the workdir itself: a file and several sources go into it, as Docker's COPY a b ." {
    mkdir -p "$T/ctx"
    echo a >"$T/ctx/a.txt"
    echo b >"$T/ctx/b.txt"
    cat >"$T/ctx/ocib.json" <<'JSON'
{"version": 1, "stages": [{"from": "scratch", "workdir": "/srv/app", "layers": [
  {"name": "one", "copy": [{"src": ["a.txt"], "dest": "."}]},
  {"name": "two", "copy": [{"src": ["a.txt", "b.txt"], "dest": "sub/."}]}]}]}
JSON
    run_ocib build -C "$T/ctx" --output "oci:$T/out"
    [ "$status" -eq 0 ] || { show_run; fail "the build failed"; }
    local l0 l1
    l0=$(layer_listing "$T/out" 0 | norm_listing | cut -f1 | sort | tr '\n' ' ')
    [ "$l0" = "srv srv/app srv/app/a.txt " ] || fail "dest \".\" did not copy into the workdir: $l0"
    l1=$(layer_listing "$T/out" 1 | norm_listing | cut -f1 | sort | tr '\n' ' ')
    [ "$l1" = "srv srv/app srv/app/sub srv/app/sub/a.txt srv/app/sub/b.txt " ] ||
        fail "dest \"sub/.\" did not copy into sub: $l1"
    # "a." is a file name, not a directory: two sources cannot go there
    sed -i 's|"sub/\."|"sub."|' "$T/ctx/ocib.json"
    run_ocib build -C "$T/ctx" --output "oci:$T/out2"
    [ "$status" -eq 2 ] || { show_run; fail "expected exit 2"; }
    grep -q 'several sources need a directory dest' <<<"$err" || { show_run; fail "wrong error"; }
}
