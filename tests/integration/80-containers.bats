#!/usr/bin/env bats
# ocib where CI runs it (issue 16): inside an unprivileged podman container
# (default capabilities and seccomp, no --privileged), as root and as uid
# 1000, a two-stage build with run layers gives the digest the host gives;
# under a seccomp profile that denies new namespaces as Docker's and
# Kubernetes' RuntimeDefault do, a run layer fails at once naming what
# blocked it (it used to hang forever), and a copy-only build still works.
#
# The container's root is a directory (podman --rootfs): ocib and the
# shared libraries it loads, busybox, /etc/passwd with uid 1000, the
# busybox base as an OCI layout and the context, mounted read-only, with a
# tmpfs /tmp for the cache and the output.

load helpers
load lib/run-fixtures

setup_file() {
    need podman runc busybox jq python3 || return 1
    export PODMAN_BASE=$BATS_FILE_TMPDIR/podman
    local d=$BATS_FILE_TMPDIR r=$BATS_FILE_TMPDIR/root lib
    mkdir -p "$r"/{bin,usr/bin,etc,tmp,proc,dev,sys,work}
    cp "$OCIB" "$r/usr/bin/ocib"
    for lib in $(ldd "$OCIB" | grep -o '/[^ ]*' | sort -u); do
        mkdir -p "$r$(dirname "$lib")"
        cp -L "$lib" "$r$lib"
    done
    cp "$(command -v busybox)" "$r/bin/busybox"
    local a
    for a in sh ls cat id; do ln -s busybox "$r/bin/$a"; done
    printf 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/tmp:/bin/sh\n' >"$r/etc/passwd"
    printf 'root:x:0:\napp:x:1000:\n' >"$r/etc/group"
    chmod 1777 "$r/tmp"
    # the base and the contexts, with the base named relative to them so
    # that the host's build reads the same spec text
    busybox_base_ctx "$d/bbctx" || return 1
    base_build "$d/bbctx" "$r/work/base" || return 1
    mkdir -p "$r/work/app" "$r/work/copy"
    echo 'hello' >"$r/work/app/msg.txt"
    cat >"$r/work/app/ocib.json" <<'JSON'
{"version": 1, "stages": [
  {"name": "build", "from": "oci:../base:1", "layers": [
    {"name": "compile", "run": "mkdir -p /out && echo built >/out/artifact && id -u >/out/uid"}]},
  {"name": "runtime", "from": "oci:../base:1", "layers": [
    {"name": "msg", "copy": [{"src": ["msg.txt"], "dest": "/srv/"}]},
    {"name": "artifact", "copy": [{"from": "build", "src": ["/out/artifact"], "dest": "/srv/"}]}],
   "config": {"user": "1000", "cmd": ["/bin/cat", "/srv/artifact"]}}]}
JSON
    echo 'data' >"$r/work/copy/data.txt"
    echo '{"version": 1, "stages": [{"from": "oci:../base:1", "layers": [
      {"name": "d", "copy": [{"src": ["data.txt"], "dest": "/"}]}]}]}' >"$r/work/copy/ocib.json"
    python3 "$BATS_TEST_DIRNAME/lib/seccomp-nouserns.py" /usr/share/containers/seccomp.json \
        "$d/nouserns.json" || return 1
    export ROOT=$r NOUSERNS=$d/nouserns.json
}

teardown_file() {
    if [ -d "${PODMAN_BASE:-}" ]; then
        podman_cmd rm -a -f >/dev/null 2>&1 || true
    fi
}

setup() {
    common_setup
}

# in_container [PODMAN_OPTIONS...] -- COMMAND...: runs COMMAND in a container
# of $ROOT (read-only, tmpfs /tmp, no network); sets $status, $out, $err.
in_container() {
    local opts=()
    while [ "$1" != -- ]; do
        opts+=("$1")
        shift
    done
    shift
    local base=$PODMAN_BASE
    mkdir -p "$base/root" "$base/runroot" "$base/tmp"
    status=0
    # runc sets the container's nproc limit from the caller's.
    (ulimit -u 4096 && timeout -k 5 120 podman --root "$base/root" --runroot "$base/runroot" \
        --tmpdir "$base/tmp" --storage-driver vfs --cgroup-manager cgroupfs --runtime runc \
        --events-backend file run --rm --read-only --tmpfs /tmp:rw,mode=1777 \
        --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 --network none -e HOME=/tmp \
        "${opts[@]}" --rootfs "$ROOT" "$@") >"$T/c.out" 2>"$T/c.err" </dev/null || status=$?
    out=$(cat "$T/c.out")
    err=$(cat "$T/c.err")
}

@test "in a default podman container, as root and as uid 1000, run layers build to the host's digest" {
    run_ocib build -C "$ROOT/work/app" --output "oci:$T/host" --progress=plain
    [ "$status" -eq 0 ] || { show_run; fail "the host build failed"; }
    local host=$out
    in_container -- /usr/bin/ocib build -C /work/app --output oci:/tmp/out --progress=plain
    [ "$status" -eq 0 ] || { show_run; fail "the build as root in the container failed"; }
    [ "$out" = "$host" ] || fail "root in the container built $out, the host $host"
    in_container --user 1000 -- /usr/bin/ocib build -C /work/app --output oci:/tmp/out \
        --progress=plain
    [ "$status" -eq 0 ] || { show_run; fail "the build as uid 1000 in the container failed"; }
    [ "$out" = "$host" ] || fail "uid 1000 in the container built $out, the host $host"
}

@test "a seccomp profile that denies namespaces: a run layer fails at once naming seccomp; copy-only builds work" {
    local t0=$SECONDS
    in_container --security-opt "seccomp=$NOUSERNS" -- \
        /usr/bin/ocib build -C /work/app --output oci:/tmp/out --progress=plain
    [ "$status" -eq 1 ] || { show_run; fail "expected exit 1 (124 is the old hang)"; }
    [ $((SECONDS - t0)) -lt 30 ] || fail "the failure took $((SECONDS - t0)) s"
    grep -q '^ocib: stage build, layer compile: sandbox: cannot make a user namespace for run layers: a seccomp filter refuses it' \
        <<<"$err" || { show_run; fail "the error does not name seccomp"; }
    grep -q 'seccomp=unconfined' <<<"$err" || { show_run; fail "the error gives no setting"; }
    in_container --security-opt "seccomp=$NOUSERNS" --user 1000 -- \
        /usr/bin/ocib build -C /work/copy --output oci:/tmp/out --progress=plain
    [ "$status" -eq 0 ] || { show_run; fail "a copy-only build failed under the profile"; }
    run_ocib build -C "$ROOT/work/copy" --output "oci:$T/host"
    [ "$(tail -n1 "$T/c.out")" = "$out" ] || fail "the copy-only build's digest differs from the host's"
}
