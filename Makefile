# jhub.docker: the README's commands. Each target creates and uses .venv by itself.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
# Suites the Molecule scenarios run on.
DISTROS ?= bookworm trixie
# Extra pytest arguments, e.g. PYTEST_ARGS='-k bad_input'.
PYTEST_ARGS ?=

export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export JHUB_DISTROS := $(DISTROS)

.PHONY: help deploy test test-packages lint unit molecule docs locks changelog venv clean bench bench-venv bench-deploy bench-guard

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

deploy: venv ## Deploy JupyterHub on this machine (inventory/local.yml)
	ansible-playbook playbooks/site.yml

# The linters run inside pytest (tests/test_lint.py), beside the Molecule scenarios.
test: venv test-packages ## Run the whole test suite: lint, docs, unit and bad-input tests, this machine's deployment, Molecule
	pytest $(PYTEST_ARGS)

# Debian packages the suite needs on this machine (installed when missing; root): debootstrap
# for the Molecule test-host image, busybox-static for the engine scenario's image archive, restic
# and OpenSSH's client for the off-site backups' unit tests and their SFTP server.
TEST_PACKAGES := debootstrap busybox-static restic openssh-client

test-packages:
	@missing=$$(for p in $(TEST_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

lint: venv ## yamllint and ansible-lint (production profile)
	yamllint --strict .
	ansible-lint --offline

unit: venv ## The fast tests only (no Molecule)
	pytest -m 'not molecule' $(PYTEST_ARGS)

molecule: venv ## The Molecule scenarios only
	pytest -m molecule $(PYTEST_ARGS)

# Extra arguments of bench/bench.py, e.g. BENCH_ARGS='--skip-deploy --keep --spawns 5'.
BENCH_ARGS ?=

bench: bench-venv ## Benchmark deploy, spawn and concurrency on a Molecule test host (bench/; ~10 min)
	python bench/bench.py $(BENCH_ARGS)
	python bench/report.py

bench-deploy: venv ## Time a no-change `make deploy` on this machine (median of 3, with its floor; bench/deploy.py)
	python bench/deploy.py

bench-guard: venv ## What the hub's Docker proxy adds to a spawn, on this machine's deployment (bench/guard.py)
	python bench/guard.py

bench-venv: venv $(VENV)/.bench-installed

$(VENV)/.bench-installed: bench/requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

docs: venv ## Regenerate each role's README.md from its meta/argument_specs.yml
	python tools/role_docs.py --write

# The Pythons of the images (Debian bookworm's own 3.11.2, trixie's 3.13): pip resolves with each.
LOCK_PYTHONS ?= /usr/bin/python3.11 python3.13

locks: venv ## Regenerate the images' pip locks (roles/*/files/constraints-*.txt) for the default versions
	python tools/pip_lock.py $(LOCK_PYTHONS)

changelog: venv ## Lint changelogs/fragments and regenerate CHANGELOG.md (antsibull-changelog)
	antsibull-changelog lint
	antsibull-changelog generate

venv: $(VENV)/.installed

# Debian's system Python makes virtualenvs only with python3-venv: installed when it is missing (root).
$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null \
		&& $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

clean: ## Remove the virtualenv and test output
	rm -rf $(VENV) .pytest_cache tests/output
