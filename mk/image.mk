# The container image, built and run offline with buildah and podman (README: "Container image").
#   make image        the wheelhouse (pip wheel, on this machine), then the Dockerfile, with no network
#   make image-test   the image run as ECS Fargate runs it (tests/container); `make test` runs it too
#   make base-image   a local Debian bookworm + python3 base (debootstrap), made once and reused
# PYTHON_IMAGE=<fully qualified name> builds on another base already in local storage; nothing is pulled.

IMAGE        ?= localhost/skycart:latest
BASE_IMAGE   ?= localhost/skycart-base:bookworm
PYTHON_IMAGE ?= $(BASE_IMAGE)
WHEELHOUSE   := build/wheelhouse
CONTAINER_TOOLS := debootstrap buildah podman runc
PACKAGE_SOURCES := pyproject.toml README.md \
	$(shell find src -name __pycache__ -prune -o -name '*.egg-info' -prune -o -type f -print)
# The local base is made on demand; any other is expected in local storage already.
LOCAL_BASE := $(if $(filter $(BASE_IMAGE),$(PYTHON_IMAGE)),base-image)

# This machine's quirks for podman and buildah (see the file); the image itself knows nothing of them.
export CONTAINERS_CONF ?= $(abspath infra/containers/containers.conf)
# What tests/container runs.
export SKYCART_TEST_IMAGE := $(IMAGE)

TEST_PREREQS += image

.PHONY: container-tools base-image wheels image image-test FORCE

container-tools:
	@missing=""; for tool in $(CONTAINER_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

base-image: container-tools
	@./scripts/base-image.sh $(BASE_IMAGE)

# The base's name and id, rewritten only when they change: what depends on it is redone only then.
build/python-image.id: FORCE | $(LOCAL_BASE)
	@mkdir -p build; id="$(PYTHON_IMAGE) $$(podman image inspect --format '{{.Id}}' $(PYTHON_IMAGE) 2>/dev/null)"; \
	[ "$$(cat $@ 2>/dev/null)" = "$$id" ] || echo "$$id" > $@

# The names of the package's files, rewritten only when they change: a deleted module rebuilds the wheels too.
build/package-files.list: FORCE
	@mkdir -p build; list="$(sort $(PACKAGE_SOURCES))"; [ "$$(cat $@ 2>/dev/null)" = "$$list" ] || echo "$$list" > $@

wheels: $(WHEELHOUSE).sha256

# Checked against the base's own Python (scripts/wheelhouse.sh says why).
$(WHEELHOUSE).sha256: $(PACKAGE_SOURCES) build/package-files.list build/python-image.id | $(BIN)/python
	PYTHON=$(BIN)/python ./scripts/wheelhouse.sh $(WHEELHOUSE) $(PYTHON_IMAGE)
	cd $(WHEELHOUSE) && sha256sum *.whl > $(abspath $@)

# Rebuilt when the Dockerfile, the wheelhouse or the base changed, or when the image is gone; the
# image it replaces is removed, so repeated builds leave no dangling images behind.
image: container-tools $(WHEELHOUSE).sha256 build/python-image.id
	@key="$$(cat Dockerfile .dockerignore $(WHEELHOUSE).sha256 build/python-image.id | sha256sum | cut -c1-32)"; \
	old="$$(podman image inspect --format '{{.Id}}' $(IMAGE) 2>/dev/null || true)"; \
	if [ -n "$$old" ] && [ "$$(cat build/image.stamp 2>/dev/null)" = "$$key $$old" ]; then \
	  echo "$(IMAGE) is up to date"; exit 0; \
	fi; \
	echo "buildah bud --pull=never --network=none $(IMAGE) (log: build/image.log)"; start=$$(date +%s); \
	buildah bud --pull=never --network=none --format docker \
	  --build-arg PYTHON_IMAGE=$(PYTHON_IMAGE) --tag $(IMAGE) . > build/image.log 2>&1 \
	  || { tail -n 30 build/image.log; exit 1; }; \
	new="$$(podman image inspect --format '{{.Id}}' $(IMAGE))"; \
	echo "$$key $$new" > build/image.stamp; \
	if [ -n "$$old" ] && [ "$$old" != "$$new" ]; then podman rmi "$$old" >/dev/null 2>&1 || true; fi; \
	echo "built $(IMAGE) in $$(( $$(date +%s) - start )) s: $$(podman image inspect --format '{{.Size}}' $(IMAGE) \
	  | awk '{ printf "%.0f MB", $$1 / 1e6 }')"

image-test: image $(VENV)/.installed-dev services
	$(BIN)/pytest -q tests/container
