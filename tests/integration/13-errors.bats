#!/usr/bin/env bats
# Bad input: each error exits with the documented status (2 for a wrong
# command line or spec, caught before building; 1 for everything else),
# prints "ocib: <what>: <why>" on stderr naming the file, line:column, key
# path or path concerned, prints nothing on stdout, and leaves no output.

load helpers

setup() {
    common_setup
    mkdir -p ctx outs "$OCIB_CACHE_DIR"
    printf 'hello\n' >ctx/hello.txt
    snapshot_dir "$T/outs"
    snapshot_dir "$T"
}

# spec JSON: writes ctx/ocib.json.
spec() {
    printf '%s\n' "$1" >ctx/ocib.json
}

# build_fails STATUS PATTERN... -- ARGS...: the build fails as described and
# leaves neither the requested outputs nor ./ocib-out.
build_fails() {
    local want=$1 pats=()
    shift
    while [ "$1" != -- ]; do
        pats+=("$1")
        shift
    done
    shift
    run_ocib build -C ctx --output "oci:$T/outs/layout" --output "docker-archive:$T/outs/img.tar" "$@"
    assert_failed "$want" "${pats[@]}"
    assert_no_output "$T/outs/layout" "$T/outs/img.tar" "$T/ocib-out"
}

@test "a JSON syntax error exits 2 naming ocib.json:line:column" {
    printf '{\n  "version": 1,\n  "stages": [\n    {"from": "scratch"}\n    {"from": "scratch"}\n  ]\n}\n' >ctx/ocib.json
    build_fails 2 'ocib\.json:5:[0-9]+' --
}

@test "a truncated spec exits 2 naming the file" {
    printf '{"version": 1, "stages": [' >ctx/ocib.json
    build_fails 2 'ocib\.json(:[0-9]+)?' --
}

@test "an unknown key exits 2 with file:line:column, the key path and a suggestion" {
    cat >ctx/ocib.json <<'EOF'
{
  "version": 1,
  "stages": [
    {
      "from": "scratch",
      "layers": [
        {"copy": [{"src": ["hello.txt"], "dset": "/hello.txt"}]}
      ]
    }
  ]
}
EOF
    build_fails 2 'ocib\.json:7:[0-9]+' 'stages\[0\]\.layers\[0\]\.copy\[0\]\.dset' 'unknown key' 'did you mean "dest"\?' --
}

@test "an unknown top-level key and an unknown config key are errors too" {
    spec '{"version": 1, "imgae": "x/y", "stages": [{"from": "scratch"}]}'
    build_fails 2 'imgae' 'did you mean "image"\?' --
    spec '{"version": 1, "stages": [{"from": "scratch", "config": {"entrypoint": ["/a"], "cmdd": ["b"]}}]}'
    build_fails 2 'stages\[0\]\.config\.cmdd' 'did you mean "cmd"\?' --
}

@test "a wrong type exits 2 naming the key path" {
    cat >ctx/ocib.json <<'EOF'
{
  "version": 1,
  "stages": [
    {"from": "scratch",
     "workdir": 5}
  ]
}
EOF
    build_fails 2 'ocib\.json:5:[0-9]+' 'stages\[0\]\.workdir' --
    spec '{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": "hello.txt", "dest": "/"}]}]}]}'
    build_fails 2 'stages\[0\]\.layers\[0\]\.copy\[0\]\.src' --
}

@test "a missing 'stages' exits 2 and says so" {
    spec '{"version": 1, "image": "localhost:5000/x"}'
    build_fails 2 'stages' --
}

@test "an unsupported version exits 2" {
    spec '{"version": 2, "stages": [{"from": "scratch"}]}'
    build_fails 2 'version' --
}

@test "a layer with two kinds, or none, exits 2" {
    spec '{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["hello.txt"], "dest": "/"}], "files": [{"path": "/a", "content": "a"}]}]}]}'
    build_fails 2 'stages\[0\]\.layers\[0\]' --
    spec '{"version": 1, "stages": [{"from": "scratch", "layers": [{"name": "nothing"}]}]}'
    build_fails 2 'stages\[0\]\.layers\[0\]' --
}

@test "an unknown --target exits 2 naming it" {
    spec '{"version": 1, "stages": [{"name": "one", "from": "scratch", "layers": [{"copy": [{"src": ["hello.txt"], "dest": "/"}]}]}]}'
    build_fails 2 'nosuchstage' -- --target nosuchstage
}

