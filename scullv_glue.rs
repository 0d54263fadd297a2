// SPDX-License-Identifier: GPL-2.0

//! Every raw kernel interface scullv uses, behind safe wrappers: the quantum buffers
//! (`__vmalloc`), the misc device registration with scullv's own seekable `file_operations`,
//! the mapping's `vm_operations_struct`, the `/proc/scullvmem` seq_file and a few single calls.
//!
//! The 7.3 `MiscDevice` abstraction has no `llseek` and no per-device data, `Flags` cannot say
//! `__GFP_RETRY_MAYFAIL`, `VmaNew` has no `vm_ops`, and `proc_fs.h` does not reach `bindings`:
//! hence this module. Nothing outside it touches `bindings` or writes `unsafe`.

use crate::{
    scullv_proc,
    storage::{
        IterDest,
        IterSource,
        WritePos, //
    },
    Devices,
    OpenMode,
    ScullvDev, //
};
use core::{
    ffi::c_void,
    ptr::{
        self,
        NonNull, //
    },
};
use kernel::{
    bindings,
    error::to_result,
    ffi::{
        c_char,
        c_int,
        c_long,
        c_uint,
        c_ulong, //
    },
    iov::{
        IovIterDest,
        IovIterSource, //
    },
    mm::virt::{
        VmaNew,
        VmaRef, //
    },
    module::this_module,
    page::PAGE_SIZE,
    prelude::*,
    str::{
        CStrExt,
        CString, //
    },
    types::Opaque,
};

// C functions the `bindings` crate lacks; all are exported to modules. The operations table is
// passed as `c_void`: `seq_operations` reaches structs that are empty without lockdep, which are
// not FFI-safe (`improper_ctypes`).
extern "C" {
    fn __vmalloc_noprof(size: c_ulong, gfp_mask: bindings::gfp_t) -> *mut c_void;
    fn vfree(addr: *const c_void);
    fn proc_create_seq_private(
        name: *const c_char,
        mode: bindings::umode_t,
        parent: *mut c_void,
        ops: *const c_void,
        state_size: c_uint,
        data: *mut c_void,
    ) -> *mut c_void;
    fn proc_remove(entry: *mut c_void);
}

/// `IOCB_APPEND` is `(__force int) RWF_APPEND` (`include/linux/fs.h`), which bindgen drops;
/// `RWF_APPEND` is 0x10 in the UAPI.
const IOCB_APPEND: c_int = 0x10;
/// `MAX_LFS_FILESIZE` on 64-bit.
const MAX_LFS_FILESIZE: i64 = i64::MAX;
/// Quanta are charged to the writer's memory cgroup, fail rather than invoke the OOM killer,
/// and fail quietly.
const QUANTUM_GFP: bindings::gfp_t = bindings::GFP_KERNEL_ACCOUNT
    | (1 << bindings::___GFP_RETRY_MAYFAIL_BIT)
    | bindings::__GFP_NOWARN;

/// Makes a C operations table usable as a `static`.
#[repr(transparent)]
struct AssertSync<T>(T);
// SAFETY: The tables are never written after initialisation; the kernel only reads them.
unsafe impl<T> Sync for AssertSync<T> {}

/// One quantum: a virtually contiguous buffer from vmalloc.
///
/// Its bytes are never referenced from Rust: they are only copied in and out by C functions,
/// like user memory, because a mapping of the device can change them at any time.
///
/// # Invariants
///
/// `ptr` is a vmalloc allocation of `len` bytes, owned by this value.
pub(crate) struct Quantum {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: A `Quantum` owns its buffer; freeing it from any thread is fine.
unsafe impl Send for Quantum {}
// SAFETY: `&self` methods only copy bytes with C functions, which tolerate concurrent access
// the way memory shared with a mapping must.
unsafe impl Sync for Quantum {}

impl Quantum {
    /// Allocates `len` bytes, uninitialised: the caller fills or zeroes every byte before anyone
    /// can read or map them.
    pub(crate) fn new(len: usize) -> Result<Self> {
        // SAFETY: `__vmalloc_noprof` may be called with any size and these flags.
        let ptr = unsafe { __vmalloc_noprof(len as c_ulong, QUANTUM_GFP) };
        // INVARIANT: A non-null result is a vmalloc allocation of `len` bytes.
        Ok(Self {
            ptr: NonNull::new(ptr.cast()).ok_or(ENOMEM)?,
            len,
        })
    }

    /// The buffer's address, for `/proc/scullvmem`.
    pub(crate) fn addr(&self) -> *const c_void {
        self.ptr.as_ptr().cast()
    }

