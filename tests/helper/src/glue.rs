// SPDX-License-Identifier: GPL-2.0

//! The only module with `unsafe` code: raw ioctl calls, memory mappings, fork and Linux AIO.
//!
//! Each item gives a safe interface whose arguments cannot make the kernel write into memory
//! that Rust code owns, other than the buffers handed to it for that call.

use std::cell::Cell;
use std::ffi::{c_long, c_uint, c_ulong, c_void};
use std::io::Write;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::ptr;

use nix::unistd::{ForkResult, Pid};
use rustix::io::{Errno, Result};
use rustix::ioctl::{Ioctl, IoctlOutput, Opcode};
use rustix::mm::{MapFlags, ProtFlags};

/// The argument of an ioctl call.
pub enum IoctlArg<'a> {
    /// An int passed by value, for commands encoded without a data direction (`_IO`).
    Value(i32),
    /// A pointer to an int the kernel may read and write.
    Int(&'a mut i32),
    /// A NULL pointer.
    Null,
    /// A pointer into a page that allows no access.
    NoAccess(&'a NoAccessPage),
    /// A pointer into the last page of the address space, which no process can map (kernel
    /// space for a 64-bit process, past the end of a 32-bit process's space).
    Unmapped,
}

/// An ioctl whose output is the call's return value.
struct RawIoctl {
    opcode: Opcode,
    arg: *mut c_void,
}

// SAFETY: `output_from_ptr` reads nothing through the pointer; `ioctl` below makes sure `arg` is
// either a value for a command that carries no pointer, or a pointer the kernel may write to.
unsafe impl Ioctl for RawIoctl {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        self.opcode
    }

    fn as_ptr(&mut self) -> *mut c_void {
        self.arg
    }

    /// # Safety
    ///
    /// None beyond the trait's: the pointer is not used.
    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> Result<IoctlOutput> {
        Ok(out)
    }
}

/// Direction bits of an ioctl number (`_IOC_DIR`), where `_IO` commands have none.
fn ioctl_dir(opcode: Opcode) -> Opcode {
    opcode >> 30
}

/// Size bits of an ioctl number (`_IOC_SIZE`).
fn ioctl_size(opcode: Opcode) -> usize {
    ((opcode >> 16) & 0x3fff) as usize
}

/// Calls `ioctl(fd, opcode, arg)` and returns what the call returned.
///
/// Fails with EINVAL, without calling, when a value is passed to a command that carries data or
/// an int pointer to a command whose data is not an int.
pub fn ioctl(fd: BorrowedFd<'_>, opcode: Opcode, arg: IoctlArg<'_>) -> Result<i32> {
    let arg = match arg {
        IoctlArg::Value(value) if ioctl_dir(opcode) == 0 => {
            ptr::without_provenance_mut(value as isize as usize)
        }
        IoctlArg::Int(int) if ioctl_size(opcode) == size_of::<i32>() => ptr::from_mut(int).cast(),
        IoctlArg::Null => ptr::null_mut(),
        IoctlArg::NoAccess(page) => page.ptr,
        IoctlArg::Unmapped => ptr::without_provenance_mut(usize::MAX - 0xfff),
        _ => return Err(Errno::INVAL),
    };
    // SAFETY: By the ioctl encoding, a command without a data direction does not dereference
    // its argument. A pointer argument is either an int borrowed mutably for this call, whose
    // size the command declares, or an address no access is allowed to (NULL, a PROT_NONE page
    // owned by a live `NoAccessPage`, a page no process can map), where the kernel's user copies
    // fail with EFAULT.
    unsafe { rustix::ioctl::ioctl(fd, RawIoctl { opcode, arg }) }
}

/// A page mapped with no access allowed: a user pointer every kernel copy fails on.
pub struct NoAccessPage {
    ptr: *mut c_void,
}

impl NoAccessPage {
    /// Maps the page.
    pub fn new() -> Result<Self> {
        let len = rustix::param::page_size();
        // SAFETY: A new anonymous mapping at an address the kernel chooses aliases no memory.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(ptr::null_mut(), len, ProtFlags::empty(), MapFlags::PRIVATE)
        }?;
        Ok(Self { ptr })
    }
}

impl Drop for NoAccessPage {
    fn drop(&mut self) {
        // SAFETY: The page was mapped by `new` and nothing refers into it.
        let _ = unsafe { rustix::mm::munmap(self.ptr, rustix::param::page_size()) };
    }
}

/// A mapping of a file, read and written by copies so that no Rust reference ever points into
/// memory that the device can change.
///
/// Touching a page the device does not back raises SIGBUS, which ends the process: only a
/// throw-away child process touches pages that may not be backed.
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
    /// Which pages are still mapped.
    mapped: Vec<bool>,
}

