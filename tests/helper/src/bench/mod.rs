// SPDX-License-Identifier: GPL-2.0

//! The `bench` subcommand: the benchmark behind `make bench` (scripts/bench.sh), run in one
//! guest. It measures scullv against a tmpfs file with the same calls and prints the results as
//! markdown (`results/bench.md`), their key figures for the README (`results/summary.md`) and an
//! SVG chart (`results/throughput.svg`), each between marker lines on stdout, with progress as
//! `# ` lines before them.
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
//!
//! One file a concern: `plan` (what is measured), `sample` (statistics), `io` (the read and
//! write loops), a file per section (`sequential`, `mmap`, `random`, `syscalls`, `memcpy`),
//! `results` (what they measured), `goals` (the verdicts), `report` (bench.md), `summary`
//! (summary.md) and `chart` (the SVG).

mod chart;
mod goals;
mod io;
mod memcpy;
mod mmap;
mod plan;
mod random;
mod report;
mod results;
mod sample;
mod sequential;
mod summary;
mod syscalls;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rustix::fs::OFlags;

use self::plan::{size_name, Plan, Target, KIB, MIB};
use self::results::Results;
use crate::dev::{self, DevArg, ResetOnDrop};
use crate::util::{diag, open, open_rw, trim, Ctx, Res};

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
                    results.memcpy.push((size, memcpy::memcpy(&plan, size, r)));
                }
            }
            Section::Seq => sequential::seq(&plan, r, &files, &mut buf, &mut results)?,
            Section::Mmap => mmap::mmap(&plan, r, &files, &mut buf, &mut results)?,
            Section::Pread => random::pread(&plan, r, &files, &mut buf, &mut results)?,
            Section::Syscalls => syscalls::copies(&plan, &files, &mut buf, &mut results)?,
        }
        let name = format!("{section:?}").to_lowercase();
        diag!("== {name} took {} s", t.elapsed().as_secs());
        clear(&files)?;
    }
    let _ = std::fs::remove_file(&files.file);
    let _ = std::fs::remove_file(&files.small_file);

    let elapsed = start.elapsed().as_secs();
    let markdown = report::markdown(args, &plan, &results, elapsed);
    let svg = chart::chart(&plan, args.repeats, &results)?;
    println!("{MARK} begin bench.md {MARK}");
    print!("{markdown}");
    println!("{MARK} end bench.md {MARK}");
    println!("{MARK} begin summary.md {MARK}");
    print!(
        "{}",
        summary::summary(&plan, &results, &args.date, args.repeats)
    );
    println!("{MARK} end summary.md {MARK}");
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
