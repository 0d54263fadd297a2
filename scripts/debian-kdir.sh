#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Prepares a build tree (KDIR) in which out-of-tree Rust modules build for one of
# Debian's own kernels, with Debian's own toolchain for it, and fetches that
# kernel's image for the test runner. Debian's headers package cannot build a
# Rust module (it ships no rust/ metadata), so the tree is Debian's
# linux-source with Debian's .config and Module.symvers, `modules_prepare`d.
# Everything is cached under ~/.cache/scullv/debian and made again only when
# its inputs change. The last line printed is the KDIR.
set -euo pipefail

usage() {
	cat <<'USAGE'
usage: scripts/debian-kdir.sh [--release RELEASE] [--toolchain auto|host|chroot]

Prepares a Rust-capable KDIR for Debian's kernel RELEASE (default: the running
kernel, `uname -r`; `make check` uses 7.3.4+deb13-amd64) and prints it last:

  make KDIR=<that folder>           builds scullv.ko for that kernel

It fetches (without installing) linux-headers-RELEASE, linux-binary-RELEASE and
linux-source-X.Y from Debian, checks that the toolchain is exactly the one the
kernel was built with (rustc's version text, bindgen, libclang, gcc, as the
kernel's .config records them) and stops with the packages to install if not,
then builds the tree (1 to 2 minutes on 2 cores).

  --toolchain host    use the tools on PATH (a Debian host of the kernel's own
                      release, with its rustc, bindgen, libclang and gcc)
  --toolchain chroot  use a Debian environment of the kernel's release made with
                      debootstrap in the cache (1 to 2 minutes, 1.5 GB, once);
                      needs root (unshare, chroot)
  --toolchain auto    host on a Debian host of the kernel's release, else chroot
                      (the default)

Environment: SCULLV_CACHE (default ~/.cache/scullv), DEBIAN_KERNEL_SUITE (where
the kernel's packages are; default trixie-backports).
USAGE
}

# The host's own PATH, before lib.sh puts the test kernels' tools first: with
# --toolchain host the user's tools are what is checked.
host_path=$PATH
release=
toolchain=auto
while [ $# -gt 0 ]; do
	case "$1" in
	--release) release=$2; shift ;;
	--toolchain) toolchain=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
case "$toolchain" in auto | host | chroot) ;; *) usage >&2; exit 2 ;; esac

. "$(dirname "$0")/lib.sh"
release=${release:-$(uname -r)}
[[ "$release" =~ ^([0-9]+)\.([0-9]+)\.[0-9]+\+deb([0-9]+)-[a-z0-9-]+$ ]] ||
	die "'$release' is not a Debian kernel release (like 7.3.4+deb13-amd64)" \
		"give one with --release; Debian's kernels are named X.Y.Z+debNN-FLAVOUR"
series=${BASH_REMATCH[1]}.${BASH_REMATCH[2]}
debian_version=${BASH_REMATCH[3]}
case "$debian_version" in
12) codename=bookworm ;;
13) codename=trixie ;;
14) codename=forky ;;
*) die "no Debian codename known for +deb$debian_version" "add it to scripts/debian-kdir.sh" ;;
esac
# What fetching and unpacking Debian's packages takes, on any host.
for tool in apt-get:apt dpkg:dpkg xz:xz-utils tar:tar; do
	command -v "${tool%%:*}" >/dev/null ||
		die "${tool%%:*} is missing" "apt-get install ${tool#*:}"
done
top=$(debian_dir "$release")
mkdir -p "$top"
# Real paths: the environment sees host folders at their own paths, not through symlinks.
top=$(cd "$top" && pwd -P)

