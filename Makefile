# Two entry points for a fresh machine: `make demo` and `make test`.
# Both build their own virtual environment (.venv) from pinned constraints.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench clean chromium

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -c constraints.txt -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" bash demo/run.sh

# The audit report and the web app are checked in a real headless browser: Debian's
# chromium, driven through Debian's chromedriver (Selenium never downloads a driver).
chromium:
	@{ command -v chromium && command -v chromedriver; } >/dev/null || { [ "$$(id -u)" = 0 ] \
	  && command -v apt-get >/dev/null && (apt-get update -qq \
	  && apt-get install -y -qq chromium chromium-driver >/dev/null); } \
	  || { echo "the browser tests need chromium: apt-get install chromium chromium-driver"; exit 1; }

test: $(BIN)/.installed chromium
	$(BIN)/pytest -q -p no:cacheprovider

lint: $(BIN)/.installed
	$(BIN)/ruff check .

bench: $(BIN)/.installed
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) demo/out
