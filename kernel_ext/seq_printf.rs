// SPDX-License-Identifier: GPL-2.0

//! `seq_printf` with a C format checked at compile time.
//!
//! C header: [`include/linux/seq_file.h`](srctree/include/linux/seq_file.h)
//!
//! For output that must match a C format exactly: the C `%p` prints a hashed pointer as 16 hex
//! digits without `0x` (and `%8p` as a field of 8), which Rust's `{:p}` does not, and flags such
//! as `% 4i` have no Rust equivalent. A [`SeqFormat`] holds a C format and the types of its
//! arguments; built in a `const`, it fails to compile unless every conversion matches its
//! argument. Allowed: `%%`, and `%d %i %u %x %X` (with `l` for a `c_long`) and plain `%p`, with
//! flags (`-+ #0`), a width and a precision, but no `*` and no `%p` extension (`%pK` and such
//! dereference their argument; plain `%p` only hashes it).

use core::{
    ffi::c_void,
    marker::PhantomData,
    ptr, //
};
use kernel::{
    bindings,
    ffi::{
        c_char,
        c_int,
        c_long, //
    },
    prelude::*,
    seq_file::SeqFile,
    str::CStrExt, //
};

/// What a C conversion takes.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    /// An `int`.
    Int,
    /// A `long`.
    Long,
    /// A pointer, printed hashed by plain `%p`.
    Ptr,
}

mod private {
    pub(crate) trait Sealed {}
}

/// A type that a C conversion takes as it is.
pub(crate) trait CArg: private::Sealed + Copy {
    /// The conversion kind.
    const KIND: Kind;
}

impl private::Sealed for c_int {}
impl CArg for c_int {
    const KIND: Kind = Kind::Int;
}

impl private::Sealed for c_long {}
impl CArg for c_long {
    const KIND: Kind = Kind::Long;
}

impl private::Sealed for *const c_void {}
impl CArg for *const c_void {
    const KIND: Kind = Kind::Ptr;
}

/// The arguments of one `seq_printf` call: a tuple of [`CArg`]s.
pub(crate) trait CArgs: private::Sealed {
    /// The kinds, in order.
    const KINDS: &'static [Kind];

    /// Calls `seq_printf(m, fmt, ...)` with these arguments.
    ///
    /// # Safety
    ///
    /// `m` is a valid seq_file that only this thread uses for the call; `fmt` is a C format
    /// whose conversions match `KINDS` as [`matches`] checks.
    unsafe fn print(self, m: *mut bindings::seq_file, fmt: *const c_char);
}

macro_rules! impl_args {
    ($($a:ident),+) => {
        impl<$($a: CArg),+> private::Sealed for ($($a,)+) {}
        impl<$($a: CArg),+> CArgs for ($($a,)+) {
            const KINDS: &'static [Kind] = &[$($a::KIND),+];

            unsafe fn print(self, m: *mut bindings::seq_file, fmt: *const c_char) {
                #[allow(non_snake_case)]
                let ($($a,)+) = self;
                // SAFETY: As the caller promises; each argument has the C type of its conversion
                // (`int`, `long` or a pointer), and `%p` does not dereference its pointer.
                unsafe { bindings::seq_printf(m, fmt, $($a),+) };
            }
        }
    };
}

impl_args!(A);
impl_args!(A, B);
impl_args!(A, B, C);
impl_args!(A, B, C, D);

/// Whether the conversions of the C format `f` are exactly `kinds`, in order, and each is one
/// this module allows.
pub(crate) const fn matches(f: &[u8], kinds: &[Kind]) -> bool {
    let mut i = 0;
    let mut k = 0;
    while i < f.len() {
        if f[i] != b'%' {
            i += 1;
            continue;
        }
        i += 1;
        if i < f.len() && f[i] == b'%' {
            i += 1;
            continue;
        }
        while i < f.len() && matches!(f[i], b'-' | b'+' | b' ' | b'#' | b'0') {
            i += 1;
        }
        while i < f.len() && f[i].is_ascii_digit() {
            i += 1;
        }
        if i < f.len() && f[i] == b'.' {
            i += 1;
            while i < f.len() && f[i].is_ascii_digit() {
                i += 1;
            }
        }
        let long = i < f.len() && f[i] == b'l';
        if long {
            i += 1;
        }
        if i >= f.len() {
            return false;
        }
        let kind = match f[i] {
            b'd' | b'i' | b'u' | b'x' | b'X' if long => Kind::Long,
            b'd' | b'i' | b'u' | b'x' | b'X' => Kind::Int,
            b'p' if !(long || i + 1 < f.len() && f[i + 1].is_ascii_alphanumeric()) => Kind::Ptr,
            _ => return false,
        };
        if k >= kinds.len() || kinds[k] as u8 != kind as u8 {
            return false;
        }
        k += 1;
        i += 1;
    }
    k == kinds.len()
}

