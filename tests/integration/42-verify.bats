#!/usr/bin/env bats
# `ocib build --verify` (issue 6): the target is built twice in isolation
# (context copies at different paths, umask 022 vs 077, directory entries
# created in opposite orders, separate empty caches) and compared. When both
# agree it says so on stderr and then builds normally (stdout: the digest
# reference only); when they differ it prints the `ocib diff` report and
# exits 1 without writing any output.
#
# The failure path is proved with something ocib cannot control: a `run`
# layer (on a static busybox base) that writes the clock and /dev/urandom
# into a file.

load helpers

setup_file() {
    need busybox jq || return 1
    BUSYBOX=$(command -v busybox)
    ! ldd "$BUSYBOX" >/dev/null 2>&1 || fail "$BUSYBOX is dynamically linked; install busybox-static" || return 1
    # a busybox base image, built once for the file (scratch + applets)
    local d=$BATS_FILE_TMPDIR/bb
    mkdir -p "$d/bin"
    cp "$BUSYBOX" "$d/bin/busybox"
    cat >"$d/ocib.json" <<'EOF'
{
  "version": 1,
  "image": "localhost:5000/ocib/busybox:1",
  "stages": [
    {
      "from": "scratch",
      "layers": [
        {"name": "busybox", "copy": [{"src": ["bin/busybox"], "dest": "/bin/busybox"}]},
        {"name": "applets", "files": [
          {"path": "/bin/sh", "symlink": "busybox"},
          {"path": "/bin/cat", "symlink": "busybox"},
          {"path": "/bin/date", "symlink": "busybox"},
          {"path": "/bin/od", "symlink": "busybox"},
          {"path": "/bin/mkdir", "symlink": "busybox"},
          {"path": "/bin/ln", "symlink": "busybox"},
          {"path": "/bin/touch", "symlink": "busybox"},
          {"path": "/bin/chmod", "symlink": "busybox"}
        ]}
      ],
      "config": {"env": {"PATH": "/bin"}, "cmd": ["/bin/sh"]}
    }
  ]
}
EOF
    export BB_LAYOUT=$BATS_FILE_TMPDIR/bb-oci
    OCIB_CACHE_DIR=$BATS_FILE_TMPDIR/cache timeout 120 "$OCIB" build -C "$d" --output "oci:$BB_LAYOUT" \
        >"$BATS_FILE_TMPDIR/bb.out" 2>"$BATS_FILE_TMPDIR/bb.err" </dev/null ||
        fail "building the busybox base failed: $(cat "$BATS_FILE_TMPDIR/bb.err")"
}

setup() {
    common_setup
}

# run_spec DIR RUN: a spec on the busybox base with one `run` layer (a shell
# string) and a context file copied before it.
run_spec() {
    local dir=$1 cmd=$2
    mkdir -p "$dir"
    printf 'context file\n' >"$dir/input.txt"
    jq -n --arg from "oci:$BB_LAYOUT" --arg cmd "$cmd" '{
        version: 1, image: "localhost:5000/ocib/verify-run",
        stages: [{from: $from,
                  layers: [{name: "input", copy: [{src: ["input.txt"], dest: "/work/"}]},
                           {name: "step", run: $cmd}],
                  config: {cmd: ["/bin/cat", "/work/input.txt"]}}]}' >"$dir/ocib.json"
}

# assert_verified: the last run was a successful --verify whose two builds
# and final build all gave $DIGEST.
assert_verified() {
    assert_digest_stdout "" || return 1
    local line
    line=$(printf '%s\n' "$err" | grep '^verify: reproducible' || true)
    [ -n "$line" ] || { show_run; fail "stderr does not say 'verify: reproducible'"; return 1; }
    assert_eq "verify line" "$line" "verify: reproducible, both builds gave $DIGEST"
    [[ $err != *"not reproducible"* ]] || { show_run; fail "stderr says not reproducible"; return 1; }
}

# assert_no_verify_leftovers: --verify removed its temporary directories.
assert_no_verify_leftovers() {
    local left
    left=$(find "$TMPDIR" -mindepth 1 -maxdepth 1 2>/dev/null)
    [ -z "$left" ] || fail "--verify left temporary files in \$TMPDIR: $left"
}

