# The two commands of the README: `make run` (the whole default sweep) and `make test` (the suite).
# Tests build in release with -enable-testing: the engine's element loops are many times slower in debug.
SWIFT_FLAGS ?= -c release
TEST_FLAGS ?= -c release -Xswiftc -enable-testing

.PHONY: deps test-deps build run test install install-check bench tensorflow interop clean

deps:
	@scripts/install-deps.sh

# Test-only packages (iproute2, nftables, chromium) come with `make test` alone.
test-deps:
	@scripts/install-deps.sh --test

build: deps
	swift build $(SWIFT_FLAGS)

# The main job: the whole seed pipeline as a sweep (coordinator + local workers) on the built-in
# synthetic set; state and results under runs/.
run: build
	.build/release/ranksweep run

test: test-deps
	swift build $(TEST_FLAGS) --build-tests
	swift test $(TEST_FLAGS) --skip-build

# A binary for worker hosts: release, Swift's runtime linked in (--static-swift-stdlib), so a host
# needs only the Debian packages of scripts/runtime-packages.txt. Its own scratch path: static and
# dynamic builds do not share objects. `make install PREFIX=/usr/local` (DESTDIR for staging).
PREFIX ?= /usr/local
STATIC_FLAGS ?= -c release --static-swift-stdlib --scratch-path .build-static
STATIC_BIN = .build-static/release/ranksweep
install: deps
	swift build $(STATIC_FLAGS) --product ranksweep
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(STATIC_BIN) $(DESTDIR)$(PREFIX)/bin/ranksweep

# Checks that binary (ldd: no Swift runtime library; direct libraries from the documented packages).
# Not part of `make test`: the static build is a second full release build; .ci/run calls it.
install-check: deps
	swift build $(STATIC_FLAGS) --product ranksweep
	scripts/check-install.sh $(STATIC_BIN)

# The engine benchmark; with `make tensorflow` done first it also measures TensorFlow in the same run.
bench: build
	.build/release/ranksweep bench engine

# TensorFlow (CPU, 2.21.0: the version the golden fixtures came from) and tf-keras (Keras 2) in a virtual
# environment of its own, for `bench` and scripts/make-keras-fixtures.py.
TF_VENV ?= $(HOME)/.cache/ranksweep/tf-venv
tensorflow:
	@test -x $(TF_VENV)/bin/python || python3 -m venv $(TF_VENV)
	$(TF_VENV)/bin/pip install -q tensorflow-cpu==2.21.0 tf-keras==2.21.0

# ONNX export checked against onnxruntime (PyPI, in a virtual environment of its own): a baseline,
# a compressed model and a Keras fixture, within 1e-4. Built with the test flags so that after
# `make test` (as in .ci/run) nothing is rebuilt.
INTEROP_VENV ?= $(HOME)/.cache/ranksweep/interop-venv
interop: deps
	swift build $(TEST_FLAGS) --product ranksweep
	@test -x $(INTEROP_VENV)/bin/python || python3 -m venv $(INTEROP_VENV)
	$(INTEROP_VENV)/bin/pip install -q onnxruntime==1.32.0 numpy==2.4.6
	$(INTEROP_VENV)/bin/python scripts/check-onnx.py .build/release/ranksweep

clean:
	rm -rf .build .build-static
