//! The zoned buddy page allocator. Mirrors the runtime half of Linux 6.1's mm/page_alloc.c
//! (the boot half — zone sizing and the memmap — is free_area_init.rs): `__free_one_page`,
//! `expand`, `__rmqueue_smallest`, `__rmqueue_fallback` with Linux's `fallbacks[]` and
//! pageblock stealing, `get_page_from_freelist` over the zonelist with watermarks and
//! `lowmem_reserve`, `__alloc_pages` and its slow path's failure report (`warn_alloc`),
//! `prep_new_page`/compound pages and the bad-page checks. Its sibling files:
//! - `page_alloc/pcp.rs`: the per-CPU page lists and the fast paths through them
//!   (`rmqueue`, `rmqueue_pcplist`, `rmqueue_bulk`, `free_unref_page`,
//!   `free_pcppages_bulk`, the drains);
//! - `page_alloc/mm_init.rs`: boot memory into the buddy (`memblock_free_all`,
//!   `__free_pages_core`, `free_reserved_area`) and the `Memory:` line;
//! - `page_alloc/deferred.rs`: deferred struct-page init (`deferred_grow_zone`,
//!   `page_alloc_init_late`);
//! - `page_alloc/setup.rs`: watermarks, `lowmem_reserve` and the per-CPU pagesets
//!   (`init_per_zone_wmark_min`, `setup_per_cpu_pageset`);
//! - `page_alloc/show_mem.rs`: the failure report (`warn_alloc`, `show_free_areas`,
//!   `show_mem`) and the free-list snapshot the reports in `mm::show` read;
//! - `page_alloc/debug.rs`: `BUG: Bad page state` and `dump_page`, and the calls into the
//!   debugging facilities (debug_pagealloc, page_owner: `mm::debug_page_alloc`'s hooks)
//!   that post_alloc_hook() and free_pages_prepare() make when one is on;
//! - `page_alloc/contig.rs`: CMA's side: `init_cma_reserved_pageblock`, page isolation,
//!   `alloc_contig_range` / `free_contig_range`; `page_alloc/migrate.rs`: moving non-LRU
//!   movable pages out of a range (mm/migrate.c). Movable requests may take MIGRATE_CMA
//!   blocks (`ALLOC_CMA`; `__rmqueue` takes CMA first when over half of the free memory is
//!   there).
//!
//! The GFP flags are in `mm::gfp`; the zone, order and migratetype constants in
//! `crate::include`.
//!
//! ## One way in
//! Arch and init code call the Linux-named free functions at the end of this file
//! (`page_alloc_init`, `memblock_free_all`, `free_reserved_area`, `mem_init_print_info`,
//! `setup_per_cpu_pageset`, `init_per_zone_wmark_min`); each is a thin call on the kernel's
//! instance. Everything else — the cores, other mm code and every test — calls the methods
//! of a [`PageAlloc`] (the kernel's is [`page_alloc()`]). A free function exists only while
//! arch or init code calls it.
//!
//! ## Where the state lives
//! Everything the allocator changes is in the zones (`free_area` under `zone.lock`, the
//! per-CPU pagesets under their own locks, atomics — see mmzone.rs) and in the `struct page`s.
//! A [`PageAlloc`] adds the machine-wide counters Linux keeps in globals (`totalram_pages`,
//! `min_free_kbytes`, ...) and the [`PageAllocEnv`] hooks through which it reaches page
//! structs and page contents, so the core never calls arch code: the kernel has one instance
//! (`page_alloc_init`); host tests build as many as they like over simulated memory.
//!
//! ## What is different from Linux, and why
//! - No reclaim, compaction or OOM killer: the slow path drains the per-CPU lists and gives
//!   back the high-atomic reserve (what Linux does when direct reclaim makes no progress),
//!   then fails with Linux's `page allocation failure` report. `__GFP_NOFAIL` fails too.
//! - No kswapd, so watermark boosting is off (Linux with `vm.watermark_boost_factor=0`):
//!   nothing would ever take a boost back down.
//! - The bad-page checks run on every free and allocation, as with CONFIG_DEBUG_VM; a
//!   double free or a free of a tail page is reported (`BUG: Bad page state`) and refused,
//!   where Linux without DEBUG_VM would corrupt its lists.
//! - Before `setup_per_cpu_pageset` a zone has no per-CPU lists and pages go straight to and
//!   from the buddy — what Linux's `boot_pageset` (high 0, batch 1) amounts to. The pagesets
//!   are then allocated from the buddy on the zone's node (Linux: `alloc_percpu`), one per
//!   possible CPU.
//! - DEFERRED_STRUCT_PAGE_INIT is Linux's (`page_alloc/deferred.rs`): the `Memory:` line's first number is the memory
//!   freed by then, as Linux's; get_page_from_freelist() grows a zone with deferred pages.
//! - No interrupt handler allocates (every CPU runs with interrupts masked), so the locks
//!   do not disable interrupts (Linux: `spin_lock_irqsave(&zone->lock)`, `pcp_spin_trylock`
//!   with preemption off).
//!
//! ## Locks, and who touches a CPU's lists
//! 1. A per-CPU pageset's `lock` (Linux: `pcp->lock`): each CPU's `per_cpu_pages` is its own
//!    — allocation and free reach the lists of `smp_processor_id()` only (Linux reaches them
//!    through `this_cpu_ptr(zone->per_cpu_pageset)`; here they are an array indexed by CPU
//!    in buddy memory, allocated by `setup_zone_pageset`) and take the lock with `try_lock`,
//!    falling back to the buddy if it is busy, as Linux does. Other CPUs take it only to
//!    drain (`drain_all_pages`, from the draining CPU as Linux 6.1's `__drain_all_pages`
//!    does), to read the counts (`show_free_areas`) and to set `high`/`batch`: on the fast
//!    paths it is uncontended, one atomic exchange to take it and a release store to drop.
//!    A request looks its CPU up once and passes it down.
//! 2. `zone.lock` — the zone's `free_area` lists and free counters; nests inside a pcp lock
//!    (a refill or a bulk free runs under both), never the other way round.
//! 3. The `struct page` fields of a block are written by whoever owns the block (the caller
//!    after allocation; under `zone.lock` while it is free).
//!
//! Counters (`vm_stat`, `totalram_pages`) are atomics. The zone's free-page counters change
//! only under `zone.lock` (refills, bulk frees, the buddy path), so they are written with a
//! plain load and store (`__mod_zone_page_state`), not an atomic read-modify-write; the fast
//! paths do not touch them at all (NR_FREE_PAGES leaves out the per-CPU lists, as in
//! Linux), so no per-CPU counter deltas are needed. A page's flags are cleared the same way
//! by its owner (`Page::__clear_flags`); its refcount stays atomic (`put_page_testzero`).
//! A page allocated on one CPU may be freed on any other: the free goes to the freeing
//! CPU's list, as in Linux.

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};

use super::addr::{Pfn, PhysAddr, VirtAddr, PAGE_SHIFT, PAGE_SIZE};
use super::debug_page_alloc::PageDebugHooks;
use super::mmzone::{
    NodeDataMap, RawSpinlock, Zone, Zonelist, NR_FREE_CMA_PAGES, NR_FREE_PAGES,
    NR_LOWORDER_PCP_LISTS, WMARK_HIGH, WMARK_LOW, WMARK_MIN, ZONELIST_FALLBACK,
    ZONELIST_NOFALLBACK,
};
use super::numa::Nodemask;
use super::page::{
    list_add, list_add_tail, list_del, list_empty, list_move_tail, lru_to_page, ListHead, Page,
    COMPOUND_PAGE_DTOR, PAGE_FLAGS_CHECK_AT_FREE, PAGE_FLAGS_CHECK_AT_PREP, PG_HEAD, PG_LRU,
    TAIL_MAPPING,
};
use crate::include::mmzone::{
    page_group_by_mobility_disabled, MIGRATE_CMA, MIGRATE_HIGHATOMIC, MIGRATE_ISOLATE,
    MIGRATE_MOVABLE, MIGRATE_PCPTYPES, MIGRATE_RECLAIMABLE, MIGRATE_TYPES, MIGRATE_UNMOVABLE,
    ZONE_DMA32, ZONE_NORMAL,
};
use crate::include::mmzone::{MAX_ORDER, PAGE_ALLOC_COSTLY_ORDER};
use crate::include::pageblock_flags::{PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER};

// Temporary re-exports: the GFP flags moved to `mm::gfp` and `%pGp` to `mm::page`; modules
// that still import them from here keep compiling until they import those directly. (The
// glob is also this file's own import of `mm::gfp`: when it goes, import the names used.)
use super::gfp::*;

mod contig;
mod debug;
mod deferred;
mod meminit;
pub mod migrate;
mod mm_init;
mod page_ref;
mod pcp;
mod setup;
mod show_mem;
pub mod shuffle;
pub use self::contig::{EBUSY, EINVAL};
pub use self::deferred::{DeferredPages, PadataSmp, DEFERRED_RANGES, HZ};
pub use self::meminit::{report_meminit, MemInit};
pub use self::mm_init::{memblock_free_all, KernelSymbols, MemInitInfo};
pub use self::setup::int_sqrt;
pub use self::show_mem::{
    free_area_snapshot, show_free_areas, show_mem, warn_alloc_lines, FreeAreaSnapshot, NodeList,
    PAGETYPEINFO_CAP,
};

// ---------------------------------------------------------------------------------------------
// Allocation flags (mm/internal.h) and free flags.

/// Linux: ALLOC_WMARK_MIN.
pub const ALLOC_WMARK_MIN: u32 = WMARK_MIN as u32;
/// Linux: ALLOC_WMARK_LOW.
pub const ALLOC_WMARK_LOW: u32 = WMARK_LOW as u32;
/// Linux: ALLOC_WMARK_HIGH.
pub const ALLOC_WMARK_HIGH: u32 = WMARK_HIGH as u32;
/// Linux: ALLOC_NO_WATERMARKS.
pub const ALLOC_NO_WATERMARKS: u32 = 0x04;
/// Linux: ALLOC_WMARK_MASK.
pub const ALLOC_WMARK_MASK: u32 = ALLOC_NO_WATERMARKS - 1;
/// Linux: ALLOC_OOM.
pub const ALLOC_OOM: u32 = 0x08;
/// Linux: ALLOC_HARDER — atomic: a quarter more of the min watermark, and the high-atomic
/// reserve.
pub const ALLOC_HARDER: u32 = 0x10;
/// Linux: ALLOC_HIGH — __GFP_HIGH: half of the min watermark.
pub const ALLOC_HIGH: u32 = 0x20;
/// Linux: ALLOC_CPUSET.
pub const ALLOC_CPUSET: u32 = 0x40;
/// Linux: ALLOC_CMA.
pub const ALLOC_CMA: u32 = 0x80;
/// Linux: ALLOC_NOFRAGMENT — first pass: steal only whole pageblocks from other types.
pub const ALLOC_NOFRAGMENT: u32 = 0x100;
/// Linux: ALLOC_KSWAPD.
pub const ALLOC_KSWAPD: u32 = 0x800;

