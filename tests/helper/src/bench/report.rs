// SPDX-License-Identifier: GPL-2.0

//! The results as markdown: `bench.md`, every table with a header naming the machine, and the
//! helpers of the markdown that `summary` also uses.

use std::fmt::Write as _;

use super::goals::goals;
use super::plan::{size_name, Op, Plan, Target, KIB, MIB};
use super::results::{Calls, Lookup, Results};
use super::sample::Stat;
use super::{first_line_with, Args};

/// Appends a line to a string.
macro_rules! out {
    ($s:expr) => {
        $s.push('\n')
    };
    ($s:expr, $($arg:tt)*) => {{
        let _ = writeln!($s, $($arg)*);
    }};
}

pub(super) use out;

/// A ratio as "1.23x".
pub(super) fn x(ratio: f64) -> String {
    format!("{ratio:.2}x")
}

/// A throughput with its spread.
pub(super) fn tp(stat: &Stat) -> String {
    format!("{:.0} (±{:.0}%)", stat.median, stat.spread() / 2.0)
}

/// The guest's kernel release and which of the project's kernels it is: "7.3.4 (the base test
/// kernel)".
pub(super) fn guest_kernel() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |k| k.trim().to_string());
    let which = match std::env::var("SCULLV_KERNEL").as_deref() {
        Ok("debian") => "Debian's own kernel",
        Ok("debug") => "the debug test kernel",
        _ => "the base test kernel",
    };
    format!("{release} ({which})")
}

/// The results as markdown: a header saying where they come from, the goals, then one table per
/// section, key columns (ratios of figures of this run) in bold.
pub(super) fn markdown(args: &Args, plan: &Plan, results: &Results, elapsed: u64) -> String {
    let mut s = String::new();
    let accel = std::env::var("SCULLV_ACCEL").unwrap_or_else(|_| "unknown".into());
    let cpu = std::env::var("SCULLV_CPU").unwrap_or_else(|_| "unknown".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = first_line_with("/proc/cpuinfo", "model name");
    let mem = first_line_with("/proc/meminfo", "MemTotal");
    out!(s, "# scullv benchmark results");
    out!(s);
    out!(
        s,
        "Made by `{}` in one QEMU guest with the static helper (`scullv-tool bench`, \
         tests/helper/src/bench/). Every figure comes from this run: the median of {} timed \
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
    out!(s, "| guest kernel | {} |", guest_kernel());
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
        for goal in goals {
            out!(
                s,
                "| {} | {} | {} |",
                goal.goal,
                goal.measured,
                goal.verdict
            );
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
pub(super) fn seq_tables(s: &mut String, results: &Results) {
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
