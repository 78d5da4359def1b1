# rankql build.
#
#   make            install missing Debian packages, build everything
#   make test       build and run every test suite (unit, sanitizer, fuzz smoke, integration)
#   make bench      run the benchmarks in bench/
#   make fuzz       run every fuzz target, FUZZ_SECONDS (300) each
#   make demo       build, start rankqld on its embedded PostgreSQL, run the demo
#   make CUDA=1     also build the CUDA path (off unless asked: see the proxies section)
#
# The public targets first install what is missing (scripts/install-deps.sh) and then
# run a sub-make, so pkg-config sees the freshly installed libraries.

BUILD    ?= build
CC       ?= cc
OPT      ?= -O2
SAN      ?=
LEMON    ?= lemon
LEMPAR   ?= /usr/share/lemon/lempar.c
RE2C     ?= re2c
PKGS      = jansson libpq libmicrohttpd openblas

ifeq ($(origin CC),default)
CC = gcc
endif

ifeq ($(SAN),1)
CC       = clang
OPT      = -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDSAN    = -fsanitize=address,undefined
endif

WARN      = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS += -I. -I$(BUILD)/gen -D_GNU_SOURCE
CFLAGS   += -std=c11 $(WARN) $(OPT) -g $(shell pkg-config --cflags $(PKGS))
LDLIBS   += $(shell pkg-config --libs $(PKGS)) -lm -ldl
LDFLAGS  += $(LDSAN)