@test "a stage cycle exits 2 naming the stages" {
    spec '{"version": 1, "stages": [{"name": "alpha", "from": "beta"}, {"name": "beta", "from": "alpha"}]}'
    build_fails 2 'cycle|stages\[0\]\.from' 'alpha|beta' --
    spec '{"version": 1, "stages": [{"name": "self", "from": "self"}]}'
    build_fails 2 'self' --
}

@test "duplicate stage names exit 2" {
    spec '{"version": 1, "stages": [{"name": "twin", "from": "scratch"}, {"name": "twin", "from": "scratch"}]}'
    build_fails 2 'twin' --
}

@test "a src with '..' exits 2 naming it" {
    mkdir -p outside-ctx && echo secret >outside-ctx/secret.txt
    snapshot_dir "$T"
    spec '{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["../outside-ctx/secret.txt"], "dest": "/s"}]}]}]}'
    build_fails 2 '\.\./outside-ctx/secret\.txt|stages\[0\]\.layers\[0\]\.copy\[0\]\.src' --
    spec '{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["sub/../../outside-ctx"], "dest": "/s/"}]}]}]}'
    build_fails 2 'outside-ctx|stages\[0\]\.layers\[0\]\.copy\[0\]\.src' --
}

@test "an absolute src outside the context exits 2" {
    spec '{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["/etc/passwd"], "dest": "/p"}]}]}]}'
    build_fails 2 '/etc/passwd|stages\[0\]\.layers\[0\]\.copy\[0\]\.src' --
}

@test "a bad mode or owner exits 2" {
    spec '{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["hello.txt"], "dest": "/h", "mode": "0989"}]}]}]}'
    build_fails 2 'stages\[0\]\.layers\[0\]\.copy\[0\]\.mode' --
    spec '{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["hello.txt"], "dest": "/h", "mode": "rw-r--r--"}]}]}]}'
    build_fails 2 'stages\[0\]\.layers\[0\]\.copy\[0\]\.mode' --
    spec '{"version": 1, "stages": [{"from": "scratch", "layers": [{"files": [{"path": "/h", "content": "x", "mode": 420}]}]}]}'
    build_fails 2 'stages\[0\]\.layers\[0\]\.files\[0\]\.mode' --
}

@test "a bad --compression or an unknown option exits 2" {
    spec '{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["hello.txt"], "dest": "/"}]}]}]}'
    build_fails 2 'xz' -- --compression xz
    build_fails 2 'frobnicate' -- --frobnicate
    build_fails 2 'nonsense' -- --output nonsense:/tmp/x
    build_fails 2 'source-date-epoch|yesterday' -- --source-date-epoch yesterday
}

@test "a missing spec file exits with an error naming it" {
    run_ocib build -C ctx -f "$T/nope.json" --output "oci:$T/outs/layout"
    [ "$status" -ne 0 ] || fail "a missing -f file built something"
    assert_failed "$status" 'nope\.json'
    assert_no_output "$T/outs/layout" "$T/ocib-out"
}

@test "a missing source file exits 1 naming it, with no output left behind" {
    spec '{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["hello.txt"], "dest": "/"}]}, {"copy": [{"src": ["missing.txt"], "dest": "/"}]}]}]}'
    build_fails 1 'missing\.txt' --
}

@test "a glob matching nothing exits 1 naming it" {
    spec '{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["*.nothing"], "dest": "/"}]}]}]}'
    build_fails 1 '\*\.nothing' --
}

@test "a src through a symlinked directory that leaves the context exits 1, reading nothing outside" {
    mkdir -p outside-ctx && echo "host secret" >outside-ctx/secret.txt
    ln -s ../outside-ctx ctx/escape
    snapshot_dir "$T"
    spec '{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["escape/secret.txt"], "dest": "/s"}]}]}]}'
    build_fails 1 'escape' --
    ln -s /etc ctx/etc-link
    spec '{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["etc-link/passwd"], "dest": "/p"}]}]}]}'
    build_fails 1 'etc-link' --
}

@test "a run layer on scratch fails with exit 1 naming the layer and the missing command, never silently ignored" {
    spec '{"version": 1, "stages": [{"from": "scratch", "layers": [{"name": "compile", "run": ["make"]}]}]}'
    build_fails 1 "layer compile: sandbox: cannot run 'make'" --
}

