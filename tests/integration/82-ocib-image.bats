#!/usr/bin/env bats
# ocib's own image (issue 16): `make image`'s ocib.image.json builds it with
# ocib (a build stage compiling ocib on a base made from this machine's
# Debian packages, a runtime stage from scratch), reproducibly; it runs as
# uid 1000 with ENTRYPOINT ["ocib"]; under podman's defaults (no
# --privileged, default capabilities and seccomp, read-only root), as root
# and as uid 1000, it builds a two-stage spec with a run layer to the
# host's digest; and examples/k8s/ocib-job.yaml's Job, played by podman
# (as a Pod: podman 4.3 reads no Job), builds and pushes to a TLS registry
# with credentials from its Secrets, in a user namespace of its own and
# without one.

load helpers
load lib/run-fixtures
load lib/registry
load lib/pki
load lib/ocib-image

setup_file() {
    need podman runc catatonit skopeo busybox jq python3 openssl || return 1
    export PODMAN_BASE=$BATS_FILE_TMPDIR/podman
    IMAGE=$(ocib_image_load) || return 1
    export IMAGE
    local d=$BATS_FILE_TMPDIR w=$BATS_FILE_TMPDIR/work
    busybox_base_ctx "$d/bbctx" || return 1
    base_build "$d/bbctx" "$w/base" || return 1
    # the seed's two-stage pattern (80-containers' spec), base by relative name
    mkdir -p "$w/app"
    echo 'hello' >"$w/app/msg.txt"
    cat >"$w/app/ocib.json" <<'JSON'
{"version": 1, "stages": [
  {"name": "build", "from": "oci:../base:1", "layers": [
    {"name": "compile", "run": "mkdir -p /out && echo built >/out/artifact && id -u >/out/uid"}]},
  {"name": "runtime", "from": "oci:../base:1", "layers": [
    {"name": "msg", "copy": [{"src": ["msg.txt"], "dest": "/srv/"}]},
    {"name": "artifact", "copy": [{"from": "build", "src": ["/out/artifact"], "dest": "/srv/"}]}],
   "config": {"user": "1000", "cmd": ["/bin/cat", "/srv/artifact"]}}]}
JSON
    export WORK=$w
}

teardown_file() {
    if [ -d "${PODMAN_BASE:-}" ]; then
        podman_cmd pod rm -a -f >/dev/null 2>&1 || true
        podman_cmd rm -a -f >/dev/null 2>&1 || true
    fi
}

setup() {
    common_setup
}

teardown() {
    registry_stop KREG 2>/dev/null || true
}

# podman_timeout SECONDS ARGS...: podman_cmd ARGS, killed after SECONDS,
# with the nproc limit runc gives containers from the caller's.
podman_timeout() {
    local b=$PODMAN_BASE secs=$1
    shift
    ulimit -u 4096
    timeout -k 5 "$secs" podman --root "$b/root" --runroot "$b/runroot" --tmpdir "$b/tmp" \
        --storage-driver vfs --cgroup-manager cgroupfs --runtime runc --events-backend file "$@"
}

# in_image [PODMAN_OPTIONS...] -- ARGS...: runs ocib's image with podman's
# defaults, a read-only root and $WORK read-only at /work; sets $status,
# $out, $err.
in_image() {
    local opts=()
    while [ "$1" != -- ]; do
        opts+=("$1")
        shift
    done
    shift
    status=0
    (podman_timeout 300 run --rm --pull never --network none \
        --read-only --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 \
        -v "$WORK:/work:ro" "${opts[@]}" "$IMAGE" "$@") >"$T/c.out" 2>"$T/c.err" </dev/null ||
        status=$?
    out=$(cat "$T/c.out")
    err=$(cat "$T/c.err")
}

@test "ocib.image.json is reproducible: build --verify builds ocib's image twice to one digest" {
    run_ocib build -C "$REPO_ROOT" -f "$REPO_ROOT/ocib.image.json" --verify --progress=plain --lint=off
    [ "$status" -eq 0 ] || { show_run; fail "build --verify of ocib.image.json failed"; }
    assert_digest_stdout localhost/ocib/ocib
}

