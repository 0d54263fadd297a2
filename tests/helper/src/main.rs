// SPDX-License-Identifier: GPL-2.0

//! `scullv-tool`: the checks of the scullv device that a shell cannot make, one group of checks
//! a subcommand, run inside the test guest by `tests/scullv_test.sh`.
//!
//! Each subcommand prints diagnostics as `# ` lines and exits 0 when every check passed, 1 after
//! a `# FAIL: ` line saying what was expected and what came, or 4 (KSFT_SKIP) after a `# SKIP: `
//! line naming the missing prerequisite.

mod bench;
mod concurrent;
mod dev;
mod diff;
mod fault;
mod fill;
mod glue;
mod ioctl;
mod loadwalk;
mod mmap;
mod mmap_private;
mod rw;
mod stream;
#[cfg(any(target_pointer_width = "64", io_uring_skip_arch_check))]
mod uring;
mod util;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "scullv-tool",
    version,
    about = "Checks of the scullv device that a shell cannot make"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// As root: all 13 ioctl commands, EINVAL, EFAULT, ENOTTY, and the geometry a trimmed
    /// device takes (trims the device; RESETs at the end)
    Ioctl(ioctl::Args),
    /// As root, then as --uid: EPERM for every changing command, Q and G work, read and write
    /// work, /proc/scullvmem shows only hashed pointers (writes 200 kB at offset 0)
    IoctlUnpriv(ioctl::UnprivArgs),
    /// As root: a mapping of the device at --order, SIGBUS, zeroed tails, refused trims, mapping
    /// counts across fork and partial munmap, read()/write() on a mapping of the device
    Mmap(mmap::Args),
    /// As root: MAP_PRIVATE mappings of the device, one check a run: what they show against
    /// read(), copy-on-write, fork, refused trims, SIGBUS (trims the device)
    MmapPrivate(mmap_private::Args),
    /// Maps the page at --offset and reads it (run by `mmap`, which expects SIGBUS)
    #[command(hide = true)]
    Touch(mmap::TouchArgs),
    /// Holds a mapping of the device's first page, its file closed, for --secs
    MapHold(mmap::HoldArgs),
    /// readv/writev, preadv2/pwritev2, RWF_APPEND/RWF_NOAPPEND, O_APPEND, io_submit, sendfile,
    /// splice, fsync and lseek against a model (trims the device)
    Rw(rw::Args),
    /// io_uring READ, WRITE, READV, WRITEV, READ_FIXED and WRITE_FIXED, and 64 requests in
    /// flight, against a model and against pread()/read() (trims the device)
    #[cfg(any(target_pointer_width = "64", io_uring_skip_arch_check))]
    Uring(uring::Args),
    /// The differential test: a seeded random sequence on the device and on a tmpfs file
    Diff(diff::Args),
    /// Writers and readers of whole records on several devices at once; no torn records
    Concurrent(concurrent::Args),
    /// A seeded, position-dependent stream of --bytes on stdout, or (--check) a check of stdin
    /// against it, for moving large data through the device with dd
    Stream(stream::Args),
    /// As root: the benchmark of `make bench` against a tmpfs file; prints the results (bench.md,
    /// summary.md and throughput.svg) between `=== begin NAME ===` and `=== end NAME ===` lines
    Bench(bench::Args),
    /// Writes with the nth allocation failing (/proc/thread-self/fail-nth); the caller sets up
    /// failslab and fail_page_alloc
    Fault(fault::Args),
    /// write() calls of --block bytes at the end of the device until one fails, each result
    /// printed; optionally as an unprivileged --uid
    Fill(fill::Args),
    /// As root: loads the module with the nth allocation of finit_module() failing, n = 1, 2,
    /// ... until a load has no failure left to inject; nothing may remain after a failed load
    /// (the caller sets up failslab); leaves the module loaded
    LoadWalk(loadwalk::Args),
}

fn main() -> ExitCode {
    let result = match &Cli::parse().command {
        Command::Ioctl(args) => ioctl::run(args),
        Command::IoctlUnpriv(args) => ioctl::run_unpriv(args),
        Command::Mmap(args) => mmap::run(args),
        Command::MmapPrivate(args) => mmap_private::run(args),
        Command::Touch(args) => mmap::touch(args),
        Command::MapHold(args) => mmap::hold(args),
        Command::Rw(args) => rw::run(args),
        #[cfg(any(target_pointer_width = "64", io_uring_skip_arch_check))]
        Command::Uring(args) => uring::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Concurrent(args) => concurrent::run(args),
        Command::Fault(args) => fault::run(args),
        Command::Fill(args) => fill::run(args),
        Command::LoadWalk(args) => loadwalk::run(args),
        Command::Stream(args) => stream::run(args),
        Command::Bench(args) => bench::run(args),
    };
    ExitCode::from(util::report(result))
}
