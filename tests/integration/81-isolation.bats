#!/usr/bin/env bats
# --isolation chroot (issue 16): where no user namespace can be made (the
# seccomp profile of Docker, containerd and Kubernetes' RuntimeDefault),
# root of a container that is itself the sandbox runs run layers chrooted
# into the stage root, to the layers the sandbox gives. A layer without
# network is refused unless --allow-network accepts the container's; uid
# 1000 is refused; copy-only builds work as anyone.
#
# The host tests run as root directly on this machine; the container tests
# make a podman container of a directory holding ocib, as 80-containers
# does (lib/container-root.bash).

load helpers
load lib/run-fixtures
load lib/container-root

setup_file() {
    need podman runc busybox jq python3 tar || return 1
    [ "$(id -u)" -eq 0 ] || { fail "81-isolation runs as root (chroot and podman)"; return 1; }
    local d=$BATS_FILE_TMPDIR
    container_root_make "$d/root" || return 1
    # The host's own contexts: a spec that exercises what a run step
    # captures (modes, owners, symlinks, deletions, a non-root user,
    # secrets over a base file and at a new path, a cache mount).
    mkdir -p "$d/host/rich"
    cp -a "$ROOT/work/base" "$d/host/base"
    printf 's3cret-token\n' >"$d/tok"
    printf 'group from the secret\n' >"$d/grp"
    cat >"$d/host/rich/ocib.json" <<'JSON'
{"version": 1, "stages": [{"name": "s", "from": "oci:../base:1", "workdir": "/work", "layers": [
  {"name": "root", "run": "mkdir -p /data/sub && echo a >/data/a && chmod 0750 /data/sub && ln -s a /data/link && rm /bin/wc && chown 1000:1000 /data/sub && id -u >/data/uid && echo hi >/dev/null && head -c 4 /dev/zero | busybox wc -c >/data/zero && pwd >/data/pwd"},
  {"name": "user", "user": "app", "run": "mkdir -p /home/app/x && echo u >/home/app/x/f && id -u >/home/app/uid && touch /tmp/by-app"},
  {"name": "secrets", "secrets": [{"id": "tok", "target": "/run/secrets/tok"}, {"id": "grp", "target": "/etc/group"}],
   "run": "sha256sum /run/secrets/tok | cut -c1-16 >/data/tokhash && cat /etc/group >/data/group-seen"},
  {"name": "after", "run": "cat /etc/group >/data/group-after && ls /run >/data/run-after 2>&1 || true"},
  {"name": "cache", "cache_mounts": ["/var/cache/c"],
   "run": "n=$(cat /var/cache/c/n 2>/dev/null || echo 0); echo $((n+1)) >/var/cache/c/n; echo cached-$n; echo host=$(busybox hostname); echo done >/data/cache"}]}]}
JSON
    # the same context and secrets inside the container's root
    cp -a "$d/host/rich" "$ROOT/work/rich"
    cp "$d/tok" "$d/grp" "$ROOT/work/"
    python3 "$BATS_TEST_DIRNAME/lib/seccomp-nouserns.py" /usr/share/containers/seccomp.json \
        "$d/nouserns.json" || return 1
    export NOUSERNS=$d/nouserns.json HOSTCTX=$d/host SECRETS="--secret id=tok,src=$d/tok --secret id=grp,src=$d/grp"
}

teardown_file() {
    container_root_teardown
}

setup() {
    common_setup
}

# layer_files LAYOUT N: the paths in the N-th layer (0-based) of LAYOUT's image.
layer_files() {
    local m d
    m=$(layout_manifest "$1") || return 1
    d=$(jq -r ".layers[$2].digest" "$m")
    tar -tzf "$(blob_path "$1" "$d")"
}

