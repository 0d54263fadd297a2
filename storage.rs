// SPDX-License-Identifier: GPL-2.0

//! The data of one scullv device: a list of items, each an array of `qset` quanta of
//! `PAGE_SIZE << order` bytes (LDD3 chapter 8.4), and the read and write algorithms on it.
//!
//! Finding the quantum for a byte offset is an index computation, never a walk: item
//! `pos / itemsize`, quantum `(pos % itemsize) / quantum`, offset `pos % quantum`.
//!
//! Locking: a device's storage sits in [`NestedLocks`]. Its outer lock is the device's I/O lock,
//! held by read and write across user copies; its own data is the [`WriterKey`] of the device's
//! quanta, so holding it is what lets a write copy into them. Its inner lock is never held across
//! a user copy, because the mmap fault path takes it with the process's mmap lock held. Either
//! lock lets a thread read the storage and both are needed to change it, so the quanta that a
//! read or write looks up under the outer lock stay in place while it copies, whatever the fault
//! path does meanwhile; a new quantum is published, and a trim detaches the data, under both.

use crate::kernel_ext::{
    iov::IovIterDestExt,
    sync::{
        NestedLocks,
        Outer, //
    },
    vmalloc::{
        self,
        Gfp,
        VmallocBuf,
        WriterKey, //
    },
};
use core::{
    num::NonZeroU64,
    ops::Deref, //
};
use kernel::{
    alloc::KVVec,
    iov::{
        IovIterDest,
        IovIterSource, //
    },
    page::PAGE_SIZE,
    prelude::*,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
};

/// One quantum: a vmalloc buffer of `PAGE_SIZE << order` bytes, which a mapping may share, and
/// its share of the total limit, given back when the quantum is freed.
pub(crate) struct Quantum {
    buf: VmallocBuf,
    _charge: Charge,
}

impl Deref for Quantum {
    type Target = VmallocBuf;

    fn deref(&self) -> &VmallocBuf {
        &self.buf
    }
}

/// The quantum memory that all devices together may hold (the total limit).
///
/// Quanta are vmalloc memory, which is neither swapped nor reclaimed: without a bound shared by
/// all devices, writers could pin the number of devices times each device's size limit.
pub(crate) struct Pool {
    used: Atomic<u64>,
    limit: Atomic<u64>,
}

impl Pool {
    /// A pool of `limit` bytes.
    pub(crate) const fn new(limit: u64) -> Self {
        Self {
            used: Atomic::new(0),
            limit: Atomic::new(limit),
        }
    }

    /// Sets the limit (at load, before any device exists).
    pub(crate) fn set_limit(&self, limit: u64) {
        self.limit.store(limit, Relaxed);
    }

    /// Bytes held by all quanta.
    #[cfg(CONFIG_KUNIT = "y")]
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Relaxed)
    }

    /// Takes `bytes` from the pool for a new quantum; `ENOSPC` if they would pass the limit.
    fn charge(&'static self, bytes: usize) -> Result<Charge> {
        let bytes = bytes as u64;
        let limit = self.limit.load(Relaxed);
        let mut used = self.used.load(Relaxed);
        loop {
            let new = used
                .checked_add(bytes)
                .filter(|&n| n <= limit)
                .ok_or(ENOSPC)?;
            match self.used.cmpxchg(used, new, Relaxed) {
                Ok(_) => return Ok(Charge { pool: self, bytes }),
                Err(now) => used = now,
            }
        }
    }
}

/// Bytes taken from a [`Pool`], given back when dropped.
struct Charge {
    pool: &'static Pool,
    bytes: u64,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.pool.used.fetch_sub(self.bytes, Relaxed);
    }
}

/// A device's storage under its two locks, the outer one holding the key to write its quanta.
pub(crate) type LockedStorage = NestedLocks<Storage, WriterKey>;

/// The outer (I/O) lock of a device held.
pub(crate) type IoGuard<'a> = Outer<'a, Storage, WriterKey>;

/// How quanta are allocated: charged to the writer's memory cgroup, failing rather than invoking
/// the OOM killer, and failing quietly.
fn quantum_gfp() -> Gfp {
    vmalloc::GFP_KERNEL
        | vmalloc::__GFP_ACCOUNT
        | vmalloc::__GFP_RETRY_MAYFAIL
        | vmalloc::__GFP_NOWARN
}

/// The largest quantum order the device accepts (4 MiB quanta with 4 KiB pages).
pub(crate) const ORDER_MAX: u32 = 10;
/// The largest number of quanta per item.
pub(crate) const QSET_MAX: u32 = 65536;

