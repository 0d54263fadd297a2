// SPDX-License-Identifier: GPL-2.0

//! The chart of `throughput.svg`: sequential throughput against block size, drawn with plotters.

use plotters::prelude::*;

use super::plan::{size_name, Op, Plan, Target, KIB, TARGETS};
use super::results::Results;
use crate::util::{Outcome, Res};

/// A line of the chart: its kind of pass, its target and its points (log2 of the block size in
/// 4 KiB units, MiB/s).
pub(super) type Series = (Op, Target, Vec<(f64, f64)>);

/// The chart: throughput against block size at the plan's chart size, scullv (solid) and tmpfs
/// (dashed), one colour per kind of pass. `None` when the sequential section did not run.
pub(super) fn chart(plan: &Plan, repeats: u32, results: &Results) -> Res<Option<String>> {
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
