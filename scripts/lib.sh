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