@test "on the host, --isolation chroot builds every kind of run layer to the sandbox's digest" {
    # shellcheck disable=SC2086
    run_ocib build -C "$HOSTCTX/rich" --output "oci:$T/sandbox" --progress=plain $SECRETS
    [ "$status" -eq 0 ] || { show_run; fail "the sandbox build failed"; }
    grep -q 'host=ocib$' <<<"$err" || { show_run; fail "the sandbox's command did not see its own hostname"; }
    local sandbox=$out
    # shellcheck disable=SC2086
    run_ocib build -C "$HOSTCTX/rich" --output "oci:$T/chroot" --progress=plain --no-cache \
        --isolation chroot --allow-network $SECRETS
    [ "$status" -eq 0 ] || { show_run; fail "the chroot build failed"; }
    grep -q "host=$(hostname)\$" <<<"$err" || { show_run; fail "the command did not run chrooted (no UTS namespace)"; }
    [ "$out" = "$sandbox" ] || {
        ocib_diff=$("$OCIB" diff "oci:$T/sandbox" "oci:$T/chroot" 2>&1 || true)
        fail "chroot built $out, the sandbox $sandbox: $ocib_diff"
    }
    grep -q 'cached-1' <<<"$err" || { show_run; fail "the cache mount did not persist from the sandbox build to the chroot build"; }
}

@test "under chroot, secrets are seen at their targets only by their command, never in a layer, and a base file under one comes back" {
    # shellcheck disable=SC2086
    run_ocib build -C "$HOSTCTX/rich" --output "oci:$T/out:t" --isolation=chroot --allow-network $SECRETS
    [ "$status" -eq 0 ] || { show_run; fail "the chroot build failed"; }
    local files
    files=$(layer_files "$T/out" 5) # base: 3 layers, then root, user, secrets
    grep -qx 'data/tokhash' <<<"$files" || fail "layer 5 is not the secrets layer: $files"
    ! grep -Eq '^(run|etc)(/|$)' <<<"$files" || fail "the secrets layer holds a secret's target: $files"
    files=$(layer_files "$T/out" 6)
    ! grep -Eq '^(run|etc)(/|$)' <<<"$files" || fail "the layer after holds a secret's target: $files"
    umoci_unpack "$T/out" t "$T/bundle"
    local r=$T/bundle/rootfs want
    want=$(sha256sum "$BATS_FILE_TMPDIR/tok" | cut -c1-16)
    assert_eq "the command saw another secret" "$(cat "$r/data/tokhash")" "$want"
    assert_eq "the secret over /etc/group" "$(cat "$r/data/group-seen")" "group from the secret"
    assert_eq "/etc/group after its secret" "$(cat "$r/data/group-after")" "$(printf 'root:x:0:\napp:x:1000:')"
    assert_eq "/etc/group in the image" "$(cat "$r/etc/group")" "$(printf 'root:x:0:\napp:x:1000:')"
    [ ! -e "$r/run/secrets" ] || fail "/run/secrets reached the image"
    ! grep -rq 's3cret-token' "$r" || fail "the secret's content reached the image"
    ! grep -rq 's3cret-token' "$OCIB_CACHE_DIR/blobs" || fail "the secret's content reached a cached blob"
    [ -z "$(find "$OCIB_CACHE_DIR/rootfs" -maxdepth 1 -name '*.aside-*')" ] || fail "an aside directory was left"
    [ -z "$(find "$OCIB_CACHE_DIR/rootfs" -type c)" ] || fail "device nodes were left in the stage roots"
    assert_eq "the user layer's uid" "$(cat "$r/home/app/uid")" 1000
    local m d
    m=$(layout_manifest "$T/out" t)
    d=$(jq -r '.layers[4].digest' "$m")
    tar --numeric-owner -tvzf "$(blob_path "$T/out" "$d")" | grep -q ' 1000/1000 .* home/app/x/f$' ||
        fail "the file the user made is not 1000:1000 in its layer"
    assert_eq "/dev/zero" "$(cat "$r/data/zero")" 4
    assert_eq "the workdir" "$(cat "$r/data/pwd")" /work
}

@test "under chroot, what a command leaves running is killed when it ends" {
    mkdir -p "$T/ctx"
    cp -a "$HOSTCTX/base" "$T/base"
    cat >"$T/ctx/ocib.json" <<'JSON'
{"version": 1, "stages": [{"from": "oci:../base:1", "layers": [
  {"name": "bg", "run": "sleep 7771 & busybox setsid sleep 7772 & (sleep 7773 &) ; echo started"}]}]}
JSON
    local t0=$SECONDS
    run_ocib build -C "$T/ctx" --output "oci:$T/out" --isolation chroot --allow-network --progress=plain
    [ "$status" -eq 0 ] || { show_run; fail "the build failed"; }
    [ $((SECONDS - t0)) -lt 60 ] || fail "the build waited for its background processes"
    sleep 0.5
    ! pgrep -f 'sleep 777[123]' >/dev/null || { pgrep -af 'sleep 777'; pkill -f 'sleep 777[123]'; fail "a background process of the command outlived it"; }
}

