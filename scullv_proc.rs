// SPDX-License-Identifier: GPL-2.0

//! `/proc/scullvmem`: the book's listing of each device's geometry, size and buffers.
//!
//! One block a device, in the book's format, printed by the C formatter so that the pointers
//! are hashed `%p` values exactly as the book prints them:
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
    kernel_ext::{
        proc::ProcRecords,
        seq_printf::SeqFormat, //
    },
    Devices,
    ScullvDev, //
};
use core::{
    ffi::c_void,
    ptr, //
};
use kernel::{
    ffi::{
        c_int,
        c_long, //
    },
    seq_file::SeqFile, //
};

const DEVICE: SeqFormat<(c_int, c_int, c_int, c_long)> =
    SeqFormat::new(c"\nDevice %i: qset %i, order %i, sz %li\n");
const ITEM: SeqFormat<(*const c_void, *const c_void)> =
    SeqFormat::new(c"  item at %p, qset at %p\n");
const QUANTUM: SeqFormat<(c_int, *const c_void)> = SeqFormat::new(c"    % 4i:%8p\n");

impl ProcRecords for Devices {
    type Record = ScullvDev;

    fn record(&self, index: usize) -> Option<&ScullvDev> {
        self.get(index)
    }

    fn show(dev: &ScullvDev, m: &SeqFile) {
        show(m, dev);
    }
}

/// Prints the block of one device.
fn show(m: &SeqFile, dev: &ScullvDev) {
    let storage = dev.storage().lock_inner();
    // An empty device shows the geometry it will take.
    let geometry = storage.geometry().unwrap_or_else(current_geometry);
    DEVICE.print(
        m,
        (
            dev.index() as c_int,
            geometry.qset() as c_int,
            geometry.order() as c_int,
            storage.size() as c_long,
        ),
    );
    let items = storage.items();
    for item in items {
        // An item that holds no quantum has no array yet.
        let qset = if item.quanta().is_empty() {
            ptr::null()
        } else {
            item.quanta().as_ptr().cast::<c_void>()
        };
        ITEM.print(m, (ptr::from_ref(item).cast(), qset));
    }
    if let Some(last) = items.last() {
        for (i, quantum) in last.quanta().iter().enumerate() {
            if let Some(quantum) = quantum {
                QUANTUM.print(m, (i as c_int, quantum.as_ptr()));
            }
        }
    }
}
