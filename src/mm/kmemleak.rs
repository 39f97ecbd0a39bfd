//! kmemleak: the kernel memory leak detector. Mirrors Linux 6.1's mm/kmemleak.c and
//! include/linux/kmemleak.h.
//!
//! The allocators tell kmemleak about each block they hand out and take back
//! (`kmemleak_alloc_recursive`/`kmemleak_free_recursive` from SLUB's slab_post_alloc_hook and
//! slab_free_hook, `kmemleak_alloc`/`kmemleak_free` from kmalloc_large, `kmemleak_vmalloc`
//! and `kmemleak_free` from vmalloc/vfree, `kmemleak_alloc_phys`/`kmemleak_free_part_phys`
//! from memblock). A scan ([`kmemleak_scan`]) then looks for pointers to the tracked blocks
//! in the kernel's data and bss, the per-CPU areas, the CPUs' stacks and the memblock
//! allocations (the roots, always scanned), and in every block found referenced (the gray
//! list); a block with fewer references than its `min_count`, older than the minimum age,
//! and whose contents did not change since the previous scan (the checksum) is reported
//! once, in `/sys/kernel/debug/kmemleak`'s format ([`kmemleak_show`]).
//!
//! As in Linux 6.1, objects created before `kmemleak_init()` come from a fixed pool
//! (`mem_pool`, CONFIG_DEBUG_KMEMLEAK_MEM_POOL_SIZE = 16000 objects); Linux takes later ones
//! from its `kmemleak_object` slab cache (SLAB_NOLEAKTRACE) and falls back to the pool. Here
//! every object comes from the pool, which memblock gives once the linear map is up
//! ([`kmemleak_alloc_pool`]; MEMBLOCK_ALLOC_NOLEAKTRACE, so kmemleak does not track, nor
//! scan, its own metadata): kmemleak never allocates from the allocators it watches. When
//! the pool is full kmemleak disables itself, as Linux does when mem_pool_alloc() fails.
//!
//! Different from Linux:
//! - Linux needs CONFIG_DEBUG_KMEMLEAK (not set in Debian's 6.1) and is on unless
//!   `kmemleak=off`; here it is off unless `kmemleak=on`, and costs one predictable branch
//!   per hook when off, no memory.
//! - The search structure is a sorted array of objects (Linux: an rbtree); lookups are a
//!   binary search, insertions move the tail.
//! - There are no jiffies: an object's time is the generic timer's, shown as Linux's jiffies
//!   would read at HZ=250 (Debian's) from INITIAL_JIFFIES; the minimum age is Linux's 5 s
//!   (`MSECS_MIN_AGE`) unless `kmemleak_min_age=MS` (our own parameter; Linux's scan thread
//!   first runs 60 s after boot, so a report at the end of a short boot needs it).
//! - The backtrace is kept in the stack depot (Linux 6.2 does so; 6.1 keeps 16 entries in
//!   the object). Objects made before the depot exists (memblock's, never reported) have none.
//! - Every task is a CPU's idle task: comm `swapper/N`, pid 0.
//! - No kmemleak_init(): Linux's makes the object caches (here the pool serves all) and
//!   registers data and bss as gray objects (here they are roots of the scan: the same words
//!   are read).
//! - No scan thread: scans run from the monitor (`kmemleak scan`), `mm_reports=kmemleak` at
//!   the end of boot, and tests.

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::kernel::params::{kstrtobool, SetupResult};
use crate::kernel::stackdepot::{print_entry, stack_depot, stack_depot_save, DepotStackHandle};

mod object;
pub use object::{Kmemleak, KmemleakObject, ScanResult};

