//! Allocator and stack misuse, caught at run time and reported the way Linux 6.1 reports it.
//! Each boot picks one misuse with a `misuse.*` parameter (as tests/fault.rs does with
//! `fault.oops`). Bad page state, SLUB's reports and vfree's warning are not fatal in Linux:
//! the kernel carries on, so those boots end with the test's own checks passing. A stack
//! overflow is fatal: the vectors find SP in the guard page below the stack, switch to the
//! CPU's overflow stack, report and panic (arch/arm64/kernel/traps.c: panic_bad_stack).
#![no_std]
#![no_main]

use arm64_mm::arch::aarch64::kernel::smp_call::smp_call_function_single;
use arm64_mm::kernel::ktest;
use arm64_mm::kernel::params::boot_command_line;
use arm64_mm::mm::gfp::GFP_KERNEL;
use arm64_mm::mm::page_alloc::page_alloc;
use arm64_mm::mm::slab_common::{kfree, kmalloc};
use arm64_mm::mm::vmalloc::api::{vfree, vmalloc};
use arm64_mm::mm::VirtAddr;
use arm64_mm::{check, qemu_test};

qemu_test!(
    r#"
run -m 256M --smp 1 --append "misuse.page_double"
expect-output BUG: Bad page state in process swapper/0  pfn:
expect-output refcount:0 mapcount:0 mapping:0000000000000000 index:0x0 pfn:0x
expect-output page dumped because: VM_BUG_ON_PAGE(page_ref_count(page) == 0)
expect-output Modules linked in:
expect-output CPU: 0 PID: 0 Comm: swapper/0
expect-output report_bad_page
expect-output  kernel_init+
run -m 256M --smp 1 --append "misuse.page_order"
expect-output BUG: Bad page state in process swapper/0  pfn:
expect-output refcount:1 mapcount:0 mapping:0000000000000000 index:0x0 pfn:0x
expect-output page dumped because: nonzero _refcount
expect-output Modules linked in:
run -m 256M --smp 1 --append "misuse.kfree_double"
expect-exit 1
expect-output ------------[ cut here ]------------
expect-output kernel BUG at src/mm/slub.rs:
expect-output Internal error: Oops - BUG: 00000000f2000800 [#1] SMP
expect-output pc : arm64_mm::kernel::bug::bug+
expect-output Kernel panic - not syncing: Oops - BUG: Fatal exception
run -m 256M --smp 1 --append "slub_debug misuse.kfree_double"
expect-output BUG kmalloc-128 (Not tainted): Object already free
expect-output Freed in tests/misuse.rs:
expect-output FIX kmalloc-128: Object at 0x
run -m 256M --smp 1 --append "misuse.kfree_page"
expect-output ------------[ cut here ]------------
expect-output WARNING: CPU: 0 PID: 0 at src/mm/slab_common.rs:
expect-output  kernel_init+
expect-output ---[ end trace 0000000000000000 ]---
expect-output object pointer: 0x
run -m 256M --smp 1 --append "slub_debug=FZP misuse.uaf"
expect-output BUG kmalloc-128 (Not tainted): Poison overwritten
expect-output . First byte 0x41 instead of 0x6b
expect-output FIX kmalloc-128: Restoring Poison
run -m 256M --smp 1 --append "slub_debug=FZ misuse.redzone"
expect-output BUG kmalloc-128 (Not tainted): Right Redzone overwritten
expect-output First byte 0x41 instead of 0xcc
expect-output FIX kmalloc-128: Restoring Right Redzone
run -m 256M --smp 1 --append "misuse.vfree_bad"
expect-output ------------[ cut here ]------------
expect-output Trying to vfree() nonexistent vm area (0xffff
expect-output WARNING: CPU: 0 PID: 0 at src/mm/vmalloc/api.rs:
expect-output  arm64_mm::mm::vmalloc::api::vfree+
expect-output  kernel_init+
expect-output ---[ end trace 0000000000000000 ]---
run -m 256M --smp 1 --append "misuse.vfree_double"
expect-output Trying to vfree() nonexistent vm area (0xffff8000
run -m 256M --smp 1 --append "misuse.stack"
expect-exit 1
expect-output Insufficient stack space to handle exception!
expect-output ESR: 0x0000000096000047 -- DABT (current EL)
expect-output Task stack:     [0x
expect-output Overflow stack: [0x
expect-output CPU: 0 PID: 0 Comm: swapper/0
expect-output  misuse::recurse+
expect-output Kernel panic - not syncing: kernel stack overflow
expect-no-output Unable to handle kernel
run -m 256M --smp 2 --append "misuse.stack_cpu1"
expect-exit 1
expect-output Insufficient stack space to handle exception!
expect-output CPU: 1 PID: 0 Comm: swapper/1
expect-output  misuse::recurse+
expect-output Kernel panic - not syncing: kernel stack overflow
expect-no-output Unable to handle kernel
"#
);

fn has(p: &str) -> bool {
    boot_command_line().split(' ').any(|a| a == p)
}

/// Recurses until the stack runs out; each frame holds 512 bytes it really uses.
#[inline(never)]
#[allow(unconditional_recursion)] // until the guard page stops it
fn recurse(depth: u64) -> u64 {
    let mut buf = [0u8; 512];
    buf[(depth % 512) as usize] = depth as u8;
    let buf = core::hint::black_box(buf);
    recurse(depth + 1) + buf[(depth % 7) as usize] as u64
}

fn overflow(_: usize) {
    core::hint::black_box(recurse(0));
}

#[no_mangle]
pub fn kernel_init() -> ! {
    let pa = page_alloc().expect("buddy");
    if has("misuse.page_double") {
        let page = pa.alloc_pages(GFP_KERNEL, 0).expect("a page");
        pa.__free_pages(page, 0);
        let before = pa.bad_pages();
        pa.__free_pages(page, 0);
        check!(
            pa.bad_pages() == before + 1,
            "the double free was reported as a bad page"
        );
    }
    if has("misuse.page_order") {
        // Four pages, each its own (split_page); the first freed as if it were all four.
        let page = pa.alloc_pages(GFP_KERNEL, 2).expect("four pages");
        pa.split_page(page, 2);
        let addr = pa.page_address(page);
        let before = pa.bad_pages();
        pa.free_pages(addr, 2);
        check!(
            pa.bad_pages() == before + 3,
            "the three live pages under a wrong-order free were reported ({})",
            pa.bad_pages() - before
        );
        for i in 1..4 {
            pa.free_pages(VirtAddr(addr.0 + i * 4096), 0);
        }
        check!(pa.bad_pages() == before + 3, "their own frees were clean");
    }
    if has("misuse.kfree_double") {
        let p = kmalloc(128, GFP_KERNEL);
        // SAFETY: deliberately unsound: the second kfree is the misuse under test.
        unsafe {
            kfree(p);
            kfree(p);
        }
        // Had the second free gone through, the object would be on the freelist twice.
        let (a, b) = (kmalloc(128, GFP_KERNEL), kmalloc(128, GFP_KERNEL));
        check!(
            !a.is_null() && a != b,
            "the object was not freed twice ({:?}, {:?})",
            a,
            b
        );
    }
    if has("misuse.kfree_page") {
        let page = pa.alloc_pages(GFP_KERNEL, 0).expect("a page");
        let addr = pa.page_address(page);
        // SAFETY: deliberately a pointer kmalloc did not return; kfree frees the page.
        unsafe { kfree(addr.0 as *const u8) };
        // As in Linux, the page went back to the buddy (the per-CPU list hands it out next).
        let again = pa.alloc_pages(GFP_KERNEL, 0).expect("a page");
        check!(
            pa.page_address(again) == addr,
            "kfree gave the page back to the page allocator"
        );
    }
    if has("misuse.uaf") {
        let p = kmalloc(128, GFP_KERNEL);
        // SAFETY: deliberately unsound: the write after kfree is the misuse under test.
        unsafe {
            kfree(p);
            core::ptr::write_volatile(p.add(8), 0x41);
        }
        // The next allocations of the cache check the poison of the free objects.
        let q = kmalloc(128, GFP_KERNEL);
        check!(!q.is_null(), "allocation goes on after the report");
        // SAFETY: `q` is live.
        unsafe { kfree(q) };
    }
    if has("misuse.redzone") {
        let p = kmalloc(128, GFP_KERNEL);
        // SAFETY: deliberately unsound: one byte past the object's end.
        unsafe {
            core::ptr::write_volatile(p.add(128), 0x41);
            kfree(p);
        }
        // The object failed its checks, so it was not freed (Linux leaves it in use).
        let q = kmalloc(128, GFP_KERNEL);
        check!(
            !q.is_null() && q != p,
            "the corrupted object is not handed out again"
        );
    }
    if has("misuse.vfree_bad") {
        let p = kmalloc(128, GFP_KERNEL);
        // SAFETY: `p` is a live 128-byte object.
        unsafe { core::ptr::write_bytes(p, 0x5a, 128) };
        vfree(p as u64);
        // SAFETY: as above; vfree must have left it alone.
        let kept = unsafe { core::slice::from_raw_parts(p, 128) }
            .iter()
            .all(|&b| b == 0x5a);
        check!(kept, "the kmalloc object is untouched");
    }
    if has("misuse.vfree_double") {
        let v = vmalloc(8192).expect("vmalloc");
        vfree(v.0);
        vfree(v.0);
        let w = vmalloc(8192).expect("vmalloc after the double vfree");
        // SAFETY: `w` is a live 8 KiB vmalloc area.
        unsafe { core::ptr::write_bytes(w.0 as *mut u8, 0xa5, 8192) };
        // SAFETY: as above.
        let ok = unsafe { core::slice::from_raw_parts(w.0 as *const u8, 8192) }
            .iter()
            .all(|&b| b == 0xa5);
        check!(ok, "vmalloc works after a double vfree");
        vfree(w.0);
    }
    if has("misuse.stack") {
        overflow(0);
    }
    if has("misuse.stack_cpu1") {
        let r = smp_call_function_single(1, overflow, 0, true);
        check!(r.is_ok(), "CPU 1 is online");
    }
    ktest::finish()
}
