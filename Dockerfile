# SkyCart API: `skycart serve` (a gunicorn master and uvicorn workers) on port 8000.
#   build: make image      (the wheelhouse, then `buildah bud` of this file, with no network)
#          or, by hand:    pip wheel --wheel-dir build/wheelhouse . && docker build -t skycart .
#   run:   docker run --read-only --tmpfs /tmp -p 8000:8000 \
#            -e SKYCART_DATABASE_URL='mysql+asyncmy://USER:PASSWORD@HOST:3306/skycart' skycart
# The build fetches nothing: every package comes from build/wheelhouse (SkyCart's wheel and those of
# all its dependencies, made beforehand by `pip wheel` with the same Python minor version as the base).
# The container keeps nothing: the database URL (or SKYCART_DB_SECRET) comes at run time, and
# everything the process writes goes to /tmp, a tmpfs, so the root filesystem can be read-only.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY build/wheelhouse/ /wheels/
# A virtualenv, so the same steps work on the official image and on Debian's python3 (which refuses
# system-wide pip installs); pip compiles the bytecode here, as the read-only root cannot later.
RUN python3 -m venv /opt/skycart \
    && /opt/skycart/bin/pip install --no-index --find-links=/wheels /wheels/skycart-*.whl \
    && /opt/skycart/bin/pip uninstall --yes --quiet pip setuptools

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/skycart/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    SKYCART_ASSETS_DIR=/tmp/skycart-assets \
    SKYCART_HOST=0.0.0.0 \
    SKYCART_PORT=8000
RUN groupadd --system --gid 10001 skycart \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin skycart
# Root-owned and read-only to the app user: the installed code cannot be changed at run time.
COPY --from=builder /opt/skycart /opt/skycart
# Owned by root: the app user cannot write here, so the default SQLite file (./skycart.db) is never created.
WORKDIR /srv/skycart
USER 10001:10001
EXPOSE 8000
# On whatever port SKYCART_PORT makes it listen (set one with -e, like every other setting).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:' + os.environ['SKYCART_PORT'] + '/healthz', timeout=2)"]
ENTRYPOINT ["skycart"]
CMD ["serve"]
