# Runners for the "many runners, one cache" tests and benchmark (issue 16).
#
# A runner is a CI job that starts empty: a fresh checkout, no ocib cache,
# the registry as the only state it shares with the others (no daemon, no
# scheduler). runner_build runs `ocib build` on a new one. The kind:
#
#   container  a podman container (default security options: no
#              --privileged, default capabilities and seccomp; as uid 1000;
#              host network, since the registry listens on loopback; HOME and
#              the cache on a tmpfs /tmp that dies with it) of ocib's own
#              image when tests/integration/lib/ocib-image.bash and the image
#              exist, else of a root directory holding ocib, the libraries it
#              loads and an /etc/passwd with uid 1000 (as 80-containers.bats
#              makes it). Host paths given with RUNNER_MOUNTS are mounted
#              read-only at the same path, so one command line serves both
#              kinds.
#   host       an ocib process with its own empty cache directory (HOME and
#              XDG_CACHE_HOME too).
#
# runner_init DIR [KIND]
#     prepares the kind (default $RUNNER_KIND, else container when podman is
#     installed) under DIR; exports RUNNER_KIND and RUNNER_DESC (what a
#     runner is, for reports).
# runner_build NAME [ocib build options...]
#     `ocib build OPTIONS` on a new empty runner; sets $status, $out
#     (stdout), $err (stderr) and $RUNNER_SECONDS (wall time, container start
#     included). NAME labels its files under DIR. RUNNER_MOUNTS (array of
#     host paths) are visible to it; a path in OPTIONS must be one of them
#     or below one.
# runner_sh NAME DIR SCRIPT [VAR=VALUE...]
#     `sh -euc SCRIPT` on a new empty runner (a CI job's shell steps), in DIR
#     (mounted read-write at the same path; RUNNER_MOUNTS read-only), with
#     only the VARs given, PATH (finding ocib) and HOME in its environment;
#     sets $status, $out, $err and $RUNNER_SECONDS as runner_build does.
# runner_stop
#     removes every container left (a timed-out one).

RUNNER_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RUNNER_TIMEOUT=${RUNNER_TIMEOUT:-600}
RUNNER_IMAGE=${RUNNER_IMAGE:-}
RUNNER_MOUNTS=()

_runner_fail() {
    printf 'runners: %s\n' "$*" >&2
    return 1
}

# _runner_podman ARGS...: podman on the runners' private storage (vfs,
# cgroupfs, runc: what works on this machine), within $RUNNER_TIMEOUT.
_runner_podman() {
    (ulimit -u 4096 && timeout -k 10 "$RUNNER_TIMEOUT" podman --root "$RUNNER_PODMAN/root" --runroot "$RUNNER_PODMAN/runroot" \
        --tmpdir "$RUNNER_PODMAN/tmp" --storage-driver vfs --cgroup-manager cgroupfs \
        --runtime runc --events-backend file "$@")
}

# _runner_rootfs DIR: ocib, git, the libraries they load, busybox (the shell
# and tools CI scripts use), a passwd with uid 1000 and git's safe.directory,
# as ocib's image has them.
_runner_rootfs() {
    local r=$1 lib a git
    git=$(command -v git) || _runner_fail "git is not installed" || return 1
    mkdir -p "$r"/{bin,usr/bin,etc,tmp,proc,dev,sys} || return 1
    cp "$OCIB" "$r/usr/bin/ocib" && cp "$git" "$r/usr/bin/git" || return 1
    for lib in $(ldd "$OCIB" "$git" | grep -o '/[^ ]*' | grep -v ':$' | sort -u); do
        mkdir -p "$r$(dirname "$lib")"
        cp -L "$lib" "$r$lib" || return 1
    done
    cp "$(command -v busybox)" "$r/bin/busybox" || return 1
    for a in sh cat cp cut date env grep head id ls mkdir mv printf rm sed sleep tail tee test tr wc; do
        ln -sf busybox "$r/bin/$a"
    done
    printf '[safe]\n\tdirectory = *\n' >"$r/etc/gitconfig"
    printf 'root:x:0:0::/root:/bin/sh\nci:x:1000:1000::/tmp:/bin/sh\n' >"$r/etc/passwd"
    printf 'root:x:0:\nci:x:1000:\n' >"$r/etc/group"
    chmod 1777 "$r/tmp"
}

