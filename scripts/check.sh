#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The whole test suite: a warning-free module build for each kernel, then
# tests/scullv_test.sh in the guest on the base and the debug test kernel and on
# Debian's own kernel, the module's KUnit cases from each kernel log (the test
# kernels; Debian's has no KUnit), a clean kernel log, and (whole runs on the
# base kernel) a shell typed into through make vm and a wrong toolchain refused
# for Debian's kernel. Ends with "N passed, N failed, N skipped" summed over
# everything.
set -euo pipefail

usage() {
	cat <<'USAGE'
usage: scripts/check.sh [--kernel base|debug|debian] [-t NAME-PART]

  --kernel K    run on one kernel only (default: base, debug, then debian:
                Debian's DEBIAN_RELEASE, default 7.3.4+deb13-amd64)
  -t NAME-PART  run only the tests whose name contains NAME-PART
                (KUnit and the kernel-log check always count)

SEED=N replays the differential test with seed N. Exit status 0 when
nothing failed.
USAGE
}

kernels=(base debug debian)
filter=
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernels=("$2"); shift ;;
	-t) filter=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done

here=$(dirname "$0")
. "$here/lib.sh"
seed=${SEED:-$(date +%s)}
total_pass=0
total_fail=0
total_skip=0
suite_start=$(date +%s)

# ok/not ok lines of the host's own checks, counted into the totals.
host_ok() {
	echo "ok - $*"
	total_pass=$((total_pass + 1))
}
host_not_ok() {
	echo "not ok - $*"
	total_fail=$((total_fail + 1))
}

