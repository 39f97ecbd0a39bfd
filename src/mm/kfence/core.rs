//! KFENCE's core (Linux 6.1: mm/kfence/core.c and mm/kfence/kfence.h): the pool layout,
//! the object metadata, the sampling gate, guarded allocation and free, the canary check
//! and the page-fault classification. One [`Kfence`] instance over a pool and hooks
//! ([`KfenceEnv`]); the kernel has one (mm/kfence.rs), the host tests many.
//!
//! The pool, `(num_objects + 1) * 2` pages:
//!
//! ```text
//!  page:  0       1       2        3       4        5            2n+2      2n+3
//!        +-------+-------+--------+-------+--------+-------+ ... +--------+-------+
//!        | guard | guard | obj #0 | guard | obj #1 | guard |     | obj #n | guard |
//!        +-------+-------+--------+-------+--------+-------+ ... +--------+-------+
//! ```
//! Every odd page (and page 0) is protected: unmapped from the linear map. An object sits
//! at the start of its page (an underflow hits the guard on the left) or at its end,
//! aligned down to the cache's alignment (an overflow hits the guard on the right), at
//! random; the rest of its page is canary bytes, checked when the object is freed. A freed
//! object's page is protected too, so a use after free faults.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::metadata::NONE;
pub use super::metadata::*;
use super::report::kfence_report_error;
use crate::mm::gfp::{GfpT, GFP_ZONEMASK};
use crate::mm::slab::{SLAB_CACHE_DMA, SLAB_CACHE_DMA32, SLAB_SKIP_KFENCE};
use crate::mm::slub::{KfenceHooks, KmemCache};

/// PAGE_SIZE as a usize.
const PAGE: usize = crate::mm::PAGE_SIZE as usize;

/// Linux: CONFIG_KFENCE_NUM_OBJECTS's default.
pub const CONFIG_KFENCE_NUM_OBJECTS: usize = 255;

/// Linux: CONFIG_KFENCE_NUM_OBJECTS's range, 1..65535.
pub const KFENCE_NUM_OBJECTS_MAX: usize = 65535;

/// Linux: KFENCE_POOL_SIZE — the objects' pages and their guards, plus the two leading
/// guard pages.
pub const fn kfence_pool_size(num_objects: usize) -> usize {
    (num_objects + 1) * 2 * PAGE
}

/// What KFENCE asks of the arch and of the kernel around it.
#[derive(Clone, Copy)]
pub struct KfenceEnv {
    /// Linux: kfence_protect_page() (arch/arm64/include/asm/kfence.h) — unmap (`protect`)
    /// or map again the linear-map page at `addr`, flushing the TLB; false on failure.
    pub protect_page: fn(addr: usize, protect: bool) -> bool,
    /// Linux: stack_trace_save() — the caller's return addresses.
    pub stack_trace_save: fn(entries: &mut [u64], skip: usize) -> usize,
    /// Linux: local_clock(), in ns (the tracks' times).
    pub clock: fn() -> u64,
    /// The free-running counter the sampling gate reads (arm64: CNTVCT_EL0), and its
    /// frequency in Hz: cheaper than the clock on every allocation.
    pub counter: fn() -> u64,
    pub counter_freq: u64,
    /// Linux: raw_smp_processor_id().
    pub cpu: fn() -> usize,
    /// Linux: `__folio_set_slab()` and `slab->slab_cache = cache` on the struct page of the
    /// pool page at `addr` (None: the pool has no struct pages, as in the host tests).
    pub set_slab: Option<fn(addr: usize, cache: *const KmemCache)>,
    /// Linux: dump_stack_print_info(KERN_ERR) — the `CPU: … Comm: …` footer of a report.
    pub print_info: fn(),
}

