# selfsup — build, test, demo and benchmarks.
#   make          build/libselfsup.a and build/selfsup
#   make check    every test (unit, CLI, ASan+UBSan build), ending "N passed, N failed"
#   make install [PREFIX=/usr/local] [DESTDIR=]   libselfsup (.a and .so), headers, selfsup.pc, the CLI
#   make uninstall [PREFIX=...] [DESTDIR=...]     removes what install wrote
#   make demo     the main job, end to end
#   make bench-*  side-by-side benchmarks (results go to eval/RESULTS.md by hand)
#   make check-fresh  the README's two commands on a fresh Debian 12 root (debootstrap; minutes, downloads packages)
#   make fuzz     every libFuzzer target in tests/fuzz/ for FUZZ_SECONDS each (findings to tests/fuzz/crashes/)
#   make mpi      build/selfsup-mpi, the MPI flavour (data-parallel pretrain/finetune under mpirun; Open MPI)
#   make bench-mpi-net  (root) data parallel across emulated hosts: network namespaces, links shaped by tc
#
# Builds are quiet: one line per stage (V=1 prints every command). The build
# itself runs in a second make, started after the dependency step has
# installed the Debian packages, so the pkg-config flags it reads are those of
# the installed packages (a fresh machine builds on the first try).

CC       ?= gcc
,        := ,
B        ?= build
ARCH     := $(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
BLAS_DIR := /usr/lib/$(ARCH)/openblas-openmp
BLAS_INC := /usr/include/$(ARCH)/openblas-openmp

# Debian packages the build needs. Found with dpkg-query; installed when root.
BUILD_PKGS := pkg-config libutf8proc-dev libzstd-dev libopenblas-openmp-dev libcjson-dev libcmocka-dev libdnnl-dev
CHECK_PKGS := python3 python3-numpy zstd curl bible-kjv gnuplot-nox nodejs
# npm comes with Node.js builds other than Debian's (NodeSource's nodejs bundles it and conflicts
# with Debian's npm package): Debian's npm is installed only when no npm command exists.
CHECK_NPM  := $(if $(shell command -v npm 2>/dev/null),,npm)
DEMO_PKGS  := curl gnuplot-nox
BENCH_PKGS := sentencepiece nodejs zstd time bc python3-torch
# The fuzz targets (tests/fuzz/): clang with libFuzzer and the sanitizers' runtimes.
FUZZ_PKGS  := clang libclang-rt-14-dev libomp-14-dev
# The MPI flavour only (make mpi, make bench-mpi): build/selfsup links no MPI.
# make check builds build/selfsup-mpi and runs its test when these are
# installed, and skips that test (saying so) otherwise.
MPI_PKGS   := libopenmpi-dev openmpi-bin
# make bench-mpi-net also needs ip and tc (and, as root, a kernel with veth and tbf).
NET_PKGS   := iproute2
MPI_PRESENT = for p in $(MPI_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || exit 1; done

# pkg-config is asked when a recipe needs the flags (deferred '=' expansion),
# never while make reads this file: on a fresh machine the packages (and
# pkg-config itself) are installed by the dependency step that runs first.
CFLAGS   ?= -O2 -g -march=native
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -fopenmp -Iinclude -I$(BLAS_INC) \
            $(shell pkg-config --cflags libutf8proc libzstd libcjson 2>/dev/null)
LDLIBS    = $(shell pkg-config --libs libutf8proc libzstd libcjson 2>/dev/null) \
            -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas -ldnnl -lm -fopenmp
TEST_LIBS = $(shell pkg-config --libs cmocka 2>/dev/null)
MPI_CFLAGS = $(shell pkg-config --cflags ompi-c 2>/dev/null)
MPI_LIBS   = $(shell pkg-config --libs ompi-c 2>/dev/null)

# Quiet build: V=1 shows the commands. Q prefixes the compile/link commands.
V ?=
Q := $(if $(V),,@)
# The build runs in a sub-make (after 'deps'), in parallel on every core
# unless the caller chose -j.
SUBMAKE = $(MAKE) --no-print-directory $(if $(V),,-s) $(if $(findstring jobserver,$(MAKEFLAGS)),,-j$(shell nproc))
# $(call stage,DESCRIPTION,TARGETS): build TARGETS in the sub-make; say
# DESCRIPTION (one line) only when something is out of date.
stage = @$(MAKE) --no-print-directory -q $(2) 2>/dev/null || echo "$(1)"; $(SUBMAKE) $(2)

# src/train/dist_single.c (one process) is the library's selfsup/dist.h;
# the MPI flavour swaps in src/train/dist_mpi.c.
LIB_SRCS := $(wildcard tokenizer/*.c corpora/*.c) \
            $(filter-out src/cli/% src/train/dist_mpi.c,$(wildcard src/*/*.c))
CLI_SRCS := $(wildcard src/cli/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/obj/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(B)/obj/%.o)
MPI_LIB_OBJS := $(filter-out $(B)/obj/src/train/dist_single.o,$(LIB_OBJS)) $(B)/obj/src/train/dist_mpi.o
TEST_SRCS := $(wildcard tests/test_*.c)
TEST_BINS := $(TEST_SRCS:tests/%.c=$(B)/tests/%)
# The sanitizer build covers the tokenizer, data, io, kernel and inference tests,
# and the fine-tuning, self-training, prompt and run-initialisation ones (about
# 20 s more; the pretraining loops of test_train and test_train_encoder are too
# slow under ASan for make check).
ASAN_SRCS := $(wildcard tests/test_tok_*.c tests/test_data_*.c tests/test_io_*.c tests/test_nn_*.c tests/test_infer_*.c) \
             $(addprefix tests/,test_train_finetune.c test_train_prompt.c test_train_init.c \
               test_train_options_compat.c test_train_classmetrics.c)
ASAN_BINS := $(ASAN_SRCS:tests/%.c=$(B)/asan/tests/%)
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# The libFuzzer targets (tests/fuzz/fuzz_*.c): the library built again with
# clang, coverage instrumentation and ASan+UBSan. OpenMP pragmas are left out
# (single-threaded: the parsers are serial) and omp_* calls go to libgomp,
# the runtime OpenBLAS and oneDNN load anyway.
FUZZ_CC      ?= clang
FUZZ_SRCS    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS    := $(FUZZ_SRCS:tests/fuzz/%.c=$(B)/fuzz/%)
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 1
FUZZ_FLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS   = -std=c11 -D_GNU_SOURCE -march=native -Wall -Wextra -Wno-unknown-pragmas -Wno-duplicate-decl-specifier -Iinclude -I$(BLAS_INC) \
                $(shell pkg-config --cflags libutf8proc libzstd libcjson 2>/dev/null) $(FUZZ_FLAGS)
FUZZ_LDLIBS   = $(shell pkg-config --libs libutf8proc libzstd libcjson 2>/dev/null) \
                -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas -ldnnl -lgomp -lm

.PHONY: all deps check check-deps check-torch check-fresh demo clean install uninstall bench-tokenizer fuzz analyze \
        bench-train bench-tiles bench-bias bench-isa bench-generate experiments exp-pretrain exp-sst2 exp-label-efficiency exp-imdb exp-fewlabels exp-probe exp-continued exp-lever exp-learning mpi bench-mpi \
        bench-mpi-net
all: deps
	$(call stage,build: libselfsup and the selfsup CLI into $(B)/ (V=1 shows the commands),$(B)/libselfsup.a $(B)/selfsup)

# ---- dependencies -------------------------------------------------------------
define need_pkgs
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    log=$$(mktemp); \
	    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; } >$$log 2>&1; then \
	      cat $$log; rm -f $$log; echo "apt-get install failed for:$$missing"; exit 1; \
	    fi; rm -f $$log; \
	  else \
	    echo "missing Debian packages; install them with:"; \
	    echo "  sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi
