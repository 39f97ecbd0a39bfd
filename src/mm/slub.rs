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
//! and live in slab_common.rs; Rust's global allocator on top is heap.rs.
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
//! 2. `kmem_cache_cpu.lock` — one CPU's active slab, its lockless freelist and its partial
//!    slabs. Linux calls it a local lock and takes it only on its own CPU (with interrupts
//!    off); so do we, except for flushing, which Linux does by IPI and we do by taking the
//!    other CPU's lock. Unlike Linux we keep it held across the whole slow path (including
//!    the page allocation), which makes the "did `c->slab` change under us" re-checks
//!    unnecessary. So here it nests *outside* the list lock.
//! 3. `kmem_cache_node.list_lock` — a node's partial (and, for `SLAB_STORE_USER`, full)
//!    lists and `nr_partial`.
//! 4. `slab_lock(slab)` — a bit spin lock on `PG_locked` of the slab's head page; it guards
//!    the slab's `freelist` + `counters` pair. Linux uses cmpxchg_double where the CPU has it
//!    and exactly this lock where it does not (`__cmpxchg_double_slab`); we always use the
//!    lock.
//! 5. `object_map_lock` — the bitmap used by validation and the leak report.
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
use core::fmt::{self, Write};
use core::panic::Location;
use core::ptr::{self, NonNull};
use core::sync::atomic::{
    AtomicBool, AtomicI32, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize,
    Ordering,
};

use super::memblock::{MAX_NUMNODES, NUMA_NO_NODE};
use super::mmzone::{MAX_ORDER, PAGE_ALLOC_COSTLY_ORDER};
use super::page::{
    list_add, list_add_tail, list_del, list_move, ListHead, Page, PG_LOCKED, PG_SLAB,
};
use super::page_alloc::{
    GfpNames, GfpT, PageFlagNames, __GFP_COMP, __GFP_DIRECT_RECLAIM, __GFP_NOFAIL,
    __GFP_NOMEMALLOC, __GFP_NORETRY, __GFP_NOWARN, __GFP_RECLAIM, __GFP_RECLAIMABLE, __GFP_ZERO,
    GFP_DMA, GFP_DMA32, GFP_KERNEL, GFP_NOWAIT,
};
use super::slab_common::{
    calculate_alignment, get_order, Ctor, SlabFlags, KMALLOC_SHIFT_HIGH, NR_KMALLOC_TYPES,
    SLAB_CACHE_DMA, SLAB_CACHE_DMA32, SLAB_CONSISTENCY_CHECKS, SLAB_DEBUG_FLAGS, SLAB_FAILSLAB,
    SLAB_HWCACHE_ALIGN, SLAB_KMALLOC, SLAB_NOLEAKTRACE, SLAB_NO_USER_FLAGS, SLAB_POISON,
    SLAB_RECLAIM_ACCOUNT, SLAB_RED_ZONE, SLAB_STORE_USER, SLAB_TRACE, SLAB_TYPESAFE_BY_RCU,
};
use super::PAGE_SIZE;

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
}

// ---------------------------------------------------------------------------------------------
// struct slab: the overlay on struct page.

/// Linux: struct slab (mm/slab.h, 6.1, SLUB, 64-bit) — the head page of a slab seen through
/// SLUB's eyes. Laid over [`Page`]; the asserts below are Linux's `SLAB_MATCH()`.
///
/// Lock: `freelist` and `counters` under `slab_lock` (or, for a frozen slab, by its CPU;
/// for debug caches under the node's `list_lock`); `slab_list` under the node's `list_lock`,
/// or, as `next`/`slabs` while on a per-CPU partial list, under that CPU's lock.
#[repr(C)]
pub struct Slab {
    /// Linux: __page_flags (PG_slab, PG_locked = slab_lock, PG_head, node, zone).
    pub __page_flags: AtomicU64,
    /// Linux: slab_list — or `{ next, slabs }` on a per-CPU partial list.
    slab_list: UnsafeCell<ListHead>,
    /// Linux: slab_cache (overlays page->mapping, which __free_slab() clears).
    slab_cache: AtomicPtr<KmemCache>,
    /// Linux: freelist — first free object (not the CPU's lockless list).
    freelist: AtomicPtr<u8>,
    /// Linux: counters — inuse:16, objects:15, frozen:1.
    counters: AtomicU64,
    /// Linux: __unused (page->_mapcount, left at -1).
    __unused: AtomicI32,
    /// Linux: __page_refcount.
    __page_refcount: AtomicI32,
    /// Linux: memcg_data.
    memcg_data: u64,
}

// Linux: SLAB_MATCH(flags, __page_flags), SLAB_MATCH(compound_head, slab_list),
// SLAB_MATCH(_refcount, __page_refcount), SLAB_MATCH(memcg_data, memcg_data), and the size.
const _: () = assert!(core::mem::size_of::<Slab>() == core::mem::size_of::<Page>());
const _: () =
    assert!(core::mem::offset_of!(Slab, __page_flags) == core::mem::offset_of!(Page, flags));
const _: () = assert!(core::mem::offset_of!(Slab, slab_list) == core::mem::offset_of!(Page, lru));
const _: () =
    assert!(core::mem::offset_of!(Slab, __page_refcount) == core::mem::offset_of!(Page, _refcount));
const _: () =
    assert!(core::mem::offset_of!(Slab, memcg_data) == core::mem::offset_of!(Page, memcg_data));
// Not a Linux assert, but why __free_slab() clears folio->mapping.
const _: () =
    assert!(core::mem::offset_of!(Slab, slab_cache) == core::mem::offset_of!(Page, mapping));
const _: () =
    assert!(core::mem::offset_of!(Slab, __unused) == core::mem::offset_of!(Page, _mapcount));

/// The `counters` word: inuse (bits 0-15), objects (16-30), frozen (31).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counters(u64);

impl Counters {
    fn inuse(self) -> u32 {
        (self.0 & 0xffff) as u32
    }
    fn objects(self) -> u32 {
        ((self.0 >> 16) & 0x7fff) as u32
    }
    fn frozen(self) -> bool {
        (self.0 >> 31) & 1 != 0
    }
    fn set_inuse(&mut self, v: u32) {
        self.0 = (self.0 & !0xffff) | (v as u64 & 0xffff);
    }
    fn set_objects(&mut self, v: u32) {
        self.0 = (self.0 & !(0x7fff << 16)) | ((v as u64 & 0x7fff) << 16);
    }
    fn set_frozen(&mut self, f: bool) {
        self.0 = (self.0 & !(1 << 31)) | ((f as u64) << 31);
    }
}

