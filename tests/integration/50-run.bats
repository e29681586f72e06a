#!/usr/bin/env bats
# `run` layers and `copy` from stages (issue 5, "Tests"): on a busybox base
# that this file builds from Debian's busybox-static (kept as an OCI layout
# and pushed to the real loopback registry), a two-stage build whose build
# stage creates, modifies and deletes files and whose runtime stage copies
# only the results (umoci and podman judge the image); failing commands;
# cache hits that skip commands; `network: none` / `host`; cache mounts;
# secrets; base layers crafted to escape the root; an unprivileged user with
# a subordinate id range; only the stages the target needs are built.

load helpers
load lib/registry
load lib/run-fixtures

setup_file() {
    need podman runc umoci busybox jq || return 1
    export PODMAN_BASE=$BATS_FILE_TMPDIR/podman
    export REGISTRY_MAX_SECONDS=600
    registry_start REG || return 1
    # The busybox base, built once: an OCI layout (tag "1") and the same
    # image in the registry.
    local d=$BATS_FILE_TMPDIR
    busybox_base_ctx "$d/bbctx" || return 1
    base_build "$d/bbctx" "$d/base" || return 1
    base_push "$d/base" "$REG_ADDR/ocib/busybox:1" || return 1
    export BASE_LAYOUT=$d/base
    export BASE="oci:$d/base:1"
    export BASE_REG="$REG_ADDR/ocib/busybox:1"
}

teardown_file() {
    if [ -d "${PODMAN_BASE:-}" ]; then
        podman_cmd rm -a -f >/dev/null 2>&1 || true
        podman_cmd rmi -a -f >/dev/null 2>&1 || true
    fi
    registry_stop REG
}

setup() {
    common_setup
    TEST_USER=
}

teardown() {
    http_stop
    if [ -n "${TEST_USER:-}" ]; then
        userdel -r "$TEST_USER" >/dev/null 2>&1 || true
    fi
}

# ---------------------------------------------------------------- helpers

# cmd_lines: the lines of a command's output in the last run's stderr
# ("[STAGE/LAYER] line").
cmd_lines() {
    printf '%s\n' "$err" | grep -E '^\[[^]/ ]+/[^] ]+\] ' || true
}

# assert_no_command_ran: the last build ran no command and every layer line
# says "cached".
assert_no_command_ran() {
    local lines
    lines=$(cmd_lines)
    [ -z "$lines" ] || { show_run; fail "a command ran although every input was unchanged: $lines"; return 1; }
    lines=$(printf '%s\n' "$err" | grep -E '^\[[^]]+\] layer ' || true)
    [ -n "$lines" ] || { show_run; fail "no layer progress lines"; return 1; }
    if printf '%s\n' "$lines" | grep -Ev '^\[[^]]+\] layer [^:]+: cached ' >/dev/null; then
        show_run
        fail "layers not served from the cache: $(printf '%s\n' "$lines" | grep -Ev ': cached ')"
        return 1
    fi
}

# layer_state STAGE LAYER: "cached" or "built" from the last run's progress.
layer_state() {
    printf '%s\n' "$err" | sed -nE "s/^\[$1\] layer $2: (cached|built) .*/\1/p" | tail -n1
}

# top_layer DIR [REF]: tar listing (normalised) of the image's last layer.
top_layer() {
    local m n
    m=$(layout_manifest "$1" ${2:-}) || return 1
    n=$(jq '.layers | length' "$m")
    layer_listing "$1" $((n - 1)) ${2:-} | norm_listing
}

# all_layer_bytes DIR: every layer of the image, decompressed, concatenated.
all_layer_bytes() {
    local m i n
    m=$(layout_manifest "$1") || return 1
    n=$(jq '.layers | length' "$m")
    for ((i = 0; i < n; i++)); do
        decompress "$(blob_path "$1" "$(jq -r ".layers[$i].digest" "$m")")" "$(jq -r ".layers[$i].mediaType" "$m")"
    done
}

# write_two_stage DIR RUNTIME_FROM: the two-stage context. The build stage
# creates, modifies and deletes files and leaves objects behind; the runtime
# stage copies only /out/result.txt and /out/share/ and runs as "app".
write_two_stage() {
    mkdir -p "$1"
    cat >"$1/ocib.json" <<EOF
{
  "version": 1,
  "image": "localhost:5000/ocib/twostage",
  "stages": [
    {
      "name": "build",
      "from": "$BASE",
      "workdir": "/src",
      "env": {"GREETING": "result"},
      "layers": [
        {"name": "prep", "run": "mkdir -p /src/d /out && echo one > /src/a.txt && echo keep > /src/mod.txt && echo gone > /src/del.txt && echo x > /src/d/x && echo prep-done"},
        {"name": "work", "run": "echo changed >> mod.txt && rm del.txt && rm -r d && mkdir d && echo y > d/y && echo obj > /src/main.o && echo \"\$GREETING\" > /out/result.txt && mkdir -p /out/share && echo data > /out/share/data.txt && echo work-done"},
        {"name": "argv", "run": ["/bin/sh", "-c", "echo argv-form > /out/share/argv.txt"]}
      ]
    },
    {
      "name": "runtime",
      "from": "$2",
      "layers": [
        {"name": "app", "copy": [
          {"from": "build", "src": ["/out/result.txt"], "dest": "/app/"},
          {"from": "build", "src": ["/out/share"], "dest": "/app/share/"}
        ]}
      ],
      "config": {"user": "app", "cmd": ["/bin/sh", "-c", "cat /app/result.txt /app/share/data.txt /app/share/argv.txt; id -u; id -g"]}
    }
  ]
}
EOF
}

# ---------------------------------------------------------------- tests

@test "two stages: run steps create, modify and delete files (whiteouts); the runtime copies only the results and runs as the non-root user" {
    write_two_stage ctx "$BASE_REG"
    build_ok --repo localhost:5000/ocib/twostage -C ctx --output "oci:$T/final"
    assert_contains "live output of the prep command" "$err" "[build/prep] prep-done"
    assert_contains "live output of the work command" "$err" "[build/work] work-done"
    assert_layout_sound "$T/final"
    oci_validate "$T/final"

    # The build stage on its own: its run layers carry the change as whiteouts.
    build_ok -C ctx --target build --output "oci:$T/stage"
    assert_eq "build-stage layers were cache hits" "$(layer_state build work)" cached
    local m listing
    m=$(layout_manifest "$T/stage")
    assert_eq "layers of the build stage" "$(jq '.layers | length' "$m")" \
        "$(($(jq '.layers | length' "$(layout_manifest "$BASE_LAYOUT")") + 3))"
    listing=$(layer_listing "$T/stage" "$(($(jq '.layers | length' "$m") - 2))" | norm_listing)
    printf '%s\n' "$listing" | cut -f1 | grep -qx 'src/.wh.del.txt' ||
        fail "no whiteout for the deleted src/del.txt in the work layer: $listing"
    printf '%s\n' "$listing" | cut -f1 | grep -Eqx 'src/d/\.wh\.(\.wh\.\.opq|x)' ||
        fail "the re-created directory src/d has neither an opaque whiteout nor a whiteout for d/x: $listing"
    printf '%s\n' "$listing" | cut -f1 | grep -qx 'src/mod.txt' || fail "modified src/mod.txt not in the layer: $listing"
    printf '%s\n' "$listing" | cut -f1 | grep -qx 'src/a.txt' && fail "unchanged src/a.txt is in the work layer: $listing"
    printf '%s\n' "$listing" | cut -f1 | grep -q '^src/del.txt$' && fail "deleted file stored in the work layer"
    # Files a command made are owned as seen inside (root) and clamped to the epoch.
    assert_eq "src/d/y owner and mtime" "$(printf '%s\n' "$listing" | awk -F'\t' '$1 == "src/d/y" { print $4, $5 }')" "0:0 0"
    assert_layer_canonical "$T/stage" "$(($(jq '.layers | length' "$m") - 2))" 0

    umoci_unpack "$T/stage" latest "$T/stage-bundle"
    local r=$T/stage-bundle/rootfs
    [ ! -e "$r/src/del.txt" ] || fail "the deleted src/del.txt is back after unpacking"
    [ ! -e "$r/src/d/x" ] || fail "src/d/x survived the re-creation of src/d"
    assert_eq "src/d/y" "$(cat "$r/src/d/y")" y
    assert_eq "src/mod.txt" "$(cat "$r/src/mod.txt")" "$(printf 'keep\nchanged')"
    assert_eq "src/a.txt" "$(cat "$r/src/a.txt")" one
    assert_eq "the argv-form command ran" "$(cat "$r/out/share/argv.txt")" argv-form

    # The runtime image: the base, plus one layer holding only the results.
    umoci_unpack "$T/final" latest "$T/final-bundle"
    r=$T/final-bundle/rootfs
    assert_eq "result" "$(cat "$r/app/result.txt")" result
    assert_eq "copied directory contents" "$(cd "$r/app/share" && ls | tr '\n' ' ')" "argv.txt data.txt "
    local p
    for p in src out src/main.o out/result.txt app/share/share; do
        [ ! -e "$r/$p" ] || fail "the runtime image holds the build stage's /$p"
    done
    m=$(layout_manifest "$T/final")
    assert_eq "runtime layers" "$(jq '.layers | length' "$m")" \
        "$(($(jq '.layers | length' "$(layout_manifest "$BASE_LAYOUT")") + 1))"
    assert_eq "the copy layer" "$(top_layer "$T/final" | cut -f1 | tr '\n' ' ')" \
        "app app/result.txt app/share app/share/argv.txt app/share/data.txt "
    assert_eq "config user" "$(jq -r .config.User "$(layout_config "$T/final")")" app

    local id got
    id=$(podman_pull_oci "$T/final" latest)
    got=$(podman_run "$id" 2>"$T/podman.err") || fail "podman run failed: $(cat "$T/podman.err")"
    assert_eq "container output" "$got" "$(printf 'result\ndata\nargv-form\n1000\n1000')"
}

