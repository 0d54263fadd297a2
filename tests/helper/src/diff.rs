// SPDX-License-Identifier: GPL-2.0

//! The `diff` subcommand: the same seeded random sequence of file operations on the device and
//! on a tmpfs file, comparing every result.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustix::fs::{FileType, OFlags, SeekFrom};
use rustix::io::Errno;

use crate::dev::{DevArg, Geometry, GeometryArgs};
use crate::util::{diag, ensure, errno_name, fail, open, show, trim, Ctx, Res};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    dev: DevArg,
    #[command(flatten)]
    geometry: GeometryArgs,
    /// The random sequence's seed
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many operations to run
    #[arg(long, default_value_t = 2000)]
    ops: u64,
    /// The tmpfs file to compare with (created and truncated)
    #[arg(long, default_value = "/tmp/scullv-diff")]
    file: PathBuf,
    /// The device's size limit: every write ends at or below it
    #[arg(long, default_value_t = 64 << 20)]
    limit: u64,
}

/// Open descriptors per side.
const SLOTS: usize = 3;
/// Steps between comparisons of the whole contents.
const FULL_EVERY: u64 = 200;
/// The furthest offset used, to keep the data under about 64 MiB.
const SPAN_MAX: u64 = 48 << 20;

/// How an open call opens the file.
#[derive(Clone, Copy, Debug)]
struct Flags {
    access: OFlags,
    trunc: bool,
    append: bool,
}

impl Flags {
    fn oflags(self) -> OFlags {
        let mut flags = self.access;
        flags.set(OFlags::TRUNC, self.trunc);
        flags.set(OFlags::APPEND, self.append);
        flags
    }

    /// The same open on a regular file: the device trims on a write-only open without O_APPEND
    /// (that is O_TRUNC on a file) and only with write access.
    fn on_file(self) -> Self {
        let write_only = self.access == OFlags::WRONLY;
        Self {
            trunc: (self.trunc || (write_only && !self.append)) && self.access != OFlags::RDONLY,
            ..self
        }
    }
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let access = match self.access {
            OFlags::WRONLY => "O_WRONLY",
            OFlags::RDWR => "O_RDWR",
            _ => "O_RDONLY",
        };
        write!(
            f,
            "{access}{}{}",
            if self.trunc { "|O_TRUNC" } else { "" },
            if self.append { "|O_APPEND" } else { "" }
        )
    }
}

/// One step of the sequence.
#[derive(Clone, Debug)]
enum Op {
    Open(usize, Flags),
    Close(usize),
    Seek(usize, SeekFrom),
    Read(usize, usize),
    Write(usize, usize),
    Pread(usize, u64, usize),
    Pwrite(usize, u64, usize),
    Readv(usize, Vec<usize>),
    Writev(usize, Vec<usize>),
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Open(s, flags) => write!(f, "open(slot {s}, {flags})"),
            Op::Close(s) => write!(f, "close(slot {s})"),
            Op::Seek(s, pos) => write!(f, "lseek(slot {s}, {pos:?})"),
            Op::Read(s, len) => write!(f, "read(slot {s}, {len})"),
            Op::Write(s, len) => write!(f, "write(slot {s}, {len})"),
            Op::Pread(s, at, len) => write!(f, "pread(slot {s}, {len}, at {at})"),
            Op::Pwrite(s, at, len) => write!(f, "pwrite(slot {s}, {len}, at {at})"),
            Op::Readv(s, lens) => write!(f, "readv(slot {s}, {lens:?})"),
            Op::Writev(s, lens) => write!(f, "writev(slot {s}, {lens:?})"),
        }
    }
}

impl Op {
    fn slot(&self) -> usize {
        match *self {
            Op::Open(s, _) | Op::Close(s) | Op::Seek(s, _) | Op::Read(s, _) | Op::Write(s, _) => s,
            Op::Pread(s, ..) | Op::Pwrite(s, ..) | Op::Readv(s, _) | Op::Writev(s, _) => s,
        }
    }
}

/// One side of the comparison: a path and its open descriptors.
struct Side {
    path: PathBuf,
    /// Whether opens follow the device's trimming rule as they are (else as on a file).
    device: bool,
    slots: [Option<OwnedFd>; SLOTS],
}

