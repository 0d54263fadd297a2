// SPDX-License-Identifier: GPL-2.0

//! Vmalloc buffers that user space may map.
//!
//! C header: [`include/linux/vmalloc.h`](srctree/include/linux/vmalloc.h)
//!
//! A [`VmallocBuf`] owns a virtually contiguous allocation from `__vmalloc`, made with the flags
//! the caller chooses ([`Gfp`]; `kernel::alloc::Flags` cannot say `__GFP_RETRY_MAYFAIL`). Its
//! pages can be mapped into user space ([`VmallocBuf::page`]), where they may change at any time,
//! so Rust never forms a reference to its bytes: they are copied in and out by the C routines,
//! as user memory is.
//!
//! Writers in the kernel are serialised by a [`WriterKey`]: a buffer is tied to one key when it
//! is made, and every write takes `&mut` to that key. A key usually lives inside the lock that
//! the writers hold, so that the guard is the proof.

use core::{
    ffi::c_void,
    ops::BitOr,
    ptr::{
        self,
        NonNull, //
    },
};
use kernel::{
    alloc::allocator::Vmalloc,
    bindings,
    ffi::c_ulong,
    iov::{
        IovIterDest,
        IovIterSource, //
    },
    page::BorrowedPage,
    prelude::*,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
};

// Exported by `mm/vmalloc.c` but not in the `bindings` crate.
extern "C" {
    fn __vmalloc_noprof(size: c_ulong, gfp_mask: bindings::gfp_t) -> *mut c_void;
    fn vfree(addr: *const c_void);
}

/// Allocation flags for [`VmallocBuf`]: a combination of the constants below.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gfp(bindings::gfp_t);

impl BitOr for Gfp {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// May sleep, reclaim and do I/O: the usual flags for process context.
pub(crate) const GFP_KERNEL: Gfp = Gfp(bindings::GFP_KERNEL);
/// Charge the allocation to the current task's memory cgroup.
pub(crate) const __GFP_ACCOUNT: Gfp = Gfp(1 << bindings::___GFP_ACCOUNT_BIT);
/// Try hard, but fail rather than invoke the OOM killer (also the memory cgroup's).
pub(crate) const __GFP_RETRY_MAYFAIL: Gfp = Gfp(1 << bindings::___GFP_RETRY_MAYFAIL_BIT);
/// Fail without a warning in the kernel log.
pub(crate) const __GFP_NOWARN: Gfp = Gfp(1 << bindings::___GFP_NOWARN_BIT);

/// The right to write the bytes of the buffers made with it.
///
/// # Invariants
///
/// No two keys have the same `id`: ids come from a 64-bit counter that never wraps in practice
/// (2^64 keys), and a key can be neither copied nor cloned.
pub(crate) struct WriterKey {
    id: u64,
}

impl Default for WriterKey {
    fn default() -> Self {
        Self::new()
    }
}

/// The id of the next key.
static NEXT_KEY: Atomic<u64> = Atomic::new(0);

impl WriterKey {
    /// Makes a key that no buffer is tied to yet.
    pub(crate) fn new() -> Self {
        // INVARIANT: Each call takes a different value of the counter.
        Self {
            id: NEXT_KEY.fetch_add(1, Relaxed),
        }
    }
}

/// A buffer from `__vmalloc`, whose pages user space may map.
///
/// # Invariants
///
/// - `ptr` is the start of a `__vmalloc` allocation of `len > 0` bytes, owned by this value.
/// - Every byte of it was written (with data or zero) before the value was made.
/// - The kernel writes its bytes only through methods that take `&mut` to the [`WriterKey`]
///   whose id is `key`.
pub(crate) struct VmallocBuf {
    ptr: NonNull<u8>,
    len: usize,
    key: u64,
}

// SAFETY: The buffer is owned memory with no tie to a thread; `vfree` may run on any thread.
unsafe impl Send for VmallocBuf {}

// SAFETY: The `&self` methods that copy bytes out read them with the C copy routines, which, as
// with user memory, tolerate bytes that change under them (by user space through a mapping, or
// by the one kernel writer the key admits). Those that write need `&mut` to the buffer's key, so
// that two threads never write its bytes at the same time from the kernel. The other methods
// look only at the address and the page tables.
unsafe impl Sync for VmallocBuf {}

/// Where bytes copied in come from (private: each impl says how it copies).
trait Source {
    /// Copies up to `len` bytes to `to`; returns how many it copied.
    ///
    /// # Safety
    ///
    /// `to` is valid for writes of `len` bytes.
    unsafe fn copy_out(&mut self, to: *mut u8, len: usize) -> usize;
}

impl Source for IovIterSource<'_> {
    unsafe fn copy_out(&mut self, to: *mut u8, len: usize) -> usize {
        // SAFETY: `to` is valid for `len` bytes, as the caller promises; `self` is a valid source
        // vector by its type invariants.
        unsafe { bindings::_copy_from_iter(to.cast(), len, self.as_raw()) }
    }
}

