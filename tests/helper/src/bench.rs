// SPDX-License-Identifier: GPL-2.0

//! The `bench` subcommand: the benchmark behind `make bench` (scripts/bench.sh), run in one
//! guest. It measures scullv against a tmpfs file with the same calls and prints the results as
//! markdown (`results/bench.md`) and an SVG chart (`results/throughput.svg`), each between
//! marker lines on stdout, with progress as `# ` lines before them.
//!
//! Every figure is the median of `--repeats` timed samples (default 5), each sample
//! `clock_gettime(CLOCK_MONOTONIC)` (through [`Instant`]) around many calls; the spread is
//! (max - min) / median of the samples. The device and the file are measured alternately, sample
//! by sample, so that a ratio compares samples taken at the same time. Opening, trimming and
//! filling before a sample are not timed. Under QEMU the first work on new memory is much slower
//! than the rest (host page faults, TCG's TLB growing to the working set), so the guest's free
//! memory is touched once before anything is measured and each figure starts with an untimed
//! warm-up.
//!
//! Measured: sequential fresh writes (after a trim: allocation included), overwrites, appends
//! and reads at several device sizes and block sizes; reads through mmap, first touch and again;
//! random 1-byte pread latency at a small and a large size at three geometries; the read and
//! write calls a cat-style copy needs; the guest's userspace memcpy bandwidth.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use plotters::prelude::*;
use rustix::fs::OFlags;
use rustix::mm::MapFlags;

use crate::dev::{self, DevArg, Param, ResetOnDrop};
use crate::glue::Mapping;
use crate::util::{diag, ensure, open, open_rw, size_of, trim, Ctx, Outcome, Res};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The marker lines around each output file: `=== begin NAME ===` and `=== end NAME ===`.
const MARK: &str = "===";

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    dev: DevArg,
    /// A second device, holding the small data while --dev holds the large in the pread section
    #[arg(long, default_value = "/dev/scullv1")]
    dev2: PathBuf,
    /// The short plan (about 2 minutes under TCG) instead of the full one (about 9)
    #[arg(long)]
    quick: bool,
    /// The tmpfs file the device is compared with (a second one gets the suffix ".small")
    #[arg(long, default_value = "/tmp/scullv-bench")]
    file: PathBuf,
    /// Timed samples of every figure; the median is reported
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    repeats: u32,
    /// The sections to run, comma-separated
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Section::ALL)]
    sections: Vec<Section>,
    /// The machine QEMU ran on, for the header of the results
    #[arg(long, default_value = "not given")]
    machine: String,
    /// The date of the run, for the header
    #[arg(long, default_value = "not given")]
    date: String,
    /// The QEMU version, for the header
    #[arg(long, default_value = "not given")]
    qemu: String,
    /// The command that made the results, for the header
    #[arg(long, default_value = "scullv-tool bench")]
    command: String,
    /// Sequential sizes in MiB instead of the plan's, comma-separated (for trying things out)
    #[arg(long, value_delimiter = ',', hide = true)]
    sizes_mib: Vec<u64>,
}

/// A part of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Section {
    /// Userspace memcpy bandwidth.
    Memcpy,
    /// Sequential write and read throughput.
    Seq,
    /// Reads through mmap.
    Mmap,
    /// Random 1-byte pread latency.
    Pread,
    /// System calls of a cat-style copy.
    Syscalls,
}

impl Section {
    /// In this order: memcpy last, when the guest has settled.
    const ALL: [Section; 5] = [
        Section::Seq,
        Section::Mmap,
        Section::Pread,
        Section::Syscalls,
        Section::Memcpy,
    ];
}

/// What is measured, and how much.
struct Plan {
    name: &'static str,
    /// Sequential: device sizes.
    sizes: Vec<u64>,
    /// Sequential, and the cat-style copy: block sizes.
    blocks: Vec<usize>,
    /// Sequential: each sample moves at least this much (several passes over small sizes).
    min_sample: u64,
    /// The size the chart shows.
    chart_size: u64,
    /// Random pread: the small and the large size.
    pread_sizes: [u64; 2],
    /// Random pread: calls per sample.
    pread_calls: u32,
    /// mmap: the size mapped.
    mmap_size: u64,
    /// The cat-style copy: the size copied.
    copy_size: u64,
    /// memcpy: the buffer sizes (one that the caches and the TLB hold, one they do not), and the
    /// bytes a sample copies.
    memcpy_sizes: Vec<usize>,
    memcpy_sample: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
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
enum Target {
    Scullv,
    Tmpfs,
}

const TARGETS: [Target; 2] = [Target::Scullv, Target::Tmpfs];

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Scullv => "scullv",
            Target::Tmpfs => "tmpfs",
        }
    }
}

/// A kind of sequential pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
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
const OPS: [Op; 4] = [Op::Fresh, Op::Overwrite, Op::Read, Op::Append];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Fresh => "write fresh",
            Op::Overwrite => "overwrite",
            Op::Append => "append",
            Op::Read => "read",
        }
    }
}

/// The median and range of a figure's samples.
#[derive(Clone, Copy, Debug)]
struct Stat {
    median: f64,
    min: f64,
    max: f64,
}

impl Stat {
    fn of(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let median = if n % 2 == 1 {
            samples[n / 2]
        } else {
            (samples[n / 2 - 1] + samples[n / 2]) / 2.0
        };
        Stat {
            median,
            min: samples[0],
            max: samples[n - 1],
        }
    }

