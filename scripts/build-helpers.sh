#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds the static userspace test helper (tests/helper) for the guest, as a
# 64-bit and a 32-bit binary. Prints the folder that holds scullv-tool and
# scullv-tool32.
set -euo pipefail

if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then
	echo "usage: scripts/build-helpers.sh"
	echo "Builds tests/helper for x86_64-unknown-linux-musl and i686-unknown-linux-musl."
	exit 0
fi

"$(dirname "$0")/setup.sh" >&2
. "$(dirname "$0")/lib.sh"
target=$SCULLV_CACHE/helper-target
out=$SCULLV_CACHE/helper-bin
mkdir -p "$out"
{
	stage "building the test helper (64-bit and 32-bit, static)" helpers
	# The io-uring crate's bindings are generated for x86_64 and it refuses other targets
	# unless told; io_uring's ABI structs are laid out the same for a 32-bit process (fixed-size
	# fields only), which uring_32bit checks against the kernel.
	export CARGO_TARGET_I686_UNKNOWN_LINUX_MUSL_RUSTFLAGS="--cfg io_uring_skip_arch_check"
	for t in x86_64-unknown-linux-musl i686-unknown-linux-musl; do
		run cargo build --locked --release --manifest-path "$SCULLV_TOP/tests/helper/Cargo.toml" \
			--target "$t" --target-dir "$target" ||
			die "the test helper does not build for $t"
	done
	cp "$target/x86_64-unknown-linux-musl/release/scullv-tool" "$out/scullv-tool"
	cp "$target/i686-unknown-linux-musl/release/scullv-tool" "$out/scullv-tool32"
	stage_done
} >&2
echo "$out"