@test "a registry base image that cannot be fetched exits 1 naming it and the URL" {
    # Port 1 on loopback: nothing listens, and no network is needed.
    spec '{"version": 1, "stages": [{"from": "127.0.0.1:1/ocib/nothing:1", "layers": [{"copy": [{"src": ["hello.txt"], "dest": "/"}]}]}]}'
    build_fails 1 'stages\[0\]\.from: manifest 127\.0\.0\.1:1/ocib/nothing:1: GET http://127\.0\.0\.1:1/v2/ocib/nothing/manifests/1' --
}

@test "a missing oci: base layout exits 1 naming it" {
    spec "{\"version\": 1, \"stages\": [{\"from\": \"oci:$T/no-such-layout\", \"layers\": [{\"copy\": [{\"src\": [\"hello.txt\"], \"dest\": \"/\"}]}]}]}"
    build_fails 1 'no-such-layout' --
}

@test "a failed build leaves an existing output untouched" {
    spec '{"version": 1, "image": "localhost:5000/ocib/keep", "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["hello.txt"], "dest": "/"}]}]}]}'
    build_ok --repo localhost:5000/ocib/keep -C ctx --output "oci:$T/keep"
    local before
    before=$(cd "$T/keep" && find . -type f -exec sha256sum {} + | LC_ALL=C sort)
    spec '{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["missing.txt"], "dest": "/"}]}]}]}'
    run_ocib build -C ctx --output "oci:$T/keep"
    assert_failed 1 'missing\.txt'
    assert_eq "the earlier layout after a failed build" \
        "$(cd "$T/keep" && find . -type f -exec sha256sum {} + | LC_ALL=C sort)" "$before"
}

@test "several sources into a dest without a trailing '/' exit 2" {
    printf 'two\n' >ctx/two.txt
    spec '{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["hello.txt", "two.txt"], "dest": "/d"}]}]}]}'
    build_fails 2 'stages\[0\]\.layers\[0\]\.copy\[0\]\.dest' --
}

@test "a dest or files path with '..' exits 2" {
    spec '{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["hello.txt"], "dest": "/../../etc/x"}]}]}]}'
    build_fails 2 'stages\[0\]\.layers\[0\]\.copy\[0\]\.dest' --
    spec '{"version": 1, "stages": [{"from": "scratch", "layers": [{"files": [{"path": "/a/../../b", "content": "x"}]}]}]}'
    build_fails 2 'stages\[0\]\.layers\[0\]\.files\[0\]\.path' --
}

@test "a special file (fifo) in a copied directory is an error, not a hang" {
    mkdir -p ctx/d
    mkfifo ctx/d/pipe
    spec '{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["d"], "dest": "/d/"}]}]}]}'
    build_fails 1 'pipe' --
}

@test "every spec the schema rejects, ocib rejects too: exit 2, the key path or file:line:column, nothing built" {
    local name json bad=()
    while read -r name json; do
        printf '%s\n' "$json" >ctx/ocib.json
        run_ocib build -C ctx --output "oci:$T/outs/layout"
        if ! assert_failed 2 'ocib\.json' 2>"$T/.run/why"; then
            bad+=("$name: $(cat "$T/.run/why" | tr '\n' ' ')")
        fi
        assert_no_output "$T/outs/layout" "$T/ocib-out"
    done < <(invalid_specs)
    [ "${#bad[@]}" -eq 0 ] || fail "ocib's verdict differs from the schema's for ${#bad[@]} spec(s):
$(printf '  %s\n' "${bad[@]}")"
}

@test "the spec every field of the contract uses is accepted by ocib's parser (no exit 2)" {
    # Registry bases point at a closed loopback port, so nothing is fetched.
    # Every field of the contract once: tests/fixtures/full-spec.json (also 00-schema).
    sed 's/@REGISTRY@/127.0.0.1:1/g' "$BATS_TEST_DIRNAME/../fixtures/full-spec.json" >ctx/ocib.json
    "$PY" -c 'import json, sys, jsonschema; s = json.load(open(sys.argv[1])); jsonschema.validators.validator_for(s)(s).validate(json.load(open(sys.argv[2])))' \
        "$SCHEMA" ctx/ocib.json || fail "the schema rejects the full spec"
    printf 'registry=http://127.0.0.1:1/\n' >"$T/npmrc"
    run_ocib build -C ctx --secret "id=npmrc,src=$T/npmrc" --output "oci:$T/outs/layout"
    [ "$status" -ne 2 ] || { show_run; fail "ocib rejects a spec the contract allows"; }
    [ "$status" -ne 0 ] || fail "a build from an unreachable registry succeeded"
    assert_no_output "$T/outs/layout"
}
