// SPDX-License-Identifier: GPL-2.0

//! The `rw` subcommand: vectored, positioned, appending, asynchronous and spliced I/O, fsync and
//! lseek, each checked against a model of the device's contents.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::AsFd;
use std::path::PathBuf;

use rustix::fs::{OFlags, SeekFrom};
use rustix::io::{Errno, ReadWriteFlags};
use rustix::pipe::SpliceFlags;

use crate::dev::{DevArg, GeometryArgs};
use crate::glue::{Aio, AioOp};
use crate::util::{
    diag, ensure, expect_bytes, expect_file, model_write, open, open_rw, pattern, show, trim,
    write_at, Ctx, Res,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    dev: DevArg,
    #[command(flatten)]
    geometry: GeometryArgs,
    /// Directory of a tmpfs for sendfile's file end
    #[arg(long, default_value = "/tmp")]
    tmp: PathBuf,
}

/// `RWF_NOAPPEND`, which rustix does not name.
const RWF_NOAPPEND: ReadWriteFlags = ReadWriteFlags::from_bits_retain(0x20);

/// Fails unless the file position of `fd` is `want`.
fn expect_pos(fd: &impl AsFd, want: u64, what: &str) -> Res<()> {
    let pos = rustix::fs::seek(fd, SeekFrom::Current(0)).ctx("lseek(SEEK_CUR)")?;
    ensure!(
        pos == want,
        "{what}: expected the file position at {want}, got {pos}"
    );
    Ok(())
}

/// Fails unless a call moved `want` bytes.
fn expect_count(what: &str, got: Result<usize, Errno>, want: usize) -> Res<()> {
    ensure!(
        got == Ok(want),
        "{what}: expected {want}, got {}",
        show(&got)
    );
    Ok(())
}

/// Runs the `rw` subcommand.
pub fn run(args: &Args) -> Res<()> {
    let dev = &args.dev.dev;
    trim(dev)?;
    let fd = open_rw(dev)?;
    let geometry = args.geometry.resolve(&fd)?;
    let q = geometry.quantum as usize;
    let mut model = Vec::new();

    // writev and readv across two quantum boundaries.
    let start = q as u64 - 100;
    let parts = [
        pattern(1, 0, 50),
        pattern(2, 50, q),
        pattern(3, 50 + q as u64, 300),
    ];
    rustix::fs::seek(&fd, SeekFrom::Start(start)).ctx("lseek")?;
    let iov = parts.each_ref().map(|p| IoSlice::new(p));
    expect_count("writev", rustix::io::writev(&fd, &iov), q + 350)?;
    model_write(&mut model, start, &parts.concat());
    expect_pos(&fd, start + q as u64 + 350, "after writev")?;
    let from = start - 7;
    rustix::fs::seek(&fd, SeekFrom::Start(from)).ctx("lseek")?;
    let mut bufs = [vec![0; 7], vec![0; q + 100], vec![0; 400]];
    let mut iov = bufs.each_mut().map(|b| IoSliceMut::new(b));
    let want = &model[from as usize..];
    expect_count(
        "readv up to the end",
        rustix::io::readv(&fd, &mut iov),
        want.len(),
    )?;
    expect_bytes("readv", &bufs.concat()[..want.len()], want, from)?;
    diag!("writev and readv across quantum boundaries; readv short at the end");

    // pwritev2 and preadv2 across the item boundary leave the file position alone.
    let pos = rustix::fs::seek(&fd, SeekFrom::Current(0)).ctx("lseek")?;
    let at = geometry.itemsize - q as u64 - 5;
    let parts = [pattern(4, at, q), pattern(5, at + q as u64, q + 10)];
    let iov = parts.each_ref().map(|p| IoSlice::new(p));
    let flags = ReadWriteFlags::empty();
    expect_count(
        "pwritev2 across the item boundary",
        rustix::io::pwritev2(&fd, &iov, at, flags),
        2 * q + 10,
    )?;
    model_write(&mut model, at, &parts.concat());
    let mut bufs = [vec![0; 3], vec![0; 2 * q + 7]];
    let mut iov = bufs.each_mut().map(|b| IoSliceMut::new(b));
    expect_count(
        "preadv2",
        rustix::io::preadv2(&fd, &mut iov, at, flags),
        2 * q + 10,
    )?;
    expect_bytes("preadv2", &bufs.concat(), &parts.concat(), at)?;
    expect_pos(&fd, pos, "after pwritev2 and preadv2")?;
    diag!(
        "pwritev2 and preadv2 across the item boundary at {}",
        geometry.itemsize
    );

    appending(dev, &fd, &mut model)?;
    aio(&fd, &mut model, q)?;
    sendfile(args, &fd, &mut model, q)?;
    splice(&fd, &mut model, q)?;
    rustix::fs::fsync(&fd).ctx("fsync")?;
    rustix::fs::fdatasync(&fd).ctx("fdatasync")?;
    seeking(&fd, &mut model)?;

    ensure!(
        crate::util::size_of(dev)? == model.len() as u64,
        "final size: expected {}, got {}",
        model.len(),
        crate::util::size_of(dev)?
    );
    expect_file("the whole device at the end", &fd, 0, &model)?;
    diag!(
        "fsync and fdatasync succeed; the whole device ({} bytes) matches",
        model.len()
    );
    Ok(())
}

