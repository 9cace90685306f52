# The two set-up commands of the README. Both install what is missing first (bootstrap.sh).
.PHONY: demo test setup lint bench faults fuzz

setup:
	@scripts/bootstrap.sh

demo: setup
	.venv/bin/ferry lab demo

test: setup
	.venv/bin/python -m pytest -q -n 3 --dist loadfile

faults: setup
	FERRY_FAULT_REPEAT=5 .venv/bin/python -m pytest -q tests/integration/test_faults.py

lint: setup
	.venv/bin/ruff check ferry tests benchmarks
	.venv/bin/ruff format --check ferry tests benchmarks
	.venv/bin/mypy

bench: setup
	.venv/bin/python -m benchmarks.foundation
	.venv/bin/python -m benchmarks.overlay
	.venv/bin/python -m benchmarks.services
	.venv/bin/python -m benchmarks.mesh
	.venv/bin/python -m benchmarks.encryption
	.venv/bin/python -m benchmarks.runtime
	.venv/bin/python -m benchmarks.faults

# The API fuzz test with a bigger budget than the suite's 2 000 requests (about ten minutes here);
# FERRY_FUZZ_SEED=N repeats a run.
fuzz: setup
	FERRY_FUZZ_REQUESTS=$${FERRY_FUZZ_REQUESTS:-10000} .venv/bin/python -m pytest -q -s \
		tests/integration/test_api_fuzz.py
