#!/usr/bin/env bats
# Golden digests (issue 6, "digest stability across versions"): fixed inputs
# -- the bundled examples hello and layered, and a synthetic context with
# every kind of entry, long and non-ASCII names and multi-megabyte files --
# are built with a fixed SOURCE_DATE_EPOCH, outside any git checkout, for
# linux/amd64, with gzip and zstd; every layer digest, diff_id, config digest
# and manifest digest must equal the ones pinned in
# tests/fixtures/golden/digests.txt. A difference means users' image digests
# would change for the same inputs: that must be a deliberate, documented
# bump of the output format (dev.ocib.format), after which
# tests/fixtures/golden/regenerate refreshes the fixture in one command.
# (node-api is left out: its base needs npm and a registry.)

load helpers

GOLDEN=$REPO_ROOT/tests/fixtures/golden
# shellcheck source=../fixtures/golden/golden.bash
. "$GOLDEN/golden.bash"

setup() {
    common_setup
    need jq
    # golden_build builds in a temporary directory outside the checkout
    [ -z "$(git -C "$T" rev-parse --show-toplevel 2>/dev/null)" ] ||
        fail "the test directory $T is inside a git checkout; set TMPDIR elsewhere"
}

# fixture_lines CASE: the pinned lines of CASE.
fixture_lines() {
    grep -v '^#' "$GOLDEN/digests.txt" | awk -v c="$1" '$1 == c'
}

# golden_explain CASE WANT GOT: why the lines differ, for a person.
golden_explain() {
    local name=$1 want=$2 got=$3
    "$PY" - "$name" "$want" "$got" <<'EOF'
import sys
name, want, got = sys.argv[1], sys.argv[2], sys.argv[3]
def parse(text):
    d = {}
    for line in text.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3:
            d[parts[1]] = parts[2]
    return d
w, g = parse(want), parse(got)
out = []
if w.get("input") != g.get("input"):
    out.append("the INPUTS of %s changed (specs/examples or tests/fixtures/golden/golden.bash were "
               "edited): if that edit is deliberate, run tests/fixtures/golden/regenerate and review "
               "the new digests; the differences below follow from it." % name)
if w.get("format") != g.get("format"):
    out.append("the output format version went from %s to %s: regenerate the golden digests "
               "(tests/fixtures/golden/regenerate) in the same commit as the bump."
               % (w.get("format"), g.get("format")))
if w.get("compression") != g.get("compression"):
    out.append("the compressor settings changed:\n    pinned: %s\n    now:    %s"
               % (w.get("compression"), g.get("compression")))
keys = [k for k in w if k not in ("input", "format", "compression")] + \
       [k for k in g if k not in w and k not in ("input", "format", "compression")]
for k in keys:
    if w.get(k) == g.get(k):
        continue
    why = ""
    if k.startswith("layer["):
        i = k[len("layer["):-1]
        if w.get("diff_id[%s]" % i) == g.get("diff_id[%s]" % i):
            why = " (same uncompressed tar: the COMPRESSOR's output changed)"
        else:
            why = " (the uncompressed TAR changed)"
    elif k == "config":
        why = " (image config bytes changed)"
    elif k == "manifest":
        why = " (manifest bytes changed)"
    out.append("%s %s:\n    pinned: %s\n    now:    %s%s" % (name, k, w.get(k, "(none)"), g.get(k, "(none)"), why))
print("\n".join(out))
EOF
}

# golden_check CASE: builds CASE and compares every digest with the fixture;
# every layer is also canonical (sorted, numeric owners, mtime = epoch).
golden_check() {
    local name=$1 line want got
    line=$(golden_cases | awk -v c="$name" '$1 == c')
    [ -n "$line" ] || fail "no golden case '$name' in golden.bash" || return 1
    want=$(fixture_lines "$name")
    [ -n "$want" ] || fail "tests/fixtures/golden/digests.txt has no digests for '$name': run tests/fixtures/golden/regenerate" || return 1
    # shellcheck disable=SC2086
    got=$(golden_build "$OCIB" "$T/work" $line) || fail "building golden case $name failed" || return 1
    if [ "$got" != "$want" ]; then
        printf '%s\n' "$(golden_explain "$name" "$want" "$got")" >&2
        fail "$(golden_failure_message)"
        return 1
    fi
    local epoch n i
    epoch=$(awk '{print $3}' <<<"$line")
    [ "$epoch" != - ] || epoch=0
    n=$(jq '.layers | length' "$(layout_manifest "$T/work/$name/oci")")
    for ((i = 0; i < n; i++)); do
        assert_layer_canonical "$T/work/$name/oci" "$i" "$epoch" || return 1
    done
}

golden_failure_message() {
    cat <<'EOF'
ocib's OUTPUT FORMAT CHANGED: the same inputs no longer give the pinned digests
(tests/fixtures/golden/digests.txt), so every user's image digests would change.
If this is NOT deliberate it is a regression: fix it.
If it IS deliberate (a new tar layout, config/manifest serialisation, or compressor
or compressor setting), it must be a documented version bump: raise
OCIB_FORMAT_VERSION (base/version.h, the dev.ocib.format annotation), document the
change for users, and only then run tests/fixtures/golden/regenerate and commit
the reviewed digests.txt with it.
EOF
}