#[cfg(CONFIG_KUNIT = "y")]
impl Source for &[u8] {
    unsafe fn copy_out(&mut self, to: *mut u8, len: usize) -> usize {
        let len = len.min(self.len());
        // SAFETY: `to` is valid for `len` bytes, as the caller promises; the slice is kernel
        // memory that a buffer's bytes cannot overlap, as they are never a Rust reference.
        unsafe { ptr::copy_nonoverlapping(self.as_ptr(), to, len) };
        *self = &self[len..];
        len
    }
}

impl VmallocBuf {
    /// Allocates `len` bytes with `gfp`, copies up to `count` bytes from `src` to `offset` and
    /// zeroes every other byte; the buffer is tied to `key`. Returns the buffer and how many bytes
    /// it copied, fewer than `count` if `src` ended or faulted.
    ///
    /// `EINVAL` for `len` 0, `ENOMEM` if the allocation fails.
    pub(crate) fn new_from_iter(
        len: usize,
        gfp: Gfp,
        key: &WriterKey,
        offset: usize,
        count: usize,
        src: &mut IovIterSource<'_>,
    ) -> Result<(Self, usize)> {
        Self::new_from(len, gfp, key, offset, count, src)
    }

    /// Like [`VmallocBuf::new_from_iter`], from a kernel buffer.
    #[cfg(CONFIG_KUNIT = "y")]
    pub(crate) fn new_from_slice(
        len: usize,
        gfp: Gfp,
        key: &WriterKey,
        offset: usize,
        mut data: &[u8],
    ) -> Result<(Self, usize)> {
        Self::new_from(len, gfp, key, offset, data.len(), &mut data)
    }

    fn new_from(
        len: usize,
        gfp: Gfp,
        key: &WriterKey,
        offset: usize,
        count: usize,
        src: &mut impl Source,
    ) -> Result<(Self, usize)> {
        if len == 0 {
            return Err(EINVAL);
        }
        // SAFETY: `__vmalloc_noprof` may be called with any size and flags in process context.
        let ptr = unsafe { __vmalloc_noprof(len as c_ulong, gfp.0) };
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(ENOMEM)?;
        let at = offset.min(len);
        let count = count.min(len - at);
        // SAFETY: `ptr` is a new allocation of `len` bytes, which nothing else can reach yet, and
        // `at + count <= len`; so are the zeroed ranges before `at` and after what was copied.
        let copied = unsafe {
            let start = ptr.as_ptr();
            let copied = src.copy_out(start.add(at), count);
            ptr::write_bytes(start, 0, at);
            ptr::write_bytes(start.add(at + copied), 0, len - at - copied);
            copied
        };
        // INVARIANT: The allocation is ours and every byte was written; it is tied to `key`.
        Ok((
            Self {
                ptr,
                len,
                key: key.id,
            },
            copied,
        ))
    }

    /// The buffer's address, to print (hashed) with `%p`; never dereference it.
    pub(crate) fn as_ptr(&self) -> *const c_void {
        self.ptr.as_ptr().cast()
    }

    /// Clamps `[offset, offset + len)` to the buffer; returns its start and length.
    fn span(&self, offset: usize, len: usize) -> (*mut u8, usize) {
        let offset = offset.min(self.len);
        // SAFETY: `offset <= self.len`, so the result is within, or one past, the allocation.
        let at = unsafe { self.ptr.as_ptr().add(offset) };
        (at, len.min(self.len - offset))
    }