/// A device's shape: quanta of `PAGE_SIZE << order` bytes, `qset` quanta per item.
///
/// # Invariants
///
/// `order <= ORDER_MAX` and `1 <= qset <= QSET_MAX`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Geometry {
    order: u32,
    qset: u32,
}

/// Where a byte offset lives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Location {
    pub(crate) item: usize,
    pub(crate) index: usize,
    pub(crate) offset: usize,
}

impl Geometry {
    /// The book's defaults: order 4, qset 500.
    #[cfg(CONFIG_KUNIT = "y")]
    pub(crate) const DEFAULT: Geometry = Geometry {
        order: 4,
        qset: 500,
    };

    /// Checks an order and a qset against the bounds.
    pub(crate) fn new(order: i64, qset: i64) -> Result<Self> {
        if !Self::valid_order(order) || !Self::valid_qset(qset) {
            return Err(EINVAL);
        }
        // INVARIANT: Both values were checked against the bounds just above.
        Ok(Self {
            order: order as u32,
            qset: qset as u32,
        })
    }

    pub(crate) fn valid_order(order: i64) -> bool {
        (0..=i64::from(ORDER_MAX)).contains(&order)
    }

    pub(crate) fn valid_qset(qset: i64) -> bool {
        (1..=i64::from(QSET_MAX)).contains(&qset)
    }

    pub(crate) fn order(&self) -> u32 {
        self.order
    }

    pub(crate) fn qset(&self) -> u32 {
        self.qset
    }

    /// Bytes in one quantum.
    pub(crate) fn quantum(&self) -> usize {
        PAGE_SIZE << self.order
    }

    /// Bytes in one item.
    pub(crate) fn item_size(&self) -> u64 {
        self.quantum() as u64 * u64::from(self.qset)
    }

    /// Packs the geometry into one word, so that the module-wide value can live in an atomic.
    pub(crate) fn pack(&self) -> u64 {
        u64::from(self.order) | (u64::from(self.qset) << 32)
    }

    /// Inverse of [`Geometry::pack`].
    pub(crate) fn unpack(word: u64) -> Self {
        // INVARIANT: Only `pack` makes the words given here, from valid geometries.
        Self {
            order: word as u32,
            qset: (word >> 32) as u32,
        }
    }

    /// Finds the item, the quantum in it and the offset in that quantum of byte `pos`.
    ///
    /// `pos` is below the device's size limit, which is below the memory size, so the item
    /// number fits a `usize`.
    pub(crate) fn locate(&self, pos: u64) -> Location {
        // Both are at least `PAGE_SIZE` by the type invariant; as `NonZeroU64` the divisions
        // need no zero check.
        let item_size = NonZeroU64::new(self.item_size()).unwrap_or(NonZeroU64::MIN);
        let quantum = NonZeroU64::new(self.quantum() as u64).unwrap_or(NonZeroU64::MIN);
        let rest = pos % item_size;
        Location {
            item: (pos / item_size) as usize,
            index: (rest / quantum) as usize,
            offset: (rest % quantum) as usize,
        }
    }
}

/// One list item: its array of quanta, allocated with its first quantum.
pub(crate) struct Item {
    quanta: KVVec<Option<Quantum>>,
}

impl Item {
    /// The item's array of quanta; empty when the item holds none.
    pub(crate) fn quanta(&self) -> &[Option<Quantum>] {
        &self.quanta
    }
}

/// The data of one device.
///
/// # Invariants
///
/// - `geometry` is `Some` exactly when some item holds a quantum; every quantum then has that
///   geometry's size and every non-empty item array `qset` entries.
/// - `items` runs from the first item to the last one that holds a quantum.
/// - Bytes below `size` that lie in a quantum are data or zeros; so are the bytes of the page
///   that holds byte `size`, unless written through a mapping.
pub(crate) struct Storage {
    geometry: Option<Geometry>,
    items: KVVec<Item>,
    size: u64,
}

impl Storage {
    pub(crate) fn new() -> Self {
        Self {
            geometry: None,
            items: KVVec::new(),
            size: 0,
        }
    }

    /// Highest byte ever written + 1 since the last trim.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The geometry the data has, or `None` when the device holds no quantum.
    pub(crate) fn geometry(&self) -> Option<Geometry> {
        self.geometry
    }

    pub(crate) fn items(&self) -> &[Item] {
        &self.items
    }

