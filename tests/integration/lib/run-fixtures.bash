# Fixtures for the tests of `run` layers (50-run.bats).
#
# busybox_base_ctx DIR
#     writes a context whose spec builds a small busybox image from scratch:
#     Debian's static /bin/busybox (busybox-static), applet symlinks in /bin,
#     /etc/passwd (root, app 1000:1000), /etc/group, /tmp 1777, /root,
#     /home/app; PATH=/bin. Image "localhost:5000/ocib/busybox".
# busybox_multiarch_ctx DIR
#     busybox_base_ctx for linux/amd64 and linux/arm64: the copy takes
#     bin/busybox-${TARGETARCH}, the arm64 one from the busybox-static:arm64
#     package tests/install-deps downloads to /var/cache/ocib-tests.
# base_build CTX LAYOUT [BUILD_OPTIONS...]
#     builds the base context CTX into oci:LAYOUT:1 with a cache of its own
#     beside CTX, quietly; on failure prints ocib's stderr and fails.
# base_push LAYOUT REF
#     pushes oci:LAYOUT:1 (every platform of an index) to REF; the same.
# binfmt_arm64_ready
#     mounts binfmt_misc when it is not, and registers (or enables)
#     qemu-user-static's aarch64 handler from /usr/lib/binfmt.d (root only).
# craft_layout SRC DEST TAG ENTRIES_JSON
#     copies the one-image layout SRC to DEST and adds a hand-made gzip layer
#     whose tar entries are written exactly as ENTRIES_JSON says (names with
#     "..", absolute names, symlinks, hardlinks); see craft-layout.py. Prints
#     "LAYER_DIGEST DIFF_ID".
# http_start DIR
#     serves DIR over HTTP on 127.0.0.1 (a free port, bounded lifetime);
#     exports HTTP_PORT and HTTP_PID. http_stop stops it.

RUN_FIXTURES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RUN_FIXTURES_PY=/usr/bin/python3

# The busybox applets the images get as /bin symlinks.
BUSYBOX_APPLETS="sh cat echo ls id rm mkdir touch mv cp chmod chown ln find stat wc head tail
env sed tr grep sort uniq seq cut printf test true false sleep timeout wget nc ip sha256sum
date basename dirname"

busybox_base_ctx() {
    local d=$1 bb a files=
    bb=$(command -v busybox) || { echo "busybox is not installed" >&2; return 1; }
    if ldd "$bb" >/dev/null 2>&1; then
        echo "$bb is dynamically linked; install busybox-static" >&2
        return 1
    fi
    mkdir -p "$d/bin"
    cp "$bb" "$d/bin/busybox"
    for a in $BUSYBOX_APPLETS; do
        files="$files{\"path\": \"/bin/$a\", \"symlink\": \"busybox\"},"
    done
    cat >"$d/ocib.json" <<JSON
{
  "version": 1,
  "image": "localhost:5000/ocib/busybox",
  "stages": [
    {
      "from": "scratch",
      "layers": [
        {"name": "busybox", "copy": [{"src": ["bin/busybox"], "dest": "/bin/busybox"}]},
        {"name": "applets", "files": [${files%,}]},
        {"name": "etc", "files": [
          {"path": "/etc/passwd", "content": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"},
          {"path": "/etc/group", "content": "root:x:0:\napp:x:1000:\n"},
          {"path": "/tmp", "dir": true, "mode": "1777"},
          {"path": "/root", "dir": true, "mode": "0700"},
          {"path": "/home/app", "dir": true, "owner": "1000:1000"}
        ]}
      ],
      "config": {"env": {"PATH": "/bin"}, "cmd": ["/bin/sh"]}
    }
  ]
}
JSON
}

base_build() {
    local ctx=$1 layout=$2
    shift 2
    OCIB_CACHE_DIR=$ctx.cache "$OCIB" build -C "$ctx" --output "oci:$layout:1" "$@" \
        --progress=quiet >/dev/null 2>"$ctx.err" </dev/null ||
        { cat "$ctx.err" >&2; fail "building the base $ctx into $layout failed"; return 1; }
}

base_push() {
    OCIB_CACHE_DIR=$1.push-cache "$OCIB" push "oci:$1:1" "$2" >/dev/null 2>"$1.push-err" </dev/null ||
        { cat "$1.push-err" >&2; fail "pushing the base $1 to $2 failed"; return 1; }
}

busybox_multiarch_ctx() {
    local d=$1 deb x
    busybox_base_ctx "$d" || return 1
    deb=$(ls /var/cache/ocib-tests/busybox-static_*_arm64.deb 2>/dev/null | head -n1)
    [ -n "$deb" ] || { echo "no arm64 busybox-static package: run tests/install-deps" >&2; return 1; }
    x=$(mktemp -d "${BATS_FILE_TMPDIR:-${TMPDIR:-/tmp}}/bbarm64.XXXXXX")
    dpkg-deb -x "$deb" "$x" || return 1
    mv "$d/bin/busybox" "$d/bin/busybox-amd64"
    cp "$x/bin/busybox" "$d/bin/busybox-arm64"
    rm -rf "$x"
    sed -i 's|"src": \["bin/busybox"\]|"src": ["bin/busybox-${TARGETARCH}"]|' "$d/ocib.json"
}

binfmt_arm64_ready() {
    local dir=/proc/sys/fs/binfmt_misc conf=/usr/lib/binfmt.d/qemu-aarch64.conf
    [ -e "$dir/status" ] || mount -t binfmt_misc binfmt_misc "$dir" ||
        { echo "cannot mount binfmt_misc at $dir" >&2; return 1; }
    if [ ! -e "$dir/qemu-aarch64" ]; then
        [ -r "$conf" ] || { echo "$conf missing: apt-get install qemu-user-static" >&2; return 1; }
        grep -v '^#' "$conf" >"$dir/register" ||
            { echo "cannot register $conf" >&2; return 1; }
    fi
    echo 1 >"$dir/qemu-aarch64"
}

craft_layout() {
    "$RUN_FIXTURES_PY" "$RUN_FIXTURES_DIR/craft-layout.py" "$@"
}

http_start() {
    local dir=$1 portfile i
    portfile=$(mktemp "${BATS_TEST_TMPDIR:-${TMPDIR:-/tmp}}/http-port.XXXXXX")
    rm -f "$portfile"
    # Bounded lifetime; stdout/stderr and bats' fd 3 closed so bats never waits on it.
    timeout -k 5 300 "$RUN_FIXTURES_PY" -c '
import functools, http.server, os, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
tmp = sys.argv[2] + ".tmp"
with open(tmp, "w") as f:
    f.write("%d\n" % srv.server_address[1])
os.rename(tmp, sys.argv[2])
srv.serve_forever()
' "$dir" "$portfile" >/dev/null 2>&1 </dev/null 3>&- &
    HTTP_PID=$!
    for ((i = 0; i < 100; i++)); do
        [ -s "$portfile" ] && break
        sleep 0.05
    done
    HTTP_PORT=$(cat "$portfile" 2>/dev/null)
    [ -n "$HTTP_PORT" ] || { echo "http_start: the server did not start" >&2; return 1; }
    export HTTP_PORT HTTP_PID
}

http_stop() {
    if [ -n "${HTTP_PID:-}" ]; then
        kill "$HTTP_PID" 2>/dev/null || true
        wait "$HTTP_PID" 2>/dev/null || true
        HTTP_PID=
    fi
}