/// Linux: CONFIG_DEBUG_KMEMLEAK_MEM_POOL_SIZE (default 16000).
pub const MEM_POOL_SIZE: usize = 16000;
/// Phys objects (memblock's) the pool keeps besides (Linux keeps them in the same pool).
pub const PHYS_POOL_SIZE: usize = 2048;
/// Linux: MAX_TRACE.
pub const MAX_TRACE: usize = 16;
/// Linux: MSECS_MIN_AGE.
pub const MSECS_MIN_AGE: u64 = 5000;
/// Linux: HEX_MAX_LINES * HEX_ROW_SIZE — the bytes of an object's hex dump.
pub const HEX_DUMP_BYTES: usize = 32;
/// Linux's INITIAL_JIFFIES on 64-bit (`-300 * HZ` as an unsigned long of 32 bits).
const INITIAL_JIFFIES: u64 = (1u64 << 32) - 300 * HZ;
/// Debian's CONFIG_HZ on arm64.
const HZ: u64 = 250;

/// `kmemleak=on` (Linux: kmemleak_boot_config — here the default is off).
static KMEMLEAK_WANTED: AtomicBool = AtomicBool::new(false);
/// Linux: kmemleak_enabled — the hooks track while this is set.
static KMEMLEAK_ENABLED: AtomicBool = AtomicBool::new(false);
/// The minimum age in ms (Linux: jiffies_min_age from MSECS_MIN_AGE).
static MIN_AGE_MS: AtomicU64 = AtomicU64::new(MSECS_MIN_AGE);

/// Linux: kmemleak_boot_config() — `kmemleak=on|off`.
fn kmemleak_boot_config(val: Option<&str>) -> SetupResult {
    let on = kstrtobool(val.unwrap_or("")).ok_or("expected on or off")?;
    KMEMLEAK_WANTED.store(on, Ordering::Relaxed);
    KMEMLEAK_ENABLED.store(on, Ordering::Relaxed);
    if on {
        crate::kernel::stackdepot::stack_depot_want_early_init();
    }
    Ok(())
}
crate::early_param!("kmemleak", kmemleak_boot_config);

/// `kmemleak_min_age=MS` (ours): the age an unreferenced object must reach to be reported.
fn kmemleak_min_age(val: Option<&str>) -> SetupResult {
    let ms = val
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or("expected milliseconds")?;
    MIN_AGE_MS.store(ms, Ordering::Relaxed);
    Ok(())
}
crate::early_param!("kmemleak_min_age", kmemleak_min_age);

/// Did the command line ask for kmemleak (`kmemleak=on`)?
pub fn kmemleak_wanted() -> bool {
    KMEMLEAK_WANTED.load(Ordering::Relaxed)
}

/// Is kmemleak tracking? The hooks' one branch.
#[inline(always)]
pub fn kmemleak_enabled() -> bool {
    KMEMLEAK_ENABLED.load(Ordering::Relaxed)
}

