// SPDX-License-Identifier: GPL-2.0

//! The `mmap` subcommand: what a mapping of the device shows, where it raises SIGBUS, and how
//! mappings are counted against trimming.

use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::fs::OFlags;
use rustix::io::Errno;
use rustix::mm::MapFlags;
use rustix::process::Signal;

use crate::dev::{self, DevArg, Param, ResetOnDrop};
use crate::glue::{self, Mapping};
use crate::util::{
    diag, ensure, errno_name, expect_bytes, expect_file, fail, model_write, open, open_rw, pattern,
    pattern_page, size_of, trim, wait_child, write_at, Ctx, Ended, Res, Watchdog,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    dev: DevArg,
    /// The order to set (ioctl T) before the data is written; RESET at the end
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(0..=10))]
    order: i32,
}

#[derive(clap::Args, Debug)]
pub struct TouchArgs {
    #[command(flatten)]
    dev: DevArg,
    /// The file offset whose page to map and read
    #[arg(long)]
    offset: u64,
    /// Read a byte at this offset first, in the same mapping, which spans both
    #[arg(long)]
    after: Option<u64>,
    /// Map MAP_PRIVATE (PROT_READ, or PROT_READ|PROT_WRITE with --write) instead of MAP_SHARED
    #[arg(long)]
    private: bool,
    /// Write the byte at --offset instead of reading it
    #[arg(long)]
    write: bool,
}

/// How the `touch` child maps the device and touches the page.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Access {
    /// A MAP_SHARED mapping, read.
    Shared,
    /// A MAP_PRIVATE PROT_READ mapping, read.
    PrivateRead,
    /// A MAP_PRIVATE PROT_READ|PROT_WRITE mapping, written (a copy-on-write fault).
    PrivateWrite,
}

#[derive(clap::Args, Debug)]
pub struct HoldArgs {
    #[command(flatten)]
    dev: DevArg,
    /// How long to hold the mapping
    #[arg(long, default_value_t = 30)]
    secs: u64,
}

/// The pattern's salt for the data written first.
pub const SALT: u32 = 0x3a3a_0000;

/// Runs the `mmap` subcommand.
pub fn run(args: &Args) -> Res<()> {
    let dev = &args.dev.dev;
    let fd = open_rw(dev)?;
    let _reset = ResetOnDrop::new(dev)?;
    dev::set(&fd, Param::Order, args.order)?;
    trim(dev)?;
    let ps = rustix::param::page_size();
    let quantum = ps << args.order;

    // Quanta 0 and 1 full, quantum 2 a little more than half.
    let size0 = 2 * quantum + quantum / 2 + 100;
    let mut model = pattern(SALT, 0, size0);
    write_at(&fd, 0, &model)?;
    diag!(
        "order {}: quantum {quantum}, {size0} bytes written",
        args.order
    );

    let pages0 = size0.div_ceil(ps);
    let mut map =
        Mapping::new(fd.as_fd(), 0, pages0 * ps, MapFlags::SHARED).ctx("mmap MAP_SHARED")?;
    check_pages(&map, &model, 0, 0..pages0)?;
    diag!("each of {pages0} mapped pages shows its own data; bytes past size read as zeros");

    // A mapping that starts inside a quantum: a fault there maps the pages around it (in the
    // same quantum, inside the mapping) at their own places.
    let first = quantum / ps + 1;
    let end = (first + 3).min(pages0);
    let inner = Mapping::new(
        fd.as_fd(),
        (first * ps) as u64,
        (end - first) * ps,
        MapFlags::SHARED,
    )
    .ctx(format_args!("mmap from file page {first}"))?;
    check_pages(&inner, &model, first, first + 1..end)?;
    check_pages(&inner, &model, first, first..first + 1)?;
    drop(inner);

    through_mapping(&fd, &mut map, &mut model, quantum)?;
    refused_while_mapped(dev, &fd, &model)?;

    // The touch maps both pages and reads the last byte of the data first: the fault there maps
    // the pages around it, but none at or past size.
    expect_sigbus(
        dev,
        (pages0 * ps) as u64,
        Some(size0 as u64 - 1),
        "the first page at or past size, after the last page of the data",
        Access::Shared,
    )?;
    expect_sigbus(
        dev,
        (8 * quantum) as u64,
        None,
        "a page far past size",
        Access::Shared,
    )?;

    // Bytes past size in the last page, written through the mapping, never become data.
    let tail = size0..pages0 * ps;
    map.write(tail.start, &vec![0xee; tail.len()]);
    ensure!(
        size_of(dev)? == size0 as u64,
        "writing past size through the mapping changed size"
    );
    let far = 4 * quantum + 10;
    write_at(&fd, far as u64, &[0x42])?;
    model_write(&mut model, far as u64, &[0x42]);
    expect_file(
        "after size grew: bytes past the old size",
        &fd,
        tail.start as u64,
        &vec![0; tail.len()],
    )?;
    expect_bytes(
        "after size grew: mapped bytes past the old size",
        &map.read(tail.start, tail.len()),
        &vec![0; tail.len()],
        tail.start as u64,
    )?;
    drop(map);
    diag!(
        "{} bytes written through the mapping past size stayed out of the data",
        tail.len()
    );

    // Quantum 3 is a hole now; quantum 2 is allocated but only partly written.
    let pages1 = (far + 1).div_ceil(ps);
    let map = Mapping::new(fd.as_fd(), 0, pages1 * ps, MapFlags::SHARED).ctx("mmap")?;
    check_pages(&map, &model, 0, pages0..3 * quantum / ps)?;
    check_pages(&map, &model, 0, 4 * quantum / ps..pages1)?;
    expect_file(
        "the hole in quantum 3",
        &fd,
        3 * quantum as u64,
        &vec![0; quantum],
    )?;
    expect_sigbus(
        dev,
        (3 * quantum) as u64,
        None,
        "a page in a hole (quantum 3)",
        Access::Shared,
    )?;
    expect_sigbus(
        dev,
        (4 * quantum - ps) as u64,
        None,
        "the last page of the hole",
        Access::Shared,
    )?;
    drop(map);
    diag!("unwritten pages of an allocated quantum read zeros; a hole raises SIGBUS");

    self_referencing(&fd, &mut model, quantum)?;
    counted_mappings(dev, &fd, &model)
}

