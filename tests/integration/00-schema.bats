#!/usr/bin/env bats
# specs/ocib.schema.json describes the spec format: every bundled example
# validates against it, specs that ocib must reject do not, every property
# is described for editors, and a validator's first error names the key at
# fault.

load helpers

setup() {
    T=$BATS_TEST_TMPDIR
    cd "$T"
}

# validate FILE...: checks each spec against the schema with python3-jsonschema.
validate() {
    "$PY" - "$SCHEMA" "$@" <<'PY'
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
v = cls(schema)
bad = 0
for f in sys.argv[2:]:
    errors = sorted(v.iter_errors(json.load(open(f))), key=lambda e: list(e.absolute_path))
    for e in errors:
        print("%s: %s: %s" % (f, "/".join(map(str, e.absolute_path)) or "(root)", e.message))
    bad += bool(errors)
sys.exit(1 if bad else 0)
PY
}

# rejected NAME JSON: the spec JSON must not validate.
rejected() {
    printf '%s\n' "$2" >"$T/$1.json"
    if validate "$T/$1.json" >"$T/$1.out" 2>&1; then
        fail "the schema accepts an invalid spec ($1): $2"
        return 1
    fi
    grep -q ': ' "$T/$1.out" || { cat "$T/$1.out"; fail "validator crashed on $1"; }
}

@test "the schema is a valid JSON Schema" {
    need jq
    jq -e '."$schema" | test("json-schema.org")' "$SCHEMA" >/dev/null
    "$PY" -c 'import jsonschema' || fail "python3-jsonschema is not installed for $PY"
    "$PY" - "$SCHEMA" <<'PY'
import json, sys, jsonschema
s = json.load(open(sys.argv[1]))
jsonschema.validators.validator_for(s).check_schema(s)
PY
}

