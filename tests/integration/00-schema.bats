#!/usr/bin/env bats
# specs/ocib.schema.json describes the spec format: every bundled example
# validates against it, and specs that ocib must reject do not.

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
