#!/usr/bin/env bats
# The seed's workload end to end: specs/examples/node-api (Express +
# TypeScript) built the seed's way on a Node base image that
# tests/bases/make-node-base makes from this machine's nodejs package:
# lockfile layer, `npm ci` with network: host, a cache mount and the TLS
# proxy's CA as a secret, source, `npm run build`; the runtime stage copies
# the production node_modules and dist. The image must run under podman and
# answer /health; rebuilds must cost only what changed.
#
# Needs the npm registry (through the proxy whose CA is in
# /etc/ssl/certs/ca-certificates.crt). If it is unreachable the tests fail,
# saying so: they never skip.
#
# The tests share one context copy and one ocib cache (in $BATS_FILE_TMPDIR)
# and run in order: the later ones rebuild what the first one built.

load helpers

CA=/etc/ssl/certs/ca-certificates.crt
NPM_REGISTRY=${NPM_REGISTRY:-https://registry.npmjs.org}

setup_file() {
    need podman runc jq curl node || return 1
    export PODMAN_BASE=$BATS_FILE_TMPDIR/podman
    [ -r "$CA" ] || fail "$CA (the TLS proxy's CA bundle) is not readable" || return 1
    local code
    code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 30 --cacert "$CA" \
        "$NPM_REGISTRY/express" 2>"$BATS_FILE_TMPDIR/curl.err") || code=000
    [ "$code" = 200 ] ||
        fail "the npm registry $NPM_REGISTRY is unreachable (HTTP $code: $(cat "$BATS_FILE_TMPDIR/curl.err")); these tests need it for npm ci" ||
        return 1

    # The Node base, shared under build/bases (rebuilt only when node, the
    # packages or the script change), and made with the ocib under test.
    local o
    o=$(OCIB=$OCIB OCIB_CACHE_DIR=$BATS_FILE_TMPDIR/base-cache \
        "$REPO_ROOT/tests/bases/make-node-base" "$REPO_ROOT/build/bases/node" 2>&1) ||
        fail "tests/bases/make-node-base failed: $o" || return 1

    # A copy of the example at the same depth, so its relative base
    # reference oci:../../../build/bases/node:20 resolves to the shared base.
    export NA_ROOT=$BATS_FILE_TMPDIR/repo
    export NA_CTX=$NA_ROOT/specs/examples/node-api
    export NA_CACHE=$BATS_FILE_TMPDIR/cache
    mkdir -p "$NA_ROOT/build/bases" "$NA_ROOT/specs/examples"
    ln -s "$REPO_ROOT/build/bases/node" "$NA_ROOT/build/bases/node"
    cp -a "$EXAMPLES/node-api" "$NA_CTX"
    rm -rf "$NA_CTX/node_modules" "$NA_CTX/dist" "$NA_CTX/ocib-out"
}

setup() {
    common_setup
    # Every test of this file works on the same cache: later tests rebuild.
    export OCIB_CACHE_DIR=$NA_CACHE
}

teardown_file() {
    if [ -d "${PODMAN_BASE:-}" ]; then
        podman_cmd rm -a -f >/dev/null 2>&1 || true
        podman_cmd rmi -a -f >/dev/null 2>&1 || true
    fi
}

# na_build NAME: builds the example into $BATS_FILE_TMPDIR/NAME (an OCI
# layout) with the CA secret; sets $REF, $DIGEST, $out, $err.
na_build() {
    build_ok --repo localhost:5000/ocib/node-api -C "$NA_CTX" \
        --secret "id=ca,src=$CA" --output "oci:$BATS_FILE_TMPDIR/$1" --progress=plain || return 1
    printf '%s\n' "$err" >"$BATS_FILE_TMPDIR/$1.log"
}

# layer_line STAGE LAYER: the progress line of that layer in $err.
layer_line() {
    printf '%s\n' "$err" | grep -E "^\[$1\] layer $2: " | tail -n1
}

# assert_layer STAGE LAYER cached|built
assert_layer() {
    local l
    l=$(layer_line "$1" "$2")
    [ -n "$l" ] || { show_run; fail "no progress line for [$1] layer $2"; return 1; }
    [[ $l == "[$1] layer $2: $3 "* ]] || { show_run; fail "[$1] layer $2 should be $3: $l"; return 1; }
}

# layer_digest_of STAGE LAYER: the sha256:... of the layer's progress line.
layer_digest_of() {
    layer_line "$1" "$2" | grep -oE 'sha256:[0-9a-f]{64}' | head -n1
}

# command_output_lines: the run-output lines ("[stage/layer] ...") in $err.
command_output_lines() {
    printf '%s\n' "$err" | grep -E '^\[[^]/ ]+/[^] ]+\]' || true
}

