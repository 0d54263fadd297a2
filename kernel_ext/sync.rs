// SPDX-License-Identifier: GPL-2.0

//! Data that either of two nested locks protects for reading and both protect for writing.
//!
//! Some data must be read on two paths that cannot share a lock: one that holds its lock across
//! long operations (user copies, say) and one that must not wait for them (a page fault, which
//! runs with the mmap lock held and so must never wait for a lock held across a user copy).
//! [`NestedLocks`] has an outer and an inner mutex: either one lets a thread read the data, and
//! changing it takes the outer one and then the inner one. So a holder of the outer lock reads the
//! data while another thread, holding the inner lock only, reads it too, and neither sees it
//! change. The outer mutex also guards data of its own, `O`.
//!
//! `kernel::sync::LockedBy` ties data to one lock that does not wrap it; this is for data that
//! two locks share, which neither `LockedBy` nor a `Mutex` around the data can say.

use core::{
    cell::UnsafeCell,
    ops::{
        Deref,
        DerefMut, //
    },
};
use kernel::{
    prelude::*,
    sync::{
        LockClassKey,
        Mutex,
        MutexGuard, //
    },
};

/// Data `T` that the outer lock or the inner one protects for reading, and both for writing, with
/// data `O` that only the outer lock protects. Lock order: outer, then inner.
///
/// # Invariants
///
/// `data` is read only while `outer` or `inner` is locked, and written only while both are.
#[pin_data]
pub(crate) struct NestedLocks<T, O> {
    #[pin]
    outer: Mutex<O>,
    #[pin]
    inner: Mutex<()>,
    data: UnsafeCell<T>,
}

// SAFETY: Holders of the outer lock and of the inner lock may read the data at the same time, on
// different threads, hence `T: Sync`; the one holder of both may change it or move it out, hence
// `T: Send`. `O` is behind a mutex, which needs `O: Send`.
unsafe impl<T: Send + Sync, O: Send> Sync for NestedLocks<T, O> {}

/// Makes a [`NestedLocks`] initialiser with a lock class of its own for each of its two locks.
macro_rules! new_nested_locks {
    ($data:expr, $outer:expr $(,)?) => {
        $crate::kernel_ext::sync::NestedLocks::new(
            $data,
            $outer,
            ::kernel::c_str!(::core::concat!(
                ::core::file!(),
                ":",
                ::core::line!(),
                " outer"
            )),
            ::kernel::static_lock_class!(),
            ::kernel::c_str!(::core::concat!(
                ::core::file!(),
                ":",
                ::core::line!(),
                " inner"
            )),
            ::kernel::static_lock_class!(),
        )
    };
}
pub(crate) use new_nested_locks;

impl<T, O> NestedLocks<T, O> {
    /// An initialiser for `data` and `outer`, with the locks' names and classes for lockdep; see
    /// [`new_nested_locks!`] for the usual way.
    pub(crate) fn new(
        data: T,
        outer: O,
        outer_name: &'static CStr,
        outer_key: Pin<&'static LockClassKey>,
        inner_name: &'static CStr,
        inner_key: Pin<&'static LockClassKey>,
    ) -> impl PinInit<Self> {
        // INVARIANT: Nothing reads or writes `data` but through the guards below.
        pin_init!(Self {
            outer <- Mutex::new(outer, outer_name, outer_key),
            inner <- Mutex::new((), inner_name, inner_key),
            data: UnsafeCell::new(data),
        })
    }

    /// Takes the outer lock.
    pub(crate) fn lock_outer(&self) -> Outer<'_, T, O> {
        Outer {
            guard: self.outer.lock(),
            locks: self,
        }
    }

    /// Takes the inner lock.
    pub(crate) fn lock_inner(&self) -> Inner<'_, T, O> {
        Inner {
            _guard: self.inner.lock(),
            locks: self,
        }
    }
}

/// The outer lock held: the data may be read, and the outer lock's own data changed.
pub(crate) struct Outer<'a, T, O> {
    guard: MutexGuard<'a, O>,
    locks: &'a NestedLocks<T, O>,
}

impl<T, O> Outer<'_, T, O> {
    /// The data.
    pub(crate) fn data(&self) -> &T {
        // SAFETY: The outer lock is held, so no thread holds both locks but this one, and this
        // one does so only through `lock_inner`, which borrows `self` mutably: so nothing writes
        // the data while the result lives (by the type invariant of `NestedLocks`).
        unsafe { &*self.locks.data.get() }
    }

    /// The data, and the outer lock's own data to change.
    pub(crate) fn split(&mut self) -> (&T, &mut O)
    where
        O: Unpin,
    {
        // SAFETY: As in `data`.
        let data = unsafe { &*self.locks.data.get() };
        (data, &mut *self.guard)
    }

    /// Takes the inner lock as well, to change the data.
    pub(crate) fn lock_inner(&mut self) -> Both<'_, T> {
        Both {
            _guard: self.locks.inner.lock(),
            data: &self.locks.data,
        }
    }
}

/// The inner lock held: the data may be read.
pub(crate) struct Inner<'a, T, O> {
    _guard: MutexGuard<'a, ()>,
    locks: &'a NestedLocks<T, O>,
}

impl<T, O> Deref for Inner<'_, T, O> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: The inner lock is held, so no thread holds both locks and nothing writes the
        // data while the result lives (by the type invariant of `NestedLocks`).
        unsafe { &*self.locks.data.get() }
    }
}

/// Both locks held: the data may be changed.
pub(crate) struct Both<'a, T> {
    _guard: MutexGuard<'a, ()>,
    data: &'a UnsafeCell<T>,
}

impl<T> Deref for Both<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: Both locks are held by this thread, and the guard of the outer one is borrowed
        // mutably by `self`: no other reference to the data exists (type invariant of
        // `NestedLocks`) but those derived from `self`.
        unsafe { &*self.data.get() }
    }
}

impl<T> DerefMut for Both<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: As in `deref`; `&mut self` makes the result the only reference.
        unsafe { &mut *self.data.get() }
    }
}
