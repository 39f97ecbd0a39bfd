//! vmalloc's virtual-area allocator: the arch-independent core of Linux 6.1's mm/vmalloc.c
//! ("Global kva allocator"), with `struct vmap_area`, `struct vm_struct`, the early
//! `vmlist`, the lazy purge and `/proc/vmallocinfo`.
//!
//! ```text
//!   vmap_start (Linux: 1)                                          vmap_end (Linux: ULONG_MAX)
//!   |                                                                                  |
//!   |  busy   |.... free ....| busy |guard| busy |:: lazy ::| busy |........ free .........|
//!   |<------------------- every address is in exactly one of the three trees ----------->|
//!
//!   busy tree  (Linux: vmap_area_root + vmap_area_list)    areas handed out, each with its
//!                                                           vm_struct (size includes the guard)
//!   free tree  (Linux: free_vmap_area_root + _list)         augmented: subtree_max_size
//!   purge tree (Linux: purge_vmap_area_root + _list)        freed, still in some TLB: "lazy"
//! ```
//!
//! Allocation ([`VmapAreas::alloc_vmap_area`]) is Linux's: `find_vmap_lowest_match()` walks
//! the free tree, guided by each node's `subtree_max_size`, to the lowest-addressed free block
//! that holds the request with its alignment at or above `vstart`, in O(log n); then
//! `adjust_va_to_fit_type()` cuts the request out of it (full fit, left edge, right edge, or
//! no edge — the last splits the block in two and needs a second node, which Linux takes
//! from a per-CPU preload). The new area goes into the busy tree.
//!
//! Freeing is lazy, as Linux's: [`VmapAreas::free_vmap_area_noflush`] moves the area from the
//! busy tree to the purge tree (coalescing with purge-tree neighbours) and counts its pages in
//! `vmap_lazy_nr`. Its page-table entries are already cleared, but other CPUs' TLBs may still
//! hold them, so the range cannot be reused yet. [`VmapAreas::purge_vmap_area_lazy`] flushes
//! the TLB once for the whole span of the purge list and merges every purged area back into
//! the free tree, coalescing with free neighbours — so a burst of `vfree()` costs one flush.
//! A purge happens when `vmap_lazy_nr` exceeds [`lazy_max_pages`] (Linux schedules
//! `drain_vmap_work` then; here [`VmapAreas::remove_vm_area`] runs it in place), and before an
//! allocation that found no room gives up.
//!
//! The tree itself (an augmented AVL tree, where Linux has an augmented red-black tree — why
//! is in its module doc) is in `vmalloc/tree.rs`.
//!
//! ## What the kernel supplies
//! - the nodes: a [`VmapAreaAlloc`] (Linux: the `vmap_area_cachep` kmem_cache); host tests use
//!   a pool;
//! - the TLB flush: a `flush(start, end)` closure (Linux: `flush_tlb_kernel_range()`) given to
//!   the calls that may purge;
//! - the page-table teardown: an `unmap(start, end)` closure given to
//!   [`VmapAreas::remove_vm_area`] (Linux: `vunmap_range_noflush()`), run before the area is
//!   queued, so it always precedes the flush that makes the range reusable;
//! - the range: `vmalloc_init(vmlist, vmap_start, vmap_end)`. Linux 6.1's free tree spans the
//!   whole KVA space, `[1, ULONG_MAX)`, and each caller restricts itself with `vstart`/`vend`
//!   (`VMALLOC_START`/`VMALLOC_END` for vmalloc); the kernel may do the same or pass the
//!   vmalloc range (mm cannot import the arch layout, so it is a parameter).
//!
//! ## Lock
//! Linux has `vmap_area_lock` (busy tree), `free_vmap_area_lock` (free tree),
//! `purge_vmap_area_lock` (purge tree) and the `vmap_purge_lock` mutex serialising purges.
//! Here one [`VmapAreas`] holds all three trees, the preload node and the counters, and every
//! method takes `&mut self`: the kernel keeps the instance behind one lock (a
//! `spin::Mutex<VmapAreas<_>>`), which stands for all four. The cost is that the TLB flush of
//! a purge runs under that lock, where Linux holds only `vmap_purge_lock`: CPUs allocating
//! or freeing vmalloc space at once wait for each other's tree operations and flushes (the
//! flush is a broadcast `TLBI ...IS`, so one flush covers every CPU). The kernel's lock
//! order is in `api`'s docs.
//!
//! ## Differences from Linux
//! - `struct vm_struct` is embedded in its busy `vmap_area` (`va.vm: Option<VmStruct>`)
//!   instead of being kzalloc'd apart, so one node allocator suffices; callers get copies.
//! - Freeing names the area by its start address and refuses any other address (Linux 6.1
//!   frees whatever area contains the address).
//! - The failure message `vmap allocation for size %lu failed: use vmalloc=<size> to increase
//!   size` is printed once per instance; Linux rate-limits it (`printk_ratelimit()`), and the
//!   core has no clock. There is no `__GFP_NOWARN` and no `vmap_notify_list` retry.
//! - The per-CPU `vmap_block_queue` allocator (`vm_map_ram()` of up to `VMAP_MAX_ALLOC`
//!   pages carved from `VMAP_BLOCK_SIZE` blocks) is in the kernel's `api` (it needs per-CPU
//!   memory); this core gives it areas through [`VmapAreas::alloc_vmap_area`], as Linux
//!   does above `VMAP_MAX_ALLOC`. The deferred-free list is [`VfreeDeferred`].
//! - No KASAN shadow, kmemleak, huge vmap (`page_order`), or `pcpu_get_vm_areas()`.
//!
//! ## The per-CPU structures of vmalloc_init
//! `vmalloc_init()` initialises, for every possible CPU:
//! - `vmap_block_queue { lock, free }` (6.1; the blocks themselves are found by address in
//!   the global `vmap_blocks` xarray): the list of this CPU's `vmap_block`s that still have
//!   free pages. A `vmap_block` is one `VMAP_BLOCK_SIZE` area from `alloc_vmap_area()` (4 MiB
//!   here, [`VMAP_BLOCK_SIZE`]) that `vb_alloc()` hands out in power-of-two page runs from its
//!   `free` end, with `dirty`/`dirty_min`/`dirty_max` recording what `vb_free()` unmapped but
//!   did not flush. A block whose pages are all free or dirty is freed whole
//!   (`purge_fragmented_blocks()`), and `vm_unmap_aliases()` flushes the dirty ranges.
//! - `vfree_deferred { list, wq }`: a lock-free `llist` of areas freed where `vfree()` cannot
//!   run (interrupt context), each area's first word being the list node, and the work that
//!   frees them later — [`VfreeDeferred`].

mod tree;

/// The kernel-facing API (vmalloc, vfree, vmap, ioremap...) over this allocator.
#[cfg(target_os = "none")]
pub mod api;

use core::fmt::{self, Write};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};

use self::tree::{va_size, VaTree, P};
use super::addr::{align_up, PhysAddr, VirtAddr, PAGE_SHIFT, PAGE_SIZE};
use super::page::Page;
use crate::include::numa::MAX_NUMNODES;
use crate::include::numa::NR_CPUS;

// ---------------------------------------------------------------------------------------------
// include/linux/vmalloc.h (6.1)

