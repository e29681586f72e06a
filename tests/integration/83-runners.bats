#!/usr/bin/env bats
# Many runners, one cache (issue 16): CI runners that start empty share
# nothing but the registry, where --cache-to keeps the layer-key map as an
# artifact. A runner is a podman container of ocib (lib/runners.bash: ocib's
# image when there is one, else a root holding ocib; RUNNER_KIND=host runs
# host processes with empty cache directories instead). The first runner
# builds; the next ones build the same commit running no command and
# uploading no blob; after a source change only the source layers are
# rebuilt; runners that finish at once keep each other's entries. Then the
# CI examples of examples/ci/ run their shell steps on such runners, with
# the variables GitHub Actions and GitLab CI would set.

load helpers
load lib/registry
load lib/run-fixtures
load lib/runners

setup_file() {
    need podman runc busybox jq git python3 curl || return 1
    registry_start REG || return 1
    local d=$BATS_FILE_TMPDIR
    busybox_base_ctx "$d/bbctx" || return 1
    base_build "$d/bbctx" "$d/base" || return 1
    base_push "$d/base" "$REG_ADDR/ocib-test/busybox:1" || return 1
    export BASE=$REG_ADDR/ocib-test/busybox:1
    runner_init "$d/runners" || return 1
    echo "# runners: $RUNNER_DESC" >&3
}

teardown_file() {
    runner_stop
    registry_stop REG
}

setup() {
    common_setup
}

# app_ctx DIR WORD: the seed's pattern on the busybox base: a deps stage
# (lockfile, then the install step), a build stage over it (the source, then
# its compile step), and a runtime stage copying the installed deps and the
# compiled result. WORD makes the context's content its own.
app_ctx() {
    local d=$1
    mkdir -p "$d/src"
    echo "lib-$2 1.0" >"$d/deps.txt"
    echo "hello from $2" >"$d/src/main.txt"
    cat >"$d/ocib.json" <<JSON
{"version": 1, "stages": [
  {"name": "deps", "from": "$BASE", "workdir": "/app", "layers": [
    {"name": "lockfile", "copy": [{"src": ["deps.txt"], "dest": "/app/"}]},
    {"name": "install", "run": "mkdir -p lib && cp deps.txt lib/installed && echo ran-install"}]},
  {"name": "build", "from": "deps", "workdir": "/app", "layers": [
    {"name": "source", "copy": [{"src": ["src"], "dest": "/app/src/"}]},
    {"name": "compile", "run": "mkdir -p dist && cat src/*.txt >dist/app.txt && echo ran-compile"}]},
  {"name": "runtime", "from": "$BASE", "layers": [
    {"name": "deps", "copy": [{"from": "deps", "src": ["/app/lib"], "dest": "/app/lib/"}]},
    {"name": "app", "copy": [{"from": "build", "src": ["/app/dist"], "dest": "/app/dist/"}]}],
   "config": {"user": "1000", "cmd": ["/bin/cat", "/app/dist/app.txt"]}}]}
JSON
}

ALL_LAYERS="deps/lockfile deps/install build/source build/compile runtime/deps runtime/app"

# assert_layers STATE STAGE/LAYER...: each layer's progress line (plain) says
# STATE ("built", or "remote" for cached from --cache-from).
assert_layers() {
    local state=$1 sl line
    shift
    for sl in "$@"; do
        line=$(grep -E "^\[${sl%%/*}\] layer ${sl#*/}: " <<<"$err" || true)
        if [ "$state" = remote ]; then
            [[ $line =~ ^\[.*\]\ layer\ .*:\ cached\ sha256:[0-9a-f]{64}\ \(.*\):\ from\ --cache-from$ ]] ||
                { show_run; fail "$sl: expected 'cached ...: from --cache-from', got '$line'"; return 1; }
        else
            [[ $line =~ ^\[.*\]\ layer\ .*:\ built\ sha256: ]] ||
                { show_run; fail "$sl: expected 'built', got '$line'"; return 1; }
        fi
    done
}

# log_mark: the registry log's length now (uploads_since counts after it).
log_mark() {
    registry_wait_log REG
    wc -l <"$REG_LOG"
}

