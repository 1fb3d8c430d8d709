# selfsup — build, test, demo and benchmarks.
#   make          build/libselfsup.a and build/selfsup
#   make check    every test (unit, CLI, ASan+UBSan build), ending "N passed, N failed"
#   make demo     the main job, end to end
#   make bench-*  side-by-side benchmarks (results go to eval/RESULTS.md by hand)

CC       ?= gcc
B        ?= build
ARCH     := $(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
BLAS_DIR := /usr/lib/$(ARCH)/openblas-openmp
BLAS_INC := /usr/include/$(ARCH)/openblas-openmp

# Debian packages the build needs. Found with dpkg-query; installed when root.
BUILD_PKGS := pkg-config libutf8proc-dev libzstd-dev libopenblas-openmp-dev libcjson-dev libcmocka-dev
CHECK_PKGS := python3 python3-numpy zstd curl bible-kjv gnuplot-nox
DEMO_PKGS  := bible-kjv curl
BENCH_PKGS := sentencepiece nodejs zstd time bc python3-torch

CFLAGS   ?= -O2 -g -march=native
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -fopenmp -Iinclude -I$(BLAS_INC) \
            $(shell pkg-config --cflags libutf8proc libzstd libcjson 2>/dev/null)
LDLIBS   := $(shell pkg-config --libs libutf8proc libzstd libcjson 2>/dev/null) \
            -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas -lm -fopenmp
TEST_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

LIB_SRCS := $(wildcard tokenizer/*.c corpora/*.c) \
            $(filter-out src/cli/%,$(wildcard src/*/*.c))
CLI_SRCS := $(wildcard src/cli/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/obj/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(B)/obj/%.o)
TEST_SRCS := $(wildcard tests/test_*.c)
TEST_BINS := $(TEST_SRCS:tests/%.c=$(B)/tests/%)
# The sanitizer build covers the tokenizer, data, io, kernel and inference tests.
ASAN_SRCS := $(wildcard tests/test_tok_*.c tests/test_data_*.c tests/test_io_*.c tests/test_nn_*.c tests/test_infer_*.c)
ASAN_BINS := $(ASAN_SRCS:tests/%.c=$(B)/asan/tests/%)
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

.PHONY: all deps check check-deps check-torch demo clean bench-tokenizer bench-train bench-generate \
        experiments exp-pretrain exp-sst2 exp-label-efficiency exp-imdb
all: deps $(B)/libselfsup.a $(B)/selfsup

# ---- dependencies -------------------------------------------------------------
define need_pkgs
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
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
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(B)/libselfsup.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(B)/selfsup: $(CLI_OBJS) $(B)/libselfsup.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJS) $(B)/libselfsup.a $(LDLIBS)

# ---- tests ----------------------------------------------------------------------
$(B)/tests/%: tests/%.c tests/testutil.h tests/train_helpers.h tests/ref_lower.h tests/fill_params.h $(B)/libselfsup.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(B)/libselfsup.a $(TEST_LIBS) $(LDLIBS)

$(B)/asan/obj/%.o: %.c $(B)/.deps-ok
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -MMD -MP -c $< -o $@

$(B)/asan/libselfsup.a: $(LIB_SRCS:%.c=$(B)/asan/obj/%.o)
	@rm -f $@
	ar rcs $@ $^

$(B)/asan/tests/%: tests/%.c tests/testutil.h $(B)/asan/libselfsup.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -Itests -o $@ $< $(B)/asan/libselfsup.a $(TEST_LIBS) $(LDLIBS)

check-deps:
	$(call need_pkgs,$(BUILD_PKGS) $(CHECK_PKGS))

check: check-deps all $(TEST_BINS) $(ASAN_BINS)
	@SELFSUP=$(B)/selfsup SELFSUP_BIN=$(B)/selfsup tests/run.sh $(TEST_BINS) $(wildcard tests/cli_*.sh) $(ASAN_BINS)

# ---- demo -------------------------------------------------------------------------
demo: all
	$(call need_pkgs,$(DEMO_PKGS))
	@eval/demo.sh

# PyTorch parity: regenerate the golden cases with Debian's torch (always
# /usr/bin/python3: another python3 on PATH may lack torch) and compare.
check-torch: check-deps all $(B)/tests/test_model_parity
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

# ---- benchmarks -----------------------------------------------------------------
bench-tokenizer: all
	$(call need_pkgs,$(BENCH_PKGS))
	@eval/bench_tokenizer_train.sh
	@eval/bench_tokenizer_encode.sh

$(B)/bench_train: eval/bench_train.c $(B)/libselfsup.a
	$(CC) $(CFLAGS) -o $@ $< $(B)/libselfsup.a $(LDLIBS)

bench-train: all $(B)/bench_train
	$(call need_pkgs,$(BENCH_PKGS))
	@eval/bench_train.sh
	@eval/learn_tinyshakespeare.sh

bench-generate: all
	$(call need_pkgs,$(BENCH_PKGS))
	@eval/bench_generate.sh

clean:
	rm -rf build

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d)