@test "every example spec validates against the schema" {
    local specs=("$EXAMPLES"/*/ocib.json)
    [ -f "${specs[0]}" ] || fail "no example specs under $EXAMPLES"
    [ "${#specs[@]}" -ge 2 ] || fail "expected the hello and layered examples, found ${#specs[@]}"
    run validate "${specs[@]}"
    [ "$status" -eq 0 ] || fail "example specs do not validate: $output"
}

@test "a minimal spec validates: version, one stage from scratch" {
    printf '{"version": 1, "stages": [{"from": "scratch"}]}\n' >min.json
    run validate min.json
    [ "$status" -eq 0 ] || fail "$output"
}

@test "every kind of layer and config field of the contract validates" {
    # Every field of the contract once, shared with 13-errors (ocib's parser accepts it).
    sed 's/@REGISTRY@/registry.example.com/g' "$BATS_TEST_DIRNAME/../fixtures/full-spec.json" >full.json
    run validate full.json
    [ "$status" -eq 0 ] || fail "$output"
}

@test "the schema rejects unknown keys, wrong types, missing required keys and layers of no or two kinds" {
    local name json n=0
    while read -r name json; do
        rejected "$name" "$json"
        n=$((n + 1))
    done < <(invalid_specs)
    [ "$n" -ge 45 ] || fail "only $n invalid specs were tried"
}

@test "every property of the schema, at every depth, has a description" {
    # Editors show a property's description on hover and completion: each
    # one (in \$defs, conditionals and nested objects too) says what it does.
    run "$PY" - "$SCHEMA" <<'PY'
import json, sys
schema = json.load(open(sys.argv[1]))
n, missing = 0, []
def walk(node, where):
    global n
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    n += 1
                    d = sub.get("description") if isinstance(sub, dict) else None
                    if not isinstance(d, str) or not d.strip():
                        missing.append("%s/properties/%s" % (where, name))
            walk(value, "%s/%s" % (where, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            walk(value, "%s/%d" % (where, i))
walk(schema, "#")
print("%d properties" % n)
for m in missing:
    print("no description: " + m)
sys.exit(1 if missing or n < 50 else 0)
PY
    [ "$status" -eq 0 ] || fail "$output"
}

# best_error JSON: the path and message of jsonschema's best match for the
# spec JSON (what a schema-aware tool reports first), as "PATH: MESSAGE".
best_error() {
    "$PY" - "$SCHEMA" "$1" <<'PY'
import json, sys
import jsonschema
from jsonschema.exceptions import best_match
schema = json.load(open(sys.argv[1]))
v = jsonschema.validators.validator_for(schema)(schema)
e = best_match(v.iter_errors(json.loads(sys.argv[2])))
if e is None:
    sys.exit("the schema accepts " + sys.argv[2])
print("%s: %s" % ("/".join(map(str, e.absolute_path)) or "(root)", e.message))
PY
}

@test "schema errors for typical mistakes name the key at fault, not 'is not valid under any of the given schemas'" {
    local name path want json n=0 got
    # NAME  PATH-OF-THE-ERROR  TEXT-THE-MESSAGE-HOLDS  SPEC
    while IFS=$'\t' read -r name path want json; do
        got=$(best_error "$json") || fail "$name: $got"
        case $got in
        *"is not valid under any of the given schemas"*)
            fail "$name: generic error '$got' for $json" ;;
        "$path: "*"$want"*) ;;
        *) fail "$name: expected an error at $path mentioning $want, got '$got'" ;;
        esac
        n=$((n + 1))
    done <<'EOF_CASES'
copy-item-typo	stages/0/layers/0/copy/0	'sorce' was unexpected	{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"sorce": ["a"], "src": ["a"], "dest": "/"}]}]}]}
files-mode-number	stages/0/layers/0/files/0/mode	644 is not of type 'string'	{"version": 1, "stages": [{"from": "scratch", "layers": [{"files": [{"path": "/a", "content": "x", "mode": 644}]}]}]}
copy-and-run	stages/0/layers/0	'run'	{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["a"], "dest": "/"}], "run": "true"}]}]}
content-and-symlink	stages/0/layers/0/files/0	'symlink'	{"version": 1, "stages": [{"from": "scratch", "layers": [{"files": [{"path": "/a", "content": "x", "symlink": "b"}]}]}]}
network-bridge	stages/0/layers/0/network	'bridge' is not one of ['none', 'host']	{"version": 1, "stages": [{"from": "scratch", "layers": [{"run": "true", "network": "bridge"}]}]}
network-on-copy	stages/0/layers/0	'network'	{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["a"], "dest": "/"}], "network": "host"}]}]}
symlink-with-mode	stages/0/layers/0/files/0	'mode'	{"version": 1, "stages": [{"from": "scratch", "layers": [{"files": [{"path": "/a", "symlink": "b", "mode": "0644"}]}]}]}
run-number	stages/0/layers/0/run	5 is not of type 'string', 'array'	{"version": 1, "stages": [{"from": "scratch", "layers": [{"run": 5}]}]}
healthcheck-test-word	stages/0/config/healthcheck/test/0	'RUN'	{"version": 1, "stages": [{"from": "scratch", "config": {"healthcheck": {"test": ["RUN", "true"]}}}]}
EOF_CASES
    [ "$n" -ge 9 ] || fail "only $n cases were tried"
}

@test "a spec with \"\$schema\" validates and ocib builds it" {
    common_setup
    mkdir ctx
    # Relative to the spec's directory, as editors resolve it.
    local rel
    rel=$(realpath --relative-to=ctx "$SCHEMA")
    cat >ctx/ocib.json <<EOF_SPEC
{
  "\$schema": "$rel",
  "version": 1,
  "image": "localhost:5000/ocib/schema",
  "stages": [
    {"from": "scratch",
     "layers": [{"name": "motd", "files": [{"path": "/etc/motd", "content": "hi\\n", "mode": "0644"}]}]}
  ]
}
EOF_SPEC
    run validate ctx/ocib.json
    [ "$status" -eq 0 ] || fail "$output"
    build_ok --repo localhost:5000/ocib/schema -C ctx --output "oci:$T/out"
    [ "$(layout_digest "$T/out")" = "$DIGEST" ] || fail "the layout does not hold the printed $DIGEST"
    layer_listing "$T/out" 0 | norm_listing | grep -q "^etc/motd	-	0644	" ||
        fail "the layer lacks /etc/motd 0644: $(layer_listing "$T/out" 0)"
}

@test "the schema draws the line where ocib's parser does: edge values accepted and rejected alike" {
    # Each spec is judged by the schema and by `ocib build` (exit 2 = the
    # spec is wrong); both must give the expected verdict.
    common_setup
    need jq
    local want name json n=0 verdict
    mkdir ctx
    echo a >ctx/a
    echo b >ctx/b
    while IFS=$'\t' read -r want name json; do
        printf '%s\n' "$json" >ctx/ocib.json
        if validate ctx/ocib.json >"$T/$name.out" 2>&1; then verdict=accept; else verdict=reject; fi
        [ "$verdict" = "$want" ] || fail "$name: the schema should $want $json: $(cat "$T/$name.out")"
        run_ocib build -C ctx --output "oci:$T/out" --progress=quiet
        if [ "$status" -eq 2 ]; then verdict=reject; else verdict=accept; fi
        [ "$verdict" = "$want" ] || { show_run; fail "$name: ocib should $want $json"; }
        n=$((n + 1))
    done < <(edge_specs)
    [ "$n" -ge 29 ] || fail "only $n cases were tried"
}

# edge_specs: "VERDICT NAME SPEC" lines, tab-separated, for the test above.
edge_specs() {
    printf 'reject\ttoo-many-stages\t%s\n' \
        "$(jq -cn '{version: 1, stages: [range(65) | {from: "scratch"}]}')"
    cat <<'EOF_CASES'
accept	mode-5-digits	{"version": 1, "stages": [{"from": "scratch", "layers": [{"files": [{"path": "/a", "content": "", "mode": "07777"}]}]}]}
reject	mode-above-07777	{"version": 1, "stages": [{"from": "scratch", "layers": [{"files": [{"path": "/a", "content": "", "mode": "17777"}]}]}]}
accept	owner-ids-leading-zeros	{"version": 1, "stages": [{"from": "scratch", "layers": [{"files": [{"path": "/a", "content": "", "owner": "0001:02"}]}]}]}
accept	owner-largest-id	{"version": 1, "stages": [{"from": "scratch", "layers": [{"files": [{"path": "/a", "content": "", "owner": "4294967294"}]}]}]}
reject	owner-id-too-large	{"version": 1, "stages": [{"from": "scratch", "layers": [{"files": [{"path": "/a", "content": "", "owner": "4294967295"}]}]}]}
reject	owner-digit-then-letters	{"version": 1, "stages": [{"from": "scratch", "layers": [{"files": [{"path": "/a", "content": "", "owner": "1x"}]}]}]}
accept	user-group-with-colon	{"version": 1, "stages": [{"from": "scratch", "config": {"user": "app:a:b"}}]}
reject	user-negative	{"version": 1, "stages": [{"from": "scratch", "config": {"user": "-1"}}]}
accept	user-from-arg	{"version": 1, "args": {"UID": "1000"}, "stages": [{"from": "scratch", "config": {"user": "${UID}"}}]}
accept	duration-zero	{"version": 1, "stages": [{"from": "scratch", "config": {"healthcheck": {"test": ["NONE"], "interval": "0"}}}]}
reject	duration-decimal	{"version": 1, "stages": [{"from": "scratch", "config": {"healthcheck": {"test": ["NONE"], "interval": "1.5s"}}}]}
reject	healthcheck-test-word	{"version": 1, "stages": [{"from": "scratch", "config": {"healthcheck": {"test": ["RUN", "true"]}}}]}
accept	port-leading-zero	{"version": 1, "stages": [{"from": "scratch", "config": {"expose": ["080/udp"]}}]}
reject	port-zero	{"version": 1, "stages": [{"from": "scratch", "config": {"expose": ["0"]}}]}
reject	port-too-large	{"version": 1, "stages": [{"from": "scratch", "config": {"expose": ["65536/tcp"]}}]}
accept	platform-dash	{"version": 1, "stages": [{"from": "scratch", "platform": "linux/x86-64"}]}
reject	platform-unknown-pair	{"version": 1, "stages": [{"from": "scratch", "platform": "windows/sparc"}]}
accept	platform-build	{"version": 1, "stages": [{"from": "scratch", "platform": "build"}]}
accept	platform-arm64-v8	{"version": 1, "stages": [{"from": "scratch", "platform": "linux/arm64/v8"}]}
reject	platform-four-parts	{"version": 1, "stages": [{"from": "scratch", "platform": "linux/arm/v7/x"}]}
reject	stage-named-scratch	{"version": 1, "stages": [{"name": "scratch", "from": "scratch"}]}
reject	env-name-dash	{"version": 1, "stages": [{"from": "scratch", "env": {"A-B": "1"}}]}
reject	arg-predefined	{"version": 1, "args": {"TARGETARCH": "x"}, "stages": [{"from": "scratch"}]}
reject	src-dotdot-from-stage	{"version": 1, "stages": [{"name": "a", "from": "scratch"}, {"from": "scratch", "layers": [{"copy": [{"from": "a", "src": ["x/../y"], "dest": "/"}]}]}]}
reject	src-absolute-from-context	{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["/a"], "dest": "/"}]}]}]}
reject	two-sources-file-dest	{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["a", "b"], "dest": "/d"}]}]}]}
accept	two-sources-dir-dest	{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["a", "b"], "dest": "/d/"}]}]}]}
accept	two-sources-dot-dest	{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["a", "b"], "dest": "."}]}]}]}
accept	two-sources-dir-dot-dest	{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["a", "b"], "dest": "/d/."}]}]}]}
reject	two-sources-dotted-file-dest	{"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["a", "b"], "dest": "/d."}]}]}]}
reject	files-path-root	{"version": 1, "stages": [{"from": "scratch", "layers": [{"files": [{"path": "/./", "dir": true}]}]}]}
reject	base64-unpadded	{"version": 1, "stages": [{"from": "scratch", "layers": [{"files": [{"path": "/a", "content_base64": "aGk"}]}]}]}
reject	cache-mount-root	{"version": 1, "stages": [{"from": "scratch", "layers": [{"run": "true", "cache_mounts": ["/"]}]}]}
accept	lint-size-bytes	{"version": 1, "lint": {"max_size": 1000000}, "stages": [{"from": "scratch"}]}
accept	lint-size-mib	{"version": 1, "lint": {"max_size": "300MiB", "ignore": []}, "stages": [{"from": "scratch"}]}
reject	lint-size-unit	{"version": 1, "lint": {"max_size": "5 parsecs"}, "stages": [{"from": "scratch"}]}
reject	lint-size-negative	{"version": 1, "lint": {"max_size": -1}, "stages": [{"from": "scratch"}]}
reject	lint-ignore-not-id	{"version": 1, "lint": {"ignore": ["Named User"]}, "stages": [{"from": "scratch"}]}
reject	secret-target-dir	{"version": 1, "stages": [{"from": "scratch", "layers": [{"run": "true", "secrets": [{"id": "x", "target": "/run/"}]}]}]}
EOF_CASES
}
