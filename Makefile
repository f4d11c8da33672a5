# alflow set-up and entry points. `make run` and `make test` are the README's two commands.
# The CPU build of torch is pinned; point TORCH_INDEX at a wheel index of your choice
# (e.g. https://download.pytorch.org/whl/cpu) where plain PyPI would pull a CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
CONFIG ?= examples/quickstart.toml
PYTEST_ARGS ?=

.PHONY: setup run test test-slow bench clean
setup: $(VENV)/.alflow-installed

$(VENV)/.alflow-installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC) $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e ".[test]"
	touch $@

run: setup
	$(VENV)/bin/alflow run $(CONFIG)

# pytest exits 5 when it collected nothing; treat that as a failure of the set-up, not success.
test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-slow: setup
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
