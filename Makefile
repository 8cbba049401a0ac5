# meshfs - a data mesh as a filesystem.  See README.md.
# On a machine without make or a compiler: sh ./mesh.sh TARGET (installs them first).
#
#   make            build build/meshfs and build/meshctl
#   make check      install missing packages (as root), build, run unit tests, fuzzers, integration tests
#   make asan       install missing packages, the same tests against an ASan+UBSan build (build-asan/)
#   make bench      install missing packages, build, performance figures (medians of
#                   interleaved runs, baselines in the same loop; PASSTHROUGH_HP, DUCKDB)
#   make bench-quick  the same, small and short (about a minute)
#   make bench-service  the mesh service: list, search and publish through it vs direct
#   make fuzz       run the fuzz targets for a bounded time (clang, libFuzzer)
#   make demo       install missing packages, build, show the mesh in use as three users, unmount
#   make deps       install missing Debian packages (tests/install-deps.sh; as root)
#   make install PREFIX=/usr/local
#   make help       this list
#
# The targets that install packages first (check, asan, bench, demo) run
# `deps`, then build in a sub-make: pkg-config's flags below are read when
# a make starts, so only a make started after the install sees them.

PREFIX    ?= /usr/local
BUILD     ?= build
CC        ?= cc
PKGS      := fuse3 sqlite3 jansson yaml-0.1 libcrypto thrift_c_glib glib-2.0 libpcre2-8 \
             snappy libzstd zlib libsystemd libpq uuid
PYTHON    ?= /usr/bin/python3
FUZZ_SECONDS ?= 30
CHECK_FUZZ_SECONDS ?= 15

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libpq is compiled against but not linked: fs/usage/pq_lib.c loads it
# when a PostgreSQL usage sink is used (its load costs every process ~5 ms)
PKG_LIBS   := $(shell pkg-config --libs $(filter-out libpq,$(PKGS)) 2>/dev/null)
PKG_OK     := $(shell pkg-config --exists $(PKGS) 2>/dev/null && echo yes)

OPT       ?= -O2 -g
WARN      := -Wall -Wextra -Wshadow -Wformat=2 -Wno-format-nonliteral
CFLAGS    ?=
CFLAGS    += -std=c17 $(WARN) $(OPT) -D_GNU_SOURCE -D_FORTIFY_SOURCE=2 \
             -DMESHFS_VERSION='"$(VERSION)"' -Iinclude $(PKG_CFLAGS) -MMD -MP
LDLIBS    += $(PKG_LIBS) -lpthread -lm
VERSION   := 0.1.0