/// Linux: fpi_t FPI_NONE.
pub const FPI_NONE: u32 = 0;
/// Linux: FPI_TO_TAIL — put the freed block at the tail of its list (fresh memory).
pub const FPI_TO_TAIL: u32 = 1 << 1;

/// Linux: fallbacks[][] — where each type looks when its own lists are empty.
pub const FALLBACKS: [[u32; 3]; MIGRATE_TYPES] = [
    [MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE, MIGRATE_TYPES as u32],
    [MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE, MIGRATE_TYPES as u32],
    [MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_TYPES as u32],
    [MIGRATE_TYPES as u32; 3], // HIGHATOMIC: never falls back
    [MIGRATE_TYPES as u32; 3], // CMA: never used
    [MIGRATE_TYPES as u32; 3], // ISOLATE: never used
];

/// Linux: watermark_scale_factor's default.
pub const WATERMARK_SCALE_FACTOR: u64 = 10;
/// Linux: min_free_kbytes' value before init_per_zone_wmark_min().
pub const MIN_FREE_KBYTES_DEFAULT: u64 = 1024;
/// Linux: POISON_FREE_INITMEM — what free_initmem() fills freed init memory with.
pub const POISON_FREE_INITMEM: i32 = 0xcc;

/// Linux: NUMA_NO_NODE — "this CPU's node" to __alloc_pages().
const NUMA_NO_NODE: i32 = -1;

/// Linux: current->comm of the only context that allocates here.
const COMM: &str = "swapper/0";

/// Linux: pcp_allowed_order() — orders cached per CPU (with THP: also pageblock_order).
pub const fn pcp_allowed_order(order: u32) -> bool {
    order <= PAGE_ALLOC_COSTLY_ORDER || order == PAGEBLOCK_ORDER
}

/// Linux: order_to_pindex().
pub const fn order_to_pindex(migratetype: u32, order: u32) -> usize {
    if order > PAGE_ALLOC_COSTLY_ORDER {
        return NR_LOWORDER_PCP_LISTS;
    }
    (MIGRATE_PCPTYPES * order + migratetype) as usize
}

/// Linux: pindex_to_order().
pub const fn pindex_to_order(pindex: usize) -> u32 {
    if pindex == NR_LOWORDER_PCP_LISTS {
        return PAGEBLOCK_ORDER;
    }
    pindex as u32 / MIGRATE_PCPTYPES
}

/// Linux: get_order() — the smallest order whose block holds `size` bytes.
pub const fn get_order(size: u64) -> u32 {
    if size <= PAGE_SIZE {
        return 0;
    }
    64 - ((size - 1) >> PAGE_SHIFT).leading_zeros()
}

/// Linux: migratetype_is_mergeable().
const fn migratetype_is_mergeable(mt: u32) -> bool {
    mt < MIGRATE_PCPTYPES
}

// ---------------------------------------------------------------------------------------------
// The hooks and the instance.

/// How the allocator reaches memory and asks which CPU it runs on: set once by the kernel
/// (`page_alloc_init`), or by a host test over a Vec memmap and host buffers.
#[derive(Clone, Copy, Debug)]
pub struct PageAllocEnv {
    /// Linux: vmemmap — `pfn_to_page(pfn)` is `vmemmap + pfn`. Only pfns of sections with
    /// memory are dereferenced.
    pub vmemmap: *mut Page,
    /// Linux: __va() — a page's contents, for __GFP_ZERO, poisoning and page_address().
    pub phys_to_virt: Option<fn(PhysAddr) -> *mut u8>,
    /// Linux: __pa() of a linear-map address — for free_pages() and virt_to_page().
    pub virt_to_phys: Option<fn(VirtAddr) -> PhysAddr>,
    /// Linux: clear_page() — the arch's way to zero one page-aligned page at a
    /// `phys_to_virt` address (arm64: DC ZVA); None: a plain memset.
    ///
    /// # Safety (of the hook)
    /// Called only with the address of a whole page the allocator owns, mapped writable.
    pub clear_page: Option<unsafe fn(*mut u8)>,
    /// Linux: smp_processor_id().
    pub smp_processor_id: fn() -> usize,
    /// The address of the kernel's per-CPU `cpu_number`, so the allocation and free paths
    /// read the CPU number inline as arm64's `raw_smp_processor_id()` does (0: call
    /// `smp_processor_id`). Set only through [`PageAllocEnv::with_cpu_number`].
    cpu_number: usize,
    /// Linux: cpu_to_node().
    pub cpu_to_node: fn(usize) -> i32,
    /// Each CPU's node, one word a CPU, where the kernel published it
    /// ([`PageAllocEnv::with_cpu_node_map`]): the allocation path reads it inline, as Linux's
    /// numa_node_id() reads the per-CPU `numa_node`. None: call `cpu_to_node`.
    cpu_node_map: Option<&'static [AtomicI32]>,
    /// Linux: cpumask_weight(cpumask_of_node(nid)) — online CPUs of a node.
    pub nr_cpus_node: fn(i32) -> u32,
    /// Linux: num_online_cpus().
    pub num_online_cpus: fn() -> u32,
}

fn cpu0() -> usize {
    0
}
fn node0(_cpu: usize) -> i32 {
    0
}
fn no_cpus(_nid: i32) -> u32 {
    0
}
fn one_cpu() -> u32 {
    1
}

impl PageAllocEnv {
    /// A uniprocessor environment over `vmemmap`, without access to page contents.
    pub fn new(vmemmap: *mut Page) -> Self {
        Self {
            vmemmap,
            phys_to_virt: None,
            virt_to_phys: None,
            clear_page: None,
            smp_processor_id: cpu0,
            cpu_number: 0,
            cpu_to_node: node0,
            cpu_node_map: None,
            nr_cpus_node: no_cpus,
            num_online_cpus: one_cpu,
        }
    }

    /// Lets the allocation and free paths read the CPU number inline,
    /// `this_cpu_read(cpu_number)`: the `u64` at `cpu_number`'s address plus this CPU's
    /// per-CPU offset (TPIDR_EL1), instead of calling `smp_processor_id`. Only the
    /// bare-metal arm64 build uses it.
    ///
    /// # Safety
    /// `cpu_number` is the kernel's `.data..percpu` `cpu_number`: on every CPU that uses this
    /// allocator, TPIDR_EL1 holds that CPU's per-CPU offset (0 before the per-CPU areas
    /// exist, when only the boot CPU runs) and its copy holds the CPU's number.
    pub unsafe fn with_cpu_number(&mut self, cpu_number: &'static AtomicU64) {
        self.cpu_number = cpu_number as *const AtomicU64 as usize;
    }

    /// Lets the allocation path read the running CPU's node inline from `map` (index: CPU
    /// number) instead of calling `cpu_to_node`; a CPU past its end is on node 0. `map` must
    /// say what `cpu_to_node` says (the kernel's is `numa::cpu_node_map()`, written once at
    /// numa_publish).
    pub fn with_cpu_node_map(&mut self, map: &'static [AtomicI32]) {
        self.cpu_node_map = Some(map);
    }
}

/// The allocator over one machine's nodes: Linux's page_alloc.c globals, the hooks, and the
/// code. Lock: the counters are atomics; `wmark_lock` serialises watermark set-up (Linux's
/// static lock in setup_per_zone_wmarks()); everything else is in the zones.
pub struct PageAlloc<'a> {
    nodes: &'a NodeDataMap,
    env: PageAllocEnv,
    /// Linux: _totalram_pages — pages managed by the buddy.
    totalram_pages: AtomicU64,
    /// Linux: totalreserve_pages.
    totalreserve_pages: AtomicU64,
    /// Linux: min_free_kbytes.
    min_free_kbytes: AtomicU64,
    /// Linux: user_min_free_kbytes (-1: not set by the user).
    user_min_free_kbytes: AtomicI64,
    /// Linux: watermark_scale_factor.
    watermark_scale_factor: AtomicU64,
    /// Linux: reset_managed_pages_done.
    reset_managed_pages_done: AtomicBool,
    wmark_lock: RawSpinlock,
    /// Pages reported by bad_page() (Linux taints the kernel: TAINT_BAD_PAGE).
    bad_pages: AtomicU64,
    /// Linux: nr_online_nodes.
    nr_online_nodes: u32,
    /// Linux: the deferred_pages static key, and what deferred init has left to do.
    deferred: DeferredPages,
    /// Linux: the init_on_alloc static key (meminit.rs; off until set).
    init_on_alloc: AtomicBool,
    /// Linux: the init_on_free static key (meminit.rs; off until set).
    init_on_free: AtomicBool,
    /// Linux: the debug_pagealloc / page_owner static keys, as one flag: is any hook in
    /// `debug_hooks` set (page_alloc/debug.rs)? The hot paths' only test for them.
    debug_on: AtomicBool,
    /// The debugging facilities' hooks (mm::debug_page_alloc), set before sharing.
    debug_hooks: spin::Once<PageDebugHooks>,
    /// Linux: totalcma_pages — pages of the CMA areas (counted apart from totalram_pages
    /// until the areas are activated, and in the `Memory:` line's `cma-reserved`).
    totalcma_pages: AtomicU64,
}

// SAFETY: `env.vmemmap` is the memmap, whose pages are only written under the zone and pcp
// locks or by their owner (the contract of PageAlloc::new); the rest is atomics, a lock, plain
// data written before sharing, and `&NodeDataMap`, which is Sync.
unsafe impl Sync for PageAlloc<'_> {}
// SAFETY: as above.
unsafe impl Send for PageAlloc<'_> {}

/// What an allocation is after (Linux: struct alloc_context).
struct AllocContext<'z> {
    zonelist: &'z Zonelist,
    nodemask: Option<Nodemask>,
    /// Index in `zonelist` of the first zone allowed (Linux: preferred_zoneref).
    preferred: Option<usize>,
    /// The zone `preferred` names.
    preferred_zone: Option<&'z Zone>,
    /// The running CPU (looked up once per request; nothing moves a request to another).
    cpu: usize,
    highest_zoneidx: usize,
    migratetype: u32,
}