@test "where the time goes: each layer's phases and the build's summary (json), the summary line (plain)" {
    mkdir -p "$T/ph"
    cat >"$T/ph/ocib.json" <<JSON
{"version": 1, "image": "localhost:5000/t/phases", "stages": [{"from": "$BASE",
  "layers": [{"name": "slow", "run": ["/bin/sh", "-c", "sleep 1; echo x >/x"]}],
  "config": {"user": "1000:1000"}}]}
JSON
    build_ok -C "$T/ph" --output "oci:$T/ph-out" --progress=json
    # The command's second is the command's, the root's unpacking ocib's.
    jq -e -s 'map(select(.event == "layer" and .layer == "slow"))[0] as $l |
        $l.phases.command >= 1 and $l.phases.command < $l.seconds and $l.phases.unpack > 0
        and $l.phases.layer > 0' <<<"$err" >/dev/null || fail "layer phases: $err"
    jq -e -s 'map(select(.event == "summary")) | length == 1 and (.[0] as $s |
        $s.phases.command >= 1 and ([$s.phases[]] | add) <= $s.seconds and $s.phases.resolve >= 0)' \
        <<<"$err" >/dev/null || fail "summary: $err"
    build_ok -C "$T/ph" --output "oci:$T/ph-out" --progress=plain --no-cache
    # The kept root is not unpacked again: only the phases that took time.
    [[ $err =~ built\ in\ [0-9.]+s:\ commands\ (1\.[0-9]|[2-9]\.[0-9])s,\ ocib\ [0-9.]+s ]] ||
        fail "no summary line: $err"
}

@test "a failing command: exit 1 naming the stage, the layer, its status and its last 20 lines; nothing cached, a rebuild runs it again" {
    mkdir ctx
    cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/fail", "stages": [
  {"name": "build", "from": "$BASE", "layers": [
    {"name": "ok", "run": ["/bin/sh", "-c", "echo fine > /ok.txt; echo ok-ran"]},
    {"name": "boom", "run": "for i in \$(seq 1 30); do echo line-\$i; done; echo on-stderr >&2; exit 7"}
  ]}
]}
EOF
    run_ocib build -C ctx --output "oci:$T/out"
    assert_failed 1 'stage build' 'layer boom' 'status 7'
    assert_contains "live output" "$err" "[build/boom] line-1"
    assert_contains "live stderr output" "$err" "[build/boom] on-stderr"
    # The error lists the last 20 lines: line-12 .. line-30 and the stderr line.
    local tailpart
    tailpart=$(printf '%s\n' "$err" | sed -n '/^ocib: .*layer boom/,$p' | tail -n +2)
    assert_eq "number of lines quoted" "$(printf '%s\n' "$tailpart" | grep -c .)" 20
    assert_contains "first quoted line" "$(printf '%s\n' "$tailpart" | head -n1)" "line-12"
    assert_contains "last quoted line" "$(printf '%s\n' "$tailpart" | tail -n1)" "on-stderr"
    [[ $tailpart != *line-11* ]] || fail "more than the last 20 lines quoted: $tailpart"
    [ ! -e "$T/out" ] || fail "a failed build wrote $T/out"

    run_ocib build -C ctx --output "oci:$T/out"
    assert_failed 1 'stage build' 'layer boom' 'status 7'
    assert_eq "the step before it is cached" "$(layer_state build ok)" cached
    [[ $err != *"[build/ok] ok-ran"* ]] || { show_run; fail "the cached step ran again"; }
    assert_contains "the failed step ran again (nothing was cached for it)" "$err" "[build/boom] line-30"
}

@test "a second build with unchanged inputs runs no command and serves every layer from the cache" {
    write_two_stage ctx "$BASE"
    build_ok -C ctx --output "oci:$T/one"
    local first=$DIGEST
    [ -n "$(cmd_lines)" ] || { show_run; fail "the first build ran no command"; }
    build_ok -C ctx --output "oci:$T/two"
    assert_no_command_ran
    assert_eq "image digest" "$DIGEST" "$first"
}

@test "a lockfile change reruns the dependency step; a source-only change does not" {
    mkdir -p ctx/src
    echo 'lock v1' >ctx/lock.txt
    echo 'src v1' >ctx/src/main.txt
    cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/deps", "stages": [
  {"name": "app", "from": "$BASE", "workdir": "/app", "layers": [
    {"name": "lockfile", "copy": [{"src": ["lock.txt"], "dest": "/app/"}]},
    {"name": "deps", "run": "echo DEPS-RAN; cp /app/lock.txt /deps-installed"},
    {"name": "source", "copy": [{"src": ["src"], "dest": "/app/src/"}]},
    {"name": "compile", "run": "echo COMPILE-RAN; cat /app/src/main.txt /deps-installed > /app/out.txt"}
  ]}
]}
EOF
    build_ok -C ctx --output "oci:$T/o1"
    assert_contains "deps ran" "$err" "[app/deps] DEPS-RAN"
    assert_contains "compile ran" "$err" "[app/compile] COMPILE-RAN"

    echo 'src v2' >ctx/src/main.txt
    build_ok -C ctx --output "oci:$T/o2"
    [[ $err != *DEPS-RAN* ]] || { show_run; fail "a source-only change re-ran the dependency step"; }
    assert_eq "deps layer after a source change" "$(layer_state app deps)" cached
    assert_contains "compile re-ran after a source change" "$err" "[app/compile] COMPILE-RAN"

    echo 'lock v2' >ctx/lock.txt
    build_ok -C ctx --output "oci:$T/o3"
    assert_contains "deps re-ran after a lockfile change" "$err" "[app/deps] DEPS-RAN"
    assert_contains "compile re-ran after a lockfile change" "$err" "[app/compile] COMPILE-RAN"
    umoci_unpack "$T/o3" latest "$T/b3"
    assert_eq "the result sees both changes" "$(cat "$T/b3/rootfs/app/out.txt")" "$(printf 'src v2\nlock v2')"
}

# kept_roots_scenario DIR: three source changes after a step that appends
# to a file that existed (same inode, when no overlay is used): kept roots
# that share it must not carry the appended line into the next build.
kept_roots_scenario() {
    local o=$1
    mkdir -p ctx/src
    echo 'src v1' >ctx/src/main.txt
    cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/kept", "stages": [
  {"name": "app", "from": "$BASE", "workdir": "/app", "layers": [
    {"name": "deps", "run": "echo one > /app/state.txt"},
    {"name": "source", "copy": [{"src": ["src"], "dest": "/app/src/"}]},
    {"name": "compile", "run": "cat /app/src/main.txt >> /app/state.txt"}
  ]}
]}
EOF
    build_ok -C ctx --output "oci:$o/o1"
    umoci_unpack "$o/o1" latest "$o/b1"
    assert_eq "first build" "$(cat "$o/b1/rootfs/app/state.txt")" "$(printf 'one\nsrc v1')"
    echo 'src v2' >ctx/src/main.txt
    build_ok -C ctx --output "oci:$o/o2"
    assert_eq "deps after a source change" "$(layer_state app deps)" cached
    umoci_unpack "$o/o2" latest "$o/b2"
    assert_eq "second build starts from the deps state" "$(cat "$o/b2/rootfs/app/state.txt")" \
        "$(printf 'one\nsrc v2')"
    echo 'src v3' >ctx/src/main.txt
    build_ok -C ctx --output "oci:$o/o3"
    umoci_unpack "$o/o3" latest "$o/b3"
    assert_eq "third build too" "$(cat "$o/b3/rootfs/app/state.txt")" "$(printf 'one\nsrc v3')"
    # and the same image as a build from an empty cache
    local d3=$DIGEST
    OCIB_CACHE_DIR=$o/fresh-cache build_ok -C ctx --output "oci:$o/o4"
    assert_eq "same digest from an empty cache" "$DIGEST" "$d3"
    KEPT_DIGEST=$d3
}