/// The parameters (Linux: `kfence.sample_interval`, `CONFIG_KFENCE_NUM_OBJECTS`, and
/// 6.x's `kfence.burst`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KfenceParams {
    /// Milliseconds between sampled allocations; 0 disables KFENCE.
    pub sample_interval: u64,
    /// Objects in the pool.
    pub num_objects: usize,
    /// Further allocations sampled after each sampled one (Linux 6.x: kfence.burst).
    pub burst: u32,
}

/// Linux: enum kfence_counter_id — the counters of /sys/kernel/debug/kfence/stats.
#[derive(Default)]
pub struct KfenceCounters {
    /// Linux: KFENCE_COUNTER_ALLOCATED — currently allocated.
    pub allocated: AtomicU64,
    /// Linux: KFENCE_COUNTER_ALLOCS — total allocations.
    pub allocs: AtomicU64,
    /// Linux: KFENCE_COUNTER_FREES — total frees.
    pub frees: AtomicU64,
    /// Linux: KFENCE_COUNTER_BUGS — total bugs.
    pub bugs: AtomicU64,
    /// Linux: KFENCE_COUNTER_SKIP_INCOMPAT — skipped allocations (incompatible).
    pub skip_incompat: AtomicU64,
    /// Linux: KFENCE_COUNTER_SKIP_CAPACITY — skipped allocations (capacity).
    pub skip_capacity: AtomicU64,
}

/// One KFENCE: its pool, its metadata and its state.
pub struct Kfence<'a> {
    /// Linux: __kfence_pool.
    pool: usize,
    meta: &'a [KfenceMetadata],
    env: KfenceEnv,
    params: KfenceParams,
    /// Linux: kfence_freelist (head and tail indices) under kfence_freelist_lock.
    freelist: spin::Mutex<(u32, u32)>,
    /// Linux: kfence_enabled.
    enabled: AtomicBool,
    /// The sampling gate: no allocation is sampled before this time (ns).
    next_sample: AtomicU64,
    /// Allocations sampled since the gate opened (Linux: kfence_allocation_gate).
    gate: AtomicU32,
    /// The sample interval in counter ticks.
    interval_ticks: u64,
    /// Linux: get_random_u32_below(2)'s state, for the side an object sits on.
    rng: AtomicU64,
    /// Linux: counters[].
    pub counters: KfenceCounters,
}

impl<'a> Kfence<'a> {
    /// A KFENCE over `pool` (`kfence_pool_size(meta.len())` bytes, page-aligned, that the
    /// caller gives to it for good) with one metadata entry per object. Nothing is
    /// protected yet: see [`kfence_init_pool`](Self::kfence_init_pool).
    ///
    /// # Safety
    /// `pool` is page-aligned, `kfence_pool_size(meta.len())` bytes of memory that nothing
    /// else uses for `'a`, mapped page by page so that `env.protect_page` can unmap pages.
    pub unsafe fn new(
        pool: *mut u8,
        meta: &'a [KfenceMetadata],
        env: KfenceEnv,
        params: KfenceParams,
        seed: u64,
    ) -> Self {
        assert!((pool as usize).is_multiple_of(PAGE) && !meta.is_empty());
        assert!(meta.len() <= KFENCE_NUM_OBJECTS_MAX);
        Self {
            pool: pool as usize,
            meta,
            env,
            params,
            freelist: spin::Mutex::new((NONE, NONE)),
            enabled: AtomicBool::new(false),
            next_sample: AtomicU64::new(0),
            interval_ticks: (params.sample_interval as u128 * env.counter_freq as u128 / 1000)
                .min(u64::MAX as u128) as u64,
            gate: AtomicU32::new(0),
            rng: AtomicU64::new(seed | 1),
            counters: KfenceCounters::default(),
        }
    }

    /// The pool's address.
    pub fn pool(&self) -> usize {
        self.pool
    }

    /// The pool's size.
    pub fn pool_size(&self) -> usize {
        kfence_pool_size(self.meta.len())
    }

    /// The number of objects.
    pub fn num_objects(&self) -> usize {
        self.meta.len()
    }

