# Shared helpers for ocib's integration tests (bats).
#
# Every test runs in its own $BATS_TEST_TMPDIR with its own cache
# ($OCIB_CACHE_DIR), and third-party tools -- skopeo, umoci, oci-image-tool,
# podman, python3-jsonschema, GNU tar, zstd -- judge what ocib produced.
# A missing tool is a failure, never a skip: run tests/install-deps.
#
# Conventions used by the helpers:
#   run_ocib ARGS...   runs "$OCIB" ARGS with stdin closed and a time limit,
#                      and sets $status, $out (stdout) and $err (stderr).
#   build_ok ARGS...   `ocib build ARGS` must succeed and print exactly one
#                      line, a digest reference; sets $REF, $REPO and $DIGEST.

bats_require_minimum_version 1.5.0

REPO_ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
EXAMPLES=$REPO_ROOT/specs/examples
SCHEMA=$REPO_ROOT/specs/ocib.schema.json
OCIB=${OCIB:-$REPO_ROOT/ocib}
# Debian's python3 (with python3-jsonschema), not whatever python is first on PATH.
PY=/usr/bin/python3
# Seconds a single ocib invocation may take before the test fails.
OCIB_TEST_TIMEOUT=${OCIB_TEST_TIMEOUT:-300}

# The media types the contract names.
MT_MANIFEST=application/vnd.oci.image.manifest.v1+json
MT_CONFIG=application/vnd.oci.image.config.v1+json
MT_GZIP=application/vnd.oci.image.layer.v1.tar+gzip
MT_ZSTD=application/vnd.oci.image.layer.v1.tar+zstd

fail() {
    printf 'FAIL: %s\n' "$*" >&2
    return 1
}

# need TOOL...: every tool must be installed (tests never skip silently).
need() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 ||
            fail "required tool '$t' is not installed (run tests/install-deps)" || return 1
    done
}

# Per-test setup: an isolated cache, a scratch working directory, no
# SOURCE_DATE_EPOCH leaking in from the caller's environment.
common_setup() {
    [ -x "$OCIB" ] || fail "ocib binary '$OCIB' does not exist or is not executable (run make)" || return 1
    export OCIB_CACHE_DIR=$BATS_TEST_TMPDIR/cache
    export TMPDIR=$BATS_TEST_TMPDIR/tmp
    mkdir -p "$TMPDIR" "$BATS_TEST_TMPDIR/.run"
    unset SOURCE_DATE_EPOCH
    T=$BATS_TEST_TMPDIR
    cd "$T" || return 1
}

# run_ocib ARGS...: runs ocib and records $status, $out, $err. Never fails
# by itself: the caller asserts.
run_ocib() {
    local o=$BATS_TEST_TMPDIR/.run/stdout e=$BATS_TEST_TMPDIR/.run/stderr
    status=0
    timeout -k 10 "$OCIB_TEST_TIMEOUT" "$OCIB" "$@" >"$o" 2>"$e" </dev/null || status=$?
    out=$(cat "$o")
    err=$(cat "$e")
    if [ "$status" -eq 124 ]; then
        echo "ocib $* timed out after ${OCIB_TEST_TIMEOUT}s" >&2
    fi
    return 0
}

# show_run: what the last ocib run printed, for failure messages.
show_run() {
    printf -- '--- ocib exit status: %s\n--- stdout:\n%s\n--- stderr:\n%s\n---\n' "$status" "$out" "$err" >&2
}

