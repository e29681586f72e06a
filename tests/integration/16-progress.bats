#!/usr/bin/env bats
# Progress as people and programs see it (issue 12, item 5): on a real
# pseudo-terminal (tmux, whose screen the tests read back; `script` for the
# raw bytes) the running layer is live, with its timer and its command's
# last lines, and collapses into a summary; `plain` stays line-based and
# says what runs after a second of silence, with the bytes a stalled pull or
# push moved so far (a fault proxy in front of the real registry stalls
# them); retries are announced; `json` reports errors as events.

load helpers
load lib/registry
load lib/run-fixtures

setup_file() {
    need tmux script busybox jq || return 1
    export REGISTRY_MAX_SECONDS=600
    registry_start REG || return 1
    proxy_start PX "$REG_ADDR" || return 1
    local d=$BATS_FILE_TMPDIR
    busybox_base_ctx "$d/bbctx" || return 1
    base_build "$d/bbctx" "$d/base" || return 1
    base_push "$d/base" "$REG_ADDR/ocib/busybox:1" || return 1
    export BASE="oci:$d/base:1"
}

teardown_file() {
    proxy_stop PX
    registry_stop REG
}

setup() {
    common_setup
    TMUX_SOCK=ocib-test-$$-$BATS_TEST_NUMBER
    # the server's socket in the test's own directory
    export TMUX_TMPDIR=$BATS_TEST_TMPDIR
}

teardown() {
    tmux -L "$TMUX_SOCK" kill-server >/dev/null 2>&1 || true
}

# slow_ctx DIR FROM: a context whose run layer prints five ticks, then is
# silent for 2.5 s; a copy layer follows.
slow_ctx() {
    mkdir -p "$1"
    echo hello >"$1/a.txt"
    cat >"$1/ocib.json" <<JSON
{"version": 1, "stages": [{"name": "build", "from": "$2", "layers": [
  {"name": "slow", "run": "for i in 1 2 3 4 5; do echo tick \$i; sleep 0.2; done; sleep 2.5"},
  {"name": "src", "copy": [{"src": ["a.txt"], "dest": "/app/"}]}]}]}
JSON
}

# screen: what the tmux pane shows now.
screen() {
    tmux -L "$TMUX_SOCK" capture-pane -p -t t
}

# wait_screen REGEX SECONDS: until the pane shows a line matching REGEX.
wait_screen() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        screen | grep -Eq -- "$1" && return 0
        sleep 0.1
    done
    echo "--- the screen:" >&2
    screen >&2
    fail "the screen never showed /$1/ within $2 s"
}

# built_ok ARGS...: `ocib build ARGS` (of an image with no name) succeeds.
built_ok() {
    run_ocib build "$@"
    [ "$status" -eq 0 ] || { show_run; fail "ocib build $* exited $status"; }
}

# in_tmux COMMAND: runs COMMAND in a 100x30 tmux pane, then "EXIT=<status>".
in_tmux() {
    # A server that fails to come up (tmux's "server exited unexpectedly")
    # is started again.
    local i
    for i in 1 2 3; do
        tmux -L "$TMUX_SOCK" new-session -d -s t -x 100 -y 30 \
            "cd '$T' && OCIB_CACHE_DIR='$OCIB_CACHE_DIR' $1; echo EXIT=\$?; sleep 600" && return 0
        sleep 0.5
    done
    fail "tmux would not start a session"
}

# ---------------------------------------------------------------- tty

@test "on a terminal: the running layer is live with its timer and last lines, then one summary line" {
    slow_ctx "$T/ctx" "$BASE"
    in_tmux "'$OCIB' build -C '$T/ctx' --output 'oci:$T/out'"
    # while the command runs: the header, the layer's row with a timer, and
    # its last three lines (tick 1 scrolled out of them)
    wait_screen '^    \| tick 5$' 20
    local live
    live=$(screen)
    grep -Eq '^\[\+\] building [0-9]+\.[0-9]s: 0 layers done \(0 cached\)$' <<<"$live" ||
        fail "no live header: $live"
    grep -Eq '^ => \[build\] layer slow  [0-9]+\.[0-9]s \(run /bin/sh -c for i in' <<<"$live" ||
        fail "no live row for the running layer with its timer: $live"
    grep -Eq '^    \| tick 3$' <<<"$live" || fail "the command's lines are not shown: $live"
    ! grep -q 'tick 1' <<<"$live" || fail "more than the last three lines are shown: $live"
    # the timer moves while the command is silent
    local t1 t2
    t1=$(grep -Eo 'layer slow  [0-9.]+s' <<<"$live")
    sleep 1.2
    t2=$(screen | grep -Eo 'layer slow  [0-9.]+s')
    [ -n "$t2" ] && [ "$t1" != "$t2" ] || fail "the timer did not move: '$t1' then '$t2'"
    # done: the live area collapsed into the summary, the lines that stay
    # remain, nothing of the command's output or the live rows is left
    wait_screen '^EXIT=' 30
    local done
    done=$(screen)
    grep -q '^EXIT=0$' <<<"$done" || fail "the build failed: $done"
    grep -Eq '^built 2 layers \(0 cached\) in [0-9]+\.[0-9]s$' <<<"$done" ||
        fail "no summary line: $done"
    grep -Eq '^\[build\] layer slow: built sha256:' <<<"$done" || fail "no layer line: $done"
    grep -Eq '^sha256:[0-9a-f]{64}$' <<<"$done" || fail "no digest on stdout: $done"
    ! grep -Eq 'tick|\[\+\] building| => ' <<<"$done" ||
        fail "live lines were left on the screen: $done"
    # a rebuild: both layers cached, said in the summary
    tmux -L "$TMUX_SOCK" kill-server
    in_tmux "'$OCIB' build -C '$T/ctx' --output 'oci:$T/out'"
    wait_screen '^EXIT=' 30
    screen | grep -Eq '^built 2 layers \(2 cached\) in [0-9]+\.[0-9]s$' ||
        fail "the cached rebuild's summary is wrong: $(screen)"
}

