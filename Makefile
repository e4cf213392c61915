# The two commands of the README: `make run` (the whole default sweep) and `make test` (the suite).
# Tests build in release with -enable-testing: the engine's element loops are many times slower in debug.
SWIFT_FLAGS ?= -c release
TEST_FLAGS ?= -c release -Xswiftc -enable-testing

.PHONY: deps build run test bench clean

deps:
	@scripts/install-deps.sh

build: deps
	swift build $(SWIFT_FLAGS)

# Until the distributed sweep (`ranksweep run`) lands, the main job is the seed pipeline run locally:
# a baseline on the built-in synthetic set, then the seed's compression grid, each fine-tuned.
run: build
	.build/release/ranksweep train --image-size 128 --epochs 20 --batch-size 8 --lr 1e-3 --out-dir runs/baseline
	.build/release/ranksweep compress --model runs/baseline/model.safetensors \
		--svd-ranks "50,100,150" --arsvd-taus "0.95,0.9,0.85" --out-dir runs/compressed

test: deps
	swift build $(TEST_FLAGS) --build-tests
	swift test $(TEST_FLAGS) --skip-build

bench: build
	.build/release/ranksweep bench engine

clean:
	rm -rf .build
