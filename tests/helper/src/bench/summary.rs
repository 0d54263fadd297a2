// SPDX-License-Identifier: GPL-2.0

//! The summary of a run (`summary.md`): the key figures of `bench.md` that the README's
//! benchmark block shows, which scripts/bench-readme.sh writes into the README. A header table
//! names the kernel and the plan; then, each under a `## ` heading that the script looks for,
//! the key ratios (one row each, named alike in every plan, so that the script can set the runs
//! of several kernels side by side), the throughput at 1 MiB blocks of the smallest size, and
//! the goals with their verdicts.

use std::fmt::Write as _;

use super::goals::goals;
use super::plan::{size_name, Op, Plan, Target, MIB};
use super::report::{guest_kernel, out, x};
use super::results::Results;

/// The passes in the order the README lists them.
const PASSES: [Op; 4] = [Op::Fresh, Op::Overwrite, Op::Append, Op::Read];

/// The summary as markdown, of a run on `date` that took `repeats` samples of every figure.
pub(super) fn summary(plan: &Plan, results: &Results, date: &str, repeats: u32) -> String {
    let mut s = String::new();
    let accel = std::env::var("SCULLV_ACCEL").unwrap_or_else(|_| "unknown".into());
    out!(s, "# scullv benchmark summary");
    out!(s);
    out!(
        s,
        "The key figures of `bench.md`, from the same run; scripts/bench-readme.sh writes them \
         into the README."
    );
    out!(s);
    out!(s, "| | |");
    out!(s, "|---|---|");
    out!(s, "| guest kernel | {} |", guest_kernel());
    out!(s, "| plan | {} |", plan.name);
    out!(s, "| accelerator | {} |", accel.to_uppercase());
    out!(s, "| date | {date} |");
    out!(s, "| samples | median of {repeats} |");
    if !results.mmap.is_empty() {
        out!(s, "| mmap | {} mapped |", size_name(plan.mmap_size));
    }
    out!(s);

    // The steadiest rows: 1 MiB blocks at the smallest size.
    let bs = MIB as usize;
    let size = results.seq_sizes().first().copied();
    let cell = |op, t| Some(results.seq.get(&(size?, bs, op, t))?.median);
    let paired = |op| Some(results.paired.get(&(size?, bs, op))?.median);
    let against = |op, t| Some(results.against_overwrite.get(&(size?, bs, op, t))?.median);
    let at = size.map_or(String::new(), |size| {
        format!("1 MiB blocks, {}", size_name(size))
    });
    let mut keys: Vec<(String, String)> = Vec::new();
    for op in PASSES {
        if let Some(r) = paired(op) {
            keys.push((format!("{}: scullv/tmpfs, {at}", op.name()), x(r)));
        }
    }
    for t in [Target::Scullv, Target::Tmpfs] {
        if let Some(r) = against(Op::Fresh, t) {
            keys.push((format!("fresh/overwrite: {}, {at}", t.name()), x(r)));
        }
    }
    let read = |t| Some(results.mmap_read.get(&t)?.median);
    for t in [Target::Scullv, Target::Tmpfs] {
        if let (Some((first, _)), Some(read)) = (results.mmap.get(&t), read(t)) {
            keys.push((
                format!("mmap first touch / read(): {}", t.name()),
                x(first.median / read),
            ));
        }
    }
    if let (Some(a), Some(b)) = (
        results.mmap.get(&Target::Scullv),
        results.mmap.get(&Target::Tmpfs),
    ) {
        keys.push((
            "mmap first touch: scullv/tmpfs".into(),
            x(a.0.median / b.0.median),
        ));
    }
    let goals = goals(results);
    for goal in &goals {
        keys.push((goal.key.0.into(), goal.key.1.clone()));
    }
    if !keys.is_empty() {
        out!(s, "## Key ratios");
        out!(s);
        out!(s, "| key ratio | measured |");
        out!(s, "|---|---|");
        for (name, value) in keys {
            out!(s, "| {name} | {value} |");
        }
        out!(s);
    }

    if let Some(size) = size.filter(|_| paired(Op::Read).is_some()) {
        out!(s, "## 1 MiB blocks");
        out!(s);
        out!(
            s,
            "| 1 MiB blocks, {} of data, MiB/s | scullv | tmpfs | scullv/tmpfs |",
            size_name(size)
        );
        out!(s, "|---|---|---|---|");
        let mibs = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
        for op in PASSES {
            out!(
                s,
                "| {} | {} | {} | {} |",
                op.name(),
                mibs(cell(op, Target::Scullv)),
                mibs(cell(op, Target::Tmpfs)),
                paired(op).map_or("-".into(), x)
            );
        }
        out!(s);
    }

    if !goals.is_empty() {
        out!(s, "## Goals");
        out!(s);
        out!(s, "| goal | result |");
        out!(s, "|---|---|");
        for goal in goals {
            out!(s, "| {} | {} |", goal.goal, goal.brief);
        }
        out!(s);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::sample::Stat;

    fn stat(median: f64) -> Stat {
        Stat {
            median,
            min: median,
            max: median,
        }
    }

    /// The headings and rows that scripts/bench-readme.sh reads.
    #[test]
    fn has_what_bench_readme_reads() {
        let mut results = Results::default();
        let bs = MIB as usize;
        for op in PASSES {
            results
                .seq
                .insert((MIB, bs, op, Target::Scullv), stat(2000.0));
            results
                .seq
                .insert((MIB, bs, op, Target::Tmpfs), stat(1000.0));
            results.paired.insert((MIB, bs, op), stat(2.0));
        }
        let text = summary(&Plan::new(true), &results, "today", 5);
        for line in [
            "| plan | quick |",
            "| date | today |",
            "| samples | median of 5 |",
            "## Key ratios",
            "| key ratio | measured |",
            "| read: scullv/tmpfs, 1 MiB blocks, 1 MiB | 2.00x |",
            "## 1 MiB blocks",
            "| write fresh | 2000 | 1000 | 2.00x |",
            "## Goals",
            "| goal | result |",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in:\n{text}"
            );
        }
        assert!(text.lines().any(|l| l.starts_with("| guest kernel | ")));
    }
}