@test "node-api: cold build on the Node base; the image runs as node and answers /health" {
    na_build out1
    assert_layout_sound "$BATS_FILE_TMPDIR/out1"
    printf '%s\n' "$DIGEST" >"$BATS_FILE_TMPDIR/out1.digest"
    local l
    for l in "prod-deps lockfile" "prod-deps deps" "build lockfile" "build deps" "build source" \
        "build compile" "runtime deps" "runtime app"; do
        [ -n "$(layer_line $l)" ] || { show_run; fail "no progress line for layer '$l'"; }
    done
    # npm ci really ran, with the network, in the build stage.
    printf '%s\n' "$err" | grep -qE '^\[build/deps\] .*added [0-9]+ packages' ||
        { show_run; fail "no 'added N packages' from npm ci in [build/deps]"; }

    local cfg
    cfg=$(layout_config "$BATS_FILE_TMPDIR/out1")
    assert_eq "User" "$(jq -r .config.User "$cfg")" node
    assert_eq "WorkingDir" "$(jq -r .config.WorkingDir "$cfg")" /app
    assert_eq "Cmd" "$(jq -c .config.Cmd "$cfg")" '["node","dist/server.js"]'
    assert_eq "ExposedPorts" "$(jq -c '.config.ExposedPorts | keys' "$cfg")" '["3000/tcp"]'
    jq -e '.config.Env | index("NODE_ENV=production")' "$cfg" >/dev/null ||
        fail "Env lacks NODE_ENV=production: $(jq -c .config.Env "$cfg")"
    jq -e '.config.Env | any(startswith("PATH="))' "$cfg" >/dev/null ||
        fail "Env lost the base's PATH: $(jq -c .config.Env "$cfg")"
    assert_eq "Healthcheck.Test" "$(jq -c .config.Healthcheck.Test "$cfg")" '["CMD","node","dist/healthcheck.js"]'
    assert_eq "Healthcheck.Interval" "$(jq -r .config.Healthcheck.Interval "$cfg")" 30000000000
    assert_eq "Healthcheck.Timeout" "$(jq -r .config.Healthcheck.Timeout "$cfg")" 3000000000

    local id got
    id=$(podman_pull_oci "$BATS_FILE_TMPDIR/out1" latest)
    got=$(podman_run "$id" sh -c '
        node dist/server.js & pid=$!
        for i in $(seq 1 50); do
            if node dist/healthcheck.js; then echo HEALTHY; break; fi
            sleep 0.2
        done
        wget -q -O - http://127.0.0.1:3000/health; echo
        echo "uid=$(id -u) user=$(id -un) cwd=$(pwd)"
        node dist/healthcheck.js; echo "healthcheck-exit=$?"
        kill $pid; wait $pid 2>/dev/null
        node dist/healthcheck.js; echo "healthcheck-down-exit=$?"
    ' 2>"$T/podman.err") || fail "podman run failed: $(cat "$T/podman.err")"
    assert_contains "container output" "$got" "node-api listening on :3000"
    assert_contains "container output" "$got" HEALTHY
    assert_contains "container output" "$got" '"status":"ok"'
    assert_contains "container output" "$got" "uid=1000 user=node cwd=/app"
    assert_contains "container output" "$got" "healthcheck-exit=0"
    assert_contains "container output" "$got" "healthcheck-down-exit=1"

    # The image's own CMD (no override) starts the server.
    got=$(podman_cmd run --rm --pull never --network none --ulimit nofile=1024:1024 \
        --ulimit nproc=4096:4096 --entrypoint sh "$id" -c \
        'timeout 3 node dist/server.js; true' </dev/null 2>&1) || true
    assert_contains "server start" "$got" "node-api listening on :3000"
}

@test "node-api: the runtime image has production dependencies and dist only (no typescript, no src)" {
    [ -f "$BATS_FILE_TMPDIR/out1/index.json" ] || fail "the cold build (first test) did not produce out1"
    local entries paths
    entries=$(layout_entries "$BATS_FILE_TMPDIR/out1")
    paths=$(printf '%s\n' "$entries" | cut -f2)
    local p
    for p in app/dist/server.js app/dist/healthcheck.js app/node_modules/express/package.json \
        app/package.json usr/bin/node; do
        printf '%s\n' "$paths" | grep -qxF "$p" || fail "the runtime image lacks $p"
    done
    for p in app/node_modules/typescript app/node_modules/@types app/src app/src/server.ts \
        app/tsconfig.json app/package-lock.json root/.npm; do
        ! printf '%s\n' "$paths" | grep -qxF "$p" || fail "the runtime image contains $p"
    done
    ! printf '%s\n' "$paths" | grep -qE '^app/node_modules/(typescript|@types)/' ||
        fail "the runtime image contains devDependencies: $(printf '%s\n' "$paths" | grep -E '^app/node_modules/(typescript|@types)/' | head -3)"
    # The CA secret never lands in a layer.
    ! printf '%s\n' "$paths" | grep -qxF etc/ssl/certs/ca-certificates.crt ||
        fail "the CA secret ended up in a layer"
    # The base's layers plus exactly the two runtime layers on top.
    local m base_n
    m=$(layout_manifest "$BATS_FILE_TMPDIR/out1")
    base_n=$(jq '.layers | length' "$(layout_manifest "$REPO_ROOT/build/bases/node" 20)")
    assert_eq "runtime layer count" "$(jq '.layers | length' "$m")" "$((base_n + 2))"
}

@test "node-api: a rebuild with nothing changed is all cached and runs no command" {
    [ -f "$BATS_FILE_TMPDIR/out1.digest" ] || fail "the cold build (first test) did not finish"
    na_build out2
    assert_eq "image digest" "$DIGEST" "$(cat "$BATS_FILE_TMPDIR/out1.digest")"
    local built
    built=$(printf '%s\n' "$err" | grep -E '^\[[^]]+\] layer [^:]+: built' || true)
    [ -z "$built" ] || { show_run; fail "layers were rebuilt: $built"; }
    [ "$(printf '%s\n' "$err" | grep -cE '^\[[^]]+\] layer [^:]+: cached')" -eq 8 ] ||
        { show_run; fail "expected 8 cached layers"; }
    [ -z "$(command_output_lines)" ] || { show_run; fail "a command ran: $(command_output_lines)"; }
}

@test "node-api: a one-line source change reruns compile but not npm ci; only the app layer changes" {
    [ -f "$BATS_FILE_TMPDIR/out1.log" ] || fail "the cold build (first test) did not finish"
    local before_build_deps before_prod_deps before_app
    err=$(cat "$BATS_FILE_TMPDIR/out1.log")
    before_build_deps=$(layer_digest_of build deps)
    before_prod_deps=$(layer_digest_of runtime deps)
    before_app=$(layer_digest_of runtime app)

    printf '// touched by 60-node-api.bats\n' >>"$NA_CTX/src/server.ts"
    na_build out3
    assert_layer prod-deps deps cached
    assert_layer build deps cached
    assert_layer build source built
    assert_layer build compile built
    assert_layer runtime deps cached
    assert_layer runtime app built
    assert_contains "source miss reason" "$(layer_line build source)" "src/server.ts"
    [ -z "$(command_output_lines | grep -E '^\[[^]/]+/deps\]')" ] ||
        { show_run; fail "npm ci ran again: $(command_output_lines)"; }
    command_output_lines | grep -qE '^\[build/compile\] .*tsc' || { show_run; fail "npm run build did not run"; }
    assert_eq "build deps layer" "$(layer_digest_of build deps)" "$before_build_deps"
    assert_eq "runtime deps layer" "$(layer_digest_of runtime deps)" "$before_prod_deps"
    [ "$(layer_digest_of runtime app)" != "$before_app" ] || fail "the app layer did not change"

    # Between the two images only the last layer differs.
    local m1 m3
    m1=$(layout_manifest "$BATS_FILE_TMPDIR/out1")
    m3=$(layout_manifest "$BATS_FILE_TMPDIR/out3")
    assert_eq "all but the last layer" "$(jq -c '.layers[:-1] | map(.digest)' "$m3")" \
        "$(jq -c '.layers[:-1] | map(.digest)' "$m1")"
    [ "$(jq -r '.layers[-1].digest' "$m3")" != "$(jq -r '.layers[-1].digest' "$m1")" ] ||
        fail "the app layer is the same"
}

@test "node-api: a lockfile change reruns npm ci" {
    [ -f "$BATS_FILE_TMPDIR/out1.log" ] || fail "the cold build (first test) did not finish"
    # A change to the lockfile alone that npm ci accepts: the root package's version.
    local f=$NA_CTX/package-lock.json tmp
    tmp=$(jq '.version = "1.0.1" | .packages[""].version = "1.0.1"' "$f") && printf '%s\n' "$tmp" >"$f"
    tmp=$(jq '.version = "1.0.1"' "$NA_CTX/package.json") && printf '%s\n' "$tmp" >"$NA_CTX/package.json"
    na_build out4
    # The first stage to need the new lockfile layer builds it; the other
    # stage's identical layer is then a hit. Both npm ci steps rerun.
    assert_layer prod-deps lockfile built
    assert_layer prod-deps deps built
    assert_layer build deps built
    assert_contains "lockfile miss reason" "$(layer_line prod-deps lockfile)" "package-lock.json changed"
    command_output_lines | grep -qE '^\[build/deps\] .*added [0-9]+ packages' ||
        { show_run; fail "npm ci did not run again"; }
}
