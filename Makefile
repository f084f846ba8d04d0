# dhi-offline: `make demo` runs the main job offline; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SYSTEM_TOOLS := docker-registry skopeo chromium zstd

.PHONY: all venv system-deps lint typecheck unit test demo demo-push clean dist

all: test

# The venv is rebuilt when pyproject.toml changes; pip installs the package with its test extras.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Integration tests use Debian's distribution registry and skopeo as real peers.
system-deps:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_TOOLS) >/dev/null; \
	  else \
	    echo "warning:$$missing not installed (need root and apt-get); integration tests will be skipped"; \
	  fi; \
	fi

lint: venv
	$(VENV)/bin/ruff check dhi_offline tests benchmarks
	$(VENV)/bin/ruff format --check dhi_offline tests benchmarks

typecheck: venv
	$(VENV)/bin/mypy --strict dhi_offline
	$(VENV)/bin/mypy --strict tests
	$(VENV)/bin/mypy --strict benchmarks

unit: venv
	$(VENV)/bin/pytest -q

test: venv system-deps lint typecheck unit

demo: venv
	$(PY) -m dhi_offline demo --workdir bundles/demo --output bundles/demo.dhi.tar.zst

# Delivery to an internal registry: real docker-registry and skopeo (docs/admission.md).
demo-push: venv system-deps
	$(PY) -m dhi_offline.demo_push bundles/demo-push

# Offline installer for the air-gapped host (docs/install.md): every wheel, install.sh,
# SHA256SUMS signed with the exporter key. `make dist SIGNING_KEY=exporter.pem` builds
# for this machine; DIST_PLATFORM=manylinux_2_28_aarch64 DIST_PYTHON=3.12 for another.
SIGNING_KEY ?= exporter.pem
DIST_PLATFORM ?=
DIST_PYTHON ?=
dist: venv
	$(PY) -m dhi_offline dist build --signing-key $(SIGNING_KEY) -o dist \
	  $(if $(DIST_PLATFORM),--platform $(DIST_PLATFORM)) $(if $(DIST_PYTHON),--python $(DIST_PYTHON))

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis

# Benchmarks: runs every benchmarks/bench_*.py; each prints its figures (docs/performance.md).
.PHONY: bench
# Each benchmark appends its issue-13 target lines ("target N (...): figure: met|NOT met")
# to bundles/bench-targets.txt; they are printed together at the end.
BENCH_TARGETS := $(CURDIR)/bundles/bench-targets.txt
bench: venv system-deps
	@set -e; mkdir -p bundles; rm -f $(BENCH_TARGETS); \
	for b in benchmarks/bench_*.py; do echo "== $$b"; DHI_BENCH_TARGETS=$(BENCH_TARGETS) $(PY) $$b; done; \
	echo "== targets (issue 13), also in $(BENCH_TARGETS)"; cat $(BENCH_TARGETS)

# Mutation campaign against valid bundles (tests/adversarial/mutate.py; figures in
# docs/security.md): `make fuzz N=10000 SEED=1`. Exits 1 on any crash or acceptance of a
# changed meaning; the JSON report goes to bundles/fuzz-report.json (not tracked).
N ?= 10000
SEED ?= 1
.PHONY: fuzz
fuzz: venv
	@mkdir -p bundles
	$(PY) -m tests.adversarial.mutate --n $(N) --seed $(SEED) --out bundles/fuzz-report.json

# Export under faults (tests/export/fault_campaign.py; figures in docs/security.md):
# `make faults RUNS=200 SEED=1` exports through a fault-injecting proxy RUNS times. Exits 1
# when a run left a file behind or ended other than "succeeded" / "failed cleanly"; the
# JSON report goes to bundles/faults-report.json (not tracked). FAULT_FLAGS=--subprocess
# runs the CLI as a subprocess instead of in-process.
RUNS ?= 200
FAULT_FLAGS ?=
.PHONY: faults
faults: venv system-deps
	@mkdir -p bundles
	$(PY) -m tests.export.fault_campaign --runs $(RUNS) --seed $(SEED) --json bundles/faults-report.json $(FAULT_FLAGS)

# Mutation harness for the trust path (tests/mutation/; table in docs/security.md):
# removes each security check in a scratch copy and runs the tests meant to catch it.
# Exits 1 when a check survives, or an acceptance-path check has fewer than two killers.
# `make mutants ONLY="--only rollback"` runs some points. make test checks the list only.
ONLY ?=
.PHONY: mutants
mutants: venv system-deps
	@mkdir -p bundles
	$(PY) -m tests.mutation.run --json bundles/mutants-report.json $(ONLY)
