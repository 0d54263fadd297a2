// SPDX-License-Identifier: GPL-2.0

//! The `mmap-private` subcommand: MAP_PRIVATE mappings of the device, one check a run. They show
//! the device's bytes (compared with read()), raise SIGBUS where shared mappings do, and are
//! copy-on-write: a page the process writes becomes its own copy, which neither the device, nor
//! a MAP_SHARED mapping, nor another process sees; pages it has not written go on showing the
//! device. A private mapping counts as a mapping: the device cannot be trimmed while one exists.

use std::cell::Cell;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::mm::MapFlags;

use crate::dev::{self, DevArg, Param, ResetOnDrop};
use crate::glue::{self, Mapping};
use crate::mmap::{check_pages, expect_sigbus, expect_trim_busy, Access, SALT};
use crate::util::{
    diag, ensure, expect_bytes, expect_file, model_write, open_rw, pattern, read_at, report,
    size_of, trim, wait_child, write_at, Ctx, Ended, Res,
};

/// The checks, one a run.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Check {
    /// A PROT_READ map of a whole device of several quanta, against read()
    Whole,
    /// PROT_READ maps that start some pages into a quantum, against read()
    Inner,
    /// Two devices with the same data, compared through a private map of each (as the book's
    /// mapcmp does)
    TwoDevices,
    /// Copy-on-write in a PROT_READ|PROT_WRITE map, against read() and a MAP_SHARED map
    Cow,
    /// A private map across fork; a trim refused while only the child holds it
    Fork,
    /// SIGBUS past the size and in holes, reading and writing
    Sigbus,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The check to run
    #[arg(value_enum)]
    check: Check,
    #[command(flatten)]
    dev: DevArg,
    /// The second device, for two-devices
    #[arg(long, default_value = "/dev/scullv1")]
    other: PathBuf,
    /// The order to set (ioctl T) before the data is written; RESET at the end
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(2..=10))]
    order: i32,
}

/// A trimmed device at the order asked for.
struct Setup {
    fd: OwnedFd,
    ps: usize,
    quantum: usize,
    _reset: ResetOnDrop,
}

impl Setup {
    fn new(dev: &Path, order: i32) -> Res<Self> {
        let fd = open_rw(dev)?;
        let reset = ResetOnDrop::new(dev)?;
        dev::set(&fd, Param::Order, order)?;
        trim(dev)?;
        let ps = rustix::param::page_size();
        Ok(Self {
            fd,
            ps,
            quantum: ps << order,
            _reset: reset,
        })
    }
}

/// Maps `len` bytes from `offset` MAP_PRIVATE, PROT_READ only or also PROT_WRITE.
fn map_private(fd: &impl AsFd, offset: usize, len: usize, writable: bool) -> Res<Mapping> {
    let (map, prot) = if writable {
        (
            Mapping::new(fd.as_fd(), offset as u64, len, MapFlags::PRIVATE),
            "PROT_READ|PROT_WRITE",
        )
    } else {
        (
            Mapping::read_only(fd.as_fd(), offset as u64, len, MapFlags::PRIVATE),
            "PROT_READ",
        )
    };
    map.ctx(format_args!(
        "mmap MAP_PRIVATE {prot} of {len} bytes at offset {offset}: expected a mapping"
    ))
}

/// Runs the `mmap-private` subcommand.
pub fn run(args: &Args) -> Res<()> {
    let dev = &args.dev.dev;
    let setup = Setup::new(dev, args.order)?;
    diag!(
        "order {}: quantum {}, page {}",
        args.order,
        setup.quantum,
        setup.ps
    );
    match args.check {
        Check::Whole => whole(&setup),
        Check::Inner => inner(&setup),
        Check::TwoDevices => two_devices(&setup, &args.other),
        Check::Cow => cow(dev, &setup),
        Check::Fork => fork(dev, &setup),
        Check::Sigbus => sigbus(dev, &setup),
    }
}