# assert_digest_stdout REPO: stdout is exactly one line "REPO@sha256:<64 hex>\n".
# Sets $REF, $REPO, $DIGEST.
assert_digest_stdout() {
    local want_repo=$1 o=$BATS_TEST_TMPDIR/.run/stdout
    local nl
    nl=$(wc -l <"$o")
    [ "$nl" -eq 1 ] && [ "$(tail -c1 "$o" | od -An -c | tr -d ' ')" = '\n' ] ||
        { show_run; fail "stdout must be exactly one newline-terminated line, got $nl line(s)"; return 1; }
    [[ $out =~ ^([^@[:space:]]+)@(sha256:[0-9a-f]{64})$ ]] ||
        { show_run; fail "stdout is not a digest reference 'repo@sha256:<64 hex>': '$out'"; return 1; }
    REF=$out
    REPO=${BASH_REMATCH[1]}
    DIGEST=${BASH_REMATCH[2]}
    if [ -n "$want_repo" ] && [ "$REPO" != "$want_repo" ]; then
        show_run
        fail "digest reference names repository '$REPO', expected '$want_repo'"
        return 1
    fi
}

# build_ok [--repo REPO] ARGS...: `ocib build ARGS` succeeds and prints one
# digest reference (of REPO when given).
build_ok() {
    local want_repo=
    if [ "$1" = --repo ]; then
        want_repo=$2
        shift 2
    fi
    run_ocib build "$@"
    if [ "$status" -ne 0 ]; then
        show_run
        fail "ocib build $* exited $status"
        return 1
    fi
    assert_digest_stdout "$want_repo"
}

# copy_example NAME [DEST]: copies specs/examples/NAME (outside any git
# checkout, so the default tag is deterministic) and prints the copy's path.
copy_example() {
    local name=$1 dest=${2:-$BATS_TEST_TMPDIR/ctx-$1}
    [ -d "$EXAMPLES/$name" ] || fail "no example '$name'" || return 1
    mkdir -p "$(dirname "$dest")"
    cp -a "$EXAMPLES/$name" "$dest"
    printf '%s\n' "$dest"
}

# example_repo NAME: the "image" of an example without its tag.
example_repo() {
    local img
    img=$(jq -r '.image' "$EXAMPLES/$1/ocib.json")
    repo_of "$img"
}