@test "kept stage roots: a source change starts from the state after the dependency step, and a file changed in place never leaks into a kept root" {
    mkdir -p "$T/ovl" "$T/snap"
    kept_roots_scenario "$T/ovl"
    local d=$KEPT_DIGEST
    export OCIB_CACHE_DIR=$T/snap-cache OCIB_CAPTURE=snapshot
    kept_roots_scenario "$T/snap"
    assert_eq "same image with and without overlayfs" "$KEPT_DIGEST" "$d"
}

@test "without overlayfs, a command that fails after changing a file in place leaves no kept root carrying the change" {
    mkdir -p ctx
    write_spec() {
        cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/failtaint", "stages": [
  {"from": "$BASE", "workdir": "/app", "layers": [
    {"name": "deps", "run": "echo one > /app/state.txt"},
    {"name": "compile", "run": "$1"}
  ]}
]}
EOF
    }
    export OCIB_CAPTURE=snapshot
    write_spec "cat /app/state.txt"
    build_ok -C ctx --output "oci:$T/o1"
    write_spec "echo bad >> /app/state.txt && false"
    run_ocib build -C ctx --output "oci:$T/o2"
    assert_eq "the failing step fails the build" "$status" 1
    write_spec "cp /app/state.txt /app/out.txt"
    build_ok -C ctx --output "oci:$T/o3"
    assert_eq "deps served from the cache" "$(layer_state 0 deps)" cached
    umoci_unpack "$T/o3" latest "$T/b3"
    assert_eq "state seen by the next build" "$(cat "$T/b3/rootfs/app/out.txt")" one
}

@test "without overlayfs, a file changed in place by one stage never shows in another stage's root that shared it" {
    # Stages a and b both start from stage c, so a second build clones both
    # of their roots from c's kept root: they share c's inodes.
    mkdir -p ctx
    cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/shared", "stages": [
  {"name": "c", "from": "$BASE", "layers": [{"name": "mark", "run": "echo c > /c.txt"}]},
  {"name": "b", "from": "c", "layers": [{"name": "mark", "run": "echo b1 > /b.txt"}]},
  {"name": "a", "from": "c", "layers": [
    {"name": "append", "run": "echo evil1:x:666:666::/:/bin/sh >> /etc/passwd"},
    {"name": "take", "copy": [{"from": "b", "src": ["/etc/passwd"], "dest": "/from-b/passwd"}]}
  ]}
]}
EOF
    export OCIB_CAPTURE=snapshot
    umoci_unpack "$BASE_LAYOUT" 1 "$T/base-b"
    local i
    for i in 1 2 3; do
        sed -i "s/b[0-9] > /b$i > /; s/evil[0-9]:/evil$i:/" ctx/ocib.json
        build_ok -C ctx --output "oci:$T/o$i"
        [ "$i" = 1 ] || assert_eq "stage c on build $i" "$(layer_state c mark)" cached
        umoci_unpack "$T/o$i" latest "$T/bundle$i"
        grep -q "evil$i:" "$T/bundle$i/rootfs/etc/passwd" || fail "build $i: stage a's own append is missing"
        cmp "$T/bundle$i/rootfs/from-b/passwd" "$T/base-b/rootfs/etc/passwd" ||
            fail "build $i: stage b's /etc/passwd carries stage a's in-place change: $(cat "$T/bundle$i/rootfs/from-b/passwd")"
    done
}

@test "overlayfs and snapshot comparison capture the same change: byte-identical layers for creates, rewrites, deletes, re-created and retyped directories, links and renames" {
    need strace || return 1
    mkdir -p ctx
    cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/capture", "stages": [
  {"name": "s", "from": "$BASE", "layers": [
    {"name": "prep", "run": "mkdir -p /w/keep /w/gone/in /w/re/sub /w/typ /w/tree/a /w/meta && echo k > /w/keep/k && echo g > /w/gone/in/g && echo x > /w/re/x && echo s > /w/re/sub/s && echo f > /w/filetodir && echo t > /w/typ/t && echo m > /w/mod && echo c > /w/chmod && ln -s keep /w/link && echo h > /w/hl && echo same > /w/same && echo a > /w/tree/a/f"},
    {"name": "work", "run": "echo more >> /w/mod && chmod 600 /w/chmod && chmod 700 /w/meta && rm -rf /w/gone && rm -rf /w/re && mkdir -p /w/re/sub && echo y > /w/re/y && echo s2 > /w/re/sub/s2 && rm /w/filetodir && mkdir /w/filetodir && echo in > /w/filetodir/in && rm -rf /w/typ && echo now-a-file > /w/typ && ln -sfn tree /w/link && ln /w/hl /w/hl2 && mkfifo /w/fifo && mkdir -p /w/new/deep/er && echo n > /w/new/deep/er/n && mv /w/tree /w/moved && cat /w/same >/dev/null && : 3<>/w/same && chown 0:0 /w/keep && touch /tmp/t && rm /tmp/t && echo work-done"}
  ]}
]}
EOF
    # Whether this kernel lets a user namespace mount overlayfs at all.
    mkdir -p "$T/probe/l" "$T/probe/u" "$T/probe/w" "$T/probe/m"
    unshare -rm mount -t overlay overlay \
        -o "lowerdir=$T/probe/l,upperdir=$T/probe/u,workdir=$T/probe/w,userxattr" "$T/probe/m" 2>"$T/probe.err" ||
        skip "this kernel refuses overlayfs in a user namespace: $(cat "$T/probe.err")"
    # ocib's default here: the command runs on an overlay.
    export OCIB_CACHE_DIR=$T/cache-overlay
    # LeakSanitizer cannot run under ptrace (check-asan builds).
    local asan="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
    ASAN_OPTIONS=$asan timeout -k 10 "$OCIB_TEST_TIMEOUT" strace -f -qq -e trace=mount -o "$T/mounts" \
        "$OCIB" build -C ctx --output "oci:$T/ovl" --progress=plain >"$T/ovl.out" 2>"$T/ovl.err" </dev/null ||
        { cat "$T/ovl.err" >&2; fail "the overlay build failed"; }
    grep -q '"overlay", 0, "lowerdir=' "$T/mounts" || fail "no overlay was mounted: $(cat "$T/mounts")"
    grep -q 'comparing snapshots' "$T/ovl.err" && fail "fell back to snapshots: $(cat "$T/ovl.err")"
    # Kept roots (later lower directories) carry none of overlayfs's xattrs.
    local marked
    marked=$("$PY" - "$T/cache-overlay/rootfs" <<'PY'
import os, sys
for top, dirs, files in os.walk(sys.argv[1]):
    for n in dirs + files:
        p = os.path.join(top, n)
        try:
            names = os.listxattr(p, follow_symlinks=False)
        except OSError:
            continue
        if any(x.startswith(("user.overlay.", "trusted.overlay.")) for x in names):
            print(p, names)
PY
)
    [ -z "$marked" ] || fail "overlay xattrs left in kept roots: $marked"
    # The other way, forced.
    export OCIB_CACHE_DIR=$T/cache-snapshot
    ASAN_OPTIONS=$asan OCIB_CAPTURE=snapshot timeout -k 10 "$OCIB_TEST_TIMEOUT" strace -f -qq -e trace=mount -o "$T/mounts2" \
        "$OCIB" build -C ctx --output "oci:$T/snap" --progress=plain >"$T/snap.out" 2>"$T/snap.err" </dev/null ||
        { cat "$T/snap.err" >&2; fail "the snapshot build failed"; }
    grep -q '"overlay"' "$T/mounts2" && fail "OCIB_CAPTURE=snapshot still mounted an overlay"
    local n
    n=$(jq '.layers | length' "$(layout_manifest "$T/ovl")")
    assert_eq "work layer, overlay vs snapshot" "$(layer_listing "$T/ovl" $((n - 1)))" "$(layer_listing "$T/snap" $((n - 1)))"
    assert_eq "image digest, overlay vs snapshot" "$(tail -n1 "$T/ovl.out")" "$(tail -n1 "$T/snap.out")"

    # What the layer says, checked on the tar itself.
    local listing want
    listing=$(layer_listing "$T/ovl" $((n - 1)) | norm_listing | cut -f1)
    for want in w/mod w/chmod w/meta w/.wh.gone w/re w/re/y w/re/sub/s2 w/re/.wh.x w/re/sub/.wh.s \
        w/filetodir/in w/typ w/link w/hl w/hl2 w/fifo w/new/deep/er/n w/moved/a/f w/.wh.tree tmp; do
        printf '%s\n' "$listing" | grep -qx "$want" || fail "'$want' missing from the work layer: $listing"
    done
    # (w/same was opened for writing and w/keep chowned to its owner: no change)
    for want in w/keep w/keep/k w/same w/gone/in/g w/re/x w/re/sub/s w/tree/a/f tmp/t; do
        printf '%s\n' "$listing" | grep -qx "$want" && fail "'$want' is in the work layer: $listing"
    done
    # and a runtime unpacks it to what the command left
    umoci_unpack "$T/ovl" latest "$T/b"
    local r=$T/b/rootfs/w
    assert_eq "tree after the work step" "$(cd "$r" && find . | sort | tr '\n' ' ')" \
        ". ./chmod ./fifo ./filetodir ./filetodir/in ./hl ./hl2 ./keep ./keep/k ./link ./meta ./mod ./moved ./moved/a ./moved/a/f ./new ./new/deep ./new/deep/er ./new/deep/er/n ./re ./re/sub ./re/sub/s2 ./re/y ./same ./typ "
    assert_eq "mod" "$(cat "$r/mod")" "$(printf 'm\nmore')"
    assert_eq "link" "$(readlink "$r/link")" tree
    assert_eq "hard links" "$(stat -c %i "$r/hl")" "$(stat -c %i "$r/hl2")"
}