/// Writes the pattern to `size` bytes and returns what read() gives back, which must be it.
fn fill(fd: &impl AsFd, size: usize) -> Res<Vec<u8>> {
    let model = pattern(SALT, 0, size);
    write_at(fd, 0, &model)?;
    let back = read_at(fd, 0, size)?;
    expect_bytes("read() of the data written", &back, &model, 0)?;
    Ok(back)
}

/// A private PROT_READ map of the whole device, across quantum boundaries, against read().
fn whole(s: &Setup) -> Res<()> {
    let size = 3 * s.quantum + 5 * s.ps + 123;
    let back = fill(&s.fd, size)?;
    let pages = size.div_ceil(s.ps);
    let map = map_private(&s.fd, 0, pages * s.ps, false)?;
    check_pages(&map, &back, 0, 0..pages)?;
    diag!(
        "a MAP_PRIVATE PROT_READ map of all {size} bytes ({pages} pages, 4 quanta) shows what read() \
         gives, and zeros past size"
    );
    Ok(())
}

/// Private PROT_READ maps that start inside a quantum, against read(); the pages are touched
/// out of order.
fn inner(s: &Setup) -> Res<()> {
    let (q, ps) = (s.quantum / s.ps, s.ps);
    let size = 3 * s.quantum + 100;
    let back = fill(&s.fd, size)?;
    let last = size.div_ceil(ps);
    // Three pages into quantum 1, across into quantum 2; the last page of quantum 0 on; the
    // middle of quantum 2 to the end of the data.
    for (first, end) in [(q + 3, 2 * q + 4), (q - 1, q + 2), (2 * q + q / 2, last)] {
        let map = map_private(&s.fd, first * ps, (end - first) * ps, false)?;
        let middle = (first + end) / 2;
        check_pages(&map, &back, first, middle..middle + 1)?;
        check_pages(&map, &back, first, first..end)?;
        diag!(
            "a MAP_PRIVATE map of file pages {first}..{end} (quantum {} page {} on) shows what \
             read() gives",
            first / q,
            first % q
        );
    }
    Ok(())
}

/// Two devices with the same data, compared through a private map of each; then one byte
/// changed on the second device shows up as the one difference.
fn two_devices(s: &Setup, other: &Path) -> Res<()> {
    let size = 2 * s.quantum + 3 * s.ps + 77;
    trim(other)?;
    let fd1 = open_rw(other)?;
    let back0 = fill(&s.fd, size)?;
    let back1 = fill(&fd1, size)?;
    let len = size.div_ceil(s.ps) * s.ps;
    let map0 = map_private(&s.fd, 0, len, false)?;
    let map1 = map_private(&fd1, 0, len, false)?;
    let (a, b) = (map0.read(0, size), map1.read(0, size));
    expect_bytes(
        "the first device through its MAP_PRIVATE map",
        &a,
        &back0,
        0,
    )?;
    expect_bytes(
        format_args!(
            "{} through its MAP_PRIVATE map, against the first device's",
            other.display()
        ),
        &b,
        &a,
        0,
    )?;
    // A pwrite to a page the process has not written shows through the private map.
    let at = s.quantum + 2 * s.ps + 1234;
    write_at(&fd1, at as u64, &[!back1[at]])?;
    let b = map1.read(0, size);
    let diffs: Vec<usize> = (0..size).filter(|&i| a[i] != b[i]).collect();
    ensure!(
        diffs == [at],
        "after a pwrite of one byte at {at} to {}: expected its map to differ from the first \
         device's at offset {at} only, got differences at {:?}",
        other.display(),
        &diffs[..diffs.len().min(8)]
    );
    diag!(
        "{size} bytes equal through MAP_PRIVATE maps of both devices; a byte then pwritten to one \
         is the only difference"
    );
    drop((map0, map1));
    trim(other)
}

