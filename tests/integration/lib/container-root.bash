# A podman container that holds ocib, made as 80-containers.bats makes it,
# for the suites that run ocib inside one (81-isolation.bats).
#
# container_root_make DIR
#     makes DIR a container root (podman --rootfs): ocib and the shared
#     libraries it loads, busybox, /etc/passwd with uid 1000, the busybox
#     base as an OCI layout (work/base), a two-stage context with a run
#     layer (work/app) and a copy-only one (work/copy). Exports ROOT and
#     PODMAN_BASE (podman's storage for this file's tests).
# in_container [PODMAN_OPTIONS...] -- COMMAND...
#     runs COMMAND in a container of $ROOT (read-only, tmpfs /tmp mounted
#     with $CONTAINER_TMP, default podman's nodev; no network); sets
#     $status, $out (stdout) and $err (stderr).
# show_container
#     what the last in_container printed, for failure messages.
# container_root_teardown
#     removes the containers left.
# DOCKER_CAPS
#     the podman options that give Docker's default capabilities (podman's
#     defaults lack MKNOD, NET_RAW and AUDIT_WRITE).

DOCKER_CAPS="--cap-add MKNOD --cap-add NET_RAW --cap-add AUDIT_WRITE"

container_root_make() {
    local r=$1 d lib a
    d=$(dirname "$r")
    export PODMAN_BASE=$d/podman
    mkdir -p "$r"/{bin,usr/bin,etc,tmp,proc,dev,sys,work}
    cp "$OCIB" "$r/usr/bin/ocib"
    for lib in $(ldd "$OCIB" | grep -o '/[^ ]*' | sort -u); do
        mkdir -p "$r$(dirname "$lib")"
        cp -L "$lib" "$r$lib"
    done
    cp "$(command -v busybox)" "$r/bin/busybox"
    for a in sh ls cat id; do ln -s busybox "$r/bin/$a"; done
    printf 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/tmp:/bin/sh\n' >"$r/etc/passwd"
    printf 'root:x:0:\napp:x:1000:\n' >"$r/etc/group"
    chmod 1777 "$r/tmp"
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
    export ROOT=$r
}

container_root_teardown() {
    if [ -d "${PODMAN_BASE:-}" ]; then
        podman_cmd rm -a -f >/dev/null 2>&1 || true
    fi
}

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
        --events-backend file run --rm --read-only --tmpfs "/tmp:${CONTAINER_TMP:-rw,mode=1777}" \
        --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 --network none -e HOME=/tmp \
        "${opts[@]}" --rootfs "$ROOT" "$@") >"$T/c.out" 2>"$T/c.err" </dev/null || status=$?
    out=$(cat "$T/c.out")
    err=$(cat "$T/c.err")
}

show_container() {
    printf -- '--- container exit status: %s\n--- stdout:\n%s\n--- stderr:\n%s\n---\n' \
        "$status" "$out" "$err" >&2
}