    /// Trims the device: takes all the data away, leaving it empty; the caller drops what it
    /// returns outside the locks.
    pub(crate) fn trim(&mut self) -> Storage {
        core::mem::replace(self, Storage::new())
    }

    /// The quantum at `loc`, if allocated.
    fn quantum(&self, loc: Location) -> Option<&Quantum> {
        self.items.get(loc.item)?.quanta.get(loc.index)?.as_ref()
    }

    /// What a fault at byte `pos` of a mapping may map: the quantum that holds `pos`, the offset
    /// of `pos` in it, and the offsets of the pages around it to map in the same fault. Those are
    /// the `FAULT_AROUND`-aligned window that holds `pos`, cut to the quantum and to the page that
    /// holds the last byte below `size`. `None` at or past `size` and in holes.
    pub(crate) fn fault_window(&self, pos: u64) -> Option<FaultWindow<'_>> {
        if pos >= self.size {
            return None;
        }
        let quantum_size = self.geometry?.quantum();
        let (quantum, offset) = self.quantum_at(pos)?;
        let start = offset / FAULT_AROUND * FAULT_AROUND;
        // The bytes of this quantum below `size`: more than `offset`, as `pos < size`.
        let below_size = (self.size - (pos - offset as u64)).min(quantum_size as u64) as usize;
        let end = (start + FAULT_AROUND).min(below_size.next_multiple_of(PAGE_SIZE));
        Some(FaultWindow {
            quantum,
            offset,
            pages: start..end,
        })
    }

    fn quantum_at(&self, pos: u64) -> Option<(&Quantum, usize)> {
        let loc = self.geometry?.locate(pos);
        Some((self.quantum(loc)?, loc.offset))
    }

    /// Publishes a new quantum at `loc`; on failure nothing changes. `geometry` is the one the
    /// device has, or takes if it holds nothing yet.
    fn insert(&mut self, geometry: Geometry, loc: Location, quantum: Quantum) -> Result {
        // Every allocation comes before any change, so that a failure leaves the device as it
        // was (and `items` ends at an item that holds a quantum).
        let new_array = match self.items.get(loc.item) {
            Some(item) if !item.quanta.is_empty() => None,
            _ => {
                let qset = geometry.qset as usize;
                let mut array = KVVec::with_capacity(qset, GFP_KERNEL)?;
                for _ in 0..qset {
                    // Cannot fail: the space was reserved just above.
                    array.push(None, GFP_KERNEL)?;
                }
                Some(array)
            }
        };
        if loc.item >= self.items.len() {
            self.items
                .reserve(loc.item + 1 - self.items.len(), GFP_KERNEL)?;
            while self.items.len() <= loc.item {
                // Cannot fail: the space was reserved above.
                self.items.push(
                    Item {
                        quanta: KVVec::new(),
                    },
                    GFP_KERNEL,
                )?;
            }
        }
        let item = &mut self.items[loc.item];
        if let Some(array) = new_array {
            item.quanta = array;
        }
        item.quanta[loc.index] = Some(quantum);
        // INVARIANT: The device now holds a quantum of this geometry.
        self.geometry = Some(geometry);
        Ok(())
    }

    /// Zeroes the bytes from `size` to the end of its page, up to `end`, before `size` grows past
    /// them without a write covering them: they may hold what a mapping wrote past the end.
    fn zero_tail(&self, key: &mut WriterKey, end: u64) {
        let tail = (PAGE_SIZE - (self.size as usize % PAGE_SIZE)) % PAGE_SIZE;
        let len = (tail as u64).min(end.saturating_sub(self.size)) as usize;
        if len > 0 {
            if let Some((quantum, offset)) = self.quantum_at(self.size) {
                quantum.zero(key, offset, len);
            }
        }
    }
}

/// The most bytes one fault maps, as the mm core's fault-around for files does by default.
pub(crate) const FAULT_AROUND: usize = 16 * PAGE_SIZE;

/// See [`Storage::fault_window`].
pub(crate) struct FaultWindow<'a> {
    pub(crate) quantum: &'a Quantum,
    /// The offset in the quantum of the faulting byte.
    pub(crate) offset: usize,
    /// The bytes of the quantum to map, whole pages, the faulting one among them.
    pub(crate) pages: core::ops::Range<usize>,
}

