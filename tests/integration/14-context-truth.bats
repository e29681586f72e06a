#!/usr/bin/env bats
# What a team moving from `docker build` relies on: its .dockerignore is read
# (when there is no .ocibignore); ocib's own outputs (the default ./ocib-out,
# --output paths, the cache, the digest file) are never part of the context,
# so a build from inside the context hits the cache the second time; and
# setuid, setgid and sticky bits survive the 0644/0755 normalisation, while
# "mode": "preserve" keeps a source's exact bits; and the git SHA tag is used
# only when the commit holds every file the build reads. Judged with tar
# listings of the layers (Python's tarfile), umoci, skopeo and the real
# registry.

load helpers
load lib/registry

setup_file() {
    export REGISTRY_MAX_SECONDS=600
    registry_start REG
}

teardown_file() {
    registry_stop REG
}

setup() {
    common_setup
    mkdir -p ctx
    cd ctx
    printf 'app\n' >app.txt
    printf 'token=hunter2\n' >secret.txt
    mkdir -p node_modules/left-pad
    printf '{}\n' >node_modules/left-pad/package.json
    cat >ocib.json <<'JSON'
{"version": 1, "stages": [{"name": "app", "from": "scratch",
  "layers": [{"name": "src", "copy": [{"src": ["."], "dest": "/app/"}]}]}]}
JSON
}

# paths OUTDIR: the paths of the layer in the layout at OUTDIR.
paths() {
    layer_listing "$1" 0 | norm_listing | cut -f1 | sort
}

@test ".dockerignore is read when there is no .ocibignore, and .ocibignore wins when both exist" {
    printf 'secret.txt\nnode_modules\n' >.dockerignore
    run_ocib build -C . --output oci:../out1
    [ "$status" -eq 0 ] || { show_run; fail "build failed"; return 1; }
    listing=$(paths ../out1)
    assert_contains "layer" "$listing" "app/app.txt"
    [[ $listing != *secret.txt* ]] || fail "secret.txt (excluded by .dockerignore) is in the image"
    [[ $listing != *node_modules* ]] || fail "node_modules (excluded by .dockerignore) is in the image"
    # .ocibignore takes over entirely (as BuildKit's Dockerfile.dockerignore does).
    printf 'node_modules\n' >.ocibignore
    run_ocib build -C . --output oci:../out2
    [ "$status" -eq 0 ] || { show_run; fail "build failed"; return 1; }
    listing=$(paths ../out2)
    assert_contains "layer" "$listing" "app/secret.txt"
    [[ $listing != *node_modules* ]] || fail "node_modules (excluded by .ocibignore) is in the image"
    # An explicit copy of an excluded file names the file that excludes it.
    rm .ocibignore
    cat >ocib.json <<'JSON'
{"version": 1, "stages": [{"name": "app", "from": "scratch",
  "layers": [{"copy": [{"src": ["secret.txt"], "dest": "/app/"}]}]}]}
JSON
    run_ocib build -C . --output oci:../out3
    assert_failed 1 "secret.txt" "excluded \(by \.dockerignore"
}

@test "ocib's own outputs are never context: a build from inside the context hits the cache the second time" {
    local d1 d2 d3
    run_ocib build
    d1=$out
    [[ $d1 == sha256:* ]] || { show_run; fail "no digest"; return 1; }
    [ -f ocib-out/index.json ] || fail "the default output is not ./ocib-out"
    run_ocib build
    d2=$out
    run_ocib build
    d3=$out
    assert_eq "second build" "$d2" "$d1"
    assert_eq "third build" "$d3" "$d1"
    [[ $(paths ocib-out) != *ocib-out* ]] || fail "ocib-out is in its own image"
    [[ $err == *"cached"* || $err == *"hit"* ]] || { show_run; fail "the third build did not hit the cache"; }
    # Named outputs, the cache and the digest file inside the context too.
    rm -rf ocib-out
    run_ocib build -C . --output oci:out --output docker-archive:img.tar \
        --cache-dir .ocib-cache --digest-file digest.txt
    [ "$status" -eq 0 ] || { show_run; fail "build failed"; return 1; }
    d1=$(layout_digest out)
    run_ocib build -C . --output oci:out --output docker-archive:img.tar \
        --cache-dir .ocib-cache --digest-file digest.txt
    [ "$status" -eq 0 ] || { show_run; fail "build failed"; return 1; }
    listing=$(paths out)
    for p in out img.tar .ocib-cache digest.txt; do
        [[ $listing != *"app/$p"* ]] || fail "$p (ocib's own output) is in the image"
    done
    assert_eq "digest with outputs in the context" "$(layout_digest out)" "$d1"
    # Copying an output by name is an error that says why.
    cat >ocib.json <<'JSON'
{"version": 1, "stages": [{"name": "app", "from": "scratch",
  "layers": [{"copy": [{"src": ["out"], "dest": "/x/"}]}]}]}
JSON
    run_ocib build -C . --output oci:out
    assert_failed 1 "'out'" "ocib's own output"
}