@test "a failing layer on a terminal: marked failed, the error keeps the command's last lines" {
    mkdir -p "$T/ctx"
    cat >"$T/ctx/ocib.json" <<JSON
{"version": 1, "stages": [{"name": "build", "from": "$BASE", "layers": [
  {"name": "bad", "run": "echo first; echo oops; sleep 0.5; exit 3"}]}]}
JSON
    in_tmux "'$OCIB' build -C '$T/ctx' --output 'oci:$T/out'"
    wait_screen '^EXIT=' 30
    local s
    s=$(screen)
    grep -q '^EXIT=1$' <<<"$s" || fail "expected exit 1: $s"
    grep -Eq '^\[build\] layer bad: failed after [0-9]+\.[0-9]s$' <<<"$s" ||
        fail "the failed layer is not marked: $s"
    grep -Eq '^failed after [0-9]+\.[0-9]s \(0 layers done, 0 cached\)$' <<<"$s" ||
        fail "no failure summary: $s"
    grep -Eq '^ocib: stage build, layer bad: the command exited with status 3' <<<"$s" ||
        fail "no error line: $s"
    grep -Eq '^  \| oops$' <<<"$s" || fail "the error lost the command's last lines: $s"
    ! grep -Eq '\[\+\] building| => ' <<<"$s" || fail "live lines were left: $s"
}

@test "the tty mode draws with escape sequences on a terminal; plain and pipes get none" {
    slow_ctx "$T/ctx" "$BASE"
    sed -i 's/sleep 2.5/sleep 0.5/' "$T/ctx/ocib.json"
    # default on a terminal is tty
    script -qec "'$OCIB' build -C '$T/ctx' --output 'oci:$T/o1' --no-cache" "$T/tty.raw" \
        >/dev/null </dev/null || fail "the build under script failed: $(cat "$T/tty.raw")"
    grep -q $'\e\\[' "$T/tty.raw" || fail "no escape sequence on a terminal: $(cat -v "$T/tty.raw")"
    grep -q 'built 2 layers (0 cached)' "$T/tty.raw" || fail "no summary: $(cat -v "$T/tty.raw")"
    # --progress=plain on a terminal: lines only
    script -qec "'$OCIB' build -C '$T/ctx' --output 'oci:$T/o2' --no-cache --progress=plain" \
        "$T/plain.raw" >/dev/null </dev/null || fail "the plain build failed"
    ! grep -q $'\e' "$T/plain.raw" || fail "plain wrote escapes: $(cat -v "$T/plain.raw")"
    grep -q '^\[build/slow\] tick 5' "$T/plain.raw" || fail "plain lost the command's lines"
    # stderr not a terminal: plain by default
    built_ok -C "$T/ctx" --output "oci:$T/o3" --no-cache
    ! grep -q $'\e' <<<"$err" || fail "a pipe got escapes: $err"
    ! grep -q '^built 2 layers' <<<"$err" || fail "plain printed the tty summary: $err"
}

# ---------------------------------------------------------------- plain

@test "plain: a second of silence gets a status line naming the layer; a chatty build gets none" {
    slow_ctx "$T/ctx" "$BASE"
    built_ok -C "$T/ctx" --output "oci:$T/out" --progress=plain
    grep -Eq '^\[build\] layer slow: still running, [0-9]+\.[0-9]s \(run /bin/sh -c for i in' \
        <<<"$err" || { show_run; fail "no status line during 2.5 s of silence"; }
    [ "$(grep -c 'still running' <<<"$err")" -le 2 ] || fail "too many status lines: $err"
    # the status line came after the last tick, not between them
    local last_tick status_at
    last_tick=$(grep -n 'tick 5' <<<"$err" | cut -d: -f1)
    status_at=$(grep -n 'still running' <<<"$err" | head -1 | cut -d: -f1)
    [ "$status_at" -gt "$last_tick" ] || fail "a status line came while the command printed: $err"
    # a cached rebuild is quick: no status line
    built_ok -C "$T/ctx" --output "oci:$T/out" --progress=plain
    ! grep -q 'still' <<<"$err" || fail "a quick build printed a status line: $err"
}

