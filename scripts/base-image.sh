#!/usr/bin/env bash
# Build a local stand-in for the slim Python base image, offline from any image registry: a Debian
# bookworm root filesystem (debootstrap --variant=minbase, from this machine's own Debian mirror)
# with python3 and python3-venv, imported into podman's storage as IMAGE (default
# localhost/skycart-base:bookworm). Does nothing while that image exists. Runs as root.
set -euo pipefail

IMAGE=${1:-localhost/skycart-base:bookworm}
SUITE=${SUITE:-bookworm}
WORK=${WORK:-build/base-image}

if podman image exists "$IMAGE"; then
  echo "base image $IMAGE exists: reused"
  exit 0
fi

# The first enabled "deb" source for SUITE in the apt configuration, one-line or deb822 format.
apt_mirror() {
  local file
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$file" ] || continue
    awk -v suite="$SUITE" '
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) == suite) { print $i; exit }
      }' "$file"
  done
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -r "$file" ] || continue
    awk -v suite="$SUITE" '
      function flush() {
        if (enabled && types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uris != "") {
          split(uris, first, " "); print first[1]; found = 1
        }
        types = ""; suites = ""; uris = ""; enabled = 1
      }
      BEGIN { enabled = 1 }
      /^[[:space:]]*#/ { next }
      /^[[:space:]]*$/ { flush(); if (found) exit; next }
      {
        key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "")
        if (key == "types") types = $0
        else if (key == "suites") suites = $0
        else if (key == "uris") uris = $0
        else if (key == "enabled" && tolower($0) == "no") enabled = 0
      }
      END { if (!found) flush() }' "$file"
  done
}

MIRROR=$(apt_mirror | head -n 1)
if [ -z "$MIRROR" ]; then
  echo "no Debian '$SUITE' source in /etc/apt/sources.list or /etc/apt/sources.list.d/" >&2
  exit 1
fi

ROOTFS="$WORK/rootfs"
rm -rf "$ROOTFS"
mkdir -p "$ROOTFS"
trap 'rm -rf "$ROOTFS"' EXIT

echo "debootstrap $SUITE from $MIRROR"
# passwd brings useradd and groupadd, which the slim image has too.
debootstrap --variant=minbase --include=python3,python3-venv,passwd "$SUITE" "$ROOTFS" "$MIRROR" \
  > "$WORK/debootstrap.log" 2>&1 || { tail -n 30 "$WORK/debootstrap.log" >&2; exit 1; }

# What a server never uses: downloaded packages, package lists, manuals, translations (licences stay).
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
  "$ROOTFS"/usr/share/man "$ROOTFS"/usr/share/info "$ROOTFS"/var/log/*.log
find "$ROOTFS"/usr/share/doc -type f ! -name copyright -delete
find "$ROOTFS"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +

tar --numeric-owner -C "$ROOTFS" -c . | podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --message "debootstrap --variant=minbase $SUITE + python3, python3-venv" \
  - "$IMAGE"
echo "base image $IMAGE imported"
