//! SLUB: the slab allocator. Mirrors Linux 6.1's mm/slub.c (with the `struct slab` overlay and
//! the `slab_state` bring-up of mm/slab.h): per-cache object layout (`calculate_sizes`,
//! `calculate_order`), slabs carved from page-allocator blocks (`allocate_slab`, with the
//! hardened and optionally shuffled freelist), the per-CPU active slab and per-CPU partial
//! slabs, per-node partial lists, `deactivate_slab` / `__slab_free` / `put_cpu_partial`,
//! `discard_slab` under `min_partial`, `kmem_cache_shrink`, `__kmem_cache_shutdown`, the
//! boot-strapping of `kmem_cache` and `kmem_cache_node` (`kmem_cache_init`, `bootstrap`), and
//! the `slub_debug` machinery: red zones, poisoning, free-pointer and slab-state checks,
//! store-user tracking and `validate_slab_cache`, reporting in Linux's words
//! (`BUG kmalloc-64 (Not tainted): Right Redzone overwritten`, the object dump) and then
//! repairing (`FIX kmalloc-64: Restoring Right Redzone ...`).
//!
//! The kmalloc layer, cache creation with merging, and `/proc/slabinfo` are mm/slab_common.c's
//! and live in slab_common.rs; the flags and constants both share are slab.rs's
//! (include/linux/slab.h); Rust's global allocator on top is heap.rs.
//!
//! # Files
//! Linux keeps all of SLUB in mm/slub.c; here it is one [`SlubAllocator`] whose `impl` is
//! split by concept over this module and its children:
//! - this file: the page source, the allocator instance, slabs carved from pages, the
//!   allocation and free paths (fast and slow), flushing, shrinking and shutdown;
//! - `slub/slub_def.rs`: the data structures (`struct slab`, `kmem_cache`, `kmem_cache_cpu`,
//!   `kmem_cache_node`);
//! - `slub/cmpxchg.rs`: the double-word compare-and-exchange of the lockless fast paths;
//! - `slub/create.rs`: creating a cache (`calculate_sizes`, `calculate_order`,
//!   `kmem_cache_open`) and bringing SLUB up (`kmem_cache_init`, `bootstrap`);
//! - `slub/params.rs`: the machine and the boot options, with the `slub_debug=` syntax;
//! - `slub/debug.rs`: `slub_debug` (CONFIG_SLUB_DEBUG): tracking, checks, reports, validation;
//! - `slub/report.rs`: the `SLUB:` line, `get_slabinfo()`, the out-of-memory warning.
//!
//! # Pages
//! SLUB gets its pages through [`SlabPageSource`]: the kernel passes the buddy allocator
//! (`impl SlabPageSource for PageAlloc`, at the end of this file); host tests pass simulated
//! pages. The source's contract is written on the trait.
//!
//! # Object layout (Linux's comment above `check_pad_bytes`, here as a picture)
//! ```text
//!  slab start (page_address)
//!  | red_left_pad | object_size bytes    | pad/redzone | [free ptr] | [track alloc, track free] | [orig_size] | [right pad word] | align pad |
//!  |  (RED_ZONE)  | (POISON: 6b..6b a5)  | up to inuse |  (outside  |     (STORE_USER)          | (KMALLOC +  |   (RED_ZONE)     |           |
//!  |              |                      |  (bb / cc)  |   object)  |                           |  STORE_USER)|                  |           |
//!  <------------------------------------------- s->size ------------------------------------------------------------------------------->
//!                 ^ object pointer        ^ object_size             ^ inuse (= get_info_end() - 8 when the free pointer is outside)
//! ```
//! Without debug flags and without a constructor the free pointer lives inside the free
//! object, at `ALIGN_DOWN(object_size / 2, 8)`; it is stored as `ptr ^ s->random ^
//! swab(&slot)` (CONFIG_SLAB_FREELIST_HARDENED).
//!
//! # Locks (Linux's order, adapted)
//! 1. `slab_mutex` (in [`SlubAllocator`]) — the cache list, cache creation and destruction.
//! 2. `flush_lock` (in [`SlubAllocator`]) — one `flush_all()` at a time, held until every
//!    CPU's slabs it took are on the node lists (Linux's `flush_lock` in
//!    `flush_all_cpus_locked()`).
//! 3. `kmem_cache_cpu.lock` — one CPU's slot on the slow paths: its active slab, its
//!    partial slabs, and every change of its freelist other than the fast paths'. Linux
//!    calls it a local lock and takes it only on its own CPU (with interrupts off); so do
//!    we, except for flushing, which Linux does by IPI and we do by taking the other CPU's
//!    lock. Unlike Linux we keep it held across the whole slow path (including the page
//!    allocation), which makes the "did `c->slab` change under us" re-checks unnecessary.
//!    So here it nests *outside* the list lock.
//!
//!    The fast paths take no lock (Linux's `slab_alloc_node` / `do_slab_free` fast paths):
//!    the owning CPU reads `c->tid`, then `c->freelist` / `c->slab`, and commits the pair
//!    (`freelist`, `tid`) with one cmpxchg_double (slub/cmpxchg.rs: LDAXP/STLXP on arm64),
//!    which fails if anything changed the slot in between. Every other change of the pair
//!    bumps the tid: the owner's slow paths under the lock (its own fast paths are not
//!    running then), and a flusher on another CPU, which runs *concurrently* with the
//!    owner's fast paths and so clears `c->slab` first and then swaps the pair with
//!    cmpxchg_double (`CpuSlabGuard::take_all`). That is the one atomic read-modify-write of
//!    a fast path; Linux needs none there only because its flushes run on the owning CPU.
//!    Debug caches never have a CPU freelist or slab, so their fast paths always fail
//!    over to the slow path.
//! 4. `kmem_cache_node.list_lock` — a node's partial (and, for `SLAB_STORE_USER`, full)
//!    lists and `nr_partial`.
//! 5. `slab_lock(slab)` — a bit spin lock on `PG_locked` of the slab's head page; it guards
//!    the slab's `freelist` + `counters` pair. Linux uses cmpxchg_double where the CPU has it
//!    and exactly this lock where it does not (`__cmpxchg_double_slab`); we always use the
//!    lock.
//! 6. `object_map_lock` — the bitmap used by validation and the leak report.
//!
//! Each CPU's `kmem_cache_cpu` is its own: allocation and free use the slot of
//! `smp_processor_id()` (Linux: `this_cpu_ptr(s->cpu_slab)`; here the slots follow the
//! `kmem_cache` object, one per possible CPU), so CPUs allocating from one cache at once meet
//! only on the node's `list_lock` and on a slab's `slab_lock`. The two static boot caches
//! (`kmem_cache`, `kmem_cache_node`) have a single slot, used only during the single-CPU
//! bring-up, before bootstrap() replaces them by copies with a slot per CPU. An object allocated on one CPU may be freed on any
//! other: the free goes to its slab (`__slab_free` under `slab_lock`), as in Linux. No
//! interrupt handler allocates (interrupts stay masked), so no lock masks interrupts.
//!
//! Debug caches (`kmem_cache_debug(s)`) never use CPU slabs: as in 6.1, every allocation and
//! free goes through the node's lists under `list_lock` (`alloc_single_from_partial`,
//! `free_to_partial_list`), so the checks see a consistent slab.
//!
//! # What is different from Linux, and why
//! - Reports are printed *and* counted (`slab_errors()`, Linux's kunit hook counts *instead*
//!   of printing), so host tests check both the text and the number. The leak report counts
//!   one error per object left, as slub_kunit's `test_leak_destroy` (6.12) expects.
//! - `%pS` of a caller becomes `file:line` (`#[track_caller]`); there is no stack depot and
//!   no `dump_stack()`; `pid` is 0 (no tasks yet); `age` counts the page source's jiffies.
//! - The taint shown in `BUG ... (Not tainted)` is per allocator instance.
//! - `SLAB_TYPESAFE_BY_RCU` slabs are freed at once: this kernel has no RCU readers.
//! - `slab_state` reaches FULL in `kmem_cache_init_late()`; Linux does it in the
//!   `slab_sysfs_init()` initcall, and there is no sysfs here.
//! - kzalloc of a kmalloc object with a kmalloc red zone zeroes only the requested size
//!   (Linux 6.2's fix; 6.1 zeroes the red zone and then reports it).

use core::cell::UnsafeCell;
use core::panic::Location;
use core::ptr::{self, NonNull};
use core::sync::atomic::{
    AtomicBool, AtomicI64, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};

use super::page::{list_add, list_add_tail, list_del, list_move, ListHead, Page, PG_SLAB};
use super::slab::{
    SlabFlags, KMALLOC_SHIFT_HIGH, NR_KMALLOC_TYPES, SLAB_CONSISTENCY_CHECKS, SLAB_POISON,
    SLAB_RED_ZONE, SLAB_STORE_USER, ZERO_SIZE_PTR,
};
use super::PAGE_SIZE;
use crate::include::numa::{MAX_NUMNODES, NUMA_NO_NODE};
use crate::mm::gfp::{
    GfpT, __GFP_COMP, __GFP_DIRECT_RECLAIM, __GFP_NOFAIL, __GFP_NOMEMALLOC, __GFP_NORETRY,
    __GFP_NOWARN, __GFP_RECLAIM, __GFP_RECLAIMABLE, __GFP_ZERO, GFP_DMA, GFP_DMA32,
};

mod cmpxchg;
mod create;
mod debug;
mod kfence;
mod meminit;
mod params;
mod report;
mod slub_def;

pub use create::calculate_order;
pub use debug::TRACK_SIZE;
use debug::{TrackItem, P};
pub use kfence::KfenceHooks;
pub use params::{kmem_cache_flags, DebugString, SlubParams};
pub use report::SlubInfoLine;
use slub_def::{
    for_each_slab_safe, next_tid, BootCache, Counters, CpuSlabGuard, NodeGuard, NodeLists,
};
pub use slub_def::{
    kmem_cache_size, order_objects, slab_ksize, slub_debug_orig_size, KmemCache, KmemCacheCpu,
    KmemCacheNode, KmemCacheOrderObjects, Slab,
};