/// Where written bytes come from: a user I/O vector, or a kernel buffer in tests.
pub(crate) trait IterSource {
    /// Bytes left.
    fn len(&self) -> usize;
    /// Copies up to `len` bytes into `quantum` at `offset`; returns how many it copied.
    fn copy_to_quantum(
        &mut self,
        quantum: &Quantum,
        key: &mut WriterKey,
        offset: usize,
        len: usize,
    ) -> usize;
    /// Allocates a quantum's buffer of `size` bytes tied to `key`, copies up to `len` bytes into
    /// it at `offset` and zeroes the rest; returns it and how many bytes it copied.
    fn new_quantum(
        &mut self,
        key: &WriterKey,
        size: usize,
        offset: usize,
        len: usize,
    ) -> Result<(VmallocBuf, usize)>;
}

/// Where read bytes go: a user I/O vector, or a kernel buffer in tests.
pub(crate) trait IterDest {
    /// Room left.
    fn len(&self) -> usize;
    /// Copies up to `len` bytes from `quantum` at `offset`; returns how many it copied.
    fn copy_from_quantum(&mut self, quantum: &Quantum, offset: usize, len: usize) -> usize;
    /// Stores up to `len` zero bytes; returns how many it stored.
    fn zero(&mut self, len: usize) -> usize;
}

impl IterSource for IovIterSource<'_> {
    fn len(&self) -> usize {
        IovIterSource::len(self)
    }

    fn copy_to_quantum(
        &mut self,
        quantum: &Quantum,
        key: &mut WriterKey,
        offset: usize,
        len: usize,
    ) -> usize {
        quantum.copy_from_iter(key, offset, len, self)
    }

    fn new_quantum(
        &mut self,
        key: &WriterKey,
        size: usize,
        offset: usize,
        len: usize,
    ) -> Result<(VmallocBuf, usize)> {
        VmallocBuf::new_from_iter(size, quantum_gfp(), key, offset, len, self)
    }
}

impl IterDest for IovIterDest<'_> {
    fn len(&self) -> usize {
        IovIterDest::len(self)
    }

    fn copy_from_quantum(&mut self, quantum: &Quantum, offset: usize, len: usize) -> usize {
        quantum.copy_to_iter(offset, len, self)
    }

    fn zero(&mut self, len: usize) -> usize {
        IovIterDestExt::zero(self, len)
    }
}

/// A kernel buffer as a write source (for the KUnit cases); a failing one cannot allocate.
#[cfg(CONFIG_KUNIT = "y")]
pub(crate) struct SliceSource<'a> {
    data: &'a [u8],
    failing: bool,
}

#[cfg(CONFIG_KUNIT = "y")]
impl<'a> SliceSource<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            failing: false,
        }
    }

    /// A source whose every quantum allocation fails with `ENOMEM`.
    pub(crate) fn failing(data: &'a [u8]) -> Self {
        Self {
            data,
            failing: true,
        }
    }
}

#[cfg(CONFIG_KUNIT = "y")]
impl IterSource for SliceSource<'_> {
    fn len(&self) -> usize {
        self.data.len()
    }

    fn copy_to_quantum(
        &mut self,
        quantum: &Quantum,
        key: &mut WriterKey,
        offset: usize,
        len: usize,
    ) -> usize {
        let n = quantum.write_slice(key, offset, &self.data[..len.min(self.data.len())]);
        self.data = &self.data[n..];
        n
    }

    fn new_quantum(
        &mut self,
        key: &WriterKey,
        size: usize,
        offset: usize,
        len: usize,
    ) -> Result<(VmallocBuf, usize)> {
        if self.failing {
            return Err(ENOMEM);
        }
        let data = &self.data[..len.min(self.data.len())];
        let (quantum, n) = VmallocBuf::new_from_slice(size, quantum_gfp(), key, offset, data)?;
        self.data = &self.data[n..];
        Ok((quantum, n))
    }
}

/// A kernel buffer as a read destination (for the KUnit cases).
#[cfg(CONFIG_KUNIT = "y")]
pub(crate) struct SliceDest<'a>(&'a mut [u8]);

#[cfg(CONFIG_KUNIT = "y")]
impl<'a> SliceDest<'a> {
    pub(crate) fn new(data: &'a mut [u8]) -> Self {
        Self(data)
    }
}

#[cfg(CONFIG_KUNIT = "y")]
impl IterDest for SliceDest<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn copy_from_quantum(&mut self, quantum: &Quantum, offset: usize, len: usize) -> usize {
        let len = len.min(self.0.len());
        let n = quantum.read_slice(offset, &mut self.0[..len]);
        self.0 = &mut core::mem::take(&mut self.0)[n..];
        n
    }

    fn zero(&mut self, len: usize) -> usize {
        let len = len.min(self.0.len());
        self.0[..len].fill(0);
        self.0 = &mut core::mem::take(&mut self.0)[len..];
        len
    }
}

