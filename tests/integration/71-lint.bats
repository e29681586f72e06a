#!/usr/bin/env bats
# `ocib lint`: the seed's mistakes in Kubernetes YAML, specs and built
# images. The bundled good Deployment passes clean, its bad twin trips every
# Kubernetes rule; exit 0 (no error finding), 1 (some), 2 (bad input);
# credentials are found by content in a layer; a toolchain is found in a
# one-stage image and not in a two-stage one.

load helpers

setup() {
    common_setup
}

K8S=$EXAMPLES/node-api/k8s

# ids ARGS...: the sorted distinct finding ids of `ocib lint --json ARGS`.
ids() {
    run_ocib lint --json "$@"
    jq -r '[.findings[].id] | unique | join(" ")' <<<"$out"
}

# image NAME FILES_JSON [STAGES_JSON]: builds a scratch image whose one
# layer holds FILES_JSON (a "files" list) into the layout $T/NAME.
image() {
    mkdir -p "$T/ctx-$1"
    local stages=${3:-"[{\"from\": \"scratch\", \"layers\": [{\"files\": $2}], \"config\": {\"user\": \"1000:1000\", \"healthcheck\": {\"test\": [\"CMD\", \"/app/app\"]}}}]"}
    printf '{"version": 1, "stages": %s}\n' "$stages" >"$T/ctx-$1/ocib.json"
    build_ok -C "$T/ctx-$1" --tag localhost:5000/lint/t:1 --output "oci:$T/$1" --progress=quiet
}

@test "lint: the bundled Deployment passes clean, its bad twin trips every Kubernetes rule" {
    run_ocib lint "$K8S"
    [ "$status" -eq 0 ] || { show_run; fail "the good example has findings"; }
    assert_eq "summary" "$out" "0 errors, 0 warnings"
    # From bad/, as its ocib://../.. image is written (relative to the
    # current directory, as resolve reads it).
    cd "$K8S/bad"
    assert_eq "bad ids" "$(ids deployment.yaml)" \
        "caps-not-dropped latest-tag no-digest no-grace-headroom no-liveness-probe no-readiness-probe no-resources nonroot-image-user rollout-downtime runs-as-root same-probes writable-root-fs"
    run_ocib lint --json "$K8S/bad"
    assert_eq "exit status with error findings" "$status" 1
    jq -e '.errors > 0 and (.findings | all(.location | test("deployment.yaml:[0-9]+:[0-9]+$")))' <<<"$out" >/dev/null ||
        fail "findings lack file:line:col: $out"
    run_ocib lint "$K8S/bad"
    assert_contains "text names the place" "$out" "bad/deployment.yaml:18:18: error latest-tag:"
}

@test "lint: --ignore and the spec's lint.ignore silence rules; warnings alone exit 0" {
    run_ocib lint "$K8S/bad" --ignore latest-tag --ignore runs-as-root --ignore no-resources \
        --ignore rollout-downtime --ignore no-readiness-probe
    assert_eq "only warnings: exit" "$status" 0
    [[ $out != *latest-tag* ]] || fail "latest-tag not silenced: $out"
    mkdir "$T/ctx"
    printf '{"version": 1, "lint": {"ignore": ["named-user"]}, "stages": [{"from": "scratch", "config": {"user": "app"}}]}\n' >"$T/ctx/ocib.json"
    assert_eq "spec ignore" "$(ids -C "$T/ctx")" ""
    run_ocib lint -C "$T/ctx"
    assert_eq "exit" "$status" 0
}

@test "lint: bad input exits 2 and names it" {
    run_ocib lint "$T/missing.yaml"
    assert_eq "missing file" "$status" 2
    printf 'kind: Pod\nspec: {containers: [\n' >"$T/broken.yaml"
    run_ocib lint "$T/broken.yaml"
    assert_eq "broken YAML" "$status" 2
    assert_contains "names the place" "$err" "broken.yaml:3:1:"
    run_ocib lint --ignore no-such-rule "$K8S"
    assert_eq "unknown rule" "$status" 2
    mkdir "$T/ctx" && printf '{"version": 1, "stages": []}\n' >"$T/ctx/ocib.json"
    run_ocib lint -C "$T/ctx"
    assert_eq "bad spec" "$status" 2
    run_ocib lint --image "oci:$T/nope"
    assert_eq "missing image" "$status" 2
}