    /// Clamps `[offset, offset + len)` to the buffer and returns its start and length.
    fn span(&self, offset: usize, len: usize) -> (*mut u8, usize) {
        let offset = offset.min(self.len);
        // SAFETY: `offset <= self.len`, so the result is within or one past the allocation.
        let at = unsafe { self.ptr.as_ptr().add(offset) };
        (at, len.min(self.len - offset))
    }

    /// Copies up to `len` bytes from `src` into the buffer at `offset`; returns the count.
    pub(crate) fn copy_from_iter(
        &self,
        offset: usize,
        len: usize,
        src: &mut IovIterSource<'_>,
    ) -> usize {
        let (to, len) = self.span(offset, len);
        // SAFETY: `to` is valid for `len` bytes of writes; `src` is a valid source iterator.
        unsafe { bindings::_copy_from_iter(to.cast(), len, src.as_raw()) }
    }

    /// Copies up to `len` bytes from the buffer at `offset` into `dst`; returns the count.
    pub(crate) fn copy_to_iter(
        &self,
        offset: usize,
        len: usize,
        dst: &mut IovIterDest<'_>,
    ) -> usize {
        let (from, len) = self.span(offset, len);
        // SAFETY: `from` is valid for `len` bytes of reads; `dst` is a valid destination.
        unsafe { bindings::_copy_to_iter(from.cast(), len, dst.as_raw()) }
    }

    /// Copies `data` into the buffer at `offset`; returns the count.
    #[cfg(CONFIG_KUNIT = "y")]
    pub(crate) fn write_slice(&self, offset: usize, data: &[u8]) -> usize {
        let (to, len) = self.span(offset, data.len());
        // SAFETY: `to` is valid for `len` bytes; `data` is a distinct kernel buffer.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), to, len) };
        len
    }

    /// Copies from the buffer at `offset` into `out`; returns the count.
    #[cfg(CONFIG_KUNIT = "y")]
    pub(crate) fn read_slice(&self, offset: usize, out: &mut [u8]) -> usize {
        let (from, len) = self.span(offset, out.len());
        // SAFETY: `from` is valid for `len` bytes; `out` is a distinct kernel buffer.
        unsafe { ptr::copy_nonoverlapping(from, out.as_mut_ptr(), len) };
        len
    }

    /// Zeroes up to `len` bytes at `offset`.
    pub(crate) fn zero(&self, offset: usize, len: usize) {
        let (to, len) = self.span(offset, len);
        // SAFETY: `to` is valid for `len` bytes of writes.
        unsafe { ptr::write_bytes(to, 0, len) };
    }

    /// The page that holds byte `offset`.
    fn page(&self, offset: usize) -> *mut bindings::page {
        let (at, _) = self.span(offset, 0);
        // SAFETY: `at` lies in this vmalloc allocation (offsets come from `Geometry::locate`,
        // which keeps them below the quantum size).
        unsafe { bindings::vmalloc_to_page(at.cast()) }
    }
}

impl Drop for Quantum {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the buffer came from vmalloc and is ours to free.
        unsafe { vfree(self.ptr.as_ptr().cast()) };
    }
}

impl IterSource for IovIterSource<'_> {
    fn len(&self) -> usize {
        IovIterSource::len(self)
    }

    fn copy_to_quantum(&mut self, quantum: &Quantum, offset: usize, len: usize) -> usize {
        quantum.copy_from_iter(offset, len, self)
    }
}

impl IterDest for IovIterDest<'_> {
    fn len(&self) -> usize {
        IovIterDest::len(self)
    }

    fn copy_from_quantum(&mut self, quantum: &Quantum, offset: usize, len: usize) -> usize {
        quantum.copy_to_iter(offset, len, self)
    }

    fn zero(&mut self, len: usize) -> usize {
        // SAFETY: `self` is a valid destination iterator.
        unsafe { bindings::iov_iter_zero(len, self.as_raw()) }
    }
}

/// Whether the caller has `CAP_SYS_ADMIN`.
pub(crate) fn can_admin() -> bool {
    // SAFETY: `capable` may be called from any process context.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as c_int) }
}

/// The RAM present, in bytes.
pub(crate) fn total_ram() -> u64 {
    let mut info = bindings::sysinfo::default();
    // SAFETY: `info` is a valid `struct sysinfo` to fill.
    unsafe { bindings::si_meminfo(&mut info) };
    info.totalram as u64 * u64::from(info.mem_unit)
}

