# The two commands of the README: `make run` (the whole default sweep) and `make test` (the suite).
# Tests build in release with -enable-testing: the engine's element loops are many times slower in debug.
SWIFT_FLAGS ?= -c release
TEST_FLAGS ?= -c release -Xswiftc -enable-testing

.PHONY: deps build run test bench clean

deps:
	@scripts/install-deps.sh

build: deps
	swift build $(SWIFT_FLAGS)

# The main job: the whole seed pipeline as a sweep (coordinator + local workers) on the built-in
# synthetic set; state and results under runs/.
run: build
	.build/release/ranksweep run

test: deps
	swift build $(TEST_FLAGS) --build-tests
	swift test $(TEST_FLAGS) --skip-build

bench: build
	.build/release/ranksweep bench engine

clean:
	rm -rf .build
