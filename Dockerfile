# SkyCart API: `skycart serve` (a gunicorn master and uvicorn workers) on port 8000.
#   build: docker build -t skycart .        (buildah: buildah bud -t skycart .)
#   run:   docker run --read-only --tmpfs /tmp -p 8000:8000 \
#            -e SKYCART_DATABASE_URL='mysql+asyncmy://USER:PASSWORD@HOST:3306/skycart' skycart
# The container keeps nothing: the database URL (or SKYCART_DB_SECRET) comes at run time, and
# everything the process writes goes to /tmp, a tmpfs, so the root filesystem can be read-only.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
# Wheels of the project and of every dependency: the only thing the final stage takes from here.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    SKYCART_ASSETS_DIR=/tmp/skycart-assets
# Installed from the builder's wheels alone (no index, no compiler); the wheels are mounted, not copied into a layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/skycart-*.whl \
    && groupadd --system --gid 10001 skycart \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin skycart
# Owned by root: the app user cannot write here, so the default SQLite file (./skycart.db) is never created.
WORKDIR /srv/skycart
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["skycart"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