impl Slab {
    fn counters(&self) -> Counters {
        Counters(self.counters.load(Ordering::Acquire))
    }
    fn set_counters(&self, c: Counters) {
        self.counters.store(c.0, Ordering::Release);
    }
    /// Linux: slab->inuse.
    pub fn inuse(&self) -> u32 {
        self.counters().inuse()
    }
    /// Linux: slab->objects.
    pub fn objects(&self) -> u32 {
        self.counters().objects()
    }
    /// Linux: slab->frozen.
    pub fn frozen(&self) -> bool {
        self.counters().frozen()
    }
    fn set_inuse(&self, v: u32) {
        let mut c = self.counters();
        c.set_inuse(v);
        self.set_counters(c);
    }
    fn set_objects(&self, v: u32) {
        let mut c = self.counters();
        c.set_objects(v);
        self.set_counters(c);
    }
    fn freelist(&self) -> *mut u8 {
        self.freelist.load(Ordering::Acquire)
    }
    fn set_freelist(&self, p: *mut u8) {
        self.freelist.store(p, Ordering::Release);
    }
    /// Linux: slab->slab_cache.
    pub fn slab_cache(&self) -> *const KmemCache {
        self.slab_cache.load(Ordering::Acquire)
    }
    /// Linux: slab_nid().
    pub fn slab_nid(&self) -> i32 {
        self.as_page().page_to_nid()
    }
    fn as_page(&self) -> &Page {
        // SAFETY: Slab is the 64-byte overlay of Page (asserted above); both only use atomics
        // for the words read here.
        unsafe { &*(self as *const Slab).cast::<Page>() }
    }
    /// Linux: folio_test_slab().
    pub fn test_slab(&self) -> bool {
        self.__page_flags.load(Ordering::Acquire) & (1 << PG_SLAB) != 0
    }
    /// Linux: slab_order() (folio_order: the first tail's compound order).
    pub fn slab_order(&self) -> u32 {
        let p = self.as_page();
        if p.page_head() {
            // SAFETY: a head page's first tail is the next struct page of the same block.
            unsafe { (*(p as *const Page).add(1)).first_tail_compound_order() }
        } else {
            0
        }
    }
    /// Linux: slab_lock() — bit spin lock on PG_locked.
    fn slab_lock(&self) {
        let bit = 1u64 << PG_LOCKED;
        while self.__page_flags.fetch_or(bit, Ordering::Acquire) & bit != 0 {
            while self.__page_flags.load(Ordering::Relaxed) & bit != 0 {
                core::hint::spin_loop();
            }
        }
    }
    /// Linux: slab_unlock().
    fn slab_unlock(&self) {
        self.__page_flags
            .fetch_and(!(1u64 << PG_LOCKED), Ordering::Release);
    }
    fn list(&self) -> *mut ListHead {
        self.slab_list.get()
    }
    /// The slab whose `slab_list` this is (Linux: list_entry(…, struct slab, slab_list)).
    fn from_list(l: *mut ListHead) -> *mut Slab {
        l.cast::<u8>()
            .wrapping_sub(core::mem::offset_of!(Slab, slab_list))
            .cast()
    }
    /// Linux: slab->next (per-CPU partial list). Caller holds the CPU lock.
    unsafe fn next(&self) -> *mut Slab {
        // SAFETY: the caller owns the per-CPU partial list this slab is on.
        unsafe { (*self.list()).next.cast() }
    }
    /// Linux: slab->slabs.
    unsafe fn slabs(&self) -> u32 {
        // SAFETY: as next().
        unsafe { (*self.list()).prev as usize as u32 }
    }
    unsafe fn set_next(&self, next: *mut Slab, slabs: u32) {
        // SAFETY: as next().
        unsafe {
            (*self.list()).next = next.cast();
            (*self.list()).prev = slabs as usize as *mut ListHead;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// kmem_cache, kmem_cache_cpu, kmem_cache_node.

/// Linux: struct kmem_cache_order_objects — order << 16 | objects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KmemCacheOrderObjects(pub u32);

/// Linux: order_objects().
pub const fn order_objects(order: u32, size: u32) -> u32 {
    ((PAGE_SZ << order) / size as usize) as u32
}

impl KmemCacheOrderObjects {
    /// Linux: oo_make().
    pub const fn oo_make(order: u32, size: u32) -> Self {
        Self((order << OO_SHIFT) + order_objects(order, size))
    }
    /// Linux: oo_order().
    pub const fn oo_order(self) -> u32 {
        self.0 >> OO_SHIFT
    }
    /// Linux: oo_objects().
    pub const fn oo_objects(self) -> u32 {
        self.0 & OO_MASK
    }
}

/// The CPU-owned part of a per-CPU slab (Linux: the fields of struct kmem_cache_cpu).
#[derive(Debug)]
struct CpuSlab {
    /// Linux: freelist — objects only this CPU takes (the "lockless" list).
    freelist: *mut u8,
    /// Linux: tid — bumped on every change (kept for parity; the lock makes it unneeded).
    tid: u64,
    /// Linux: slab — the active (frozen) slab.
    slab: *mut Slab,
    /// Linux: partial — frozen partial slabs, linked through `slab->next`.
    partial: *mut Slab,
}

// SAFETY: the pointers name slabs and objects owned by the cache; the mutex serialises use.
unsafe impl Send for CpuSlab {}

/// Linux: struct kmem_cache_cpu. Lock: `lock` (Linux's `local_lock_t lock`) — see the
/// module doc.
#[repr(C)]
pub struct KmemCacheCpu {
    lock: spin::Mutex<CpuSlab>,
}

impl KmemCacheCpu {
    const fn new() -> Self {
        Self {
            lock: spin::Mutex::new(CpuSlab {
                freelist: ptr::null_mut(),
                tid: 0,
                slab: ptr::null_mut(),
                partial: ptr::null_mut(),
            }),
        }
    }
}

/// The lists of a kmem_cache_node, under its `list_lock`.
struct NodeLists {
    /// Linux: partial.
    partial: ListHead,
    /// Linux: full (only kept for SLAB_STORE_USER caches).
    full: ListHead,
}

// SAFETY: the lists link slabs of the cache; the mutex serialises use.
unsafe impl Send for NodeLists {}

/// Linux: struct kmem_cache_node (SLUB). Lock: `list_lock` for the lists and for changes to
/// `nr_partial` (which Linux, and we, read without it as a hint); the counters are atomics.
#[repr(C)]
pub struct KmemCacheNode {
    list_lock: spin::Mutex<NodeLists>,
    /// Linux: nr_partial.
    nr_partial: AtomicU64,
    /// Linux: nr_slabs.
    nr_slabs: AtomicI64,
    /// Linux: total_objects.
    total_objects: AtomicI64,
}

type NodeGuard<'a> = spin::MutexGuard<'a, NodeLists>;

impl KmemCacheNode {
    /// Linux: init_kmem_cache_node() — in place: the list heads point at themselves.
    ///
    /// # Safety
    /// `n` is writable memory for a KmemCacheNode that will not move.
    unsafe fn init(n: *mut KmemCacheNode) {
        // SAFETY: the caller's guarantee.
        unsafe {
            ptr::write(
                n,
                KmemCacheNode {
                    list_lock: spin::Mutex::new(NodeLists {
                        partial: ListHead::new(),
                        full: ListHead::new(),
                    }),
                    nr_partial: AtomicU64::new(0),
                    nr_slabs: AtomicI64::new(0),
                    total_objects: AtomicI64::new(0),
                },
            );
            let mut l = (*n).list_lock.lock();
            l.partial.init_list_head();
            l.full.init_list_head();
        }
    }

    /// Linux: node_nr_slabs().
    pub fn node_nr_slabs(&self) -> i64 {
        self.nr_slabs.load(Ordering::Relaxed)
    }

    /// Linux: node_nr_objs().
    pub fn node_nr_objs(&self) -> i64 {
        self.total_objects.load(Ordering::Relaxed)
    }

    /// Linux: n->nr_partial.
    pub fn nr_partial(&self) -> u64 {
        self.nr_partial.load(Ordering::Relaxed)
    }
}

/// Iterates a list of slabs, tolerant of the current entry being moved (list_for_each_entry_safe).
fn for_each_slab_safe(head: *mut ListHead, mut f: impl FnMut(*mut Slab)) {
    // SAFETY (for the whole walk): the caller holds the lock of the list.
    unsafe {
        let mut cur = (*head).next;
        while !ptr::eq(cur, head) {
            let next = (*cur).next;
            f(Slab::from_list(cur));
            cur = next;
        }
    }
}

/// Linux: struct kmem_cache (SLUB). Followed in memory by `nr_cpu_slots` [`KmemCacheCpu`]s
/// (Linux: the `cpu_slab` per-CPU pointer) — a kmem_cache object is
/// `kmem_cache_size(nr_cpu_ids)` bytes.
///
/// Lock: set up under `slab_mutex` before the cache is published and read-only afterwards,
/// except `refcount`, `object_size` and `inuse` (changed by merging, under `slab_mutex`, read
/// without it: atomics), `random_seq` (set once at bring-up) and `node[]` (set at creation,
/// cleared at release).
#[repr(C)]
pub struct KmemCache {
    /// How many KmemCacheCpu follow (nr_cpu_ids; 1 for the boot caches, used only by the
    /// boot CPU).
    nr_cpu_slots: u32,
    /// Linux: flags.
    pub flags: SlabFlags,
    /// Linux: min_partial.
    pub min_partial: u64,
    /// Linux: size — the object with its metadata.
    pub size: u32,
    /// Linux: object_size — what the user asked for.
    object_size: AtomicU32,
    /// Linux: offset — where the free pointer is.
    pub offset: u32,
    /// Linux: cpu_partial (objects).
    pub cpu_partial: u32,
    /// Linux: cpu_partial_slabs.
    pub cpu_partial_slabs: u32,
    /// Linux: oo — preferred order and objects.
    pub oo: KmemCacheOrderObjects,
    /// Linux: min — the smallest order one object fits in.
    pub min: KmemCacheOrderObjects,
    /// Linux: allocflags — gfp flags every slab allocation gets.
    pub allocflags: GfpT,
    /// Linux: refcount (-1: never merge).
    pub refcount: AtomicI32,
    /// Linux: ctor.
    pub ctor: Option<Ctor>,
    /// Linux: inuse — offset to the metadata.
    inuse: AtomicU32,
    /// Linux: align.
    pub align: u32,
    /// Linux: red_left_pad.
    pub red_left_pad: u32,
    /// Linux: name.
    pub name: &'static str,
    /// Linux: list — on slab_caches.
    list: UnsafeCell<ListHead>,
    /// Linux: random (CONFIG_SLAB_FREELIST_HARDENED).
    pub random: u64,
    /// Linux: random_seq (CONFIG_SLAB_FREELIST_RANDOM) — byte offsets, kcalloc'ed.
    random_seq: AtomicPtr<u32>,
    /// Linux: useroffset.
    pub useroffset: u32,
    /// Linux: usersize.
    pub usersize: u32,
    /// Linux: node[].
    node: [AtomicPtr<KmemCacheNode>; MAX_NUMNODES as usize],
}

// SAFETY: see the lock rules on the type; the raw pointers name memory the cache owns.
unsafe impl Sync for KmemCache {}
// SAFETY: as above.
unsafe impl Send for KmemCache {}

/// The size of a kmem_cache object for `nr_cpu_ids` CPUs (Linux: the `kmem_cache` cache's
/// object size, `offsetof(struct kmem_cache, node) + nr_node_ids * sizeof(void *)`; here the
/// node array is fixed and the per-CPU slots trail).
pub const fn kmem_cache_size(nr_cpu_ids: u32) -> usize {
    core::mem::size_of::<KmemCache>() + nr_cpu_ids as usize * core::mem::size_of::<KmemCacheCpu>()
}

/// A boot cache: the cache and its one per-CPU slot (Linux: `boot_kmem_cache` and
/// `boot_kmem_cache_node`, static __initdata).
#[repr(C)]
struct BootCache {
    cache: KmemCache,
    cpu: KmemCacheCpu,
}
const _: () = assert!(core::mem::offset_of!(BootCache, cpu) == core::mem::size_of::<KmemCache>());

impl KmemCache {
    /// A zeroed cache description (Linux: kmem_cache_zalloc + the fields create_cache sets).
    pub(super) fn new(
        name: &'static str,
        size: u32,
        align: u32,
        ctor: Option<Ctor>,
        nr_cpu_slots: u32,
    ) -> Self {
        Self {
            nr_cpu_slots,
            flags: 0,
            min_partial: 0,
            size,
            object_size: AtomicU32::new(size),
            offset: 0,
            cpu_partial: 0,
            cpu_partial_slabs: 0,
            oo: KmemCacheOrderObjects(0),
            min: KmemCacheOrderObjects(0),
            allocflags: 0,
            refcount: AtomicI32::new(1),
            ctor,
            inuse: AtomicU32::new(0),
            align,
            red_left_pad: 0,
            name,
            list: UnsafeCell::new(ListHead::new()),
            random: 0,
            random_seq: AtomicPtr::new(ptr::null_mut()),
            useroffset: 0,
            usersize: 0,
            node: [const { AtomicPtr::new(ptr::null_mut()) }; MAX_NUMNODES as usize],
        }
    }

    /// Linux: object_size.
    pub fn object_size(&self) -> u32 {
        self.object_size.load(Ordering::Relaxed)
    }

    /// Linux: inuse.
    pub fn inuse(&self) -> u32 {
        self.inuse.load(Ordering::Relaxed)
    }

    /// Merging grows these (Linux: __kmem_cache_alias()).
    pub(super) fn grow_for_alias(&self, size: u32) {
        self.object_size.fetch_max(size, Ordering::Relaxed);
        self.inuse
            .fetch_max(size.next_multiple_of(8), Ordering::Relaxed);
    }

    /// Linux: this_cpu_ptr(s->cpu_slab) / per_cpu_ptr(s->cpu_slab, cpu).
    fn cpu_slab(&self, cpu: usize) -> &KmemCacheCpu {
        let idx = if self.nr_cpu_slots == 1 { 0 } else { cpu };
        assert!(
            idx < self.nr_cpu_slots as usize,
            "SLUB: cpu {} >= nr_cpu_ids {}",
            cpu,
            self.nr_cpu_slots
        );
        // SAFETY: nr_cpu_slots KmemCacheCpu follow the struct (kmem_cache_size, BootCache),
        // initialised by alloc_kmem_cache_cpus().
        unsafe {
            &*(self as *const KmemCache)
                .cast::<u8>()
                .add(core::mem::size_of::<KmemCache>())
                .cast::<KmemCacheCpu>()
                .add(idx)
        }
    }

    /// Linux: get_node().
    pub fn get_node(&self, node: i32) -> Option<&KmemCacheNode> {
        if !(0..MAX_NUMNODES).contains(&node) {
            return None;
        }
        let n = self.node[node as usize].load(Ordering::Acquire);
        // SAFETY: node structures live until free_kmem_cache_nodes() at cache release.
        unsafe { n.as_ref() }
    }

    /// Linux: for_each_kmem_cache_node().
    pub fn nodes(&self) -> impl Iterator<Item = (i32, &KmemCacheNode)> + '_ {
        (0..MAX_NUMNODES).filter_map(move |n| self.get_node(n).map(|x| (n, x)))
    }

    /// Linux: kmem_cache_debug().
    pub fn kmem_cache_debug(&self) -> bool {
        self.flags & SLAB_DEBUG_FLAGS != 0
    }

    /// Linux: kmem_cache_has_cpu_partial().
    fn has_cpu_partial(&self) -> bool {
        !self.kmem_cache_debug()
    }

    /// Linux: freeptr_outside_object().
    fn freeptr_outside_object(&self) -> bool {
        self.offset >= self.inuse()
    }

    /// Linux: get_info_end() — where the tracking data begins.
    fn get_info_end(&self) -> usize {
        if self.freeptr_outside_object() {
            self.inuse() as usize + 8
        } else {
            self.inuse() as usize
        }
    }

    /// Linux: size_from_object().
    fn size_from_object(&self) -> usize {
        if self.flags & SLAB_RED_ZONE != 0 {
            (self.size - self.red_left_pad) as usize
        } else {
            self.size as usize
        }
    }

    /// Linux: fixup_red_left().
    fn fixup_red_left(&self, p: *mut u8) -> *mut u8 {
        if self.flags & SLAB_RED_ZONE != 0 {
            p.wrapping_add(self.red_left_pad as usize)
        } else {
            p
        }
    }

    /// Linux: restore_red_left().
    fn restore_red_left(&self, p: *mut u8) -> *mut u8 {
        if self.flags & SLAB_RED_ZONE != 0 {
            p.wrapping_sub(self.red_left_pad as usize)
        } else {
            p
        }
    }
}

/// Linux: slub_debug_orig_size() — a kmalloc cache that stores each request's size.
pub fn slub_debug_orig_size(s: &KmemCache) -> bool {
    s.flags & SLAB_STORE_USER != 0 && s.flags & SLAB_KMALLOC != 0
}

/// Linux: slab_ksize() — what ksize() reports for an object of `s`.
pub fn slab_ksize(s: &KmemCache) -> usize {
    if s.flags & (SLAB_RED_ZONE | SLAB_POISON) != 0 {
        return s.object_size() as usize;
    }
    if s.flags & (SLAB_TYPESAFE_BY_RCU | SLAB_STORE_USER) != 0 {
        return s.inuse() as usize;
    }
    s.size as usize
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

/// Linux: set_freepointer(), with the hardened build's naive double-free check.
///
/// # Safety
/// As get_freepointer(); the caller may write the slot.
unsafe fn set_freepointer(s: &KmemCache, object: *mut u8, fp: *mut u8) {
    // Linux: BUG_ON(object == fp) — naive detection of double free or corruption.
    assert!(
        object != fp,
        "kernel BUG at mm/slub.c: set_freepointer: {} object 0x{:016x} points to itself (double free or corruption)",
        s.name,
        object as usize
    );
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
// Store-user tracking.

/// Linux: struct track (with CONFIG_STACKDEPOT: 32 bytes). `addr` is the caller's
/// `core::panic::Location`; `handle` a check word that lets a report trust `addr`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct Track {
    addr: u64,
    handle: u32,
    cpu: i32,
    pid: i32,
    _pad: u32,
    when: u64,
}

/// sizeof(struct track).
pub const TRACK_SIZE: usize = core::mem::size_of::<Track>();
const _: () = assert!(TRACK_SIZE == 32);

/// Linux: enum track_item.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TrackItem {
    Alloc = 0,
    Free = 1,
}

fn track_check(addr: u64) -> u32 {
    ((addr ^ (addr >> 32)) as u32) ^ 0x51ab_c0de
}

// ---------------------------------------------------------------------------------------------
// Parameters.

/// The `slub_debug=` string kept for per-cache matching (Linux: slub_debug_string).
#[derive(Clone, Copy)]
pub struct DebugString {
    buf: [u8; 128],
    len: usize,
}

impl DebugString {
    const fn empty() -> Self {
        Self {
            buf: [0; 128],
            len: 0,
        }
    }
    fn set(&mut self, s: &str) {
        let n = s.len().min(self.buf.len());
        self.buf[..n].copy_from_slice(&s.as_bytes()[..n]);
        self.len = n;
    }
    /// The stored string, if any.
    pub fn get(&self) -> Option<&str> {
        if self.len == 0 {
            None
        } else {
            core::str::from_utf8(&self.buf[..self.len]).ok()
        }
    }
}

impl fmt::Debug for DebugString {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:?}", self.get())
    }
}

