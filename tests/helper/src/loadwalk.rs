// SPDX-License-Identifier: GPL-2.0

//! The `load-walk` subcommand: loads the module with init_module() with the nth allocation of
//! the call made to fail (`/proc/thread-self/fail-nth`), for n = 1, 2, 3, ..., until a load runs
//! out of allocations to fail. After every failed load nothing of the module may remain. The
//! caller sets up failslab (and only failslab) and checks kmemleak afterwards.
//!
//! The loads are made by this process itself, not by `sh -c 'echo N >/proc/self/fail-nth; exec
//! insmod'`: there the count starts with the shell's exec of insmod (the search along PATH
//! included), several of whose failures the shell or the kernel absorb, so the first load that
//! succeeds says nothing about the module's init; here the count starts in init_module() and
//! reading fail-nth back tells whether the failure was injected at all. init_module(), not
//! finit_module(): the kernel reads a module file into a vmalloc buffer without __GFP_NOWARN,
//! and a failure injected there prints an allocation warning with a call trace.
//!
//! With `--start-after PARAMS` the walk skips the allocations the kernel makes before the
//! module's code runs: a load with PARAMS must fail with EINVAL before the module allocates
//! anything (an invalid parameter); walking down from the number of points that load passes,
//! the first n at which it fails otherwise (ENOMEM) is an allocation of the kernel's load
//! before the point PARAMS stops it, so the walk starts just after it.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Instant;

use rustix::fs::OFlags;
use rustix::io::Errno;

use crate::fault::{fail_nth_path, read_fail_nth};
use crate::util::{diag, ensure, errno_name, fail, open, Ctx, Outcome, Res};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The module file
    #[arg(long)]
    module: PathBuf,
    /// The module's name, as /proc/modules lists it
    #[arg(long, default_value = "scullv")]
    name: String,
    /// The module parameters to load with
    #[arg(long, default_value = "")]
    params: String,
    /// Paths that must not exist after a failed load (the module's nodes and /proc files)
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "/dev/scullv0,/proc/scullvmem"
    )]
    absent: Vec<PathBuf>,
    /// Stop with a failure if a load still fails at this n
    #[arg(long, default_value_t = 3000)]
    max_n: u32,
    /// Parameters that make the load fail with EINVAL before the module allocates anything;
    /// the walk starts after the last allocation before that point
    #[arg(long)]
    start_after: Option<String>,
}

/// A large n: a load never reaches it, so the count left tells how many points it passed.
const COUNT_ALL: u32 = 1_000_000;

/// Whether /proc/modules lists the module.
fn listed(name: &str) -> Res<bool> {
    let modules = std::fs::read_to_string("/proc/modules").ctx("read /proc/modules")?;
    Ok(modules.lines().any(|l| l.split(' ').next() == Some(name)))
}

/// What remains of the module after a failed load, if anything.
fn leftovers(args: &Args) -> Res<Vec<String>> {
    let mut left: Vec<String> = args
        .absent
        .iter()
        .chain([PathBuf::from(format!("/sys/module/{}", args.name))].iter())
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if listed(&args.name)? {
        left.push("its line in /proc/modules".into());
    }
    Ok(left)
}

/// Unloads the module.
fn unload(name: &str) -> Res<()> {
    let cname = CString::new(name).map_err(|_| Outcome::Fail(format!("bad name {name:?}")))?;
    rustix::system::delete_module(&cname, 0).ctx(format_args!("rmmod {name}"))
}

/// Loads the module with fail-nth armed at `n`; returns the result and what fail-nth reads
/// after it (0: the armed failure was injected).
fn load_at(
    nth: &OwnedFd,
    module: &[u8],
    params: &CString,
    n: u32,
) -> Res<(Result<(), Errno>, u32)> {
    rustix::io::pwrite(nth, n.to_string().as_bytes(), 0).ctx("write fail-nth")?;
    let result = rustix::system::init_module(module, params);
    let left = read_fail_nth(nth)?;
    if left != 0 {
        rustix::io::pwrite(nth, b"0", 0).ctx("write fail-nth")?;
    }
    Ok((result, left))
}

