// SPDX-License-Identifier: GPL-2.0

//! The statistics of a figure's timed samples: median and range, and MiB/s of a timed transfer.

use std::time::Duration;

use super::plan::MIB;

/// The median and range of a figure's samples.
#[derive(Clone, Copy, Debug)]
pub(super) struct Stat {
    pub(super) median: f64,
    pub(super) min: f64,
    pub(super) max: f64,
}

impl Stat {
    pub(super) fn of(mut samples: Vec<f64>) -> Self {
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
    pub(super) fn spread(&self) -> f64 {
        if self.median > 0.0 {
            (self.max - self.min) / self.median * 100.0
        } else {
            0.0
        }
    }
}

/// MiB/s of `bytes` moved in `time`.
pub(super) fn mibs(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / MIB as f64 / time.as_secs_f64().max(1e-9)
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
}
