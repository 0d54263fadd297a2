// SPDX-License-Identifier: GPL-2.0

//! The ioctl commands, as root (`ioctl`) and as an unprivileged user (`ioctl-unpriv`), and what
//! /proc/scullvmem shows an unprivileged user.

use std::os::fd::AsFd;
use std::path::Path;

use rustix::fs::OFlags;
use rustix::io::Errno;
use rustix::ioctl::opcode;
use rustix::process::{Gid, Uid};

use crate::dev::{self, Cmd, DevArg, Param, ResetOnDrop, MAGIC};
use crate::glue::{self, IoctlArg, NoAccessPage};
use crate::util::{
    diag, ensure, expect_file, fail, model_write, open, open_rw, pattern, report, show, trim,
    wait_child, write_at, Ctx, Ended, Res,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    dev: DevArg,
    /// The scullv_order the module was loaded with
    #[arg(long, default_value_t = 4)]
    load_order: i32,
    /// The scullv_qset the module was loaded with
    #[arg(long, default_value_t = 500)]
    load_qset: i32,
}

#[derive(clap::Args, Debug)]
pub struct UnprivArgs {
    #[command(flatten)]
    dev: DevArg,
    /// The user to drop to
    #[arg(long, default_value_t = 65534)]
    uid: u32,
    /// The group to drop to [default: the uid]
    #[arg(long)]
    gid: Option<u32>,
}

const PARAMS: [Param; 2] = [Param::Order, Param::Qset];

/// Sends `cmd` and fails unless it returns `want`.
fn expect_ioctl(fd: &impl AsFd, cmd: Cmd, arg: IoctlArg<'_>, want: Result<i32, Errno>) -> Res<()> {
    let got = dev::ioctl(fd, cmd, arg);
    ensure!(
        got == want,
        "{cmd}: expected {}, got {}",
        show(&want),
        show(&got)
    );
    Ok(())
}

/// Fails unless both Q and G report `want` for `param`.
fn expect_value(fd: &impl AsFd, param: Param, want: i32, when: &str) -> Res<()> {
    let q = dev::query(fd, param)?;
    let mut g = -12345;
    dev::ioctl(fd, Cmd::G(param), IoctlArg::Int(&mut g)).ctx(Cmd::G(param))?;
    ensure!(
        q == want && g == want,
        "{when}: expected {param:?} {want}, got {q} from Q and {g} from G"
    );
    Ok(())
}

/// A valid value for `param` that differs from `current`.
fn other_value(param: Param, current: i32) -> i32 {
    let (lo, hi) = param.bounds();
    if current < hi {
        (current + 1).max(lo)
    } else {
        current - 1
    }
}

/// Runs the `ioctl` subcommand.
pub fn run(args: &Args) -> Res<()> {
    let dev = &args.dev.dev;
    let fd = open_rw(dev)?;
    let _reset = ResetOnDrop::new(dev)?;
    let load = [args.load_order, args.load_qset];

    expect_ioctl(&fd, Cmd::Reset, IoctlArg::Value(0), Ok(0))?;
    for (param, want) in PARAMS.into_iter().zip(load) {
        expect_value(&fd, param, want, "after RESET")?;
    }
    for (param, load) in PARAMS.into_iter().zip(load) {
        set_and_observe(&fd, param, load)?;
    }
    invalid_values(&fd)?;
    bad_pointers(&fd)?;
    unknown_commands(&fd)?;
    geometry(dev, &fd, args.load_order, args.load_qset)
}

/// T, S, X and H set values seen through Q and G, X and H give the old value, the bounds are
/// accepted and RESET restores the load-time value.
fn set_and_observe(fd: &impl AsFd, param: Param, load: i32) -> Res<()> {
    let (lo, hi) = param.bounds();
    let [a, b, c, d] = match param {
        Param::Order => [2, 3, 5, 6],
        Param::Qset => [7, 11, 13, 17],
    };
    expect_ioctl(fd, Cmd::T(param), IoctlArg::Value(a), Ok(0))?;
    expect_value(fd, param, a, "after T")?;
    let mut v = b;
    expect_ioctl(fd, Cmd::S(param), IoctlArg::Int(&mut v), Ok(0))?;
    expect_value(fd, param, b, "after S")?;
    let mut v = c;
    expect_ioctl(fd, Cmd::X(param), IoctlArg::Int(&mut v), Ok(0))?;
    ensure!(
        v == b,
        "X {param:?}: expected the old value {b} back, got {v}"
    );
    expect_value(fd, param, c, "after X")?;
    expect_ioctl(fd, Cmd::H(param), IoctlArg::Value(d), Ok(c))?;
    expect_value(fd, param, d, "after H")?;
    for bound in [lo, hi] {
        expect_ioctl(fd, Cmd::T(param), IoctlArg::Value(bound), Ok(0))?;
        expect_value(fd, param, bound, "after T to a bound")?;
    }
    expect_ioctl(fd, Cmd::Reset, IoctlArg::Value(0), Ok(0))?;
    expect_value(fd, param, load, "after RESET")?;
    diag!(
        "{param:?}: T {a}, S {b}, X {c} (gave {b}), H {d} (gave {c}), bounds {lo} and {hi} seen by Q and G; RESET gave {load}"
    );
    Ok(())
}

