# Two commands do all the set-up (see README.md):
#   make lab    create .venv if missing, then open the notebook series in JupyterLab
#   make test   create .venv if missing, then run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
LAB_ARGS ?=
# PyPI's torch==2.13.0 wheel for Linux is the CUDA build (several GB with its nvidia-* packages).
# For PyTorch's CPU-only wheels (far smaller), set TORCH_INDEX=https://download.pytorch.org/whl/cpu:
# pip then also looks there and takes 2.13.0+cpu. Empty by default, so the set-up works where that
# index cannot be reached (macOS and Windows get CPU wheels from PyPI anyway).
TORCH_INDEX ?=
# JupyterLab refuses to start as root ("Running as root is not recommended") unless told --allow-root;
# root is common in containers, lab VMs and cloud notebooks, so add it there and only there.
ROOT_ARGS := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: lab test browser clean

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks $(ROOT_ARGS) $(LAB_ARGS)

test: $(STAMP) browser
	$(PY) -m pytest $(PYTEST_ARGS)

# The virtual environment, rebuilt when pyproject.toml changes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) -e ".[test,cluster,classroom,instructor]"
	@# The classroom test's JupyterHub proxy, from the npm registry, kept inside .venv (skipped without npm).
	@if command -v npm >/dev/null; then \
	  npm install --silent --no-audit --no-fund --prefix $(VENV) configurable-http-proxy@5 >/dev/null; \
	else \
	  echo "note: npm not found; the classroom test (JupyterHub) will be skipped"; \
	fi
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
