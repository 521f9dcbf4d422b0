# Two commands do all set-up on a fresh clone:
#   make test   create .venv, install the package with its test extras, run the suite
#   make demo   run the offline end-to-end demo
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: test demo lint install clean

$(VENV)/.installed: setup.py requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c requirements/constraints.txt -e ".[test]"
	touch $@

install: $(VENV)/.installed

test: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m pytest -q

demo: $(VENV)/.installed
	$(PY) -m speechbrain_phonanchor.demo

lint: $(VENV)/.installed
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
