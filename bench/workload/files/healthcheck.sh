#!/bin/sh
# Health check of the benchmark app; `--init` marks the one-time initialization done.
if [ "${1:-}" = "--init" ]; then
  touch /opt/app/.initialized
  exit 0
fi
exec systemctl is-active --quiet app
