#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# rustfmt with the kernel's .rustfmt.toml and a CLIPPY=1 module build with
# warnings as errors; rustfmt and clippy on the test helper too; the README's
# benchmark block against the results it is generated from.
set -euo pipefail

if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then
	echo "usage: scripts/lint.sh"
	exit 0
fi

here=$(dirname "$0")
"$here/build-kernel.sh" base >/dev/null
. "$here/lib.sh"
src=$(kernel_source)

stage "rustfmt (the kernel's .rustfmt.toml)" lint-rustfmt
run rustfmt --check --config-path "$src/.rustfmt.toml" --edition 2021 \
	"$SCULLV_TOP"/*.rs "$SCULLV_TOP"/kernel_ext/*.rs ||
	die "rustfmt would change the module" \
		"run: rustfmt --config-path $src/.rustfmt.toml --edition 2021 *.rs kernel_ext/*.rs"
stage_done

"$here/build-module.sh" base CLIPPY=1 >/dev/null

stage "rustfmt and clippy on the test helper" lint-helper
run cargo fmt --manifest-path "$SCULLV_TOP/tests/helper/Cargo.toml" --check ||
	die "rustfmt would change the test helper" "run: cargo fmt --manifest-path tests/helper/Cargo.toml"
run cargo clippy --locked --manifest-path "$SCULLV_TOP/tests/helper/Cargo.toml" \
	--target x86_64-unknown-linux-musl --target-dir "$SCULLV_CACHE/helper-target" -- -D warnings ||
	die "clippy finds problems in the test helper"
stage_done

stage "the README's benchmark block against results/summary.md" lint-bench-readme
run "$here/bench-readme.sh" --check ||
	die "the README's benchmark block differs from what results/ makes" "run: scripts/bench-readme.sh"
stage_done