    /// Linux: kfence_enabled.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// The metadata of object `i`.
    pub fn metadata(&self, i: usize) -> &KfenceMetadata {
        &self.meta[i]
    }

    /// Linux: kfence_init_pool() — the object pages become one-object slabs, pages 0 and 1
    /// and every object's right neighbour are protected, every object goes on the
    /// freelist; then KFENCE is enabled. Returns false (KFENCE stays off) if a page could
    /// not be protected.
    pub fn kfence_init_pool(&self) -> bool {
        if let Some(set_slab) = self.env.set_slab {
            for i in 0..self.meta.len() {
                set_slab(self.metadata_to_pageaddr(i), core::ptr::null());
            }
        }
        // Protect the first 2 pages. The first page is mostly unnecessary, and merely
        // serves as an extended guard page.
        for i in 0..2 {
            if !(self.env.protect_page)(self.pool + i * PAGE, true) {
                return false;
            }
        }
        let mut fl = self.freelist.lock();
        for (i, m) in self.meta.iter().enumerate() {
            let addr = self.metadata_to_pageaddr(i);
            {
                let mut meta = m.lock.lock();
                meta.state = KfenceObjectState::Unused;
                // Initialize for validation in metadata_to_pageaddr().
                meta.addr = addr;
            }
            Self::list_add_tail(self.meta, &mut fl, i as u32);
            // Protect the right redzone.
            if !(self.env.protect_page)(addr + PAGE, true) {
                return false;
            }
        }
        drop(fl);
        self.enabled.store(true, Ordering::Release);
        true
    }

    fn list_add_tail(meta: &[KfenceMetadata], fl: &mut (u32, u32), i: u32) {
        meta[i as usize].next.store(NONE, Ordering::Relaxed);
        if fl.1 == NONE {
            fl.0 = i;
        } else {
            meta[fl.1 as usize].next.store(i, Ordering::Relaxed);
        }
        fl.1 = i;
    }

    fn list_pop_head(&self) -> Option<usize> {
        let mut fl = self.freelist.lock();
        let i = fl.0;
        if i == NONE {
            return None;
        }
        fl.0 = self.meta[i as usize].next.load(Ordering::Relaxed);
        if fl.0 == NONE {
            fl.1 = NONE;
        }
        Some(i as usize)
    }

    /// Objects on the freelist (for the tests and the stats).
    pub fn nr_free(&self) -> usize {
        let fl = self.freelist.lock();
        let (mut i, mut n) = (fl.0, 0);
        while i != NONE {
            n += 1;
            i = self.meta[i as usize].next.load(Ordering::Relaxed);
        }
        n
    }

    /// Linux: metadata_to_pageaddr() — object `i`'s page.
    pub fn metadata_to_pageaddr(&self, i: usize) -> usize {
        // The first two pages are the leading guards; each object has its page and the
        // guard to its right.
        self.pool + (i + 1) * 2 * PAGE
    }

    /// Linux: is_kfence_address().
    #[inline]
    pub fn is_kfence_address(&self, addr: usize) -> bool {
        addr.wrapping_sub(self.pool) < self.pool_size()
    }

    /// Linux: addr_to_metadata() — the object whose page or right guard holds `addr`
    /// (None in the two leading guard pages or outside the pool).
    pub fn addr_to_metadata(&self, addr: usize) -> Option<usize> {
        if !self.is_kfence_address(addr) {
            return None;
        }
        // May be an invalid index if called with an address at the edge of the pool, in
        // which case we would report an "invalid access" error.
        let index = ((addr - self.pool) / (PAGE * 2)).checked_sub(1)?;
        (index < self.meta.len()).then_some(index)
    }

    /// Linux: kfence_protect() / kfence_unprotect() on the page holding `addr`.
    fn protect(&self, addr: usize, protect: bool) -> bool {
        (self.env.protect_page)(addr & !(PAGE - 1), protect)
    }