/// Linux: VM_IOREMAP — ioremap() and friends.
pub const VM_IOREMAP: u64 = 0x0000_0001;
/// Linux: VM_ALLOC — vmalloc().
pub const VM_ALLOC: u64 = 0x0000_0002;
/// Linux: VM_MAP — vmap()ed pages.
pub const VM_MAP: u64 = 0x0000_0004;
/// Linux: VM_USERMAP — suitable for remap_vmalloc_range.
pub const VM_USERMAP: u64 = 0x0000_0008;
/// Linux: VM_DMA_COHERENT — dma_alloc_coherent.
pub const VM_DMA_COHERENT: u64 = 0x0000_0010;
/// Linux: VM_UNINITIALIZED — vm_struct is not fully initialized.
pub const VM_UNINITIALIZED: u64 = 0x0000_0020;
/// Linux: VM_NO_GUARD — don't add guard page.
pub const VM_NO_GUARD: u64 = 0x0000_0040;
/// Linux: VM_KASAN.
pub const VM_KASAN: u64 = 0x0000_0080;
/// Linux: VM_FLUSH_RESET_PERMS.
pub const VM_FLUSH_RESET_PERMS: u64 = 0x0000_0100;
/// Linux: VM_MAP_PUT_PAGES.
pub const VM_MAP_PUT_PAGES: u64 = 0x0000_0200;
/// Linux: VM_ALLOW_HUGE_VMAP.
pub const VM_ALLOW_HUGE_VMAP: u64 = 0x0000_0400;

/// Linux: IOREMAP_MAX_ORDER's generic default, `7 + PAGE_SHIFT` (128 pages). arm64 with 4 KiB
/// pages raises it to PUD_SHIFT (30); the arch sets [`VmapAreas::ioremap_max_order`].
pub const IOREMAP_MAX_ORDER_DEFAULT: u32 = 7 + PAGE_SHIFT;

/// Linux: VMALLOC_SPACE on 64-bit (a rough size used only to size vmap blocks).
pub const VMALLOC_SPACE: u64 = 128 << 30;
/// Linux: VMAP_MAX_ALLOC — the largest vm_map_ram() served from a vmap block, in pages.
pub const VMAP_MAX_ALLOC: u64 = 64;
/// Linux: VMAP_BBMAP_BITS — pages per vmap block:
/// `min(1024, max(2 * VMAP_MAX_ALLOC, VMALLOC_PAGES / roundup_pow_of_two(NR_CPUS) / 16))`.
pub const VMAP_BBMAP_BITS: u64 = {
    let per_cpu = VMALLOC_SPACE / PAGE_SIZE / (NR_CPUS as u64).next_power_of_two() / 16;
    let lo = if per_cpu > VMAP_MAX_ALLOC * 2 {
        per_cpu
    } else {
        VMAP_MAX_ALLOC * 2
    };
    if lo < 1024 {
        lo
    } else {
        1024
    }
};
/// Linux: VMAP_BLOCK_SIZE (4 MiB with 4 KiB pages and NR_CPUS = 256).
pub const VMAP_BLOCK_SIZE: u64 = VMAP_BBMAP_BITS * PAGE_SIZE;

/// Linux: struct vm_struct — what a busy area is for: its flags, the size including the guard
/// page, the pages behind it and who asked for it.
///
/// `caller` is a name the kernel passes in (Linux prints `__builtin_return_address(0)` with
/// `%pS`, i.e. `function+0xoff/0xsize`); vmallocinfo prints it as given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmStruct {
    /// Linux: vm->addr.
    pub addr: VirtAddr,
    /// Linux: vm->size — includes the guard page unless VM_NO_GUARD.
    pub size: u64,
    /// Linux: vm->flags (VM_*).
    pub flags: u64,
    /// Linux: vm->pages — an array of `nr_pages` page pointers, or null.
    pages: *mut *mut Page,
    /// Linux: vm->nr_pages.
    nr_pages: u32,
    /// Linux: vm->phys_addr — set by ioremap.
    pub phys_addr: PhysAddr,
    /// Linux: vm->caller.
    pub caller: Option<&'static str>,
}

// SAFETY: the pages array belongs to the area (whoever set it with `set_vm_pages` handed it
// over), so moving a `VmStruct` to another CPU moves that ownership too.
unsafe impl Send for VmStruct {}

impl VmStruct {
    /// An empty descriptor (Linux: a zeroed vm_struct).
    pub const EMPTY: Self = Self {
        addr: VirtAddr(0),
        size: 0,
        flags: 0,
        pages: ptr::null_mut(),
        nr_pages: 0,
        phys_addr: PhysAddr(0),
        caller: None,
    };

    /// A descriptor for `vm_area_add_early()`/`vm_area_register_early()`: address, size and
    /// flags set, the rest zero.
    pub const fn new(addr: VirtAddr, size: u64, flags: u64, caller: Option<&'static str>) -> Self {
        Self {
            addr,
            size,
            flags,
            pages: ptr::null_mut(),
            nr_pages: 0,
            phys_addr: PhysAddr(0),
            caller,
        }
    }

    /// Linux: get_vm_area_size() — the usable size, without the guard page.
    pub const fn get_vm_area_size(&self) -> u64 {
        if self.flags & VM_NO_GUARD == 0 {
            self.size - PAGE_SIZE
        } else {
            self.size
        }
    }

    pub const fn pages(&self) -> *mut *mut Page {
        self.pages
    }

    pub const fn nr_pages(&self) -> u32 {
        self.nr_pages
    }
}

/// Linux: struct vmap_area — a node of the busy, free or purge tree.
///
/// The tree links are private: they belong to the tree the node is in (see `tree.rs`). In
/// Linux `subtree_max_size` (free tree) and `vm` (busy tree) share a union; here both exist.
///
/// Lock: a linked node is reached only through its [`VmapAreas`], under that one lock.
/// `repr(C)`: kmemleak scans it from the links on (after `va_start`/`va_end`).
#[derive(Debug)]
#[repr(C)]
pub struct VmapArea {
    pub va_start: u64,
    pub va_end: u64,
    // Linux: rb_node (here an AVL node: parent, children, height).
    parent: Option<NonNull<VmapArea>>,
    left: Option<NonNull<VmapArea>>,
    right: Option<NonNull<VmapArea>>,
    height: u32,
    // Linux: list — the address-sorted list of the same tree.
    prev: Option<NonNull<VmapArea>>,
    next: Option<NonNull<VmapArea>>,
    /// Linux: subtree_max_size — in the free tree, the largest free block in this subtree.
    pub subtree_max_size: u64,
    /// Linux: vm — in the busy tree, what the area is for (None for vm_map_ram areas).
    pub vm: Option<VmStruct>,
}

impl VmapArea {
    /// A node linked nowhere (Linux: kmem_cache_zalloc(vmap_area_cachep)).
    pub const fn new() -> Self {
        Self {
            va_start: 0,
            va_end: 0,
            parent: None,
            left: None,
            right: None,
            height: 0,
            prev: None,
            next: None,
            subtree_max_size: 0,
            vm: None,
        }
    }
}

impl Default for VmapArea {
    fn default() -> Self {
        Self::new()
    }
}

