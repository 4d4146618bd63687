# C CNI plugin suite: every plugin is one small hardened executable linked with common/.
#   make            build all plugins into $(BUILD)/
#   make test       unit tests + bats suites (+ ASan/UBSan lane), ends with "N passed, N failed"
#   make install    into $(DESTDIR)$(PREFIX) (default /opt/cni/bin)
#   make deps       install the Debian packages building and testing need
#   make dist       dist/cni-c-<version>-linux-amd64.tgz (+ .sha256): stripped binaries and docs
#   make deb        dist/cni-c_<debversion>_amd64.deb (dpkg-deb; /opt/cni/bin)
#   make lint       clang-format check and cppcheck (make format rewrites the files)

PREFIX  ?= /opt/cni/bin
DESTDIR ?=
BUILD   ?= build
.DEFAULT_GOAL := all
SAN     ?=
CC      ?= gcc

# The release version. From git: `git describe --tags --dirty` once a tag exists ("v0.2.0" gives
# 0.2.0, three commits later 0.2.0-3-gabcdef1); before the first tag, BASE_VERSION plus the commit
# count and hash (0.1.0-42-gabcdef1, -dirty with uncommitted changes). Outside git (a release
# tarball): the VERSION file at the top of the tree. The Debian version replaces the first '-'
# with '+' and the others with '.' (0.1.0+42.gabcdef1), which orders the same way.
BASE_VERSION := 0.1.0
VERSION := $(or $(shell git describe --tags --dirty 2>/dev/null | sed 's/^v//'),\
	$(shell h=$$(git describe --always --dirty 2>/dev/null) && \
	  echo "$(BASE_VERSION)-$$(git rev-list --count HEAD)-g$$h"),\
	$(shell cat VERSION 2>/dev/null),$(BASE_VERSION)-unknown)
DEB_VERSION = $(shell echo '$(VERSION)' | sed 's/-/+/; s/-/./g')