    /// (max - min) / median, in percent.
    fn spread(&self) -> f64 {
        if self.median > 0.0 {
            (self.max - self.min) / self.median * 100.0
        } else {
            0.0
        }
    }
}

/// What a random 1-byte access was made on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Lookup {
    /// pread on the device at a geometry (order, qset).
    Scullv(i32, i32),
    /// pread on a tmpfs file.
    Tmpfs,
    /// A load from a buffer of the helper's own: what a cache and TLB miss costs, no system call.
    Memory,
}

impl Lookup {
    fn name(self) -> String {
        match self {
            Lookup::Scullv(order, qset) => format!("scullv, order {order}, qset {qset}"),
            Lookup::Tmpfs => "tmpfs".into(),
            Lookup::Memory => "userspace load from a buffer (no system call)".into(),
        }
    }
}

/// One result of the cat-style copy.
#[derive(Clone, Copy, Debug, Default)]
struct Calls {
    reads: u64,
    writes: u64,
}

/// Everything measured, keyed as the tables need it.
#[derive(Default)]
struct Results {
    /// memcpy bandwidth in MiB/s, by buffer size.
    memcpy: Vec<(usize, Stat)>,
    /// Throughput in MiB/s, by (size, block size, op, target).
    seq: BTreeMap<(u64, usize, Op, Target), Stat>,
    /// scullv / tmpfs, each ratio of a round's two samples (taken one after the other), by
    /// (size, block size, op): pairing cancels the drift that the guest's speed shows over time.
    paired: BTreeMap<(u64, usize, Op), Stat>,
    /// A pass / the overwrite pass of the same round, by (size, block size, op, target).
    against_overwrite: BTreeMap<(u64, usize, Op, Target), Stat>,
    /// The geometry the sequential passes ran at (order, qset).
    seq_geometry: Option<(i32, i32)>,
    /// mmap throughput in MiB/s, by target: (first touch, again).
    mmap: BTreeMap<Target, (Stat, Stat)>,
    /// Read throughput in 1 MiB blocks at the mmap size, for comparison.
    mmap_read: BTreeMap<Target, Stat>,
    /// Random 1-byte access latency in ns, by (what on, data size).
    pread: BTreeMap<(Lookup, u64), Stat>,
    /// Large / small latency, each ratio of two samples taken one after the other.
    pread_paired: BTreeMap<Lookup, Stat>,
    /// The cat-style copy, by (block size, target).
    copy: BTreeMap<(usize, Target), Calls>,
    /// The size the cat-style copy copied.
    copy_size: Option<u64>,
}

/// The files under test.
struct Files {
    dev: PathBuf,
    dev2: PathBuf,
    file: PathBuf,
    small_file: PathBuf,
}

impl Files {
    fn path(&self, target: Target) -> &Path {
        match target {
            Target::Scullv => &self.dev,
            Target::Tmpfs => &self.file,
        }
    }
}

/// Runs the `bench` subcommand.
pub fn run(args: &Args) -> Res<()> {
    let start = Instant::now();
    let mut plan = Plan::new(args.quick);
    if !args.sizes_mib.is_empty() {
        plan.sizes = args.sizes_mib.iter().map(|m| m * MIB).collect();
    }
    let small_file = PathBuf::from(format!("{}.small", args.file.display()));
    let files = Files {
        dev: args.dev.dev.clone(),
        dev2: args.dev2.clone(),
        file: args.file.clone(),
        small_file,
    };
    for path in [&files.file, &files.small_file] {
        open(path, OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC)
            .ctx(format_args!("create {}", path.display()))?;
    }
    let _reset = ResetOnDrop::new(&files.dev)?;
    dev::reset(open_rw(&files.dev)?)?;
    diag!(
        "bench: {} plan, {} repeats per figure, sections {:?}",
        plan.name,
        args.repeats,
        args.sections
    );

    prefault();
    let mut results = Results::default();
    let mut buf = vec![0x5au8; 4 << 20];
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte = (i as u8).wrapping_mul(7).wrapping_add(1);
    }
    let r = args.repeats;
    for section in &args.sections {
        let t = Instant::now();
        match section {
            Section::Memcpy => {
                for &size in &plan.memcpy_sizes {
                    results.memcpy.push((size, memcpy(&plan, size, r)));
                }
            }
            Section::Seq => seq(&plan, r, &files, &mut buf, &mut results)?,
            Section::Mmap => mmap(&plan, r, &files, &mut buf, &mut results)?,
            Section::Pread => pread(&plan, r, &files, &mut buf, &mut results)?,
            Section::Syscalls => copies(&plan, &files, &mut buf, &mut results)?,
        }
        let name = format!("{section:?}").to_lowercase();
        diag!("== {name} took {} s", t.elapsed().as_secs());
        clear(&files)?;
    }
    let _ = std::fs::remove_file(&files.file);
    let _ = std::fs::remove_file(&files.small_file);

    let elapsed = start.elapsed().as_secs();
    let markdown = markdown(args, &plan, &results, elapsed);
    let svg = chart(&plan, args.repeats, &results)?;
    println!("{MARK} begin bench.md {MARK}");
    print!("{markdown}");
    println!("{MARK} end bench.md {MARK}");
    if let Some(svg) = svg {
        println!("{MARK} begin throughput.svg {MARK}");
        println!("{svg}");
        println!("{MARK} end throughput.svg {MARK}");
    }
    diag!("bench finished in {elapsed} s");
    Ok(())
}

