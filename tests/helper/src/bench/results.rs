// SPDX-License-Identifier: GPL-2.0

//! Everything the benchmark measured, keyed as the tables need it.

use std::collections::BTreeMap;

use super::plan::{Op, Target};
use super::sample::Stat;

/// What a random 1-byte access was made on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Lookup {
    /// pread on the device at a geometry (order, qset).
    Scullv(i32, i32),
    /// pread on a tmpfs file.
    Tmpfs,
    /// A load from a buffer of the helper's own: what a cache and TLB miss costs, no system call.
    Memory,
}

impl Lookup {
    pub(super) fn name(self) -> String {
        match self {
            Lookup::Scullv(order, qset) => format!("scullv, order {order}, qset {qset}"),
            Lookup::Tmpfs => "tmpfs".into(),
            Lookup::Memory => "userspace load from a buffer (no system call)".into(),
        }
    }
}

/// One result of the cat-style copy.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Calls {
    pub(super) reads: u64,
    pub(super) writes: u64,
}

/// Everything measured, keyed as the tables need it.
#[derive(Default)]
pub(super) struct Results {
    /// memcpy bandwidth in MiB/s, by buffer size.
    pub(super) memcpy: Vec<(usize, Stat)>,
    /// Throughput in MiB/s, by (size, block size, op, target).
    pub(super) seq: BTreeMap<(u64, usize, Op, Target), Stat>,
    /// scullv / tmpfs, each ratio of a round's two samples (taken one after the other), by
    /// (size, block size, op): pairing cancels the drift that the guest's speed shows over time.
    pub(super) paired: BTreeMap<(u64, usize, Op), Stat>,
    /// A pass / the overwrite pass of the same round, by (size, block size, op, target).
    pub(super) against_overwrite: BTreeMap<(u64, usize, Op, Target), Stat>,
    /// The geometry the sequential passes ran at (order, qset).
    pub(super) seq_geometry: Option<(i32, i32)>,
    /// mmap throughput in MiB/s, by target: (first touch, again).
    pub(super) mmap: BTreeMap<Target, (Stat, Stat)>,
    /// Read throughput in 1 MiB blocks at the mmap size, for comparison.
    pub(super) mmap_read: BTreeMap<Target, Stat>,
    /// Random 1-byte access latency in ns, by (what on, data size).
    pub(super) pread: BTreeMap<(Lookup, u64), Stat>,
    /// Large / small latency, each ratio of two samples taken one after the other.
    pub(super) pread_paired: BTreeMap<Lookup, Stat>,
    /// The cat-style copy, by (block size, target).
    pub(super) copy: BTreeMap<(usize, Target), Calls>,
    /// The size the cat-style copy copied.
    pub(super) copy_size: Option<u64>,
}

impl Results {
    pub(super) fn seq_sizes(&self) -> Vec<u64> {
        let mut sizes: Vec<u64> = self.seq.keys().map(|k| k.0).collect();
        sizes.dedup();
        sizes
    }

    /// Large / small latency of random accesses on `on`.
    pub(super) fn pread_ratio(&self, on: Lookup) -> Option<f64> {
        if let Some(paired) = self.pread_paired.get(&on) {
            return Some(paired.median);
        }
        let mut stats = self
            .pread
            .iter()
            .filter(|((o, _), _)| *o == on)
            .map(|(_, s)| s.median);
        let small = stats.next()?;
        let large = stats.next()?;
        Some(large / small)
    }
}
