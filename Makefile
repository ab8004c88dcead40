# `make demo` and `make test` work on a fresh machine: they create the shared venv if missing,
# re-install this checkout into it, build the CPU harness (on hosts without an NVIDIA driver) and run.
.PHONY: setup harness demo test test-long test-unit test-e2e bench bench-hybrid soak gpu-check tiny-pair clean

VENV := .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/dflash-sglang

setup:
	@bash scripts/setup_venv.sh

harness: setup
	@$(CLI) harness build

demo: harness
	@$(PY) scripts/demo.py

test: harness
	@eval "$$($(CLI) env)"; $(PY) -m pytest -m "not long" $(PYTEST_ARGS)

# The e2e modules marked `long`: request features (30 prompts x every feature x c=1/4) and DFLASH on the hybrid
# pair (30 prompts x 64 tokens x two mamba strategies x c=1/8, the seeds' hybrid cards, sampling); about an hour here.
test-long: harness
	@eval "$$($(CLI) env)"; $(PY) -m pytest -m long $(PYTEST_ARGS)

test-unit: harness
	@eval "$$($(CLI) env)"; $(PY) -m pytest tests/unit tests/adapter $(PYTEST_ARGS)

test-e2e: harness
	@eval "$$($(CLI) env)"; $(PY) -m pytest tests/e2e $(PYTEST_ARGS)

# Issue 12's sweep on the bundled pair, greedy: NGRAM, SGLang's builtin DFLASH, our chain, our trees (16/32/64
# tokens) and `--speculative-dflash-tree-budget auto`, each next to AR in alternating rounds, at c = 1..32;
# JSON + PNG (speedup vs concurrency, τ vs budget). Hours on this CPU: SWEEP_ARGS='--concurrency 1,8' narrows it.
bench: harness
	@$(PY) -m dflash_sglang.benchmark.sweep --concurrency 1,4,8,16,32 --rounds 3 --num-prompts 16 \
		--max-new-tokens 96 --output docs/benchmarks/sweep.json $(SWEEP_ARGS)
	@$(MAKE) --no-print-directory bench-hybrid

# The bundled hybrid (Gated DeltaNet) pair, greedy, in alternating rounds with both servers up: our DFLASH next to
# SGLang's builtin (same minutes), then each next to AR. JSON only; BENCH_ARGS adds or overrides flags.
HYBRID_ALT = eval "$$($(CLI) env)"; eval "$$($(CLI) tiny-pair --kind hybrid)"; $(PY) -m dflash_sglang.benchmark.alternating \
	--model "$$TARGET" --draft-model "$$DRAFTER" --dtype float32 --server-args='--mamba-radix-cache-strategy no_buffer' \
	--temperatures 0 --concurrency 1,8 --num-prompts 8 --max-new-tokens 64
bench-hybrid: harness
	@$(HYBRID_ALT) --baseline builtin --methods dflash --rounds 10 \
		--output docs/benchmarks/latest-hybrid-vs-builtin.json $(BENCH_ARGS)
	@$(HYBRID_ALT) --methods dflash,builtin --rounds 5 --output docs/benchmarks/latest-hybrid.json $(BENCH_ARGS)

# Our DFLASH server on the bundled pair under mixed c=16 traffic for 30 minutes (SOAK_ARGS='--minutes 5'); exit 1 on
# any unexpected error, greedy mismatch vs AR, KV in use at idle or RSS growth >= 5 % (README: Soak).
soak: harness
	@eval "$$($(CLI) env)"; $(PY) -m dflash_sglang.soak --output build/soak/report.json $(SOAK_ARGS)

# On a CUDA host: AR, our DFLASH and SGLang's builtin on every attention backend x dtype x graphs on/off,
# greedy output checked against AR's, one table, JSON in build/gpu-check/ (< 8 min). Elsewhere: exit 2.
gpu-check: harness
	@$(PY) scripts/gpu_check.py $(GPU_CHECK_ARGS)

tiny-pair: setup
	@$(PY) scripts/make_tiny_pair.py --out build/tiny-pair-init  # the seeded random initialisation the bundled pair was trained from

clean:
	rm -rf build *.egg-info .pytest_cache
