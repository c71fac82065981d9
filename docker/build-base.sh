#!/usr/bin/env bash
# A Debian bookworm base image with Python 3.11, built from Debian's packages, for machines
# that cannot pull from a registry. Usage: docker/build-base.sh [IMAGE_NAME]
# (default airloop-base:bookworm); then `docker build --build-arg BASE_IMAGE=airloop-base:bookworm`.
set -euo pipefail
name="${1:-airloop-base:bookworm}"
if docker image inspect "$name" >/dev/null 2>&1; then
    echo "base image $name exists"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
# The machine's own Debian mirror, else Debian's.
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
mirror="${mirror:-http://deb.debian.org/debian}"
rootfs=$(mktemp -d /tmp/airloop-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$mirror" >/dev/null
tar -C "$rootfs" -c . | docker import - "$name" >/dev/null
echo "built base image $name from $mirror"