/// Fails unless each file page in `pages` of a mapping whose first page is file page `first`
/// shows the model's data,
/// and zeros past its end.
pub fn check_pages(
    map: &Mapping,
    model: &[u8],
    first: usize,
    pages: std::ops::Range<usize>,
) -> Res<()> {
    let ps = rustix::param::page_size();
    for page in pages {
        let start = page * ps;
        let got = map.read((page - first) * ps, ps);
        let mut want = model
            .get(start..model.len().min(start + ps))
            .unwrap_or_default()
            .to_vec();
        want.resize(ps, 0);
        if got != want {
            let shows = match pattern_page(SALT, &got) {
                Some(p) if got[..4] != [0; 4] && p != page as u64 => {
                    format!(" (it shows page {p}'s data)")
                }
                _ => String::new(),
            };
            expect_bytes(
                format_args!("mapped page {page}{shows}"),
                &got,
                &want,
                start as u64,
            )?;
        }
    }
    Ok(())
}

/// Writes through the mapping are seen by pread, pwrites are seen through the mapping.
fn through_mapping(
    fd: &impl AsFd,
    map: &mut Mapping,
    model: &mut Vec<u8>,
    quantum: usize,
) -> Res<()> {
    let ps = rustix::param::page_size();
    for (pos, len, salt) in [(ps + 10, 100, 1), (quantum + ps - 50, 100, 2)] {
        let data = pattern(salt, pos as u64, len);
        map.write(pos, &data);
        model_write(model, pos as u64, &data);
        expect_file(
            "pread of bytes written through the mapping",
            fd,
            pos as u64,
            &data,
        )?;
    }
    for (pos, len, salt) in [(2 * quantum + 7, 300, 3), (quantum - 20, 40, 4)] {
        let data = pattern(salt, pos as u64, len);
        write_at(fd, pos as u64, &data)?;
        model_write(model, pos as u64, &data);
        expect_bytes(
            "the mapping after pwrite",
            &map.read(pos, len),
            &data,
            pos as u64,
        )?;
    }
    diag!("writes through the mapping are read by pread; pwrites show in the mapping");
    Ok(())
}