# Component sources (each directory has one job; see DESIGN.md).
COMMON_SRC  = $(wildcard common/*.c)
GRAMMAR_SRC = grammar/ast.c grammar/ast_json.c grammar/parse.c grammar/keywords.c
DB_SRC      = $(wildcard db/*.c)
PLANNER_SRC = $(wildcard planner/*.c)
EXECUTOR_SRC = $(wildcard executor/*.c)
QUEUE_SRC    = $(wildcard queue/*.c)
# Job runners and the worker loop (executor/workers/*.c); rankql-worker's main is apart.
WORKER_SRC   = $(wildcard executor/workers/*.c executor/workers/runners/*.c \
                          executor/workers/finetune/*.c)
# Strategy plugins: the ABI, the loader and the builtin strategies (docs/extensions.md).
EXT_SRC      = $(wildcard extensions/*.c)
LIB_SRC     = $(COMMON_SRC) $(GRAMMAR_SRC) $(DB_SRC) $(PLANNER_SRC) $(EXECUTOR_SRC) \
              $(QUEUE_SRC) $(WORKER_SRC) $(EXT_SRC)
GEN_OBJ     = $(BUILD)/obj/gen/lexer.o $(BUILD)/obj/gen/parser.o
LIB_OBJ     = $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(GEN_OBJ) $(BUILD)/obj/gen/migrations.o
LIB         = $(BUILD)/librankql.a

# ---- datasets and embedders -------------------------------------------------------------
# datasets/ (IDX, CSV, NPY/NPZ, image folders, text; zlib, libpng, libjpeg, OpenSSL's SHA-256)
# and the builtin feature extractors of executor/workers/embed/ (OpenBLAS: GEMM and LAPACK).
# HEADERS only looks one folder deep, so the embed headers are named here.
LIB_SRC    += $(wildcard datasets/*.c executor/workers/embed/*.c)
PKGS       += zlib libpng libjpeg libcrypto openblas
EMBED_HDRS  = $(wildcard executor/workers/embed/*.h)
$(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard executor/workers/embed/*.c tests/unit/test_embed.c)): $(EMBED_HDRS)

# ---- proxies and CUDA -----------------------------------------------------------------
# executor/workers/proxies/*.c (k-NN, linear probe, LogME, H-score, LEEP on OpenBLAS) join
# the library. CUDA=1 also compiles executor/workers/kernels/*.cu with nvcc (sm_75 + its
# PTX, and sm_90), defines HAVE_CUDA and links cudart and cuBLAS; without it
# proxies/cuda_stub.c answers the same API with "no GPU". CUDA is off unless asked for, not
# auto-detected from nvcc: nvcc adds ~20 s to a clean build, and every linked binary would
# pull in libcublas (~600 MB with cublasLt) although machines that build and test rankql
# rarely have a GPU. --as-needed keeps the CUDA libraries out of the binaries that do not
# call the GPU path. This section sits here, before the rules, so that LIB_OBJ and the
# compile flags include it when the rules below expand them.
PROXY_SRC      = $(wildcard executor/workers/proxies/*.c)
PROXY_HEADERS  = $(wildcard executor/workers/proxies/*.h) tests/unit/proxy_test.h
LIB_SRC       += $(PROXY_SRC)
PROXY_USERS    = $(PROXY_SRC:%.c=$(BUILD)/obj/%.o) \
                 $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tests/unit/test_proxy_*.c bench/bench_proxy_*.c))

CUDA          ?=
CUDA_HOME     ?= /usr/local/cuda
NVCC          ?= $(CUDA_HOME)/bin/nvcc
NVCC_ARCH     ?= -gencode arch=compute_75,code=[sm_75,compute_75] -gencode arch=compute_90,code=sm_90
CUDA_SRC       = $(wildcard executor/workers/kernels/*.cu)
CUDA_OBJ       = $(CUDA_SRC:%.cu=$(BUILD)/obj/%.cu.o)

ifeq ($(CUDA),1)
CPPFLAGS      += -DHAVE_CUDA
LIB_OBJ       += $(CUDA_OBJ)
LDLIBS        += -L$(CUDA_HOME)/lib64 -Wl,--push-state,--as-needed -lcublas -lcudart -lstdc++ \
                 -Wl,--pop-state -Wl,-rpath,$(CUDA_HOME)/lib64
endif

# Object files depend on headers one level deep only (HEADERS below); name the proxies'.
$(PROXY_USERS) $(CUDA_OBJ): $(PROXY_HEADERS)
$(CUDA_OBJ): $(wildcard executor/workers/finetune/*.h)

$(BUILD)/obj/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) -std=c++17 -O2 $(NVCC_ARCH) -I. -DHAVE_CUDA -Werror all-warnings \
	  -Xcompiler -Wall,-Wextra,-Wshadow -c $< -o $@

# The benchmark reads the gzip'd IDX files of Fashion-MNIST when they are installed.
$(BUILD)/bench/bench_proxy_nn: LDLIBS += $(shell pkg-config --libs zlib)

PROGRAMS    = $(BUILD)/bin/rankqld $(BUILD)/bin/rankql $(BUILD)/bin/rankql-worker
UNIT_TESTS  = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
BENCHES     = $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/bench_*.c))

.PHONY: all deps build-all test test-run bench bench-run fuzz fuzz-run demo demo-run clean san
.DEFAULT_GOAL := all

all: deps
	@$(MAKE) --no-print-directory build-all

deps:
	@scripts/install-deps.sh

build-all: $(PROGRAMS) $(UNIT_TESTS) $(BENCHES)

test: deps
	@$(MAKE) --no-print-directory build-all
	@$(MAKE) --no-print-directory BUILD=build-san SAN=1 build-all
	@tests/run-tests.sh

bench: deps
	@$(MAKE) --no-print-directory build-all
	@bench/run-bench.sh

fuzz: deps
	@tests/fuzz/run-fuzz.sh $${FUZZ_SECONDS:-300}

demo: deps
	@$(MAKE) --no-print-directory build-all
	@scripts/demo.sh

clean:
	rm -rf build build-san build-fuzz

# ---- generated lexer and parser -------------------------------------------------------
$(BUILD)/gen/parser.c $(BUILD)/gen/parser.h &: grammar/parser.y
	@mkdir -p $(BUILD)/gen
	@$(LEMON) -q -s -T$(LEMPAR) -d$(BUILD)/gen $< > $(BUILD)/gen/lemon.log 2>&1
	@if ! grep -Eq 'conflicts\.+ +0$$' $(BUILD)/gen/lemon.log; then cat $(BUILD)/gen/lemon.log; \
	  echo "parser.y: lemon reported conflicts" >&2; rm -f $(BUILD)/gen/parser.c; exit 1; fi

$(BUILD)/gen/lexer.c: grammar/lexer.re
	@mkdir -p $(BUILD)/gen
	$(RE2C) -W -Werror --no-generation-date --no-version -o $@ $<

$(BUILD)/obj/gen/lexer.o: $(BUILD)/gen/lexer.c $(BUILD)/gen/parser.h grammar/lexer.h grammar/ast.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Igrammar $(CFLAGS) -c $< -o $@

# lemon's template trips a few warnings that are not ours to fix.
$(BUILD)/obj/gen/parser.o: $(BUILD)/gen/parser.c grammar/ast.h grammar/parse_internal.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Igrammar $(CFLAGS) -Wno-unused-parameter -Wno-unused-variable \
	  -Wno-missing-prototypes -Wno-strict-prototypes -Wno-unused-but-set-variable \
	  -Wno-unknown-warning-option -c $< -o $@

# ---- db migrations --------------------------------------------------------------------
# sql/NNN_*.sql are compiled into the binary as strings (db/migrate.h), so rankqld applies
# the schema it was built with without reading the source tree. sql/ itself is a
# prerequisite: adding or removing a migration changes its mtime and regenerates.
MIGRATIONS = $(sort $(wildcard sql/*.sql))

$(BUILD)/gen/migrations.c: $(MIGRATIONS) sql scripts/embed-sql.sh
	@mkdir -p $(dir $@)
	@scripts/embed-sql.sh $(MIGRATIONS) > $@.tmp || { rm -f $@.tmp; exit 1; }
	@mv $@.tmp $@

$(BUILD)/obj/gen/migrations.o: $(BUILD)/gen/migrations.c db/migrate.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# ---- shell ----------------------------------------------------------------------------
# The rankql client (shell/*.c) also needs libedit (the prompt) and libcurl (HTTP); only
# its objects and its link get their flags. tests/unit/test_shell_format.c links the
# shell's formatter, statement splitter and stream reader (no libedit or libcurl in them).
SHELL_PKGS      = libedit libcurl
SHELL_OBJ       = $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard shell/*.c))
SHELL_LIBS      = $(shell pkg-config --libs $(SHELL_PKGS))
SHELL_TEST_OBJ  = $(BUILD)/obj/shell/format.o $(BUILD)/obj/shell/script.o $(BUILD)/obj/shell/stream.o

$(SHELL_OBJ): CFLAGS += $(shell pkg-config --cflags $(SHELL_PKGS))

$(BUILD)/tests/test_shell_format: $(BUILD)/obj/tests/unit/test_shell_format.o $(SHELL_TEST_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) $(shell pkg-config --libs cmocka) -o $@

# ---- ordinary objects -----------------------------------------------------------------
HEADERS = $(wildcard */*.h */*/*.h */*/*/*.h) $(BUILD)/gen/parser.h

$(BUILD)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/bin/rankqld: $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard server/*.c)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# rankql-worker: its main is apart from executor/workers/*.c (which go into the library).
$(BUILD)/bin/rankql-worker: $(BUILD)/obj/executor/workers/main/rankql-worker.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# ---- server ---------------------------------------------------------------------------
# tests/unit/test_server_*.c test server/ modules, which are not in the library: each links
# the module it is named after (test_server_auth → server/auth.o).
$(BUILD)/tests/test_server_%: $(BUILD)/obj/tests/unit/test_server_%.o $(BUILD)/obj/server/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) $(shell pkg-config --libs cmocka) -o $@
# audit.o names roles and sources with auth.o's functions.
$(BUILD)/tests/test_server_audit: $(BUILD)/obj/server/auth.o

$(BUILD)/bin/rankql: $(SHELL_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) $(SHELL_LIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) $(shell pkg-config --libs cmocka) -o $@

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# ---- test strategy plugin --------------------------------------------------------------
# tests/extensions/test_plugin.c → $(BUILD)/tests/extensions/test_plugin.so, a C strategy
# plugin for tests/unit/test_extensions.c and tests/integration/test_rank.sh. It includes
# only extensions/rankql_extension.h (a plugin needs no rankql library).
TEST_PLUGIN = $(BUILD)/tests/extensions/test_plugin.so

build-all: $(TEST_PLUGIN)

$(TEST_PLUGIN): tests/extensions/test_plugin.c extensions/rankql_extension.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fPIC -shared $< -o $@ $(LDSAN)

# tests/extensions/host_plugin.c: a version 2 plugin calling the host API (test_strategies).
HOST_PLUGIN = $(BUILD)/tests/extensions/host_plugin.so

build-all: $(HOST_PLUGIN)

$(HOST_PLUGIN): tests/extensions/host_plugin.c extensions/rankql_extension.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fPIC -shared $< -o $@ $(LDSAN)

# ---- integration test programs ---------------------------------------------------------
# tests/integration/itest_*.c → $(BUILD)/tests/itest_*, linked like the unit tests but
# without cmocka; the tests/integration/test_*.sh drivers run them against a real
# PostgreSQL. A static pattern rule, so the unit-test pattern above never claims them.
ITESTS = $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(wildcard tests/integration/itest_*.c))

build-all: $(ITESTS)

$(ITESTS): $(BUILD)/tests/itest_%: $(BUILD)/obj/tests/integration/itest_%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# ---- fuzzing --------------------------------------------------------------------------
# libFuzzer targets tests/fuzz/fuzz_*.c, built with clang under ASan/UBSan into build-fuzz/
# by a sub-make that reuses the rules above (BUILD=build-fuzz, CC=clang, sanitizer OPT), so
# the generated lexer and parser are made the same way. Every target links common/ and
# grammar/ (libfuzz.a); fuzz_datasets adds datasets/ (zlib, libpng, libjpeg, libcrypto) and
# fuzz_http_body the request checks and answers of server/ (request.c, response.c, auth.c),
# all built with the fuzz flags. tests/fuzz/run-fuzz.sh calls `make fuzz-build` and runs the
# targets.
FUZZ_BUILD   ?= build-fuzz
FUZZ_OPT      = -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
                -fno-sanitize-recover=all
FUZZ_LIB_OBJ  = $(patsubst %.c,$(BUILD)/obj/%.o,$(COMMON_SRC) $(GRAMMAR_SRC)) $(GEN_OBJ)
FUZZ_TARGETS  = $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(wildcard tests/fuzz/fuzz_*.c))

.PHONY: fuzz-build
fuzz-build:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang OPT="$(FUZZ_OPT)" $(FUZZ_TARGETS)

$(BUILD)/libfuzz.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# A target's own objects (prerequisites ending in .o) and libraries (FUZZ_PKGS) come first.
$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(BUILD)/libfuzz.a $(HEADERS)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fsanitize=fuzzer $< $(filter %.o,$^) $(BUILD)/libfuzz.a \
	  $(shell pkg-config --libs jansson $(FUZZ_PKGS)) -lm -o $@

$(BUILD)/fuzz_datasets: $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard datasets/*.c))
$(BUILD)/fuzz_datasets: FUZZ_PKGS = zlib libpng libjpeg libcrypto
$(BUILD)/fuzz_http_body: $(patsubst %,$(BUILD)/obj/server/%.o,request response auth)
