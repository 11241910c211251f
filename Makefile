# The two commands a new user needs: `make run` (the whole service locally) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements/*.txt layers/common/requirements.txt pyproject.toml | cksum | cut -d' ' -f1)

SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
CHECKOV_VERSION := 3.3.30
export SAM_CLI_TELEMETRY := 0

.PHONY: run test test-unit fuzz lint bench conformance sam-validate sam-build checkov db-start db-stop psql clean web

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

## make web: the web app (web/) built into web/dist with the locked npm packages (Node 20+, npm)
WEB_SOURCES := $(shell find web/src web/index.html web/vite.config.ts web/tsconfig.json web/package.json -type f 2>/dev/null)

web/node_modules/.package-lock.json: web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error

web/dist/index.html: web/node_modules/.package-lock.json $(WEB_SOURCES)
	cd web && npm run --silent build

web: web/dist/index.html

## make run: embedded PostgreSQL, migrations, demo data, local S3 and the API on 127.0.0.1:3000
run: $(STAMP) web
	$(BIN)/python -m local.run $(RUN_ARGS)

## make test: installs, starts PostgreSQL (or uses DATABASE_URL), migrates a fresh database, runs pytest
test: $(STAMP) web
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make test-unit: the pure tier alone (no PostgreSQL needed)
test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

## make fuzz: the fuzz test (tests/http/test_fuzz.py) with 500 generated requests per operation and role
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-500} $(BIN)/python -m pytest tests/http/test_fuzz.py $(PYTEST_ARGS)

## make conformance: ADL's xAPI LRS conformance suite (../shared/xapi-conformance, Node) against the
## local gateway; prints passed/total per group and fails unless every statement group passes
conformance: $(STAMP)
	$(BIN)/python -m local.conformance --require-statements $(CONFORMANCE_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

$(SAM):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==1.170.0

## sam validate --lint and sam build (no Docker needed: the machine's Python 3.11 builds)
sam-validate: $(SAM)
	$(SAM) validate --lint --region eu-west-1

## make checkov: the template's security checks (a pinned checkov in its own venv); every finding
## left open is skipped in template.yaml with its reason and explained in docs/SECURITY.md
$(CHECKOV):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)

checkov: $(CHECKOV)
	$(CHECKOV) --file template.yaml --framework cloudformation --compact --quiet --skip-download

sam-build: $(SAM) $(STAMP)
	$(SAM) build --region eu-west-1
	$(BIN)/python -m local.check_build

## one bench after the other; each prints its own table
bench: $(STAMP)
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

db-start: $(STAMP)
	$(BIN)/python -m local.localdb start

db-stop: $(STAMP)
	$(BIN)/python -m local.localdb stop

## make psql: psql on the local database as the API's role (PSQL_ARGS=--owner: as the owner)
psql: $(STAMP)
	$(BIN)/python -m local.localdb psql $(PSQL_ARGS)

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache web/dist web/node_modules