    /// Linux: metadata_update_state() — the new state with its track (stack, CPU, time).
    fn metadata_update_state(&self, meta: &mut KfenceMeta, next: KfenceObjectState) {
        let track = if next == KfenceObjectState::Freed {
            &mut meta.free_track
        } else {
            &mut meta.alloc_track
        };
        // Skip over 1 entry referencing this function and its callee.
        track.num_stack_entries = (self.env.stack_trace_save)(&mut track.stack_entries, 1);
        track.pid = 0;
        track.cpu = (self.env.cpu)() as u32;
        track.ts_nsec = (self.env.clock)();
        meta.state = next;
    }

    /// Linux: kfence_alloc()'s gate and the toggle_allocation_gate() timer in one: the
    /// first allocation `sample_interval` ms after the gate closed opens it, and it lets
    /// `burst + 1` allocations through before it closes again. (Linux's timer re-arms the
    /// gate every interval; with no timers here, the generic counter says when it is due.)
    fn allocation_gate(&self) -> bool {
        let now = (self.env.counter)();
        if now < self.next_sample.load(Ordering::Relaxed) {
            return false;
        }
        let n = self.gate.fetch_add(1, Ordering::Relaxed);
        if n >= self.params.burst {
            if n > self.params.burst {
                return false;
            }
            self.next_sample
                .store(now.saturating_add(self.interval_ticks), Ordering::Relaxed);
            self.gate.store(0, Ordering::Relaxed);
        }
        true
    }

