#!/usr/bin/env bats
# `ocib inspect` on OCI layouts and docker-archives (human and --json), and
# the small commands: version, help.

load helpers

setup() {
    common_setup
}

# build_layered: the layered example to oci:$T/out and docker-archive:$T/img.tar.
build_layered() {
    CTX=$(copy_example layered)
    build_ok -C "$CTX" --output "oci:$T/out" --output "docker-archive:$T/img.tar"
    MANIFEST=$(layout_manifest "$T/out" 1.0)
    CONFIG=$(layout_config "$T/out" 1.0)
}

@test "inspect oci:DIR:tag shows the digest and every layer with its size" {
    build_layered
    run_ocib inspect "oci:$T/out:1.0"
    [ "$status" -eq 0 ] || { show_run; fail "ocib inspect exited $status"; }
    assert_contains "inspect output" "$out" "$DIGEST"
    local d size
    while read -r d size; do
        assert_contains "inspect output (layer digest)" "$out" "$d"
        # Sizes as bytes or human units; at least the layer's line must carry a number.
        printf '%s\n' "$out" | grep -F "${d#sha256:}" | grep -Eq '[0-9]' ||
            fail "no size shown for layer $d"
    done < <(jq -r '.layers[] | "\(.digest) \(.size)"' "$MANIFEST")
    # A layout with one image needs no tag.
    run_ocib inspect "oci:$T/out"
    [ "$status" -eq 0 ] || { show_run; fail "ocib inspect oci:DIR (no tag) exited $status"; }
    assert_contains "inspect oci:DIR" "$out" "$DIGEST"
}

@test "inspect --json has the digest, manifest, config and layers with digest and diff_id" {
    build_layered
    run_ocib inspect --json "oci:$T/out:1.0"
    [ "$status" -eq 0 ] || { show_run; fail "ocib inspect --json exited $status"; }
    printf '%s' "$out" | jq -e . >/dev/null || fail "inspect --json is not JSON: $out"
    assert_eq ".digest" "$(jq -r .digest <<<"$out")" "$DIGEST"
    assert_eq ".manifest" "$(jq -cS .manifest <<<"$out")" "$(jq -cS . "$MANIFEST")"
    assert_eq ".config" "$(jq -cS .config <<<"$out")" "$(jq -cS . "$CONFIG")"
    assert_eq ".layers[].digest" "$(jq -c '[.layers[].digest]' <<<"$out")" "$(jq -c '[.layers[].digest]' "$MANIFEST")"
    assert_eq ".layers[].diff_id" "$(jq -c '[.layers[].diff_id]' <<<"$out")" "$(jq -c '.rootfs.diff_ids' "$CONFIG")"
    assert_eq ".layers[].size" "$(jq -c '[.layers[].size]' <<<"$out")" "$(jq -c '[.layers[].size]' "$MANIFEST")"
    # --json after the reference works as well.
    run_ocib inspect "oci:$T/out:1.0" --json
    [ "$status" -eq 0 ] || { show_run; fail "ocib inspect REF --json exited $status"; }
    assert_eq ".digest (flag last)" "$(jq -r .digest <<<"$out")" "$DIGEST"
}

@test "inspect docker-archive:FILE shows the same image as the layout built in the same run" {
    build_layered
    run_ocib inspect "docker-archive:$T/img.tar"
    [ "$status" -eq 0 ] || { show_run; fail "ocib inspect docker-archive exited $status"; }
    local d
    for d in $(jq -r '.layers[].digest' "$MANIFEST"); do
        assert_contains "inspect docker-archive (layer)" "$out" "$d"
    done
    run_ocib inspect --json "docker-archive:$T/img.tar"
    [ "$status" -eq 0 ] || { show_run; fail "ocib inspect --json docker-archive exited $status"; }
    assert_eq ".layers[].digest" "$(jq -c '[.layers[].digest]' <<<"$out")" "$(jq -c '[.layers[].digest]' "$MANIFEST")"
    assert_eq ".layers[].diff_id" "$(jq -c '[.layers[].diff_id]' <<<"$out")" "$(jq -c '.rootfs.diff_ids' "$CONFIG")"
    assert_eq ".config" "$(jq -cS .config <<<"$out")" "$(jq -cS . "$CONFIG")"
    assert_eq ".digest" "$(jq -r .digest <<<"$out")" "$DIGEST"
}