/// PAGE_SIZE as a `usize`.
pub const PAGE_SZ: usize = PAGE_SIZE as usize;

// ---------------------------------------------------------------------------------------------
// Constants (mm/slub.c, include/linux/poison.h, mm/slab.h).

/// Linux: SLUB_RED_INACTIVE — red zone of a free object.
pub const SLUB_RED_INACTIVE: u8 = 0xbb;
/// Linux: SLUB_RED_ACTIVE — red zone of an allocated object.
pub const SLUB_RED_ACTIVE: u8 = 0xcc;
/// Linux: POISON_INUSE — slab memory not yet handed out (and object padding).
pub const POISON_INUSE: u8 = 0x5a;
/// Linux: POISON_FREE — a free object's bytes.
pub const POISON_FREE: u8 = 0x6b;
/// Linux: POISON_END — the last byte of a poisoned object.
pub const POISON_END: u8 = 0xa5;

/// Linux: MIN_PARTIAL — empty slabs a node keeps before returning them to the page allocator.
pub const MIN_PARTIAL: u64 = 5;
/// Linux: MAX_PARTIAL.
pub const MAX_PARTIAL: u64 = 10;
/// Linux: DEBUG_DEFAULT_FLAGS — what a bare `slub_debug` switches on (`FZPU`).
pub const DEBUG_DEFAULT_FLAGS: SlabFlags =
    SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER;
/// Linux: DEBUG_METADATA_FLAGS — the debug flags that grow the object (`slub_debug=O`).
pub const DEBUG_METADATA_FLAGS: SlabFlags = SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER;
/// Linux: OO_SHIFT.
pub const OO_SHIFT: u32 = 16;
/// Linux: OO_MASK.
pub const OO_MASK: u32 = (1 << OO_SHIFT) - 1;
/// Linux: MAX_OBJS_PER_PAGE (`slab->objects` is 15 bits).
pub const MAX_OBJS_PER_PAGE: u32 = 32767;
/// Linux: __OBJECT_POISON — internal: the object itself is poisoned (no ctor, no RCU).
pub const __OBJECT_POISON: SlabFlags = 0x8000_0000;
/// Linux: SHRINK_PROMOTE_MAX.
pub const SHRINK_PROMOTE_MAX: usize = 32;
/// Linux: PG_slab (include/linux/page-flags.h; page.rs's value).
pub const PG_SLAB_BIT: u32 = PG_SLAB;

/// Linux: enum slab_state (mm/slab.h). PARTIAL_NODE is SLAB's and unused by SLUB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum SlabState {
    /// No slab functionality yet.
    Down = 0,
    /// SLUB: kmem_cache_node available.
    Partial = 1,
    /// SLAB: kmalloc size for node struct available.
    PartialNode = 2,
    /// Slab caches usable but not all extras yet.
    Up = 3,
    /// Everything is working.
    Full = 4,
}

impl SlabState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Down,
            1 => Self::Partial,
            2 => Self::PartialNode,
            3 => Self::Up,
            _ => Self::Full,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The page source.

/// Where SLUB gets and returns pages (Linux calls the buddy allocator directly).
///
/// # Safety
/// Implementors guarantee, for every block they hand out until it is given back:
/// - `alloc_pages(gfp, order, nid)` returns the head `struct page` of 2^order contiguous pages
///   that nobody else uses, with `_refcount` 1, `mapping` 0, `_mapcount` -1 and no `PG_slab`/
///   `PG_locked`; with `__GFP_COMP` and order > 0 it is a compound page as Linux's
///   `prep_compound_page()` makes it (`PG_head`, tails pointing at the head, the order in the
///   first tail: page.rs's `set_compound_head`/`set_compound_head_info`); with `__GFP_ZERO`
///   the memory is zeroed. `nid` is a preference (`NUMA_NO_NODE`: any); the page's node bits
///   say where it really is. Under memory pressure it returns `None` (and prints nothing when
///   `__GFP_NOWARN` is set).
/// - `page_address(page)` is the block's writable linear-map address, which nobody else
///   touches; `virt_to_page(addr)` is its inverse for every byte of the block (a tail page
///   for addresses past the first page), and `None` for addresses it does not manage.
/// - `free_pages(page, order)` takes the block back with the fields as handed out.
///
/// The kernel's implementation is the buddy allocator (`impl SlabPageSource for PageAlloc`);
/// it additionally needs its `phys_to_virt`/`virt_to_phys` hooks set.
pub unsafe trait SlabPageSource: Sync {
    /// Linux: alloc_pages_node().
    fn alloc_pages(&self, gfp: GfpT, order: u32, nid: i32) -> Option<NonNull<Page>>;
    /// Linux: __free_pages().
    ///
    /// # Safety
    /// `page` is a block this source handed out with this `order`, no longer used.
    unsafe fn free_pages(&self, page: NonNull<Page>, order: u32);
    /// Linux: page_address().
    fn page_address(&self, page: NonNull<Page>) -> *mut u8;
    /// Linux: virt_to_page(), `None` for addresses outside the memory this source manages.
    fn virt_to_page(&self, addr: *const u8) -> Option<NonNull<Page>>;
    /// Linux: smp_processor_id() — must be below the allocator's `nr_cpu_ids`.
    fn smp_processor_id(&self) -> usize {
        0
    }
    /// Linux: numa_mem_id() — the running CPU's memory node.
    fn numa_mem_id(&self) -> i32 {
        0
    }
    /// Linux: jiffies — only for the `age=` of store-user reports.
    fn jiffies(&self) -> u64 {
        0
    }
    /// smp_processor_id() as a plain function, if the source has one: the fast paths call it
    /// directly instead of through the source.
    fn smp_processor_id_fn(&self) -> Option<fn() -> usize> {
        None
    }
    /// The source's memory as one linear map, if it is one (Linux's arm64 linear map, where
    /// `virt_to_page()` is arithmetic): for every address `a` in `[start, start + size)`,
    /// `virt_to_page(a)` is the struct page at `pages + (a - start) / PAGE_SIZE` (counted in
    /// `struct page`s) — all of them initialised `struct page`s of this source that stay valid
    /// for the source's lifetime. SLUB then looks up `kfree()`'s pages without calling
    /// the source; addresses outside still go to [`virt_to_page`](Self::virt_to_page).
    fn linear_map(&self) -> Option<LinearMap> {
        None
    }
}

/// A page source's linear map (see [`SlabPageSource::linear_map`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearMap {
    /// The first mapped address.
    pub start: usize,
    /// Bytes mapped (a multiple of PAGE_SIZE).
    pub size: usize,
    /// The address of the struct page of `start`.
    pub pages: usize,
}

// ---------------------------------------------------------------------------------------------
// The free pointer (CONFIG_SLAB_FREELIST_HARDENED).

/// Linux: freelist_ptr() — encode or decode a free pointer stored at `ptr_addr`.
fn freelist_ptr(s: &KmemCache, ptr: usize, ptr_addr: usize) -> *mut u8 {
    (ptr ^ s.random as usize ^ ptr_addr.swap_bytes()) as *mut u8
}

/// Linux: get_freepointer().
///
/// # Safety
/// `object` is an object slot of a slab of `s`.
unsafe fn get_freepointer(s: &KmemCache, object: *mut u8) -> *mut u8 {
    let addr = object.wrapping_add(s.offset as usize);
    // SAFETY: the slot is inside the object's `size` bytes.
    let raw = unsafe { ptr::read(addr.cast::<usize>()) };
    freelist_ptr(s, raw, addr as usize)
}

/// Linux: get_freepointer_safe() — the fast path's read of a free pointer of an object that
/// a flush on another CPU may have taken meanwhile (then the value is discarded).
///
/// # Safety
/// `object` is an object slot of a slab of `s`, or was one recently: memory that stays
/// mapped (slab pages are linear-map pages).
#[inline(always)]
unsafe fn get_freepointer_safe(s: &KmemCache, object: *mut u8) -> *mut u8 {
    let addr = object.wrapping_add(s.offset as usize);
    // SAFETY: the caller's guarantee; a volatile read, as Linux's READ_ONCE-style access of
    // a word someone else may be writing.
    let raw = unsafe { ptr::read_volatile(addr.cast::<usize>()) };
    freelist_ptr(s, raw, addr as usize)
}

/// Linux: set_freepointer()'s BUG_ON(object == fp) — naive detection of double free or
/// corruption.
#[cold]
#[inline(never)]
fn freepointer_bug(_s: &KmemCache, _object: *mut u8) -> ! {
    crate::kernel::bug::bug()
}

/// Linux: set_freepointer(), with the hardened build's naive double-free check.
///
/// # Safety
/// As get_freepointer(); the caller may write the slot.
#[inline(always)]
unsafe fn set_freepointer(s: &KmemCache, object: *mut u8, fp: *mut u8) {
    // Linux: BUG_ON(object == fp) — naive detection of double free or corruption.
    if object == fp {
        freepointer_bug(s, object);
    }
    let addr = object.wrapping_add(s.offset as usize);
    // SAFETY: the caller's guarantee.
    unsafe {
        ptr::write(
            addr.cast::<usize>(),
            freelist_ptr(s, fp as usize, addr as usize) as usize,
        )
    };
}

// ---------------------------------------------------------------------------------------------
// The allocator instance.