@test "verify: the bundled examples are reproducible; stdout is only the digest; then built normally" {
    local ex ctx normal
    for ex in hello layered; do
        ctx=$(copy_example "$ex")
        build_ok -C "$ctx" --output "oci:$T/$ex-normal"
        normal=$DIGEST
        rm -rf "$OCIB_CACHE_DIR"
        run_ocib build -C "$ctx" --output "oci:$T/$ex-verified" --verify
        [ "$status" -eq 0 ] || { show_run; fail "--verify of $ex exited $status"; }
        assert_verified
        assert_eq "--verify digest of $ex equals a plain build's" "$DIGEST" "$normal"
        assert_eq "the normal build after verifying wrote the layout" "$(layout_digest "$T/$ex-verified")" "$normal"
        assert_layout_sound "$T/$ex-verified"
        assert_no_verify_leftovers
    done
}

@test "verify: with --source-date-epoch, zstd, --target and a spec given with -f" {
    local ctx
    ctx=$(copy_example layered)
    mv "$ctx/ocib.json" "$T/layered.json"
    build_ok -C "$ctx" -f "$T/layered.json" --source-date-epoch 1700000000 --compression zstd \
        --target base --output "oci:$T/normal"
    local normal=$DIGEST
    run_ocib build -C "$ctx" -f "$T/layered.json" --source-date-epoch 1700000000 --compression zstd \
        --target base --output "oci:$T/verified" --verify
    [ "$status" -eq 0 ] || { show_run; fail "--verify exited $status"; }
    assert_verified
    assert_eq "digest" "$DIGEST" "$normal"
    jq -e '.annotations["dev.ocib.source-date-epoch"] == "1700000000"' "$(layout_manifest "$T/verified")" >/dev/null ||
        fail "source-date-epoch annotation missing"
    assert_no_verify_leftovers
}

@test "verify: a context inside a git checkout keeps its revision in both builds" {
    need git
    local ctx
    ctx=$(copy_example hello "$T/repo/hello")
    git -C "$T/repo" init -q
    git -C "$T/repo" add -A
    git -C "$T/repo" -c user.name=t -c user.email=t@example.com commit -q -m init
    local rev
    rev=$(git -C "$T/repo" rev-parse HEAD)
    build_ok -C "$ctx" --output "oci:$T/normal" --tag localhost:5000/ocib/hello:v1
    local normal=$DIGEST
    jq -e --arg r "$rev" '.annotations["org.opencontainers.image.revision"] == $r' \
        "$(layout_manifest "$T/normal")" >/dev/null || fail "no revision annotation in a git checkout"
    run_ocib build -C "$ctx" --output "oci:$T/verified" --tag localhost:5000/ocib/hello:v1 --verify
    [ "$status" -eq 0 ] || { show_run; fail "--verify exited $status"; }
    assert_verified
    assert_eq "digest in a git checkout" "$DIGEST" "$normal"
}

@test "verify: a context with odd modes, mtimes, nested dirs and symlinks is reproducible" {
    local ctx=$T/odd
    mkdir -p "$ctx/d/e/f" "$ctx/z" "$ctx/a"
    local i
    for i in 1 2 3 4 5 6 7 8 9; do
        printf 'file %s\n' "$i" >"$ctx/d/e/f/n$i"
        printf 'file %s\n' "$i" >"$ctx/z/m$i"
    done
    chmod 0600 "$ctx/d/e/f/n1"
    chmod 0750 "$ctx/d/e/f/n2"
    chmod 0700 "$ctx/z"
    touch -d '2001-02-03 04:05:06' "$ctx/a"
    ln -s ../d/e/f/n1 "$ctx/a/link"
    ln -s dangling "$ctx/a/dangling"
    jq -n '{version: 1, image: "localhost:5000/ocib/odd",
            stages: [{from: "scratch",
                      layers: [{name: "all", copy: [{src: ["."], dest: "/srv/"}]},
                               {name: "some", copy: [{src: ["z/m*", "d/e"], dest: "/opt/"}]}]}]}' >"$ctx/ocib.json"
    build_ok -C "$ctx" --output "oci:$T/normal"
    local normal=$DIGEST
    run_ocib build -C "$ctx" --output "oci:$T/verified" --verify
    [ "$status" -eq 0 ] || { show_run; fail "--verify exited $status"; }
    assert_verified
    assert_eq "digest" "$DIGEST" "$normal"
}

