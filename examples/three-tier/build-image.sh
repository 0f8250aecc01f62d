#!/bin/sh
# Writes the demo's image, as a root filesystem tar for `docker import`, to stdout:
# Debian's static busybox (package busybox-static) plus image/ (the entry point and the
# three roles' pages and CGI scripts). One image serves the three apps; each app's `args`
# picks its role. Usage: examples/three-tier/build-image.sh > three-tier.tar
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -x /bin/busybox ]; then
  echo "/bin/busybox is missing: apt-get install busybox-static" >&2
  exit 1
fi
root=$(mktemp -d)
chmod 755 "$root"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp" "$root/data"
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
cp -R "$here/image/." "$root/"
tar --numeric-owner --owner=0 --group=0 -C "$root" -c .
