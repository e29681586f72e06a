# ocib — daemonless, Dockerfile-free container image builder.
#
# Sources are found by wildcard: every .c under the library folders goes into
# build/libocib.a, which both ./ocib (with cli/) and the unit tests link.

PKGS := libarchive libcrypto libzstd jansson libcurl zlib yaml-0.1

CC ?= cc
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS ?= -O2 -g
override CFLAGS += -std=gnu17 -Wall -Wextra -Wno-unused-parameter -Wshadow -Wformat=2 \
          -Wmissing-prototypes -Wstrict-prototypes -D_GNU_SOURCE -I. $(PKG_CFLAGS)
ifeq ($(DEVELOPER),1)
override CFLAGS += -Werror
endif
LDLIBS += $(PKG_LIBS) -lpthread

BUILD ?= build
LIB_DIRS := base oci layers cache registry sandbox k8s transport spec sbom builder audit
LIB_SRCS := $(sort $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c)))
CLI_SRCS := $(sort $(wildcard cli/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:%.c=$(BUILD)/%)

OCIB := ocib

.PHONY: all install check check-layering check-lengths check-unit check-integration check-asan bench format format-check \
        clean deps example image

all: $(OCIB)

$(OCIB): $(CLI_OBJS) $(BUILD)/libocib.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJS) $(BUILD)/libocib.a $(LDLIBS)

$(BUILD)/libocib.a: $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libocib.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libocib.a $(LDLIBS) -lcmocka

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d)

check: check-layering check-lengths check-unit check-integration

# Every include goes down the floors of tests/check-layering (base < oci < …).
check-layering:
	@tests/check-layering

# Lists files over 800 lines and functions over 100 lines that carry no
# "Long because:" reason above them (not yet part of check: see the README).
check-lengths:
	@tests/check-lengths

check-unit: $(UNIT_BINS)
	@tests/run-unit $(UNIT_BINS)

# INTEGRATION_SKIP: suites check-asan does not run a second time (emulated
# commands, npm installs, podman containers: their C paths are the ones the
# other suites run).
INTEGRATION_SUITES = $(filter-out $(addprefix tests/integration/,$(INTEGRATION_SKIP)), \
    $(sort $(wildcard tests/integration/*.bats)))

check-integration: $(OCIB)
	@OCIB=$(abspath $(OCIB)) bats --print-output-on-failure $(INTEGRATION_SUITES)

# The same suites under AddressSanitizer and UndefinedBehaviorSanitizer, in a
# separate build tree so that the normal objects are not disturbed.
check-asan:
	$(MAKE) BUILD=build-asan OCIB=build-asan/ocib \
	    CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	    LDFLAGS="-fsanitize=address,undefined" \
	    INTEGRATION_SKIP="45-platforms.bats 46-cross-compile.bats 60-node-api.bats 81-isolation.bats 82-ocib-image.bats 83-runners.bats" check

bench: $(OCIB)
	@tests/bench/run
	@OCIB=$(abspath $(OCIB)) tests/bench/attest

format:
	clang-format -i $(LIB_SRCS) $(CLI_SRCS) $(UNIT_SRCS) $(wildcard */*.h)

format-check:
	@clang-format --dry-run --Werror $(LIB_SRCS) $(CLI_SRCS) $(UNIT_SRCS) $(wildcard */*.h)

# Installs every Debian package ocib needs to build, test and benchmark.
# make install [PREFIX=/usr/local] [DESTDIR=]: the binary, its manual page and
# its bash completion, the last two generated from the option tables.
PREFIX ?= /usr/local
install: $(OCIB)
	install -D -m 0755 $(OCIB) $(DESTDIR)$(PREFIX)/bin/ocib
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	$(abspath $(OCIB)) help --man >$(DESTDIR)$(PREFIX)/share/man/man1/ocib.1
	$(abspath $(OCIB)) completion bash >$(DESTDIR)$(PREFIX)/share/bash-completion/completions/ocib

deps:
	tests/install-deps

# ocib's own image into the OCI layout ./ocib-image, built by ocib from
# ocib.image.json; its build stage's base is made from this machine's Debian
# packages (tests/bases/make-ocib-build-base, build/bases/ocib-build).
image: $(OCIB)
	OCIB=$(abspath $(OCIB)) tests/bases/make-ocib-build-base
	./$(OCIB) build -C . -f ocib.image.json --output oci:ocib-image

# Builds the bundled example into ./ocib-out (the README's first command).
example: $(OCIB)
	./$(OCIB) build -C specs/examples/hello

clean:
	rm -rf $(BUILD) build-asan build-fuzz $(OCIB)

# Fuzzing with libFuzzer: each tests/fuzz/fuzz_NAME.c is linked with clang
# against the library built with sanitizers in $(FUZZ_BUILD), then run for
# FUZZ_SECONDS on a temporary copy of tests/fuzz/corpus/NAME (the committed
# seeds stay as they are); any crash fails.  `make crash-loop` SIGKILLs builds of a
# large layer at random instants (tests/bench/crash-loop; CRASH_N kills).
FUZZ_SECONDS ?= 60
FUZZ_BUILD := build-fuzz
FUZZ_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
               -fno-sanitize-recover=undefined
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_BINS := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/tests/fuzz/fuzz_%)

.PHONY: fuzz fuzz-build crash-loop

fuzz-build:
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang CFLAGS="$(FUZZ_CFLAGS)" $(FUZZ_BINS)

$(FUZZ_BUILD)/tests/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_BUILD)/libocib.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libocib.a $(LDLIBS)

fuzz: fuzz-build
	@tests/fuzz/run $(FUZZ_SECONDS) $(FUZZ_BINS)

crash-loop: $(OCIB)
	@OCIB=$(abspath $(OCIB)) tests/bench/crash-loop