# repo_of REF: strips a :tag (not a :port) and an @digest.
repo_of() {
    local r=${1%%@*}
    local last=${r##*/}
    if [[ $last == *:* ]]; then
        r=${r%:*}
    fi
    printf '%s\n' "$r"
}

# tag_of REF: the tag of REF, or nothing.
tag_of() {
    local r=${1%%@*}
    local last=${r##*/}
    if [[ $last == *:* ]]; then
        printf '%s\n' "${last##*:}"
    fi
}

# ---------------------------------------------------------------- OCI layout

# blob_path DIR DIGEST: the blob file, which must exist and hash to DIGEST.
blob_path() {
    local dir=$1 d=$2
    [[ $d =~ ^sha256:[0-9a-f]{64}$ ]] || fail "not a sha256 digest: '$d'" || return 1
    local f=$dir/blobs/sha256/${d#sha256:}
    [ -f "$f" ] || fail "blob $d missing from $dir" || return 1
    printf '%s\n' "$f"
}

# layout_digest DIR [REFNAME]: the manifest digest index.json lists for
# REFNAME (org.opencontainers.image.ref.name), or its only manifest.
layout_digest() {
    local dir=$1 name=${2:-} d n
    [ -f "$dir/index.json" ] || fail "$dir/index.json missing" || return 1
    if [ -n "$name" ]; then
        d=$(jq -r --arg n "$name" \
            '[.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $n) | .digest] | unique | .[]' \
            "$dir/index.json")
        n=$(printf '%s' "$d" | grep -c . || true)
        [ "$n" -eq 1 ] || fail "index.json of $dir has $n manifests named '$name': $(cat "$dir/index.json")" || return 1
    else
        d=$(jq -r '[.manifests[].digest] | unique | .[]' "$dir/index.json")
        n=$(printf '%s' "$d" | grep -c . || true)
        [ "$n" -eq 1 ] || fail "index.json of $dir lists $n distinct manifests, expected 1" || return 1
    fi
    printf '%s\n' "$d"
}

# layout_manifest DIR [REFNAME]: path of the manifest blob.
layout_manifest() {
    local d
    d=$(layout_digest "$@") || return 1
    blob_path "$1" "$d"
}

# layout_config DIR [REFNAME]: path of the config blob.
layout_config() {
    local m
    m=$(layout_manifest "$@") || return 1
    blob_path "$1" "$(jq -r .config.digest "$m")"
}

# assert_layout_sound DIR: the structural rules of an OCI image layout, and
# every blob's name is the sha256 of its content and every size matches.
assert_layout_sound() {
    local dir=$1 f m
    [ -d "$dir" ] || fail "output layout $dir does not exist" || return 1
    jq -e '.imageLayoutVersion == "1.0.0"' "$dir/oci-layout" >/dev/null ||
        fail "$dir/oci-layout is not {\"imageLayoutVersion\": \"1.0.0\"}" || return 1
    jq -e '.schemaVersion == 2 and (.manifests | length) >= 1' "$dir/index.json" >/dev/null ||
        fail "$dir/index.json is not an image index with manifests" || return 1
    jq -e --arg mt "$MT_MANIFEST" 'all(.manifests[]; .mediaType == $mt)' "$dir/index.json" >/dev/null ||
        fail "index.json entries are not $MT_MANIFEST" || return 1
    for f in "$dir"/blobs/sha256/*; do
        [ "sha256:$(sha256sum "$f" | cut -d' ' -f1)" = "sha256:$(basename "$f")" ] ||
            fail "blob $f does not hash to its name" || return 1
    done
    while read -r d size; do
        f=$(blob_path "$dir" "$d") || return 1
        [ "$(stat -c %s "$f")" = "$size" ] || fail "descriptor size $size != blob size of $d" || return 1
    done < <(jq -r '.manifests[] | "\(.digest) \(.size)"' "$dir/index.json")
    for m in $(jq -r '.manifests[].digest' "$dir/index.json" | sort -u); do
        m=$(blob_path "$dir" "$m") || return 1
        jq -e --arg mt "$MT_MANIFEST" --arg ct "$MT_CONFIG" \
            '.schemaVersion == 2 and .mediaType == $mt and .config.mediaType == $ct' "$m" >/dev/null ||
            fail "manifest $m lacks schemaVersion 2 / mediaType / config media type: $(cat "$m")" || return 1
        while read -r d size; do
            f=$(blob_path "$dir" "$d") || return 1
            [ "$(stat -c %s "$f")" = "$size" ] || fail "descriptor size $size != blob size of $d" || return 1
        done < <(jq -r '.config, .layers[] | "\(.digest) \(.size)"' "$m")
    done
}

# oci_validate DIR: oci-image-tool (1.0.0-rc1) validates the layout; it
# autodetects a layout directory under --type image and cannot read zstd.
oci_validate() {
    need oci-image-tool || return 1
    local o
    o=$(oci-image-tool validate --type image "$1" 2>&1) ||
        fail "oci-image-tool validate --type image $1 rejected the layout: $o" || return 1
}

# host_arch: the GOARCH name of this machine.
host_arch() {
    case $(uname -m) in
    x86_64) echo amd64 ;;
    aarch64) echo arm64 ;;
    armv7l) echo arm ;;
    i?86) echo 386 ;;
    ppc64le) echo ppc64le ;;
    s390x) echo s390x ;;
    riscv64) echo riscv64 ;;
    *) uname -m ;;
    esac
}

# rfc3339 EPOCH: the UTC timestamp an image records for EPOCH.
rfc3339() {
    date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ
}

# --------------------------------------------------------------- layer tars

# decompress BLOB MEDIATYPE: writes the layer's tar stream to stdout.
decompress() {
    case $2 in
    *+gzip) gzip -dc "$1" ;;
    *+zstd) zstd -dcq "$1" ;;
    *.tar | *.tar.v1) cat "$1" ;;
    *) fail "unknown layer media type '$2'" ;;
    esac
}

# tar_listing: reads a tar stream on stdin and prints one line per entry,
#   path<TAB>type<TAB>mode<TAB>uid:gid<TAB>mtime<TAB>linkname<TAB>uname:gname<TAB>pax-keys
# path as stored (no normalisation), type one of - d l h c b p, mode octal.
tar_listing() {
    "$PY" -c '
import sys, tarfile
types = {tarfile.REGTYPE: "-", tarfile.AREGTYPE: "-", tarfile.DIRTYPE: "d",
         tarfile.SYMTYPE: "l", tarfile.LNKTYPE: "h", tarfile.CHRTYPE: "c",
         tarfile.BLKTYPE: "b", tarfile.FIFOTYPE: "p"}
with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as t:
    for m in t:
        print("\t".join([m.name, types.get(m.type, "?"), "%04o" % m.mode, "%d:%d" % (m.uid, m.gid),
                         str(int(m.mtime)), m.linkname, "%s:%s" % (m.uname, m.gname),
                         ",".join(sorted(m.pax_headers))]))
'
}

# layer_listing DIR DESCRIPTOR_INDEX [REFNAME]: tar_listing of layer N.
layer_listing() {
    local dir=$1 i=$2 ref=${3:-} m d mt f
    m=$(layout_manifest "$dir" $ref) || return 1
    d=$(jq -r ".layers[$i].digest" "$m")
    mt=$(jq -r ".layers[$i].mediaType" "$m")
    f=$(blob_path "$dir" "$d") || return 1
    decompress "$f" "$mt" | tar_listing
}

# norm_listing: filters a tar_listing, normalising paths (no leading ./,
# no trailing /, no entry for the root itself).
norm_listing() {
    awk -F'\t' 'BEGIN { OFS = "\t" } { sub(/^\.\//, "", $1); sub(/\/$/, "", $1); if ($1 != "" && $1 != ".") print }'
}

# assert_layer_canonical DIR N EPOCH [REFNAME]: layer N is written the
# deterministic way PRODUCT.md specifies.
assert_layer_canonical() {
    local dir=$1 i=$2 epoch=$3 ref=${4:-} listing
    listing=$(layer_listing "$dir" "$i" $ref) || return 1
    [ -n "$listing" ] || fail "layer $i of $dir is empty" || return 1
    printf '%s\n' "$listing" | "$PY" -c '
import sys
epoch = int(sys.argv[1])
rows = [l.rstrip("\n").split("\t") for l in sys.stdin if l.strip()]
problems = []
raw = [r[0] for r in rows]
norm = []
for r in rows:
    p = r[0]
    while p.startswith("./"):
        p = p[2:]
    norm.append(p.rstrip("/"))
enc = lambda xs: [x.encode() for x in xs]
if enc(raw) != sorted(enc(raw)) and enc(norm) != sorted(enc(norm)):
    problems.append("entries are not sorted byte-wise by path: %r" % raw)
if len(set(norm)) != len(norm):
    problems.append("duplicate entries: %r" % norm)
types = {}
for r, p in zip(rows, norm):
    types[p] = r[1]
allowed_pax = {"path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime"}
for r, p in zip(rows, norm):
    name, typ, mode, owner, mtime, link, names, pax = r
    if p.startswith("/") or p == ".." or p.startswith("../") or "/../" in p:
        problems.append("%s: path not relative to the root or contains .." % name)
    if int(mtime) != epoch:
        problems.append("%s: mtime %s, expected SOURCE_DATE_EPOCH %d" % (name, mtime, epoch))
    if names != ":":
        problems.append("%s: has user/group names %r (numeric owners only)" % (name, names))
    extra = set(pax.split(",")) - allowed_pax - {""}
    if extra:
        problems.append("%s: host-dependent PAX records %s" % (name, sorted(extra)))
    if typ not in "-dlh":
        problems.append("%s: unexpected entry type %s" % (name, typ))
    parts = p.split("/")
    for k in range(1, len(parts)):
        parent = "/".join(parts[:k])
        if types.get(parent) != "d":
            problems.append("%s: parent directory %s/ is not in the layer" % (name, parent))
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
' "$epoch" || { fail "layer $i of $dir is not canonical (above)"; return 1; }
}

# rootfs_listing DIR: "path type mode[ -> target]" for every entry under DIR.
rootfs_listing() {
    (cd "$1" && find . -mindepth 1 -printf '%P %y %m\n') | while read -r p y m; do
        if [ "$y" = l ]; then
            printf '%s l -> %s\n' "$p" "$(readlink "$1/$p")"
        else
            printf '%s %s %s\n' "$p" "$y" "$m"
        fi
    done | LC_ALL=C sort
}

# umoci_unpack LAYOUT TAG BUNDLE: unpacks with umoci (rootless).
umoci_unpack() {
    need umoci || return 1
    local o
    o=$(umoci unpack --rootless --image "$1:$2" "$3" 2>&1) ||
        fail "umoci unpack --rootless --image $1:$2 failed: $o" || return 1
}

# assert_same_file A B: identical contents.
assert_same_file() {
    cmp -s "$1" "$2" || fail "contents differ: $1 vs $2" || return 1
}

# assert_eq WHAT GOT WANT
assert_eq() {
    [ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'" || return 1
}

# assert_contains WHAT HAYSTACK NEEDLE (fixed string)
assert_contains() {
    [[ $2 == *"$3"* ]] || fail "$1: '$3' not found in: $2" || return 1
}

# --------------------------------------------------------------- errors

# assert_failed STATUS PATTERN...: the last ocib run exited STATUS, printed
# nothing on stdout, and its first "ocib: " line on stderr matches every
# extended regex PATTERN. For status 2 (caught before building) stderr must
# start with "ocib: ".
assert_failed() {
    local want=$1 p line
    shift
    if [ "$status" -ne "$want" ]; then
        show_run
        fail "expected exit status $want, got $status"
        return 1
    fi
    [ -z "$out" ] || { show_run; fail "stdout must stay empty on failure"; return 1; }
    if [ "$want" -eq 2 ]; then
        [[ $err == "ocib: "* ]] || { show_run; fail "stderr must start with 'ocib: '"; return 1; }
    fi
    line=$(printf '%s\n' "$err" | grep -m1 '^ocib: ' || true)
    [ -n "$line" ] || { show_run; fail "no 'ocib: <what>: <why>' line on stderr"; return 1; }
    [[ $line =~ ^ocib:\ .+:\ .+ ]] || { show_run; fail "error line is not 'ocib: <what>: <why>': $line"; return 1; }
    for p in "$@"; do
        printf '%s\n' "$line" | grep -Eq -- "$p" ||
            { show_run; fail "error line does not match /$p/: $line"; return 1; }
    done
}

# assert_no_output PATH...: nothing was created at PATH, and the directory
# holding each PATH contains nothing new (no half-written temporaries).
# Call snapshot_dir DIR first to record DIR's entries.
snapshot_dir() {
    ls -A "$1" >"$BATS_TEST_TMPDIR/.run/snapshot.$(printf '%s' "$1" | sha256sum | cut -c1-16)"
}
assert_no_output() {
    local p parent snap
    for p in "$@"; do
        [ ! -e "$p" ] && [ ! -L "$p" ] || fail "a failed build left '$p' behind" || return 1
        parent=$(dirname "$p")
        snap=$BATS_TEST_TMPDIR/.run/snapshot.$(printf '%s' "$parent" | sha256sum | cut -c1-16)
        if [ -f "$snap" ]; then
            diff <(cat "$snap") <(ls -A "$parent") >/dev/null ||
                fail "a failed build left new entries in $parent: $(diff <(cat "$snap") <(ls -A "$parent") | grep '^>' | tr '\n' ' ')" ||
                return 1
        fi
    done
}

# ---------------------------------------------------------------- podman

# podman_cmd ARGS...: podman with storage and state confined to this test
# file's temp dir, and the only settings that work on these machines.
podman_cmd() {
    local base=${PODMAN_BASE:-$BATS_FILE_TMPDIR/podman}
    mkdir -p "$base/root" "$base/runroot" "$base/tmp"
    podman --root "$base/root" --runroot "$base/runroot" --tmpdir "$base/tmp" \
        --storage-driver vfs --cgroup-manager cgroupfs --runtime runc \
        --events-backend file "$@"
}

# podman_run IMAGE [ARGS...]: runs a container from IMAGE; prints its stdout.
podman_run() {
    podman_cmd run --rm --pull never --network none \
        --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 "$@" </dev/null
}

# layout_entries DIR [REFNAME]: every entry of every layer of the image,
#   layer<TAB>path<TAB>type<TAB>mode<TAB>uid:gid<TAB>mtime<TAB>linkname
# with normalised paths, in layer order.
layout_entries() {
    local dir=$1 ref=${2:-} m n i
    m=$(layout_manifest "$dir" $ref) || return 1
    n=$(jq '.layers | length' "$m")
    for ((i = 0; i < n; i++)); do
        layer_listing "$dir" "$i" $ref | norm_listing |
            awk -F'\t' -v i="$i" 'BEGIN { OFS = "\t" } { print i, $1, $2, $3, $4, $5, $6 }' ||
            return 1
    done
}

# entry_of ENTRIES PATH: the last (uppermost) entry for PATH, or nothing.
entry_of() {
    printf '%s\n' "$1" | awk -F'\t' -v p="$2" '$2 == p { line = $0 } END { if (line != "") print line }'
}

# field N LINE: the Nth tab-separated field of LINE.
field() {
    printf '%s\n' "$2" | cut -f"$1"
}

# podman_pull_oci DIR TAG: pulls an OCI layout into podman's store and prints
# the image id. podman names the image after the path, which must be
# lowercase: the path is given relative to DIR's parent.
podman_pull_oci() {
    local parent base o
    parent=$(dirname "$1")
    base=$(basename "$1")
    [[ $base =~ ^[a-z0-9._-]+$ ]] || fail "podman_pull_oci: '$base' must be a lowercase name" || return 1
    o=$(cd "$parent" && podman_cmd pull -q "oci:$base:$2" 2>&1) ||
        fail "podman pull oci:$1:$2 failed: $o" || return 1
    printf '%s\n' "$o" | tail -n1
}

# invalid_specs: specs that break the format, one "NAME JSON" per line. The
# schema must reject each (00-schema) and so must ocib, with exit 2 (13-errors).
invalid_specs() {
    cat <<'EOF'
unknown-top {"version": 1, "stages": [{"from": "scratch"}], "imag": "x"}
unknown-copy-key {"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["a"], "dset": "/a"}]}]}]}
unknown-stage-key {"version": 1, "stages": [{"from": "scratch", "workdri": "/"}]}
unknown-config-key {"version": 1, "stages": [{"from": "scratch", "config": {"cmd": [], "comand": []}}]}
unknown-health-key {"version": 1, "stages": [{"from": "scratch", "config": {"healthcheck": {"test": ["NONE"], "every": "1s"}}}]}
missing-stages {"version": 1}
unknown-lint-key {"version": 1, "stages": [{"from": "scratch"}], "lint": {"ignroe": ["x"]}}
missing-version {"stages": [{"from": "scratch"}]}
version-2 {"version": 2, "stages": [{"from": "scratch"}]}
version-string {"version": "1", "stages": [{"from": "scratch"}]}
empty-stages {"version": 1, "stages": []}
missing-from {"version": 1, "stages": [{"name": "a"}]}
workdir-number {"version": 1, "stages": [{"from": "scratch", "workdir": 5}]}
env-not-string {"version": 1, "stages": [{"from": "scratch", "env": {"A": 1}}]}
src-string {"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": "a", "dest": "/"}]}]}]}
src-empty {"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": [], "dest": "/"}]}]}]}
missing-dest {"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["a"]}]}]}]}
mode-not-octal {"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["a"], "dest": "/", "mode": "0999"}]}]}]}
mode-number {"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["a"], "dest": "/", "mode": 644}]}]}]}
cmd-string-list {"version": 1, "stages": [{"from": "scratch", "config": {"cmd": [1]}}]}
labels-number {"version": 1, "stages": [{"from": "scratch", "config": {"labels": {"a": 1}}}]}
network-bridge {"version": 1, "stages": [{"from": "scratch", "layers": [{"run": "true", "network": "bridge"}]}]}
secret-no-target {"version": 1, "stages": [{"from": "scratch", "layers": [{"run": "true", "secrets": [{"id": "x"}]}]}]}
retries-string {"version": 1, "stages": [{"from": "scratch", "config": {"healthcheck": {"test": ["NONE"], "retries": "3"}}}]}
no-kind {"version": 1, "stages": [{"from": "scratch", "layers": [{"name": "empty"}]}]}
copy-and-run {"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["a"], "dest": "/"}], "run": "true"}]}]}
copy-and-files {"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["a"], "dest": "/"}], "files": [{"path": "/a", "content": ""}]}]}]}
run-options-on-copy {"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["a"], "dest": "/"}], "network": "host"}]}]}
file-two-kinds {"version": 1, "stages": [{"from": "scratch", "layers": [{"files": [{"path": "/a", "content": "x", "symlink": "b"}]}]}]}
file-no-kind {"version": 1, "stages": [{"from": "scratch", "layers": [{"files": [{"path": "/a", "mode": "0644"}]}]}]}
dir-false {"version": 1, "stages": [{"from": "scratch", "layers": [{"files": [{"path": "/a", "dir": false}]}]}]}
symlink-with-mode {"version": 1, "stages": [{"from": "scratch", "layers": [{"files": [{"path": "/a", "symlink": "b", "mode": "0644"}]}]}]}
dir-with-content {"version": 1, "stages": [{"from": "scratch", "layers": [{"files": [{"path": "/a", "dir": true, "content": "x"}]}]}]}
stage-name-upper {"version": 1, "stages": [{"name": "Build", "from": "scratch"}]}
from-empty {"version": 1, "stages": [{"from": ""}]}
image-empty {"version": 1, "image": "", "stages": [{"from": "scratch"}]}
platform-no-arch {"version": 1, "stages": [{"from": "scratch", "platform": "linux"}]}
copy-empty {"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": []}]}]}
files-empty {"version": 1, "stages": [{"from": "scratch", "layers": [{"files": []}]}]}
layers-null {"version": 1, "stages": [{"from": "scratch", "layers": null}]}
env-name-with-equals {"version": 1, "stages": [{"from": "scratch", "config": {"env": {"A=B": "1"}}}]}
owner-three-parts {"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["a"], "dest": "/", "owner": "1:2:3"}]}]}]}
mode-too-long {"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["a"], "dest": "/", "mode": "10644"}]}]}]}
exclude-string {"version": 1, "stages": [{"from": "scratch", "layers": [{"copy": [{"src": ["a"], "dest": "/", "exclude": "x"}]}]}]}
expose-name {"version": 1, "stages": [{"from": "scratch", "config": {"expose": ["http"]}}]}
interval-words {"version": 1, "stages": [{"from": "scratch", "config": {"healthcheck": {"test": ["NONE"], "interval": "30 seconds"}}}]}
retries-negative {"version": 1, "stages": [{"from": "scratch", "config": {"healthcheck": {"test": ["NONE"], "retries": -1}}}]}
healthcheck-no-test {"version": 1, "stages": [{"from": "scratch", "config": {"healthcheck": {"interval": "1s"}}}]}
stop-signal-empty {"version": 1, "stages": [{"from": "scratch", "config": {"stop_signal": ""}}]}
cache-mount-relative {"version": 1, "stages": [{"from": "scratch", "layers": [{"run": "true", "cache_mounts": ["cache"]}]}]}
run-empty-argv {"version": 1, "stages": [{"from": "scratch", "layers": [{"run": []}]}]}
EOF
}
