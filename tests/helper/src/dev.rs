// SPDX-License-Identifier: GPL-2.0

//! The scullv device's interface: its ioctl commands, its geometry and /proc/scullvmem.

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;
use rustix::io::Errno;
use rustix::ioctl::{opcode, Opcode};

use crate::glue::{self, IoctlArg};
use crate::util::{diag, fail, open, Ctx, Res};

/// The ioctl magic, `'K'`.
pub const MAGIC: u8 = b'K';

/// The two module-wide values the ioctl commands act on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Param {
    Order,
    Qset,
}

impl Param {
    /// The allowed range.
    pub fn bounds(self) -> (i32, i32) {
        match self {
            Param::Order => (0, 10),
            Param::Qset => (1, 65536),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Param::Order => "order",
            Param::Qset => "qset",
        }
    }
}

/// One of the 13 ioctl commands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cmd {
    /// `RESET _IO(0)`: back to the load-time values.
    Reset,
    /// `_IOW`: set from a pointer.
    S(Param),
    /// `_IO`: set from the argument's value.
    T(Param),
    /// `_IOR`: get into a pointer.
    G(Param),
    /// `_IO`: return the value.
    Q(Param),
    /// `_IOWR`: exchange through a pointer.
    X(Param),
    /// `_IO`: set from the argument's value, return the old value.
    H(Param),
}

impl Cmd {
    /// The ioctl number.
    pub fn opcode(self) -> Opcode {
        let base = |p: Param| if p == Param::Order { 0 } else { 6 };
        match self {
            Cmd::Reset => opcode::none(MAGIC, 0),
            Cmd::S(p) => opcode::write::<i32>(MAGIC, base(p) + 1),
            Cmd::T(p) => opcode::none(MAGIC, base(p) + 2),
            Cmd::G(p) => opcode::read::<i32>(MAGIC, base(p) + 3),
            Cmd::Q(p) => opcode::none(MAGIC, base(p) + 4),
            Cmd::X(p) => opcode::read_write::<i32>(MAGIC, base(p) + 5),
            Cmd::H(p) => opcode::none(MAGIC, base(p) + 6),
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (letter, param) = match *self {
            Cmd::Reset => return f.write_str("RESET"),
            Cmd::S(p) => ('S', p),
            Cmd::T(p) => ('T', p),
            Cmd::G(p) => ('G', p),
            Cmd::Q(p) => ('Q', p),
            Cmd::X(p) => ('X', p),
            Cmd::H(p) => ('H', p),
        };
        write!(f, "{letter} {}", param.name())
    }
}

/// Sends `cmd` with `arg` to the device.
pub fn ioctl(fd: impl AsFd, cmd: Cmd, arg: IoctlArg<'_>) -> Result<i32, Errno> {
    glue::ioctl(fd.as_fd(), cmd.opcode(), arg)
}

/// The current module-wide value of `param`, from the Q command.
pub fn query(fd: impl AsFd, param: Param) -> Res<i32> {
    ioctl(fd, Cmd::Q(param), IoctlArg::Value(0)).ctx(Cmd::Q(param))
}

/// Both current values, (order, qset).
pub fn values(fd: impl AsFd) -> Res<(i32, i32)> {
    Ok((query(&fd, Param::Order)?, query(&fd, Param::Qset)?))
}

/// Sets `param` with the T command.
pub fn set(fd: impl AsFd, param: Param, value: i32) -> Res<()> {
    let cmd = Cmd::T(param);
    ioctl(fd, cmd, IoctlArg::Value(value)).ctx(format_args!("{cmd} {value}"))?;
    Ok(())
}

/// Sends RESET.
pub fn reset(fd: impl AsFd) -> Res<()> {
    ioctl(fd, Cmd::Reset, IoctlArg::Value(0)).ctx("RESET")?;
    Ok(())
}

/// Sends RESET when dropped, so the module is back at its load-time values however a check
/// ends.
pub struct ResetOnDrop(OwnedFd);

impl ResetOnDrop {
    pub fn new(dev: &Path) -> Res<Self> {
        let fd = open(dev, OFlags::RDONLY).ctx(format_args!("open {}", dev.display()))?;
        Ok(Self(fd))
    }
}

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        let _ = ioctl(&self.0, Cmd::Reset, IoctlArg::Value(0));
    }
}

/// The size of a quantum and of a list item.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    pub quantum: u64,
    pub itemsize: u64,
}

/// Geometry given on the command line.
#[derive(clap::Args, Debug)]
pub struct GeometryArgs {
    /// Quantum size in bytes [default: from the device's current order, by ioctl Q]
    #[arg(long)]
    quantum: Option<u64>,
    /// Item size (quantum x qset) in bytes [default: from the device's current order and qset]
    #[arg(long)]
    itemsize: Option<u64>,
}

