// SPDX-License-Identifier: GPL-2.0

//! The read and write loops every section uses, each counting its calls, and the filling of a
//! target with data before a read or an overwrite.

use std::os::fd::AsFd;
use std::path::Path;

use rustix::fs::OFlags;

use super::plan::MIB;
use super::results::Calls;
use crate::util::{ensure, open, size_of, Ctx, Res};

/// Writes all of `data` with as many write calls as it takes, counting them.
pub(super) fn write_all(fd: impl AsFd, mut data: &[u8], calls: &mut Calls) -> Res<()> {
    while !data.is_empty() {
        calls.writes += 1;
        let n = rustix::io::write(&fd, data).ctx("write")?;
        ensure!(n > 0, "write of {} bytes returned 0", data.len());
        data = &data[n..];
    }
    Ok(())
}

/// Writes `total` bytes from `buf` (repeated) in blocks of `buf.len()`.
pub(super) fn write_n(fd: impl AsFd, total: u64, buf: &[u8], calls: &mut Calls) -> Res<()> {
    let mut left = total;
    while left > 0 {
        let len = left.min(buf.len() as u64) as usize;
        write_all(&fd, &buf[..len], calls)?;
        left -= len as u64;
    }
    Ok(())
}

/// Reads `total` bytes into `buf` (over and over) in blocks of `buf.len()`.
pub(super) fn read_n(fd: impl AsFd, total: u64, buf: &mut [u8], calls: &mut Calls) -> Res<()> {
    let mut left = total;
    while left > 0 {
        let len = left.min(buf.len() as u64) as usize;
        calls.reads += 1;
        let n = rustix::io::read(&fd, &mut buf[..len]).ctx("read")?;
        ensure!(n > 0, "read: end of file {left} bytes early");
        left -= n as u64;
    }
    Ok(())
}

/// Makes `path` hold `size` bytes (a fresh write, unless it already holds that many).
pub(super) fn fill(path: &Path, size: u64, buf: &[u8]) -> Res<()> {
    if size_of(path)? == size {
        return Ok(());
    }
    let fd =
        open(path, OFlags::WRONLY | OFlags::TRUNC).ctx(format_args!("open {}", path.display()))?;
    write_n(
        &fd,
        size,
        &buf[..buf.len().min(MIB as usize)],
        &mut Calls::default(),
    )
}
