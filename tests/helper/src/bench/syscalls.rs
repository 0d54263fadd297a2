// SPDX-License-Identifier: GPL-2.0

//! The `syscalls` section: the read and write calls of a cat-style copy at every block size.

use std::path::Path;

use rustix::fs::OFlags;

use super::io::{fill, write_all};
use super::plan::{size_name, Plan, TARGETS};
use super::results::{Calls, Results};
use super::Files;
use crate::util::{diag, ensure, open, Ctx, Res};

/// A cat-style copy of each target to /dev/null at every block size, counting the calls.
pub(super) fn copies(plan: &Plan, files: &Files, buf: &mut [u8], results: &mut Results) -> Res<()> {
    let null = open(Path::new("/dev/null"), OFlags::WRONLY).ctx("open /dev/null")?;
    for target in TARGETS {
        fill(files.path(target), plan.copy_size, buf)?;
    }
    results.copy_size = Some(plan.copy_size);
    for &bs in &plan.blocks {
        for target in TARGETS {
            let path = files.path(target);
            let src = open(path, OFlags::RDONLY).ctx(format_args!("open {}", path.display()))?;
            let mut calls = Calls::default();
            let mut copied = 0u64;
            loop {
                calls.reads += 1;
                let n = rustix::io::read(&src, &mut buf[..bs]).ctx("read")?;
                if n == 0 {
                    break;
                }
                write_all(&null, &buf[..n], &mut calls)?;
                copied += n as u64;
            }
            ensure!(
                copied == plan.copy_size,
                "copied {copied} bytes of {}, expected {}",
                path.display(),
                plan.copy_size
            );
            diag!(
                "copy {} of {} in {} blocks: {} reads, {} writes",
                size_name(copied),
                target.name(),
                size_name(bs as u64),
                calls.reads,
                calls.writes
            );
            results.copy.insert((bs, target), calls);
        }
    }
    Ok(())
}
