#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The book's shell example (LDD3 chapter 8.4) on the base test kernel in QEMU:
# insmod, cat a 1535135-byte file into /dev/scullv0, head -5 /proc/scullvmem,
# and read the device back.
set -euo pipefail

if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then
	echo "usage: scripts/demo.sh [--debug]"
	echo "Sets up and builds what is missing, boots the test kernel and runs the book's example."
	exit 0
fi

# In the guest: each command is shown as "$ command", then its output.
demo='
run() { echo "\$ $*"; sh -c "$*" || exit 1; }
run insmod scullv.ko
head -c 1535135 /dev/urandom >/tmp/bigfile
run ls -l /tmp/bigfile
run "cat /tmp/bigfile > /dev/scullv0"
run head -5 /proc/scullvmem
run "cmp /tmp/bigfile /dev/scullv0 && echo read back: identical"
run rmmod scullv
'
exec "$(dirname "$0")/run-vm.sh" "$@" --timeout 300 -- "$demo"
