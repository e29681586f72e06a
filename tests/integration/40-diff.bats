#!/usr/bin/env bats
# `ocib diff A B`, the auditor's tool: identical images say so (exit 0);
# otherwise (exit 1) every difference is named from the top down -- config
# fields by JSON path, layer entries by path and field, with the probable
# cause -- and an input that cannot be read exits 2, like diff(1).

load helpers

setup() {
    common_setup
}

# small_spec DIR [JQ-FILTER]: a one-stage spec with generated files in DIR,
# edited by the jq filter.
small_spec() {
    local dir=$1 filter=${2:-.}
    mkdir -p "$dir"
    jq "$filter" >"$dir/ocib.json" <<'EOF'
{
  "version": 1,
  "image": "localhost:5000/ocib/diff-test",
  "stages": [
    {
      "name": "app",
      "from": "scratch",
      "layers": [
        {"name": "files", "files": [
          {"path": "/etc/app.conf", "content": "port=8080\n"},
          {"path": "/etc/motd", "content": "hello\n"},
          {"path": "/opt/app/run.sh", "content": "#!/bin/sh\necho run\n", "mode": "0755"}
        ]},
        {"name": "more", "files": [{"path": "/var/lib/app/state", "content": "0\n"}]}
      ],
      "config": {"env": {"A": "1", "B": "2", "C": "3"}, "cmd": ["/opt/app/run.sh"]}
    }
  ]
}
EOF
}

# build_small NAME [JQ-FILTER] [BUILD-ARGS...]: builds small_spec into oci:$T/NAME.
build_small() {
    local name=$1 filter=${2:-.}
    shift 2 || shift $#
    small_spec "$T/ctx-$name" "$filter"
    build_ok -C "$T/ctx-$name" --output "oci:$T/$name" "$@"
}

# hand_layout DIR TAR [gzip|gzip-named|zstd]: an OCI layout made without
# ocib: one image whose only layer is TAR, compressed by the command line
# tools.
hand_layout() {
    local dir=$1 tar=$2 comp=${3:-gzip} mt layer diff_id cfg man d
    mkdir -p "$dir/blobs/sha256"
    layer=$dir/layer.tmp
    case $comp in
    gzip) gzip -n -c <"$tar" >"$layer"; mt=$MT_GZIP ;;
    gzip-named) gzip -c "$tar" >"$layer"; mt=$MT_GZIP ;; # name and mtime in the header
    zstd) zstd -q -c <"$tar" >"$layer"; mt=$MT_ZSTD ;;
    esac
    diff_id=sha256:$(sha256sum <"$tar" | cut -d' ' -f1)
    d=$(sha256sum <"$layer" | cut -d' ' -f1)
    mv "$layer" "$dir/blobs/sha256/$d"
    cfg=$(jq -cn --arg arch "$(host_arch)" --arg id "$diff_id" \
        '{architecture: $arch, os: "linux", config: {}, rootfs: {type: "layers", diff_ids: [$id]}}')
    printf '%s' "$cfg" >"$dir/cfg.tmp"
    local cd cs
    cd=$(sha256sum <"$dir/cfg.tmp" | cut -d' ' -f1)
    cs=$(stat -c %s "$dir/cfg.tmp")
    mv "$dir/cfg.tmp" "$dir/blobs/sha256/$cd"
    man=$(jq -cn --arg mt "$mt" --arg ld "sha256:$d" --argjson ls "$(stat -c %s "$dir/blobs/sha256/$d")" \
        --arg cd "sha256:$cd" --argjson cs "$cs" --arg ct "$MT_CONFIG" --arg m "$MT_MANIFEST" \
        '{schemaVersion: 2, mediaType: $m, config: {mediaType: $ct, digest: $cd, size: $cs},
          layers: [{mediaType: $mt, digest: $ld, size: $ls}]}')
    printf '%s' "$man" >"$dir/man.tmp"
    local md ms
    md=$(sha256sum <"$dir/man.tmp" | cut -d' ' -f1)
    ms=$(stat -c %s "$dir/man.tmp")
    mv "$dir/man.tmp" "$dir/blobs/sha256/$md"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
    jq -cn --arg m "$MT_MANIFEST" --arg d "sha256:$md" --argjson s "$ms" \
        '{schemaVersion: 2, manifests: [{mediaType: $m, digest: $d, size: $s,
          annotations: {"org.opencontainers.image.ref.name": "latest"}}]}' >"$dir/index.json"
}