/// Where a write goes: at a position, or at the end of the data.
#[derive(Clone, Copy)]
pub(crate) enum WritePos {
    At(u64),
    Append,
}

/// Writes `src` at `pos`, allocating missing quanta from `pool`, with the device's I/O lock `io`
/// held. `fresh` is the geometry an empty device takes; `limit` caps `pos + count`.
///
/// Returns where the write started and how many bytes it stored. If an allocation, the pool or
/// the user copy fails part-way, the bytes stored until then count; if none were, the error is
/// returned (`ENOSPC` when the pool is used up). Data already stored is never altered by a
/// failure.
pub(crate) fn write(
    io: &mut IoGuard<'_>,
    pool: &'static Pool,
    fresh: Geometry,
    limit: u64,
    pos: WritePos,
    src: &mut impl IterSource,
) -> Result<(u64, usize)> {
    let (geometry, size) = {
        let s = io.data();
        (s.geometry.unwrap_or(fresh), s.size)
    };
    let pos = match pos {
        WritePos::At(pos) => pos,
        WritePos::Append => size,
    };
    if src.len() == 0 {
        return Ok((pos, 0));
    }
    if pos >= limit {
        return Err(ENOSPC);
    }
    let count = (src.len() as u64).min(limit - pos) as usize;
    if pos > size {
        let (s, key) = io.split();
        s.zero_tail(key, pos);
    }

    let quantum_size = geometry.quantum();
    let mut done = 0;
    let mut error = None;
    while done < count {
        let loc = geometry.locate(pos + done as u64);
        let len = (quantum_size - loc.offset).min(count - done);
        let (s, key) = io.split();
        // The user copy runs with the I/O lock held, which keeps the quantum in place, and without
        // the inner lock, which a fault on a mapping of this device (the user buffer) takes.
        let copied = match s.quantum(loc) {
            Some(quantum) => src.copy_to_quantum(quantum, key, loc.offset, len),
            None => match fill_new_quantum(io, pool, geometry, loc, len, src) {
                Ok(copied) => copied,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            },
        };
        done += copied;
        if copied < len {
            error = Some(EFAULT);
            break;
        }
    }

    if done == 0 {
        return Err(error.unwrap_or(EFAULT));
    }
    let mut s = io.lock_inner();
    s.size = s.size.max(pos + done as u64);
    Ok((pos, done))
}

/// Allocates the quantum at `loc`, copies up to `len` bytes into it at `loc.offset` (zeroing the
/// rest) and publishes it. Returns the bytes stored.
fn fill_new_quantum(
    io: &mut IoGuard<'_>,
    pool: &'static Pool,
    geometry: Geometry,
    loc: Location,
    len: usize,
    src: &mut impl IterSource,
) -> Result<usize> {
    let size = geometry.quantum();
    // Charged first: a write beyond the total limit allocates nothing.
    let charge = pool.charge(size)?;
    let (buf, copied) = src.new_quantum(io.split().1, size, loc.offset, len)?;
    if copied == 0 {
        return Err(EFAULT);
    }
    let quantum = Quantum {
        buf,
        _charge: charge,
    };
    io.lock_inner().insert(geometry, loc, quantum)?;
    Ok(copied)
}

/// Reads from `pos` into `dst`, up to the end of the data, with the device's I/O lock `io` held.
/// Holes read as zeros. Returns the bytes moved, or `EFAULT` if a fault stopped the first one.
pub(crate) fn read(io: &IoGuard<'_>, pos: u64, dst: &mut impl IterDest) -> Result<usize> {
    let s = io.data();
    let Some(geometry) = s.geometry else {
        return Ok(0);
    };
    if pos >= s.size || dst.len() == 0 {
        return Ok(0);
    }
    let count = (dst.len() as u64).min(s.size - pos) as usize;
    let mut done = 0;
    while done < count {
        let loc = geometry.locate(pos + done as u64);
        let len = (geometry.quantum() - loc.offset).min(count - done);
        let copied = match s.quantum(loc) {
            Some(quantum) => dst.copy_from_quantum(quantum, loc.offset, len),
            None => dst.zero(len),
        };
        done += copied;
        if copied < len {
            break;
        }
    }
    if done == 0 {
        return Err(EFAULT);
    }
    Ok(done)
}

