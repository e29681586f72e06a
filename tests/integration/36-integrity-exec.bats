#!/usr/bin/env bats
# Audit fixes (issue 10) of ids, cancelled builds and smaller spec and cache
# checks: numeric owners and users never wrap to another id (2^32 is no
# root); SIGINT, SIGTERM and SIGKILL to ocib during a `run` step end the
# sandbox's every process, leave no mounts or temp files, release the
# cache-mount locks and exit 128+signo, as root and as an unprivileged user;
# a symlinked or foreign cache directory; env objects with many keys; a spec
# over the size cap. The commands run on a busybox base built here.

load helpers
load lib/run-fixtures

setup_file() {
    need busybox jq pgrep || return 1
    local d=$BATS_FILE_TMPDIR
    busybox_base_ctx "$d/bbctx" || return 1
    # A user "evil" whose uid (2^32) wraps to 0 through a 32-bit cast, and
    # one whose group does.
    jq '.stages[0].layers[2].files[0].content += "evil:x:4294967296:0:evil:/:/bin/sh\nbig:x:1:99999999999:big:/:/bin/sh\n"' \
        "$d/bbctx/ocib.json" >"$d/bbctx/new.json" && mv "$d/bbctx/new.json" "$d/bbctx/ocib.json"
    OCIB_CACHE_DIR=$d/cache-base "$OCIB" build -C "$d/bbctx" --output "oci:$d/base" \
        --progress=quiet >"$d/base.ref" 2>"$d/base.err" </dev/null ||
        { cat "$d/base.err" >&2; fail "building the busybox base failed"; return 1; }
    export BASE_LAYOUT=$d/base
    export BASE="oci:$d/base:latest"
}

setup() {
    common_setup
    TEST_USER=
    SIG_PID=
    CANCEL_MARK=
}

teardown() {
    if [ -n "${SIG_PID:-}" ]; then
        kill -9 "$SIG_PID" 2>/dev/null || true
    fi
    # What an old ocib left running (this test's marker only).
    if [ -n "${CANCEL_MARK:-}" ]; then
        pkill -9 -f "ticks-$CANCEL_MARK" 2>/dev/null || true
    fi
    if [ -n "${TEST_USER:-}" ]; then
        pkill -9 -u "$TEST_USER" 2>/dev/null || true
        userdel -r "$TEST_USER" >/dev/null 2>&1 || true
    fi
}

# spec_with JQ_FILTER...: writes ctx/ocib.json, a one-stage spec on the
# busybox base (a run layer, then a copy of ctx/f.txt), edited by each
# filter in turn.
spec_with() {
    mkdir -p "$T/ctx"
    echo f >"$T/ctx/f.txt"
    cat >"$T/ctx/ocib.json" <<EOF
{
  "version": 1,
  "image": "localhost:5000/ocib/exec",
  "stages": [
    {
      "from": "$BASE",
      "layers": [
        {"name": "first", "run": "id -u > /uid.txt"},
        {"name": "files", "copy": [{"src": ["f.txt"], "dest": "/f.txt"}]}
      ]
    }
  ]
}
EOF
    local f
    for f in "$@"; do
        jq "$f" "$T/ctx/ocib.json" >"$T/ctx/new.json" && mv "$T/ctx/new.json" "$T/ctx/ocib.json" ||
            { fail "jq $f failed"; return 1; }
    done
}

