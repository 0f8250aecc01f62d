#!/bin/sh
# Writes the demo's image, as a root filesystem tar for `docker import`, to stdout:
# Debian's static busybox (package busybox-static), Debian's redis server (package
# redis-tools ships the binary; redis-server is the same program under another name) with
# the shared libraries it links, and image/ (the entry point, the front end's and nodeapp's
# pages and CGI scripts). One image serves the three apps; each app's `args` picks its
# role. Usage: examples/three-tier/build-image.sh > three-tier.tar
set -eu
here=$(cd "$(dirname "$0")" && pwd)
for need in /bin/busybox:busybox-static /usr/bin/redis-check-rdb:redis-tools; do
  if [ ! -x "${need%%:*}" ]; then
    echo "${need%%:*} is missing: apt-get install ${need#*:} (scripts/install.sh does)" >&2
    exit 1
  fi
done
root=$(mktemp -d)
chmod 755 "$root"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/usr/bin" "$root/tmp" "$root/data"
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
cp /usr/bin/redis-check-rdb "$root/usr/bin/redis-server"
# The libraries redis-server loads (and the dynamic loader), at the paths ldd names.
for lib in $(ldd /usr/bin/redis-check-rdb | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
cp -R "$here/image/." "$root/"
tar --numeric-owner --owner=0 --group=0 -C "$root" -c .