for k in "${kernels[@]}"; do
	out=$SCULLV_LOGS/check-$k.out
	log=$SCULLV_LOGS/check-$k.log
	start=$(date +%s)
	rm -f "$out" "$log"

	# The module for this kernel, with its own toolchain: any warning fails it.
	# Its stage lines (and, on a cold cache, the kernel's set-up and build) show as they come.
	if ! "$here/build-module.sh" "$k" 2>&1 >"$SCULLV_LOGS/check-$k-build.ko" |
		tee "$SCULLV_LOGS/check-$k-build.err"; then
		host_not_ok "$k: scullv.ko builds with no warning (the error above; log $SCULLV_LOGS/module-$k.log)"
		continue
	fi
	host_ok "$k: scullv.ko builds with no warning ($(cat "$SCULLV_CACHE/module/$k/toolchain"))"

	cmd="SCULLV_FLAVOUR=$k SEED=$seed sh tests/scullv_test.sh${filter:+ -t $filter}"
	# The module just built: the runner need not build it again.
	"$here/run-vm.sh" --kernel "$k" --module "$(tail -n 1 "$SCULLV_LOGS/check-$k-build.ko")" --timeout 1500 --log "$log" -- "$cmd" | tee "$out" || true

	# The guest's KTAP.
	pass=$(grep -cE '^ok [0-9]+ ' "$out" || true)
	skip=$(grep -cE '^ok [0-9]+ .*# SKIP' "$out" || true)
	fail=$(grep -cE '^not ok [0-9]+ ' "$out" || true)
	pass=$((pass - skip))
	plan=$(sed -n 's/^1\.\.\([0-9]*\).*/\1/p' "$out" | head -n 1)
	if [ -z "$plan" ] || [ $((pass + skip + fail)) -ne "$plan" ]; then
		echo "not ok - $k: the suite did not run to its plan (${plan:-no plan}, $((pass + fail + skip)) results)"
		fail=$((fail + 1))
	fi

	# The guest's release: Debian's kernel must be the one asked for.
	if [ "$k" = debian ]; then
		guest=$(sed -n 's/^# scullv on the debian kernel, \([^,]*\),.*/\1/p' "$out" | head -n 1)
		if [ "$guest" = "$DEBIAN_RELEASE" ]; then
			echo "ok - debian: the guest runs Debian's $guest"
			pass=$((pass + 1))
		else
			echo "not ok - debian: expected the guest to run $DEBIAN_RELEASE, it said '${guest:-nothing}'"
			fail=$((fail + 1))
		fi
	fi

	# The module's KUnit cases: the first run of the suite in the kernel log
	# (it runs again at every insmod). Debian's kernel has no KUnit.
	kpass=0
	kfail=0
	if [ "$k" = debian ]; then
		echo "# debian: no KUnit in Debian's kernel (CONFIG_KUNIT is not set); the module's KUnit cases run on base and debug"
	else
		# The driver's suite and the abstractions' (kernel_ext/).
		for suite in scullv_storage kernel_ext_seq_printf; do
			kunit=$(awk -v suite="$suite" '{ sub(/\r$/, ""); sub(/^\[[^]]*\] ?/, "") }
				$0 ~ "^ *# Subtest: " suite "$" { inside = 1 }
				inside && /^(not )?ok / { exit }
				inside { print }' "$log" 2>/dev/null || true)
			spass=$(echo "$kunit" | grep -cE '^ +ok [0-9]+ ' || true)
			sfail=$(echo "$kunit" | grep -cE '^ +not ok [0-9]+ ' || true)
			echo "$kunit" | grep -E '^ +(not )?ok ' | sed "s/^ */# kunit $k $suite: /"
			kplan=$(echo "$kunit" | sed -n 's/^ *1\.\.\([0-9]*\)$/\1/p' | head -n 1)
			if [ -z "$kplan" ] || [ $((spass + sfail)) -ne "$kplan" ]; then
				echo "not ok - $k: KUnit $suite did not run to its plan (${kplan:-no plan}, $((spass + sfail)) results; log $log)"
				sfail=$((sfail + 1))
			fi
			kpass=$((kpass + spass))
			kfail=$((kfail + sfail))
		done
	fi

	# The kernel log: any report fails, whatever the tests said.
	if problems=$(kernel_problems "$log"); then
		echo "not ok - $k: the kernel log has reports (full log: $log):"
		echo "$problems" | sed 's/^/#   /'
		fail=$((fail + 1))
	else
		echo "ok - $k: kernel log clean (no oops, BUG, WARNING, lockdep, KFENCE, SLUB or kmemleak report)"
		pass=$((pass + 1))
	fi

	pass=$((pass + kpass))
	fail=$((fail + kfail))
	echo "# $k kernel: $pass passed, $fail failed, $skip skipped ($(($(date +%s) - start))s; output $out, kernel log $log)"
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	total_skip=$((total_skip + skip))
done

# make vm: its shell answers on the terminal. Types a command once the guest
# says the module is loaded; 6*7 shows the shell ran it rather than echoing it.
vm_check() {
	local out=$SCULLV_LOGS/check-vm.out fifo keys pid status
	fifo=$(mktemp -u "${TMPDIR:-/tmp}/scullv-vm-keys.XXXXXX")
	mkfifo "$fifo"
	"$here/run-vm.sh" --shell --timeout 60 --log "$SCULLV_LOGS/check-vm.log" <"$fifo" >"$out" 2>&1 &
	pid=$!
	exec {keys}>"$fifo"
	rm -f "$fifo"
	for _ in $(seq 60); do
		grep -q 'scullv loaded' "$out" || ! kill -0 "$pid" 2>/dev/null && break
		sleep 1
	done
	printf 'echo "vm-shell-$((6 * 7))"; grep -c "^Device" /proc/scullvmem; poweroff -f\n' >&"$keys"
	status=0
	wait "$pid" || status=$?
	exec {keys}>&-
	[ "$status" -eq 0 ] || { echo "# make vm: exit status $status"; return 1; }
	# Both answers, each on a line of its own (the echoed input holds neither).
	[ "$(tr -d '\r' <"$out" | grep -cxE 'vm-shell-42|4')" -eq 2 ]
}
if [ -z "$filter" ] && [[ " ${kernels[*]} " == *" base "* ]]; then
	start=$(date +%s)
	if vm_check; then
		host_ok "make vm: the guest's shell ran a command on its terminal ($(($(date +%s) - start))s)"
	else
		host_not_ok "make vm: the guest's shell did not answer (output $SCULLV_LOGS/check-vm.out):"
		tail -n 5 "$SCULLV_LOGS/check-vm.out" | sed 's/^/#   /'
	fi
fi

# A wrong toolchain for Debian's kernel (the test kernels' rustup rustc) stops before any
# build, naming the packages to install.
if [ -z "$filter" ] && [[ " ${kernels[*]} " == *" debian "* ]]; then
	err=$SCULLV_LOGS/check-wrong-toolchain.err
	# lib.sh put the test kernels' tools (rustup's rustc, bindgen 0.73) first on PATH.
	if timeout 60 "$here/debian-kdir.sh" --release "$DEBIAN_RELEASE" \
		--toolchain host >/dev/null 2>"$err"; then
		host_not_ok "debian-kdir.sh accepted rustup's $(rustc --version) for $DEBIAN_RELEASE"
	elif grep -qF "found '$(rustc --version)'" "$err" && grep -q 'apt-get install rustc rust-src bindgen' "$err" &&
		! grep -q '==> \(configuring\|building\)' "$err"; then
		host_ok "debian-kdir.sh refuses a wrong toolchain before building, naming the packages"
	else
		host_not_ok "debian-kdir.sh with a wrong toolchain: expected the rustc mismatch and the packages to install, got:"
		sed 's/^/#   /' "$err" | head -n 12
	fi
fi

echo "# whole suite: $(($(date +%s) - suite_start))s, SEED=$seed"
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ]
