// SPDX-License-Identifier: GPL-2.0

//! A `/proc` file shown record by record through seq_file.
//!
//! C headers: [`include/linux/proc_fs.h`](srctree/include/linux/proc_fs.h),
//! [`include/linux/seq_file.h`](srctree/include/linux/seq_file.h)
//!
//! A [`ProcEntry`] owns data that implements [`ProcRecords`]: a sequence of records, each printed
//! in one `show` call. seq_file calls `show` again with a bigger buffer when a record does not
//! fit, so the file is complete however long, and each record is printed whole in one call (under
//! whatever lock `show` takes).

use core::{
    ffi::c_void,
    marker::PhantomData,
    ptr::{
        self,
        NonNull, //
    },
};
use kernel::{
    bindings,
    ffi::{
        c_char,
        c_int,
        c_uint, //
    },
    prelude::*,
    seq_file::SeqFile,
    str::CStrExt, //
};

// Exported by `fs/proc/` but not in the `bindings` crate (`proc_fs.h` does not reach it). The
// operations table is passed as `c_void`: `seq_operations` reaches structs that are empty
// without lockdep, which are not FFI-safe (`improper_ctypes`).
extern "C" {
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

/// The contents of a `/proc` file: records, each printed by one `show` call.
pub(crate) trait ProcRecords: Send + Sync + Sized {
    /// One record.
    type Record: Sync;

    /// Record `index`, or `None` past the last one.
    fn record(&self, index: usize) -> Option<&Self::Record>;

    /// Prints `record` to `m`.
    fn show(record: &Self::Record, m: &SeqFile);
}

/// A file in `/proc`, listing the records of the data it owns.
///
/// # Invariants
///
/// `entry` is a proc entry made by `proc_create_seq_private` with `SeqVTable::<T>` and data
/// `_data`, which lives at its heap address until `Drop` has removed the entry.
pub(crate) struct ProcEntry<T: ProcRecords> {
    entry: NonNull<c_void>,
    /// What `entry` lists; only the callbacks read it, through the entry.
    _data: KBox<T>,
}

// SAFETY: A proc entry may be removed from any thread; the data is `Send`.
unsafe impl<T: ProcRecords> Send for ProcEntry<T> {}

// SAFETY: `ProcEntry` has no `&self` methods; the callbacks share the data between the threads
// that read the file, and it is `Sync`.
unsafe impl<T: ProcRecords> Sync for ProcEntry<T> {}

impl<T: ProcRecords> ProcEntry<T> {
    /// Creates `/proc/<name>` with permissions `mode`, listing `data`.
    pub(crate) fn new(name: &'static CStr, mode: u16, data: KBox<T>) -> Result<Self> {
        // SAFETY: The name and the operations are static; the data stays at its heap address until
        // `Drop` has removed the entry, and `proc_remove` waits for the callbacks in progress.
        let entry = unsafe {
            proc_create_seq_private(
                name.as_char_ptr(),
                mode,
                ptr::null_mut(),
                ptr::from_ref(SeqVTable::<T>::build()).cast(),
                0,
                ptr::from_ref(&*data).cast_mut().cast(),
            )
        };
        // INVARIANT: A non-null result is the new entry, listing `data`.
        Ok(Self {
            entry: NonNull::new(entry).ok_or(ENOMEM)?,
            _data: data,
        })
    }
}

impl<T: ProcRecords> Drop for ProcEntry<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the entry exists. `proc_remove` waits for the callbacks in
        // progress and makes later ones fail, so nothing reaches the data after it.
        unsafe { proc_remove(self.entry.as_ptr()) };
    }
}

/// The seq_file operations of a [`ProcEntry<T>`].
struct SeqVTable<T: ProcRecords>(PhantomData<T>);

impl<T: ProcRecords> SeqVTable<T> {
    /// The data of the entry `m` shows.
    ///
    /// # Safety
    ///
    /// `m` is a seq_file of a [`ProcEntry<T>`], in one of its callbacks.
    unsafe fn data<'a>(m: *mut bindings::seq_file) -> &'a T {
        // SAFETY: The file is open in a callback, so its inode is valid; `proc_get_inode` set its
        // `i_private` to the entry's data (what `pde_data()` reads), a `T` that outlives the
        // callback by the type invariant of `ProcEntry`.
        unsafe { &*(*(*(*m).file).f_inode).i_private.cast::<T>() }
    }

    /// # Safety
    ///
    /// Called by seq_file for a [`ProcEntry<T>`], with its seq_file and a valid position.
    unsafe extern "C" fn start(m: *mut bindings::seq_file, pos: *mut i64) -> *mut c_void {
        // SAFETY: As the seq_file core promises.
        let (data, pos) = unsafe { (Self::data(m), *pos) };
        usize::try_from(pos)
            .ok()
            .and_then(|i| data.record(i))
            .map_or(ptr::null_mut(), |r| ptr::from_ref(r).cast_mut().cast())
    }

    /// # Safety
    ///
    /// As for `start`.
    unsafe extern "C" fn next(
        m: *mut bindings::seq_file,
        _v: *mut c_void,
        pos: *mut i64,
    ) -> *mut c_void {
        // SAFETY: `pos` is valid, as the seq_file core promises.
        unsafe { *pos += 1 };
        // SAFETY: As the seq_file core promises.
        unsafe { Self::start(m, pos) }
    }

    /// # Safety
    ///
    /// Called by seq_file; it does nothing.
    unsafe extern "C" fn stop(_m: *mut bindings::seq_file, _v: *mut c_void) {}

    /// # Safety
    ///
    /// Called by seq_file for a [`ProcEntry<T>`] with a record that `start` or `next` returned.
    unsafe extern "C" fn show(m: *mut bindings::seq_file, v: *mut c_void) -> c_int {
        // SAFETY: `v` came from `start`: a record of the data, which outlives the callback; the
        // seq_file core holds the seq_file's lock, so only this thread uses it.
        let (record, m) = unsafe { (&*v.cast::<T::Record>(), SeqFile::from_raw(m)) };
        T::show(record, m);
        0
    }

    const VTABLE: bindings::seq_operations = bindings::seq_operations {
        start: Some(Self::start),
        next: Some(Self::next),
        stop: Some(Self::stop),
        show: Some(Self::show),
    };

    const fn build() -> &'static bindings::seq_operations {
        &Self::VTABLE
    }
}
