// SPDX-License-Identifier: GPL-2.0

//! The only module with `unsafe` code: raw ioctl calls, memory mappings, fork, Linux AIO and
//! io_uring.
//!
//! Each item gives a safe interface whose arguments cannot make the kernel write into memory
//! that Rust code owns, other than the buffers handed to it for that call.
//!
//! System calls go through rustix; libc only for what rustix has no wrapper for: `fork` (rustix
//! has only `runtime::kernel_fork`, a raw clone that skips the C library's own fork work, such as
//! resetting the thread id musl caches, which Rust's std in the child relies on), the Linux AIO
//! calls (`io_setup`, `io_submit`, `io_getevents`, `io_destroy`, through `syscall`), and
//! `struct iovec`, the type the io-uring crate's `register_buffers` takes.

use std::cell::Cell;
use std::ffi::{c_long, c_uint, c_ulong, c_void};
use std::io::Write;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::ptr;

use rustix::io::{Errno, Result};
use rustix::ioctl::{Ioctl, IoctlOutput, Opcode};
use rustix::mm::{MapFlags, ProtFlags};
use rustix::process::Pid;

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
    /// Whether the pages were mapped with `PROT_WRITE`.
    writable: bool,
}

impl Mapping {
    /// Maps `len` bytes of `fd` from `offset` for reading and writing, with `flags` (for example
    /// `MapFlags::SHARED`).
    pub fn new(fd: BorrowedFd<'_>, offset: u64, len: usize, flags: MapFlags) -> Result<Self> {
        Self::with_prot(fd, offset, len, ProtFlags::READ | ProtFlags::WRITE, flags)
    }

    /// Maps `len` bytes of `fd` from `offset` for reading only, with `flags`.
    pub fn read_only(fd: BorrowedFd<'_>, offset: u64, len: usize, flags: MapFlags) -> Result<Self> {
        Self::with_prot(fd, offset, len, ProtFlags::READ, flags)
    }

