// SPDX-License-Identifier: GPL-2.0

//! The `uring` subcommand: reads and writes submitted through io_uring (READ, WRITE, READV,
//! WRITEV, READ_FIXED, WRITE_FIXED, 64 requests in flight at once), each checked against a model
//! of the device's contents and against what plain pread() and read() return.

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::SeekFrom;
use rustix::io::Errno;

use crate::dev::{DevArg, Geometry, GeometryArgs};
use crate::glue::{Uring, UringOp};
use crate::util::{
    diag, ensure, expect_bytes, fail, model_write, open_rw, pattern, read_at, show, size_of, trim,
    write_at, Ctx, Res, Watchdog,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    dev: DevArg,
    #[command(flatten)]
    geometry: GeometryArgs,
}

/// Requests in flight at once in the many-requests check, and the ring's size.
const IN_FLIGHT: usize = 64;

/// The file offset that makes a request use and advance the file position.
const AT_FILE_POS: u64 = u64::MAX;

/// The device under test, the ring and the model of the device's contents.
struct State {
    fd: OwnedFd,
    ring: Uring,
    model: Vec<u8>,
}

/// Fails unless a request's result is `want` bytes.
fn expect_result(what: &str, got: &Result<usize, Errno>, want: usize) -> Res<()> {
    ensure!(
        *got == Ok(want),
        "{what}: expected a result of {want}, got {}",
        show(got)
    );
    Ok(())
}