/// What an operation did: its result and the bytes it read.
#[derive(PartialEq)]
struct Effect {
    result: Result<u64, Errno>,
    data: Vec<u8>,
    /// The slot's file position afterwards, if open.
    pos: Option<u64>,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", show(&self.result))?;
        if let Some(pos) = self.pos {
            write!(f, " (position {pos})")?;
        }
        Ok(())
    }
}

impl Side {
    fn new(path: &Path) -> Res<Self> {
        let fd = open(path, OFlags::RDONLY).ctx(path.display())?;
        let stat = rustix::fs::fstat(&fd).ctx("fstat")?;
        Ok(Self {
            path: path.into(),
            device: FileType::from_raw_mode(stat.st_mode) == FileType::CharacterDevice,
            slots: Default::default(),
        })
    }

    /// Runs `op` with `data` as the bytes any write writes.
    fn apply(&mut self, op: &Op, data: &[u8]) -> Effect {
        let mut out = Vec::new();
        let slot = op.slot();
        let result = match (op, &self.slots[slot]) {
            (Op::Open(_, flags), _) => {
                self.slots[slot] = None;
                let flags = if self.device { *flags } else { flags.on_file() };
                open(&self.path, flags.oflags()).map(|fd| {
                    self.slots[slot] = Some(fd);
                    0
                })
            }
            (Op::Close(_), _) => {
                self.slots[slot] = None;
                Ok(0)
            }
            (_, None) => Err(Errno::BADF),
            (Op::Seek(_, pos), Some(fd)) => rustix::fs::seek(fd, *pos),
            (Op::Read(_, len) | Op::Pread(_, _, len), Some(fd)) => {
                out = vec![0; *len];
                let n = match op {
                    Op::Pread(_, at, _) => rustix::io::pread(fd, &mut out, *at),
                    _ => rustix::io::read(fd, &mut out),
                };
                out.truncate(*n.as_ref().unwrap_or(&0));
                n.map(|n| n as u64)
            }
            (Op::Write(..), Some(fd)) => rustix::io::write(fd, data).map(|n| n as u64),
            (Op::Pwrite(_, at, _), Some(fd)) => rustix::io::pwrite(fd, data, *at).map(|n| n as u64),
            (Op::Readv(_, lens), Some(fd)) => {
                let mut bufs: Vec<Vec<u8>> = lens.iter().map(|&len| vec![0; len]).collect();
                let mut iov: Vec<IoSliceMut<'_>> =
                    bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
                let n = rustix::io::readv(fd, &mut iov);
                out = bufs.concat();
                out.truncate(*n.as_ref().unwrap_or(&0));
                n.map(|n| n as u64)
            }
            (Op::Writev(_, lens), Some(fd)) => {
                let mut rest = data;
                let iov: Vec<IoSlice<'_>> = lens
                    .iter()
                    .map(|&len| {
                        let (part, tail) = rest.split_at(len);
                        rest = tail;
                        IoSlice::new(part)
                    })
                    .collect();
                rustix::io::writev(fd, &iov).map(|n| n as u64)
            }
        };
        let pos = self.slots[slot]
            .as_ref()
            .and_then(|fd| rustix::fs::seek(fd, SeekFrom::Current(0)).ok());
        Effect {
            result,
            data: out,
            pos,
        }
    }

    /// The whole contents, read through a new descriptor.
    fn contents(&self) -> Res<Vec<u8>> {
        let fd = open(&self.path, OFlags::RDONLY).ctx(self.path.display())?;
        let size = rustix::fs::seek(&fd, SeekFrom::End(0)).ctx("lseek")?;
        crate::util::read_at(&fd, 0, size as usize + 1)
    }
}

/// Generates the sequence.
struct Gen {
    rng: ChaCha8Rng,
    geometry: Geometry,
    /// Offsets and lengths stay in [0, span] and below the limit.
    span: u64,
    max_len: usize,
}