    /// A fair coin (Linux: get_random_u32_below(2)).
    fn coin(&self) -> bool {
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Ordering::Relaxed);
        x & 1 != 0
    }

    /// Linux: `__kfence_alloc()` — if the gate lets this allocation through and `s` is
    /// compatible, a guarded object; null otherwise.
    pub fn __kfence_alloc(&self, s: &KmemCache, size: usize, gfp: GfpT) -> *mut u8 {
        if !self.enabled() {
            return core::ptr::null_mut();
        }
        // Perform size check before switching kfence_allocation_gate, so that we don't
        // disable KFENCE without making an allocation.
        if size > PAGE {
            self.counters.skip_incompat.fetch_add(1, Ordering::Relaxed);
            return core::ptr::null_mut();
        }
        // Skip allocations from non-default zones, including DMA. We cannot guarantee
        // that pages in the KFENCE pool will have the requested properties.
        if gfp & GFP_ZONEMASK != 0
            || s.flags & (SLAB_CACHE_DMA | SLAB_CACHE_DMA32 | SLAB_SKIP_KFENCE) != 0
        {
            self.counters.skip_incompat.fetch_add(1, Ordering::Relaxed);
            return core::ptr::null_mut();
        }
        if !self.allocation_gate() {
            return core::ptr::null_mut();
        }
        self.kfence_guarded_alloc(s, size)
    }

    /// Linux: kfence_guarded_alloc().
    fn kfence_guarded_alloc(&self, s: &KmemCache, size: usize) -> *mut u8 {
        let Some(i) = self.list_pop_head() else {
            self.counters.skip_capacity.fetch_add(1, Ordering::Relaxed);
            return core::ptr::null_mut();
        };
        let mut meta = self.meta[i].lock.lock();
        let pageaddr = self.metadata_to_pageaddr(i);
        if meta.state == KfenceObjectState::Freed {
            self.protect(pageaddr, false);
        }
        let mut addr = pageaddr;
        // Note: for allocations made before RNG initialization, will always return zero.
        // We still benefit from enabling KFENCE as early as possible, even when the RNG is
        // not yet available, as this will allow KFENCE to detect bugs due to earlier
        // allocations. The only downside is that the out-of-bounds accesses detected are
        // deterministic for such allocations.
        if self.coin() {
            // Allocate on the "right" side, re-calculate address.
            addr += PAGE - size;
            addr &= !((s.align.max(1) as usize) - 1);
        }
        meta.addr = addr;
        meta.size = size;
        meta.cache = s;
        // Update remaining metadata.
        self.metadata_update_state(&mut meta, KfenceObjectState::Allocated);
        if let Some(set_slab) = self.env.set_slab {
            set_slab(pageaddr, s);
        }
        // Set required slab fields: the canaries around the object.
        Self::for_each_canary(&meta, |b| {
            // SAFETY: a byte of the object's page outside the object; the page is mapped
            // (unprotected above or never protected) and the pool is KFENCE's.
            unsafe { *b = kfence_canary_pattern(b as usize) };
            true
        });
        drop(meta);
        self.counters.allocated.fetch_add(1, Ordering::Relaxed);
        self.counters.allocs.fetch_add(1, Ordering::Relaxed);
        addr as *mut u8
    }

    /// Linux: for_each_canary() — `f` over each canary byte, left side then right side,
    /// each side until `f` returns false.
    fn for_each_canary(meta: &KfenceMeta, mut f: impl FnMut(*mut u8) -> bool) {
        let pageaddr = meta.addr & !(PAGE - 1);
        for addr in pageaddr..meta.addr {
            if !f(addr as *mut u8) {
                break;
            }
        }
        for addr in meta.addr + meta.size..pageaddr + PAGE {
            if !f(addr as *mut u8) {
                break;
            }
        }
    }

    /// Linux: check_canary() — one corruption report per side.
    fn check_canary(&self, i: usize, meta: &KfenceMeta) {
        Self::for_each_canary(meta, |b| {
            // SAFETY: a canary byte of the object's page, still mapped (the object is
            // being freed and its page not yet protected).
            if unsafe { *b } == kfence_canary_pattern(b as usize) {
                return true;
            }
            self.counters.bugs.fetch_add(1, Ordering::Relaxed);
            let mut stack = [0u64; KFENCE_STACK_DEPTH];
            let n = (self.env.stack_trace_save)(&mut stack, 1);
            kfence_report_error(
                self.env.print_info,
                b as usize,
                false,
                &stack[..n],
                Some((i, meta)),
                KfenceErrorType::Corruption,
            );
            false
        });
    }

    /// Linux: kfence_free() — false if `addr` is not in the pool's objects; else
    /// kfence_guarded_free(): an invalid or double free is reported and ignored, a good one
    /// checks the canaries, (with `init`) zeroes the object, protects its page and puts it
    /// at the tail of the freelist.
    pub fn kfence_free(&self, addr: usize, init: bool) -> bool {
        let Some(i) = self.addr_to_metadata(addr) else {
            return false;
        };
        let mut meta = self.meta[i].lock.lock();
        if meta.state != KfenceObjectState::Allocated || meta.addr != addr {
            // Invalid or double-free, bail out.
            self.counters.bugs.fetch_add(1, Ordering::Relaxed);
            let mut stack = [0u64; KFENCE_STACK_DEPTH];
            let n = (self.env.stack_trace_save)(&mut stack, 1);
            kfence_report_error(
                self.env.print_info,
                addr,
                false,
                &stack[..n],
                Some((i, &meta)),
                KfenceErrorType::InvalidFree,
            );
            return true;
        }
        if meta.unprotected_page != 0 {
            let page = meta.unprotected_page & !(PAGE - 1);
            // SAFETY: the guard page an out-of-bounds access unprotected: KFENCE's, mapped.
            unsafe { core::ptr::write_bytes(page as *mut u8, 0, PAGE) };
            self.protect(page, true);
            meta.unprotected_page = 0;
        }
        // Mark the object as freed.
        self.metadata_update_state(&mut meta, KfenceObjectState::Freed);
        // Check canary bytes for memory corruption.
        self.check_canary(i, &meta);
        // Clear memory if init-on-free is set.
        if init {
            // SAFETY: the object's `size` bytes, still mapped.
            unsafe { core::ptr::write_bytes(addr as *mut u8, 0, meta.size) };
        }
        // Protect to detect use-after-frees.
        self.protect(addr, true);
        drop(meta);
        // Add it to the tail of the freelist for reuse.
        Self::list_add_tail(self.meta, &mut self.freelist.lock(), i as u32);
        self.counters.allocated.fetch_sub(1, Ordering::Relaxed);
        self.counters.frees.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Linux: kfence_ksize() — the object's size (0 if `addr` is none of the pool's).
    pub fn kfence_ksize(&self, addr: usize) -> usize {
        match self.addr_to_metadata(addr) {
            Some(i) => self.meta[i].lock.lock().size,
            None => 0,
        }
    }

    /// Linux: kfence_handle_page_fault()'s diagnosis: which object, if any, a fault at
    /// `addr` is an error of — an access to a guard page is out of bounds of the nearest
    /// allocated neighbour, an access to an object's page is a use after free.
    pub fn classify_fault(&self, addr: usize) -> (KfenceErrorType, Option<usize>) {
        let page_index = (addr - self.pool) / PAGE;
        if page_index % 2 == 1 {
            // This is a redzone, report a buffer overflow.
            let allocated = |i: Option<usize>| {
                i.map(|i| (i, self.meta[i].lock.lock()))
                    .filter(|(_, m)| m.state == KfenceObjectState::Allocated)
                    .map(|(i, m)| (i, m.addr, m.size))
            };
            let mut to_report = None;
            let mut distance = 0;
            if let Some((i, a, size)) = allocated(self.addr_to_metadata(addr - PAGE)) {
                to_report = Some(i);
                distance = addr.wrapping_sub(a + size);
            }
            if let Some((i, a, _)) = allocated(self.addr_to_metadata(addr + PAGE)) {
                if to_report.is_none() || distance > a.wrapping_sub(addr) {
                    to_report = Some(i);
                }
            }
            match to_report {
                Some(i) => (KfenceErrorType::Oob, Some(i)),
                None => (KfenceErrorType::Invalid, None),
            }
        } else {
            match self.addr_to_metadata(addr) {
                Some(i) => (KfenceErrorType::Uaf, Some(i)),
                None => (KfenceErrorType::Invalid, None),
            }
        }
    }

    /// Linux: kfence_handle_page_fault() — false if `addr` is not in the pool; else the
    /// report (`stack`: the faulting context's, from its registers) and the page is
    /// unprotected, so that the access proceeds when the handler returns.
    pub fn kfence_handle_page_fault(&self, addr: usize, is_write: bool, stack: &[u64]) -> bool {
        if !self.is_kfence_address(addr) {
            return false;
        }
        if !self.enabled() {
            // If disabled at runtime, unprotect and proceed.
            return self.protect(addr, false);
        }
        self.counters.bugs.fetch_add(1, Ordering::Relaxed);
        match self.classify_fault(addr) {
            (ty, Some(i)) => {
                let mut meta = self.meta[i].lock.lock();
                if ty == KfenceErrorType::Oob {
                    meta.unprotected_page = addr;
                }
                kfence_report_error(
                    self.env.print_info,
                    addr,
                    is_write,
                    stack,
                    Some((i, &meta)),
                    ty,
                );
            }
            (ty, None) => kfence_report_error(self.env.print_info, addr, is_write, stack, None, ty),
        }
        // Unprotect and let access proceed.
        self.protect(addr, false)
    }
}

impl KfenceHooks for Kfence<'static> {
    fn allocation_gate(&'static self) -> &'static AtomicU64 {
        &self.next_sample
    }
    fn kfence_alloc(&self, s: &KmemCache, size: usize, gfp: GfpT) -> *mut u8 {
        self.__kfence_alloc(s, size, gfp)
    }
    fn is_kfence_address(&self, addr: *const u8) -> bool {
        Kfence::is_kfence_address(self, addr as usize)
    }
    fn kfence_ksize(&self, addr: *const u8) -> usize {
        Kfence::kfence_ksize(self, addr as usize)
    }
    fn kfence_free(&self, addr: *mut u8, init: bool) -> bool {
        Kfence::kfence_free(self, addr as usize, init)
    }
}
