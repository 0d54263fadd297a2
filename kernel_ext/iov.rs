// SPDX-License-Identifier: GPL-2.0

//! What `kernel::iov` lacks: filling a destination I/O vector with zeros.
//!
//! C header: [`include/linux/uio.h`](srctree/include/linux/uio.h)

use kernel::{
    bindings,
    iov::IovIterDest, //
};

/// Extensions to [`IovIterDest`].
pub(crate) trait IovIterDestExt {
    /// Writes up to `len` zero bytes and advances past them; returns how many it wrote, which is
    /// less than `len` when the vector ends or a fault stops it.
    fn zero(&mut self, len: usize) -> usize;
}

impl IovIterDestExt for IovIterDest<'_> {
    fn zero(&mut self, len: usize) -> usize {
        // SAFETY: By the type invariants of `IovIterDest`, `self` is a valid destination vector
        // that may be written with the C routines for that purpose, of which this is one.
        unsafe { bindings::iov_iter_zero(len, self.as_raw()) }
    }
}
