// SPDX-License-Identifier: GPL-2.0

//! Misc devices with seekable file operations.
//!
//! C header: [`include/linux/miscdevice.h`](srctree/include/linux/miscdevice.h)
//!
//! Like `kernel::miscdevice`, with what that one lacks in 7.3: `llseek` (without it `lseek()`
//! fails with `ESPIPE`), data given at registration that `open` receives, and the node's mode.
//! The file operations also have `fsync` (`noop_fsync`: the data is in RAM), and splice over
//! `read_iter` and `write_iter` (`copy_splice_read`, `iter_file_splice_write`), so that
//! `sendfile` and `splice` work. Their `owner` is the module that implements the trait, so the
//! module cannot be removed while a file is open.

use core::marker::PhantomData;
use kernel::{
    bindings,
    error::{
        to_result,
        VTABLE_DEFAULT_ERROR, //
    },
    ffi::{
        c_int,
        c_long,
        c_uint,
        c_ulong, //
    },
    fs::{
        File,
        Kiocb, //
    },
    iov::{
        IovIterDest,
        IovIterSource, //
    },
    mm::virt::VmaNew,
    module::this_module,
    prelude::*,
    str::{
        CStrExt,
        CString, //
    },
    types::{
        ForeignOwnable,
        Opaque, //
    },
};

/// The largest file offset (`MAX_LFS_FILESIZE`).
#[cfg(CONFIG_64BIT)]
pub(crate) const MAX_LFS_FILESIZE: i64 = i64::MAX;
/// The largest file offset (`MAX_LFS_FILESIZE`).
#[cfg(not(CONFIG_64BIT))]
pub(crate) const MAX_LFS_FILESIZE: i64 = (u32::MAX as i64) << kernel::page::PAGE_SHIFT;

/// The file operations of a seekable misc device.
#[vtable]
pub(crate) trait SeekableMiscDevice: Sized {
    /// The data given at registration, which `open` receives.
    type RegistrationData: Send + Sync;

    /// The data of an open file, kept in its `private_data`.
    type Ptr: ForeignOwnable + Send + Sync;

    /// Opens the device; the result becomes the file's private data.
    fn open(data: &Self::RegistrationData, file: &File) -> Result<Self::Ptr>;

    /// The last reference to the file is gone.
    fn release(device: Self::Ptr, _file: &File) {
        drop(device);
    }

    /// Reads at `kiocb`'s position into `iov`.
    fn read_iter(_kiocb: Kiocb<'_, Self::Ptr>, _iov: &mut IovIterDest<'_>) -> Result<usize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Writes `iov` at `kiocb`'s position.
    fn write_iter(_kiocb: Kiocb<'_, Self::Ptr>, _iov: &mut IovIterSource<'_>) -> Result<usize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Moves the file position, as [`Seek`] asks; returns the new position.
    fn llseek(
        _device: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _seek: Seek<'_>,
    ) -> Result<i64> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Handles an ioctl; without `compat_ioctl`, 32-bit callers get it through
    /// `compat_ptr_ioctl`.
    fn ioctl(
        _device: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _file: &File,
        _cmd: u32,
        _arg: usize,
    ) -> Result<isize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Handles an ioctl of a 32-bit caller on a 64-bit kernel.
    #[cfg(CONFIG_COMPAT)]
    fn compat_ioctl(
        _device: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _file: &File,
        _cmd: u32,
        _arg: usize,
    ) -> Result<isize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Sets up a new mapping of the file.
    fn mmap(
        _device: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _file: &File,
        _vma: &VmaNew,
    ) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// An `lseek()` in progress: the `llseek` callback answers it.
///
/// # Invariants
///
/// `file` is the file being seeked, in its `llseek` callback, for the lifetime `'a`.
pub(crate) struct Seek<'a> {
    file: *mut bindings::file,
    offset: i64,
    whence: c_int,
    _call: PhantomData<&'a bindings::file>,
}

impl Seek<'_> {
    /// Moves the position as `generic_file_llseek_size` does: `SEEK_SET`, `SEEK_CUR`, and
    /// `SEEK_END`, `SEEK_DATA` and `SEEK_HOLE` against `eof` (all data, no hole); `EINVAL` for a
    /// result below 0 or above `maxsize`.
    pub(crate) fn generic_file_llseek_size(self, maxsize: i64, eof: i64) -> Result<i64> {
        // SAFETY: By the type invariant `file` is valid and in its `llseek` callback, where the
        // helper may set its position.
        let pos = unsafe {
            bindings::generic_file_llseek_size(self.file, self.offset, self.whence, maxsize, eof)
        };
        if pos < 0 {
            Err(Error::from_errno(pos as c_int))
        } else {
            Ok(pos)
        }
    }
}

