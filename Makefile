# sdc — Stable Diffusion 1.x in C.
#
#   make            set up dependencies (once), build build/sdc and build/libsdc.a
#   make test       build and run the test suite
#   make test-cpu-paths  the op suite under each CPU kernel path (avx2, avx512)
#   make SAN=1 test the same under ASan+UBSan (into build/san)
#   make valgrind   the bad-input suite under valgrind (scripts/valgrind_bad_inputs.sh)
#   make fuzz       libFuzzer targets, FUZZ_SECONDS each (tests/fuzz/Makefile.inc)
#   make bench      build the benchmarks (bench/)
#   make demo       the main job: augment a small sample dataset
#   make slurm-check  sharded augment on a local one-node Slurm (root; docs/scale-out.md)
#   make install    PREFIX=/usr/local: binary, library, headers, pkg-config file
#   make CUDA=1     also build the CUDA backend (auto when nvcc is found)
#   make VULKAN=1   also build the Vulkan backend (auto when glslc and the Vulkan headers are found)

# Rules for generated files come before `all`: the goal of a bare `make` is named.
.DEFAULT_GOAL := all

PREFIX  ?= /usr/local
CC      ?= cc
NVCC    ?= nvcc
ARCH    ?= x86-64-v3
SAN     ?= 0

ifeq ($(SAN),1)
BUILD   ?= build/san
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT      = -O1
else
BUILD   ?= build
SANFLAGS =
OPT      = -O2
endif

# No -ffast-math: it folds isnan() away and changes results.
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) -g -march=$(ARCH) -mtune=znver3 \
           -Wall -Wextra -Wshadow -Wno-unused-parameter -Werror=implicit-function-declaration \
           -Iinclude -I/usr/include/stb -I/usr/include/cjson -pthread $(SANFLAGS)
LDFLAGS += -pthread $(SANFLAGS)
# CI builds with WERROR=1: a warning fails the build there.
ifeq ($(WERROR),1)
CFLAGS  += -Werror
endif
LDLIBS  += -lopenblas -lcjson -lm