@test "inspect reads layouts other tools wrote (skopeo)" {
    need skopeo
    build_layered
    skopeo copy -q "docker-archive:$T/img.tar" "oci:$T/by-skopeo:copied" || fail "skopeo copy failed"
    run_ocib inspect --json "oci:$T/by-skopeo:copied"
    [ "$status" -eq 0 ] || { show_run; fail "ocib inspect of skopeo's layout exited $status"; }
    assert_eq ".digest" "$(jq -r .digest <<<"$out")" "$(layout_digest "$T/by-skopeo" copied)"
    assert_eq ".layers[].diff_id" "$(jq -c '[.layers[].diff_id]' <<<"$out")" "$(jq -c '.rootfs.diff_ids' "$CONFIG")"
}

@test "inspect of something that is not there exits non-zero with an 'ocib: ' error" {
    build_layered
    run_ocib inspect "oci:$T/out:no-such-tag"
    [ "$status" -ne 0 ] || fail "inspect of a missing tag succeeded"
    assert_failed "$status" 'no-such-tag'
    run_ocib inspect "oci:$T/nowhere"
    [ "$status" -ne 0 ] || fail "inspect of a missing layout succeeded"
    assert_failed "$status" 'nowhere'
    run_ocib inspect "docker-archive:$T/nowhere.tar"
    [ "$status" -ne 0 ] || fail "inspect of a missing archive succeeded"
    assert_failed "$status" 'nowhere\.tar'
    run_ocib inspect
    assert_failed 2
}

@test "inspect (for people) shows the config and the total size" {
    mkdir ctx
    cat >ctx/ocib.json <<'EOF'
{"version": 1, "image": "localhost:5000/ocib/shown", "stages": [{"from": "scratch",
  "layers": [{"files": [{"path": "/a", "content": "aaaa"}, {"path": "/b", "content": "bb"}]}],
  "config": {"user": "1000:1000", "workdir": "/srv", "entrypoint": ["/app"], "cmd": ["--serve"],
             "env": {"MODE": "prod"}, "expose": ["8080", "9090/udp"], "volumes": ["/data"],
             "labels": {"team": "core"}, "stop_signal": "SIGTERM",
             "healthcheck": {"test": "true", "interval": "30s"}}}]}
EOF
    build_ok -C ctx --output "oci:$T/o"
    run_ocib inspect "oci:$T/o"
    [ "$status" -eq 0 ] || { show_run; fail "inspect exited $status"; }
    local line
    for line in "User:       1000:1000" "WorkingDir: /srv" 'Entrypoint  ["/app"]' 'Cmd         ["--serve"]' \
        'ExposedPorts 8080/tcp 9090/udp' 'Volumes     /data' 'Labels      {"team":"core"}' \
        'StopSignal  SIGTERM' 'Healthcheck {"Interval":30000000000,"Test":["CMD-SHELL","true"]}'; do
        grep -qxF -- "$line" <<<"$out" || { show_run; fail "inspect lacks the line '$line'"; }
    done
    grep -q '^Env .*MODE=prod' <<<"$out" || fail "inspect does not show Env"
    # The total: every layer as stored, the config and the manifest.
    local m want
    m=$(layout_manifest "$T/o")
    want=$(( $(jq '[.layers[].size] | add' "$m") + $(jq .config.size "$m") + $(stat -c %s "$m") ))
    grep -qE "^Size: .*\($want bytes" <<<"$out" || { show_run; fail "inspect's size is not $want bytes"; }
}

@test "ocib version and ocib help exit 0" {
    run_ocib version
    [ "$status" -eq 0 ] || { show_run; fail "ocib version exited $status"; }
    [ -n "$out" ] || fail "ocib version printed nothing on stdout"
    [[ $out =~ [0-9] ]] || fail "ocib version shows no version number: $out"
    run_ocib help
    [ "$status" -eq 0 ] || { show_run; fail "ocib help exited $status"; }
    assert_contains "ocib help" "$out" build
    assert_contains "ocib help" "$out" inspect
    run_ocib help build
    [ "$status" -eq 0 ] || { show_run; fail "ocib help build exited $status"; }
    assert_contains "ocib help build" "$out" --output
    assert_contains "ocib help build" "$out" --compression
    run_ocib --help
    [ "$status" -eq 0 ] || { show_run; fail "ocib --help exited $status"; }
}

