// SPDX-License-Identifier: GPL-2.0

//! Capability checks of the current task.
//!
//! C header: [`include/linux/capability.h`](srctree/include/linux/capability.h)

use kernel::{
    bindings,
    ffi::c_int, //
};

/// A POSIX capability, as `capable()` takes it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Capability(c_int);

/// Administration of the system: the catch-all capability.
pub(crate) const CAP_SYS_ADMIN: Capability = Capability(bindings::CAP_SYS_ADMIN as c_int);

/// Whether the current task has `cap` in its effective set, as the C `capable()` says.
///
/// Like `capable()`, a successful check marks the task as having used the capability
/// (`PF_SUPERPRIV`) and is audited.
pub(crate) fn capable(cap: Capability) -> bool {
    // SAFETY: `capable` looks only at the current task's credentials, which are valid in any
    // context that has a current task; `cap.0` is a capability number by the type's constants.
    unsafe { bindings::capable(cap.0) }
}
