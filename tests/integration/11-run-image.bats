#!/usr/bin/env bats
# The images ocib builds actually run: a busybox base is built from scratch,
# then an application image on top of it (from "oci:DIR" and from
# "docker-archive:FILE"), and podman (runc, vfs) loads and runs them.

load helpers

setup_file() {
    need podman runc busybox || return 1
    # podman state for this file only; nothing is shared with the host's.
    export PODMAN_BASE=$BATS_FILE_TMPDIR/podman
}

setup() {
    common_setup
    need podman runc
    BUSYBOX=$(command -v busybox)
    # The static busybox from busybox-static runs without any library in the image.
    if ldd "$BUSYBOX" >/dev/null 2>&1; then
        fail "$BUSYBOX is dynamically linked; install busybox-static"
    fi
}

teardown_file() {
    if [ -d "${PODMAN_BASE:-}" ]; then
        podman_cmd rm -a -f >/dev/null 2>&1 || true
        podman_cmd rmi -a -f >/dev/null 2>&1 || true
    fi
}

# build_busybox_base OUTPUT...: a scratch image with /bin/busybox and the
# applet symlinks sh, echo and cat; sets BASE_DIGEST.
build_busybox_base() {
    mkdir -p bbctx/bin
    cp "$BUSYBOX" bbctx/bin/busybox
    cat >bbctx/ocib.json <<'EOF'
{
  "version": 1,
  "image": "localhost:5000/ocib/busybox:1",
  "stages": [
    {
      "from": "scratch",
      "layers": [
        {"name": "busybox", "copy": [{"src": ["bin/busybox"], "dest": "/bin/busybox"}]},
        {"name": "applets", "files": [
          {"path": "/bin/sh", "symlink": "busybox"},
          {"path": "/bin/echo", "symlink": "busybox"},
          {"path": "/bin/cat", "symlink": "busybox"}
        ]}
      ],
      "config": {"env": {"PATH": "/bin"}, "cmd": ["/bin/sh"]}
    }
  ]
}
EOF
    build_ok --repo localhost:5000/ocib/busybox -C bbctx "$@"
    BASE_DIGEST=$DIGEST
}

# write_app_spec FROM: an application context whose image prints hello.txt.
write_app_spec() {
    mkdir -p app
    printf 'Hello from an ocib image, run by podman.\n' >app/hello.txt
    cat >app/ocib.json <<EOF
{
  "version": 1,
  "image": "localhost:5000/ocib/run-app",
  "stages": [
    {
      "from": "$1",
      "layers": [
        {"name": "greeting", "copy": [{"src": ["hello.txt"], "dest": "/hello.txt"}]}
      ],
      "config": {"env": {"GREETING": "hi"}, "cmd": ["/bin/cat", "/hello.txt"]}
    }
  ]
}
EOF
}

@test "an image built on an oci:DIR base runs under podman (loaded from the layout and from the docker-archive)" {
    build_busybox_base --output "oci:$T/base"
    write_app_spec "oci:$T/base:1"
    build_ok --repo localhost:5000/ocib/run-app -C app --output "oci:$T/app-oci" --output "docker-archive:$T/app.tar"
    oci_validate "$T/app-oci"

    local loaded id got
    loaded=$(podman_cmd load -q -i "$T/app.tar" 2>&1) || fail "podman load -i docker-archive failed: $loaded"
    assert_contains "podman load" "$loaded" "localhost:5000/ocib/run-app:latest"
    got=$(podman_run localhost:5000/ocib/run-app:latest 2>"$T/podman.err") || fail "podman run of the loaded archive failed: $(cat "$T/podman.err")"
    assert_eq "container output (docker-archive)" "$got" "$(cat app/hello.txt)"

    id=$(podman_pull_oci "$T/app-oci" latest)
    got=$(podman_run "$id" 2>"$T/podman.err") || fail "podman run of the OCI layout image failed: $(cat "$T/podman.err")"
    assert_eq "container output (oci layout)" "$got" "$(cat app/hello.txt)"
}

@test "the config's env is merged over the base's: PATH from the base, GREETING from the app" {
    build_busybox_base --output "oci:$T/base"
    write_app_spec "oci:$T/base:1"
    build_ok -C app --output "docker-archive:$T/app.tar"
    podman_cmd load -q -i "$T/app.tar" >/dev/null
    local got
    got=$(podman_run localhost:5000/ocib/run-app:latest /bin/sh -c 'echo "$GREETING:$PATH"' 2>"$T/podman.err") ||
        fail "podman run failed: $(cat "$T/podman.err")"
    assert_eq "GREETING:PATH inside the container" "$got" "hi:/bin"
    got=$(podman_run localhost:5000/ocib/run-app:latest /bin/sh -c 'ls -l /bin/cat; test -x /bin/busybox && echo exec' 2>"$T/podman.err") ||
        fail "podman run failed: $(cat "$T/podman.err")"
    assert_contains "the applet symlink" "$got" "/bin/cat -> busybox"
    assert_contains "busybox is executable" "$got" "exec"
}