# chroot_cancel SIGNAL STATUS: SIGNAL to ocib while a chrooted command with
# a cache mount and a secret runs: ocib exits STATUS, the command and what
# it started are gone, a SIGTERM puts the cache directory back and leaves
# no secret or aside directory, and a rebuild runs.
chroot_cancel() {
    local sig=$1 want=$2 mark=c$RANDOM$$ st=0 i
    mkdir -p "$T/ctx"
    cp -a "$HOSTCTX/base" "$T/base"
    cat >"$T/ctx/ocib.json" <<JSON
{"version": 1, "stages": [{"from": "oci:../base:1", "layers": [
  {"name": "long", "cache_mounts": ["/var/cache/m"], "secrets": [{"id": "tok", "target": "/run/tok"}],
   "run": "echo started-$mark; sleep 7774 & while :; do echo x >>/var/cache/m/ticks-$mark; sleep 0.1; done"}]}]}
JSON
    env --default-signal=INT,TERM,HUP "$OCIB" build -C "$T/ctx" --output "oci:$T/out" \
        --isolation chroot --allow-network --secret "id=tok,src=$BATS_FILE_TMPDIR/tok" \
        >"$T/c.out" 2>"$T/c.err" </dev/null &
    local pid=$!
    for ((i = 0; i < 600; i++)); do
        grep -q "started-$mark" "$T/c.err" 2>/dev/null && break
        sleep 0.1
    done
    sleep 0.3
    kill -s "$sig" "$pid"
    wait "$pid" || st=$?
    [ "$st" -eq "$want" ] || { cat "$T/c.err" >&2; fail "ocib killed by SIG$sig exited $st, expected $want"; return 1; }
    for ((i = 0; i < 50; i++)); do
        pgrep -f "ticks-$mark|sleep 7774" >/dev/null || break
        sleep 0.1
    done
    ! pgrep -af "ticks-$mark|sleep 7774" >&2 || { pkill -f "ticks-$mark|sleep 7774"; fail "the command outlived ocib"; return 1; }
    if [ "$sig" != KILL ]; then
        [ -n "$(find "$OCIB_CACHE_DIR/mounts" -maxdepth 2 -name "ticks-$mark")" ] ||
            { fail "the cache directory did not go back to the cache"; return 1; }
        [ -z "$(find "$OCIB_CACHE_DIR" -name '*.aside-*' -o -path '*/run/tok')" ] ||
            { fail "a secret or an aside directory was left"; return 1; }
    fi
    sed -i 's/; sleep 7774 .*done"/; echo rebuilt"/' "$T/ctx/ocib.json"
    OCIB_TEST_TIMEOUT=60 run_ocib build -C "$T/ctx" --output "oci:$T/out" --isolation chroot \
        --allow-network --secret "id=tok,src=$BATS_FILE_TMPDIR/tok"
    [ "$status" -eq 0 ] || { show_run; fail "the rebuild after SIG$sig failed"; return 1; }
    assert_contains "the command ran" "$err" "rebuilt"
}

@test "under chroot, SIGTERM to ocib ends the command and all it started, puts the cache directory back and exits 143" {
    chroot_cancel TERM 143
}

@test "under chroot, SIGKILL to ocib ends the command and all it started; a rebuild runs" {
    chroot_cancel KILL 137
}