@test "where the kernel refuses overlayfs (a cache on an overlayfs mount), run steps fall back to snapshots with one note and the same image" {
    [ "$(id -u)" -eq 0 ] || skip "needs root to mount the overlayfs that holds the cache"
    write_two_stage ctx "$BASE"
    build_ok -C ctx --output "oci:$T/plain"
    local want=$REF
    mkdir -p "$T/ov/l" "$T/ov/u" "$T/ov/w" "$T/ov/m"
    mount -t overlay overlay -o "lowerdir=$T/ov/l,upperdir=$T/ov/u,workdir=$T/ov/w" "$T/ov/m" ||
        fail "cannot mount the overlayfs for the cache"
    export OCIB_CACHE_DIR=$T/ov/m/cache
    run_ocib build -C ctx --output "oci:$T/fallback"
    umount "$T/ov/m"
    [ "$status" -eq 0 ] || { show_run; fail "the build failed where overlayfs is refused"; }
    assert_eq "notes about the fallback" "$(printf '%s\n' "$err" | grep -c 'comparing snapshots')" 1
    assert_contains "the kernel's refusal is named" "$err" "overlayfs cannot be mounted here"
    assert_contains "the commands ran" "$err" "[build/work] work-done"
    assert_eq "same image as with overlayfs" "$out" "$want"
}

@test "file capabilities a run step sets reach the layer as SCHILY.xattr.security.capability, the same with and without overlayfs" {
    need cc || return 1
    mkdir -p ctx
    cc -static -O2 -o ctx/setcap-helper "$RUN_FIXTURES_DIR/setcap-helper.c" ||
        fail "cannot build the static setcap helper"
    cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/caps", "stages": [
  {"from": "$BASE", "layers": [
    {"name": "tool", "copy": [{"src": ["setcap-helper"], "dest": "/bin/setcap-helper"}]},
    {"name": "prep", "run": "cp /bin/busybox /bin/existing"},
    {"name": "caps", "run": "cp /bin/busybox /bin/binder && /bin/setcap-helper /bin/binder && /bin/setcap-helper /bin/existing && echo plain > /plain.txt"}
  ]}
]}
EOF
    build_ok -C ctx --output "oci:$T/ovl"
    local d1=$REF
    export OCIB_CACHE_DIR=$T/cache-snapshot
    OCIB_CAPTURE=snapshot build_ok -C ctx --output "oci:$T/snap"
    assert_eq "same image with and without overlayfs" "$REF" "$d1"
    local m n blob
    m=$(layout_manifest "$T/ovl")
    n=$(jq '.layers | length' "$m")
    blob=$(blob_path "$T/ovl" "$(jq -r ".layers[$((n - 1))].digest" "$m")")
    "$PY" - "$blob" <<'PY' || fail "the layer's capability records are wrong"
import gzip, sys, tarfile
with tarfile.open(fileobj=gzip.open(sys.argv[1])) as t:
    got = {m.name: m.pax_headers for m in t.getmembers()}
want = b"\x01\x00\x00\x02" + (1 << 10).to_bytes(4, "little") + b"\x00" * 12
# a new file, and one that existed (setcap alone changes only its xattr)
for f in ("bin/binder", "bin/existing"):
    caps = got.get(f, {}).get("SCHILY.xattr.security.capability")
    if caps is None or caps.encode("utf-8", "surrogateescape") != want:
        sys.exit("%s: %r" % (f, got.get(f)))
for name, h in got.items():
    if any(k.startswith("LIBARCHIVE.") for k in h):
        sys.exit("%s: libarchive's own xattr record: %r" % (name, h))
    if name not in ("bin/binder", "bin/existing") and any(k.startswith("SCHILY.xattr") for k in h):
        sys.exit("%s: unexpected xattrs %r" % (name, h))
PY
}

@test "network none: only loopback, the host's loopback server is unreachable; network host reaches it" {
    mkdir www
    echo 'hello from the host' >www/index.html
    need curl
    http_start "$T/www"
    # The server answers on the host.
    curl -fsS -m 5 "http://127.0.0.1:$HTTP_PORT/" >/dev/null || fail "the test server does not answer"
    mkdir ctx
    # busybox wget -T crashes (Debian's busybox 1.35); `timeout` bounds it instead.
    cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/net", "stages": [
  {"name": "n", "from": "$BASE", "layers": [
    {"name": "none", "run": "cat /proc/net/dev > /netdev; ip -o link > /links; if timeout 5 wget -q -O /got http://127.0.0.1:$HTTP_PORT/; then echo REACHED; else echo UNREACHABLE; fi"},
    {"name": "default", "run": "ip -o link > /links-default; timeout 5 wget -q -O - http://127.0.0.1:$HTTP_PORT/ || echo UNREACHABLE-DEFAULT"},
    {"name": "host", "network": "host", "run": "timeout 10 wget -q -O /got-host http://127.0.0.1:$HTTP_PORT/ && cat /got-host && test -s /etc/resolv.conf && echo HAS-RESOLV"}
  ]}
]}
EOF
    build_ok -C ctx --output "oci:$T/out"
    assert_contains "network none" "$err" "[n/none] UNREACHABLE"
    [[ $err != *"[n/none] REACHED"* ]] || { show_run; fail "network none reached the host's loopback server"; }
    assert_contains "the default network is none" "$err" "[n/default] UNREACHABLE-DEFAULT"
    assert_contains "network host" "$err" "[n/host] hello from the host"
    assert_contains "network host has the host's resolv.conf" "$err" "[n/host] HAS-RESOLV"
    umoci_unpack "$T/out" latest "$T/b"
    local r=$T/b/rootfs
    assert_eq "interfaces in /proc/net/dev" "$(tail -n +3 "$r/netdev" | cut -d: -f1 | tr -d ' ')" lo
    assert_eq "interfaces from ip link" "$(cut -d: -f2 "$r/links" | tr -d ' ')" lo
    assert_eq "interfaces with the default network" "$(cut -d: -f2 "$r/links-default" | tr -d ' ')" lo
    [ ! -e "$r/got" ] || [ ! -s "$r/got" ] || fail "network none downloaded the page"
    assert_eq "downloaded with network host" "$(cat "$r/got-host")" 'hello from the host'
    # The host's resolv.conf and hosts were bind mounts, not part of the layer.
    [ ! -e "$r/etc/resolv.conf" ] && [ ! -e "$r/etc/hosts" ] ||
        fail "the host's resolv.conf/hosts leaked into the image: $(ls -la "$r/etc")"
}

@test "a run that fails on a name lookup without network says run layers need \"network\": \"host\"; other failures do not" {
    mkdir ctx
    cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/net", "stages": [
  {"name": "n", "from": "$BASE", "layers": [
    {"name": "fetch", "run": "echo fetching; nc registry.npmjs.org 443 </dev/null"}]}]}
EOF
    run_ocib build -C ctx --output "oci:$T/out"
    assert_failed 1 "the command exited with status"
    assert_contains "the hint" "$err" 'hint: run layers have no network unless the layer says "network": "host"'
    jq '.stages[0].layers[0].run = "echo no such thing >&2; exit 3"' ctx/ocib.json >ctx/o2.json
    run_ocib build -C ctx -f ctx/o2.json --output "oci:$T/out"
    assert_failed 1 "the command exited with status 3"
    [[ $err != *hint:* ]] || { show_run; fail "a failure that is not about the network got the network hint"; }
}