#[kunit_tests(scullv_storage)]
mod tests {
    use super::*;
    use crate::kernel_ext::sync::new_nested_locks;

    fn geometries() -> [Geometry; 4] {
        [
            Geometry::DEFAULT,
            Geometry { order: 0, qset: 1 },
            Geometry { order: 0, qset: 3 },
            Geometry { order: 2, qset: 7 },
        ]
    }

    fn new_storage() -> Result<Pin<KBox<LockedStorage>>> {
        KBox::pin_init(
            new_nested_locks!(Storage::new(), WriterKey::new()),
            GFP_KERNEL,
        )
    }

    fn write_to(
        s: &LockedStorage,
        g: Geometry,
        limit: u64,
        pos: WritePos,
        src: &mut impl IterSource,
    ) -> Result<(u64, usize)> {
        write(&mut s.lock_outer(), &UNLIMITED, g, limit, pos, src)
    }

    /// The pool of the cases that do not test the total limit.
    static UNLIMITED: Pool = Pool::new(u64::MAX);

    fn put(s: &LockedStorage, g: Geometry, pos: u64, data: &[u8]) -> Result<usize> {
        let mut src = SliceSource::new(data);
        write_to(s, g, u64::MAX, WritePos::At(pos), &mut src).map(|r| r.1)
    }

    fn get(s: &LockedStorage, pos: u64, out: &mut [u8]) -> Result<usize> {
        let mut dst = SliceDest::new(out);
        read(&s.lock_outer(), pos, &mut dst)
    }

    fn pattern(n: usize, seed: u8) -> Result<KVVec<u8>> {
        let mut v = KVVec::with_capacity(n, GFP_KERNEL)?;
        for i in 0..n {
            v.push((i as u8).wrapping_mul(31).wrapping_add(seed), GFP_KERNEL)?;
        }
        Ok(v)
    }

    #[test]
    fn locate_every_geometry() {
        for order in [0, 1, 4, ORDER_MAX] {
            for qset in [1, 2, 500, QSET_MAX] {
                let g = Geometry::new(order.into(), qset.into()).unwrap();
                let q = g.quantum() as u64;
                let item = g.item_size();
                assert_eq!(item, q * u64::from(qset));
                for pos in [
                    0,
                    1,
                    q - 1,
                    q,
                    q + 1,
                    item - 1,
                    item,
                    item + q + 5,
                    7 * item + 3,
                ] {
                    let loc = g.locate(pos);
                    let back = loc.item as u64 * item + loc.index as u64 * q + loc.offset as u64;
                    assert_eq!(back, pos);
                    assert!((loc.index as u64) < u64::from(qset));
                    assert!((loc.offset as u64) < q);
                }
                assert_eq!(g.locate(item).item, 1);
                assert_eq!(g.locate(item - 1).index, qset as usize - 1);
            }
        }
    }

    #[test]
    fn geometry_bounds() {
        assert!(Geometry::new(-1, 500).is_err());
        assert!(Geometry::new(i64::from(ORDER_MAX) + 1, 500).is_err());
        assert!(Geometry::new(4, 0).is_err());
        assert!(Geometry::new(4, i64::from(QSET_MAX) + 1).is_err());
        assert!(Geometry::new(0, 1).is_ok());
        let g = Geometry::new(i64::from(ORDER_MAX), i64::from(QSET_MAX)).unwrap();
        assert_eq!(Geometry::unpack(g.pack()), g);
    }

    #[test]
    fn write_read_across_boundaries() {
        for g in geometries() {
            let s = new_storage().unwrap();
            let q = g.quantum();
            // Start just before a quantum boundary and run across an item boundary.
            let pos = 2 * g.item_size() - q as u64 - 3;
            let data = pattern(2 * q + 10, 7).unwrap();
            assert_eq!(put(&s, g, pos, &data), Ok(data.len()));
            assert_eq!(s.lock_inner().size(), pos + data.len() as u64);
            let mut back = KVVec::from_elem(0u8, data.len(), GFP_KERNEL).unwrap();
            assert_eq!(get(&s, pos, &mut back), Ok(data.len()));
            assert!(back[..] == data[..]);
            // Items run from the first to the last that holds a quantum.
            let last = g.locate(pos + data.len() as u64 - 1).item;
            assert_eq!(s.lock_inner().items().len(), last + 1);
        }
    }

