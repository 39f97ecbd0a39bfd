//! KFENCE, the sampling memory-safety error detector (Linux 6.1: include/linux/kfence.h,
//! mm/kfence/core.c's boot half and parameters). The core is [`core::Kfence`], the reports
//! are in [`report`]; this file holds the parameters and the kernel's one instance:
//! `kfence_alloc_pool()` from mm_init() (the pool from memblock), `kfence_init()` from
//! start_kernel() once SLUB is up (guard pages protected, the slab hook set), and the
//! Linux-named entries the arch's fault handler calls.
//!
//! Parameters: `kfence.sample_interval=MS` (0 disables KFENCE; Linux's default is
//! CONFIG_KFENCE_SAMPLE_INTERVAL, and the Debian 6.1 kernel of our reference logs boots with
//! KFENCE off — none of `tests/fixtures/linux-6.1/*.log` prints `kfence: initialized` —, so
//! ours is 0), `kfence.num_objects=N` (1..=65535; Linux's CONFIG_KFENCE_NUM_OBJECTS, 255,
//! fixed at build time) and `kfence.burst=N` (Linux 6.x: N more allocations sampled after
//! each sampled one). They are early parameters, as arm64's `kfence.sample_interval` is in
//! Linux 6.6 (arch/arm64/mm/mmu.c), because paging_init() must know whether to map the
//! linear map with pages, which KFENCE needs to unmap its guard pages.
//!
//! Sampling: Linux's `kfence_timer` re-opens `kfence_allocation_gate` every
//! sample_interval ms. There are no timers here, so the gate reads the generic timer: the
//! first allocation at least sample_interval ms after the last sampled one is sampled (and
//! with `kfence.burst=N` the N after it). SLUB compares the counter with the gate's time
//! inline (slub/kfence.rs), as Linux's inline kfence_alloc() reads the gate.
//! `kfence.sample_interval=1 kfence.burst=4294967295` samples every allocation while the
//! pool has room (tests/kfence.rs).
//!
//! Cost when off: no pool, no metadata, and one test of a flag in slab_alloc_node() and
//! `__slab_free()` (slub/kfence.rs). Not here: the debugfs files, `kfence.deferrable`,
//! `kfence.check_on_panic`, the allocation-coverage filter (`kfence.skip_covered_thresh`),
//! SLAB_TYPESAFE_BY_RCU objects' deferred free (a KFENCE object of such a cache is freed at
//! once).

pub mod core;
pub mod metadata;
pub mod report;

#[cfg(test)]
mod tests;

use ::core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use self::core::{
    kfence_pool_size, Kfence, KfenceEnv, KfenceMetadata, KfenceParams, CONFIG_KFENCE_NUM_OBJECTS,
    KFENCE_NUM_OBJECTS_MAX,
};
use crate::kernel::params::{parse_u64, SetupResult};
use crate::mm::slub::{KmemCache, SlubAllocator};

/// Linux: kfence_sample_interval (ms; CONFIG_KFENCE_SAMPLE_INTERVAL, 0 here: see above).
static KFENCE_SAMPLE_INTERVAL: AtomicU64 = AtomicU64::new(0);
/// Linux: CONFIG_KFENCE_NUM_OBJECTS, as a parameter.
static KFENCE_NUM_OBJECTS: AtomicUsize = AtomicUsize::new(CONFIG_KFENCE_NUM_OBJECTS);
/// Linux 6.x: kfence_burst.
static KFENCE_BURST: AtomicU32 = AtomicU32::new(0);

/// Linux: param_set_sample_interval() at boot.
fn set_sample_interval(val: Option<&str>) -> SetupResult {
    let ms = val.and_then(parse_u64).ok_or("expected milliseconds")?;
    KFENCE_SAMPLE_INTERVAL.store(ms, Ordering::Relaxed);
    Ok(())
}
crate::early_param!("kfence.sample_interval", set_sample_interval);

/// `kfence.num_objects=` (Linux: CONFIG_KFENCE_NUM_OBJECTS, range 1..65535).
fn set_num_objects(val: Option<&str>) -> SetupResult {
    match val.and_then(parse_u64) {
        Some(n) if (1..=KFENCE_NUM_OBJECTS_MAX as u64).contains(&n) => {
            KFENCE_NUM_OBJECTS.store(n as usize, Ordering::Relaxed);
            Ok(())
        }
        _ => {
            pr_err!(
                "kfence: num_objects={} is not in 1..{}; keeping {}",
                val.unwrap_or(""),
                KFENCE_NUM_OBJECTS_MAX,
                KFENCE_NUM_OBJECTS.load(Ordering::Relaxed)
            );
            Err("expected 1..65535 objects")
        }
    }
}
crate::early_param!("kfence.num_objects", set_num_objects);

