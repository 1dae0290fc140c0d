//! A memory bound for Jsonnet evaluation.
//!
//! Jsonnet is a full language: `std.repeat("a", 2e9)` or a string doubled in a loop asks
//! for gigabytes, and the evaluator has no limit of its own. The process's allocator counts
//! the bytes each thread holds, and a thread that set a bound with [`limit`] (the Jsonnet
//! thread does) may not hold more. Past the bound no allocation is made: cortado writes
//! "error: ... needs more than N MiB of memory" to stderr and exits with code 1 (bad input)
//! at once — a failed allocation cannot be unwound into an error value, and rendering
//! always ends before the first call that changes anything in AWS, so stopping there
//! changes nothing. Threads without a bound (every other) are only counted when they set one.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The most a Jsonnet evaluation may hold at once. A deploy's files evaluate in a few MiB.
pub(crate) const JSONNET_MAX_BYTES: usize = 1 << 30;

/// The allocator of the process: the system's, counting per thread.
pub(crate) struct Counting;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// How long a path kept for the message may be.
const NAME_BYTES: usize = 400;

thread_local! {
    /// The bound of this thread (0: none).
    static LIMIT: Cell<usize> = const { Cell::new(0) };
    /// What this thread holds since it set its bound.
    static USED: Cell<usize> = const { Cell::new(0) };
    /// What the bound is about (the file evaluated), for the message.
    static NAME: Cell<[u8; NAME_BYTES]> = const { Cell::new([0; NAME_BYTES]) };
    static NAME_LEN: Cell<usize> = const { Cell::new(0) };
}

/// Takes `size` more bytes for this thread; false when that passes its bound.
fn take(size: usize) -> bool {
    let limit = LIMIT.try_with(Cell::get).unwrap_or(0);
    if limit == 0 {
        return true;
    }
    let used = USED.try_with(Cell::get).unwrap_or(0).saturating_add(size);
    if used > limit {
        return false;
    }
    let _ = USED.try_with(|u| u.set(used));
    true
}

fn give(size: usize) {
    if LIMIT.try_with(Cell::get).unwrap_or(0) != 0 {
        let _ = USED.try_with(|u| u.set(u.get().saturating_sub(size)));
    }
}

/// Ends the process with a message, without allocating.
fn over_limit() -> ! {
    let write = |b: &[u8]| {
        // SAFETY: writing a valid buffer to the process's stderr descriptor.
        unsafe {
            libc::write(2, b.as_ptr().cast(), b.len());
        }
    };
    write(b"error: Jsonnet evaluation of ");
    let name = NAME.try_with(Cell::get).unwrap_or([0; NAME_BYTES]);
    let len = NAME_LEN.try_with(Cell::get).unwrap_or(0).min(NAME_BYTES);
    write(if len == 0 { b"a file" } else { &name[..len] });
    write(b" needs more than 1024 MiB of memory; cortado stopped before any change\n");
    write(b"  = hint: look for a runaway std.repeat, std.makeArray or recursion in the file\n");
    // SAFETY: _exit ends the process without running anything that could allocate.
    unsafe { libc::_exit(1) }
}

// SAFETY: every call is forwarded to the system allocator with the same arguments; the
// counting around it touches only this thread's const-initialised cells.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !take(layout.size()) {
            over_limit();
        }
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !take(layout.size()) {
            over_limit();
        }
        // SAFETY: forwarded as received.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        give(layout.size());
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            if !take(new_size - layout.size()) {
                over_limit();
            }
        } else {
            give(layout.size() - new_size);
        }
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// This thread's bound while the guard lives: `max` bytes held, counted from now.
pub(crate) struct Limit {
    previous: usize,
}

/// Bounds what this thread holds to `max` bytes until the guard is dropped; `what` names the
/// work in the message if the bound is passed.
pub(crate) fn limit(max: usize, what: &str) -> Limit {
    let mut name = [0u8; NAME_BYTES];
    let bytes = what.as_bytes();
    let len = bytes.len().min(NAME_BYTES);
    name[..len].copy_from_slice(&bytes[..len]);
    let _ = NAME.try_with(|n| n.set(name));
    let _ = NAME_LEN.try_with(|n| n.set(len));
    let _ = USED.try_with(|u| u.set(0));
    let previous = LIMIT.try_with(|l| l.replace(max)).unwrap_or(0);
    Limit { previous }
}

impl Drop for Limit {
    fn drop(&mut self) {
        let _ = LIMIT.try_with(|l| l.set(self.previous));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_thread_is_counted_and_others_are_not() {
        std::thread::spawn(|| {
            let _l = limit(64 << 20, "test");
            let v: Vec<u8> = Vec::with_capacity(10 << 20);
            assert!(USED.with(Cell::get) >= 10 << 20);
            drop(v);
            assert!(USED.with(Cell::get) < 1 << 20, "freed bytes are given back");
            // Within the bound: fine.
            assert!(take(1 << 20));
            // Past it: refused (the allocator would stop the process here).
            assert!(!take(100 << 20));
        })
        .join()
        .unwrap();
        // This thread has no bound.
        assert!(take(usize::MAX / 2));
    }
}