    /// Maps `len` bytes of `fd` from `offset` with `prot` and `flags`.
    fn with_prot(
        fd: BorrowedFd<'_>,
        offset: u64,
        len: usize,
        prot: ProtFlags,
        flags: MapFlags,
    ) -> Result<Self> {
        // SAFETY: A new mapping at an address the kernel chooses aliases no memory.
        let ptr = unsafe { rustix::mm::mmap(ptr::null_mut(), len, prot, flags, fd, offset) }?;
        let pages = len.div_ceil(rustix::param::page_size());
        Ok(Self {
            ptr: ptr.cast(),
            len,
            mapped: vec![true; pages],
            writable: prot.contains(ProtFlags::WRITE),
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
        assert!(self.writable, "write to a mapping without PROT_WRITE");
        self.check(&(offset..offset + data.len()));
        // SAFETY: `check` proved the target lies in mapped pages, mapped writable (asserted
        // above), and `data` is not in them: no slice of the mapping is ever handed out.
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
        assert!(self.writable, "pread into a mapping without PROT_WRITE");
        self.check(&range);
        // SAFETY: The range is mapped, writable (asserted above), and the slice lives only for
        // this call, during which no other reference to the mapping exists.
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
    // held by a thread that the child lacks. The C library's fork, not a raw one, so that the
    // child's libc state (its thread id, its locks) is its own.
    match unsafe { libc::fork() } {
        -1 => Err(last_errno()),
        0 => {
            let code = child();
            let _ = std::io::stdout().flush();
            std::process::exit(code.into())
        }
        pid => Pid::from_raw(pid).ok_or(Errno::IO),
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

#[cfg(any(target_pointer_width = "64", io_uring_skip_arch_check))]
pub use self::ring::{Uring, UringOp};

/// io_uring through the `io-uring` crate, whose submissions name buffers by raw pointer.
#[cfg(any(target_pointer_width = "64", io_uring_skip_arch_check))]
mod ring {
    use std::ops::Range;
    use std::os::fd::{AsRawFd, BorrowedFd};

    use io_uring::{opcode, squeue, types, IoUring};
    use rustix::io::{Errno, Result};

    /// What one io_uring request does at its file offset.
    pub enum UringOp<'a> {
        /// `IORING_OP_READ` into the buffer.
        Read(&'a mut [u8]),
        /// `IORING_OP_WRITE` from the buffer.
        Write(&'a [u8]),
        /// `IORING_OP_READV` into the buffers, in order.
        Readv(Vec<&'a mut [u8]>),
        /// `IORING_OP_WRITEV` from the buffers, in order.
        Writev(Vec<&'a [u8]>),
        /// `IORING_OP_READ_FIXED` into a range of the registered buffer of that index.
        ReadFixed(usize, Range<usize>),
        /// `IORING_OP_WRITE_FIXED` from a range of the registered buffer of that index.
        WriteFixed(usize, Range<usize>),
    }

    /// What a batch of requests came to.
    pub struct Batch {
        /// Each request's result (its CQE's `res`), in the order the requests were given.
        pub results: Vec<Result<usize>>,
        /// How many requests the first `io_uring_enter` submitted.
        pub submitted_at_once: usize,
    }

    /// An io_uring instance (`io_uring_setup`) and the buffers registered with it.
    ///
    /// # Invariants
    ///
    /// No request is in flight outside a call of [`Uring::run`]. `fixed` is never resized, so
    /// the memory registered with the ring stays allocated, at the same addresses, as long as
    /// the ring. Once `usable` is false, `io_uring_enter` is never called again.
    pub struct Uring {
        ring: IoUring,
        /// The buffers registered with the ring (`IORING_REGISTER_BUFFERS`); dropped after it.
        fixed: Vec<Vec<u8>>,
        /// False once a submission failed and left requests in the submission queue: they name
        /// buffers that may be gone, so they must never be submitted.
        usable: bool,
    }

    /// A CQE's `res` as a result.
    fn result_of(res: i32) -> Result<usize> {
        if res < 0 {
            Err(Errno::from_raw_os_error(-res))
        } else {
            Ok(res as usize)
        }
    }

    /// A length as the `u32` an SQE carries.
    fn len32(len: usize) -> Result<u32> {
        u32::try_from(len).map_err(|_| Errno::INVAL)
    }

    /// The `iovec`s of `bufs`, for the kernel to read from and, if `bufs` are writable, to write
    /// into.
    fn iovecs(bufs: impl Iterator<Item = (*mut u8, usize)>) -> Vec<libc::iovec> {
        bufs.map(|(base, len)| libc::iovec {
            iov_base: base.cast(),
            iov_len: len,
        })
        .collect()
    }

    impl Uring {
        /// Sets up a ring of `entries` submission queue entries.
        pub fn new(entries: u32) -> Result<Self> {
            let ring =
                IoUring::new(entries).map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
            // INVARIANT: Nothing was submitted yet and nothing is registered.
            Ok(Self {
                ring,
                fixed: Vec::new(),
                usable: true,
            })
        }

        /// How many requests one batch may hold.
        pub fn capacity(&self) -> usize {
            self.ring.params().sq_entries() as usize
        }

        /// Registers zeroed buffers of the given sizes (`IORING_REGISTER_BUFFERS`), each named
        /// by its index in `sizes`. Fails with EBUSY if buffers are already registered, and with
        /// EINVAL for a size of 0.
        pub fn register_buffers(&mut self, sizes: &[usize]) -> Result<()> {
            if !self.fixed.is_empty() {
                return Err(Errno::BUSY);
            }
            if sizes.contains(&0) {
                return Err(Errno::INVAL);
            }
            let mut fixed: Vec<Vec<u8>> = sizes.iter().map(|&size| vec![0; size]).collect();
            let iov = iovecs(fixed.iter_mut().map(|buf| (buf.as_mut_ptr(), buf.len())));
            // SAFETY: Each iovec describes the whole of one of the buffers, which move into
            // `self.fixed` below. By the type invariant that vector is never resized and it is
            // dropped only after the ring, so the memory stays valid, at the same address, until
            // the ring is destroyed. The kernel writes into it only for a READ_FIXED request,
            // and requests are in flight only during `run`, which holds `&mut self`: no Rust
            // reference to the buffers exists then.
            unsafe { self.ring.submitter().register_buffers(&iov) }
                .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
            // INVARIANT: `fixed` is set once, here, and never resized.
            self.fixed = fixed;
            Ok(())
        }

        /// The registered buffer `index`.
        pub fn fixed(&self, index: usize) -> &[u8] {
            &self.fixed[index]
        }

        /// The registered buffer `index`, to fill before a WRITE_FIXED request.
        pub fn fixed_mut(&mut self, index: usize) -> &mut [u8] {
            &mut self.fixed[index]
        }

        /// Checks that a range of a registered buffer exists, and that no READ_FIXED range
        /// overlaps another request's range of the same buffer.
        fn check_fixed(&self, reqs: &[(UringOp<'_>, u64)]) -> Result<()> {
            let fixed = |op: &UringOp<'_>| match op {
                UringOp::ReadFixed(index, range) => Some((*index, range.clone(), true)),
                UringOp::WriteFixed(index, range) => Some((*index, range.clone(), false)),
                _ => None,
            };
            let ranges: Vec<_> = reqs.iter().filter_map(|(op, _)| fixed(op)).collect();
            for (i, (index, range, reads)) in ranges.iter().enumerate() {
                match self.fixed.get(*index) {
                    Some(buf) if range.start <= range.end && range.end <= buf.len() => {}
                    _ => return Err(Errno::INVAL),
                }
                for (other, other_range, other_reads) in &ranges[i + 1..] {
                    let overlap = range.start < other_range.end && other_range.start < range.end;
                    if other == index && overlap && (*reads || *other_reads) {
                        return Err(Errno::INVAL);
                    }
                }
            }
            Ok(())
        }

        /// The address, length and index an SQE gives for `range` of registered buffer `index`,
        /// which `check_fixed` checked.
        fn fixed_args(
            &mut self,
            index: usize,
            range: &Range<usize>,
        ) -> Result<(*mut u8, u32, u16)> {
            let len = len32(range.len())?;
            let buf_index = u16::try_from(index).map_err(|_| Errno::INVAL)?;
            let buf = self.fixed[index][range.clone()].as_mut_ptr();
            Ok((buf, len, buf_index))
        }

        /// Submits `reqs`, each a request on `fd` at its file offset (`u64::MAX`: at the file
        /// position, as read() and write() do), all at once, and waits until every one has
        /// completed.
        ///
        /// Fails with EINVAL, submitting nothing, for more requests than [`Uring::capacity`], a
        /// length beyond 4 GiB, a range outside a registered buffer or a READ_FIXED range that
        /// overlaps another of the batch; with the error of `io_uring_enter` if it fails before
        /// any request is in flight (the ring is unusable after that: EBADFD); with EIO after
        /// all completed if the kernel sent a completion for no request of the batch.
        pub fn run(
            &mut self,
            fd: BorrowedFd<'_>,
            mut reqs: Vec<(UringOp<'_>, u64)>,
        ) -> Result<Batch> {
            let n = reqs.len();
            if !self.usable {
                return Err(Errno::BADFD);
            }
            if n > self.capacity() {
                return Err(Errno::INVAL);
            }
            self.check_fixed(&reqs)?;
            let raw = types::Fd(fd.as_raw_fd());
            // The iovec arrays of READV and WRITEV requests, in place until they complete (moving
            // a vector does not move its elements).
            let mut vectors: Vec<Vec<libc::iovec>> = Vec::with_capacity(n);
            let mut entries: Vec<squeue::Entry> = Vec::with_capacity(n);
            for (i, (op, offset)) in reqs.iter_mut().enumerate() {
                let offset = *offset;
                let entry = match op {
                    UringOp::Read(buf) => {
                        opcode::Read::new(raw, buf.as_mut_ptr(), len32(buf.len())?)
                            .offset(offset)
                            .build()
                    }
                    UringOp::Write(buf) => opcode::Write::new(raw, buf.as_ptr(), len32(buf.len())?)
                        .offset(offset)
                        .build(),
                    UringOp::Readv(bufs) => {
                        let iov = iovecs(bufs.iter_mut().map(|b| (b.as_mut_ptr(), b.len())));
                        let entry = opcode::Readv::new(raw, iov.as_ptr(), len32(iov.len())?);
                        vectors.push(iov);
                        entry.offset(offset).build()
                    }
                    UringOp::Writev(bufs) => {
                        let iov = iovecs(bufs.iter().map(|b| (b.as_ptr().cast_mut(), b.len())));
                        let entry = opcode::Writev::new(raw, iov.as_ptr(), len32(iov.len())?);
                        vectors.push(iov);
                        entry.offset(offset).build()
                    }
                    UringOp::ReadFixed(index, range) => {
                        let (buf, len, buf_index) = self.fixed_args(*index, range)?;
                        opcode::ReadFixed::new(raw, buf, len, buf_index)
                            .offset(offset)
                            .build()
                    }
                    UringOp::WriteFixed(index, range) => {
                        let (buf, len, buf_index) = self.fixed_args(*index, range)?;
                        opcode::WriteFixed::new(raw, buf, len, buf_index)
                            .offset(offset)
                            .build()
                    }
                };
                entries.push(entry.user_data(i as u64));
            }

            let mut sq = self.ring.submission();
            for entry in &entries {
                // SAFETY: The buffers an entry names stay valid until the request completes,
                // which happens before this function returns (below; if it cannot be waited
                // for, the process aborts): `reqs` borrows them for the call, mutably for the
                // requests that write into them; the iovec arrays live in `vectors` until the
                // end of the call; a registered buffer lives as long as the ring, and no Rust
                // reference to it exists during the call (`&mut self`), where `check_fixed`
                // made sure no two requests of the batch write to, or write to and read from,
                // the same bytes. `fd` is open for the call.
                if unsafe { sq.push(entry) }.is_err() {
                    // Entries pushed so far are never submitted: the ring is retired.
                    self.usable = false;
                    return Err(Errno::BADFD);
                }
            }
            drop(sq);

            let mut results: Vec<Option<Result<usize>>> = (0..n).map(|_| None).collect();
            let mut done = 0;
            let mut submitted_at_once = None;
            let mut stray = false;
            while done < n {
                let entered = self.ring.submit_and_wait(1);
                let queued = self.ring.submission().len();
                match entered {
                    Ok(count) => {
                        submitted_at_once.get_or_insert(count);
                    }
                    Err(e) => {
                        let errno = Errno::from_io_error(&e).unwrap_or(Errno::IO);
                        if done + queued >= n {
                            // Nothing is in flight, and what is queued is never submitted.
                            self.usable = false;
                            return Err(errno);
                        }
                        if errno != Errno::INTR {
                            // Requests in flight may still write into the buffers, and there
                            // is no other way to wait for them: returning would be unsound.
                            eprintln!("io_uring_enter failed with requests in flight: {e}");
                            std::process::abort();
                        }
                    }
                }
                for cqe in self.ring.completion() {
                    match results.get_mut(cqe.user_data() as usize) {
                        Some(slot) if slot.is_none() => {
                            *slot = Some(result_of(cqe.result()));
                            done += 1;
                        }
                        _ => stray = true,
                    }
                }
            }
            if stray {
                return Err(Errno::IO);
            }
            Ok(Batch {
                results: results.into_iter().flatten().collect(),
                submitted_at_once: submitted_at_once.unwrap_or(0),
            })
        }
    }
}
