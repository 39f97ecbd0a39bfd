//! KFENCE (Linux 6.1's mm/kfence/), each boot checking that it reports what it must:
//! - with every allocation sampled (`kfence.sample_interval=1` and an endless
//!   `kfence.burst`), this test's kmalloc objects are KFENCE objects next to guard pages,
//!   and an out-of-bounds read and write (faulting on a guard page), a use after free
//!   (faulting on the freed object's page), a write past the object into its canary bytes
//!   (found on kfree), an invalid free and a double free are each reported in KFENCE's
//!   format, with the allocation and free stacks; each faulting access completes (KFENCE
//!   maps the page again) and the boot goes on to its end; KFENCE builds the linear map
//!   from pages even with `rodata=on` (which alone would map it with blocks);
//! - a bad `kfence.num_objects=` is refused with the bound, and the default 255 objects
//!   give Linux's line;
//! - off (the default): no pool, no line, no KFENCE object.
#![no_std]
#![no_main]

use arm64_mm::kernel::ktest;
use arm64_mm::kernel::params::boot_command_line;
use arm64_mm::mm::gfp::GFP_KERNEL;
use arm64_mm::mm::kfence::{is_kfence_address, kfence};
use arm64_mm::mm::slab_common::{kfree, kmalloc, ksize};
use arm64_mm::{check, qemu_test};
use core::sync::atomic::Ordering;

qemu_test!(
    r#"
run -m 256M --smp 2 --append "rodata=on kfence.sample_interval=1 kfence.burst=4294967295 kfence.num_objects=1023"
expect-output linear map in pages (kfence)
expect-output kfence: initialized - using 8388608 bytes for 1023 objects at 0x(____ptrval____)-0x(____ptrval____)
expect-output ok - every allocation of the test is a KFENCE object
expect-output ==================================================================
expect-output BUG: KFENCE: out-of-bounds read in kfence::oob_read+
expect-output Out-of-bounds read at 0x
expect-output  kfence::oob_read+
expect-output , size=33, cache=kmalloc-
expect-output allocated by task 0 on cpu 0 at
expect-output  kfence::test_alloc+
expect-output CPU: 0 PID: 0 Comm: swapper/0
expect-output ok - the out-of-bounds read completed
expect-output BUG: KFENCE: out-of-bounds write in kfence::oob_write+
expect-output Out-of-bounds write at 0x
expect-output ok - the out-of-bounds write completed
expect-output BUG: KFENCE: use-after-free read in kfence::uaf_read+
expect-output Use-after-free read at 0x
expect-output freed by task 0 on cpu 0 at
expect-output  kfence::use_after_free+
expect-output ok - the read after free completed
expect-output BUG: KFENCE: memory corruption in kfence::corrupt+
expect-output Corrupted memory at 0x
expect-output  0x42 . . .
expect-output BUG: KFENCE: invalid free in kfence::invalid_free+
expect-output Invalid free of 0x
expect-output BUG: KFENCE: invalid free in kfence::double_free+
expect-output ok - KFENCE counted 6 bugs
expect-output ktest: 
expect-no-output FAIL -
run -m 256M --smp 1 --append "kfence.sample_interval=100 kfence.num_objects=0"
expect-output kfence: num_objects=0 is not in 1..65535; keeping 255
expect-output Malformed early option 'kfence.num_objects'
expect-output kfence: initialized - using 2097152 bytes for 255 objects at 0x(____ptrval____)-0x(____ptrval____)
expect-output ok - KFENCE is up with 255 objects
expect-no-output FAIL -
run -m 256M --smp 1
expect-no-output kfence:
expect-no-output (kfence)
expect-output ok - with KFENCE off there is no pool and no KFENCE object
expect-no-output FAIL -
"#
);

/// Is `p` on the command line with the value `v`?
fn has(p: &str, v: &str) -> bool {
    boot_command_line()
        .split(' ')
        .any(|a| a.strip_prefix(p).and_then(|r| r.strip_prefix('=')) == Some(v))
}

/// A kmalloc'ed object of `size` bytes (Linux's kfence_test.c: test_alloc()).
#[inline(never)]
fn test_alloc(size: usize) -> usize {
    let p = kmalloc(size, GFP_KERNEL);
    check!(!p.is_null(), "kmalloc({}) failed", size);
    p as usize
}

/// An address in the guard page next to the object at `p`: before it if the object starts
/// its page, else the first byte of the next page.
fn guard_of(p: usize) -> usize {
    if p.is_multiple_of(4096) {
        p - 1
    } else {
        (p & !4095) + 4096
    }
}