runner_init() {
    export RUNNER_DIR=$1
    local kind=${2:-${RUNNER_KIND:-}}
    if [ -z "$kind" ]; then
        if command -v podman >/dev/null 2>&1; then kind=container; else kind=host; fi
    fi
    mkdir -p "$RUNNER_DIR" || return 1
    export RUNNER_KIND=$kind
    case $kind in
    host)
        RUNNER_DESC="an ocib process with an empty cache directory"
        ;;
    container)
        command -v podman >/dev/null 2>&1 || _runner_fail "podman is not installed" || return 1
        # podman refuses a runroot of over 50 characters, which a test's
        # directory can exceed: the storage lives in a short one.
        RUNNER_PODMAN=$(mktemp -d /tmp/ocib-runners.XXXXXX) || return 1
        export RUNNER_PODMAN
        mkdir -p "$RUNNER_PODMAN"/{root,runroot,tmp}
        if [ -z "$RUNNER_IMAGE" ] && [ -f "$RUNNER_LIB_DIR/ocib-image.bash" ]; then
            # shellcheck source=/dev/null
            . "$RUNNER_LIB_DIR/ocib-image.bash"
            if declare -F ocib_image_load >/dev/null && declare -F podman_cmd >/dev/null; then
                # Into the runners' own storage (_runner_podman's).
                RUNNER_IMAGE=$(ulimit -u 4096 && PODMAN_BASE=$RUNNER_PODMAN \
                    ocib_image_load localhost/ocib/ocib:runner) || RUNNER_IMAGE=
            fi
        fi
        if [ -n "$RUNNER_IMAGE" ]; then
            RUNNER_DESC="a podman container of ocib's image $RUNNER_IMAGE (uid 1000, default security options)"
        else
            _runner_rootfs "$RUNNER_DIR/root" || _runner_fail "cannot make the runner root" || return 1
            RUNNER_DESC="a podman container (--rootfs: ocib and its libraries; uid 1000, default security options)"
        fi
        ;;
    *) _runner_fail "unknown runner kind '$kind' (host or container)" || return 1 ;;
    esac
    export RUNNER_DESC RUNNER_IMAGE
}

runner_build() {
    local name=$1 d=$RUNNER_DIR/$1 start end m
    shift
    rm -rf "$d"
    mkdir -p "$d"
    status=0
    start=$(date +%s%N)
    if [ "$RUNNER_KIND" = host ]; then
        mkdir -p "$d/home" "$d/tmp"
        env -u OCIB_CACHE_DIR HOME="$d/home" XDG_CACHE_HOME="$d/home/.cache" TMPDIR="$d/tmp" \
            timeout -k 10 "$RUNNER_TIMEOUT" "$OCIB" build "$@" >"$d/stdout" 2>"$d/stderr" </dev/null ||
            status=$?
    else
        local opts=(run --rm --name "runner-$name-$$" --network host --user 1000:1000
            --tmpfs /tmp:rw,mode=1777 -e HOME=/tmp -e OCIB_CACHE_DIR=/tmp/cache
            --ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
        for m in "${RUNNER_MOUNTS[@]}"; do
            opts+=(-v "$m:$m:ro")
        done
        if [ -n "$RUNNER_IMAGE" ]; then
            opts+=("$RUNNER_IMAGE" build)
        else
            opts+=(--rootfs "$RUNNER_DIR/root" /usr/bin/ocib build)
        fi
        _runner_podman "${opts[@]}" "$@" >"$d/stdout" 2>"$d/stderr" \
            </dev/null || status=$?
    fi
    end=$(date +%s%N)
    RUNNER_SECONDS=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    out=$(cat "$d/stdout")
    err=$(cat "$d/stderr")
    [ "$status" -ne 124 ] || echo "runner $name timed out after ${RUNNER_TIMEOUT}s" >&2
    return 0
}

runner_sh() {
    local name=$1 dir=$2 script=$3 d=$RUNNER_DIR/$1 start end m v
    shift 3
    rm -rf "$d"
    mkdir -p "$d/home" "$d/bin"
    status=0
    start=$(date +%s%N)
    if [ "$RUNNER_KIND" = host ]; then
        ln -sf "$OCIB" "$d/bin/ocib"
        (cd "$dir" && env -i PATH="$d/bin:/usr/bin:/bin" HOME="$d/home" "$@" \
            timeout -k 10 "$RUNNER_TIMEOUT" sh -euc "$script") >"$d/stdout" 2>"$d/stderr" </dev/null ||
            status=$?
    else
        local opts=(run --rm --name "runner-$name-$$" --network host --user 1000:1000
            --tmpfs /tmp:rw,mode=1777 -e HOME=/tmp -e OCIB_CACHE_DIR=/tmp/cache
            --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 -v "$dir:$dir" -w "$dir")
        for m in "${RUNNER_MOUNTS[@]}"; do
            opts+=(-v "$m:$m:ro")
        done
        for v in "$@"; do
            opts+=(-e "$v")
        done
        if [ -n "$RUNNER_IMAGE" ]; then
            opts+=(--entrypoint /bin/sh "$RUNNER_IMAGE" -euc "$script")
        else
            opts+=(-e PATH=/usr/bin:/bin --rootfs "$RUNNER_DIR/root" /bin/sh -euc "$script")
        fi
        _runner_podman "${opts[@]}" >"$d/stdout" 2>"$d/stderr" </dev/null || status=$?
    fi
    end=$(date +%s%N)
    RUNNER_SECONDS=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    out=$(cat "$d/stdout")
    err=$(cat "$d/stderr")
    return 0
}

runner_stop() {
    [ "${RUNNER_KIND:-}" = container ] && [ -d "${RUNNER_PODMAN:-}" ] || return 0
    _runner_podman rm -a -f >/dev/null 2>&1 || true
    _runner_podman rmi -a -f >/dev/null 2>&1 || true
    rm -rf "$RUNNER_PODMAN"
}
