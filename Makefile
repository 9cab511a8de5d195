# The two commands of the Quick start. Both install what is missing (as root, on Debian 12).
SWIFT ?= swift
# What the tool links against, and the embedded default dataset (Fashion-MNIST, MIT licence).
APT_PACKAGES := libdnnl-dev libjpeg62-turbo-dev libpng-dev zlib1g-dev dataset-fashion-mnist
# What the tests need besides: PyTorch loads Swift-written checkpoints into the reference model;
# the tensorboard Python package (pip) reads our event files back.
TEST_APT_PACKAGES := $(APT_PACKAGES) python3-torch

.PHONY: demo test deps test-deps build release bench clean

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

test-deps:
	$(call apt_install,$(TEST_APT_PACKAGES))
	@python3 -c "import tensorboard" 2>/dev/null || { echo "Installing: tensorboard (pip)"; python3 -m pip install --quiet --root-user-action=ignore tensorboard; }

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

## Trains the default preset (tiny32) on Fashion-MNIST for a few minutes and writes sample grids.
DEMO_STEPS ?= 2000
demo: release
	.build/release/sagan train --steps $(DEMO_STEPS) --sample-every 250 --checkpoint-every 500

## Builds and runs every test (in release: the numeric tests run 5-10x faster than in debug).
test: test-deps
	$(SWIFT) build --build-tests -c release
	$(SWIFT) test -c release --skip-build

## Training-iteration throughput on this machine (not a test: numbers depend on the machine).
bench: release
	.build/release/sagan bench --preset blog128 --batch 16 --profile

clean:
	rm -rf .build
