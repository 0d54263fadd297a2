#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The benchmark (make bench): boots the base test kernel in QEMU once, runs
# `scullv-tool bench` there against a tmpfs file, and writes what it prints to
# results/bench.md (with a header naming the machine), results/summary.md (the
# key figures, which scripts/bench-readme.sh puts into the README) and
# results/throughput.svg.
set -euo pipefail

usage() {
	cat <<'USAGE'
usage: scripts/bench.sh [--quick] [--kernel base|debian] [--out DIR]

Boots the base test kernel (QEMU, 2 vCPUs, 4 GiB) and measures scullv against a
tmpfs file in that one guest: sequential fresh, overwrite, append and read
throughput at 4 KiB..4 MiB blocks and 1 MiB..1 GiB sizes, reads through mmap,
random 1-byte pread latency at three geometries, system calls of a cat-style
copy, and the guest's memcpy bandwidth. About 5 minutes under TCG (Debian's kernel, on one TCG thread: more).

  --quick      a short plan (1 MiB and 32 MiB sizes, fewer calls): about 2 minutes
  --kernel K   base (the default) or debian: Debian's own DEBIAN_RELEASE kernel
               (default 7.3.4+deb13-amd64), with the module built for it
  --out DIR    where to write bench.md, summary.md, throughput.svg and bench.raw
               (the guest's whole output); default results/ (results/debian/ for
               Debian's kernel), or quick/ below it with --quick

The committed results/ come from the full plan on an otherwise idle machine:
other work on the same cores shows up as spread. After a full run,
scripts/bench-readme.sh writes the README's figures from the summary.md files.
USAGE
}

quick=
out=
kernel=base
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=--quick ;;
	--out) out=$2; shift ;;
	--kernel) kernel=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done

case "$kernel" in base | debian) ;; *) usage >&2; exit 2 ;; esac

here=$(dirname "$0")
. "$here/lib.sh"
results=$SCULLV_TOP/results
[ "$kernel" = debian ] && results=$results/debian
if [ -n "$quick" ]; then
	out=${out:-$results/quick}
	plan="quick plan, about 2 min"
	timeout=600
	command="make bench QUICK=1"
else
	out=${out:-$results}
	plan="full plan, about 5 min"
	timeout=1500
	command="make bench"
fi
[ "$kernel" = debian ] && command+=" KERNEL=debian"
mkdir -p "$out"
log=$SCULLV_LOGS/bench-$kernel.log

# What the guest cannot see: the host, the date, QEMU, and the load on the
# host's cores when the run starts (other work there slows the guest).
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
os=$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-}")
load=$(cut -d' ' -f1-3 /proc/loadavg)
machine="${cpu:-unknown CPU}, $(nproc) cores, $mem GiB RAM${os:+, $os}; host load average $load at the start"
date=$(date -u '+%Y-%m-%d %H:%M UTC')
qemu=$(qemu-system-x86_64 --version | head -n 1)

args=(scullv-tool bench $quick --machine "$machine" --date "$date" --qemu "$qemu" --command "$command")
guest="insmod scullv.ko || exit 1
$(printf '%q ' "${args[@]}")
rc=\$?
rmmod scullv
exit \$rc"

echo "==> benchmark in one guest ($plan; guest output: $log)"
set +e
"$here/run-vm.sh" --kernel "$kernel" --mem 4G --timeout "$timeout" --log "$SCULLV_LOGS/bench-$kernel-guest.log" -- "$guest" |
	tee "$log" | sed -nu 's/^# == /    /p'
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
	echo "error: the benchmark failed (status $status); guest output: $log" >&2
	grep -v '^<' "$log" | tail -n 15 | sed 's/^/    /' >&2
	exit 1
fi

# extract NAME: the lines between "=== begin NAME ===" and "=== end NAME ===".
extract() {
	sed -n "/^=== begin $1 ===\$/,/^=== end $1 ===\$/{/^=== /d;p}" "$log"
}
names="bench.md summary.md throughput.svg"
for name in $names; do
	extract "$name" >"$out/$name.new"
	if [ ! -s "$out/$name.new" ]; then
		for n in $names; do rm -f "$out/$n.new"; done
		echo "error: the guest printed no $name (guest output: $log)" >&2
		exit 1
	fi
done
for name in $names; do
	mv "$out/$name.new" "$out/$name"
done
cp "$log" "$out/bench.raw"
echo "==> wrote $out/bench.md, $out/summary.md and $out/throughput.svg; goals:"
sed -n '/^## Goals/,/^## /{/^| [A-Z]/p}' "$out/bench.md" |
	awk -F' \\| ' '{ sub(/^\| /, "", $1); gsub(/\*/, "", $3); sub(/ \|$/, "", $3); print "    " $3 ": " $1 }'

# A full run into results/ writes the README's figures (scripts/bench-readme.sh), from the base
# kernel's summary and Debian's beside it when there is one.
if [ -z "$quick" ] && [ "$out" = "$results" ]; then
	if [ -f "$SCULLV_TOP/results/summary.md" ]; then
		"$here/bench-readme.sh" | sed 's/^/==> /'
	else
		echo "==> the README's benchmark block waits for results/summary.md: run make bench"
	fi
fi