/// Sends `cmd` expecting `want` as an error, and fails if either value changed.
fn expect_unchanged(
    fd: &impl AsFd,
    cmd: Cmd,
    arg: IoctlArg<'_>,
    what: &str,
    want: Errno,
) -> Res<()> {
    let before = dev::values(fd)?;
    let got = dev::ioctl(fd, cmd, arg);
    ensure!(
        got == Err(want),
        "{cmd} {what}: expected {}, got {}",
        show(&Err::<i32, _>(want)),
        show(&got)
    );
    let after = dev::values(fd)?;
    ensure!(
        after == before,
        "{cmd} {what}: (order, qset) changed from {before:?} to {after:?}"
    );
    Ok(())
}

/// Out-of-range values give EINVAL through T, S, X and H and change nothing.
fn invalid_values(fd: &impl AsFd) -> Res<()> {
    dev::set(fd, Param::Order, 3)?;
    dev::set(fd, Param::Qset, 9)?;
    let mut calls = 0;
    for param in PARAMS {
        let (lo, hi) = param.bounds();
        for bad in [lo - 1, hi + 1, -1, i32::MAX, i32::MIN] {
            for cmd in [Cmd::T(param), Cmd::S(param), Cmd::X(param), Cmd::H(param)] {
                let mut v = bad;
                let arg = match cmd {
                    Cmd::S(_) | Cmd::X(_) => IoctlArg::Int(&mut v),
                    _ => IoctlArg::Value(bad),
                };
                expect_unchanged(fd, cmd, arg, &bad.to_string(), Errno::INVAL)?;
                calls += 1;
            }
        }
    }
    diag!("EINVAL and nothing changed for {calls} out-of-range values through T, S, X and H");
    dev::reset(fd)
}

/// NULL, inaccessible and unmapped pointers give EFAULT through S, G and X and change nothing.
fn bad_pointers(fd: &impl AsFd) -> Res<()> {
    let page = NoAccessPage::new().ctx("mmap PROT_NONE")?;
    dev::set(fd, Param::Order, 2)?;
    dev::set(fd, Param::Qset, 8)?;
    for param in PARAMS {
        for cmd in [Cmd::S(param), Cmd::G(param), Cmd::X(param)] {
            expect_unchanged(fd, cmd, IoctlArg::Null, "NULL", Errno::FAULT)?;
            let page = IoctlArg::NoAccess(&page);
            expect_unchanged(fd, cmd, page, "PROT_NONE page", Errno::FAULT)?;
            let top = IoctlArg::Unmapped;
            expect_unchanged(fd, cmd, top, "unmapped top page", Errno::FAULT)?;
        }
    }
    diag!("EFAULT and nothing changed for S, G and X with NULL, PROT_NONE and unmapped pointers");
    dev::reset(fd)
}

/// Unknown numbers and a wrong magic give ENOTTY.
fn unknown_commands(fd: &impl AsFd) -> Res<()> {
    let mut v = 3;
    let cases = [
        (opcode::none(MAGIC, 13), IoctlArg::Value(0), "_IO('K', 13)"),
        (opcode::none(MAGIC, 99), IoctlArg::Value(0), "_IO('K', 99)"),
        (opcode::none(b'k', 0), IoctlArg::Value(0), "_IO('k', 0)"),
        (opcode::none(b'k', 4), IoctlArg::Value(0), "_IO('k', 4)"),
        (
            opcode::read::<i32>(b'J', 3),
            IoctlArg::Int(&mut v),
            "_IOR('J', 3, int)",
        ),
    ];
    for (op, arg, name) in cases {
        let before = dev::values(fd)?;
        let got = glue::ioctl(fd.as_fd(), op, arg);
        ensure!(
            got == Err(Errno::NOTTY),
            "{name}: expected ENOTTY, got {}",
            show(&got)
        );
        ensure!(dev::values(fd)? == before, "{name} changed (order, qset)");
    }
    diag!("ENOTTY for numbers 13 and 99 and for wrong magics");
    Ok(())
}

