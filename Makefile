# One command per job; every target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-12)
export AWS_DEFAULT_REGION ?= ap-southeast-3

.PHONY: help install run test lint format typecheck squawk check package readme-diagram \
        migrate-plan migrate-apply migrate-verify clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)  ## create .venv and install everything

run: $(STAMP)  ## the system locally: embedded PostgreSQL, migrations, chalice local on :8000
	$(BIN)/python -m devstack

test: $(STAMP)  ## the whole test suite (embedded PostgreSQL 18, or TEST_DATABASE_URL)
	$(BIN)/pytest

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)  ## ruff, rewriting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP)  ## mypy --strict on chalicelib and app.py
	$(BIN)/mypy

squawk: $(STAMP)  ## lint migrations/ for locking hazards
	$(BIN)/squawk migrations/*.sql

check: lint typecheck squawk test  ## every check CI makes

package: $(STAMP)  ## the deployment package and CloudFormation template in build/
	rm -rf build/package
	$(BIN)/chalice package --stage $${STAGE:-dev} build/package

readme-diagram: $(STAMP)  ## regenerate README.md's state diagram from the transition table
	$(BIN)/python scripts/readme_diagram.py

migrate-plan migrate-apply migrate-verify: migrate-%: $(STAMP)  ## against DATABASE_URL
	$(BIN)/python -m chalicelib.migrate $*

clean:  ## remove the venv, caches and build output (keeps .local/ data)
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache .chalice/deployments