LIB_SRC := $(wildcard src/core/*.c src/cpu/*.c src/weights/*.c src/models/*.c \
                      src/pipeline/*.c src/augment/*.c src/text/*.c src/image/*.c \
                      src/train/*.c src/eval/*.c)
CLI_SRC := $(wildcard src/cli/*.c)
TEST_SRC := $(filter-out tests/fault_shim.c,$(wildcard tests/*.c))
BENCH_UTIL := bench/bench_util.c

# CUDA: on when nvcc exists and there are kernels, unless CUDA=0.
CU_SRC := $(wildcard kernels/*.cu)
ifeq ($(origin CUDA),undefined)
CUDA := $(if $(and $(CU_SRC),$(shell command -v $(NVCC) 2>/dev/null)),1,0)
endif
ifeq ($(CUDA),1)
CUDA_HOME ?= $(patsubst %/bin/,%,$(dir $(shell command -v $(NVCC))))
NVFLAGS ?= -O2 -std=c++17 -Iinclude -Xcompiler -Wall,-Werror -Werror all-warnings \
           -gencode arch=compute_80,code=sm_80 -gencode arch=compute_86,code=sm_86 \
           -gencode arch=compute_89,code=sm_89 -gencode arch=compute_90,code=sm_90 \
           -gencode arch=compute_90,code=compute_90
LIB_OBJ_CU := $(CU_SRC:%.cu=$(BUILD)/%.o)
CFLAGS += -DSDC_WITH_CUDA
# rpath: the binaries find libcudart/libcublas without LD_LIBRARY_PATH.
LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lcublas -lstdc++
BENCH_CUDA := $(BUILD)/bench_cuda
else
LIB_OBJ_CU :=
BENCH_CUDA :=
endif

# Vulkan: on when glslc and the Vulkan headers exist, unless VULKAN=0. The
# shaders (src/vulkan/shaders/) are compiled to SPIR-V by glslc and embedded
# as C word lists ($(BUILD)/vkspv/*.inc) into src/vulkan/vk_shaders.c.
VK_SHADERS := unary binary layout embed norm gemm conv attention
ifeq ($(origin VULKAN),undefined)
VULKAN := $(if $(and $(shell command -v glslc 2>/dev/null),$(wildcard /usr/include/vulkan/vulkan.h)),1,0)
endif
ifeq ($(VULKAN),1)
LIB_SRC += $(wildcard src/vulkan/*.c)
CFLAGS  += -DSDC_WITH_VULKAN
LDLIBS  += -lvulkan
VK_INC  := $(VK_SHADERS:%=$(BUILD)/vkspv/%.inc)
$(BUILD)/src/vulkan/vk_shaders.o: $(VK_INC)
$(BUILD)/src/vulkan/vk_shaders.o: CFLAGS += -I$(BUILD)/vkspv
$(BUILD)/vkspv/%.inc: src/vulkan/shaders/%.comp src/vulkan/shaders/common.glsl src/vulkan/shaders/reduce.glsl
	@mkdir -p $(dir $@)
	glslc --target-env=vulkan1.2 -O -Werror -mfmt=c $< -o $@
# conv2d is gemm.comp's implicit-GEMM build.
$(BUILD)/vkspv/conv.inc: src/vulkan/shaders/gemm.comp src/vulkan/shaders/common.glsl
	@mkdir -p $(dir $@)
	glslc --target-env=vulkan1.2 -O -Werror -DCONV -mfmt=c $< -o $@
endif

# One build folder, one configuration: when the flags change (CUDA=0 after
# CUDA=1, WERROR, ARCH, VULKAN...) the objects they build are rebuilt,
# instead of old objects of the other configuration failing at link time.
# C and CUDA objects each have their own stamp: a C flag does not recompile
# the kernels.
define flags_stamp
ifneq ($(2),$$(file <$(1)))
$$(shell mkdir -p $(BUILD))
$$(file >$(1),$(2))
endif
endef
CC_STAMP := $(BUILD)/.cflags
NV_STAMP := $(BUILD)/.nvflags
$(eval $(call flags_stamp,$(CC_STAMP),$(CC) $(CFLAGS)))
$(eval $(call flags_stamp,$(NV_STAMP),$(NVCC) $(NVFLAGS)))

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o) $(LIB_OBJ_CU)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ  := $(TEST_SRC:%.c=$(BUILD)/%.o)
BENCH_OPS_OBJ := $(patsubst %.c,$(BUILD)/%.o,bench/ops.c tests/op_cases.c tests/op_ref.c $(BENCH_UTIL))
BENCH_MODELS_OBJ := $(patsubst %.c,$(BUILD)/%.o,bench/models.c $(BENCH_UTIL))
BENCH_CLIP_OBJ := $(patsubst %.c,$(BUILD)/%.o,bench/clip.c $(BENCH_UTIL))
BENCH_PROBE_OBJ := $(patsubst %.c,$(BUILD)/%.o,bench/probe.c $(BENCH_UTIL))
BENCH_TRAIN_OBJ := $(patsubst %.c,$(BUILD)/%.o,bench/train.c $(BENCH_UTIL))

SETUP_STAMP := weights/.setup-done
# Set-up comes first, whatever the goal: what it installs (glslc, the Vulkan
# headers) decides above what the build holds, so make reads this file again
# once the stamp is made (GNU make remakes an included file, then restarts).
-include $(SETUP_STAMP)

.PHONY: all setup test bench demo install clean fuzz kernels
all: $(SETUP_STAMP) $(BUILD)/sdc $(BUILD)/libsdc.a

setup $(SETUP_STAMP): scripts/setup.sh
	@bash scripts/setup.sh

$(BUILD)/%.o: %.c $(CC_STAMP) | $(SETUP_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# AVX-512 kernels: a file named *_avx512.c gets these flags on top of
# -march (the rest of the library stays x86-64-v3). They run only after
# src/cpu/cpu_isa.c chose that path at run time, so one binary serves
# AVX2-only and AVX-512 machines.
AVX512_FLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq
$(BUILD)/%_avx512.o: CFLAGS += $(AVX512_FLAGS)

# stb_image 2.27 multiplies a JPEG's running DC sum by its quantizer in int:
# a 229-byte file overflows it (signed overflow, UB; later stb releases
# check). -fwrapv makes that arithmetic defined, wrapping, in stb's unit only.
STB_CFLAGS := -fwrapv
$(BUILD)/src/image/stb_impl.o: CFLAGS += $(STB_CFLAGS)

# The install prefix's share/sdc is one place the CLI looks for the vocabulary.
$(BUILD)/src/cli/preflight.o: CFLAGS += -DSDC_PREFIX='"$(PREFIX)"'

# Unicode tables of the tokenizer: generated from Python's unicodedata, never committed.
$(BUILD)/gen/unicode_tables.h: scripts/gen_unicode_tables.py
	@mkdir -p $(dir $@)
	/usr/bin/python3 scripts/gen_unicode_tables.py $@
$(BUILD)/src/text/unicode.o: $(BUILD)/gen/unicode_tables.h
$(BUILD)/src/text/unicode.o: CFLAGS += -I$(BUILD)/gen

# -MMD: a .cu is rebuilt when kernels/cuda_common.cuh or a header changes.
$(BUILD)/%.o: %.cu $(NV_STAMP)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -MMD -MP -MF $(@:.o=.d) -c $< -o $@

$(BUILD)/libsdc.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/sdc: $(CLI_OBJ) $(BUILD)/libsdc.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/run_tests: $(TEST_OBJ) $(BUILD)/libsdc.a
	$(CC) $(LDFLAGS) $^ -o $@ -lcheck -lsubunit -lrt $(LDLIBS)

$(BUILD)/bench_ops: $(BENCH_OPS_OBJ) $(BUILD)/libsdc.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/bench_models: $(BENCH_MODELS_OBJ) $(BUILD)/libsdc.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/bench_clip: $(BENCH_CLIP_OBJ) $(BUILD)/libsdc.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/bench_probe: $(BENCH_PROBE_OBJ) $(BUILD)/libsdc.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/bench_train: $(BENCH_TRAIN_OBJ) $(BUILD)/libsdc.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# The faults suite preloads this into the CLI (found beside $SDC_BIN); never
# sanitized itself, never linked into anything.
$(BUILD)/libsdc_fault.so: tests/fault_shim.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O1 -g -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror) -fPIC -shared $< -o $@ -ldl

# The bad-input suite with every process under valgrind (a non-sanitized,
# CPU-only build in build/valgrind).
.PHONY: valgrind
valgrind: $(SETUP_STAMP)
	@bash scripts/valgrind_bad_inputs.sh

# The tests find the CLI through $SDC_BIN and fixtures under tests/fixtures.
test: $(SETUP_STAMP) $(BUILD)/sdc $(BUILD)/run_tests $(BUILD)/libsdc_fault.so
	SDC_BIN=$(BUILD)/sdc CK_DEFAULT_TIMEOUT=1200 $(BUILD)/run_tests

# The op suite (with its batch and thread invariance cases) under each CPU
# kernel path this machine can run; the AVX-512 one is skipped, saying so,
# where cpuid lacks it.
.PHONY: test-cpu-paths
test-cpu-paths: $(SETUP_STAMP) $(BUILD)/sdc $(BUILD)/run_tests
	@bash scripts/test_cpu_paths.sh $(BUILD)

bench: $(BUILD)/bench_ops $(BUILD)/bench_models $(BUILD)/bench_clip $(BUILD)/bench_probe \
       $(BUILD)/bench_train $(BUILD)/sdc $(BENCH_CUDA)

# CUDA bench (built with CUDA on): per-op timings on the op table, models.
ifeq ($(CUDA),1)
BENCH_CUDA_OBJ := $(patsubst %.c,$(BUILD)/%.o,bench/cuda.c tests/op_cases.c tests/op_ref.c $(BENCH_UTIL))
$(BUILD)/bench_cuda: $(BENCH_CUDA_OBJ) $(BUILD)/libsdc.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)
bench_cuda: $(BUILD)/bench_cuda
.PHONY: bench_cuda
endif

# Compiles every kernel on its own with warnings as errors (CI runs this).
# With CUDA on these are the library's own objects (NVFLAGS has -Werror), so
# after `make test` this only checks they are up to date.
ifeq ($(CUDA),1)
kernels: $(LIB_OBJ_CU)
	@echo "kernels: $(words $(LIB_OBJ_CU)) CUDA sources compiled with warnings as errors"
else
kernels:
	@echo "kernels: CUDA off (nvcc not found, no kernels, or CUDA=0): skipped"
endif

demo: all
	@bash scripts/demo.sh $(BUILD)/sdc

# sdc augment --shard auto as a 4-task array on a one-node Slurm started on
# localhost (root; installs slurmctld, slurmd, munge when missing); the merged
# output must equal an unsharded run byte for byte. See docs/scale-out.md.
.PHONY: slurm-check
slurm-check: all
	@bash scripts/slurm_check.sh $(BUILD)/sdc

# The BPE vocabulary goes to $(PREFIX)/share/sdc, where every command finds it
# (beside $SDC_VOCAB, --vocab, and a copy next to the binary).
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include \
	    $(DESTDIR)$(PREFIX)/share/sdc
	install -m 755 $(BUILD)/sdc $(DESTDIR)$(PREFIX)/bin/sdc
	install -m 644 weights/bpe_simple_vocab_16e6.txt.gz $(DESTDIR)$(PREFIX)/share/sdc/
	install -m 644 $(BUILD)/libsdc.a $(DESTDIR)$(PREFIX)/lib/libsdc.a
	install -m 644 include/sdc.h include/sdc_ops.h include/sdc_cuda.h $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@EXTRA_LIBS@|$(if $(filter 1,$(VULKAN)), -lvulkan)|' -e 's|@VERSION@|$(shell sed -n 's/^#define SDC_VERSION "\(.*\)"/\1/p' include/sdc.h)|' \
	    scripts/sdc.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/sdc.pc

clean:
	rm -rf build

# make fuzz / make fuzz-build: libFuzzer targets (clang-14), into build/fuzz.
include tests/fuzz/Makefile.inc

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
