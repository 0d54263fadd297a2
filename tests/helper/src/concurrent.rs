// SPDX-License-Identifier: GPL-2.0

//! The `concurrent` subcommand: writers and readers of whole records on several devices at once,
//! checking that no call ever sees a torn record, while /proc/scullvmem is read.

use std::io::{IoSlice, IoSliceMut};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::dev;
use crate::util::{diag, ensure, fail, open_rw, read_at, trim, write_at, Outcome, Res};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// How long to run
    #[arg(long, default_value_t = 5)]
    secs: u64,
    /// The devices, comma-separated
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "/dev/scullv0,/dev/scullv1"
    )]
    devs: Vec<PathBuf>,
}

/// A record's size: 12 KiB, which divides no power-of-two quantum, so records cross quantum
/// boundaries.
const RECORD: usize = 12 << 10;
/// Records in each device's region.
const SLOTS: usize = 64;
/// Writers per device (ids 1 and 2; id 0 wrote the initial records) and readers per device.
const WRITERS: u32 = 2;
const READERS: u32 = 2;
const MAGIC: u32 = 0x5c01_1e57;

/// Fills `buf` with the record of `writer`'s `seq`th write to `slot`: a header, then bytes that
/// depend on all three.
fn fill_record(buf: &mut [u8], writer: u32, seq: u32, slot: usize) {
    for (i, word) in [MAGIC, writer, seq, slot as u32].into_iter().enumerate() {
        buf[4 * i..4 * i + 4].copy_from_slice(&word.to_le_bytes());
    }
    let mix = writer.wrapping_mul(131) ^ seq.wrapping_mul(2_654_435_761);
    for (i, byte) in buf[16..].iter_mut().enumerate() {
        *byte = (mix.wrapping_add(i as u32).wrapping_mul(0x9e37) >> 8) as u8;
    }
}

/// Checks that `buf` is one whole record for `slot` and returns its (writer, seq).
fn check_record(buf: &[u8], slot: usize) -> Result<(u32, u32), String> {
    let word = |i: usize| u32::from_le_bytes(buf[4 * i..4 * i + 4].try_into().unwrap_or_default());
    let (writer, seq) = (word(1), word(2));
    if word(0) != MAGIC || word(3) != slot as u32 {
        return Err(format!(
            "slot {slot}: bad header {:08x} {writer} {seq} {}",
            word(0),
            word(3)
        ));
    }
    let mut want = vec![0; RECORD];
    fill_record(&mut want, writer, seq, slot);
    match buf.iter().zip(&want).position(|(a, b)| a != b) {
        Some(at) => Err(format!(
            "slot {slot}: torn record: header says writer {writer} seq {seq}, byte {at} differs"
        )),
        None => Ok((writer, seq)),
    }
}

/// What the threads share.
struct Shared {
    stop: AtomicBool,
    failure: Mutex<Option<String>>,
}

impl Shared {
    /// Records the first failure and stops everyone.
    fn fail(&self, msg: String) {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        failure.get_or_insert(msg);
        self.stop.store(true, Ordering::Relaxed);
    }

    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }
}

/// Operation counts of one device.
#[derive(Default)]
struct Counts {
    writes: AtomicU64,
    reads: AtomicU64,
}

/// Writes random records until stopped; returns the last seq written to each slot. Writer 2
/// uses writev with the record split in two.
fn writer(dev: &Path, id: u32, shared: &Shared, counts: &Counts) -> Res<Vec<Option<u32>>> {
    let fd = open_rw(dev)?;
    let mut rng = ChaCha8Rng::seed_from_u64(u64::from(id));
    let mut last = vec![None; SLOTS];
    let mut buf = vec![0; RECORD];
    let mut seq = 0;
    while shared.running() {
        let slot = rng.random_range(0..SLOTS);
        seq += 1;
        fill_record(&mut buf, id, seq, slot);
        let at = (slot * RECORD) as u64;
        let n = if id == 1 {
            rustix::io::pwrite(&fd, &buf, at)
        } else {
            let (a, b) = buf.split_at(rng.random_range(1..RECORD));
            let flags = rustix::io::ReadWriteFlags::empty();
            rustix::io::pwritev2(&fd, &[IoSlice::new(a), IoSlice::new(b)], at, flags)
        };
        ensure!(
            n == Ok(RECORD),
            "writer {id}: write of slot {slot}: expected {RECORD}, got {}",
            crate::util::show(&n)
        );
        last[slot] = Some(seq);
        counts.writes.fetch_add(1, Ordering::Relaxed);
    }
    Ok(last)
}