/// Where `vmap_area` nodes come from (Linux: `vmap_area_cachep`, a kmem_cache).
///
/// # Safety
/// `alloc` must return memory that is valid for reads and writes of a `VmapArea`, aligned
/// for it, and used by nothing else until it is passed back to `free`; the allocator writes a
/// fresh value into it before use, so the contents may be uninitialised. `free` receives only
/// pointers `alloc` returned, each once.
pub unsafe trait VmapAreaAlloc {
    fn alloc(&mut self) -> Option<NonNull<VmapArea>>;
    /// # Safety
    /// `va` came from `alloc` on this allocator and is no longer used.
    unsafe fn free(&mut self, va: NonNull<VmapArea>);
}

/// A copy of a busy area's description, as callers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmapAreaInfo {
    pub va_start: u64,
    pub va_end: u64,
    pub vm: Option<VmStruct>,
}

/// Why an area operation failed (Linux's errno values in brackets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmapError {
    /// A zero or unaligned size, or an alignment that is not a power of two (-EINVAL).
    Inval,
    /// No free range fits, or `vmalloc_init` has not run (-EBUSY).
    Busy,
    /// The node allocator failed (-ENOMEM).
    NoMem,
    /// A range overlaps an existing one (Linux: BUG_ON/WARN "vmalloc bug: ... overlaps").
    Overlap,
    /// No busy area starts at the address (Linux: "Trying to vfree() nonexistent vm area").
    NotFound,
}

impl fmt::Display for VmapError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            VmapError::Inval => "invalid size or alignment",
            VmapError::Busy => "no room in the vmap space",
            VmapError::NoMem => "out of vmap_area nodes",
            VmapError::Overlap => "overlapping vmap areas",
            VmapError::NotFound => "no such vmap area",
        })
    }
}

/// Linux: fls() for a non-zero u32.
const fn fls(x: u32) -> u32 {
    32 - x.leading_zeros()
}

/// Linux: lazy_max_pages() — how many pages of freed vmap space may wait for a TLB flush:
/// 32 MiB times `fls(num_online_cpus())`, in pages (8192 pages for one CPU, 16384 for two or
/// three, 24576 for four to seven).
pub const fn lazy_max_pages(num_online_cpus: u32) -> u64 {
    fls(num_online_cpus) as u64 * ((32 << 20) / PAGE_SIZE)
}

/// Linux: get_count_order_long() — ceil(log2(x)) for x > 0.
const fn get_count_order_long(x: u64) -> u32 {
    if x <= 1 {
        0
    } else {
        64 - (x - 1).leading_zeros()
    }
}

// ---------------------------------------------------------------------------------------------
// The early vmlist

/// Linux: the `vmlist` of areas registered before vmalloc_init() — a list of static
/// vm_structs there; a fixed, address-sorted array here.
///
/// Lock: none — written only by the boot CPU before vmalloc_init(), read once by it.
pub struct VmList {
    vms: [VmStruct; VMLIST_MAX],
    nr: usize,
}

/// Entries the early vmlist holds (arm64 registers a handful: the kernel image segments when
/// they lie in the vmalloc range, early ioremaps).
pub const VMLIST_MAX: usize = 16;

impl VmList {
    pub const fn new() -> Self {
        Self {
            vms: [VmStruct::EMPTY; VMLIST_MAX],
            nr: 0,
        }
    }

    pub fn as_slice(&self) -> &[VmStruct] {
        &self.vms[..self.nr]
    }

    fn insert_at(&mut self, i: usize, vm: VmStruct) -> Result<(), VmapError> {
        if self.nr == VMLIST_MAX {
            return Err(VmapError::NoMem);
        }
        self.vms.copy_within(i..self.nr, i + 1);
        self.vms[i] = vm;
        self.nr += 1;
        Ok(())
    }

    /// Linux: vm_area_add_early() — add a fixed area (`addr`, `size`, `flags` set). Linux
    /// BUG()s on an overlap; here it is `Err(Overlap)`.
    pub fn vm_area_add_early(&mut self, vm: VmStruct) -> Result<(), VmapError> {
        let (start, end) = (vm.addr.0, vm.addr.0.saturating_add(vm.size));
        let mut i = 0;
        while i < self.nr {
            let t = &self.vms[i];
            if t.addr.0 >= start {
                if t.addr.0 < end {
                    return Err(VmapError::Overlap);
                }
                break;
            } else if t.addr.0 + t.size > start {
                return Err(VmapError::Overlap);
            }
            i += 1;
        }
        self.insert_at(i, vm)
    }

    /// Linux: vm_area_register_early() — place an area of `vm.size` first-fit in
    /// `[vmalloc_start, vmalloc_end)` at `align`, and return its address. Unlike Linux's
    /// `cur->addr - addr >= vm->size`, a gap is taken only if the aligned address is not
    /// already past the next area (Linux's subtraction wraps there and would overlap it).
    pub fn vm_area_register_early(
        &mut self,
        mut vm: VmStruct,
        align: u64,
        vmalloc_start: u64,
        vmalloc_end: u64,
    ) -> Result<VirtAddr, VmapError> {
        if !align.is_power_of_two() {
            return Err(VmapError::Inval);
        }
        let mut addr = align_up(vmalloc_start, align);
        let mut i = 0;
        while i < self.nr {
            let cur = &self.vms[i];
            if cur.addr.0 >= addr && cur.addr.0 - addr >= vm.size {
                break;
            }
            addr = align_up(cur.addr.0 + cur.size, align);
            i += 1;
        }
        if vm.size > vmalloc_end || addr > vmalloc_end - vm.size {
            return Err(VmapError::Busy);
        }
        vm.addr = VirtAddr(addr);
        self.insert_at(i, vm)?;
        Ok(vm.addr)
    }
}

impl Default for VmList {
    fn default() -> Self {
        Self::new()
    }
}

// ---------------------------------------------------------------------------------------------
// The allocator

/// Linux: enum fit_type (the variants keep Linux's names, `_TYPE` suffix included).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[allow(clippy::enum_variant_names)]
enum FitType {
    NothingFit,
    /// full fit
    FlFitType,
    /// left edge fit
    LeFitType,
    /// right edge fit
    ReFitType,
    /// no edge fit
    NeFitType,
}

/// Linux: classify_va_fit_type().
fn classify_va_fit_type(va: &VmapArea, nva_start_addr: u64, size: u64) -> FitType {
    // Check if it is within VA.
    if nva_start_addr < va.va_start || nva_start_addr + size > va.va_end {
        return FitType::NothingFit;
    }
    if va.va_start == nva_start_addr {
        if va.va_end == nva_start_addr + size {
            FitType::FlFitType
        } else {
            FitType::LeFitType
        }
    } else if va.va_end == nva_start_addr + size {
        FitType::ReFitType
    } else {
        FitType::NeFitType
    }
}

/// Counts and sizes of the three trees, and the purge history.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmapStats {
    pub nr_busy: usize,
    pub nr_free: usize,
    pub nr_purge: usize,
    pub busy_bytes: u64,
    pub free_bytes: u64,
    pub purge_bytes: u64,
    /// The largest free block (the free tree's root `subtree_max_size`).
    pub largest_free: u64,
    /// Linux: vmap_lazy_nr.
    pub vmap_lazy_nr: u64,
    /// Purges that found something to purge, and so flushed.
    pub nr_purges: u64,
}