/// RWF_APPEND, O_APPEND and RWF_NOAPPEND.
fn appending(dev: &std::path::Path, fd: &impl AsFd, model: &mut Vec<u8>) -> Res<()> {
    let size = model.len() as u64;
    let data = pattern(6, size, 11);
    let iov = [IoSlice::new(&data)];
    expect_count(
        "pwritev2(offset 0, RWF_APPEND)",
        rustix::io::pwritev2(fd, &iov, 0, ReadWriteFlags::APPEND),
        11,
    )?;
    model_write(model, size, &data);
    expect_file("RWF_APPEND data at the old size", fd, size, &data)?;

    rustix::fs::seek(fd, SeekFrom::Start(5)).ctx("lseek")?;
    let size = model.len() as u64;
    let iov = [IoSlice::new(b"rwf-append")];
    expect_count(
        "pwritev2(offset -1, RWF_APPEND)",
        rustix::io::pwritev2(fd, &iov, u64::MAX, ReadWriteFlags::APPEND),
        10,
    )?;
    model_write(model, size, b"rwf-append");
    expect_pos(
        fd,
        model.len() as u64,
        "after pwritev2(offset -1, RWF_APPEND)",
    )?;

    let afd = open(dev, OFlags::RDWR | OFlags::APPEND).ctx("open O_RDWR|O_APPEND")?;
    rustix::fs::seek(&afd, SeekFrom::Start(0)).ctx("lseek")?;
    let size = model.len() as u64;
    expect_count(
        "write on an O_APPEND fd",
        rustix::io::write(&afd, b"o-append"),
        8,
    )?;
    model_write(model, size, b"o-append");
    expect_pos(&afd, model.len() as u64, "after write on an O_APPEND fd")?;
    let size = model.len() as u64;
    expect_count(
        "pwrite(offset 3) on an O_APPEND fd",
        rustix::io::pwrite(&afd, b"pwrite", 3),
        6,
    )?;
    model_write(model, size, b"pwrite");

    let data = pattern(7, 100, 50);
    let iov = [IoSlice::new(&data)];
    expect_count(
        "pwritev2(offset 100, RWF_NOAPPEND) on an O_APPEND fd",
        rustix::io::pwritev2(&afd, &iov, 100, RWF_NOAPPEND),
        50,
    )?;
    model_write(model, 100, &data);

    let wfd = open(dev, OFlags::WRONLY | OFlags::APPEND).ctx("open O_WRONLY|O_APPEND")?;
    let size = model.len() as u64;
    expect_count(
        "write on an O_WRONLY|O_APPEND fd",
        rustix::io::write(&wfd, b"wronly-append"),
        13,
    )?;
    model_write(model, size, b"wronly-append");
    expect_file("data after appending writes", fd, 0, model)?;
    diag!(
        "RWF_APPEND and O_APPEND append at size; RWF_NOAPPEND writes at its offset; O_WRONLY|O_APPEND does not trim"
    );
    Ok(())
}

/// io_submit writes and reads.
fn aio(fd: &impl AsFd, model: &mut Vec<u8>, q: usize) -> Res<()> {
    let aio = Aio::new().ctx("io_setup")?;
    let at = 2 * q as u64 - 1000;
    let data = pattern(8, at, 3000);
    expect_count(
        "io_submit IOCB_CMD_PWRITE",
        aio.run(fd.as_fd(), AioOp::Pwrite(&data), at),
        3000,
    )?;
    model_write(model, at, &data);
    let mut buf = vec![0; 3000];
    expect_count(
        "io_submit IOCB_CMD_PREAD",
        aio.run(fd.as_fd(), AioOp::Pread(&mut buf), at),
        3000,
    )?;
    expect_bytes("io_submit IOCB_CMD_PREAD", &buf, &data, at)?;
    diag!("io_submit PWRITE and PREAD across a quantum boundary");
    Ok(())
}

