#!/usr/bin/env bats
# Build arguments (PRODUCT.md, "Build arguments"): "args" with defaults,
# --build-arg over them, the predefined TARGET*/BUILD* ones, ${NAME}
# substituted where the contract says (judged in the image with umoci and
# jq), run layers getting every argument in their environment with env
# winning, the layer key holding the values, and mistakes exiting 2 at
# file:line:col with nothing written.

load helpers
load lib/run-fixtures

setup_file() {
    need umoci busybox jq || return 1
    local d=$BATS_FILE_TMPDIR
    busybox_base_ctx "$d/bbctx" || return 1
    OCIB_CACHE_DIR=$d/cache-base "$OCIB" build -C "$d/bbctx" --output "oci:$d/base:1" \
        --progress=quiet >"$d/base.ref" 2>"$d/base.err" </dev/null ||
        { cat "$d/base.err" >&2; fail "building the busybox base failed"; return 1; }
    export BASE="oci:$d/base:1"
}

setup() {
    common_setup
}

# config_of DIR: the image config of the layout's only image.
config_of() {
    jq . "$(layout_config "$1")"
}

# state_of STAGE LAYER: "cached" or "built" from the last build's progress.
state_of() {
    printf '%s\n' "$err" | sed -nE "s/^\[$1\] layer $2: (cached|built) .*/\1/p" | tail -n1
}

@test "args: defaults and --build-arg are substituted in paths, contents, copies, workdir, env and config; \$\${ is a literal" {
    mkdir -p ctx/src-v2
    echo payload >ctx/src-v2/app.txt
    cat >ctx/ocib.json <<'EOF'
{"version": 1, "image": "localhost:5000/ocib/args", "args": {"VERSION": "v1", "DIR": "/srv/app", "WHO": "65534"},
 "stages": [{"from": "scratch", "workdir": "${DIR}", "env": {"V": "${VERSION}"}, "layers": [
   {"name": "f", "files": [{"path": "${DIR}/version", "content": "${VERSION} $${NOT_AN_ARG}"}]},
   {"name": "c", "copy": [{"src": ["src-${VERSION}/app.txt"], "dest": "${DIR}/${VERSION}.txt"}]}],
   "config": {"user": "${WHO}", "workdir": "${DIR}", "env": {"APP_VERSION": "${VERSION}"},
              "labels": {"org.opencontainers.image.version": "${VERSION}"},
              "cmd": ["/app", "--version=${VERSION}"]}}]}
EOF
    build_ok -C ctx --build-arg VERSION=v2 --build-arg WHO=1000 --output "oci:$T/o"
    umoci_unpack "$T/o" latest "$T/u"
    assert_eq "files path and content" "$(cat "$T/u/rootfs/srv/app/version")" 'v2 ${NOT_AN_ARG}'
    assert_eq "copy src and dest" "$(cat "$T/u/rootfs/srv/app/v2.txt")" payload
    config_of "$T/o" >"$T/config.json"
    assert_eq "config.user" "$(jq -r .config.User "$T/config.json")" 1000
    assert_eq "config.workdir" "$(jq -r .config.WorkingDir "$T/config.json")" /srv/app
    assert_eq "config.env" "$(jq -r '.config.Env | map(select(startswith("APP_VERSION="))) | .[0]' "$T/config.json")" APP_VERSION=v2
    assert_eq "config.labels" "$(jq -r '.config.Labels["org.opencontainers.image.version"]' "$T/config.json")" v2
    assert_eq "config.cmd" "$(jq -c .config.Cmd "$T/config.json")" '["/app","--version=v2"]'

    # The defaults give other bytes, and the same arguments the same digest.
    local v2=$DIGEST
    mkdir -p ctx/src-v1 && echo payload >ctx/src-v1/app.txt
    build_ok -C ctx --output "oci:$T/o1"
    [ "$DIGEST" != "$v2" ] || fail "the default VERSION built the same image as --build-arg VERSION=v2"
    build_ok -C ctx --build-arg VERSION=v2 --build-arg WHO=1000 --output "oci:$T/o2"
    assert_eq "same arguments, same digest" "$DIGEST" "$v2"
    # NAME alone takes the value from the environment.
    VERSION=v2 WHO=1000 run_ocib build -C ctx --build-arg VERSION --build-arg WHO --output "oci:$T/o3"
    [ "$status" -eq 0 ] || { show_run; fail "--build-arg NAME from the environment exited $status"; }
    assert_eq "--build-arg NAME from the environment" "$(tail -n1 <<<"$out")" "${REF%@*}@$v2"
}