/// A registered misc device with scullv's file operations.
///
/// # Invariants
///
/// `misc` is registered with `misc_register` and names `name`, until dropped.
pub(crate) struct MiscDev {
    misc: Opaque<bindings::miscdevice>,
    name: CString,
}

// SAFETY: The registration may be dropped (deregistered) from any thread.
unsafe impl Send for MiscDev {}
// SAFETY: `MiscDev` offers nothing through `&self`; the misc core synchronises its own use.
unsafe impl Sync for MiscDev {}

impl MiscDev {
    /// Registers `/dev/scullv<index>` with node mode `mode`.
    pub(crate) fn register(index: usize, mode: u16) -> impl PinInit<Self, Error> {
        let name = CString::try_from_fmt(fmt!("scullv{index}"));
        let init = move |slot: *mut Self| {
            let name = name?;
            let misc = bindings::miscdevice {
                minor: bindings::MISC_DYNAMIC_MINOR as c_int,
                name: name.as_char_ptr(),
                fops: &FOPS.0,
                mode,
                ..Default::default()
            };
            // SAFETY: `slot` is valid for writes and pinned; the name's buffer is on the heap and
            // keeps its address when the `CString` moves into the slot.
            unsafe {
                (&raw mut (*slot).name).write(name);
                Opaque::cast_into(&raw const (*slot).misc).write(misc);
            }
            // SAFETY: The miscdevice is initialised and pinned; `Drop` deregisters it before its
            // memory goes away.
            let ret = to_result(unsafe {
                bindings::misc_register(Opaque::cast_into(&raw const (*slot).misc))
            });
            if ret.is_err() {
                // SAFETY: The name was written above and nothing else owns it.
                unsafe { ptr::drop_in_place(&raw mut (*slot).name) };
            }
            // INVARIANT: On success the device is registered with this name.
            ret
        };
        // SAFETY: On success the closure has initialised every field; on failure it has dropped
        // what it initialised.
        unsafe { pin_init::pin_init_from_closure(init) }
    }
}

impl Drop for MiscDev {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the device is registered.
        unsafe { bindings::misc_deregister(self.misc.get()) };
    }
}

/// The device an open file or a mapping refers to.
///
/// # Safety
///
/// `data` must be what `scullv_open` stored in `private_data` (or `scullv_mmap` in
/// `vm_private_data`): a device that lives until the module is removed, which the file's or the
/// mapping's reference to the module prevents.
unsafe fn device<'a>(data: *mut c_void) -> &'a ScullvDev {
    // SAFETY: As the caller promises.
    unsafe { &*data.cast::<ScullvDev>() }
}

