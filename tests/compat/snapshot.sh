#!/bin/sh
# Prints the state the compatibility playbooks can change, normalized, so the states of
# two twin hosts (one converged by ansible-playbook, one by infra) can be compared as text.
# Timestamps are left out on purpose: they differ between any two runs.
set -u
echo "## files"
if [ -d /srv/compat ]; then
  find /srv/compat | LC_ALL=C sort | while read -r p; do
    if [ -L "$p" ]; then
      echo "$p link -> $(readlink "$p") $(stat -c '%U:%G' "$p")"
    elif [ -d "$p" ]; then
      echo "$p dir $(stat -c '%a %U:%G' "$p")"
    else
      echo "$p file $(stat -c '%a %U:%G %s' "$p") $(sha1sum < "$p" | cut -c1-40)"
    fi
  done
fi
echo "## units"
for u in /etc/systemd/system/compat-*; do
  [ -e "$u" ] || continue
  echo "$u $(stat -c '%a %U:%G' "$u") $(sha1sum < "$u" | cut -c1-40)"
  name=$(basename "$u")
  echo "$name active=$(systemctl is-active "$name") enabled=$(systemctl is-enabled "$name")"
done
echo "## packages"
# Ansible's apt module installs python3-apt (and what it depends on) for itself on first
# use; that is the tool's own runtime, not state a playbook asked for, so it is left out.
dpkg-query -W -f '${Package} ${Status}\n' | grep ' installed$' \
  | grep -Ev '^(python3-apt|python-apt-common|distro-info-data|iso-codes|lsb-release) ' \
  | LC_ALL=C sort
echo "## users"
getent passwd compatuser || true
getent group compatgrp || true
[ -d /home/compatuser ] && echo "home $(stat -c '%a %U:%G' /home/compatuser)"
echo "## system"
# What the Galaxy-style roles change outside /srv/compat.
for p in /etc/memcached.conf /etc/timezone /etc/ansible/facts.d/compat.fact \
         /home/compatuser/.ssh /home/compatuser/.ssh/authorized_keys \
         /var/spool/cron/crontabs/compatuser; do
  if [ -d "$p" ]; then
    echo "$p dir $(stat -c '%a %U:%G' "$p")"
  elif [ -e "$p" ]; then
    # crontab(1) writes a header with a time stamp and the temp file's name: leave it out.
    echo "$p file $(stat -c '%a %U:%G' "$p") $(grep -v '^# (' "$p" | grep -v '^# DO NOT EDIT\|^# (Cron version' | sha1sum | cut -c1-40)"
  fi
done
echo "/etc/localtime -> $(readlink /etc/localtime)"
for unit in memcached; do
  systemctl cat "$unit" >/dev/null 2>&1 \
    && echo "$unit active=$(systemctl is-active "$unit") enabled=$(systemctl is-enabled "$unit")"
done
echo "## end"