# fs/meshfs.c and fs/fuse_*.c are the daemon, fs/meshctl*.c and fs/cli/ the
# command line, everything else (fs/*.c and fs/<subsystem>/*.c) is the
# library both are thin shells over.
ALL_SRC   := $(wildcard fs/*.c fs/*/*.c)
DAEMON_SRC:= fs/meshfs.c $(wildcard fs/fuse_*.c)
CLI_SRC   := $(wildcard fs/meshctl*.c fs/cli/*.c)
LIB_SRC   := $(filter-out $(DAEMON_SRC) $(CLI_SRC),$(ALL_SRC))
LIB_OBJ   := $(LIB_SRC:fs/%.c=$(BUILD)/obj/%.o)
DAEMON_OBJ:= $(DAEMON_SRC:fs/%.c=$(BUILD)/obj/%.o)
CLI_OBJ   := $(CLI_SRC:fs/%.c=$(BUILD)/obj/%.o)
# The Parquet footer's C types are generated from our Thrift IDL at build
# time (thrift --gen c_glib); generated code is not ours, so it is built
# without our warning flags.
THRIFT    ?= thrift
GEN_IDL   := fs/formats/parquet_footer.thrift
GEN_DIR   := $(BUILD)/gen
GEN_C     := $(GEN_DIR)/pq_parquet_footer_types.c
GEN_H     := $(GEN_DIR)/pq_parquet_footer_types.h
GEN_OBJ   := $(BUILD)/obj/gen/pq_parquet_footer_types.o
LIB_OBJ   += $(GEN_OBJ)
CFLAGS    += -I$(GEN_DIR)
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
# test tools (the Parquet corpus generator): built with `all`, used by tests
TOOLS_SRC := $(wildcard tests/tools/*.c)
TOOLS_BIN := $(TOOLS_SRC:tests/tools/%.c=$(BUILD)/tools/%)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all check unit integration asan bench bench-quick bench-service fuzz demo install clean deps help need-pkgs tools
all: $(BUILD)/meshfs $(BUILD)/meshctl $(TOOLS_BIN)

help:
	@sed -n 's/^#   //p' Makefile

# A missing library says what to do instead of failing on a missing header.
need-pkgs:
ifneq ($(PKG_OK),yes)
	@echo "make: missing development packages (pkg-config $(PKGS)): run 'make deps' as root, or 'sh ./mesh.sh TARGET'" >&2
	@exit 1
endif

$(BUILD)/obj/%.o: fs/%.c | $(BUILD)/obj need-pkgs
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj $(BUILD)/tests:
	mkdir -p $@

# one run of thrift makes both files (a grouped target: GNU make 4.3)
$(GEN_H) $(GEN_C) &: $(GEN_IDL) fs/formats/thrift-gen.sh
	sh fs/formats/thrift-gen.sh $(THRIFT) $< $(GEN_DIR)
	@touch $(GEN_C) $(GEN_H)

$(GEN_OBJ): $(GEN_C) $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out $(WARN) -MMD -MP,$(CFLAGS)) -w -c $< -o $@

# every object may include the generated header (through include/parquet.h)
$(LIB_OBJ) $(DAEMON_OBJ) $(CLI_OBJ): | $(GEN_H)
$(BUILD)/obj/formats/parquet.o: $(GEN_H)

$(BUILD)/tools/%: tests/tools/%.c $(BUILD)/libmesh.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libmesh.a $(LDLIBS)
tools: $(TOOLS_BIN)

$(BUILD)/libmesh.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/meshfs: $(DAEMON_OBJ) $(BUILD)/libmesh.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/meshctl: $(CLI_OBJ) $(BUILD)/libmesh.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/check.h $(BUILD)/libmesh.a | $(BUILD)/tests
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libmesh.a $(LDLIBS)

deps:
	@sh tests/install-deps.sh

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; MESH_TEST_DATA=tests/unit/data $$t; done

PYTEST := $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

integration: all
	MESHFS_BUILD=$(abspath $(BUILD)) $(PYTEST)

# The last line printed is pytest's summary (no sub-make after it).
check: deps
	$(MAKE) --no-print-directory all unit
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(CHECK_FUZZ_SECONDS)
	MESHFS_BUILD=$(abspath $(BUILD)) $(PYTEST)

ASAN_BUILD := build-asan
asan: deps
	$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) LDFLAGS="-fsanitize=address,undefined" \
		OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" all unit
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 MESHFS_BUILD=$(abspath $(ASAN_BUILD)) $(PYTEST)

bench: deps
	$(MAKE) --no-print-directory all
	$(PYTHON) tests/bench/bench.py --build $(abspath $(BUILD))
	$(PYTHON) tests/bench/index_bench.py --build $(abspath $(BUILD))
	$(PYTHON) tests/bench/scale_bench.py --build $(abspath $(BUILD))
	$(PYTHON) tests/bench/discovery_bench.py --build $(abspath $(BUILD))
	$(PYTHON) tests/bench/bench_service.py --build $(abspath $(BUILD))

bench-service: deps
	$(MAKE) --no-print-directory all
	$(PYTHON) tests/bench/bench_service.py --build $(abspath $(BUILD))

bench-quick: deps
	$(MAKE) --no-print-directory all
	$(PYTHON) tests/bench/bench.py --quick --build $(abspath $(BUILD))

fuzz:
	$(MAKE) --no-print-directory -C tests/fuzz SECONDS=$(FUZZ_SECONDS)

# quiet: the demo's output is the demo (two screens); compiler warnings still show
demo: deps
	@echo "make demo: building $(BUILD)/meshfs and $(BUILD)/meshctl"
	@$(MAKE) --no-print-directory -s all
	@sh mounts/demo/run-demo.sh $(abspath $(BUILD))

# mount(8) finds helpers in /sbin only (not under PREFIX): the helper goes
# to SBINDIR and knows where meshfs is; the unit's ExecStart names PREFIX.
SBINDIR   ?= /sbin
UNITDIR   ?= $(PREFIX)/lib/systemd/system
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BUILD)/meshfs $(BUILD)/meshctl $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 mounts/man/meshfs.1 mounts/man/meshctl.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	sed 's|@BINDIR@|$(PREFIX)/bin|g' mounts/mount.fuse.meshfs.in > $(DESTDIR)$(SBINDIR)/mount.fuse.meshfs
	chmod 0755 $(DESTDIR)$(SBINDIR)/mount.fuse.meshfs
	sed 's|/usr/local/bin/meshfs|$(PREFIX)/bin/meshfs|g' mounts/meshfs.service > $(DESTDIR)$(UNITDIR)/meshfs.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/meshfs.service
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 0644 mounts/completion/meshctl.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/meshctl

clean:
	rm -rf build build-asan tests/fuzz/build

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/obj/*/*.d)