# assert_spec_error KEY: the last run exited 2 with one line
# "ocib: .../ocib.json:LINE:COL: KEY: ...", and no command ran.
assert_spec_error() {
    local key=${1//[/\\[}
    key=${key//]/\\]}
    key=${key//./\\.}
    [ "$status" -eq 2 ] || { show_run; fail "expected exit status 2 (a spec error) for $1, got $status"; return 1; }
    [[ $err =~ ^ocib:\ [^:]*ocib\.json:[0-9]+:[0-9]+:\ $key:\  ]] ||
        { show_run; fail "the error does not name file:line:col: $1"; return 1; }
    [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || { show_run; fail "more than one line on stderr"; return 1; }
}

# ---------------------------------------------------------------- ids

@test "numeric owners out of range, negative or with junk are spec errors naming the key (2^32 and 2^63 are no uid 0)" {
    local v
    for v in 4294967296:0 9223372036854775808:0 99999999999 4294967295:0 0:4294967296 -1:0 0:-5 12abc:0 1000:7x +5:0; do
        spec_with ".stages[0].layers[1].copy[0].owner = \"$v\""
        run_ocib build -C ctx --output "oci:$T/out"
        assert_spec_error "stages[0].layers[1].copy[0].owner" || { echo "owner $v" >&2; return 1; }
        [ ! -e "$T/out" ] || fail "owner $v: an image was written"
    done
    spec_with '.stages[0].layers[1].copy[0].owner = "4294967296:0"'
    run_ocib build -C ctx --output "oci:$T/out"
    assert_contains "why" "$err" 'larger than 4294967294'
    spec_with '.stages[0].layers[0] = {"name": "gen", "files": [{"path": "/g", "content": "x", "owner": "0:4294967296"}]}'
    run_ocib build -C ctx --output "oci:$T/out"
    assert_spec_error "stages[0].layers[0].files[0].owner"
    # the largest id stays valid and is recorded as such
    spec_with '.stages[0].layers[1].copy[0].owner = "4294967294:4294967294"'
    build_ok -C ctx --output "oci:$T/out"
    local m n
    m=$(layout_manifest "$T/out")
    n=$(jq '.layers | length' "$m")
    assert_eq "owner of the copied file" \
        "$(layer_listing "$T/out" $((n - 1)) | norm_listing | awk -F'\t' '$1 == "f.txt" { print $4 }')" 4294967294:4294967294
}

@test "run users out of range are spec errors naming the key, in a run layer, a stage and a config" {
    spec_with '.stages[0].layers[0].user = "99999999999"'
    run_ocib build -C ctx --output "oci:$T/out"
    assert_spec_error "stages[0].layers[0].user"
    spec_with '.stages[0].layers[0].user = "0:18446744073709551616"'
    run_ocib build -C ctx --output "oci:$T/out"
    assert_spec_error "stages[0].layers[0].user"
    spec_with '.stages[0].user = "4294967296"'
    run_ocib build -C ctx --output "oci:$T/out"
    assert_spec_error "stages[0].user"
    spec_with '.stages[0].config = {"user": "-1"}'
    run_ocib build -C ctx --output "oci:$T/out"
    assert_spec_error "stages[0].config.user"
}

@test "a base whose /etc/passwd gives a user the uid 2^32 does not run it as root: the run step and an owner name fail naming the file" {
    spec_with '.stages[0].layers[0].user = "evil"'
    run_ocib build -C ctx --output "oci:$T/out"
    [ "$status" -eq 1 ] || { show_run; fail "a run as 'evil' (uid 4294967296) exited $status, expected 1"; }
    assert_contains "names the file and the id" "$err" "/etc/passwd gives 'evil' the id \"4294967296\""
    [ ! -e "$T/out" ] || fail "an image was written"
    spec_with '.stages[0].layers[0].user = "big"'
    run_ocib build -C ctx --output "oci:$T/out"
    [ "$status" -eq 1 ] || { show_run; fail "a run as 'big' (gid 99999999999) exited $status, expected 1"; }
    assert_contains "names the group id" "$err" "the group \"99999999999\""
    spec_with 'del(.stages[0].layers[0])' '.stages[0].layers[0].copy[0].owner = "evil"'
    run_ocib build -C ctx --output "oci:$T/out"
    [ "$status" -eq 1 ] || { show_run; fail "a copy owned by 'evil' exited $status, expected 1"; }
    assert_contains "owner names the file" "$err" "/etc/passwd gives 'evil' the id"
}

# ---------------------------------------------------------------- cancelled builds

# cancel_spec DIR MARK: a spec whose run step appends a line to a file of
# its cache mount every 0.1 s until it is stopped; the script text (the
# shell's command line) holds MARK, for pgrep.
cancel_spec() {
    mkdir -p "$1"
    cat >"$1/ocib.json" <<EOF
{"version": 1, "image": "localhost:5000/ocib/cancel", "stages": [
  {"from": "oci:$2:latest", "layers": [
    {"name": "long", "run": "echo started-$3; while :; do echo x >> /var/cache/m/ticks-$3; sleep 0.1; done", "cache_mounts": ["/var/cache/m"]}
  ]}
]}
EOF
}

# wait_for FILE TEXT: up to 60 s for TEXT to appear in FILE.
wait_for() {
    local i
    for ((i = 0; i < 600; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "'$2' never appeared in $1: $(cat "$1" 2>/dev/null)"
}

# assert_sandbox_gone MARK CACHE: within 5 s no process holds MARK in its
# command line, the ticks file stops growing, nothing is mounted under
# CACHE and its tmp/ is empty.
assert_sandbox_gone() {
    local mark=$1 cache=$2 i ticks a b
    for ((i = 0; i < 50; i++)); do
        pgrep -f "ticks-$mark" >/dev/null || break
        sleep 0.1
    done
    if pgrep -af "ticks-$mark" >&2; then
        fail "the sandboxed command still runs after ocib ended"
        return 1
    fi
    ticks=$(find "$cache/mounts" -name "ticks-$mark")
    [ -n "$ticks" ] || { fail "the command never wrote its ticks file"; return 1; }
    a=$(wc -l <"$ticks")
    sleep 0.5
    b=$(wc -l <"$ticks")
    [ "$a" = "$b" ] || { fail "the ticks file still grows ($a -> $b lines)"; return 1; }
    if grep -F "$cache" /proc/[0-9]*/mountinfo 2>/dev/null | grep . >&2; then
        fail "mounts under the cache remain"
        return 1
    fi
}

# assert_no_temp CACHE: ocib's temp directory in the cache is empty, and no
# kept root holds the cache mount's placeholder.
assert_no_temp() {
    local left
    left=$(find "$1/tmp" -mindepth 1 2>/dev/null)
    [ -z "$left" ] || { fail "temp files left in the cache: $left"; return 1; }
}

# cancel_as_root SIGNAL STATUS: the whole check for one signal, as root.
cancel_as_root() {
    local sig=$1 want=$2 mark=m$RANDOM$$ st=0
    CANCEL_MARK=$mark
    cancel_spec "$T/ctx" "$BASE_LAYOUT" "$mark"
    env --default-signal=INT,TERM,HUP "$OCIB" build -C "$T/ctx" --output "oci:$T/out" \
        >"$T/c.out" 2>"$T/c.err" </dev/null &
    SIG_PID=$!
    wait_for "$T/c.err" "started-$mark" || return 1
    sleep 0.3
    kill -s "$sig" "$SIG_PID"
    wait "$SIG_PID" || st=$?
    SIG_PID=
    [ "$st" -eq "$want" ] || { cat "$T/c.err" >&2; fail "ocib killed by SIG$sig exited $st, expected $want"; return 1; }
    assert_sandbox_gone "$mark" "$OCIB_CACHE_DIR" || return 1
    if [ "$sig" != KILL ]; then
        assert_no_temp "$OCIB_CACHE_DIR" || return 1
        assert_contains "says why it stopped" "$(cat "$T/c.err")" "stopped: ocib received SIG$sig"
        [ ! -e "$T/out" ] || fail "an image was written although the build was cancelled"
    fi
    # The cache mount's lock is free again: a rebuild with a quick command
    # that uses the same mount succeeds.
    sed -i 's/while :; do.*done/echo rebuilt/' "$T/ctx/ocib.json"
    OCIB_TEST_TIMEOUT=60 run_ocib build -C "$T/ctx" --output "oci:$T/out"
    [ "$status" -eq 0 ] || { show_run; fail "the rebuild after SIG$sig failed"; return 1; }
    assert_contains "the command ran" "$err" "rebuilt"
}

@test "SIGINT to ocib during a run step ends the sandbox's every process, cleans up and exits 130" {
    cancel_as_root INT 130
}

@test "SIGTERM to ocib during a run step ends the sandbox's every process, cleans up and exits 143" {
    cancel_as_root TERM 143
}

@test "SIGKILL to ocib during a run step: the sandbox dies with it and a rebuild gets the cache mount's lock" {
    cancel_as_root KILL 137
}

# cancel_as_user SIGNAL STATUS: the same as an unprivileged user with a
# subordinate range, whose ocib re-runs itself in a user namespace: the
# signal goes to the outer process, which must pass it on (and the inner
# one must die with it on SIGKILL).
cancel_as_user() {
    local sig=$1 want=$2 mark=m$RANDOM$$ u d i st pid
    [ "$(id -u)" -eq 0 ] || { fail "needs root to create the test user"; return 1; }
    need useradd userdel su newuidmap newgidmap || return 1
    u=ocib36-$$
    useradd -m "$u" || { fail "useradd $u failed"; return 1; }
    TEST_USER=$u
    CANCEL_MARK=$mark
    grep -q "^$u:" /etc/subuid || { fail "useradd gave $u no /etc/subuid range"; return 1; }
    d=$(getent passwd "$u" | cut -d: -f6)/work
    mkdir -p "$d"
    cp -a "$BASE_LAYOUT" "$d/base"
    cancel_spec "$d/ctx" "$d/base" "$mark"
    chown -R "$u:" "$d"
    su "$u" -s /bin/sh -c "cd '$d' && OCIB_CACHE_DIR='$d/cache' TMPDIR='$d' env --default-signal=INT,TERM,HUP $OCIB build -C ctx --output 'oci:$d/out' >'$d/c.out' 2>'$d/c.err' </dev/null & echo \$! >'$d/pid'; wait \$!; echo \$? >'$d/status'" \
        </dev/null >/dev/null 2>&1 &
    SIG_PID=$!
    wait_for "$d/c.err" "started-$mark" || return 1
    sleep 0.3
    pid=$(cat "$d/pid")
    kill -s "$sig" "$pid"
    wait "$SIG_PID" || true
    SIG_PID=
    st=$(cat "$d/status")
    [ "$st" -eq "$want" ] || { cat "$d/c.err" >&2; fail "$u's ocib killed by SIG$sig exited $st, expected $want"; return 1; }
    assert_sandbox_gone "$mark" "$d/cache" || return 1
    for ((i = 0; i < 50; i++)); do
        pgrep -u "$u" -x ocib >/dev/null || break
        sleep 0.1
    done
    ! pgrep -u "$u" -af ocib >&2 || { fail "an ocib process of $u still runs"; return 1; }
    if [ "$sig" != KILL ]; then
        assert_no_temp "$d/cache" || return 1
        assert_contains "says why it stopped" "$(cat "$d/c.err")" "stopped: ocib received SIG$sig"
    fi
    sed -i 's/while :; do.*done/echo rebuilt/' "$d/ctx/ocib.json"
    st=0
    su "$u" -s /bin/sh -c "cd '$d' && OCIB_CACHE_DIR='$d/cache' TMPDIR='$d' timeout 60 $OCIB build -C ctx --output 'oci:$d/out'" \
        >"$T/user.out" 2>"$T/user.err" </dev/null || st=$?
    [ "$st" -eq 0 ] || { cat "$T/user.err" >&2; fail "$u's rebuild after SIG$sig exited $st"; return 1; }
}

@test "as an unprivileged user (re-run in a user namespace): SIGINT reaches the inner ocib, the sandbox ends, exit 130" {
    cancel_as_user INT 130
}

@test "as an unprivileged user: SIGTERM to the outer ocib ends the sandbox, exit 143" {
    cancel_as_user TERM 143
}

@test "as an unprivileged user: SIGKILL to the outer ocib takes the inner one and the sandbox with it" {
    cancel_as_user KILL 137
}

# ---------------------------------------------------------------- cache directory

@test "a symlinked cache directory is resolved once and said so on stderr; the cache lands in the real directory" {
    spec_with 'del(.stages[0].layers[0])'
    mkdir -p "$T/real-cache"
    ln -s "$T/real-cache" "$T/link-cache"
    OCIB_CACHE_DIR=$T/link-cache build_ok -C ctx --output "oci:$T/out"
    assert_eq "the note, once" "$(printf '%s\n' "$err" | grep -c 'is a symlink')" 1
    assert_contains "the note names both" "$err" "cache: $T/link-cache is a symlink to $T/real-cache"
    [ -n "$(find "$T/real-cache/blobs" -type f)" ] || fail "no blobs in the real cache directory"
    # --cache-dir and `ocib cache` too
    run_ocib build -C ctx --cache-dir "$T/link-cache" --output "oci:$T/out2"
    [ "$status" -eq 0 ] || { show_run; fail "--cache-dir through a symlink failed"; }
    assert_contains "--cache-dir note" "$err" "cache: $T/link-cache is a symlink to $T/real-cache"
    run_ocib cache --cache-dir "$T/link-cache" du
    [ "$status" -eq 0 ] || { show_run; fail "cache du through a symlink failed"; }
    assert_contains "cache du note" "$err" "is a symlink to $T/real-cache"
}

@test "a cache directory owned by another user is refused, naming it" {
    spec_with 'del(.stages[0].layers[0])'
    mkdir -p "$T/foreign"
    chown 65534:65534 "$T/foreign"
    OCIB_CACHE_DIR=$T/foreign run_ocib build -C ctx --output "oci:$T/out"
    [ "$status" -eq 1 ] || { show_run; fail "a foreign cache directory gave exit $status, expected 1"; }
    assert_contains "names it" "$err" "ocib: cache directory '$T/foreign' is owned by uid 65534"
    [ -z "$(ls -A "$T/foreign")" ] || fail "ocib wrote into the foreign cache: $(ls -A "$T/foreign")"
    # also through a symlink, and for `ocib cache`
    ln -s "$T/foreign" "$T/flink"
    run_ocib cache --cache-dir "$T/flink" du
    [ "$status" -eq 1 ] || { show_run; fail "cache du on a foreign cache gave exit $status"; }
    assert_contains "names the real one" "$err" "cache directory '$T/foreign' is owned by uid 65534"
}

# ---------------------------------------------------------------- large specs

# Not a timing benchmark: the bounds are ten times what the build takes
# here (about 2 s), and the quadratic version took over 20 s for 100,000
# keys (33 s for 40,000 keys in a stage env and a config env).
@test "a stage env and a config env of 100,000 keys each build well within 20 s, in order, the last value of a key winning" {
    mkdir -p ctx
    "$PY" - "$BASE" >ctx/ocib.json <<'EOF'
import json, sys
env = {"K%d" % i: "v%d" % i for i in range(100000)}
print(json.dumps({"version": 1, "image": "localhost:5000/ocib/env", "stages": [
    {"from": "scratch", "env": env,
     "layers": [{"name": "f", "files": [{"path": "/a", "content": "x"}]}],
     "config": {"env": dict(env, K7="seven")}}]}))
EOF
    OCIB_TEST_TIMEOUT=20 build_ok -C ctx --output "oci:$T/out"
    local c
    c=$(layout_config "$T/out")
    assert_eq "Env entries" "$(jq '.config.Env | length' "$c")" 100000
    assert_eq "first" "$(jq -r '.config.Env[0]' "$c")" K0=v0
    assert_eq "replaced in place" "$(jq -r '.config.Env[7]' "$c")" K7=seven
    assert_eq "last" "$(jq -r '.config.Env[99999]' "$c")" K99999=v99999
}

@test "a run step with 40,000 env keys (stage and layer) runs well within 20 s and sees them" {
    mkdir -p ctx
    "$PY" - "$BASE" >ctx/ocib.json <<'EOF'
import json, sys
env = {"K%d" % i: "v%d" % i for i in range(40000)}
print(json.dumps({"version": 1, "image": "localhost:5000/ocib/env", "stages": [
    {"from": sys.argv[1], "env": env,
     "layers": [{"name": "r", "env": {"K5": "five", "NEW": "n"},
                 "run": "echo $K0 $K5 $K39999 $NEW $(env | grep -c '^K') > /seen"}]}]}))
EOF
    OCIB_TEST_TIMEOUT=20 build_ok -C ctx --output "oci:$T/out"
    local m n
    m=$(layout_manifest "$T/out")
    n=$(jq '.layers | length' "$m")
    mkdir x
    decompress "$(blob_path "$T/out" "$(jq -r ".layers[$((n - 1))].digest" "$m")")" \
        "$(jq -r ".layers[$((n - 1))].mediaType" "$m")" | tar -x -C x seen
    assert_eq "what the command saw" "$(cat x/seen)" "v0 five v39999 n 40000"
}

@test "a spec over the size cap is a spec error (exit 2) naming the file" {
    mkdir -p ctx
    "$PY" -c '
import json
print(json.dumps({"version": 1, "stages": [{"from": "scratch", "layers": [
    {"name": "f", "files": [{"path": "/a", "content": "x" * (5 << 20)}]}]}]}))' >ctx/ocib.json
    run_ocib build -C ctx --output "oci:$T/out"
    [ "$status" -eq 2 ] || { show_run; fail "a 5 MiB spec exited $status, expected 2"; }
    assert_contains "names the file and the limit" "$err" "ocib: ctx/ocib.json: the spec is"
    assert_contains "says the limit" "$err" "larger than the limit of 4194304"
}