@test "an image built on a docker-archive:FILE base runs under podman" {
    build_busybox_base --output "docker-archive:$T/base.tar" --output "oci:$T/base"
    write_app_spec "docker-archive:$T/base.tar"
    build_ok -C app --tag localhost:5000/ocib/run-app:from-archive --output "docker-archive:$T/app.tar"
    podman_cmd load -q -i "$T/app.tar" >/dev/null || fail "podman load failed"
    local got
    got=$(podman_run localhost:5000/ocib/run-app:from-archive 2>"$T/podman.err") ||
        fail "podman run failed: $(cat "$T/podman.err")"
    assert_eq "container output" "$got" "$(cat app/hello.txt)"
}

@test "base layers are reused as they are: same digests, gzip kept under --compression zstd; base annotations set" {
    build_busybox_base --output "oci:$T/base"
    local bm
    bm=$(layout_manifest "$T/base" 1)
    write_app_spec "oci:$T/base:1"
    build_ok -C app --compression zstd --output "oci:$T/app-oci"
    local am
    am=$(layout_manifest "$T/app-oci")
    assert_eq "layer count" "$(jq '.layers | length' "$am")" 3
    assert_eq "base layers in the app image" "$(jq -c '.layers[:2]' "$am")" "$(jq -c '.layers' "$bm")"
    assert_eq "the app's own layer" "$(jq -r '.layers[2].mediaType' "$am")" "$MT_ZSTD"
    assert_eq "base diff_ids come first" \
        "$(jq -c '.rootfs.diff_ids[:2]' "$(layout_config "$T/app-oci")")" \
        "$(jq -c '.rootfs.diff_ids' "$(layout_config "$T/base" 1)")"
    assert_eq "org.opencontainers.image.base.digest" \
        "$(jq -r '.annotations["org.opencontainers.image.base.digest"]' "$am")" "$BASE_DIGEST"
    jq -e '.annotations["org.opencontainers.image.base.name"] | type == "string" and length > 0' "$am" >/dev/null ||
        fail "no org.opencontainers.image.base.name annotation: $(jq -c .annotations "$am")"
    # podman reads mixed gzip/zstd images too.
    local id got
    id=$(podman_pull_oci "$T/app-oci" latest)
    got=$(podman_run "$id" 2>"$T/podman.err") || fail "podman run failed: $(cat "$T/podman.err")"
    assert_eq "container output" "$got" "$(cat app/hello.txt)"
}

@test "the base may be named without a tag when the layout holds one image" {
    build_busybox_base --output "oci:$T/base"
    write_app_spec "oci:$T/base"
    build_ok -C app --output "oci:$T/app-oci"
    assert_eq "base layers" "$(jq -c '[.layers[:2][].digest]' "$(layout_manifest "$T/app-oci")")" \
        "$(jq -c '[.layers[].digest]' "$(layout_manifest "$T/base")")"
}

@test "an env the app sets replaces the base's value instead of duplicating it" {
    build_busybox_base --output "oci:$T/base"
    write_app_spec "oci:$T/base:1"
    jq '.stages[0].config.env.PATH = "/usr/local/bin:/bin"' app/ocib.json >app.json && mv app.json app/ocib.json
    build_ok -C app --output "docker-archive:$T/app.tar" --output "oci:$T/app-oci"
    assert_eq "PATH entries in the config" \
        "$(jq -c '[.config.Env[] | select(startswith("PATH="))]' "$(layout_config "$T/app-oci")")" '["PATH=/usr/local/bin:/bin"]'
    podman_cmd load -q -i "$T/app.tar" >/dev/null || fail "podman load failed"
    local got
    got=$(podman_run localhost:5000/ocib/run-app:latest /bin/sh -c 'echo "$PATH"' 2>"$T/podman.err") ||
        fail "podman run failed: $(cat "$T/podman.err")"
    assert_eq "PATH inside the container" "$got" /usr/local/bin:/bin
}


@test "the greet example, as the README runs it: podman loads the docker-archive and its one program prints the greeting" {
    [ "$(host_arch)" = amd64 ] || skip "greet's program is x86-64"
    build_ok --repo localhost:5000/ocib/greet -C "$BATS_TEST_DIRNAME/../../specs/examples/greet" \
        --tag localhost:5000/ocib/greet:1 --output "docker-archive:$T/greet.tar"
    podman_cmd load -q -i "$T/greet.tar" >/dev/null 2>"$T/load.err" || fail "podman load failed: $(cat "$T/load.err")"
    got=$(podman_run localhost:5000/ocib/greet:1 2>"$T/podman.err") || fail "podman run of greet failed: $(cat "$T/podman.err")"
    assert_eq "what greet prints" "$got" "Hello from an image that ocib built, without a daemon."
}