impl Mapping {
    /// Maps `len` bytes of `fd` from `offset` for reading and writing, with `flags` (for example
    /// `MapFlags::SHARED`).
    pub fn new(fd: BorrowedFd<'_>, offset: u64, len: usize, flags: MapFlags) -> Result<Self> {
        let prot = ProtFlags::READ | ProtFlags::WRITE;
        // SAFETY: A new mapping at an address the kernel chooses aliases no memory.
        let ptr = unsafe { rustix::mm::mmap(ptr::null_mut(), len, prot, flags, fd, offset) }?;
        let pages = len.div_ceil(rustix::param::page_size());
        Ok(Self {
            ptr: ptr.cast(),
            len,
            mapped: vec![true; pages],
        })
    }

    /// Asserts that `range` lies in pages that are still mapped.
    fn check(&self, range: &Range<usize>) {
        let page = rustix::param::page_size();
        assert!(
            range.start <= range.end && range.end <= self.len,
            "range outside the mapping"
        );
        if range.start < range.end {
            let pages = range.start / page..range.end.div_ceil(page);
            assert!(
                self.mapped[pages].iter().all(|&m| m),
                "range in an unmapped page"
            );
        }
    }

    /// Copies `len` bytes at `offset` out of the mapping.
    pub fn read(&self, offset: usize, len: usize) -> Vec<u8> {
        self.check(&(offset..offset + len));
        let mut out = vec![0; len];
        // SAFETY: `check` proved the source lies in mapped pages, and `out` is a new buffer.
        unsafe { ptr::copy_nonoverlapping(self.ptr.add(offset), out.as_mut_ptr(), len) };
        out
    }

    /// Copies `out.len()` bytes at `offset` out of the mapping into `out`, without allocating.
    pub fn read_into(&self, offset: usize, out: &mut [u8]) {
        self.check(&(offset..offset + out.len()));
        // SAFETY: `check` proved the source lies in mapped pages, and `out` is not in them: no
        // slice of the mapping outlives the call that made it.
        unsafe { ptr::copy_nonoverlapping(self.ptr.add(offset), out.as_mut_ptr(), out.len()) };
    }

    /// Copies `data` into the mapping at `offset`.
    pub fn write(&mut self, offset: usize, data: &[u8]) {
        self.check(&(offset..offset + data.len()));
        // SAFETY: `check` proved the target lies in mapped pages, and `data` is not in them: no
        // slice of the mapping is ever handed out.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(offset), data.len()) };
    }

    /// Unmaps `count` pages from page `first` (of the mapping) on.
    pub fn unmap_pages(&mut self, first: usize, count: usize) -> Result<()> {
        let page = rustix::param::page_size();
        self.check(&(first * page..(first + count) * page));
        // SAFETY: The pages are part of this mapping and nothing refers into them.
        unsafe { rustix::mm::munmap(self.ptr.add(first * page).cast(), count * page) }?;
        self.mapped[first..first + count].fill(false);
        Ok(())
    }

    /// `pread(fd, mapping[range], pos)`: reads the file into this mapping.
    pub fn pread_into(
        &mut self,
        fd: BorrowedFd<'_>,
        range: Range<usize>,
        pos: u64,
    ) -> Result<usize> {
        self.check(&range);
        // SAFETY: The range is mapped, and the slice lives only for this call, during which no
        // other reference to the mapping exists.
        let buf = unsafe { std::slice::from_raw_parts_mut(self.ptr.add(range.start), range.len()) };
        rustix::io::pread(fd, buf, pos)
    }

    /// `pwrite(fd, mapping[range], pos)`: writes this mapping's bytes to the file.
    pub fn pwrite_from(&self, fd: BorrowedFd<'_>, range: Range<usize>, pos: u64) -> Result<usize> {
        self.check(&range);
        // SAFETY: As in `pread_into`; the kernel only reads the slice.
        let buf = unsafe { std::slice::from_raw_parts(self.ptr.add(range.start), range.len()) };
        rustix::io::pwrite(fd, buf, pos)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: The range was mapped by `new` and nothing refers into it. Unmapping pages
        // that `unmap_pages` already unmapped is allowed.
        let _ = unsafe { rustix::mm::munmap(self.ptr.cast(), self.len) };
    }
}

