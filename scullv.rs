// SPDX-License-Identifier: GPL-2.0

//! scullv: the vmalloc-backed "scull" character device of *Linux Device Drivers*, 3rd edition,
//! chapter 8.4, in Rust.
//!
//! Each of `/dev/scullv0` .. `/dev/scullv{N-1}` is a RAM-backed, seekable file of up to
//! `scullv_size_limit` bytes, kept in a list of items of `qset` quanta of `PAGE_SIZE << order`
//! bytes, each quantum a vmalloc buffer. `/proc/scullvmem` shows the layout.
//!
//! How userspace uses it:
//!
//! ```text
//! insmod scullv.ko                     # or: insmod scullv.ko scullv_order=0 scullv_qset=1
//! cat bigfile > /dev/scullv0           # a write-only open trims, then the data is stored
//! cmp bigfile /dev/scullv0             # read back
//! echo more >> /dev/scullv0            # O_APPEND: appended
//! head -5 /proc/scullvmem              # geometry, size and (hashed) buffer addresses
//! ```
//!
//! ```c
//! #define SCULLV_IOC_MAGIC 'K'
//! int order = ioctl(fd, _IO(SCULLV_IOC_MAGIC, 4));      /* Q: query the order */
//! ioctl(fd, _IO(SCULLV_IOC_MAGIC, 2), 0);                /* T: order 0 (CAP_SYS_ADMIN) */
//! void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
//! ```
//!
//! The ioctl values are module-wide; a device takes them when it allocates its first quantum
//! after a trim. File layout: this file holds the module, parameters, devices and file
//! operations; `storage.rs` the quantum sets; `scullv_proc.rs` the `/proc` listing;
//! `scullv_glue.rs` every raw kernel interface.

use kernel::{
    ffi::c_int,
    ioctl::{
        _IO,
        _IOR,
        _IOW,
        _IOWR, //
    },
    iov::{
        IovIterDest,
        IovIterSource, //
    },
    new_mutex,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Full,
            Relaxed, //
        },
        Mutex, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

mod scullv_glue;
mod scullv_proc;
mod storage;

use scullv_glue::{
    MiscDev,
    ProcEntry,
    Quantum, //
};
use storage::{
    Geometry,
    Storage,
    WritePos,
    ORDER_MAX,
    QSET_MAX, //
};

module! {
    type: ScullvModule,
    name: "scullv",
    authors: ["scullv developers"],
    description: "vmalloc-backed scull character device (LDD3 chapter 8.4)",
    license: "GPL",
    params: {
        scullv_devs: i64 {
            default: 4,
            description: "Number of devices, 1..32",
        },
        scullv_order: i64 {
            default: 4,
            description: "Quantum order, 0..10: quanta of PAGE_SIZE << order bytes",
        },
        scullv_qset: i64 {
            default: 500,
            description: "Quanta per list item, 1..65536",
        },
        scullv_size_limit: i64 {
            default: 0,
            description: "Bytes one device may hold; 0 for half the RAM present at load",
        },
        scullv_mode: i64 {
            default: 0o666,
            description: "Mode of the device nodes, 0..0777",
        },
    },
}

/// The most devices one load may create.
const DEVS_MAX: i64 = 32;

/// The module-wide order and qset (packed), which the ioctls change and an empty device takes.
static CURRENT: Atomic<u64> = Atomic::new(0);
/// The values given at load, which `SCULLV_IOCRESET` restores.
static AT_LOAD: Atomic<u64> = Atomic::new(0);

fn current_geometry() -> Geometry {
    Geometry::unpack(CURRENT.load(Relaxed))
}

/// How a file was opened.
pub(crate) struct OpenMode {
    pub(crate) write_only: bool,
    pub(crate) append: bool,
    pub(crate) truncate: bool,
}

impl OpenMode {
    /// The book's rule: a write-only open without `O_APPEND` trims (`cat x > /dev/scullv0`), as
    /// does any open for writing with `O_TRUNC`.
    fn trims(&self) -> bool {
        (self.write_only && !self.append) || self.truncate
    }
}

/// One device.
///
/// # Invariants
///
/// `maps` counts the mappings of the device; it grows from 0 only under the `storage` lock.
#[pin_data]
pub(crate) struct ScullvDev {
    // First, so that it is dropped first: no file can reach the device after that.
    #[pin]
    misc: MiscDev,
    /// Serialises read and write calls, as the book's semaphore does; held across user copies,
    /// so never taken in mmap or fault paths.
    #[pin]
    io: Mutex<()>,
    /// The inner lock: never held across a user copy.
    #[pin]
    storage: Mutex<Storage>,
    maps: Atomic<usize>,
    index: usize,
    limit: u64,
}