/// Touches most of the guest's free memory once. QEMU backs guest memory with host memory only
/// when the guest first touches it, and that first touch costs host page faults: without this,
/// whichever measurement first lands on new guest pages pays for them.
fn prefault() {
    let available = first_line_with("/proc/meminfo", "MemAvailable");
    let kib: u64 = available.trim_end_matches("kB").trim().parse().unwrap_or(0);
    let bytes = (kib * KIB).saturating_sub(384 * MIB);
    let start = Instant::now();
    let memory = vec![1u8; usize::try_from(bytes).unwrap_or(usize::MAX / 2)];
    black_box(&memory);
    drop(memory);
    diag!(
        "touched {} of free guest memory in {} ms",
        size_name(bytes / MIB * MIB),
        start.elapsed().as_millis()
    );
}

/// Empties the devices and the files.
fn clear(files: &Files) -> Res<()> {
    trim(&files.dev)?;
    trim(&files.dev2)?;
    for path in [&files.file, &files.small_file] {
        open(path, OFlags::WRONLY | OFlags::TRUNC)
            .ctx(format_args!("truncate {}", path.display()))?;
    }
    Ok(())
}

/// Writes all of `data` with as many write calls as it takes, counting them.
fn write_all(fd: impl AsFd, mut data: &[u8], calls: &mut Calls) -> Res<()> {
    while !data.is_empty() {
        calls.writes += 1;
        let n = rustix::io::write(&fd, data).ctx("write")?;
        ensure!(n > 0, "write of {} bytes returned 0", data.len());
        data = &data[n..];
    }
    Ok(())
}

/// Writes `total` bytes from `buf` (repeated) in blocks of `buf.len()`.
fn write_n(fd: impl AsFd, total: u64, buf: &[u8], calls: &mut Calls) -> Res<()> {
    let mut left = total;
    while left > 0 {
        let len = left.min(buf.len() as u64) as usize;
        write_all(&fd, &buf[..len], calls)?;
        left -= len as u64;
    }
    Ok(())
}

/// Reads `total` bytes into `buf` (over and over) in blocks of `buf.len()`.
fn read_n(fd: impl AsFd, total: u64, buf: &mut [u8], calls: &mut Calls) -> Res<()> {
    let mut left = total;
    while left > 0 {
        let len = left.min(buf.len() as u64) as usize;
        calls.reads += 1;
        let n = rustix::io::read(&fd, &mut buf[..len]).ctx("read")?;
        ensure!(n > 0, "read: end of file {left} bytes early");
        left -= n as u64;
    }
    Ok(())
}

/// Makes `path` hold `size` bytes (a fresh write, unless it already holds that many).
fn fill(path: &Path, size: u64, buf: &[u8]) -> Res<()> {
    if size_of(path)? == size {
        return Ok(());
    }
    let fd =
        open(path, OFlags::WRONLY | OFlags::TRUNC).ctx(format_args!("open {}", path.display()))?;
    write_n(
        &fd,
        size,
        &buf[..buf.len().min(MIB as usize)],
        &mut Calls::default(),
    )
}

/// MiB/s of `bytes` moved in `time`.
fn mibs(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / MIB as f64 / time.as_secs_f64().max(1e-9)
}

/// A size in KiB, MiB or GiB.
fn size_name(size: u64) -> String {
    if size >= GIB && size.is_multiple_of(GIB) {
        format!("{} GiB", size / GIB)
    } else if size >= MIB && size.is_multiple_of(MIB) {
        format!("{} MiB", size / MIB)
    } else {
        format!("{} KiB", size / KIB)
    }
}