/// Fails unless /proc/scullvmem shows device `index` with this geometry and size.
fn expect_proc(index: usize, order: i32, qset: i32, size: u64, when: &str) -> Res<dev::DevBlock> {
    let block = dev::proc_block(index)?;
    ensure!(
        (block.order, block.qset, block.size) == (order.into(), qset.into(), size),
        "{when}: expected /proc/scullvmem to show order {order}, qset {qset}, sz {size}; got order {}, qset {}, sz {}",
        block.order,
        block.qset,
        block.size
    );
    Ok(block)
}

/// A trimmed device takes the values set by ioctl at its first allocation and keeps them while
/// it holds data; order 0 and qset 1 (one page an item) hold data correctly.
fn geometry(dev: &Path, fd: &impl AsFd, load_order: i32, load_qset: i32) -> Res<()> {
    let index = dev::dev_index(dev)?;
    let page = rustix::param::page_size() as u64;
    dev::set(fd, Param::Order, 0)?;
    dev::set(fd, Param::Qset, 1)?;
    trim(dev)?;
    expect_proc(index, 0, 1, 0, "trimmed after T order 0, T qset 1")?;

    let mut model = Vec::new();
    let data = pattern(0x6e0, 1000, 5 * page as usize + 123);
    write_at(fd, 1000, &data)?;
    model_write(&mut model, 1000, &data);
    expect_file("order 0, qset 1: data across 6 items", fd, 0, &model)?;
    let block = expect_proc(index, 0, 1, model.len() as u64, "after the write")?;
    ensure!(
        block.items.len() == 6 && block.quanta.len() == 1,
        "order 0, qset 1, 6 pages written: expected 6 item lines and 1 quantum line, got {} and {}",
        block.items.len(),
        block.quanta.len()
    );

    dev::reset(fd)?;
    let more = pattern(0x6e1, 3 * page + 17, 2 * page as usize);
    write_at(fd, 3 * page + 17, &more)?;
    model_write(&mut model, 3 * page + 17, &more);
    let far = model.len() as u64 + 2 * page;
    write_at(fd, far, &more)?;
    model_write(&mut model, far, &more);
    expect_file(
        "after RESET, more data on the order 0 device",
        fd,
        0,
        &model,
    )?;
    expect_proc(
        index,
        0,
        1,
        model.len() as u64,
        "after RESET and more writes",
    )?;

    trim(dev)?;
    expect_proc(index, load_order, load_qset, 0, "trimmed after RESET")?;
    diag!(
        "order 0, qset 1 held {} bytes across items and kept its geometry after RESET until trimmed",
        model.len()
    );
    Ok(())
}

/// Runs the `ioctl-unpriv` subcommand: as root, writes data and changes both values, then forks
/// a child that drops to the user and checks; then resets.
pub fn run_unpriv(args: &UnprivArgs) -> Res<()> {
    let dev = &args.dev.dev;
    ensure!(
        rustix::process::geteuid().is_root(),
        "ioctl-unpriv must start as root (it drops to uid {} itself)",
        args.uid
    );
    let fd = open_rw(dev)?;
    let _reset = ResetOnDrop::new(dev)?;
    let data = pattern(0x0a11, 0, 200_000);
    write_at(&fd, 0, &data)?;
    let (order, qset) = dev::values(&fd)?;
    let values = (
        other_value(Param::Order, order),
        other_value(Param::Qset, qset),
    );
    dev::set(&fd, Param::Order, values.0)?;
    dev::set(&fd, Param::Qset, values.1)?;

    let (uid, gid) = (args.uid, args.gid.unwrap_or(args.uid));
    let child = glue::fork(|| report(unpriv_checks(dev, uid, gid, &data, values))).ctx("fork")?;
    let ended = wait_child(child)?;
    dev::reset(&fd)?;
    ensure!(
        ended == Ended::Exited(0),
        "checks as uid {uid} failed: {ended}"
    );
    Ok(())
}

/// Drops to `uid`/`gid` for good (real, effective and saved ids, no supplementary groups).
pub fn drop_privileges(uid: u32, gid: u32) -> Res<()> {
    rustix::thread::set_thread_groups(&[]).ctx("setgroups")?;
    let gid = Gid::from_raw(gid);
    rustix::thread::set_thread_res_gid(gid, gid, gid).ctx("setresgid")?;
    let uid = Uid::from_raw(uid);
    rustix::thread::set_thread_res_uid(uid, uid, uid).ctx("setresuid")?;
    ensure!(
        !rustix::process::getuid().is_root() && !rustix::process::geteuid().is_root(),
        "still root after setresuid"
    );
    let status = std::fs::read_to_string("/proc/self/status").ctx("read /proc/self/status")?;
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
    ensure!(
        cap_eff == Some(0),
        "expected no effective capabilities, got CapEff {cap_eff:?}"
    );
    Ok(())
}

