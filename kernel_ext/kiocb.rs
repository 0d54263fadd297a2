// SPDX-License-Identifier: GPL-2.0

//! What `kernel::fs::Kiocb` lacks: the `IOCB_APPEND` flag.
//!
//! C header: [`include/linux/fs.h`](srctree/include/linux/fs.h)

use kernel::{
    ffi::c_int,
    fs::Kiocb,
    types::ForeignOwnable, //
};

/// `IOCB_APPEND` is `(__force int) RWF_APPEND` (`include/linux/fs.h`), which bindgen drops;
/// `RWF_APPEND` is 0x10 in the UAPI (`include/uapi/linux/fs.h`).
const IOCB_APPEND: c_int = 0x10;

/// Extensions to [`Kiocb`].
pub(crate) trait KiocbExt {
    /// Whether the write is to go to the end of the file: set by `O_APPEND` on the file or
    /// `RWF_APPEND` on the call, cleared by `RWF_NOAPPEND`.
    fn is_append(&self) -> bool;
}

impl<T: ForeignOwnable> KiocbExt for Kiocb<'_, T> {
    fn is_append(&self) -> bool {
        // SAFETY: By the type invariants of `Kiocb`, `as_raw()` points at a valid `struct kiocb`;
        // the VFS sets `ki_flags` before calling `read_iter` or `write_iter` and the callee only
        // reads it, so this read does not race with a write.
        let flags = unsafe { (*self.as_raw()).ki_flags };
        flags & IOCB_APPEND != 0
    }
}
