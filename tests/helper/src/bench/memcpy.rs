// SPDX-License-Identifier: GPL-2.0

//! The `memcpy` section: the guest's userspace memcpy bandwidth, for the header of the results.

use std::hint::black_box;
use std::time::Instant;

use super::plan::{size_name, Plan};
use super::sample::{mibs, Stat};
use crate::util::diag;

/// Userspace memcpy bandwidth in MiB/s, between two buffers of `size` bytes.
pub(super) fn memcpy(plan: &Plan, size: usize, repeats: u32) -> Stat {
    let src = vec![0x11u8; size];
    let mut dst = vec![0u8; size];
    let copies = plan.memcpy_sample.div_ceil(size);
    // The first sample warms up and is not counted.
    let samples = (0..=repeats)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..copies {
                black_box(&mut dst).copy_from_slice(black_box(&src));
            }
            mibs((size * copies) as u64, start.elapsed())
        })
        .skip(1)
        .collect();
    let stat = Stat::of(samples);
    diag!(
        "memcpy {}: {:.0} MiB/s ({:.0}%)",
        size_name(size as u64),
        stat.median,
        stat.spread()
    );
    stat
}