endef

deps: $(B)/.deps-ok
$(B)/.deps-ok: Makefile
	$(call need_pkgs,$(BUILD_PKGS))
	@mkdir -p $(B) && touch $@

# ---- library and CLI --------------------------------------------------------
$(B)/obj/%.o: %.c $(B)/.deps-ok
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(B)/libselfsup.a: $(LIB_OBJS)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(B)/selfsup: $(CLI_OBJS) $(B)/libselfsup.a
	$(Q)$(CC) $(CFLAGS) -o $@ $(CLI_OBJS) $(B)/libselfsup.a $(LDLIBS)

# ---- the shared library ---------------------------------------------------------------
# Its objects are compiled a second time, position-independent, into
# $(B)/pic/: libselfsup.a and the CLI keep the objects they always had, so
# training speed cannot change; only install (and check) build these. It
# exports the public API (every ss_* symbol) and nothing else; its soname
# carries the major version (include/selfsup/version.h), and it records the
# libraries it needs, with the rpath of the OpenMP OpenBLAS.
version_part = $(shell sed -n 's/^.define SS_VERSION_$(1) *\([0-9][0-9]*\).*/\1/p' include/selfsup/version.h)
VERSION := $(call version_part,MAJOR).$(call version_part,MINOR).$(call version_part,PATCH)
SONAME  := libselfsup.so.$(call version_part,MAJOR)
SHLIB   := libselfsup.so.$(VERSION)
PIC_OBJS := $(LIB_SRCS:%.c=$(B)/pic/obj/%.o)