/// The checks the unprivileged child makes: `values` are the (order, qset) the parent set.
fn unpriv_checks(dev: &Path, uid: u32, gid: u32, data: &[u8], values: (i32, i32)) -> Res<()> {
    drop_privileges(uid, gid)?;
    let fd =
        open(dev, OFlags::RDWR).ctx(format_args!("open {} O_RDWR as uid {uid}", dev.display()))?;
    expect_file(format_args!("read as uid {uid}"), &fd, 0, data)?;
    let new = pattern(0x0a12, 0, 5000);
    write_at(&fd, 0, &new)?;
    expect_file(format_args!("write as uid {uid}"), &fd, 0, &new)?;
    diag!("uid {uid}, no capabilities: read and write work");

    for (param, want) in PARAMS.into_iter().zip([values.0, values.1]) {
        expect_value(&fd, param, want, "unprivileged Q and G")?;
    }
    expect_unchanged(
        &fd,
        Cmd::Reset,
        IoctlArg::Value(0),
        "unprivileged",
        Errno::PERM,
    )?;
    for (param, current) in PARAMS.into_iter().zip([values.0, values.1]) {
        let to = other_value(param, current);
        for cmd in [Cmd::T(param), Cmd::S(param), Cmd::X(param), Cmd::H(param)] {
            let mut v = to;
            let arg = match cmd {
                Cmd::S(_) | Cmd::X(_) => IoctlArg::Int(&mut v),
                _ => IoctlArg::Value(to),
            };
            expect_unchanged(&fd, cmd, arg, &format!("{to}, unprivileged"), Errno::PERM)?;
        }
    }
    diag!("EPERM and nothing changed for RESET, T, S, X and H; Q and G work");
    proc_hashed(uid)
}

/// Every pointer in /proc/scullvmem is hashed as `%p` and `%8p` print it, never raw.
fn proc_hashed(uid: u32) -> Res<()> {
    let blocks = dev::parse_proc(&dev::read_proc()?)?;
    let mut count = (0, 0);
    for block in &blocks {
        for (item, qset) in &block.items {
            check_pointer(item, 16)?;
            check_pointer(qset, 16)?;
            count.0 += 2;
        }
        for (_, quantum) in &block.quanta {
            check_pointer(quantum, 8)?;
            count.1 += 1;
        }
    }
    ensure!(
        count.0 > 0 && count.1 > 0,
        "/proc/scullvmem shows no item or quantum lines although the device holds data"
    );
    diag!(
        "/proc/scullvmem as uid {uid}: {} item and {} quantum pointers, all hashed",
        count.0,
        count.1
    );
    Ok(())
}

/// Checks one pointer field printed with `%p` (`width` 16) or `%8p` (`width` 8): on a 64-bit
/// kernel the hash fills the low 32 bits, so 16 digits must start with 8 zeros and `%8p` gives
/// at most 8; a raw kernel address (ffff...) fails.
fn check_pointer(field: &str, width: usize) -> Res<()> {
    if field.contains("ptrval") {
        fail!("/proc/scullvmem shows {field:?}: the kernel's random pool was not ready");
    }
    let digits = field.trim_start();
    let hex = !digits.is_empty() && digits.chars().all(|c| c.is_ascii_hexdigit());
    let form = match width {
        8 => field.len() == digits.len().max(8),
        _ => field == digits && (digits.len() == 8 || digits.len() == 16),
    };
    ensure!(
        hex && form,
        "/proc/scullvmem: {field:?} is not a %p field of width {width}"
    );
    ensure!(
        digits.len() <= 8 || digits.starts_with("00000000"),
        "/proc/scullvmem shows a raw kernel address {digits} to uid {}",
        rustix::process::getuid().as_raw()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_pointer;

    #[test]
    fn hashed_pointers_pass_raw_ones_fail() {
        assert!(check_pointer("00000000c5d2e0a1", 16).is_ok());
        assert!(check_pointer("a4c3f6d0", 8).is_ok());
        assert!(check_pointer(" 5e9b2c1", 8).is_ok());
        assert!(check_pointer("ffff8880003ab800", 16).is_err());
        assert!(check_pointer("ffff8880003ab800", 8).is_err());
        assert!(check_pointer("(____ptrval____)", 16).is_err());
        assert!(check_pointer("0x00000000c5d2e0a1", 16).is_err());
    }
}
