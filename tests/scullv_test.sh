#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# kselftest for scullv: runs in the test guest (scripts/run-vm.sh), as root,
# with the module at ../scullv.ko, the helpers scullv-tool and scullv-tool32
# on PATH and the kernel's ktap_helpers.sh in ../kselftest. Prints KTAP, one
# line per check; exits with the kselftest codes.
#
#   sh tests/scullv_test.sh            every test
#   sh tests/scullv_test.sh -t mmap    the tests whose name contains "mmap"
#   SEED=1234 sh tests/scullv_test.sh -t diff   replay a differential run
#
# SCULLV_FLAVOUR=debug selects the debug kernel's sizes (it is many times
# slower) and enables the fault-injection and kmemleak tests.

DIR="$(dirname "$(readlink -f "$0")")"
. "$DIR/../kselftest/ktap_helpers.sh"

MODULE="$DIR/../scullv.ko"
FLAVOUR=${SCULLV_FLAVOUR:-base}
SEED=${SEED:-$(date +%s)}
KB=1024
MB=$((1024 * 1024))
QUANTUM=$((4096 << 4))
ITEM=$((QUANTUM * 500))
if [ "$FLAVOUR" = debug ]; then
	BIG_MB=64
	DIFF_OPS=2500
	STRESS_SECS=5
else
	BIG_MB=1024
	DIFF_OPS=20000
	STRESS_SECS=10
fi

# --- helpers -------------------------------------------------------------

msg() { echo "# $*"; }

# fail MESSAGE: say what was expected and what came, and end the test as failed. Every test
# runs in a subshell of its own (see the runner), so this ends that test, never the suite, and
# no caller needs a "|| return" after it.
fail() {
	msg "$*"
	exit 1
}

loaded() { grep -q '^scullv ' /proc/modules; }

load() {
	loaded && rmmod scullv
	insmod "$MODULE" "$@"
}

unload() {
	! loaded || rmmod scullv
}

# size_of N: the size of /dev/scullvN as /proc/scullvmem reports it.
size_of() {
	sed -n "s/^Device $1: qset [0-9]*, order [0-9]*, sz \([0-9]*\)\$/\1/p" /proc/scullvmem
}