/// Copy-on-write in a private PROT_READ|PROT_WRITE map.
fn cow(dev: &Path, s: &Setup) -> Res<()> {
    let (q, ps) = (s.quantum, s.ps);
    let size = 3 * q;
    let mut model = fill(&s.fd, size)?;
    let mut private = map_private(&s.fd, 0, size, true)?;
    let mut shared =
        Mapping::new(s.fd.as_fd(), 0, size, MapFlags::SHARED).ctx("mmap MAP_SHARED")?;

    // Page 1 is read first (a read fault maps the device's page), then written; page q/ps + 2
    // is written untouched; a write crosses the boundary of quanta 0 and 1.
    check_pages(&private, &model, 0, 1..2)?;
    let mut mine = model.clone();
    for (pos, len, salt) in [
        (ps + 100, 200, 0x11),
        (q + 2 * ps, ps, 0x12),
        (q - 50, 100, 0x13),
    ] {
        let data = pattern(salt, pos as u64, len);
        private.write(pos, &data);
        model_write(&mut mine, pos as u64, &data);
    }
    let written_pages = [1, q / ps - 1, q / ps, q / ps + 2];
    expect_bytes(
        "the MAP_PRIVATE map after writing into it: expected the writes, and the device's bytes \
         around them",
        &private.read(0, size),
        &mine,
        0,
    )?;
    expect_file(
        "read() after writes into a MAP_PRIVATE map: expected the original bytes",
        &s.fd,
        0,
        &model,
    )?;
    expect_bytes(
        "a MAP_SHARED map after writes into a MAP_PRIVATE one: expected the original bytes",
        &shared.read(0, size),
        &model,
        0,
    )?;
    let now = size_of(dev)?;
    ensure!(
        now == size as u64,
        "size after writes into a MAP_PRIVATE map: expected {size}, got {now}"
    );
    diag!(
        "writes into file pages {written_pages:?} of a MAP_PRIVATE map stay in it: read() and \
         MAP_SHARED show the original bytes"
    );

    // The device changes: pages the process has not written show the change, pages it has
    // written do not.
    let read_then_pwritten = 2 * q + ps;
    check_pages(&private, &model, 0, 2 * q / ps + 1..2 * q / ps + 2)?;
    let untouched = 2 * q + 3 * ps;
    let shared_written = 3 * ps + 10;
    for (pos, len, salt) in [(read_then_pwritten, ps, 0x21), (untouched, ps, 0x22)] {
        let data = pattern(salt, pos as u64, len);
        write_at(&s.fd, pos as u64, &data)?;
        model_write(&mut model, pos as u64, &data);
        model_write(&mut mine, pos as u64, &data);
    }
    let data = pattern(0x24, shared_written as u64, 50);
    shared.write(shared_written, &data);
    model_write(&mut model, shared_written as u64, &data);
    model_write(&mut mine, shared_written as u64, &data);
    let data = pattern(0x23, ps as u64, ps);
    write_at(&s.fd, ps as u64, &data)?;
    model_write(&mut model, ps as u64, &data);
    for (pos, what) in [
        (read_then_pwritten, "read through it before"),
        (untouched, "never touched through it"),
    ] {
        expect_bytes(
            format_args!(
                "MAP_PRIVATE page {} ({what}, not written) after a pwrite to the device: \
                 expected the new bytes",
                pos / ps
            ),
            &private.read(pos, ps),
            &model[pos..pos + ps],
            pos as u64,
        )?;
    }
    expect_bytes(
        "MAP_PRIVATE page 3 (not written through it) after a write through a MAP_SHARED map: \
         expected the new bytes",
        &private.read(3 * ps, ps),
        &model[3 * ps..4 * ps],
        3 * ps as u64,
    )?;
    expect_bytes(
        "MAP_PRIVATE page 1 (written through it) after a pwrite of the whole page to the device: \
         expected the process's own copy",
        &private.read(ps, ps),
        &mine[ps..2 * ps],
        ps as u64,
    )?;
    expect_bytes(
        "the whole MAP_PRIVATE map after the device changed",
        &private.read(0, size),
        &mine,
        0,
    )?;
    expect_file("read() after the device changed", &s.fd, 0, &model)?;
    diag!(
        "pwrite and MAP_SHARED writes show in the MAP_PRIVATE map on pages it has not written, \
         not on page 1, which it has"
    );

    drop(shared);
    expect_trim_busy(dev, "a MAP_PRIVATE mapping (and no shared one) exists")?;
    expect_file("data after refused trims", &s.fd, 0, &model)?;
    drop(private);
    trim(dev)?;
    ensure!(
        size_of(dev)? == 0,
        "trim after the MAP_PRIVATE map went: expected size 0"
    );
    diag!("a MAP_PRIVATE mapping refuses trims (EBUSY) until it goes");
    Ok(())
}