/// A page handed out by the allocator (Linux: `struct page *`).
pub type PagePtr = NonNull<Page>;

impl<'a> PageAlloc<'a> {
    /// An allocator over `nodes` (whose zones free_area_init() set up and
    /// build_all_zonelists() linked), owning no memory until memblock_free_all().
    ///
    /// # Safety
    /// `env.vmemmap + pfn` must be the initialised `struct page` of every pfn in a section
    /// with memory, for as long as the allocator lives, and nothing else may write the page
    /// structs of free pages. `env.phys_to_virt`, if set, must map every page the buddy
    /// manages to writable memory nothing else uses while the page is free or owned by the
    /// caller that asked for zeroing; `env.virt_to_phys` must be its inverse.
    pub unsafe fn new(nodes: &'a NodeDataMap, env: PageAllocEnv) -> Self {
        Self {
            nodes,
            env,
            totalram_pages: AtomicU64::new(0),
            totalreserve_pages: AtomicU64::new(0),
            min_free_kbytes: AtomicU64::new(MIN_FREE_KBYTES_DEFAULT),
            user_min_free_kbytes: AtomicI64::new(-1),
            watermark_scale_factor: AtomicU64::new(WATERMARK_SCALE_FACTOR),
            reset_managed_pages_done: AtomicBool::new(false),
            wmark_lock: RawSpinlock::new(),
            bad_pages: AtomicU64::new(0),
            nr_online_nodes: nodes.pgdats().count() as u32,
            deferred: DeferredPages::new(),
            init_on_alloc: AtomicBool::new(false),
            init_on_free: AtomicBool::new(false),
            debug_on: AtomicBool::new(false),
            debug_hooks: spin::Once::new(),
            totalcma_pages: AtomicU64::new(0),
        }
    }

