#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boots a scullv test kernel in QEMU with a busybox initramfs that holds the
# module, tests/ and the test helpers, runs one command (or a shell) in the
# guest and returns the command's exit status. A hard timeout bounds every run;
# any oops, BUG, WARNING, lockdep, KFENCE, SLUB or kmemleak report in the
# kernel log fails the run.
set -euo pipefail

usage() {
	cat <<'USAGE'
usage: scripts/run-vm.sh [options] [--] COMMAND...
       scripts/run-vm.sh [options] --shell

Options:
  --kernel K       boot the base test kernel (the default), the debug one (lockdep,
                   kmemleak, KFENCE, ...) or debian: Debian's own signed kernel
                   (DEBIAN_RELEASE, default 7.3.4+deb13-amd64, scripts/debian-kdir.sh)
  --debug          the same as --kernel debug
  --timeout SECS   kill the guest after SECS seconds (default 600)
  --mem SIZE       guest memory (default 3G: a 1 GiB device plus a 1 GiB tmpfs file)
  --module KO      boot with this scullv.ko, already built for the kernel (default: build it)
  --shell          an interactive shell in the guest (module loaded) instead of a command
  --log FILE       keep the guest kernel log in FILE (default: in ~/.cache/scullv/logs)

In the guest: the module is /scullv/scullv.ko, the tests /scullv/tests, the
helpers /scullv/bin (on PATH), the working folder /scullv. The command's
output appears here; the kernel log goes to the log file.
USAGE
}

flavour=base
timeout=600
mem=3G
shell=0
ko=
console_log=
while [ $# -gt 0 ]; do
	case "$1" in
	--debug) flavour=debug ;;
	--kernel)
		flavour=$2
		shift
		case "$flavour" in base | debug | debian) ;; *) usage >&2; exit 2 ;; esac
		;;
	--timeout) timeout=$2; shift ;;
	--mem) mem=$2; shift ;;
	--shell) shell=1 ;;
	--module) ko=$2; shift ;;
	--log) console_log=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	--) shift; break ;;
	-*) usage >&2; exit 2 ;;
	*) break ;;
	esac
	shift
done
[ $shell = 1 ] || [ $# -gt 0 ] || { usage >&2; exit 2; }

here=$(dirname "$0")
ko=${ko:-$("$here/build-module.sh" "$flavour")}
helpers=$("$here/build-helpers.sh")
. "$here/lib.sh"
if [ "$flavour" = debian ]; then
	image=$(debian_dir "$DEBIAN_RELEASE")/vmlinuz
else
	image=$(kernel_build_dir "$flavour")/arch/x86/boot/bzImage
fi
src=$(kernel_source)

work=$(mktemp -d "${TMPDIR:-/tmp}/scullv-vm.XXXXXX")
trap 'rm -rf "$work"' EXIT
console_log=${console_log:-$SCULLV_LOGS/guest-$flavour.log}

# The initramfs: static busybox, the module, the tests, the helpers.
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc,scullv/bin,scullv/kselftest}
cp /bin/busybox "$root/bin/busybox"
cp "$ko" "$root/scullv/scullv.ko"
mkdir -p "$root/scullv/tests"
cp "$SCULLV_TOP"/tests/*.sh "$root/scullv/tests/"
cp "$helpers"/scullv-tool "$helpers"/scullv-tool32 "$root/scullv/bin/"
cp "$src/tools/testing/selftests/kselftest/ktap_helpers.sh" "$root/scullv/kselftest/"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
if [ $shell = 1 ]; then
	printf '%s\n' 'insmod /scullv/scullv.ko && echo "scullv loaded: /dev/scullv*, /proc/scullvmem; poweroff -f to leave"' \
		'setsid -c sh -l' >"$root/cmd.sh"
else
	printf '%s\n' "$*" >"$root/cmd.sh"
fi
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/scullv/bin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug
mkdir -p /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup
# kmemleak scans only when a test asks, so that boot objects do not report.
[ -w /sys/kernel/debug/kmemleak ] && echo scan=off >/sys/kernel/debug/kmemleak
cd /scullv
exec </dev/ttyS1 >/dev/ttyS1 2>&1
sh /cmd.sh
echo "SCULLV-EXIT=$?"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) >"$work/initramfs.cpio"

# TCG unless KVM demonstrably works here (on these machines it does not).
accel=tcg
cpu=qemu64,+rdrand
# The probe runs in a shell of its own, so that its report of QEMU aborting stays quiet.
if [ -w /dev/kvm ] && bash -c 'timeout 10 qemu-system-x86_64 -accel kvm -cpu host -display none \
	-no-reboot -nodefaults -kernel /dev/null </dev/null; status=$?; exit $status' >/dev/null 2>&1; then
	accel=kvm
	cpu=host
fi
accel_opts=$accel
# Debian's kernel patches its own code at run time (static keys, with int3 breakpoints and
# cross-CPU syncs); QEMU 7.2's multi-threaded TCG lets a vCPU run a breakpoint that was already
# removed, and the kernel oopses ("Oops: int3" in the scheduler at boot, seen here). One TCG
# thread for both vCPUs serialises them. The test kernels are built without those patch sites.
[ "$accel" = tcg ] && [ "$flavour" = debian ] && accel_opts=tcg,thread=single

# ttyS0 is the kernel console (to the log file), ttyS1 the command's terminal.
# rdrand makes the random pool ready at boot, so %p hashes instead of printing
# (____ptrval____); hash_pointers=always hashes even with SLUB debugging on. The
# kernel hands the unknown SCULLV_* parameters to init as environment variables,
# so the guest can tell how it runs.
append="console=ttyS0 panic=-1 oops=panic loglevel=7 hash_pointers=always"
append+=" SCULLV_ACCEL=$accel SCULLV_CPU=$cpu SCULLV_KERNEL=$flavour"
qemu=(qemu-system-x86_64 -accel "$accel_opts" -cpu "$cpu" -smp 2 -m "$mem"
	-display none -no-reboot -net none -monitor none
	-serial "file:$console_log" -serial stdio
	-kernel "$image" -initrd "$work/initramfs.cpio"
	-append "$append")

echo "==> booting the $flavour kernel ($accel, 2 CPUs, $mem; kernel log: $console_log)" >&2
start=$(date +%s)
out=$work/out
set +e
if [ $shell = 1 ]; then
	timeout --foreground "$timeout" "${qemu[@]}"
	status=$?
else
	timeout "$timeout" "${qemu[@]}" </dev/null | tr -d '\r' | tee "$out"
	status=${PIPESTATUS[0]}
fi
set -e
elapsed=$(($(date +%s) - start))

if problems=$(kernel_problems "$console_log"); then
	echo "error: the $flavour kernel reported a problem (full log: $console_log):" >&2
	echo "$problems" | sed 's/^/    /' >&2
	exit 1
fi
if [ "$status" -eq 124 ]; then
	echo "error: the guest did not finish within ${timeout}s and was killed (kernel log: $console_log)" >&2
	tail -n 20 "$console_log" | sed 's/^/    /' >&2
	exit 1
fi
[ $shell = 1 ] && exit 0
rc=$(sed -n 's/^SCULLV-EXIT=\([0-9]*\)$/\1/p' "$out" | tail -n 1)
if [ -z "$rc" ]; then
	echo "error: the guest ended without reporting the command's exit status (kernel log: $console_log)" >&2
	tail -n 20 "$console_log" | sed 's/^/    /' >&2
	exit 1
fi
echo "==> guest finished in ${elapsed}s, command exit status $rc" >&2
exit "$rc"
