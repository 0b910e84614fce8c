//! The fuzz binaries' allocator: every allocation beyond [`CAP`] fails, which aborts the run,
//! so that a reader that sizes an allocation from a crafted input is caught however much memory
//! the machine has. Shared by `shared/tests/fuzz` and `trainer/tests/fuzz.rs`.

use std::alloc::{GlobalAlloc, Layout, System};

/// Largest single allocation a reader may make on any input: a request beyond it fails (and
/// aborts the test run), where an 819 GB request from a crafted header once did the same to
/// the app.
const CAP: usize = 1 << 30;

struct Capped;

unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > CAP { std::ptr::null_mut() } else { unsafe { System.alloc(layout) } }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > CAP { std::ptr::null_mut() } else { unsafe { System.realloc(ptr, layout, new_size) } }
    }
}

#[global_allocator]
static ALLOCATOR: Capped = Capped;
