#!/usr/bin/env bats
# The layer cache, as a CI user meets it (issue 4, "Tests"): a Node-style
# context (lockfile layer, a node_modules deps layer of a few hundred small
# files, a source layer) rebuilt after a source-only change, a lockfile
# change, a spec change and a base change; what a rebuild opens (strace);
# a fresh checkout with new mtimes; the remote cache against a real registry;
# concurrent builds on one cache; builds killed with SIGKILL; a corrupted
# blob; `ocib cache du | prune | verify`.

load helpers
load lib/registry

setup_file() {
    export REGISTRY_MAX_SECONDS=600
    registry_start REG
}

teardown_file() {
    registry_stop REG
}

setup() {
    common_setup
}

# ---------------------------------------------------------------- workload

# make_node_ctx DIR [FROM [IMAGE]]: a Node-style service: package.json and
# package-lock.json, node_modules/ with 40 packages (360 small files), src/.
# Its spec has three layers: lockfile, deps, source.
make_node_ctx() {
    local d=$1 from=${2:-scratch} image=${3:-registry.example.com/team/svc} p f
    mkdir -p "$d/src/routes" "$d/node_modules"
    printf '{"name":"svc","version":"1.0.0","dependencies":{"express":"^4.19.0"}}\n' >"$d/package.json"
    printf '{"name":"svc","lockfileVersion":3,"requires":true,"packages":{"":{"name":"svc"}}}\n' \
        >"$d/package-lock.json"
    for p in $(seq -w 1 40); do
        mkdir -p "$d/node_modules/pkg$p/lib"
        printf '{"name":"pkg%s","version":"1.%s.0","main":"lib/index.js"}\n' "$p" "$p" \
            >"$d/node_modules/pkg$p/package.json"
        printf 'module.exports = require("./m%s_1");\n' "$p" >"$d/node_modules/pkg$p/lib/index.js"
        for f in 1 2 3 4 5 6 7; do
            printf '"use strict";\nmodule.exports = function m%s_%s(x) { return x + %s; };\n' \
                "$p" "$f" "$f" >"$d/node_modules/pkg$p/lib/m${p}_$f.js"
        done
    done
    printf 'import express from "express";\nexport const port = 3000;\n' >"$d/src/server.ts"
    printf 'export const health = () => "ok";\n' >"$d/src/routes/health.ts"
    write_node_spec "$d" "$from" "$image" /app/src/
}

# write_node_spec DIR FROM IMAGE SOURCE_DEST
write_node_spec() {
    cat >"$1/ocib.json" <<EOF
{
  "version": 1,
  "image": "$3",
  "stages": [
    {
      "name": "app",
      "from": "$2",
      "layers": [
        {"name": "lockfile", "copy": [{"src": ["package.json", "package-lock.json"], "dest": "/app/"}]},
        {"name": "deps", "copy": [{"src": ["node_modules"], "dest": "/app/node_modules/"}]},
        {"name": "source", "copy": [{"src": ["src"], "dest": "$4"}]}
      ],
      "config": {"workdir": "/app", "env": {"NODE_ENV": "production"}, "cmd": ["node", "src/server.ts"]}
    }
  ]
}
EOF
}

# --------------------------------------------------------------- helpers

# manifest_of LAYOUT / config_of LAYOUT: paths of the manifest and config blobs.
manifest_of() { layout_manifest "$1"; }
config_of() { layout_config "$1"; }

# layer_digest LAYOUT N / layer_diff_id LAYOUT N
layer_digest() { jq -r ".layers[$2].digest" "$(manifest_of "$1")"; }
layer_diff_id() { jq -r ".rootfs.diff_ids[$2]" "$(config_of "$1")"; }

# layer_line LAYER: the plain progress line of LAYER in the last run's stderr.
layer_line() {
    printf '%s\n' "$err" | grep -E "^\[app\] layer $1: " || true
}

# assert_cached LAYER...: every LAYER is reported `cached` (plain progress).
assert_cached() {
    local l line
    for l in "$@"; do
        line=$(layer_line "$l")
        [[ $line =~ ^\[app\]\ layer\ $l:\ cached\ sha256:[0-9a-f]{64}\ \(.*\)$ ]] ||
            { show_run; fail "layer $l: expected 'cached', got: '$line'"; return 1; }
    done
}

# assert_built LAYER REASON: LAYER is reported `built ...: REASON` (plain).
assert_built() {
    local line
    line=$(layer_line "$1")
    [[ $line =~ ^\[app\]\ layer\ $1:\ built\ sha256:[0-9a-f]{64}\ \(.*\):\ (.*)$ ]] ||
        { show_run; fail "layer $1: expected 'built ...: $2', got: '$line'"; return 1; }
    [ "${BASH_REMATCH[1]}" = "$2" ] ||
        { show_run; fail "layer $1: reason '${BASH_REMATCH[1]}', expected '$2'"; return 1; }
}