impl ScullvDev {
    fn new(index: usize, limit: u64, mode: u16) -> impl PinInit<Self, Error> {
        // The registration comes last: the device can be opened as soon as it is registered.
        try_pin_init!(Self {
            io <- new_mutex!(()),
            storage <- new_mutex!(Storage::new()),
            maps: Atomic::new(0),
            index,
            limit,
            misc <- MiscDev::register(*index, mode),
        })
    }

    pub(crate) fn index(&self) -> usize {
        self.index
    }

    pub(crate) fn storage(&self) -> &Mutex<Storage> {
        &self.storage
    }

    pub(crate) fn size(&self) -> u64 {
        self.storage.lock().size()
    }

    /// Opens the device, trimming it when `mode` says so: EBUSY if it is mapped.
    pub(crate) fn open(&self, mode: OpenMode) -> Result {
        if !mode.trims() {
            return Ok(());
        }
        let _io = self.io.lock();
        let old = {
            let mut storage = self.storage.lock();
            if self.maps.load(Relaxed) > 0 {
                return Err(EBUSY);
            }
            storage.take()
        };
        // The buffers are freed here, outside both locks.
        drop(old);
        Ok(())
    }

    pub(crate) fn read(&self, pos: u64, dst: &mut IovIterDest<'_>) -> Result<usize> {
        let _io = self.io.lock();
        storage::read(&self.storage, pos, dst)
    }

    pub(crate) fn write(&self, pos: WritePos, src: &mut IovIterSource<'_>) -> Result<(u64, usize)> {
        let _io = self.io.lock();
        let fresh = current_geometry();
        storage::write(&self.storage, fresh, self.limit, pos, src, Quantum::new)
    }

    /// A new mapping: only shared ones (`MAP_SHARED`) are accepted.
    pub(crate) fn map(&self, shared: bool) -> Result {
        if !shared {
            return Err(EINVAL);
        }
        // INVARIANT: Under the storage lock, so that a trim sees either the mapping or none.
        let _storage = self.storage.lock();
        self.maps.add(1, Relaxed);
        Ok(())
    }

    /// An existing mapping was copied (fork) or split (partial munmap, mprotect).
    pub(crate) fn map_opened(&self) {
        self.maps.add(1, Relaxed);
    }

    pub(crate) fn map_closed(&self) {
        self.maps.fetch_add(usize::MAX, Relaxed);
    }
}

/// All devices of the module.
pub(crate) struct Devices(KVec<Pin<KBox<ScullvDev>>>);

impl Devices {
    pub(crate) fn get(&self, index: usize) -> Option<&ScullvDev> {
        self.0.get(index).map(|dev| &**dev)
    }
}

// The book's ioctl commands, magic 'K'.
const MAGIC: u32 = b'K' as u32;
const SCULLV_IOCRESET: u32 = _IO(MAGIC, 0);
const SCULLV_IOCSORDER: u32 = _IOW::<c_int>(MAGIC, 1);
const SCULLV_IOCTORDER: u32 = _IO(MAGIC, 2);
const SCULLV_IOCGORDER: u32 = _IOR::<c_int>(MAGIC, 3);
const SCULLV_IOCQORDER: u32 = _IO(MAGIC, 4);
const SCULLV_IOCXORDER: u32 = _IOWR::<c_int>(MAGIC, 5);
const SCULLV_IOCHORDER: u32 = _IO(MAGIC, 6);
const SCULLV_IOCSQSET: u32 = _IOW::<c_int>(MAGIC, 7);
const SCULLV_IOCTQSET: u32 = _IO(MAGIC, 8);
const SCULLV_IOCGQSET: u32 = _IOR::<c_int>(MAGIC, 9);
const SCULLV_IOCQQSET: u32 = _IO(MAGIC, 10);
const SCULLV_IOCXQSET: u32 = _IOWR::<c_int>(MAGIC, 11);
const SCULLV_IOCHQSET: u32 = _IO(MAGIC, 12);

/// Which module-wide value a command is about.
#[derive(Clone, Copy)]
enum Field {
    Order,
    Qset,
}

impl Field {
    fn of(self, g: Geometry) -> i64 {
        match self {
            Field::Order => g.order().into(),
            Field::Qset => g.qset().into(),
        }
    }

    /// `g` with this field set to `value`; EINVAL out of bounds.
    fn with(self, g: Geometry, value: i64) -> Result<Geometry> {
        match self {
            Field::Order => Geometry::new(value, g.qset().into()),
            Field::Qset => Geometry::new(g.order().into(), value),
        }
    }
}

/// What a command does: the book's S, T, G, Q, X and H.
#[derive(Clone, Copy, PartialEq)]
enum Op {
    SetPtr,
    SetValue,
    GetPtr,
    Query,
    Exchange,
    Shift,
}