@test "chroot refuses a layer without network unless --allow-network (exit 2, naming stage and layer); --allow-network without chroot is an error" {
    run_ocib build -C "$HOSTCTX/rich" --output "oci:$T/out" --isolation chroot \
        --secret "id=tok,src=$BATS_FILE_TMPDIR/tok" --secret "id=grp,src=$BATS_FILE_TMPDIR/grp"
    assert_failed 2 'stages\[0\]\.layers\[0\]' 'stage s, layer root' '"network": "none"' 'allow-network'
    [ ! -e "$T/out" ] || fail "an output was written"
    OCIB_ISOLATION=chroot run_ocib build -C "$HOSTCTX/rich" --output "oci:$T/out" \
        --secret "id=tok,src=$BATS_FILE_TMPDIR/tok" --secret "id=grp,src=$BATS_FILE_TMPDIR/grp"
    assert_failed 2 'stage s, layer root'
    # shellcheck disable=SC2086
    run_ocib build -C "$HOSTCTX/rich" --output "oci:$T/out" --allow-network $SECRETS
    assert_failed 2 'allow-network is for --isolation chroot'
    OCIB_ISOLATION=jail run_ocib build -C "$HOSTCTX/rich"
    assert_failed 2 'OCIB_ISOLATION: invalid value .jail.'
    run_ocib build -C "$HOSTCTX/rich" --isolation=jail
    assert_failed 2 '--isolation: invalid value .jail.: expected sandbox or chroot'
}

@test "in a container denying user namespaces, as root with Docker's capabilities, --isolation chroot builds the two-stage spec and its run layer to the host's digests" {
    run_ocib build -C "$ROOT/work/app" --output "oci:$T/host" --progress=plain
    [ "$status" -eq 0 ] || { show_run; fail "the host build failed"; }
    local host=$out
    run_ocib build -C "$ROOT/work/app" --output "oci:$T/host-build" --target build
    [ "$status" -eq 0 ] || { show_run; fail "the host build of the build stage failed"; }
    local host_build=$out
    # Docker's /tmp is the container's own file system: device nodes work
    # there, unlike on podman's nodev tmpfs (the next test)
    CONTAINER_TMP=rw,mode=1777,dev in_container --security-opt "seccomp=$NOUSERNS" $DOCKER_CAPS -- \
        /usr/bin/ocib build -C /work/app --output oci:/tmp/out --progress=plain \
        --isolation chroot --allow-network
    [ "$status" -eq 0 ] || { show_container; fail "the chroot build in the container failed"; }
    [ "$out" = "$host" ] || fail "chroot in the container built $out, the host's sandbox $host"
    grep -q 'no /proc' <<<"$err" || { show_container; fail "no note says that run layers have no /proc"; }
    CONTAINER_TMP=rw,mode=1777,dev in_container --security-opt "seccomp=$NOUSERNS" $DOCKER_CAPS \
        -e OCIB_ISOLATION=chroot -- \
        /usr/bin/ocib build -C /work/app --output oci:/tmp/out --target build --allow-network
    [ "$status" -eq 0 ] || { show_container; fail "the chroot build of the build stage failed"; }
    [ "$out" = "$host_build" ] || fail "the run layer built under chroot ($out) differs from the sandbox's ($host_build)"
}

@test "in a container denying user namespaces, chroot builds secrets, a cache mount, a non-root user and deletions to the host sandbox's digest" {
    # shellcheck disable=SC2086
    run_ocib build -C "$ROOT/work/rich" --output "oci:$T/host" $SECRETS
    [ "$status" -eq 0 ] || { show_run; fail "the host build failed"; }
    local host=$out
    CONTAINER_TMP=rw,mode=1777,dev in_container --security-opt "seccomp=$NOUSERNS" $DOCKER_CAPS -- \
        /usr/bin/ocib build -C /work/rich --output oci:/tmp/out --progress=plain \
        --isolation chroot --allow-network --secret id=tok,src=/work/tok --secret id=grp,src=/work/grp
    [ "$status" -eq 0 ] || { show_container; fail "the chroot build in the container failed"; }
    [ "$out" = "$host" ] || { show_container; fail "chroot in the container built $out, the host's sandbox $host"; }
}