@test "an unreachable registry: each retry is announced and the wait has a status line" {
    mkdir -p "$T/ctx"
    echo '{"version": 1, "stages": [{"name": "s", "from": "127.0.0.1:1/x/y:1", "layers": []}]}' \
        >"$T/ctx/ocib.json"
    run_ocib build -C "$T/ctx" --output "oci:$T/out" --progress=plain
    [ "$status" -eq 1 ] || { show_run; fail "expected exit 1"; }
    grep -Eq '^GET http://127\.0\.0\.1:1/v2/x/y/manifests/1: .*; retrying in [0-9.]+s \(attempt 2 of [0-9]+\)$' \
        <<<"$err" || { show_run; fail "the first retry was not announced"; }
    grep -Eq '^\[s\] resolving base 127\.0\.0\.1:1/x/y:1: still running, [0-9.]+s$' <<<"$err" ||
        { show_run; fail "no status line while retrying"; }
    [ "$(grep -c '^ocib: ' <<<"$err")" -eq 1 ] || { show_run; fail "expected one error line"; }
}

@test "plain: a stalled pull shows the bytes received so far" {
    mkdir -p "$T/ctx"
    cat >"$T/ctx/ocib.json" <<JSON
{"version": 1, "stages": [{"name": "build", "from": "$PX_ADDR/ocib/busybox:1", "layers": [
  {"name": "x", "run": "echo ran"}]}]}
JSON
    # every blob over 64 KiB (busybox's layer) stalls for 2.5 s after 64 KiB
    proxy_fault PX '{"type": "stall", "value": 2.5, "after": 65536, "count": -1, "kind": "blob_get"}'
    built_ok -C "$T/ctx" --output "oci:$T/out" --progress=plain
    proxy_config PX '{"clear_faults": true}' >/dev/null
    grep -Eq '^\[build\] layer x: still running, [0-9.]+s, preparing the root of stage build, [0-9.]+ (KiB|MiB) received' \
        <<<"$err" || { show_run; fail "no byte counter while the pull stalled"; }
}

@test "plain: a stalled push shows the bytes sent so far" {
    mkdir -p "$T/ctx"
    head -c 3000000 /dev/urandom >"$T/ctx/big.bin"
    echo '{"version": 1, "stages": [{"name": "s", "from": "scratch", "layers": [
      {"name": "data", "copy": [{"src": ["big.bin"], "dest": "/"}]}]}]}' >"$T/ctx/ocib.json"
    proxy_fault PX '{"type": "stall", "value": 2.5, "count": -1, "kind": "blob_upload_put|blob_upload_patch"}'
    build_ok --repo "$PX_ADDR/ocib/progress" -C "$T/ctx" --push --tag "$PX_ADDR/ocib/progress:1" \
        --progress=plain
    proxy_config PX '{"clear_faults": true}' >/dev/null
    grep -Eq "^pushing to $PX_ADDR/ocib/progress: still running, [0-9.]+s, [0-9.]+ (KiB|MiB) sent\$" \
        <<<"$err" || { show_run; fail "no byte counter while the push stalled"; }
    grep -q "^pushed $PX_ADDR/ocib/progress:1\$" <<<"$err" || { show_run; fail "no pushed line"; }
}

# ---------------------------------------------------------------- json

@test "json: a failed build ends with an error event, and stderr stays JSON lines" {
    mkdir -p "$T/ctx"
    cat >"$T/ctx/ocib.json" <<JSON
{"version": 1, "stages": [{"name": "build", "from": "$BASE", "layers": [
  {"name": "bad", "run": "echo oops; exit 3"}]}]}
JSON
    run_ocib build -C "$T/ctx" --output "oci:$T/out" --progress=json
    [ "$status" -eq 1 ] || { show_run; fail "expected exit 1"; }
    jq -e . >/dev/null <<<"$err" || { show_run; fail "stderr is not JSON lines"; }
    local last
    last=$(tail -n1 <<<"$err")
    [ "$(jq -r .event <<<"$last")" = error ] || fail "the last event is not the error: $last"
    [ "$(jq -r .exit <<<"$last")" = 1 ] || fail "the error event's exit is wrong: $last"
    jq -r .text <<<"$last" | grep -q 'stage build, layer bad: the command exited with status 3' ||
        fail "the error event lacks the message: $last"
    jq -r .text <<<"$last" | grep -q '| oops' || fail "the error event lacks the last lines"
    grep -q '"event":"layer-start","layer":"bad"' <<<"$err" || fail "no layer-start event: $err"
    # a usage error after --progress=json: an event too, exit 2
    run_ocib build -C "$T/ctx" --progress=json --no-such-flag
    [ "$status" -eq 2 ] || { show_run; fail "expected exit 2"; }
    [ "$(jq -r .event <<<"$err")" = error ] && [ "$(jq -r .exit <<<"$err")" = 2 ] ||
        { show_run; fail "a usage error is not an error event"; }
}
