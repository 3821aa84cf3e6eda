# Two commands do all the set-up (see README.md):
#   make lab    create .venv if missing, then open the notebook series in JupyterLab
#   make test   create .venv if missing, then run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
LAB_ARGS ?=

.PHONY: lab test browser clean

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks $(LAB_ARGS)

test: $(STAMP) browser
	$(PY) -m pytest $(PYTEST_ARGS)

# The virtual environment, rebuilt when pyproject.toml changes. torch==2.13.0 is the CPU build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# The browser test drives Debian's Chromium with Playwright (never `playwright install`).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Chromium for the browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "note: /usr/bin/chromium not found; the browser test will be skipped"; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) runs tests/output .pytest_cache