/// The machine and the boot options a SLUB instance is built for (Linux: globals —
/// nr_cpu_ids, slab_nodes, slub_min_order, ...).
#[derive(Clone, Copy, Debug)]
pub struct SlubParams {
    /// Linux: nr_cpu_ids.
    pub nr_cpu_ids: u32,
    /// Linux: num_present_cpus().
    pub num_present_cpus: u32,
    /// Linux: nr_node_ids.
    pub nr_node_ids: u32,
    /// Linux: slab_nodes (node_states[N_NORMAL_MEMORY]) as a bit mask.
    pub slab_nodes: u64,
    /// Linux: cache_line_size() (arm64: the CTR_EL0 writeback granule, 64 on QEMU's max CPU).
    pub cache_line_size: u32,
    /// Linux: KMALLOC_MIN_SIZE (arm64 6.1: 128; see slab_common.rs).
    pub kmalloc_min_size: usize,
    /// Linux: slub_min_order.
    pub slub_min_order: u32,
    /// Linux: slub_max_order.
    pub slub_max_order: u32,
    /// Linux: slub_min_objects.
    pub slub_min_objects: u32,
    /// Linux: slub_debug (flags for every cache).
    pub slub_debug: SlabFlags,
    /// Linux: slub_debug_string (per-cache blocks).
    pub slub_debug_string: DebugString,
    /// Linux: disable_higher_order_debug (`O`).
    pub disable_higher_order_debug: bool,
    /// Linux: slab_nomerge.
    pub slab_nomerge: bool,
    /// CONFIG_SLAB_FREELIST_RANDOM (on in Debian's 6.1).
    pub freelist_random: bool,
    /// Seed of the per-cache random values (Linux: get_random_long()).
    pub seed: u64,
}

impl SlubParams {
    /// A machine with `nr_cpu_ids` present CPUs and nodes `0..nr_node_ids` with memory,
    /// and Linux's defaults for everything else.
    pub fn new(nr_cpu_ids: u32, nr_node_ids: u32, seed: u64) -> Self {
        Self {
            nr_cpu_ids,
            num_present_cpus: nr_cpu_ids,
            nr_node_ids,
            slab_nodes: (1u64 << nr_node_ids) - 1,
            cache_line_size: 64,
            kmalloc_min_size: super::slab_common::ARM64_KMALLOC_MIN_SIZE,
            slub_min_order: 0,
            slub_max_order: PAGE_ALLOC_COSTLY_ORDER,
            slub_min_objects: 0,
            slub_debug: 0,
            slub_debug_string: DebugString::empty(),
            disable_higher_order_debug: false,
            slab_nomerge: false,
            freelist_random: true,
            seed,
        }
    }

    /// The boot command line's `slub_debug=`, `slub_min_order=`, `slub_max_order=`,
    /// `slub_min_objects=`, `slab_nomerge` / `slab_merge`.
    pub fn with_boot_params(mut self) -> Self {
        let b = BOOT_PARAMS.lock();
        if let Some(o) = b.min_order {
            self.slub_min_order = o;
        }
        if let Some(o) = b.max_order {
            self.slub_max_order = o;
        }
        if let Some(o) = b.min_objects {
            self.slub_min_objects = o;
        }
        if let Some(nm) = b.nomerge {
            self.slab_nomerge = nm;
        }
        if let Some(d) = b.debug {
            self.slub_debug = d.0;
            self.slub_debug_string = d.1;
            self.disable_higher_order_debug = d.2;
        }
        // Linux: setup_slub_min_order() and setup_slub_max_order() keep min <= max.
        self.slub_max_order = self.slub_max_order.max(self.slub_min_order);
        self
    }

    /// Applies a `slub_debug=` value as setup_slub_debug() does (`None`: bare `slub_debug`).
    pub fn with_slub_debug(mut self, val: Option<&str>) -> Self {
        let (f, s, o) = setup_slub_debug(val, self.slub_debug);
        self.slub_debug = f;
        self.slub_debug_string = s;
        self.disable_higher_order_debug = o;
        self
    }

    fn node_in_slab_nodes(&self, node: i32) -> bool {
        (0..64).contains(&node) && self.slab_nodes & (1 << node) != 0
    }
}

/// Linux: parse_slub_debug_flags() — one `;` block: its flags, its slab list (if any), the
/// rest of the string (if any) and whether it asked for `O`.
fn parse_slub_debug_flags(s: &str, init: bool) -> (SlabFlags, Option<&str>, Option<&str>, bool) {
    let s = s.trim_start_matches(';');
    let mut flags = 0;
    let mut higher_order_disable = false;
    let bytes = s.as_bytes();
    let mut i = 0;
    if bytes.first() == Some(&b',') {
        // No options but restriction on slabs: full debugging for matching slabs.
        flags = DEBUG_DEFAULT_FLAGS;
    } else {
        while i < bytes.len() && bytes[i] != b',' && bytes[i] != b';' {
            match bytes[i].to_ascii_lowercase() {
                b'-' => flags = 0,
                b'f' => flags |= SLAB_CONSISTENCY_CHECKS,
                b'z' => flags |= SLAB_RED_ZONE,
                b'p' => flags |= SLAB_POISON,
                b'u' => flags |= SLAB_STORE_USER,
                b't' => flags |= SLAB_TRACE,
                b'a' => flags |= SLAB_FAILSLAB,
                b'o' => higher_order_disable = true,
                _ => {
                    if init {
                        pr_err!("slub_debug option '{}' unknown. skipped", bytes[i] as char);
                    }
                }
            }
            i += 1;
        }
    }
    let slabs = if bytes.get(i) == Some(&b',') {
        let start = i + 1;
        let end = s[start..].find(';').map_or(s.len(), |e| start + e);
        i = end;
        Some(&s[start..end])
    } else {
        while i < bytes.len() && bytes[i] != b';' {
            i += 1;
        }
        None
    };
    let rest = s[i..].trim_start_matches(';');
    let rest = if rest.is_empty() { None } else { Some(rest) };
    (flags, slabs, rest, higher_order_disable)
}

/// Linux: setup_slub_debug() — the global flags, the per-cache string and `O`.
fn setup_slub_debug(val: Option<&str>, current: SlabFlags) -> (SlabFlags, DebugString, bool) {
    let mut string = DebugString::empty();
    let mut higher_order_disable = false;
    let Some(saved) = val.filter(|v| !v.is_empty()) else {
        // No options specified. Switch on full debugging.
        return (DEBUG_DEFAULT_FLAGS, string, false);
    };
    let mut global_flags = DEBUG_DEFAULT_FLAGS;
    let (mut global_changed, mut list_specified) = (false, false);
    let mut cur = Some(saved);
    while let Some(s) = cur {
        let (flags, slabs, rest, o) = parse_slub_debug_flags(s, true);
        higher_order_disable |= o;
        if slabs.is_none() {
            global_flags = flags;
            global_changed = true;
        } else {
            list_specified = true;
        }
        cur = rest;
    }
    // For backwards compatibility, a single list of flags with list of slabs means debugging
    // is only changed for those slabs, so the global slub_debug should be unchanged.
    if list_specified {
        if !global_changed {
            global_flags = current;
        }
        string.set(saved);
    }
    (global_flags, string, higher_order_disable)
}

/// Linux: kmem_cache_flags() — a new cache's flags with `slub_debug=` applied.
pub fn kmem_cache_flags(p: &SlubParams, flags: SlabFlags, name: &str) -> SlabFlags {
    if flags & SLAB_NO_USER_FLAGS != 0 {
        return flags;
    }
    let mut slub_debug_local = p.slub_debug;
    // If the slab cache is for debugging (e.g. kmemleak) then don't store user (stack trace)
    // information by default, but let the user enable it via the command line below.
    if flags & SLAB_NOLEAKTRACE != 0 {
        slub_debug_local &= !SLAB_STORE_USER;
    }
    let mut next = p.slub_debug_string.get();
    while let Some(block) = next {
        let (block_flags, slabs, rest, _) = parse_slub_debug_flags(block, false);
        next = rest;
        let Some(list) = slabs else { continue };
        for pat in list.split(',') {
            let matches = match pat.find('*') {
                Some(g) => name.starts_with(&pat[..g]),
                None => name == pat,
            };
            if matches {
                return flags | block_flags;
            }
        }
    }
    flags | slub_debug_local
}

/// The options the command line set, read by `SlubParams::with_boot_params()`.
struct BootParams {
    min_order: Option<u32>,
    max_order: Option<u32>,
    min_objects: Option<u32>,
    nomerge: Option<bool>,
    debug: Option<(SlabFlags, DebugString, bool)>,
}

static BOOT_PARAMS: spin::Mutex<BootParams> = spin::Mutex::new(BootParams {
    min_order: None,
    max_order: None,
    min_objects: None,
    nomerge: None,
    debug: None,
});

fn parse_param_u32(val: Option<&str>) -> Result<u32, &'static str> {
    val.and_then(crate::kernel::params::parse_u64)
        .map(|v| v as u32)
        .ok_or("expected a number")
}

/// Linux: setup_slub_debug() (`__setup("slub_debug", ...)`).
fn slub_debug_setup(val: Option<&str>) -> crate::kernel::params::SetupResult {
    BOOT_PARAMS.lock().debug = Some(setup_slub_debug(val, 0));
    Ok(())
}
crate::setup_param!("slub_debug", slub_debug_setup);

/// Linux: setup_slub_min_order().
fn setup_slub_min_order(val: Option<&str>) -> crate::kernel::params::SetupResult {
    let o = parse_param_u32(val)?;
    let mut b = BOOT_PARAMS.lock();
    b.min_order = Some(o);
    if b.max_order.is_some_and(|m| m < o) {
        b.max_order = Some(o);
    }
    Ok(())
}
crate::setup_param!("slub_min_order", setup_slub_min_order);

/// Linux: setup_slub_max_order().
fn setup_slub_max_order(val: Option<&str>) -> crate::kernel::params::SetupResult {
    let o = parse_param_u32(val)?.min(MAX_ORDER as u32 - 1);
    let mut b = BOOT_PARAMS.lock();
    b.max_order = Some(o);
    if b.min_order.is_some_and(|m| m > o) {
        b.min_order = Some(o);
    }
    Ok(())
}
crate::setup_param!("slub_max_order", setup_slub_max_order);

/// Linux: setup_slub_min_objects().
fn setup_slub_min_objects(val: Option<&str>) -> crate::kernel::params::SetupResult {
    BOOT_PARAMS.lock().min_objects = Some(parse_param_u32(val)?);
    Ok(())
}
crate::setup_param!("slub_min_objects", setup_slub_min_objects);

