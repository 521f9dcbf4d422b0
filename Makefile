# Two commands do all set-up on a fresh clone:
#   make test   create .venv, install the package with its test extras, run the suite
#   make demo   run the offline end-to-end demo
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: test demo lint install clean gpu-check

$(VENV)/.installed: setup.py requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c requirements/constraints.txt -e ".[test]"
	touch $@

install: $(VENV)/.installed

test: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m pytest -q

# make demo DEMO_ENCODER=whisper-base (or tiny, or a model folder); the default fbank front end needs no download
DEMO_ENCODER ?= fbank
demo: $(VENV)/.installed
	$(PY) -m speechbrain_phonanchor.demo --encoder $(DEMO_ENCODER)

# On a machine with a CUDA GPU (at most ~10 minutes): the CUDA tests, then the extraction and training
# benchmarks on the GPU.  Without a GPU the tests skip and the benchmarks are not run.
gpu-check: $(VENV)/.installed
	$(PY) -m pytest -q -m cuda tests/test_cuda.py -rs
	$(PY) -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || { echo "no CUDA device: benchmarks skipped"; exit 0; }; \
	$(PY) benchmarks/extract.py --device cuda --repeats 2 && \
	$(PY) benchmarks/extract.py --device cuda --encoder tiny-whisper --mode whisper-window --limit 40 --repeats 2 && \
	$(PY) benchmarks/train_speed.py --device cuda --steps 10

lint: $(VENV)/.installed
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