/// Reads records until stopped and checks each. Reader 0 reads one record with pread, reader 1
/// three with preadv into two buffers split at a random point.
fn reader(dev: &Path, id: u32, shared: &Shared, counts: &Counts) -> Res<()> {
    let fd = open_rw(dev)?;
    let mut rng = ChaCha8Rng::seed_from_u64(100 + u64::from(id));
    let count = if id == 0 { 1 } else { 3 };
    let mut buf = vec![0; count * RECORD];
    while shared.running() {
        let slot = rng.random_range(0..=SLOTS - count);
        let at = (slot * RECORD) as u64;
        let n = if id == 0 {
            rustix::io::pread(&fd, &mut buf, at)
        } else {
            let (a, b) = buf.split_at_mut(rng.random_range(1..count * RECORD));
            let flags = rustix::io::ReadWriteFlags::empty();
            rustix::io::preadv2(
                &fd,
                &mut [IoSliceMut::new(a), IoSliceMut::new(b)],
                at,
                flags,
            )
        };
        ensure!(
            n == Ok(buf.len()),
            "reader {id}: read at slot {slot}: expected {}, got {}",
            buf.len(),
            crate::util::show(&n)
        );
        for (i, record) in buf.chunks(RECORD).enumerate() {
            check_record(record, slot + i)
                .map_err(|e| Outcome::Fail(format!("reader {id}: {e}")))?;
        }
        counts.reads.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Reads /proc/scullvmem until stopped, checking that it parses and lists the devices.
fn proc_reader(indexes: &[usize], shared: &Shared) -> Res<u64> {
    let mut reads = 0;
    while shared.running() {
        let blocks = dev::parse_proc(&dev::read_proc()?)?;
        for index in indexes {
            ensure!(
                blocks.iter().any(|b| b.index == *index),
                "/proc/scullvmem lacks device {index}"
            );
        }
        reads += 1;
        thread::sleep(Duration::from_millis(5));
    }
    Ok(reads)
}

/// Runs `f` and records its failure.
fn guarded<T>(shared: &Shared, f: impl FnOnce() -> Res<T>) -> Option<T> {
    match f() {
        Ok(value) => Some(value),
        Err(Outcome::Fail(msg) | Outcome::Skip(msg)) => {
            shared.fail(msg);
            None
        }
    }
}

/// Runs the `concurrent` subcommand.
pub fn run(args: &Args) -> Res<()> {
    let mut indexes = Vec::new();
    for dev in &args.devs {
        indexes.push(dev::dev_index(dev)?);
        trim(dev)?;
        let fd = open_rw(dev)?;
        let mut region = vec![0; SLOTS * RECORD];
        for (slot, record) in region.chunks_mut(RECORD).enumerate() {
            fill_record(record, 0, 0, slot);
        }
        write_at(&fd, 0, &region)?;
    }
    let shared = Shared {
        stop: AtomicBool::new(false),
        failure: Mutex::new(None),
    };
    let counts: Vec<Counts> = args.devs.iter().map(|_| Counts::default()).collect();

    let (lasts, proc_reads) = thread::scope(|scope| {
        let shared = &shared;
        let mut writers = Vec::new();
        for (dev, counts) in args.devs.iter().zip(&counts) {
            for id in 1..=WRITERS {
                writers
                    .push(scope.spawn(move || guarded(shared, || writer(dev, id, shared, counts))));
            }
            for id in 0..READERS {
                scope.spawn(move || guarded(shared, || reader(dev, id, shared, counts)));
            }
        }
        let proc = scope.spawn(|| guarded(shared, || proc_reader(&indexes, shared)));
        for _ in 0..args.secs * 10 {
            if !shared.running() {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        shared.stop.store(true, Ordering::Relaxed);
        let lasts: Vec<_> = writers
            .into_iter()
            .map(|w| w.join().ok().flatten())
            .collect();
        (lasts, proc.join().ok().flatten())
    });
    if let Some(msg) = shared
        .failure
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
    {
        fail!("{msg}");
    }

    for (d, (dev, counts)) in args.devs.iter().zip(&counts).enumerate() {
        let fd = open_rw(dev)?;
        let region = read_at(&fd, 0, SLOTS * RECORD + 1)?;
        ensure!(
            region.len() == SLOTS * RECORD,
            "{}: size {} at the end, expected {}",
            dev.display(),
            region.len(),
            SLOTS * RECORD
        );
        for (slot, record) in region.chunks(RECORD).enumerate() {
            let (writer, seq) = check_record(record, slot)
                .map_err(|e| Outcome::Fail(format!("{} at the end: {e}", dev.display())))?;
            let last = match writer {
                0 => lasts[d * WRITERS as usize..][..WRITERS as usize]
                    .iter()
                    .all(|l| l.as_ref().is_some_and(|l| l[slot].is_none())),
                w => lasts[d * WRITERS as usize + w as usize - 1]
                    .as_ref()
                    .is_some_and(|l| l[slot] == Some(seq)),
            };
            ensure!(
                last,
                "{} slot {slot} at the end holds writer {writer} seq {seq}, which was not that writer's last write there",
                dev.display()
            );
        }
        diag!(
            "{}: {} record writes, {} record reads, none torn; final records are each a last write",
            dev.display(),
            counts.writes.load(Ordering::Relaxed),
            counts.reads.load(Ordering::Relaxed)
        );
    }
    diag!(
        "/proc/scullvmem read {} times meanwhile",
        proc_reads.unwrap_or(0)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_records_are_caught() {
        let (mut a, mut b) = (vec![0; RECORD], vec![0; RECORD]);
        fill_record(&mut a, 1, 7, 3);
        fill_record(&mut b, 2, 9, 3);
        assert_eq!(check_record(&a, 3), Ok((1, 7)));
        assert!(check_record(&a, 4).is_err());
        a[5000..].copy_from_slice(&b[5000..]);
        assert!(check_record(&a, 3).is_err());
    }
}
