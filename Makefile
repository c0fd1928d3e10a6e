# Shortcuts; the scripts are the source of truth (they also work without make).
.PHONY: demo test build check bench
demo:
	./scripts/demo
test:
	./scripts/test
build:
	.venv/bin/limone-obs build
check:
	.venv/bin/limone-obs build --check
bench:
	./bench/run
