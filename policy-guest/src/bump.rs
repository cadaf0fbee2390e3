//! A bump allocator for guests: an instance lives for exactly one decision, so memory is never
//! worth returning. Allocation is a pointer bump; `realloc` of the newest block grows in place
//! (which is how `Vec` and `String` grow); `dealloc` only rewinds the newest block.
//!
//! Enabled by the default `bump-alloc` feature. The host's memory cap still bounds what a
//! policy can take: one that allocates and frees in a long loop will hit it sooner than with a
//! general-purpose allocator — turn the feature off for such a policy.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use core::ptr::null_mut;

const PAGE: usize = 64 * 1024;
/// Grow linear memory by at least this many pages at a time: fewer calls into the host.
const MIN_GROW_PAGES: usize = 2;

/// The allocator state: the next free byte and the end of the memory we own.
pub struct BumpAllocator {
    next: Cell<usize>,
    end: Cell<usize>,
    exclusive: Cell<bool>,
}

#[allow(unsafe_code, reason = "declaring a linker symbol")]
unsafe extern "C" {
    /// Where the linker placed the end of static data (and the stack): the heap starts here.
    static __heap_base: u8;
}

// SAFETY: a wasm32 policy instance has a single thread; nothing else can observe the cells.
#[allow(unsafe_code, reason = "single-threaded wasm32 guest")]
unsafe impl Sync for BumpAllocator {}

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

    fn bump(&self, layout: Layout) -> *mut u8 {
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

impl Default for BumpAllocator {
    fn default() -> Self {
        Self::new()
    }
}

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
