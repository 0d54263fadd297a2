# SPDX-License-Identifier: GPL-2.0
#
# Shared settings for the scullv scripts: where the cache lives, the tool
# paths every kernel make call needs, stage lines and failure messages.
# Sourced, never run.

SCULLV_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCULLV_CACHE=${SCULLV_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/scullv}
SCULLV_TOOLS=$SCULLV_CACHE/tools
SCULLV_LOGS=$SCULLV_CACHE/logs
mkdir -p "$SCULLV_CACHE" "$SCULLV_TOOLS" "$SCULLV_LOGS"

# Versions of what set-up installs; a change here rebuilds what depends on it.
BINDGEN_VERSION=0.73.2
LIBCLANG_VERSION=18.1.1
KERNEL_SERIES=7.3

export PATH="$SCULLV_TOOLS/bin:${CARGO_HOME:-${HOME:-/root}/.cargo}/bin:$PATH"
if [ -d "$SCULLV_TOOLS/venv" ]; then
	LIBCLANG_PATH=$(echo "$SCULLV_TOOLS"/venv/lib/python3*/site-packages/clang/native)
	export LIBCLANG_PATH
fi

# Root runs commands directly; anyone else goes through sudo.
if [ "$(id -u)" -eq 0 ]; then
	SUDO=()
else
	SUDO=(sudo)
fi

_stage_start=0
_stage_name=
_stage_log=

# stage NAME LOGNAME: announce a stage; its output goes to $SCULLV_LOGS/LOGNAME.log.
stage() {
	_stage_name=$1
	_stage_log=$SCULLV_LOGS/$2.log
	_stage_start=$(date +%s)
	: >"$_stage_log"
	printf '==> %s ... ' "$_stage_name"
}

stage_done() {
	printf 'done (%ss)\n' "$(($(date +%s) - _stage_start))"
}

# die MESSAGE [FIX]: say what failed, where the log is and how to fix it.
die() {
	echo
	echo "error: $1" >&2
	if [ -n "$_stage_log" ] && [ -s "$_stage_log" ]; then
		echo "  stage: $_stage_name; full log: $_stage_log" >&2
		echo "  last lines of the log:" >&2
		tail -n 15 "$_stage_log" | sed 's/^/    /' >&2
	fi
	[ -n "${2:-}" ] && echo "  fix: $2" >&2
	exit 1
}

# run CMD...: run a command of the current stage with its output in the log.
run() {
	"$@" >>"$_stage_log" 2>&1
}

# The kernel source tree that set-up unpacked (or the user's KSRC tree).
kernel_source() {
	if [ -n "${KSRC:-}" ] && [ -d "$KSRC" ]; then
		(cd "$KSRC" && pwd)
	elif [ -f "$SCULLV_CACHE/src/current" ]; then
		cat "$SCULLV_CACHE/src/current"
	fi
}

# The build directory of a kernel flavour (base or debug), keyed by its inputs.
kernel_build_dir() {
	local flavour=$1 src key
	src=$(kernel_source)
	key=$(
		{
			cat "$SCULLV_TOP/config/base.config"
			[ "$flavour" = debug ] && cat "$SCULLV_TOP/config/debug.config"
			echo "$src"
			cat "$src/.scullv-source-id" 2>/dev/null
			rustc --version
			bindgen --version 2>/dev/null
			gcc --version | head -n 1
			echo "$LIBCLANG_VERSION"
		} | sha256sum | cut -c1-12
	)
	echo "$SCULLV_CACHE/kbuild/$flavour-$key"
}

# unpack_source TARBALL ID: unpacks a kernel source tarball (one top-level folder) into
# $SCULLV_CACHE/src/ID, once; later calls with the same ID do nothing.
unpack_source() {
	local tarball=$1 dest=$SCULLV_CACHE/src/$2
	if [ ! -f "$dest/.scullv-source-id" ]; then
		rm -rf "$dest.tmp" "$dest"
		mkdir -p "$dest.tmp"
		run tar -xf "$tarball" -C "$dest.tmp" || die "could not unpack $tarball"
		mv "$dest.tmp"/* "$dest"
		rm -rf "$dest.tmp"
		echo "$2" >"$dest/.scullv-source-id"
	fi
}

# The Debian mirror this machine's apt uses (deb.debian.org on these machines).
debian_mirror() {
	grep -hE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
		/etc/apt/sources.list.d/*.list 2>/dev/null | grep -E '/debian/?( |$)' |
		sed -E 's/^URIs: *//; s/^deb +(\[[^]]*\] +)?//; s/ .*//' | head -n 1 || true
}

# apt_fetch DIR SUITE PACKAGE...: downloads the .debs of PACKAGE (name or name=version) from
# SUITE into DIR/deb through a private apt configuration in DIR, leaving the system's sources
# and lists untouched. Logs to the current stage; fails when a package is not there.
apt_fetch() {
	local dir=$1 suite=$2 mirror
	shift 2
	mirror=$(debian_mirror)
	[ -n "$mirror" ] || return 1
	mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/deb"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" \
		>"$dir/sources.list"
	local opts=(-o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" -o Debug::NoLocking=1
		-o APT::Sandbox::User=root)
	run echo "apt: $suite: $*"
	run apt-get "${opts[@]}" update || return 1
	(cd "$dir/deb" && run apt-get "${opts[@]}" download "$@")
}

# Debian's own kernel that `make check` runs (KERNEL=debian): the release, and the suite that
# has its packages (linux-binary-, linux-headers- and linux-source-).
DEBIAN_RELEASE=${DEBIAN_RELEASE:-7.3.4+deb13-amd64}
DEBIAN_KERNEL_SUITE=${DEBIAN_KERNEL_SUITE:-trixie-backports}

# Where scripts/debian-kdir.sh keeps what it makes for a Debian kernel release.
debian_dir() {
	echo "$SCULLV_CACHE/debian/$1"
}

# Kernel reports that fail a run whatever the tests said: oops, BUG, WARNING,
# lockdep, KFENCE, SLUB and kmemleak reports, panics, hangs. Injected
# allocation failures (fault-injection verbose 0 or 1) match none of these.
SPLAT_RE='Oops|BUG[: ]|WARNING:|Kernel panic|general protection fault|Call Trace:|possible circular locking|possible recursive locking|inconsistent lock state|suspected memory leak|KFENCE:|Poison overwritten|Redzone|Object padding|UBSAN:|blocked for more than|stack-protector|double fault|kernel NULL pointer'

# kernel_problems LOG: print the report lines of LOG with some context; fails
# (status 1) when there are none.
kernel_problems() {
	grep -qaE "$SPLAT_RE" "$1" || return 1
	grep -aE -B2 -A20 "$SPLAT_RE" "$1" | head -n 60
}
