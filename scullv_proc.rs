// SPDX-License-Identifier: GPL-2.0

//! `/proc/scullvmem`: the book's listing of each device's geometry, size and buffers.
//!
//! One block a device, in the book's format:
//!
//! ```text
//! \nDevice %i: qset %i, order %i, sz %li\n
//!   item at %p, qset at %p\n          (each item)
//!     % 4i:%8p\n                      (each allocated quantum of the last item)
//! ```
//!
//! Each block is produced in one show call under the device's inner lock, so it is consistent;
//! seq_file grows its buffer until a block fits, so the listing is complete however long.

use crate::{
    current_geometry,
    scullv_glue::SeqOut,
    ScullvDev, //
};
use core::{
    ffi::c_void,
    ptr, //
};
use kernel::ffi::{
    c_int,
    c_long, //
};

/// Prints the block of one device.
pub(crate) fn show(out: &SeqOut, dev: &ScullvDev) {
    let storage = dev.storage().lock();
    // An empty device shows the geometry it will take.
    let geometry = storage.geometry().unwrap_or_else(current_geometry);
    out.device(
        dev.index() as c_int,
        geometry.qset() as c_int,
        geometry.order() as c_int,
        storage.size() as c_long,
    );
    let items = storage.items();
    for item in items {
        // An item that holds no quantum has no array yet.
        let qset = if item.quanta().is_empty() {
            ptr::null()
        } else {
            item.quanta().as_ptr().cast::<c_void>()
        };
        out.item(ptr::from_ref(item).cast(), qset);
    }
    if let Some(last) = items.last() {
        for (i, quantum) in last.quanta().iter().enumerate() {
            if let Some(quantum) = quantum {
                out.quantum(i as c_int, quantum.addr());
            }
        }
    }
}
