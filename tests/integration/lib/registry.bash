# Registry harness for ocib's integration tests (bats).
#
# Starts Debian's `docker-registry` (CNCF distribution 2.8) and, in front of
# it, tests/integration/lib/regproxy.py (token server, fault injection,
# request counting). Everything listens on 127.0.0.1 only and has a bounded
# lifetime ($REGISTRY_MAX_SECONDS, default 1800 s), so nothing outlives a
# crashed test run for long. Meant for setup_file / teardown_file:
#
#   load lib/registry
#   setup_file()    { registry_start REG; proxy_start PX "$REG_ADDR" --token-auth u:p; }
#   teardown_file() { proxy_stop PX; registry_stop REG; }
#
# registry_start NAME [--htpasswd USER:PASS] [--tls CERT KEY] [--client-ca CA] [--listen ADDR]
#     exports NAME_PORT NAME_ADDR (127.0.0.1:PORT) NAME_LOG NAME_PID NAME_DIR
#     (and NAME_USER / NAME_PASS with --htpasswd). --tls serves HTTPS with
#     that certificate and key (PEM files); --client-ca also requires a
#     client certificate signed by CA. --listen ADDR listens on that
#     address instead of 127.0.0.1 (a bridge's gateway, which containers
#     reach; NAME_ADDR follows). The log is distribution's
#     JSON log: one "response completed" line per request.
# registry_stop NAME
# registry_count NAME METHOD_REGEX URI_REGEX
#     prints how many requests of the registry log match: METHOD_REGEX must
#     match the whole method, URI_REGEX is searched in the URI (path and
#     query) like grep -E; anchor it with ^ and $ yourself. E.g. blob uploads:
#     registry_count REG 'POST|PATCH|PUT' '^/v2/.*/blobs/uploads/'
# registry_check_image NAME REPO REF
#     fails unless the manifest REPO:REF (an index: every child manifest too)
#     and every blob it references are present in the registry; prints the
#     manifest's digest. (A push must never leave a dangling manifest.)
# registry_wait_log NAME
#     waits until the registry log stops growing (registry_count does it).
#
# proxy_start NAME UPSTREAM_ADDR [regproxy.py options...]
#     (--listen 127.0.0.2 makes it another host: NAME_ADDR follows)
#     exports NAME_PORT NAME_ADDR NAME_LOG (one line per request) NAME_PID
#     NAME_DIR NAME_URL (http://ADDR).
# proxy_stop NAME
# proxy_config NAME JSON      POST /__proxy/config; prints the new config
# proxy_stats NAME [JQ]       GET /__proxy/stats, optionally through jq
# proxy_count NAME KIND       requests of that kind seen so far (0 if none)
# proxy_fault NAME FAULT_JSON adds one fault ({"type":..,"kind":..,...})
#
# make_oci_layout DIR TAG SIZE...   writes an OCI image layout with one
#     random (incompressible) gzip layer per SIZE (bytes, before gzip), a
#     config and a manifest tagged TAG; prints the manifest digest.

REGISTRY_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REGISTRY_PY=/usr/bin/python3
REGISTRY_MAX_SECONDS=${REGISTRY_MAX_SECONDS:-1800}

_reg_fail() {
    printf 'registry harness: %s\n' "$*" >&2
    return 1
}

_reg_tmpdir() {
    local base=${BATS_FILE_TMPDIR:-${BATS_RUN_TMPDIR:-${TMPDIR:-/tmp}}}
    mktemp -d "$base/$1.XXXXXX"
}