@test "setuid, setgid and sticky bits are kept; \"mode\": \"preserve\" keeps the exact bits" {
    mkdir -p bin tmp etc
    printf '#!/bin/sh\n' >bin/su && chmod 4755 bin/su
    printf '#!/bin/sh\n' >bin/wall && chmod 2711 bin/wall
    chmod 1777 tmp
    printf 'root:*:1::::::\n' >etc/shadow && chmod 0640 etc/shadow
    cat >ocib.json <<'JSON'
{"version": 1, "stages": [{"name": "app", "from": "scratch",
  "layers": [{"copy": [{"src": ["."], "dest": "/norm/"}]},
             {"copy": [{"src": ["."], "dest": "/exact/", "mode": "preserve"}]}]}]}
JSON
    run_ocib build -C . --output oci:../out
    [ "$status" -eq 0 ] || { show_run; fail "build failed"; return 1; }
    mode_of() { layer_listing ../out "$1" | norm_listing | awk -F'\t' -v p="$2" '$1 == p { print $3 }'; }
    assert_eq "su" "$(mode_of 0 norm/bin/su)" 4755
    assert_eq "wall" "$(mode_of 0 norm/bin/wall)" 2755
    assert_eq "tmp" "$(mode_of 0 norm/tmp)" 1755
    assert_eq "shadow (normalised)" "$(mode_of 0 norm/etc/shadow)" 0644
    assert_eq "su (preserve)" "$(mode_of 1 exact/bin/su)" 4755
    assert_eq "wall (preserve)" "$(mode_of 1 exact/bin/wall)" 2711
    assert_eq "tmp (preserve)" "$(mode_of 1 exact/tmp)" 1777
    assert_eq "shadow (preserve)" "$(mode_of 1 exact/etc/shadow)" 0640
    # umoci unpacks the same bits.
    umoci_unpack ../out latest bundle
    assert_eq "unpacked su" "$(stat -c %a bundle/rootfs/norm/bin/su)" 4755
    assert_eq "unpacked shadow" "$(stat -c %a bundle/rootfs/exact/etc/shadow)" 640
    # A mode that is neither octal nor "preserve" is a spec error naming the key.
    sed -i 's/"preserve"/"keep"/' ocib.json
    run_ocib build -C . --output oci:../out2
    assert_failed 2 'layers\[1\]\.copy\[0\]\.mode' '"preserve"'
}

# commit_all: a git repository holding every file of the context.
commit_all() {
    git init -q . && git add -A &&
        git -c user.name=t -c user.email=t@example.com commit -qm "$1"
}

# revision REF: the revision annotation of a pushed manifest ("" when none).
revision() {
    skopeo inspect --raw --tls-verify=false "docker://$1" |
        jq -r '.annotations["org.opencontainers.image.revision"] // ""'
}

@test "the SHA tag is pushed only when the commit holds every file the build reads" {
    cat >ocib.json <<JSON
{"version": 1, "image": "$REG_ADDR/truth/app", "stages": [{"name": "app", "from": "scratch",
  "layers": [{"name": "src", "copy": [{"src": ["."], "dest": "/app/"}]}]}]}
JSON
    printf 'node_modules\n.dockerignore\n' >.dockerignore
    printf 'ocib-out/\n' >.gitignore
    commit_all one
    local sha full first
    sha=$(git rev-parse --short HEAD)
    full=$(git rev-parse HEAD)
    run_ocib build --push
    [ "$status" -eq 0 ] || { show_run; fail "clean push failed"; return 1; }
    first=${out#*@}
    assert_eq "revision of the clean push" "$(revision "$REG_ADDR/truth/app:$sha")" "$full"
    # An edit the commit does not hold: the SHA tag is refused, the files named.
    printf 'edited\n' >>app.txt
    printf 'new\n' >new.txt
    run_ocib build --push
    assert_failed 1 "$sha" "app.txt" "new.txt" "commit them, or give --tag"
    assert_eq "the SHA tag still names the clean image" \
        "$(skopeo inspect --tls-verify=false "docker://$REG_ADDR/truth/app:$sha" | jq -r .Digest)" "$first"
    # With an explicit tag it pushes, without claiming the commit.
    run_ocib build --push --tag "$REG_ADDR/truth/app:wip"
    [ "$status" -eq 0 ] || { show_run; fail "push with --tag failed"; return 1; }
    assert_contains "note" "$err" "not recording commit $sha"
    assert_eq "revision of a dirty build" "$(revision "$REG_ADDR/truth/app:wip")" ""
    # Files the build does not read do not count: excluded, or not copied.
    git checkout -q app.txt && rm new.txt
    printf 'x\n' >node_modules/untracked.js
    run_ocib build --push
    [ "$status" -eq 0 ] || { show_run; fail "an excluded untracked file blocked the push"; return 1; }
    # A git-ignored file that the build copies is not in the commit either.
    printf 'local.env\n' >>.gitignore && git add .gitignore &&
        git -c user.name=t -c user.email=t@example.com commit -qm two
    printf 'SECRET=1\n' >local.env
    run_ocib build --push
    assert_failed 1 "local.env"
}