/// The device ioctls. Changing anything needs `CAP_SYS_ADMIN`; a value out of bounds is EINVAL
/// and a bad pointer EFAULT, with nothing changed either way.
fn ioctl(cmd: u32, arg: usize) -> Result<isize> {
    use Field::*;
    use Op::*;
    let (field, op) = match cmd {
        SCULLV_IOCRESET => {
            if !scullv_glue::can_admin() {
                return Err(EPERM);
            }
            CURRENT.store(AT_LOAD.load(Relaxed), Relaxed);
            return Ok(0);
        }
        SCULLV_IOCSORDER => (Order, SetPtr),
        SCULLV_IOCTORDER => (Order, SetValue),
        SCULLV_IOCGORDER => (Order, GetPtr),
        SCULLV_IOCQORDER => (Order, Query),
        SCULLV_IOCXORDER => (Order, Exchange),
        SCULLV_IOCHORDER => (Order, Shift),
        SCULLV_IOCSQSET => (Qset, SetPtr),
        SCULLV_IOCTQSET => (Qset, SetValue),
        SCULLV_IOCGQSET => (Qset, GetPtr),
        SCULLV_IOCQQSET => (Qset, Query),
        SCULLV_IOCXQSET => (Qset, Exchange),
        SCULLV_IOCHQSET => (Qset, Shift),
        _ => return Err(ENOTTY),
    };
    if !matches!(op, GetPtr | Query) && !scullv_glue::can_admin() {
        return Err(EPERM);
    }
    let user = || UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<c_int>());
    let value = match op {
        SetPtr | Exchange => i64::from(user().reader().read::<c_int>()?),
        // The value is the argument itself; a 32-bit caller's is zero-extended, so a negative
        // one is out of bounds either way.
        SetValue | Shift => arg as isize as i64,
        GetPtr | Query => 0,
    };
    loop {
        let word = CURRENT.load(Relaxed);
        let current = Geometry::unpack(word);
        let old = field.of(current);
        let new = match op {
            GetPtr => {
                user().writer().write(&(old as c_int))?;
                return Ok(0);
            }
            Query => return Ok(old as isize),
            _ => field.with(current, value)?,
        };
        if op == Exchange {
            // Hand the old value back before changing anything, so that a bad pointer leaves
            // the value as it was.
            user().writer().write(&(old as c_int))?;
        }
        if CURRENT.cmpxchg(word, new.pack(), Full).is_ok() {
            return Ok(if op == Shift { old as isize } else { 0 });
        }
    }
}

/// The checked module parameters.
struct Params {
    devs: usize,
    geometry: Geometry,
    limit: u64,
    mode: u16,
}

/// Checks one parameter against its bounds, naming it in the log when it is out of them.
fn param(name: &str, value: i64, min: i64, max: i64) -> Result<i64> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        pr_err!("invalid {name}={value}: allowed range is {min}..{max}\n");
        Err(EINVAL)
    }
}

impl Params {
    fn get() -> Result<Self> {
        use module_parameters::*;
        let devs = param("scullv_devs", scullv_devs.value(), 1, DEVS_MAX)?;
        let order = param("scullv_order", scullv_order.value(), 0, ORDER_MAX.into())?;
        let qset = param("scullv_qset", scullv_qset.value(), 1, QSET_MAX.into())?;
        let limit = param("scullv_size_limit", scullv_size_limit.value(), 0, i64::MAX)?;
        let mode = param("scullv_mode", scullv_mode.value(), 0, 0o777)?;
        Ok(Self {
            devs: devs as usize,
            geometry: Geometry::new(order, qset)?,
            limit: if limit == 0 {
                scullv_glue::total_ram() / 2
            } else {
                limit as u64
            },
            mode: mode as u16,
        })
    }
}

struct ScullvModule {
    _proc: ProcEntry,
}

impl kernel::Module for ScullvModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let p = Params::get()?;
        CURRENT.store(p.geometry.pack(), Relaxed);
        AT_LOAD.store(p.geometry.pack(), Relaxed);
        let mut list = KVec::with_capacity(p.devs, GFP_KERNEL)?;
        for i in 0..p.devs {
            list.push(
                KBox::pin_init(ScullvDev::new(i, p.limit, p.mode), GFP_KERNEL)?,
                GFP_KERNEL,
            )?;
        }
        let proc = ProcEntry::new(c"scullvmem", KBox::new(Devices(list), GFP_KERNEL)?)?;
        pr_info!(
            "{} devices, order {}, qset {}, size limit {} bytes, mode {:o}\n",
            p.devs,
            p.geometry.order(),
            p.geometry.qset(),
            p.limit,
            p.mode
        );
        Ok(Self { _proc: proc })
    }
}