@test "a cached layer reports the entries it holds, as when it was built" {
    mkdir ctx
    cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/entries", "stages": [
  {"name": "e", "from": "$BASE", "layers": [
    {"name": "r", "run": "mkdir -p /out/d && echo 1 >/out/a && echo 2 >/out/d/b"},
    {"name": "f", "files": [{"path": "/x", "content": "x"}, {"path": "/y", "content": "y"}]}]}]}
EOF
    build_ok -C ctx --output "oci:$T/o1"
    local built_r built_f
    built_r=$(sed -nE 's/^\[e\] layer r: built .*, ([0-9]+) entries.*/\1/p' <<<"$err")
    built_f=$(sed -nE 's/^\[e\] layer f: built .*, ([0-9]+) entries.*/\1/p' <<<"$err")
    [ "${built_r:-0}" -ge 4 ] || { show_run; fail "the run layer was built with '${built_r}' entries"; }
    build_ok -C ctx --output "oci:$T/o2"
    assert_eq "entries of the cached run layer" "$(sed -nE 's/^\[e\] layer r: cached .*, ([0-9]+) entries.*/\1/p' <<<"$err")" "$built_r"
    assert_eq "entries of the cached files layer" "$(sed -nE 's/^\[e\] layer f: cached .*, ([0-9]+) entries.*/\1/p' <<<"$err")" "$built_f"
}

@test "a typo of a stage name in from or copy.from says which stage was meant instead of pulling it" {
    mkdir ctx
    cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/typo", "stages": [
  {"name": "build", "from": "$BASE", "layers": [{"files": [{"path": "/a", "content": "a"}]}]},
  {"from": "scratch", "layers": [{"copy": [{"from": "biuld", "src": ["/a"], "dest": "/a"}]}]}]}
EOF
    run_ocib build -C ctx --output "oci:$T/out"
    assert_failed 2 'stages\[1\].layers\[0\].copy\[0\].from: "biuld" is not a stage; did you mean the stage "build"\?'
    jq '.stages[1].from = "buidl" | .stages[1].layers[0].copy[0].from = "build"' ctx/ocib.json >ctx/o2.json
    run_ocib build -C ctx -f ctx/o2.json --output "oci:$T/out"
    assert_failed 2 'stages\[1\].from: "buidl" is not a stage; did you mean the stage "build"\?'
    [ ! -e "$T/out" ] || fail "a refused spec wrote an output"
}

@test "cache_mounts persist between builds in the ocib cache and never reach the image" {
    mkdir ctx
    cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/cm", "stages": [
  {"name": "c", "from": "$BASE", "layers": [
    {"name": "fill", "run": "echo from-build-1 > /root/.cache-x/note; mkdir -p /var/cache/pkgs/sub; echo pkg > /var/cache/pkgs/sub/p; echo built-1 > /marker",
     "cache_mounts": ["/root/.cache-x", "/var/cache/pkgs"]}
  ]}
]}
EOF
    build_ok -C ctx --output "oci:$T/o1"
    [ -d "$OCIB_CACHE_DIR" ] || fail "no cache directory"
    # Build 2: a changed command, so it runs again, reads what build 1 left.
    jq '.stages[0].layers[0].run = "cat /root/.cache-x/note > /seen; cat /var/cache/pkgs/sub/p >> /seen; echo again >> /root/.cache-x/note; ls -A /root/.cache-x | wc -l > /count"' \
        ctx/ocib.json >ctx/new.json && mv ctx/new.json ctx/ocib.json
    build_ok -C ctx --output "oci:$T/o2"
    assert_eq "the step re-ran" "$(layer_state c fill)" built

    local b
    for b in o1 o2; do
        umoci_unpack "$T/$b" latest "$T/b-$b"
        [ ! -e "$T/b-$b/rootfs/root/.cache-x" ] || fail "$b: the cache mount /root/.cache-x is in the image"
        [ ! -e "$T/b-$b/rootfs/var" ] || fail "$b: the cache mount's parents /var/cache/pkgs are in the image"
        if top_layer "$T/$b" | cut -f1 | grep -E '(^|/)(\.cache-x|var|pkgs)(/|$)'; then
            fail "$b: the layer holds cache-mount entries"
        fi
    done
    assert_eq "build 1's layer" "$(cat "$T/b-o1/rootfs/marker")" built-1
    assert_eq "what build 2 read from the mounts" "$(cat "$T/b-o2/rootfs/seen")" "$(printf 'from-build-1\npkg')"
    assert_eq "files in the mount during build 2" "$(tr -d ' ' <"$T/b-o2/rootfs/count")" 1
    # The mount's content lives under the cache, and build 2's write is kept too.
    grep -rlx 'again' "$OCIB_CACHE_DIR" >/dev/null 2>&1 ||
        fail "build 2's write to the cache mount is not kept under $OCIB_CACHE_DIR"
}

@test "a cache mount deep below missing directories gets every mount point made and removed" {
    # 60 missing directories for one mount (ocib once kept room for 8 per mount).
    local deep
    deep=/d$(seq -s /d 1 60)
    mkdir ctx
    cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/deep", "stages": [
  {"from": "$BASE", "layers": [
    {"name": "m", "run": "echo kept > $deep/f && echo DEEP-OK", "cache_mounts": ["$deep"]}]}
]}
EOF
    build_ok -C ctx --output "oci:$T/o"
    assert_contains "the command ran with its deep mount" "$err" "[0/m] DEEP-OK"
    if top_layer "$T/o" | cut -f1 | grep -E '(^|/)d1(/|$)'; then fail "mount points left in the layer"; fi
    grep -rlx kept "$OCIB_CACHE_DIR" >/dev/null || fail "the write is not in the cache mount"
}

@test "secrets are readable, read-only, in the command only: not in the layer, the cache key or inspect; a missing --secret exits 2" {
    mkdir ctx
    local value=ocib-test-secret-$RANDOM$RANDOM-k3y
    printf '%s\n' "$value" >"$T/token"
    cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/secret", "stages": [
  {"name": "s", "from": "$BASE", "layers": [
    {"name": "use", "run": "sha256sum /run/secrets/token | cut -d' ' -f1 > /hash; if echo x > /run/secrets/token; then echo WRITABLE; else echo READ-ONLY; fi",
     "secrets": [{"id": "tok", "target": "/run/secrets/token"}]},
    {"name": "after", "run": "if test -e /run/secrets/token; then echo STILL-THERE; else echo GONE; fi"}
  ]}
]}
EOF
    # Without --secret: a spec error, before anything is built.
    run_ocib build -C ctx --output "oci:$T/out"
    assert_failed 2 "tok"
    [[ $err != *"[s/use]"* ]] || { show_run; fail "the command ran without its secret"; }
    [ ! -e "$T/out" ] || fail "a failed build wrote $T/out"

    build_ok -C ctx --secret "id=tok,src=$T/token" --output "oci:$T/out"
    assert_contains "the secret is read-only" "$err" "[s/use] READ-ONLY"
    assert_contains "the secret is gone for the next command" "$err" "[s/after] GONE"
    local first=$DIGEST
    umoci_unpack "$T/out" latest "$T/b"
    assert_eq "the command read the secret" "$(cat "$T/b/rootfs/hash")" "$(sha256sum "$T/token" | cut -d' ' -f1)"
    [ ! -e "$T/b/rootfs/run" ] || fail "the secret's mount point /run/secrets is in the image: $(find "$T/b/rootfs/run")"
    if all_layer_bytes "$T/out" | grep -aqF "$value"; then fail "the secret's value is in a layer"; fi
    if all_layer_bytes "$T/out" | tar_listing | grep -q 'secrets'; then fail "a layer has a secrets entry"; fi
    run_ocib inspect --json "oci:$T/out"
    [ "$status" -eq 0 ] || { show_run; fail "ocib inspect failed"; }
    [[ $out != *"$value"* ]] || fail "ocib inspect --json shows the secret's value"
    [[ $out != *"$T/token"* ]] || fail "ocib inspect --json shows the secret's path"
    if grep -rqF "$value" "$OCIB_CACHE_DIR" "$T/out"; then fail "the secret's value is stored in the cache or the output"; fi

    # A different secret value is no new cache key: the step is a hit.
    printf 'another-value\n' >"$T/token2"
    build_ok -C ctx --secret "id=tok,src=$T/token2" --output "oci:$T/out2"
    assert_no_command_ran
    assert_eq "digest with another secret value" "$DIGEST" "$first"
}