$(B)/pic/obj/%.o: %.c $(B)/.deps-ok
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -fPIC -MMD -MP -c $< -o $@

$(B)/libselfsup.map: Makefile
	@mkdir -p $(dir $@)
	@printf '{ global: ss_*; local: *; };\n' >$@

# $(B)/libselfsup.so -> libselfsup.so.MAJOR -> libselfsup.so.MAJOR.MINOR.PATCH
$(B)/libselfsup.so: $(PIC_OBJS) $(B)/libselfsup.map
	$(Q)$(CC) $(CFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,--version-script,$(B)/libselfsup.map \
	  -o $(B)/$(SHLIB) $(PIC_OBJS) $(LDLIBS)
	@ln -sfn $(SHLIB) $(B)/$(SONAME) && ln -sfn $(SONAME) $@

# ---- installation -------------------------------------------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=]: the static and shared
# library, the public headers in INCLUDEDIR/selfsup/, selfsup.pc for
# pkg-config, and the CLI. DESTDIR stages the tree elsewhere (packaging, the
# test); the files name PREFIX. uninstall removes the same files, and
# INCLUDEDIR/selfsup/ when that leaves it empty (other directories may be
# shared and stay).
PREFIX       ?= /usr/local
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
PUBLIC_HDRS  := $(wildcard include/selfsup/*.h include/selfsup/*.def)
INSTALLED    := $(BINDIR)/selfsup $(LIBDIR)/libselfsup.a $(LIBDIR)/$(SHLIB) $(LIBDIR)/$(SONAME) \
                $(LIBDIR)/libselfsup.so $(PKGCONFIGDIR)/selfsup.pc $(PUBLIC_HDRS:include/%=$(INCLUDEDIR)/%)

# selfsup.pc, written by install (it names PREFIX): paths relative to
# ${prefix} where they are under PREFIX, so `pkg-config
# --define-variable=prefix=DIR` finds a staged copy. The dependencies are
# private (the shared library records them itself); `pkg-config --static`
# adds them for linking libselfsup.a.
define SELFSUP_PC
prefix=$(PREFIX)
libdir=$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
includedir=$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))

Name: selfsup
Description: self-supervised language-model pretraining on CPUs: tokenizer, data, training, inference
Version: $(VERSION)
Requires.private: libutf8proc libzstd libcjson
Cflags: -I$${includedir}
Libs: -L$${libdir} -lselfsup
Libs.private: -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas -ldnnl -lm -fopenmp
endef
export SELFSUP_PC

install: all
	$(call stage,build: the shared library $(B)/$(SHLIB),$(B)/libselfsup.so)
	@echo "install: libselfsup $(VERSION), headers, selfsup.pc and the CLI into $(DESTDIR)$(PREFIX)"
	$(Q)install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(INCLUDEDIR)/selfsup
	$(Q)install -m 755 $(B)/selfsup $(DESTDIR)$(BINDIR)/selfsup
	$(Q)install -m 644 $(B)/libselfsup.a $(DESTDIR)$(LIBDIR)/libselfsup.a
	$(Q)install -m 755 $(B)/$(SHLIB) $(DESTDIR)$(LIBDIR)/$(SHLIB)
	$(Q)ln -sfn $(SHLIB) $(DESTDIR)$(LIBDIR)/$(SONAME)
	$(Q)ln -sfn $(SONAME) $(DESTDIR)$(LIBDIR)/libselfsup.so
	$(Q)install -m 644 $(PUBLIC_HDRS) $(DESTDIR)$(INCLUDEDIR)/selfsup/
	$(Q)printf '%s\n' "$$SELFSUP_PC" >$(DESTDIR)$(PKGCONFIGDIR)/selfsup.pc && chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/selfsup.pc
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi

uninstall:
	@echo "uninstall: libselfsup $(VERSION), headers, selfsup.pc and the CLI from $(DESTDIR)$(PREFIX)"
	$(Q)rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	$(Q)! [ -d $(DESTDIR)$(INCLUDEDIR)/selfsup ] || rmdir --ignore-fail-on-non-empty $(DESTDIR)$(INCLUDEDIR)/selfsup
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi
# ---- the MPI flavour: the same library and CLI with src/train/dist_mpi.c ----------
$(B)/obj/src/train/dist_mpi.o: CFLAGS += $(MPI_CFLAGS)

$(B)/libselfsup-mpi.a: $(MPI_LIB_OBJS)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(B)/selfsup-mpi: $(CLI_OBJS) $(B)/libselfsup-mpi.a
	$(Q)$(CC) $(CFLAGS) -o $@ $(CLI_OBJS) $(B)/libselfsup-mpi.a $(LDLIBS) $(MPI_LIBS)

mpi: all
	$(call need_pkgs,$(MPI_PKGS))
	$(call stage,build: $(B)/selfsup-mpi (the MPI flavour: Open MPI),$(B)/selfsup-mpi)

# `selfsup --version`: the version (include/selfsup/version.h) and, in a git
# clone, `git describe --always --dirty`, rewritten when a source changes
# (only main.c includes it). From a tarball without .git: the version alone.
$(B)/gen/selfsup_git.h: $(LIB_SRCS) $(CLI_SRCS) $(wildcard include/selfsup/*.h .git/HEAD .git/index)
	@mkdir -p $(dir $@)
	@d=$$([ -e .git ] && git describe --always --dirty 2>/dev/null); \
	  printf '#define SELFSUP_GIT "%s"\n' "$$d" >$@
$(B)/obj/src/cli/main.o: $(B)/gen/selfsup_git.h
$(B)/obj/src/cli/main.o: CFLAGS += -I$(B)/gen

# ---- tests ----------------------------------------------------------------------
TEST_HEADERS := tests/testutil.h tests/train_helpers.h tests/keyword_data.h tests/ref_lower.h tests/fill_params.h
$(B)/tests/%: tests/%.c $(TEST_HEADERS) $(B)/libselfsup.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -Itests -o $@ $< $(B)/libselfsup.a $(TEST_LIBS) $(LDLIBS)

$(B)/asan/obj/%.o: %.c $(B)/.deps-ok
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(ASAN_FLAGS) -MMD -MP -c $< -o $@

$(B)/asan/libselfsup.a: $(LIB_SRCS:%.c=$(B)/asan/obj/%.o)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(B)/asan/tests/%: tests/%.c $(TEST_HEADERS) $(B)/asan/libselfsup.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(ASAN_FLAGS) -Itests -o $@ $< $(B)/asan/libselfsup.a $(TEST_LIBS) $(LDLIBS)

# The fuzz build: the library (and the CLI's option parsers, src/cli/args.c, with
# the GEMM probe cache they call, src/cli/gemm_cache.c)
# instrumented for libFuzzer, one program per target.
$(B)/fuzz/obj/%.o: %.c $(B)/.deps-ok
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(B)/fuzz/libselfsup.a: $(LIB_SRCS:%.c=$(B)/fuzz/obj/%.o) $(B)/fuzz/obj/src/cli/args.o $(B)/fuzz/obj/src/cli/gemm_cache.o
	@rm -f $@
	$(Q)ar rcs $@ $^

$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(B)/fuzz/libselfsup.a
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Itests/fuzz -Isrc/cli -o $@ $< $(B)/fuzz/libselfsup.a $(FUZZ_LDLIBS)

check-deps:
	$(call need_pkgs,$(BUILD_PKGS) $(CHECK_PKGS) $(CHECK_NPM) $(FUZZ_PKGS) $(MPI_PKGS))

check: check-deps all
	$(call stage,build: $(words $(TEST_BINS)) test programs$(,) $(words $(ASAN_BINS)) under ASan+UBSan$(,) $(words $(FUZZ_BINS)) fuzz targets and the shared library,$(TEST_BINS) $(ASAN_BINS) $(FUZZ_BINS) $(B)/libselfsup.so)
	@if ($(MPI_PRESENT)); then $(MAKE) --no-print-directory mpi; \
	 else echo "MPI flavour not built (Debian's $(MPI_PKGS) are not installed: make mpi installs them): tests/cli_mpi.sh skips"; fi
	@SELFSUP=$(B)/selfsup SELFSUP_BIN=$(B)/selfsup SELFSUP_MPI=$(B)/selfsup-mpi tests/run.sh tests/layers.sh $(TEST_BINS) $(wildcard tests/cli_*.sh) $(ASAN_BINS)

# Every fuzz target for FUZZ_SECONDS (default 60) each, on a working corpus
# in $(B)/fuzz/corpus/ seeded from tests/fuzz/corpus/; findings are saved in
# tests/fuzz/crashes/TARGET/ (make check replays them). FUZZ_TARGETS="shard gpt2"
# runs some, FUZZ_JOBS=N runs N at a time. See tests/fuzz/README.md.
fuzz: deps
	$(call need_pkgs,$(FUZZ_PKGS))
	$(call stage,build: $(words $(FUZZ_BINS)) fuzz targets (clang$(,) libFuzzer$(,) ASan+UBSan),$(FUZZ_BINS))
	@B=$(B) FUZZ_JOBS=$(FUZZ_JOBS) tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# clang's static analyzer over the library and the CLI, one file at a time:
# the warnings, then their count; the analyzer's path for each in
# $(B)/analyze/FILE.txt. Not part of make check: its warnings need reading,
# and most are false positives (eval/RESULTS.md: 7 of 82 were real, fixed;
# the 82 listed after the fixes were all read as false positives).
analyze: deps
	$(call need_pkgs,clang)
	$(call stage,build: $(B)/gen/selfsup_git.h,$(B)/gen/selfsup_git.h)
	@mkdir -p $(B)/analyze; for f in $(LIB_SRCS) $(CLI_SRCS); do \
	  clang --analyze -Xanalyzer -analyzer-output=text $(filter-out -O% -g -march=%,$(CFLAGS)) -I$(B)/gen -Isrc/cli \
	    -o /dev/null $$f >$(B)/analyze/$$(basename $$f).txt 2>&1; \
	done; cat $(B)/analyze/*.txt | grep -E '^[^ ]+:[0-9]+:[0-9]+: warning:' | sort -u >$(B)/analyze/warnings; \
	cat $(B)/analyze/warnings; echo "$$(wc -l <$(B)/analyze/warnings) analyzer warnings (paths in $(B)/analyze/)"

# The README's two commands on a fresh Debian 12 root (debootstrap --variant=minbase,
# cached in .cache/fresh/), with this working tree and the data mirror; see tests/check_fresh.sh.
check-fresh:
	@tests/check_fresh.sh

# ---- demo -------------------------------------------------------------------------
demo: all
	$(call need_pkgs,$(DEMO_PKGS))
	@eval/demo.sh

# PyTorch parity: regenerate the golden cases with Debian's torch (always
# /usr/bin/python3: another python3 on PATH may lack torch) and compare.
check-torch: check-deps all
	$(call stage,build: $(B)/tests/test_model_parity,$(B)/tests/test_model_parity)
	$(call need_pkgs,python3-torch)
	@rm -rf $(B)/golden-fresh
	/usr/bin/python3 tests/torch_ref.py golden --out $(B)/golden-fresh
	SS_GOLDEN_DIR=$(B)/golden-fresh tests/run.sh $(B)/tests/test_model_parity

# ---- experiments: does pretraining pay? (issue 5; results in eval/RESULTS.md) -------------
# exp-pretrain: mlm, rtd and clm on IMDB unsup at equal FLOPs (FLOPS=1.5e14);
# then fine-tuning on SST-2 (3 seeds), label efficiency, IMDB test.
experiments: exp-pretrain exp-sst2 exp-label-efficiency exp-imdb
exp-pretrain: all
	$(call need_pkgs,zstd)
	eval/exp_pretrain.sh
exp-sst2: all
	eval/exp_sst2.sh
exp-label-efficiency: all
	$(call need_pkgs,gnuplot-nox)
	eval/exp_label_efficiency.sh
exp-imdb: all
	$(call need_pkgs,zstd)
	eval/exp_imdb.sh
# exp-fewlabels: zero-shot, prompt-based fine-tuning and self-training on a
# pretrained model (MODEL=mlm-2h), beside its plain-head label efficiency.
exp-fewlabels: all
	$(call need_pkgs,zstd)
	eval/exp_fewlabels.sh
# exp-learning: the learning study's headline (issue 14): mlm, rtd and clm
# pretrained TIME=7200 s each with pretrain's defaults, fine-tuned with
# finetune's defaults against scratch on SST-2 (about 7 hours on 2 cores).
exp-learning: all
	$(call need_pkgs,zstd gnuplot-nox)
	eval/exp_learning.sh
# exp-probe: linear probes (a frozen body, one linear layer) of pretrained
# models (PROBE_MODELS) on SST-2, against random weights.
exp-probe: all
	eval/exp_probe.sh
# exp-continued: continued pretraining (pretrain --init) from general text
# (GENERAL=kjv|wikitext-2) to IMDB, against each alone, at equal FLOPs.
exp-continued: all
	$(call need_pkgs,zstd)
	eval/exp_continued.sh
# exp-lever: one pretraining lever (LEVER=flags LEVER_TAG=-name) against its
# baseline over several pretraining seeds (PRE_SEEDS="1 2"), at FLOPS=3e14,
# each run fine-tuned at 1,000 and all SST-2 labels (eval/exp_lever.sh).
exp-lever: all
	$(call need_pkgs,zstd)
	eval/exp_lever.sh

# ---- benchmarks -----------------------------------------------------------------
bench-tokenizer: all
	$(call need_pkgs,$(BENCH_PKGS))
	@eval/bench_tokenizer_train.sh
	@eval/bench_tokenizer_encode.sh

$(B)/bench_train: eval/bench_train.c $(B)/libselfsup.a
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(B)/libselfsup.a $(LDLIBS)

bench-train: all
	$(call need_pkgs,$(BENCH_PKGS))
	$(call stage,build: $(B)/bench_train,$(B)/bench_train)
	@eval/bench_train.sh
	@eval/learn_tinyshakespeare.sh

# Attention's fp32 tiles: selfsup's own AVX-512 kernel vs OpenBLAS sgemm.
bench-tiles: all
	$(call stage,build: $(B)/bench_train,$(B)/bench_train)
	@eval/bench_tiles.sh

# Training steps with and without the body's biases (pretrain --no-bias).
bench-bias: all
	$(call stage,build: $(B)/bench_train,$(B)/bench_train)
	@eval/bench_bias.sh

# The core's fp32 FMA and bf16 dot-product rates (eval/bench_isa.c): why
# --precision auto picks what it picks on this CPU.
$(B)/bench_isa: eval/bench_isa.c
	$(Q)$(CC) -O2 -o $@ $<

bench-isa: $(B)/bench_isa
	@$(B)/bench_isa $(or $(RUNS),5)

bench-generate: all
	$(call need_pkgs,$(BENCH_PKGS))
	@eval/bench_generate.sh

# Data parallel on one machine: 2 ranks x 1 thread against 1 rank x 2 threads.
bench-mpi: mpi
	@eval/bench_mpi.sh

# Data parallel across hosts, emulated on this machine (needs root): ranks in
# network namespaces joined by veth pairs, each link shaped by tc (tbf rate;
# delay by netem, or by build/netdelay where the kernel has no netem).
# RANKS, LINKS, CONFIGS, STEPS: see eval/bench_mpi_net.sh.
$(B)/netdelay: eval/netdelay.c
	$(Q)$(CC) $(CFLAGS) -o $@ $<

bench-mpi-net: mpi
	$(call need_pkgs,$(NET_PKGS))
	$(call stage,build: $(B)/netdelay,$(B)/netdelay)
	@eval/bench_mpi_net.sh

# clean removes build products only: what a user trained (make demo's runs
# in runs/demo/, experiments in eval/work/) is never deleted by make.
clean:
	rm -rf $(B)

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(PIC_OBJS:.o=.d) $(B)/obj/src/train/dist_mpi.d $(wildcard $(B)/fuzz/obj/*/*.d $(B)/fuzz/obj/*/*/*.d) \
  $(LIB_SRCS:%.c=$(B)/asan/obj/%.d)