/// Linux: setup_slab_nomerge() (mm/slab_common.c; `slub_nomerge` is its old name).
fn setup_slab_nomerge(_val: Option<&str>) -> crate::kernel::params::SetupResult {
    BOOT_PARAMS.lock().nomerge = Some(true);
    Ok(())
}
crate::setup_param!("slab_nomerge", setup_slab_nomerge);
crate::setup_param!("slub_nomerge", setup_slab_nomerge);

/// Linux: setup_slab_merge().
fn setup_slab_merge(_val: Option<&str>) -> crate::kernel::params::SetupResult {
    BOOT_PARAMS.lock().nomerge = Some(false);
    Ok(())
}
crate::setup_param!("slab_merge", setup_slab_merge);

// ---------------------------------------------------------------------------------------------
// calculate_order (mm/slub.c).

/// Linux: calc_slab_order().
fn calc_slab_order(
    size: u32,
    min_objects: u32,
    max_order: u32,
    fract_leftover: u32,
    min_order: u32,
) -> u32 {
    if order_objects(min_order, size) > MAX_OBJS_PER_PAGE {
        return get_order(size as usize * MAX_OBJS_PER_PAGE as usize) - 1;
    }
    let mut order = min_order.max(get_order(min_objects as usize * size as usize));
    while order <= max_order {
        let slab_size = (PAGE_SZ << order) as u32;
        let rem = slab_size % size;
        if rem <= slab_size / fract_leftover {
            break;
        }
        order += 1;
    }
    order
}

/// Linux: calculate_order() — the slab order for objects of `size` bytes: as many objects as
/// the CPU count suggests, with little waste, within `slub_max_order`. `None` when even
/// MAX_ORDER - 1 cannot hold one object (Linux: -ENOSYS).
pub fn calculate_order(size: u32, p: &SlubParams) -> Option<u32> {
    let mut min_objects = p.slub_min_objects;
    if min_objects == 0 {
        // Some architectures will only update present cpus when onlining them, so don't trust
        // the number if it's just 1.
        let mut nr_cpus = p.num_present_cpus;
        if nr_cpus <= 1 {
            nr_cpus = p.nr_cpu_ids;
        }
        min_objects = 4 * (super::slab_common::fls(nr_cpus as u64) + 1);
    }
    let max_objects = order_objects(p.slub_max_order, size);
    min_objects = min_objects.min(max_objects);
    while min_objects > 1 {
        let mut fraction = 16;
        while fraction >= 4 {
            let order = calc_slab_order(
                size,
                min_objects,
                p.slub_max_order,
                fraction,
                p.slub_min_order,
            );
            if order <= p.slub_max_order {
                return Some(order);
            }
            fraction /= 2;
        }
        min_objects -= 1;
    }
    // We were unable to place multiple objects in a slab. Now lets see if we can place a
    // single object there.
    let order = calc_slab_order(size, 1, p.slub_max_order, 1, p.slub_min_order);
    if order <= p.slub_max_order {
        return Some(order);
    }
    // Doh this slab cannot be placed using slub_max_order.
    let order = calc_slab_order(size, 1, MAX_ORDER as u32, 1, p.slub_min_order);
    (order < MAX_ORDER as u32).then_some(order)
}

// ---------------------------------------------------------------------------------------------
// The allocator instance.

/// One SLUB allocator: Linux's slab globals (`slab_state`, `slab_caches`, `slab_mutex`,
/// `kmem_cache`, `kmem_cache_node`, `kmalloc_caches`, `size_index`) around a page source.
/// The kernel has one (slab_common.rs's `kmem_cache_init`); host tests make many.
///
/// Lock: `slab_mutex` for the cache list and cache creation/destruction; the rest are
/// atomics, per-cache locks (see the module doc), and `object_map` (Linux's
/// `object_map_lock`). Once `kmem_cache_init` ran the instance must not move (the cache
/// list head points into it).
pub struct SlubAllocator<'a> {
    source: &'a dyn SlabPageSource,
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
}

// SAFETY: every mutable field is an atomic, a lock, or UnsafeCell data used only under
// `slab_mutex` (slab_caches) or during single-threaded bring-up (the boot caches, before
// bootstrap() publishes the copies).
unsafe impl Sync for SlubAllocator<'_> {}
// SAFETY: as above.
unsafe impl Send for SlubAllocator<'_> {}

/// Linux: the `SLUB: HWalign=...` line of kmem_cache_init().
pub struct SlubInfoLine<'p>(pub &'p SlubParams);

impl fmt::Display for SlubInfoLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let p = self.0;
        write!(
            f,
            "SLUB: HWalign={}, Order={}-{}, MinObjects={}, CPUs={}, Nodes={}",
            p.cache_line_size,
            p.slub_min_order,
            p.slub_max_order,
            p.slub_min_objects,
            p.nr_cpu_ids,
            p.nr_node_ids
        )
    }
}

/// Linux: print_tainted() with at most TAINT_BAD_PAGE set.
fn print_tainted(tainted: bool) -> &'static str {
    if tainted {
        "Tainted: G    B            "
    } else {
        "Not tainted"
    }
}

/// Writes `0x` and a pointer as Linux's `0x%p` with no_hash_pointers (which kmem_cache_init
/// turns on when slub_debug is).
struct P(*const u8);
impl fmt::Display for P {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:016x}", self.0 as usize)
    }
}