@test "args: the predefined TARGET* arguments follow --platform and a stage's platform" {
    mkdir ctx
    cat >ctx/ocib.json <<'EOF'
{"version": 1, "image": "localhost:5000/ocib/args", "stages": [
  {"name": "own", "from": "scratch", "platform": "linux/arm64", "layers": [
    {"files": [{"path": "/t", "content": "${TARGETPLATFORM} ${TARGETOS} ${TARGETARCH} ${TARGETVARIANT}"}]}]},
  {"from": "scratch", "layers": [
    {"files": [{"path": "/t", "content": "${TARGETPLATFORM} ${TARGETOS} ${TARGETARCH} ${BUILDOS}"}]},
    {"copy": [{"from": "own", "src": ["/t"], "dest": "/own"}]}],
   "config": {"labels": {"arch": "${TARGETARCH}"}}}]}
EOF
    build_ok -C ctx --platform linux/riscv64 --output "oci:$T/o"
    config_of "$T/o" >"$T/config.json"
    assert_eq "label from TARGETARCH" "$(jq -r .config.Labels.arch "$T/config.json")" riscv64
    assert_eq "the default stage's file" "$(layer_file "$T/o" 0 t)" "linux/riscv64 linux riscv64 linux"
    assert_eq "a stage's own platform" "$(layer_file "$T/o" 1 own)" "linux/arm64 linux arm64 "
}

# layer_file DIR N PATH: the content of PATH in layer N (-1: the last) of
# the layout's image.
layer_file() {
    local m d mt
    m=$(layout_manifest "$1") || return 1
    d=$(jq -r ".layers[$2].digest" "$m")
    mt=$(jq -r ".layers[$2].mediaType" "$m")
    [ "$d" != null ] || { echo "no layer $2 in $1" >&2; return 1; }
    decompress "$(blob_path "$1" "$d")" "$mt" | tar -xO "$3"
}

@test "args: run layers get every argument in their environment, env wins, and the key holds the values" {
    mkdir ctx
    cat >ctx/ocib.json <<EOF
{"version": 1, "image": "localhost:5000/ocib/args", "args": {"MODE": "debug", "SHADOWED": "from-arg"},
 "stages": [{"name": "s", "from": "$BASE", "env": {"SHADOWED": "from-env"}, "layers": [
   {"name": "r", "run": "echo \"\$MODE \$SHADOWED \$TARGETARCH\" > /out; echo RAN"}]}]}
EOF
    build_ok -C ctx --output "oci:$T/o1"
    assert_eq "the run step ran" "$(state_of s r)" built
    assert_eq "the environment the command saw" "$(layer_file "$T/o1" -1 out)" "debug from-env $(host_arch)"
    build_ok -C ctx --output "oci:$T/o2"
    assert_eq "same arguments: a cache hit" "$(state_of s r)" cached
    build_ok -C ctx --build-arg MODE=release --output "oci:$T/o3"
    assert_eq "another value: the step runs again" "$(state_of s r)" built
    assert_eq "the new value" "$(layer_file "$T/o3" -1 out)" "release from-env $(host_arch)"
    # The run command itself is never substituted.
    [[ $(jq -r '.history[-1].created_by' "$(layout_config "$T/o3")") == *'$MODE'* ]] ||
        fail "the run command was substituted: $(jq -r '.history[-1].created_by' "$(layout_config "$T/o3")")"
}

@test "args: an undeclared --build-arg, an unknown or unterminated \${NAME} and a declared predefined one exit 2, writing nothing" {
    mkdir ctx
    cat >ctx/ocib.json <<'EOF'
{"version": 1, "args": {"A": "1"}, "stages": [{"from": "scratch", "layers": [
  {"files": [{"path": "/x", "content": "${A}"}]}]}]}
EOF
    run_ocib build -C ctx --build-arg B=2 --output "oci:$T/o"
    assert_failed 2 "--build-arg B: .*declares no such argument"
    run_ocib build -C ctx --build-arg TARGETARCH=arm64 --output "oci:$T/o"
    assert_failed 2 "--build-arg TARGETARCH: predefined"
    run_ocib build -C ctx --build-arg A --output "oci:$T/o"
    assert_failed 2 "--build-arg A: no value given and none in the environment"
    cat >ctx/bad.json <<'EOF'
{"version": 1, "args": {"A": "1"}, "stages": [{"from": "scratch", "layers": [
  {"files": [{"path": "/x",
              "content": "${AA}"}]}]}]}
EOF
    run_ocib build -C ctx -f ctx/bad.json --output "oci:$T/o"
    assert_failed 2 'bad.json:3:15: stages\[0\].layers\[0\].files\[0\].content: unknown build argument \$\{AA\}'
    printf '{"version": 1, "stages": [{"from": "scratch${", "layers": []}]}\n' >ctx/bad2.json
    run_ocib build -C ctx -f ctx/bad2.json --output "oci:$T/o"
    assert_failed 2 'bad2.json:1:28: stages\[0\].from: .*unterminated'
    printf '{"version": 1, "args": {"TARGETOS": "x"}, "stages": [{"from": "scratch"}]}\n' >ctx/bad3.json
    run_ocib build -C ctx -f ctx/bad3.json --output "oci:$T/o"
    assert_failed 2 'args.TARGETOS: TARGETOS is predefined'
    [ ! -e "$T/o" ] || fail "a failed build wrote its output"
}