/// Linux 6.x: `kfence.burst=`.
fn set_burst(val: Option<&str>) -> SetupResult {
    let n = val
        .and_then(parse_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or("expected a count")?;
    KFENCE_BURST.store(n, Ordering::Relaxed);
    Ok(())
}
crate::early_param!("kfence.burst", set_burst);

/// The parameters the command line set.
pub fn kfence_params() -> KfenceParams {
    KfenceParams {
        sample_interval: KFENCE_SAMPLE_INTERVAL.load(Ordering::Relaxed),
        num_objects: KFENCE_NUM_OBJECTS.load(Ordering::Relaxed),
        burst: KFENCE_BURST.load(Ordering::Relaxed),
    }
}

/// Will KFENCE come up (a non-zero sample interval)? paging_init() asks, to map the
/// linear map with pages (Linux 6.1: can_set_direct_map()'s `IS_ENABLED(CONFIG_KFENCE)`).
pub fn kfence_enabled_early() -> bool {
    KFENCE_SAMPLE_INTERVAL.load(Ordering::Relaxed) != 0
}

/// Linux: __kfence_pool — and here the metadata array, both from memblock.
static POOL: AtomicUsize = AtomicUsize::new(0);
static METADATA: AtomicUsize = AtomicUsize::new(0);

/// The kernel's KFENCE, once kfence_init() brought it up.
static KFENCE: spin::Once<Kfence<'static>> = spin::Once::new();

/// Linux: kfence_alloc_pool() (mm_init(), before mem_init()) — the pool from `alloc`
/// (memblock: `(size, align) -> address`, null on failure), and the metadata with it
/// (Linux 6.6's kfence_alloc_pool_and_metadata(); 6.1's is a static array of
/// CONFIG_KFENCE_NUM_OBJECTS). Nothing when KFENCE is off.
pub fn kfence_alloc_pool(alloc: &mut dyn FnMut(u64, u64) -> *mut u8) {
    let p = kfence_params();
    if p.sample_interval == 0 {
        return;
    }
    let pool = alloc(kfence_pool_size(p.num_objects) as u64, crate::mm::PAGE_SIZE);
    if pool.is_null() {
        pr_err!("kfence: failed to allocate pool");
        return;
    }
    let msize = p.num_objects * ::core::mem::size_of::<KfenceMetadata>();
    let meta = alloc(msize as u64, 64);
    if meta.is_null() {
        pr_err!("kfence: failed to allocate metadata");
        return;
    }
    POOL.store(pool as usize, Ordering::Relaxed);
    METADATA.store(meta as usize, Ordering::Relaxed);
}

/// Linux: kfence_init() (start_kernel(), once the slab allocator is up) — protect the
/// pool's guard pages, enable the slab hook, print Linux's line. Nothing when KFENCE is off
/// or its pool could not be allocated.
pub fn kfence_init(env: KfenceEnv, slub: &'static SlubAllocator<'static>, seed: u64) {
    let (pool, meta) = (
        POOL.load(Ordering::Relaxed),
        METADATA.load(Ordering::Relaxed),
    );
    let p = kfence_params();
    if p.sample_interval == 0 || pool == 0 {
        return;
    }
    let meta = meta as *mut KfenceMetadata;
    // SAFETY: kfence_alloc_pool() allocated room for num_objects entries, 64-byte
    // aligned, from memblock: KFENCE's for good; each is written before the slice exists.
    let meta = unsafe {
        for i in 0..p.num_objects {
            meta.add(i).write(KfenceMetadata::new());
        }
        ::core::slice::from_raw_parts(meta, p.num_objects)
    };
    // SAFETY: the pool is page-aligned memblock memory of kfence_pool_size(num_objects)
    // bytes, nobody else's, in the linear map, which paging_init() built from pages
    // (kfence_enabled_early()).
    let k = KFENCE.call_once(|| unsafe { Kfence::new(pool as *mut u8, meta, env, p, seed) });
    if !k.kfence_init_pool() {
        pr_err!("kfence_init failed");
        return;
    }
    slub.set_kfence(k);
    pr_info!(
        "kfence: initialized - using {} bytes for {} objects at 0x(____ptrval____)-0x(____ptrval____)",
        k.pool_size(),
        p.num_objects
    );
}

/// The kernel's KFENCE, if it is up.
pub fn kfence() -> Option<&'static Kfence<'static>> {
    KFENCE.get().filter(|k| k.enabled())
}

/// Linux: is_kfence_address().
pub fn is_kfence_address(addr: usize) -> bool {
    KFENCE.get().is_some_and(|k| k.is_kfence_address(addr))
}

/// Linux: kfence_handle_page_fault() — called by the arch's kernel-fault path for a
/// translation fault at `addr`; true if it was KFENCE's (reported, and the page mapped
/// again so that the access completes on return). `stack`: the faulting context's, its pc
/// first.
pub fn kfence_handle_page_fault(addr: usize, is_write: bool, stack: &[u64]) -> bool {
    match KFENCE.get() {
        Some(k) => k.kfence_handle_page_fault(addr, is_write, stack),
        None => false,
    }
}

/// The kernel's [`KfenceEnv::set_slab`]: the pool page's struct page becomes a one-object
/// slab of `cache`.
pub fn kernel_set_slab(addr: usize, cache: *const KmemCache) {
    let Some(pa) = crate::mm::page_alloc::page_alloc() else {
        return;
    };
    let page = pa.virt_to_page(crate::mm::VirtAddr(addr as u64));
    // SAFETY: the struct page of a KFENCE pool page (memblock-reserved, never handed to
    // the buddy), seen through its slab overlay, whose flag and cache words are atomics.
    let slab = unsafe { &*page.as_ptr().cast::<crate::mm::slub::Slab>() };
    slab.set_kfence_slab(cache);
}
