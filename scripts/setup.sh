#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Installs everything scullv needs to build a Rust-enabled Linux 7.3 kernel,
# the module and the test helpers, and to boot the result in QEMU. Idempotent:
# each step checks first and does nothing when its piece is already there.
set -euo pipefail

usage() {
	cat <<'USAGE'
usage: scripts/setup.sh [--help]

Installs, where missing:
  - Debian packages: kernel build tools, QEMU, static busybox
  - rust-src and the musl targets for the static test helpers (rustup)
  - bindgen-cli (cargo install) and libclang (PyPI wheel, in a venv)
  - the Linux 7.3 source (Debian's linux-source-7.3 package)

Environment:
  KSRC=DIR|TARBALL   use this kernel source instead of downloading one
  SCULLV_CACHE=DIR   where tools, sources and builds are kept
                     (default: ~/.cache/scullv)
USAGE
}
[ "${1:-}" = --help ] || [ "${1:-}" = -h ] && { usage; exit 0; }

. "$(dirname "$0")/lib.sh"

packages=(make gcc flex bison bc libelf-dev libssl-dev cpio xz-utils perl
	python3-venv qemu-system-x86 busybox-static kmod)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	stage "installing Debian packages: ${missing[*]}" apt
	if [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null; then
		die "installing packages needs root" \
			"run as root, or set up sudo, or install them yourself: apt-get install ${missing[*]}"
	fi
	run "${SUDO[@]}" apt-get update ||
		die "apt-get update failed" "check that the Debian mirror in /etc/apt/sources.list* is reachable"
	run "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y \
		--no-install-recommends "${missing[@]}" ||
		die "apt-get install failed" "run: apt-get install --no-install-recommends ${missing[*]}"
	stage_done
fi

if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src' ||
	! rustup target list --installed | grep -q x86_64-unknown-linux-musl ||
	! rustup target list --installed | grep -q i686-unknown-linux-musl; then
	stage "adding rust-src and the musl targets (rustup)" rustup
	run rustup component add rust-src ||
		die "rustup could not add rust-src" "check that rustup can reach its server"
	run rustup target add x86_64-unknown-linux-musl i686-unknown-linux-musl ||
		die "rustup could not add the musl targets" "check that rustup can reach its server"
	stage_done
fi

if ! bindgen --version 2>/dev/null | grep -q "$BINDGEN_VERSION"; then
	stage "building bindgen-cli $BINDGEN_VERSION (about 3 minutes)" bindgen
	run cargo install --locked --root "$SCULLV_TOOLS" --version "$BINDGEN_VERSION" bindgen-cli ||
		die "cargo install bindgen-cli failed" "check that crates.io is reachable"
	stage_done
fi

if ! compgen -G "$SCULLV_TOOLS/venv/lib/python3*/site-packages/libclang-$LIBCLANG_VERSION.dist-info" >/dev/null ||
	! compgen -G "$SCULLV_TOOLS/venv/lib/python3*/site-packages/clang/native/libclang.so" >/dev/null; then
	stage "installing libclang $LIBCLANG_VERSION (PyPI) in a venv" libclang
	run python3 -m venv "$SCULLV_TOOLS/venv" ||
		die "could not create a Python venv" "install python3-venv"
	run "$SCULLV_TOOLS/venv/bin/pip" install "libclang==$LIBCLANG_VERSION" ||
		die "pip install libclang failed" "check that PyPI is reachable"
	stage_done
fi

# The kernel source: KSRC (a tree or a tarball), or Debian's linux-source-7.3.
src_root=$SCULLV_CACHE/src
mkdir -p "$src_root"

if [ -n "${KSRC:-}" ]; then
	if [ -d "$KSRC" ]; then
		[ -f "$KSRC/Makefile" ] && [ -d "$KSRC/rust/kernel" ] ||
			die "KSRC=$KSRC is not a kernel tree with Rust support" "point KSRC at a Linux 7.3 source tree"
		(cd "$KSRC" && pwd) >"$src_root/current"
	elif [ -f "$KSRC" ]; then
		stage "unpacking $KSRC" source
		id=tarball-$(sha256sum "$KSRC" | cut -c1-12)
		unpack_source "$KSRC" "$id"
		echo "$src_root/$id" >"$src_root/current"
		stage_done
	else
		die "KSRC=$KSRC is neither a folder nor a file" "set KSRC to a kernel tree or tarball"
	fi
elif [ ! -f "$src_root/current" ] || [ ! -f "$(cat "$src_root/current")/Makefile" ]; then
	stage "downloading the Linux $KERNEL_SERIES source (Debian's linux-source-$KERNEL_SERIES)" source
	# A private apt configuration: the system's own sources stay untouched. The
	# mirror is the one the machine already uses for Debian.
	[ -n "$(debian_mirror)" ] || die "no Debian mirror found in /etc/apt/sources.list*" \
		"download a Linux $KERNEL_SERIES tarball and run again with KSRC=/path/to/linux-$KERNEL_SERIES.tar.xz"
	apt_dir=$SCULLV_CACHE/apt
	found=
	for suite in trixie-backports sid experimental; do
		rm -rf "$apt_dir"
		if apt_fetch "$apt_dir" "$suite" "linux-source-$KERNEL_SERIES"; then
			found=$suite
			break
		fi
	done
	deb=$(ls "$apt_dir"/deb/linux-source-"$KERNEL_SERIES"_*.deb 2>/dev/null | head -n 1)
	[ -n "$found" ] && [ -n "$deb" ] || die "linux-source-$KERNEL_SERIES is in none of trixie-backports, sid, experimental" \
		"download a Linux $KERNEL_SERIES tarball and run again with KSRC=/path/to/linux-$KERNEL_SERIES.tar.xz"
	run dpkg -x "$deb" "$apt_dir/x" || die "could not unpack $deb"
	version=$(basename "$deb" .deb | cut -d_ -f2)
	unpack_source "$apt_dir/x/usr/src/linux-source-$KERNEL_SERIES.tar.xz" "linux-source-$version"
	echo "$src_root/linux-source-$version" >"$src_root/current"
	rm -rf "$apt_dir"
	printf '(%s from %s) ' "$version" "$found"
	stage_done
fi