/// A MAP_PRIVATE mapping shows the data too, and trimming opens are refused while a mapping
/// exists (the `mmap-private` subcommand checks private mappings in depth).
fn refused_while_mapped(dev: &Path, fd: &impl AsFd, model: &[u8]) -> Res<()> {
    let ps = rustix::param::page_size();
    let private = match Mapping::read_only(fd.as_fd(), 0, ps, MapFlags::PRIVATE) {
        Ok(map) => map,
        Err(e) => fail!(
            "MAP_PRIVATE PROT_READ: expected a mapping, got {}",
            errno_name(e)
        ),
    };
    check_pages(&private, model, 0, 0..1)?;
    drop(private);
    expect_trim_busy(dev, "mapped")?;
    open(dev, OFlags::WRONLY | OFlags::APPEND).ctx("open O_WRONLY|O_APPEND while mapped")?;
    ensure!(
        size_of(dev)? == model.len() as u64,
        "size changed by opens while mapped"
    );
    expect_file("data after refused trims", fd, 0, model)?;
    diag!("MAP_PRIVATE maps the data; trimming opens give EBUSY while mapped, data intact");
    Ok(())
}

/// Fails unless every trimming open fails with EBUSY.
pub fn expect_trim_busy(dev: &Path, when: &str) -> Res<()> {
    for (flags, name) in [
        (OFlags::WRONLY, "O_WRONLY"),
        (OFlags::RDWR | OFlags::TRUNC, "O_RDWR|O_TRUNC"),
        (
            OFlags::WRONLY | OFlags::TRUNC | OFlags::APPEND,
            "O_WRONLY|O_TRUNC|O_APPEND",
        ),
    ] {
        match open(dev, flags) {
            Err(Errno::BUSY) => {}
            Ok(_) => fail!("open {name} while {when}: expected EBUSY, it opened (and trimmed)"),
            Err(e) => fail!(
                "open {name} while {when}: expected EBUSY, got {}",
                errno_name(e)
            ),
        }
    }
    Ok(())
}

/// Fails unless touching the page at `offset` (mapped and touched as `access` says) kills a child
/// process with SIGBUS; with `after`, the child first reads the byte there, in the same mapping,
/// and must survive that.
pub fn expect_sigbus(
    dev: &Path,
    offset: u64,
    after: Option<u64>,
    what: &str,
    access: Access,
) -> Res<()> {
    let mut touch = Command::new("/proc/self/exe");
    touch
        .args(["touch", "--dev"])
        .arg(dev)
        .args(["--offset", &offset.to_string()]);
    if let Some(after) = after {
        touch.args(["--after", &after.to_string()]);
    }
    match access {
        Access::Shared => {}
        Access::PrivateRead => {
            touch.arg("--private");
        }
        Access::PrivateWrite => {
            touch.args(["--private", "--write"]);
        }
    }
    let what = match access {
        Access::Shared => what.to_string(),
        Access::PrivateRead => format!("{what}, read through a MAP_PRIVATE mapping"),
        Access::PrivateWrite => format!("{what}, written through a MAP_PRIVATE mapping"),
    };
    let mut child = touch
        .stdout(Stdio::piped())
        .spawn()
        .ctx("spawn /proc/self/exe touch")?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().ctx("wait")? {
            break status;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            fail!("touching {what} (offset {offset}) hung for 10 s: expected SIGBUS");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout
            .read_to_string(&mut out)
            .ctx("read the child's output")?;
    }
    if status.signal() != Some(Signal::BUS.as_raw()) {
        let said = out.lines().last().unwrap_or("nothing");
        fail!("touching {what} (offset {offset}): expected SIGBUS, got {status} (it said: {said})");
    }
    if let Some(after) = after {
        ensure!(
            out.contains(&format!("at offset {after} with no signal")),
            "touching {what}: the SIGBUS came at offset {after}, before offset {offset}"
        );
    }
    Ok(())
}

/// Runs the hidden `touch` subcommand: maps the page at the offset and reads (or writes) its
/// first byte.
pub fn touch(args: &TouchArgs) -> Res<()> {
    let fd = open_rw(&args.dev.dev)?;
    let ps = rustix::param::page_size() as u64;
    let offsets = [args.after, Some(args.offset)];
    let offsets = offsets.iter().flatten();
    let start = offsets.clone().min().unwrap_or(&0) / ps * ps;
    let end = (offsets.clone().max().unwrap_or(&0) / ps + 1) * ps;
    let len = (end - start) as usize;
    let mut map = match (args.private, args.write) {
        (false, _) => Mapping::new(fd.as_fd(), start, len, MapFlags::SHARED),
        (true, false) => Mapping::read_only(fd.as_fd(), start, len, MapFlags::PRIVATE),
        (true, true) => Mapping::new(fd.as_fd(), start, len, MapFlags::PRIVATE),
    }
    .ctx(format_args!("mmap {start}..{end}"))?;
    if let Some(after) = args.after {
        let byte = map.read((after - start) as usize, 1)[0];
        diag!("read {byte:#04x} at offset {after} with no signal");
    }
    let at = (args.offset - start) as usize;
    if args.write {
        map.write(at, &[0x5a]);
        diag!("wrote 0x5a at offset {} with no signal", args.offset);
    } else {
        let byte = map.read(at, 1)[0];
        diag!("read {byte:#04x} at offset {} with no signal", args.offset);
    }
    Ok(())
}

