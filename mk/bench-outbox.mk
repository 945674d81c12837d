# What the outbox costs an order, and one process's webhook delivery throughput (bench/outbox.py,
# bench/README.md). Not part of `make test`; about 3 minutes on 2 CPUs. OUTBOX_ARGS passes options, e.g.
#   make bench-outbox OUTBOX_ARGS="--rounds 8 --backlog 5000"

OUTBOX_ARGS ?=

.PHONY: bench-outbox

bench-outbox: $(VENV)/.installed-dev services wrk
	$(BIN)/python bench/outbox.py $(OUTBOX_ARGS)