@test "verify: a deterministic run layer is reproducible" {
    need busybox
    run_spec "$T/det" 'mkdir -p /out/b /out/a && echo hello >/out/b/f && ln -s b/f /out/a/l && touch /out/a/e && chmod 600 /out/a/e && cat /work/input.txt >/out/copy'
    run_ocib build -C "$T/det" --output "oci:$T/verified" --verify --progress=plain
    [ "$status" -eq 0 ] || { show_run; fail "--verify of a deterministic run layer exited $status"; }
    assert_verified
    assert_layer_canonical "$T/verified" 3 0
    assert_no_verify_leftovers
}

@test "verify: a base named by a path relative to the context, outside it, is found" {
    mkdir -p "$T/proj/ctx"
    cp -r "$BB_LAYOUT" "$T/proj/base"
    printf 'context file\n' >"$T/proj/ctx/input.txt"
    jq -n '{version: 1, image: "localhost:5000/ocib/verify-rel",
            stages: [{from: "oci:../base", layers: [{copy: [{src: ["input.txt"], dest: "/work/"}]}]}]}' \
        >"$T/proj/ctx/ocib.json"
    run_ocib build -C "$T/proj/ctx" --output "oci:$T/verified" --verify
    [ "$status" -eq 0 ] || { show_run; fail "--verify with a relative oci: base exited $status"; }
    assert_verified
    assert_no_verify_leftovers
}

@test "verify: a run layer writing the clock and random bytes is not reproducible: exit 1 and the diff" {
    need busybox
    run_spec "$T/clock" 'mkdir -p /var/stamp && { date +%s; od -An -tx1 -N16 /dev/urandom; } >/var/stamp/now'
    mkdir -p "$OCIB_CACHE_DIR" # ocib makes its cache directory before anything else
    snapshot_dir "$T"
    run_ocib build -C "$T/clock" --output "oci:$T/out" --verify
    [ "$status" -eq 1 ] || { show_run; fail "expected exit 1 from a non-reproducible --verify, got $status"; }
    [ -z "$out" ] || { show_run; fail "stdout must stay empty when verification fails"; }
    local line
    line=$(printf '%s\n' "$err" | grep '^verify: not reproducible: ' || true)
    [[ $line =~ ^verify:\ not\ reproducible:\ sha256:[0-9a-f]{64}\ vs\ sha256:[0-9a-f]{64}$ ]] ||
        { show_run; fail "no 'verify: not reproducible: A vs B' line"; }
    [[ $err != *"verify: reproducible"* ]] || { show_run; fail "says reproducible as well"; }
    # the diff report names the file and says its content differs (both digests)
    local diffline
    diffline=$(printf '%s\n' "$err" | grep -E 'var/stamp/now' | grep -E 'content' || true)
    [ -n "$diffline" ] || { show_run; fail "the diff report does not name var/stamp/now and its content"; }
    [[ $diffline =~ sha256:[0-9a-f]{64}.*sha256:[0-9a-f]{64} ]] ||
        { show_run; fail "the content difference does not give both digests: $diffline"; }
    # only the run layer differs: the copied input and the base are not reported
    ! printf '%s\n' "$err" | grep -q 'work/input.txt' || { show_run; fail "input.txt reported as different"; }
    # the error line, and nothing written
    printf '%s\n' "$err" | grep -Eq '^ocib: .*verify.*' || { show_run; fail "no 'ocib: ...' error line"; }
    assert_no_output "$T/out"
    assert_no_verify_leftovers
    # the same spec builds fine without --verify
    build_ok -C "$T/clock" --output "oci:$T/out"
}