expect_eq() { # WHAT EXPECTED ACTUAL
	[ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
}

# The device's data as a checksum.
sum_of() { md5sum <"$1" | cut -d' ' -f1; }

# --- tests ---------------------------------------------------------------

test_load_defaults() {
	dmesg -c >/dev/null
	load || fail "insmod with no parameters failed"
	line=$(dmesg | grep 'scullv: .*devices, order' | tail -n 1)
	echo "$line" | grep -qE '4 devices, order 4, qset 500, size limit [0-9]+ bytes, total limit [0-9]+ bytes, mode 666$' ||
		fail "load line: expected '4 devices, order 4, qset 500, size limit N bytes, total limit M bytes, mode 666', got '$line'"
	limit=$(echo "$line" | sed 's/.*size limit \([0-9]*\) bytes.*/\1/')
	total=$(echo "$line" | sed 's/.*total limit \([0-9]*\) bytes.*/\1/')
	ram=$(($(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo) * KB))
	# Half the RAM present at load; MemTotal excludes what the kernel reserved.
	[ "$limit" -ge $((ram / 2)) ] && [ "$limit" -le $((ram / 2 + 256 * MB)) ] ||
		fail "default size limit: expected about half of $ram bytes, got $limit"
	[ "$total" -ge $((ram / 2)) ] && [ "$total" -le $((ram / 2 + 256 * MB)) ] ||
		fail "default total limit: expected about half of $ram bytes, got $total"
	for i in 0 1 2 3; do
		mode=$(ls -l /dev/scullv$i | cut -c1-10)
		expect_eq "mode of /dev/scullv$i" "crw-rw-rw-" "$mode"
	done
	[ ! -e /dev/scullv4 ] || fail "/dev/scullv4 exists with scullv_devs=4"
}

test_bad_params() {
	for p in scullv_devs=0 scullv_devs=33 scullv_order=-1 scullv_order=11 \
		scullv_qset=0 scullv_qset=65537 scullv_mode=01000 scullv_size_limit=-1; do
		unload
		dmesg -c >/dev/null
		if insmod "$MODULE" "$p" 2>/tmp/err; then
			fail "insmod $p: expected EINVAL, it loaded"
		fi
		grep -q 'Invalid argument\|Invalid parameters' /tmp/err ||
			fail "insmod $p: expected 'Invalid argument', got '$(cat /tmp/err)'"
		name=${p%%=*}
		dmesg | grep -q "invalid $name=.*: allowed range is" ||
			fail "insmod $p: no log line naming $name and its range: '$(dmesg | tail -n 2)'"
	done
	if insmod "$MODULE" scullv_order=abc 2>/dev/null; then
		fail "insmod scullv_order=abc: expected EINVAL, it loaded"
	fi
	! loaded || fail "a failed insmod left the module loaded"
}

test_good_params() {
	dmesg -c >/dev/null
	load scullv_devs=2 scullv_order=0 scullv_qset=1 scullv_mode=0600 scullv_size_limit=1048576 \
		scullv_total_limit=2097152 || fail "insmod with valid parameters failed"
	want='2 devices, order 0, qset 1, size limit 1048576 bytes, total limit 2097152 bytes, mode 600'
	dmesg | grep -q "$want" ||
		fail "load line: expected '$want', got '$(dmesg | grep 'scullv:' | tail -n 1)'"
	expect_eq "mode of /dev/scullv1" "crw-------" "$(ls -l /dev/scullv1 | cut -c1-10)"
	[ ! -e /dev/scullv2 ] || fail "/dev/scullv2 exists with scullv_devs=2"
	expect_eq "empty device line" "Device 1: qset 1, order 0, sz 0" \
		"$(grep '^Device 1' /proc/scullvmem)"
}

test_size_limit() {
	load scullv_size_limit=1048576 || return
	# A write that would cross the limit stores what fits and returns that short count.
	out=$(dd if=/dev/zero of=/dev/scullv0 bs=1000000 count=2 2>&1)
	expect_eq "size after crossing the limit" 1048576 "$(size_of 0)"
	echo "$out" | grep -q 'No space left on device' ||
		fail "second write: expected ENOSPC, dd said '$out'"
	# A write that starts at the limit fails with ENOSPC and stores nothing.
	if printf x | dd of=/dev/scullv1 bs=1 seek=1048576 2>/tmp/err; then
		fail "write at the limit: expected ENOSPC, it succeeded"
	fi
	grep -q 'No space left on device' /tmp/err || fail "write at the limit: got '$(cat /tmp/err)'"
	expect_eq "size after a write at the limit" 0 "$(size_of 1)"
	# Seeking past the limit is allowed.
	dd if=/dev/scullv0 of=/dev/null bs=1 skip=2000000 count=1 2>/tmp/err ||
		fail "seek past the limit: $(cat /tmp/err)"
}

# write_results OUTPUT: the results of the write() calls that "scullv-tool fill" printed.
write_results() {
	echo "$1" | sed -n 's/^# write [0-9]* at [0-9]* ([0-9]* bytes): //p' | tr '\n' ' ' |
		sed 's/ $//'
}

# fill DEV ARGS...: "scullv-tool fill" on DEV, its output shown as diagnostics and kept in $out.
fill() {
	dev=$1
	shift
	out=$(scullv-tool fill --dev "$dev" "$@") || fail "scullv-tool fill --dev $dev $*: $out"
	echo "$out" | sed 's/^# /#   /'
}

test_total_limit() {
	# 16 quanta of 64 KiB for all devices together.
	load scullv_total_limit=1048576 || return
	head -c $((2 * MB)) /dev/urandom >/tmp/tl
	fill /dev/scullv0 --data /tmp/tl --block 655360 --max-writes 1
	expect_eq "one write of 10 quanta to /dev/scullv0" 655360 "$(write_results "$out")"
	# 6 quanta left: a 1 MiB write stores what fits and returns that short count.
	fill /dev/scullv1 --data /tmp/tl --block $MB --max-writes 1
	expect_eq "a 1 MiB write to /dev/scullv1 with 6 quanta left under the total limit" 393216 \
		"$(write_results "$out")"
	# Nothing fits: ENOSPC, nothing stored.
	fill /dev/scullv1 --data /tmp/tl --block $MB --max-writes 1
	expect_eq "the next 1 MiB write to /dev/scullv1, with no quantum left" ENOSPC \
		"$(write_results "$out")"
	expect_eq "size of /dev/scullv1 after the ENOSPC" 393216 "$(size_of 1)"
	expect_eq "size of /dev/scullv0" 655360 "$(size_of 0)"
	# A trim gives the memory back at once: 10 more quanta fit, the 11th does not.
	: >/dev/scullv0
	fill /dev/scullv1 --data /tmp/tl --block $QUANTUM --max-writes 11
	want=
	for i in 1 2 3 4 5 6 7 8 9 10; do
		want="$want$QUANTUM "
	done
	expect_eq "11 writes of one quantum to /dev/scullv1 after the trim of /dev/scullv0" \
		"${want}ENOSPC" "$(write_results "$out")"
	expect_eq "size of /dev/scullv1" $MB "$(size_of 1)"
	head -c $MB /tmp/tl >/tmp/tl1
	cmp /tmp/tl1 /dev/scullv1 || fail "/dev/scullv1 does not hold the bytes written to it"
	# An empty device gets nothing either.
	fill /dev/scullv2 --block 1 --max-writes 1
	expect_eq "a 1-byte write to the empty /dev/scullv2 with no quantum left" ENOSPC \
		"$(write_results "$out")"
	expect_eq "size of /dev/scullv2 after the ENOSPC" 0 "$(size_of 2)"
}

test_total_limit_bad_param() {
	for v in -1 -9223372036854775808; do
		unload
		dmesg -c >/dev/null
		if insmod "$MODULE" scullv_total_limit=$v 2>/tmp/err; then
			fail "insmod scullv_total_limit=$v: expected EINVAL, it loaded"
		fi
		grep -q 'Invalid argument\|Invalid parameters' /tmp/err ||
			fail "insmod scullv_total_limit=$v: expected 'Invalid argument', got '$(cat /tmp/err)'"
		want="invalid scullv_total_limit=$v: allowed range is 0..9223372036854775807"
		dmesg | grep -qF "$want" ||
			fail "insmod scullv_total_limit=$v: expected the log line '$want', got '$(dmesg | tail -n 2)'"
		! loaded || fail "a failed insmod scullv_total_limit=$v left the module loaded"
	done
	# The upper bound itself is allowed.
	dmesg -c >/dev/null
	load scullv_total_limit=9223372036854775807 ||
		fail "insmod scullv_total_limit=9223372036854775807 (the upper bound) failed"
	dmesg | grep -q 'total limit 9223372036854775807 bytes' ||
		fail "load line: expected 'total limit 9223372036854775807 bytes', got '$(dmesg | grep 'scullv:' | tail -n 1)'"
}

# As user nobody, fill every device in turn with 1 MiB writes of zeros until one fails: with the
# default limits, all together stop at the total limit (half the RAM), with ENOSPC, not with a
# kill, and a trim gives the memory back. Not named *total_limit*, so that "-t total_limit" does
# not select it by accident.
test_fill_all_unprivileged() {
	[ "$FLAVOUR" != debug ] || return "$KSFT_SKIP"
	dmesg -c >/dev/null
	load || return
	line=$(dmesg | grep 'scullv: .*devices, order' | tail -n 1)
	total=$(echo "$line" | sed -n 's/.*total limit \([0-9]*\) bytes.*/\1/p')
	# Without a total limit this would fill the RAM devices x half of it over, and OOM the guest.
	[ -n "$total" ] ||
		fail "load line: expected 'total limit M bytes', got '$line' (not filling the devices without one)"
	avail() { sed -n 's/^MemAvailable: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
	before=$(avail)
	msg "total limit $total bytes; MemAvailable $before kB"
	stored=0
	for i in 0 1 2 3; do
		start=$(date +%s)
		# Bounded one byte past what the total limit leaves, so that a limit not kept fails
		# the test instead of filling the RAM.
		out=$(scullv-tool fill --dev /dev/scullv$i --uid 65534 --block $MB --quiet \
			--max-bytes $((total - stored + 1)))
		rc=$?
		echo "$out" | sed 's/^# /#   /'
		[ $rc -lt 128 ] ||
			fail "the writer to /dev/scullv$i (uid 65534) was killed by signal $((rc - 128)), expected it to end with ENOSPC"
		[ $rc -eq 0 ] || fail "the writer to /dev/scullv$i (uid 65534) failed (exit $rc)"
		end=$(echo "$out" | sed -n 's/^# ended: \(.*\) after [0-9]* writes.*/\1/p')
		expect_eq "how the writes to /dev/scullv$i as uid 65534 ended" ENOSPC "$end"
		size=$(size_of $i)
		stored=$((stored + size))
		msg "/dev/scullv$i: $size bytes stored in $(($(date +%s) - start)) s; MemAvailable $(avail) kB"
	done
	msg "stored in all: $stored bytes of the total limit $total"
	[ "$stored" -le "$total" ] ||
		fail "bytes stored in all devices: expected at most the total limit $total, got $stored"
	[ "$stored" -ge $((total / 10 * 9)) ] ||
		fail "bytes stored in all devices: expected at least 90% of the total limit $total, got $stored"
	if dmesg | grep -E 'Out of memory|oom-kill|Killed process' >/tmp/oom; then
		sed 's/^/#   /' /tmp/oom | head -n 5
		fail "the kernel log reports an OOM kill while the devices filled"
	fi
	for i in 0 1 2 3; do
		: >/dev/scullv$i
	done
	after=$(avail)
	msg "after the trims: MemAvailable $after kB (before: $before kB)"
	diff=$((after > before ? after - before : before - after))
	[ "$diff" -le $((before / 10)) ] ||
		fail "MemAvailable after trimming all devices: expected within 10% of $before kB, got $after kB"
}

test_book_example() {
	load || return
	dd if=/dev/urandom of=/tmp/bigfile bs=1535135 count=1 2>/dev/null
	cat /tmp/bigfile >/dev/scullv0 || fail "cat > /dev/scullv0 failed"
	head -5 /proc/scullvmem >/tmp/head
	sed -n l /tmp/head | sed 's/^/#   /'
	expect_eq "line 1" "" "$(sed -n 1p /tmp/head)"
	expect_eq "line 2" "Device 0: qset 500, order 4, sz 1535135" "$(sed -n 2p /tmp/head)"
	sed -n 3p /tmp/head | grep -qE '^  item at [0-9a-f]{16}, qset at [0-9a-f]{16}$' ||
		fail "line 3: expected '  item at <16 hex>, qset at <16 hex>', got '$(sed -n 3p /tmp/head)'"
	sed -n 4p /tmp/head | grep -qE '^       0:[0-9a-f ]{8}$' ||
		fail "line 4: expected '       0:<8 hex>', got '$(sed -n 4p /tmp/head)'"
	sed -n 5p /tmp/head | grep -qE '^       1:[0-9a-f ]{8}$' ||
		fail "line 5: expected '       1:<8 hex>', got '$(sed -n 5p /tmp/head)'"
	cmp /tmp/bigfile /dev/scullv0 || fail "read-back differs from bigfile"
}

test_proc_complete() {
	# Thousands of quanta in one item: 5000 quanta of 4 KiB.
	load scullv_order=0 scullv_qset=5000 || return
	dd if=/dev/zero of=/dev/scullv0 bs=4096 count=5000 2>/dev/null
	printf x >/dev/scullv2
	lines=$(wc -l </proc/scullvmem)
	bytes=$(wc -c </proc/scullvmem)
	# Device 0: blank, header, one item, 5000 quanta; devices 1-3: blank, header; device 2 an
	# item and a quantum.
	expect_eq "/proc/scullvmem lines" $((3 + 5000 + 2 + 4 + 2)) "$lines"
	msg "/proc/scullvmem: $lines lines, $bytes bytes"
	expect_eq "last quantum line" "     4999:" "$(sed -n '/^Device 0/,/^$/p' /proc/scullvmem | grep '4999:' | cut -c1-10)"
	expect_eq "device 3 block" "Device 3: qset 5000, order 0, sz 0" "$(tail -n 1 /proc/scullvmem)"
}

test_devices_independent() {
	load || return
	for i in 0 1 2 3; do
		dd if=/dev/urandom of=/tmp/d$i bs=$((100000 + i * 7000)) count=1 2>/dev/null
		cat /tmp/d$i >/dev/scullv$i
	done
	: >/dev/scullv2 # trims device 2 only
	for i in 0 1 3; do
		cmp /tmp/d$i /dev/scullv$i || fail "device $i changed by the others"
	done
	expect_eq "size of the trimmed device" 0 "$(size_of 2)"
}

test_large_readback() {
	load || return
	# A seeded stream whose every byte depends on its offset: a byte from the wrong place fails.
	# Through tmpfs files, not pipes: pipes between the two vCPUs crawl under emulation.
	bytes=$((BIG_MB * MB))
	scullv-tool stream --bytes $bytes --seed "$SEED" >/tmp/stream
	dd if=/tmp/stream of=/dev/scullv1 bs=1M 2>/dev/null || fail "writing $BIG_MB MiB with dd failed"
	rm /tmp/stream
	expect_eq "size after $BIG_MB MiB" $bytes "$(size_of 1)"
	dd if=/dev/scullv1 of=/tmp/back bs=1M 2>/dev/null || fail "reading $BIG_MB MiB with dd failed"
	scullv-tool stream --bytes $bytes --seed "$SEED" --check </tmp/back ||
		fail "$BIG_MB MiB read back with dd differ from what was written"
	rm /tmp/back
	# The book's oops: 256 MiB of zeros through dd, past the first item (debug kernel: 64 MiB).
	n=$((BIG_MB < 256 ? BIG_MB : 256))
	dd if=/dev/zero of=/dev/scullv2 bs=1M count=$n 2>/dev/null || fail "dd of $n MiB of zeros failed"
	expect_eq "zeros read back past 32 MiB" "$(head -c $MB /dev/zero | md5sum)" \
		"$(dd if=/dev/scullv2 bs=1M skip=40 count=1 2>/dev/null | md5sum)"
}

test_holes_and_eof() {
	load || return
	printf abc | dd of=/dev/scullv0 bs=1 seek=$((ITEM + 5)) 2>/dev/null
	expect_eq "size after a write past the first item" $((ITEM + 8)) "$(size_of 0)"
	expect_eq "hole bytes" "$(head -c 70000 /dev/zero | md5sum)" \
		"$(dd if=/dev/scullv0 bs=70000 count=1 skip=7 2>/dev/null | md5sum)"
	expect_eq "data after the hole" "abc" "$(dd if=/dev/scullv0 bs=1 skip=$((ITEM + 5)) 2>/dev/null)"
	expect_eq "read at EOF" 0 "$(dd if=/dev/scullv0 bs=1 skip=$((ITEM + 8)) 2>/dev/null | wc -c)"
	# Items before the first quantum exist and hold none: two item lines, one quantum line.
	expect_eq "item lines" 2 "$(sed -n '/^Device 0/,/^$/p' /proc/scullvmem | grep -c 'item at')"
}

test_append_and_trim_rules() {
	load || return
	echo one >/dev/scullv0
	echo two >>/dev/scullv0
	expect_eq "after > and >>" "one two" "$(echo $(cat /dev/scullv0))"
	# O_RDWR does not trim.
	: 1<>/dev/scullv0
	expect_eq "size after an O_RDWR open" 8 "$(size_of 0)"
	# Read-only does not trim.
	: </dev/scullv0
	expect_eq "size after an O_RDONLY open" 8 "$(size_of 0)"
	# Write-only without O_APPEND trims (cat x > dev).
	: >/dev/scullv0
	expect_eq "size after an O_WRONLY open" 0 "$(size_of 0)"
}

test_fsync() {
	load || return
	dd if=/dev/zero of=/dev/scullv0 bs=4k count=4 conv=fsync 2>/tmp/err ||
		fail "dd conv=fsync: $(cat /tmp/err)"
	sync /dev/scullv0 2>/dev/null || true
	expect_eq "size after dd conv=fsync" 16384 "$(size_of 0)"
}

test_rw_calls() {
	load || return
	scullv-tool rw --dev /dev/scullv0 --quantum $QUANTUM --itemsize $ITEM
}

test_uring_64bit() {
	load || return
	scullv-tool uring --dev /dev/scullv0 --quantum $QUANTUM --itemsize $ITEM
}

test_uring_32bit() {
	load || return
	if ! scullv-tool32 uring --help >/dev/null 2>&1; then
		msg "scullv-tool32 was built without io_uring (the io-uring crate needs --cfg io_uring_skip_arch_check on i686)"
		return "$KSFT_SKIP"
	fi
	scullv-tool32 uring --dev /dev/scullv0 --quantum $QUANTUM --itemsize $ITEM
}

test_ioctl_64bit() {
	load || return
	scullv-tool ioctl --dev /dev/scullv0 --load-order 4 --load-qset 500
}

test_ioctl_32bit() {
	load || return
	scullv-tool32 ioctl --dev /dev/scullv0 --load-order 4 --load-qset 500
}

test_ioctl_unprivileged_64bit() {
	load || return
	echo data >/dev/scullv0
	scullv-tool ioctl-unpriv --dev /dev/scullv0 --uid 65534
}

test_ioctl_unprivileged_32bit() {
	load || return
	echo data >/dev/scullv0
	scullv-tool32 ioctl-unpriv --dev /dev/scullv0 --uid 65534
}

test_ioctl_load_values() {
	# RESET goes back to the values given at load, not to the book's defaults.
	load scullv_order=2 scullv_qset=9 || return
	scullv-tool ioctl --dev /dev/scullv0 --load-order 2 --load-qset 9
}

test_mmap_order4() {
	load || return
	scullv-tool mmap --dev /dev/scullv0 --order 4
}

test_mmap_order0() {
	load || return
	scullv-tool mmap --dev /dev/scullv0 --order 0
}

test_mmap_private_whole() {
	load || return
	scullv-tool mmap-private whole --dev /dev/scullv0
}

test_mmap_private_inner() {
	load || return
	scullv-tool mmap-private inner --dev /dev/scullv0
}

test_mmap_private_two_devices() {
	load || return
	scullv-tool mmap-private two-devices --dev /dev/scullv0 --other /dev/scullv1
}

test_mmap_private_cow() {
	load || return
	scullv-tool mmap-private cow --dev /dev/scullv0
}

test_mmap_private_fork() {
	load || return
	scullv-tool mmap-private fork --dev /dev/scullv0
}

test_mmap_private_sigbus() {
	load || return
	scullv-tool mmap-private sigbus --dev /dev/scullv0
}

test_differential() {
	load || return
	msg "SEED=$SEED"
	scullv-tool diff --seed "$SEED" --ops "$DIFF_OPS" --dev /dev/scullv0 --file /tmp/scullv-diff \
		--quantum $QUANTUM --itemsize $ITEM --limit $((8 * MB))
}

# Small items, so that offsets around item boundaries come up often.
test_differential_small_geometry() {
	load scullv_order=0 scullv_qset=3 || return
	scullv-tool diff --seed "$((SEED + 1))" --ops "$((DIFF_OPS / 2))" --dev /dev/scullv0 \
		--file /tmp/scullv-diff --quantum 4096 --itemsize $((4096 * 3)) --limit $((4 * MB)) ||
		return
	load scullv_order=2 scullv_qset=4 || return
	scullv-tool diff --seed "$((SEED + 2))" --ops "$((DIFF_OPS / 2))" --dev /dev/scullv0 \
		--file /tmp/scullv-diff --limit $((8 * MB))
}

test_concurrency() {
	load || return
	scullv-tool concurrent --secs "$STRESS_SECS" --devs /dev/scullv0,/dev/scullv1
}

test_rmmod_busy() {
	load || return
	exec 3</dev/scullv0
	if rmmod scullv 2>/dev/null; then
		exec 3<&-
		fail "rmmod succeeded with /dev/scullv0 open"
	fi
	exec 3<&-
	echo x >/dev/scullv0
	scullv-tool map-hold --dev /dev/scullv0 --secs 30 &
	pid=$!
	sleep 1
	if rmmod scullv 2>/dev/null; then
		kill $pid
		fail "rmmod succeeded with /dev/scullv0 mapped (fd closed)"
	fi
	kill $pid
	wait $pid 2>/dev/null
	rmmod scullv || fail "rmmod failed once nothing held the device"
}

test_rmmod_cycles() {
	i=0
	while [ $i -lt 5 ]; do
		load || fail "insmod $i failed"
		dd if=/dev/zero of=/dev/scullv$((i % 4)) bs=64k count=$((i * 50 + 1)) 2>/dev/null
		rmmod scullv || fail "rmmod $i failed"
		i=$((i + 1))
	done
}

test_memcg() {
	cg=/sys/fs/cgroup
	[ -e $cg/cgroup.controllers ] && grep -qw memory $cg/cgroup.controllers ||
		return $KSFT_SKIP
	load || return
	echo +memory >$cg/cgroup.subtree_control
	mkdir -p $cg/scullv
	# Emptied by the trim below, or by the subshell's end if a check fails first.
	trap 'rmdir $cg/scullv 2>/dev/null' EXIT
	echo $((16 * MB)) >$cg/scullv/memory.max
	before=$(cat $cg/scullv/memory.current)
	# The writer leaves the cgroup before it prints or needs a page of its own: in the cgroup
	# that the device filled, a page for its stack or heap (dd's error path grows its stack;
	# seen) could only come from the cgroup's OOM killer. `fill --leave-cgroup` does that.
	sh -c "echo \$\$ >$cg/scullv/cgroup.procs; exec scullv-tool fill --dev /dev/scullv3 \
		--block $MB --max-bytes $((64 * MB)) --quiet --leave-cgroup $cg/cgroup.procs" \
		>/tmp/out 2>&1
	rc=$?
	msg "a writer in a 16 MiB cgroup: exit $rc, $(tail -n 1 /tmp/out)"
	[ $rc -lt 128 ] || fail "the writer was killed (exit $rc) instead of getting ENOMEM"
	grep -q '^# ended: ENOMEM ' /tmp/out || fail "expected the writes to end with ENOMEM, got: $(cat /tmp/out)"
	stored=$(size_of 3)
	charged=$(cat $cg/scullv/memory.current)
	msg "stored $stored bytes; cgroup memory.current $before -> $charged"
	[ "$stored" -gt 0 ] && [ "$stored" -lt $((16 * MB)) ] ||
		fail "stored bytes: expected between 0 and 16 MiB, got $stored"
	[ $((charged - before)) -ge $((stored * 9 / 10)) ] ||
		fail "memory.current grew by $((charged - before)), less than the $stored bytes stored"
	: >/dev/scullv3
	after=$(cat $cg/scullv/memory.current)
	msg "after trim: memory.current $after"
	[ "$after" -lt $((charged - stored * 9 / 10)) ] || fail "trim did not uncharge: $after"
}

test_fault_injection() {
	dbg=/sys/kernel/debug
	[ -d $dbg/failslab ] && [ -d $dbg/fail_page_alloc ] && [ -e /proc/self/fail-nth ] ||
		return $KSFT_SKIP
	load || return
	# /proc/thread-self/fail-nth picks the one call to fail, in the writing task only;
	# probability stays 0, so nothing else fails. verbose=0 keeps the log quiet.
	for f in failslab fail_page_alloc; do
		echo 0 >$dbg/$f/verbose
		echo N >$dbg/$f/ignore-gfp-wait
	done
	echo N >$dbg/fail_page_alloc/ignore-gfp-highmem
	echo 0 >$dbg/fail_page_alloc/min-order
	scullv-tool fault --dev /dev/scullv0 --quantum $QUANTUM --itemsize $ITEM
}

test_kmemleak() {
	kml=/sys/kernel/debug/kmemleak
	[ -e $kml ] || return $KSFT_SKIP
	echo clear >$kml
	load || return
	dd if=/dev/urandom of=/dev/scullv0 bs=64k count=40 2>/dev/null
	printf x | dd of=/dev/scullv1 bs=1 seek=$((ITEM + 3)) 2>/dev/null
	scullv-tool mmap --dev /dev/scullv2 --order 0 >/dev/null || true
	cat /proc/scullvmem >/dev/null
	rmmod scullv || fail "rmmod failed"
	sleep 6
	echo scan >$kml
	echo scan >$kml
	echo scan >$kml
	if grep -q scullv $kml; then
		sed 's/^/#   /' $kml | head -n 40
		fail "kmemleak reports objects allocated by scullv"
	fi
}

# Loads with the nth allocation of the load failing, for n = 1, 2, ... until a load has no
# failure left to inject: after each failed load nothing of the module remains; the last load
# works; rmmod leaves nothing to kmemleak. The loads are init_module() calls of scullv-tool
# load-walk, which reads fail-nth back after each (see there why not "exec insmod"). The walk
# starts after the kernel's allocations that come before it parses the parameters (found with
# an unparsable value, which the kernel rejects before any code of the module runs): from n=1
# it takes a third longer (62 s against 48 s on the debug kernel under TCG), and nothing of
# the module runs in that stretch.
test_load_failure_walk() {
	dbg=/sys/kernel/debug
	kml=$dbg/kmemleak
	[ "$FLAVOUR" = debug ] && [ -d $dbg/failslab ] && [ -e /proc/self/fail-nth ] && [ -e $kml ] ||
		return "$KSFT_SKIP"
	unload
	# Only failslab: fail_page_alloc back to ignoring sleeping allocations (an earlier test may
	# have armed it), since its injected failures print allocation warnings with call traces.
	echo 0 >$dbg/failslab/verbose
	echo N >$dbg/failslab/ignore-gfp-wait
	[ ! -d $dbg/fail_page_alloc ] || echo Y >$dbg/fail_page_alloc/ignore-gfp-wait
	echo clear >$kml
	start=$(date +%s)
	scullv-tool load-walk --module "$MODULE" --max-n 3000 --start-after scullv_devs=abc \
		--absent /dev/scullv0,/dev/scullv1,/dev/scullv2,/dev/scullv3,/proc/scullvmem
	rc=$?
	echo Y >$dbg/failslab/ignore-gfp-wait
	msg "the walk took $(($(date +%s) - start)) s"
	[ $rc -eq 0 ] || fail "the load walk failed (exit $rc)"
	loaded || fail "the walk's last load left no scullv in /proc/modules"
	dd if=/dev/urandom of=/tmp/walk bs=70000 count=1 2>/dev/null
	cat /tmp/walk >/dev/scullv3 || fail "write to /dev/scullv3 after the walk failed"
	cmp /tmp/walk /dev/scullv3 || fail "/dev/scullv3 after the walk does not read back what was written"
	rmmod scullv || fail "rmmod after the walk failed"
	sleep 6
	echo scan >$kml
	echo scan >$kml
	echo scan >$kml
	if grep -q scullv $kml; then
		sed 's/^/#   /' $kml | head -n 40
		fail "kmemleak reports objects allocated by scullv or during the walk"
	fi
}

# --- runner --------------------------------------------------------------

TESTS="load_defaults bad_params good_params size_limit total_limit total_limit_bad_param
fill_all_unprivileged book_example proc_complete
devices_independent large_readback holes_and_eof append_and_trim_rules fsync rw_calls
uring_64bit uring_32bit
ioctl_64bit ioctl_32bit ioctl_unprivileged_64bit ioctl_unprivileged_32bit ioctl_load_values
mmap_order4 mmap_order0 mmap_private_whole mmap_private_inner mmap_private_two_devices
mmap_private_cow mmap_private_fork mmap_private_sigbus
differential differential_small_geometry concurrency rmmod_busy
rmmod_cycles memcg fault_injection kmemleak load_failure_walk"

skip_reason() {
	case "$1" in
	memcg) echo "no memory controller in cgroup2" ;;
	fault_injection) echo "fault injection needs the debug kernel (FAILSLAB, FAIL_PAGE_ALLOC, FAULT_INJECTION_DEBUG_FS)" ;;
	kmemleak) echo "kmemleak needs the debug kernel (DEBUG_KMEMLEAK)" ;;
	fill_all_unprivileged) echo "filling half the RAM is too slow on the debug kernel (page debugging)" ;;
	load_failure_walk) echo "the load-failure walk needs the debug kernel (FAILSLAB, FAULT_INJECTION_DEBUG_FS, DEBUG_KMEMLEAK)" ;;
	*) echo "prerequisite missing" ;;
	esac
}