/// A registered misc device whose files have the operations of `T`.
///
/// # Invariants
///
/// `inner` is registered with `misc_register`, with the name `_name`, the operations
/// `MiscVTable::<T>` and this value's address reachable from it, until `Drop` deregisters it.
#[pin_data(PinnedDrop)]
pub(crate) struct Registration<T: SeekableMiscDevice> {
    #[pin]
    inner: Opaque<bindings::miscdevice>,
    /// The name that `inner` points to.
    _name: CString,
    data: T::RegistrationData,
}

// SAFETY: A misc device may be deregistered on any thread; the data is `Send`.
unsafe impl<T: SeekableMiscDevice> Send for Registration<T> {}

// SAFETY: `Registration` has no `&self` methods; `open` borrows the data on any thread, and it is
// `Sync`.
unsafe impl<T: SeekableMiscDevice> Sync for Registration<T> {}

impl<T: SeekableMiscDevice> Registration<T> {
    /// Registers `/dev/<name>` with node mode `mode` (for example 0o666); `open` gets `data`.
    pub(crate) fn register(
        name: CString,
        mode: u16,
        data: T::RegistrationData,
    ) -> impl PinInit<Self, Error> {
        // The name's buffer is on the heap: it keeps its address when the `CString` moves.
        let name_ptr = name.as_char_ptr();
        try_pin_init!(Self {
            _name: name,
            data,
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                let misc = bindings::miscdevice {
                    minor: bindings::MISC_DYNAMIC_MINOR as c_int,
                    name: name_ptr,
                    fops: MiscVTable::<T>::build(),
                    mode,
                    ..Default::default()
                };
                // SAFETY: `slot` is valid for writes.
                unsafe { slot.write(misc) };
                // SAFETY: The miscdevice is initialised and pinned, and its name lives as long
                // as it does; `Drop` deregisters it before its memory goes away.
                // INVARIANT: On success it is registered.
                to_result(unsafe { bindings::misc_register(slot) })
            }),
        })
    }
}

#[pinned_drop]
impl<T: SeekableMiscDevice> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant the device is registered. `misc_deregister` waits for
        // `open` calls in progress (both hold `misc_mtx`), so none uses the data afterwards.
        unsafe { bindings::misc_deregister(self.inner.get()) };
    }
}

/// The `file_operations` of a [`SeekableMiscDevice`].
struct MiscVTable<T: SeekableMiscDevice>(PhantomData<T>);

impl<T: SeekableMiscDevice> MiscVTable<T> {
    /// The private data of an open file, borrowed.
    ///
    /// # Safety
    ///
    /// `file` is an open file of a [`Registration<T>`] (after `open`, before `release`).
    unsafe fn device<'a>(file: *mut bindings::file) -> <T::Ptr as ForeignOwnable>::Borrowed<'a> {
        // SAFETY: `open` stored a `T::Ptr` with `into_foreign`; `release`, which takes it back,
        // runs after every other callback.
        unsafe { T::Ptr::borrow((*file).private_data) }
    }