/// Userspace memcpy bandwidth in MiB/s, between two buffers of `size` bytes.
fn memcpy(plan: &Plan, size: usize, repeats: u32) -> Stat {
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

/// One sequential pass of `op` over `size` bytes of `path` in blocks of `buf.len()`; returns the
/// time the read or write calls took.
fn seq_pass(path: &Path, op: Op, size: u64, buf: &mut [u8]) -> Res<Duration> {
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
fn seq_sample(plan: &Plan, path: &Path, op: Op, size: u64, buf: &mut [u8]) -> Res<f64> {
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
fn seq(plan: &Plan, repeats: u32, files: &Files, buf: &mut [u8], results: &mut Results) -> Res<()> {
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

/// Reads through a shared mapping, first touch and again, against read() in 1 MiB blocks.
fn mmap(
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

/// A fast, seeded generator of offsets (xorshift64*).
struct Offsets(u64);

impl Offsets {
    fn next_below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound
    }
}

/// The mean time of `calls` 1-byte preads at random offsets below `size`, in ns.
fn pread_sample(fd: &OwnedFd, size: u64, calls: u32, seed: u64) -> Res<f64> {
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
fn pread_pair(plan: &Plan, repeats: u32, paths: [&Path; 2]) -> Res<([Stat; 2], Stat)> {
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
const PREAD_GEOMETRIES: [(i32, i32); 3] = [(4, 500), (0, 1), (0, 500)];

/// Random 1-byte pread latency at the small and the large size, for each geometry and tmpfs.
fn pread(
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
fn load_sample(memory: &[u8], calls: u32, seed: u64) -> f64 {
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

/// A cat-style copy of each target to /dev/null at every block size, counting the calls.
fn copies(plan: &Plan, files: &Files, buf: &mut [u8], results: &mut Results) -> Res<()> {
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

/// Appends a line to a string.
macro_rules! out {
    ($s:expr) => {
        $s.push('\n')
    };
    ($s:expr, $($arg:tt)*) => {{
        let _ = writeln!($s, $($arg)*);
    }};
}

/// A first line of a file, or "unknown".
fn first_line_with(path: &str, prefix: &str) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| {
            text.lines().find(|l| l.starts_with(prefix)).map(|l| {
                l[prefix.len()..]
                    .trim()
                    .trim_start_matches(':')
                    .trim()
                    .to_string()
            })
        })
        .unwrap_or_else(|| "unknown".into())
}

/// A ratio as "1.23x".
fn x(ratio: f64) -> String {
    format!("{ratio:.2}x")
}

/// A throughput with its spread.
fn tp(stat: &Stat) -> String {
    format!("{:.0} (±{:.0}%)", stat.median, stat.spread() / 2.0)
}

/// A verdict for a ratio that must be at least `goal`.
fn at_least(worst: f64, goal: f64) -> String {
    if worst >= goal {
        "**met**".into()
    } else {
        format!(
            "**missed** by {:.0}% ({} of {})",
            (1.0 - worst / goal) * 100.0,
            x(worst),
            x(goal)
        )
    }
}

/// "64 KiB blocks, 1 GiB".
fn cell_name(size: u64, bs: usize) -> String {
    format!("{} blocks, {}", size_name(bs as u64), size_name(size))
}

/// The median, worst and best of ratios measured in several cells.
struct Summary {
    median: f64,
    worst: (f64, String),
    best: (f64, String),
}

impl Summary {
    fn of(ratios: &[(f64, String)]) -> Option<Self> {
        if ratios.is_empty() {
            return None;
        }
        let median = Stat::of(ratios.iter().map(|r| r.0).collect()).median;
        let by = |a: &&(f64, String), b: &&(f64, String)| a.0.total_cmp(&b.0);
        Some(Summary {
            median,
            worst: ratios.iter().min_by(by)?.clone(),
            best: ratios.iter().max_by(by)?.clone(),
        })
    }

    fn show(&self) -> String {
        format!(
            "median {}, worst {} ({}), best {} ({})",
            x(self.median),
            x(self.worst.0),
            self.worst.1,
            x(self.best.0),
            self.best.1
        )
    }
}

/// The goals of issue 10, each as (goal, measured, verdict).
fn goals(results: &Results) -> Vec<(String, String, String)> {
    let mut rows = Vec::new();
    let seq = &results.seq;
    let get = |size, bs, op, t| seq.get(&(size, bs, op, t)).map(|s: &Stat| s.median);

    // 1: scullv at least 2x tmpfs at block sizes of 64 KiB and more, every kind of pass.
    let mut parts = Vec::new();
    let (mut met, mut cells) = (0, 0);
    let mut worst: Option<f64> = None;
    for op in OPS {
        let ratios: Vec<(f64, String)> = seq
            .keys()
            .filter(|k| k.1 >= (64 << 10) && k.2 == op && k.3 == Target::Scullv)
            .filter_map(|&(size, bs, _, _)| {
                let ratio = results.paired.get(&(size, bs, op))?.median;
                Some((ratio, cell_name(size, bs)))
            })
            .collect();
        let Some(summary) = Summary::of(&ratios) else {
            continue;
        };
        cells += ratios.len();
        met += ratios.iter().filter(|r| r.0 >= 2.0).count();
        worst = Some(worst.map_or(summary.worst.0, |w: f64| w.min(summary.worst.0)));
        parts.push(format!("{}: {}", op.name(), summary.show()));
    }
    if let Some(worst) = worst {
        rows.push((
            "Sequential write and read at blocks >= 64 KiB: at least 2.0x tmpfs".into(),
            format!(
                "{met} of {cells} cells at 2.0x or more. {}",
                parts.join("; ")
            ),
            at_least(worst, 2.0),
        ));
    }

    // 2: fresh at least 0.9x overwrite at 64 KiB and more, at the default geometry.
    let ratios: Vec<(f64, String)> = seq
        .keys()
        .filter(|k| k.1 >= (64 << 10) && k.2 == Op::Fresh && k.3 == Target::Scullv)
        .filter_map(|&(size, bs, _, t)| {
            let ratio = results
                .against_overwrite
                .get(&(size, bs, Op::Fresh, t))?
                .median;
            Some((ratio, cell_name(size, bs)))
        })
        .collect();
    if let Some(summary) = Summary::of(&ratios) {
        let (order, qset) = results.seq_geometry.unwrap_or((4, 500));
        rows.push((
            format!(
                "Fresh writes at least 0.9x overwrites at blocks >= 64 KiB (order {order}, qset \
                 {qset})"
            ),
            format!(
                "{} of {} cells at 0.9x or more; {}",
                ratios.iter().filter(|r| r.0 >= 0.9).count(),
                ratios.len(),
                summary.show()
            ),
            at_least(summary.worst.0, 0.9),
        ));
    }

    // 3: one call per block.
    let scullv: Vec<(usize, Calls)> = results
        .copy
        .iter()
        .filter(|((_, t), _)| *t == Target::Scullv)
        .map(|(&(bs, _), &c)| (bs, c))
        .collect();
    if let Some(size) = results.copy_size {
        let bad: Vec<String> = scullv
            .iter()
            .filter(|(bs, c)| {
                let blocks = size.div_ceil(*bs as u64);
                c.reads != blocks + 1 || c.writes != blocks
            })
            .map(|(bs, _)| size_name(*bs as u64))
            .collect();
        let range = format!(
            "{} to {}",
            size_name(scullv.first().map_or(0, |c| c.0) as u64),
            size_name(scullv.last().map_or(0, |c| c.0) as u64)
        );
        rows.push((
            "One system call per block, whatever the block size".into(),
            if bad.is_empty() {
                format!("every block size ({range}): reads = blocks + 1 (EOF), writes = blocks")
            } else {
                format!("more calls than blocks at {}", bad.join(", "))
            },
            if bad.is_empty() {
                "**met**".into()
            } else {
                "**missed**".into()
            },
        ));
    }

    // 4a: pread at the large size within 20% of the small one, every geometry.
    let scullv: Vec<(Lookup, f64)> = PREAD_GEOMETRIES
        .iter()
        .map(|&(o, q)| Lookup::Scullv(o, q))
        .filter_map(|on| Some((on, results.pread_ratio(on)?)))
        .collect();
    if let Some(worst) = scullv.iter().map(|r| r.1).reduce(f64::max) {
        let mut measured: Vec<String> = scullv
            .iter()
            .map(|(on, r)| format!("{:+.0}% ({})", (r - 1.0) * 100.0, on.name()))
            .collect();
        for on in [Lookup::Tmpfs, Lookup::Memory] {
            if let Some(r) = results.pread_ratio(on) {
                measured.push(format!(
                    "for comparison {:+.0}% ({})",
                    (r - 1.0) * 100.0,
                    on.name()
                ));
            }
        }
        rows.push((
            "Random 1-byte pread at 1 GiB within 20% of the same at 1 MiB, every geometry".into(),
            measured.join("; "),
            if worst <= 1.2 {
                "**met**".into()
            } else {
                format!(
                    "**missed**: {:+.0}% at worst, goal +20%",
                    (worst - 1.0) * 100.0
                )
            },
        ));
    }

    // 4b: the large size falls off no more than tmpfs's, relative to the small one.
    let (Some(&small), Some(&large)) = (results.seq_sizes().first(), results.seq_sizes().last())
    else {
        return rows;
    };
    if small == large {
        return rows;
    }
    let mut worst: Option<(f64, String)> = None;
    let mut met = 0;
    let mut cells = 0;
    let mut log_sum = 0.0;
    for &(size, bs, op, target) in seq.keys() {
        if size != large || target != Target::Scullv {
            continue;
        }
        let ratio = |t| Some(get(large, bs, op, t)? / get(small, bs, op, t)?);
        let paired = |size| Some(results.paired.get(&(size, bs, op))?.median);
        if let (Some(s), Some(t), Some(pl), Some(ps)) = (
            ratio(Target::Scullv),
            ratio(Target::Tmpfs),
            paired(large),
            paired(small),
        ) {
            // scullv's falloff / tmpfs's, from the paired ratios: (s_L / t_L) / (s_S / t_S).
            let rel = pl / ps;
            cells += 1;
            if rel >= 1.0 {
                met += 1;
            }
            log_sum += rel.ln();
            let at = format!(
                "{}, {} blocks: scullv {}, tmpfs {}",
                op.name(),
                size_name(bs as u64),
                x(s),
                x(t)
            );
            if worst.as_ref().is_none_or(|(w, _)| rel < *w) {
                worst = Some((rel, at));
            }
        }
    }
    if let Some((rel, at)) = worst {
        rows.push((
            format!(
                "Sequential throughput at {} falls off, relative to {}, no more than tmpfs's",
                size_name(large),
                size_name(small)
            ),
            format!(
                "scullv's ratio at least tmpfs's in {met} of {cells} cells (pass x block size); \
                 geometric mean of scullv's / tmpfs's {}; worst: {at}",
                x((log_sum / f64::from(cells)).exp())
            ),
            if rel >= 1.0 {
                "**met**".into()
            } else if log_sum >= 0.0 {
                format!(
                    "**met on average**, missed in {} of {cells} cells, by {:.0}% at worst",
                    cells - met,
                    (1.0 - rel) * 100.0
                )
            } else {
                format!(
                    "**missed** by {:.0}% (scullv's ratio / tmpfs's = {})",
                    (1.0 - rel) * 100.0,
                    x(rel)
                )
            },
        ));
    }
    rows
}

impl Results {
    fn seq_sizes(&self) -> Vec<u64> {
        let mut sizes: Vec<u64> = self.seq.keys().map(|k| k.0).collect();
        sizes.dedup();
        sizes
    }

    /// Large / small latency of random accesses on `on`.
    fn pread_ratio(&self, on: Lookup) -> Option<f64> {
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

/// The results as markdown: a header saying where they come from, the goals, then one table per
/// section, key columns (ratios of figures of this run) in bold.
fn markdown(args: &Args, plan: &Plan, results: &Results, elapsed: u64) -> String {
    let mut s = String::new();
    let accel = std::env::var("SCULLV_ACCEL").unwrap_or_else(|_| "unknown".into());
    let cpu = std::env::var("SCULLV_CPU").unwrap_or_else(|_| "unknown".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = first_line_with("/proc/cpuinfo", "model name");
    let mem = first_line_with("/proc/meminfo", "MemTotal");
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |k| k.trim().to_string());
    out!(s, "# scullv benchmark results");
    out!(s);
    out!(
        s,
        "Made by `{}` in one QEMU guest with the static helper (`scullv-tool bench`, \
         tests/helper/src/bench.rs). Every figure comes from this run: the median of {} timed \
         samples, each `clock_gettime` around many calls; ± is half the samples' range \
         ((max - min) / 2) relative to the median. The device and the tmpfs file were sampled \
         alternately: a scullv/tmpfs ratio is the median of the ratios of the samples taken one \
         after the other (paired), which cancels the drift of the guest's speed over time. The \
         guest's free memory was touched once first, and each figure starts with an untimed \
         warm-up pass (QEMU's first touch of memory is slow).",
        args.command,
        args.repeats
    );
    out!(s);
    out!(s, "| | |");
    out!(s, "|---|---|");
    out!(s, "| machine (host) | {} |", args.machine);
    out!(s, "| date | {} |", args.date);
    out!(
        s,
        "| accelerator | **{}** ({}) |",
        accel.to_uppercase(),
        args.qemu
    );
    out!(s, "| guest CPU | `{cpu}` ({model}), {cpus} vCPUs |");
    out!(s, "| guest memory | {mem} |");
    let which = match std::env::var("SCULLV_KERNEL").as_deref() {
        Ok("debian") => "Debian's own kernel",
        Ok("debug") => "the debug test kernel",
        _ => "the base test kernel",
    };
    out!(s, "| guest kernel | {kernel} ({which}) |");
    if let Some((order, qset)) = results.seq_geometry {
        out!(
            s,
            "| scullv geometry | order {order} ({} quanta), qset {qset}, unless a table says otherwise |",
            size_name(4096 << order)
        );
    }
    for (size, m) in &results.memcpy {
        out!(
            s,
            "| guest userspace memcpy, {} buffers | {} MiB/s |",
            size_name(*size as u64),
            tp(m)
        );
    }
    out!(s, "| plan | {} ({elapsed} s in the guest) |", plan.name);
    out!(s);
    if accel == "tcg" {
        out!(
            s,
            "Under TCG QEMU translates every guest instruction, so absolute figures are a \
             fraction of the host's and what costs most differs from hardware (memory copies and \
             page-table walks are emulated); the ratios are the figures to compare."
        );
        out!(s);
    }

    let goals = goals(results);
    if !goals.is_empty() {
        out!(s, "## Goals");
        out!(s);
        out!(s, "| goal | measured | verdict |");
        out!(s, "|---|---|---|");
        for (goal, measured, verdict) in goals {
            out!(s, "| {goal} | {measured} | {verdict} |");
        }
        out!(s);
    }

    if !results.seq.is_empty() {
        seq_tables(&mut s, results);
    }
    if !results.mmap.is_empty() {
        out!(s, "## Reads through mmap (MiB/s)");
        out!(s);
        out!(
            s,
            "A `MAP_SHARED` mapping of the whole data ({}), copied out in 1 MiB pieces: first touch \
             (every page faulted in: both map up to 16 pages a fault with \
             fault-around), then again (mapped).",
            size_name(plan.mmap_size)
        );
        out!(s);
        out!(
            s,
            "| data on | first touch | again | read() in 1 MiB blocks | **first touch / read()** | **again / read()** |"
        );
        out!(s, "|---|---|---|---|---|---|");
        for (target, (first, again)) in &results.mmap {
            let read = results.mmap_read.get(target).map_or(f64::NAN, |r| r.median);
            out!(
                s,
                "| {} | {} | {} | {:.0} | **{}** | **{}** |",
                target.name(),
                tp(first),
                tp(again),
                read,
                x(first.median / read),
                x(again.median / read)
            );
        }
        if let (Some(a), Some(b)) = (
            results.mmap.get(&Target::Scullv),
            results.mmap.get(&Target::Tmpfs),
        ) {
            out!(
                s,
                "| **scullv/tmpfs** | **{}** | **{}** | | | |",
                x(a.0.median / b.0.median),
                x(a.1.median / b.1.median)
            );
        }
        out!(s);
    }
    if !results.pread.is_empty() {
        out!(s, "## Random 1-byte pread latency (ns per call)");
        out!(s);
        out!(
            s,
            "One open descriptor each on the small and the large data, sampled alternately (the \
             ratio is the median of the rounds' ratios); \
             offsets uniformly random. Geometry set with the module-wide ioctls (RESET, T order, \
             T qset) and a trim."
        );
        out!(s);
        let sizes: Vec<u64> = {
            let mut v: Vec<u64> = results.pread.keys().map(|k| k.1).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let (small, large) = (sizes[0], sizes[sizes.len() - 1]);
        out!(
            s,
            "| access | {} | {} | difference (ns) | **{} / {}** |",
            size_name(small),
            size_name(large),
            size_name(large),
            size_name(small)
        );
        out!(s, "|---|---|---|---|---|");
        let mut on: Vec<Lookup> = results.pread.keys().map(|k| k.0).collect();
        on.dedup();
        for on in on {
            let (Some(a), Some(b)) = (
                results.pread.get(&(on, small)),
                results.pread.get(&(on, large)),
            ) else {
                continue;
            };
            out!(
                s,
                "| {} | {} | {} | {:+.0} | **{}** |",
                on.name(),
                tp(a),
                tp(b),
                b.median - a.median,
                x(results.pread_ratio(on).unwrap_or(f64::NAN))
            );
        }
        out!(s);
    }
    if let Some(size) = results.copy_size {
        out!(s, "## System calls of a cat-style copy");
        out!(s);
        out!(
            s,
            "{} copied to /dev/null with a read()/write() loop at each block size, calls counted \
             by the helper. One call per block: reads = blocks + 1 (the last one sees the end), \
             writes = blocks. The book's driver moves at most one 64 KiB quantum per read.",
            size_name(size)
        );
        out!(s);
        out!(
            s,
            "| block | blocks | scullv reads / writes | **scullv calls per MiB** | tmpfs reads / writes | tmpfs calls per MiB | book's driver calls per MiB |"
        );
        out!(s, "|---|---|---|---|---|---|---|");
        let bss: Vec<usize> = {
            let mut v: Vec<usize> = results.copy.keys().map(|k| k.0).collect();
            v.dedup();
            v
        };
        let per_mib = |c: &Calls| (c.reads + c.writes) as f64 / (size as f64 / MIB as f64);
        for bs in bss {
            let blocks = size.div_ceil(bs as u64);
            let cell = |t| {
                results.copy.get(&(bs, t)).map_or(
                    ("-".to_string(), "-".to_string()),
                    |c: &Calls| {
                        (
                            format!("{} / {}", c.reads, c.writes),
                            format!("{:.2}", per_mib(c)),
                        )
                    },
                )
            };
            let (sr, sp) = cell(Target::Scullv);
            let (tr, tpm) = cell(Target::Tmpfs);
            let book_reads = size.div_ceil((bs as u64).min(64 * KIB)) + 1;
            let book = Calls {
                reads: book_reads,
                writes: book_reads - 1,
            };
            out!(
                s,
                "| {} | {blocks} | {sr} | **{sp}** | {tr} | {tpm} | {:.2} |",
                size_name(bs as u64),
                per_mib(&book)
            );
        }
        out!(s);
    }
    s
}

/// The sequential tables: throughput with scullv/tmpfs, fresh/overwrite, large/small.
fn seq_tables(s: &mut String, results: &Results) {
    let seq = &results.seq;
    let get = |size, bs, op, t| seq.get(&(size, bs, op, t));
    out!(s, "## Sequential throughput (MiB/s)");
    out!(s);
    out!(
        s,
        "`write fresh`: write-only open with O_TRUNC (a trim), then the writes: allocation \
         included. `overwrite`: read-write open, the same writes over the data. `append`: a trim, \
         then writes through an O_APPEND descriptor. `read`: read-only open, reads. Samples shorter \
         than the plan's minimum repeat the pass (trimming again, untimed, for fresh and append)."
    );
    out!(s);
    out!(s, "![throughput against block size](throughput.svg)");
    out!(s);
    out!(
        s,
        "| size | block | pass | scullv | tmpfs | **scullv/tmpfs** |"
    );
    out!(s, "|---|---|---|---|---|---|");
    for (&(size, bs, op, target), stat) in seq {
        if target != Target::Scullv {
            continue;
        }
        let t = get(size, bs, op, Target::Tmpfs).map_or("-".into(), tp);
        let ratio = results.paired.get(&(size, bs, op)).map_or("-".into(), |r| {
            format!("{} (±{:.0}%)", x(r.median), r.spread() / 2.0)
        });
        out!(
            s,
            "| {} | {} | {} | {} | {t} | **{ratio}** |",
            size_name(size),
            size_name(bs as u64),
            op.name(),
            tp(stat)
        );
    }
    out!(s);

    out!(s, "## Allocation: fresh and append against overwrite");
    out!(s);
    out!(
        s,
        "Each ratio is the median of the ratios of samples taken in the same round (paired)."
    );
    out!(s);
    out!(
        s,
        "| size | block | **scullv fresh/overwrite** | tmpfs fresh/overwrite | scullv append/overwrite | tmpfs append/overwrite |"
    );
    out!(s, "|---|---|---|---|---|---|");
    let ratio = |size, bs, op, t| {
        results
            .against_overwrite
            .get(&(size, bs, op, t))
            .map_or("-".into(), |r: &Stat| x(r.median))
    };
    for &(size, bs, op, target) in seq.keys() {
        if target != Target::Scullv || op != Op::Fresh {
            continue;
        }
        out!(
            s,
            "| {} | {} | **{}** | {} | {} | {} |",
            size_name(size),
            size_name(bs as u64),
            ratio(size, bs, Op::Fresh, Target::Scullv),
            ratio(size, bs, Op::Fresh, Target::Tmpfs),
            ratio(size, bs, Op::Append, Target::Scullv),
            ratio(size, bs, Op::Append, Target::Tmpfs)
        );
    }
    out!(s);

    let sizes = results.seq_sizes();
    let (Some(&small), Some(&large)) = (sizes.first(), sizes.last()) else {
        return;
    };
    if small == large {
        return;
    }
    let (sn, ln) = (size_name(small), size_name(large));
    out!(s, "## Size: {ln} against {sn}");
    out!(s);
    out!(
        s,
        "The first two ratios compare figures measured minutes apart, and the guest's speed \
         drifts over a run; the last one is scullv/tmpfs (paired) at {ln} over the same at {sn}, \
         which the drift does not reach."
    );
    out!(s);
    out!(
        s,
        "| block | pass | **scullv {ln}/{sn}** | tmpfs {ln}/{sn} | **scullv's / tmpfs's** (paired) |"
    );
    out!(s, "|---|---|---|---|---|");
    for &(size, bs, op, target) in seq.keys() {
        if size != large || target != Target::Scullv {
            continue;
        }
        let r = |t| Some(get(large, bs, op, t)?.median / get(small, bs, op, t)?.median);
        let paired = |size| Some(results.paired.get(&(size, bs, op))?.median);
        let (Some(a), Some(b), Some(pl), Some(ps)) = (
            r(Target::Scullv),
            r(Target::Tmpfs),
            paired(large),
            paired(small),
        ) else {
            continue;
        };
        out!(
            s,
            "| {} | {} | **{}** | {} | **{}** |",
            size_name(bs as u64),
            op.name(),
            x(a),
            x(b),
            x(pl / ps)
        );
    }
    out!(s);
}

/// A line of the chart: its kind of pass, its target and its points (log2 of the block size in
/// 4 KiB units, MiB/s).
type Series = (Op, Target, Vec<(f64, f64)>);

/// The chart: throughput against block size at the plan's chart size, scullv (solid) and tmpfs
/// (dashed), one colour per kind of pass. `None` when the sequential section did not run.
fn chart(plan: &Plan, repeats: u32, results: &Results) -> Res<Option<String>> {
    let size = plan.chart_size;
    let series: Vec<Series> = [Op::Read, Op::Overwrite, Op::Fresh]
        .into_iter()
        .flat_map(|op| TARGETS.map(|t| (op, t)))
        .map(|(op, t)| {
            let points = results
                .seq
                .iter()
                .filter(|(k, _)| k.0 == size && k.2 == op && k.3 == t)
                .map(|(k, s)| (((k.1 as u64 / (4 * KIB)) as f64).log2(), s.median))
                .collect();
            (op, t, points)
        })
        .filter(|(_, _, p): &Series| !p.is_empty())
        .collect();
    if series.is_empty() {
        return Ok(None);
    }
    let top = series
        .iter()
        .flat_map(|(_, _, p)| p.iter().map(|q| q.1))
        .fold(0.0, f64::max)
        * 1.1;
    let accel = std::env::var("SCULLV_ACCEL").unwrap_or_else(|_| "unknown".into());
    let err = |e: &dyn std::fmt::Display| Outcome::Fail(format!("chart: {e}"));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "scullv and tmpfs: sequential throughput at {} ({}, median of {repeats})",
                    size_name(size),
                    accel.to_uppercase()
                ),
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.3f64..10.3f64, 0f64..top)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_labels(12)
            .x_label_formatter(&|v| {
                let k = v.round();
                if (v - k).abs() < 1e-6 && (0.0..=10.0).contains(&k) {
                    size_name((4 * KIB) << k as u32)
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|v| format!("{v:.0}"))
            .light_line_style(WHITE)
            .x_desc("block size (log scale)")
            .y_desc("MiB/s")
            .draw()
            .map_err(|e| err(&e))?;
        for (op, target, points) in series {
            let colour = match op {
                Op::Read => RGBColor(31, 119, 180),
                Op::Overwrite => RGBColor(44, 160, 44),
                _ => RGBColor(214, 39, 40),
            };
            let label = format!("{} {}", target.name(), op.name());
            let style = colour.stroke_width(2);
            let drawn = if target == Target::Scullv {
                chart
                    .draw_series(LineSeries::new(points.clone(), style))
                    .map_err(|e| err(&e))?
            } else {
                chart
                    .draw_series(DashedLineSeries::new(points.clone(), 6, 4, style))
                    .map_err(|e| err(&e))?
            };
            let dashed = target == Target::Tmpfs;
            drawn.label(label).legend(move |(x, y)| {
                if dashed {
                    PathElement::new(vec![(x, y), (x + 8, y)], style)
                } else {
                    PathElement::new(vec![(x, y), (x + 20, y)], style)
                }
            });
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(Some(svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread() {
        let stat = Stat::of(vec![3.0, 1.0, 2.0, 10.0, 2.5]);
        assert_eq!(stat.median, 2.5);
        assert_eq!((stat.min, stat.max), (1.0, 10.0));
        assert!((stat.spread() - 360.0).abs() < 1e-9);
        assert_eq!(Stat::of(vec![1.0, 3.0]).median, 2.0);
    }

    #[test]
    fn names_sizes() {
        assert_eq!(size_name(4 * KIB), "4 KiB");
        assert_eq!(size_name(32 * MIB), "32 MiB");
        assert_eq!(size_name(GIB), "1 GiB");
    }

    #[test]
    fn summarises_ratios() {
        assert!(Summary::of(&[]).is_none());
        let s = Summary::of(&[(1.5, "a".into()), (0.5, "b".into()), (1.0, "c".into())]);
        let s = s.expect("three ratios");
        assert_eq!(
            (s.median, s.worst.1.as_str(), s.best.1.as_str()),
            (1.0, "b", "a")
        );
    }
}