impl GeometryArgs {
    /// The geometry the device's next data takes: the one given, else the module-wide values.
    pub fn resolve(&self, fd: impl AsFd) -> Res<Geometry> {
        let (quantum, itemsize) = match (self.quantum, self.itemsize) {
            (Some(q), Some(i)) => (q, i),
            _ => {
                let (order, qset) = values(fd)?;
                let quantum = (rustix::param::page_size() as u64) << order;
                (
                    self.quantum.unwrap_or(quantum),
                    self.itemsize.unwrap_or(quantum * qset as u64),
                )
            }
        };
        if quantum < 4096 || itemsize < quantum || itemsize % quantum != 0 {
            fail!("bad geometry: quantum {quantum}, item size {itemsize}");
        }
        diag!("quantum {quantum}, item size {itemsize}");
        Ok(Geometry { quantum, itemsize })
    }
}

/// The `--dev` option.
#[derive(clap::Args, Debug)]
pub struct DevArg {
    /// The device node
    #[arg(long, default_value = "/dev/scullv0")]
    pub dev: PathBuf,
}

/// The device number N of `/dev/scullvN`.
pub fn dev_index(dev: &Path) -> Res<usize> {
    let name = dev.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    match name.strip_prefix("scullv").map(str::parse) {
        Some(Ok(index)) => Ok(index),
        _ => fail!("cannot tell the device number from {}", dev.display()),
    }
}

/// One device's block of /proc/scullvmem.
#[derive(Debug, Default)]
pub struct DevBlock {
    pub index: usize,
    pub qset: i64,
    pub order: i64,
    pub size: u64,
    /// The "item at" lines: (item pointer, qset pointer).
    pub items: Vec<(String, String)>,
    /// The quantum lines: (index, pointer field as printed).
    pub quanta: Vec<(usize, String)>,
}

/// Reads /proc/scullvmem.
pub fn read_proc() -> Res<String> {
    std::fs::read_to_string("/proc/scullvmem").ctx("read /proc/scullvmem")
}

/// Parses /proc/scullvmem; fails on a line of no known form.
pub fn parse_proc(text: &str) -> Res<Vec<DevBlock>> {
    let mut blocks: Vec<DevBlock> = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(block) = parse_device_line(line) {
            blocks.push(block);
        } else if let Some(rest) = line.strip_prefix("  item at ") {
            let (item, qset) = rest.split_once(", qset at ").unwrap_or((rest, ""));
            match blocks.last_mut() {
                Some(block) if !qset.is_empty() => block.items.push((item.into(), qset.into())),
                _ => fail!("/proc/scullvmem: unexpected line {line:?}"),
            }
        } else if let Some((index, ptr)) = line.strip_prefix("    ").and_then(|l| l.split_once(':'))
            && let Ok(index) = index.trim().parse()
            && let Some(block) = blocks.last_mut()
        {
            block.quanta.push((index, ptr.into()));
        } else {
            fail!("/proc/scullvmem: unexpected line {line:?}");
        }
    }
    Ok(blocks)
}

/// Parses "Device %i: qset %i, order %i, sz %li".
fn parse_device_line(line: &str) -> Option<DevBlock> {
    let rest = line.strip_prefix("Device ")?;
    let (index, rest) = rest.split_once(": qset ")?;
    let (qset, rest) = rest.split_once(", order ")?;
    let (order, size) = rest.split_once(", sz ")?;
    Some(DevBlock {
        index: index.parse().ok()?,
        qset: qset.parse().ok()?,
        order: order.parse().ok()?,
        size: size.parse().ok()?,
        ..Default::default()
    })
}

/// The block of device `index` in /proc/scullvmem.
pub fn proc_block(index: usize) -> Res<DevBlock> {
    match parse_proc(&read_proc()?)?
        .into_iter()
        .find(|b| b.index == index)
    {
        Some(block) => Ok(block),
        None => fail!("/proc/scullvmem has no block for device {index}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcodes_are_the_books() {
        assert_eq!(Cmd::Reset.opcode(), 0x4b00);
        assert_eq!(Cmd::S(Param::Order).opcode(), 0x4004_4b01);
        assert_eq!(Cmd::G(Param::Order).opcode(), 0x8004_4b03);
        assert_eq!(Cmd::X(Param::Qset).opcode(), 0xc004_4b0b);
        assert_eq!(Cmd::H(Param::Qset).opcode(), 0x4b0c);
    }

    #[test]
    fn parses_the_books_listing() {
        let text = "\nDevice 0: qset 500, order 4, sz 1535135\n  item at 00000000c5d2e0a1, \
                    qset at 000000003fa1b7e2\n       0:a4c3f6d0\n       1: 5e9b2c1\n\n\
                    Device 1: qset 500, order 4, sz 0\n";
        let blocks = parse_proc(text).expect("parses");
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            (blocks[0].qset, blocks[0].order, blocks[0].size),
            (500, 4, 1535135)
        );
        assert_eq!(blocks[0].items[0].1, "000000003fa1b7e2");
        assert_eq!(
            blocks[0].quanta,
            [(0, "a4c3f6d0".into()), (1, " 5e9b2c1".into())]
        );
        assert!(blocks[1].items.is_empty());
        assert!(parse_proc("Device 0: qset 500, order 4, sz 0\nnonsense\n").is_err());
    }
}