    /// # Safety
    ///
    /// `inode` and `file` are being opened, for a device registered by a [`Registration<T>`].
    unsafe extern "C" fn open(inode: *mut bindings::inode, raw_file: *mut bindings::file) -> c_int {
        // SAFETY: The pointers are valid and for a file being opened.
        let ret = unsafe { bindings::generic_file_open(inode, raw_file) };
        if ret != 0 {
            return ret;
        }
        // SAFETY: `misc_open` stored the registered `miscdevice` in `private_data`; it is the
        // `inner` field of a `Registration<T>`, as every registration with these operations is,
        // and `misc_open` holds `misc_mtx`, so it cannot be deregistered during this call.
        let reg = unsafe {
            let misc = (*raw_file).private_data.cast::<bindings::miscdevice>();
            &*kernel::container_of!(Opaque::cast_from(misc), Registration<T>, inner)
        };
        // SAFETY: The file is valid for the call, and in no `fdget_pos` region of this thread.
        let file = unsafe { File::from_raw_file(raw_file) };
        match T::open(&reg.data, file) {
            Ok(ptr) => {
                // SAFETY: The file is being opened: its private data is ours to set. Every
                // other callback reads it back as a `T::Ptr`.
                unsafe { (*raw_file).private_data = ptr.into_foreign() };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `file` is an open file of a [`Registration<T>`], being released.
    unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
        // SAFETY: The release call owns the private data, which `open` made with `into_foreign`.
        let ptr = unsafe { T::Ptr::from_foreign((*file).private_data) };
        // SAFETY: The file is valid for the call, and in no `fdget_pos` region of this thread.
        T::release(ptr, unsafe { File::from_raw_file(file) });
        0
    }

    /// # Safety
    ///
    /// `kiocb` is valid, for an open file of a [`Registration<T>`]; `iter` is a valid
    /// destination vector.
    unsafe extern "C" fn read_iter(
        kiocb: *mut bindings::kiocb,
        iter: *mut bindings::iov_iter,
    ) -> isize {
        // SAFETY: The kiocb is valid for the call and its file's private data is a `T::Ptr`.
        let kiocb = unsafe { Kiocb::from_raw(kiocb) };
        // SAFETY: `iter` is a valid destination vector, used only through this for the call.
        let iov = unsafe { IovIterDest::from_raw(iter) };
        match T::read_iter(kiocb, iov) {
            Ok(n) => n as isize,
            Err(e) => e.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// `kiocb` is valid, for an open file of a [`Registration<T>`]; `iter` is a valid source
    /// vector.
    unsafe extern "C" fn write_iter(
        kiocb: *mut bindings::kiocb,
        iter: *mut bindings::iov_iter,
    ) -> isize {
        // SAFETY: The kiocb is valid for the call and its file's private data is a `T::Ptr`.
        let kiocb = unsafe { Kiocb::from_raw(kiocb) };
        // SAFETY: `iter` is a valid source vector, used only through this for the call.
        let iov = unsafe { IovIterSource::from_raw(iter) };
        match T::write_iter(kiocb, iov) {
            Ok(n) => n as isize,
            Err(e) => e.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// `file` is an open file of a [`Registration<T>`], being seeked.
    unsafe extern "C" fn llseek(file: *mut bindings::file, offset: i64, whence: c_int) -> i64 {
        // SAFETY: As the caller promises.
        let device = unsafe { Self::device(file) };
        // INVARIANT: This is the file's `llseek` callback.
        let seek = Seek {
            file,
            offset,
            whence,
            _call: PhantomData,
        };
        match T::llseek(device, seek) {
            Ok(pos) => pos,
            Err(e) => e.to_errno().into(),
        }
    }

    /// # Safety
    ///
    /// `file` is an open file of a [`Registration<T>`].
    unsafe extern "C" fn ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
        // SAFETY: As the caller promises.
        let device = unsafe { Self::device(file) };
        // SAFETY: The file is valid for the call, and in no `fdget_pos` region of this thread.
        let file = unsafe { File::from_raw_file(file) };
        match T::ioctl(device, file, cmd, arg) {
            Ok(v) => v as c_long,
            Err(e) => e.to_errno() as c_long,
        }
    }

    /// # Safety
    ///
    /// `file` is an open file of a [`Registration<T>`].
    #[cfg(CONFIG_COMPAT)]
    unsafe extern "C" fn compat_ioctl(
        file: *mut bindings::file,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_long {
        // SAFETY: As the caller promises.
        let device = unsafe { Self::device(file) };
        // SAFETY: The file is valid for the call, and in no `fdget_pos` region of this thread.
        let file = unsafe { File::from_raw_file(file) };
        match T::compat_ioctl(device, file, cmd, arg) {
            Ok(v) => v as c_long,
            Err(e) => e.to_errno() as c_long,
        }
    }

    /// # Safety
    ///
    /// `file` is an open file of a [`Registration<T>`]; `vma` is a mapping of it being set up.
    unsafe extern "C" fn mmap(
        file: *mut bindings::file,
        vma: *mut bindings::vm_area_struct,
    ) -> c_int {
        // SAFETY: As the caller promises.
        let device = unsafe { Self::device(file) };
        // SAFETY: The mapping is being set up by this `mmap` call.
        let area = unsafe { VmaNew::from_raw(vma) };
        // SAFETY: The file is valid for the call, and in no `fdget_pos` region of this thread.
        let file = unsafe { File::from_raw_file(file) };
        match T::mmap(device, file, area) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    const VTABLE: bindings::file_operations = bindings::file_operations {
        owner: this_module::<T::OwnerModule>().as_ptr(),
        open: Some(Self::open),
        release: Some(Self::release),
        read_iter: if T::HAS_READ_ITER {
            Some(Self::read_iter)
        } else {
            None
        },
        write_iter: if T::HAS_WRITE_ITER {
            Some(Self::write_iter)
        } else {
            None
        },
        llseek: if T::HAS_LLSEEK {
            Some(Self::llseek)
        } else {
            None
        },
        unlocked_ioctl: if T::HAS_IOCTL {
            Some(Self::ioctl)
        } else {
            None
        },
        #[cfg(CONFIG_COMPAT)]
        compat_ioctl: if T::HAS_COMPAT_IOCTL {
            Some(Self::compat_ioctl)
        } else if T::HAS_IOCTL {
            bindings::compat_ptr_ioctl
        } else {
            None
        },
        mmap: if T::HAS_MMAP { Some(Self::mmap) } else { None },
        fsync: Some(bindings::noop_fsync),
        splice_read: if T::HAS_READ_ITER {
            Some(bindings::copy_splice_read)
        } else {
            None
        },
        splice_write: if T::HAS_WRITE_ITER {
            Some(bindings::iter_file_splice_write)
        } else {
            None
        },
        ..pin_init::zeroed()
    };

    const fn build() -> &'static bindings::file_operations {
        &Self::VTABLE
    }
}