    #[test]
    fn holes_read_as_zeros_and_eof() {
        for g in geometries() {
            let s = new_storage().unwrap();
            let far = 3 * g.item_size() + 5;
            assert_eq!(put(&s, g, far, b"xyz"), Ok(3));
            let mut buf = [0xffu8; 64];
            assert_eq!(get(&s, 100, &mut buf), Ok(64));
            assert!(buf.iter().all(|&b| b == 0));
            assert_eq!(get(&s, far, &mut buf), Ok(3));
            assert_eq!(&buf[..3], b"xyz");
            assert_eq!(get(&s, far + 3, &mut buf), Ok(0));
            assert_eq!(get(&s, far + 1000, &mut buf), Ok(0));
            // The new quantum is zero around the written bytes.
            assert_eq!(put(&s, g, far + 10, b"a"), Ok(1));
            assert_eq!(get(&s, far, &mut buf), Ok(11));
            assert_eq!(&buf[..11], b"xyz\0\0\0\0\0\0\0a");
            // Only the last item holds quanta, but items 0..3 exist.
            let guard = s.lock_inner();
            assert_eq!(guard.items().len(), g.locate(far).item + 1);
            assert!(guard.items()[0].quanta().is_empty());
        }
    }

    #[test]
    fn trim_frees_and_takes_new_geometry() {
        let s = new_storage().unwrap();
        assert_eq!(put(&s, Geometry::DEFAULT, 0, b"hello"), Ok(5));
        assert_eq!(s.lock_inner().geometry(), Some(Geometry::DEFAULT));
        let old = s.lock_outer().lock_inner().trim();
        drop(old);
        assert_eq!(s.lock_inner().size(), 0);
        assert_eq!(s.lock_inner().geometry(), None);
        assert!(s.lock_inner().items().is_empty());
        let small = Geometry { order: 0, qset: 1 };
        assert_eq!(put(&s, small, 5000, b"x"), Ok(1));
        assert_eq!(s.lock_inner().geometry(), Some(small));
        assert_eq!(s.lock_inner().items().len(), 2);
        // A device holding data keeps its geometry whatever an empty one would take.
        assert_eq!(put(&s, Geometry::DEFAULT, 9000, b"y"), Ok(1));
        assert_eq!(s.lock_inner().geometry(), Some(small));
        assert_eq!(s.lock_inner().items().len(), 3);
    }

    #[test]
    fn allocation_failure_changes_nothing() {
        for g in geometries() {
            let s = new_storage().unwrap();
            let q = g.quantum();
            let old = pattern(q + 100, 1).unwrap();
            assert_eq!(put(&s, g, 0, &old), Ok(old.len()));
            let size = s.lock_inner().size();
            // Overwrite from the middle of quantum 0 into two new quanta; the first new one
            // fails: only the bytes in the existing quanta are stored.
            let new = pattern(3 * q, 9).unwrap();
            let mut src = SliceSource::failing(&new);
            let r = write_to(&s, g, u64::MAX, WritePos::At(10), &mut src);
            assert_eq!(r, Ok((10, 2 * q - 10)));
            let mut back = KVVec::from_elem(0u8, 2 * q, GFP_KERNEL).unwrap();
            assert_eq!(get(&s, 0, &mut back), Ok(2 * q));
            assert!(back[..10] == old[..10]);
            assert!(back[10..2 * q] == new[..2 * q - 10]);
            assert_eq!(s.lock_inner().size(), size.max(2 * q as u64));
            // A write that can store nothing fails whole and changes nothing.
            let mut src = SliceSource::failing(&new);
            let far = 5 * g.item_size();
            let r = write_to(&s, g, u64::MAX, WritePos::At(far), &mut src);
            assert_eq!(r, Err(ENOMEM));
            assert_eq!(s.lock_inner().size(), size.max(2 * q as u64));
            assert_eq!(
                s.lock_inner().items().len(),
                g.locate(2 * q as u64 - 1).item + 1
            );
        }
    }

