#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds scullv.ko against the cached test kernel of a flavour, into the cache
# (the source folder stays clean). Prints the path of the .ko.
set -euo pipefail

usage() {
	cat <<'USAGE'
usage: scripts/build-module.sh base|debug|debian [extra make arguments, e.g. CLIPPY=1]

Builds the test kernel first if needed (scripts/build-kernel.sh; for debian,
the build tree of Debian's DEBIAN_RELEASE with Debian's toolchain,
scripts/debian-kdir.sh), then the module with MO= into
~/.cache/scullv/module/<flavour>. Any compiler warning fails. The last line
printed is the path of scullv.ko.
USAGE
}
case "${1:-}" in
base | debug | debian) flavour=$1; shift ;;
-h | --help) usage; exit 0 ;;
*) usage >&2; exit 2 ;;
esac

. "$(dirname "$0")/lib.sh"
if [ "$flavour" = debian ]; then
	kdir=$("$(dirname "$0")/debian-kdir.sh" --release "$DEBIAN_RELEASE")
	# Debian's flags and toolchain (a chroot on hosts of another release).
	kmake=("$kdir/scullv-make" -C "$kdir")
else
	kdir=$("$(dirname "$0")/build-kernel.sh" "$flavour")
	kmake=(make -C "$kdir")
fi
out=$SCULLV_CACHE/module/$flavour
mkdir -p "$out"
{
	stage "building scullv.ko for the $flavour kernel" "module-$flavour"
	run "${kmake[@]}" M="$SCULLV_TOP" MO="$out" "$@" modules ||
		die "the module does not build against the $flavour kernel"
	# Warnings fail the build: the kernel's Rust lints are the project's.
	if grep -E '^(warning|error)(\[|:)' "$_stage_log" >/dev/null; then
		die "the module build printed warnings" "fix them; the log shows each one"
	fi
	# The compiler it was built with, as the kernel's configuration records it.
	sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$kdir/.config" >"$out/toolchain"
	stage_done
} >&2
echo "$out/scullv.ko"