/// The vmap space: Linux's busy, free and purge trees with their counters.
///
/// Lock: one, held by the owner around every call (see the module doc) — Linux's
/// `vmap_area_lock`, `free_vmap_area_lock`, `purge_vmap_area_lock` and `vmap_purge_lock`.
pub struct VmapAreas<A: VmapAreaAlloc> {
    alloc: A,
    /// Linux: vmap_area_root + vmap_area_list.
    busy: VaTree,
    /// Linux: free_vmap_area_root + free_vmap_area_list.
    free: VaTree,
    /// Linux: purge_vmap_area_root + purge_vmap_area_list.
    purge: VaTree,
    /// Linux: ne_fit_preload_node (per CPU there; one lock here, so one node).
    ne_fit_preload_node: Option<P>,
    /// Linux: vmap_lazy_nr — pages waiting in the purge tree.
    vmap_lazy_nr: u64,
    /// Linux: vmap_initialized.
    vmap_initialized: bool,
    /// Linux: num_online_cpus() as lazy_max_pages() reads it.
    nr_online_cpus: u32,
    /// The range vmap_init_free_space() covered.
    vmap_start: u64,
    vmap_end: u64,
    /// Linux: nr_vmalloc_pages.
    nr_vmalloc_pages: u64,
    /// The allocation-failure message was printed (see the module doc).
    alloc_fail_warned: bool,
    nr_purges: u64,
    /// Linux: IOREMAP_MAX_ORDER — the arch may raise it (arm64 4K: PUD_SHIFT).
    pub ioremap_max_order: u32,
}

// SAFETY: the nodes the trees point to are owned by this value (allocated from `alloc`,
// reachable only through it), so sending it sends them; the kernel shares it only behind a
// lock.
unsafe impl<A: VmapAreaAlloc + Send> Send for VmapAreas<A> {}

/// Linux: WARN_ON_ONCE() reduced to its line: report and go on.
macro_rules! vmap_warn {
    ($($arg:tt)*) => {
        pr_warn!("WARNING: mm/vmalloc: {}", format_args!($($arg)*))
    };
}

impl<A: VmapAreaAlloc> VmapAreas<A> {
    pub const fn new(alloc: A) -> Self {
        Self {
            alloc,
            busy: VaTree::new(false),
            free: VaTree::new(true),
            purge: VaTree::new(false),
            ne_fit_preload_node: None,
            vmap_lazy_nr: 0,
            vmap_initialized: false,
            nr_online_cpus: 1,
            vmap_start: 0,
            vmap_end: 0,
            nr_vmalloc_pages: 0,
            alloc_fail_warned: false,
            nr_purges: 0,
            ioremap_max_order: IOREMAP_MAX_ORDER_DEFAULT,
        }
    }

    /// Tell lazy_max_pages() how many CPUs are online (Linux reads num_online_cpus()).
    pub fn set_nr_online_cpus(&mut self, n: u32) {
        self.nr_online_cpus = n.max(1);
    }

    /// Linux: lazy_max_pages() for this instance's CPU count.
    pub fn lazy_max_pages(&self) -> u64 {
        lazy_max_pages(self.nr_online_cpus)
    }

    /// Linux: vmap_lazy_nr.
    pub fn vmap_lazy_nr(&self) -> u64 {
        self.vmap_lazy_nr
    }

    /// Linux: vmalloc_nr_pages().
    pub fn vmalloc_nr_pages(&self) -> u64 {
        self.nr_vmalloc_pages
    }

    pub fn is_initialized(&self) -> bool {
        self.vmap_initialized
    }

    /// The allocator, e.g. to read a pool's counters.
    pub fn allocator(&self) -> &A {
        &self.alloc
    }

    /// Nodes this instance holds: busy + free + purge + the preloaded one.
    pub fn nr_nodes(&self) -> usize {
        self.busy.len()
            + self.free.len()
            + self.purge.len()
            + usize::from(self.ne_fit_preload_node.is_some())
    }

    /// Tree nodes visited by searches so far (free-tree lowest-match and link searches, and
    /// busy-tree lookups): the complexity tests read it.
    pub fn tree_steps(&self) -> u64 {
        self.busy.steps() + self.free.steps() + self.purge.steps()
    }

    fn new_node(&mut self) -> Option<P> {
        let p = self.alloc.alloc()?;
        // SAFETY: the allocator contract: `p` is valid, aligned, unused memory for a node.
        unsafe { p.as_ptr().write(VmapArea::new()) };
        Some(p)
    }

    fn free_node(&mut self, p: P) {
        // SAFETY: every node came from `new_node`, and callers pass only unlinked nodes.
        unsafe { self.alloc.free(p) }
    }

    // Node field access for the allocator's own logic. SAFETY (both): `p` is a node this
    // instance owns (linked in one of its trees, or just allocated/unlinked by it), and
    // `&self`/`&mut self` excludes every other access; the references are short-lived.
    fn va(&self, p: P) -> &VmapArea {
        // SAFETY: see above.
        unsafe { &*p.as_ptr() }
    }
    fn va_mut(&mut self, p: P) -> &mut VmapArea {
        // SAFETY: see above.
        unsafe { &mut *p.as_ptr() }
    }

    fn info(&self, p: P) -> VmapAreaInfo {
        let va = self.va(p);
        VmapAreaInfo {
            va_start: va.va_start,
            va_end: va.va_end,
            vm: va.vm,
        }
    }

    /// Linux: vmalloc_init()'s part in mm/vmalloc.c: import the early `vmlist` into the busy
    /// tree, then build the free tree over `[vmap_start, vmap_end)` around it
    /// (vmap_init_free_space()). Linux's range is `[1, ULONG_MAX)`.
    pub fn vmalloc_init(
        &mut self,
        vmlist: &VmList,
        vmap_start: u64,
        vmap_end: u64,
    ) -> Result<(), VmapError> {
        if self.vmap_initialized {
            return Err(VmapError::Busy);
        }
        if vmap_start >= vmap_end {
            return Err(VmapError::Inval);
        }
        // Import existing vmlist entries.
        for vm in vmlist.as_slice() {
            let Some(va) = self.new_node() else {
                vmap_warn!("vmalloc_init: no vmap_area for {:#x}", vm.addr.0);
                continue;
            };
            {
                let n = self.va_mut(va);
                n.va_start = vm.addr.0;
                n.va_end = vm.addr.0 + vm.size;
                n.vm = Some(*vm);
            }
            if let Err(other) = self.busy.insert(va) {
                self.warn_overlap(va, other);
                self.free_node(va);
            }
        }
        // Now we can initialize a free vmap space.
        self.vmap_init_free_space(vmap_start, vmap_end);
        self.vmap_initialized = true;
        Ok(())
    }

