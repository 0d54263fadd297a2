// SPDX-License-Identifier: GPL-2.0

//! scullv: the vmalloc-backed "scull" character device of *Linux Device Drivers*, 3rd edition,
//! chapter 8.4, in Rust.
//!
//! Each of `/dev/scullv0` .. `/dev/scullv{N-1}` is a RAM-backed, seekable file of up to
//! `scullv_size_limit` bytes (and all together of up to `scullv_total_limit`), kept in a list of items of `qset` quanta of `PAGE_SIZE << order`
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
//! void *q = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);    /* the book's mapper */
//! ```
//!
//! The ioctl values are module-wide; a device takes them when it allocates its first quantum
//! after a trim.
//!
//! Two layers. The driver (this file: the module, parameters, devices, file and mapping
//! operations; `storage.rs`: the quantum sets; `scullv_proc.rs`: the `/proc` listing) is safe
//! code, which `#[deny(unsafe_code)]` enforces. It is built on `kernel_ext/`, small generic
//! abstractions of what the 7.3 `kernel` crate lacks, written as patches to it would be; all the
//! raw kernel interfaces are there.

// The driver is safe code; the abstractions in `kernel_ext/` hold what the compiler cannot check.
#![deny(unsafe_code)]

use kernel::{
    ffi::c_int,
    fs::{
        file,
        File,
        Kiocb, //
    },
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
    mm::virt::{
        VmaMixedMap,
        VmaNew, //
    },
    page::PAGE_SIZE,
    prelude::*,
    str::CString,
    sync::{
        atomic::{
            Atomic,
            Full,
            Relaxed, //
        },
        Arc,
        ArcBorrow, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

#[allow(unsafe_code)]
mod kernel_ext;
#[deny(unsafe_code)]
mod scullv_proc;
#[deny(unsafe_code)]
mod storage;

use kernel_ext::{
    capability::{
        capable,
        CAP_SYS_ADMIN, //
    },
    kiocb::KiocbExt,
    meminfo::total_ram,
    miscdevice::{
        Registration,
        Seek,
        SeekableMiscDevice,
        MAX_LFS_FILESIZE, //
    },
    proc::ProcEntry,
    sync::new_nested_locks,
    vm_ops::{
        self,
        FaultResult,
        VmFault,
        VmOperations, //
    },
    vmalloc::WriterKey, //
};
use storage::{
    Geometry,
    LockedStorage,
    Pool,
    Quantum,
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
        scullv_total_limit: i64 {
            default: 0,
            description: "Bytes all devices together may hold; 0 for half the RAM present at load",
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

/// The quantum memory of all devices, bounded by `scullv_total_limit` (set at load).
static QUANTA: Pool = Pool::new(0);

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
    /// The mode of a file opened with `f_flags` `flags`.
    fn of(flags: u32) -> Self {
        let write = flags & file::flags::O_ACCMODE != file::flags::O_RDONLY;
        Self {
            write_only: flags & file::flags::O_ACCMODE == file::flags::O_WRONLY,
            append: flags & file::flags::O_APPEND != 0,
            truncate: write && flags & file::flags::O_TRUNC != 0,
        }
    }

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
/// `maps` counts the mappings of the device; it grows from 0 only under the inner lock.
#[pin_data]
pub(crate) struct ScullvDev {
    /// The storage under the device's two locks. The outer one is the I/O lock: it serialises
    /// read and write calls, as the book's semaphore does, and is held across user copies, so it
    /// is never taken in mmap or fault paths. The inner one is never held across a user copy.
    #[pin]
    storage: LockedStorage,
    maps: Atomic<usize>,
    index: usize,
    limit: u64,
}

impl ScullvDev {
    fn new(index: usize, limit: u64) -> impl PinInit<Self> {
        pin_init!(Self {
            storage <- new_nested_locks!(Storage::new(), WriterKey::new()),
            maps: Atomic::new(0),
            index,
            limit,
        })
    }

    pub(crate) fn index(&self) -> usize {
        self.index
    }

    pub(crate) fn storage(&self) -> &LockedStorage {
        &self.storage
    }

    pub(crate) fn size(&self) -> u64 {
        self.storage.lock_inner().size()
    }

    /// Opens the device, trimming it when `mode` says so: EBUSY if it is mapped.
    pub(crate) fn open(&self, mode: OpenMode) -> Result {
        if !mode.trims() {
            return Ok(());
        }
        let mut io = self.storage.lock_outer();
        let old = {
            let mut storage = io.lock_inner();
            if self.maps.load(Relaxed) > 0 {
                return Err(EBUSY);
            }
            storage.trim()
        };
        drop(io);
        // The buffers are freed here, outside both locks.
        drop(old);
        Ok(())
    }

    pub(crate) fn read(&self, pos: u64, dst: &mut IovIterDest<'_>) -> Result<usize> {
        storage::read(&self.storage.lock_outer(), pos, dst)
    }

    pub(crate) fn write(&self, pos: WritePos, src: &mut IovIterSource<'_>) -> Result<(u64, usize)> {
        let mut io = self.storage.lock_outer();
        storage::write(&mut io, &QUANTA, current_geometry(), self.limit, pos, src)
    }

    /// A new mapping, shared or private. A private one (`MAP_PRIVATE`) gets the same read-only
    /// page table entries of the device's pages; the first write to one makes the mm core copy
    /// it (`do_wp_page`, or `do_cow_fault` for a page not yet mapped, which calls `fault` and
    /// retries), so the device never sees the process's writes. Both kinds count as mappings.
    pub(crate) fn map(&self) -> Result {
        // INVARIANT: Under the inner lock, so that a trim sees either the mapping or none.
        let _storage = self.storage.lock_inner();
        self.maps.add(1, Relaxed);
        Ok(())
    }

    /// An existing mapping was copied (fork) or split (partial munmap, mprotect).
    pub(crate) fn map_opened(&self) {
        self.maps.add(1, Relaxed);
    }

    pub(crate) fn map_closed(&self) {
        self.maps.fetch_sub(1, Relaxed);
    }

    /// A fault in a mapping of the device: maps the faulting page and the ones around it (see
    /// [`Storage::fault_window`]), or SIGBUS at or past the size and in holes.
    fn fault(&self, fault: &VmFault<'_>) -> FaultResult {
        let Some(pos) = (fault.pgoff() as u64).checked_mul(PAGE_SIZE as u64) else {
            return FaultResult::SigBus;
        };
        // Set up by `mmap`.
        let Some(vma) = fault.vma().as_mixedmap_vma() else {
            return FaultResult::SigBus;
        };
        // The inner lock only: the I/O lock may be held by a task copying from this very mapping.
        let storage = self.storage.lock_inner();
        let Some(window) = storage.fault_window(pos) else {
            return FaultResult::SigBus;
        };
        let address = fault.address();
        match insert_page(vma, address, window.quantum, window.offset) {
            // EBUSY: another thread mapped the page first.
            Ok(()) | Err(EBUSY) => {}
            Err(e) => return e.into(),
        }
        // Fault-around: the pages near it in the quantum, below size, inside the mapping. A page
        // already mapped gives EBUSY; an error here only means later faults do the work.
        let (start, end) = (vma.start(), vma.end());
        for offset in window
            .pages
            .step_by(PAGE_SIZE)
            .filter(|&o| o != window.offset)
        {
            let Some(at) = (address + offset).checked_sub(window.offset) else {
                continue;
            };
            if (start..end).contains(&at) {
                let _ = insert_page(vma, at, window.quantum, offset);
            }
        }
        FaultResult::NoPage
    }
}

/// Maps the page at `offset` of `quantum` at `address` of `vma`. The quantum stays allocated
/// while mapped (a mapped device cannot be trimmed), and `vm_insert_page` takes its own reference
/// to the page.
fn insert_page(vma: &VmaMixedMap, address: usize, quantum: &Quantum, offset: usize) -> Result {
    let page = quantum.page(offset).ok_or(EFAULT)?;
    vma.vm_insert_page(address, &page)
}

/// All devices of the module.
pub(crate) struct Devices(KVec<Arc<ScullvDev>>);

impl Devices {
    pub(crate) fn get(&self, index: usize) -> Option<&ScullvDev> {
        self.0.get(index).map(|dev| &**dev)
    }
}

/// The file operations of the device nodes.
struct ScullvFile;

#[vtable]
impl SeekableMiscDevice for ScullvFile {
    type RegistrationData = Arc<ScullvDev>;
    type Ptr = Arc<ScullvDev>;

    fn open(dev: &Arc<ScullvDev>, file: &File) -> Result<Arc<ScullvDev>> {
        dev.open(OpenMode::of(file.flags()))?;
        Ok(dev.clone())
    }

    fn read_iter(mut kiocb: Kiocb<'_, Arc<ScullvDev>>, dst: &mut IovIterDest<'_>) -> Result<usize> {
        let dev = kiocb.file();
        let pos = u64::try_from(kiocb.ki_pos()).map_err(|_| EINVAL)?;
        let n = dev.read(pos, dst)?;
        *kiocb.ki_pos_mut() += n as i64;
        Ok(n)
    }

    fn write_iter(
        mut kiocb: Kiocb<'_, Arc<ScullvDev>>,
        src: &mut IovIterSource<'_>,
    ) -> Result<usize> {
        let dev = kiocb.file();
        let pos = if kiocb.is_append() {
            WritePos::Append
        } else {
            WritePos::At(u64::try_from(kiocb.ki_pos()).map_err(|_| EINVAL)?)
        };
        let (start, n) = dev.write(pos, src)?;
        *kiocb.ki_pos_mut() = (start + n as u64) as i64;
        Ok(n)
    }

    fn llseek(dev: ArcBorrow<'_, ScullvDev>, seek: Seek<'_>) -> Result<i64> {
        // SEEK_END (and SEEK_DATA/SEEK_HOLE) against the device's size; a negative result is
        // EINVAL.
        seek.generic_file_llseek_size(MAX_LFS_FILESIZE, dev.size() as i64)
    }

    // Without `compat_ioctl`, 32-bit callers get `compat_ptr_ioctl`: the commands' arguments are
    // ints or pointers to ints, the same for them.
    fn ioctl(_dev: ArcBorrow<'_, ScullvDev>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        ioctl(cmd, arg)
    }

    fn mmap(dev: ArcBorrow<'_, ScullvDev>, _file: &File, vma: &VmaNew) -> Result {
        dev.map()?;
        // Pages are inserted with `vm_insert_page` from the fault handler, which needs a mixed map
        // set up here, with the mmap lock held for writing.
        vma.set_mixedmap();
        vma.set_dontexpand();
        vma.set_dontdump();
        // Last: nothing fails after it.
        vm_ops::set_vm_ops::<ScullvMapping>(vma, dev.into());
        Ok(())
    }
}

/// The operations of a mapping of a device; each mapping holds a reference to its device.
struct ScullvMapping;

impl VmOperations for ScullvMapping {
    type Ptr = Arc<ScullvDev>;

    fn open(dev: ArcBorrow<'_, ScullvDev>) -> Arc<ScullvDev> {
        dev.map_opened();
        dev.into()
    }

    fn close(dev: Arc<ScullvDev>) {
        dev.map_closed();
    }

    fn fault(dev: ArcBorrow<'_, ScullvDev>, fault: &VmFault<'_>) -> FaultResult {
        dev.fault(fault)
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
            if !capable(CAP_SYS_ADMIN) {
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
    if !matches!(op, GetPtr | Query) && !capable(CAP_SYS_ADMIN) {
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
    total_limit: u64,
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
        let total = param(
            "scullv_total_limit",
            scullv_total_limit.value(),
            0,
            i64::MAX,
        )?;
        let mode = param("scullv_mode", scullv_mode.value(), 0, 0o777)?;
        // 0 means half the RAM present, as tmpfs's default `size=`.
        let or_half_ram = |v: i64| if v == 0 { total_ram() / 2 } else { v as u64 };
        Ok(Self {
            devs: devs as usize,
            geometry: Geometry::new(order, qset)?,
            limit: or_half_ram(limit),
            total_limit: or_half_ram(total),
            mode: mode as u16,
        })
    }
}

struct ScullvModule {
    // Dropped in this order: the device nodes first, so that nothing can open a device after
    // that, then the /proc entry and, with it, the devices.
    _misc: KVec<Pin<KBox<Registration<ScullvFile>>>>,
    _proc: ProcEntry<Devices>,
}

impl kernel::Module for ScullvModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // Every step that can fail comes before the first device node is registered: the
        // parameter checks, the devices, their nodes' names and memory, and the /proc entry
        // (which an open file cannot outlive: removing it waits for its readers and ends them).
        // Only the registrations themselves come after, the first of them as late as it can be:
        // from then on a process may open a node. If one fails, those made already are removed
        // again; only a process that opened one of them in that window could see it (so it is
        // with any module whose init fails after registering something).
        let p = Params::get()?;
        CURRENT.store(p.geometry.pack(), Relaxed);
        AT_LOAD.store(p.geometry.pack(), Relaxed);
        QUANTA.set_limit(p.total_limit);
        let mut devices = KVec::with_capacity(p.devs, GFP_KERNEL)?;
        let mut nodes = KVec::with_capacity(p.devs, GFP_KERNEL)?;
        for i in 0..p.devs {
            let dev = Arc::pin_init(ScullvDev::new(i, p.limit), GFP_KERNEL)?;
            let name = CString::try_from_fmt(fmt!("scullv{i}"))?;
            nodes.push(
                (name, KBox::new_uninit(GFP_KERNEL)?, dev.clone()),
                GFP_KERNEL,
            )?;
            devices.push(dev, GFP_KERNEL)?;
        }
        let mut misc = KVec::with_capacity(p.devs, GFP_KERNEL)?;
        let proc = ProcEntry::new(
            c"scullvmem",
            0o444,
            KBox::new(Devices(devices), GFP_KERNEL)?,
        )?;

        for (name, memory, dev) in nodes {
            let registration = memory.write_pin_init(Registration::register(name, p.mode, dev))?;
            // Cannot fail: the space was reserved above.
            misc.push(registration, GFP_KERNEL)?;
        }
        pr_info!(
            "{} devices, order {}, qset {}, size limit {} bytes, total limit {} bytes, mode {:o}\n",
            p.devs,
            p.geometry.order(),
            p.geometry.qset(),
            p.limit,
            p.total_limit,
            p.mode
        );
        Ok(Self {
            _misc: misc,
            _proc: proc,
        })
    }
}
