# The web console and storefront are tested in a real browser: Debian's Chromium, driven headless by
# Playwright for Python (tests/browser). Playwright never downloads a browser here; it runs /usr/bin/chromium.

CHROMIUM ?= /usr/bin/chromium

TEST_PREREQS += chromium

.PHONY: chromium

chromium:
	@test -x $(CHROMIUM) || { echo "installing chromium"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