    /// Linux: vmap_init_free_space() — every gap between busy areas in
    /// `[vmap_start, vmap_end)` becomes a free area:
    /// ```text
    ///     B     F     B     B     B     F
    /// -|-----|.....|-----|-----|-----|.....|-
    ///  |           The KVA space           |
    /// ```
    /// Busy areas reaching outside the range are clipped (Linux's range holds everything).
    fn vmap_init_free_space(&mut self, vmap_start: u64, vmap_end: u64) {
        self.vmap_start = vmap_start;
        self.vmap_end = vmap_end;
        let mut cursor = vmap_start;
        let mut busy = self.busy.first();
        while let Some(b) = busy {
            busy = VaTree::next(b);
            let (bs, be) = (self.va(b).va_start, self.va(b).va_end);
            if be <= cursor {
                continue;
            }
            if bs >= vmap_end {
                break;
            }
            if bs > cursor {
                self.add_free_space(cursor, bs);
            }
            cursor = be;
        }
        if vmap_end > cursor {
            self.add_free_space(cursor, vmap_end);
        }
    }

    fn add_free_space(&mut self, start: u64, end: u64) {
        let Some(free) = self.new_node() else {
            vmap_warn!(
                "vmap_init_free_space: no vmap_area for {:#x}-{:#x}",
                start,
                end
            );
            return;
        };
        {
            let n = self.va_mut(free);
            n.va_start = start;
            n.va_end = end;
        }
        if let Err(other) = self.free.insert(free) {
            self.warn_overlap(free, other);
            self.free_node(free);
        }
    }

    fn warn_overlap(&self, va: P, other: P) {
        let (a, b) = (self.va(va), self.va(other));
        vmap_warn!(
            "vmalloc bug: 0x{:x}-0x{:x} overlaps with 0x{:x}-0x{:x}",
            a.va_start,
            a.va_end,
            b.va_start,
            b.va_end
        );
    }

    /// Linux: preload_this_cpu_lock() — keep one spare node for a no-edge split.
    fn preload_this_cpu(&mut self) {
        if self.ne_fit_preload_node.is_none() {
            self.ne_fit_preload_node = self.new_node();
        }
    }

    /// Linux: adjust_va_to_fit_type() — cut `[nva_start_addr, +size)` out of free area `va`.
    fn adjust_va_to_fit_type(&mut self, va: P, nva_start_addr: u64, size: u64) -> Result<(), ()> {
        match classify_va_fit_type(self.va(va), nva_start_addr, size) {
            FitType::FlFitType => {
                // No need to split VA, it fully fits.
                //   |               |
                //   V      NVA      V
                //   |---------------|
                self.free.unlink_va(va);
                self.free_node(va);
            }
            FitType::LeFitType => {
                // Split left edge of fit VA.
                //   |       |
                //   V  NVA  V   R
                //   |-------|-------|
                self.va_mut(va).va_start += size;
                self.free.augment_tree_propagate_from(va);
            }
            FitType::ReFitType => {
                // Split right edge of fit VA.
                //           |       |
                //       L   V  NVA  V
                //   |-------|-------|
                self.va_mut(va).va_end = nva_start_addr;
                self.free.augment_tree_propagate_from(va);
            }
            FitType::NeFitType => {
                // Split no edge of fit VA.
                //       |       |
                //     L V  NVA  V R
                //   |---|-------|---|
                let lva = match self.ne_fit_preload_node.take() {
                    Some(n) => n,
                    None => self.new_node().ok_or(())?,
                };
                let va_start = self.va(va).va_start;
                {
                    // Build the remainder.
                    let l = self.va_mut(lva);
                    l.va_start = va_start;
                    l.va_end = nva_start_addr;
                }
                // Shrink this VA to remaining size.
                self.va_mut(va).va_start = nva_start_addr + size;
                self.free.augment_tree_propagate_from(va);
                if let Err(other) = self.free.insert(lva) {
                    self.warn_overlap(lva, other);
                    self.free_node(lva);
                    return Err(());
                }
            }
            FitType::NothingFit => return Err(()),
        }
        Ok(())
    }

    /// Linux: __alloc_vmap_area() — the start of the new area, or None (Linux returns vend).
    fn __alloc_vmap_area(&mut self, size: u64, align: u64, vstart: u64, vend: u64) -> Option<u64> {
        // Do not adjust the search length when the alignment is at most a page (every block
        // is page aligned anyway), or when the request is exactly the [vstart, vend) range.
        let adjust_search_size = !(align <= PAGE_SIZE || vend.wrapping_sub(vstart) == size);
        let va = self
            .free
            .find_vmap_lowest_match(size, align, vstart, adjust_search_size)?;
        let base = self.va(va).va_start.max(vstart);
        let nva_start_addr = align_up(base, align);
        // Check the "vend" restriction.
        if nva_start_addr + size > vend {
            return None;
        }
        if self
            .adjust_va_to_fit_type(va, nva_start_addr, size)
            .is_err()
        {
            vmap_warn!("adjust_va_to_fit_type failed at {:#x}", nva_start_addr);
            return None;
        }
        Some(nva_start_addr)
    }

    /// Linux: alloc_vmap_area() — find `size` bytes (whole pages) aligned to `align` (a power
    /// of two) within `[vstart, vend)`, the lowest such address, and make it a busy area. If
    /// nothing fits, lazily freed areas are purged once (calling `flush` for their range)
    /// and the search is retried; then the failure is reported, as Linux does, once.
    pub fn alloc_vmap_area(
        &mut self,
        size: u64,
        align: u64,
        vstart: u64,
        vend: u64,
        flush: impl FnOnce(u64, u64),
    ) -> Result<VmapAreaInfo, VmapError> {
        let va = self.alloc_vmap_area_node(size, align, vstart, vend, flush)?;
        Ok(self.info(va))
    }

    fn alloc_vmap_area_node(
        &mut self,
        size: u64,
        align: u64,
        vstart: u64,
        vend: u64,
        flush: impl FnOnce(u64, u64),
    ) -> Result<P, VmapError> {
        if size == 0 || !size.is_multiple_of(PAGE_SIZE) || !align.is_power_of_two() {
            return Err(VmapError::Inval);
        }
        if !self.vmap_initialized {
            return Err(VmapError::Busy);
        }
        let va = self.new_node().ok_or(VmapError::NoMem)?;
        let mut flush = Some(flush);
        loop {
            self.preload_this_cpu();
            if let Some(addr) = self.__alloc_vmap_area(size, align, vstart, vend) {
                {
                    let n = self.va_mut(va);
                    n.va_start = addr;
                    n.va_end = addr + size;
                    n.vm = None;
                }
                if let Err(other) = self.busy.insert(va) {
                    // The free tree said this range was free: the trees disagree.
                    self.warn_overlap(va, other);
                    self.free_node(va);
                    return Err(VmapError::Overlap);
                }
                debug_assert!(addr % align == 0 && addr >= vstart && addr + size <= vend);
                return Ok(va);
            }
            // overflow:
            match flush.take() {
                Some(f) => {
                    self.purge_vmap_area_lazy(f);
                }
                None => break,
            }
        }
        if !self.alloc_fail_warned {
            self.alloc_fail_warned = true;
            pr_warn!(
                "vmap allocation for size {} failed: use vmalloc=<size> to increase size",
                size
            );
        }
        self.free_node(va);
        Err(VmapError::Busy)
    }

