// SPDX-License-Identifier: GPL-2.0

//! Kernel abstractions that Linux 7.3's `kernel` crate lacks, written as if each file were a patch
//! to `rust/kernel/`.
//!
//! Each file wraps one C interface, generically and with its safety contract written down, so that
//! the driver built on them is safe code: no `unsafe` and no `bindings::` outside this folder. None
//! of them knows the driver: no driver names, types or policy here, and nothing here imports from
//! the driver.
//!
//! | file | wraps |
//! |---|---|
//! | [`capability`] | `capable()` |
//! | [`iov`] | `iov_iter_zero()` on an [`IovIterDest`](kernel::iov::IovIterDest) |
//! | [`kiocb`] | the `IOCB_APPEND` flag of a [`Kiocb`](kernel::fs::Kiocb) |
//! | [`meminfo`] | the RAM present (`si_meminfo()`) |
//! | [`miscdevice`] | misc devices with seekable file operations and per-registration data |
//! | [`proc`] | a `/proc` file shown record by record through seq_file |
//! | [`seq_printf`] | `seq_printf()` with a C format checked at compile time |
//! | [`sync`] | data that either of two nested locks protects for reading, both for writing |
//! | [`vm_ops`] | `vm_operations_struct` open, close and fault with typed private data |
//! | [`vmalloc`] | `__vmalloc()` buffers that user space may map, with caller-chosen flags |

pub(crate) mod capability;
pub(crate) mod iov;
pub(crate) mod kiocb;
pub(crate) mod meminfo;
pub(crate) mod miscdevice;
pub(crate) mod proc;
pub(crate) mod seq_printf;
pub(crate) mod sync;
pub(crate) mod vm_ops;
pub(crate) mod vmalloc;