/// Maps the device's first page, closes the file and holds the mapping for `--secs`, so that a
/// test can check what a mapping alone prevents (rmmod, trim).
pub fn hold(args: &HoldArgs) -> Res<()> {
    let ps = rustix::param::page_size();
    let map = {
        let fd = open_rw(&args.dev.dev)?;
        Mapping::new(fd.as_fd(), 0, ps, MapFlags::SHARED).ctx("mmap")?
    };
    diag!(
        "holding a mapping of {} with its file closed",
        args.dev.dev.display()
    );
    std::thread::sleep(std::time::Duration::from_secs(args.secs));
    drop(map);
    Ok(())
}

/// read() into, and write() from, a mapping of the same device both complete.
fn self_referencing(fd: &impl AsFd, model: &mut Vec<u8>, quantum: usize) -> Res<()> {
    let _watchdog = Watchdog::start(
        20,
        "read()/write() with a buffer that maps the same device".into(),
    );
    // A new mapping: its pages get installed by faults during the copies.
    let mut map = Mapping::new(fd.as_fd(), 0, 2 * quantum, MapFlags::SHARED).ctx("mmap")?;
    let n = map
        .pread_into(fd.as_fd(), 0..quantum, quantum as u64)
        .ctx("pread into the mapping")?;
    ensure!(
        n == quantum,
        "pread into the mapping: expected {quantum}, got {n}"
    );
    let copy = model[quantum..2 * quantum].to_vec();
    model_write(model, 0, &copy);
    expect_file(
        "quantum 0 after pread of quantum 1 into its mapping",
        fd,
        0,
        &copy,
    )?;

    let at = 5 * quantum as u64;
    let n = map
        .pwrite_from(fd.as_fd(), quantum..2 * quantum, at)
        .ctx("pwrite from the mapping")?;
    ensure!(
        n == quantum,
        "pwrite from the mapping: expected {quantum}, got {n}"
    );
    model_write(model, at, &copy);
    expect_file(
        "quantum 5 after pwrite from the mapping of quantum 1",
        fd,
        at,
        &copy,
    )?;
    diag!("read() into and write() from a mapping of the device completed");
    Ok(())
}

/// Mappings inherited by fork and left by partial munmap keep the device from being trimmed
/// until the last one goes.
fn counted_mappings(dev: &Path, fd: &impl AsFd, model: &[u8]) -> Res<()> {
    let ps = rustix::param::page_size();
    let map = Mapping::new(fd.as_fd(), 0, 2 * ps, MapFlags::SHARED).ctx("mmap")?;
    let (ready_rd, ready_wr) = rustix::pipe::pipe().ctx("pipe")?;
    let want = &model[..2 * ps];
    let ready_wr = std::cell::Cell::new(Some(ready_wr));
    let child = glue::fork(|| {
        drop(ready_wr.take());
        // Wait until the parent closes its end, then check the inherited mapping.
        let _ = rustix::io::read(&ready_rd, &mut [0; 1]);
        u8::from(map.read(0, 2 * ps) != want)
    })
    .ctx("fork")?;
    drop(map);
    let busy = expect_trim_busy(dev, "a forked child holds the only mapping");
    drop(ready_wr.take());
    let ended = wait_child(child)?;
    busy?;
    ensure!(
        ended == Ended::Exited(0),
        "the forked child's inherited mapping: expected the data (exit 0), got {ended}"
    );

    // Three pages: all in allocated quanta at every order (at order 0, quantum 3 is a hole).
    let mut map = Mapping::new(fd.as_fd(), 0, 3 * ps, MapFlags::SHARED).ctx("mmap")?;
    check_pages(&map, model, 0, 0..3)?;
    // Unmapping the middle page splits the mapping in two.
    map.unmap_pages(1, 1).ctx("munmap the second page")?;
    map.unmap_pages(0, 1).ctx("munmap the first page")?;
    expect_trim_busy(dev, "page 2 of a split mapping remains")?;
    drop(map);
    trim(dev)?;
    ensure!(size_of(dev)? == 0, "trim after the last munmap left data");
    diag!("mappings counted across fork and partial munmap; trim works after the last munmap");
    Ok(())
}
