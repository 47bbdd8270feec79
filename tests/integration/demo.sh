#!/usr/bin/env bash
# demo.sh IMGMETA FIXTURE REGFRONT - `make demo`: the fixture registry, the
# Docker Hub look-alike front and the daemon, left running on loopback so
# anyone without internet access can try imgmeta. Ctrl-C stops everything.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init "$1" "$2" "$3"
start_registry "$IT_DIR/registry" || exit 1
fill_fixture || exit 1
start_front --bearer || exit 1
start_daemon || exit 1
base="http://127.0.0.1:$DAEMON_PORT"
cat <<MSG

imgmeta demo is running (registry :$REGISTRY_PORT, front :$FRONT_PORT, daemon :$DAEMON_PORT).
Try:

  curl -s $base/images/python/3.7-slim | jq .
  curl -s $base/images/python/3.7-slim?format=markdown
  curl -s -H 'Accept: text/markdown' $base/images/python/3.7-slim
  curl -s '$base/images/python/3.7-slim?view=summary&platform=linux/arm/v7'
  curl -si $base/images/python/no-such-tag?format=markdown

The daemon's log is $IT_DIR/daemon.log. Press Ctrl-C to stop everything.
MSG
while :; do sleep 3600; done
