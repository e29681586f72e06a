#!/usr/bin/env bats
# `ocib resolve`: Kubernetes YAML in, every `image: ocib://PATH` built and
# pushed to a real registry, the YAML out with those values replaced by
# repo@sha256 and no other byte changed (diff judges), each digest the one
# skopeo sees in the registry; a failed build or a context without a spec
# prints no YAML.

load helpers
load lib/registry
load lib/run-fixtures

setup_file() {
    registry_start REG
}

teardown_file() {
    registry_stop REG
}

setup() {
    common_setup
}

# ctx DIR REPO: a small scratch context at DIR whose image is REPO, in a git
# checkout of its own (the commit is the tag --push gives).
ctx() {
    mkdir -p "$1"
    printf 'hello from %s\n' "$2" >"$1/msg.txt"
    cat >"$1/ocib.json" <<JSON
{"version": 1, "image": "$2", "stages": [{"from": "scratch",
  "layers": [{"copy": [{"src": ["msg.txt"], "dest": "/srv/"}]}],
  "config": {"user": "1000:1000", "cmd": ["/srv/msg.txt"]}}]}
JSON
    git -C "$1" init -q && git -C "$1" add -A &&
        git -C "$1" -c user.name=t -c user.email=t@example.com commit -qm ctx
}

# image_values FILE: every image value of a YAML stream, one a line.
image_values() {
    "$PY" - "$1" <<'PY'
import sys, yaml
def walk(n):
    if isinstance(n, dict):
        for k, v in n.items():
            if k == "image" and isinstance(v, str):
                print(v)
            walk(v)
    elif isinstance(n, list):
        for v in n:
            walk(v)
for d in yaml.safe_load_all(open(sys.argv[1])):
    walk(d)
PY
}

@test "resolve: multi-document YAML with comments, anchors, flow maps and quotes changes only the image values, to the digests skopeo sees" {
    ctx "$T/ctx-a" "$REG_ADDR/resolve/a:v1"
    ctx "$T/ctx-b" "$REG_ADDR/resolve/b:v1"
    cat >"$T/in.yaml" <<'EOF'
# two workloads, one context used three times
apiVersion: apps/v1
kind: Deployment
metadata: {name: a, labels: {app: a}}   # flow style
spec:
  template:
    spec:
      containers:
        - name: a
          image: &a-image ocib://./ctx-a   # anchored
          ports: [{containerPort: 80}]
        - {name: side, image: "nginx:1.27", args: ['--x']}
      initContainers:
        - name: init
          image: *a-image
---
# a CronJob: the image lives under jobTemplate
apiVersion: batch/v1
kind: CronJob
metadata:
  name: "b"
spec:
  schedule: '*/5 * * * *'
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: b
            image: "ocib://ctx-b"
          - name: again
            image: 'ocib://./ctx-a'
...
EOF
    run_ocib resolve -f "$T/in.yaml" --progress=plain
    [ "$status" -eq 0 ] || { show_run; fail "resolve exited $status"; }
    printf '%s\n' "$out" >"$T/out.yaml"
    local a b
    a=$(image_values "$T/out.yaml" | sed -n 1p)
    b=$(image_values "$T/out.yaml" | grep "/resolve/b@")
    [[ $a =~ ^$REG_ADDR/resolve/a@sha256:[0-9a-f]{64}$ ]] || fail "first image is '$a'"
    [[ $b =~ ^$REG_ADDR/resolve/b@sha256:[0-9a-f]{64}$ ]] || fail "b's image is '$b'"
    assert_eq "a's digest in the registry" \
        "$(skopeo inspect --tls-verify=false "docker://$a" | jq -r .Digest)" "${a#*@}"
    assert_eq "b's digest in the registry" \
        "$(skopeo inspect --tls-verify=false "docker://$b" | jq -r .Digest)" "${b#*@}"
    # Every other byte as it was: the input with the values put in by hand.
    sed -e "s|ocib://./ctx-a|$a|" -e "s|ocib://ctx-b|$b|" "$T/in.yaml" >"$T/want.yaml"
    diff "$T/want.yaml" "$T/out.yaml" || fail "the output differs beyond the image values"
    assert_eq "lines changed" "$(diff "$T/in.yaml" "$T/out.yaml" | grep -c '^<')" 3
    # Each context was built and pushed once, side by side: every progress
    # line names its context as the YAML wrote it.
    assert_eq "pushes" "$(grep -c ': pushed ' <<<"$err")" 2
    assert_eq "a's pushes" "$(grep -c '^\./ctx-a: pushed ' <<<"$err")" 1
    assert_eq "b's pushes" "$(grep -c '^ctx-b: pushed ' <<<"$err")" 1
    # The alias still names the anchor, which now holds the digest.
    grep -q '^          image: \*a-image$' "$T/out.yaml" || fail "the alias changed"
}

@test "resolve: directories and stdin; the Kubernetes docs' Deployment, Job and CronJob resolve" {
    ctx "$T/app" "$REG_ADDR/resolve/wild:v1"
    cp "$BATS_TEST_DIRNAME/../fixtures/k8s-wild/"*.yaml "$T/"
    mkdir "$T/dir" && mv "$T/job.yaml" "$T/cronjob.yaml" "$T/dir/"
    local o=$T/.run/stdout
    status=0
    "$OCIB" resolve -f - -f "$T/dir" --progress=quiet <"$T/deployment.yaml" >"$o" 2>"$T/err" || status=$?
    [ "$status" -eq 0 ] || fail "resolve exited $status: $(cat "$T/err")"
    [ ! -s "$T/err" ] || fail "--progress=quiet printed: $(cat "$T/err")"
    local refs
    refs=$(image_values "$o" | sort -u)
    [ "$(image_values "$o" | wc -l)" -eq 3 ] || fail "expected 3 images, got: $(image_values "$o")"
    [[ $refs =~ ^$REG_ADDR/resolve/wild@sha256:[0-9a-f]{64}$ ]] || fail "one digest expected: $refs"
    # The documents in order: stdin's, then the directory's by name.
    "$PY" -c 'import sys, yaml; print(" ".join(d["kind"] for d in yaml.safe_load_all(open(sys.argv[1])) if d))' "$o" >"$T/kinds"
    assert_eq "kinds" "$(cat "$T/kinds")" "Deployment CronJob Job"
    grep -q "^            image: '$refs'$" "$o" || fail "the CronJob's quotes were not kept: $(cat "$o")"
}