#[inline(never)]
fn oob_read(p: usize) -> u8 {
    // SAFETY: deliberately out of bounds: a guard page, which KFENCE maps on the fault.
    unsafe { core::ptr::read_volatile(guard_of(p) as *const u8) }
}

#[inline(never)]
fn oob_write(p: usize) {
    // SAFETY: deliberately out of bounds (see oob_read()).
    unsafe { core::ptr::write_volatile(guard_of(p) as *mut u8, 0x5a) }
}

#[inline(never)]
fn uaf_read(p: usize) -> u8 {
    // SAFETY: deliberately after free: KFENCE protected the page, maps it on the fault.
    unsafe { core::ptr::read_volatile(p as *const u8) }
}

#[inline(never)]
fn use_after_free(size: usize) -> u8 {
    let p = test_alloc(size);
    // SAFETY: a live object.
    unsafe {
        core::ptr::write_volatile(p as *mut u8, 0x77);
        kfree(p as *const u8);
    }
    uaf_read(p)
}

#[inline(never)]
fn corrupt(p: usize, size: usize) {
    // SAFETY: deliberately one byte past the object: a canary byte of its page (the object
    // ends at least 8 bytes before its page: 33 bytes, aligned down).
    unsafe {
        core::ptr::write_volatile((p + size) as *mut u8, 0x42);
        kfree(p as *const u8);
    }
    // Not a tail call: the report's stack shows this function.
    core::hint::black_box(p);
}

#[inline(never)]
fn invalid_free(p: usize) {
    // SAFETY: deliberately a pointer inside the object: KFENCE reports and ignores it.
    unsafe { kfree((p + 1) as *const u8) }
    core::hint::black_box(p);
}

#[inline(never)]
fn double_free(p: usize) {
    // SAFETY: deliberately twice; the second is KFENCE's to report.
    unsafe {
        kfree(p as *const u8);
        kfree(p as *const u8);
    }
    core::hint::black_box(p);
}

fn every_allocation_sampled() {
    let k = kfence().expect("KFENCE is up");
    const SIZE: usize = 33;
    let mut objs: [usize; 6] = core::array::from_fn(|_| test_alloc(SIZE));
    // The write's guard page must not be the read's, which the read's report leaves mapped
    // (two neighbours can face the same guard page): one of the others has its own.
    let guard_page = |p: usize| guard_of(p) & !4095;
    let w = (1..6)
        .find(|&j| guard_page(objs[j]) != guard_page(objs[0]))
        .expect("at most one object shares a guard page with another");
    objs.swap(1, w);
    check!(
        objs.iter().all(|&p| is_kfence_address(p)) && ksize(objs[0] as *const u8) == SIZE,
        "every allocation of the test is a KFENCE object ({:x?}, ksize {})",
        objs,
        ksize(objs[0] as *const u8)
    );
    let bugs = k.counters.bugs.load(Ordering::Relaxed);
    let v = oob_read(objs[0]);
    let after = k.counters.bugs.load(Ordering::Relaxed);
    check!(
        after == bugs + 1,
        "the out-of-bounds read completed (read {:#x} from the guard page; {} bug)",
        v,
        after - bugs
    );
    oob_write(objs[1]);
    // SAFETY: the guard page KFENCE mapped again on the write's fault.
    let w = unsafe { core::ptr::read_volatile(guard_of(objs[1]) as *const u8) };
    check!(
        w == 0x5a,
        "the out-of-bounds write completed (read back {:#x})",
        w
    );
    let u = use_after_free(SIZE);
    check!(u == 0x77, "the read after free completed (read {:#x})", u);
    corrupt(objs[2], SIZE);
    invalid_free(objs[3]);
    double_free(objs[4]);
    // The objects with a report left are freed as usual.
    // SAFETY: live objects of this test.
    unsafe {
        kfree(objs[0] as *const u8);
        kfree(objs[1] as *const u8);
        kfree(objs[3] as *const u8);
        kfree(objs[5] as *const u8);
    }
    let n = k.counters.bugs.load(Ordering::Relaxed) - bugs;
    check!(n == 6, "KFENCE counted 6 bugs ({})", n);
}

#[no_mangle]
pub fn kernel_init() -> ! {
    if has("kfence.sample_interval", "1") {
        every_allocation_sampled();
    } else if has("kfence.sample_interval", "100") {
        check!(
            kfence().is_some_and(|k| k.num_objects() == 255),
            "KFENCE is up with 255 objects"
        );
    } else {
        let p = test_alloc(64);
        check!(
            kfence().is_none() && !is_kfence_address(p),
            "with KFENCE off there is no pool and no KFENCE object"
        );
        // SAFETY: this test's object.
        unsafe { kfree(p as *const u8) };
    }
    ktest::finish()
}