    /// The nodes this allocator serves.
    pub fn nodes(&self) -> &'a NodeDataMap {
        self.nodes
    }

    /// The hooks.
    pub fn env(&self) -> &PageAllocEnv {
        &self.env
    }

    /// Linux: totalram_pages().
    pub fn totalram_pages(&self) -> u64 {
        self.totalram_pages.load(Ordering::Relaxed)
    }

    /// Linux: totalram_pages_add().
    pub fn totalram_pages_add(&self, count: i64) {
        self.totalram_pages
            .fetch_add(count as u64, Ordering::Relaxed);
    }

    /// Linux: totalcma_pages.
    pub fn totalcma_pages(&self) -> u64 {
        self.totalcma_pages.load(Ordering::Relaxed)
    }

    /// CMA areas reserved (or lost, negative) pages: Linux's `totalcma_pages +=`.
    pub fn totalcma_pages_add(&self, count: i64) {
        self.totalcma_pages
            .fetch_add(count as u64, Ordering::Relaxed);
    }

    /// Linux: totalreserve_pages.
    pub fn totalreserve_pages(&self) -> u64 {
        self.totalreserve_pages.load(Ordering::Relaxed)
    }

    /// Linux: min_free_kbytes.
    pub fn min_free_kbytes(&self) -> u64 {
        self.min_free_kbytes.load(Ordering::Relaxed)
    }

    /// Linux: the vm.min_free_kbytes sysctl — set by the user, recompute the watermarks.
    pub fn set_min_free_kbytes(&self, kbytes: u64) {
        self.min_free_kbytes.store(kbytes, Ordering::Relaxed);
        self.user_min_free_kbytes
            .store(kbytes as i64, Ordering::Relaxed);
        self.setup_per_zone_wmarks();
    }

    /// How many bad pages were reported (Linux: the TAINT_BAD_PAGE taint, counted).
    pub fn bad_pages(&self) -> u64 {
        self.bad_pages.load(Ordering::Relaxed)
    }

    /// Linux: nr_online_nodes.
    pub fn nr_online_nodes(&self) -> u32 {
        self.nr_online_nodes
    }

    /// Linux: numa_node_id() — the running CPU's node.
    pub fn numa_node_id(&self) -> i32 {
        self.cpu_to_node(self.this_cpu())
    }

    /// Linux: cpu_to_node() — inline from the published map where there is one
    /// ([`PageAllocEnv::with_cpu_node_map`]), else the hook.
    #[inline(always)]
    fn cpu_to_node(&self, cpu: usize) -> i32 {
        match self.env.cpu_node_map {
            Some(map) => map.get(cpu).map_or(0, |n| n.load(Ordering::Relaxed)),
            None => (self.env.cpu_to_node)(cpu),
        }
    }

    // ----- struct page <-> pfn <-> address

    /// Linux: pfn_to_page().
    #[inline]
    pub fn pfn_to_page(&self, pfn: Pfn) -> *mut Page {
        self.env.vmemmap.wrapping_add(pfn.0 as usize)
    }

    /// Linux: smp_processor_id() — inline through the per-CPU `cpu_number` where the
    /// kernel said where it is ([`PageAllocEnv::with_cpu_number`]), else the hook.
    #[inline(always)]
    pub(super) fn this_cpu(&self) -> usize {
        #[cfg(all(target_arch = "aarch64", target_os = "none"))]
        if self.env.cpu_number != 0 {
            // SAFETY: `cpu_number` is the kernel's per-CPU `cpu_number`
            // (PageAllocEnv::with_cpu_number).
            return unsafe { crate::include::processor::this_cpu_read_u64(self.env.cpu_number) }
                as usize;
        }
        (self.env.smp_processor_id)()
    }

    /// Linux: page_to_pfn().
    #[inline]
    pub fn page_to_pfn(&self, page: *const Page) -> Pfn {
        Pfn(
            ((page as usize).wrapping_sub(self.env.vmemmap as usize) / core::mem::size_of::<Page>())
                as u64,
        )
    }

    /// Linux: page_address() — the page's linear-map address (needs `phys_to_virt`).
    pub fn page_address(&self, page: PagePtr) -> VirtAddr {
        let f = self
            .env
            .phys_to_virt
            .expect("page_address: no phys_to_virt hook");
        VirtAddr(f(self.page_to_pfn(page.as_ptr()).phys()) as u64)
    }

    /// Linux: virt_to_page() (needs `virt_to_phys`).
    pub fn virt_to_page(&self, addr: VirtAddr) -> PagePtr {
        let f = self
            .env
            .virt_to_phys
            .expect("virt_to_page: no virt_to_phys hook");
        NonNull::new(self.pfn_to_page(f(addr).pfn_down())).expect("virt_to_page: null struct page")
    }

    /// Linux: page_zone().
    fn page_zone(&self, page: *const Page) -> &'a Zone {
        // SAFETY: callers pass pages of the memmap (see `new`); node and zone bits are atomic.
        let p = unsafe { &*page };
        let pgdat = self.nodes.get(p.page_to_nid()).unwrap_or_else(|| {
            panic!(
                "page_zone: pfn {:#x} on a node without pg_data_t",
                self.page_to_pfn(page).0
            )
        });
        &pgdat.node_zones[p.page_zonenum()]
    }

    /// Linux: for_each_zone() — every zone of every online node, populated or not.
    pub fn zones(&self) -> impl Iterator<Item = &'a Zone> + 'a {
        self.nodes.pgdats().flat_map(|p| p.node_zones.iter())
    }

    /// Linux: for_each_populated_zone().
    pub fn populated_zones(&self) -> impl Iterator<Item = &'a Zone> + 'a {
        self.zones().filter(|z| z.populated_zone())
    }

    /// Linux: get_pfnblock_migratetype().
    fn get_pfnblock_migratetype(&self, zone: &Zone, pfn: u64) -> u32 {
        zone.get_pageblock_migratetype(Pfn(pfn))
    }

    // ----- free lists (the zone lock is held by every caller of these)

    fn free_list(zone: &Zone, order: u32, mt: u32) -> *mut ListHead {
        // SAFETY: in bounds; a raw place, no reference is made.
        unsafe {
            ptr::addr_of_mut!((*zone.free_area.get().add(order as usize)).free_list[mt as usize])
        }
    }

    fn nr_free_ptr(zone: &Zone, order: u32) -> *mut u64 {
        // SAFETY: in bounds; a raw place.
        unsafe { ptr::addr_of_mut!((*zone.free_area.get().add(order as usize)).nr_free) }
    }

    /// Linux: get_page_from_free_area().
    ///
    /// # Safety
    /// The caller holds `zone.lock` (the free lists are read without further locking), and
    /// `order < MAX_ORDER`, `mt < MIGRATE_TYPES` (`free_list` offsets the free area unchecked).
    unsafe fn get_page_from_free_area(zone: &Zone, order: u32, mt: u32) -> Option<*mut Page> {
        let head = Self::free_list(zone, order, mt);
        // SAFETY: zone lock held (caller).
        unsafe {
            if list_empty(head) {
                None
            } else {
                Some(lru_to_page((*head).next))
            }
        }
    }

    /// Linux: add_to_free_list() / add_to_free_list_tail().
    ///
    /// # Safety
    /// The caller holds `zone.lock`; `order < MAX_ORDER` and `mt < MIGRATE_TYPES`; `page` is a
    /// struct page of this allocator's memmap, the head of a block of `2^order` pages of `zone`
    /// aligned to its size, which the caller owns and which is on no list (its `lru` is free to
    /// link). The caller marks it PageBuddy with this order under the same hold of the lock.
    unsafe fn add_to_free_list(zone: &Zone, page: *mut Page, order: u32, mt: u32, tail: bool) {
        let head = Self::free_list(zone, order, mt);
        // SAFETY: zone lock held; the page is free and ours.
        unsafe {
            let lru = ptr::addr_of_mut!((*page).lru);
            if tail {
                list_add_tail(lru, head);
            } else {
                list_add(lru, head);
            }
            *Self::nr_free_ptr(zone, order) += 1;
        }
    }

    /// Linux: move_to_free_list() — to the tail of another type's list of the same order.
    ///
    /// # Safety
    /// The caller holds `zone.lock`; `mt < MIGRATE_TYPES`; `page` is the head of a free block
    /// (PageBuddy) of `order` that is on one of `zone`'s free lists of that order.
    unsafe fn move_to_free_list(zone: &Zone, page: *mut Page, order: u32, mt: u32) {
        // SAFETY: zone lock held; the page is on one of this zone's lists.
        unsafe {
            list_move_tail(
                ptr::addr_of_mut!((*page).lru),
                Self::free_list(zone, order, mt),
            )
        }
    }

    /// Linux: del_page_from_free_list().
    ///
    /// # Safety
    /// The caller holds `zone.lock`; `page` is the head of a free block (PageBuddy) of `order`
    /// that is on one of `zone`'s free lists of that order (and counted in its `nr_free`). The
    /// caller owns the block afterwards.
    unsafe fn del_page_from_free_list(zone: &Zone, page: *mut Page, order: u32) {
        // SAFETY: zone lock held; the page is on one of this zone's lists.
        unsafe {
            list_del(ptr::addr_of_mut!((*page).lru));
            (*page).__clear_page_buddy();
            (*page).set_page_private(0);
            *Self::nr_free_ptr(zone, order) -= 1;
        }
    }

    /// Linux: __mod_zone_page_state() — a zone counter that changes only under `zone.lock`
    /// (NR_FREE_PAGES, NR_FREE_CMA_PAGES): a plain read and write, no atomic
    /// read-modify-write; readers without the lock see the old or the new value.
    ///
    /// # Safety
    /// The caller holds `zone.lock` (every writer of the item does), and `item <
    /// NR_VM_ZONE_STAT_ITEMS`.
    #[inline]
    unsafe fn __mod_zone_page_state(zone: &Zone, item: usize, delta: i64) {
        let c = &zone.vm_stat[item];
        c.store(c.load(Ordering::Relaxed) + delta, Ordering::Relaxed);
    }

    /// Linux: __mod_zone_freepage_state().
    ///
    /// # Safety
    /// The caller holds `zone.lock`.
    #[inline]
    unsafe fn mod_zone_freepage_state(zone: &Zone, nr_pages: i64, mt: u32) {
        // SAFETY: zone lock held (caller).
        unsafe {
            Self::__mod_zone_page_state(zone, NR_FREE_PAGES, nr_pages);
            if mt == MIGRATE_CMA {
                Self::__mod_zone_page_state(zone, NR_FREE_CMA_PAGES, nr_pages);
            }
        }
    }

    /// Linux: page_is_buddy() — `buddy` is a free block of exactly `order` in the same zone.
    ///
    /// # Safety
    /// `page` and `buddy` point to initialised struct pages of this allocator's memmap (for a
    /// buddy pfn: inside the same MAX_ORDER-aligned block as `page`, whose struct pages all
    /// exist), and the caller holds the lock of `page`'s zone, under which the buddy fields
    /// they read are written.
    unsafe fn page_is_buddy(page: *const Page, buddy: *const Page, order: u32) -> bool {
        // SAFETY: both are in the same MAX_ORDER block, hence the same present section.
        unsafe {
            (*buddy).page_buddy()
                && (*buddy).buddy_order() == order
                && (*page).page_zone_id() == (*buddy).page_zone_id()
        }
    }

    /// Linux: buddy_merge_likely() — will the block's buddy one order up be free soon? Then
    /// put it at the tail, so it is not handed out before it can merge.
    ///
    /// # Safety
    /// The caller holds the zone lock of the block at `pfn`; `pfn` and `buddy_pfn` are buddies
    /// of `order` (`buddy_pfn == pfn ^ (1 << order)`) and every pfn of their MAX_ORDER-aligned
    /// block has an initialised struct page in this allocator's memmap.
    unsafe fn buddy_merge_likely(&self, pfn: u64, buddy_pfn: u64, order: u32) -> bool {
        if order as usize >= MAX_ORDER - 2 {
            return false;
        }
        let higher_pfn = buddy_pfn & pfn;
        let higher_buddy_pfn = higher_pfn ^ (1 << (order + 1));
        // SAFETY: same MAX_ORDER block.
        unsafe {
            Self::page_is_buddy(
                self.pfn_to_page(Pfn(higher_pfn)),
                self.pfn_to_page(Pfn(higher_buddy_pfn)),
                order + 1,
            )
        }
    }

    /// Linux: __free_one_page() — give a block back, merging it with its buddy while the
    /// buddy (`pfn ^ (1 << order)`) is a free block of the same order in the same zone.
    ///
    /// # Safety
    /// The caller holds `zone.lock`; `page` is the struct page of `pfn` in this allocator's
    /// memmap, the head of a block of `2^order` pages aligned to its size, lying in `zone`, that
    /// the caller owns and no longer uses, prepared for freeing (not PageBuddy, on no list);
    /// `mt` is its migratetype (`< MIGRATE_TYPES`) and every pfn of its MAX_ORDER-aligned block
    /// has an initialised struct page in the memmap. The block belongs to the allocator after.
    unsafe fn __free_one_page(
        &self,
        zone: &Zone,
        mut page: *mut Page,
        mut pfn: u64,
        mut order: u32,
        mt: u32,
        fpi_flags: u32,
    ) {
        debug_assert!(zone.zone_is_initialized());
        debug_assert!(pfn & ((1 << order) - 1) == 0, "unaligned free");
        debug_assert!(zone.zone_spans_pfn(Pfn(pfn)), "page outside its zone");
        if mt != MIGRATE_ISOLATE {
            // SAFETY: zone lock held (caller).
            unsafe { Self::mod_zone_freepage_state(zone, 1 << order, mt) };
        }
        let mut buddy_pfn = 0;
        while (order as usize) < MAX_ORDER - 1 {
            buddy_pfn = pfn ^ (1 << order);
            let buddy = self.pfn_to_page(Pfn(buddy_pfn));
            // SAFETY: same MAX_ORDER block; zone lock held.
            if !unsafe { Self::page_is_buddy(page, buddy, order) } {
                break;
            }
            // Blocks of pageblock size or more of a type that must not mix do not merge.
            if order >= PAGEBLOCK_ORDER {
                let buddy_mt = zone.get_pageblock_migratetype(Pfn(buddy_pfn));
                if mt != buddy_mt
                    && (!migratetype_is_mergeable(mt) || !migratetype_is_mergeable(buddy_mt))
                {
                    break;
                }
            }
            // SAFETY: the buddy is PageBuddy, so on one of this zone's lists.
            unsafe { Self::del_page_from_free_list(zone, buddy, order) };
            let combined_pfn = buddy_pfn & pfn;
            page = self.pfn_to_page(Pfn(combined_pfn));
            pfn = combined_pfn;
            order += 1;
        }
        // SAFETY: zone lock held; the merged block is ours.
        unsafe {
            (*page).set_buddy_order(order);
            let to_tail = if fpi_flags & FPI_TO_TAIL != 0 {
                true
            } else if shuffle::is_shuffle_order(order) {
                shuffle::shuffle_pick_tail()
            } else {
                self.buddy_merge_likely(pfn, buddy_pfn, order)
            };
            Self::add_to_free_list(zone, page, order, mt, to_tail);
        }
    }

    /// Linux: expand() — split a block of order `high` down to `low`, putting the upper
    /// halves back on the free lists.
    ///
    /// # Safety
    /// The caller holds `zone.lock`; `low <= high < MAX_ORDER`, `mt < MIGRATE_TYPES`; `page` is
    /// the head of a block of order `high` of `zone` in this allocator's memmap that the caller
    /// has just taken off the free lists (owned, on no list). The upper halves become free
    /// blocks of `mt`; the caller keeps the first `2^low` pages.
    unsafe fn expand(zone: &Zone, page: *mut Page, low: u32, mut high: u32, mt: u32) {
        let mut size = 1usize << high;
        while high > low {
            high -= 1;
            size >>= 1;
            let p = page.wrapping_add(size);
            // SAFETY: zone lock held; the half is part of the block just taken off a list.
            unsafe {
                Self::add_to_free_list(zone, p, high, mt, false);
                (*p).set_buddy_order(high);
            }
        }
    }

    /// Linux: __rmqueue_smallest() — the smallest block of `mt` that fits, split to `order`.
    ///
    /// # Safety
    /// The caller holds `zone.lock`, `order < MAX_ORDER` and `mt < MIGRATE_TYPES`. A returned
    /// page is owned by the caller; NR_FREE_PAGES is not adjusted here (the caller does it).
    unsafe fn __rmqueue_smallest(zone: &Zone, order: u32, mt: u32) -> Option<*mut Page> {
        for current_order in order..MAX_ORDER as u32 {
            // SAFETY: zone lock held (caller).
            unsafe {
                let Some(page) = Self::get_page_from_free_area(zone, current_order, mt) else {
                    continue;
                };
                Self::del_page_from_free_list(zone, page, current_order);
                Self::expand(zone, page, order, current_order, mt);
                // Linux: set_pcppage_migratetype().
                (*page).index = mt as u64;
                return Some(page);
            }
        }
        None
    }

    /// Linux: can_steal_fallback().
    fn can_steal_fallback(order: u32, start_mt: u32) -> bool {
        order >= PAGEBLOCK_ORDER
            || order >= PAGEBLOCK_ORDER / 2
            || start_mt == MIGRATE_RECLAIMABLE
            || start_mt == MIGRATE_UNMOVABLE
            || page_group_by_mobility_disabled()
    }

    /// Linux: find_suitable_fallback() — the first type in `mt`'s fallback list with a free
    /// block of `order`, and whether a whole pageblock may be stolen.
    ///
    /// # Safety
    /// The caller holds `zone.lock`; `order < MAX_ORDER` and `mt < MIGRATE_TYPES`.
    unsafe fn find_suitable_fallback(
        zone: &Zone,
        order: u32,
        mt: u32,
        only_stealable: bool,
    ) -> Option<(u32, bool)> {
        // SAFETY: zone lock held (caller).
        if unsafe { *Self::nr_free_ptr(zone, order) } == 0 {
            return None;
        }
        let mut can_steal = false;
        for &fallback_mt in FALLBACKS[mt as usize].iter() {
            if fallback_mt == MIGRATE_TYPES as u32 {
                break;
            }
            // SAFETY: as above.
            if unsafe { list_empty(Self::free_list(zone, order, fallback_mt)) } {
                continue;
            }
            if Self::can_steal_fallback(order, mt) {
                can_steal = true;
            }
            if !only_stealable || can_steal {
                return Some((fallback_mt, can_steal));
            }
        }
        None
    }

    /// Linux: move_freepages() — move every free block in `[start_pfn, end_pfn]` to `mt`'s
    /// lists; count the movable-looking pages that are not free.
    ///
    /// # Safety
    /// The caller holds `zone.lock`; `mt < MIGRATE_TYPES`; `[start_pfn, end_pfn]` lies within
    /// one pageblock inside `zone`'s span, and every pfn of it has an initialised struct page
    /// in this allocator's memmap.
    unsafe fn move_freepages(
        &self,
        zone: &Zone,
        start_pfn: u64,
        end_pfn: u64,
        mt: u32,
        num_movable: &mut i64,
    ) -> i64 {
        let mut pages_moved = 0;
        let mut pfn = start_pfn;
        while pfn <= end_pfn {
            let page = self.pfn_to_page(Pfn(pfn));
            // SAFETY: the pageblock lies in the zone and in one present section; lock held.
            unsafe {
                if !(*page).page_buddy() {
                    // Linux: PageLRU() || __PageMovable(); no LRU pages exist here yet.
                    if (*page).test_flag(PG_LRU) || (*page).mapping & 0x3 == 0x2 {
                        *num_movable += 1;
                    }
                    pfn += 1;
                    continue;
                }
                let order = (*page).buddy_order();
                Self::move_to_free_list(zone, page, order, mt);
                pfn += 1 << order;
                pages_moved += 1 << order;
            }
        }
        pages_moved
    }

    /// Linux: move_freepages_block() — the free blocks of `page`'s pageblock, unless the
    /// pageblock crosses the zone's end.
    ///
    /// # Safety
    /// The caller holds `zone.lock`; `mt < MIGRATE_TYPES`; `page` is a struct page of `zone` in
    /// this allocator's memmap, and every pfn of its pageblock that `zone` spans has one too.
    unsafe fn move_freepages_block(
        &self,
        zone: &Zone,
        page: *mut Page,
        mt: u32,
        num_movable: &mut i64,
    ) -> i64 {
        *num_movable = 0;
        let pfn = self.page_to_pfn(page).0;
        let mut start_pfn = pfn & !(PAGEBLOCK_NR_PAGES - 1);
        let end_pfn = start_pfn + PAGEBLOCK_NR_PAGES - 1;
        if !zone.zone_spans_pfn(Pfn(start_pfn)) {
            start_pfn = pfn;
        }
        if !zone.zone_spans_pfn(Pfn(end_pfn)) {
            return 0;
        }
        // SAFETY: lock held (caller).
        unsafe { self.move_freepages(zone, start_pfn, end_pfn, mt, num_movable) }
    }

    /// Linux: change_pageblock_range().
    fn change_pageblock_range(zone: &Zone, pfn: u64, start_order: u32, mt: u32) {
        let nr = 1u64 << (start_order - PAGEBLOCK_ORDER);
        for i in 0..nr {
            zone.set_pageblock_migratetype(Pfn(pfn + i * PAGEBLOCK_NR_PAGES), mt);
        }
    }

    /// Linux: steal_suitable_fallback() — take `page` (a free block of another type) for
    /// `start_type`, and its whole pageblock if enough of it is free or alike.
    ///
    /// # Safety
    /// The caller holds `zone.lock`; `start_type < MIGRATE_TYPES`; `page` is the head of a
    /// free block (PageBuddy) on one of `zone`'s free lists, found under this same hold of the
    /// lock (as `__rmqueue_fallback` gets it from `get_page_from_free_area`).
    unsafe fn steal_suitable_fallback(
        &self,
        zone: &Zone,
        page: *mut Page,
        start_type: u32,
        whole_block: bool,
    ) {
        let pfn = self.page_to_pfn(page).0;
        // SAFETY: lock held; the page is a free block.
        let current_order = unsafe { (*page).buddy_order() };
        let old_block_type = zone.get_pageblock_migratetype(Pfn(pfn));
        let single_page = |zone: &Zone| {
            // SAFETY: as above.
            unsafe { Self::move_to_free_list(zone, page, current_order, start_type) }
        };
        // A high-atomic reserve keeps its type (races in Linux; never here, but cheap).
        if old_block_type == MIGRATE_HIGHATOMIC {
            return single_page(zone);
        }
        // Blocks of pageblock size or more: take ownership of all their pageblocks.
        if current_order >= PAGEBLOCK_ORDER {
            Self::change_pageblock_range(zone, pfn, current_order, start_type);
            return single_page(zone);
        }
        // (boost_watermark(): off, see the module doc.)
        if !whole_block {
            return single_page(zone);
        }
        let mut movable_pages = 0;
        // SAFETY: lock held.
        let free_pages =
            unsafe { self.move_freepages_block(zone, page, start_type, &mut movable_pages) };
        let alike_pages = if start_type == MIGRATE_MOVABLE {
            movable_pages
        } else if old_block_type == MIGRATE_MOVABLE {
            PAGEBLOCK_NR_PAGES as i64 - (free_pages + movable_pages)
        } else {
            0
        };
        // The block crosses the zone's end: only this page.
        if free_pages == 0 {
            return single_page(zone);
        }
        if free_pages + alike_pages >= 1 << (PAGEBLOCK_ORDER - 1)
            || page_group_by_mobility_disabled()
        {
            zone.set_pageblock_migratetype(Pfn(pfn), start_type);
        }
    }

    /// Linux: __rmqueue_fallback() — steal from another type: the largest block first (it
    /// approximates the pageblock with the most free pages), except that a movable request
    /// that cannot take the whole block splits the smallest.
    ///
    /// # Safety
    /// The caller holds `zone.lock`; `order < MAX_ORDER` and `start_mt < MIGRATE_TYPES`.
    unsafe fn __rmqueue_fallback(
        &self,
        zone: &Zone,
        order: u32,
        start_mt: u32,
        alloc_flags: u32,
    ) -> bool {
        let min_order = if alloc_flags & ALLOC_NOFRAGMENT != 0 {
            PAGEBLOCK_ORDER
        } else {
            order
        };
        let mut found = None;
        let mut current_order = MAX_ORDER as i64 - 1;
        while current_order >= min_order as i64 {
            let co = current_order as u32;
            // SAFETY: lock held (caller).
            if let Some((fmt, can_steal)) =
                unsafe { Self::find_suitable_fallback(zone, co, start_mt, false) }
            {
                if !can_steal && start_mt == MIGRATE_MOVABLE && co > order {
                    // find_smallest:
                    for o in order..MAX_ORDER as u32 {
                        // SAFETY: as above.
                        if let Some((fmt, cs)) =
                            unsafe { Self::find_suitable_fallback(zone, o, start_mt, false) }
                        {
                            found = Some((o, fmt, cs));
                            break;
                        }
                    }
                } else {
                    found = Some((co, fmt, can_steal));
                }
                break;
            }
            current_order -= 1;
        }
        let Some((co, fallback_mt, can_steal)) = found else {
            return false;
        };
        // SAFETY: lock held; find_suitable_fallback saw the list non-empty.
        unsafe {
            let page = Self::get_page_from_free_area(zone, co, fallback_mt)
                .expect("fallback list emptied under the zone lock");
            self.steal_suitable_fallback(zone, page, start_mt, can_steal);
        }
        true
    }

    /// Linux: __rmqueue() — own type first (CMA first for movable requests when CMA holds
    /// most of the free memory), then CMA, then steal and retry.
    ///
    /// # Safety
    /// The caller holds `zone.lock`; `order < MAX_ORDER` and `mt < MIGRATE_TYPES`. A returned
    /// page is owned by the caller; NR_FREE_PAGES is not adjusted here (the caller does it).
    unsafe fn __rmqueue(
        &self,
        zone: &Zone,
        order: u32,
        mt: u32,
        alloc_flags: u32,
    ) -> Option<*mut Page> {
        // Balance movable allocations between the regular and the CMA pageblocks: take
        // from CMA first when over half of the zone's free memory is there.
        if alloc_flags & ALLOC_CMA != 0
            && zone.zone_page_state(NR_FREE_CMA_PAGES) > zone.zone_page_state(NR_FREE_PAGES) / 2
        {
            // SAFETY: lock held (caller).
            if let Some(p) = unsafe { Self::__rmqueue_smallest(zone, order, MIGRATE_CMA) } {
                return Some(p);
            }
        }
        loop {
            // SAFETY: lock held (caller).
            unsafe {
                if let Some(p) = Self::__rmqueue_smallest(zone, order, mt) {
                    return Some(p);
                }
                // Linux: __rmqueue_cma_fallback().
                if alloc_flags & ALLOC_CMA != 0 {
                    if let Some(p) = Self::__rmqueue_smallest(zone, order, MIGRATE_CMA) {
                        return Some(p);
                    }
                }
                if !self.__rmqueue_fallback(zone, order, mt, alloc_flags) {
                    return None;
                }
            }
        }
    }

    // ----- checks

    /// Linux: page_bad_reason().
    fn page_bad_reason(page: &Page, flags: u64) -> Option<&'static str> {
        let mut reason = None;
        if page.page_mapcount_raw() != -1 {
            reason = Some("nonzero mapcount");
        }
        if page.mapping != 0 {
            reason = Some("non-NULL mapping");
        }
        if page.page_count() != 0 {
            reason = Some("nonzero _refcount");
        }
        if page.flags.load(Ordering::Relaxed) & flags != 0 {
            reason = Some(if flags == PAGE_FLAGS_CHECK_AT_PREP {
                "PAGE_FLAGS_CHECK_AT_PREP flag(s) set"
            } else {
                "PAGE_FLAGS_CHECK_AT_FREE flag set"
            });
        }
        if page.memcg_data != 0 {
            reason = Some("page still charged to cgroup");
        }
        reason
    }

    /// Linux: page_expected_state() — every field a page entering or leaving the buddy must
    /// have, tested at once (the reason is worked out only for a bad page).
    #[inline]
    fn page_expected_state(page: &Page, check_flags: u64) -> bool {
        (page.page_mapcount_raw() == -1)
            & (page.mapping | page.memcg_data == 0)
            & (page.page_count() == 0)
            & (page.flags.load(Ordering::Relaxed) & check_flags == 0)
    }

    /// Linux: free_page_is_bad() (check_free_page()).
    #[inline]
    fn free_page_is_bad(&self, page: *mut Page) -> bool {
        // SAFETY: a page of the memmap.
        let p = unsafe { &*page };
        !Self::page_expected_state(p, PAGE_FLAGS_CHECK_AT_FREE)
            && self.report_page_bad_reason(page, PAGE_FLAGS_CHECK_AT_FREE)
    }

    /// The report of a page that failed page_expected_state(): bad_page() with the reason,
    /// true if there was one (Linux: check_free_page_bad() / check_new_page_bad()).
    #[cold]
    #[inline(never)]
    fn report_page_bad_reason(&self, page: *mut Page, flags: u64) -> bool {
        // SAFETY: a page of the memmap.
        match Self::page_bad_reason(unsafe { &*page }, flags) {
            None => false,
            Some(r) => {
                self.bad_page(page, r);
                true
            }
        }
    }

    /// Linux: check_new_pages() — every page of a block leaving the buddy must be clean.
    #[inline]
    fn check_new_pages(&self, page: *mut Page, order: u32) -> bool {
        if order != 0 {
            return self.check_new_block(page, order);
        }
        // SAFETY: a page of the memmap.
        !Self::page_expected_state(unsafe { &*page }, PAGE_FLAGS_CHECK_AT_PREP)
            && self.report_page_bad_reason(page, PAGE_FLAGS_CHECK_AT_PREP)
    }

    /// check_new_pages() of a block of more than one page.
    #[inline(never)]
    fn check_new_block(&self, page: *mut Page, order: u32) -> bool {
        for i in 0..1usize << order {
            let p = page.wrapping_add(i);
            // SAFETY: a page of the block.
            if !Self::page_expected_state(unsafe { &*p }, PAGE_FLAGS_CHECK_AT_PREP)
                && self.report_page_bad_reason(p, PAGE_FLAGS_CHECK_AT_PREP)
            {
                return true;
            }
        }
        false
    }

    /// Linux: free_tail_pages_check() (with CONFIG_DEBUG_VM's checks) — also unmakes the
    /// tail.
    fn free_tail_pages_check(&self, head: *mut Page, page: *mut Page) -> bool {
        let idx = (page as usize - head as usize) / core::mem::size_of::<Page>();
        // SAFETY: a tail of the block being freed, owned by the freeing caller.
        let p = unsafe { &mut *page };
        let mut bad = false;
        if idx == 1 && p.first_tail_compound_mapcount() != 0 {
            self.bad_page(page, "nonzero compound_mapcount");
            bad = true;
        } else if idx > 2 && p.mapping != TAIL_MAPPING {
            self.bad_page(page, "corrupted mapping in tail page");
            bad = true;
        } else if !p.page_tail() {
            self.bad_page(page, "PageTail not set");
            bad = true;
        } else if !ptr::eq(p.compound_head(), head) {
            self.bad_page(page, "compound_head not consistent");
            bad = true;
        }
        p.mapping = 0;
        p.clear_compound_head();
        bad
    }

    /// Linux: compound_order().
    fn compound_order(page: *const Page) -> u32 {
        // SAFETY: a page of the memmap; a head's first tail is in its block.
        unsafe {
            if !(*page).page_head() {
                0
            } else {
                (*page.add(1)).first_tail_compound_order()
            }
        }
    }

    /// Linux: free_pages_prepare() — check the block (tails first, then the head), undo the
    /// compound page, clear the flags a page must not carry into the buddy. False: bad, the
    /// block is not freed.
    #[inline(always)]
    fn free_pages_prepare(&self, page: *mut Page, order: u32, check_free: bool) -> bool {
        // SAFETY: the caller hands over the block; its pages are ours from here on.
        unsafe {
            if (*page).page_tail() {
                self.report_bad_page(page, "VM_BUG_ON_PAGE(PageTail(page))");
                return false;
            }
            let mut bad = 0;
            if order > 0 {
                let Some(b) = self.free_tail_pages_prepare(page, order) else {
                    return false;
                };
                bad = b;
            }
            // Linux: PageMappingFlags() — anon/movable mapping bits.
            if (*page).mapping & 0x3 != 0 {
                (*page).mapping = 0;
            }
            if check_free && self.free_page_is_bad(page) {
                bad += 1;
            }
            if bad != 0 {
                return false;
            }
            (*page).__clear_flags(PAGE_FLAGS_CHECK_AT_PREP);
        }
        if self.page_debug_on() {
            self.free_pages_prepare_debug(page, order);
            return true;
        }
        self.free_init(page, order);
        true
    }

    /// free_pages_prepare() of the pages after the head of a block of `order` > 0: undo the
    /// compound page, check each page, clear its flags. The number of bad pages, or None if
    /// the block's order does not match its compound order (nothing is freed).
    #[inline(never)]
    fn free_tail_pages_prepare(&self, page: *mut Page, order: u32) -> Option<u32> {
        let mut bad = 0;
        // SAFETY: the caller hands over the block; its pages are ours from here on.
        unsafe {
            let compound = (*page).page_compound();
            if compound && Self::compound_order(page) != order {
                self.report_bad_page(
                    page,
                    "VM_BUG_ON_PAGE(compound && compound_order(page) != order)",
                );
                return None;
            }
            for i in 1..1usize << order {
                let p = page.add(i);
                if compound && self.free_tail_pages_check(page, p) {
                    bad += 1;
                }
                if self.free_page_is_bad(p) {
                    bad += 1;
                    continue;
                }
                (*p).__clear_flags(PAGE_FLAGS_CHECK_AT_PREP);
            }
        }
        Some(bad)
    }

    // ----- new pages

    /// Linux: prep_compound_page() — head flag, tails pointing at the head, order and
    /// destructor in the first tail.
    fn prep_compound_page(page: *mut Page, order: u32) {
        // SAFETY: a freshly allocated block, ours.
        unsafe {
            (*page).set_flag(PG_HEAD);
            for i in 1..1usize << order {
                let p = &mut *page.add(i);
                p.mapping = TAIL_MAPPING;
                p.set_compound_head(page);
                p.set_page_private(0);
            }
            (*page.add(1)).set_compound_head_info(COMPOUND_PAGE_DTOR, order);
        }
    }

    /// Linux: prep_new_page() with post_alloc_hook().
    #[inline(always)]
    fn prep_new_page(&self, page: *mut Page, order: u32, gfp: GfpT) {
        // SAFETY: a freshly allocated block, ours.
        unsafe {
            (*page).set_page_private(0);
            (*page).set_page_count(1);
        }
        if self.page_debug_on() {
            return self.prep_new_page_debug(page, order, gfp);
        }
        self.post_alloc_init(page, order, gfp);
        if order != 0 && gfp & __GFP_COMP != 0 {
            Self::prep_compound_page(page, order);
        }
    }

    // ----- watermarks

    /// Linux: __zone_watermark_unusable_free().
    fn __zone_watermark_unusable_free(zone: &Zone, order: u32, alloc_flags: u32) -> i64 {
        let alloc_harder = alloc_flags & (ALLOC_HARDER | ALLOC_OOM) != 0;
        let mut unusable = (1i64 << order) - 1;
        if !alloc_harder {
            unusable += zone.nr_reserved_highatomic.load(Ordering::Relaxed) as i64;
        }
        if alloc_flags & ALLOC_CMA == 0 {
            unusable += zone.zone_page_state(NR_FREE_CMA_PAGES) as i64;
        }
        unusable
    }

    /// Linux: __zone_watermark_ok() — would `free_pages` stay above `mark` (less what the
    /// flags allow to dip into) plus the zone's lowmem reserve, with a block of the order
    /// free?
    pub fn __zone_watermark_ok(
        zone: &Zone,
        order: u32,
        mark: u64,
        highest_zoneidx: usize,
        alloc_flags: u32,
        free_pages: i64,
    ) -> bool {
        let mut min = mark as i64;
        let alloc_harder = alloc_flags & (ALLOC_HARDER | ALLOC_OOM) != 0;
        let free_pages =
            free_pages - Self::__zone_watermark_unusable_free(zone, order, alloc_flags);
        if alloc_flags & ALLOC_HIGH != 0 {
            min -= min / 2;
        }
        if alloc_harder {
            if alloc_flags & ALLOC_OOM != 0 {
                min -= min / 2;
            } else {
                min -= min / 4;
            }
        }
        if free_pages <= min + zone.lowmem_reserve(highest_zoneidx) {
            return false;
        }
        if order == 0 {
            return true;
        }
        let _g = zone.lock.lock();
        for o in order..MAX_ORDER as u32 {
            // SAFETY: zone lock held.
            unsafe {
                if *Self::nr_free_ptr(zone, o) == 0 {
                    continue;
                }
                for mt in 0..MIGRATE_PCPTYPES {
                    if !list_empty(Self::free_list(zone, o, mt)) {
                        return true;
                    }
                }
                if alloc_flags & ALLOC_CMA != 0
                    && !list_empty(Self::free_list(zone, o, MIGRATE_CMA))
                {
                    return true;
                }
                if alloc_harder && !list_empty(Self::free_list(zone, o, MIGRATE_HIGHATOMIC)) {
                    return true;
                }
            }
        }
        false
    }

    /// Linux: zone_watermark_ok().
    pub fn zone_watermark_ok(
        zone: &Zone,
        order: u32,
        mark: u64,
        highest_zoneidx: usize,
        alloc_flags: u32,
    ) -> bool {
        Self::__zone_watermark_ok(
            zone,
            order,
            mark,
            highest_zoneidx,
            alloc_flags,
            zone.zone_page_state(NR_FREE_PAGES) as i64,
        )
    }

    /// Linux: zone_watermark_fast() — the order-0 shortcut, then the full check.
    #[inline(always)]
    fn zone_watermark_fast(
        zone: &Zone,
        order: u32,
        mark: u64,
        highest_zoneidx: usize,
        alloc_flags: u32,
        gfp: GfpT,
    ) -> bool {
        let free_pages = zone.zone_page_state(NR_FREE_PAGES) as i64;
        if order == 0 {
            let reserved = Self::__zone_watermark_unusable_free(zone, 0, alloc_flags);
            let usable = free_pages - free_pages.min(reserved);
            if usable > mark as i64 + zone.lowmem_reserve(highest_zoneidx) {
                return true;
            }
        }
        if Self::__zone_watermark_ok(zone, order, mark, highest_zoneidx, alloc_flags, free_pages) {
            return true;
        }
        // Atomic order-0 requests ignore a boost at the min watermark.
        if order == 0
            && gfp & __GFP_ATOMIC != 0
            && zone.watermark_boost.load(Ordering::Relaxed) != 0
            && alloc_flags & ALLOC_WMARK_MASK == ALLOC_WMARK_MIN
        {
            let mark = zone._watermark[WMARK_MIN].load(Ordering::Relaxed);
            return Self::__zone_watermark_ok(
                zone,
                order,
                mark,
                highest_zoneidx,
                alloc_flags,
                free_pages,
            );
        }
        false
    }

    /// Linux: reserve_highatomic_pageblock() — a high-order atomic allocation succeeded:
    /// keep its pageblock for more of them (up to ~1% of the zone plus one block).
    fn reserve_highatomic_pageblock(&self, page: *mut Page, zone: &Zone) {
        let max_managed = zone.zone_managed_pages() / 100 + PAGEBLOCK_NR_PAGES;
        if zone.nr_reserved_highatomic.load(Ordering::Relaxed) >= max_managed {
            return;
        }
        let _g = zone.lock.lock();
        if zone.nr_reserved_highatomic.load(Ordering::Relaxed) >= max_managed {
            return;
        }
        let pfn = self.page_to_pfn(page);
        let mt = zone.get_pageblock_migratetype(pfn);
        if migratetype_is_mergeable(mt) {
            zone.nr_reserved_highatomic
                .fetch_add(PAGEBLOCK_NR_PAGES, Ordering::Relaxed);
            zone.set_pageblock_migratetype(pfn, MIGRATE_HIGHATOMIC);
            let mut n = 0;
            // SAFETY: zone lock held.
            unsafe { self.move_freepages_block(zone, page, MIGRATE_HIGHATOMIC, &mut n) };
        }
    }

    /// Linux: unreserve_highatomic_pageblock() — under pressure, give a high-atomic
    /// pageblock back to the allocation's type (keeping one unless `force`).
    fn unreserve_highatomic_pageblock(&self, ac: &AllocContext, force: bool) -> bool {
        for z in self.eligible_zonerefs(ac, 0) {
            let zone = self.nodes.zone(ac.zonelist.zonerefs()[z]);
            if !force && zone.nr_reserved_highatomic.load(Ordering::Relaxed) <= PAGEBLOCK_NR_PAGES {
                continue;
            }
            let _g = zone.lock.lock();
            for order in 0..MAX_ORDER as u32 {
                // SAFETY: zone lock held.
                let Some(page) =
                    (unsafe { Self::get_page_from_free_area(zone, order, MIGRATE_HIGHATOMIC) })
                else {
                    continue;
                };
                let pfn = self.page_to_pfn(page);
                if zone.get_pageblock_migratetype(pfn) == MIGRATE_HIGHATOMIC {
                    let r = zone.nr_reserved_highatomic.load(Ordering::Relaxed);
                    zone.nr_reserved_highatomic
                        .fetch_sub(PAGEBLOCK_NR_PAGES.min(r), Ordering::Relaxed);
                }
                zone.set_pageblock_migratetype(pfn, ac.migratetype);
                let mut n = 0;
                // SAFETY: zone lock held.
                if unsafe { self.move_freepages_block(zone, page, ac.migratetype, &mut n) } != 0 {
                    return true;
                }
            }
        }
        false
    }

    // ----- the allocation path

    /// The index of the first zoneref of `ac` a request may use, from index `from` on
    /// (Linux: next_zones_zonelist()).
    #[inline]
    fn next_zoneref(ac: &AllocContext, from: usize) -> Option<usize> {
        let zrs = ac.zonelist.zonerefs();
        let mut i = from;
        while i < zrs.len() {
            let z = zrs[i];
            if (z.zone_idx as usize) <= ac.highest_zoneidx
                && ac.nodemask.is_none_or(|m| m.isset(z.nid as i32))
            {
                return Some(i);
            }
            i += 1;
        }
        None
    }

    /// The zonerefs of `ac` a request may use, from index `from` (Linux:
    /// for_next_zone_zonelist_nodemask()).
    fn eligible_zonerefs<'c>(
        &self,
        ac: &'c AllocContext,
        from: usize,
    ) -> impl Iterator<Item = usize> + 'c {
        core::iter::successors(Self::next_zoneref(ac, from), move |&i| {
            Self::next_zoneref(ac, i + 1)
        })
    }

    /// Linux: alloc_flags_nofragment() — with a DMA32 zone below Normal (or one node),
    /// first try without splitting other types' pageblocks.
    fn alloc_flags_nofragment(&self, zone: Option<&Zone>, gfp: GfpT) -> u32 {
        let mut alloc_flags = gfp & __GFP_KSWAPD_RECLAIM;
        let Some(zone) = zone else {
            return alloc_flags;
        };
        if zone.zone_idx() != ZONE_NORMAL {
            return alloc_flags;
        }
        let dma32 = &self
            .nodes
            .get(zone.node)
            .expect("zone of a node without pg_data_t")
            .node_zones[ZONE_DMA32];
        if self.nr_online_nodes > 1 && !dma32.populated_zone() {
            return alloc_flags;
        }
        alloc_flags |= ALLOC_NOFRAGMENT;
        alloc_flags
    }

    /// Linux: get_page_from_freelist() — the first zone of the zonelist whose watermark
    /// allows the request and that has the pages.
    #[inline(never)]
    fn get_page_from_freelist(
        &self,
        gfp: GfpT,
        order: u32,
        mut alloc_flags: u32,
        ac: &AllocContext,
    ) -> Option<*mut Page> {
        let preferred = ac.preferred?;
        let pref_zone = ac.preferred_zone?;
        'retry: loop {
            let no_fallback = alloc_flags & ALLOC_NOFRAGMENT != 0;
            let mut next = Some(preferred);
            while let Some(i) = next {
                next = Self::next_zoneref(ac, i + 1);
                let zone = if i == preferred {
                    pref_zone
                } else {
                    self.nodes.zone(ac.zonelist.zonerefs()[i])
                };
                // Leaving the local node: locality beats avoiding fragmentation.
                if no_fallback
                    && self.nr_online_nodes > 1
                    && !ptr::eq(zone, pref_zone)
                    && zone.node != pref_zone.node
                {
                    alloc_flags &= !ALLOC_NOFRAGMENT;
                    continue 'retry;
                }
                let mark = zone.wmark_pages((alloc_flags & ALLOC_WMARK_MASK) as usize);
                if !Self::zone_watermark_fast(
                    zone,
                    order,
                    mark,
                    ac.highest_zoneidx,
                    alloc_flags,
                    gfp,
                ) && alloc_flags & ALLOC_NO_WATERMARKS == 0
                    // Linux: unless the zone can grow into its deferred pages.
                    && !self._deferred_grow_zone(zone, order)
                {
                    // (No node reclaim here.)
                    continue;
                }
                loop {
                    if let Some(page) =
                        self.rmqueue(zone, order, alloc_flags, ac.migratetype, ac.cpu)
                    {
                        self.prep_new_page(page, order, gfp);
                        if order != 0 && alloc_flags & ALLOC_HARDER != 0 {
                            self.reserve_highatomic_pageblock(page, zone);
                        }
                        return Some(page);
                    }
                    // Linux: try again if the zone has deferred pages.
                    if !self._deferred_grow_zone(zone, order) {
                        break;
                    }
                }
            }
            // Every zone was fragmented: go again, allowing fallback.
            if no_fallback {
                alloc_flags &= !ALLOC_NOFRAGMENT;
                continue;
            }
            return None;
        }
    }

    /// Linux: gfp_to_alloc_flags() — the slow path's flags: the min watermark, half of it
    /// for __GFP_HIGH, a quarter more for __GFP_ATOMIC.
    pub fn gfp_to_alloc_flags(gfp: GfpT) -> u32 {
        let mut alloc_flags = ALLOC_WMARK_MIN | ALLOC_CPUSET;
        alloc_flags |= gfp & (__GFP_HIGH | __GFP_KSWAPD_RECLAIM);
        if gfp & __GFP_ATOMIC != 0 {
            if gfp & __GFP_NOMEMALLOC == 0 {
                alloc_flags |= ALLOC_HARDER;
            }
            alloc_flags &= !ALLOC_CPUSET;
        }
        Self::gfp_to_alloc_flags_cma(gfp, alloc_flags)
    }

    /// Linux: gfp_to_alloc_flags_cma() — movable requests may use CMA pageblocks.
    #[inline]
    pub fn gfp_to_alloc_flags_cma(gfp: GfpT, alloc_flags: u32) -> u32 {
        if gfp_migratetype(gfp) == MIGRATE_MOVABLE {
            alloc_flags | ALLOC_CMA
        } else {
            alloc_flags
        }
    }

    /// Linux: prepare_alloc_pages() — on `cpu`, the running CPU.
    #[inline]
    fn prepare_alloc_pages(
        &self,
        gfp: GfpT,
        preferred_nid: i32,
        nodemask: Option<Nodemask>,
        cpu: usize,
    ) -> Option<AllocContext<'a>> {
        let pgdat = self.nodes.get(preferred_nid)?;
        let which = if gfp & __GFP_THISNODE != 0 {
            ZONELIST_NOFALLBACK
        } else {
            ZONELIST_FALLBACK
        };
        let mut ac = AllocContext {
            zonelist: &pgdat.node_zonelists[which],
            nodemask,
            preferred: None,
            preferred_zone: None,
            cpu,
            highest_zoneidx: gfp_zone(gfp),
            migratetype: gfp_migratetype(gfp),
        };
        ac.preferred = Self::next_zoneref(&ac, 0);
        ac.preferred_zone = ac
            .preferred
            .map(|i| self.nodes.zone(ac.zonelist.zonerefs()[i]));
        Some(ac)
    }

    /// Linux: __alloc_pages() — a block of 2^order pages from `preferred_nid`'s zonelist
    /// (restricted to `nodemask`), or None.
    pub fn __alloc_pages(
        &self,
        gfp: GfpT,
        order: u32,
        preferred_nid: i32,
        nodemask: Option<Nodemask>,
    ) -> Option<PagePtr> {
        if order as usize >= MAX_ORDER {
            return Self::warn_order_too_big(gfp);
        }
        let cpu = self.this_cpu();
        let preferred_nid = if preferred_nid < 0 {
            self.cpu_to_node(cpu)
        } else {
            preferred_nid
        };
        let Some(ac) = self.prepare_alloc_pages(gfp, preferred_nid, nodemask, cpu) else {
            self.warn_alloc(gfp, nodemask, order);
            return None;
        };
        // The fast path: the first allowed zone's watermark is fine and this CPU's list of
        // the order and type has a block (what get_page_from_freelist()'s first zone would
        // give, without a refill).
        if let Some(zone) = ac.preferred_zone {
            if let Some(page) = self.rmqueue_pcplist_fast(zone, order, gfp, &ac) {
                return NonNull::new(page);
            }
        }
        self.__alloc_pages_full(gfp, order, &ac)
    }

    /// `__alloc_pages()` after its fast path: get_page_from_freelist() over the zonelist,
    /// then the slow path.
    #[inline(never)]
    fn __alloc_pages_full(&self, gfp: GfpT, order: u32, ac: &AllocContext) -> Option<PagePtr> {
        let alloc_flags = Self::gfp_to_alloc_flags_cma(
            gfp,
            ALLOC_WMARK_LOW | self.alloc_flags_nofragment(ac.preferred_zone, gfp),
        );
        let page = self
            .get_page_from_freelist(gfp, order, alloc_flags, ac)
            .or_else(|| self.__alloc_pages_slowpath(gfp, order, ac));
        page.and_then(NonNull::new)
    }

    /// __alloc_pages()' warning for an order of MAX_ORDER or more.
    #[cold]
    #[inline(never)]
    fn warn_order_too_big(gfp: GfpT) -> Option<PagePtr> {
        if gfp & __GFP_NOWARN == 0 {
            pr_warn!("WARNING: CPU: 0 PID: 0 at mm/page_alloc.c (order >= MAX_ORDER)");
        }
        None
    }

    /// Linux: __alloc_pages_slowpath(), without reclaim: the min watermark (less for atomic
    /// requests); then, if the caller could have reclaimed, what Linux does when reclaim
    /// makes no progress — hand back high-atomic reserves and drain the per-CPU lists —
    /// and one more try; then the failure report.
    fn __alloc_pages_slowpath(
        &self,
        gfp: GfpT,
        order: u32,
        ac: &AllocContext,
    ) -> Option<*mut Page> {
        let alloc_flags = Self::gfp_to_alloc_flags(gfp);
        if ac.preferred.is_some() {
            if let Some(p) = self.get_page_from_freelist(gfp, order, alloc_flags, ac) {
                return Some(p);
            }
            if gfp & __GFP_DIRECT_RECLAIM != 0 {
                // Linux: __alloc_pages_direct_reclaim()'s "drained" retry.
                self.unreserve_highatomic_pageblock(ac, false);
                self.drain_all_pages(None);
                if let Some(p) = self.get_page_from_freelist(gfp, order, alloc_flags, ac) {
                    return Some(p);
                }
                // Linux: should_reclaim_retry() after MAX_RECLAIM_RETRIES without progress.
                if self.unreserve_highatomic_pageblock(ac, true) {
                    if let Some(p) = self.get_page_from_freelist(gfp, order, alloc_flags, ac) {
                        return Some(p);
                    }
                }
            }
        }
        self.warn_alloc(gfp, ac.nodemask, order);
        None
    }

    // ----- the API

    /// Linux: alloc_pages_node() — NUMA_NO_NODE (-1) means this CPU's node.
    pub fn alloc_pages_node(&self, nid: i32, gfp: GfpT, order: u32) -> Option<PagePtr> {
        self.__alloc_pages(gfp, order, nid, None)
    }

    /// Linux: alloc_pages() — from this CPU's node (no mempolicy here).
    #[inline]
    pub fn alloc_pages(&self, gfp: GfpT, order: u32) -> Option<PagePtr> {
        self.__alloc_pages(gfp, order, NUMA_NO_NODE, None)
    }

    /// Linux: __get_free_pages() — the block's linear-map address.
    pub fn __get_free_pages(&self, gfp: GfpT, order: u32) -> Option<VirtAddr> {
        let page = self.alloc_pages(gfp & !__GFP_HIGHMEM, order)?;
        Some(self.page_address(page))
    }

    /// Linux: get_zeroed_page().
    pub fn get_zeroed_page(&self, gfp: GfpT) -> Option<VirtAddr> {
        self.__get_free_pages(gfp | __GFP_ZERO, 0)
    }

    /// Linux: __free_pages() — drop a reference; the last one frees the block. A block
    /// that is not compound and still referenced gives back all but its first page.
    pub fn __free_pages(&self, page: PagePtr, order: u32) {
        let page = page.as_ptr();
        // SAFETY: a page of the memmap; refcount and flags are atomic.
        let p = unsafe { &*page };
        if p.page_tail() {
            return self.report_bad_page(page, "VM_BUG_ON_PAGE(PageTail(page))");
        }
        // A double free (or a free of a page the buddy owns): refuse, leave it alone.
        if p.page_count() <= 0 {
            return self.report_bad_page(page, "VM_BUG_ON_PAGE(page_ref_count(page) == 0)");
        }
        // Linux: put_page_testzero().
        if p._refcount.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.free_the_page(page, order);
        } else if !p.page_head() {
            self.free_all_but_first(page, order);
        }
    }

    /// __free_pages() of a non-compound block whose first page is still referenced: free
    /// the rest, as blocks of decreasing order.
    #[inline(never)]
    fn free_all_but_first(&self, page: *mut Page, order: u32) {
        let mut order = order;
        while order > 0 {
            order -= 1;
            self.free_the_page(page.wrapping_add(1 << order), order);
        }
    }

    /// Linux: __free_page().
    pub fn __free_page(&self, page: PagePtr) {
        self.__free_pages(page, 0)
    }

    /// Linux: free_pages() — by address (needs `virt_to_phys`).
    pub fn free_pages(&self, addr: VirtAddr, order: u32) {
        if addr.0 != 0 {
            self.__free_pages(self.virt_to_page(addr), order);
        }
    }

    /// Linux: split_page() — make each page of a non-compound block its own page.
    pub fn split_page(&self, page: PagePtr, order: u32) {
        let page = page.as_ptr();
        for i in 1..1usize << order {
            // SAFETY: pages of the caller's block.
            unsafe { (*page.add(i)).set_page_count(1) };
        }
    }

    /// Linux: make_alloc_exact() — keep the pages `size` needs, free the rest of the block.
    fn make_alloc_exact(&self, page: PagePtr, order: u32, size: u64) {
        let nr = size.div_ceil(PAGE_SIZE) as usize;
        let page = page.as_ptr();
        for i in 1..nr {
            // SAFETY: pages of our block.
            unsafe { (*page.add(i)).set_page_count(1) };
        }
        for i in nr..1usize << order {
            self.__free_pages_ok(page.wrapping_add(i), 0, FPI_TO_TAIL);
        }
    }

    /// Linux: alloc_pages_exact() — `size` bytes of whole pages, contiguous, by address.
    pub fn alloc_pages_exact(&self, size: u64, gfp: GfpT) -> Option<VirtAddr> {
        let order = get_order(size);
        let mut gfp = gfp;
        if gfp & (__GFP_COMP | __GFP_HIGHMEM) != 0 {
            pr_warn!("WARNING: CPU: 0 PID: 0 at mm/page_alloc.c (alloc_pages_exact with __GFP_COMP|__GFP_HIGHMEM)");
            gfp &= !(__GFP_COMP | __GFP_HIGHMEM);
        }
        let page = self.alloc_pages(gfp, order)?;
        self.make_alloc_exact(page, order, size);
        Some(self.page_address(page))
    }

    /// Linux: free_pages_exact().
    pub fn free_pages_exact(&self, virt: VirtAddr, size: u64) {
        let end = virt.0 + super::addr::align_up(size, PAGE_SIZE);
        let mut addr = virt.0;
        while addr < end {
            self.free_pages(VirtAddr(addr), 0);
            addr += PAGE_SIZE;
        }
    }

    /// Linux: nr_free_pages() — pages on the buddy's free lists (global NR_FREE_PAGES).
    pub fn nr_free_pages(&self) -> u64 {
        self.zones().map(|z| z.zone_page_state(NR_FREE_PAGES)).sum()
    }

    /// Linux: get_num_physpages() — present pages of all nodes.
    pub fn get_num_physpages(&self) -> u64 {
        self.nodes.pgdats().map(|p| p.node_present_pages).sum()
    }
}