    #[test]
    fn fault_window_stays_in_quantum_below_size() {
        let page = PAGE_SIZE;
        let window = |s: &LockedStorage, pos: usize| {
            let s = s.lock_inner();
            s.fault_window(pos as u64)
                .map(|w| (w.offset, w.pages.start / page, w.pages.end / page))
        };
        // Order 6: quanta of 64 pages, four fault-around windows each.
        let g = Geometry { order: 6, qset: 2 };
        let q = g.quantum();
        let s = new_storage().unwrap();
        let data = pattern(q + 20 * page + 100, 3).unwrap();
        assert_eq!(put(&s, g, 0, &data), Ok(data.len()));
        assert_eq!(window(&s, 0), Some((0, 0, 16)));
        assert_eq!(window(&s, 17 * page), Some((17 * page, 16, 32)));
        assert_eq!(window(&s, q - page), Some((q - page, 48, 64)));
        // The last window stops at the page that holds the last byte.
        assert_eq!(window(&s, q + 17 * page), Some((17 * page, 16, 21)));
        assert_eq!(window(&s, q + 20 * page), Some((20 * page, 16, 21)));
        assert_eq!(window(&s, q + 21 * page), None);
        // Quantum 2 is a hole once quantum 3 holds data; quantum 1 then maps whole windows.
        assert_eq!(put(&s, g, 3 * q as u64 + 5, b"x"), Ok(1));
        assert_eq!(window(&s, 2 * q), None);
        assert_eq!(window(&s, 3 * q - page), None);
        assert_eq!(window(&s, q + 17 * page), Some((17 * page, 16, 32)));
        assert_eq!(window(&s, 3 * q), Some((0, 0, 1)));
        // Quanta of at most a window (orders 0 to 4): the window is the quantum.
        for g in geometries() {
            let s = new_storage().unwrap();
            let q = g.quantum();
            assert_eq!(put(&s, g, 0, &pattern(2 * q, 5).unwrap()), Ok(2 * q));
            let pages = q / page;
            assert_eq!(window(&s, q), Some((0, 0, pages)));
            assert_eq!(window(&s, 2 * q - page), Some((q - page, 0, pages)));
            assert_eq!(window(&s, 2 * q), None);
        }
    }

    #[test]
    fn limit_and_append() {
        let g = Geometry::DEFAULT;
        let s = new_storage().unwrap();
        let data = [1u8; 100];
        let mut src = SliceSource::new(&data);
        let r = write_to(&s, g, 150, WritePos::At(100), &mut src);
        assert_eq!(r, Ok((100, 50)));
        let mut src = SliceSource::new(&data);
        let r = write_to(&s, g, 150, WritePos::At(150), &mut src);
        assert_eq!(r, Err(ENOSPC));
        let mut src = SliceSource::new(&data[..10]);
        let r = write_to(&s, g, 1000, WritePos::Append, &mut src);
        assert_eq!(r, Ok((150, 10)));
        assert_eq!(s.lock_inner().size(), 160);
    }

    #[test]
    fn total_limit_shared_and_given_back() {
        // Three quanta of one page for two devices together.
        static POOL: Pool = Pool::new(3 * PAGE_SIZE as u64);
        let g = Geometry { order: 0, qset: 2 };
        let page = PAGE_SIZE;
        let put_in = |s: &LockedStorage, pos: u64, data: &[u8]| {
            let mut src = SliceSource::new(data);
            write(
                &mut s.lock_outer(),
                &POOL,
                g,
                u64::MAX,
                WritePos::At(pos),
                &mut src,
            )
        };
        let (a, b) = (new_storage().unwrap(), new_storage().unwrap());
        let data = pattern(5 * page, 4).unwrap();
        assert_eq!(put_in(&a, 0, &data[..2 * page]), Ok((0, 2 * page)));
        // Room for one more quantum: a short count, then ENOSPC with nothing stored.
        assert_eq!(put_in(&b, 10, &data), Ok((10, page - 10)));
        assert_eq!(put_in(&b, page as u64, &data), Err(ENOSPC));
        assert_eq!(b.lock_inner().size(), page as u64);
        assert_eq!(POOL.used(), 3 * page as u64);
        // Writes into quanta already held need nothing from the pool.
        assert_eq!(put_in(&a, 5, &data[..page]), Ok((5, page)));
        // A trim gives its quanta back at once.
        drop(a.lock_outer().lock_inner().trim());
        assert_eq!(POOL.used(), page as u64);
        assert_eq!(put_in(&b, page as u64, &data), Ok((page as u64, 2 * page)));
        let mut back = KVVec::from_elem(0u8, 3 * page, GFP_KERNEL).unwrap();
        assert_eq!(get(&b, 0, &mut back), Ok(3 * page));
        assert!(back[10..page] == data[..page - 10]);
        assert!(back[page..] == data[..2 * page]);
        drop(b.lock_outer().lock_inner().trim());
        assert_eq!(POOL.used(), 0);
    }
}