/// What kmemleak needs from the arch and init: the running stack, a clock, the CPU, the
/// linear map, and the roots of a scan.
#[derive(Clone, Copy)]
pub struct KmemleakEnv {
    /// Linux: stack_trace_save() (see `page_owner::PageOwnerEnv`).
    pub stack_trace_save: fn(entries: &mut [u64], skip: usize) -> usize,
    /// The generic timer, in ns.
    pub clock: fn() -> u64,
    /// Linux: smp_processor_id().
    pub cpu: fn() -> usize,
    /// Linux: __va() for the phys objects.
    pub phys_to_virt: fn(u64) -> u64,
    /// The pool's memory: `bytes` from memblock, not tracked (MEMBLOCK_ALLOC_NOLEAKTRACE).
    pub alloc_pool: fn(bytes: u64) -> *mut u8,
    /// Each root range `[start, end)` kmemleak_scan() reads besides the objects: data, bss,
    /// ro_after_init, each possible CPU's per-CPU area, each online CPU's stack.
    pub for_each_root: fn(f: &mut dyn FnMut(&'static str, u64, u64)),
}

static ENV: spin::Once<KmemleakEnv> = spin::Once::new();
static KMEMLEAK: spin::Mutex<Option<Kmemleak>> = spin::Mutex::new(None);

/// Gives kmemleak its environment (init, before setup_arch()); it holds only functions.
pub fn kmemleak_set_env(env: KmemleakEnv) {
    ENV.call_once(|| env);
}

/// The pool from memblock (MEMBLOCK_ALLOC_NOLEAKTRACE), if `kmemleak=on`: setup_arch()
/// calls this once the linear map covers memblock's memory, before the allocations that
/// follow paging_init(). Tracking starts here (Linux's starts at the first memblock
/// allocation; those before are paging_init()'s page tables, which Linux allocates with
/// MEMBLOCK_ALLOC_NOLEAKTRACE).
pub fn kmemleak_alloc_pool() {
    let Some(env) = ENV.get().filter(|_| kmemleak_enabled()) else {
        return;
    };
    let bytes = Kmemleak::pool_bytes(MEM_POOL_SIZE, PHYS_POOL_SIZE);
    let p = (env.alloc_pool)(bytes as u64);
    if p.is_null() {
        pr_warn!("kmemleak: Cannot allocate the memory pool");
        kmemleak_disable();
        return;
    }
    // SAFETY: `bytes` bytes from memblock, ours for good, cache-line aligned.
    *KMEMLEAK.lock() = Some(unsafe { Kmemleak::from_raw(p, MEM_POOL_SIZE, PHYS_POOL_SIZE) });
}

/// Linux: kmemleak_late_init() (a late initcall) — its line, with the pool's free objects.
pub fn kmemleak_late_init() {
    if let Some(free) = with_kmemleak(|k, _| MEM_POOL_SIZE - k.objects().len()) {
        pr_info!(
            "kmemleak: Kernel memory leak detector initialized (mem pool available: {})",
            free
        );
    }
}

/// Runs `f` on the kernel's instance; None if kmemleak is off or has no pool yet.
fn with_kmemleak<R>(f: impl FnOnce(&mut Kmemleak, &KmemleakEnv) -> R) -> Option<R> {
    let env = ENV.get()?;
    let mut g = KMEMLEAK.lock();
    let k = g.as_mut()?;
    let r = f(k, env);
    if k.disabled() {
        drop(g);
        kmemleak_disable();
    }
    Some(r)
}

/// Linux: kmemleak_disable() — stop tracking (after a failure: the pool ran out).
pub fn kmemleak_disable() {
    if KMEMLEAK_ENABLED.swap(false, Ordering::Relaxed) {
        pr_info!("kmemleak: Kernel memory leak detector disabled");
    }
}

/// This call's stack in the depot, the hooks' own frames left out.
#[inline(always)]
fn save_stack(env: &KmemleakEnv) -> DepotStackHandle {
    let mut entries = [0u64; MAX_TRACE];
    let n = (env.stack_trace_save)(&mut entries, 1);
    stack_depot_save(&entries[..n])
}

/// Linux: create_object() — a new tracked object with this call's stack.
#[inline(never)]
fn create_object(ptr: u64, size: u64, min_count: i32, phys: bool) {
    let Some(env) = ENV.get() else { return };
    let trace = save_stack(env);
    let now = (env.clock)();
    let cpu = (env.cpu)() as u16;
    with_kmemleak(|k, _| {
        let o = KmemleakObject::new(ptr, size, min_count, now, cpu, trace);
        if phys {
            k.create_object_phys(o);
        } else {
            k.create_object(o);
        }
    });
}

/// Linux: kmemleak_alloc() — a new block at `ptr` of `size` bytes, referenced at least
/// `min_count` times when in use (0: never reported; -1: neither scanned nor reported).
#[inline(always)]
pub fn kmemleak_alloc(ptr: *const u8, size: usize, min_count: i32) {
    if kmemleak_enabled() && !ptr.is_null() {
        create_object(ptr as u64, size as u64, min_count, false);
    }
}

/// Linux: kmemleak_alloc_recursive() — kmemleak_alloc() unless the cache is kmemleak's own
/// (`SLAB_NOLEAKTRACE`).
#[inline(always)]
pub fn kmemleak_alloc_recursive(ptr: *const u8, size: usize, min_count: i32, flags: u32) {
    if flags & crate::mm::slab::SLAB_NOLEAKTRACE == 0 {
        kmemleak_alloc(ptr, size, min_count);
    }
}

/// Linux: kmemleak_free().
#[inline(always)]
pub fn kmemleak_free(ptr: *const u8) {
    if kmemleak_enabled() && !ptr.is_null() {
        delete_object_full(ptr as u64);
    }
}

/// Linux: delete_object_full().
#[inline(never)]
fn delete_object_full(ptr: u64) {
    with_kmemleak(|k, _| k.delete_object_full(ptr));
}

/// Linux: kmemleak_free_recursive().
#[inline(always)]
pub fn kmemleak_free_recursive(ptr: *const u8, flags: u32) {
    if flags & crate::mm::slab::SLAB_NOLEAKTRACE == 0 {
        kmemleak_free(ptr);
    }
}

/// Linux: kmemleak_vmalloc() — a vmalloc area, needing 2 references: the VmStruct's
/// `addr` holds one (vmalloc keeps it in its VmapArea, scanned only from the tree links on,
/// see [`kmemleak_scan_area`], so its `va_start` does not count, as in Linux).
pub fn kmemleak_vmalloc(addr: u64, size: u64) {
    if kmemleak_enabled() && addr != 0 {
        create_object(addr, size, 2, false);
    }
}

/// Linux: kmemleak_scan_area(ptr, SIZE_MAX, gfp) — scan the object holding `ptr` only from
/// `ptr` to its end.
pub fn kmemleak_scan_area(ptr: *const u8) {
    if kmemleak_enabled() && !ptr.is_null() {
        with_kmemleak(|k, _| k.add_scan_area(ptr as u64));
    }
}

/// Linux: kmemleak_alloc_phys() — a memblock block: scanned, never reported (min_count 0),
/// not a target of the pointer search (it is known by its physical address).
pub fn kmemleak_alloc_phys(phys: u64, size: u64) {
    if kmemleak_enabled() {
        create_object(phys, size, 0, true);
    }
}

/// Linux: kmemleak_free_part_phys() — part of a memblock block freed.
pub fn kmemleak_free_part_phys(phys: u64, size: u64) {
    if kmemleak_enabled() {
        with_kmemleak(|k, _| k.delete_object_part_phys(phys, size));
    }
}

/// Linux: kmemleak_ignore_phys() — a memblock block kmemleak must neither scan nor report
/// (a CMA area: its pages go to the buddy and may be unmapped).
pub fn kmemleak_ignore_phys(phys: u64) {
    if kmemleak_enabled() {
        with_kmemleak(|k, _| k.paint_ptr(phys, -1, true));
    }
}

/// Linux: kmemleak_not_leak() — a false positive: never reported, always scanned.
pub fn kmemleak_not_leak(ptr: *const u8) {
    if kmemleak_enabled() && !ptr.is_null() {
        with_kmemleak(|k, _| k.paint_ptr(ptr as u64, 0, false));
    }
}

/// Linux: kmemleak_ignore() — neither reported nor scanned (holds no pointers).
pub fn kmemleak_ignore(ptr: *const u8) {
    if kmemleak_enabled() && !ptr.is_null() {
        with_kmemleak(|k, _| k.paint_ptr(ptr as u64, -1, false));
    }
}

/// Linux: dump_object_info()'s data — the object tracking the block at `ptr`, if any.
pub fn kmemleak_find(ptr: u64) -> Option<KmemleakObject> {
    with_kmemleak(|k, _| k.find(ptr).copied()).flatten()
}

/// Linux: kmemleak_scan() — references from the roots and the gray objects; new leaks
/// are marked reported and counted, with Linux's `N new suspected memory leaks` line.
pub fn kmemleak_scan() -> Option<ScanResult> {
    let min_age_ns = MIN_AGE_MS.load(Ordering::Relaxed) * 1_000_000;
    let r = with_kmemleak(|k, env| {
        let now = (env.clock)();
        let mut roots = [(0u64, 0u64); 64];
        let mut n = 0;
        (env.for_each_root)(&mut |_, s, e| {
            if n < roots.len() {
                roots[n] = (s, e);
                n += 1;
            }
        });
        // SAFETY: the roots are the kernel's mapped data, bss, per-CPU areas and stacks;
        // the objects are live blocks (freeing one takes the lock held here); phys objects
        // are memblock memory in the linear map.
        unsafe { k.scan(&roots[..n], env.phys_to_virt, now, min_age_ns) }
    })?;
    if r.new_leaks > 0 {
        pr_info!(
            "kmemleak: {} new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
            r.new_leaks
        );
    }
    Some(r)
}

/// Linux: kmemleak_seq_show() over all objects — `/sys/kernel/debug/kmemleak`: every
/// reported object still unreferenced, in print_unreferenced()'s format.
pub fn kmemleak_show(out: &mut dyn FnMut(fmt::Arguments)) {
    let min_age_ns = MIN_AGE_MS.load(Ordering::Relaxed) * 1_000_000;
    let _ = with_kmemleak(|k, env| {
        let now = (env.clock)();
        k.for_each_reported(now, min_age_ns, &mut |o| {
            // SAFETY: a live tracked block (the lock is held), mapped.
            unsafe { print_unreferenced(o, now, &mut *out) }
        });
    });
}

/// Linux's jiffies for a generic-timer time in ns (HZ=250 from INITIAL_JIFFIES).
pub fn jiffies_of(ns: u64) -> u64 {
    INITIAL_JIFFIES.wrapping_add(ns / (1_000_000_000 / HZ))
}

/// Linux: print_unreferenced() — the object, its owner, its first bytes, its stack.
///
/// # Safety
/// The object's block is mapped and readable for `min(size, 32)` bytes.
pub unsafe fn print_unreferenced(
    o: &KmemleakObject,
    now: u64,
    out: &mut dyn FnMut(fmt::Arguments),
) {
    let msecs_age = now.saturating_sub(o.jiffies) / 1_000_000;
    out(format_args!(
        "unreferenced object 0x{:016x} (size {}):",
        o.pointer, o.size
    ));
    out(format_args!(
        "  comm \"swapper/{}\", pid 0, jiffies {} (age {}.{:03}s)",
        o.cpu,
        jiffies_of(o.jiffies),
        msecs_age / 1000,
        msecs_age % 1000
    ));
    let len = (o.size as usize).min(HEX_DUMP_BYTES);
    out(format_args!("  hex dump (first {} bytes):", len));
    let mut buf = [0u8; HEX_DUMP_BYTES];
    for (i, b) in buf[..len].iter_mut().enumerate() {
        // SAFETY: the caller's.
        *b = unsafe { core::ptr::read_volatile((o.pointer as *const u8).add(i)) };
    }
    for row in buf[..len].chunks(16) {
        out(format_args!("    {}", HexRow(row)));
    }
    out(format_args!("  backtrace:"));
    if let Some(d) = stack_depot().filter(|_| o.trace != 0) {
        for &pc in d.fetch(o.trace) {
            print_entry(pc, &mut |a| out(format_args!("    [<{:016x}>]{}", pc, a)));
        }
    }
}

/// hex_dump_to_buffer() with rowsize 16, groupsize 1 and ASCII: `xx xx ...`, padded to
/// column 49, then the printable bytes.
struct HexRow<'a>(&'a [u8]);

impl fmt::Display for HexRow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let mut col = 0;
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
                col += 1;
            }
            write!(f, "{:02x}", b)?;
            col += 2;
        }
        for _ in col..49 {
            f.write_str(" ")?;
        }
        for &b in self.0 {
            let c = if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            };
            write!(f, "{}", c)?;
        }
        Ok(())
    }
}

/// Linux: kmemleak_late_init()'s report, for `mm_reports=kmemleak`: a scan, then the
/// objects reported (as `cat /sys/kernel/debug/kmemleak` after `echo scan`).
pub fn print_kmemleak_report() {
    if !kmemleak_enabled() {
        pr_info!("kmemleak: off (boot with kmemleak=on)");
        return;
    }
    let r = kmemleak_scan();
    if let Some(r) = r {
        pr_info!(
            "mm: kmemleak: scanned {} objects, {} referenced, {} unreferenced",
            r.scanned,
            r.referenced,
            r.unreferenced
        );
    }
    kmemleak_show(&mut |a| pr_info!("{}", a));
}

#[cfg(test)]
mod tests;