@test "golden: hello, gzip" {
    golden_check hello-gzip
}

@test "golden: hello, zstd" {
    golden_check hello-zstd
}

@test "golden: hello with ocib's defaults (SOURCE_DATE_EPOCH unset: 0, gzip)" {
    golden_check hello-default
}

@test "golden: layered, gzip" {
    golden_check layered-gzip
}

@test "golden: layered --target base, zstd" {
    golden_check layered-base-zstd
}

@test "golden: synthetic context (every entry kind, long/non-ASCII names, 3.7 MB), gzip" {
    golden_check synthetic-gzip
}

@test "golden: synthetic context, zstd" {
    golden_check synthetic-zstd
}

@test "golden: the fixture covers exactly the cases, for this output format" {
    local cases pinned fmt
    cases=$(golden_cases | awk '{print $1}' | LC_ALL=C sort)
    pinned=$(grep -v '^#' "$GOLDEN/digests.txt" | awk '{print $1}' | LC_ALL=C sort -u)
    assert_eq "cases pinned in digests.txt (run tests/fixtures/golden/regenerate)" \
        "$(tr '\n' ' ' <<<"$pinned")" "$(tr '\n' ' ' <<<"$cases")"
    run_ocib version
    [[ $out =~ \(output\ format\ ([^\)]+)\) ]] || fail "ocib version does not say its output format: $out"
    fmt=${BASH_REMATCH[1]}
    pinned=$(grep -v '^#' "$GOLDEN/digests.txt" | awk '$2 == "format" {print $3}' | sort -u)
    assert_eq "output format the golden digests were made for" "$pinned" "$fmt" ||
        fail "ocib now writes output format $fmt: regenerate tests/fixtures/golden/digests.txt with the bump"
    # every case pins a manifest, a config and as many layers as diff_ids
    local c
    for c in $cases; do
        fixture_lines "$c" | awk '{print $2}' | grep -qx manifest || fail "$c: no manifest digest pinned"
        fixture_lines "$c" | awk '{print $2}' | grep -qx config || fail "$c: no config digest pinned"
        [ "$(fixture_lines "$c" | grep -c ' layer\[')" -eq "$(fixture_lines "$c" | grep -c ' diff_id\[')" ] ||
            fail "$c: layers and diff_ids do not pair up"
        [ "$(fixture_lines "$c" | grep -c ' layer\[')" -ge 1 ] || fail "$c: no layer pinned"
    done
}

@test "golden: --source-date-epoch N gives the digests of SOURCE_DATE_EPOCH=N" {
    local env flag
    env=$(golden_build "$OCIB" "$T/env" hello-gzip examples/hello "$GOLDEN_EPOCH" --compression gzip) ||
        fail "build with SOURCE_DATE_EPOCH failed"
    flag=$(golden_build "$OCIB" "$T/flag" hello-gzip examples/hello - \
        --source-date-epoch "$GOLDEN_EPOCH" --compression gzip) || fail "build with --source-date-epoch failed"
    if [ "$flag" != "$env" ]; then
        golden_explain hello-gzip "$env" "$flag" >&2
        fail "--source-date-epoch $GOLDEN_EPOCH and SOURCE_DATE_EPOCH=$GOLDEN_EPOCH give different images"
    fi
}

@test "golden: one CPU and a warm cache give the same synthetic digests as all CPUs" {
    need taskset
    local all one case
    case=$(golden_cases | awk '$1 == "synthetic-gzip"')
    # shellcheck disable=SC2086
    all=$(golden_build "$OCIB" "$T/all" $case) || fail "build on all CPUs failed"
    # ocib pinned to one CPU (golden_build runs its first argument as one word)
    printf '#!/bin/sh\nexec taskset -c 0 "%s" "$@"\n' "$OCIB" >"$T/ocib-1cpu"
    chmod +x "$T/ocib-1cpu"
    # shellcheck disable=SC2086
    one=$(golden_build "$T/ocib-1cpu" "$T/one" $case) || fail "build on one CPU failed"
    if [ "$one" != "$all" ]; then
        golden_explain synthetic-gzip "$all" "$one" >&2
        fail "building on one CPU ($(nproc) available) changed the digests: the thread count must never matter"
    fi
    # a rebuild served from the warm cache of that build: same bytes
    local w=$T/one/synthetic-gzip got
    got=$(cd "$w" && SOURCE_DATE_EPOCH=$GOLDEN_EPOCH OCIB_CACHE_DIR=$w/cache "$OCIB" build -C "$w/ctx" \
        --platform linux/amd64 --compression gzip --output "oci:$w/oci2" --progress=quiet </dev/null) ||
        fail "warm rebuild failed"
    assert_eq "warm-cache rebuild" "${got##*@}" "$(awk '$2 == "manifest" {print $3}' <<<"$all")"
}