/// sendfile from the device to a tmpfs file and back.
fn sendfile(args: &Args, fd: &impl AsFd, model: &mut Vec<u8>, q: usize) -> Res<()> {
    let path = args.tmp.join(format!(
        "scullv-rw-{}",
        rustix::process::getpid().as_raw_nonzero()
    ));
    let file = open(&path, OFlags::RDWR | OFlags::CREATE | OFlags::TRUNC).ctx(path.display())?;
    rustix::fs::unlink(&path).ctx("unlink")?;

    let from = q as u64 - 500;
    let mut off = from;
    expect_count(
        "sendfile(file, device)",
        rustix::fs::sendfile(&file, fd, Some(&mut off), 5000),
        5000,
    )?;
    ensure!(
        off == from + 5000,
        "sendfile(file, device): offset advanced to {off}, expected {}",
        from + 5000
    );
    expect_file(
        "the file after sendfile from the device",
        &file,
        0,
        &model[from as usize..from as usize + 5000],
    )?;

    let data = pattern(9, 0, 6000);
    write_at(&file, 0, &data)?;
    let to = 2 * q as u64 - 3000;
    rustix::fs::seek(fd, SeekFrom::Start(to)).ctx("lseek")?;
    let mut off = 0;
    expect_count(
        "sendfile(device, file)",
        rustix::fs::sendfile(fd, &file, Some(&mut off), 6000),
        6000,
    )?;
    model_write(model, to, &data);
    expect_file("the device after sendfile to it", fd, to, &data)?;
    expect_pos(fd, to + 6000, "after sendfile to the device")?;
    diag!("sendfile from the device to a file and from a file to the device");
    Ok(())
}

/// splice from the device into a pipe and from a pipe into the device.
fn splice(fd: &impl AsFd, model: &mut Vec<u8>, q: usize) -> Res<()> {
    const LEN: usize = 12000;
    let (rd, wr) = rustix::pipe::pipe().ctx("pipe")?;
    let from = 2 * q as u64 - 6000;
    let mut off = from;
    while off < from + LEN as u64 {
        let left = (from + LEN as u64 - off) as usize;
        let n = rustix::pipe::splice(fd, Some(&mut off), &wr, None, left, SpliceFlags::empty())
            .ctx("splice(device, pipe)")?;
        ensure!(n > 0, "splice(device, pipe) returned 0 before {LEN} bytes");
    }
    let mut buf = vec![0; LEN];
    let mut done = 0;
    while done < LEN {
        done += rustix::io::read(&rd, &mut buf[done..]).ctx("read the pipe")?;
    }
    expect_bytes(
        "data spliced from the device",
        &buf,
        &model[from as usize..from as usize + LEN],
        from,
    )?;

    let data = pattern(10, 0, LEN);
    let mut done = 0;
    while done < LEN {
        done += rustix::io::write(&wr, &data[done..]).ctx("write the pipe")?;
    }
    let to = model.len() as u64 + 100;
    let mut off = to;
    while off < to + LEN as u64 {
        let left = (to + LEN as u64 - off) as usize;
        let n = rustix::pipe::splice(&rd, None, fd, Some(&mut off), left, SpliceFlags::empty())
            .ctx("splice(pipe, device)")?;
        ensure!(n > 0, "splice(pipe, device) returned 0 before {LEN} bytes");
    }
    model_write(model, to, &data);
    expect_file(
        "data spliced into the device past size, after a hole",
        fd,
        to - 100,
        &model[to as usize - 100..],
    )?;
    diag!("splice from the device to a pipe and from a pipe to the device");
    Ok(())
}

/// lseek with each whence, negative results, reads at and past the end, a write past the end.
fn seeking(fd: &impl AsFd, model: &mut Vec<u8>) -> Res<()> {
    let size = model.len() as u64;
    let seek = |pos| rustix::fs::seek(fd, pos);
    let cases = [
        (SeekFrom::Start(10), Ok(10)),
        (SeekFrom::Current(5), Ok(15)),
        (SeekFrom::Current(-20), Err(Errno::INVAL)),
        (SeekFrom::Current(0), Ok(15)),
        (SeekFrom::End(0), Ok(size)),
        (SeekFrom::End(-(size as i64) - 1), Err(Errno::INVAL)),
        (SeekFrom::Start(-2i64 as u64), Err(Errno::INVAL)),
        (SeekFrom::End(-3), Ok(size - 3)),
    ];
    for (pos, want) in cases {
        let got = seek(pos);
        ensure!(
            got == want,
            "lseek {pos:?}: expected {}, got {}",
            show(&want),
            show(&got)
        );
    }
    let mut buf = [0; 10];
    expect_count(
        "read of 10 bytes 3 before the end",
        rustix::io::read(fd, &mut buf),
        3,
    )?;
    expect_count("read at the end", rustix::io::read(fd, &mut buf), 0)?;
    ensure!(
        seek(SeekFrom::End(100)) == Ok(size + 100),
        "lseek(100, SEEK_END) failed"
    );
    expect_count("read past the end", rustix::io::read(fd, &mut buf), 0)?;
    expect_count("write past the end", rustix::io::write(fd, b"tail"), 4)?;
    model_write(model, size + 100, b"tail");
    expect_file(
        "a hole left by a write past the end",
        fd,
        size,
        &model[size as usize..],
    )?;
    diag!(
        "lseek SEEK_SET/CUR/END, EINVAL for negative results; EOF reads 0; a write past the end leaves a zero hole"
    );
    Ok(())
}
