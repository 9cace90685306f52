# The two set-up commands of the README. Both install what is missing first (bootstrap.sh).
.PHONY: demo test setup images lint bench faults fuzz

setup:
	@scripts/bootstrap.sh

# The images the tutorials, tests and benchmarks pull from each lab's registry: built from
# Debian packages once per recipe (a few minutes the first time), cached in /var/cache/ferry.
images: setup
	@if [ "$$(id -u)" -eq 0 ]; then .venv/bin/ferry lab images; \
	else echo "images: not built (building them needs root, as labs do)"; fi

demo: images
	.venv/bin/ferry lab demo

test: images
	.venv/bin/python -m pytest -q -n 4 --dist loadfile --durations=30

faults: images
	FERRY_FAULT_REPEAT=5 .venv/bin/python -m pytest -q -n 3 --dist loadfile tests/integration/test_faults.py \
		tests/integration/test_faults_restarts.py tests/integration/test_faults_hosts.py

lint: setup
	.venv/bin/ruff check ferry tests benchmarks
	.venv/bin/ruff format --check ferry tests benchmarks
	.venv/bin/mypy

bench: images
	.venv/bin/python -m benchmarks.foundation
	.venv/bin/python -m benchmarks.overlay
	.venv/bin/python -m benchmarks.services
	.venv/bin/python -m benchmarks.mesh
	.venv/bin/python -m benchmarks.encryption
	.venv/bin/python -m benchmarks.managers
	.venv/bin/python -m benchmarks.ca_rotation
	.venv/bin/python -m benchmarks.runtime
	.venv/bin/python -m benchmarks.images
	.venv/bin/python -m benchmarks.faults

# The API fuzz test with a bigger budget than the suite's 2 000 requests (about ten minutes here);
# FERRY_FUZZ_SEED=N repeats a run.
fuzz: setup
	FERRY_FUZZ_REQUESTS=$${FERRY_FUZZ_REQUESTS:-10000} .venv/bin/python -m pytest -q -s \
		tests/integration/test_api_fuzz.py
