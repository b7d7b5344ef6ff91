# The two commands a newcomer needs: `make demo` and `make test`. Each builds .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint format clean shipped docs first-hour

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python experiments/demo.py

# Retrain the Tacotron 2 shipped in data/ (hours on 2 CPU cores; resumes when run again).
# SHIPPED_STEPS: the step of the model in data/ (its MODEL_CARD.md); larger trains further.
SHIPPED_STEPS ?= 10000
shipped: $(STAMP)
	test -f runs/corpus/metadata.csv || $(BIN)/tts-jax corpus --out runs/corpus --num-utterances 2000
	$(BIN)/tts-jax train --config experiments/tacotron2.py:shipped --workdir runs/tacotron2_shipped \
		--config.data.path=runs/corpus --config.train.num_steps=$(SHIPPED_STEPS)
	$(BIN)/tts-jax export --workdir runs/tacotron2_shipped --out data/tacotron2_espeak

# The listening-test tests drive Debian's chromium through Playwright (whose own browser
# download is not used); installed with apt-get when missing (as root, as in CI).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -q -n 2 --durations=15

# The fast tier: every test but the end-to-end and multi-process ones marked `slow`.
test-fast: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -q -n 2 -m "not slow" --durations=10

# The docs site (mkdocs.yml, docs/) into site/; --strict: a broken link or anchor is an error.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

# The --help of every verb recorded in docs/FIRST_HOUR.md (after changing the CLI); the whole
# page, commands included, is `bash tools/first_hour.sh > docs/FIRST_HOUR.md` on a fresh clone.
first-hour: $(STAMP)
	$(BIN)/python tools/cli_help.py --write docs/FIRST_HOUR.md

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) runs site .pytest_cache .ruff_cache