/// One SLUB allocator: Linux's slab globals (`slab_state`, `slab_caches`, `slab_mutex`,
/// `kmem_cache`, `kmem_cache_node`, `kmalloc_caches`, `size_index`) around a page source.
/// The kernel has one (slab_common.rs's `kmem_cache_init`); host tests make many.
///
/// Lock: `slab_mutex` for the cache list and cache creation/destruction; `flush_lock` for
/// flush_all(); the rest are atomics, per-cache locks (see the module doc), and
/// `object_map` (Linux's `object_map_lock`). Once `kmem_cache_init` ran the instance must not move (the cache
/// list head points into it).
pub struct SlubAllocator<'a> {
    source: &'a dyn SlabPageSource,
    /// The source's `smp_processor_id_fn()`, if any.
    cpu_id: Option<fn() -> usize>,
    /// The source's (or the params') linear map; empty if none.
    lm: LinearMap,
    /// The machine and the options.
    pub params: SlubParams,
    slab_state: AtomicU8,
    /// Linux: slab_mutex.
    pub(super) slab_mutex: spin::Mutex<()>,
    /// Linux: slab_caches (under slab_mutex).
    slab_caches: UnsafeCell<ListHead>,
    /// Linux: kmem_cache.
    kmem_cache: AtomicPtr<KmemCache>,
    /// Linux: kmem_cache_node.
    kmem_cache_node: AtomicPtr<KmemCache>,
    boot_kmem_cache: UnsafeCell<BootCache>,
    boot_kmem_cache_node: UnsafeCell<BootCache>,
    /// Linux: kmalloc_caches[type][index].
    pub(super) kmalloc_caches: [[AtomicPtr<KmemCache>; KMALLOC_SHIFT_HIGH + 1]; NR_KMALLOC_TYPES],
    /// Linux: size_index[].
    pub(super) size_index: [AtomicU8; 24],
    /// Linux: object_map + object_map_lock.
    object_map: spin::Mutex<[u64; (MAX_OBJS_PER_PAGE as usize).div_ceil(64)]>,
    /// Reports so far (Linux: the kunit `slab_errors` resource).
    slab_errors: AtomicUsize,
    /// Linux: TAINT_BAD_PAGE, per instance.
    tainted: AtomicBool,
    /// State of get_random_long() / get_random_int().
    rng: AtomicU64,
    /// Pages this allocator holds as slabs (for reports and tests).
    slab_pages: AtomicI64,
    /// kfree_rcu() objects waiting for the end of a grace period (slab_common.rs).
    pub(super) rcu_pending: spin::Mutex<usize>,
    /// Linux: flush_lock — one flush_all() at a time (see there).
    flush_lock: spin::Mutex<()>,
    /// Linux: kfence_allocation_key — KFENCE is up (slub/kfence.rs): 0 or 1. A word, not a
    /// bool: arm64 loads a word at this offset with one instruction, a byte with two.
    kfence_on: AtomicUsize,
    /// KFENCE's allocation gate (KfenceHooks::allocation_gate), once on.
    kfence_gate: AtomicPtr<AtomicU64>,
    /// KFENCE's hooks, set once by kfence_init().
    kfence: spin::Once<&'static dyn KfenceHooks>,
}

// SAFETY: every mutable field is an atomic, a lock, or UnsafeCell data used only under
// `slab_mutex` (slab_caches) or during single-threaded bring-up (the boot caches, before
// bootstrap() publishes the copies).
unsafe impl Sync for SlubAllocator<'_> {}
// SAFETY: as above.
unsafe impl Send for SlubAllocator<'_> {}

impl<'a> SlubAllocator<'a> {
    /// An allocator over `source` for the machine in `params`, in slab_state DOWN.
    pub fn new(source: &'a dyn SlabPageSource, mut params: SlubParams) -> Self {
        assert!(params.nr_cpu_ids >= 1 && params.nr_node_ids >= 1);
        params.alloc_hook = params.init_on_alloc || params.init_on_free || params.kmemleak;
        params.free_hook = params.init_on_free || params.kmemleak;
        assert!(params.nr_node_ids <= MAX_NUMNODES as u32);
        // The fast paths read the CPU number inline on bare metal (this_cpu_inline): one
        // load fewer than testing whether they may.
        #[cfg(all(target_arch = "aarch64", target_os = "none"))]
        assert!(
            params.cpu_number != 0,
            "SLUB: SlubParams::with_cpu_number is required on bare metal"
        );
        let boot = || BootCache {
            cache: KmemCache::new("", 0, 0, None, 1),
            cpu: KmemCacheCpu::new(0),
        };
        let lm = params
            .linear_map
            .or_else(|| source.linear_map())
            .unwrap_or(LinearMap {
                start: 0,
                size: 0,
                pages: 0,
            });
        assert!(lm.size.is_multiple_of(PAGE_SZ));
        // kfree() tests for NULL and ZERO_SIZE_PTR only once the linear map missed.
        assert!(
            lm.size == 0
                || (lm.start > ZERO_SIZE_PTR as usize && lm.start.checked_add(lm.size).is_some()),
            "SLUB: the linear map covers ZERO_SIZE_PTR"
        );
        Self {
            source,
            cpu_id: source.smp_processor_id_fn(),
            lm,
            params,
            slab_state: AtomicU8::new(SlabState::Down as u8),
            slab_mutex: spin::Mutex::new(()),
            slab_caches: UnsafeCell::new(ListHead::new()),
            kmem_cache: AtomicPtr::new(ptr::null_mut()),
            kmem_cache_node: AtomicPtr::new(ptr::null_mut()),
            boot_kmem_cache: UnsafeCell::new(boot()),
            boot_kmem_cache_node: UnsafeCell::new(boot()),
            kmalloc_caches: [const {
                [const { AtomicPtr::new(ptr::null_mut()) }; KMALLOC_SHIFT_HIGH + 1]
            }; NR_KMALLOC_TYPES],
            size_index: super::slab::SIZE_INDEX_INIT.map(AtomicU8::new),
            object_map: spin::Mutex::new([0; (MAX_OBJS_PER_PAGE as usize).div_ceil(64)]),
            slab_errors: AtomicUsize::new(0),
            tainted: AtomicBool::new(false),
            rng: AtomicU64::new(params.seed),
            slab_pages: AtomicI64::new(0),
            rcu_pending: spin::Mutex::new(0),
            flush_lock: spin::Mutex::new(()),
            kfence_on: AtomicUsize::new(0),
            kfence_gate: AtomicPtr::new(ptr::null_mut()),
            kfence: spin::Once::new(),
        }
    }