/// The n to start the walk at: one past the last n at which a load with `early` (which fails
/// with EINVAL) fails otherwise.
fn start_after(nth: &OwnedFd, module: &[u8], early: &CString, shown: &str, name: &str) -> Res<u32> {
    let (result, left) = load_at(nth, module, early, COUNT_ALL)?;
    match result {
        Err(Errno::INVAL) => {}
        Ok(()) => {
            unload(name)?;
            fail!("a load with {shown}: expected EINVAL, it loaded");
        }
        Err(e) => fail!(
            "a load with {shown}: expected EINVAL, got {}",
            errno_name(e)
        ),
    }
    let points = COUNT_ALL - left;
    for n in (1..=points).rev() {
        let (result, left) = load_at(nth, module, early, n)?;
        match result {
            Err(Errno::INVAL) => {}
            Ok(()) => {
                unload(name)?;
                fail!("n={n}: a load with {shown}: expected it to fail, it loaded");
            }
            Err(e) => {
                ensure!(
                    left == 0,
                    "n={n}: a load with {shown} failed with {} with no failure injected",
                    errno_name(e)
                );
                diag!(
                    "a load with {shown} passes {points} points and fails with EINVAL; with \
                     n={n} it fails with {} instead: the walk starts at n={}",
                    errno_name(e),
                    n + 1
                );
                return Ok(n + 1);
            }
        }
    }
    diag!("a load with {shown} fails with EINVAL at every n: the walk starts at n=1");
    Ok(1)
}

/// Runs the `load-walk` subcommand; leaves the module loaded by the last (complete) load.
pub fn run(args: &Args) -> Res<()> {
    let Some(nth_path) = fail_nth_path() else {
        return Err(Outcome::Skip(
            "no /proc/thread-self/fail-nth (CONFIG_FAULT_INJECTION)".into(),
        ));
    };
    ensure!(
        !listed(&args.name)?,
        "{} is loaded already: the walk needs it unloaded",
        args.name
    );
    let nth = open(&nth_path, OFlags::RDWR).ctx(nth_path.display())?;
    let module = std::fs::read(&args.module).ctx(args.module.display())?;
    let cstring =
        |s: &str| CString::new(s).map_err(|_| Outcome::Fail(format!("{s:?} holds a NUL")));
    let params = cstring(&args.params)?;

    // A complete load first, counting the points a load passes.
    let (result, left) = load_at(&nth, &module, &params, COUNT_ALL)?;
    result.ctx(format_args!(
        "load {} with no failure",
        args.module.display()
    ))?;
    ensure!(
        left != 0,
        "a load counted {COUNT_ALL} allocations: fail-nth did not count"
    );
    let points = COUNT_ALL - left;
    unload(&args.name)?;
    diag!("a complete load passes {points} points where failslab may fail an allocation");

    let start = Instant::now();
    let first = match &args.start_after {
        Some(early) => start_after(&nth, &module, &cstring(early)?, early, &args.name)?,
        None => 1,
    };
    let mut errnos: BTreeMap<String, u32> = BTreeMap::new();
    let (mut failed, mut absorbed) = (0u32, 0u32);
    let mut n = first;
    loop {
        if n > args.max_n {
            fail!(
                "loads still failed at n={}: expected one to run out of allocations to fail",
                args.max_n
            );
        }
        let (result, left) = load_at(&nth, &module, &params, n)?;
        let injected = left == 0;
        match result {
            Ok(()) if !injected => break,
            Ok(()) => {
                // The kernel absorbed the failure (kmemleak's metadata falls back to its pool,
                // for one): the module loaded; unload it and go on.
                absorbed += 1;
                unload(&args.name)?;
            }
            Err(e) => {
                ensure!(
                    injected,
                    "n={n}: the load failed with {} but no failure was injected",
                    errno_name(e)
                );
                failed += 1;
                *errnos.entry(errno_name(e)).or_default() += 1;
                let left = leftovers(args)?;
                ensure!(
                    left.is_empty(),
                    "n={n}: after a load that failed with {}: expected nothing of {} left, found {}",
                    errno_name(e),
                    args.name,
                    left.join(", ")
                );
            }
        }
        n += 1;
    }
    let errnos: Vec<String> = errnos.iter().map(|(e, c)| format!("{c} {e}")).collect();
    diag!(
        "n={first}..{}: {failed} loads failed ({}), {absorbed} loaded despite the injected \
         failure; n={n} loaded with no failure left to inject, after {:.1} s",
        n - 1,
        errnos.join(", "),
        start.elapsed().as_secs_f64()
    );
    ensure!(
        failed > 0,
        "no load failed: is failslab set up (ignore-gfp-wait=N)?"
    );
    if n != points + 1 {
        diag!(
            "the walk ended at n={n}, not at {} (the points the first complete load passed, plus \
             one): the count varies from load to load",
            points + 1
        );
    }
    if let Some(first) = args.absent.first() {
        ensure!(
            first.exists(),
            "the last load succeeded but {} does not exist",
            first.display()
        );
    }
    Ok(())
}
