//! [`SharedSlice`]: the one way the threaded sweep's workers write a buffer at once. Its
//! fields are private to this module, so all access goes through its documented `unsafe`
//! accessors.

use std::marker::PhantomData;
use std::ops::Range;

/// A raw view of a slice that several workers write at disjoint indices during one
/// evaluation.
///
/// Invariants (what Miri would check): it is made from a `&'a mut [f64]` (the `'a` in the
/// type), so during `'a` the slice is accessed only through copies of this view, and
/// `pointer .. pointer + len` is that slice. Every accessor is `unsafe`: its caller promises
/// that no two threads access one index at the same time unless both only read; the
/// executor's schedules (`Plan::deferrals`, `Plan::block_schedule`, the partition of the
/// chunks) establish it, and `Plan::check_disjoint_writes` checks it in debug builds.
#[derive(Clone, Copy)]
pub(super) struct SharedSlice<'a> {
    pointer: *mut f64,
    len: usize,
    borrow: PhantomData<&'a mut [f64]>,
}

// SAFETY: the view stands for a `&'a mut [f64]`, which is `Send` and `Sync`; all access goes
// through the `unsafe` accessors, whose callers guarantee disjoint access across threads.
unsafe impl Send for SharedSlice<'_> {}
// SAFETY: as for `Send` above.
unsafe impl Sync for SharedSlice<'_> {}

impl<'a> SharedSlice<'a> {
    pub(super) fn new(slice: &'a mut [f64]) -> SharedSlice<'a> {
        SharedSlice {
            pointer: slice.as_mut_ptr(),
            len: slice.len(),
            borrow: PhantomData,
        }
    }

    /// The slice's length.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Entry `i` (the scatter's hot path: bounds-checked in debug builds only).
    ///
    /// # Safety
    /// `i < len`, and while the reference lives no other thread (nor another reference from
    /// this view) accesses index `i`.
    #[allow(clippy::mut_from_ref)]
    #[inline(always)]
    pub(super) unsafe fn get(&self, i: usize) -> &mut f64 {
        debug_assert!(i < self.len);
        // SAFETY: `i < len` (the contract), so the pointer stays in the slice made in `new`,
        // alive for `'a`; exclusive access to index `i` is the contract.
        unsafe { &mut *self.pointer.add(i) }
    }

    /// The entries `range` (bounds-checked: one comparison per run).
    ///
    /// # Safety
    /// While the slice lives, no other thread (nor another reference from this view)
    /// accesses these indices.
    ///
    /// # Panics
    /// If `range` is not within `0..len`.
    #[allow(clippy::mut_from_ref)]
    #[inline(always)]
    pub(super) unsafe fn range(&self, range: Range<usize>) -> &mut [f64] {
        assert!(range.start <= range.end && range.end <= self.len);
        // SAFETY: in bounds (asserted), in the slice made in `new`, alive for `'a`;
        // exclusive access to these indices is the contract.
        unsafe { std::slice::from_raw_parts_mut(self.pointer.add(range.start), range.len()) }
    }

    /// The entries `range`, read-only.
    ///
    /// # Safety
    /// While the slice lives, no thread writes these indices.
    ///
    /// # Panics
    /// If `range` is not within `0..len`.
    #[inline(always)]
    pub(super) unsafe fn read(&self, range: Range<usize>) -> &[f64] {
        assert!(range.start <= range.end && range.end <= self.len);
        // SAFETY: in bounds (asserted), in the slice made in `new`, alive for `'a`; nobody
        // writes them meanwhile (the contract).
        unsafe { std::slice::from_raw_parts(self.pointer.add(range.start), range.len()) }
    }
}