_reg_free_port() {
    "$REGISTRY_PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# _reg_var NAME SUFFIX: the value of ${NAME}_SUFFIX.
_reg_var() {
    local v="${1}_${2}"
    printf '%s' "${!v-}"
}

# _reg_wait_http URL SECONDS: until URL answers anything at all (any status).
_reg_wait_http() {
    local url=$1 secs=$2 i code
    for ((i = 0; i < secs * 10; i++)); do
        code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$url" 2>/dev/null) || code=000
        [ "$code" != 000 ] && return 0
        sleep 0.1
    done
    return 1
}

# _reg_kill PID: TERM, then KILL after 5 s; only that process.
_reg_kill() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

registry_start() {
    local name=$1
    shift || true
    [ -n "$name" ] || _reg_fail "usage: registry_start NAME [--htpasswd USER:PASS]" || return 1
    local creds="" tls_cert="" tls_key="" client_ca="" listen=127.0.0.1
    while [ $# -gt 0 ]; do
        case $1 in
        --listen) listen=$2; shift 2 ;;
        --htpasswd) creds=$2; shift 2 ;;
        --tls) tls_cert=$2; tls_key=$3; shift 3 ;;
        --client-ca) client_ca=$2; shift 2 ;;
        *) _reg_fail "registry_start: unknown option $1"; return 1 ;;
        esac
    done
    command -v docker-registry >/dev/null || _reg_fail "docker-registry is not installed (run tests/install-deps)" || return 1
    local dir
    dir=$(_reg_tmpdir "registry-$name") || return 1
    mkdir -p "$dir/data"
    local auth=""
    if [ -n "$creds" ]; then
        command -v htpasswd >/dev/null || _reg_fail "htpasswd is not installed (apache2-utils; run tests/install-deps)" || return 1
        htpasswd -Bbn "${creds%%:*}" "${creds#*:}" >"$dir/htpasswd" 2>/dev/null ||
            _reg_fail "htpasswd failed" || return 1
        auth="auth:
  htpasswd:
    realm: ocib-test-$name
    path: $dir/htpasswd"
        export "${name}_USER=${creds%%:*}" "${name}_PASS=${creds#*:}"
    fi
    local tls=""
    if [ -n "$tls_cert" ]; then
        tls="  tls:
    certificate: $tls_cert
    key: $tls_key"
        [ -n "$client_ca" ] && tls="$tls
    clientcas:
      - $client_ca"
    fi
    local attempt port pid log=$dir/registry.log
    for attempt in 1 2 3; do
        port=$(_reg_free_port) || return 1
        cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: json
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $listen:$port
  secret: ocib-test-secret-$name
$tls
$auth
EOF
        : >"$log"
        # fd 3 closed: bats waits for it; stdin closed; bounded by timeout.
        # (A TLS port answers plain HTTP with 400, which is an answer.)
        env -u REGISTRY_HTTP_ADDR timeout -k 5 "$REGISTRY_MAX_SECONDS" \
            docker-registry serve "$dir/config.yml" >"$log" 2>&1 </dev/null 3>&- &
        pid=$!
        if _reg_wait_http "http://$listen:$port/v2/" 10 && kill -0 "$pid" 2>/dev/null; then
            export "${name}_PORT=$port" "${name}_ADDR=$listen:$port" "${name}_LOG=$log" \
                "${name}_PID=$pid" "${name}_DIR=$dir"
            return 0
        fi
        _reg_kill "$pid"
    done
    cat "$log" >&2
    _reg_fail "docker-registry $name did not answer on /v2/ within 10 s"
}

registry_stop() {
    local name=$1
    _reg_kill "$(_reg_var "$name" PID)"
    unset "${name}_PID"
}

# registry_wait_log NAME: waits (max 3 s) until the log stopped growing for 150 ms.
registry_wait_log() {
    local log
    log=$(_reg_var "$1" LOG)
    [ -f "$log" ] || return 0
    local prev=-1 cur i
    for ((i = 0; i < 20; i++)); do
        cur=$(stat -c %s "$log")
        [ "$cur" = "$prev" ] && return 0
        prev=$cur
        sleep 0.15
    done
}

registry_count() {
    local name=$1 method=$2 uri=$3 log
    log=$(_reg_var "$name" LOG)
    [ -f "$log" ] || _reg_fail "registry_count: no log for $name" || return 1
    registry_wait_log "$name"
    "$REGISTRY_PY" - "$log" "$method" "$uri" <<'EOF'
import json, re, sys
log, method, uri = sys.argv[1:4]
mre, ure = re.compile("(?:%s)\\Z" % method), re.compile(uri)
n = 0
with open(log, errors="replace") as f:
    for line in f:
        if not line.startswith("{"):
            continue
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("msg") != "response completed":
            continue
        if mre.match(e.get("http.request.method", "")) and ure.search(e.get("http.request.uri", "")):
            n += 1
print(n)
EOF
}