impl<'a> SlubAllocator<'a> {
    /// An allocator over `source` for the machine in `params`, in slab_state DOWN.
    pub fn new(source: &'a dyn SlabPageSource, params: SlubParams) -> Self {
        assert!(params.nr_cpu_ids >= 1 && params.nr_node_ids >= 1);
        assert!(params.nr_node_ids <= MAX_NUMNODES as u32);
        let boot = || BootCache {
            cache: KmemCache::new("", 0, 0, None, 1),
            cpu: KmemCacheCpu::new(),
        };
        Self {
            source,
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
            size_index: super::slab_common::SIZE_INDEX_INIT.map(AtomicU8::new),
            object_map: spin::Mutex::new([0; (MAX_OBJS_PER_PAGE as usize).div_ceil(64)]),
            slab_errors: AtomicUsize::new(0),
            tainted: AtomicBool::new(false),
            rng: AtomicU64::new(params.seed),
            slab_pages: AtomicI64::new(0),
            rcu_pending: spin::Mutex::new(0),
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
        let mut z = self
            .rng
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
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
    pub fn virt_to_slab(&self, addr: *const u8) -> Option<&Slab> {
        let page = self.source.virt_to_page(addr)?;
        // SAFETY: the source returns a struct page of its memory; compound_head reads atomics
        // and the tail's head link.
        let head = unsafe { page.as_ref().compound_head() };
        // SAFETY: a struct page viewed as its slab overlay.
        let slab = unsafe { &*head.cast::<Slab>() };
        slab.test_slab().then_some(slab)
    }

    /// The head page of the block holding `addr` (Linux: virt_to_folio()).
    pub(super) fn virt_to_head_page(&self, addr: *const u8) -> Option<NonNull<Page>> {
        let page = self.source.virt_to_page(addr)?;
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
        c: &mut CpuSlab,
        slab: &Slab,
        drain: bool,
    ) -> *mut Slab {
        let mut oldslab = c.partial;
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
        c.partial = slab as *const Slab as *mut Slab;
        to_unfreeze
    }

    /// Linux: put_cpu_partial() — from __slab_free, on this CPU.
    fn put_cpu_partial(&self, s: &KmemCache, slab: &Slab, drain: bool) {
        let cpu = self.source.smp_processor_id();
        let to_unfreeze = {
            let mut c = s.cpu_slab(cpu).lock.lock();
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
        c: &mut CpuSlab,
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
        c: &mut CpuSlab,
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
    fn ___slab_alloc(&self, s: &KmemCache, gfp: GfpT, mut node: i32, c: &mut CpuSlab) -> *mut u8 {
        loop {
            let slab = c.slab;
            if slab.is_null() {
                // If the node is not online or has no normal memory, just ignore the node
                // constraint.
                if node != NUMA_NO_NODE && !self.params.node_in_slab_nodes(node) {
                    node = NUMA_NO_NODE;
                }
                // new_slab: the next per-CPU partial slab, if any.
                if !c.partial.is_null() {
                    let p = c.partial;
                    // SAFETY: the CPU lock is held.
                    c.partial = unsafe { (*p).next() };
                    c.slab = p;
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
                    let freelist = c.freelist;
                    c.slab = ptr::null_mut();
                    c.freelist = ptr::null_mut();
                    c.tid += 1;
                    self.deactivate_slab(s, slab, freelist);
                    continue;
                }
            }
            let mut freelist = c.freelist;
            if freelist.is_null() {
                freelist = self.get_freelist(slab);
                if freelist.is_null() {
                    c.slab = ptr::null_mut();
                    c.tid += 1;
                    continue;
                }
            }
            // load_freelist:
            // SAFETY: an object of the CPU slab.
            c.freelist = unsafe { get_freepointer(s, freelist) };
            c.tid += 1;
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
        debug_assert!(c.slab.is_null());
        c.slab = pslab;
        // SAFETY: an object of the new CPU slab.
        c.freelist = unsafe { get_freepointer(s, freelist) };
        c.tid += 1;
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

    /// The debug-cache branch of ___slab_alloc().
    fn debug_slab_alloc(
        &self,
        s: &KmemCache,
        gfp: GfpT,
        mut node: i32,
        orig_size: usize,
    ) -> *mut u8 {
        if node != NUMA_NO_NODE && !self.params.node_in_slab_nodes(node) {
            node = NUMA_NO_NODE;
        }
        loop {
            let searchnode = if node == NUMA_NO_NODE {
                self.numa_mem_id()
            } else {
                node
            };
            let mut order: [i32; MAX_NUMNODES as usize + 1] = [-1; MAX_NUMNODES as usize + 1];
            order[0] = searchnode;
            if node == NUMA_NO_NODE {
                let remote = s
                    .nodes()
                    .filter(|&(nid, n)| nid != searchnode && n.nr_partial() > s.min_partial);
                for (i, (nid, _)) in remote.enumerate() {
                    order[i + 1] = nid;
                }
            }
            for &nid in order.iter().take_while(|&&nid| nid >= 0) {
                let Some(n) = s.get_node(nid) else { continue };
                if n.nr_partial() == 0 {
                    continue;
                }
                let mut l = n.list_lock.lock();
                let head: *mut ListHead = &mut l.partial;
                let mut object: *mut u8 = ptr::null_mut();
                for_each_slab_safe(head, |slab| {
                    if object.is_null() {
                        // SAFETY: a slab on this node's list.
                        object = self.alloc_single_from_partial(
                            s,
                            n,
                            &mut l,
                            unsafe { &*slab },
                            orig_size,
                        );
                    }
                });
                if !object.is_null() {
                    return object;
                }
            }
            let Some(slab) = self.new_slab(s, gfp, node) else {
                self.slab_out_of_memory(s, gfp, node);
                return ptr::null_mut();
            };
            let object = self.alloc_single_from_new_slab(s, slab, orig_size);
            if !object.is_null() {
                return object;
            }
        }
    }

    /// Linux: slab_alloc_node() — the allocation entry: CPU freelist fast path, slow path,
    /// then slab_post_alloc_hook()'s zeroing.
    pub(super) fn slab_alloc_node(
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
            let cpu = self.source.smp_processor_id();
            let mut c = s.cpu_slab(cpu).lock.lock();
            let object = c.freelist;
            // SAFETY: the CPU slab is frozen for this CPU while we hold its lock.
            if !object.is_null() && !c.slab.is_null() && Self::node_match(unsafe { &*c.slab }, node)
            {
                // SAFETY: an object of the CPU slab.
                c.freelist = unsafe { get_freepointer(s, object) };
                c.tid += 1;
                object
            } else {
                self.___slab_alloc(s, gfp, node, &mut c)
            }
        };
        if !object.is_null() && gfp & __GFP_ZERO != 0 {
            let len = if slub_debug_orig_size(s) {
                orig_size.min(s.object_size() as usize)
            } else {
                s.object_size() as usize
            };
            // SAFETY: a freshly allocated object of at least object_size bytes.
            unsafe { ptr::write_bytes(object, 0, len) };
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
    fn __slab_free(
        &self,
        s: &KmemCache,
        slab: &Slab,
        object: *mut u8,
        caller: &'static Location<'static>,
    ) {
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

    /// Linux: do_slab_free() — onto the CPU's freelist if the object is in its active slab.
    fn do_slab_free(
        &self,
        s: &KmemCache,
        slab: &Slab,
        object: *mut u8,
        caller: &'static Location<'static>,
    ) {
        if !s.kmem_cache_debug() {
            let cpu = self.source.smp_processor_id();
            let mut c = s.cpu_slab(cpu).lock.lock();
            if ptr::eq(c.slab, slab) {
                // SAFETY: an object of the CPU slab, being freed.
                unsafe { set_freepointer(s, object, c.freelist) };
                c.freelist = object;
                c.tid += 1;
                return;
            }
        }
        self.__slab_free(s, slab, object, caller);
    }

    /// Linux: cache_from_obj() (always checked, as with CONFIG_SLAB_FREELIST_HARDENED).
    fn cache_from_obj<'s>(
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
        let (slab, freelist, partial) = {
            let mut c = s.cpu_slab(cpu).lock.lock();
            let r = (c.slab, c.freelist, c.partial);
            c.slab = ptr::null_mut();
            c.freelist = ptr::null_mut();
            c.partial = ptr::null_mut();
            c.tid += 1;
            r
        };
        if !slab.is_null() {
            // SAFETY: the slab was frozen for that CPU; now it is ours to deactivate.
            self.deactivate_slab(s, unsafe { &*slab }, freelist);
        }
        if !partial.is_null() {
            self.__unfreeze_partials(s, partial);
        }
    }

    /// Linux: flush_all() — every CPU's slabs back to the nodes.
    pub fn flush_all(&self, s: &KmemCache) {
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

    /// Linux: list_slab_objects() — the report for a slab that still has objects.
    fn list_slab_objects(&self, s: &KmemCache, slab: &Slab, text: fmt::Arguments) {
        self.slab_err(s, slab, text);
        let addr = self.slab_address(slab);
        let map = self.object_map.lock();
        let map = self.fill_map(map, s, slab);
        for p in self.objects_of(s, slab) {
            if map[self.obj_to_index(s, addr, p) / 64] & (1 << (self.obj_to_index(s, addr, p) % 64))
                == 0
            {
                self.slab_add_kunit_errors();
                pr_err!("Object 0x{} @offset={}", P(p), p as usize - addr as usize);
                self.print_tracking(s, p);
            }
        }
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

    // ----- creating caches

    /// Linux: calculate_sizes() — the object layout, order and objects per slab.
    fn calculate_sizes(&self, s: &mut KmemCache) -> bool {
        let flags = s.flags;
        let object_size = s.object_size();
        // Round up object size to the next word boundary. We can only place the free pointer
        // at word boundaries and this determines the possible location of the free pointer.
        let mut size = object_size.next_multiple_of(8);
        // Determine if we can poison the object itself. If the user of the slab may touch the
        // object after free or before allocation then we should never poison the object.
        if flags & SLAB_POISON != 0 && flags & SLAB_TYPESAFE_BY_RCU == 0 && s.ctor.is_none() {
            s.flags |= __OBJECT_POISON;
        } else {
            s.flags &= !__OBJECT_POISON;
        }
        // If we are Redzoning then check if there is some space between the end of the object
        // and the free pointer. If not then add an additional word for Redzone information.
        if flags & SLAB_RED_ZONE != 0 && size == object_size {
            size += 8;
        }
        // With that we have determined the number of bytes in actual use by the object and
        // redzoning.
        s.inuse.store(size, Ordering::Relaxed);
        if slub_debug_orig_size(s)
            || flags & (SLAB_TYPESAFE_BY_RCU | SLAB_POISON) != 0
            || (flags & SLAB_RED_ZONE != 0 && object_size < 8)
            || s.ctor.is_some()
        {
            // Relocate free pointer after the object if it is not permitted to overwrite the
            // first word of the object on kmem_cache_free.
            s.offset = size;
            size += 8;
        } else {
            // Store freelist pointer near middle of object to keep it away from the edges of
            // the object to avoid small sized over/underflows from neighboring allocations.
            s.offset = (object_size / 2) & !7;
        }
        if flags & SLAB_STORE_USER != 0 {
            // Need to store information about allocs and frees after the object.
            size += 2 * TRACK_SIZE as u32;
            // Save the original kmalloc request size.
            if flags & SLAB_KMALLOC != 0 {
                size += 4;
            }
        }
        if flags & SLAB_RED_ZONE != 0 {
            // Add some empty padding so that we can catch overwrites from earlier objects
            // rather than let tracking information or the free pointer be corrupted if a user
            // writes before the start of the object.
            size += 8;
            s.red_left_pad = 8u32.next_multiple_of(s.align);
            size += s.red_left_pad;
        } else {
            s.red_left_pad = 0;
        }
        // SLUB stores one object immediately after another beginning from offset 0. In order
        // to align the objects we have to simply size each object to conform to the alignment.
        size = size.next_multiple_of(s.align);
        s.size = size;
        let Some(order) = calculate_order(size, &self.params) else {
            return false;
        };
        s.allocflags = 0;
        if order != 0 {
            s.allocflags |= __GFP_COMP;
        }
        if s.flags & SLAB_CACHE_DMA != 0 {
            s.allocflags |= GFP_DMA;
        }
        if s.flags & SLAB_CACHE_DMA32 != 0 {
            s.allocflags |= GFP_DMA32;
        }
        if s.flags & SLAB_RECLAIM_ACCOUNT != 0 {
            s.allocflags |= __GFP_RECLAIMABLE;
        }
        // Determine the number of objects per slab.
        s.oo = KmemCacheOrderObjects::oo_make(order, size);
        s.min = KmemCacheOrderObjects::oo_make(get_order(size as usize), size);
        s.oo.oo_objects() != 0
    }

    /// Linux: set_cpu_partial() with slub_set_cpu_partial().
    fn set_cpu_partial(s: &mut KmemCache) {
        let nr_objects = if !s.has_cpu_partial() {
            0
        } else if s.size as usize >= PAGE_SZ {
            6
        } else if s.size >= 1024 {
            24
        } else if s.size >= 256 {
            52
        } else {
            120
        };
        s.cpu_partial = nr_objects;
        // We take the number of objects but actually limit the number of slabs on the per cpu
        // partial list, in order to limit excessive growth of the list. For simplicity we
        // assume that the slabs will be half-full.
        s.cpu_partial_slabs = (nr_objects * 2).div_ceil(s.oo.oo_objects());
    }

    /// Linux: init_cache_random_seq() — the shuffled object offsets of a slab.
    pub(super) fn init_cache_random_seq(&self, s: &KmemCache) -> bool {
        let count = s.oo.oo_objects() as usize;
        if !self.params.freelist_random
            || count < 2
            || !s.random_seq.load(Ordering::Acquire).is_null()
        {
            return true;
        }
        let seq = self.kmalloc(count * 4, GFP_KERNEL).cast::<u32>();
        if seq.is_null() {
            pr_err!("SLUB: Unable to initialize free list for {}", s.name);
            return false;
        }
        // SAFETY: `count` u32s just allocated.
        let list = unsafe { core::slice::from_raw_parts_mut(seq, count) };
        // Linux: freelist_randomize() — Fisher-Yates.
        for (i, e) in list.iter_mut().enumerate() {
            *e = i as u32;
        }
        for i in (1..count).rev() {
            let r = (self.get_random_long() % (i as u64 + 1)) as usize;
            list.swap(i, r);
        }
        // Transform to an offset on the set of pages.
        for e in list.iter_mut() {
            *e *= s.size;
        }
        s.random_seq.store(seq, Ordering::Release);
        true
    }

    /// Linux: init_freelist_randomization() — for the caches made before kmalloc was up.
    fn init_freelist_randomization(&self) {
        let _g = self.slab_mutex.lock();
        self.for_each_cache(|s| {
            self.init_cache_random_seq(s);
        });
    }

    /// Linux: early_kmem_cache_node_alloc() — the first kmem_cache_node of a node, taken
    /// straight from a new slab of the kmem_cache_node cache itself.
    fn early_kmem_cache_node_alloc(&self, kcn: &KmemCache, node: i32) {
        assert!(kcn.size as usize >= core::mem::size_of::<KmemCacheNode>());
        let slab = self
            .new_slab(kcn, GFP_NOWAIT, node)
            .expect("SLUB: no memory for the first kmem_cache_node");
        self.inc_slabs_node(kcn, slab.slab_nid(), slab.objects());
        if slab.slab_nid() != node {
            pr_err!("SLUB: Unable to allocate memory from node {}", node);
            pr_err!(
                "SLUB: Allocating a useless per node structure in order to be able to continue"
            );
        }
        let n = slab.freelist();
        assert!(!n.is_null());
        self.init_object(kcn, n, SLUB_RED_ACTIVE);
        self.init_tracking(kcn, n);
        // SAFETY: the first object of the fresh slab.
        slab.set_freelist(unsafe { get_freepointer(kcn, n) });
        slab.set_inuse(1);
        let n = n.cast::<KmemCacheNode>();
        // SAFETY: an object of kmem_cache_node size, ours, never moving.
        unsafe { KmemCacheNode::init(n) };
        kcn.node[node as usize].store(n, Ordering::Release);
        self.inc_slabs_node(kcn, node, slab.objects());
        // SAFETY: just published; nobody else uses it yet.
        let nref = unsafe { &*n };
        let mut l = nref.list_lock.lock();
        Self::add_partial(nref, &mut l, slab, false);
    }

    /// Linux: free_kmem_cache_nodes().
    fn free_kmem_cache_nodes(&self, s: &KmemCache) {
        let kcn = self.kmem_cache_node().expect("kmem_cache_node");
        for node in 0..MAX_NUMNODES as usize {
            let n = s.node[node].swap(ptr::null_mut(), Ordering::AcqRel);
            if !n.is_null() {
                // SAFETY: a kmem_cache_node object of this cache, unreachable now.
                unsafe { self.kmem_cache_free(kcn, n.cast()) };
            }
        }
    }

    /// Linux: init_kmem_cache_nodes().
    fn init_kmem_cache_nodes(&self, s: &KmemCache) -> bool {
        for node in 0..self.params.nr_node_ids as i32 {
            if !self.params.node_in_slab_nodes(node) {
                continue;
            }
            if self.slab_state() == SlabState::Down {
                self.early_kmem_cache_node_alloc(s, node);
                continue;
            }
            let kcn = self.kmem_cache_node().expect("kmem_cache_node");
            let n = self
                .kmem_cache_alloc_node(kcn, GFP_KERNEL, node)
                .cast::<KmemCacheNode>();
            if n.is_null() {
                self.free_kmem_cache_nodes(s);
                return false;
            }
            // SAFETY: a kmem_cache_node object, ours, never moving.
            unsafe { KmemCacheNode::init(n) };
            s.node[node as usize].store(n, Ordering::Release);
        }
        true
    }

    /// Linux: alloc_kmem_cache_cpus() / init_kmem_cache_cpus().
    ///
    /// # Safety
    /// `s` is followed by room for `s.nr_cpu_slots` KmemCacheCpu.
    unsafe fn alloc_kmem_cache_cpus(s: *mut KmemCache) {
        // SAFETY: the caller's guarantee.
        unsafe {
            let base = s
                .cast::<u8>()
                .add(core::mem::size_of::<KmemCache>())
                .cast::<KmemCacheCpu>();
            for i in 0..(*s).nr_cpu_slots as usize {
                ptr::write(base.add(i), KmemCacheCpu::new());
            }
        }
    }

    /// Linux: kmem_cache_open() — layout, per-node and per-CPU structures.
    ///
    /// # Safety
    /// `s` is an initialised KmemCache (`KmemCache::new`) at its final address, followed by
    /// room for its CPU slots, not yet visible to anyone else.
    pub(super) unsafe fn kmem_cache_open(&self, s: *mut KmemCache, flags: SlabFlags) -> bool {
        // SAFETY: the caller's guarantee: nobody else sees `s` yet.
        let sm = unsafe { &mut *s };
        sm.flags = kmem_cache_flags(&self.params, flags, sm.name);
        sm.random = self.get_random_long();
        if !self.calculate_sizes(sm) {
            return false;
        }
        if self.params.disable_higher_order_debug {
            // Disable debugging flags that store metadata if the min slab order increased.
            if get_order(sm.size as usize) > get_order(sm.object_size() as usize) {
                sm.flags &= !DEBUG_METADATA_FLAGS;
                sm.offset = 0;
                if !self.calculate_sizes(sm) {
                    return false;
                }
            }
        }
        // The larger the object size is, the more slabs we want on the partial list to avoid
        // pounding the page allocator excessively.
        let ilog2 = 31 - sm.size.leading_zeros();
        sm.min_partial = ((ilog2 / 2) as u64).clamp(MIN_PARTIAL, MAX_PARTIAL);
        Self::set_cpu_partial(sm);
        // SAFETY: the caller's guarantee on the trailing room.
        unsafe { Self::alloc_kmem_cache_cpus(s) };
        // SAFETY: from here on the cache is only read (and its atomics written).
        let s = unsafe { &*s };
        // Initialize the pre-computed randomized freelist if slab is up.
        if self.slab_state() >= SlabState::Up && !self.init_cache_random_seq(s) {
            return false;
        }
        self.init_kmem_cache_nodes(s)
    }

    /// Linux: __kmem_cache_release() — the per-node structures and the random sequence.
    pub(super) fn __kmem_cache_release(&self, s: &KmemCache) {
        let seq = s.random_seq.swap(ptr::null_mut(), Ordering::AcqRel);
        if !seq.is_null() {
            // SAFETY: kmalloc'ed by init_cache_random_seq(), unreachable now.
            unsafe { self.kfree(seq.cast()) };
        }
        self.free_kmem_cache_nodes(s);
    }

    /// Linux: create_boot_cache() (mm/slab_common.c).
    ///
    /// # Safety
    /// As kmem_cache_open(); `s` already has its name, size and CPU slot count.
    pub(super) unsafe fn create_boot_cache(
        &self,
        s: *mut KmemCache,
        name: &'static str,
        size: u32,
        flags: SlabFlags,
    ) {
        // SAFETY: the caller's guarantee.
        let sm = unsafe { &mut *s };
        sm.name = name;
        sm.size = size;
        sm.object_size.store(size, Ordering::Relaxed);
        // For power of two sizes, guarantee natural alignment for kmalloc caches, regardless
        // of SL*B debugging options.
        let mut align = self.params.kmalloc_min_size as u32;
        if size.is_power_of_two() {
            align = align.max(size);
        }
        sm.align = calculate_alignment(flags, align, size, self.params.cache_line_size);
        sm.useroffset = 0;
        sm.usersize = if flags & SLAB_KMALLOC != 0 { size } else { 0 };
        // SAFETY: forwarded.
        if !unsafe { self.kmem_cache_open(s, flags) } {
            panic!(
                "Creation of kmalloc slab {} size={} failed. Reason -22",
                name, size
            );
        }
        sm.refcount.store(-1, Ordering::Relaxed); // Exempt from merging for now
    }

    /// Linux: bootstrap() — move a static boot cache into an object of the kmem_cache cache.
    fn bootstrap(&self, static_cache: *mut BootCache) -> *mut KmemCache {
        let kc = self.kmem_cache().expect("kmem_cache");
        let s = self.kmem_cache_zalloc(kc, GFP_NOWAIT).cast::<KmemCache>();
        assert!(!s.is_null(), "SLUB: bootstrap out of memory");
        // This runs very early, and only the boot processor is supposed to be up.
        // SAFETY: the boot cache is ours during bring-up.
        let sc = unsafe { &(*static_cache).cache };
        self.flush_cpu_slab(sc, 0);
        // SAFETY: `s` is a fresh kmem_cache object with room for nr_cpu_ids CPU slots; the
        // static cache's words are copied as Linux's memcpy does (its CPU slot, now empty,
        // is replaced by fresh ones).
        unsafe {
            ptr::copy_nonoverlapping(static_cache.cast::<KmemCache>(), s, 1);
            (*s).nr_cpu_slots = self.params.nr_cpu_ids;
            Self::alloc_kmem_cache_cpus(s);
        }
        // SAFETY: initialised above.
        let sr = unsafe { &*s };
        for (_, n) in sr.nodes() {
            let mut l = n.list_lock.lock();
            for head in [
                &mut l.partial as *mut ListHead,
                &mut l.full as *mut ListHead,
            ] {
                for_each_slab_safe(head, |p| {
                    // SAFETY: a slab on the list, under its lock.
                    unsafe { (*p).slab_cache.store(s, Ordering::Release) };
                });
            }
        }
        let _g = self.slab_mutex.lock();
        // SAFETY: slab_mutex held.
        unsafe { list_add(sr.list.get(), self.slab_caches.get()) };
        s
    }

    /// Linux: kmem_cache_init() — bring SLUB up: the boot caches, bootstrap(), the kmalloc
    /// caches, the random freelists, and the `SLUB:` line.
    pub fn kmem_cache_init(&self) {
        assert_eq!(
            self.slab_state(),
            SlabState::Down,
            "kmem_cache_init called twice"
        );
        // SAFETY: bring-up is single-threaded; nothing else references the list head yet.
        unsafe { (*self.slab_caches.get()).init_list_head() };
        let bkc = self.boot_kmem_cache.get();
        let bkcn = self.boot_kmem_cache_node.get();
        self.kmem_cache_node.store(bkcn.cast(), Ordering::Release);
        self.kmem_cache.store(bkc.cast(), Ordering::Release);
        // SAFETY: the boot caches are ours during bring-up, with one CPU slot each.
        unsafe {
            self.create_boot_cache(
                bkcn.cast(),
                "kmem_cache_node",
                core::mem::size_of::<KmemCacheNode>() as u32,
                SLAB_HWCACHE_ALIGN | SLAB_NO_USER_FLAGS,
            );
        }
        // Able to allocate the per node structures.
        self.set_slab_state(SlabState::Partial);
        // SAFETY: as above.
        unsafe {
            self.create_boot_cache(
                bkc.cast(),
                "kmem_cache",
                kmem_cache_size(self.params.nr_cpu_ids) as u32,
                SLAB_HWCACHE_ALIGN | SLAB_NO_USER_FLAGS,
            );
        }
        let kc = self.bootstrap(bkc);
        self.kmem_cache.store(kc, Ordering::Release);
        let kcn = self.bootstrap(bkcn);
        self.kmem_cache_node.store(kcn, Ordering::Release);
        // Now we can use the kmem_cache to allocate kmalloc slabs.
        {
            let mut idx = [0u8; 24];
            for (d, s) in idx.iter_mut().zip(self.size_index.iter()) {
                *d = s.load(Ordering::Relaxed);
            }
            super::slab_common::setup_kmalloc_cache_index_table(
                &mut idx,
                self.params.kmalloc_min_size,
            );
            for (d, s) in self.size_index.iter().zip(idx) {
                d.store(s, Ordering::Relaxed);
            }
        }
        self.create_kmalloc_caches(0);
        // Setup random freelists for each cache.
        self.init_freelist_randomization();
        pr_info!("{}", SlubInfoLine(&self.params));
    }

    /// Linux: kmem_cache_init_late() (and slab_sysfs_init()'s `slab_state = FULL`).
    pub fn kmem_cache_init_late(&self) {
        self.set_slab_state(SlabState::Full);
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

    /// Calls `f` for every cache on slab_caches, newest first (caller holds slab_mutex).
    pub(super) fn for_each_cache(&self, f: impl FnMut(&KmemCache)) {
        self.walk_caches(false, f);
    }

    /// Calls `f` for every cache, oldest first (Linux: list_for_each_entry_reverse).
    pub(super) fn for_each_cache_rev(&self, f: impl FnMut(&KmemCache)) {
        self.walk_caches(true, f);
    }

    /// Linux: list_for_each_entry[_reverse] over slab_caches; `f` may not unlink the entry
    /// after the one it is given (the next link is read before the call).
    fn walk_caches(&self, reverse: bool, mut f: impl FnMut(&KmemCache)) {
        let head = self.slab_caches.get();
        // SAFETY: only called below on the list head and live entries (slab_mutex held).
        let step = |p: *mut ListHead| unsafe {
            if reverse {
                (*p).prev
            } else {
                (*p).next
            }
        };
        // SAFETY: slab_mutex is held by the caller; entries are live caches.
        unsafe {
            let mut cur = step(head);
            if cur.is_null() {
                return;
            }
            while !ptr::eq(cur, head) {
                let next = step(cur);
                let s = cur
                    .cast::<u8>()
                    .sub(core::mem::offset_of!(KmemCache, list))
                    .cast::<KmemCache>();
                f(&*s);
                cur = next;
            }
        }
    }

    /// Links a new cache on slab_caches (caller holds slab_mutex).
    pub(super) fn slab_caches_add(&self, s: &KmemCache) {
        // SAFETY: slab_mutex is held by the caller.
        unsafe { list_add(s.list.get(), self.slab_caches.get()) };
    }

    /// Unlinks a cache from slab_caches (caller holds slab_mutex).
    pub(super) fn slab_caches_del(&self, s: &KmemCache) {
        // SAFETY: slab_mutex is held by the caller; the cache is on the list.
        unsafe { list_del(s.list.get()) };
    }

    /// Finds a cache by name (for tests and the monitor).
    pub fn find_cache(&self, name: &str) -> Option<&KmemCache> {
        let _g = self.slab_mutex.lock();
        let mut found: Option<*const KmemCache> = None;
        self.for_each_cache(|s| {
            if found.is_none() && s.name == name {
                found = Some(s);
            }
        });
        // SAFETY: caches live until destroyed; the caller must not race a destroy.
        found.map(|s| unsafe { &*s })
    }

    // ----- slabinfo

    /// Linux: count_partial(n, count_free).
    fn count_partial_free(n: &KmemCacheNode) -> u64 {
        let mut l = n.list_lock.lock();
        let head: *mut ListHead = &mut l.partial;
        let mut x = 0;
        for_each_slab_safe(head, |slab| {
            // SAFETY: a slab on the list, under its lock.
            let slab = unsafe { &*slab };
            x += (slab.objects() - slab.inuse()) as u64;
        });
        x
    }

    /// Linux: get_slabinfo().
    pub fn get_slabinfo(&self, s: &KmemCache) -> super::slab_common::Slabinfo {
        let (mut nr_slabs, mut nr_objs, mut nr_free) = (0u64, 0u64, 0u64);
        for (_, n) in s.nodes() {
            nr_slabs += n.node_nr_slabs() as u64;
            nr_objs += n.node_nr_objs() as u64;
            nr_free += Self::count_partial_free(n);
        }
        super::slab_common::Slabinfo {
            active_objs: nr_objs - nr_free,
            num_objs: nr_objs,
            active_slabs: nr_slabs,
            num_slabs: nr_slabs,
            objects_per_slab: s.oo.oo_objects(),
            cache_order: s.oo.oo_order(),
            ..Default::default()
        }
    }

    /// Linux: slab_out_of_memory().
    fn slab_out_of_memory(&self, s: &KmemCache, gfp: GfpT, nid: i32) {
        if gfp & __GFP_NOWARN != 0 {
            return;
        }
        pr_warn!(
            "SLUB: Unable to allocate memory on node {}, gfp={:#x}({})",
            nid,
            gfp,
            GfpNames(gfp)
        );
        pr_warn!(
            "  cache: {}, object size: {}, buffer size: {}, default order: {}, min order: {}",
            s.name,
            s.object_size(),
            s.size,
            s.oo.oo_order(),
            s.min.oo_order()
        );
        if s.min.oo_order() > get_order(s.object_size() as usize) {
            pr_warn!(
                "  {} debugging increased min order, use slub_debug=O to disable.",
                s.name
            );
        }
        for (node, n) in s.nodes() {
            pr_warn!(
                "  node {}: slabs: {}, objs: {}, free: {}",
                node,
                n.node_nr_slabs(),
                n.node_nr_objs(),
                Self::count_partial_free(n)
            );
        }
    }

    // ----- debugging: layout helpers

    /// Linux: get_track().
    fn get_track(&self, s: &KmemCache, object: *mut u8, alloc: TrackItem) -> *mut Track {
        object
            .wrapping_add(s.get_info_end() + alloc as usize * TRACK_SIZE)
            .cast()
    }

    /// Linux: set_track().
    fn set_track(
        &self,
        s: &KmemCache,
        object: *mut u8,
        alloc: TrackItem,
        caller: Option<&'static Location<'static>>,
    ) {
        let t = match caller {
            Some(loc) => {
                let addr = loc as *const Location as u64;
                Track {
                    addr,
                    handle: track_check(addr),
                    cpu: self.source.smp_processor_id() as i32,
                    pid: 0,
                    _pad: 0,
                    when: self.source.jiffies(),
                }
            }
            None => Track::default(),
        };
        // SAFETY: the track slots lie inside the object's size (calculate_sizes).
        unsafe { ptr::write_unaligned(self.get_track(s, object, alloc), t) };
    }

    /// Linux: init_tracking().
    fn init_tracking(&self, s: &KmemCache, object: *mut u8) {
        if s.flags & SLAB_STORE_USER == 0 {
            return;
        }
        self.set_track(s, object, TrackItem::Free, None);
        self.set_track(s, object, TrackItem::Alloc, None);
    }

    /// Linux: print_track().
    fn print_track(&self, what: &str, t: Track, pr_time: u64) {
        if t.addr == 0 {
            return;
        }
        let age = pr_time.wrapping_sub(t.when);
        if t.handle == track_check(t.addr) {
            // SAFETY: the check word matches: `addr` was stored from a &'static Location.
            let loc = unsafe { &*(t.addr as *const Location) };
            pr_err!(
                "{} in {}:{} age={} cpu={} pid={}",
                what,
                loc.file(),
                loc.line(),
                age,
                t.cpu as u32,
                t.pid
            );
        } else {
            pr_err!(
                "{} in 0x{:016x} age={} cpu={} pid={}",
                what,
                t.addr,
                age,
                t.cpu as u32,
                t.pid
            );
        }
    }

    /// Linux: print_tracking().
    pub(super) fn print_tracking(&self, s: &KmemCache, object: *mut u8) {
        if s.flags & SLAB_STORE_USER == 0 {
            return;
        }
        let pr_time = self.source.jiffies();
        // SAFETY: the track slots lie inside the object.
        let (a, f) = unsafe {
            (
                ptr::read_unaligned(self.get_track(s, object, TrackItem::Alloc)),
                ptr::read_unaligned(self.get_track(s, object, TrackItem::Free)),
            )
        };
        self.print_track("Allocated", a, pr_time);
        self.print_track("Freed", f, pr_time);
    }

    fn orig_size_ptr(&self, s: &KmemCache, object: *mut u8) -> *mut u32 {
        object
            .wrapping_add(s.get_info_end() + 2 * TRACK_SIZE)
            .cast()
    }

    /// Linux: set_orig_size().
    pub(super) fn set_orig_size(&self, s: &KmemCache, object: *mut u8, orig_size: usize) {
        if !slub_debug_orig_size(s) {
            return;
        }
        // SAFETY: the slot lies inside the object's metadata (calculate_sizes).
        unsafe { ptr::write_unaligned(self.orig_size_ptr(s, object), orig_size as u32) };
    }

    /// Linux: get_orig_size().
    pub(super) fn get_orig_size(&self, s: &KmemCache, object: *mut u8) -> usize {
        if !slub_debug_orig_size(s) {
            return s.object_size() as usize;
        }
        // SAFETY: as set_orig_size().
        unsafe { ptr::read_unaligned(self.orig_size_ptr(s, object)) as usize }
    }

    /// Linux: init_object() — red zones and poison for a free (`SLUB_RED_INACTIVE`) or
    /// allocated (`SLUB_RED_ACTIVE`) object.
    fn init_object(&self, s: &KmemCache, object: *mut u8, val: u8) {
        let p = object;
        let mut poison_size = s.object_size() as usize;
        // SAFETY (for the writes below): all ranges lie inside the object's `size` bytes.
        unsafe {
            if s.flags & SLAB_RED_ZONE != 0 {
                ptr::write_bytes(p.sub(s.red_left_pad as usize), val, s.red_left_pad as usize);
                if slub_debug_orig_size(s) && val == SLUB_RED_ACTIVE {
                    // Redzone the extra allocated space by kmalloc than requested, and the
                    // poison size will be limited to the original request size accordingly.
                    poison_size = self.get_orig_size(s, object).min(poison_size);
                }
            }
            if s.flags & __OBJECT_POISON != 0 && poison_size > 0 {
                ptr::write_bytes(p, POISON_FREE, poison_size - 1);
                *p.add(poison_size - 1) = POISON_END;
            }
            if s.flags & SLAB_RED_ZONE != 0 {
                ptr::write_bytes(p.add(poison_size), val, s.inuse() as usize - poison_size);
            }
        }
    }

    // ----- debugging: reports

    fn add_taint(&self) {
        self.tainted.store(true, Ordering::Relaxed);
    }

    /// Linux: slab_bug().
    fn slab_bug(&self, s: &KmemCache, args: fmt::Arguments) {
        pr_err!("=============================================================================");
        pr_err!(
            "BUG {} ({}): {}",
            s.name,
            print_tainted(self.tainted.load(Ordering::Relaxed)),
            args
        );
        pr_err!("-----------------------------------------------------------------------------");
        pr_err!("");
    }

    /// Linux: slab_fix().
    fn slab_fix(&self, s: &KmemCache, args: fmt::Arguments) {
        self.slab_add_kunit_errors();
        pr_err!("FIX {}: {}", s.name, args);
    }

    /// Linux: print_section() — print_hex_dump(KERN_ERR, text, DUMP_PREFIX_ADDRESS, 16, 1,
    /// addr, length, 1).
    fn print_section(&self, text: &str, addr: *const u8, length: usize) {
        let mut off = 0;
        while off < length {
            let n = (length - off).min(16);
            let mut line = crate::kernel::printk::LineBuf::<128>::new();
            let _ = write!(line, "{}{}: ", text, P(addr.wrapping_add(off)));
            // SAFETY: the caller passes a range inside a slab.
            let bytes = unsafe { core::slice::from_raw_parts(addr.add(off), n) };
            for (i, b) in bytes.iter().enumerate() {
                let _ = write!(line, "{}{:02x}", if i == 0 { "" } else { " " }, b);
            }
            // The ASCII column starts at 16 * 3 + 1.
            for _ in n * 3 - 1..49 {
                let _ = line.write_str(" ");
            }
            for &b in bytes {
                let c = if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                };
                let _ = line.write_char(c);
            }
            pr_err!("{}", line.as_str());
            off += n;
        }
    }

    /// Linux: print_slab_info().
    fn print_slab_info(&self, slab: &Slab) {
        pr_err!(
            "Slab 0x{} objects={} used={} fp=0x{} flags={}",
            P((slab as *const Slab).cast()),
            slab.objects(),
            slab.inuse(),
            P(slab.freelist()),
            PageFlagNames(slab.__page_flags.load(Ordering::Relaxed))
        );
    }

    /// Linux: print_trailer() — the object, its red zones, tracking and padding.
    fn print_trailer(&self, s: &KmemCache, slab: &Slab, p: *mut u8) {
        let addr = self.slab_address(slab);
        self.print_tracking(s, p);
        self.print_slab_info(slab);
        pr_err!(
            "Object 0x{} @offset={} fp=0x{}",
            P(p),
            p as usize - addr as usize,
            // SAFETY: an object slot of the slab.
            P(unsafe { get_freepointer(s, p) })
        );
        pr_err!("");
        if s.flags & SLAB_RED_ZONE != 0 {
            self.print_section(
                "Redzone  ",
                p.wrapping_sub(s.red_left_pad as usize),
                s.red_left_pad as usize,
            );
        } else if p as usize > addr as usize + 16 {
            self.print_section("Bytes b4 ", p.wrapping_sub(16), 16);
        }
        self.print_section("Object   ", p, (s.object_size() as usize).min(PAGE_SZ));
        if s.flags & SLAB_RED_ZONE != 0 {
            self.print_section(
                "Redzone  ",
                p.wrapping_add(s.object_size() as usize),
                (s.inuse() - s.object_size()) as usize,
            );
        }
        let mut off = s.get_info_end();
        if s.flags & SLAB_STORE_USER != 0 {
            off += 2 * TRACK_SIZE;
        }
        if slub_debug_orig_size(s) {
            off += 4;
        }
        if off != s.size_from_object() {
            // Beginning of the filler is the free pointer.
            self.print_section("Padding  ", p.wrapping_add(off), s.size_from_object() - off);
        }
    }

    /// Linux: object_err().
    fn object_err(&self, s: &KmemCache, slab: &Slab, object: *mut u8, reason: &str) {
        self.slab_add_kunit_errors();
        self.slab_bug(s, format_args!("{}", reason));
        self.print_trailer(s, slab, object);
        self.add_taint();
    }

    /// Linux: slab_err().
    fn slab_err(&self, s: &KmemCache, slab: &Slab, args: fmt::Arguments) {
        self.slab_add_kunit_errors();
        self.slab_bug(s, args);
        self.print_slab_info(slab);
        self.add_taint();
    }

    /// Linux: restore_bytes().
    fn restore_bytes(&self, s: &KmemCache, message: &str, data: u8, from: *mut u8, to: *mut u8) {
        self.slab_fix(
            s,
            format_args!(
                "Restoring {} 0x{}-0x{}=0x{:x}",
                message,
                P(from),
                P(to.wrapping_sub(1)),
                data
            ),
        );
        // SAFETY: the range was just checked inside the slab.
        unsafe { ptr::write_bytes(from, data, to as usize - from as usize) };
    }

    /// Linux: check_bytes_and_report() — report and repair bytes that are not `value`.
    #[allow(clippy::too_many_arguments)]
    fn check_bytes_and_report(
        &self,
        s: &KmemCache,
        slab: &Slab,
        object: *mut u8,
        what: &str,
        start: *mut u8,
        value: u8,
        bytes: usize,
    ) -> bool {
        let addr = self.slab_address(slab);
        // SAFETY: the caller passes a range inside the slab.
        let range = unsafe { core::slice::from_raw_parts(start, bytes) };
        let Some(first) = range.iter().position(|&b| b != value) else {
            return true;
        };
        let last = range.iter().rposition(|&b| b != value).unwrap_or(first);
        let fault = start.wrapping_add(first);
        let end = start.wrapping_add(last + 1);
        self.slab_add_kunit_errors();
        self.slab_bug(s, format_args!("{} overwritten", what));
        pr_err!(
            "0x{}-0x{} @offset={}. First byte 0x{:x} instead of 0x{:x}",
            P(fault),
            P(end.wrapping_sub(1)),
            fault as usize - addr as usize,
            range[first],
            value
        );
        self.print_trailer(s, slab, object);
        self.add_taint();
        self.restore_bytes(s, what, value, fault, end);
        false
    }

    /// Linux: check_pad_bytes().
    fn check_pad_bytes(&self, s: &KmemCache, slab: &Slab, p: *mut u8) -> bool {
        let mut off = s.get_info_end();
        if s.flags & SLAB_STORE_USER != 0 {
            // We also have user information there.
            off += 2 * TRACK_SIZE;
            if s.flags & SLAB_KMALLOC != 0 {
                off += 4;
            }
        }
        if s.size_from_object() == off {
            return true;
        }
        self.check_bytes_and_report(
            s,
            slab,
            p,
            "Object padding",
            p.wrapping_add(off),
            POISON_INUSE,
            s.size_from_object() - off,
        )
    }

    /// Linux: slab_pad_check() — the bytes after the last object.
    fn slab_pad_check(&self, s: &KmemCache, slab: &Slab) {
        if s.flags & SLAB_POISON == 0 {
            return;
        }
        let start = self.slab_address(slab);
        let length = Self::slab_size(slab);
        let remainder = length % s.size as usize;
        if remainder == 0 {
            return;
        }
        let pad = start.wrapping_add(length - remainder);
        // SAFETY: the tail of the slab.
        let range = unsafe { core::slice::from_raw_parts(pad, remainder) };
        let Some(first) = range.iter().position(|&b| b != POISON_INUSE) else {
            return;
        };
        let last = range
            .iter()
            .rposition(|&b| b != POISON_INUSE)
            .unwrap_or(first);
        let fault = pad.wrapping_add(first);
        let end = pad.wrapping_add(last + 1);
        self.slab_err(
            s,
            slab,
            format_args!(
                "Padding overwritten. 0x{}-0x{} @offset={}",
                P(fault),
                P(end.wrapping_sub(1)),
                fault as usize - start as usize
            ),
        );
        self.print_section("Padding ", pad, remainder);
        self.restore_bytes(s, "slab padding", POISON_INUSE, fault, end);
    }

    /// Linux: check_object() — red zones, poison, padding and the free pointer of one object.
    fn check_object(&self, s: &KmemCache, slab: &Slab, object: *mut u8, val: u8) -> bool {
        let p = object;
        let object_size = s.object_size() as usize;
        let endobject = object.wrapping_add(object_size);
        if s.flags & SLAB_RED_ZONE != 0 {
            if !self.check_bytes_and_report(
                s,
                slab,
                object,
                "Left Redzone",
                object.wrapping_sub(s.red_left_pad as usize),
                val,
                s.red_left_pad as usize,
            ) {
                return false;
            }
            if !self.check_bytes_and_report(
                s,
                slab,
                object,
                "Right Redzone",
                endobject,
                val,
                s.inuse() as usize - object_size,
            ) {
                return false;
            }
            if slub_debug_orig_size(s) && val == SLUB_RED_ACTIVE {
                let orig_size = self.get_orig_size(s, object);
                if object_size > orig_size
                    && !self.check_bytes_and_report(
                        s,
                        slab,
                        object,
                        "kmalloc Redzone",
                        p.wrapping_add(orig_size),
                        val,
                        object_size - orig_size,
                    )
                {
                    return false;
                }
            }
        } else if s.flags & SLAB_POISON != 0 && object_size < s.inuse() as usize {
            self.check_bytes_and_report(
                s,
                slab,
                p,
                "Alignment padding",
                endobject,
                POISON_INUSE,
                s.inuse() as usize - object_size,
            );
        }
        if s.flags & SLAB_POISON != 0 {
            if val != SLUB_RED_ACTIVE
                && s.flags & __OBJECT_POISON != 0
                && (!self.check_bytes_and_report(
                    s,
                    slab,
                    p,
                    "Poison",
                    p,
                    POISON_FREE,
                    object_size - 1,
                ) || !self.check_bytes_and_report(
                    s,
                    slab,
                    p,
                    "End Poison",
                    p.wrapping_add(object_size - 1),
                    POISON_END,
                    1,
                ))
            {
                return false;
            }
            // check_pad_bytes cleans up on its own.
            self.check_pad_bytes(s, slab, p);
        }
        if !s.freeptr_outside_object() && val == SLUB_RED_ACTIVE {
            // Object and freepointer overlap. Cannot check freepointer while object is
            // allocated.
            return true;
        }
        // Check free pointer validity.
        // SAFETY: an object slot of the slab.
        if !self.check_valid_pointer(s, slab, unsafe { get_freepointer(s, p) }) {
            self.object_err(s, slab, p, "Freepointer corrupt");
            // No choice but to zap it and thus lose the remainder of the free objects in this
            // slab. May cause another error because the object count is now wrong.
            // SAFETY: as above.
            unsafe { set_freepointer(s, p, ptr::null_mut()) };
            return false;
        }
        true
    }

    /// Linux: check_slab().
    fn check_slab(&self, s: &KmemCache, slab: &Slab) -> bool {
        if !slab.test_slab() {
            self.slab_err(s, slab, format_args!("Not a valid slab page"));
            return false;
        }
        let maxobj = order_objects(slab.slab_order(), s.size);
        if slab.objects() > maxobj {
            self.slab_err(
                s,
                slab,
                format_args!("objects {} > max {}", slab.objects(), maxobj),
            );
            return false;
        }
        if slab.inuse() > slab.objects() {
            self.slab_err(
                s,
                slab,
                format_args!("inuse {} > max {}", slab.inuse(), slab.objects()),
            );
            return false;
        }
        // Slab_pad_check fixes things up after itself.
        self.slab_pad_check(s, slab);
        true
    }

    /// Linux: on_freelist() — is `search` free in `slab`? Walks (and repairs) the freelist and
    /// the object counts; with a null `search`, true when the walk completed.
    fn on_freelist(&self, s: &KmemCache, slab: &Slab, search: *mut u8) -> bool {
        let mut nr = 0;
        let mut fp = slab.freelist();
        let mut object: *mut u8 = ptr::null_mut();
        while !fp.is_null() && nr <= slab.objects() {
            if fp == search {
                return true;
            }
            if !self.check_valid_pointer(s, slab, fp) {
                if !object.is_null() {
                    self.object_err(s, slab, object, "Freechain corrupt");
                    // SAFETY: a valid object of the slab.
                    unsafe { set_freepointer(s, object, ptr::null_mut()) };
                } else {
                    self.slab_err(s, slab, format_args!("Freepointer corrupt"));
                    slab.set_freelist(ptr::null_mut());
                    slab.set_inuse(slab.objects());
                    self.slab_fix(s, format_args!("Freelist cleared"));
                    return false;
                }
                break;
            }
            object = fp;
            // SAFETY: checked valid above.
            fp = unsafe { get_freepointer(s, object) };
            nr += 1;
        }
        let max_objects = order_objects(slab.slab_order(), s.size).min(MAX_OBJS_PER_PAGE);
        if slab.objects() != max_objects {
            self.slab_err(
                s,
                slab,
                format_args!(
                    "Wrong number of objects. Found {} but should be {}",
                    slab.objects(),
                    max_objects
                ),
            );
            slab.set_objects(max_objects);
            self.slab_fix(s, format_args!("Number of objects adjusted"));
        }
        if slab.inuse() != slab.objects().wrapping_sub(nr) {
            self.slab_err(
                s,
                slab,
                format_args!(
                    "Wrong object count. Counter is {} but counted were {}",
                    slab.inuse(),
                    slab.objects() as i32 - nr as i32
                ),
            );
            slab.set_inuse(slab.objects().wrapping_sub(nr));
            self.slab_fix(s, format_args!("Object count adjusted"));
        }
        search.is_null()
    }

    /// Linux: alloc_consistency_checks() + alloc_debug_processing().
    fn alloc_debug_processing(
        &self,
        s: &KmemCache,
        slab: &Slab,
        object: *mut u8,
        orig_size: usize,
    ) -> bool {
        if s.flags & SLAB_CONSISTENCY_CHECKS != 0 {
            let ok = self.check_slab(s, slab)
                && if !self.check_valid_pointer(s, slab, object) {
                    self.object_err(s, slab, object, "Freelist Pointer check fails");
                    false
                } else {
                    self.check_object(s, slab, object, SLUB_RED_INACTIVE)
                };
            if !ok {
                if slab.test_slab() {
                    // If this is a slab page then lets do the best we can to avoid issues in
                    // the future. Marking all objects as used avoids touching the remaining
                    // objects.
                    self.slab_fix(s, format_args!("Marking all objects used"));
                    slab.set_inuse(slab.objects());
                    slab.set_freelist(ptr::null_mut());
                }
                return false;
            }
        }
        // Success. Perform special debug activities for allocs.
        self.set_orig_size(s, object, orig_size);
        self.init_object(s, object, SLUB_RED_ACTIVE);
        true
    }

    /// Linux: free_consistency_checks() + free_debug_processing() (one object).
    fn free_debug_processing(
        &self,
        s: &KmemCache,
        slab: &Slab,
        object: *mut u8,
        caller: &'static Location<'static>,
    ) -> bool {
        let ok = (|| {
            if s.flags & SLAB_CONSISTENCY_CHECKS != 0 {
                if !self.check_slab(s, slab) {
                    return false;
                }
                if slab.inuse() < 1 {
                    self.slab_err(
                        s,
                        slab,
                        format_args!(
                            "Slab has {} allocated objects but {} are to be freed",
                            slab.inuse(),
                            1
                        ),
                    );
                    return false;
                }
                if !self.check_valid_pointer(s, slab, object) {
                    self.slab_err(
                        s,
                        slab,
                        format_args!("Invalid object pointer 0x{}", P(object)),
                    );
                    return false;
                }
                if self.on_freelist(s, slab, object) {
                    self.object_err(s, slab, object, "Object already free");
                    return false;
                }
                if !self.check_object(s, slab, object, SLUB_RED_ACTIVE) {
                    return false;
                }
                if !ptr::eq(slab.slab_cache(), s) {
                    self.object_err(s, slab, object, "page slab pointer corrupt.");
                    return false;
                }
            }
            if s.flags & SLAB_STORE_USER != 0 {
                self.set_track(s, object, TrackItem::Free, Some(caller));
            }
            // Freepointer not overwritten by init_object(), SLAB_POISON moved it.
            self.init_object(s, object, SLUB_RED_INACTIVE);
            true
        })();
        if !ok {
            self.slab_fix(s, format_args!("Object at 0x{} not freed", P(object)));
        }
        ok
    }

    /// Linux: __fill_map() — mark the free objects (bounded: a corrupt list cannot loop).
    fn fill_map<'g>(
        &self,
        mut map: spin::MutexGuard<'g, [u64; (MAX_OBJS_PER_PAGE as usize).div_ceil(64)]>,
        s: &KmemCache,
        slab: &Slab,
    ) -> spin::MutexGuard<'g, [u64; (MAX_OBJS_PER_PAGE as usize).div_ceil(64)]> {
        let words = (slab.objects() as usize).div_ceil(64);
        map[..words].fill(0);
        let addr = self.slab_address(slab);
        let mut p = slab.freelist();
        let mut n = 0;
        while !p.is_null() && n < slab.objects() && self.check_valid_pointer(s, slab, p) {
            let i = self.obj_to_index(s, addr, p);
            map[i / 64] |= 1 << (i % 64);
            // SAFETY: checked valid.
            p = unsafe { get_freepointer(s, p) };
            n += 1;
        }
        map
    }

    /// Linux: validate_slab().
    fn validate_slab(&self, s: &KmemCache, slab: &Slab) {
        if !self.check_slab(s, slab) || !self.on_freelist(s, slab, ptr::null_mut()) {
            return;
        }
        // Now we know that a valid freelist exists.
        let map = self.fill_map(self.object_map.lock(), s, slab);
        let addr = self.slab_address(slab);
        for p in self.objects_of(s, slab) {
            let i = self.obj_to_index(s, addr, p);
            let val = if map[i / 64] & (1 << (i % 64)) != 0 {
                SLUB_RED_INACTIVE
            } else {
                SLUB_RED_ACTIVE
            };
            if !self.check_object(s, slab, p, val) {
                break;
            }
        }
    }

    /// Linux: validate_slab_node().
    fn validate_slab_node(&self, s: &KmemCache, n: &KmemCacheNode) -> u64 {
        let mut count = 0u64;
        let mut l = n.list_lock.lock();
        let head: *mut ListHead = &mut l.partial;
        for_each_slab_safe(head, |slab| {
            // SAFETY: a slab on the list, under its lock.
            self.validate_slab(s, unsafe { &*slab });
            count += 1;
        });
        if count != n.nr_partial() {
            pr_err!(
                "SLUB {}: {} partial slabs counted but counter={}",
                s.name,
                count,
                n.nr_partial()
            );
            self.slab_add_kunit_errors();
        }
        if s.flags & SLAB_STORE_USER != 0 {
            let head: *mut ListHead = &mut l.full;
            for_each_slab_safe(head, |slab| {
                // SAFETY: a slab on the list, under its lock.
                self.validate_slab(s, unsafe { &*slab });
                count += 1;
            });
            if count as i64 != n.node_nr_slabs() {
                pr_err!(
                    "SLUB: {} {} slabs counted but counter={}",
                    s.name,
                    count,
                    n.node_nr_slabs()
                );
                self.slab_add_kunit_errors();
            }
        }
        count
    }

    /// Linux: validate_slab_cache() — check every slab on the node lists; returns how many.
    pub fn validate_slab_cache(&self, s: &KmemCache) -> u64 {
        self.flush_all(s);
        s.nodes().map(|(_, n)| self.validate_slab_node(s, n)).sum()
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
}

#[cfg(test)]
mod tests;
