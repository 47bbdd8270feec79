#!/usr/bin/env bash
# readme-options.sh IMGMETA README - README.md's options block is exactly what
# `imgmeta serve --help` prints (ctest "docs.options"): an option added to the
# table in server/config.c without README following fails here. With --fix,
# README's block is rewritten from --help instead.
set -u
if [ $# -lt 2 ]; then
    echo "usage: $0 IMGMETA README [--fix]" >&2
    exit 2
fi
imgmeta=$1 readme=$2 fix=${3:-}
help=$("$imgmeta" serve --help) || { echo "docs.options: --help failed" >&2; exit 1; }
# The fenced block after the line that introduces it.
block=$(awk '/serve --help` prints this table/ {want=1; next}
             want && /^```$/ && inblk {exit}
             want && /^```$/ {inblk=1; next}
             inblk {print}' "$readme")
if [ "$fix" = --fix ]; then
    tmp=$(mktemp)
    awk -v help="$help" '/serve --help` prints this table/ {print; want=1; next}
        want && /^```$/ && inblk {print help; print; want=0; inblk=0; next}
        want && /^```$/ {inblk=1; print; next}
        inblk {next}
        {print}' "$readme" >"$tmp" && mv "$tmp" "$readme"
    exit 0
fi
if [ "$block" != "$help" ]; then
    echo "docs.options: README.md's options block differs from 'imgmeta serve --help':" >&2
    diff <(printf '%s\n' "$block") <(printf '%s\n' "$help") >&2
    echo "(regenerate with: $0 $imgmeta $readme --fix)" >&2
    exit 1
fi
echo "docs.options: README.md matches --help ($(printf '%s\n' "$help" | grep -c '^  --') options)"
