//! A bump allocator for guests: an instance lives for exactly one decision, so memory is never
//! worth returning. Allocation is a pointer bump; `realloc` of the newest block grows in place
//! (which is how `Vec` and `String` grow); `dealloc` only rewinds the newest block.
//!
//! Enabled by the default `bump-alloc` feature. The host's memory cap still bounds what a
//! policy can take: one that allocates and frees in a long loop will hit it sooner than with a
//! general-purpose allocator — turn the feature off for such a policy.

// Natively (for the unit tests) only `fit` compiles into anything.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code, unused_imports))]

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use core::ptr::null_mut;

const PAGE: usize = 64 * 1024;
/// Grow linear memory by at least this many pages at a time: fewer calls into the host.
const MIN_GROW_PAGES: usize = 2;

/// The allocator state: the next free byte and the end of the memory we own.
#[cfg(target_arch = "wasm32")]
pub struct BumpAllocator {
    next: Cell<usize>,
    end: Cell<usize>,
    exclusive: Cell<bool>,
}

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code, reason = "declaring a linker symbol")]
unsafe extern "C" {
    /// Where the linker placed the end of static data (and the stack): the heap starts here.
    static __heap_base: u8;
}

// SAFETY: a wasm32 policy instance has a single thread; nothing else can observe the cells.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code, reason = "single-threaded wasm32 guest")]
unsafe impl Sync for BumpAllocator {}

/// Where a block of `size` bytes aligned to `align` (a power of two) starts and stops when the
/// free space is `[next, end)`; `None` when it does not fit there, or when `end` is 0 (the heap
/// is not claimed yet). A mask and two compares: no division.
#[inline]
fn fit(next: usize, end: usize, size: usize, align: usize) -> Option<(usize, usize)> {
    let mask = align - 1;
    let start = next.wrapping_add(mask) & !mask;
    let stop = start.checked_add(size)?;
    (start >= next && stop <= end && stop != 0).then_some((start, stop))
}

#[cfg(target_arch = "wasm32")]
impl BumpAllocator {
    /// An allocator that claims memory on first use.
    pub const fn new() -> Self {
        Self {
            next: Cell::new(0),
            end: Cell::new(0),
            exclusive: Cell::new(false),
        }
    }

    /// Takes the whole heap, from `__heap_base`, including the free part of the initial memory.
    /// Only for modules without wasi-libc (built `no_std` with [`crate::no_std_runtime!`]):
    /// with libc in the module, its own `malloc` owns that region. Must be called before the
    /// first allocation; later calls do nothing.
    pub fn use_exclusive_heap(&self) {
        if self.end.get() == 0 {
            self.exclusive.set(true);
        }
    }

    /// Makes sure `[.., upto)` is ours, growing memory past its current end as needed.
    fn reserve(&self, upto: usize) -> bool {
        if upto <= self.end.get() {
            return true;
        }
        let missing = upto - self.end.get();
        let pages = missing.div_ceil(PAGE).max(MIN_GROW_PAGES);
        let previous = core::arch::wasm32::memory_grow::<0>(pages);
        if previous == usize::MAX {
            return false;
        }
        // Someone else (wasi-libc's own malloc) may have grown memory since: anything below
        // the previous end is theirs, so start over at the fresh pages when not contiguous.
        if previous * PAGE != self.end.get() {
            self.next.set(previous * PAGE);
        }
        self.end.set((previous + pages) * PAGE);
        true
    }

    /// The next block for `layout`: [`fit`] on the path every allocation takes, the first
    /// allocation and memory growth out of line.
    #[inline]
    fn bump(&self, layout: Layout) -> *mut u8 {
        match fit(
            self.next.get(),
            self.end.get(),
            layout.size(),
            layout.align(),
        ) {
            Some((start, stop)) => {
                self.next.set(stop);
                start as *mut u8
            }
            None => self.bump_slow(layout),
        }
    }

    #[inline(never)]
    #[cold]
    fn bump_slow(&self, layout: Layout) -> *mut u8 {
        if self.end.get() == 0 {
            let current = core::arch::wasm32::memory_size::<0>() * PAGE;
            // Staying inside the initial memory means no `memory.grow`, which would cost the
            // host two `mprotect` calls per decision.
            let heap_base = &raw const __heap_base as usize;
            let start = if self.exclusive.get() && heap_base < current {
                heap_base
            } else {
                current
            };
            self.next.set(start);
            self.end.set(current);
        }
        let start = self.next.get().next_multiple_of(layout.align());
        let Some(stop) = start.checked_add(layout.size()) else {
            return null_mut();
        };
        if !self.reserve(stop) {
            return null_mut();
        }
        // `reserve` may have moved `next` to fresh pages: recompute from there.
        let start = self.next.get().max(start).next_multiple_of(layout.align());
        let Some(stop) = start.checked_add(layout.size()) else {
            return null_mut();
        };
        if !self.reserve(stop) {
            return null_mut();
        }
        self.next.set(stop);
        start as *mut u8
    }
}

#[cfg(target_arch = "wasm32")]
impl Default for BumpAllocator {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(target_arch = "wasm32")]
// SAFETY: every block handed out is in memory this allocator grew and never handed out twice;
// the newest-block fast paths check that `ptr` is exactly the newest block.
#[allow(
    unsafe_code,
    reason = "implementing GlobalAlloc is unsafe by definition"
)]
unsafe impl GlobalAlloc for BumpAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.bump(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ptr as usize + layout.size() == self.next.get() {
            self.next.set(ptr as usize);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = ptr as usize;
        // The newest block grows (or shrinks) in place while it stays contiguous with our heap.
        if start + layout.size() == self.next.get()
            && let Some(stop) = start.checked_add(new_size)
            && (stop <= self.end.get()
                || (self.reserve(stop) && self.next.get() == start + layout.size()))
        {
            self.next.set(stop);
            return ptr;
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return null_mut();
        };
        let new = self.bump(new_layout);
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller size and do not overlap (the new
            // one starts at or after the old one's end).
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn a_block_starts_at_the_next_multiple_of_its_alignment() {
        assert_eq!(fit(100, 1000, 10, 1), Some((100, 110)));
        assert_eq!(fit(100, 1000, 10, 8), Some((104, 114)));
        assert_eq!(fit(104, 1000, 10, 8), Some((104, 114)));
        assert_eq!(fit(101, 1000, 4, 64), Some((128, 132)));
        for align in [1, 2, 4, 8, 16, 4096] {
            for next in 0..300 {
                let (start, stop) = fit(next, 1 << 20, 3, align).unwrap_or((0, 0));
                assert!(start >= next && start % align == 0 && start - next < align);
                assert_eq!(stop, start + 3);
            }
        }
    }

    #[test]
    fn a_block_that_does_not_fit_takes_the_slow_path() {
        // Exactly to the end fits; one byte more does not.
        assert_eq!(fit(100, 110, 10, 1), Some((100, 110)));
        assert_eq!(fit(100, 110, 11, 1), None);
        // Alignment padding counts.
        assert_eq!(fit(101, 110, 8, 8), None);
        // The heap is not claimed yet (`end` 0): even an empty block goes to the slow path.
        assert_eq!(fit(0, 0, 0, 1), None);
        assert_eq!(fit(0, 0, 16, 8), None);
        // Rounding up past the top of the address space, or a size that overflows.
        assert_eq!(fit(usize::MAX - 2, usize::MAX, 1, 8), None);
        assert_eq!(fit(16, usize::MAX, usize::MAX, 1), None);
    }
}