# rootfs_tree DIR: a small tree with files of different mtimes.
rootfs_tree() {
    mkdir -p "$1/etc" "$1/usr/bin"
    echo one >"$1/etc/one"
    echo two >"$1/etc/two"
    printf '#!/bin/sh\n' >"$1/usr/bin/tool"
    chmod 0755 "$1/usr/bin/tool"
    chmod 0644 "$1/etc/one" "$1/etc/two"
    touch -d '2021-01-01 00:00:00' "$1/etc/one"
    touch -d '2022-02-02 00:00:00' "$1/etc/two"
    touch -d '2023-03-03 00:00:00' "$1/usr/bin/tool" "$1/etc" "$1/usr/bin" "$1/usr"
}

# diff_ok WANT-STATUS A B [ARGS...]: runs ocib diff and checks its status.
diff_status() {
    local want=$1
    shift
    run_ocib diff "$@"
    [ "$status" -eq "$want" ] || { show_run; fail "ocib diff $* exited $status, expected $want"; }
}

@test "two builds of the same spec (cold and warm cache, other paths) are identical (exit 0)" {
    build_small one
    small_spec "$T/elsewhere/ctx"
    (
        export OCIB_CACHE_DIR=$T/other-cache
        umask 0077
        build_ok -C "$T/elsewhere/ctx" --output "oci:$T/two"
    )
    build_ok -C "$T/ctx-one" --output "oci:$T/three" # warm cache
    diff_status 0 "oci:$T/one" "oci:$T/two"
    assert_eq "stdout" "$out" "identical"
    diff_status 0 "oci:$T/one" "oci:$T/three"
    assert_eq "stdout" "$out" "identical"
    run_ocib diff --json "oci:$T/one" "oci:$T/two"
    [ "$status" -eq 0 ] || { show_run; fail "diff --json of identical images exited $status"; }
    assert_eq ".identical" "$(jq -r .identical <<<"$out")" true
    assert_eq ".differences" "$(jq -c .differences <<<"$out")" "[]"
}

@test "an OCI layout and a docker-archive of the same build are identical" {
    small_spec "$T/ctx"
    build_ok -C "$T/ctx" --output "oci:$T/out" --output "docker-archive:$T/img.tar"
    diff_status 0 "oci:$T/out" "docker-archive:$T/img.tar"
    assert_eq "stdout" "$out" "identical"
}

@test "a changed file is named with both content digests (file content)" {
    build_small a
    build_small b '.stages[0].layers[0].files[0].content = "port=9090\n"'
    diff_status 1 "oci:$T/a" "oci:$T/b"
    local da db line
    da=sha256:$(printf 'port=8080\n' | sha256sum | cut -d' ' -f1)
    db=sha256:$(printf 'port=9090\n' | sha256sum | cut -d' ' -f1)
    line=$(grep -F 'etc/app.conf' <<<"$out" | grep -F content) ||
        { show_run; fail "no content line for etc/app.conf"; }
    assert_contains "content line" "$line" "layer 0"
    assert_contains "content line" "$line" "$da"
    assert_contains "content line" "$line" "$db"
    assert_contains "content line" "$line" "file content"
    # Nothing else in the layer differs, and the untouched layer is not listed.
    ! grep -F 'etc/motd' <<<"$out" || fail "etc/motd did not change but is listed"
    ! grep -q '^layer 1' <<<"$out" || fail "layer 1 did not change but is listed"
    # Top down: the config (diff_ids) comes before the layer.
    grep -n . <<<"$out" | head -1 | grep -Eq 'manifest|config' ||
        fail "the first difference is not the manifest's or the config's: $out"
}

@test "a mode change names the path and both modes" {
    build_small a
    build_small b '.stages[0].layers[0].files[1].mode = "0600"'
    diff_status 1 "oci:$T/a" "oci:$T/b"
    local line
    line=$(grep -F 'etc/motd' <<<"$out" | grep -F mode) || { show_run; fail "no mode line for etc/motd"; }
    assert_contains "mode line" "$line" 0644
    assert_contains "mode line" "$line" 0600
    ! grep '^layer' <<<"$out" | grep -F 'content' || fail "content reported changed for a mode change: $out"
}