/// A private map across fork: the child sees the parent's writes from before fork; its own
/// writes stay its own; while only the child holds the mapping the device cannot be trimmed.
fn fork(dev: &Path, s: &Setup) -> Res<()> {
    let (q, ps) = (s.quantum, s.ps);
    let size = 2 * q + 2 * ps + 10;
    let model = fill(&s.fd, size)?;
    let len = size.div_ceil(ps) * ps;
    let mut private = map_private(&s.fd, 0, len, true)?;
    let mut mine = model.clone();
    for (pos, len, salt) in [(ps + 5, 300, 0x31), (q - 20, 40, 0x32)] {
        let data = pattern(salt, pos as u64, len);
        private.write(pos, &data);
        model_write(&mut mine, pos as u64, &data);
    }

    // The child says "done" on one pipe once it wrote; the parent says "go" by closing the
    // other. Each process closes the ends it does not use, so that a process that ends early
    // is seen as an end of file.
    let (done_rd, done_wr) = rustix::pipe::pipe().ctx("pipe")?;
    let (go_rd, go_wr) = rustix::pipe::pipe().ctx("pipe")?;
    let (done_rd, done_wr) = (Cell::new(Some(done_rd)), Cell::new(Some(done_wr)));
    let (go_rd, go_wr) = (Cell::new(Some(go_rd)), Cell::new(Some(go_wr)));
    let child = glue::fork(|| {
        drop(done_rd.take());
        drop(go_wr.take());
        match (done_wr.take(), go_rd.take()) {
            (Some(done), Some(go)) => report(fork_child(&mut private, &mine, size, done, go)),
            _ => 1,
        }
    })
    .ctx("fork")?;
    drop(done_wr.take());
    drop(go_rd.take());
    let mut byte = [0; 1];
    let wrote = match done_rd.take() {
        Some(fd) => rustix::io::read(&fd, &mut byte).ctx("read the child's pipe")?,
        None => 0,
    };
    let checks: Res<()> = (|| {
        ensure!(
            wrote == 1,
            "the child ended before writing into its mapping"
        );
        expect_bytes(
            "the parent's MAP_PRIVATE map after the child wrote into its copy: expected the \
             parent's own bytes",
            &private.read(0, size),
            &mine,
            0,
        )?;
        expect_file(
            "read() after the child wrote into its MAP_PRIVATE map: expected the original bytes",
            &s.fd,
            0,
            &model,
        )?;
        let shared = Mapping::new(s.fd.as_fd(), 0, len, MapFlags::SHARED).ctx("mmap MAP_SHARED")?;
        expect_bytes(
            "a MAP_SHARED map after the child wrote into its MAP_PRIVATE map: expected the \
             original bytes",
            &shared.read(0, size),
            &model,
            0,
        )?;
        drop(shared);
        Ok(())
    })();
    drop(private);
    let busy = checks.and_then(|()| {
        expect_trim_busy(dev, "only a forked child holds the (MAP_PRIVATE) mapping")
    });
    drop(go_wr.take());
    let ended = wait_child(child)?;
    busy?;
    ensure!(
        matches!(ended, Ended::Exited(0)),
        "the forked child's checks of its MAP_PRIVATE map: expected exit 0, got {ended}"
    );
    expect_file("data after the child ended", &s.fd, 0, &model)?;
    trim(dev)?;
    ensure!(
        size_of(dev)? == 0,
        "trim after both MAP_PRIVATE maps went: expected size 0"
    );
    diag!(
        "across fork: the child saw the parent's private writes, the parent and the device not \
         the child's; EBUSY while only the child held the map; trim after both went"
    );
    Ok(())
}