impl Gen {
    fn len(&mut self) -> usize {
        let q = self.geometry.quantum as usize;
        match self.rng.random_range(0..20) {
            0 => 0,
            1..=4 => self.rng.random_range(1..16),
            5..=9 => self.rng.random_range(1..4096),
            10..=12 => q - 1 + self.rng.random_range(0..3),
            _ => self.rng.random_range(1..=self.max_len),
        }
    }

    /// An offset in [0, span - max_len]: near quantum and item boundaries, near `size`, or
    /// anywhere.
    fn offset(&mut self, size: u64) -> u64 {
        let top = self.span - self.max_len as u64;
        let Geometry { quantum, itemsize } = self.geometry;
        let near = |rng: &mut ChaCha8Rng, unit: u64| {
            let k = rng.random_range(0..=top / unit);
            (k * unit + rng.random_range(0..5)).saturating_sub(2)
        };
        let at = match self.rng.random_range(0..10) {
            0..=3 => near(&mut self.rng, quantum),
            4..=5 => near(&mut self.rng, itemsize),
            6..=7 => (size + self.rng.random_range(0..2 * quantum)).saturating_sub(quantum),
            _ => self.rng.random_range(0..=top),
        };
        at.min(top)
    }

    /// A position to seek to: mostly an offset, sometimes negative, as each whence.
    fn seek(&mut self, pos: u64, size: u64) -> SeekFrom {
        let target = if self.rng.random_bool(0.1) {
            -(self.rng.random_range(1..=self.geometry.quantum) as i64)
        } else {
            self.offset(size) as i64
        };
        match self.rng.random_range(0..3) {
            0 => SeekFrom::Start(target as u64),
            1 => SeekFrom::Current(target - pos as i64),
            _ => SeekFrom::End(target - size as i64),
        }
    }

    fn lens(&mut self) -> Vec<usize> {
        let count = self.rng.random_range(1..=4);
        (0..count).map(|_| self.len() / count).collect()
    }

    /// The next operation, given which slots are open, the file's size and slot positions.
    fn op(&mut self, open: &[bool; SLOTS], size: u64, pos: &[u64; SLOTS]) -> Op {
        let slot = self.rng.random_range(0..SLOTS);
        let top = self.span - self.max_len as u64;
        if size > top {
            // An append could cross the span: trim.
            let flags = Flags {
                access: OFlags::RDWR,
                trunc: true,
                append: false,
            };
            return Op::Open(slot, flags);
        }
        if open[slot] && pos[slot] > top {
            return Op::Seek(slot, SeekFrom::Start(self.offset(size)));
        }
        if !open[slot] || self.rng.random_range(0..25) == 0 {
            let access = [OFlags::RDONLY, OFlags::WRONLY, OFlags::RDWR, OFlags::RDWR]
                [self.rng.random_range(0..4)];
            let flags = Flags {
                access,
                trunc: self.rng.random_range(0..6) == 0,
                append: self.rng.random_range(0..4) == 0,
            };
            // Write-only opens without O_APPEND trim; keep most opens from doing so.
            let flags = match flags.access == OFlags::WRONLY
                && !flags.append
                && self.rng.random_range(0..3) > 0
            {
                true => Flags {
                    access: OFlags::RDWR,
                    ..flags
                },
                false => flags,
            };
            return Op::Open(slot, flags);
        }
        match self.rng.random_range(0..100) {
            0..=3 => Op::Close(slot),
            4..=18 => Op::Seek(slot, self.seek(pos[slot], size)),
            19..=33 => Op::Read(slot, self.len()),
            34..=53 => Op::Write(slot, self.len()),
            54..=63 => Op::Pread(slot, self.offset(size), self.len()),
            64..=77 => Op::Pwrite(slot, self.offset(size), self.len()),
            78..=87 => Op::Readv(slot, self.lens()),
            _ => Op::Writev(slot, self.lens()),
        }
    }
}

