// SPDX-License-Identifier: GPL-2.0

//! The goals of issue 10, each judged from the results: what was measured and a verdict.

use super::plan::{size_name, Op, Target, KIB, MIB, OPS};
use super::random::PREAD_GEOMETRIES;
use super::report::x;
use super::results::{Calls, Lookup, Results};
use super::sample::Stat;

/// A verdict for a ratio that must be at least `goal`.
pub(super) fn at_least(worst: f64, goal: f64) -> String {
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

/// "met" or "missed", with the figure that decided it.
fn verdict_key(met: bool, figure: &str) -> String {
    format!("{} ({figure})", if met { "met" } else { "missed" })
}

/// "64 KiB blocks, 1 GiB".
pub(super) fn cell_name(size: u64, bs: usize) -> String {
    format!("{} blocks, {}", size_name(bs as u64), size_name(size))
}

/// The median, worst and best of ratios measured in several cells.
pub(super) struct Summary {
    pub(super) median: f64,
    pub(super) worst: (f64, String),
    pub(super) best: (f64, String),
}

impl Summary {
    pub(super) fn of(ratios: &[(f64, String)]) -> Option<Self> {
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

    pub(super) fn show(&self) -> String {
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

/// One goal of issue 10, judged.
pub(super) struct Goal {
    /// The goal, as `bench.md` states it.
    pub(super) goal: String,
    /// What was measured, in full (`bench.md`).
    pub(super) measured: String,
    /// The verdict (`bench.md`).
    pub(super) verdict: String,
    /// The verdict with the key figures, in a sentence or two (`summary.md`).
    pub(super) brief: String,
    /// A short name of the goal, the same in every plan, and the verdict in a few words with the
    /// figure that decided it (the key-ratio table of `summary.md`).
    pub(super) key: (&'static str, String),
}

/// "a", "a and b", "a, b and c".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The goals of issue 10.
pub(super) fn goals(results: &Results) -> Vec<Goal> {
    let mut rows = Vec::new();
    let seq = &results.seq;
    let get = |size, bs, op, t| seq.get(&(size, bs, op, t)).map(|s: &Stat| s.median);

    // 1: scullv at least 2x tmpfs at block sizes of 64 KiB and more, every kind of pass.
    let mut parts = Vec::new();
    let (mut met_ops, mut missed_ops) = (Vec::new(), Vec::new());
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
        let brief = format!(
            "{} (median {}, worst {})",
            op.name(),
            x(summary.median),
            x(summary.worst.0)
        );
        if summary.worst.0 >= 2.0 {
            met_ops.push(brief);
        } else {
            missed_ops.push(brief);
        }
    }
    if let Some(worst) = worst {
        let mut brief = Vec::new();
        if !met_ops.is_empty() {
            brief.push(format!("**met** for {}", and_list(&met_ops)));
        }
        if !missed_ops.is_empty() {
            brief.push(format!("**missed** for {}", and_list(&missed_ops)));
        }
        rows.push(Goal {
            goal: "Sequential write and read at blocks >= 64 KiB: at least 2.0x tmpfs".into(),
            measured: format!(
                "{met} of {cells} cells at 2.0x or more. {}",
                parts.join("; ")
            ),
            verdict: at_least(worst, 2.0),
            brief: format!(
                "{}; {met} of {cells} cells at 2.0x or more",
                brief.join("; ")
            ),
            key: (
                "goal: at least 2.0x tmpfs at blocks >= 64 KiB",
                verdict_key(worst >= 2.0, &format!("worst {}", x(worst))),
            ),
        });
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
        let cells = format!(
            "{} of {} cells at 0.9x or more",
            ratios.iter().filter(|r| r.0 >= 0.9).count(),
            ratios.len()
        );
        let verdict = at_least(summary.worst.0, 0.9);
        let tmpfs: Vec<f64> = results
            .against_overwrite
            .iter()
            .filter(|(k, _)| k.1 >= (64 << 10) && k.2 == Op::Fresh && k.3 == Target::Tmpfs)
            .map(|(_, r)| r.median)
            .collect();
        let tmpfs = match (
            tmpfs.iter().copied().reduce(f64::min),
            tmpfs.iter().copied().reduce(f64::max),
        ) {
            (Some(lo), Some(hi)) => format!("; tmpfs {} to {}", x(lo), x(hi)),
            _ => String::new(),
        };
        rows.push(Goal {
            goal: format!(
                "Fresh writes at least 0.9x overwrites at blocks >= 64 KiB (order {order}, qset \
                 {qset})"
            ),
            measured: format!("{cells}; {}", summary.show()),
            brief: format!("{verdict}: median {}; {cells}{tmpfs}", x(summary.median)),
            verdict,
            key: (
                "goal: fresh writes at least 0.9x overwrites",
                verdict_key(
                    summary.worst.0 >= 0.9,
                    &format!("worst {}", x(summary.worst.0)),
                ),
            ),
        });
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
        let at_mib =
            scullv
                .iter()
                .find(|(bs, _)| *bs as u64 == MIB)
                .map_or(String::new(), |(_, c)| {
                    format!(
                        " ({} reads at 1 MiB; the book's driver needs {}, one per 64 KiB quantum)",
                        c.reads,
                        size.div_ceil(64 * KIB) + 1
                    )
                });
        rows.push(Goal {
            goal: "One system call per block, whatever the block size".into(),
            measured: if bad.is_empty() {
                format!("every block size ({range}): reads = blocks + 1 (EOF), writes = blocks")
            } else {
                format!("more calls than blocks at {}", bad.join(", "))
            },
            verdict: if bad.is_empty() {
                "**met**".into()
            } else {
                "**missed**".into()
            },
            brief: if bad.is_empty() {
                format!(
                    "**met**: a {} copy takes blocks + 1 reads and blocks writes at {range} \
                     blocks{at_mib}",
                    size_name(size)
                )
            } else {
                format!("**missed**: more calls than blocks at {}", bad.join(", "))
            },
            key: (
                "goal: one system call per block",
                verdict_key(bad.is_empty(), "at every block size"),
            ),
        });
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
        let percent = |r: f64| format!("{:+.0}%", (r - 1.0) * 100.0);
        let geometries: Vec<String> = scullv
            .iter()
            .map(|(on, r)| format!("{} ({})", percent(*r), on.name()))
            .collect();
        let tmpfs = results
            .pread_ratio(Lookup::Tmpfs)
            .map_or(String::new(), |r| format!("; tmpfs {}", percent(r)));
        rows.push(Goal {
            goal: "Random 1-byte pread at 1 GiB within 20% of the same at 1 MiB, every geometry"
                .into(),
            measured: measured.join("; "),
            verdict: if worst <= 1.2 {
                "**met**".into()
            } else {
                format!(
                    "**missed**: {:+.0}% at worst, goal +20%",
                    (worst - 1.0) * 100.0
                )
            },
            brief: format!(
                "{}: {}{tmpfs}",
                if worst <= 1.2 {
                    "**met**"
                } else {
                    "**missed**"
                },
                geometries.join(", ")
            ),
            key: (
                "goal: random pread at the large size within 20% of the small",
                verdict_key(worst <= 1.2, &format!("{} at worst", percent(worst))),
            ),
        });
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
        let mean = (log_sum / f64::from(cells)).exp();
        let verdict: String = if rel >= 1.0 {
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
        };
        let key = if rel >= 1.0 {
            "met".to_string()
        } else if log_sum >= 0.0 {
            "met on average".to_string()
        } else {
            "missed".to_string()
        };
        rows.push(Goal {
            brief: format!(
                "{verdict}; scullv's ({} / {}) over tmpfs's: geometric mean {} of the {cells} \
                 pass and block size combinations, worst {}",
                size_name(large),
                size_name(small),
                x(mean),
                x(rel)
            ),
            key: (
                "goal: the largest size falls off no more than tmpfs's",
                format!("{key} (mean {}, worst {})", x(mean), x(rel)),
            ),
            verdict,
            goal: format!(
                "Sequential throughput at {} falls off, relative to {}, no more than tmpfs's",
                size_name(large),
                size_name(small)
            ),
            measured: format!(
                "scullv's ratio at least tmpfs's in {met} of {cells} cells (pass x block size); \
                 geometric mean of scullv's / tmpfs's {}; worst: {at}",
                x(mean)
            ),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

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
