//! The few pieces libc would otherwise supply: the process entry point,
//! a heap, the panic handler, and the memory functions the compiler calls.
//!
//! Why no libc: PID 1 stays resident in every container that asks for the
//! init, and a static glibc image alone keeps about 1 MB of pages mapped
//! (its startup code, locale and stdio state). Without it the init's idle
//! footprint is its own code and data, a few dozen pages. The binary is
//! linked static and non-PIE (see build.rs of rrun), so there are no
//! relocations to apply at start and no TLS is used.

use core::fmt::{self, Write};

use linked_list_allocator::LockedHeap;

// The kernel starts us with rsp pointing at argc, then argv[], NULL,
// envp[], NULL, auxv. `entry` gets that pointer with the stack aligned to
// 16 bytes, as the System V ABI requires at a call.
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {entry}",
    "ud2",
    entry = sym entry,
);

/// # Safety
/// Called once, by `_start`, with the initial stack pointer.
unsafe extern "C" fn entry(sp: *const usize) -> ! {
    heap_init();
    // SAFETY: the kernel's initial stack holds argc followed by argc
    // argv pointers to NUL-terminated strings that live as long as the
    // process.
    let args = unsafe {
        let argc = *sp;
        let argv = sp.add(1) as *const *const core::ffi::c_char;
        (0..argc)
            .map(|i| core::ffi::CStr::from_ptr(*argv.add(i)).to_bytes())
            .collect::<alloc::vec::Vec<&'static [u8]>>()
    };
    crate::main(&args)
}

/// Heap: a fixed arena in .bss. Only the pages the allocator touches
/// become resident, so a large arena costs nothing until used; the launch
/// plan and status are a few kilobytes.
const HEAP_SIZE: usize = 16 << 20;

struct Arena(core::cell::UnsafeCell<[u8; HEAP_SIZE]>);
// SAFETY: the arena is handed to the allocator once (see `heap_init`) and
// never touched directly afterwards; the allocator serialises access.
unsafe impl Sync for Arena {}
static ARENA: Arena = Arena(core::cell::UnsafeCell::new([0; HEAP_SIZE]));

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Gives the arena to the allocator: must run before the first allocation,
/// which is why `entry` calls it first thing.
fn heap_init() {
    static DONE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
    if DONE.swap(true, core::sync::atomic::Ordering::SeqCst) {
        return;
    }
    // SAFETY: the arena is static, unused by anything else, and given to
    // the allocator exactly once (guarded above).
    unsafe { HEAP.lock().init(ARENA.0.get() as *mut u8, HEAP_SIZE) };
}

/// Writes to stderr (fd 2) with no buffering: each call is one write(2).
pub struct Stderr;

impl Write for Stderr {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        crate::sys::write_all(2, s.as_bytes()).map_err(|_| fmt::Error)
    }
}

/// A log line on stderr, which is the container's stdio (the engine's log).
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let line = alloc::format!("rrun-init: {}\n", format_args!($($arg)*));
        let _ = $crate::rt::Stderr.write_str(&line);
    }};
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    // A bug (or an exhausted heap): say so and end the container, rather
    // than leaving a PID 1 that no longer reaps or forwards anything.
    let _ = writeln!(Stderr, "rrun-init: fatal: {}", info.message());
    crate::sys::exit(255)
}

// The compiler lowers copies and comparisons to these C functions, which
// libc would provide. `rep movsb`/`rep stosb` are fast on every x86_64
// this runs on (ERMS) and, being asm, cannot be turned back into a call
// to themselves by the optimiser, as a plain loop could.

/// # Safety
/// As C's memcpy: `n` bytes valid at both, not overlapping.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract; the direction flag is clear per ABI.
    unsafe {
        core::arch::asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _,
            inout("rsi") src => _, options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// As C's memmove: `n` bytes valid at both; they may overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if n == 0 || (dst as usize).wrapping_sub(src as usize) >= n {
        // dst is below src or past its end: a forward copy never reads a
        // byte it already overwrote.
        // SAFETY: the caller's contract.
        return unsafe { memcpy(dst, src, n) };
    }
    // SAFETY: copy backwards from the last byte (direction flag set for
    // the copy and cleared again, as the ABI expects).
    unsafe {
        core::arch::asm!("std", "rep movsb", "cld", inout("rcx") n => _,
            inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
            options(nostack));
    }
    dst
}

/// # Safety
/// As C's memset: `n` bytes valid at `dst`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract.
    unsafe {
        core::arch::asm!("rep stosb", inout("rcx") n => _, inout("rdi") dst => _,
            in("al") c as u8, options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// As C's memcmp: `n` bytes valid at both.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: i < n, within both buffers by the caller's contract.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return x as i32 - y as i32;
        }
    }
    0
}

/// # Safety
/// As memcmp (only equality matters).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

/// # Safety
/// As C's strlen: a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: reads stop at the terminating NUL the caller guarantees.
    while unsafe { *s.add(n) } != 0 {
        n += 1;
    }
    n
}

/// The precompiled alloc crate carries unwinding landing pads that name
/// this. With panic=abort nothing ever starts unwinding, so it is never
/// reached; if it were, ending the process is the only safe thing to do.
#[unsafe(no_mangle)]
pub extern "C" fn _Unwind_Resume() -> ! {
    crate::sys::exit(255)
}

/// Named by the unwind tables of the precompiled core/alloc; only an
/// unwinder would call it, and none exists here (see _Unwind_Resume).
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}
