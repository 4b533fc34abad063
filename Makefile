# The two commands a new developer needs are `make run` and `make test`; both create and use
# the virtualenv in .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: browser install run worker test lint format bench clean vendor demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The browser tests drive Debian's Chromium (Playwright is told its path; it downloads nothing).
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "warning: could not install Debian's chromium; the browser tests will fail"

install: $(STAMP) browser

run: $(STAMP)  ## web + worker + embedded Redis + SQLite, with demo data
	$(BIN)/crm run

demo: $(STAMP)  ## seed demo data into an empty database and print the sign-in details
	$(BIN)/crm demo

worker: $(STAMP)
	$(BIN)/crm worker

test: $(STAMP) browser  ## SQLite + embedded Redis, or DATABASE_URL / REDIS_URL when set
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)  ## needs PostgreSQL and Redis (DATABASE_URL / REDIS_URL, see bench/)
	$(BIN)/python bench/webhooks.py
	$(BIN)/python -m bench.ussd
	$(BIN)/python -m bench.intelligence
	$(BIN)/python -m bench.scoring
	$(BIN)/python -m bench.campaigns --analyze
	$(BIN)/python -m bench.sequences --contacts 100000 --window 60

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache *.egg-info

HTMX_VERSION := 2.0.11
vendor:  ## refresh crm/static/vendor from the npm registry (needs npm)
	cd /tmp && npm pack --silent htmx.org@$(HTMX_VERSION) && tar xzf htmx.org-$(HTMX_VERSION).tgz
	cp /tmp/package/dist/htmx.min.js crm/static/vendor/htmx.min.js
	cp /tmp/package/LICENSE crm/static/vendor/htmx.LICENSE