@test "base layers crafted to escape the root are refused, naming the layer digest and entry, and nothing outside is written" {
    local nonce=ocib50-$$-$RANDOM up k spec layer
    up=$(printf '../%.0s' $(seq 1 40))
    echo original >"$T/outside"
    declare -A kinds=(
        [dotdot]="[{\"name\": \"../evil-$nonce\", \"content\": \"x\"}]"
        [dotdot-deep]="[{\"name\": \"${up}tmp/evil-$nonce\", \"content\": \"x\"}]"
        [absolute]="[{\"name\": \"/tmp/abs-$nonce\", \"content\": \"x\"}]"
        [symlink-root]="[{\"name\": \"x\", \"type\": \"symlink\", \"linkname\": \"/\"}, {\"name\": \"x/tmp/pwned-$nonce\", \"content\": \"x\"}]"
        [symlink-up]="[{\"name\": \"y\", \"type\": \"symlink\", \"linkname\": \"../../..\"}, {\"name\": \"y/pwned-$nonce\", \"content\": \"x\"}]"
        [hardlink-up]="[{\"name\": \"h\", \"type\": \"hardlink\", \"linkname\": \"../outside\"}]"
        [hardlink-deep]="[{\"name\": \"h\", \"type\": \"hardlink\", \"linkname\": \"${up}${T#/}/outside\"}]"
    )
    declare -A entries=(
        [dotdot]="../evil-$nonce" [dotdot-deep]="tmp/evil-$nonce" [absolute]="/tmp/abs-$nonce"
        [symlink-root]="x/tmp/pwned-$nonce" [symlink-up]="y/pwned-$nonce"
        [hardlink-up]="h" [hardlink-deep]="h"
    )
    mkdir ctx
    for k in "${!kinds[@]}"; do
        read -r layer _ < <(craft_layout "$BASE_LAYOUT" "$T/evil-$k" 1 "${kinds[$k]}") ||
            fail "crafting the $k layout failed"
        [[ $layer =~ ^sha256:[0-9a-f]{64}$ ]] || fail "craft-layout printed no digest for $k"
        cat >"ctx/$k.json" <<EOF
{"version": 1, "image": "localhost:5000/ocib/evil", "stages": [
  {"from": "oci:$T/evil-$k:1", "layers": [{"name": "r", "run": "echo RAN-IN-$k > /ran"}]}
]}
EOF
        run_ocib build -C ctx -f "ctx/$k.json" --output "oci:$T/out-$k"
        assert_failed 1 "${layer#sha256:}" "$(printf '%s' "${entries[$k]}" | sed 's/[][\.*^$]/\\&/g')" ||
            fail "kind $k"
        [[ $err != *RAN-IN-* ]] || { show_run; fail "$k: the command ran on a root that failed to unpack"; }
        [ ! -e "$T/out-$k" ] || fail "$k: a failed build wrote its output"
    done

    # A symlink in one layer and a write through it in the next.
    read -r layer _ < <(craft_layout "$BASE_LAYOUT" "$T/evil-split1" 1 \
        '[{"name": "z", "type": "symlink", "linkname": "../../../../../../../../../../tmp"}]')
    read -r layer _ < <(craft_layout "$T/evil-split1" "$T/evil-split" 1 \
        "[{\"name\": \"z/split-$nonce\", \"content\": \"x\"}]")
    [[ $layer =~ ^sha256:[0-9a-f]{64}$ ]] || fail "craft-layout printed no digest"
    sed "s#evil-dotdot:1#evil-split:1#" ctx/dotdot.json >ctx/split.json
    run_ocib build -C ctx -f ctx/split.json --output "oci:$T/out-split"
    assert_failed 1 "${layer#sha256:}" "z/split-$nonce"

    # Nothing appeared outside any root: not under this test's directory
    # (where the cache and its stage roots live), not in /tmp, not in /.
    local found
    found=$(find "$T" /tmp -maxdepth 12 -name "*$nonce*" 2>/dev/null; find / -maxdepth 1 -name "*$nonce*" 2>/dev/null; true)
    [ -z "$found" ] || fail "files written outside the root: $found"
    for p in /evil-$nonce /tmp/evil-$nonce /tmp/abs-$nonce /tmp/pwned-$nonce /pwned-$nonce; do
        [ ! -e "$p" ] || fail "$p was created"
    done
    assert_eq "link count of the file outside" "$(stat -c %h "$T/outside")" 1
    assert_eq "content of the file outside" "$(cat "$T/outside")" original
}

@test "an unprivileged user builds with its subordinate id range: files made as root inside are 0:0, chown works, the image runs" {
    local u d
    if [ "$(id -u)" -eq 0 ]; then
        need useradd userdel su newuidmap newgidmap
        u=ocib50-$$
        useradd -m "$u" || fail "useradd $u failed"
        TEST_USER=$u
        grep -q "^$u:" /etc/subuid || fail "useradd gave $u no /etc/subuid range"
        d=$(getent passwd "$u" | cut -d: -f6)/work
        su "$u" -c "mkdir -p '$d'"
    else
        u=$(id -un)
        d=$T/user
        mkdir -p "$d"
    fi
    # The user's own copy of the base and the context.
    cp -a "$BASE_LAYOUT" "$d/base"
    write_two_stage "$d/ctx" "oci:$d/base:1"
    sed -i "s#\"from\": \"$BASE\"#\"from\": \"oci:$d/base:1\"#" "$d/ctx/ocib.json"
    jq '.stages[0].layers[1].run += " && echo owned > /out/share/owned.txt && chown 1000:1000 /out/share/owned.txt && ls -ln /out/share/owned.txt"' \
        "$d/ctx/ocib.json" >"$d/ctx/new.json" && mv "$d/ctx/new.json" "$d/ctx/ocib.json"
    [ "$(id -u)" -ne 0 ] || chown -R "$u:" "$d"
    run_user() {
        local cmd="cd '$d' && env OCIB_CACHE_DIR='$d/cache' TMPDIR='$d' $OCIB $*"
        status=0
        if [ "$(id -u)" -eq 0 ]; then
            su "$u" -s /bin/sh -c "$cmd" >"$T/user.out" 2>"$T/user.err" </dev/null || status=$?
        else
            sh -c "$cmd" >"$T/user.out" 2>"$T/user.err" </dev/null || status=$?
        fi
        out=$(cat "$T/user.out")
        err=$(cat "$T/user.err")
    }
    run_user build -C ctx --target build --output "oci:$d/stage"
    [ "$status" -eq 0 ] || { show_run; fail "the build stage failed as $u"; }
    assert_contains "chown inside" "$err" "1000     1000"
    case $err in *"comparing snapshots"*) fail "run steps fell back to snapshots as $u: $err" ;; esac
    local user_stage=$out
    [[ $user_stage == *@sha256:* ]] || { show_run; fail "no digest reference on stdout"; }
    run_user build -C ctx --output "oci:$d/final"
    [ "$status" -eq 0 ] || { show_run; fail "the two-stage build failed as $u"; }

    local m n listing
    m=$(layout_manifest "$d/stage")
    n=$(jq '.layers | length' "$m")
    listing=$(layer_listing "$d/stage" $((n - 2)) | norm_listing)
    assert_eq "owner of out/result.txt (made by root inside)" \
        "$(printf '%s\n' "$listing" | awk -F'\t' '$1 == "out/result.txt" { print $4 }')" 0:0
    assert_eq "owner of src/d/y" "$(printf '%s\n' "$listing" | awk -F'\t' '$1 == "src/d/y" { print $4 }')" 0:0
    assert_eq "owner of the chowned file" \
        "$(printf '%s\n' "$listing" | awk -F'\t' '$1 == "out/share/owned.txt" { print $4 }')" 1000:1000
    printf '%s\n' "$listing" | cut -f1 | grep -qx 'src/.wh.del.txt' || fail "no whiteout for src/del.txt: $listing"
    if printf '%s\n' "$listing" | awk -F'\t' '$4 != "0:0" && $4 != "1000:1000"' | grep .; then
        fail "entries owned by host ids"
    fi

    # Same spec, context and base: the same digest whoever builds it.
    if [ "$(id -u)" -eq 0 ]; then
        build_ok -C "$d/ctx" --target build --output "oci:$T/root-stage"
        assert_eq "build stage built by root vs by $u" "$REF" "$user_stage"
    fi

    # Root's podman runs the image the user built.
    mkdir "$T/img"
    cp -a "$d/final" "$T/img/userfinal"
    local id got
    id=$(podman_pull_oci "$T/img/userfinal" latest)
    got=$(podman_run "$id" 2>"$T/podman.err") || fail "podman run failed: $(cat "$T/podman.err")"
    assert_eq "container output" "$got" "$(printf 'result\ndata\nargv-form\n1000\n1000')"
    got=$(podman_run "$id" /bin/sh -c 'stat -c "%u:%g" /app/share/owned.txt' 2>"$T/podman.err") ||
        fail "podman run failed: $(cat "$T/podman.err")"
    # Docker semantics: a copy without "owner" makes its files root's, also from a stage.
    assert_eq "owner of the copied file in the running image" "$got" 0:0
}