/// A C format for `seq_printf` whose conversions match the argument types `A`.
///
/// # Invariants
///
/// `matches(fmt, A::KINDS)`.
pub(crate) struct SeqFormat<A: CArgs> {
    fmt: &'static CStr,
    _args: PhantomData<fn(A)>,
}

impl<A: CArgs> SeqFormat<A> {
    /// Checks `fmt` against `A`; build it in a `const` to have the check at compile time.
    ///
    /// # Panics
    ///
    /// Panics (at compile time in a `const`) if the format does not match.
    pub(crate) const fn new(fmt: &'static CStr) -> Self {
        assert!(
            matches(fmt.to_bytes(), A::KINDS),
            "C format does not match its argument types"
        );
        // INVARIANT: Checked just above.
        Self {
            fmt,
            _args: PhantomData,
        }
    }

    /// Prints `args` to `m` in this format.
    pub(crate) fn print(&self, m: &SeqFile, args: A) {
        // CAST: `SeqFile` is a `#[repr(transparent)]` wrapper of `Opaque<bindings::seq_file>`.
        let m = ptr::from_ref(m).cast_mut().cast::<bindings::seq_file>();
        // SAFETY: `m` is the seq_file that `&SeqFile` stands for, which by its invariants only
        // this thread uses; the format matches `A` by the type invariant.
        unsafe { args.print(m, self.fmt.as_char_ptr()) };
    }
}

#[kunit_tests(kernel_ext_seq_printf)]
mod tests {
    use super::{
        matches,
        Kind::*, //
    };

    #[test]
    fn accepts_matching_formats() {
        assert!(matches(
            b"\nDevice %i: qset %i, order %i, sz %li\n",
            &[Int, Int, Int, Long]
        ));
        assert!(matches(b"  item at %p, qset at %p\n", &[Ptr, Ptr]));
        assert!(matches(b"    % 4i:%8p\n", &[Int, Ptr]));
        assert!(matches(b"100%% %-08.3lx %u %X%#x", &[Long, Int, Int, Int]));
        assert!(matches(b"no conversion", &[]));
        assert!(matches(b"%p\n%p", &[Ptr, Ptr]));
    }

    #[test]
    fn rejects_mismatches_and_unsafe_conversions() {
        // The wrong kind, or the wrong number of arguments.
        assert!(!matches(b"%i", &[Long]));
        assert!(!matches(b"%li", &[Int]));
        assert!(!matches(b"%p", &[Int]));
        assert!(!matches(b"%i %i", &[Int]));
        assert!(!matches(b"%i", &[Int, Int]));
        // Conversions that dereference their argument, or take more than one.
        assert!(!matches(b"%s", &[Ptr]));
        assert!(!matches(b"%pK", &[Ptr]));
        assert!(!matches(b"%pa", &[Ptr]));
        assert!(!matches(b"%p4", &[Ptr]));
        assert!(!matches(b"%n", &[Ptr]));
        assert!(!matches(b"%*d", &[Int, Int]));
        assert!(!matches(b"%.*d", &[Int, Int]));
        // Lengths other than `l`, and a format that ends inside a conversion.
        assert!(!matches(b"%lld", &[Long]));
        assert!(!matches(b"%hd", &[Int]));
        assert!(!matches(b"%zu", &[Long]));
        assert!(!matches(b"%lp", &[Ptr]));
        assert!(!matches(b"%", &[]));
        assert!(!matches(b"%08", &[Int]));
    }
}
