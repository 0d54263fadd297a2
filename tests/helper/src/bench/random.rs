// SPDX-License-Identifier: GPL-2.0

//! The `pread` section: random 1-byte pread latency at a small and a large size, at three
//! geometries and on tmpfs, and the same access pattern as loads from the helper's own memory.

use std::hint::black_box;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Instant;

use super::io::fill;
use super::plan::{size_name, Plan};
use super::results::{Lookup, Results};
use super::sample::Stat;
use super::{clear, Files};
use crate::dev::{self, Param};
use crate::util::{diag, ensure, open_rw, trim, Ctx, Res};

/// A fast, seeded generator of offsets (xorshift64*).
pub(super) struct Offsets(u64);

impl Offsets {
    pub(super) fn next_below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound
    }
}

/// The mean time of `calls` 1-byte preads at random offsets below `size`, in ns.
pub(super) fn pread_sample(fd: &OwnedFd, size: u64, calls: u32, seed: u64) -> Res<f64> {
    let mut offsets = Offsets(seed | 1);
    let mut byte = [0u8; 1];
    let start = Instant::now();
    for _ in 0..calls {
        let pos = offsets.next_below(size);
        let n = rustix::io::pread(fd, &mut byte, pos).ctx(format_args!("pread at {pos}"))?;
        ensure!(n == 1, "pread of 1 byte at {pos} of {size} returned {n}");
    }
    Ok(start.elapsed().as_nanos() as f64 / f64::from(calls))
}

/// Samples the small and the large file alternately; returns their latency in ns.
/// Also returns large / small, each ratio of a round's two samples.
pub(super) fn pread_pair(plan: &Plan, repeats: u32, paths: [&Path; 2]) -> Res<([Stat; 2], Stat)> {
    let fds = [open_rw(paths[0])?, open_rw(paths[1])?];
    let sized: Vec<(&OwnedFd, u64)> = fds.iter().zip(plan.pread_sizes).collect();
    let mut samples = [Vec::new(), Vec::new()];
    for &(fd, size) in &sized {
        // Warm up: the first calls bring the lookup structures into the caches.
        pread_sample(fd, size, plan.pread_calls, 99)?;
    }
    for rep in 0..repeats {
        for (&(fd, size), samples) in sized.iter().zip(&mut samples) {
            samples.push(pread_sample(fd, size, plan.pread_calls, rep.into())?);
        }
    }
    let [small, large] = samples;
    let paired = small.iter().zip(&large).map(|(s, l)| l / s).collect();
    Ok(([Stat::of(small), Stat::of(large)], Stat::of(paired)))
}

/// The geometries of the pread section: (order, qset).
pub(super) const PREAD_GEOMETRIES: [(i32, i32); 3] = [(4, 500), (0, 1), (0, 500)];

/// Random 1-byte pread latency at the small and the large size, for each geometry and tmpfs.
pub(super) fn pread(
    plan: &Plan,
    repeats: u32,
    files: &Files,
    buf: &mut [u8],
    results: &mut Results,
) -> Res<()> {
    let [small, large] = plan.pread_sizes;
    let show = |what: &str, stats: &[Stat; 2]| {
        diag!(
            "pread {what}: {} {:.0} ns ({:.0}%), {} {:.0} ns ({:.0}%), ratio {:.3}",
            size_name(small),
            stats[0].median,
            stats[0].spread(),
            size_name(large),
            stats[1].median,
            stats[1].spread(),
            stats[1].median / stats[0].median
        );
    };
    let ctl = open_rw(&files.dev)?;
    for (order, qset) in PREAD_GEOMETRIES {
        dev::reset(&ctl)?;
        dev::set(&ctl, Param::Order, order)?;
        dev::set(&ctl, Param::Qset, qset)?;
        // The trims in `fill` make both devices take the geometry just set.
        trim(&files.dev)?;
        trim(&files.dev2)?;
        fill(&files.dev2, small, buf)?;
        fill(&files.dev, large, buf)?;
        ensure!(
            dev::values(&ctl)? == (order, qset),
            "the module-wide geometry is not order {order}, qset {qset}"
        );
        let (stats, paired) = pread_pair(plan, repeats, [&files.dev2, &files.dev])?;
        show(&format!("scullv order {order} qset {qset}"), &stats);
        results
            .pread_paired
            .insert(Lookup::Scullv(order, qset), paired);
        results
            .pread
            .insert((Lookup::Scullv(order, qset), small), stats[0]);
        results
            .pread
            .insert((Lookup::Scullv(order, qset), large), stats[1]);
        clear(files)?;
    }
    dev::reset(&ctl)?;
    fill(&files.small_file, small, buf)?;
    fill(&files.file, large, buf)?;
    let (stats, paired) = pread_pair(plan, repeats, [&files.small_file, &files.file])?;
    show("tmpfs", &stats);
    results.pread_paired.insert(Lookup::Tmpfs, paired);
    results.pread.insert((Lookup::Tmpfs, small), stats[0]);
    results.pread.insert((Lookup::Tmpfs, large), stats[1]);
    clear(files)?;

    // The same access pattern on the helper's own memory: the cost of the cache, TLB and page
    // walk misses alone, which grows with the data under any lookup.
    let mut samples = [Vec::new(), Vec::new()];
    for (size, samples) in [small, large].into_iter().zip(&mut samples) {
        let memory = vec![1u8; size as usize];
        let calls = 10 * plan.pread_calls;
        load_sample(&memory, calls, 99);
        for rep in 0..repeats {
            samples.push(load_sample(&memory, calls, rep.into()));
        }
    }
    let [a, b] = samples;
    let stats = [Stat::of(a), Stat::of(b)];
    show("userspace loads", &stats);
    results.pread.insert((Lookup::Memory, small), stats[0]);
    results.pread.insert((Lookup::Memory, large), stats[1]);
    Ok(())
}

/// The mean time of `calls` 1-byte loads at random offsets of `memory`, in ns.
pub(super) fn load_sample(memory: &[u8], calls: u32, seed: u64) -> f64 {
    let mut offsets = Offsets(seed | 1);
    let mut sum = 0u8;
    let start = Instant::now();
    for _ in 0..calls {
        let pos = offsets.next_below(memory.len() as u64) as usize;
        sum = sum.wrapping_add(black_box(memory[pos]));
    }
    black_box(sum);
    start.elapsed().as_nanos() as f64 / f64::from(calls)
}