# strace_ocib LOG ARGS...: run_ocib under strace (open, openat, openat2 of
# every thread and child).
strace_ocib() {
    local log=$1
    shift
    need strace || return 1
    local o=$BATS_TEST_TMPDIR/.run/stdout e=$BATS_TEST_TMPDIR/.run/stderr
    status=0
    # LeakSanitizer cannot run under ptrace (check-asan builds): leaks are
    # checked by every other test.
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        timeout -k 10 "$OCIB_TEST_TIMEOUT" strace -f -qq -e trace=open,openat,openat2 -o "$log" \
        "$OCIB" "$@" >"$o" 2>"$e" </dev/null || status=$?
    out=$(cat "$o")
    err=$(cat "$e")
    [ -s "$log" ] && grep -q openat "$log" || fail "strace wrote no openat lines to $log" || return 1
}

# opened_ctx_files LOG CTX: the files of context CTX (regular files, as
# paths relative to CTX) that the traced run opened successfully without
# O_DIRECTORY, one per line, sorted and unique. A path relative to a
# directory descriptor other than AT_FDCWD counts when it names a context
# file or is the tail of one (so it is found whatever directory it was
# opened from).
opened_ctx_files() {
    "$PY" - "$1" "$2" "$T" <<'EOF'
import os, re, sys
log, ctx, cwd = sys.argv[1], os.path.realpath(sys.argv[2]), sys.argv[3]
files = set()
for root, dirs, names in os.walk(ctx):
    for n in names:
        files.add(os.path.relpath(os.path.join(root, n), ctx))
call = re.compile(r'\b(open|openat|openat2)\((?:(AT_FDCWD|-?\d+), )?"((?:[^"\\]|\\.)*)", (?:\{flags=)?([A-Z0-9_|]+).*\) = (\d+)')
hits = set()
for line in open(log, errors="replace"):
    m = call.search(line)
    if not m:
        continue
    fn, dirfd, path, flags = m.group(1), m.group(2), m.group(3), m.group(4)
    if "O_DIRECTORY" in flags:
        continue
    if path.startswith("/") or fn == "open" or dirfd == "AT_FDCWD":
        p = os.path.realpath(os.path.join(cwd, path))
        if p.startswith(ctx + "/") and os.path.relpath(p, ctx) in files:
            hits.add(os.path.relpath(p, ctx))
    else:
        p = os.path.normpath(path)
        if p in files:
            hits.add(p)
        else:
            for f in files:
                if f.endswith("/" + p):
                    hits.add(f)
for h in sorted(hits):
    print(h)
EOF
}