impl State {
    /// Runs one batch of requests on the device and returns their results; fails if the batch
    /// could not be run.
    fn run(&mut self, what: &str, reqs: Vec<(UringOp<'_>, u64)>) -> Res<Vec<Result<usize, Errno>>> {
        let n = reqs.len();
        let batch = self.ring.run(self.fd.as_fd(), reqs).ctx(what)?;
        ensure!(
            batch.results.len() == n,
            "{what}: {n} requests, {} results",
            batch.results.len()
        );
        Ok(batch.results)
    }

    /// The model's bytes from `pos` on, at most `len` of them (what a read there returns).
    fn model_at(&self, pos: u64, len: usize) -> &[u8] {
        let start = (pos as usize).min(self.model.len());
        let end = (start + len).min(self.model.len());
        &self.model[start..end]
    }

    /// Checks what a read request of `len` bytes at `pos` returned: the count the model gives,
    /// the model's bytes, and the bytes pread returns there.
    fn check_read(&self, what: &str, got: &Result<usize, Errno>, buf: &[u8], pos: u64) -> Res<()> {
        let want = self.model_at(pos, buf.len());
        expect_result(what, got, want.len())?;
        expect_bytes(what, &buf[..want.len()], want, pos)?;
        let plain = read_at(&self.fd, pos, buf.len())?;
        expect_bytes(
            format_args!("{what}, against pread"),
            &buf[..want.len()],
            &plain,
            pos,
        )
    }

    /// Checks that pread shows the model's bytes at `pos..pos + len`.
    fn check_pread(&self, what: &str, pos: u64, len: usize) -> Res<()> {
        let plain = read_at(&self.fd, pos, len)?;
        expect_bytes(
            format_args!("pread after {what}"),
            &plain,
            self.model_at(pos, len),
            pos,
        )
    }

    /// Checks the device's size against the model's.
    fn check_size(&self, dev: &std::path::Path, what: &str) -> Res<()> {
        let size = size_of(dev)?;
        ensure!(
            size == self.model.len() as u64,
            "size after {what}: expected {}, got {size}",
            self.model.len()
        );
        Ok(())
    }
}

/// Runs the `uring` subcommand.
pub fn run(args: &Args) -> Res<()> {
    let _watchdog = Watchdog::start(300, "the io_uring checks".into());
    let dev = &args.dev.dev;
    trim(dev)?;
    let fd = open_rw(dev)?;
    let geometry = args.geometry.resolve(&fd)?;
    let ring = match Uring::new(IN_FLIGHT as u32) {
        Ok(ring) => ring,
        Err(Errno::NOSYS) => fail!(
            "io_uring_setup: ENOSYS: this kernel has no io_uring, but every kernel the suite runs on has CONFIG_IO_URING=y"
        ),
        Err(e) => fail!(
            "io_uring_setup({IN_FLIGHT}): {} (is /proc/sys/kernel/io_uring_disabled 0?)",
            crate::util::errno_name(e)
        ),
    };
    ensure!(
        ring.capacity() >= IN_FLIGHT,
        "io_uring_setup({IN_FLIGHT}): expected at least {IN_FLIGHT} entries, got {}",
        ring.capacity()
    );
    let mut bench = State {
        fd,
        ring,
        model: Vec::new(),
    };
    let b = &mut bench;

    writes(b, dev, geometry)?;
    reads(b, dev, geometry)?;
    vectored(b, dev, geometry)?;
    fixed(b, dev, geometry)?;
    many(b, dev, geometry)?;
    edges(b, dev, geometry)?;

    // The whole device, through plain read() from offset 0, against the model.
    b.check_size(dev, "every check")?;
    rustix::fs::seek(&b.fd, SeekFrom::Start(0)).ctx("lseek(0)")?;
    let mut buf = vec![0; 1 << 20];
    let mut pos = 0;
    loop {
        let n = rustix::io::read(&b.fd, &mut buf).ctx(format_args!("read at {pos}"))?;
        if n == 0 {
            break;
        }
        let want = b.model_at(pos as u64, n);
        expect_bytes("read() of the whole device", &buf[..n], want, pos as u64)?;
        pos += n;
    }
    ensure!(
        pos == b.model.len(),
        "read() of the whole device: expected {} bytes, got {pos}",
        b.model.len()
    );
    diag!(
        "the whole device ({} bytes), read with read(), matches the model",
        b.model.len()
    );
    Ok(())
}

/// IORING_OP_WRITE across a quantum boundary and across an item boundary; pread shows the bytes.
fn writes(b: &mut State, dev: &std::path::Path, g: Geometry) -> Res<()> {
    let at_quantum = g.quantum - 1000;
    let at_item = g.itemsize - 2000;
    let one = pattern(11, at_quantum, 3000);
    let two = pattern(12, at_item, 5000);
    let results = b.run(
        "IORING_OP_WRITE",
        vec![
            (UringOp::Write(&one), at_quantum),
            (UringOp::Write(&two), at_item),
        ],
    )?;
    expect_result(
        &format!("IORING_OP_WRITE of 3000 bytes at {at_quantum}"),
        &results[0],
        3000,
    )?;
    expect_result(
        &format!("IORING_OP_WRITE of 5000 bytes at {at_item}"),
        &results[1],
        5000,
    )?;
    model_write(&mut b.model, at_quantum, &one);
    model_write(&mut b.model, at_item, &two);
    b.check_pread(
        "IORING_OP_WRITE across a quantum boundary",
        at_quantum,
        3000,
    )?;
    b.check_pread("IORING_OP_WRITE across an item boundary", at_item, 5000)?;
    b.check_size(dev, "IORING_OP_WRITE")?;
    diag!(
        "IORING_OP_WRITE across the quantum boundary at {} and the item boundary at {}: pread shows the bytes",
        g.quantum,
        g.itemsize
    );
    Ok(())
}

/// IORING_OP_READ of data written with pwrite: across boundaries, in a hole, past the size (a
/// short count), at and after the size (0).
fn reads(b: &mut State, dev: &std::path::Path, g: Geometry) -> Res<()> {
    let (q, item) = (g.quantum, g.itemsize);
    for (salt, pos, len) in [(21, 2 * q - 3000, 9000), (22, item - 10000, 20000)] {
        let data = pattern(salt, pos, len);
        write_at(&b.fd, pos, &data)?;
        model_write(&mut b.model, pos, &data);
    }
    b.check_size(dev, "pwrite")?;
    let size = b.model.len() as u64;
    let cases = [
        ("across a quantum boundary", 2 * q - 2500, 8000),
        ("across an item boundary", item - 9000, 18000),
        (
            "of a hole across a quantum boundary",
            5 * q + 17,
            2 * q as usize,
        ),
        ("running past the size", size - 100, 1000),
        ("at the size", size, 10),
        ("after the size", size + 5000, 10),
    ];
    let mut bufs: Vec<Vec<u8>> = cases.iter().map(|&(_, _, len)| vec![0xa5; len]).collect();
    let reqs = bufs
        .iter_mut()
        .zip(&cases)
        .map(|(buf, &(_, pos, _))| (UringOp::Read(buf), pos))
        .collect();
    let results = b.run("IORING_OP_READ", reqs)?;
    for ((&(name, pos, len), buf), got) in cases.iter().zip(&bufs).zip(&results) {
        let what = format!("IORING_OP_READ of {len} bytes at {pos} ({name})");
        b.check_read(&what, got, buf, pos)?;
    }
    diag!(
        "IORING_OP_READ across quantum and item boundaries and in a hole; short at the size ({size}), 0 at and after it"
    );
    Ok(())
}

/// IORING_OP_WRITEV and IORING_OP_READV with several iovecs across boundaries.
fn vectored(b: &mut State, dev: &std::path::Path, g: Geometry) -> Res<()> {
    let (q, item) = (g.quantum, g.itemsize);
    let at = 3 * q - 700;
    let sizes = [100, 500, 2000, 7];
    let mut parts = Vec::new();
    let mut pos = at;
    for (i, &len) in sizes.iter().enumerate() {
        parts.push(pattern(31 + i as u32, pos, len));
        pos += len as u64;
    }
    let total: usize = sizes.iter().sum();
    let results = b.run(
        "IORING_OP_WRITEV",
        vec![(UringOp::Writev(parts.iter().map(|p| &p[..]).collect()), at)],
    )?;
    let what = format!("IORING_OP_WRITEV of {sizes:?} bytes at {at}");
    expect_result(&what, &results[0], total)?;
    model_write(&mut b.model, at, &parts.concat());
    b.check_pread(&what, at, total)?;
    b.check_size(dev, "IORING_OP_WRITEV")?;

    let cases: [(u64, &[usize]); 2] = [
        (3 * q - 800, &[50, 1000, 1500, 300]),
        (item - 300, &[10, 290, 1, 4096, 3]),
    ];
    let mut bufs: Vec<Vec<Vec<u8>>> = cases
        .iter()
        .map(|(_, sizes)| sizes.iter().map(|&len| vec![0xa5; len]).collect())
        .collect();
    let reqs = bufs
        .iter_mut()
        .zip(&cases)
        .map(|(iov, &(pos, _))| {
            let slices = iov.iter_mut().map(|v| &mut v[..]).collect();
            (UringOp::Readv(slices), pos)
        })
        .collect();
    let results = b.run("IORING_OP_READV", reqs)?;
    for ((&(pos, sizes), iov), got) in cases.iter().zip(&bufs).zip(&results) {
        let what = format!("IORING_OP_READV of {sizes:?} bytes at {pos}");
        b.check_read(&what, got, &iov.concat(), pos)?;
    }
    diag!(
        "IORING_OP_WRITEV of 4 iovecs across the quantum boundary at {}; IORING_OP_READV across it and across the item boundary",
        3 * q
    );
    Ok(())
}

/// Registered buffers: IORING_OP_WRITE_FIXED and IORING_OP_READ_FIXED, from and into whole
/// buffers and ranges of them.
fn fixed(b: &mut State, dev: &std::path::Path, g: Geometry) -> Res<()> {
    const LEN: usize = 100_000;
    let (q, item) = (g.quantum, g.itemsize);
    b.ring
        .register_buffers(&[LEN, LEN])
        .ctx("IORING_REGISTER_BUFFERS")?;
    // Across two quantum boundaries, from all of buffer 0.
    let at = 4 * q - 30_000;
    let data = pattern(41, at, LEN);
    b.ring.fixed_mut(0).copy_from_slice(&data);
    // Across the item boundary, from a range of buffer 1.
    let at_item = item - 2500;
    let data_item = pattern(42, at_item, 5000);
    b.ring.fixed_mut(1)[300..5300].copy_from_slice(&data_item);
    let results = b.run(
        "IORING_OP_WRITE_FIXED",
        vec![
            (UringOp::WriteFixed(0, 0..LEN), at),
            (UringOp::WriteFixed(1, 300..5300), at_item),
        ],
    )?;
    let what = format!("IORING_OP_WRITE_FIXED of {LEN} bytes at {at}");
    expect_result(&what, &results[0], LEN)?;
    model_write(&mut b.model, at, &data);
    b.check_pread(&what, at, LEN)?;
    let what = format!("IORING_OP_WRITE_FIXED of 5000 bytes at {at_item}");
    expect_result(&what, &results[1], 5000)?;
    model_write(&mut b.model, at_item, &data_item);
    b.check_pread(&what, at_item, 5000)?;
    b.check_size(dev, "IORING_OP_WRITE_FIXED")?;

    b.ring.fixed_mut(0).fill(0xa5);
    b.ring.fixed_mut(1).fill(0xa5);
    let cases = [(0, 0..LEN, at - 1000), (1, 10..5010, item - 2600)];
    let reqs = cases
        .iter()
        .map(|(index, range, pos)| (UringOp::ReadFixed(*index, range.clone()), *pos))
        .collect();
    let results = b.run("IORING_OP_READ_FIXED", reqs)?;
    for ((index, range, pos), got) in cases.iter().zip(&results) {
        let what = format!(
            "IORING_OP_READ_FIXED of {} bytes at {pos} into buffer {index}",
            range.len()
        );
        b.check_read(&what, got, &b.ring.fixed(*index)[range.clone()], *pos)?;
    }
    diag!(
        "IORING_OP_WRITE_FIXED and IORING_OP_READ_FIXED with 2 registered buffers, across quantum boundaries and the item boundary"
    );
    Ok(())
}

/// `IN_FLIGHT` (64) writes at once of distinct regions of more than a quantum each, the middle one across an
/// item boundary; after all completed, as many reads at once of the same regions.
fn many(b: &mut State, dev: &std::path::Path, g: Geometry) -> Res<()> {
    let len = g.quantum as usize + 1000;
    let stride = len as u64 + 3000;
    let half = IN_FLIGHT as u64 / 2;
    // The first item boundary past the data so far with room for half the regions before it.
    let boundary = (b.model.len() as u64 + (half + 1) * stride).div_ceil(g.itemsize) * g.itemsize;
    let base = boundary - half * stride - len as u64 / 2;
    let regions: Vec<u64> = (0..IN_FLIGHT as u64).map(|i| base + i * stride).collect();
    let data: Vec<Vec<u8>> = regions
        .iter()
        .zip(100..)
        .map(|(&pos, salt)| pattern(salt, pos, len))
        .collect();

    let reqs = data
        .iter()
        .zip(&regions)
        .map(|(d, &pos)| (UringOp::Write(d), pos))
        .collect();
    let batch = b
        .ring
        .run(b.fd.as_fd(), reqs)
        .ctx(format_args!("{IN_FLIGHT} IORING_OP_WRITEs"))?;
    ensure!(
        batch.submitted_at_once == IN_FLIGHT,
        "{IN_FLIGHT} IORING_OP_WRITEs: expected one io_uring_enter to submit {IN_FLIGHT}, it submitted {}",
        batch.submitted_at_once
    );
    for ((got, &pos), d) in batch.results.iter().zip(&regions).zip(&data) {
        let what = format!("IORING_OP_WRITE of {len} bytes at {pos}, one of {IN_FLIGHT} in flight");
        expect_result(&what, got, len)?;
        model_write(&mut b.model, pos, d);
    }
    for &pos in &regions {
        b.check_pread(&format!("{IN_FLIGHT} IORING_OP_WRITEs"), pos, len)?;
    }
    b.check_size(dev, &format!("{IN_FLIGHT} IORING_OP_WRITEs"))?;

    let mut bufs = vec![vec![0xa5; len]; IN_FLIGHT];
    let reqs = bufs
        .iter_mut()
        .zip(&regions)
        .map(|(buf, &pos)| (UringOp::Read(buf), pos))
        .collect();
    let batch = b
        .ring
        .run(b.fd.as_fd(), reqs)
        .ctx(format_args!("{IN_FLIGHT} IORING_OP_READs"))?;
    ensure!(
        batch.submitted_at_once == IN_FLIGHT,
        "{IN_FLIGHT} IORING_OP_READs: expected one io_uring_enter to submit {IN_FLIGHT}, it submitted {}",
        batch.submitted_at_once
    );
    for ((got, &pos), buf) in batch.results.iter().zip(&regions).zip(&bufs) {
        let what = format!("IORING_OP_READ of {len} bytes at {pos}, one of {IN_FLIGHT} in flight");
        b.check_read(&what, got, buf, pos)?;
    }
    diag!(
        "{IN_FLIGHT} IORING_OP_WRITEs of {len} bytes submitted at once, then {IN_FLIGHT} IORING_OP_READs, {} to {} across the item boundary at {boundary}: every result and byte matches",
        regions[0],
        regions[IN_FLIGHT - 1] + len as u64
    );
    Ok(())
}

/// Requests at the file position (offset -1) and a write far past the size limit.
fn edges(b: &mut State, dev: &std::path::Path, g: Geometry) -> Res<()> {
    // Offset -1: read and write at the file position, and advance it, as read() and write() do.
    let start = g.quantum - 500;
    rustix::fs::seek(&b.fd, SeekFrom::Start(start)).ctx("lseek")?;
    let mut buf = vec![0xa5; 1000];
    let results = b.run(
        "IORING_OP_READ at offset -1",
        vec![(UringOp::Read(&mut buf), AT_FILE_POS)],
    )?;
    b.check_read(
        &format!("IORING_OP_READ at offset -1, the file position {start}"),
        &results[0],
        &buf,
        start,
    )?;
    let data = pattern(51, start + 1000, 2000);
    let results = b.run(
        "IORING_OP_WRITE at offset -1",
        vec![(UringOp::Write(&data), AT_FILE_POS)],
    )?;
    expect_result(
        &format!(
            "IORING_OP_WRITE at offset -1, the file position {}",
            start + 1000
        ),
        &results[0],
        2000,
    )?;
    model_write(&mut b.model, start + 1000, &data);
    b.check_pread("IORING_OP_WRITE at offset -1", start + 1000, 2000)?;
    let pos = rustix::fs::seek(&b.fd, SeekFrom::Current(0)).ctx("lseek(SEEK_CUR)")?;
    ensure!(
        pos == start + 3000,
        "file position after IORING_OP_READ and IORING_OP_WRITE at offset -1: expected {}, got {pos}",
        start + 3000
    );

    // Far past the size limit: what pwrite gives (ENOSPC), and nothing stored.
    let far = 1 << 50;
    let plain = rustix::io::pwrite(&b.fd, b"far", far);
    let results = b.run(
        "IORING_OP_WRITE past the size limit",
        vec![(UringOp::Write(b"far"), far)],
    )?;
    let what = format!("IORING_OP_WRITE of 3 bytes at {far}, past the size limit");
    ensure!(
        results[0] == plain,
        "{what}: expected what pwrite gives there, {}, got {}",
        show(&plain),
        show(&results[0])
    );
    ensure!(
        results[0] == Err(Errno::NOSPC),
        "{what}: expected ENOSPC, got {}",
        show(&results[0])
    );
    b.check_size(dev, "a write past the size limit")?;
    diag!(
        "IORING_OP_READ and IORING_OP_WRITE at offset -1 use and advance the file position; IORING_OP_WRITE past the size limit gives ENOSPC like pwrite"
    );
    Ok(())
}