/// Forks a child process that runs `child` and exits with the code it returns.
///
/// Returns the child's pid in the parent. Fails with EBUSY, without forking, unless this
/// process has a single thread.
pub fn fork(child: impl FnOnce() -> u8) -> Result<Pid> {
    // A thread that was just joined may still be listed for a moment.
    let mut tries = 0;
    while std::fs::read_dir("/proc/self/task")
        .map_err(|_| Errno::NOENT)?
        .count()
        != 1
    {
        tries += 1;
        if tries == 100 {
            return Err(Errno::BUSY);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = std::io::stdout().flush();
    // SAFETY: The process has a single thread, so the child may run any code: no lock can be
    // held by a thread that the child lacks.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Parent { child }) => Ok(child),
        Ok(ForkResult::Child) => {
            let code = child();
            let _ = std::io::stdout().flush();
            std::process::exit(code.into())
        }
        Err(e) => Err(Errno::from_raw_os_error(e as i32)),
    }
}

/// `struct iocb` of `<linux/aio_abi.h>` (little-endian layout).
#[repr(C)]
#[derive(Default)]
struct Iocb {
    aio_data: u64,
    aio_key: u32,
    aio_rw_flags: i32,
    aio_lio_opcode: u16,
    aio_reqprio: i16,
    aio_fildes: u32,
    aio_buf: u64,
    aio_nbytes: u64,
    aio_offset: i64,
    aio_reserved2: u64,
    aio_flags: u32,
    aio_resfd: u32,
}

/// `struct io_event` of `<linux/aio_abi.h>`.
#[repr(C)]
#[derive(Default)]
struct IoEvent {
    data: u64,
    obj: u64,
    res: i64,
    res2: i64,
}

const IOCB_CMD_PREAD: u16 = 0;
const IOCB_CMD_PWRITE: u16 = 1;

/// What one AIO request does.
pub enum AioOp<'a> {
    /// `IOCB_CMD_PREAD` into the buffer.
    Pread(&'a mut [u8]),
    /// `IOCB_CMD_PWRITE` from the buffer.
    Pwrite(&'a [u8]),
}

/// A Linux AIO context (`io_setup`), destroyed on drop.
pub struct Aio {
    /// `aio_context_t`, an `unsigned long`; 0 once destroyed.
    ctx: Cell<c_ulong>,
}

/// The errno of the last failed libc call.
fn last_errno() -> Errno {
    Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO)
}

impl Aio {
    /// `io_setup(8, &ctx)`.
    pub fn new() -> Result<Self> {
        let mut ctx: c_ulong = 0;
        // SAFETY: `ctx` is a live `aio_context_t` the kernel writes the new context into.
        let ret = unsafe { libc::syscall(libc::SYS_io_setup, 8 as c_uint, &raw mut ctx) };
        if ret < 0 {
            return Err(last_errno());
        }
        Ok(Self {
            ctx: Cell::new(ctx),
        })
    }

    /// Destroys the context; this waits for every request in flight to complete.
    fn destroy(&self) {
        let ctx = self.ctx.replace(0);
        if ctx != 0 {
            // SAFETY: `ctx` is a context that `new` set up and nothing else destroyed.
            unsafe { libc::syscall(libc::SYS_io_destroy, ctx) };
        }
    }

    /// Submits one request at `offset` of `fd`, waits for it and returns its result.
    pub fn run(&self, fd: BorrowedFd<'_>, op: AioOp<'_>, offset: u64) -> Result<usize> {
        let ctx = self.ctx.get();
        if ctx == 0 {
            return Err(Errno::INVAL);
        }
        let (opcode, buf, len) = match op {
            AioOp::Pread(buf) => (IOCB_CMD_PREAD, buf.as_mut_ptr(), buf.len()),
            AioOp::Pwrite(buf) => (IOCB_CMD_PWRITE, buf.as_ptr().cast_mut(), buf.len()),
        };
        let mut iocb = Iocb {
            aio_lio_opcode: opcode,
            aio_fildes: fd.as_fd().as_raw_fd() as u32,
            aio_buf: buf as usize as u64,
            aio_nbytes: len as u64,
            aio_offset: offset as i64,
            ..Default::default()
        };
        let mut iocbs = [&raw mut iocb];
        let nr: c_long = 1;
        // SAFETY: `iocbs` points to one live iocb whose buffer is borrowed for this call (the
        // kernel writes to it only for a pread, for which it is borrowed mutably). The request
        // completes before this function returns: `io_getevents` waits for it, and if that
        // fails, `destroy` waits for it.
        let ret = unsafe { libc::syscall(libc::SYS_io_submit, ctx, nr, iocbs.as_mut_ptr()) };
        if ret != 1 {
            return Err(if ret < 0 { last_errno() } else { Errno::AGAIN });
        }
        let mut event = IoEvent::default();
        loop {
            // SAFETY: `event` is a live io_event the kernel writes one completion into.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_io_getevents,
                    ctx,
                    1 as c_long,
                    1 as c_long,
                    &raw mut event,
                    ptr::null_mut::<c_void>(),
                )
            };
            match ret {
                1 => break,
                _ if ret < 0 && last_errno() == Errno::INTR => continue,
                _ => {
                    let err = if ret < 0 { last_errno() } else { Errno::IO };
                    self.destroy();
                    return Err(err);
                }
            }
        }
        if event.res < 0 {
            Err(Errno::from_raw_os_error(-event.res as i32))
        } else {
            Ok(event.res as usize)
        }
    }
}

impl Drop for Aio {
    fn drop(&mut self) {
        self.destroy();
    }
}