@test "resolve: a context that fails to build fails the command and prints no YAML" {
    ctx "$T/good" "$REG_ADDR/resolve/good:v1"
    ctx "$T/bad" "$REG_ADDR/resolve/bad:v1"
    rm "$T/bad/msg.txt"
    printf 'a:\n  image: ocib://good\n---\nb:\n  # the broken one\n  image: ocib://bad\n' >"$T/in.yaml"
    run_ocib resolve -f "$T/in.yaml" --progress=plain
    [ "$status" -ne 0 ] || { show_run; fail "resolve succeeded"; }
    [ -z "$out" ] || fail "printed YAML on failure: $out"
    assert_contains "the error names the YAML line" "$err" "in.yaml:6:10: ocib://bad"
}

# slow_ctx DIR REPO: a context on the busybox base whose run layer sleeps 2 s.
slow_ctx() {
    mkdir -p "$1"
    cat >"$1/ocib.json" <<JSON
{"version": 1, "image": "$2", "stages": [{"from": "$BASE",
  "layers": [{"run": ["/bin/sh", "-c", "sleep 2; echo $2 >/msg"]}]}]}
JSON
    git -C "$1" init -q && git -C "$1" add -A &&
        git -C "$1" -c user.name=t -c user.email=t@example.com commit -qm ctx
}

@test "resolve: contexts build side by side (--jobs), one after another with --jobs 1" {
    local d=$BATS_FILE_TMPDIR/resolve-base
    if [ ! -d "$d/base" ]; then
        busybox_base_ctx "$d/bbctx"
        base_build "$d/bbctx" "$d/base" || return 1
    fi
    export BASE="oci:$d/base:1"
    slow_ctx "$T/s1" "$REG_ADDR/resolve/s1:v1"
    slow_ctx "$T/s2" "$REG_ADDR/resolve/s2:v1"
    printf 'a:\n  image: ocib://s1\n---\nb:\n  image: ocib://s2\n' >"$T/in.yaml"
    run_ocib resolve -f "$T/in.yaml" --progress=json --jobs 2
    [ "$status" -eq 0 ] || { show_run; fail "resolve exited $status"; }
    # Every event names its context; s2 started before s1's run layer ended.
    jq -e -s 'all(.context == "s1" or .context == "s2")' <<<"$err" >/dev/null ||
        fail "an event without its context: $err"
    jq -e -s '(map(.context) | index("s2")) <
        (to_entries | map(select(.value.context == "s1" and .value.event == "layer")) | .[0].key)' \
        <<<"$err" >/dev/null || fail "s2 waited for s1: $err"
    printf '%s\n' "$out" >"$T/par.yaml"
    # The same digests one at a time; all of s1's lines come before s2's.
    rm -rf "$OCIB_CACHE_DIR"
    run_ocib resolve -f "$T/in.yaml" --progress=json --jobs 1
    [ "$status" -eq 0 ] || { show_run; fail "resolve --jobs 1 exited $status"; }
    [ "$out" = "$(cat "$T/par.yaml")" ] || fail "different YAML: $out vs $(cat "$T/par.yaml")"
    jq -e -s 'all(has("context") | not)' <<<"$err" >/dev/null || fail "labelled alone: $err"
    run_ocib resolve -f "$T/in.yaml" --jobs 0
    assert_eq "--jobs 0: exit" "$status" 2
    assert_contains "--jobs 0: the message" "$err" "--jobs: '0' is not a number from 1 to 256"
}

@test "resolve: an ocib:// path without a spec names file:line:col, exit 2, before any build" {
    mkdir "$T/nospec"
    printf 'kind: Pod\nspec:\n  containers:\n  - name: x\n    image:   "ocib://nospec"\n' >"$T/pod.yaml"
    run_ocib resolve -f "$T/pod.yaml"
    assert_eq "exit status" "$status" 2
    [ -z "$out" ] || fail "printed YAML: $out"
    assert_contains "names the place" "$err" "pod.yaml:5:14: ocib://nospec: no ocib.json in 'nospec'"
    run_ocib resolve -f "$T/pod.yaml" -f "$T/missing.yaml"
    assert_eq "a missing input: exit" "$status" 2
    printf 'a: [1, 2\n' >"$T/broken.yaml"
    run_ocib resolve -f "$T/broken.yaml"
    assert_eq "a YAML syntax error: exit" "$status" 2
    assert_contains "a YAML syntax error names its place" "$err" "broken.yaml:2:1:"
    run_ocib resolve
    assert_eq "no -f: exit" "$status" 2
}

@test "resolve: help, the manual page and bash completion cover it" {
    run_ocib help resolve
    assert_contains "help" "$out" "--filename"
    assert_contains "help lists build's flags" "$out" "--insecure-registry"
    run_ocib completion bash
    assert_contains "completion" "$out" "resolve) opts=\"--help --filename -f"
    run_ocib help --man
    assert_contains "man" "$out" "resolve"
}