PLUGINS := host-local bridge vxlan vlan loopback portmap floating-ip tap bandwidth
# the runtime in miniature, installed beside the plugins
TOOLS := cnitool
# the cluster overlay's node agent (a daemon, docs/cluster.md), installed beside the plugins
DAEMONS := cni-c-agent
TEST_TOOLS = $(patsubst tests/tools/%.c,$(BUILD)/test-tools/%,$(wildcard tests/tools/*.c)) \
	$(FUZZ_TARGETS:%=$(BUILD)/test-tools/fuzz-replay-%)
# libFuzzer targets (tests/fuzz/fuzz_<name>.c): `make fuzz` runs each FUZZ_TIME seconds (clang);
# the test suite replays their saved corpus through the same code built by gcc in each lane.
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TIME  ?= 300
FUZZ_BUILD ?= build-fuzz
FUZZ_CC    ?= clang

WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral -Wno-format-truncation
CSTD    := -std=gnu11 -D_GNU_SOURCE
# Test builds (the ASan lane, TESTING=1) get the fault points of common/fault.h.
ifeq ($(SAN),1)
TESTING ?= 1
endif
ifeq ($(TESTING),1)
CFLAGS += -DCNI_TESTING
endif
ifeq ($(SAN),1)
HARDEN  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -fPIE
LDHARD  := -fsanitize=address,undefined -pie
else
HARDEN  := -O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE -ffunction-sections -fdata-sections
# static-pie: every binary runs on any x86-64 Linux with nothing installed (no NEEDED entry, no
# interpreter; ldd says "statically linked"), and an exec maps no shared library at all.
# STATIC=0 links the same objects dynamically: the valgrind lane needs it (memcheck replaces
# malloc through the dynamic loader; in a static binary it sees neither malloc nor leaks).
STATIC ?= 1
DYN_LDHARD := -pie -Wl,-z,relro,-z,now -Wl,--as-needed -Wl,--gc-sections
ifeq ($(STATIC),1)
LDHARD  := -static-pie -Wl,-z,relro,-z,now -Wl,--gc-sections
else
LDHARD  := $(DYN_LDHARD)
endif
# The C library of the static binaries: musl (Debian's musl-dev), through our gcc specs
# (scripts/musl.specs: Debian's, plus static-pie). An exec of a static glibc binary spends
# ~0.9 ms before main() on a virtual machine, where each of its ~80 cpuid instructions (glibc
# sizing its caches) traps to the hypervisor; musl's start-up runs none, and the binaries are a
# fifth of the size. musl has no _FORTIFY_SOURCE of its own: common/fortify.h (force-included)
# and common/fortify.c are ours. LIBC=glibc links the static glibc instead.
LIBC ?= musl
ifeq ($(STATIC)$(LIBC),1musl)
MUSL      := 1
MUSL_DIR  := $(BUILD)/musl
MUSL_DEPS := $(MUSL_DIR)/gcc.specs $(MUSL_DIR)/include/linux
HARDEN    += -specs=$(MUSL_DIR)/gcc.specs -isystem $(MUSL_DIR)/include -include common/fortify.h
LDHARD    += -specs=$(MUSL_DIR)/gcc.specs
endif
endif
CFLAGS  ?=
LDFLAGS ?=
# The build's identity: a hash of the sources the in-process IPAM path shares with the
# host-local executable (see CNIC_MARKER in common/skel.h).
CNIC_ID := $(shell cat Makefile common/*.[ch] plugins/ipam/host-local/*.[ch] 2>/dev/null | sha256sum | cut -c1-16)$(if $(SAN),-san)$(if $(filter 1,$(TESTING)),-test)
ALL_CFLAGS  = $(CSTD) $(WARN) $(HARDEN) -Icommon -Ithird_party -DCNIC_ID='"$(CNIC_ID)"' $(CFLAGS)
ALL_LDFLAGS = $(LDHARD) $(LDFLAGS)
# test drivers are never installed: dynamic, so that valgrind sees their malloc, except in the
# sanitizer and musl builds (static there: no musl loader is needed on the machine)
TOOL_LDFLAGS = $(if $(filter 1,$(SAN) $(MUSL)),$(LDHARD),$(DYN_LDHARD)) $(LDFLAGS)

# cJSON is built from third_party/cjson/ (Debian's 1.7.15 source with its security patches;
# Debian ships no static library of it), so no binary needs libcjson.so at run time.
LIB_JSON :=
CJSON_OBJ := $(BUILD)/obj/third_party/cjson/cJSON.o $(BUILD)/obj/third_party/cjson/cjson-noscanf.o
# its one sscanf ("%lg") goes to strtod: glibc's scanf engine stays out of every binary
$(BUILD)/obj/third_party/cjson/cJSON.o: CFLAGS += -include third_party/cjson/cjson-noscanf.h
$(BUILD)/obj/third_party/cjson/cJSON.o: third_party/cjson/cjson-noscanf.h
# the fuzz targets and unit tests reach into host-local's private header
$(BUILD)/obj/tests/fuzz/%.o $(BUILD)/obj/tests/unit/%.o: CFLAGS += -Iplugins/ipam/host-local
# and the agent's etcd client
$(BUILD)/obj/tests/unit/%.o: CFLAGS += -Iagent
# Netlink is our own code (common/nlmsg.c, no libnl), and so is capability handling
# (common/caps.c, no libcap).
LIB_CAP  :=

# common/ pieces without netlink (IPAM plugins need none)
COMMON_BASE := err ip conf version release result skel log caps ipam sha512 subproc fault undo sb $(if $(MUSL),fortify malloc musl-open)
COMMON_BASE_OBJS := $(COMMON_BASE:%=$(BUILD)/obj/common/%.o) $(CJSON_OBJ)
# the kernel side: netlink, namespaces, sysctl, nf_tables (all over our own netlink)
COMMON_NET := nlmsg netns nl sysctl nft nfttab ipt masq spoofchk attach shdev conntrack
COMMON_NET_OBJS := $(COMMON_NET:%=$(BUILD)/obj/common/%.o)

BRIDGE_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard plugins/bridge/*.c))
VXLAN_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard plugins/vxlan/*.c))
VLAN_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard plugins/vlan/*.c))
LOOPBACK_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard plugins/loopback/*.c))
PORTMAP_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard plugins/portmap/*.c))
FIP_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard plugins/floating-ip/*.c))
TAP_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard plugins/tap/*.c))
BW_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard plugins/bandwidth/*.c))
CNITOOL_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tools/cnitool/*.c))
AGENT_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard agent/*.c))

HOSTLOCAL_SRCS := $(wildcard plugins/ipam/host-local/*.c)
HOSTLOCAL_OBJS := $(HOSTLOCAL_SRCS:%.c=$(BUILD)/obj/%.o)
HOSTLOCAL_LIB  := $(filter-out %/main.o,$(HOSTLOCAL_OBJS))

UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(BUILD)/obj/%.o)

.PHONY: dist deb version all install uninstall test check test-unit test-asan deps clean check-tools test-tools demo bench bench-cluster bench-tools fuzz lint format
all: $(PLUGINS:%=$(BUILD)/%) $(TOOLS:%=$(BUILD)/%) $(DAEMONS:%=$(BUILD)/%)
test-tools: $(TEST_TOOLS)

$(BUILD)/obj/%.o: %.c | check-tools $(MUSL_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# musl: the specs, and the kernel's headers (linux/, asm/) beside musl's own
$(BUILD)/obj/common/fortify.o: CFLAGS += -DCNI_FORTIFY_IMPL
$(MUSL_DIR)/gcc.specs: scripts/musl.specs
	@mkdir -p $(dir $@)
	cp $< $@
$(MUSL_DIR)/include/linux:
	@mkdir -p $(dir $@)
	ln -sfn /usr/include/linux $(MUSL_DIR)/include/linux
	ln -sfn /usr/include/x86_64-linux-gnu/asm $(MUSL_DIR)/include/asm
	ln -sfn /usr/include/asm-generic $(MUSL_DIR)/include/asm-generic

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

$(BUILD)/host-local: $(HOSTLOCAL_OBJS) $(COMMON_BASE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_JSON) $(LIB_CAP)

# Objects that embed or compare CNIC_ID are rebuilt when it changes.
$(BUILD)/cnic-id: FORCE
	@mkdir -p $(dir $@)
	@echo '$(CNIC_ID)' | cmp -s - $@ || echo '$(CNIC_ID)' > $@
$(BUILD)/obj/plugins/ipam/host-local/main.o $(BUILD)/obj/common/ipam.o $(BUILD)/obj/agent/main.o: $(BUILD)/cnic-id
# The version lives in one object alone: a new commit rebuilds release.o and relinks, nothing more.
$(BUILD)/version: FORCE
	@mkdir -p $(dir $@)
	@echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' > $@
$(BUILD)/obj/common/release.o: $(BUILD)/version
$(BUILD)/obj/common/release.o: CFLAGS += -DCNIC_VERSION='"$(VERSION)"'
.PHONY: FORCE
FORCE:

$(BUILD)/bridge: $(BRIDGE_OBJS) $(HOSTLOCAL_LIB) $(COMMON_NET_OBJS) $(COMMON_BASE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_JSON) $(LIB_CAP)

$(BUILD)/vxlan: $(VXLAN_OBJS) $(HOSTLOCAL_LIB) $(COMMON_NET_OBJS) $(COMMON_BASE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_JSON) $(LIB_CAP)

$(BUILD)/vlan: $(VLAN_OBJS) $(HOSTLOCAL_LIB) $(COMMON_NET_OBJS) $(COMMON_BASE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_JSON) $(LIB_CAP)

$(BUILD)/loopback: $(LOOPBACK_OBJS) $(COMMON_NET_OBJS) $(COMMON_BASE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_JSON) $(LIB_CAP)

$(BUILD)/portmap: $(PORTMAP_OBJS) $(COMMON_NET_OBJS) $(COMMON_BASE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_JSON) $(LIB_CAP)

$(BUILD)/floating-ip: $(FIP_OBJS) $(COMMON_NET_OBJS) $(COMMON_BASE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_JSON) $(LIB_CAP)

$(BUILD)/tap: $(TAP_OBJS) $(HOSTLOCAL_LIB) $(COMMON_NET_OBJS) $(COMMON_BASE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_JSON) $(LIB_CAP)

$(BUILD)/bandwidth: $(BW_OBJS) $(COMMON_NET_OBJS) $(COMMON_BASE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_JSON) $(LIB_CAP)

$(BUILD)/cnitool: $(CNITOOL_OBJS) $(COMMON_BASE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_JSON) $(LIB_CAP)

$(BUILD)/cni-c-agent: $(AGENT_OBJS) $(HOSTLOCAL_LIB) $(COMMON_NET_OBJS) $(COMMON_BASE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_JSON) $(LIB_CAP)

# Test-only drivers of common/ pieces (not installed).
$(BUILD)/test-tools/%: $(BUILD)/obj/tests/tools/%.o $(COMMON_NET_OBJS) $(COMMON_BASE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(TOOL_LDFLAGS) -o $@ $^ $(LIB_JSON) $(LIB_CAP)

# A fuzz target with a main() that replays saved inputs (tests/fuzz.bats).
$(BUILD)/test-tools/fuzz-replay-%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/obj/tests/fuzz/replay.o \
		$(HOSTLOCAL_LIB) $(COMMON_BASE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_JSON) $(LIB_CAP)

$(BUILD)/unit-tests: $(UNIT_OBJS) $(COMMON_BASE_OBJS) $(HOSTLOCAL_LIB) $(BUILD)/obj/agent/http.o $(BUILD)/obj/agent/etcd.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_JSON) $(LIB_CAP)

check-tools:
	@command -v $(CC) >/dev/null && test -e /usr/include/linux/netlink.h && \
	  { test -z '$(MUSL)' || test -e /usr/lib/x86_64-linux-musl/rcrt1.o; } || \
	  { echo "missing build dependencies: run 'make deps' (or ./run.sh) first" >&2; exit 1; }

install: all
	install -d $(DESTDIR)$(PREFIX)
	install -s -m 0755 $(PLUGINS:%=$(BUILD)/%) $(TOOLS:%=$(BUILD)/%) $(DAEMONS:%=$(BUILD)/%) $(DESTDIR)$(PREFIX)/

uninstall:
	rm -f $(PLUGINS:%=$(DESTDIR)$(PREFIX)/%) $(TOOLS:%=$(DESTDIR)$(PREFIX)/%) $(DAEMONS:%=$(DESTDIR)$(PREFIX)/%)

deps:
	./scripts/deps.sh

# Releases, from a build dir of their own (a concurrent `make test` keeps build/): the release
# build (no sanitizers, no fault points), stripped, into $(DIST)/.
DIST_BUILD ?= build-dist
DIST       ?= dist
version:
	@echo '$(VERSION)'
dist:
	$(MAKE) --no-print-directory BUILD=$(DIST_BUILD) SAN= TESTING= all
	VERSION='$(VERSION)' PROGRAMS='$(PLUGINS) $(TOOLS) $(DAEMONS)' ./scripts/dist.sh tgz $(DIST_BUILD) $(DIST)
deb:
	$(MAKE) --no-print-directory BUILD=$(DIST_BUILD) SAN= TESTING= all
	VERSION='$(VERSION)' DEB_VERSION='$(DEB_VERSION)' PROGRAMS='$(PLUGINS) $(TOOLS) $(DAEMONS)' \
	  ./scripts/dist.sh deb $(DIST_BUILD) $(DIST)

# The whole suite: every lane (release, ASan+UBSan, valgrind, VM), jobs side by side.
test: deps
	./tests/run.sh

# The developer loop (a few minutes): unit tests, every plugin suite, corpus and fuzz replays on
# the release build; the slow parts (ASan, valgrind, VM, runtimes, stress) stay in `make test`.
check:
	MODE=check ./tests/run.sh

# clang-format (.clang-format) and cppcheck over our C files; the full test runs it too
lint:
	scripts/lint.sh
format:
	scripts/lint.sh --fix

test-unit: $(BUILD)/unit-tests
	$(BUILD)/unit-tests

test-asan: deps
	LANES=asan ./tests/run.sh

# The benchmark tools: the runtime-like driver and the floor (static: the kernel work alone). The
# floor is a static glibc binary, as it was in every run before the plugins moved to musl: the
# same yardstick across runs. floor-musl is the same code linked as the plugins are.
FLOOR_SRCS := tests/bench/floor.c common/nl.c common/nlmsg.c common/netns.c common/err.c common/ip.c
bench-tools: $(BUILD)/bench/cnibench $(BUILD)/bench/floor $(if $(MUSL),$(BUILD)/bench/floor-musl)
$(BUILD)/bench/cnibench: $(BUILD)/obj/tests/bench/cnibench.o $(if $(MUSL),$(BUILD)/obj/common/fortify.o)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^
$(BUILD)/bench/floor: $(FLOOR_SRCS) $(wildcard common/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O2 -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE -Icommon -Ithird_party -static-pie \
	  -Wl,-z,relro,-z,now -Wl,--gc-sections -o $@ $(FLOOR_SRCS)
$(BUILD)/bench/floor-musl: $(BUILD)/obj/tests/bench/floor.o $(BUILD)/obj/common/nl.o $(BUILD)/obj/common/nlmsg.o \
		$(BUILD)/obj/common/netns.o $(BUILD)/obj/common/err.o $(BUILD)/obj/common/ip.o \
		$(BUILD)/obj/common/fortify.o $(BUILD)/obj/common/malloc.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^

# Side by side with the reference plugins (not part of make test; needs root), then the cluster
# overlay at 100 nodes (scripts/cluster-sim.sh: SIM_NODES, SIM_TTL, SIM_WINDOW).
bench: all bench-tools
	./scripts/bench.sh
	BUILD=$(BUILD) ./scripts/cluster-sim.sh
bench-cluster: all
	BUILD=$(BUILD) ./scripts/cluster-sim.sh

# Two containers on a bridge through our plugins, ping, SNAT out, clean up (needs root).
demo: all
	./scripts/demo.sh

# Fuzzing (clang + libFuzzer, not part of make test): each target FUZZ_TIME seconds, one at a
# time, from tests/fuzz/corpus/<target> and seeds mined from tests/corpus; then the saved corpus
# is re-minimised to the inputs that add coverage. Crashes land in $(FUZZ_BUILD)/artifacts/.
FUZZ_CFLAGS := $(CSTD) -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -Icommon -Ithird_party -Iplugins/ipam/host-local -DCNIC_ID='"fuzz"'
FUZZ_SRCS := $(COMMON_BASE:%=common/%.c) third_party/cjson/cJSON.c $(filter-out %/main.c,$(HOSTLOCAL_SRCS))
fuzz:
	./scripts/deps.sh fuzz
	$(MAKE) --no-print-directory $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz-%)
	FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_TIME=$(FUZZ_TIME) FUZZ_TARGETS="$(FUZZ_TARGETS)" ./tests/fuzz/run.sh

$(FUZZ_BUILD)/fuzz-%: tests/fuzz/fuzz_%.c $(FUZZ_SRCS) $(wildcard common/*.h plugins/ipam/host-local/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRCS) $(LIB_JSON)

clean:
	rm -rf build build-asan $(FUZZ_BUILD) $(DIST_BUILD) $(DIST)