# uploads_since MARK: the blob uploads the registry served after MARK, one
# "METHOD URI" line each: an upload's POST (not a mount), PATCH and PUT.
uploads_since() {
    registry_wait_log REG
    tail -n +"$(($1 + 1))" "$REG_LOG" | "$PY" -c '
import json, sys
for line in sys.stdin:
    if not line.startswith("{"):
        continue
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("msg") != "response completed":
        continue
    m, u = e.get("http.request.method", ""), e.get("http.request.uri", "")
    if "/blobs/uploads/" not in u or (m == "POST" and "mount=" in u):
        continue
    if m in ("POST", "PATCH", "PUT"):
        print(m, u)'
}

# cache_keys REPO TAG: the layer keys the cache artifact REPO:TAG holds.
cache_keys() {
    local m blob
    m=$(curl -fsS -H "Accept: $MT_MANIFEST" "http://$REG_ADDR/v2/$1/manifests/$2") || return 1
    blob=$(jq -r '.layers[0].digest' <<<"$m")
    curl -fsS "http://$REG_ADDR/v2/$1/blobs/$blob" | jq -r '.entries | keys[]'
}

@test "runners on one cache: the first builds, the next ones run no command and upload no blob, a source change rebuilds only the source layers" {
    local ctx=$T/checkout cache=$REG_ADDR/ocib-test/seq-cache:main app=$REG_ADDR/ocib-test/seq
    app_ctx "$ctx" seq
    RUNNER_MOUNTS=("$T")
    runner_build first -C "$ctx" --progress=plain --cache-from "$cache" --cache-to "$cache" \
        --push --tag "$app:c1"
    [ "$status" -eq 0 ] || { show_run; fail "the first runner failed"; }
    local d1=${out#*@}
    assert_layers built $ALL_LAYERS
    grep -q '^\[deps/install\] ran-install$' <<<"$err" || { show_run; fail "the first runner ran no install step"; }
    assert_eq "pushed c1" "$(registry_check_image REG ocib-test/seq c1)" "$d1"

    local i mark ups
    for i in 2 3; do
        mark=$(log_mark)
        runner_build "same-$i" -C "$ctx" --progress=plain --cache-from "$cache" --cache-to "$cache" \
            --push --tag "$app:c1-runner$i"
        [ "$status" -eq 0 ] || { show_run; fail "runner $i failed"; }
        assert_eq "runner $i's digest" "${out#*@}" "$d1"
        assert_layers remote $ALL_LAYERS
        ! grep -q 'ran-' <<<"$err" || { show_run; fail "runner $i ran a command"; }
        ups=$(uploads_since "$mark")
        [ -z "$ups" ] || fail "runner $i uploaded blobs: $ups"
        assert_eq "pushed by runner $i" "$(registry_check_image REG ocib-test/seq "c1-runner$i")" "$d1"
    done

    # a commit that changes the source: only what depends on it is built
    echo "a change" >>"$ctx/src/main.txt"
    mark=$(log_mark)
    runner_build changed -C "$ctx" --progress=plain --cache-from "$cache" --cache-to "$cache" \
        --push --tag "$app:c2"
    [ "$status" -eq 0 ] || { show_run; fail "the runner after the source change failed"; }
    local d2=${out#*@}
    [ "$d2" != "$d1" ] || fail "the source changed but the digest did not"
    assert_layers remote deps/lockfile deps/install runtime/deps
    assert_layers built build/source build/compile runtime/app
    ! grep -q 'ran-install' <<<"$err" || { show_run; fail "the install step ran again"; }
    grep -q '^\[build/compile\] ran-compile$' <<<"$err" || { show_run; fail "compile did not run"; }
    # what it uploaded is the three new layers, the config and the cache's
    # new map, no more
    local want cfg map blobs
    cfg=$(curl -fsS -H "Accept: $MT_MANIFEST" "http://$REG_ADDR/v2/ocib-test/seq/manifests/c2" |
        jq -r .config.digest)
    map=$(curl -fsS -H "Accept: $MT_MANIFEST" "http://$REG_ADDR/v2/ocib-test/seq-cache/manifests/main" |
        jq -r '.layers[0].digest')
    want=$( (grep -Eo 'layer (source|compile|app): built sha256:[0-9a-f]{64}' <<<"$err" | grep -o 'sha256:.*'
        echo "$cfg"
        echo "$map") | sort -u)
    blobs=$(uploads_since "$mark" | grep '^PUT ' | grep -o 'digest=sha256[:%3A]*[0-9a-f]\{64\}' |
        sed 's/digest=sha256\(%3A\|:\)/sha256:/' | sort -u)
    for b in $blobs; do
        grep -qx "$b" <<<"$want" || fail "after a source change the runner uploaded $b (expected only: $(echo $want))"
    done
    [ -n "$blobs" ] || fail "the runner uploaded nothing after a source change"
    # and the next runner on that commit is all hits again
    runner_build after -C "$ctx" --progress=plain --cache-from "$cache" --push --tag "$app:c2-again"
    [ "$status" -eq 0 ] || { show_run; fail "the runner after that failed"; }
    assert_eq "digest of c2 again" "${out#*@}" "$d2"
    assert_layers remote $ALL_LAYERS
}

@test "four runners finishing at once on one --cache-to ref keep all their entries: empty runners then hit every layer of each" {
    local cache=$REG_ADDR/ocib-test/par-cache:main i
    for i in 1 2 3 4; do app_ctx "$T/ctx$i" "par$i"; done
    RUNNER_MOUNTS=("$T")
    for i in 1 2 3 4; do
        (runner_build "par$i" -C "$T/ctx$i" --progress=plain --cache-from "$cache" --cache-to "$cache" \
            --push --tag "$REG_ADDR/ocib-test/par$i:1"
        echo "$status" >"$T/par$i.rc"; printf '%s\n' "$out" >"$T/par$i.out"; printf '%s\n' "$err" >"$T/par$i.err") &
    done
    wait
    for i in 1 2 3 4; do
        [ "$(cat "$T/par$i.rc")" -eq 0 ] || { cat "$T/par$i.err" >&2; fail "concurrent runner $i failed"; }
        err=$(cat "$T/par$i.err")
        assert_layers built $ALL_LAYERS
    done
    # the artifact holds the union: 6 keys per context, none shared
    local keys
    keys=$(cache_keys ocib-test/par-cache main)
    [ "$(wc -l <<<"$keys")" -eq 24 ] ||
        fail "the cache artifact holds $(wc -l <<<"$keys") keys, not the 24 of the four builds"
    echo "# cache artifact writes: $(registry_count REG PUT '^/v2/ocib-test/par-cache/manifests/main$') for 4 runners" >&3
    local mark ups
    for i in 1 2 3 4; do
        mark=$(log_mark)
        runner_build "check$i" -C "$T/ctx$i" --progress=plain --cache-from "$cache" \
            --push --tag "$REG_ADDR/ocib-test/par$i:2"
        [ "$status" -eq 0 ] || { show_run; fail "the empty runner for context $i failed"; }
        assert_eq "context $i's digest" "$out" "$(cat "$T/par$i.out")"
        assert_layers remote $ALL_LAYERS
        ! grep -q 'ran-' <<<"$err" || { show_run; fail "the empty runner for context $i ran a command"; }
        ups=$(uploads_since "$mark")
        [ -z "$ups" ] || fail "the empty runner for context $i uploaded blobs: $ups"
    done
}

@test "two stages that start with the same layer: an empty runner finds both in the remote cache (one key, used twice)" {
    local ctx=$T/twin cache=$REG_ADDR/ocib-test/twin-cache:main
    mkdir -p "$ctx"
    echo "lock 1" >"$ctx/lock.txt"
    cat >"$ctx/ocib.json" <<JSON
{"version": 1, "stages": [
  {"name": "prod", "from": "$BASE", "layers": [
    {"name": "lockfile", "copy": [{"src": ["lock.txt"], "dest": "/app/"}]},
    {"name": "install", "run": "cp /app/lock.txt /app/prod && echo ran-prod"}]},
  {"name": "dev", "from": "$BASE", "layers": [
    {"name": "lockfile", "copy": [{"src": ["lock.txt"], "dest": "/app/"}]},
    {"name": "install", "run": "cp /app/lock.txt /app/dev && echo ran-dev"}]},
  {"name": "runtime", "from": "scratch", "layers": [
    {"name": "both", "copy": [{"from": "prod", "src": ["/app/prod"], "dest": "/"}, {"from": "dev", "src": ["/app/dev"], "dest": "/"}]}]}]}
JSON
    RUNNER_MOUNTS=("$T")
    runner_build twin1 -C "$ctx" --progress=plain --cache-to "$cache" --push --tag "$REG_ADDR/ocib-test/twin:1"
    [ "$status" -eq 0 ] || { show_run; fail "the first runner failed"; }
    local d=$out
    runner_build twin2 -C "$ctx" --progress=plain --cache-from "$cache" --cache-to "$cache" --push --tag "$REG_ADDR/ocib-test/twin:2"
    [ "$status" -eq 0 ] || { show_run; fail "the second runner failed"; }
    assert_eq "digest" "$out" "$d"
    assert_layers remote prod/lockfile prod/install dev/lockfile dev/install runtime/both
}

# ci_checkout DIR: a git checkout of an application (app_ctx), committed,
# writable by the runner's user as a CI workspace is. Sets $SHA.
ci_checkout() {
    app_ctx "$1" "ci"
    git -C "$1" init -q -b main &&
        git -C "$1" -c user.name=ci -c user.email=ci@example.com add -A &&
        git -C "$1" -c user.name=ci -c user.email=ci@example.com commit -qm app || return 1
    SHA=$(git -C "$1" rev-parse HEAD)
    chmod -R a+rwX "$1"
}

# gh_job FILE JOB CONTEXT_JSON WORKDIR WORKSPACE: runs JOB's `run:` steps one
# after the other, each on a new runner sharing WORKDIR (GitHub's /__w: the
# workspace and RUNNER_TEMP) with the variables GitHub sets and the workflow's
# env (REGISTRY pointed at the harness's registry); each step's
# GITHUB_OUTPUT is read into the context as steps.ID.outputs.NAME. Sets
# $CTX (the context after the job) and $STEPS_ERR (every step's stderr).
gh_job() {
    local file=$1 job=$2 w=$4 ws=$5 steps n i run id o envs
    CTX=$3 STEPS_ERR=
    steps=$("$PY" "$BATS_TEST_DIRNAME/lib/ci-steps.py" github "$file" "$job" "$CTX") || return 1
    n=$(jq length <<<"$steps")
    for ((i = 0; i < n; i++)); do
        if jq -e ".[$i] | has(\"uses\")" <<<"$steps" >/dev/null; then
            [ "$(jq -r ".[$i].uses" <<<"$steps")" = actions/checkout@v4 ] ||
                fail "$job: step $i uses $(jq -r ".[$i].uses" <<<"$steps"), which the test does not do" || return 1
            continue # done by ci_checkout
        fi
        run=$(jq -r ".[$i].run" <<<"$steps")
        id=$(jq -r ".[$i].id" <<<"$steps")
        o=$w/_temp/_runner_file_commands/set_output_$i
        mkdir -p "${o%/*}" && : >"$o" && chmod -R a+rwX "$w/_temp"
        mapfile -t envs < <(jq -r ".[$i].env | to_entries[] | \"\(.key)=\(.value)\"" <<<"$steps" |
            sed "s|^REGISTRY=.*|REGISTRY=$REG_ADDR|")
        runner_sh "gh-$job-$i" "$w" "cd $(printf %q "$ws")
$run" CI=true GITHUB_ACTIONS=true GITHUB_SHA="$SHA" GITHUB_REF_NAME=main GITHUB_REPOSITORY=Acme/API \
            GITHUB_ACTOR=ci-bot GITHUB_WORKSPACE="$ws" GITHUB_OUTPUT="$o" RUNNER_TEMP="$w/_temp" \
            "${envs[@]}"
        STEPS_ERR+=$err$'\n'
        [ "$status" -eq 0 ] || { show_run; fail "$job: step $i ($(jq -r ".[$i].name" <<<"$steps")) failed"; return 1; }
        if [ -n "$id" ]; then
            CTX=$(jq --arg id "$id" --rawfile o "$o" '. + ($o | split("\n") | map(select(contains("=")))
                | map({key: ("steps." + $id + ".outputs." + (.[:index("=")])), value: .[index("=") + 1:]})
                | from_entries)' <<<"$CTX")
        fi
    done
}

@test "examples/ci/github-actions.yml: the build job pushes the SHA tag with the remote cache and hands the digest to the deploy job" {
    local file=$REPO_ROOT/examples/ci/github-actions.yml w=$T/gh ws=$T/gh/api/api outputs digest
    mkdir -p "$w/_temp"
    ci_checkout "$ws"
    chmod a+rwx "$w" "$w/api"
    RUNNER_MOUNTS=()
    gh_job "$file" build "$(jq -n --arg t "$w/_temp" '{"secrets.GITHUB_TOKEN": "gh-token", "runner.temp": $t}')" \
        "$w" "$ws" || return 1
    outputs=$("$PY" "$BATS_TEST_DIRNAME/lib/ci-steps.py" github-outputs "$file" build "$CTX")
    digest=$(registry_check_image REG acme/api "$SHA") || fail "no image under the SHA tag acme/api:$SHA"
    assert_eq "digest output" "$(jq -r .digest <<<"$outputs")" "$digest"
    assert_eq "image output" "$(jq -r .image <<<"$outputs")" "$REG_ADDR/acme/api@$digest"
    local rev
    rev=$(curl -fsS -H "Accept: $MT_MANIFEST" "http://$REG_ADDR/v2/acme/api/manifests/$SHA" |
        jq -r '.annotations["org.opencontainers.image.revision"]')
    assert_eq "the image's revision" "$rev" "$SHA"
    [ -n "$(cache_keys acme/api/ocib-cache main)" ] || fail "the build job left no remote cache"
    ! grep -q gh-token <<<"$STEPS_ERR" || fail "the token was printed"

    # the deploy job gets the digest through the job's outputs
    gh_job "$file" deploy "$(jq -n --argjson o "$outputs" '$o | with_entries(.key = "needs.build.outputs." + .key)')" \
        "$w" "$ws" || return 1
    grep -q "^deploying $REG_ADDR/acme/api@$digest ($digest)\$" <<<"$out" || { show_run; fail "deploy did not get the digest"; }

    # the workflow again on another empty runner: the same commit is all hits
    gh_job "$file" build "$(jq -n --arg t "$w/_temp" '{"secrets.GITHUB_TOKEN": "gh-token", "runner.temp": $t}')" \
        "$w" "$ws" || return 1
    err=$STEPS_ERR
    assert_layers remote $ALL_LAYERS
    assert_eq "second run's digest" "$(jq -r '."steps.build.outputs.digest"' <<<"$CTX")" "$digest"
}

@test "examples/ci/gitlab-ci.yml: build-image pushes the SHA tag with the remote cache and hands the digest to deploy through its dotenv report" {
    local file=$REPO_ROOT/examples/ci/gitlab-ci.yml ws=$T/builds/acme/gl-api job vars script envs digest
    ci_checkout "$ws"
    RUNNER_MOUNTS=()
    local pre
    pre=$(jq -n --arg reg "$REG_ADDR" --arg sha "$SHA" --arg dir "$ws" '{CI: "true", GITLAB_CI: "true",
        CI_COMMIT_SHA: $sha, CI_COMMIT_SHORT_SHA: $sha[:8], CI_DEFAULT_BRANCH: "main",
        CI_PROJECT_DIR: $dir, CI_REGISTRY: $reg, CI_REGISTRY_IMAGE: ($reg + "/acme/gl-api"),
        CI_REGISTRY_USER: "gitlab-ci-token", CI_REGISTRY_PASSWORD: "job-token"}')
    for job in build-image deploy; do
        job=$("$PY" "$BATS_TEST_DIRNAME/lib/ci-steps.py" gitlab "$file" "$job" "$pre") || return 1
        mapfile -t envs < <(jq -r --argjson pre "$pre" '$pre + .variables | to_entries[] | "\(.key)=\(.value)"' <<<"$job")
        if [ -f "$ws/build.env" ]; then
            mapfile -t -O "${#envs[@]}" envs <"$ws/build.env"
        fi
        runner_sh "gl-$RANDOM" "$ws" "$(jq -r .script <<<"$job")" "${envs[@]}"
        [ "$status" -eq 0 ] || { show_run; fail "a job of $file failed"; }
        if [ ! -f "$ws/build.env" ]; then fail "build-image wrote no build.env"; fi
    done
    digest=$(registry_check_image REG acme/gl-api "$SHA") || fail "no image under the SHA tag acme/gl-api:$SHA"
    grep -qx "IMAGE_DIGEST=$digest" "$ws/build.env" || fail "build.env: $(cat "$ws/build.env"), pushed $digest"
    grep -qx "IMAGE_REF=$REG_ADDR/acme/gl-api@$digest" "$ws/build.env" || fail "build.env: $(cat "$ws/build.env")"
    grep -q "^deploying $REG_ADDR/acme/gl-api@$digest ($digest)\$" <<<"$out" || { show_run; fail "deploy did not get the digest"; }
    [ -n "$(cache_keys acme/gl-api/ocib-cache main)" ] || fail "build-image left no remote cache"
    ! grep -q job-token <<<"$err$out" || fail "the job token was printed"
}