@test "an owner change names uid and gid with cause 'owner differs'" {
    build_small a
    build_small b '.stages[0].layers[0].files[1].owner = "1000:1001"'
    diff_status 1 "oci:$T/a" "oci:$T/b"
    local uid gid
    uid=$(grep -F 'etc/motd' <<<"$out" | grep -F 'uid') || { show_run; fail "no uid line"; }
    gid=$(grep -F 'etc/motd' <<<"$out" | grep -F 'gid') || { show_run; fail "no gid line"; }
    assert_contains "uid line" "$uid" 1000
    assert_contains "gid line" "$gid" 1001
    assert_contains "uid line" "$uid" "owner differs"
    run_ocib diff --json "oci:$T/a" "oci:$T/b"
    assert_eq "uid difference as data" \
        "$(jq -c '[.differences[] | select(.field == "uid") | {where, layer, path, a, b, cause}]' <<<"$out")" \
        '[{"where":"layer","layer":0,"path":"etc/motd","a":"0","b":"1000","cause":"owner differs"}]'
}

@test "a layer made by tar without --mtime is 'mtime not clamped'" {
    need tar
    rootfs_tree "$T/root"
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$T/clamped.tar" -C "$T/root" etc usr
    tar --sort=name --owner=0 --group=0 --numeric-owner -cf "$T/unclamped.tar" -C "$T/root" etc usr
    hand_layout "$T/a" "$T/clamped.tar"
    hand_layout "$T/b" "$T/unclamped.tar"
    diff_status 1 "oci:$T/a" "oci:$T/b"
    local line
    line=$(grep -F 'etc/two' <<<"$out" | grep -F mtime) || { show_run; fail "no mtime line for etc/two"; }
    assert_contains "mtime line" "$line" "mtime not clamped"
    assert_contains "mtime line" "$line" "$(date -u -d '2022-02-02 00:00:00' +%s)"
    ! grep '^layer' <<<"$out" | grep -F 'content' || fail "content reported changed: $out"
}

@test "a constant mtime offset (another SOURCE_DATE_EPOCH) is 'mtime not clamped' on every entry" {
    build_small a
    build_small b . --source-date-epoch 1700000000
    diff_status 1 "oci:$T/a" "oci:$T/b"
    assert_contains "config created" "$out" "created"
    local n m
    n=$(grep -c 'mtime' <<<"$out")
    m=$(grep 'mtime' <<<"$out" | grep -c 'mtime not clamped')
    [ "$n" -gt 0 ] && [ "$n" -eq "$m" ] || { show_run; fail "$m of $n mtime lines name 'mtime not clamped'"; }
}

@test "the same entries in another order are 'entry order'" {
    rootfs_tree "$T/root"
    tar --no-recursion --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$T/fwd.tar" -C "$T/root" etc etc/one etc/two
    tar --no-recursion --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$T/rev.tar" -C "$T/root" etc etc/two etc/one
    hand_layout "$T/a" "$T/fwd.tar"
    hand_layout "$T/b" "$T/rev.tar"
    diff_status 1 "oci:$T/a" "oci:$T/b"
    assert_contains "order" "$out" "entry order"
    ! grep '^layer' <<<"$out" | grep -E 'content|mode|mtime|only in' || fail "entries reported different: $out"
}

@test "entries only in one layer are listed as such" {
    rootfs_tree "$T/root"
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$T/all.tar" -C "$T/root" etc usr
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$T/etc.tar" -C "$T/root" etc
    hand_layout "$T/a" "$T/all.tar"
    hand_layout "$T/b" "$T/etc.tar"
    diff_status 1 "oci:$T/a" "oci:$T/b"
    grep -F 'usr/bin/tool' <<<"$out" | grep -q 'only in A' || { show_run; fail "usr/bin/tool not 'only in A'"; }
}

@test "a config env change names config.Env[i] with both values" {
    build_small a
    build_small b '.stages[0].config.env.B = "two"'
    diff_status 1 "oci:$T/a" "oci:$T/b"
    local line
    line=$(grep -E 'config\.Env\[[0-9]+\]' <<<"$out") || { show_run; fail "no config.Env[i] line"; }
    assert_contains "env line" "$line" "B=2"
    assert_contains "env line" "$line" "B=two"
    ! grep -q '^layer' <<<"$out" || fail "layers reported different for a config change: $out"
    run_ocib diff --json "oci:$T/a" "oci:$T/b"
    jq -e '.identical == false and ([.differences[] | select(.where == "config" and (.field | test("^config\\.Env\\[[0-9]+\\]$")))] | length) == 1' \
        <<<"$out" >/dev/null || { show_run; fail "--json lacks exactly one config.Env[i] difference"; }
}

