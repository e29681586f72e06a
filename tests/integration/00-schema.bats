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
    cat >full.json <<'JSON'
{
  "version": 1,
  "image": "registry.example.com/acme/api:1.2",
  "stages": [
    {
      "name": "build",
      "from": "registry.example.com/base/node:22-slim",
      "workdir": "/app",
      "env": {"CI": "1"},
      "user": "node",
      "platform": "linux/arm64/v8",
      "layers": [
        {"name": "lockfile", "copy": [{"src": ["package.json", "package-lock.json"], "dest": "/app/"}]},
        {"name": "deps", "run": ["npm", "ci"], "network": "host", "cache_mounts": ["/root/.npm"],
         "env": {"NPM_CONFIG_USERCONFIG": "/root/.npmrc"}, "workdir": "/app", "user": "0:0",
         "secrets": [{"id": "npmrc", "target": "/root/.npmrc"}]},
        {"name": "source", "copy": [{"src": ["."], "dest": "/app/", "exclude": ["node_modules", "dist"],
                                     "owner": "1000:1000", "mode": "0640"}]},
        {"run": "npm run build", "network": "none"},
        {"files": [{"path": "/etc/motd", "content": "hi\n", "mode": "0644", "owner": "0:0"},
                   {"path": "/etc/blob", "content_base64": "aGkK"},
                   {"path": "/usr/bin/node-app", "symlink": "/app/dist/server.js"},
                   {"path": "/var/cache/app", "dir": true, "mode": "0750"}]}
      ]
    },
    {
      "from": "build",
      "layers": [
        {"copy": [{"from": "build", "src": ["/app/dist"], "dest": "/app/dist/"}]}
      ],
      "config": {
        "user": "node", "workdir": "/app", "env": {"NODE_ENV": "production"},
        "entrypoint": ["node"], "cmd": ["dist/server.js"], "expose": ["3000/tcp", "53/udp", "80"],
        "volumes": ["/data"], "labels": {"org.opencontainers.image.title": "api"},
        "stop_signal": "SIGQUIT",
        "healthcheck": {"test": ["CMD", "node", "dist/healthcheck.js"], "interval": "30s",
                        "timeout": "3s", "start_period": "1m30s", "retries": 3},
        "annotations": {"org.opencontainers.image.vendor": "acme"}
      }
    }
  ]
}
JSON
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
