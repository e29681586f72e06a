# The Dockerfile equivalent of the cross-compiling spec tests/bench/platforms
# builds (and tests/integration/46-cross-compile.bats tests), for
#   buildah bud --platform linux/amd64,linux/arm64 --manifest NAME \
#       --build-arg BUILDPLATFORM=linux/amd64 -f tests/bench/platforms.Dockerfile CTX
# on the same bases: localhost/ocib/cross:12 (tests/bases/make-cross-base,
# `buildah pull oci:`) and localhost/ocib/busybox:1, a manifest list of the
# two-platform busybox base's images (`buildah manifest add`).
# buildah 1.28 (Debian 12) predefines TARGET* but not BUILDPLATFORM: the
# bench passes it (the host's), else the arm64 job looks for an arm64
# cross:12 ("image not known").
ARG BUILDPLATFORM
FROM --platform=$BUILDPLATFORM localhost/ocib/cross:12 AS build
ARG TARGETARCH
WORKDIR /src
COPY hello.c /src/
RUN case ${TARGETARCH} in amd64) CC=cc ;; arm64) CC=aarch64-linux-gnu-gcc ;; *) exit 3 ;; esac && mkdir -p /out && $CC -static -O2 -o /out/hello hello.c && echo compiled for ${TARGETARCH} with $CC

FROM localhost/ocib/busybox:1
COPY --from=build /out/hello /usr/local/bin/hello
CMD ["/usr/local/bin/hello"]