@test "gzip vs zstd of the same spec: same diff_id, a compressor difference naming both media types" {
    build_small a '.' --compression gzip
    build_small b '.' --compression zstd
    diff_status 1 "oci:$T/a" "oci:$T/b"
    local n
    n=$(grep -c 'compressor difference' <<<"$out")
    assert_eq "layers with a compressor difference" "$n" 2
    assert_contains "compressor line" "$out" "$MT_GZIP"
    assert_contains "compressor line" "$out" "$MT_ZSTD"
    ! grep '^layer' <<<"$out" | grep -E 'content|mtime|only in' || fail "entries reported different: $out"
    run_ocib diff --json "oci:$T/a" "oci:$T/b"
    jq -e '[.differences[] | select(.where == "layer" and .field == "digest" and .cause == "compressor")] | length == 2' \
        <<<"$out" >/dev/null || { show_run; fail "--json lacks two layer digest differences caused by the compressor"; }
}

@test "the same tar gzipped with another gzip header is a 'gzip header' difference" {
    rootfs_tree "$T/root"
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$T/l.tar" -C "$T/root" etc usr
    touch -d '2020-01-01 00:00:00' "$T/l.tar"
    hand_layout "$T/a" "$T/l.tar" gzip
    hand_layout "$T/b" "$T/l.tar" gzip-named
    diff_status 1 "oci:$T/a" "oci:$T/b"
    assert_contains "gzip" "$out" "compressor difference"
    assert_contains "gzip" "$out" "gzip header"
}

@test "--json output parses with jq and has the documented fields" {
    build_small a
    build_small b '.stages[0].layers[0].files[0].content = "port=9090\n" | .stages[0].config.env.C = "4"'
    run_ocib diff --json "oci:$T/a" "oci:$T/b"
    [ "$status" -eq 1 ] || { show_run; fail "diff --json of different images exited $status"; }
    jq -e . <<<"$out" >/dev/null || fail "--json output is not JSON: $out"
    jq -e '.identical == false and (.differences | length) > 0' <<<"$out" >/dev/null ||
        fail "--json: identical must be false with differences"
    jq -e 'all(.differences[]; has("where") and has("layer") and has("path") and has("field")
            and has("a") and has("b") and has("cause")
            and (.where | IN("manifest", "config", "layer")))' <<<"$out" >/dev/null ||
        fail "--json: a difference lacks a documented field: $out"
    jq -e '[.differences[] | select(.where == "layer" and .path == "etc/app.conf" and .field == "content"
            and .cause == "file content")] | length == 1' <<<"$out" >/dev/null ||
        fail "--json: no content difference for etc/app.conf"
}

@test "many differing entries are capped per layer with '… and N more'" {
    local i
    mkdir -p "$T/root/many"
    for i in $(seq 1 80); do echo "$i" >"$T/root/many/f$i"; done
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$T/a.tar" -C "$T/root" many
    tar --sort=name --owner=1 --group=1 --numeric-owner --mtime=@0 -cf "$T/b.tar" -C "$T/root" many
    hand_layout "$T/a" "$T/a.tar"
    hand_layout "$T/b" "$T/b.tar"
    diff_status 1 "oci:$T/a" "oci:$T/b"
    [ "$(grep -c '^layer 0: many' <<<"$out")" -le 50 ] || fail "more than 50 differences printed for one layer"
    grep -Eq '^layer 0: … and [0-9]+ more$' <<<"$out" || { show_run; fail "no '… and N more' line"; }
}

@test "a missing or unreadable input exits 2 with an 'ocib: ' error naming it" {
    build_small a
    run_ocib diff "oci:$T/a" "oci:$T/nowhere"
    assert_failed 2 nowhere
    run_ocib diff "docker-archive:$T/nothing.tar" "oci:$T/a"
    assert_failed 2 'nothing\.tar'
    # A corrupt layer blob is trouble too, not a difference.
    build_small b '.stages[0].layers[0].files[0].content = "port=9090\n"'
    local m l
    m=$(layout_manifest "$T/b")
    l=$(blob_path "$T/b" "$(jq -r '.layers[0].digest' "$m")")
    chmod u+w "$l"
    head -c 40 "$l" >"$l.cut" && mv "$l.cut" "$l"
    run_ocib diff "oci:$T/a" "oci:$T/b"
    assert_failed 2 'layer 0'
    run_ocib diff "oci:$T/a"
    assert_failed 2
}
