# The dev loop: `make install`, `make run`, `make test`. CI runs `make test` through .ci/run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -c1-12)

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install services browser run lint test train bench bench-observability clean lambda serverless

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	# The package itself, editable, so `import eta311` works from any folder.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

# As `heroku local` would: the Procfile's web process, with .env if there is one, on port 5000.
run: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start web

# Servers the tests run for real, from Debian's packages: redis-server for shared keys and limits.
services:
	@command -v redis-server >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server >/dev/null; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The browser tests drive Debian's own chromium through its chromium-driver (Selenium comes from pip);
# the README's snippets use curl.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v curl >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver curl >/dev/null; }

test: install services browser lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

# Retrain the bundled model from the shared 311 sample (a developer's checkout has ../shared).
train: install
	$(BIN)/python scripts/train.py --data ../shared/data/nyc311 --out models

# Serving figures against a bare Flask floor (wrk from Debian); writes bench/results.txt and the
# README's speed block from the same run (about five minutes). Not part of `make test`.
bench: install wrk
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python scripts/bench.py

wrk:
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk >/dev/null; }

# The seed's stack (Flask + pandas + a pickled 100-tree random forest) beside this service; writes
# bench/peers.txt. Its own environment, outside .venv; its forest trains on the shared 311 sample
# when this checkout has ../shared beside it, else on the committed fixture days. Not part of `make test`.
PEERS := .venv-peers
SEED_DATA ?= $(firstword $(wildcard ../shared/data/nyc311) tests/fixtures/nyc311)
PEER_PACKAGES := flask==3.1.3 gunicorn==27.0.1 numpy==2.4.6 scipy==1.17.1 scikit-learn==1.9.1 pandas==3.1.1

bench-peers: install wrk
	test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --disable-pip-version-check $(PEER_PACKAGES)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python scripts/bench_peers.py --data $(SEED_DATA)

# What metrics and logs cost to serve: this checkout against the commit before them, interleaved with the floor (~2 min).
bench-observability: install
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk >/dev/null; }
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python scripts/bench_observability.py

# AWS Lambda: `zappa package` zips a whole virtualenv, so it gets one of its own with only the serving
# set (requirements-serve.txt) and Zappa, on the runtime's Python; rebuilt only when they change.
LAMBDA_PYTHON ?= python3.11
LAMBDA_STAGE ?= dev
LAMBDA_VENV := .venv-lambda
LAMBDA_ZIP := dist/eta311-$(LAMBDA_STAGE).zip
ZAPPA := zappa==0.63.0
LAMBDA_STAMP := $(LAMBDA_VENV)/.installed-$(shell echo "$(ZAPPA) $(LAMBDA_PYTHON)" | cat - requirements-serve.txt | sha256sum | cut -c1-12)

$(LAMBDA_STAMP): requirements-serve.txt
	test -x $(LAMBDA_VENV)/bin/python || $(LAMBDA_PYTHON) -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-serve.txt $(ZAPPA)
	rm -f $(LAMBDA_VENV)/.installed-*
	touch $@

# The package for LAMBDA_STAGE in dist/, refused if over 50 MiB zipped or 120 MiB unzipped. Zappa zips
# the folder it runs in, so it runs in dist/src holding only what the functions use: a new folder in
# the repo (another virtualenv, screenshots) can never land in the package. Packaging never calls
# AWS: placeholder credentials keep boto3 from looking for real ones.
lambda: $(LAMBDA_STAMP)
	rm -rf dist/src && mkdir -p dist/src/models
	cp -r zappa_settings.json predict.py echo.py eta311 dist/src/
	cp models/model_card.json models/medians.json models/type_stats.json models/*.npz dist/src/models/
	find dist/src -name __pycache__ -prune -exec rm -rf {} +
	cd dist/src && env -u AWS_PROFILE VIRTUAL_ENV=$(CURDIR)/$(LAMBDA_VENV) PATH="$(CURDIR)/$(LAMBDA_VENV)/bin:$$PATH" \
		AWS_ACCESS_KEY_ID=packaging-only AWS_SECRET_ACCESS_KEY=packaging-only AWS_DEFAULT_REGION=us-east-1 \
		$(CURDIR)/$(LAMBDA_VENV)/bin/zappa package $(LAMBDA_STAGE) -o $(CURDIR)/$(LAMBDA_ZIP)
	$(LAMBDA_VENV)/bin/python scripts/check_lambda_package.py $(LAMBDA_ZIP) --stage $(LAMBDA_STAGE)

# serverless.yml, packaged into .serverless/ by the Serverless Framework's open-source CLI (osls, from
# npm, no login) with serverless-wsgi and serverless-python-requirements, as package-lock.json pins them.
NODE_STAMP := node_modules/.installed-$(shell cat package.json package-lock.json | sha256sum | cut -c1-12)

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs npm >/dev/null; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

serverless: $(NODE_STAMP)
	env -u AWS_PROFILE AWS_ACCESS_KEY_ID=packaging-only AWS_SECRET_ACCESS_KEY=packaging-only AWS_DEFAULT_REGION=us-east-1 \
		npx --no-install osls package --stage $(LAMBDA_STAGE)

clean:
	rm -rf $(VENV) $(PEERS) .pytest_cache
