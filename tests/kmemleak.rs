//! kmemleak (Linux 6.1's mm/kmemleak.c) in the kernel: with `kmemleak=on` the boot's own
//! allocations hold no false positives, an object this test leaks on purpose (kmalloc, a
//! kmalloc_large block, a vmalloc area) is reported in `/sys/kernel/debug/kmemleak`'s format
//! with this test's function in its backtrace, and objects still referenced — from a static,
//! from a local kept alive on the stack, from another tracked object — are not, until the
//! last reference goes (a chain static → A → B: B is reported once A's pointer is cleared,
//! A is not). Off (the default), kmemleak tracks nothing.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use arm64_mm::kernel::ktest;
use arm64_mm::kernel::params::boot_command_line;
use arm64_mm::mm::gfp::GFP_KERNEL;
use arm64_mm::mm::kmemleak::{kmemleak_enabled, kmemleak_find, kmemleak_scan, kmemleak_show};
use arm64_mm::mm::slab_common::kmalloc;
use arm64_mm::mm::vmalloc::api::vmalloc;
use arm64_mm::{check, pr_info, qemu_test};

qemu_test!(
    r#"
run -m 512M --smp 2 --append "kmemleak=on kmemleak_min_age=0 mm_reports=kmemleak"
expect-output kmemleak: Kernel memory leak detector initialized (mem pool available: 
expect-output mm: kmemleak
expect-output mm: kmemleak: scanned 
expect-output ok - the boot's own allocations hold no suspected leak
expect-output new suspected memory leaks (see /sys/kernel/debug/kmemleak)
expect-output unreferenced object 0x
expect-output   comm "swapper/0", pid 0, jiffies 
expect-output   hex dump (first 32 bytes):
expect-output     6c 65 61 6b 65 64 00 00 00 00 00 00 00 00 00 00  leaked..........
expect-output   backtrace:
expect-output kmemleak::leak_kmalloc+
expect-output ok - the leaked kmalloc object is reported, with its allocation stack
expect-output ok - the leaked kmalloc_large block is reported
expect-output ok - the leaked vmalloc area is reported
expect-output ok - objects referenced from a static, a stack and an object are not reported
expect-output ok - B is reported once A no longer points to it, A is not
expect-output ktest: 
expect-no-output FAIL -
run -m 2G --smp 4 --numa 2 --append "kmemleak=on kmemleak_min_age=0"
expect-output ok - the boot's own allocations hold no suspected leak
expect-output ok - the leaked kmalloc object is reported, with its allocation stack
expect-output ok - objects referenced from a static, a stack and an object are not reported
expect-output ok - B is reported once A no longer points to it, A is not
expect-no-output FAIL -
run -m 256M --smp 1
expect-no-output kmemleak:
expect-output ok - kmemleak off: no pool, no scan
"#
);

/// Is `p` on the command line?
fn has(p: &str) -> bool {
    boot_command_line().split(' ').any(|a| a == p)
}

/// The mask the test stores addresses under, so that no word it keeps is a pointer.
const HIDE: u64 = 0x5a5a_5a5a_5a5a_5a5a;

/// A kmalloc'ed object, filled with a marker, whose address is kept only hidden.
#[inline(never)]
fn leak_kmalloc() -> u64 {
    let p = kmalloc(64, GFP_KERNEL);
    // SAFETY: a fresh 64-byte object.
    unsafe {
        core::ptr::write_bytes(p, 0, 64);
        core::ptr::copy_nonoverlapping(b"leaked".as_ptr(), p, 6);
    }
    p as u64 ^ HIDE
}

#[inline(never)]
fn leak_kmalloc_large() -> u64 {
    kmalloc(5 * 4096, GFP_KERNEL) as u64 ^ HIDE
}

#[inline(never)]
fn leak_vmalloc() -> u64 {
    vmalloc(3 * 4096).expect("vmalloc").0 ^ HIDE
}

/// A fresh zeroed object holding `v` in its first word.
#[inline(never)]
fn object_with(v: u64) -> *mut u64 {
    let p = kmalloc(64, GFP_KERNEL) as *mut u64;
    // SAFETY: a fresh 64-byte object.
    unsafe {
        core::ptr::write_bytes(p, 0, 8);
        p.write_volatile(v);
    }
    p
}

/// Overwrites the dead frames below this one, where the leaking calls left their pointers
/// (kmemleak scans whole stacks, as Linux scans THREAD_SIZE of each task's).
#[inline(never)]
fn clear_stack() {
    let mut a = [0u64; 1024];
    for w in a.iter_mut() {
        // SAFETY: a local.
        unsafe { core::ptr::write_volatile(w, 0) };
    }
    core::hint::black_box(&a);
}

/// The objects `kmemleak_show()` lists (their addresses hidden), each line to the console
/// too; and whether a backtrace named leak_kmalloc.
fn reported(out: &mut [u64]) -> (usize, bool) {
    let mut n = 0;
    let mut in_leak_kmalloc = false;
    kmemleak_show(&mut |a| {
        let mut l = arm64_mm::kernel::printk::LineBuf::<256>::new();
        let _ = core::fmt::write(&mut l, a);
        let s = l.as_str();
        pr_info!("{}", s);
        if let Some(rest) = s.strip_prefix("unreferenced object 0x") {
            if let Ok(v) = u64::from_str_radix(&rest[..16], 16) {
                if n < out.len() {
                    out[n] = v ^ HIDE;
                }
                n += 1;
            }
        }
        in_leak_kmalloc |= s.contains("kmemleak::leak_kmalloc+");
    });
    (n.min(out.len()), in_leak_kmalloc)
}

static HELD: AtomicU64 = AtomicU64::new(0);
static CHAIN: AtomicU64 = AtomicU64::new(0);

/// static CHAIN -> A -> B; returns A's and B's addresses, hidden.
#[inline(never)]
fn make_chain() -> (u64, u64) {
    let b = object_with(0x42);
    let a = object_with(b as u64);
    CHAIN.store(a as u64, Ordering::Relaxed);
    (a as u64 ^ HIDE, b as u64 ^ HIDE)
}

/// A local holding an object's address, alive across `scans`.
#[inline(never)]
fn with_object_on_stack(scans: &dyn Fn()) -> u64 {
    let on_stack = core::hint::black_box(object_with(2));
    scans();
    core::hint::black_box(on_stack);
    on_stack as u64 ^ HIDE
}

fn checks() {
    // The boot's own allocations: two scans (the first gives objects whose contents
    // changed one more round), nothing reported.
    kmemleak_scan();
    kmemleak_scan();
    let mut found = [0u64; 8];
    let (n, _) = reported(&mut found);
    check!(
        n == 0,
        "the boot's own allocations hold no suspected leak ({} reported, first {:#x})",
        n,
        found[0] ^ HIDE
    );
    // Every address below is kept hidden (^ HIDE), so that this frame holds no pointer.
    let leaked = leak_kmalloc();
    let large = leak_kmalloc_large();
    let varea = leak_vmalloc();
    HELD.store(object_with(1) as u64, Ordering::Relaxed);
    let held = HELD.load(Ordering::Relaxed) ^ HIDE;
    let (a, b) = make_chain();
    clear_stack();
    let on_stack = with_object_on_stack(&|| {
        kmemleak_scan();
        check!(kmemleak_scan().is_some(), "kmemleak scans");
    });
    let mut found = [0u64; 16];
    let (n, stack_named) = reported(&mut found);
    let found = &found[..n];
    check!(
        found.contains(&leaked) && stack_named,
        "the leaked kmalloc object is reported, with its allocation stack ({} reported)",
        n
    );
    check!(
        found.contains(&large),
        "the leaked kmalloc_large block is reported"
    );
    let vo = kmemleak_find(varea ^ HIDE);
    check!(
        found.contains(&varea),
        "the leaked vmalloc area is reported ({:?})",
        vo.map(|o| (o.count, o.min_count, o.size, o.flags))
    );
    let kept = [held, on_stack, a, b];
    check!(
        n == 3 && kept.iter().all(|k| !found.contains(k)),
        "objects referenced from a static, a stack and an object are not reported ({} reported)",
        n
    );
    // Cut the chain: A no longer points to B.
    // SAFETY: A is a live object of ours.
    unsafe { (CHAIN.load(Ordering::Relaxed) as *mut u64).write_volatile(0) };
    clear_stack();
    kmemleak_scan();
    kmemleak_scan();
    let mut found = [0u64; 16];
    let (n, _) = reported(&mut found);
    let found = &found[..n];
    check!(
        found.contains(&b) && !found.contains(&a) && !found.contains(&held),
        "B is reported once A no longer points to it, A is not ({} reported)",
        n
    );
}

#[no_mangle]
pub fn kernel_init() -> ! {
    if has("kmemleak=on") {
        checks();
    } else {
        check!(
            !kmemleak_enabled() && kmemleak_scan().is_none(),
            "kmemleak off: no pool, no scan"
        );
    }
    ktest::finish()
}