    /// Linux: __get_vm_area_node() — a busy area with its vm_struct: `size` rounded up to
    /// pages, aligned as ioremap wants for VM_IOREMAP, plus a guard page unless VM_NO_GUARD.
    #[allow(clippy::too_many_arguments)]
    pub fn get_vm_area_node(
        &mut self,
        size: u64,
        mut align: u64,
        flags: u64,
        start: u64,
        end: u64,
        caller: Option<&'static str>,
        flush: impl FnOnce(u64, u64),
    ) -> Result<VmStruct, VmapError> {
        let mut size = align_up(size, PAGE_SIZE);
        if size == 0 {
            return Err(VmapError::Inval);
        }
        if flags & VM_IOREMAP != 0 {
            let order = get_count_order_long(size).clamp(PAGE_SHIFT, self.ioremap_max_order);
            align = 1 << order;
        }
        if flags & VM_NO_GUARD == 0 {
            size += PAGE_SIZE;
        }
        let va = self.alloc_vmap_area_node(size, align, start, end, flush)?;
        // Linux: setup_vmalloc_vm().
        let n = self.va_mut(va);
        let vm = VmStruct {
            flags,
            addr: VirtAddr(n.va_start),
            size: n.va_end - n.va_start,
            caller,
            ..VmStruct::EMPTY
        };
        n.vm = Some(vm);
        Ok(vm)
    }

    /// Linux: find_vmap_area() — the busy area containing `addr`.
    pub fn find_vmap_area(&self, addr: u64) -> Option<VmapAreaInfo> {
        self.busy.find(addr).map(|p| self.info(p))
    }

    /// Linux: find_vm_area() — the vm_struct of the busy area containing `addr`.
    pub fn find_vm_area(&self, addr: u64) -> Option<&VmStruct> {
        let p = self.busy.find(addr)?;
        self.va(p).vm.as_ref()
    }

    /// The vm_struct of the busy area containing `addr`, to fill in (phys_addr, flags such as
    /// clearing VM_UNINITIALIZED). The pages go through [`Self::set_vm_pages`].
    pub fn find_vm_area_mut(&mut self, addr: u64) -> Option<&mut VmStruct> {
        let p = self.busy.find(addr)?;
        self.va_mut(p).vm.as_mut()
    }

    /// Record the pages behind the area starting at `addr` (Linux: `area->pages`,
    /// `area->nr_pages`, and for VM_ALLOC `nr_vmalloc_pages`). Returns false if no busy area
    /// with a vm_struct starts there.
    ///
    /// # Safety
    /// `pages` is null or points to `nr_pages` valid `*mut Page` entries, each pointing to a
    /// `struct page`, and stays so until the area is removed (vmallocinfo reads them).
    pub unsafe fn set_vm_pages(&mut self, addr: u64, pages: *mut *mut Page, nr_pages: u32) -> bool {
        let Some(p) = self.busy.find(addr) else {
            return false;
        };
        if self.va(p).va_start != addr {
            return false;
        }
        let Some(vm) = self.va_mut(p).vm.as_mut() else {
            return false;
        };
        let alloc = vm.flags & VM_ALLOC != 0;
        let old = vm.nr_pages;
        vm.pages = pages;
        vm.nr_pages = nr_pages;
        if alloc {
            self.nr_vmalloc_pages = self.nr_vmalloc_pages - u64::from(old) + u64::from(nr_pages);
        }
        true
    }

    /// Linux: free_vmap_area_noflush() — move the busy area starting at `addr` to the purge
    /// tree (its PTEs must already be cleared) and count its pages in `vmap_lazy_nr`. Returns
    /// whether `vmap_lazy_nr` now exceeds lazy_max_pages(), i.e. whether Linux would schedule
    /// `drain_vmap_work`: the caller should then run [`Self::drain_vmap_area_work`].
    pub fn free_vmap_area_noflush(&mut self, addr: u64) -> Result<bool, VmapError> {
        let va = self.find_busy_start(addr)?;
        self.busy.unlink_va(va);
        self.va_mut(va).vm = None;
        let nr = va_size(va) >> PAGE_SHIFT;
        self.vmap_lazy_nr += nr;
        // Merge or place it to the purge tree/list.
        merge_or_add_vmap_area(&mut self.purge, &mut self.alloc, va);
        Ok(self.vmap_lazy_nr > self.lazy_max_pages())
    }

    fn find_busy_start(&self, addr: u64) -> Result<P, VmapError> {
        match self.busy.find(addr) {
            Some(p) if self.va(p).va_start == addr => Ok(p),
            _ => Err(VmapError::NotFound),
        }
    }

    /// Linux: remove_vm_area() + free_unmap_vmap_area() — take the area starting at `addr`
    /// out of the busy tree: `unmap(start, end)` clears its page tables (Linux:
    /// vunmap_range_noflush(), over the whole area with its guard), the range joins the
    /// purge tree, and if that makes too many lazy pages the drain runs now with `flush`
    /// (Linux schedules it). Returns the vm_struct, whose pages the caller frees.
    pub fn remove_vm_area(
        &mut self,
        addr: u64,
        unmap: impl FnOnce(u64, u64),
        flush: impl FnOnce(u64, u64),
    ) -> Result<VmStruct, VmapError> {
        let va = self.find_busy_start(addr)?;
        let Some(vm) = self.va_mut(va).vm.take() else {
            return Err(VmapError::NotFound);
        };
        let (start, end) = (self.va(va).va_start, self.va(va).va_end);
        unmap(start, end);
        if vm.flags & VM_ALLOC != 0 {
            self.nr_vmalloc_pages -= u64::from(vm.nr_pages);
        }
        if self.free_vmap_area_noflush(addr)? {
            self.drain_vmap_area_work(flush);
        }
        Ok(vm)
    }

    /// Linux: drain_vmap_area_work() — purge while too many pages are lazy. One purge takes
    /// the whole purge tree under the one lock, so one pass suffices.
    pub fn drain_vmap_area_work(&mut self, flush: impl FnOnce(u64, u64)) {
        if self.vmap_lazy_nr > 0 {
            self.__purge_vmap_area_lazy(u64::MAX, 0, flush);
        }
    }

    /// Linux: purge_vmap_area_lazy() — flush the TLB once, with `flush(start, end)` over the
    /// span of every lazily freed area, and merge them all back into the free tree. Returns
    /// whether anything was purged (no flush happens otherwise).
    pub fn purge_vmap_area_lazy(&mut self, flush: impl FnOnce(u64, u64)) -> bool {
        self.__purge_vmap_area_lazy(u64::MAX, 0, flush)
    }

    /// Linux: __purge_vmap_area_lazy().
    fn __purge_vmap_area_lazy(
        &mut self,
        start: u64,
        end: u64,
        flush: impl FnOnce(u64, u64),
    ) -> bool {
        // Linux: purge_vmap_area_root = RB_ROOT; list_replace_init(&purge_vmap_area_list, ...).
        let local_purge_list = core::mem::replace(&mut self.purge, VaTree::new(false));
        let (Some(first), Some(last)) = (local_purge_list.first(), local_purge_list.last()) else {
            return false;
        };
        let start = start.min(self.va(first).va_start);
        let end = end.max(self.va(last).va_end);
        flush(start, end);
        self.nr_purges += 1;

        let mut cur = Some(first);
        while let Some(va) = cur {
            // Read the link before merging rewrites it (or frees the node).
            cur = VaTree::next(va);
            let nr = va_size(va) >> PAGE_SHIFT;
            // Finally insert or merge lazily-freed area. It is detached and there is no
            // need to "unlink" it from anything.
            merge_or_add_vmap_area_augment(&mut self.free, &mut self.alloc, va);
            self.vmap_lazy_nr -= nr;
        }
        true
    }