@test "lint: spec rules name ocib.json:line:col: a mutable base without a lock, a root or named user" {
    mkdir "$T/ctx"
    cat >"$T/ctx/ocib.json" <<'EOF'
{"version": 1, "stages": [
  {"name": "b", "from": "registry.example.com/node:20"},
  {"from": "b", "config": {"user": "node"}}]}
EOF
    assert_eq "ids" "$(ids -C "$T/ctx")" "mutable-base named-user"
    run_ocib lint -C "$T/ctx"
    assert_contains "base place" "$out" "ctx/ocib.json:2:17: warning mutable-base:"
    assert_contains "user place" "$out" "ctx/ocib.json:3:28: warning named-user:"
    printf '{"version": 1, "stages": [{"from": "scratch"}]}\n' >"$T/ctx/ocib.json"
    assert_eq "scratch without a user" "$(ids -C "$T/ctx")" "root-user"
    run_ocib lint -C "$T/ctx"
    assert_eq "exit" "$status" 1
}

@test "lint --image: a token in a layer's .npmrc is a credential; a .npmrc without one is not" {
    image tok '[{"path": "/app/.npmrc", "content": "//registry.npmjs.org/:_authToken=npm_abc123\n"},
                {"path": "/root/.ssh/id_rsa", "content": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n"}]'
    run_ocib lint --json --image "oci:$T/tok"
    assert_eq "exit" "$status" 1
    assert_eq "credentials" "$(jq -r '[.findings[] | select(.id == "credential") | .location] | join(" ")' <<<"$out" | sed 's/(sha256:[0-9a-f]*)/(D)/g')" \
        "layer 1 (D): /app/.npmrc layer 1 (D): /root/.ssh/id_rsa"
    image plain '[{"path": "/app/.npmrc", "content": "registry=https://registry.npmjs.org/\nfund=false\n"},
                  {"path": "/etc/ssl/certs/ca.pem", "content": "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"}]'
    assert_eq "no credential" "$(ids --image "oci:$T/plain")" ""
    run_ocib lint --image "oci:$T/plain"
    assert_eq "exit" "$status" 0
}

@test "lint --image: gcc in a one-stage image is a toolchain, not in a two-stage one; devDependencies and caches" {
    image one '[{"path": "/usr/bin/gcc", "content": "fake", "mode": "0755"},
                {"path": "/app/app", "content": "bin"}]'
    assert_eq "one stage" "$(ids --image "oci:$T/one")" "toolchain"
    image two '' '[{"name": "build", "from": "scratch", "layers": [{"files": [{"path": "/usr/bin/gcc", "content": "fake"}, {"path": "/app/app", "content": "bin"}]}]},
        {"from": "scratch", "layers": [{"copy": [{"from": "build", "src": ["/app"], "dest": "/app/"}]}], "config": {"user": "1000", "healthcheck": {"test": ["CMD", "/app/app"]}}}]'
    assert_eq "two stages" "$(ids --image "oci:$T/two")" ""
    image node '[{"path": "/app/package.json", "content": "{\"dependencies\": {\"express\": \"4\"}, \"devDependencies\": {\"typescript\": \"5\"}}"},
                 {"path": "/app/node_modules/express/package.json", "content": "{}"},
                 {"path": "/app/node_modules/typescript/package.json", "content": "{}"},
                 {"path": "/root/.npm/_cacache/index-v5/00/x", "content": "c"}]'
    run_ocib lint --image "oci:$T/node"
    assert_contains "dev dependency" "$out" "dev-dependencies: node_modules of /app holds 1 devDependencies (typescript)"
    assert_contains "cache" "$out" "package-cache: the image ships the package cache /root/.npm/_cacache"
}

@test "lint --image: the size budget comes from the spec given with -C" {
    mkdir -p "$T/ctx"
    cat >"$T/ctx/ocib.json" <<'EOF'
{"version": 1, "lint": {"max_size": 10}, "stages": [{"from": "scratch",
  "layers": [{"files": [{"path": "/usr/bin/make", "content": "fake"}]}],
  "config": {"user": "1000", "healthcheck": {"test": ["CMD", "/x"]}}}]}
EOF
    build_ok -C "$T/ctx" --tag localhost:5000/lint/t:1 --output "oci:$T/img" --progress=quiet
    assert_eq "make, over 10 bytes" "$(ids -C "$T/ctx" --image "oci:$T/img")" "image-size toolchain"
}