@test "an unprivileged user without subordinate ids builds as root of a one-id namespace, on overlayfs, with the digest root gets" {
    [ "$(id -u)" -eq 0 ] || skip "needs root to create a user without a subordinate range"
    need useradd userdel su || return 1
    local u=ocib50n-$$ d
    useradd -m -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$u" || fail "useradd $u failed"
    TEST_USER=$u
    ! grep -q "^$u:" /etc/subuid || fail "useradd gave $u a subordinate range anyway"
    d=$(getent passwd "$u" | cut -d: -f6)/work
    mkdir -p "$d"
    cp -a "$BASE_LAYOUT" "$d/base"
    write_two_stage "$d/ctx" "oci:$d/base:1"
    sed -i "s#\"from\": \"$BASE\"#\"from\": \"oci:$d/base:1\"#" "$d/ctx/ocib.json"
    chown -R "$u:" "$d"
    status=0
    su "$u" -s /bin/sh -c "cd '$d' && env OCIB_CACHE_DIR='$d/cache' TMPDIR='$d' $OCIB build -C ctx --target build --output 'oci:$d/stage'" \
        >"$T/user.out" 2>"$T/user.err" </dev/null || status=$?
    out=$(cat "$T/user.out")
    err=$(cat "$T/user.err")
    [ "$status" -eq 0 ] || { show_run; fail "the build stage failed as $u"; }
    case $err in *"comparing snapshots"*) fail "run steps fell back to snapshots as $u: $err" ;; esac
    build_ok -C "$d/ctx" --target build --output "oci:$T/root-stage"
    assert_eq "build stage built by root vs by $u (no subordinate ids)" "$REF" "$out"

    # Read-only directories made by a command: a new one moved into the root,
    # and a re-created one whose old copy had a read-only subdirectory.
    cat >"$d/ctx/ro.json" <<EOF
{"version": 1, "image": "localhost:5000/ocib/ro", "stages": [
  {"from": "oci:$d/base:1", "layers": [
    {"name": "prep", "run": "mkdir -p /w/d/ro && echo f > /w/d/ro/f && chmod 555 /w/d/ro"},
    {"name": "work", "run": "mkdir /tmp/ro && echo x > /tmp/ro/x && chmod 555 /tmp/ro && chmod -R u+w /w/d && rm -rf /w/d && mkdir /w/d && echo n > /w/d/n && chmod 555 /w"}
  ]}
]}
EOF
    chown "$u:" "$d/ctx/ro.json"
    status=0
    su "$u" -s /bin/sh -c "cd '$d' && env OCIB_CACHE_DIR='$d/cache' TMPDIR='$d' $OCIB build -C ctx -f ctx/ro.json --output 'oci:$d/ro'" \
        >"$T/user.out" 2>"$T/user.err" </dev/null || status=$?
    out=$(cat "$T/user.out")
    err=$(cat "$T/user.err")
    [ "$status" -eq 0 ] || { show_run; fail "read-only directories failed as $u"; }
    build_ok -C "$d/ctx" -f "$d/ctx/ro.json" --output "oci:$T/root-ro"
    assert_eq "read-only directories: root vs $u" "$REF" "$out"
    # and the user can empty its cache of them
    su "$u" -s /bin/sh -c "env OCIB_CACHE_DIR='$d/cache' $OCIB cache prune --keep-bytes 0" >"$T/prune.out" 2>&1 </dev/null ||
        fail "cache prune as $u failed: $(cat "$T/prune.out")"
    [ -z "$(find "$d/cache/rootfs" -mindepth 1 -maxdepth 1 ! -name .boot 2>/dev/null)" ] ||
        fail "kept roots left after prune: $(ls -A "$d/cache/rootfs")"
}

@test "copy from an image reference (registry and OCI layout) reads that image's files, keyed by its digest, pinned by the lock; a missing image fails naming it" {
    mkdir -p ctx
    cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/fromimage", "stages": [
  {"name": "app", "from": "scratch", "layers": [
    {"name": "tools", "copy": [{"from": "$BASE_REG", "src": ["/bin/busybox"], "dest": "/bin/"},
                               {"from": "$BASE_REG", "src": ["/etc/passwd"], "dest": "/etc/passwd"},
                               {"from": "$BASE", "src": ["/etc/group"], "dest": "/etc/group", "owner": "1000:1000"}]}
  ], "config": {"cmd": ["/bin/busybox", "cat", "/etc/passwd"]}}
]}
EOF
    build_ok -C ctx --output "oci:$T/o"
    assert_eq "the copy layer" "$(top_layer "$T/o" | awk -F'\t' '{ print $1, $4 }' | tr '\n' ' ')" \
        "bin 0:0 bin/busybox 0:0 etc 0:0 etc/group 1000:1000 etc/passwd 0:0 "
    assert_eq "one layer on scratch" "$(jq '.layers | length' "$(layout_manifest "$T/o")")" 1
    assert_eq "the registry image is loaded once" "$(printf '%s\n' "$err" | grep -c "^\[$BASE_REG\] stage")" 1
    umoci_unpack "$T/o" latest "$T/b"
    umoci_unpack "$BASE_LAYOUT" 1 "$T/base-b"
    cmp "$T/b/rootfs/bin/busybox" "$T/base-b/rootfs/bin/busybox" || fail "busybox differs from the image's"
    cmp "$T/b/rootfs/etc/passwd" "$T/base-b/rootfs/etc/passwd" || fail "passwd differs from the image's"
    local id
    id=$(podman_pull_oci "$T/o" latest)
    assert_contains "the image runs what it copied" "$(podman_run "$id" 2>&1)" "app:x:1000:1000"

    build_ok -C ctx --output "oci:$T/o2"
    assert_eq "rebuild" "$(layer_state app tools)" cached

    # ocib lock pins the image a copy reads, as it pins bases.
    run_ocib lock -C ctx
    [ "$status" -eq 0 ] || { show_run; fail "ocib lock failed"; }
    jq -e --arg r "$BASE_REG" '.images[$r].manifests | length == 1' ctx/ocib.lock.json >/dev/null ||
        fail "the lock does not pin $BASE_REG: $(cat ctx/ocib.lock.json)"

    sed -i "s|\"from\": \"$BASE_REG\", \"src\": \[\"/etc/passwd\"\]|\"from\": \"$REG_ADDR/ocib/absent:1\", \"src\": [\"/etc/passwd\"]|" ctx/ocib.json
    rm -f ctx/ocib.lock.json
    run_ocib build -C ctx --output "oci:$T/o3"
    assert_eq "exit status for a missing image" "$status" 1
    assert_contains "names the image" "$err" "$REG_ADDR/ocib/absent:1"
    [ ! -e "$T/o3" ] || fail "an output was written for a failed build"
}

