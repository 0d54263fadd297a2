// SPDX-License-Identifier: GPL-2.0

//! The `seq` section: sequential fresh writes, overwrites, appends and reads at every size and
//! block size of the plan, scullv and tmpfs sampled alternately.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::fs::OFlags;

use super::io::{fill, read_n, write_n};
use super::plan::{size_name, Op, Plan, Target, OPS, TARGETS};
use super::results::{Calls, Results};
use super::sample::{mibs, Stat};
use super::{clear, Files};
use crate::dev;
use crate::util::{diag, open, open_rw, trim, Ctx, Res};

/// One sequential pass of `op` over `size` bytes of `path` in blocks of `buf.len()`; returns the
/// time the read or write calls took.
pub(super) fn seq_pass(path: &Path, op: Op, size: u64, buf: &mut [u8]) -> Res<Duration> {
    let opened = match op {
        // A write-only open trims the device; O_TRUNC empties the file.
        Op::Fresh => open(path, OFlags::WRONLY | OFlags::TRUNC),
        // O_APPEND keeps the device from trimming: trim first.
        Op::Append => {
            trim(path)?;
            open(path, OFlags::WRONLY | OFlags::APPEND)
        }
        // A read-write open never trims.
        Op::Overwrite => open(path, OFlags::RDWR),
        Op::Read => open(path, OFlags::RDONLY),
    };
    let fd = opened.ctx(format_args!("open {} for {}", path.display(), op.name()))?;
    let mut calls = Calls::default();
    let start = Instant::now();
    match op {
        Op::Read => read_n(&fd, size, buf, &mut calls)?,
        _ => write_n(&fd, size, buf, &mut calls)?,
    }
    Ok(start.elapsed())
}

/// One sample: enough passes to move the plan's minimum; returns MiB/s.
pub(super) fn seq_sample(plan: &Plan, path: &Path, op: Op, size: u64, buf: &mut [u8]) -> Res<f64> {
    let passes = plan.min_sample.div_ceil(size).max(1);
    if matches!(op, Op::Overwrite | Op::Read) {
        fill(path, size, buf)?;
    }
    let mut time = Duration::ZERO;
    for _ in 0..passes {
        time += seq_pass(path, op, size, buf)?;
    }
    Ok(mibs(passes * size, time))
}

/// Sequential throughput at every size, block size and kind of pass.
pub(super) fn seq(
    plan: &Plan,
    repeats: u32,
    files: &Files,
    buf: &mut [u8],
    results: &mut Results,
) -> Res<()> {
    let start = Instant::now();
    results.seq_geometry = Some(dev::values(open_rw(&files.dev)?)?);
    for &size in &plan.sizes {
        for &bs in &plan.blocks {
            // An untimed pass of each kind first: the guest (under TCG, QEMU's TLB too) settles
            // into the working set before the samples.
            for op in OPS {
                for target in TARGETS {
                    let path = files.path(target);
                    if matches!(op, Op::Overwrite | Op::Read) {
                        fill(path, size, buf)?;
                    }
                    seq_pass(path, op, size.min(plan.min_sample), &mut buf[..bs])?;
                }
            }
            // Each round takes one sample of every kind of pass on both targets, one after the
            // other, so that the ratios of a round's samples compare like with like.
            let mut samples: BTreeMap<(Op, Target), Vec<f64>> = BTreeMap::new();
            for _ in 0..repeats {
                for op in OPS {
                    for target in TARGETS {
                        let mibs = seq_sample(plan, files.path(target), op, size, &mut buf[..bs])?;
                        samples.entry((op, target)).or_default().push(mibs);
                    }
                }
            }
            let paired = |a: &(Op, Target), b: &(Op, Target)| {
                let (a, b) = (samples.get(a)?, samples.get(b)?);
                Some(Stat::of(a.iter().zip(b).map(|(a, b)| a / b).collect()))
            };
            for op in OPS {
                if let Some(r) = paired(&(op, Target::Scullv), &(op, Target::Tmpfs)) {
                    results.paired.insert((size, bs, op), r);
                }
                for target in TARGETS {
                    if let Some(r) = paired(&(op, target), &(Op::Overwrite, target)) {
                        results.against_overwrite.insert((size, bs, op, target), r);
                    }
                }
            }
            for op in OPS {
                let mut show = Vec::new();
                for target in TARGETS {
                    let Some(samples) = samples.remove(&(op, target)) else {
                        continue;
                    };
                    let all: Vec<String> = samples.iter().map(|m| format!("{m:.0}")).collect();
                    let stat = Stat::of(samples);
                    show.push(format!(
                        "{} {:.0} MiB/s ({:.0}%: {})",
                        target.name(),
                        stat.median,
                        stat.spread(),
                        all.join(" ")
                    ));
                    results.seq.insert((size, bs, op, target), stat);
                }
                diag!(
                    "seq {} in {} blocks, {}: {}",
                    size_name(size),
                    size_name(bs as u64),
                    op.name(),
                    show.join(", ")
                );
            }
        }
        clear(files)?;
        diag!(
            "== seq {} done ({} s so far)",
            size_name(size),
            start.elapsed().as_secs()
        );
    }
    Ok(())
}