// ---------------------------------------------------------------------------------------------
// The kernel's allocator and Linux's free functions over it.

static PAGE_ALLOC: spin::Once<PageAlloc<'static>> = spin::Once::new();

/// Linux: totalcma_pages while it is counted at boot, before the kernel's allocator exists
/// (cma_init_reserved_mem(), from bootmem_init()); page_alloc_init() starts from it.
static BOOT_TOTALCMA_PAGES: AtomicU64 = AtomicU64::new(0);

/// Linux: cma_init_reserved_mem()'s `totalcma_pages += size / PAGE_SIZE`, at boot.
pub fn boot_totalcma_pages_add(pages: u64) {
    BOOT_TOTALCMA_PAGES.fetch_add(pages, Ordering::Relaxed);
}

/// Sets up the kernel's allocator over the published nodes (not a Linux function: Linux's
/// allocator is its globals). Call once, after build_all_zonelists() and node_data_publish(),
/// before mem_init(); later calls keep the first.
///
/// # Safety
/// As [`PageAlloc::new`]: `env.vmemmap` is the kernel's vmemmap, `phys_to_virt` its __va()
/// over the linear map, `virt_to_phys` its __pa().
pub unsafe fn page_alloc_init(
    nodes: &'static NodeDataMap,
    env: PageAllocEnv,
) -> &'static PageAlloc<'static> {
    PAGE_ALLOC.call_once(|| {
        // SAFETY: the caller upholds PageAlloc::new's contract.
        let pa = unsafe { PageAlloc::new(nodes, env) };
        pa.totalcma_pages_add(BOOT_TOTALCMA_PAGES.load(Ordering::Relaxed) as i64);
        // Linux: mm_init()'s init_mem_debugging_and_hardening(), before mem_init() frees
        // memblock's memory into the buddy.
        pa.set_meminit(MemInit::from_boot_params());
        pa.set_page_debug(super::debug_page_alloc::kernel_page_debug_hooks());
        pa
    })
}

