#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds scullv.ko against the cached test kernel of a flavour, into the cache
# (the source folder stays clean). Prints the path of the .ko.
set -euo pipefail

usage() {
	cat <<'USAGE'
usage: scripts/build-module.sh base|debug [extra make arguments, e.g. CLIPPY=1]

Builds the test kernel first if needed (scripts/build-kernel.sh), then the
module with MO= into ~/.cache/scullv/module/<flavour>. The last line printed
is the path of scullv.ko.
USAGE
}
case "${1:-}" in
base | debug) flavour=$1; shift ;;
-h | --help) usage; exit 0 ;;
*) usage >&2; exit 2 ;;
esac

kdir=$("$(dirname "$0")/build-kernel.sh" "$flavour")
. "$(dirname "$0")/lib.sh"
out=$SCULLV_CACHE/module/$flavour
mkdir -p "$out"
{
	stage "building scullv.ko for the $flavour kernel" "module-$flavour"
	run make -C "$kdir" M="$SCULLV_TOP" MO="$out" "$@" modules ||
		die "the module does not build against the $flavour kernel"
	# Warnings fail the build: the kernel's Rust lints are the project's.
	if grep -E '^(warning|error)(\[|:)' "$_stage_log" >/dev/null; then
		die "the module build printed warnings" "fix them; the log shows each one"
	fi
	stage_done
} >&2
echo "$out/scullv.ko"