# 1. The kernel's packages, unpacked: headers (.config, Module.symvers, vmlinux for BTF), the
# image, and the source of the same version.
headers=$top/headers/usr/src/linux-headers-$release
if [ ! -f "$top/.fetched" ]; then
	stage "fetching Debian's packages of $release ($DEBIAN_KERNEL_SUITE)" "debian-fetch"
	rm -rf "$top/apt" "$top/headers" "$top/binary"
	apt_fetch "$top/apt" "$DEBIAN_KERNEL_SUITE" "linux-headers-$release" "linux-binary-$release" ||
		die "linux-headers-$release or linux-binary-$release is not in $DEBIAN_KERNEL_SUITE" \
			"check the release name (apt-cache policy linux-headers-$release), or set DEBIAN_KERNEL_SUITE"
	run dpkg -x "$top"/apt/deb/linux-headers-"$release"_*.deb "$top/headers"
	run dpkg -x "$top"/apt/deb/linux-binary-"$release"_*.deb "$top/binary"
	version=$(basename "$top"/apt/deb/linux-headers-"$release"_*.deb | cut -d_ -f2)
	echo "$version" >"$top/version"
	[ -f "$headers/.config" ] && [ -f "$headers/Module.symvers" ] ||
		die "linux-headers-$release has no .config or Module.symvers"
	cp "$top/binary/usr/lib/modules/$release/vmlinuz" "$top/vmlinuz"
	rm -rf "$top/binary"
	touch "$top/.fetched"
	stage_done
fi >&2
version=$(cat "$top/version")
src_id=linux-source-$version
src=$SCULLV_CACHE/src/$src_id
if [ ! -f "$src/.scullv-source-id" ]; then
	stage "fetching and unpacking linux-source-$series $version" "debian-source"
	rm -rf "$top/apt-src"
	apt_fetch "$top/apt-src" "$DEBIAN_KERNEL_SUITE" "linux-source-$series=$version" ||
		die "linux-source-$series $version is not in $DEBIAN_KERNEL_SUITE"
	run dpkg -x "$top"/apt-src/deb/linux-source-"$series"_*.deb "$top/apt-src/x"
	unpack_source "$top/apt-src/x/usr/src/linux-source-$series.tar.xz" "$src_id"
	rm -rf "$top/apt-src"
	stage_done
fi >&2

src=$(cd "$src" && pwd -P)

# What the kernel was built with, as its .config and Debian's make variables record it.
kconfig() {
	sed -n "s/^$1=\"\\{0,1\\}\\([^\"]*\\)\"\\{0,1\\}\$/\\1/p" "$headers/.config"
}
want_rustc=$(kconfig CONFIG_RUSTC_VERSION_TEXT)
want_bindgen=$(kconfig CONFIG_BINDGEN_VERSION_TEXT)
want_cc=$(kconfig CONFIG_CC_VERSION_TEXT)
want_llvm=$(kconfig CONFIG_RUSTC_LLVM_MAJOR_VERSION)
[ -n "$want_rustc" ] || die "Debian's $release is built without Rust (no CONFIG_RUSTC_VERSION_TEXT)" \
	"Rust modules need a kernel with CONFIG_RUST=y"
