// SPDX-License-Identifier: GPL-2.0

//! `vm_operations_struct` open, close and fault, with typed private data.
//!
//! C header: [`include/linux/mm.h`](srctree/include/linux/mm.h)
//!
//! An `mmap` callback gives a new mapping the operations of a [`VmOperations`] type and data of
//! its `Ptr` type with [`set_vm_ops`]. Each mapping owns one `Ptr` in `vm_private_data`: `open`
//! makes one for a mapping copied from another (fork, mremap) or split off it (partial munmap,
//! mprotect), `close` gets back the one of a mapping that goes away, and `fault` borrows it.

use core::marker::PhantomData;
use kernel::{
    bindings,
    mm::virt::{
        VmaNew,
        VmaRef, //
    },
    prelude::*,
    types::ForeignOwnable, //
};

/// What a fault handler did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum FaultResult {
    /// It mapped the page itself (`VM_FAULT_NOPAGE`).
    NoPage,
    /// The access is outside what the mapping provides (`VM_FAULT_SIGBUS`).
    SigBus,
    /// It ran out of memory (`VM_FAULT_OOM`).
    Oom,
}

impl From<Error> for FaultResult {
    /// As the C `vmf_error()` (which also maps `EHWPOISON`): `ENOMEM` is `Oom`, any other error
    /// `SigBus`.
    fn from(e: Error) -> Self {
        if e == ENOMEM {
            FaultResult::Oom
        } else {
            FaultResult::SigBus
        }
    }
}

impl FaultResult {
    fn to_raw(self) -> bindings::vm_fault_t {
        match self {
            FaultResult::NoPage => bindings::vm_fault_reason_VM_FAULT_NOPAGE,
            FaultResult::SigBus => bindings::vm_fault_reason_VM_FAULT_SIGBUS,
            FaultResult::Oom => bindings::vm_fault_reason_VM_FAULT_OOM,
        }
    }
}

/// A page fault in a mapping, as a `->fault` handler gets it.
///
/// # Invariants
///
/// `vmf` is a valid `struct vm_fault` for a fault in progress, with the mmap lock of its mapping's
/// mm held for reading (or more) for the lifetime `'a`.
pub(crate) struct VmFault<'a> {
    vmf: &'a bindings::vm_fault,
}

impl<'a> VmFault<'a> {
    /// The mapping.
    pub(crate) fn vma(&self) -> &'a VmaRef {
        // SAFETY: By the type invariant the mapping is valid and its mmap lock held for `'a`.
        unsafe { VmaRef::from_raw(self.vmf.__bindgen_anon_1.vma) }
    }

    /// The faulting page's offset in the file, in pages (`vm_pgoff` plus its page in the mapping).
    pub(crate) fn pgoff(&self) -> usize {
        self.vmf.__bindgen_anon_1.pgoff
    }

    /// The faulting address, rounded down to its page.
    pub(crate) fn address(&self) -> usize {
        self.vmf.__bindgen_anon_1.address
    }
}

/// The operations of a mapping, and the data each mapping owns.
pub(crate) trait VmOperations: Sized {
    /// What each mapping keeps in `vm_private_data`.
    type Ptr: ForeignOwnable + Send + Sync;

    /// A mapping was copied from, or split off, one whose data is `data`: returns the new
    /// mapping's own data.
    fn open(data: <Self::Ptr as ForeignOwnable>::Borrowed<'_>) -> Self::Ptr;

    /// A mapping goes away; it owned `data`.
    fn close(data: Self::Ptr) {
        drop(data);
    }

    /// A page of the mapping, whose data is `data`, was touched that has no page table entry.
    ///
    /// It runs with the mmap lock held for reading: the operations have no `map_pages`, and
    /// without one a fault taken under the per-VMA lock only is retried under the mmap lock
    /// before `->fault` is called (`vmf_can_call_fault` in `mm/memory.c`).
    fn fault(data: <Self::Ptr as ForeignOwnable>::Borrowed<'_>, fault: &VmFault<'_>)
        -> FaultResult;
}

/// Makes `T` the operations of the new mapping `vma`, which owns `data` from now on.
///
/// Call it last in the `mmap` callback, once nothing can fail: the mm core frees a mapping whose
/// `mmap` fails without calling `close`, so `data` would leak.
pub(crate) fn set_vm_ops<T: VmOperations>(vma: &VmaNew, data: T::Ptr) {
    let raw = vma.as_ptr();
    // SAFETY: By the type invariant of `VmaNew`, the mapping is being set up by an `mmap`
    // callback and is not yet visible, so these fields are ours to write. The table is static,
    // and `VmOpsVTable::<T>` reads `vm_private_data` as the `T::Ptr` stored here.
    unsafe {
        (*raw).vm_ops = VmOpsVTable::<T>::build();
        (*raw).vm_private_data = data.into_foreign();
    }
}

/// The `vm_operations_struct` of a [`VmOperations`] type.
struct VmOpsVTable<T: VmOperations>(PhantomData<T>);

impl<T: VmOperations> VmOpsVTable<T> {
    /// # Safety
    ///
    /// Called by the mm core for a mapping copied from, or split off, one that [`set_vm_ops`]
    /// set up (or that this function set up), before the new mapping is used.
    unsafe extern "C" fn open(vma: *mut bindings::vm_area_struct) {
        // SAFETY: `vma` is valid; its `vm_private_data` was copied from the mapping it came from,
        // which owns it and outlives this call.
        let new = T::open(unsafe { T::Ptr::borrow((*vma).vm_private_data) });
        // SAFETY: The new mapping is not yet used, so its private data is ours to write; from
        // now on it owns its own `T::Ptr`.
        unsafe { (*vma).vm_private_data = new.into_foreign() };
    }

    /// # Safety
    ///
    /// Called by the mm core for a mapping with these operations that goes away.
    unsafe extern "C" fn close(vma: *mut bindings::vm_area_struct) {
        // SAFETY: `vma` is valid; it owns its private data, made by `into_foreign` in
        // `set_vm_ops` or `open`, and nothing uses the mapping after `close`.
        T::close(unsafe { T::Ptr::from_foreign((*vma).vm_private_data) });
    }

    /// # Safety
    ///
    /// Called by the mm core for a fault in a mapping with these operations.
    unsafe extern "C" fn fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
        // SAFETY: `vmf` is valid for the call.
        let vmf = unsafe { &*vmf };
        // INVARIANT: These operations have no `map_pages`, so the mm core calls `fault` with the
        // mmap lock held for reading (see `VmOperations::fault`).
        let fault = VmFault { vmf };
        // SAFETY: The mapping owns its private data; `close`, which takes it back, cannot run
        // during the fault, which holds the mmap lock.
        let data = unsafe { T::Ptr::borrow((*fault.vmf.__bindgen_anon_1.vma).vm_private_data) };
        T::fault(data, &fault).to_raw()
    }

    const VTABLE: bindings::vm_operations_struct = bindings::vm_operations_struct {
        open: Some(Self::open),
        close: Some(Self::close),
        fault: Some(Self::fault),
        ..pin_init::zeroed()
    };

    const fn build() -> &'static bindings::vm_operations_struct {
        &Self::VTABLE
    }
}
