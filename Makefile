# C CNI plugin suite: every plugin is one small hardened executable linked with common/.
#   make            build all plugins into $(BUILD)/
#   make test       unit tests + bats suites (+ ASan/UBSan lane), ends with "N passed, N failed"
#   make install    into $(DESTDIR)$(PREFIX) (default /opt/cni/bin)
#   make deps       install the Debian packages building and testing need

PREFIX  ?= /opt/cni/bin
DESTDIR ?=
BUILD   ?= build
SAN     ?=
CC      ?= gcc

PLUGINS := host-local bridge vxlan vlan loopback portmap
# the runtime in miniature, installed beside the plugins
TOOLS := cnitool
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
LDHARD  := -pie -Wl,-z,relro,-z,now -Wl,--as-needed -Wl,--gc-sections
endif
CFLAGS  ?=
LDFLAGS ?=
# The build's identity: a hash of the sources the in-process IPAM path shares with the
# host-local executable (see CNIC_MARKER in common/skel.h).
CNIC_ID := $(shell cat Makefile common/*.[ch] plugins/ipam/host-local/*.[ch] 2>/dev/null | sha256sum | cut -c1-16)$(if $(SAN),-san)$(if $(filter 1,$(TESTING)),-test)
ALL_CFLAGS  = $(CSTD) $(WARN) $(HARDEN) -Icommon -DCNIC_ID='"$(CNIC_ID)"' $(CFLAGS)
ALL_LDFLAGS = $(LDHARD) $(LDFLAGS)

LIB_JSON := -lcjson
NL_CFLAGS := $(shell pkg-config --cflags libnl-route-3.0 2>/dev/null || echo -I/usr/include/libnl3)
# libnl and libcap link statically (Debian ships their .a): each shared library costs every
# exec its loading and relocations (~0.3 ms for libnl). cJSON has no .a in Debian.
ifeq ($(SAN),1)
LIB_CAP  := -lcap
LIB_NL   := -lnl-route-3 -lnl-3
else
LIB_CAP  := -Wl,-Bstatic -lcap -Wl,-Bdynamic
LIB_NL   := -Wl,-Bstatic -lnl-route-3 -lnl-3 -Wl,-Bdynamic -lpthread
endif

# common/ pieces without netlink (IPAM plugins need no libnl)
COMMON_BASE := err ip conf version result skel log caps ipam sha512 fault
COMMON_BASE_OBJS := $(COMMON_BASE:%=$(BUILD)/obj/common/%.o)
# the kernel side: netlink, namespaces, sysctl, nf_tables (libnftables is dlopen'ed)
COMMON_NET := netns nl sysctl nft masq spoofchk attach conntrack
COMMON_NET_OBJS := $(COMMON_NET:%=$(BUILD)/obj/common/%.o)

BRIDGE_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard plugins/main/bridge/*.c))
VXLAN_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard plugins/main/vxlan/*.c))
VLAN_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard plugins/main/vlan/*.c))
LOOPBACK_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard plugins/main/loopback/*.c))
PORTMAP_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard plugins/meta/portmap/*.c))
CNITOOL_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tools/cnitool/*.c))

HOSTLOCAL_SRCS := $(wildcard plugins/ipam/host-local/*.c)
HOSTLOCAL_OBJS := $(HOSTLOCAL_SRCS:%.c=$(BUILD)/obj/%.o)
HOSTLOCAL_LIB  := $(filter-out %/main.o,$(HOSTLOCAL_OBJS))

UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(BUILD)/obj/%.o)

.PHONY: all install uninstall test check test-unit test-asan deps clean check-tools test-tools demo bench bench-tools fuzz
all: $(PLUGINS:%=$(BUILD)/%) $(TOOLS:%=$(BUILD)/%)
test-tools: $(TEST_TOOLS)

$(BUILD)/obj/%.o: %.c | check-tools
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(NL_CFLAGS) -MMD -MP -Iplugins/ipam/host-local -c -o $@ $<

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

$(BUILD)/host-local: $(HOSTLOCAL_OBJS) $(COMMON_BASE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_JSON) $(LIB_CAP)

# Objects that embed or compare CNIC_ID are rebuilt when it changes.
$(BUILD)/cnic-id: FORCE
	@mkdir -p $(dir $@)
	@echo '$(CNIC_ID)' | cmp -s - $@ || echo '$(CNIC_ID)' > $@
$(BUILD)/obj/plugins/ipam/host-local/main.o $(BUILD)/obj/common/ipam.o: $(BUILD)/cnic-id
.PHONY: FORCE
FORCE:

$(BUILD)/bridge: $(BRIDGE_OBJS) $(HOSTLOCAL_LIB) $(COMMON_NET_OBJS) $(COMMON_BASE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_NL) $(LIB_JSON) $(LIB_CAP)

$(BUILD)/vxlan: $(VXLAN_OBJS) $(HOSTLOCAL_LIB) $(COMMON_NET_OBJS) $(COMMON_BASE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_NL) $(LIB_JSON) $(LIB_CAP)

$(BUILD)/vlan: $(VLAN_OBJS) $(HOSTLOCAL_LIB) $(COMMON_NET_OBJS) $(COMMON_BASE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_NL) $(LIB_JSON) $(LIB_CAP)

$(BUILD)/loopback: $(LOOPBACK_OBJS) $(COMMON_NET_OBJS) $(COMMON_BASE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_NL) $(LIB_JSON) $(LIB_CAP)

$(BUILD)/portmap: $(PORTMAP_OBJS) $(COMMON_NET_OBJS) $(COMMON_BASE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_NL) $(LIB_JSON) $(LIB_CAP)

$(BUILD)/cnitool: $(CNITOOL_OBJS) $(COMMON_NET_OBJS) $(COMMON_BASE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_NL) $(LIB_JSON) $(LIB_CAP)

# Test-only drivers of common/ pieces (not installed).
$(BUILD)/test-tools/%: $(BUILD)/obj/tests/tools/%.o $(COMMON_NET_OBJS) $(COMMON_BASE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_NL) $(LIB_JSON) $(LIB_CAP)

# A fuzz target with a main() that replays saved inputs (tests/fuzz.bats).
$(BUILD)/test-tools/fuzz-replay-%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/obj/tests/fuzz/replay.o \
		$(HOSTLOCAL_LIB) $(COMMON_BASE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_JSON) $(LIB_CAP)

$(BUILD)/unit-tests: $(UNIT_OBJS) $(COMMON_BASE_OBJS) $(HOSTLOCAL_LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_JSON) $(LIB_CAP)

check-tools:
	@command -v $(CC) >/dev/null && test -e /usr/include/cjson/cJSON.h && test -e /usr/include/libnl3/netlink/route/link.h && \
	  test -e /usr/include/nftables/libnftables.h || \
	  { echo "missing build dependencies: run 'make deps' (or ./run.sh) first" >&2; exit 1; }

install: all
	install -d $(DESTDIR)$(PREFIX)
	install -s -m 0755 $(PLUGINS:%=$(BUILD)/%) $(TOOLS:%=$(BUILD)/%) $(DESTDIR)$(PREFIX)/

uninstall:
	rm -f $(PLUGINS:%=$(DESTDIR)$(PREFIX)/%) $(TOOLS:%=$(DESTDIR)$(PREFIX)/%)

deps:
	./scripts/deps.sh

# The whole suite: every lane (release, ASan+UBSan, valgrind, VM), jobs side by side.
test: deps
	./tests/run.sh

# The developer loop (a few minutes): unit tests, every plugin suite, corpus and fuzz replays on
# the release build; the slow parts (ASan, valgrind, VM, runtimes, stress) stay in `make test`.
check:
	MODE=check ./tests/run.sh

test-unit: $(BUILD)/unit-tests
	$(BUILD)/unit-tests

test-asan: deps
	LANES=asan ./tests/run.sh

# The benchmark tools: the runtime-like driver and the floor (static: the kernel work alone).
bench-tools: $(BUILD)/bench/cnibench $(BUILD)/bench/floor
$(BUILD)/bench/cnibench: $(BUILD)/obj/tests/bench/cnibench.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^
$(BUILD)/bench/floor: $(BUILD)/obj/tests/bench/floor.o $(BUILD)/obj/common/nl.o $(BUILD)/obj/common/netns.o \
		$(BUILD)/obj/common/err.o $(BUILD)/obj/common/ip.o
	@mkdir -p $(dir $@)
	$(CC) -static-pie -Wl,-z,relro,-z,now -o $@ $^ -lnl-route-3 -lnl-3 -lpthread -lm 2>/dev/null

# Side by side with the reference plugins (not part of make test; needs root).
bench: all bench-tools
	./scripts/bench.sh

# Two containers on a bridge through our plugins, ping, SNAT out, clean up (needs root).
demo: all
	./scripts/demo.sh

# Fuzzing (clang + libFuzzer, not part of make test): each target FUZZ_TIME seconds, one at a
# time, from tests/fuzz/corpus/<target> and seeds mined from tests/corpus; then the saved corpus
# is re-minimised to the inputs that add coverage. Crashes land in $(FUZZ_BUILD)/artifacts/.
FUZZ_CFLAGS := $(CSTD) -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -Icommon -Iplugins/ipam/host-local -DCNIC_ID='"fuzz"'
FUZZ_SRCS := $(COMMON_BASE:%=common/%.c) $(filter-out %/main.c,$(HOSTLOCAL_SRCS))
fuzz:
	./scripts/deps.sh --fuzz
	$(MAKE) --no-print-directory $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz-%)
	FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_TIME=$(FUZZ_TIME) FUZZ_TARGETS="$(FUZZ_TARGETS)" ./tests/fuzz/run.sh

$(FUZZ_BUILD)/fuzz-%: tests/fuzz/fuzz_%.c $(FUZZ_SRCS) $(wildcard common/*.h plugins/ipam/host-local/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRCS) $(LIB_JSON) -lcap

clean:
	rm -rf build build-asan $(FUZZ_BUILD)