cc=${want_cc%% *}
arch=$(sed -n 's/^override ARCH = //p' "$headers/.kernelvariables")
cross=$(sed -n 's/^override CROSS_COMPILE = //p' "$headers/.kernelvariables")
# Host programs too: the environment has no plain `gcc`.
make_vars=(ARCH="${arch:-x86}" CROSS_COMPILE="$cross" CC="$cc" HOSTCC="$cc")
rustc_version=$(echo "$want_rustc" | cut -d' ' -f2)
gcc_package=${cc#"$cross"}
packages=(rustc rust-src bindgen "libclang-$want_llvm-dev" "libclang1-$want_llvm" "$gcc_package"
	binutils make flex bison bc libelf-dev libssl-dev openssl dwarves kmod python3)

# 2. The toolchain environment: the host's tools, or a chroot of the kernel's Debian release.
if [ "$toolchain" = auto ]; then
	host_id=$(. /etc/os-release 2>/dev/null && echo "${ID:-}:${VERSION_ID:-}")
	if [ "$host_id" = "debian:$debian_version" ]; then toolchain=host; else toolchain=chroot; fi
fi
if [ "$toolchain" = chroot ]; then
	env_key=$(echo "$codename ${packages[*]}" | sha256sum | cut -c1-12)
	env_dir=$SCULLV_CACHE/debian/env-$codename-$env_key
	if [ ! -f "$env_dir/.scullv-ready" ]; then
		stage "making a Debian $codename environment for its toolchain (debootstrap, 1 to 2 minutes)" "debian-env"
		[ "$(id -u)" -eq 0 ] || die "the $codename environment needs root (debootstrap, chroot)" \
			"run as root, or on a Debian $debian_version host use --toolchain host"
		if ! command -v debootstrap >/dev/null; then
			run apt-get install -y --no-install-recommends debootstrap ||
				die "could not install debootstrap" "apt-get install debootstrap"
		fi
		[ -f "/usr/share/debootstrap/scripts/$codename" ] ||
			die "this debootstrap does not know $codename" "install a newer debootstrap"
		rm -rf "$env_dir"
		mkdir -p "$env_dir"
		run debootstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
			"$codename" "$env_dir/root.tmp" "$(debian_mirror)" ||
			die "debootstrap of $codename failed"
		mv "$env_dir/root.tmp" "$env_dir/root"
		# Runs a command in the environment with the named host folders visible at their own
		# paths (and those of M= and MO= arguments, and the current folder). The mounts live in
		# a private mount namespace and go away with the command.
		cat >"$env_dir/enter" <<'ENTER'
#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Made by scullv's scripts/debian-kdir.sh. usage: enter [--bind DIR]... -- COMMAND...
set -euo pipefail
if [ -z "${SCULLV_IN_NAMESPACE:-}" ]; then
	SCULLV_IN_NAMESPACE=1 exec unshare --mount --propagation private -- "$0" "$@"
fi
root=$(dirname "$(readlink -f "$0")")/root
dirs=("$PWD")
while [ "$1" = --bind ]; do dirs+=("$2"); shift 2; done
[ "$1" = -- ] && shift
for a in "$@"; do case "$a" in M=/* | MO=/*) mkdir -p "${a#*=}"; dirs+=("${a#*=}") ;; esac; done
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
for d in "${dirs[@]}"; do readlink -f "$d"; done | sort -u | while IFS= read -r d; do
	mkdir -p "$root$d"
	mount --bind "$d" "$root$d"
done
exec chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
	/bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$PWD" "$@"
ENTER
		chmod +x "$env_dir/enter"
		touch "$env_dir/.scullv-ready"
		stage_done
	fi >&2
	in_env() { "$env_dir/enter" --bind "$src" --bind "$top" -- "$@"; }
	env_id="$codename environment $env_key"
else
	in_env() { env PATH="$host_path" "$@"; }
	env_id="host tools"
fi

# 3. The toolchain must be the kernel's own: Rust symbols carry a hash of rustc's version text,
# and a module built by another rustc does not load.
have() { in_env sh -c "$1" 2>/dev/null | head -n 1 || true; }
got_rustc=$(have 'rustc --version')
got_bindgen=$(have 'bindgen --version')
got_cc=$(have "$cc --version")
got_llvm=$(have "bindgen '$src/scripts/rust_is_available_bindgen_libclang.h' 2>&1 |
	sed -n 's/.*clang version \\([0-9]*\\)\\..*/\\1/p'")
mismatch=()
[ "$got_rustc" = "$want_rustc" ] || mismatch+=("rustc: the kernel's is '$want_rustc', found '${got_rustc:-none}'")
[ -z "$want_bindgen" ] || [ "$got_bindgen" = "$want_bindgen" ] ||
	mismatch+=("bindgen: the kernel's is '$want_bindgen', found '${got_bindgen:-none}'")
[ "$got_llvm" = "$want_llvm" ] ||
	mismatch+=("libclang: the kernel's rustc uses LLVM $want_llvm, bindgen found libclang '${got_llvm:-none}'")
[ "$got_cc" = "$want_cc" ] || mismatch+=("$cc: the kernel's is '$want_cc', found '${got_cc:-none}'")
if [ ${#mismatch[@]} -gt 0 ]; then
	{
		echo "error: the toolchain ($env_id) is not the one Debian built $release with:"
		printf '  %s\n' "${mismatch[@]}"
		echo "  fix: install Debian $debian_version ($codename)'s packages, and put them first on PATH:"
		echo "         apt-get install ${packages[*]}"
		echo "       (rustc $rustc_version: '$want_rustc'); or, on another host, use"
		echo "       --toolchain chroot for a $codename environment of its own"
	} >&2
	exit 1
fi

# 4. The tree: Debian's .config and Module.symvers over the same source, out of tree (O=).
key=$(
	{
		echo "$version $release $src_id $env_id"
		echo "$want_rustc $want_bindgen $want_cc"
		cat "$headers/.config" "$headers/Module.symvers" | sha256sum
	} | sha256sum | cut -c1-12
)
kdir=$top/kdir-$key
if [ ! -f "$kdir/.scullv-built" ]; then
	{
		stage "configuring a build tree for $release" "debian-kdir-config"
		rm -rf "$kdir"
		mkdir -p "$kdir"
		cp "$headers/.config" "$headers/Module.symvers" "$kdir/"
		kmake=(make -C "$src" O="$kdir" "${make_vars[@]}" KERNELRELEASE="$release")
		run in_env "${kmake[@]}" olddefconfig || die "make olddefconfig failed"
		# The same toolchain gives the same configuration, byte for byte.
		if ! cmp -s "$headers/.config" "$kdir/.config"; then
			diff "$headers/.config" "$kdir/.config" >>"$_stage_log" || true
			die "the configuration differs from Debian's after olddefconfig" \
				"the toolchain differs from Debian's in a way the checks missed; see the diff in the log"
		fi
		stage_done
		stage "building the tree's Rust metadata and scripts (modules_prepare, 1 to 2 minutes)" \
			"debian-kdir-build"
		run in_env "${kmake[@]}" -j"$(nproc)" modules_prepare || die "make modules_prepare failed"
		# Debian's vmlinux, so that modules get BTF against it as Debian's own do.
		cp "$headers/vmlinux" "$kdir/vmlinux"
		touch "$kdir/.scullv-built"
		stage_done
	} >&2
fi
# The tree's make, with Debian's flags in that toolchain; the Makefile uses it for KDIR=<tree>.
# Made on every run, so that it follows the environment.
{
	echo '#!/bin/sh'
	echo '# SPDX-License-Identifier: GPL-2.0'
	echo "# Made by scullv's scripts/debian-kdir.sh: make for this tree ($release) with"
	echo "# Debian's flags and toolchain ($env_id)."
	if [ "$toolchain" = chroot ]; then
		printf 'exec %q --bind %q --bind %q -- ' "$env_dir/enter" "$src" "$top"
	else
		printf 'PATH=%q exec ' "$host_path"
	fi
	printf '%q ' make "${make_vars[@]}"
	echo '"$@"'
} >"$kdir/scullv-make.new"
chmod +x "$kdir/scullv-make.new"
mv "$kdir/scullv-make.new" "$kdir/scullv-make"
ln -sfn "$kdir" "$top/kdir"
# Trees and environments made for other inputs are of no more use.
for old in "$top"/kdir-*; do
	[ "$old" = "$kdir" ] || rm -rf "$old"
done
if [ "$toolchain" = chroot ]; then
	for old in "$SCULLV_CACHE/debian/env-$codename-"*; do
		[ "$old" = "$env_dir" ] || rm -rf "$old"
	done
fi
echo "$kdir"