/// The forked child's part of [`fork`].
fn fork_child(
    private: &mut Mapping,
    parents: &[u8],
    size: usize,
    done: OwnedFd,
    go: OwnedFd,
) -> Res<()> {
    let ps = rustix::param::page_size();
    expect_bytes(
        "the forked child's MAP_PRIVATE map: expected the parent's writes made before fork",
        &private.read(0, size),
        parents,
        0,
    )?;
    let mut childs = parents.to_vec();
    // Page 2, which the parent did not write, and page 1, which it did.
    for (pos, len, salt) in [(2 * ps, ps, 0x41), (ps + 5, 100, 0x42)] {
        let data = pattern(salt, pos as u64, len);
        private.write(pos, &data);
        model_write(&mut childs, pos as u64, &data);
    }
    expect_bytes(
        "the child's MAP_PRIVATE map after its own writes",
        &private.read(0, size),
        &childs,
        0,
    )?;
    rustix::io::write(&done, &[1]).ctx("write the parent's pipe")?;
    // Wait until the parent has checked and dropped its mapping.
    let _ = rustix::io::read(&go, &mut [0; 1]);
    expect_bytes(
        "the child's MAP_PRIVATE map once the parent's went",
        &private.read(0, size),
        &childs,
        0,
    )?;
    Ok(())
}

/// SIGBUS in private maps past the size and in holes, on reads and on (copy-on-write) writes.
fn sigbus(dev: &Path, s: &Setup) -> Res<()> {
    let (q, ps) = (s.quantum, s.ps);
    let size0 = q + 3 * ps + 10;
    let mut model = fill(&s.fd, size0)?;
    let pages0 = size0.div_ceil(ps);
    // The children below map what they touch themselves; first see that a mapping can be made.
    drop(map_private(&s.fd, 0, pages0 * ps, true)?);
    expect_sigbus(
        dev,
        (pages0 * ps) as u64,
        Some(size0 as u64 - 1),
        "the first page at or past size, after the last byte of the data",
        Access::PrivateRead,
    )?;
    expect_sigbus(
        dev,
        (pages0 * ps) as u64,
        None,
        "the first page at or past size",
        Access::PrivateWrite,
    )?;
    expect_sigbus(
        dev,
        (8 * q) as u64,
        None,
        "a page far past size",
        Access::PrivateRead,
    )?;

    // Quanta 2 and 3 are holes now; quantum 1 is allocated, partly written.
    let far = 4 * q + 10;
    write_at(&s.fd, far as u64, &[0x42])?;
    model_write(&mut model, far as u64, &[0x42]);
    for (offset, what, access) in [
        (2 * q, "a page in a hole (quantum 2)", Access::PrivateRead),
        (
            2 * q + 5 * ps,
            "a page in a hole (quantum 2)",
            Access::PrivateWrite,
        ),
        (
            4 * q - ps,
            "the last page of the hole (quantum 3)",
            Access::PrivateRead,
        ),
        (
            4 * q - ps,
            "the last page of the hole (quantum 3)",
            Access::PrivateWrite,
        ),
    ] {
        expect_sigbus(dev, offset as u64, None, what, access)?;
    }
    let pages1 = (far + 1).div_ceil(ps);
    let map = map_private(&s.fd, 0, pages1 * ps, false)?;
    check_pages(&map, &model, 0, 0..2 * q / ps)?;
    check_pages(&map, &model, 0, 4 * q / ps..pages1)?;
    diag!(
        "MAP_PRIVATE: SIGBUS past size and in holes, reading and writing; the rest of quantum 1 \
         reads zeros"
    );
    Ok(())
}
