# Apollo: `make run` starts the demo, `make test` runs the whole suite. Both create and reuse .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: run test lint pytest bench bench-pg install install-dev clean cluster kubectl cluster-build

$(PY):
	$(PYTHON) -m venv $(VENV)

# Stamps make re-runs instant; they are rebuilt when the pins change.
$(VENV)/.installed: $(PY) requirements.txt constraints.txt
	$(PIP) install -r requirements.txt -c constraints.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt constraints.txt
	$(PIP) install -r requirements-dev.txt -c constraints.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(PY) manage.py rundemo

lint: install-dev
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

pytest: install-dev
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test: lint pytest

bench: install-dev
	$(PY) bench/run.py

# The page benches on SQLite and again on PostgreSQL + Redis (the database apollo_bench is
# created and dropped by the bench; Redis keys apollo_bench:*). The other benches keep their
# last results in latest.md.
BENCH_POSTGRES ?= postgres://postgres@127.0.0.1:5432/apollo_bench
BENCH_REDIS ?= redis://127.0.0.1:6379/0
bench-pg: install-dev
	$(PY) bench/run.py --postgres $(BENCH_POSTGRES) --redis $(BENCH_REDIS) history home board metrics

# The real control plane (cluster/, upstream Kubernetes built from the Go modules, simulated
# nodes) and kubectl from the same pins. The first build takes long; later ones seconds.
cluster-build:
	cluster/build.sh

kubectl: cluster-build

APOLLO_KUBERNETES_PORT ?= 6444
cluster: cluster-build
	var/bin/apollo-kubernetes up --dir var/kubernetes --kubeconfig var/kubernetes.kubeconfig \
		--port $(APOLLO_KUBERNETES_PORT) --namespace staging --namespace production

clean:
	rm -rf $(VENV) var
