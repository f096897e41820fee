# One command per job; every target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
REQUIREMENTS := requirements.txt requirements-run.txt requirements-dev.txt
STAMP  := $(VENV)/.installed-$(shell cat $(REQUIREMENTS) | sha256sum | cut -c1-12)
# `make run` and `make demo` need less than the checks: a fresh clone starts sooner.
RUN_STAMP := $(VENV)/.run-installed-$(shell cat requirements.txt requirements-run.txt | sha256sum | cut -c1-12)
BENCH_STAMP := $(VENV)/.bench-installed-$(shell cat requirements-bench.txt | sha256sum | cut -c1-12)
# The browser assets GET /docs serves (npm's swagger-ui-dist, pinned in package-lock.json); npm ci writes this file.
ASSETS := node_modules/.package-lock.json
export AWS_DEFAULT_REGION ?= ap-southeast-3
# checkov in its own venv: it pins packaging and networkx at versions the project's venv does not use.
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell cat requirements-checkov.txt | sha256sum | cut -c1-12)
CHECKOV       := $(CHECKOV_VENV)/bin/checkov --framework cloudformation --compact --quiet --skip-download

.PHONY: help install run demo test faults fuzz soak pool-load lint lint-infra format typecheck migration squawk check package deploy-dry-run \
        readme-diagram whatsapp-templates migrate-plan migrate-apply migrate-verify bench bench-smoke clean

help:  ## list every target
	@awk -F':.*## ' '/^[a-z][a-z -]*:.*## / {n = split($$1, names, " "); \
	    for (i = 1; i <= n; i++) printf "  make %-16s %s\n", names[i], $$2}' $(MAKEFILE_LIST)

$(STAMP): $(REQUIREMENTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-* $(VENV)/.run-installed-* && touch $@ $(RUN_STAMP)

$(RUN_STAMP): requirements.txt requirements-run.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-run.txt
	rm -f $(VENV)/.run-installed-* && touch $@

install: $(STAMP) $(ASSETS)  ## create .venv and install everything (Python packages, Swagger UI's files)

$(ASSETS): package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

run: $(RUN_STAMP) $(ASSETS)  ## the whole system locally: PostgreSQL, SQS (moto), worker, WhatsApp sink, chalice local on PORT (8000; README, Configuration)
	$(BIN)/python -m devstack

demo: $(RUN_STAMP)  ## against a running `make run` (the same PORT, WHATSAPP_PORT): one registration from sign-up to customer_created
	$(BIN)/python -m devstack.demo

test: $(STAMP) $(ASSETS)  ## the whole test suite (embedded PostgreSQL 18, or TEST_DATABASE_URL)
	$(BIN)/pytest -n 4

faults: $(STAMP)  ## only the fault-injection tests (database stopped, SQS down, worker killed, WhatsApp failing, migrations)
	$(BIN)/pytest -m faults

fuzz: $(STAMP) $(ASSETS)  ## schemathesis on every operation of /openapi.json, good and bad tokens (FUZZ_URL: a running stack)
	$(BIN)/python -m devstack.fuzz

soak: $(STAMP)  ## the long concurrency soak (SOAK_SECONDS=120, SOAK_PROCESSES=8), then its invariants by SQL
	$(BIN)/python -m tests.soak --seconds $${SOAK_SECONDS:-120} --processes $${SOAK_PROCESSES:-8}

pool-load: $(STAMP)  ## 400 concurrent containers vs max_connections=50, through pgbouncer (transaction mode) and without it; then checked by SQL
	$(BIN)/python -m tests.pool_load --clients $${POOL_LOAD_CLIENTS:-400} --max-connections 50 --pool-size 40

lint: $(STAMP) lint-infra  ## ruff, import-linter on the layers of chalicelib (pyproject.toml), every relative link and #anchor of the Markdown files, actionlint and zizmor on the pipeline
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo
	$(BIN)/mdlinkcheck --quiet --no-git *.md docs bench
	$(BIN)/actionlint
	$(BIN)/zizmor --offline --persona pedantic --quiet .github/workflows

$(CHECKOV_STAMP): requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	rm -f $(CHECKOV_VENV)/.installed-* && touch $@

lint-infra: $(STAMP) $(CHECKOV_STAMP)  ## cfn-lint and checkov on infra/*.yaml (make package checks the app template the same way)
	$(BIN)/cfn-lint infra/*.yaml
	$(CHECKOV) $(addprefix -f ,$(wildcard infra/*.yaml))

format: $(STAMP)  ## ruff, rewriting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP)  ## mypy --strict on chalicelib, app.py, devstack, tests and the operations scripts
	$(BIN)/mypy

migration: $(STAMP)  ## the next migration file(s) from verify's fix: make migration NAME=allow_status_on_hold (nothing when none is needed)
	$(BIN)/python -m chalicelib.migrate.generate $(NAME)

squawk: $(STAMP)  ## lint migrations/ for locking hazards
	$(BIN)/squawk migrations/*.sql

check: lint typecheck squawk test  ## every check CI makes

package: $(STAMP) $(ASSETS) $(CHECKOV_STAMP)  ## build/package: chalice package + merge template + the foundation's exports, bytecode in the zip, cfn-lint, checkov (STAGE=dev)
	$(BIN)/python scripts/package.py --stage $${STAGE:-dev} --out build/package
	$(CHECKOV) -f build/package/sam.json

deploy-dry-run: $(RUN_STAMP)  ## print the pipeline's commands: package, upload, deploy with the schema gate inside (STAGE=dev)
	PYTHON=$(BIN)/python scripts/deploy --dry-run --stage $${STAGE:-dev}

$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	rm -f $(VENV)/.bench-installed-* && touch $@

bench: $(BENCH_STAMP) $(ASSETS)  ## every benchmark (minutes): prints the table, writes bench/RESULTS.md
	$(BIN)/python -m bench --out bench/RESULTS.md

bench-smoke: $(STAMP) $(ASSETS)  ## every benchmark with tiny sizes, to see that they run (figures mean nothing)
	$(BIN)/python -m bench --smoke

readme-diagram: $(STAMP)  ## regenerate README.md's state diagram and docs/api.md's error table from the code
	$(BIN)/python scripts/readme_diagram.py

whatsapp-templates: $(RUN_STAMP)  ## each WhatsApp template as its Graph API create request (ARGS=--apply: post them; local sink by default)
	$(BIN)/python scripts/whatsapp_templates.py $(ARGS)

migrate-plan migrate-apply migrate-verify: migrate-%: $(RUN_STAMP)  ## the migrate CLI against DATABASE_URL, else `make run`'s database
	$(BIN)/python -m devstack.migrate $*

clean:  ## remove the venv, caches and build output (keeps .local/ data)
	rm -rf $(VENV) .venv-checkov node_modules build .pytest_cache .mypy_cache .ruff_cache .chalice/deployments