    /// Whether `key` is the one this buffer was made with; warns if not, as that is a bug of the
    /// caller.
    fn is_writer(&self, key: &WriterKey) -> bool {
        if key.id == self.key {
            return true;
        }
        pr_warn!("VmallocBuf written with the wrong WriterKey; nothing written\n");
        false
    }

    /// Copies up to `len` bytes from `src` to `offset`; returns how many it copied, fewer if `src`
    /// ended or faulted or the buffer did, and none if `key` is not the buffer's.
    pub(crate) fn copy_from_iter(
        &self,
        key: &mut WriterKey,
        offset: usize,
        len: usize,
        src: &mut IovIterSource<'_>,
    ) -> usize {
        self.copy_in(key, offset, len, src)
    }

    /// Like [`VmallocBuf::copy_from_iter`], from a kernel buffer.
    #[cfg(CONFIG_KUNIT = "y")]
    pub(crate) fn write_slice(&self, key: &mut WriterKey, offset: usize, mut data: &[u8]) -> usize {
        self.copy_in(key, offset, data.len(), &mut data)
    }

    fn copy_in(
        &self,
        key: &mut WriterKey,
        offset: usize,
        len: usize,
        src: &mut impl Source,
    ) -> usize {
        if !self.is_writer(key) {
            return 0;
        }
        let (to, len) = self.span(offset, len);
        // SAFETY: `to` is valid for `len` bytes of writes; `&mut` to the buffer's key means no
        // other kernel thread writes them now (by the type invariant).
        unsafe { src.copy_out(to, len) }
    }

    /// Zeroes up to `len` bytes at `offset` (none if `key` is not the buffer's).
    pub(crate) fn zero(&self, key: &mut WriterKey, offset: usize, len: usize) {
        if !self.is_writer(key) {
            return;
        }
        let (to, len) = self.span(offset, len);
        // SAFETY: As in `copy_in`.
        unsafe { ptr::write_bytes(to, 0, len) };
    }

    /// Copies up to `len` bytes from `offset` to `dst`; returns how many it copied, fewer if
    /// `dst` ended or faulted or the buffer did.
    pub(crate) fn copy_to_iter(
        &self,
        offset: usize,
        len: usize,
        dst: &mut IovIterDest<'_>,
    ) -> usize {
        let (from, len) = self.span(offset, len);
        // SAFETY: `from` is valid for `len` bytes of reads; `dst` is a valid destination vector
        // by its type invariants.
        unsafe { bindings::_copy_to_iter(from.cast(), len, dst.as_raw()) }
    }

    /// Copies from `offset` to `out`; returns how many bytes it copied.
    #[cfg(CONFIG_KUNIT = "y")]
    pub(crate) fn read_slice(&self, offset: usize, out: &mut [u8]) -> usize {
        let (from, len) = self.span(offset, out.len());
        // SAFETY: `from` is valid for `len` bytes of reads and `out` for `len` bytes of writes;
        // they do not overlap, as the buffer's bytes are never a Rust reference.
        unsafe { ptr::copy_nonoverlapping(from, out.as_mut_ptr(), len) };
        len
    }

    /// The page that holds byte `offset`, or `None` past the end of the buffer.
    pub(crate) fn page(&self, offset: usize) -> Option<BorrowedPage<'_>> {
        if offset >= self.len {
            return None;
        }
        let (at, _) = self.span(offset, 0);
        // SAFETY: `at` lies inside this allocation, so it is not null; the allocation is vmalloc
        // memory as `Vmalloc` hands out (both come from the vmalloc area, backed by pages that
        // `vmalloc_to_page` finds), and stays valid for the borrow of `self`, which owns it.
        Some(unsafe { Vmalloc::to_page(NonNull::new_unchecked(at)) })
    }
}

impl Drop for VmallocBuf {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the allocation came from `__vmalloc` and is ours.
        unsafe { vfree(self.ptr.as_ptr().cast()) };
    }
}