filter=
while getopts t: opt; do
	case $opt in
	t) filter=$OPTARG ;;
	*) echo "usage: $0 [-t NAME-PART]" >&2; exit "$KSFT_FAIL" ;;
	esac
done

selected=
for t in $TESTS; do
	case "$t" in *"$filter"*) selected="$selected $t" ;; esac
done

ktap_print_header
[ "$(id -u)" -eq 0 ] || { ktap_skip_all "must run as root"; exit "$KSFT_SKIP"; }
[ -r "$MODULE" ] || { ktap_skip_all "no module at $MODULE"; exit "$KSFT_SKIP"; }
[ -n "$selected" ] || { ktap_skip_all "no test matches '$filter'"; exit "$KSFT_SKIP"; }
trap unload EXIT
# The module's KUnit cases run at every insmod; once per boot is enough (the host reads their
# KTAP from the kernel log), so later loads skip them.
unload
insmod "$MODULE" && rmmod scullv
[ ! -w /sys/module/kunit/parameters/filter_glob ] ||
	echo scullv_kunit_ran_at_first_load >/sys/module/kunit/parameters/filter_glob
ktap_print_msg "scullv on the $FLAVOUR kernel, $(uname -r), SEED=$SEED"
ktap_set_plan "$(echo $selected | wc -w)"
for t in $selected; do
	start=$(date +%s)
	( "test_$t" )
	rc=$?
	took=$(($(date +%s) - start))
	case $rc in
	0) ktap_test_pass "$t (${took}s)" ;;
	"$KSFT_SKIP") ktap_test_skip "$t: $(skip_reason "$t")" ;;
	*) ktap_test_fail "$t (${took}s)" ;;
	esac
done
unload
ktap_finished