@test "owner names resolve against the stage's /etc/passwd and /etc/group as the layers before left them; unknown names fail naming the key" {
    mkdir -p ctx/app
    echo hi >ctx/app/a.txt
    cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/owners", "stages": [
  {"from": "$BASE", "layers": [
    {"name": "users", "run": "echo 'svc:x:2001:2002::/home/svc:/bin/sh' >> /etc/passwd && echo 'svcgrp:x:2002:' >> /etc/group && echo 'other:x:3003:' >> /etc/group"},
    {"name": "by-user", "copy": [{"src": ["app/a.txt"], "dest": "/u/app.txt", "owner": "app"},
                                 {"src": ["app/a.txt"], "dest": "/u/svc.txt", "owner": "svc"},
                                 {"src": ["app/a.txt"], "dest": "/u/mixed.txt", "owner": "svc:other"},
                                 {"src": ["app/a.txt"], "dest": "/u/num.txt", "owner": "2001:svcgrp"}]},
    {"name": "files", "files": [{"path": "/u/f.txt", "content": "f", "owner": "app:root"}]}
  ]}
]}
EOF
    build_ok -C ctx --output "oci:$T/o"
    local listing
    listing=$(top_layer "$T/o" | awk -F'\t' '{ print $1, $4 }')
    assert_contains "files layer owner" "$listing" "u/f.txt 1000:0"
    local m n
    m=$(layout_manifest "$T/o")
    n=$(jq '.layers | length' "$m")
    listing=$(layer_listing "$T/o" $((n - 2)) | norm_listing | awk -F'\t' '{ print $1, $4 }')
    assert_contains "user alone: its uid, the group of the same number" "$listing" "u/app.txt 1000:1000"
    assert_contains "a user added by an earlier run step" "$listing" "u/svc.txt 2001:2001"
    assert_contains "user and group names" "$listing" "u/mixed.txt 2001:3003"
    assert_contains "numeric user, group name" "$listing" "u/num.txt 2001:2002"

    # A rebuild is served from the cache without resolving anything again.
    build_ok -C ctx --output "oci:$T/o2"
    assert_eq "by-user layer on a rebuild" "$(layer_state 0 by-user)" cached
    assert_eq "files layer on a rebuild" "$(layer_state 0 files)" cached

    # Names the stage does not know.
    sed -i 's/"owner": "svc:other"/"owner": "svc:nogroup9"/' ctx/ocib.json
    run_ocib build -C ctx --output "oci:$T/o3"
    assert_eq "exit status for an unknown group" "$status" 1
    assert_contains "names the key and the group" "$err" "stages[0].layers[1].copy[2].owner: group 'nogroup9' is not in the stage's /etc/group"
    [ ! -e "$T/o3" ] || fail "an output was written for a failed build"
    sed -i 's/"owner": "app"/"owner": "nobody9"/' ctx/ocib.json
    run_ocib build -C ctx --output "oci:$T/o3"
    assert_eq "exit status for an unknown user" "$status" 1
    assert_contains "names the key and the user" "$err" "stages[0].layers[1].copy[0].owner: user 'nobody9' is not in the stage's /etc/passwd"
}

@test "only the stages the target needs are built" {
    mkdir ctx
    cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/targets", "stages": [
  {"name": "deps", "from": "$BASE", "layers": [{"name": "d", "run": "echo DEPS-STAGE-RAN; echo dep > /dep.txt"}]},
  {"name": "broken", "from": "$BASE", "layers": [{"name": "b", "run": "echo BROKEN-STAGE-RAN; exit 3"}]},
  {"name": "app", "from": "$BASE", "layers": [
    {"name": "c", "copy": [{"from": "deps", "src": ["/dep.txt"], "dest": "/dep.txt"}]},
    {"name": "r", "run": "cat /dep.txt"}
  ]}
]}
EOF
    build_ok -C ctx --output "oci:$T/app"
    [[ $err != *BROKEN-STAGE-RAN* ]] || { show_run; fail "the default target built the unrelated stage"; }
    [[ $err != *"[broken]"* ]] || { show_run; fail "progress mentions the unrelated stage"; }
    assert_contains "the needed stage ran" "$err" "[deps/d] DEPS-STAGE-RAN"
    assert_contains "the target ran" "$err" "[app/r] dep"

    build_ok -C ctx --target deps --output "oci:$T/deps"
    [[ $err != *BROKEN-STAGE-RAN* ]] || { show_run; fail "--target deps built the unrelated stage"; }
    [[ $err != *"[app"* ]] || { show_run; fail "--target deps built a later stage"; }

    run_ocib build -C ctx --target broken --output "oci:$T/broken"
    assert_failed 1 'stage broken' 'layer b' 'status 3'
    [[ $err != *DEPS-STAGE-RAN* ]] || { show_run; fail "--target broken ran the deps stage"; }
}

@test "mount points never lead outside the root: '..' and absolute symlinks are refused, in-root symlinks work, and a command cannot make ocib delete host files" {
    local nonce=ocib50m-$$-$RANDOM up
    up=$(printf '../%.0s' $(seq 1 40))
    mkdir -p "$T/hostdir" ctx
    echo secret-value >"$T/secret"
    # A base with an absolute symlink to a host directory and a relative one inside.
    read -r _ _ < <(craft_layout "$BASE_LAYOUT" "$T/symbase" 1 "[
        {\"name\": \"var\", \"type\": \"dir\"},
        {\"name\": \"var/run\", \"type\": \"symlink\", \"linkname\": \"$T/hostdir\"},
        {\"name\": \"usr\", \"type\": \"dir\"}, {\"name\": \"usr/lib\", \"type\": \"dir\"},
        {\"name\": \"lib\", \"type\": \"symlink\", \"linkname\": \"usr/lib\"}]")

    cat >ctx/dotdot.json <<EOF2
{"version": 1, "image": "localhost:5000/ocib/mnt", "stages": [
  {"from": "$BASE", "layers": [{"name": "m", "run": "echo RAN", "cache_mounts": ["/${up}${T#/}/hostdir/dd-$nonce"]}]}
]}
EOF2
    run_ocib build -C ctx -f ctx/dotdot.json --output "oci:$T/o1"
    [ "$status" -eq 1 ] || [ "$status" -eq 2 ] || { show_run; fail "a cache mount with '..' leaving the root: exit $status"; }
    [[ $err != *"[0/m] RAN"* ]] || { show_run; fail "the command ran with its cache mount outside the root"; }

    cat >ctx/abs.json <<EOF2
{"version": 1, "image": "localhost:5000/ocib/mnt", "stages": [
  {"from": "oci:$T/symbase:1", "layers": [
    {"name": "m", "run": "echo RAN", "cache_mounts": ["/var/run/cm-$nonce"], "secrets": [{"id": "s", "target": "/var/run/s-$nonce/tok"}]}]}
]}
EOF2
    run_ocib build -C ctx -f ctx/abs.json --secret "id=s,src=$T/secret" --output "oci:$T/o2"
    assert_failed 1 "/var/run/"
    [[ $err != *"[0/m] RAN"* ]] || { show_run; fail "the command ran with a mount point outside the root"; }

    cat >ctx/rel.json <<EOF2
{"version": 1, "image": "localhost:5000/ocib/mnt", "stages": [
  {"from": "oci:$T/symbase:1", "layers": [
    {"name": "m", "run": "echo v > /lib/cm/f && cat /lib/s/tok && test -f /usr/lib/cm/f && echo IN-ROOT-SYMLINK-OK",
     "cache_mounts": ["/lib/cm"], "secrets": [{"id": "s", "target": "/lib/s/tok"}]}]}
]}
EOF2
    build_ok -C ctx -f ctx/rel.json --secret "id=s,src=$T/secret" --output "oci:$T/o3"
    assert_contains "secret through an in-root symlink" "$err" "[0/m] secret-value"
    assert_contains "cache mount through an in-root symlink" "$err" "[0/m] IN-ROOT-SYMLINK-OK"
    if top_layer "$T/o3" | cut -f1 | grep -E '(^|/)(cm|s)(/|$)'; then fail "mount points left in the layer"; fi

    # The command swaps its mount point's parent for a symlink to a host
    # directory; removing the mount point afterwards must not follow it.
    mkdir -p "$T/victim"
    echo precious >"$T/victim/tok"
    mkdir -p "$T/victim/cm"
    cat >ctx/swap.json <<EOF2
{"version": 1, "image": "localhost:5000/ocib/mnt", "stages": [
  {"from": "$BASE", "layers": [
    {"name": "m", "run": "mv /x /x.old && ln -s $T/victim /x && echo SWAPPED",
     "cache_mounts": ["/x/cm"], "secrets": [{"id": "s", "target": "/x/tok"}]}]}
]}
EOF2
    # On an overlay a directory of the root cannot be renamed (EXDEV) and mv
    # cannot remove the mount points when it copies instead: the swap is
    # refused there, so it is tried where it succeeds, without overlayfs.
    OCIB_CAPTURE=snapshot run_ocib build -C ctx -f ctx/swap.json --secret "id=s,src=$T/secret" --output "oci:$T/o4"
    assert_contains "the command swapped the directory" "$err" "[0/m] SWAPPED"
    [ -f "$T/victim/tok" ] && [ "$(cat "$T/victim/tok")" = precious ] ||
        fail "ocib deleted or changed a host file through a symlink the command made: $(ls -la "$T/victim")"
    [ -d "$T/victim/cm" ] || fail "ocib removed a host directory through a symlink the command made"
    run_ocib build -C ctx -f ctx/swap.json --secret "id=s,src=$T/secret" --output "oci:$T/o5"
    [ -f "$T/victim/tok" ] && [ "$(cat "$T/victim/tok")" = precious ] && [ -d "$T/victim/cm" ] ||
        fail "on an overlay, ocib changed host files through a symlink the command made: $(ls -la "$T/victim")"

    local found
    found=$(find "$T" /tmp -maxdepth 12 -name "*$nonce*" 2>/dev/null || true)
    [ -z "$found" ] || fail "mount points created outside the root: $found"
    [ -z "$(ls -A "$T/hostdir")" ] || fail "entries created in the host directory: $(ls -A "$T/hostdir")"
}
