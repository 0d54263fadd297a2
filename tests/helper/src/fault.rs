// SPDX-License-Identifier: GPL-2.0

//! The `fault` subcommand: writes with the nth allocation of the call made to fail (through
//! `/proc/thread-self/fail-nth`), checking that the result is full, short or ENOMEM and that
//! the device then holds exactly what the call reported writing.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;
use rustix::io::Errno;

use crate::dev::{DevArg, GeometryArgs};
use crate::util::{
    diag, ensure, errno_name, expect_file, fail, open, open_rw, pattern, size_of, trim, write_at,
    Ctx, Outcome, Res,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    dev: DevArg,
    #[command(flatten)]
    geometry: GeometryArgs,
    /// The largest n to try
    #[arg(long, default_value_t = 400)]
    max_n: u32,
}

/// Item boundaries further out than this are not crossed, to keep the offsets small.
const FAR_ITEM: u64 = 256 << 20;
/// How many calls in a row must run out of fault points before stopping.
const CLEAN_RUNS: u32 = 3;

/// This thread's fail-nth file.
pub fn fail_nth_path() -> Option<PathBuf> {
    let tid = rustix::thread::gettid().as_raw_nonzero();
    [
        "/proc/thread-self/fail-nth".into(),
        format!("/proc/self/task/{tid}/fail-nth"),
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Reads the fail-nth value: 0 once the armed failure was injected.
pub fn read_fail_nth(fd: &OwnedFd) -> Res<u32> {
    let mut buf = [0; 16];
    let n = rustix::io::pread(fd, &mut buf, 0).ctx("read fail-nth")?;
    match std::str::from_utf8(&buf[..n])
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        Some(value) => Ok(value),
        None => fail!("fail-nth reads {:?}", String::from_utf8_lossy(&buf[..n])),
    }
}

/// The device's expected contents: two windows of bytes (the rest is zeros) and the size.
struct Model {
    windows: [(u64, Vec<u8>); 2],
    size: u64,
}

impl Model {
    fn write(&mut self, pos: u64, data: &[u8]) {
        for (start, bytes) in &mut self.windows {
            let end = *start + bytes.len() as u64;
            let (from, to) = (pos.max(*start), (pos + data.len() as u64).min(end));
            if from < to {
                let src = &data[(from - pos) as usize..(to - pos) as usize];
                bytes[(from - *start) as usize..(to - *start) as usize].copy_from_slice(src);
            }
        }
        self.size = self.size.max(pos + data.len() as u64);
    }

    /// Fails unless the device shows the model.
    fn check(&self, dev: &Path, fd: &OwnedFd, what: &str) -> Res<()> {
        let size = size_of(dev)?;
        ensure!(
            size == self.size,
            "{what}: expected size {}, got {size}",
            self.size
        );
        for (start, bytes) in &self.windows {
            let len = bytes.len().min(size.saturating_sub(*start) as usize);
            expect_file(what, fd, *start, &bytes[..len])?;
        }
        Ok(())
    }
}

/// Runs the `fault` subcommand.
pub fn run(args: &Args) -> Res<()> {
    let Some(nth_path) = fail_nth_path() else {
        return Err(Outcome::Skip(
            "no /proc/thread-self/fail-nth (CONFIG_FAULT_INJECTION)".into(),
        ));
    };
    if !Path::new("/sys/kernel/debug/failslab").exists() {
        return Err(Outcome::Skip(
            "no /sys/kernel/debug/failslab (CONFIG_FAILSLAB, debugfs)".into(),
        ));
    }
    let dev = &args.dev.dev;
    trim(dev)?;
    let fd = open_rw(dev)?;
    let geometry = args.geometry.resolve(&fd)?;
    let (q, itemsize) = (geometry.quantum, geometry.itemsize);

    // The reference: quanta 0 and half of 1; a hole; half a quantum at `boundary - q`. The
    // write starts in the hole, covers that half quantum and crosses `boundary`.
    let crosses = itemsize <= FAR_ITEM;
    let boundary = if crosses {
        (4 * q).div_ceil(itemsize) * itemsize
    } else {
        4 * q
    };
    let pieces = [
        (0, pattern(1, 0, (q + q / 2) as usize)),
        (boundary - q, pattern(2, boundary - q, (q / 2) as usize)),
    ];
    let write_pos = boundary - q - q / 4;
    let data = pattern(3, write_pos, (2 * q + q / 2) as usize);
    let mut reference = Model {
        windows: [
            (0, vec![0; 2 * q as usize]),
            (boundary - 2 * q, vec![0; 4 * q as usize]),
        ],
        size: 0,
    };
    for (pos, bytes) in &pieces {
        reference.write(*pos, bytes);
    }
    diag!(
        "writing {} bytes at {write_pos}: over data, into new quanta{}",
        data.len(),
        if crosses {
            format!(", across the item boundary at {boundary}")
        } else {
            String::new()
        }
    );

    let nth = open(&nth_path, OFlags::RDWR).ctx(nth_path.display())?;
    let (mut full, mut absorbed, mut short, mut enomem) = (0, 0, 0, 0);
    let mut clean = 0;
    let mut last = 0;
    for n in 1..=args.max_n {
        last = n;
        trim(dev)?;
        for (pos, bytes) in &pieces {
            write_at(&fd, *pos, bytes)?;
        }
        let arm = n.to_string();
        rustix::io::pwrite(&nth, arm.as_bytes(), 0).ctx("write fail-nth")?;
        let result = rustix::io::pwrite(&fd, &data, write_pos);
        let left = read_fail_nth(&nth)?;
        if left != 0 {
            rustix::io::pwrite(&nth, b"0", 0).ctx("write fail-nth")?;
        }
        let injected = left == 0;
        let written = match result {
            Ok(len) if len == data.len() => {
                full += 1;
                absorbed += u32::from(injected);
                len
            }
            Ok(len) if len > 0 => {
                short += 1;
                len
            }
            Err(Errno::NOMEM) => {
                enomem += 1;
                0
            }
            other => fail!(
                "n={n}: write of {} bytes at {write_pos}: expected the full count, a short count or ENOMEM, got {}",
                data.len(),
                other.map_or_else(errno_name, |len| len.to_string())
            ),
        };
        let mut model = Model {
            windows: reference.windows.clone(),
            size: reference.size,
        };
        model.write(write_pos, &data[..written]);
        model.check(
            dev,
            &fd,
            &format!("n={n}, after a write that returned {written}"),
        )?;
        clean = if injected { 0 } else { clean + 1 };
        if clean == CLEAN_RUNS {
            break;
        }
    }
    trim(dev)?;
    diag!(
        "n=1..{last}: {full} full ({absorbed} despite an injected failure), {short} short, {enomem} ENOMEM; contents matched after each"
    );
    ensure!(
        short + enomem > 0,
        "no write saw an injected failure for n=1..{last}: is failslab/fail_page_alloc set up (ignore-gfp-wait=N, min-order=0)?"
    );
    Ok(())
}