@test "ocib's image: uid 1000, ENTRYPOINT ocib, ocib runs with its libraries, CA bundle, setuid newuidmap; size reported" {
    local src layout m cfg size
    src=$(ocib_image_build)
    layout=${src#oci:}
    layout=${layout%:ocib}
    m=$(layout_manifest "$layout" ocib)
    cfg=$(layout_config "$layout" ocib)
    assert_eq "config.User" "$(jq -r .config.User "$cfg")" 1000:1000
    assert_eq "config.Entrypoint" "$(jq -c .config.Entrypoint "$cfg")" '["ocib"]'
    jq -e '.config.Env | index("OCIB_CACHE_DIR=/cache/ocib")' "$cfg" >/dev/null ||
        fail "the image sets no OCIB_CACHE_DIR=/cache/ocib: $(jq -c .config.Env "$cfg")"
    in_image -- version
    [ "$status" -eq 0 ] || { show_run; fail "ocib version in the image failed"; }
    [ "$out" = "$("$OCIB" version)" ] || fail "the image's ocib says '$out'"
    in_image --entrypoint /bin/sh -- -c 'id -u; ls -l /usr/bin/newuidmap /usr/bin/newgidmap;
        test -s /etc/ssl/certs/ca-certificates.crt && echo ca; git --version'
    [ "$status" -eq 0 ] || { show_run; fail "the image's shell failed"; }
    assert_contains "uid and newuidmap" "$out" $'1000\n-rwsr-xr-x'
    grep -q '^-rwsr-xr-x .* /usr/bin/newgidmap$' <<<"$out" || fail "newgidmap is not setuid: $out"
    assert_contains "CA bundle and git" "$out" $'ca\ngit version'
    size=$(ocib_image_size "$layout")
    [ "$size" -gt 1000000 ] && [ "$size" -lt 100000000 ] || fail "implausible size $size"
    echo "# ocib's image: $size bytes compressed ($((size / 1048576)) MiB, $(jq '.layers | length' "$m") layers)" >&3
}

@test "ocib's image under podman's defaults, as root and as uid 1000, builds run layers to the host's digest" {
    run_ocib build -C "$WORK/app" --output "oci:$T/host" --progress=plain
    [ "$status" -eq 0 ] || { show_run; fail "the host build failed"; }
    local host=$out u
    for u in 0 1000; do
        in_image --user "$u" -- build -C /work/app --output oci:/tmp/out --progress=plain
        [ "$status" -eq 0 ] || { show_run; fail "the build as uid $u in ocib's image failed"; }
        [ "$out" = "$host" ] || fail "uid $u in ocib's image built $out, the host $host"
    done
    # Kubernetes' allowPrivilegeEscalation: false: the setuid helpers are
    # not tried, the caller alone is mapped
    in_image --security-opt no-new-privileges -- build -C /work/app --output oci:/tmp/out \
        --progress=plain
    [ "$status" -eq 0 ] || { show_run; fail "the build under no-new-privileges failed"; }
    [ "$out" = "$host" ] || fail "under no-new-privileges ocib's image built $out, the host $host"
}

# kube_play NAME YAML... [--pod NAME]: plays the examples' YAML rewritten for
# podman 4.3 (lib/kube-for-podman.py) on the "podman" bridge, waits for the
# pod's ocib container and sets $status (its exit code), $out, $err (logs)
# and $USERNS (podman's user namespace mode for the pod: "private" for hostUsers: false).
kube_play() {
    local name=$1 dir=$T/kube-$1
    shift
    mkdir -p "$dir"
    # podman 4.3 makes an emptyDir a named volume ("workspace", "cache"),
    # which the next pod would share: a fresh start, as a Job's pod has
    podman_cmd pod rm -a -f >/dev/null 2>&1
    podman_cmd volume prune -f >/dev/null 2>&1
    python3 "$BATS_TEST_DIRNAME/lib/kube-for-podman.py" "$dir" "$KREG_ADDR" "$IMAGE" "$@" \
        --set "ocib-registry-auth/.dockerconfigjson=$T/docker/config.json" \
        --set "ocib-registry-ca/ca.crt=$T/pki/ca.crt" || fail "kube-for-podman.py failed" || return 1
    (podman_timeout 120 kube play --network podman "$dir/play.yaml") >"$dir/play.log" 2>&1 ||
        { cat "$dir/play.log" >&2; fail "podman kube play failed"; return 1; }
    status=$(podman_timeout 300 wait "$name-ocib") || { fail "the pod did not finish"; return 1; }
    USERNS=$(podman_cmd inspect --format "{{.HostConfig.UsernsMode}}" "$name-ocib")
    # a pod's containers join the infra container's namespace
    if [[ $USERNS == container:* ]]; then
        USERNS=$(podman_cmd inspect --format "{{.HostConfig.UsernsMode}}" "${USERNS#container:}")
    fi
    podman_cmd logs "$name-ocib" >"$dir/stdout" 2>"$dir/stderr"
    out=$(cat "$dir/stdout")
    err=$(cat "$dir/stderr")
}

@test "examples/k8s/ocib-job.yaml (as a Pod), with and without its own user namespace, pushes by digest to a TLS registry" {
    local gw ex=$REPO_ROOT/examples/k8s digest1 ctx
    gw=$(podman_cmd network inspect podman | jq -r '.[0].subnets[0].gateway')
    ip -o addr | grep -q " inet $gw/" || fail "the podman bridge's gateway $gw is not up on this host"
    grep -q '^containers:' /etc/subuid && grep -q '^containers:' /etc/subgid ||
        fail "hostUsers: false needs a 'containers' range in /etc/subuid and /etc/subgid (run tests/install-deps)"
    pki_make "$T/pki"
    _pki_sign "$T/pki" gw "$gw" \
        "subjectAltName=IP:$gw\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
    registry_start KREG --listen "$gw" --htpasswd ci:ci-password --tls "$T/pki/gw.crt" "$T/pki/gw.key"
    mkdir -p "$T/docker" "$T/certs"
    cp "$T/pki/ca.crt" "$T/certs/"
    printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$KREG_ADDR" "$(printf ci:ci-password | base64)" \
        >"$T/docker/config.json"
    DOCKER_CONFIG=$T/docker run_ocib push --cert-dir "$T/certs" "oci:$WORK/base:1" \
        "$KREG_ADDR/base/busybox:1"
    [ "$status" -eq 0 ] || { show_run; fail "pushing the busybox base failed"; }

    kube_play ocib-build "$ex/ocib-job.yaml"
    [ "$status" -eq 0 ] || { show_run; fail "the Job's pod (hostUsers: false) failed"; }
    [ "$USERNS" = private ] || [ "$USERNS" = auto ] || fail "hostUsers: false gave the pod user namespace mode '$USERNS'"
    assert_digest_stdout "$KREG_ADDR/acme/hello"
    digest1=$DIGEST
    skopeo inspect --cert-dir "$T/certs" --creds ci:ci-password --raw \
        "docker://$KREG_ADDR/acme/hello@$digest1" >"$T/pushed.json" ||
        fail "the pushed digest $digest1 is not in the registry"
    [ "sha256:$(sha256sum <"$T/pushed.json" | cut -d' ' -f1)" = "$digest1" ] ||
        fail "the registry's manifest is not $digest1"

    kube_play ocib-build-no-userns "$ex/ocib-job.yaml" "$ex/ocib-job-no-userns.yaml" \
        --pod ocib-build-no-userns
    [ "$status" -eq 0 ] || { show_run; fail "the no-userns Job's pod failed"; }
    [ "$USERNS" = "" ] || [ "$USERNS" = host ] || fail "the no-userns pod has user namespace mode '$USERNS'"
    assert_digest_stdout "$KREG_ADDR/acme/hello"
    [ "$DIGEST" = "$digest1" ] || fail "without a user namespace the Job built $DIGEST, with one $digest1"

    # the same context on the host gives the same image
    ctx=$T/ctx
    mkdir -p "$ctx"
    python3 -c 'import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "ConfigMap":
        for k, v in d["data"].items():
            open(sys.argv[2] + "/" + k, "w").write(v.replace("registry.example.com", sys.argv[3]))
' "$ex/ocib-job.yaml" "$ctx" "$KREG_ADDR"
    DOCKER_CONFIG=$T/docker run_ocib build -C "$ctx" --cert-dir "$T/certs" \
        --tag "$KREG_ADDR/acme/hello:1.0.0" --output "oci:$T/hostout"
    [ "$status" -eq 0 ] || { show_run; fail "the host build of the Job's context failed"; }
    [ "$out" = "$KREG_ADDR/acme/hello@$digest1" ] || fail "the host built $out, the Job $digest1"
}
