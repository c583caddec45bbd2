# The two commands of the README:
#   make demo   set up, then run the live demo (RTMP test stream -> Spark -> DASH/HLS player)
#   make test   set up, then run the whole test suite (fast group, then heavy/browser group)
PYTEST ?= python3 -m pytest

.PHONY: setup demo test test-fast test-heavy lint
setup:
	./scripts/setup.sh

demo: setup
	sparkcast demo

test: setup lint test-fast test-heavy

lint:
	ruff check --no-cache .

test-fast:
	$(PYTEST) -m "not heavy and not browser" -q

test-heavy:
	$(PYTEST) -m "heavy or browser" -q