@test "lint: runAsNonRoot without runAsUser is checked against the user an ocib:// image's spec gives" {
    cd "$T"
    local u
    for u in app 0:0 1000:1000 none; do
        mkdir -p "ctx-$u"
        if [ "$u" = none ]; then
            printf '{"version": 1, "stages": [{"from": "scratch", "layers": []}]}\n' >"ctx-$u/ocib.json"
        else
            printf '{"version": 1, "stages": [{"from": "scratch", "layers": [], "config": {"user": "%s"}}]}\n' \
                "$u" >"ctx-$u/ocib.json"
        fi
        cat >"pod-$u.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  securityContext: {runAsNonRoot: true}
  containers:
    - name: c
      image: ocib://ctx-$u
EOF
    done
    run_ocib lint --json pod-app.yaml
    jq -e '.findings | map(select(.id == "nonroot-image-user")) | length == 1 and
        (.[0].location | endswith("pod-app.yaml:8:14")) and (.[0].message | test("a user name it cannot verify"))' \
        <<<"$out" >/dev/null || fail "a named user: $out"
    for u in 0:0 none; do
        run_ocib lint --json "pod-$u.yaml"
        jq -e '.findings | map(select(.id == "nonroot-image-user")) | length == 1 and (.[0].message | test("runs as root"))' \
            <<<"$out" >/dev/null || fail "user $u: $out"
    done
    assert_eq "a numeric non-root user" "$(ids pod-1000:1000.yaml | grep -c nonroot-image-user)" 0
    # runAsUser decides when it is given; the spec's user is then not read.
    sed -i 's/runAsNonRoot: true}/runAsNonRoot: true, runAsUser: 1000}/' pod-app.yaml
    assert_eq "with runAsUser" "$(ids pod-app.yaml | grep -c nonroot-image-user)" 0
}

@test "lint: the Kubernetes docs' Deployment, Job and CronJob lint with the expected findings" {
    local w=$BATS_TEST_DIRNAME/../fixtures/k8s-wild
    assert_eq "deployment" "$(ids "$w/deployment.yaml")" \
        "caps-not-dropped no-liveness-probe no-readiness-probe no-resources rollout-downtime runs-as-root writable-root-fs"
    assert_eq "job: no probe or rollout rules" "$(ids "$w/job.yaml")" \
        "caps-not-dropped no-resources runs-as-root writable-root-fs"
    assert_eq "cronjob: its containers are found under jobTemplate" "$(ids "$w/cronjob.yaml")" \
        "caps-not-dropped no-resources runs-as-root writable-root-fs"
    run_ocib lint --rules
    assert_contains "rules" "$out" "credential"
}

@test "build: spec and image findings are notes on stderr after the build; --lint=error fails; quiet prints none" {
    mkdir "$T/ctx"
    printf '{"version": 1, "stages": [{"from": "scratch", "layers": [{"files": [{"path": "/usr/bin/gcc", "content": "x"}]}]}]}\n' >"$T/ctx/ocib.json"
    build_ok -C "$T/ctx" --tag localhost:5000/lint/n:1 --output "oci:$T/o" --progress=plain
    assert_contains "spec note" "$err" "lint: $T/ctx/ocib.json:1:28: error root-user:"
    assert_contains "image note" "$err" "lint: layer 1 (sha256:"
    assert_contains "toolchain" "$err" "warning toolchain:"
    [ "$(grep -c 'root-user' <<<"$err")" -eq 1 ] || fail "root-user reported twice: $err"
    run_ocib build -C "$T/ctx" --tag localhost:5000/lint/n:1 --output "oci:$T/gated" --progress=plain --lint=error
    assert_eq "--lint=error exit" "$status" 1
    [ -z "$out" ] || fail "--lint=error printed a digest: $out"
    assert_contains "says why" "$err" "build --lint=error: 1 error finding"
    [ ! -e "$T/gated" ] || fail "--lint=error wrote the output of a build it failed"
    # passing the lint, --lint=error writes the output, once linted
    printf '{"version": 1, "stages": [{"from": "scratch", "layers": [{"files": [{"path": "/a", "content": "x"}]}], "config": {"user": "1000", "healthcheck": {"test": ["NONE"]}}}]}\n' >"$T/ctx2.json"
    run_ocib build -C "$T/ctx" -f "$T/ctx2.json" --tag localhost:5000/lint/n:2 --output "oci:$T/passed" --progress=plain --lint=error
    [ "$status" -eq 0 ] || { show_run; fail "a build without error findings failed under --lint=error"; }
    [ -e "$T/passed/index.json" ] || fail "--lint=error did not write the output of a passing build"
    [ "$(grep -c '^wrote oci:' <<<"$err")" -eq 1 ] || fail "the output was written more than once: $err"
    run_ocib build -C "$T/ctx" --tag localhost:5000/lint/n:1 --output "oci:$T/o" --progress=quiet
    assert_eq "quiet exit" "$status" 0
    [ -z "$err" ] || fail "quiet printed: $err"
}
