// SPDX-License-Identifier: GPL-2.0

//! The memory the system has.
//!
//! C header: [`include/linux/mm.h`](srctree/include/linux/mm.h)

use kernel::bindings;

/// The RAM present (`totalram_pages`), in bytes.
pub(crate) fn total_ram() -> u64 {
    let mut info = bindings::sysinfo::default();
    // SAFETY: `info` is a valid `struct sysinfo` for `si_meminfo` to fill.
    unsafe { bindings::si_meminfo(&mut info) };
    info.totalram as u64 * u64::from(info.mem_unit)
}