registry_check_image() {
    local name=$1 repo=$2 ref=$3
    local addr user creds=""
    addr=$(_reg_var "$name" ADDR)
    user=$(_reg_var "$name" USER)
    [ -n "$user" ] && creds="$user:$(_reg_var "$name" PASS)"
    "$REGISTRY_PY" - "http://$addr" "$repo" "$ref" "$creds" <<'EOF'
import base64, hashlib, json, sys, urllib.error, urllib.request
base, repo, ref, creds = sys.argv[1:5]
hdrs = {"Accept": ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json"])}
if creds:
    hdrs["Authorization"] = "Basic " + base64.b64encode(creds.encode()).decode()

def req(method, path):
    r = urllib.request.Request(base + path, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, b""

def check_manifest(ref):
    st, body = req("GET", "/v2/%s/manifests/%s" % (repo, ref))
    if st != 200:
        sys.exit("registry_check_image: manifest %s:%s: HTTP %d" % (repo, ref, st))
    d = "sha256:" + hashlib.sha256(body).hexdigest()
    if ref.startswith("sha256:") and ref != d:
        sys.exit("registry_check_image: manifest %s has digest %s" % (ref, d))
    m = json.loads(body)
    for child in m.get("manifests", []):
        check_manifest(child["digest"])
    for b in ([m["config"]] if "config" in m else []) + m.get("layers", []):
        st, _ = req("HEAD", "/v2/%s/blobs/%s" % (repo, b["digest"]))
        if st != 200:
            sys.exit("registry_check_image: %s:%s references %s, missing (HTTP %d)"
                     % (repo, ref, b["digest"], st))
    return d

print(check_manifest(ref))
EOF
}

proxy_start() {
    local name=$1 upstream=$2
    shift 2 || _reg_fail "usage: proxy_start NAME UPSTREAM_ADDR [options]" || return 1
    local dir pid host=127.0.0.1 a prev=
    for a in "$@"; do
        [ "$prev" = --listen ] && host=$a
        prev=$a
    done
    dir=$(_reg_tmpdir "proxy-$name") || return 1
    local max=$REGISTRY_MAX_SECONDS
    timeout -k 5 "$((max + 10))" "$REGISTRY_PY" "$REGISTRY_LIB_DIR/regproxy.py" \
        --upstream "$upstream" --port-file "$dir/port" --log "$dir/proxy.log" \
        --max-seconds "$max" "$@" >"$dir/stderr" 2>&1 </dev/null 3>&- &
    pid=$!
    local i
    for ((i = 0; i < 100; i++)); do
        [ -s "$dir/port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ ! -s "$dir/port" ]; then
        cat "$dir/stderr" >&2
        _reg_kill "$pid"
        _reg_fail "regproxy $name did not start"
        return 1
    fi
    local port
    port=$(cat "$dir/port")
    _reg_wait_http "http://$host:$port/__proxy/health" 10 ||
        { _reg_kill "$pid"; _reg_fail "regproxy $name does not answer"; return 1; }
    export "${name}_PORT=$port" "${name}_ADDR=$host:$port" "${name}_URL=http://$host:$port" \
        "${name}_LOG=$dir/proxy.log" "${name}_PID=$pid" "${name}_DIR=$dir"
}

proxy_stop() {
    local name=$1
    _reg_kill "$(_reg_var "$name" PID)"
    unset "${name}_PID"
}

proxy_config() {
    local name=$1 json=$2
    curl -sS -f -m 10 -X POST -H 'Content-Type: application/json' --data-binary "$json" \
        "http://$(_reg_var "$name" ADDR)/__proxy/config"
}

proxy_fault() {
    proxy_config "$1" "{\"add_faults\": [$2]}" >/dev/null
}

proxy_stats() {
    local name=$1 filter=${2:-.}
    curl -sS -f -m 10 "http://$(_reg_var "$name" ADDR)/__proxy/stats" | jq -r "$filter"
}

proxy_count() {
    proxy_stats "$1" ".counts[\"$2\"] // 0"
}

make_oci_layout() {
    local dir=$1 tag=$2
    shift 2
    "$REGISTRY_PY" - "$dir" "$tag" "$@" <<'EOF'
import gzip, hashlib, io, json, os, sys, tarfile, time
d, tag, sizes = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3:]]
os.makedirs(os.path.join(d, "blobs", "sha256"), exist_ok=True)

def put(data):
    h = hashlib.sha256(data).hexdigest()
    with open(os.path.join(d, "blobs", "sha256", h), "wb") as f:
        f.write(data)
    return "sha256:" + h

layers, diffs = [], []
for i, size in enumerate(sizes):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        ti = tarfile.TarInfo("layer%d/data.bin" % i)
        ti.size, ti.mtime, ti.mode = size, 0, 0o644
        t.addfile(ti, io.BytesIO(os.urandom(size)))
    tarb = raw.getvalue()
    diffs.append("sha256:" + hashlib.sha256(tarb).hexdigest())
    gz = gzip.compress(tarb, compresslevel=1, mtime=0)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                   "digest": put(gz), "size": len(gz)})
config = json.dumps({
    "created": "2020-01-01T00:00:00Z", "architecture": "amd64", "os": "linux",
    "config": {"Env": ["NONCE=%s" % os.urandom(8).hex()]},
    "rootfs": {"type": "layers", "diff_ids": diffs}, "history": []}).encode()
manifest = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": put(config), "size": len(config)},
    "layers": layers}).encode()
md = put(manifest)
index_path = os.path.join(d, "index.json")
index = {"schemaVersion": 2, "manifests": []}
if os.path.exists(index_path):
    index = json.load(open(index_path))
index["manifests"] = [m for m in index["manifests"]
                      if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
index["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "digest": md, "size": len(manifest),
                           "annotations": {"org.opencontainers.image.ref.name": tag}})
json.dump(index, open(index_path, "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(d, "oci-layout"), "w"))
print(md)
EOF
}
