// SPDX-License-Identifier: GPL-2.0

//! The `fill` subcommand: write() calls of one block size at the end of the device until one
//! fails (or a count is reached), each call's result printed, optionally as an unprivileged user.
//! The caller (a shell test of the total limit) says what the results must be.

use std::path::PathBuf;

use rustix::fs::{OFlags, SeekFrom};
use rustix::io::Errno;

use crate::dev::DevArg;
use crate::ioctl::drop_privileges;
use crate::util::{diag, errno_name, open, Ctx, Res};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    dev: DevArg,
    /// Bytes each write() call asks to write
    #[arg(long, default_value_t = 1 << 20)]
    block: usize,
    /// Stop after this many calls [default: only at the first failed call]
    #[arg(long)]
    max_writes: Option<u64>,
    /// Stop once this many bytes are written (the last call asks for what is left)
    #[arg(long)]
    max_bytes: Option<u64>,
    /// Write the bytes of this file at the same offsets as the device's (zeros past its end)
    /// [default: zeros]
    #[arg(long)]
    data: Option<PathBuf>,
    /// Drop to this uid (gid the same, no supplementary groups) before opening the device
    #[arg(long)]
    uid: Option<u32>,
    /// Print only the calls that did not write the whole block, and the summary
    #[arg(long)]
    quiet: bool,
    /// When the calls end, before printing or freeing anything, move this process into the
    /// cgroup of this `cgroup.procs` file (opened at the start), and print a short call only
    /// then: a writer in a cgroup that the device has filled must not need memory charged there
    /// (a page for its stack or heap, a VMA split when it unmaps), which only the cgroup's OOM
    /// killer could give it
    #[arg(long)]
    leave_cgroup: Option<PathBuf>,
}

/// Moves this process into another cgroup through its `cgroup.procs`, opened before the writes.
struct Leave {
    procs: Option<rustix::fd::OwnedFd>,
    pid: String,
}

impl Leave {
    fn new(path: Option<&PathBuf>) -> Res<Self> {
        let procs = match path {
            Some(path) => {
                Some(open(path, OFlags::WRONLY).ctx(format_args!("open {}", path.display()))?)
            }
            None => None,
        };
        let pid = rustix::process::getpid().as_raw_nonzero().to_string();
        Ok(Self { procs, pid })
    }

    /// Whether the process is still to leave its cgroup.
    fn armed(&self) -> bool {
        self.procs.is_some()
    }

    /// Leaves the cgroup, once; nothing here allocates.
    fn now(&mut self) -> Res<()> {
        if let Some(procs) = self.procs.take() {
            rustix::io::write(&procs, self.pid.as_bytes()).ctx("write to cgroup.procs")?;
        }
        Ok(())
    }
}

/// Runs the `fill` subcommand. Prints `# write N at POS (LEN bytes): RESULT` for each call
/// (RESULT a count or an errno name) and `# ended: REASON after N writes, B bytes written`.
pub fn run(args: &Args) -> Res<()> {
    let dev = &args.dev.dev;
    let data = match &args.data {
        Some(path) => std::fs::read(path).ctx(format_args!("read {}", path.display()))?,
        None => Vec::new(),
    };
    if let Some(uid) = args.uid {
        drop_privileges(uid, uid)?;
    }
    let who = args
        .uid
        .map_or(String::new(), |uid| format!(" as uid {uid}"));
    // O_RDWR does not trim; the calls go on from the device's current size.
    let fd = open(dev, OFlags::RDWR).ctx(format_args!("open {} O_RDWR{who}", dev.display()))?;
    let mut pos = rustix::fs::seek(&fd, SeekFrom::End(0)).ctx("lseek(SEEK_END)")?;
    let mut leave = Leave::new(args.leave_cgroup.as_ref())?;
    let mut short = None;
    let mut block = Vec::with_capacity(args.block);
    let (mut calls, mut written) = (0u64, 0u64);
    let reason = loop {
        if args.max_writes.is_some_and(|max| calls == max) {
            break "the last of --max-writes calls".to_string();
        }
        let len = match args.max_bytes {
            Some(max) if written >= max => break "--max-bytes written".to_string(),
            Some(max) => args.block.min((max - written) as usize),
            None => args.block,
        };
        block.resize(len, 0);
        block.fill(0);
        let from = (pos as usize).min(data.len());
        let to = (pos as usize + block.len()).min(data.len());
        block[..to - from].copy_from_slice(&data[from..to]);
        calls += 1;
        match rustix::io::write(&fd, &block) {
            Ok(0) => {
                leave.now()?;
                diag!("write {calls} at {pos} ({} bytes): 0", block.len());
                break "write() returned 0".to_string();
            }
            Ok(n) => {
                if leave.armed() && n != block.len() {
                    // The next call must still be made from the cgroup; printing waits.
                    short = Some((calls, pos, block.len(), n));
                } else if !args.quiet || n != block.len() {
                    diag!("write {calls} at {pos} ({} bytes): {n}", block.len());
                }
                pos += n as u64;
                written += n as u64;
            }
            Err(Errno::INTR) => calls -= 1,
            Err(e) => {
                leave.now()?;
                diag!(
                    "write {calls} at {pos} ({} bytes): {}",
                    block.len(),
                    errno_name(e)
                );
                break errno_name(e);
            }
        }
    };
    leave.now()?;
    if let Some((calls, pos, len, n)) = short {
        diag!("write {calls} at {pos} ({len} bytes): {n}");
    }
    diag!(
        "ended: {reason} after {calls} writes{who}, {written} bytes written to {}",
        dev.display()
    );
    Ok(())
}