/// The kernel's allocator, once page_alloc_init() ran.
pub fn page_alloc() -> Option<&'static PageAlloc<'static>> {
    PAGE_ALLOC.get()
}

fn pa() -> &'static PageAlloc<'static> {
    PAGE_ALLOC
        .get()
        .expect("page allocator used before page_alloc_init()")
}

/// Linux: mem_init_print_info().
pub fn mem_init_print_info(syms: &KernelSymbols) {
    pa().mem_init_print_info(syms)
}

/// Linux: free_reserved_area() (physical bounds, see [`PageAlloc::free_reserved_area`]).
pub fn free_reserved_area(start: PhysAddr, end: PhysAddr, poison: i32, s: Option<&str>) -> u64 {
    pa().free_reserved_area(start, end, poison, s)
}

/// Linux: setup_per_cpu_pageset().
pub fn setup_per_cpu_pageset(nr_cpu_ids: usize) {
    pa().setup_per_cpu_pageset(nr_cpu_ids)
}

/// Linux: page_alloc_init_late()'s deferred struct-page init, over the CPUs `smp` gives.
pub fn page_alloc_init_late(smp: &dyn PadataSmp) -> u64 {
    pa().page_alloc_init_late(smp)
}

/// Linux: init_per_zone_wmark_min().
pub fn init_per_zone_wmark_min() {
    pa().init_per_zone_wmark_min()
}

#[cfg(test)]
pub(super) mod tests;
