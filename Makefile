# The two commands of the Quick start. Both install what is missing (as root, on Debian 12).
SWIFT ?= swift
APT_PACKAGES := libdnnl-dev

.PHONY: demo test deps build release bench clean

## Installs the system libraries the build links against, when missing.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

## Trains a small network end to end and shows its progress.
demo: release
	.build/release/sagan demo

## Builds and runs every test (in release: the numeric tests run 5-10x faster than in debug).
test: deps
	$(SWIFT) build --build-tests -c release
	$(SWIFT) test -c release --skip-build

## Kernel throughput on this machine (not a test: numbers depend on the machine).
bench: release
	.build/release/sagan bench conv

clean:
	rm -rf .build
