#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs the kernel's make for this module against the cached base test kernel,
# with the toolchain environment set-up installed (bindgen, libclang), e.g.
# `scripts/kmake.sh modules` or `scripts/kmake.sh rust-analyzer`.
set -euo pipefail

if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then
	echo "usage: scripts/kmake.sh TARGET... [VAR=value...]"
	echo "Builds the base test kernel first if needed. Outputs land in this folder."
	exit 0
fi

kdir=$("$(dirname "$0")/build-kernel.sh" base)
. "$(dirname "$0")/lib.sh"
exec make -C "$kdir" M="$SCULLV_TOP" "$@"