    /// The page source.
    pub fn source(&self) -> &'a dyn SlabPageSource {
        self.source
    }

    /// Linux: slab_state.
    pub fn slab_state(&self) -> SlabState {
        SlabState::from_u8(self.slab_state.load(Ordering::Acquire))
    }

    pub(super) fn set_slab_state(&self, st: SlabState) {
        self.slab_state.store(st as u8, Ordering::Release);
    }

    /// How many BUG/FIX reports this allocator made (Linux: slub_kunit's slab_errors).
    pub fn slab_errors(&self) -> usize {
        self.slab_errors.load(Ordering::Relaxed)
    }

    /// Resets the report count (a kunit case's test_init()).
    pub fn reset_slab_errors(&self) {
        self.slab_errors.store(0, Ordering::Relaxed);
    }

    /// Pages currently held as slabs.
    pub fn nr_slab_pages(&self) -> i64 {
        self.slab_pages.load(Ordering::Relaxed)
    }

    /// Linux: slab_add_kunit_errors() — here it counts and the report is still printed.
    fn slab_add_kunit_errors(&self) {
        self.slab_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Linux: get_random_long() (splitmix64 over the seed).
    pub(super) fn get_random_long(&self) -> u64 {
        let z = self
            .rng
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        crate::kernel::random::mix(z)
    }

    /// Linux: the kmem_cache cache.
    pub fn kmem_cache(&self) -> Option<&KmemCache> {
        // SAFETY: set once at bring-up to a cache that lives as long as the allocator.
        unsafe { self.kmem_cache.load(Ordering::Acquire).as_ref() }
    }

    /// Linux: the kmem_cache_node cache.
    pub fn kmem_cache_node(&self) -> Option<&KmemCache> {
        // SAFETY: as kmem_cache().
        unsafe { self.kmem_cache_node.load(Ordering::Acquire).as_ref() }
    }

    fn numa_mem_id(&self) -> i32 {
        self.source.numa_mem_id()
    }

    /// Linux: raw_smp_processor_id() without a call — on bare-metal arm64, where the kernel
    /// said where its per-CPU `cpu_number` is (SlubAllocator::new insists on
    /// SlubParams::with_cpu_number there); None elsewhere (the host's simulated CPUs).
    #[inline(always)]
    fn this_cpu_inline(&self) -> Option<usize> {
        #[cfg(all(target_arch = "aarch64", target_os = "none"))]
        {
            // SAFETY: `cpu_number` is the kernel's per-CPU `cpu_number`
            // (SlubParams::with_cpu_number; SlubAllocator::new checked it was given).
            let cpu =
                unsafe { crate::include::processor::this_cpu_read_u64(self.params.cpu_number) };
            Some(cpu as usize)
        }
        #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
        None
    }

    /// Linux: smp_processor_id().
    #[inline(always)]
    pub(super) fn smp_processor_id(&self) -> usize {
        if let Some(cpu) = self.this_cpu_inline() {
            return cpu;
        }
        match self.cpu_id {
            Some(f) => f(),
            None => self.source.smp_processor_id(),
        }
    }

    /// Linux: virt_to_page() by the linear map: None outside it.
    #[inline(always)]
    fn lm_virt_to_page(&self, addr: *const u8) -> Option<NonNull<Page>> {
        let off = (addr as usize).wrapping_sub(self.lm.start);
        if off >= self.lm.size {
            return None;
        }
        let page = self.lm.pages + off / PAGE_SZ * core::mem::size_of::<Page>();
        // SAFETY: inside the linear map: a struct page (SlabPageSource::linear_map).
        Some(unsafe { NonNull::new_unchecked(page as *mut Page) })
    }

    /// Linux: virt_to_page() — by the linear map when the address is in it.
    #[inline(always)]
    fn virt_to_page(&self, addr: *const u8) -> Option<NonNull<Page>> {
        self.lm_virt_to_page(addr)
            .or_else(|| self.source.virt_to_page(addr))
    }

    /// virt_to_head_page() by the linear map only (the kfree() fast path): None outside it.
    #[inline(always)]
    pub(super) fn lm_virt_to_head_page(&self, addr: *const u8) -> Option<NonNull<Page>> {
        let page = self.lm_virt_to_page(addr)?;
        // SAFETY: a struct page of the source (SlabPageSource::linear_map); its head is one
        // too.
        Some(unsafe { NonNull::new_unchecked(page.as_ref().compound_head() as *mut Page) })
    }

    // ----- slab pages

    fn slab_address(&self, slab: *const Slab) -> *mut u8 {
        // SAFETY: a slab is a page handed out by the source.
        self.source
            .page_address(unsafe { NonNull::new_unchecked(slab as *mut Page) })
    }

    /// Linux: slab_size().
    fn slab_size(slab: &Slab) -> usize {
        PAGE_SZ << slab.slab_order()
    }

    /// Linux: virt_to_slab() — the slab holding `addr`, or None if its page is no slab.
    #[inline]
    pub fn virt_to_slab(&self, addr: *const u8) -> Option<&Slab> {
        let page = self.virt_to_page(addr)?;
        // SAFETY: the source returns a struct page of its memory; compound_head reads atomics
        // and the tail's head link.
        let head = unsafe { page.as_ref().compound_head() };
        // SAFETY: a struct page viewed as its slab overlay.
        let slab = unsafe { &*head.cast::<Slab>() };
        slab.test_slab().then_some(slab)
    }

    /// The head page of the block holding `addr` (Linux: virt_to_folio()).
    #[inline]
    pub(super) fn virt_to_head_page(&self, addr: *const u8) -> Option<NonNull<Page>> {
        let page = self.virt_to_page(addr)?;
        // SAFETY: as virt_to_slab().
        NonNull::new(unsafe { page.as_ref().compound_head() as *mut Page })
    }

    /// Linux: check_valid_pointer().
    fn check_valid_pointer(&self, s: &KmemCache, slab: &Slab, object: *mut u8) -> bool {
        if object.is_null() {
            return true;
        }
        let base = self.slab_address(slab) as usize;
        let object = s.restore_red_left(object) as usize;
        !(object < base
            || object >= base + slab.objects() as usize * s.size as usize
            || !(object - base).is_multiple_of(s.size as usize))
    }

    /// Linux: __obj_to_index().
    fn obj_to_index(&self, s: &KmemCache, addr: *mut u8, obj: *mut u8) -> usize {
        (obj as usize - addr as usize) / s.size as usize
    }

    /// Linux: for_each_object() — the objects' addresses.
    fn objects_of(&self, s: &KmemCache, slab: &Slab) -> impl Iterator<Item = *mut u8> {
        let start = s.fixup_red_left(self.slab_address(slab));
        let (n, size) = (slab.objects() as usize, s.size as usize);
        (0..n).map(move |i| start.wrapping_add(i * size))
    }

    // ----- node counters

    /// Linux: inc_slabs_node().
    fn inc_slabs_node(&self, s: &KmemCache, node: i32, objects: u32) {
        // May be called before the node structure exists (early_kmem_cache_node_alloc).
        if let Some(n) = s.get_node(node) {
            n.nr_slabs.fetch_add(1, Ordering::Relaxed);
            n.total_objects.fetch_add(objects as i64, Ordering::Relaxed);
        }
    }

    /// Linux: dec_slabs_node().
    fn dec_slabs_node(&self, s: &KmemCache, node: i32, objects: u32) {
        if let Some(n) = s.get_node(node) {
            n.nr_slabs.fetch_sub(1, Ordering::Relaxed);
            n.total_objects.fetch_sub(objects as i64, Ordering::Relaxed);
        }
    }

    /// Linux: __add_partial()/add_partial().
    fn add_partial(n: &KmemCacheNode, l: &mut NodeLists, slab: &Slab, tail: bool) {
        n.nr_partial.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the list lock is held (we have `l`); the slab is on no list.
        unsafe {
            if tail {
                list_add_tail(slab.list(), &mut l.partial);
            } else {
                list_add(slab.list(), &mut l.partial);
            }
        }
    }

    /// Linux: remove_partial().
    fn remove_partial(n: &KmemCacheNode, _l: &mut NodeLists, slab: &Slab) {
        // SAFETY: the list lock is held; the slab is on the partial list.
        unsafe { list_del(slab.list()) };
        n.nr_partial.fetch_sub(1, Ordering::Relaxed);
    }

    /// Linux: add_full() — only SLAB_STORE_USER caches track full slabs.
    fn add_full(s: &KmemCache, l: &mut NodeLists, slab: &Slab) {
        if s.flags & SLAB_STORE_USER == 0 {
            return;
        }
        // SAFETY: the list lock is held; the slab is on no list.
        unsafe { list_add(slab.list(), &mut l.full) };
    }

    /// Linux: remove_full().
    fn remove_full(s: &KmemCache, _l: &mut NodeLists, slab: &Slab) {
        if s.flags & SLAB_STORE_USER == 0 {
            return;
        }
        // SAFETY: the list lock is held; the slab is on the full list.
        unsafe { list_del(slab.list()) };
    }

    /// Linux: __cmpxchg_double_slab() in its slab_lock form.
    fn cmpxchg_double_slab(
        &self,
        slab: &Slab,
        freelist_old: *mut u8,
        counters_old: Counters,
        freelist_new: *mut u8,
        counters_new: Counters,
    ) -> bool {
        slab.slab_lock();
        let ok = slab.freelist() == freelist_old && slab.counters() == counters_old;
        if ok {
            slab.set_freelist(freelist_new);
            slab.set_counters(counters_new);
        }
        slab.slab_unlock();
        ok
    }

    // ----- creating and freeing slabs

    /// Linux: alloc_slab_page().
    fn alloc_slab_page(&self, gfp: GfpT, node: i32, oo: KmemCacheOrderObjects) -> Option<&Slab> {
        let page = self.source.alloc_pages(gfp, oo.oo_order(), node)?;
        // SAFETY: a fresh block, ours; the overlay is valid on its head page.
        let slab = unsafe { &*page.as_ptr().cast::<Slab>() };
        slab.__page_flags.fetch_or(1 << PG_SLAB, Ordering::Release);
        self.slab_pages
            .fetch_add(1 << oo.oo_order(), Ordering::Relaxed);
        Some(slab)
    }

    /// Linux: setup_object() with setup_object_debug().
    fn setup_object(&self, s: &KmemCache, object: *mut u8) -> *mut u8 {
        if s.flags & (SLAB_STORE_USER | SLAB_RED_ZONE | __OBJECT_POISON) != 0 {
            self.init_object(s, object, SLUB_RED_INACTIVE);
            self.init_tracking(s, object);
        }
        if let Some(ctor) = s.ctor {
            ctor(object);
        }
        object
    }

    /// Linux: shuffle_freelist() with next_freelist_entry().
    fn shuffle_freelist(&self, s: &KmemCache, slab: &Slab) -> bool {
        let seq = s.random_seq.load(Ordering::Acquire);
        if slab.objects() < 2 || seq.is_null() {
            return false;
        }
        let freelist_count = s.oo.oo_objects() as usize;
        let mut pos = self.get_random_long() as usize % freelist_count;
        let page_limit = slab.objects() as usize * s.size as usize;
        let start = s.fixup_red_left(self.slab_address(slab));
        let mut next_entry = || loop {
            // SAFETY: random_seq holds freelist_count entries (init_cache_random_seq).
            let idx = unsafe { *seq.add(pos) } as usize;
            pos += 1;
            if pos >= freelist_count {
                pos = 0;
            }
            // If the target page allocation failed, the number of objects on the page might
            // be smaller than the usual size defined by the cache.
            if idx < page_limit {
                return start.wrapping_add(idx);
            }
        };
        let mut cur = self.setup_object(s, next_entry());
        slab.set_freelist(cur);
        for _ in 1..slab.objects() {
            let next = self.setup_object(s, next_entry());
            // SAFETY: both are object slots of this new slab.
            unsafe { set_freepointer(s, cur, next) };
            cur = next;
        }
        // SAFETY: as above.
        unsafe { set_freepointer(s, cur, ptr::null_mut()) };
        true
    }

    /// Linux: allocate_slab() — a new slab with every object on its freelist.
    fn allocate_slab(&self, s: &KmemCache, flags: GfpT, node: i32) -> Option<&Slab> {
        let flags = flags | s.allocflags;
        let mut oo = s.oo;
        // Let the initial higher-order allocation fail under memory pressure so we fall-back
        // to the minimum order allocation.
        let mut alloc_gfp = (flags | __GFP_NOWARN | __GFP_NORETRY) & !__GFP_NOFAIL;
        if alloc_gfp & __GFP_DIRECT_RECLAIM != 0 && oo.oo_order() > s.min.oo_order() {
            alloc_gfp = (alloc_gfp | __GFP_NOMEMALLOC) & !__GFP_RECLAIM;
        }
        let slab = match self.alloc_slab_page(alloc_gfp, node, oo) {
            Some(slab) => slab,
            None => {
                oo = s.min;
                // Allocation may have failed due to fragmentation. Try a lower order alloc
                // if possible.
                self.alloc_slab_page(flags, node, oo)?
            }
        };
        let mut c = Counters(0);
        c.set_objects(oo.oo_objects());
        slab.set_counters(c);
        slab.slab_cache
            .store(s as *const KmemCache as *mut KmemCache, Ordering::Release);
        let start = self.slab_address(slab);
        // Linux: setup_slab_debug().
        if s.flags & SLAB_POISON != 0 {
            // SAFETY: the whole slab is ours.
            unsafe { ptr::write_bytes(start, POISON_INUSE, Self::slab_size(slab)) };
        }
        if !self.shuffle_freelist(s, slab) {
            let mut p = self.setup_object(s, s.fixup_red_left(start));
            slab.set_freelist(p);
            for _ in 1..slab.objects() {
                let next = self.setup_object(s, p.wrapping_add(s.size as usize));
                // SAFETY: both are object slots of this new slab.
                unsafe { set_freepointer(s, p, next) };
                p = next;
            }
            // SAFETY: as above.
            unsafe { set_freepointer(s, p, ptr::null_mut()) };
        }
        Some(slab)
    }

    /// Linux: new_slab().
    fn new_slab(&self, s: &KmemCache, flags: GfpT, node: i32) -> Option<&Slab> {
        // Linux: GFP_RECLAIM_MASK | GFP_CONSTRAINT_MASK — zeroing is the object's business,
        // zone modifiers come from the cache's allocflags.
        let flags = flags & !(__GFP_ZERO | __GFP_COMP | GFP_DMA | GFP_DMA32 | __GFP_RECLAIMABLE);
        self.allocate_slab(s, flags, node)
    }

    /// Linux: __free_slab().
    fn __free_slab(&self, s: &KmemCache, slab: &Slab) {
        let order = slab.slab_order();
        if s.flags & SLAB_CONSISTENCY_CHECKS != 0 {
            self.slab_pad_check(s, slab);
            for p in self.objects_of(s, slab) {
                self.check_object(s, slab, p, SLUB_RED_INACTIVE);
            }
        }
        slab.__page_flags
            .fetch_and(!(1 << PG_SLAB), Ordering::Release);
        slab.slab_cache.store(ptr::null_mut(), Ordering::Release);
        // The page allocator reads these words as index and private.
        slab.freelist.store(ptr::null_mut(), Ordering::Relaxed);
        slab.counters.store(0, Ordering::Relaxed);
        self.slab_pages.fetch_sub(1 << order, Ordering::Relaxed);
        // SAFETY: the slab came from the source with this order and is unreachable now.
        unsafe {
            self.source
                .free_pages(NonNull::from(slab).cast::<Page>(), order)
        };
    }

    /// Linux: discard_slab() (free_slab: SLAB_TYPESAFE_BY_RCU would defer; see module doc).
    fn discard_slab(&self, s: &KmemCache, slab: &Slab) {
        self.dec_slabs_node(s, slab.slab_nid(), slab.objects());
        self.__free_slab(s, slab);
    }

    // ----- the allocation paths

    /// Linux: get_freelist() — take the slab's freelist for the CPU; unfreeze if empty.
    fn get_freelist(&self, slab: &Slab) -> *mut u8 {
        slab.slab_lock();
        let freelist = slab.freelist();
        let mut new = slab.counters();
        debug_assert!(new.frozen());
        new.set_inuse(new.objects());
        new.set_frozen(!freelist.is_null());
        slab.set_counters(new);
        slab.set_freelist(ptr::null_mut());
        slab.slab_unlock();
        freelist
    }

    /// Linux: acquire_slab() — take a partial slab off the node list, frozen; `mode`: take
    /// all its objects (for the CPU slab) or leave them (for the CPU partial list).
    fn acquire_slab(
        &self,
        n: &KmemCacheNode,
        l: &mut NodeLists,
        slab: &Slab,
        mode: bool,
    ) -> *mut u8 {
        slab.slab_lock();
        let freelist = slab.freelist();
        let mut new = slab.counters();
        let new_freelist = if mode {
            new.set_inuse(new.objects());
            ptr::null_mut()
        } else {
            freelist
        };
        new.set_frozen(true);
        slab.set_freelist(new_freelist);
        slab.set_counters(new);
        slab.slab_unlock();
        Self::remove_partial(n, l, slab);
        freelist
    }

    /// Linux: put_cpu_partial() with the CPU lock held: push `slab` (frozen) on `c->partial`;
    /// returns the old set if it must be unfrozen (when draining a full array).
    fn put_cpu_partial_locked(
        &self,
        s: &KmemCache,
        c: &mut CpuSlabGuard,
        slab: &Slab,
        drain: bool,
    ) -> *mut Slab {
        let mut oldslab = c.partial();
        let mut to_unfreeze = ptr::null_mut();
        let mut slabs = 0;
        if !oldslab.is_null() {
            // SAFETY: the CPU lock is held; the partial list is ours.
            let old_slabs = unsafe { (*oldslab).slabs() };
            if drain && old_slabs >= s.cpu_partial_slabs {
                // Partial array is full. Move the existing set to the per node partial list.
                to_unfreeze = oldslab;
                oldslab = ptr::null_mut();
            } else {
                slabs = old_slabs;
            }
        }
        slabs += 1;
        // SAFETY: the slab is frozen for this CPU.
        unsafe { slab.set_next(oldslab, slabs) };
        c.set_partial(slab as *const Slab as *mut Slab);
        to_unfreeze
    }

    /// Linux: put_cpu_partial() — from __slab_free, on this CPU.
    fn put_cpu_partial(&self, s: &KmemCache, slab: &Slab, drain: bool) {
        let cpu = self.smp_processor_id();
        let to_unfreeze = {
            let mut c = s.cpu_slab(cpu).lock();
            self.put_cpu_partial_locked(s, &mut c, slab, drain)
        };
        if !to_unfreeze.is_null() {
            self.__unfreeze_partials(s, to_unfreeze);
        }
    }

    /// Linux: __unfreeze_partials() — move a CPU's partial slabs to their nodes' lists,
    /// discarding the empty ones beyond min_partial.
    fn __unfreeze_partials(&self, s: &KmemCache, mut partial: *mut Slab) {
        let mut to_discard: *mut Slab = ptr::null_mut();
        while !partial.is_null() {
            // SAFETY: the chain was detached from a CPU's partial list by our caller.
            let slab = unsafe { &*partial };
            // SAFETY: as above.
            partial = unsafe { slab.next() };
            let n = s
                .get_node(slab.slab_nid())
                .expect("SLUB: slab on a node without kmem_cache_node");
            let mut l = n.list_lock.lock();
            slab.slab_lock();
            let mut new = slab.counters();
            debug_assert!(new.frozen());
            new.set_frozen(false);
            slab.set_counters(new);
            slab.slab_unlock();
            if new.inuse() == 0 && n.nr_partial() >= s.min_partial {
                // SAFETY: unfrozen and on no list: ours to chain.
                unsafe { slab.set_next(to_discard, 0) };
                to_discard = slab as *const Slab as *mut Slab;
            } else {
                Self::add_partial(n, &mut l, slab, true);
            }
        }
        while !to_discard.is_null() {
            // SAFETY: chained above.
            let slab = unsafe { &*to_discard };
            // SAFETY: as above.
            to_discard = unsafe { slab.next() };
            self.discard_slab(s, slab);
        }
    }

    /// Linux: deactivate_slab() — give a CPU slab back to its node: splice the CPU's freelist
    /// into the slab's, unfreeze, then file it as partial, free it, or leave it full.
    fn deactivate_slab(&self, s: &KmemCache, slab: &Slab, freelist: *mut u8) {
        let n = s
            .get_node(slab.slab_nid())
            .expect("SLUB: slab on a node without kmem_cache_node");
        let tail = !slab.freelist().is_null();
        // Stage one: count the objects on the CPU's freelist and find its tail.
        let mut free_delta = 0;
        let mut freelist_tail: *mut u8 = ptr::null_mut();
        let mut iter = freelist;
        while !iter.is_null() {
            // SAFETY: objects of this slab on the CPU's list.
            let nextfree = unsafe { get_freepointer(s, iter) };
            // Linux: freelist_corrupted() — an invalid next pointer isolates the rest.
            if s.flags & SLAB_CONSISTENCY_CHECKS != 0
                && !self.check_valid_pointer(s, slab, nextfree)
            {
                self.object_err(s, slab, iter, "Freechain corrupt");
                break;
            }
            freelist_tail = iter;
            free_delta += 1;
            iter = nextfree;
        }
        // Stage two: unfreeze while splicing.
        loop {
            let old_freelist = slab.freelist();
            let old = slab.counters();
            let mut new = old;
            let new_freelist = if !freelist_tail.is_null() {
                new.set_inuse(new.inuse() - free_delta);
                // SAFETY: the tail is an object of this slab.
                unsafe { set_freepointer(s, freelist_tail, old_freelist) };
                freelist
            } else {
                old_freelist
            };
            new.set_frozen(false);
            let free_it = new.inuse() == 0 && n.nr_partial() >= s.min_partial;
            let mut guard = (!free_it && !new_freelist.is_null()).then(|| n.list_lock.lock());
            if !self.cmpxchg_double_slab(slab, old_freelist, old, new_freelist, new) {
                drop(guard.take());
                continue;
            }
            if let Some(mut l) = guard {
                Self::add_partial(n, &mut l, slab, tail);
            } else if free_it {
                self.discard_slab(s, slab);
            }
            // Else M_FULL_NOLIST: a full slab is on no list.
            return;
        }
    }

    /// Linux: get_partial_node().
    fn get_partial_node(
        &self,
        s: &KmemCache,
        n: Option<&KmemCacheNode>,
        c: &mut CpuSlabGuard,
        pslab: &mut *mut Slab,
    ) -> *mut u8 {
        let Some(n) = n else { return ptr::null_mut() };
        // Racy check. If we mistakenly see no partial slabs then we just allocate an empty slab.
        if n.nr_partial() == 0 {
            return ptr::null_mut();
        }
        let mut object: *mut u8 = ptr::null_mut();
        let mut partial_slabs = 0;
        let mut l = n.list_lock.lock();
        let head: *mut ListHead = &mut l.partial;
        let mut done = false;
        for_each_slab_safe(head, |slab| {
            if done {
                return;
            }
            // SAFETY: a slab on this node's list.
            let slab = unsafe { &*slab };
            let t = self.acquire_slab(n, &mut l, slab, object.is_null());
            if object.is_null() {
                *pslab = slab as *const Slab as *mut Slab;
                object = t;
            } else {
                let unfreeze = self.put_cpu_partial_locked(s, c, slab, false);
                debug_assert!(unfreeze.is_null());
                partial_slabs += 1;
            }
            if !s.has_cpu_partial() || partial_slabs > s.cpu_partial_slabs / 2 {
                done = true;
            }
        });
        object
    }

    /// Linux: get_partial() with get_any_partial() simplified to "the other slab nodes in
    /// order" (no zonelist, no remote_node_defrag_ratio).
    fn get_partial(
        &self,
        s: &KmemCache,
        node: i32,
        c: &mut CpuSlabGuard,
        pslab: &mut *mut Slab,
    ) -> *mut u8 {
        let searchnode = if node == NUMA_NO_NODE {
            self.numa_mem_id()
        } else {
            node
        };
        let object = self.get_partial_node(s, s.get_node(searchnode), c, pslab);
        if !object.is_null() || node != NUMA_NO_NODE {
            return object;
        }
        // Linux: get_any_partial() — only nodes with more than min_partial partial slabs.
        for (nid, n) in s.nodes() {
            if nid != searchnode && n.nr_partial() > s.min_partial {
                let object = self.get_partial_node(s, Some(n), c, pslab);
                if !object.is_null() {
                    return object;
                }
            }
        }
        ptr::null_mut()
    }

    /// Linux: node_match().
    fn node_match(slab: &Slab, node: i32) -> bool {
        node == NUMA_NO_NODE || slab.slab_nid() == node
    }

    /// Linux: ___slab_alloc() for non-debug caches, with the CPU lock held throughout.
    fn ___slab_alloc(
        &self,
        s: &KmemCache,
        gfp: GfpT,
        mut node: i32,
        c: &mut CpuSlabGuard,
    ) -> *mut u8 {
        loop {
            let slab = c.slab();
            if slab.is_null() {
                // If the node is not online or has no normal memory, just ignore the node
                // constraint.
                if node != NUMA_NO_NODE && !self.params.node_in_slab_nodes(node) {
                    node = NUMA_NO_NODE;
                }
                // new_slab: the next per-CPU partial slab, if any.
                if !c.partial().is_null() {
                    let p = c.partial();
                    // SAFETY: the CPU lock is held.
                    c.set_partial(unsafe { (*p).next() });
                    c.set_slab(p);
                    continue;
                }
                break;
            }
            // SAFETY: the CPU's slab stays a slab while it is frozen for us.
            let slab = unsafe { &*slab };
            if !Self::node_match(slab, node) {
                if !self.params.node_in_slab_nodes(node) {
                    node = NUMA_NO_NODE;
                } else {
                    let freelist = c.freelist();
                    c.set_slab(ptr::null_mut());
                    c.set_freelist(ptr::null_mut());
                    self.deactivate_slab(s, slab, freelist);
                    continue;
                }
            }
            let mut freelist = c.freelist();
            if freelist.is_null() {
                freelist = self.get_freelist(slab);
                if freelist.is_null() {
                    c.set_slab(ptr::null_mut());
                    c.set_freelist(ptr::null_mut());
                    continue;
                }
            }
            // load_freelist:
            // SAFETY: an object of the CPU slab.
            c.set_freelist(unsafe { get_freepointer(s, freelist) });
            return freelist;
        }
        // new_objects:
        let mut pslab: *mut Slab = ptr::null_mut();
        let mut freelist = self.get_partial(s, node, c, &mut pslab);
        if freelist.is_null() {
            let Some(slab) = self.new_slab(s, gfp, node) else {
                self.slab_out_of_memory(s, gfp, node);
                return ptr::null_mut();
            };
            // No other reference to the slab yet so we can muck around with it freely.
            freelist = slab.freelist();
            slab.set_freelist(ptr::null_mut());
            let mut cnt = slab.counters();
            cnt.set_inuse(cnt.objects());
            cnt.set_frozen(true);
            slab.set_counters(cnt);
            self.inc_slabs_node(s, slab.slab_nid(), cnt.objects());
            pslab = slab as *const Slab as *mut Slab;
        }
        debug_assert!(c.slab().is_null());
        c.set_slab(pslab);
        // SAFETY: an object of the new CPU slab.
        c.set_freelist(unsafe { get_freepointer(s, freelist) });
        freelist
    }

    /// Linux: alloc_single_from_partial() — debug caches take one object under list_lock.
    fn alloc_single_from_partial(
        &self,
        s: &KmemCache,
        n: &KmemCacheNode,
        l: &mut NodeLists,
        slab: &Slab,
        orig_size: usize,
    ) -> *mut u8 {
        let object = slab.freelist();
        // SAFETY: an object of the slab (checked by alloc_debug_processing below when F).
        slab.set_freelist(unsafe { get_freepointer(s, object) });
        slab.set_inuse(slab.inuse() + 1);
        if !self.alloc_debug_processing(s, slab, object, orig_size) {
            Self::remove_partial(n, l, slab);
            return ptr::null_mut();
        }
        if slab.inuse() == slab.objects() {
            Self::remove_partial(n, l, slab);
            Self::add_full(s, l, slab);
        }
        object
    }

    /// Linux: alloc_single_from_new_slab().
    fn alloc_single_from_new_slab(&self, s: &KmemCache, slab: &Slab, orig_size: usize) -> *mut u8 {
        let nid = slab.slab_nid();
        let n = s
            .get_node(nid)
            .expect("SLUB: slab on a node without kmem_cache_node");
        let object = slab.freelist();
        // SAFETY: the first object of a fresh slab.
        slab.set_freelist(unsafe { get_freepointer(s, object) });
        slab.set_inuse(1);
        if !self.alloc_debug_processing(s, slab, object, orig_size) {
            // It's not really expected that this would fail on a freshly allocated slab, but a
            // concurrent memory corruption in theory could cause that.
            return ptr::null_mut();
        }
        let mut l = n.list_lock.lock();
        if slab.inuse() == slab.objects() {
            Self::add_full(s, &mut l, slab);
        } else {
            Self::add_partial(n, &mut l, slab, false);
        }
        self.inc_slabs_node(s, nid, slab.objects());
        object
    }

    /// Linux: slab_alloc_node() — the allocation entry: the lockless CPU freelist fast path,
    /// else the slow path (under the CPU slot's lock; debug caches: the node lists), then
    /// slab_post_alloc_hook()'s zeroing. Every call off the fast path is a tail call, so the
    /// fast path needs no stack frame.
    #[inline(always)]
    pub(super) fn slab_alloc_node(
        &self,
        s: &KmemCache,
        gfp: GfpT,
        node: i32,
        caller: &'static Location<'static>,
        orig_size: usize,
    ) -> *mut u8 {
        // Linux: `object = kfence_alloc(s, orig_size, gfpflags); if (unlikely(object))`.
        // A tail call, so that the fast path spills no registers around a call (its frame
        // is the frame record alone).
        if self.kfence_due() {
            return self.slab_alloc_node_kfence(s, gfp, node, caller, orig_size);
        }
        match self.this_cpu_inline() {
            Some(cpu) => self.slab_alloc_node_on(cpu, s, gfp, node, caller, orig_size),
            None => self.slab_alloc_node_call(s, gfp, node, caller, orig_size),
        }
    }

    /// slab_alloc_node() once KFENCE's sample is due: its object, else the normal path.
    #[cold]
    #[inline(never)]
    fn slab_alloc_node_kfence(
        &self,
        s: &KmemCache,
        gfp: GfpT,
        node: i32,
        caller: &'static Location<'static>,
        orig_size: usize,
    ) -> *mut u8 {
        if let Some(object) = self.kfence_alloc(s, orig_size, gfp) {
            return object;
        }
        self.slab_alloc_node_call(s, gfp, node, caller, orig_size)
    }

    /// slab_alloc_node() where the CPU number takes a call.
    #[inline(never)]
    fn slab_alloc_node_call(
        &self,
        s: &KmemCache,
        gfp: GfpT,
        node: i32,
        caller: &'static Location<'static>,
        orig_size: usize,
    ) -> *mut u8 {
        let cpu = self.smp_processor_id();
        self.slab_alloc_node_on(cpu, s, gfp, node, caller, orig_size)
    }

    /// slab_alloc_node() on CPU `cpu` (the running one).
    #[inline(always)]
    fn slab_alloc_node_on(
        &self,
        cpu: usize,
        s: &KmemCache,
        gfp: GfpT,
        node: i32,
        caller: &'static Location<'static>,
        orig_size: usize,
    ) -> *mut u8 {
        match self.slab_alloc_fast(cpu, s, node) {
            Some(object) if !self.alloc_needs_init(gfp) => object,
            Some(object) => self.slab_post_alloc_hook(s, gfp, object, orig_size),
            None => self.slab_alloc_slow(s, gfp, node, caller, orig_size),
        }
    }

    /// The fast path of slab_alloc_node(): the head of this CPU's freelist, taken with one
    /// cmpxchg_double; None when the slow path must run (no CPU freelist — always so for
    /// debug caches —, the wrong node, a CPU without its own slot).
    #[inline(always)]
    fn slab_alloc_fast(&self, cpu: usize, s: &KmemCache, node: i32) -> Option<*mut u8> {
        if cpu >= s.nr_cpu_slots as usize {
            return None;
        }
        let c = s.cpu_slab(cpu);
        loop {
            // Linux: the tid is read first; if it is still the same at the cmpxchg, nothing
            // (no slow path, no flush) changed the slot in between. Acquire: a flusher's
            // cleared `slab` is seen with its new tid (see KmemCacheCpu).
            let tid = c.tid.load(Ordering::Acquire);
            let object = c.freelist.load(Ordering::Relaxed);
            if object.is_null() || (node != NUMA_NO_NODE && !self.cpu_slab_on_node(c, node)) {
                return None;
            }
            // SAFETY: an object of the CPU slab, or, if a flush took it meanwhile, mapped
            // slab memory whose value the failing cmpxchg below discards.
            let next = unsafe { get_freepointer_safe(s, object) };
            if c.cmpxchg_freelist(object, tid, next, next_tid(tid)) {
                return Some(object);
            }
        }
    }

    /// Linux: slab_post_alloc_hook()'s zeroing (`__GFP_ZERO`): the object, or with a
    /// kmalloc red zone only the requested size (see the module doc).
    #[inline(always)]
    fn slab_post_alloc_zero(&self, s: &KmemCache, object: *mut u8, orig_size: usize) -> *mut u8 {
        if !object.is_null() {
            let len = if slub_debug_orig_size(s) {
                orig_size.min(s.object_size() as usize)
            } else {
                s.object_size() as usize
            };
            // SAFETY: a freshly allocated object of at least object_size bytes.
            unsafe { meminit::memzero(object, len) };
        }
        object
    }

    /// Linux: node_match(c->slab, node) as the fast path asks it, outside the lock: the slab
    /// read may be stale, then the cmpxchg fails.
    #[inline(always)]
    fn cpu_slab_on_node(&self, c: &KmemCacheCpu, node: i32) -> bool {
        let slab = c.slab.load(Ordering::Relaxed);
        // SAFETY: a struct page of the source (slabs are never unmapped); its node bits are
        // atomic.
        !slab.is_null() && unsafe { (*slab).slab_nid() } == node
    }

    /// Linux: __slab_alloc() — the slow path: debug caches one object from the node lists,
    /// the others ___slab_alloc() under the CPU slot's lock; then the zeroing.
    #[inline(never)]
    fn slab_alloc_slow(
        &self,
        s: &KmemCache,
        gfp: GfpT,
        node: i32,
        caller: &'static Location<'static>,
        orig_size: usize,
    ) -> *mut u8 {
        let object = if s.kmem_cache_debug() {
            let object = self.debug_slab_alloc(s, gfp, node, orig_size);
            if !object.is_null() && s.flags & SLAB_STORE_USER != 0 {
                self.set_track(s, object, TrackItem::Alloc, Some(caller));
            }
            object
        } else {
            let mut c = s.cpu_slab(self.smp_processor_id()).lock();
            self.___slab_alloc(s, gfp, node, &mut c)
        };
        if self.alloc_needs_init(gfp) {
            return self.slab_post_alloc_hook(s, gfp, object, orig_size);
        }
        object
    }

    /// Linux: kmem_cache_alloc().
    #[track_caller]
    pub fn kmem_cache_alloc(&self, s: &KmemCache, gfp: GfpT) -> *mut u8 {
        self.slab_alloc_node(
            s,
            gfp,
            NUMA_NO_NODE,
            Location::caller(),
            s.object_size() as usize,
        )
    }

    /// Linux: kmem_cache_alloc_node().
    #[track_caller]
    pub fn kmem_cache_alloc_node(&self, s: &KmemCache, gfp: GfpT, node: i32) -> *mut u8 {
        self.slab_alloc_node(s, gfp, node, Location::caller(), s.object_size() as usize)
    }

    // ----- the free paths

    /// Linux: free_to_partial_list() — debug caches free under list_lock.
    fn free_to_partial_list(
        &self,
        s: &KmemCache,
        slab: &Slab,
        object: *mut u8,
        caller: &'static Location<'static>,
    ) {
        let n = s
            .get_node(slab.slab_nid())
            .expect("SLUB: slab on a node without kmem_cache_node");
        let mut slab_free = false;
        {
            let mut l = n.list_lock.lock();
            if self.free_debug_processing(s, slab, object, caller) {
                let prior = slab.freelist();
                // Perform the actual freeing while we still hold the locks.
                slab.set_inuse(slab.inuse() - 1);
                // SAFETY: a checked (or trusted) object of this slab.
                unsafe { set_freepointer(s, object, prior) };
                slab.set_freelist(object);
                // If the slab is empty, and node's partial list is full, it should be
                // discarded anyway no matter it's on full or partial list.
                slab_free = slab.inuse() == 0 && n.nr_partial() >= s.min_partial;
                if prior.is_null() {
                    // Was on the full list.
                    Self::remove_full(s, &mut l, slab);
                    if !slab_free {
                        Self::add_partial(n, &mut l, slab, true);
                    }
                } else if slab_free {
                    Self::remove_partial(n, &mut l, slab);
                }
            }
            if slab_free {
                // Update the counters while still holding n->list_lock to prevent spurious
                // validation warnings.
                self.dec_slabs_node(s, slab.slab_nid(), slab.objects());
            }
        }
        if slab_free {
            self.__free_slab(s, slab);
        }
    }

    /// Linux: __slab_free() — a free into a slab that is not this CPU's active slab.
    #[inline(never)]
    fn __slab_free(
        &self,
        s: &KmemCache,
        slab: &Slab,
        object: *mut u8,
        caller: &'static Location<'static>,
    ) {
        if self.kfence_free(s, object) {
            return;
        }
        if s.kmem_cache_debug() {
            return self.free_to_partial_list(s, slab, object, caller);
        }
        let mut n: Option<&KmemCacheNode> = None;
        let mut guard: Option<NodeGuard> = None;
        let (prior, new, was_frozen) = loop {
            drop(guard.take());
            let prior = slab.freelist();
            let counters = slab.counters();
            // SAFETY: the object belongs to this slab (virt_to_slab) and is being freed.
            unsafe { set_freepointer(s, object, prior) };
            let mut new = counters;
            let was_frozen = new.frozen();
            new.set_inuse(new.inuse().wrapping_sub(1));
            if (new.inuse() == 0 || prior.is_null()) && !was_frozen {
                if s.has_cpu_partial() && prior.is_null() {
                    // Slab was on no list before and will be partially empty. We can defer
                    // the list move and instead freeze it.
                    new.set_frozen(true);
                } else {
                    // Needs to be taken off a list: speculatively acquire the list_lock.
                    let node = s
                        .get_node(slab.slab_nid())
                        .expect("SLUB: no kmem_cache_node");
                    n = Some(node);
                    guard = Some(node.list_lock.lock());
                }
            }
            if self.cmpxchg_double_slab(slab, prior, counters, object, new) {
                break (prior, new, was_frozen);
            }
        };
        let Some(mut l) = guard else {
            if !was_frozen && new.frozen() {
                // If we just froze the slab then put it onto the per cpu partial list.
                self.put_cpu_partial(s, slab, true);
            }
            return;
        };
        let n = n.expect("list lock taken");
        if new.inuse() == 0 && n.nr_partial() >= s.min_partial {
            // slab_empty:
            if !prior.is_null() {
                Self::remove_partial(n, &mut l, slab);
            } else {
                Self::remove_full(s, &mut l, slab);
            }
            drop(l);
            self.discard_slab(s, slab);
            return;
        }
        // Objects left in the slab. If it was not on the partial list before then add it.
        if !s.has_cpu_partial() && prior.is_null() {
            Self::remove_full(s, &mut l, slab);
            Self::add_partial(n, &mut l, slab, true);
        }
    }

    /// Linux: do_slab_free() — onto the CPU's lockless freelist if the object is in its
    /// active slab, else __slab_free() (a tail call: the fast path needs no stack frame).
    /// Debug caches never have an active slab.
    #[inline(always)]
    fn do_slab_free(
        &self,
        s: &KmemCache,
        slab: &Slab,
        object: *mut u8,
        caller: &'static Location<'static>,
    ) {
        // Linux: slab_free_hook() — kmemleak, init_on_free; a tail call, so that the fast
        // path spills no registers around a call.
        if self.params.free_hook {
            return self.do_slab_free_hooked(s, slab, object, caller);
        }
        match self.this_cpu_inline() {
            Some(cpu) => self.do_slab_free_on(cpu, s, slab, object, caller),
            None => self.do_slab_free_call(s, slab, object, caller),
        }
    }

    /// do_slab_free() with slab_free_hook() first (kmemleak, init_on_free).
    #[inline(never)]
    fn do_slab_free_hooked(
        &self,
        s: &KmemCache,
        slab: &Slab,
        object: *mut u8,
        caller: &'static Location<'static>,
    ) {
        self.slab_free_hook(s, object);
        self.do_slab_free_call(s, slab, object, caller)
    }

    /// do_slab_free() where the CPU number takes a call.
    #[inline(never)]
    fn do_slab_free_call(
        &self,
        s: &KmemCache,
        slab: &Slab,
        object: *mut u8,
        caller: &'static Location<'static>,
    ) {
        let cpu = self.smp_processor_id();
        self.do_slab_free_on(cpu, s, slab, object, caller)
    }

    /// do_slab_free() on CPU `cpu` (the running one).
    #[inline(always)]
    fn do_slab_free_on(
        &self,
        cpu: usize,
        s: &KmemCache,
        slab: &Slab,
        object: *mut u8,
        caller: &'static Location<'static>,
    ) {
        if cpu < s.nr_cpu_slots as usize {
            let c = s.cpu_slab(cpu);
            loop {
                // Read the tid before the slab (see slab_alloc_fast()).
                let tid = c.tid.load(Ordering::Acquire);
                if !ptr::eq(c.slab.load(Ordering::Relaxed), slab) {
                    break;
                }
                let freelist = c.freelist.load(Ordering::Relaxed);
                if object == freelist {
                    // set_freepointer()'s BUG_ON, off the fast path.
                    freepointer_bug(s, object);
                }
                // SAFETY: an object of the CPU slab, being freed: ours to write.
                unsafe { set_freepointer(s, object, freelist) };
                if c.cmpxchg_freelist(freelist, tid, object, next_tid(tid)) {
                    return;
                }
            }
        }
        self.__slab_free(s, slab, object, caller)
    }

    /// Linux: cache_from_obj() (always checked, as with CONFIG_SLAB_FREELIST_HARDENED).
    pub(in crate::mm) fn cache_from_obj<'s>(
        &'s self,
        s: &'s KmemCache,
        x: *mut u8,
    ) -> Option<(&'s KmemCache, &'s Slab)> {
        let Some(slab) = self.virt_to_slab(x) else {
            pr_warn!("WARNING: kmem_cache_free: Object is not a Slab page!");
            pr_err!("{}: object 0x{} not freed", s.name, P(x));
            return None;
        };
        let cachep = slab.slab_cache();
        if !ptr::eq(cachep, s) {
            // SAFETY: a slab's cache outlives its slabs.
            let c = unsafe { &*cachep };
            pr_warn!(
                "cache_from_obj: Wrong slab cache. {} but object is from {}",
                s.name,
                c.name
            );
            self.print_tracking(c, x);
            return Some((c, slab));
        }
        Some((s, slab))
    }

    /// Linux: kmem_cache_free().
    ///
    /// # Safety
    /// `x` was returned by an allocation from `s` (or a cache merged with it) and is not used
    /// afterwards. With `SLAB_CONSISTENCY_CHECKS` a bad pointer or double free is reported
    /// and refused; without, it corrupts the cache as in Linux.
    #[track_caller]
    pub unsafe fn kmem_cache_free(&self, s: &KmemCache, x: *mut u8) {
        let caller = Location::caller();
        if let Some((s, slab)) = self.cache_from_obj(s, x) {
            self.do_slab_free(s, slab, x, caller);
        }
    }

    /// Linux: __kmem_cache_free() — kfree() of a slab object.
    #[inline(always)]
    pub(super) fn slab_free(
        &self,
        s: &KmemCache,
        slab: &Slab,
        x: *mut u8,
        caller: &'static Location<'static>,
    ) {
        self.do_slab_free(s, slab, x, caller);
    }

    // ----- flushing, shrinking, shutdown

    /// Linux: __flush_cpu_slab() / flush_slab() + unfreeze_partials_cpu().
    fn flush_cpu_slab(&self, s: &KmemCache, cpu: usize) {
        let (slab, freelist, partial) = s.cpu_slab(cpu).lock().take_all();
        if !slab.is_null() {
            // SAFETY: the slab was frozen for that CPU; now it is ours to deactivate.
            self.deactivate_slab(s, unsafe { &*slab }, freelist);
        }
        if !partial.is_null() {
            self.__unfreeze_partials(s, partial);
        }
    }

    /// Linux: flush_all() — every CPU's slabs back to the nodes.
    ///
    /// Lock: `flush_lock`, held across all CPUs, as Linux's flush_all_cpus_locked() holds
    /// its `flush_lock` until every CPU's flush work has finished. flush_cpu_slab() takes a
    /// CPU's slabs under that CPU's lock but files them on the node lists after dropping
    /// it: without the lock, a second flush_all() of the same cache (kmem_cache_destroy()'s
    /// __kmem_cache_shutdown() while another CPU shrinks the cache) would find the CPU
    /// slots empty and return while those slabs were still on their way to the node lists.
    /// Shutdown then saw slabs on no list ("Slab cache still has objects"), and the other
    /// CPU went on filing slabs into a cache being freed.
    pub fn flush_all(&self, s: &KmemCache) {
        let _flush = self.flush_lock.lock();
        for cpu in 0..s.nr_cpu_slots as usize {
            self.flush_cpu_slab(s, cpu);
        }
    }

    /// Linux: __kmem_cache_do_shrink() — free empty partial slabs, sort the rest.
    fn __kmem_cache_do_shrink(&self, s: &KmemCache) -> i32 {
        let mut ret = 0;
        for (node, n) in s.nodes() {
            let mut discard = ListHead::new();
            discard.init_list_head();
            let mut promote: [ListHead; SHRINK_PROMOTE_MAX] =
                [const { ListHead::new() }; SHRINK_PROMOTE_MAX];
            for p in promote.iter_mut() {
                p.init_list_head();
            }
            {
                let mut l = n.list_lock.lock();
                let head: *mut ListHead = &mut l.partial;
                for_each_slab_safe(head, |slab| {
                    // SAFETY: a slab on this node's partial list, under its lock.
                    let slab = unsafe { &*slab };
                    let free = slab.objects() as i64 - slab.inuse() as i64;
                    // We do not keep full slabs on the list.
                    assert!(free > 0, "SLUB: full slab on {}'s partial list", s.name);
                    // SAFETY: moving between lists we own under the lock.
                    unsafe {
                        if free == slab.objects() as i64 {
                            list_move(slab.list(), &mut discard);
                            n.nr_partial.fetch_sub(1, Ordering::Relaxed);
                            self.dec_slabs_node(s, node, slab.objects());
                        } else if free as usize <= SHRINK_PROMOTE_MAX {
                            list_move(slab.list(), &mut promote[free as usize - 1]);
                        }
                    }
                });
                // Promote the slabs filled up most to the head of the partial list.
                for p in promote.iter_mut().rev() {
                    let ph: *mut ListHead = p;
                    // list_splice(p, &n->partial): its entries, in order, to the front.
                    // SAFETY: both lists are under the list lock.
                    unsafe {
                        let mut cur = (*ph).prev;
                        while !ptr::eq(cur, ph) {
                            let prev = (*cur).prev;
                            list_move(cur, head);
                            cur = prev;
                        }
                    }
                }
            }
            // Release empty slabs.
            let dh: *mut ListHead = &mut discard;
            for_each_slab_safe(dh, |slab| {
                // SAFETY: detached above; ours.
                self.__free_slab(s, unsafe { &*slab });
            });
            if n.node_nr_slabs() != 0 {
                ret = 1;
            }
        }
        ret
    }

    /// Linux: __kmem_cache_shrink() — kmem_cache_shrink(): 0 if the cache holds no slabs.
    pub fn kmem_cache_shrink(&self, s: &KmemCache) -> i32 {
        self.flush_all(s);
        self.__kmem_cache_do_shrink(s)
    }

    /// Linux: free_partial() — discard empty partial slabs, report the others.
    fn free_partial(&self, s: &KmemCache, n: &KmemCacheNode) {
        let mut discard = ListHead::new();
        discard.init_list_head();
        {
            let mut l = n.list_lock.lock();
            let head: *mut ListHead = &mut l.partial;
            for_each_slab_safe(head, |slab| {
                // SAFETY: a slab on this node's partial list, under its lock.
                let slab = unsafe { &*slab };
                if slab.inuse() == 0 {
                    Self::remove_partial(n, &mut l, slab);
                    // SAFETY: detached above; `discard` is ours.
                    unsafe { list_add(slab.list(), &mut discard) };
                } else {
                    self.list_slab_objects(
                        s,
                        slab,
                        format_args!("Objects remaining in {} on __kmem_cache_shutdown()", s.name),
                    );
                }
            });
        }
        let dh: *mut ListHead = &mut discard;
        for_each_slab_safe(dh, |slab| {
            // SAFETY: detached above; ours.
            self.discard_slab(s, unsafe { &*slab });
        });
    }

    /// Linux: __kmem_cache_shutdown() — 0 when the cache is empty and its slabs are gone.
    pub(super) fn __kmem_cache_shutdown(&self, s: &KmemCache) -> i32 {
        self.flush_all(s);
        for (_, n) in s.nodes() {
            self.free_partial(s, n);
            if n.nr_partial() != 0 || n.node_nr_slabs() != 0 {
                return 1;
            }
        }
        0
    }

    /// Linux: kmem_cache_zalloc().
    #[track_caller]
    pub fn kmem_cache_zalloc(&self, s: &KmemCache, gfp: GfpT) -> *mut u8 {
        self.slab_alloc_node(
            s,
            gfp | __GFP_ZERO,
            NUMA_NO_NODE,
            Location::caller(),
            s.object_size() as usize,
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The kernel's page source: the buddy allocator.

// SAFETY: the buddy hands out blocks it owns exclusively, prepares compound pages for
// __GFP_COMP (prep_new_page), zeroes for __GFP_ZERO, and page_address()/virt_to_page() are
// __va()/__pa() over the linear map — provided the kernel set the env hooks (see
// PageAlloc::new). virt_to_page() of a non-linear-map address is the caller's problem, as
// in Linux: the global allocator only passes addresses kmalloc returned.
unsafe impl SlabPageSource for super::page_alloc::PageAlloc<'_> {
    fn alloc_pages(&self, gfp: GfpT, order: u32, nid: i32) -> Option<NonNull<Page>> {
        self.alloc_pages_node(nid, gfp, order)
    }
    unsafe fn free_pages(&self, page: NonNull<Page>, order: u32) {
        self.__free_pages(page, order)
    }
    fn page_address(&self, page: NonNull<Page>) -> *mut u8 {
        super::page_alloc::PageAlloc::page_address(self, page).0 as *mut u8
    }
    fn virt_to_page(&self, addr: *const u8) -> Option<NonNull<Page>> {
        Some(super::page_alloc::PageAlloc::virt_to_page(
            self,
            super::VirtAddr(addr as u64),
        ))
    }
    fn smp_processor_id(&self) -> usize {
        (self.env().smp_processor_id)()
    }
    fn numa_mem_id(&self) -> i32 {
        self.numa_node_id()
    }
    fn smp_processor_id_fn(&self) -> Option<fn() -> usize> {
        Some(self.env().smp_processor_id)
    }
    /// The kernel's: arm64's linear map is one offset (`__va(pa) = pa - PHYS_OFFSET +
    /// PAGE_OFFSET`) and its vmemmap one array, so virt_to_page() is arithmetic over the
    /// span of every zone (as arm64's `virt_to_page()` macro computes it). On the host the
    /// page allocator runs over simulated RAM whose windows are separate host allocations:
    /// no linear map.
    fn linear_map(&self) -> Option<LinearMap> {
        if !cfg!(target_os = "none") {
            return None;
        }
        let (lo, hi) = self
            .zones()
            .filter(|z| z.spanned_pages != 0)
            .fold((u64::MAX, 0), |(lo, hi), z| {
                (lo.min(z.zone_start_pfn.0), hi.max(z.zone_end_pfn().0))
            });
        if lo >= hi {
            return None;
        }
        let first = self.pfn_to_page(super::Pfn(lo));
        let start = self.page_address(NonNull::new(first)?).0 as usize;
        Some(LinearMap {
            start,
            size: (hi - lo) as usize * PAGE_SZ,
            pages: first as usize,
        })
    }
}

#[cfg(test)]
mod tests;