@test "every verb takes --help; every option its help lists is one it accepts; an unknown one exits 2" {
    local verb opt opts
    mkdir empty && cd empty
    for verb in build inspect push diff login lock cache; do
        run_ocib help "$verb"
        [ "$status" -eq 0 ] || { show_run; fail "ocib help $verb exited $status"; }
        local want=$out
        run_ocib "$verb" --help
        [ "$status" -eq 0 ] || { show_run; fail "ocib $verb --help exited $status"; }
        assert_eq "ocib $verb --help is ocib help $verb" "$out" "$want"
        run_ocib "$verb" -x -h
        assert_eq "ocib $verb -x -h (help wins)" "$status" 0
        opts=$(grep -oE '^  (-[a-zA-Z], )?--?[a-z][a-z-]*' <<<"$want" | sed 's/^  //; s/^-[a-zA-Z], //')
        [ -n "$opts" ] || fail "ocib help $verb lists no option"
        for opt in $opts; do
            run_ocib "$verb" "$opt"
            [[ $err != *"unknown option"* ]] || { show_run; fail "ocib $verb: $opt is in the help but unknown"; }
            [ "$status" -eq 0 ] || [[ $err == *"ocib: "?* ]] || { show_run; fail "ocib $verb $opt failed without saying why"; }
        done
        run_ocib "$verb" --no-such-option
        assert_failed 2 "$verb: unknown option '--no-such-option'; see 'ocib help $verb'"
    done
    run_ocib help build
    for opt in --secret --tag -t --output -o --cache-from --locked --verify --progress --platform; do
        assert_contains "ocib help build" "$out" "$opt"
    done
    run_ocib build --no-cache=yes
    assert_failed 2 "--no-cache takes no value"
    run_ocib build --tag
    assert_failed 2 "--tag needs a value"
    run_ocib login -p hunter2 localhost:5000
    assert_failed 2 "only with --password-stdin"
    [[ $err != *hunter2* ]] || fail "the refused password was printed"
}

@test "make install puts the binary, a manual page naming every option and a bash completion under PREFIX" {
    need groff make
    local prefix=$T/prefix opt verb
    make -s -C "$BATS_TEST_DIRNAME/../.." install PREFIX="$prefix" OCIB="$OCIB" >"$T/make.out" 2>&1 ||
        fail "make install failed: $(cat "$T/make.out")"
    [ -x "$prefix/bin/ocib" ] || fail "no $prefix/bin/ocib"
    "$prefix/bin/ocib" version >/dev/null || fail "the installed ocib does not run"
    local man=$prefix/share/man/man1/ocib.1
    groff -man -Tutf8 -ww -z "$man" 2>"$T/groff.err" || fail "groff rejects the page: $(cat "$T/groff.err")"
    [ ! -s "$T/groff.err" ] || fail "groff warns about the page: $(cat "$T/groff.err")"
    groff -man -Tascii -P -cbou "$man" 2>/dev/null >"$T/man.txt"
    for verb in build inspect push diff login lock cache; do
        grep -q "^   $verb " "$T/man.txt" || fail "the manual page has no section for $verb"
        for opt in $("$OCIB" help "$verb" | grep -oE '^  (-[a-zA-Z], )?--?[a-z][a-z-]*' | sed 's/^  //; s/^-[a-zA-Z], //'); do
            grep -qe "$opt" "$T/man.txt" || fail "the manual page does not name $verb's $opt"
        done
    done
    # The completion, in a real bash: verbs, then a verb's options.
    local comp=$prefix/share/bash-completion/completions/ocib
    assert_eq "completing a verb" "$(bash -c "source '$comp'; COMP_WORDS=(ocib bu); COMP_CWORD=1; _ocib; echo \${COMPREPLY[*]}")" build
    assert_eq "completing build's options" \
        "$(bash -c "source '$comp'; COMP_WORDS=(ocib build --ta); COMP_CWORD=2; _ocib; echo \${COMPREPLY[*]}")" "--target --tag"
    assert_eq "completing push's options" \
        "$(bash -c "source '$comp'; COMP_WORDS=(ocib push --d); COMP_CWORD=2; _ocib; echo \${COMPREPLY[*]}")" "--digest-file"
}

@test "build's first line is one short line for people; --progress=json carries every setting" {
    mkdir ctx
    printf '{"version": 1, "image": "localhost:5000/ocib/first", "stages": [{"from": "scratch", "layers": [{"files": [{"path": "/a", "content": "a"}]}]}]}\n' >ctx/ocib.json
    build_ok -C ctx --output "oci:$T/o" --progress=plain
    assert_eq "the first line" "$(head -n1 <<<"$err")" "ocib $("$OCIB" version | cut -d' ' -f2): oci format, gzip, timestamps 0"
    build_ok -C ctx --output "oci:$T/o2" --progress=json --compression zstd --source-date-epoch 7
    local first
    first=$(head -n1 <<<"$err")
    assert_eq "the json event's status" "$(jq -r .status <<<"$first")" inputs
    [[ $(jq -r .detail <<<"$first") == "SOURCE_DATE_EPOCH=7, compression zstd;"* ]] || fail "the json event lacks the settings: $first"
}

@test "an unknown command exits 2 with an 'ocib: ' error naming it" {
    run_ocib frobnicate
    assert_failed 2 frobnicate
    run_ocib
    [ "$status" -eq 2 ] || { show_run; fail "ocib with no command should exit 2 (usage), got $status"; }
}
