# The course's commands. A fresh machine needs only Python 3.11 and make:
#   make lab    create .venv, install the course (pinned), open JupyterLab
#   make test   create .venv if needed, run the whole test suite (notebooks included)
#   make book   build the site into book/_build/html (make book-instructor: with solutions)

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8888
LAB_ARGS ?=
# Jupyter refuses to run as root unless told; containers and CI machines often are root.
ALLOW_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
# Smoke mode (tiny data, 1 epoch) unless the caller set COURSE_SMOKE: tests must run in minutes.
TEST_ENV := COURSE_SMOKE=$${COURSE_SMOKE-1} MPLBACKEND=Agg PYTHONHASHSEED=0

.PHONY: venv lab test test-fast book book-instructor book-full book-instructor-full exercises bench bench-full lock clean help

help:
	@echo "make lab | test | test-fast | book | book-instructor | book-full | book-instructor-full | exercises | bench | bench-full | lock | clean"

$(STAMP): requirements/lock.txt pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0) if v == (3, 11) else print(f"warning: Python {v[0]}.{v[1]}; the course is pinned and tested on 3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/lock.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course)" > /dev/null
	touch $@

venv: $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --port $(PORT) --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/notebooks $(ALLOW_ROOT) $(LAB_ARGS)

test: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest tests notebooks solutions --nbval-lax --nbval-cell-timeout=300 -p no:cacheprovider --durations=15

test-fast: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest tests -m "not slow and not browser" -p no:cacheprovider

book: $(STAMP)
	$(PY) -m course_utils book build

book-instructor: $(STAMP)
	$(PY) -m course_utils book build --instructor

# The edition to publish: every notebook in full mode (from `course bench --full`'s cache where
# it has run them); the site goes to book/_build/full/<edition>/_build/html.
book-full: $(STAMP)
	$(PY) -m course_utils book build --full

book-instructor-full: $(STAMP)
	$(PY) -m course_utils book build --instructor --full

exercises: $(STAMP)
	$(VENV)/bin/course exercises build

bench: $(STAMP)
	$(VENV)/bin/course bench

bench-full: $(STAMP)
	$(VENV)/bin/course bench --full

# Regenerate the exact lock from a clean venv built from pyproject.toml's ranges.
lock:
	rm -rf /tmp/course-lock-venv && $(PYTHON) -m venv /tmp/course-lock-venv
	/tmp/course-lock-venv/bin/pip install -q "torch==2.13.0" -e ".[keras,nlp,quant,lab,dev]"
	{ head -n 2 requirements/lock.txt; /tmp/course-lock-venv/bin/pip freeze --all --exclude-editable | grep -v '^pip==' | sed 's/+cpu//'; } > requirements/lock.tmp
	mv requirements/lock.tmp requirements/lock.txt

clean:
	rm -rf book/_build _build .pytest_cache tests/_artifacts