# flip_byte FILE: changes one byte in the middle of FILE, same length.
flip_byte() {
    local f=$1 size off b
    size=$(stat -c %s "$f")
    off=$((size / 2))
    b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
    printf "$(printf '\\%03o' $(((b + 1) % 256)))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

# cache_blobs DIR: the blob names (sha256:<hex>) in cache DIR.
cache_blobs() {
    local f
    for f in "$1"/blobs/sha256/*; do
        [ -e "$f" ] && printf 'sha256:%s\n' "$(basename "$f")"
    done
    return 0
}

# ---------------------------------------------------------------- tests

@test "source-only change: the deps layer keeps its digest and diff_id and none of node_modules is opened" {
    local ctx=$T/ctx
    make_node_ctx "$ctx"
    [ "$(find "$ctx/node_modules" -type f | wc -l)" -ge 300 ]
    build_ok -C "$ctx" --output "oci:$T/out1" --progress=plain
    local d1=$DIGEST
    assert_built lockfile "first build"
    assert_built deps "first build"
    assert_built source "first build"

    printf 'export const port = 3001;\n' >>"$ctx/src/server.ts"
    strace_ocib "$T/strace.log" build -C "$ctx" --output "oci:$T/out2" --progress=plain
    [ "$status" -eq 0 ] || { show_run; fail "traced build exited $status"; }
    assert_digest_stdout ""
    [ "$DIGEST" != "$d1" ] || fail "the source changed but the image digest did not"
    assert_cached lockfile deps
    assert_built source "app/src/server.ts changed"

    local i
    for i in 0 1; do
        assert_eq "layer $i digest" "$(layer_digest "$T/out2" $i)" "$(layer_digest "$T/out1" $i)"
        assert_eq "layer $i diff_id" "$(layer_diff_id "$T/out2" $i)" "$(layer_diff_id "$T/out1" $i)"
    done
    [ "$(layer_digest "$T/out2" 2)" != "$(layer_digest "$T/out1" 2)" ] ||
        fail "the source layer did not change"
    assert_layout_sound "$T/out2"

    local opened
    opened=$(opened_ctx_files "$T/strace.log" "$ctx")
    ! printf '%s\n' "$opened" | grep -q node_modules ||
        fail "a source-only rebuild opened dependency files: $(printf '%s\n' "$opened" | grep node_modules | head -5 | tr '\n' ' ')"
    ! printf '%s\n' "$opened" | grep -qvE '^(ocib\.json|src/.*)$' ||
        fail "a source-only rebuild opened more than the spec and the source layer's files: $(printf '%s\n' "$opened" | tr '\n' ' ')"
    # the layer's content really is the new source
    layer_listing "$T/out2" 2 | norm_listing | cut -f1 | grep -qx app/src/server.ts
}

@test "no-op rebuild: every layer cached, same digest, and no context file but ocib.json is opened" {
    local ctx=$T/ctx
    make_node_ctx "$ctx"
    build_ok -C "$ctx" --output "oci:$T/out1"
    local d1=$DIGEST
    strace_ocib "$T/strace.log" build -C "$ctx" --output "oci:$T/out2" --progress=plain
    [ "$status" -eq 0 ] || { show_run; fail "traced build exited $status"; }
    assert_digest_stdout ""
    assert_eq "no-op rebuild digest" "$DIGEST" "$d1"
    assert_cached lockfile deps source
    local opened
    opened=$(opened_ctx_files "$T/strace.log" "$ctx")
    assert_eq "context files opened by a no-op rebuild" "$(printf '%s' "$opened" | tr '\n' ' ')" "ocib.json"
    # the directory walk still happened (stat of every file is allowed)
    grep -q 'node_modules' "$T/strace.log" || fail "strace log does not show the context walk"

    # the same content with a new mtime: re-hashed, still a hit
    sleep 0.01
    touch "$ctx/src/server.ts" "$ctx/node_modules/pkg07/lib/m07_3.js"
    build_ok -C "$ctx" --output "oci:$T/out3" --progress=plain
    assert_eq "digest after touch" "$DIGEST" "$d1"
    assert_cached lockfile deps source
}

@test "a fresh copy of the context elsewhere with new mtimes hits every layer" {
    local ctx=$T/ctx
    make_node_ctx "$ctx"
    build_ok -C "$ctx" --output "oci:$T/out1"
    local d1=$DIGEST
    mkdir -p "$T/runner/checkout"
    sleep 0.01
    cp -r "$ctx" "$T/runner/checkout/svc"
    find "$T/runner/checkout/svc" -exec touch {} +
    [ "$(stat -c %Y "$T/runner/checkout/svc/package.json")" -ge "$(stat -c %Y "$ctx/package.json")" ]
    build_ok -C "$T/runner/checkout/svc" --output "oci:$T/out2" --progress=plain
    assert_eq "digest of the fresh copy" "$DIGEST" "$d1"
    assert_cached lockfile deps source
    # and again from the copy: the stat cache of the copy now answers
    build_ok -C "$T/runner/checkout/svc" --output "oci:$T/out3" --progress=plain
    assert_eq "digest of the second build of the copy" "$DIGEST" "$d1"
    assert_cached lockfile deps source
}

@test "miss explanations: source change, added and removed files, lockfile change, spec change" {
    local ctx=$T/ctx
    make_node_ctx "$ctx"
    build_ok -C "$ctx" --output "oci:$T/o" --progress=plain

    # source change
    printf 'export const port = 4000;\n' >"$ctx/src/routes/health.ts"
    build_ok -C "$ctx" --output "oci:$T/o" --progress=plain
    assert_cached lockfile deps
    assert_built source "app/src/routes/health.ts changed"

    # a file added, then removed
    printf 'x\n' >"$ctx/src/routes/users.ts"
    build_ok -C "$ctx" --output "oci:$T/o" --progress=plain
    assert_built source "app/src/routes/users.ts added"
    rm "$ctx/src/routes/users.ts"
    build_ok -C "$ctx" --output "oci:$T/o" --progress=plain
    # back to a state already built: a hit
    assert_cached lockfile deps source
    rm "$ctx/src/routes/health.ts"
    build_ok -C "$ctx" --output "oci:$T/o" --progress=plain
    assert_built source "app/src/routes/health.ts removed"

    # lockfile change: the lockfile layer names it, the later layers follow
    printf '{"name":"svc","lockfileVersion":3,"requires":true,"packages":{"":{"name":"svc","x":1}}}\n' \
        >"$ctx/package-lock.json"
    build_ok -C "$ctx" --output "oci:$T/o" --progress=plain
    assert_built lockfile "app/package-lock.json changed"
    assert_built deps "an earlier layer changed"
    assert_built source "an earlier layer changed"

    # a dependency changes (same lockfile): deps names the file
    printf 'module.exports = 42;\n' >"$ctx/node_modules/pkg12/lib/index.js"
    build_ok -C "$ctx" --output "oci:$T/o" --progress=plain
    assert_cached lockfile
    assert_built deps "app/node_modules/pkg12/lib/index.js changed"
    assert_built source "an earlier layer changed"

    # a mode change alone is a change of that file
    chmod 0755 "$ctx/src/server.ts"
    build_ok -C "$ctx" --output "oci:$T/o" --progress=plain
    assert_cached lockfile deps
    assert_built source "app/src/server.ts changed"

    # renaming a layer or changing the image config keeps every layer
    local before=$DIGEST
    sed -i 's/"name": "source"/"name": "src"/; s/"NODE_ENV": "production"/"NODE_ENV": "staging"/' "$ctx/ocib.json"
    build_ok -C "$ctx" --output "oci:$T/o" --progress=plain
    [ "$DIGEST" != "$before" ] || fail "the config changed but the image digest did not"
    assert_cached lockfile deps src
    write_node_spec "$ctx" scratch registry.example.com/team/svc /app/src/
    build_ok -C "$ctx" --output "oci:$T/o" --progress=plain
    assert_eq "digest with the original spec" "$DIGEST" "$before"
    assert_cached lockfile deps source

    # spec change: the source layer's dest
    write_node_spec "$ctx" scratch registry.example.com/team/svc /app/source/
    build_ok -C "$ctx" --output "oci:$T/o" --progress=plain
    assert_cached lockfile deps
    assert_built source "definition changed in the spec"
    layer_listing "$T/o" 2 | norm_listing | cut -f1 | grep -qx app/source/server.ts

    # the same explanation in --progress=json, with every field
    printf 'export const port = 4001;\n' >"$ctx/src/server.ts"
    build_ok -C "$ctx" --output "oci:$T/o" --progress=json
    local ev
    ev=$(printf '%s\n' "$err" | jq -c 'select(.event == "layer" and .layer == "source")')
    printf '%s\n' "$ev" | jq -e '.stage == "app" and .status == "built" and .text == "app/source/server.ts changed"
        and (.digest | test("^sha256:[0-9a-f]{64}$")) and .size > 0 and .entries >= 2 and .seconds >= 0' >/dev/null ||
        { show_run; fail "json event of the source layer: $ev"; }
    ev=$(printf '%s\n' "$err" | jq -c 'select(.event == "layer" and .layer == "deps")')
    printf '%s\n' "$ev" | jq -e '.status == "cached" and .entries >= 360' >/dev/null ||
        { show_run; fail "json event of the deps layer: $ev"; }
    [ "$(layer_digest "$T/o" 2)" = "$(printf '%s\n' "$err" | jq -r 'select(.event == "layer" and .layer == "source") | .digest')" ]

    # --no-cache: everything built, for that reason, same digest
    build_ok -C "$ctx" --output "oci:$T/o" --progress=plain
    local d=$DIGEST
    build_ok -C "$ctx" --output "oci:$T/o2" --progress=plain --no-cache
    assert_eq "--no-cache digest" "$DIGEST" "$d"
    assert_built lockfile "--no-cache"
    assert_built deps "--no-cache"
    assert_built source "--no-cache"
}

@test "miss explanations: a copy from a stage that changed names that stage, not the spec" {
    local ctx=$T/two
    mkdir -p "$ctx"
    printf 'v1\n' >"$ctx/src.txt"
    printf 'static\n' >"$ctx/static.txt"
    cat >"$ctx/ocib.json" <<'JSON'
{"version": 1, "image": "registry.example.com/team/two", "stages": [
  {"name": "make", "from": "scratch",
   "layers": [{"name": "src", "copy": [{"src": ["src.txt"], "dest": "/out/"}]}]},
  {"name": "app", "from": "scratch",
   "layers": [{"name": "static", "copy": [{"src": ["static.txt"], "dest": "/srv/"}]},
              {"name": "artifact", "copy": [{"from": "make", "src": ["/out/src.txt"], "dest": "/srv/"}]}]}]}
JSON
    build_ok -C "$ctx" --output "oci:$T/o" --progress=plain
    printf 'v2\n' >"$ctx/src.txt"
    build_ok -C "$ctx" --output "oci:$T/o" --progress=plain
    assert_cached static
    assert_built artifact "stage make, which it copies from, changed"
    # a change of the copy itself is still the spec's
    sed -i 's|"dest": "/srv/"}]}]}]}|"dest": "/srv/bin/"}]}]}]}|' "$ctx/ocib.json"
    build_ok -C "$ctx" --output "oci:$T/o" --progress=plain
    assert_built artifact "definition changed in the spec"
}

@test "miss explanations: a changed oci:DIR base is named on the first layer" {
    make_oci_layout "$T/base" v1 2000 3000 >/dev/null
    local ctx=$T/ctx
    make_node_ctx "$ctx" "oci:$T/base:v1"
    build_ok -C "$ctx" --output "oci:$T/o1" --progress=plain
    local d1=$DIGEST
    build_ok -C "$ctx" --output "oci:$T/o2" --progress=plain
    assert_eq "rebuild on the same base" "$DIGEST" "$d1"
    assert_cached lockfile deps source
    # new base content under the same tag
    make_oci_layout "$T/base" v1 2000 3000 >/dev/null
    build_ok -C "$ctx" --output "oci:$T/o3" --progress=plain
    [ "$DIGEST" != "$d1" ] || fail "the base changed but the image digest did not"
    assert_built lockfile "base: digest changed"
    assert_built deps "an earlier layer changed"
    assert_built source "an earlier layer changed"
    # the layers ocib wrote are the same bytes (only their keys changed)
    local i
    for i in 0 1 2; do
        assert_eq "own layer $i" "$(layer_digest "$T/o3" $((i + 2)))" "$(layer_digest "$T/o1" $((i + 2)))"
    done
}

@test "remote cache: --cache-to, then an empty runner with --cache-from and --push mounts every layer" {
    local ctx=$T/ctx
    make_node_ctx "$ctx"
    build_ok -C "$ctx" --output "oci:$T/outA" --progress=plain \
        --cache-to "$REG_ADDR/ocib-test/svc-cache:buildcache"
    local da=$DIGEST layers
    layers=$(jq -r '.layers[].digest' "$(manifest_of "$T/outA")")
    [ "$(printf '%s\n' "$layers" | wc -l)" -eq 3 ]

    # runner B: a fresh checkout, an empty cache
    cp -r "$ctx" "$T/checkout-b"
    export OCIB_CACHE_DIR=$T/cache-b
    build_ok -C "$T/checkout-b" --progress=plain \
        --cache-from "$REG_ADDR/ocib-test/svc-cache:buildcache" \
        --push --tag "$REG_ADDR/ocib-test/svc:b1"
    assert_eq "digest pushed by B" "$DIGEST" "$da"
    assert_eq "repository" "$REPO" "$REG_ADDR/ocib-test/svc"
    local l line
    for l in lockfile deps source; do
        line=$(layer_line "$l")
        [[ $line =~ ^\[app\]\ layer\ $l:\ cached\ sha256:[0-9a-f]{64}\ \(.*\):\ from\ --cache-from$ ]] ||
            { show_run; fail "layer $l: expected 'cached ...: from --cache-from', got '$line'"; }
    done
    assert_eq "image in the registry" "$(registry_check_image REG ocib-test/svc b1)" "$da"

    # B uploaded no layer: at most one blob upload (the config), by digest
    local uploads
    uploads=$("$PY" - "$REG_LOG" <<'EOF'
import json, re, sys, urllib.parse
for line in open(sys.argv[1], errors="replace"):
    if not line.startswith("{"):
        continue
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("msg") != "response completed":
        continue
    m, u = e.get("http.request.method", ""), e.get("http.request.uri", "")
    if m in ("PATCH", "PUT") and u.startswith("/v2/ocib-test/svc/blobs/uploads/"):
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(u).query)
        print(m, q.get("digest", ["-"])[0])
EOF
    )
    local cfg
    cfg=$(jq -r .config.digest "$(manifest_of "$T/outA")")
    while read -r m d; do
        [ -n "$m" ] || continue
        if [ "$m" = PUT ]; then
            [ "$d" = "$cfg" ] || fail "B uploaded blob $d (layers: $(echo $layers)); uploads: $uploads"
        fi
    done <<<"$uploads"
    [ "$(printf '%s\n' "$uploads" | grep -c '^PUT ' || true)" -le 1 ] || fail "B made more than one blob upload: $uploads"
    [ "$(printf '%s\n' "$uploads" | grep -c '^PATCH ' || true)" -le 1 ] || fail "B sent more than one PATCH: $uploads"
    [ "$(registry_count REG 'PUT' '^/v2/ocib-test/svc/manifests/b1$')" -eq 1 ]
    for l in $layers; do
        [ "$(registry_count REG POST "^/v2/ocib-test/svc/blobs/uploads/\\?mount=sha256(%3A|:)${l#sha256:}")" -ge 1 ] ||
            fail "B did not mount layer $l from the cache repository"
    done
    # and it downloaded none: B's cache holds no layer blob
    for l in $layers; do
        ! cache_blobs "$OCIB_CACHE_DIR" | grep -qx "$l" || fail "B's cache holds layer blob $l"
    done
    for l in $layers; do
        [ "$(registry_count REG 'GET' "^/v2/ocib-test/svc(-cache)?/blobs/$l")" -eq 0 ] ||
            fail "B downloaded layer blob $l from the registry"
    done

    # runner C: an empty cache and an OCI layout to write: the hits are
    # downloaded (and checked), nothing is rebuilt
    cp -r "$ctx" "$T/checkout-c"
    export OCIB_CACHE_DIR=$T/cache-c
    build_ok -C "$T/checkout-c" --progress=plain --output "oci:$T/outC" \
        --cache-from "$REG_ADDR/ocib-test/svc-cache:buildcache"
    assert_eq "digest written by C" "$DIGEST" "$da"
    for l in lockfile deps source; do
        line=$(layer_line "$l")
        [[ $line == *" cached "*": from --cache-from" ]] ||
            { show_run; fail "runner C, layer $l: '$line'"; }
    done
    assert_layout_sound "$T/outC"
    assert_eq "C's layers" "$(jq -r '.layers[].digest' "$(manifest_of "$T/outC")")" "$layers"

    # a --cache-from that does not exist is not fatal: everything is built
    export OCIB_CACHE_DIR=$T/cache-d
    build_ok -C "$T/checkout-c" --progress=plain --output "oci:$T/outD" \
        --cache-from "$REG_ADDR/ocib-test/no-such-cache:buildcache"
    assert_eq "digest without a usable remote cache" "$DIGEST" "$da"
    assert_built deps "first build"
}

# run_bg NAME ARGS...: ocib ARGS in the background; out/err/rc in $T/bg/NAME.*
run_bg() {
    local name=$1
    shift
    mkdir -p "$T/bg"
    (
        rc=0
        timeout -k 10 "$OCIB_TEST_TIMEOUT" "$OCIB" "$@" >"$T/bg/$name.out" 2>"$T/bg/$name.err" </dev/null || rc=$?
        echo "$rc" >"$T/bg/$name.rc"
    ) 3>&- &
    BG_PIDS+=("$!")
}

# bg_digest NAME: checks NAME exited 0 with one digest reference; prints the digest.
bg_digest() {
    local rc
    rc=$(cat "$T/bg/$1.rc")
    [ "$rc" = 0 ] || fail "background build $1 exited $rc: $(cat "$T/bg/$1.err")" || return 1
    [[ $(cat "$T/bg/$1.out") =~ ^[^@[:space:]]+@(sha256:[0-9a-f]{64})$ ]] ||
        fail "background build $1 printed: $(cat "$T/bg/$1.out")" || return 1
    printf '%s\n' "${BASH_REMATCH[1]}"
}

@test "concurrent builds on one cache: the same spec twice, two different specs" {
    make_node_ctx "$T/one"
    make_node_ctx "$T/two" scratch registry.example.com/team/other
    printf 'export const other = true;\n' >"$T/two/src/server.ts"
    printf 'module.exports = "two";\n' >"$T/two/node_modules/pkg05/lib/index.js"
    local ref1 ref2
    build_ok -C "$T/one" --output "oci:$T/ref1" --cache-dir "$T/refcache1"
    ref1=$DIGEST
    build_ok -C "$T/two" --output "oci:$T/ref2" --cache-dir "$T/refcache2"
    ref2=$DIGEST
    [ "$ref1" != "$ref2" ]

    local round pid
    for round in 1 2 3; do
        # same spec, empty shared cache
        export OCIB_CACHE_DIR=$T/shared-same-$round
        BG_PIDS=()
        run_bg "same-$round-a" build -C "$T/one" --output "oci:$T/same-$round-a" --progress=plain
        run_bg "same-$round-b" build -C "$T/one" --output "oci:$T/same-$round-b" --progress=plain
        for pid in "${BG_PIDS[@]}"; do wait "$pid"; done
        assert_eq "same spec, build a (round $round)" "$(bg_digest "same-$round-a")" "$ref1"
        assert_eq "same spec, build b (round $round)" "$(bg_digest "same-$round-b")" "$ref1"
        assert_layout_sound "$T/same-$round-a"
        assert_layout_sound "$T/same-$round-b"

        # two different specs, empty shared cache
        export OCIB_CACHE_DIR=$T/shared-diff-$round
        BG_PIDS=()
        run_bg "diff-$round-1" build -C "$T/one" --output "oci:$T/diff-$round-1" --progress=plain
        run_bg "diff-$round-2" build -C "$T/two" --output "oci:$T/diff-$round-2" --progress=plain
        for pid in "${BG_PIDS[@]}"; do wait "$pid"; done
        assert_eq "spec one (round $round)" "$(bg_digest "diff-$round-1")" "$ref1"
        assert_eq "spec two (round $round)" "$(bg_digest "diff-$round-2")" "$ref2"

        # and the shared cache then serves both, all cached, right digests
        build_ok -C "$T/one" --output "oci:$T/after-$round-1" --progress=plain
        assert_eq "spec one from the shared cache" "$DIGEST" "$ref1"
        assert_cached lockfile deps source
        build_ok -C "$T/two" --output "oci:$T/after-$round-2" --progress=plain
        assert_eq "spec two from the shared cache" "$DIGEST" "$ref2"
        assert_cached lockfile deps source
        run_ocib cache verify
        [ "$status" -eq 0 ] || { show_run; fail "cache verify after concurrent builds"; }
    done
}

# set_variant CTX V: content variant V of the deps and the source.
set_variant() {
    printf '{"variant":%s}\n' "$2" >"$1/node_modules/.package-lock.json"
    printf 'export const variant = %s;\n' "$2" >"$1/src/server.ts"
}

@test "builds killed with SIGKILL at different moments leave nothing a later build trusts" {
    local ctx=$T/ctx
    make_node_ctx "$ctx"
    # a native addon: 4 MB of incompressible bytes keep each deps build busy
    mkdir -p "$ctx/node_modules/pkg01/build/Release"
    head -c $((4 * 1024 * 1024)) /dev/urandom >"$ctx/node_modules/pkg01/build/Release/addon.node"
    local v refs=() t0 t1
    for v in 0 1 2; do
        set_variant "$ctx" "$v"
        t0=$(date +%s.%N)
        build_ok -C "$ctx" --output "oci:$T/ref-$v" --cache-dir "$T/refcache-$v"
        t1=$(date +%s.%N)
        refs[v]=$DIGEST
    done

    # kill points spread over a whole cold build (the last one measured),
    # from just after exec to just after it would have finished
    export OCIB_CACHE_DIR=$T/shared
    local i d rc killed=0 completed=0 delays=()
    read -ra delays < <(awk -v a="$t0" -v b="$t1" 'BEGIN {
        n = split("0.02 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1.0 1.2", f, " ")
        for (i = 1; i <= n; i++) { d = (b - a) * f[i]; if (d < 0.005) d = 0.005; printf "%.3f ", d }; print ""
    }')
    [ "${#delays[@]}" -eq 12 ] || fail "delays: ${delays[*]}"
    for i in "${!delays[@]}"; do
        d=${delays[i]}
        set_variant "$ctx" $((i % 3))
        rc=0
        timeout -s KILL "$d" "$OCIB" build -C "$ctx" --output "oci:$T/killed-$i" --progress=quiet \
            >/dev/null 2>&1 </dev/null || rc=$?
        if [ "$rc" -eq 137 ]; then
            killed=$((killed + 1))
        else
            [ "$rc" -eq 0 ] || fail "build $i (not killed) exited $rc"
            completed=$((completed + 1))
        fi
    done
    echo "delays ${delays[*]}: $killed killed, $completed completed" >&3
    [ "$killed" -ge 4 ] || fail "only $killed of ${#delays[@]} builds were killed: the workload is too small"

    for v in 2 0 1; do
        set_variant "$ctx" "$v"
        build_ok -C "$ctx" --output "oci:$T/after-$v" --progress=plain
        assert_eq "variant $v after the killed builds" "$DIGEST" "${refs[v]}"
        assert_layout_sound "$T/after-$v"
    done
    run_ocib cache verify
    [ "$status" -eq 0 ] || { show_run; fail "cache verify found corrupt blobs after killed builds"; }
    # what the cache now serves is right too
    for v in 0 1 2; do
        set_variant "$ctx" "$v"
        build_ok -C "$ctx" --output "oci:$T/again-$v" --progress=plain
        assert_eq "variant $v from the cache" "$DIGEST" "${refs[v]}"
        assert_cached lockfile deps source
    done
}

@test "a blob corrupted on disk is detected, removed and rebuilt; cache verify reports it" {
    local ctx=$T/ctx
    make_node_ctx "$ctx"
    build_ok -C "$ctx" --output "oci:$T/o1"
    local d1=$DIGEST deps blob
    deps=$(layer_digest "$T/o1" 1)
    blob=$OCIB_CACHE_DIR/blobs/sha256/${deps#sha256:}
    [ -f "$blob" ] || fail "deps blob $deps is not in the cache"
    run_ocib cache verify
    [ "$status" -eq 0 ] || { show_run; fail "cache verify on a good cache exited $status"; }

    # the build notices, says so, and rebuilds the right bytes
    flip_byte "$blob"
    [ "sha256:$(sha256sum "$blob" | cut -d' ' -f1)" != "$deps" ]
    build_ok -C "$ctx" --output "oci:$T/o2" --progress=plain
    assert_eq "digest after corruption" "$DIGEST" "$d1"
    assert_cached lockfile
    assert_built deps "cached blob $deps was corrupt: removed, rebuilding"
    assert_cached source
    assert_eq "cache blob after rebuild" "sha256:$(sha256sum "$blob" | cut -d' ' -f1)" "$deps"
    assert_layout_sound "$T/o2"

    # cache verify finds it, removes it, exits 1; then all good
    flip_byte "$blob"
    run_ocib cache verify
    [ "$status" -eq 1 ] || { show_run; fail "cache verify with a corrupt blob exited $status, expected 1"; }
    assert_contains "cache verify" "$out$err" "$deps"
    [ ! -e "$blob" ] || fail "cache verify left the corrupt blob in place"
    run_ocib cache verify
    [ "$status" -eq 0 ] || { show_run; fail "second cache verify exited $status"; }
    build_ok -C "$ctx" --output "oci:$T/o3" --progress=plain
    assert_eq "digest after verify" "$DIGEST" "$d1"
    assert_cached lockfile source
    assert_built deps "not in the cache"

    # a truncated blob too
    truncate -s 10 "$blob"
    build_ok -C "$ctx" --output "oci:$T/o4" --progress=plain
    assert_eq "digest after truncation" "$DIGEST" "$d1"
    assert_built deps "cached blob $deps was corrupt: removed, rebuilding"
}

@test "cache du grows with a build; prune --keep-bytes 0 empties it; the next build gives the same digest" {
    local ctx=$T/ctx
    make_node_ctx "$ctx"
    run_ocib cache du --json
    [ "$status" -eq 0 ] || { show_run; fail "cache du on an empty cache"; }
    local b0 k0
    b0=$(jq -r .blobs.bytes <<<"$out")
    k0=$(jq -r .keys.count <<<"$out")
    [ "$b0" -eq 0 ] && [ "$k0" -eq 0 ] || fail "empty cache: $out"

    build_ok -C "$ctx" --output "oci:$T/o1"
    local d1=$DIGEST
    run_ocib cache du --json
    [ "$status" -eq 0 ] || { show_run; fail "cache du"; }
    local b1 c1 k1 sum=0 l
    b1=$(jq -r .blobs.bytes <<<"$out")
    c1=$(jq -r .blobs.count <<<"$out")
    k1=$(jq -r .keys.count <<<"$out")
    for l in $(jq -r '.layers[].size' "$(manifest_of "$T/o1")"); do sum=$((sum + l)); done
    [ "$b1" -ge "$sum" ] || fail "cache du: $b1 blob bytes < the layers' $sum bytes: $out"
    [ "$c1" -ge 3 ] && [ "$k1" -ge 3 ] || fail "cache du after one build: $out"
    run_ocib cache du
    [ "$status" -eq 0 ] || { show_run; fail "cache du (text)"; }
    assert_contains "cache du" "$out" "blobs"

    # a second image grows it again
    printf 'export const port = 5000;\n' >"$ctx/src/server.ts"
    build_ok -C "$ctx" --output "oci:$T/o2"
    local d2=$DIGEST
    run_ocib cache du --json
    [ "$(jq -r .blobs.bytes <<<"$out")" -gt "$b1" ] || fail "cache du did not grow: $out (was $b1)"
    [ "$(jq -r .keys.count <<<"$out")" -gt "$k1" ] || fail "key count did not grow: $out"

    run_ocib cache prune --keep-bytes 0
    [ "$status" -eq 0 ] || { show_run; fail "cache prune --keep-bytes 0"; }
    [ -z "$(cache_blobs "$OCIB_CACHE_DIR")" ] ||
        fail "prune --keep-bytes 0 left blobs: $(cache_blobs "$OCIB_CACHE_DIR" | tr '\n' ' ')"
    run_ocib cache du --json
    [ "$(jq -r .blobs.bytes <<<"$out")" -eq 0 ] && [ "$(jq -r .blobs.count <<<"$out")" -eq 0 ] ||
        fail "cache du after prune: $out"

    build_ok -C "$ctx" --output "oci:$T/o3" --progress=plain
    assert_eq "digest after prune" "$DIGEST" "$d2"
    local line
    for l in lockfile deps source; do
        line=$(layer_line "$l")
        [[ $line == *" built "* ]] || { show_run; fail "layer $l after prune: $line"; }
    done
    assert_layout_sound "$T/o3"
    # the old source variant too
    printf 'import express from "express";\nexport const port = 3000;\n' >"$ctx/src/server.ts"
    build_ok -C "$ctx" --output "oci:$T/o4" --progress=plain
    assert_eq "first variant after prune" "$DIGEST" "$d1"
    assert_cached lockfile deps
}

@test "cache prune skips the blobs a running build holds; the build still succeeds" {
    local ctx=$T/ctx
    make_node_ctx "$ctx"
    build_ok -C "$ctx" --output "oci:$T/o1"
    local d1=$DIGEST layers l
    layers=$(jq -r '.layers[].digest' "$(manifest_of "$T/o1")")
    # a cached rebuild, stalled (strace delays its 2nd copy_file_range by
    # 3 s) once it holds its layers and is copying them into the output
    mkdir -p "$T/bg"
    (
        rc=0
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
            timeout -k 10 60 strace -f -qq -o /dev/null -e trace=copy_file_range \
            -e inject=copy_file_range:delay_enter=3000000:when=2 \
            "$OCIB" build -C "$ctx" --output "oci:$T/o2" >"$T/bg/out" 2>"$T/bg/err" </dev/null || rc=$?
        echo "$rc" >"$T/bg/rc"
    ) 3>&- &
    local pid=$! i
    for ((i = 0; i < 100; i++)); do
        compgen -G "$T/.o2.tmp-*/blobs/sha256/*" >/dev/null && break
        sleep 0.05
    done
    compgen -G "$T/.o2.tmp-*/blobs/sha256/*" >/dev/null ||
        { wait "$pid"; fail "the stalled build never started its output: $(cat "$T/bg/err")"; }
    run_ocib cache prune --keep-bytes 0
    [ "$status" -eq 0 ] || { show_run; fail "cache prune during a build"; }
    assert_contains "prune output" "$out" "3 in use"
    wait "$pid"
    [ "$(cat "$T/bg/rc")" = 0 ] || fail "the build exited $(cat "$T/bg/rc") while prune ran: $(cat "$T/bg/err")"
    assert_eq "stalled build's digest" "$(cat "$T/bg/out")" "registry.example.com/team/svc@$d1"
    assert_layout_sound "$T/o2"
    for l in $layers; do
        cache_blobs "$OCIB_CACHE_DIR" | grep -qx "$l" || fail "prune removed $l while a build held it"
    done
    # once the build is over they go
    run_ocib cache prune --keep-bytes 0
    [ -z "$(cache_blobs "$OCIB_CACHE_DIR")" ] || fail "blobs left after the build ended"
}

@test "cache prune --keep-bytes N removes the least recently used blobs first" {
    local ctx=$T/ctx
    make_node_ctx "$ctx"
    build_ok -C "$ctx" --output "oci:$T/a"
    local da=$DIGEST src_a
    src_a=$(layer_digest "$T/a" 2)
    sleep 0.05
    printf 'export const port = 6000;\n' >"$ctx/src/server.ts"
    build_ok -C "$ctx" --output "oci:$T/b"
    local db=$DIGEST keep=0 s
    for s in $(jq -r '.layers[].size' "$(manifest_of "$T/b")"); do keep=$((keep + s)); done
    # B used lockfile, deps and its own source last: A's source blob goes
    run_ocib cache prune --keep-bytes "$keep"
    [ "$status" -eq 0 ] || { show_run; fail "cache prune --keep-bytes $keep"; }
    assert_eq "blobs left" "$(cache_blobs "$OCIB_CACHE_DIR" | LC_ALL=C sort | tr '\n' ' ')" \
        "$(jq -r '.layers[].digest' "$(manifest_of "$T/b")" | LC_ALL=C sort | tr '\n' ' ')"
    ! cache_blobs "$OCIB_CACHE_DIR" | grep -qx "$src_a" || fail "A's source layer was kept"
    build_ok -C "$ctx" --output "oci:$T/b2" --progress=plain
    assert_eq "B again" "$DIGEST" "$db"
    assert_cached lockfile deps source
    printf 'import express from "express";\nexport const port = 3000;\n' >"$ctx/src/server.ts"
    build_ok -C "$ctx" --output "oci:$T/a2" --progress=plain
    assert_eq "A again" "$DIGEST" "$da"
    assert_cached lockfile deps
    assert_built source "app/src/server.ts changed"
}
