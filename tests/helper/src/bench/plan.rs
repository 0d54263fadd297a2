// SPDX-License-Identifier: GPL-2.0

//! What the benchmark measures and how much (the full and the quick plan), the targets, the
//! kinds of sequential pass, and the names of sizes.

pub(super) const KIB: u64 = 1 << 10;
pub(super) const MIB: u64 = 1 << 20;
pub(super) const GIB: u64 = 1 << 30;

/// What is measured, and how much.
pub(super) struct Plan {
    pub(super) name: &'static str,
    /// Sequential: device sizes.
    pub(super) sizes: Vec<u64>,
    /// Sequential, and the cat-style copy: block sizes.
    pub(super) blocks: Vec<usize>,
    /// Sequential: each sample moves at least this much (several passes over small sizes).
    pub(super) min_sample: u64,
    /// The size the chart shows.
    pub(super) chart_size: u64,
    /// Random pread: the small and the large size.
    pub(super) pread_sizes: [u64; 2],
    /// Random pread: calls per sample.
    pub(super) pread_calls: u32,
    /// mmap: the size mapped.
    pub(super) mmap_size: u64,
    /// The cat-style copy: the size copied.
    pub(super) copy_size: u64,
    /// memcpy: the buffer sizes (one that the caches and the TLB hold, one they do not), and the
    /// bytes a sample copies.
    pub(super) memcpy_sizes: Vec<usize>,
    pub(super) memcpy_sample: usize,
}

impl Plan {
    pub(super) fn new(quick: bool) -> Self {
        let full = Plan {
            name: "full",
            sizes: vec![MIB, 32 * MIB, 256 * MIB, GIB],
            blocks: vec![4 << 10, 64 << 10, 1 << 20, 4 << 20],
            min_sample: 64 * MIB,
            chart_size: 256 * MIB,
            pread_sizes: [MIB, GIB],
            pread_calls: 100_000,
            mmap_size: 256 * MIB,
            copy_size: 32 * MIB,
            memcpy_sizes: vec![1 << 20, 64 << 20],
            memcpy_sample: 256 << 20,
        };
        if !quick {
            return full;
        }
        Plan {
            name: "quick",
            sizes: vec![MIB, 32 * MIB],
            min_sample: 32 * MIB,
            chart_size: 32 * MIB,
            pread_calls: 10_000,
            mmap_size: 32 * MIB,
            memcpy_sizes: vec![1 << 20, 16 << 20],
            memcpy_sample: 64 << 20,
            ..full
        }
    }
}

/// What a figure was measured on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Target {
    Scullv,
    Tmpfs,
}

pub(super) const TARGETS: [Target; 2] = [Target::Scullv, Target::Tmpfs];

impl Target {
    pub(super) fn name(self) -> &'static str {
        match self {
            Target::Scullv => "scullv",
            Target::Tmpfs => "tmpfs",
        }
    }
}

/// A kind of sequential pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Op {
    /// Writes after a trim (truncate on tmpfs): allocation included.
    Fresh,
    /// Writes over data already there: copy only.
    Overwrite,
    /// Writes through an O_APPEND descriptor after a trim.
    Append,
    /// Reads.
    Read,
}

/// The order the passes run in: a fresh pass leaves the data the next two need.
pub(super) const OPS: [Op; 4] = [Op::Fresh, Op::Overwrite, Op::Read, Op::Append];

impl Op {
    pub(super) fn name(self) -> &'static str {
        match self {
            Op::Fresh => "write fresh",
            Op::Overwrite => "overwrite",
            Op::Append => "append",
            Op::Read => "read",
        }
    }
}

/// A size in KiB, MiB or GiB.
pub(super) fn size_name(size: u64) -> String {
    if size >= GIB && size.is_multiple_of(GIB) {
        format!("{} GiB", size / GIB)
    } else if size >= MIB && size.is_multiple_of(MIB) {
        format!("{} MiB", size / MIB)
    } else {
        format!("{} KiB", size / KIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sizes() {
        assert_eq!(size_name(4 * KIB), "4 KiB");
        assert_eq!(size_name(32 * MIB), "32 MiB");
        assert_eq!(size_name(GIB), "1 GiB");
    }
}