/// # Safety
///
/// Called by the VFS through `FOPS` for a scullv device node.
unsafe extern "C" fn scullv_open(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: `misc_open` stored the registered `miscdevice` in `private_data`, and every one
    // using `FOPS` is the `misc` field of a `MiscDev` in a `ScullvDev`.
    let dev = unsafe {
        let misc = (*file).private_data.cast::<bindings::miscdevice>();
        let misc = kernel::container_of!(Opaque::cast_from(misc), MiscDev, misc);
        &*kernel::container_of!(misc, ScullvDev, misc)
    };
    // SAFETY: `file` is valid.
    let flags = unsafe { (*file).f_flags };
    let write = flags & bindings::O_ACCMODE != 0;
    let mode = OpenMode {
        write_only: flags & bindings::O_ACCMODE == bindings::O_WRONLY,
        append: flags & bindings::O_APPEND != 0,
        truncate: write && flags & bindings::O_TRUNC != 0,
    };
    match dev.open(mode) {
        Ok(()) => {
            // SAFETY: The file is ours to set up; `device()` reads this back.
            unsafe { (*file).private_data = ptr::from_ref(dev).cast_mut().cast() };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called by the VFS through `FOPS` with a valid kiocb and iterator of an open scullv file.
unsafe extern "C" fn scullv_read_iter(
    iocb: *mut bindings::kiocb,
    to: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: The kiocb is valid and its file is an open scullv file.
    let (dev, pos) = unsafe { (device((*(*iocb).ki_filp).private_data), (*iocb).ki_pos) };
    // SAFETY: `to` is a valid destination iterator for the duration of this call.
    let dst = unsafe { IovIterDest::from_raw(to) };
    let Ok(pos) = u64::try_from(pos) else {
        return EINVAL.to_errno() as isize;
    };
    match dev.read(pos, dst) {
        Ok(n) => {
            // SAFETY: The kiocb is ours for the call.
            unsafe { (*iocb).ki_pos += n as i64 };
            n as isize
        }
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by the VFS through `FOPS` with a valid kiocb and iterator of an open scullv file.
unsafe extern "C" fn scullv_write_iter(
    iocb: *mut bindings::kiocb,
    from: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: The kiocb is valid and its file is an open scullv file.
    let (dev, pos, flags) = unsafe {
        (
            device((*(*iocb).ki_filp).private_data),
            (*iocb).ki_pos,
            (*iocb).ki_flags,
        )
    };
    // SAFETY: `from` is a valid source iterator for the duration of this call.
    let src = unsafe { IovIterSource::from_raw(from) };
    let pos = if flags & IOCB_APPEND != 0 {
        WritePos::Append
    } else {
        match u64::try_from(pos) {
            Ok(pos) => WritePos::At(pos),
            Err(_) => return EINVAL.to_errno() as isize,
        }
    };
    match dev.write(pos, src) {
        Ok((start, n)) => {
            // SAFETY: The kiocb is ours for the call.
            unsafe { (*iocb).ki_pos = (start + n as u64) as i64 };
            n as isize
        }
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by the VFS through `FOPS` for an open scullv file.
unsafe extern "C" fn scullv_llseek(file: *mut bindings::file, offset: i64, whence: c_int) -> i64 {
    // SAFETY: The file is an open scullv file.
    let size = unsafe { device((*file).private_data) }.size();
    // SAFETY: `file` is valid; the helper applies SEEK_SET/CUR/END (END and DATA/HOLE against
    // the device's size) and refuses a negative result with EINVAL.
    unsafe {
        bindings::generic_file_llseek_size(file, offset, whence, MAX_LFS_FILESIZE, size as i64)
    }
}

/// # Safety
///
/// Called by the VFS through `FOPS` for an open scullv file.
unsafe extern "C" fn scullv_ioctl(_file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
    match crate::ioctl(cmd, arg) {
        Ok(v) => v as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}

/// # Safety
///
/// Called by the mm core through `FOPS` with the new mapping of an open scullv file.
unsafe extern "C" fn scullv_mmap(
    file: *mut bindings::file,
    vma: *mut bindings::vm_area_struct,
) -> c_int {
    // SAFETY: The file is an open scullv file.
    let dev = unsafe { device((*file).private_data) };
    // SAFETY: `vma` is a mapping being set up, as `VmaNew` requires.
    let new = unsafe { VmaNew::from_raw(vma) };
    if let Err(e) = dev.map(new.flags() & bindings::VM_MAYSHARE != 0) {
        return e.to_errno();
    }
    // Pages are inserted with `vm_insert_page` from the fault handler, which needs a mixed map
    // set up here, with the mmap lock held for writing.
    new.set_mixedmap();
    new.set_dontexpand();
    new.set_dontdump();
    // SAFETY: The mapping is ours to set up; the device outlives it (the mapping holds the file,
    // which holds the module).
    unsafe {
        (*vma).vm_ops = &VM_OPS.0;
        (*vma).vm_private_data = ptr::from_ref(dev).cast_mut().cast();
    }
    0
}

/// # Safety
///
/// Called by the mm core for a scullv mapping that is being copied or split.
unsafe extern "C" fn scullv_vm_open(vma: *mut bindings::vm_area_struct) {
    // SAFETY: `scullv_mmap` set `vm_private_data`.
    unsafe { device((*vma).vm_private_data) }.map_opened();
}

/// # Safety
///
/// Called by the mm core for a scullv mapping that goes away.
unsafe extern "C" fn scullv_vm_close(vma: *mut bindings::vm_area_struct) {
    // SAFETY: `scullv_mmap` set `vm_private_data`.
    unsafe { device((*vma).vm_private_data) }.map_closed();
}

/// # Safety
///
/// Called by the mm core, with the mmap lock or the VMA lock held, for a fault in a scullv
/// mapping.
unsafe extern "C" fn scullv_vm_fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
    // SAFETY: `vmf` is valid; `scullv_mmap` set the mapping's `vm_private_data`.
    let (vma, pgoff, address, dev) = unsafe {
        let f = &(*vmf).__bindgen_anon_1;
        (f.vma, f.pgoff, f.address, device((*f.vma).vm_private_data))
    };
    let sigbus = bindings::vm_fault_reason_VM_FAULT_SIGBUS;
    let Some(pos) = (pgoff as u64).checked_mul(PAGE_SIZE as u64) else {
        return sigbus;
    };
    // The inner lock only: the I/O lock may be held by a task copying from this very mapping.
    let storage = dev.storage().lock();
    let Some(window) = storage.fault_window(pos) else {
        return sigbus;
    };
    // SAFETY: `address` is the faulting page, which maps the file offset `pos`.
    match unsafe { insert_page(vma, address, window.quantum, window.offset) } {
        // EBUSY: another thread mapped the page first.
        0 => {}
        e if e == EBUSY.to_errno() => {}
        e if e == ENOMEM.to_errno() => return bindings::vm_fault_reason_VM_FAULT_OOM,
        _ => return sigbus,
    }
    // Fault-around: the pages near it in the quantum, below size, inside the mapping. A page
    // already mapped gives EBUSY; an error here only means later faults do the work.
    // SAFETY: `vma` is valid, and locked for reading, while the fault runs.
    let (start, end) = unsafe {
        let vma = VmaRef::from_raw(vma);
        (vma.start() as c_ulong, vma.end() as c_ulong)
    };
    for offset in window
        .pages
        .step_by(PAGE_SIZE)
        .filter(|&o| o != window.offset)
    {
        let Some(at) = (address + offset as c_ulong).checked_sub(window.offset as c_ulong) else {
            continue;
        };
        if (start..end).contains(&at) {
            // SAFETY: `at` lies inside the mapping, at the page whose file offset the page at
            // `offset` of this quantum holds.
            let _ = unsafe { insert_page(vma, at, window.quantum, offset) };
        }
    }
    bindings::vm_fault_reason_VM_FAULT_NOPAGE
}

/// Maps the page at `offset` of `quantum` at `address` of `vma`; returns 0 or a negative errno.
///
/// # Safety
///
/// `vma` is a scullv mapping of the device `quantum` belongs to, with its lock held for a fault,
/// and `address` is the page of `vma` that maps the file offset of that page.
unsafe fn insert_page(
    vma: *mut bindings::vm_area_struct,
    address: c_ulong,
    quantum: &Quantum,
    offset: usize,
) -> c_int {
    // SAFETY: The page belongs to a quantum that stays allocated while mapped (a mapped device
    // cannot be trimmed); `vm_insert_page` takes its own reference, and the mapping is a mixed
    // map (set in `scullv_mmap`).
    unsafe { bindings::vm_insert_page(vma, address, quantum.page(offset)) }
}

static FOPS: AssertSync<bindings::file_operations> = AssertSync(bindings::file_operations {
    owner: this_module::<crate::LocalModule>().as_ptr(),
    open: Some(scullv_open),
    read_iter: Some(scullv_read_iter),
    write_iter: Some(scullv_write_iter),
    llseek: Some(scullv_llseek),
    unlocked_ioctl: Some(scullv_ioctl),
    // The commands' arguments are ints or pointers to ints: the same for 32-bit callers.
    compat_ioctl: bindings::compat_ptr_ioctl,
    mmap: Some(scullv_mmap),
    fsync: Some(bindings::noop_fsync),
    splice_read: Some(bindings::copy_splice_read),
    splice_write: Some(bindings::iter_file_splice_write),
    ..pin_init::zeroed()
});

static VM_OPS: AssertSync<bindings::vm_operations_struct> =
    AssertSync(bindings::vm_operations_struct {
        open: Some(scullv_vm_open),
        close: Some(scullv_vm_close),
        fault: Some(scullv_vm_fault),
        ..pin_init::zeroed()
    });

/// A seq_file being shown, with the book's `/proc/scullvmem` line formats. The pointers are
/// printed by the C `%p`, hashed, as the book prints them.
pub(crate) struct SeqOut(*mut bindings::seq_file);

impl SeqOut {
    /// `"\nDevice %i: qset %i, order %i, sz %li\n"`.
    pub(crate) fn device(&self, index: c_int, qset: c_int, order: c_int, size: c_long) {
        // SAFETY: `self.0` is the seq_file of the show call; the arguments match the format.
        unsafe {
            bindings::seq_printf(
                self.0,
                c"\nDevice %i: qset %i, order %i, sz %li\n".as_char_ptr(),
                index,
                qset,
                order,
                size,
            )
        };
    }

    /// `"  item at %p, qset at %p\n"`.
    pub(crate) fn item(&self, item: *const c_void, qset: *const c_void) {
        // SAFETY: As above; `%p` only hashes the pointers, never dereferences them.
        unsafe {
            bindings::seq_printf(
                self.0,
                c"  item at %p, qset at %p\n".as_char_ptr(),
                item,
                qset,
            )
        };
    }

    /// `"    % 4i:%8p\n"`.
    pub(crate) fn quantum(&self, index: c_int, addr: *const c_void) {
        // SAFETY: As above.
        unsafe { bindings::seq_printf(self.0, c"    % 4i:%8p\n".as_char_ptr(), index, addr) };
    }
}

/// The devices of the `/proc/scullvmem` being read.
///
/// # Safety
///
/// `m` is a seq_file of the entry `ProcEntry::new` made, whose data is a live `Devices`.
unsafe fn proc_devices<'a>(m: *mut bindings::seq_file) -> &'a Devices {
    // SAFETY: As the caller promises; `pde_data()` is the inode's `i_private`, and the entry is
    // removed before the devices are freed.
    unsafe { &*(*(*(*m).file).f_inode).i_private.cast::<Devices>() }
}

/// # Safety
///
/// Called by seq_file for `/proc/scullvmem`.
unsafe extern "C" fn scullv_seq_start(m: *mut bindings::seq_file, pos: *mut i64) -> *mut c_void {
    // SAFETY: As the seq_file core promises.
    let (devices, pos) = unsafe { (proc_devices(m), *pos) };
    usize::try_from(pos)
        .ok()
        .and_then(|i| devices.get(i))
        .map_or(ptr::null_mut(), |dev| ptr::from_ref(dev).cast_mut().cast())
}

/// # Safety
///
/// Called by seq_file for `/proc/scullvmem`.
unsafe extern "C" fn scullv_seq_next(
    m: *mut bindings::seq_file,
    _v: *mut c_void,
    pos: *mut i64,
) -> *mut c_void {
    // SAFETY: `pos` is valid.
    unsafe { *pos += 1 };
    // SAFETY: As the seq_file core promises.
    unsafe { scullv_seq_start(m, pos) }
}

/// # Safety
///
/// Called by seq_file for `/proc/scullvmem`.
unsafe extern "C" fn scullv_seq_stop(_m: *mut bindings::seq_file, _v: *mut c_void) {}

/// # Safety
///
/// Called by seq_file for `/proc/scullvmem` with an element `scullv_seq_start` returned.
unsafe extern "C" fn scullv_seq_show(m: *mut bindings::seq_file, v: *mut c_void) -> c_int {
    // SAFETY: `v` came from `scullv_seq_start`, and the device outlives the proc entry.
    let dev = unsafe { device(v) };
    scullv_proc::show(&SeqOut(m), dev);
    0
}

static SEQ_OPS: AssertSync<bindings::seq_operations> = AssertSync(bindings::seq_operations {
    start: Some(scullv_seq_start),
    next: Some(scullv_seq_next),
    stop: Some(scullv_seq_stop),
    show: Some(scullv_seq_show),
});

/// The `/proc/scullvmem` entry, which owns the devices it lists so that they outlive it.
///
/// # Invariants
///
/// `entry` is a proc entry made by `proc_create_seq_private` whose data is `devices`; it is
/// removed on drop, before `devices` is freed.
pub(crate) struct ProcEntry {
    entry: ProcHandle,
    _devices: KBox<Devices>,
}

/// The pointer to a proc entry.
struct ProcHandle(NonNull<c_void>);

// SAFETY: A proc entry may be removed from any thread.
unsafe impl Send for ProcHandle {}
// SAFETY: `ProcHandle` offers nothing through `&self`.
unsafe impl Sync for ProcHandle {}

impl ProcEntry {
    /// Creates `/proc/<name>` listing `devices`.
    pub(crate) fn new(name: &'static CStr, devices: KBox<Devices>) -> Result<Self> {
        // SAFETY: The name and the operations are static; the devices stay at their heap address
        // until `Drop` has removed the entry, and `proc_remove` waits for readers to finish.
        let entry = unsafe {
            proc_create_seq_private(
                name.as_char_ptr(),
                0o444,
                ptr::null_mut(),
                ptr::from_ref(&SEQ_OPS.0).cast(),
                0,
                ptr::from_ref(&*devices).cast_mut().cast(),
            )
        };
        // INVARIANT: A non-null result is the new entry, listing `devices`.
        Ok(Self {
            entry: ProcHandle(NonNull::new(entry).ok_or(ENOMEM)?),
            _devices: devices,
        })
    }
}

impl Drop for ProcEntry {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the entry exists; the devices are freed after this.
        unsafe { proc_remove(self.entry.0.as_ptr()) };
    }
}
