#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds the scullv test kernel (base or debug flavour) out of tree into the
# cache, keyed by the config fragments, the source and the toolchain: a second
# call with the same inputs does nothing. Prints the build directory.
set -euo pipefail

usage() {
	cat <<'USAGE'
usage: scripts/build-kernel.sh base|debug

Merges config/base.config (and config/debug.config for debug) onto tinyconfig,
checks that every option survived (CONFIG_RUST is dropped silently when the
Rust toolchain is not found), and builds the kernel. The last line printed is
the build directory. Runs scripts/setup.sh first.
USAGE
}
case "${1:-}" in
base | debug) flavour=$1 ;;
-h | --help) usage; exit 0 ;;
*) usage >&2; exit 2 ;;
esac

"$(dirname "$0")/setup.sh" >&2
. "$(dirname "$0")/lib.sh"

src=$(kernel_source)
[ -n "$src" ] || die "no kernel source" "run scripts/setup.sh, or set KSRC"
bdir=$(kernel_build_dir "$flavour")
# kbuild/<flavour> names the current tree relatively, so that the link holds whatever path the
# cache was reached by (a private cache may share kbuild/ through a symlink).
if [ -f "$bdir/.scullv-built" ]; then
	ln -sfn "$(basename "$bdir")" "$SCULLV_CACHE/kbuild/$flavour"
	echo "$bdir"
	exit 0
fi

frags=("$SCULLV_TOP/config/base.config")
[ "$flavour" = debug ] && frags+=("$SCULLV_TOP/config/debug.config")
kmake=(make -C "$src" O="$bdir")

{
	stage "configuring the $flavour kernel" "kernel-$flavour-config"
	rm -rf "$bdir"
	mkdir -p "$bdir"
	run "${kmake[@]}" rustavailable ||
		die "the kernel finds no usable Rust toolchain" "run scripts/setup.sh; see the log for what is missing"
	run "${kmake[@]}" tinyconfig || die "make tinyconfig failed"
	run "$src/scripts/kconfig/merge_config.sh" -m -O "$bdir" "$bdir/.config" "${frags[@]}" ||
		die "merging the config fragments failed"
	run "${kmake[@]}" olddefconfig || die "make olddefconfig failed"
	# Every fragment line must be in the final .config, as written.
	lost=()
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*) grep -qxF "$line" "$bdir/.config" || lost+=("$line") ;;
		"# CONFIG_"*" is not set")
			opt=${line#\# }
			opt=${opt%% *}
			grep -q "^$opt=" "$bdir/.config" && lost+=("$line")
			;;
		esac
	done < <(cat "${frags[@]}")
	[ ${#lost[@]} -eq 0 ] || die "options dropped from the $flavour kernel's .config: ${lost[*]}" \
		"an option's dependencies are missing; for CONFIG_RUST check bindgen and LIBCLANG_PATH (scripts/setup.sh)"
	stage_done

	stage "building the $flavour kernel (about 5 minutes on 2 cores)" "kernel-$flavour-build"
	# All targets, not just bzImage: external modules need Module.symvers.
	run "${kmake[@]}" -j"$(nproc)" all || die "the $flavour kernel build failed"
	touch "$bdir/.scullv-built"
	ln -sfn "$(basename "$bdir")" "$SCULLV_CACHE/kbuild/$flavour"
	stage_done
} >&2
echo "$bdir"