    /// The busy areas in address order.
    pub fn busy_areas(&self) -> impl Iterator<Item = VmapAreaInfo> + '_ {
        self.busy.iter().map(|p| self.info(p))
    }

    /// The free areas in address order, as `(va_start, va_end)`.
    pub fn free_areas(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.free
            .iter()
            .map(|p| (self.va(p).va_start, self.va(p).va_end))
    }

    /// The lazily freed areas waiting for a purge, as `(va_start, va_end)`.
    pub fn purge_areas(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.purge
            .iter()
            .map(|p| (self.va(p).va_start, self.va(p).va_end))
    }

    /// Counts and sizes (cheap: walks the lists).
    pub fn stats(&self) -> VmapStats {
        let sum = |t: &VaTree| t.iter().map(va_size).sum::<u64>();
        VmapStats {
            nr_busy: self.busy.len(),
            nr_free: self.free.len(),
            nr_purge: self.purge.len(),
            busy_bytes: sum(&self.busy),
            free_bytes: sum(&self.free),
            purge_bytes: sum(&self.purge),
            largest_free: self.free.max_size(),
            vmap_lazy_nr: self.vmap_lazy_nr,
            nr_purges: self.nr_purges,
        }
    }

    /// The invariant checker (Linux has DEBUG_AUGMENT_PROPAGATE_CHECK and
    /// DEBUG_AUGMENT_LOWEST_MATCH_CHECK for parts of it): each tree ordered, balanced, with
    /// correct parent links, list and `subtree_max_size`; free areas never touching (they
    /// would have been merged); the three trees disjoint and, within the initialised range,
    /// covering it exactly; `vmap_lazy_nr` equal to the purge tree's pages.
    pub fn vmap_check(&self) -> Result<VmapStats, &'static str> {
        self.busy.check()?;
        self.free.check()?;
        self.purge.check()?;
        let mut prev_free_end = None;
        for (s, e) in self.free_areas() {
            if prev_free_end == Some(s) {
                return Err("two free areas touch: a merge was missed");
            }
            if self.vmap_initialized && (s < self.vmap_start || e > self.vmap_end) {
                return Err("free area outside the vmap range");
            }
            prev_free_end = Some(e);
        }
        let lazy: u64 = self.purge.iter().map(|p| va_size(p) >> PAGE_SHIFT).sum();
        if lazy != self.vmap_lazy_nr {
            return Err("vmap_lazy_nr differs from the purge tree");
        }
        // Three-way merge of the sorted lists: disjoint, and tiling [vmap_start, vmap_end).
        let (mut b, mut f, mut u) = (self.busy.first(), self.free.first(), self.purge.first());
        let mut prev_end = 0u64;
        let mut cursor = self.vmap_start;
        let mut first = true;
        loop {
            let start_of = |l: Option<P>| l.map_or(u64::MAX, |p| self.va(p).va_start);
            let (sb, sf, su) = (start_of(b), start_of(f), start_of(u));
            let p = if b.is_some() && sb <= sf && sb <= su {
                let p = b;
                b = b.and_then(VaTree::next);
                p
            } else if f.is_some() && sf <= su {
                let p = f;
                f = f.and_then(VaTree::next);
                p
            } else if u.is_some() {
                let p = u;
                u = u.and_then(VaTree::next);
                p
            } else {
                break;
            };
            let p = p.expect("picked a non-empty list");
            let (s, e) = (self.va(p).va_start, self.va(p).va_end);
            if !first && s < prev_end {
                return Err("busy, free and purge areas overlap");
            }
            first = false;
            prev_end = e;
            if self.vmap_initialized && e > self.vmap_start && s < self.vmap_end {
                if s.max(self.vmap_start) != cursor {
                    return Err("a hole: the trees do not cover the vmap range");
                }
                cursor = e.min(self.vmap_end);
            }
        }
        if self.vmap_initialized && cursor != self.vmap_end {
            return Err("the trees end before the vmap range does");
        }
        Ok(self.stats())
    }

    /// Linux: s_show() for /proc/vmallocinfo — one line per busy area, then the lazily freed
    /// ones, passed to `out` without the newline:
    /// `0x%pK-0x%pK %7ld caller pages=N phys=... ioremap vmalloc vmap user vpages N0=...`.
    /// Node counts (`N0=`) are read from the pages' `struct page`s, as Linux does with
    /// CONFIG_NUMA (arm64's default).
    pub fn vmallocinfo(&self, out: &mut dyn FnMut(&str)) {
        let mut line = LineBuf::new();
        for p in self.busy.iter() {
            line.clear();
            let va = self.va(p);
            let _ = self.s_show(&mut line, va);
            out(line.as_str());
        }
        // As a final step, dump "unpurged" areas (Linux does so after the last busy area).
        if self.busy.is_empty() {
            return;
        }
        for p in self.purge.iter() {
            line.clear();
            let va = self.va(p);
            let _ = write!(
                line,
                "0x{:016x}-0x{:016x} {:7} unpurged vm_area",
                va.va_start,
                va.va_end,
                va.va_end - va.va_start
            );
            out(line.as_str());
        }
    }

    fn s_show(&self, m: &mut LineBuf, va: &VmapArea) -> fmt::Result {
        let Some(v) = va.vm.as_ref() else {
            return write!(
                m,
                "0x{:016x}-0x{:016x} {:7} vm_map_ram",
                va.va_start,
                va.va_end,
                va.va_end - va.va_start
            );
        };
        write!(
            m,
            "0x{:016x}-0x{:016x} {:7}",
            v.addr.0,
            v.addr.0 + v.size,
            v.size
        )?;
        if let Some(caller) = v.caller {
            write!(m, " {}", caller)?;
        }
        if v.nr_pages != 0 {
            write!(m, " pages={}", v.nr_pages)?;
        }
        if v.phys_addr.0 != 0 {
            write!(m, " phys=0x{:016x}", v.phys_addr.0)?;
        }
        if v.flags & VM_IOREMAP != 0 {
            m.write_str(" ioremap")?;
        }
        if v.flags & VM_ALLOC != 0 {
            m.write_str(" vmalloc")?;
        }
        if v.flags & VM_MAP != 0 {
            m.write_str(" vmap")?;
        }
        if v.flags & VM_USERMAP != 0 {
            m.write_str(" user")?;
        }
        if v.flags & VM_DMA_COHERENT != 0 {
            m.write_str(" dma-coherent")?;
        }
        // Linux: is_vmalloc_addr(v->pages) — the page array itself was vmalloc'ed.
        if !v.pages.is_null() && self.busy.find(v.pages as u64).is_some() {
            m.write_str(" vpages")?;
        }
        self.show_numa_info(m, v)
    }

    /// Linux: show_numa_info().
    fn show_numa_info(&self, m: &mut LineBuf, v: &VmStruct) -> fmt::Result {
        if v.flags & VM_UNINITIALIZED != 0 || v.pages.is_null() {
            return Ok(());
        }
        let mut counters = [0u32; MAX_NUMNODES as usize];
        for i in 0..v.nr_pages as usize {
            // SAFETY: `set_vm_pages`' contract: `pages` holds `nr_pages` valid page pointers.
            let page = unsafe { *v.pages.add(i) };
            if page.is_null() {
                continue;
            }
            // SAFETY: as above, each entry points to a live struct page.
            let nid = unsafe { (*page).page_to_nid() };
            if let Some(c) = counters.get_mut(nid as usize) {
                *c += 1;
            }
        }
        for (nr, &c) in counters.iter().enumerate() {
            if c != 0 {
                write!(m, " N{}={}", nr, c)?;
            }
        }
        Ok(())
    }
}