/// Runs the `diff` subcommand.
pub fn run(args: &Args) -> Res<()> {
    let dev = &args.dev.dev;
    trim(dev)?;
    let mut device = Side::new(dev)?;
    let geometry = args
        .geometry
        .resolve(&open(dev, OFlags::RDONLY).ctx(dev.display())?)?;
    open(&args.file, OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC).ctx(args.file.display())?;
    let mut file = Side::new(&args.file)?;
    ensure!(
        !file.device,
        "--file {} must be a regular file",
        args.file.display()
    );
    if !device.device {
        diag!(
            "{} is not a character device: opening it as a plain file",
            dev.display()
        );
    }

    let max_len = 4 * geometry.quantum as usize + 2;
    let span = (2 * geometry.itemsize)
        .max(16 * geometry.quantum)
        .min(SPAN_MAX)
        .min(args.limit);
    ensure!(
        span > 2 * max_len as u64,
        "--limit {} is too small for quantum {}",
        args.limit,
        geometry.quantum
    );
    let mut generator = Gen {
        rng: ChaCha8Rng::seed_from_u64(args.seed),
        geometry,
        span,
        max_len,
    };
    let replay = format!(
        "SEED={} (scullv-tool diff --seed {} --ops {} --quantum {} --itemsize {} --limit {})",
        args.seed, args.seed, args.ops, geometry.quantum, geometry.itemsize, args.limit
    );

    let mut history = VecDeque::new();
    let (mut size, mut pos) = (0, [0; SLOTS]);
    let mut moved = 0;
    let mut errors = BTreeMap::new();
    for step in 1..=args.ops {
        let open = file.slots.each_ref().map(Option::is_some);
        let op = generator.op(&open, size, &pos);
        let mut data = vec![
            0;
            match &op {
                Op::Write(_, len) | Op::Pwrite(_, _, len) => *len,
                Op::Writev(_, lens) => lens.iter().sum(),
                _ => 0,
            }
        ];
        generator.rng.fill_bytes(&mut data);

        let on_device = device.apply(&op, &data);
        let on_file = file.apply(&op, &data);
        history.push_back(format!("step {step}: {op} = {on_file}"));
        if history.len() > 8 {
            history.pop_front();
        }
        if on_device != on_file {
            for line in &history {
                diag!("{line}");
            }
            let what = if on_device.result == on_file.result && on_device.pos == on_file.pos {
                "different data".to_string()
            } else {
                format!("device {on_device}, file {on_file}")
            };
            fail!(
                "seed {} step {step}: {op}: {what}; replay: {replay}",
                args.seed
            );
        }
        moved += on_file.data.len()
            + if on_file.result.is_ok() {
                data.len()
            } else {
                0
            };
        if let Err(e) = on_file.result {
            *errors.entry(errno_name(e)).or_insert(0) += 1;
        }
        if let Some(p) = on_file.pos {
            pos[op.slot()] = p;
        }
        size = rustix::fs::stat(&file.path).ctx("stat")?.st_size as u64;
        if step % FULL_EVERY == 0 || step == args.ops {
            compare_contents(&device, &file, step, args.seed, &replay)?;
        }
    }
    diag!(
        "{} ops moved about {} MiB, final size {size}, errors alike on both sides: {errors:?}",
        args.ops,
        moved >> 20
    );
    diag!("seed {}, {} ops, ok", args.seed, args.ops);
    Ok(())
}

/// Fails unless both sides hold the same bytes.
fn compare_contents(device: &Side, file: &Side, step: u64, seed: u64, replay: &str) -> Res<()> {
    let (d, f) = (device.contents()?, file.contents()?);
    if d != f {
        let at = d.iter().zip(&f).position(|(a, b)| a != b);
        fail!(
            "seed {seed} step {step}: contents differ: device {} bytes, file {} bytes, first difference at {at:?}; replay: {replay}",
            d.len(),
            f.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_opens_follow_the_trimming_rule() {
        let flags = |access, trunc, append| Flags {
            access,
            trunc,
            append,
        };
        let on_file = |f: Flags| f.on_file().oflags();
        assert_eq!(
            on_file(flags(OFlags::WRONLY, false, false)),
            OFlags::WRONLY | OFlags::TRUNC
        );
        assert_eq!(
            on_file(flags(OFlags::WRONLY, false, true)),
            OFlags::WRONLY | OFlags::APPEND
        );
        assert_eq!(on_file(flags(OFlags::RDONLY, true, false)), OFlags::RDONLY);
        assert_eq!(on_file(flags(OFlags::RDWR, false, false)), OFlags::RDWR);
    }
}
