# Order placement against its floor (bench/orders.py, bench/README.md): SkyCart's POST /v1/orders, the
# same with a slow payment provider, and a raw-driver loop of the same statements, on a private MariaDB
# and on SQLite. Not part of `make test`; about 8 minutes on 2 CPUs. ORDERS_ARGS passes options, e.g.
#   make bench-orders ORDERS_ARGS="--backend mariadb --rounds 8"

ORDERS_ARGS ?=

.PHONY: bench-orders

bench-orders: $(VENV)/.installed-dev services wrk
	$(BIN)/python bench/orders.py $(ORDERS_ARGS)