impl<A: VmapAreaAlloc> Drop for VmapAreas<A> {
    /// Give every node back to the allocator.
    fn drop(&mut self) {
        for which in 0..3 {
            let tree = match which {
                0 => core::mem::replace(&mut self.busy, VaTree::new(false)),
                1 => core::mem::replace(&mut self.free, VaTree::new(true)),
                _ => core::mem::replace(&mut self.purge, VaTree::new(false)),
            };
            let mut cur = tree.first();
            while let Some(p) = cur {
                cur = VaTree::next(p);
                self.free_node(p);
            }
        }
        if let Some(p) = self.ne_fit_preload_node.take() {
            self.free_node(p);
        }
    }
}

/// Linux: __merge_or_add_vmap_area() — put the detached node `va` into `root`, merging it
/// with the next and/or previous area when they touch (the merged-away node is freed). In an
/// augmented tree `subtree_max_size` is propagated too
/// (merge_or_add_vmap_area_augment()). Returns the node that now holds the range, or None
/// after an overlap warning (the node is then freed; Linux leaks it).
fn __merge_or_add_vmap_area<A: VmapAreaAlloc>(
    root: &mut VaTree,
    alloc: &mut A,
    va: P,
    augment: bool,
) -> Option<P> {
    // SAFETY (all node accesses here): `va` is detached and owned by the caller, the
    // siblings are linked in `root`, which the caller holds by `&mut`; accesses are short.
    let get = |p: P| unsafe { (p.as_ref().va_start, p.as_ref().va_end) };
    let (start, end) = get(va);
    // Find a place in the tree where VA potentially will be inserted, unless it is merged
    // with its sibling/siblings.
    let link = match root.find_va_links(start, end) {
        Ok(l) => l,
        Err(other) => {
            let (os, oe) = get(other);
            vmap_warn!(
                "vmalloc bug: 0x{:x}-0x{:x} overlaps with 0x{:x}-0x{:x}",
                start,
                end,
                os,
                oe
            );
            // SAFETY: `va` came from this allocator and is linked nowhere.
            unsafe { alloc.free(va) };
            return None;
        }
    };
    let mut va = va;
    let mut merged = false;
    if link.parent.is_some() {
        // Get next node of VA to check if merging can be done.
        let next = root.next_sibling(&link);
        //  start            end
        //  |<------VA------>|<-----Next----->|
        if let Some(sibling) = next {
            if get(sibling).0 == end {
                // SAFETY: see above.
                unsafe { (*sibling.as_ptr()).va_start = start };
                // SAFETY: `va` came from this allocator and is linked nowhere.
                unsafe { alloc.free(va) };
                va = sibling;
                merged = true;
            }
        }
        //                   start            end
        //  |<-----Prev----->|<------VA------>|
        let prev = match next {
            Some(n) => VaTree::prev(n),
            None => root.last(),
        };
        if let Some(sibling) = prev {
            if get(sibling).1 == start {
                // If both neighbours are coalesced, unlink the "next" one first, then merge
                // with the previous one, so the augmented values stay fully populated.
                if merged {
                    root.unlink_va(va);
                }
                let new_end = get(va).1;
                // SAFETY: see above.
                unsafe { (*sibling.as_ptr()).va_end = new_end };
                // SAFETY: `va` is unlinked (or was never linked) and came from `alloc`.
                unsafe { alloc.free(va) };
                va = sibling;
                merged = true;
            }
        }
    }
    if !merged {
        root.link_va(va, link);
    }
    if augment {
        root.augment_tree_propagate_from(va);
    }
    Some(va)
}

/// Linux: merge_or_add_vmap_area() (the purge tree).
fn merge_or_add_vmap_area<A: VmapAreaAlloc>(root: &mut VaTree, alloc: &mut A, va: P) -> Option<P> {
    __merge_or_add_vmap_area(root, alloc, va, false)
}

/// Linux: merge_or_add_vmap_area_augment() (the free tree).
fn merge_or_add_vmap_area_augment<A: VmapAreaAlloc>(
    root: &mut VaTree,
    alloc: &mut A,
    va: P,
) -> Option<P> {
    __merge_or_add_vmap_area(root, alloc, va, true)
}

/// A fixed line buffer for vmallocinfo (no heap here); long lines are cut.
type LineBuf = crate::kernel::printk::LineBuf<256>;

// ---------------------------------------------------------------------------------------------
// The per-CPU deferred-free list

/// Linux: struct llist_node — written into the first word of an area being freed.
#[repr(C)]
pub struct LlistNode {
    next: *mut LlistNode,
}

/// Linux: struct vfree_deferred — one per CPU: the areas `vfree()` could not free where it
/// was called (interrupt context), waiting for `delayed_vfree_work()`.
///
/// Lock: none; like Linux's `llist`, pushes and the take-all are single atomic operations, so
/// any CPU may push onto any CPU's list, and the list needs no lock.
pub struct VfreeDeferred {
    list: AtomicPtr<LlistNode>,
}

impl VfreeDeferred {
    pub const fn new() -> Self {
        Self {
            list: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Linux: vfree_atomic()'s `llist_add((struct llist_node *)addr, &p->list)`. Returns true
    /// if the list was empty, when Linux schedules the work that drains it.
    ///
    /// # Safety
    /// `addr` is the start of an area being freed: writable, 8-byte aligned, at least a
    /// pointer long, used by nothing else, and left mapped until `llist_del_all` hands it
    /// back.
    pub unsafe fn llist_add(&self, addr: NonNull<u8>) -> bool {
        let node = addr.as_ptr().cast::<LlistNode>();
        let mut first = self.list.load(Ordering::Relaxed);
        loop {
            // SAFETY: the caller gives us the area's first word.
            unsafe { (*node).next = first };
            match self
                .list
                .compare_exchange_weak(first, node, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return first.is_null(),
                Err(now) => first = now,
            }
        }
    }

    /// Linux: llist_del_all() and the walk of delayed_vfree_work(): take every queued area,
    /// newest first, and pass its address to `f` (which vfree()s it).
    pub fn llist_del_all(&self, mut f: impl FnMut(NonNull<u8>)) {
        let mut node = self.list.swap(ptr::null_mut(), Ordering::Acquire);
        while let Some(n) = NonNull::new(node) {
            // SAFETY: every node was pushed by `llist_add`, whose contract keeps it valid
            // until now; read the link before `f` frees the area.
            node = unsafe { (*n.as_ptr()).next };
            f(n.cast());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.load(Ordering::Relaxed).is_null()
    }
}

impl Default for VfreeDeferred {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests;