@test "in a container denying user namespaces: the sandbox's error offers --isolation chroot to root; network none is refused; without device nodes chroot says why" {
    in_container --security-opt "seccomp=$NOUSERNS" $DOCKER_CAPS -- \
        /usr/bin/ocib build -C /work/app --output oci:/tmp/out
    [ "$status" -eq 1 ] || { show_container; fail "expected the sandbox to fail"; }
    grep -q '^ocib: .*a seccomp filter refuses it.*--isolation chroot' <<<"$err" ||
        { show_container; fail "the sandbox's error does not offer --isolation chroot"; }
    in_container --security-opt "seccomp=$NOUSERNS" $DOCKER_CAPS -- \
        /usr/bin/ocib build -C /work/app --output oci:/tmp/out --isolation chroot
    [ "$status" -eq 2 ] || { show_container; fail "network none under chroot: expected exit 2"; }
    grep -q '^ocib: .*stage build, layer compile: "network": "none"' <<<"$err" ||
        { show_container; fail "the error does not name the stage and layer"; }
    ! grep -q 'layer-start\|compile.*built' <<<"$err" || { show_container; fail "something ran"; }
    # a cache on a nodev file system (podman's tmpfs)
    in_container --security-opt "seccomp=$NOUSERNS" $DOCKER_CAPS -- \
        /usr/bin/ocib build -C /work/app --output oci:/tmp/out --isolation chroot --allow-network
    [ "$status" -eq 1 ] || { show_container; fail "on nodev: expected exit 1"; }
    grep -q '^ocib: stage build, layer compile: --isolation chroot: cannot make /dev/null in the stage root: its file system is mounted nodev (put the cache, --cache-dir, on one without nodev)' <<<"$err" ||
        { show_container; fail "the error does not name nodev"; }
    # podman's own defaults lack CAP_MKNOD (Docker's have it)
    CONTAINER_TMP=rw,mode=1777,dev in_container --security-opt "seccomp=$NOUSERNS" -- \
        /usr/bin/ocib build -C /work/app --output oci:/tmp/out --isolation chroot --allow-network
    [ "$status" -eq 1 ] || { show_container; fail "without CAP_MKNOD: expected exit 1"; }
    grep -q '^ocib: stage build, layer compile: --isolation chroot: cannot make /dev/null in the stage root: mknod: Operation not permitted (it needs CAP_MKNOD' <<<"$err" ||
        { show_container; fail "the error does not name CAP_MKNOD"; }
    # a container with a user namespace of its own, where no one makes nodes
    # (its root must be reachable to the ids it maps to)
    local p=$ROOT
    while [ "$p" != / ]; do
        p=$(dirname "$p")
        chmod o+x "$p"
    done
    CONTAINER_TMP=rw,mode=1777,dev in_container --security-opt "seccomp=$NOUSERNS" $DOCKER_CAPS \
        --uidmap 0:200000:65536 --gidmap 0:200000:65536 -- \
        /usr/bin/ocib build -C /work/app --output oci:/tmp/out --isolation chroot --allow-network
    [ "$status" -eq 1 ] || { show_container; fail "in a user namespace: expected exit 1"; }
    grep -q '^ocib: stage build, layer compile: --isolation chroot: cannot make /dev/null in the stage root: this container has a user namespace of its own' <<<"$err" ||
        { show_container; fail "the error does not say why no node can be made"; }
}

@test "in a container denying user namespaces, as uid 1000: chroot is refused naming the uid; copy-only builds work with either isolation" {
    in_container --security-opt "seccomp=$NOUSERNS" $DOCKER_CAPS --user 1000 -- \
        /usr/bin/ocib build -C /work/app --output oci:/tmp/out --isolation chroot --allow-network
    [ "$status" -eq 1 ] || { show_container; fail "expected exit 1"; }
    grep -q '^ocib: --isolation chroot needs root in the container (uid 1000)' <<<"$err" ||
        { show_container; fail "the error does not say chroot needs root"; }
    run_ocib build -C "$ROOT/work/copy" --output "oci:$T/host"
    [ "$status" -eq 0 ] || { show_run; fail "the host's copy-only build failed"; }
    local host=$out
    in_container --security-opt "seccomp=$NOUSERNS" $DOCKER_CAPS --user 1000 -- \
        /usr/bin/ocib build -C /work/copy --output oci:/tmp/out
    [ "$status" -eq 0 ] || { show_container; fail "a copy-only build failed as uid 1000"; }
    [ "$out" = "$host" ] || fail "the copy-only build gave $out, the host $host"
    in_container --security-opt "seccomp=$NOUSERNS" $DOCKER_CAPS --user 1000 -e OCIB_ISOLATION=chroot -- \
        /usr/bin/ocib build -C /work/copy --output oci:/tmp/out
    [ "$status" -eq 0 ] || { show_container; fail "a copy-only build with OCIB_ISOLATION=chroot failed as uid 1000"; }
    [ "$out" = "$host" ] || fail "the copy-only build under chroot gave $out, the host $host"
}
