// SPDX-License-Identifier: GPL-2.0

//! The `mmap` section: reads through a shared mapping, first touch and again, against read().

use std::collections::BTreeMap;
use std::hint::black_box;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use rustix::mm::MapFlags;

use super::io::fill;
use super::plan::{size_name, Op, Plan, Target, MIB, TARGETS};
use super::results::Results;
use super::sample::{mibs, Stat};
use super::sequential::seq_sample;
use super::Files;
use crate::glue::Mapping;
use crate::util::{diag, open_rw, Ctx, Res};

/// Reads through a shared mapping, first touch and again, against read() in 1 MiB blocks.
pub(super) fn mmap(
    plan: &Plan,
    repeats: u32,
    files: &Files,
    buf: &mut [u8],
    results: &mut Results,
) -> Res<()> {
    let size = plan.mmap_size;
    let len = size as usize;
    let chunk = MIB as usize;
    let mut samples: BTreeMap<Target, [Vec<f64>; 3]> = BTreeMap::new();
    for target in TARGETS {
        fill(files.path(target), size, buf)?;
    }
    // The first round warms up and is not counted.
    for round in 0..=repeats {
        for target in TARGETS {
            let path = files.path(target);
            let fd = open_rw(path)?;
            let map = Mapping::new(fd.as_fd(), 0, len, MapFlags::SHARED)
                .ctx(format_args!("mmap {} MAP_SHARED", path.display()))?;
            let mut times = [Duration::ZERO; 2];
            for time in &mut times {
                let start = Instant::now();
                for offset in (0..len).step_by(chunk) {
                    map.read_into(offset, &mut buf[..chunk.min(len - offset)]);
                }
                *time = start.elapsed();
                black_box(&buf);
            }
            drop(map);
            let read = seq_sample(plan, path, Op::Read, size, &mut buf[..chunk])?;
            if round == 0 {
                continue;
            }
            let entry = samples.entry(target).or_default();
            entry[0].push(mibs(size, times[0]));
            entry[1].push(mibs(size, times[1]));
            entry[2].push(read);
        }
    }
    for (target, [first, again, read]) in samples {
        let (first, again, read) = (Stat::of(first), Stat::of(again), Stat::of(read));
        diag!(
            "mmap {} {}: first touch {:.0} MiB/s ({:.0}%), again {:.0} MiB/s ({:.0}%), read() {:.0} MiB/s",
            target.name(),
            size_name(size),
            first.median,
            first.spread(),
            again.median,
            again.spread(),
            read.median
        );
        results.mmap.insert(target, (first, again));
        results.mmap_read.insert(target, read);
    }
    Ok(())
}
