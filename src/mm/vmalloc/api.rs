//! The vmalloc family for the kernel (Linux: mm/vmalloc.c's API half): `vmalloc`, `vzalloc`,
//! `vmalloc_node`, `vfree` (deferred from atomic context), `vmap`/`vunmap`, `ioremap`/
//! `iounmap`, `vmalloc_to_page`, `is_vmalloc_addr`, `vmallocinfo`, over the vmap-area
//! allocator in `super` and the architecture's page tables, which this file reaches only
//! through the [`VmallocArch`] hooks the arch registers (`set_vmalloc_arch`).
//!
//! # Locks, outermost first
//! 1. `vmap_block_queue` — one per CPU in its per-CPU area (Linux: the queue's and each
//!    block's lock): vm_map_ram() takes this CPU's, vm_unmap_ram() the owner's.
//! 2. `VMAP` — Linux's vmap_area_lock with the free/purge locks and vmap_purge_lock: the
//!    three trees. Taken for each tree operation; vunmap's page-table teardown and the
//!    lazy purge's TLB flush (a broadcast `TLBI ...IS`: every CPU's TLB) run under it;
//!    mapping pages (vmap_pages_range) runs outside it.
//! 3. The arch's page-table lock (arm64: `fixmap_lock`), inside the hooks.
//! 4. SLUB's and the page allocator's locks (vmap_area objects, pages, new page tables).
//!
//! `VMAP_BLOCKS` (the block index) is taken under a queue lock or alone, and takes nothing
//! itself; `VMLIST` (the early areas until vmalloc_init) is taken alone. No lock is held across a call that takes the same lock again: a guard in an
//! `if let` scrutinee lives through the body, so such results are bound with `let` first.
//! No interrupt handler maps or frees vmalloc space (the fault handler only `try_lock`s
//! VMAP), so the locks do not mask interrupts.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use super::{
    VfreeDeferred, VmList, VmStruct, VmapArea, VmapAreaAlloc, VmapAreas, VM_ALLOC, VM_IOREMAP,
    VM_MAP, VM_NO_GUARD,
};
use crate::include::processor::SpinLock;
use crate::mm::addr::PgProt;
use crate::mm::gfp::{GfpT, __GFP_NOWARN, __GFP_THISNODE, __GFP_ZERO, GFP_KERNEL};
use crate::mm::page::Page;
use crate::mm::page_alloc::{page_alloc, PagePtr};
use crate::mm::slab::SLAB_PANIC;
use crate::mm::slab_common::{kmem_cache_alloc, kmem_cache_create, kmem_cache_free};
use crate::mm::slub::KmemCache;
use crate::mm::{PhysAddr, VirtAddr, PAGE_SIZE};

/// What vmalloc needs from the architecture (Linux: asm/vmalloc.h and asm/pgtable.h's
/// VMALLOC_START/VMALLOC_END, PAGE_KERNEL, the ioremap protection, `__va`, the page-table
/// updates of mm/vmalloc.c and mm/ioremap.c, flush_tlb_kernel_range, smp_processor_id).
pub struct VmallocArch {
    /// Linux: VMALLOC_START / VMALLOC_END — the range vmalloc hands out.
    pub vmalloc_start: u64,
    pub vmalloc_end: u64,
    /// Linux: PAGE_KERNEL — vmalloc's mappings.
    pub page_kernel: PgProt,
    /// Linux: the ioremap() protection (arm64: PROT_DEVICE_nGnRE).
    pub prot_device: PgProt,
    /// Linux: __va() — the linear-map address of a physical one.
    pub va: fn(PhysAddr) -> VirtAddr,
    /// Linux: vmap_pages_range() — maps `n` pages (`phys(i)` is the i-th) one after the
    /// other from a page-aligned address whose entries are empty; false if there was no
    /// memory for a page table (Linux: -ENOMEM).
    pub vmap_pages_range: fn(u64, usize, &mut dyn FnMut(usize) -> PhysAddr, PgProt) -> bool,
    /// Linux: ioremap_page_range(); false if there was no memory for a page table.
    pub ioremap_page_range: fn(u64, PhysAddr, u64, PgProt) -> bool,
    /// Linux: vunmap_range_noflush() — clears the leaves; the caller flushes.
    pub vunmap_range_noflush: fn(u64, u64),
    /// Linux: flush_tlb_kernel_range().
    pub flush_tlb_kernel_range: fn(u64, u64),
    /// The physical address mapped at a kernel virtual address, if any.
    pub kernel_va_to_phys: fn(u64) -> Option<PhysAddr>,
    /// Linux: smp_processor_id().
    pub smp_processor_id: fn() -> usize,
}

static ARCH: spin::Once<&'static VmallocArch> = spin::Once::new();

/// Registers the architecture's side (once, before vmalloc_init).
pub fn set_vmalloc_arch(arch: &'static VmallocArch) {
    ARCH.call_once(|| arch);
}

/// The architecture's side; vmalloc is not usable before it is registered.
fn arch() -> &'static VmallocArch {
    ARCH.get()
        .expect("vmalloc used before the architecture registered its hooks")
}

/// `[VMALLOC_START, VMALLOC_END)`, or an empty range before the arch registered.
fn vmalloc_range() -> (u64, u64) {
    ARCH.get()
        .map_or((0, 0), |a| (a.vmalloc_start, a.vmalloc_end))
}

/// Linux: vmap_area_cachep — the kmem_cache vmap_area nodes come from (created by
/// vmalloc_init, which runs after kmem_cache_init as in Linux).
static VMAP_AREA_CACHEP: spin::Once<&'static KmemCache> = spin::Once::new();

/// The node allocator of the vmap trees: the `vmap_area` kmem_cache.
pub struct VmapAreaCache;

// SAFETY: alloc returns distinct objects of the vmap_area cache, sized and aligned for a
// VmapArea; free gives back only what alloc returned (VmapAreas's contract).
unsafe impl VmapAreaAlloc for VmapAreaCache {
    fn alloc(&mut self) -> Option<NonNull<VmapArea>> {
        let c = VMAP_AREA_CACHEP.get()?;
        let p = NonNull::new(kmem_cache_alloc(c, GFP_KERNEL | __GFP_NOWARN).cast::<VmapArea>())?;
        // SAFETY: a fresh object of the right size and alignment.
        unsafe { p.as_ptr().write(VmapArea::new()) };
        // Linux (alloc_vmap_area): "Only scan the relevant parts containing pointers to
        // other objects to avoid false negatives." — from the tree links on, not va_start.
        let links = p.as_ptr() as usize + core::mem::offset_of!(VmapArea, parent);
        crate::mm::kmemleak::kmemleak_scan_area(links as *const u8);
        Some(p)
    }

    unsafe fn free(&mut self, va: NonNull<VmapArea>) {
        if let Some(c) = VMAP_AREA_CACHEP.get() {
            // SAFETY: `va` came from this cache (alloc above).
            unsafe { kmem_cache_free(c, va.as_ptr().cast()) };
        }
    }
}

static VMAP: SpinLock<VmapAreas<VmapAreaCache>> = SpinLock::new(VmapAreas::new(VmapAreaCache));
static VMLIST: SpinLock<VmList> = SpinLock::new(VmList::new());
/// Linux: vfree_deferred — one per CPU there; one lock-free list here (any CPU may add,
/// any CPU's next vmalloc drains it).
static VFREE_DEFERRED: VfreeDeferred = VfreeDeferred::new();
/// TLB flushes the lazy purge issued (the tests check a burst of vfree costs one).
pub static VMAP_FLUSHES: AtomicU64 = AtomicU64::new(0);

fn flush(start: u64, end: u64) {
    VMAP_FLUSHES.fetch_add(1, Ordering::Relaxed);
    (arch().flush_tlb_kernel_range)(start, end);
}

/// Linux: free_vmap_area_noflush() — the area at `addr` joins the lazy list; past
/// lazy_max_pages the purge runs (one TLB flush for all). The two steps take `VMAP` one
/// after the other, never nested: the guard of an `if let` scrutinee would live through
/// its body, and the drain would take the lock a second time.
fn free_vmap_area_noflush(addr: u64) {
    let over_lazy_max = VMAP.lock().free_vmap_area_noflush(addr) == Ok(true);
    if over_lazy_max {
        VMAP.lock().drain_vmap_area_work(flush);
    }
}

/// Linux: vm_area_add_early() — areas mapped before vmalloc_init (the kernel's segments,
/// as map_kernel_segment registers them) join the busy tree when it is built.
pub fn vm_area_add_early(addr: u64, size: u64, flags: u64, caller: &'static str) {
    let vm = VmStruct::new(VirtAddr(addr), size, flags, Some(caller));
    if VMLIST.lock().vm_area_add_early(vm).is_err() {
        pr_warn!(
            "vmalloc: no room in the early vmlist for {} at {:#x}",
            caller,
            addr
        );
    }
}

/// Linux: vmalloc_init() — import the early areas and build the free tree over
/// `[VMALLOC_START, VMALLOC_END)`.
pub fn vmalloc_init() {
    VMAP_AREA_CACHEP.call_once(|| {
        kmem_cache_create(
            "vmap_area",
            core::mem::size_of::<VmapArea>() as u32,
            8,
            SLAB_PANIC,
            None,
        )
        .expect("vmalloc_init: cannot create the vmap_area cache")
    });
    let vmlist = VMLIST.lock();
    let mut v = VMAP.lock();
    v.ioremap_max_order = 30;
    let a = arch();
    if let Err(e) = v.vmalloc_init(&vmlist, a.vmalloc_start, a.vmalloc_end) {
        panic!("vmalloc_init failed: {:?}", e);
    }
}

/// Linux: is_vmalloc_addr().
pub fn is_vmalloc_addr(addr: u64) -> bool {
    let (start, end) = vmalloc_range();
    (start..end).contains(&addr)
}

/// Frees what vfree_atomic() queued (Linux: the vfree_deferred work, run here on the next
/// call from process context).
fn drain_vfree_deferred() {
    VFREE_DEFERRED.llist_del_all(|p| vfree(p.as_ptr() as u64));
}

/// Linux: __vmalloc_node_range() — a virtual area, order-0 pages from the buddy (on `nid`
/// if given), each mapped with `prot`; a guard page follows the area.
fn vmalloc_node_range(
    size: u64,
    gfp: GfpT,
    nid: Option<i32>,
    prot: PgProt,
    caller: &'static str,
) -> Option<VirtAddr> {
    drain_vfree_deferred();
    let pa = page_alloc()?;
    let vm = VMAP
        .lock()
        .get_vm_area_node(
            size,
            PAGE_SIZE,
            VM_ALLOC | super::VM_UNINITIALIZED,
            arch().vmalloc_start,
            arch().vmalloc_end,
            Some(caller),
            flush,
        )
        .ok()?;
    let nr = (vm.get_vm_area_size() / PAGE_SIZE) as usize;
    // The page array: from the buddy (Linux uses kmalloc or, when large, vmalloc itself).
    let array_bytes = (nr * core::mem::size_of::<*mut Page>()) as u64;
    let array_order = array_bytes
        .div_ceil(PAGE_SIZE)
        .next_power_of_two()
        .trailing_zeros();
    let array = pa.alloc_pages(GFP_KERNEL | __GFP_NOWARN, array_order);
    let Some(array) = array else {
        let _ = VMAP.lock().remove_vm_area(vm.addr.0, |_, _| {}, flush);
        return None;
    };
    let pages = pa.page_address(array).as_mut_ptr::<*mut Page>();
    let page_gfp = gfp | __GFP_NOWARN | if nid.is_some() { __GFP_THISNODE } else { 0 };
    // Linux: __vmalloc_area_node()'s failure path (a warning, then vfree of the area):
    // unmap and free the first `filled` pages, the array, the area.
    let undo = |filled: usize, what: &str| {
        pr_warn!("vmalloc error: size {}, failed to {}", size, what);
        (arch().vunmap_range_noflush)(vm.addr.0, vm.addr.0 + filled as u64 * PAGE_SIZE);
        for j in 0..filled {
            // SAFETY: entries 0..filled were written below.
            let p = unsafe { *pages.add(j) };
            pa.__free_pages(NonNull::new(p).expect("page"), 0);
        }
        pa.__free_pages(array, array_order);
        let _ = VMAP.lock().remove_vm_area(vm.addr.0, |_, _| {}, flush);
    };
    for i in 0..nr {
        let page = match nid {
            Some(n) => pa.alloc_pages_node(n, page_gfp, 0),
            None => pa.alloc_pages(page_gfp, 0),
        };
        let Some(page) = page else {
            undo(i, "allocate pages");
            return None;
        };
        // SAFETY: the array holds `nr` entries.
        unsafe { pages.add(i).write(page.as_ptr()) };
    }
    // Linux: then vmap_pages_range() of them all.
    // SAFETY: entries 0..nr were written above.
    let mut phys = |i: usize| pa.page_to_pfn(unsafe { *pages.add(i) }).phys();
    if !(arch().vmap_pages_range)(vm.addr.0, nr, &mut phys, prot) {
        // No page for a page table (Linux: vmap_pages_range() -ENOMEM).
        undo(nr, "map pages");
        return None;
    }
    let mut v = VMAP.lock();
    // SAFETY: `pages` holds `nr` pages we own, kept until vfree.
    unsafe { v.set_vm_pages(vm.addr.0, pages, nr as u32) };
    if let Some(vm) = v.find_vm_area_mut(vm.addr.0) {
        vm.flags &= !super::VM_UNINITIALIZED;
    }
    drop(v);
    crate::mm::kmemleak::kmemleak_vmalloc(vm.addr.0, size.next_multiple_of(PAGE_SIZE));
    Some(vm.addr)
}

/// Linux: vmalloc().
pub fn vmalloc(size: u64) -> Option<VirtAddr> {
    vmalloc_node_range(size, GFP_KERNEL, None, arch().page_kernel, "vmalloc")
}

/// Linux: vzalloc().
pub fn vzalloc(size: u64) -> Option<VirtAddr> {
    vmalloc_node_range(
        size,
        GFP_KERNEL | __GFP_ZERO,
        None,
        arch().page_kernel,
        "vzalloc",
    )
}

/// Linux: vmalloc_node() — pages from node `nid`.
pub fn vmalloc_node(size: u64, nid: i32) -> Option<VirtAddr> {
    vmalloc_node_range(
        size,
        GFP_KERNEL,
        Some(nid),
        arch().page_kernel,
        "vmalloc_node",
    )
}

/// Linux: vfree() — unmap (lazily: the TLB flush waits for the purge), free the pages.
pub fn vfree(addr: u64) {
    crate::mm::kmemleak::kmemleak_free(addr as *const u8);
    if addr == 0 {
        return;
    }
    let Some(pa) = page_alloc() else { return };
    let r = VMAP
        .lock()
        .remove_vm_area(addr, arch().vunmap_range_noflush, flush);
    let Ok(vm) = r else {
        crate::kernel::bug::warn(format_args!(
            "Trying to vfree() nonexistent vm area ({:#x})",
            addr
        ));
        return;
    };
    if vm.flags & VM_ALLOC == 0 {
        return;
    }
    let (pages, nr) = (vm.pages(), vm.nr_pages() as usize);
    if pages.is_null() {
        return;
    }
    for i in 0..nr {
        // SAFETY: the area's page array holds `nr` pages, ours since vmalloc.
        let p = unsafe { *pages.add(i) };
        pa.__free_pages(NonNull::new(p).expect("vmalloc page"), 0);
    }
    let array_bytes = (nr * core::mem::size_of::<*mut Page>()) as u64;
    let array_order = array_bytes
        .div_ceil(PAGE_SIZE)
        .next_power_of_two()
        .trailing_zeros();
    pa.__free_pages(pa.virt_to_page(VirtAddr(pages as u64)), array_order);
}

/// Linux: vfree_atomic() — from contexts that cannot unmap or sleep: queue, free later.
///
/// # Safety
/// `addr` is a live vmalloc area that nothing uses any more.
pub unsafe fn vfree_atomic(addr: u64) {
    if let Some(p) = NonNull::new(addr as *mut u8) {
        // SAFETY: per the contract the area's first word is ours to use as the list link.
        unsafe { VFREE_DEFERRED.llist_add(p) };
    }
}

/// Linux: vmap() — map the given pages contiguously; the caller keeps owning them.
pub fn vmap(pages: &[PagePtr], prot: PgProt) -> Option<VirtAddr> {
    let pa = page_alloc()?;
    let size = pages.len() as u64 * PAGE_SIZE;
    let vm = VMAP
        .lock()
        .get_vm_area_node(
            size,
            PAGE_SIZE,
            VM_MAP,
            arch().vmalloc_start,
            arch().vmalloc_end,
            Some("vmap"),
            flush,
        )
        .ok()?;
    let mut phys = |i: usize| pa.page_to_pfn(pages[i].as_ptr()).phys();
    if !(arch().vmap_pages_range)(vm.addr.0, pages.len(), &mut phys, prot) {
        // Linux: vmap() of a range it cannot map: vunmap and NULL.
        vunmap(vm.addr.0);
        return None;
    }
    Some(vm.addr)
}

/// Linux: vunmap().
pub fn vunmap(addr: u64) {
    let _ = VMAP
        .lock()
        .remove_vm_area(addr, arch().vunmap_range_noflush, flush);
}

/// Linux: ioremap() (arm64: ioremap_prot with PROT_DEVICE_nGnRE) — device memory at `phys`.
pub fn ioremap(phys: PhysAddr, size: u64) -> Option<VirtAddr> {
    let offset = phys.as_u64() & (PAGE_SIZE - 1);
    let base = phys.align_down(PAGE_SIZE);
    let size = crate::mm::addr::align_up(size + offset, PAGE_SIZE);
    let mut vm = VMAP
        .lock()
        .get_vm_area_node(
            size,
            1,
            VM_IOREMAP,
            arch().vmalloc_start,
            arch().vmalloc_end,
            Some("ioremap"),
            flush,
        )
        .ok()?;
    vm.phys_addr = base;
    if let Some(v) = VMAP.lock().find_vm_area_mut(vm.addr.0) {
        v.phys_addr = base;
    }
    if !(arch().ioremap_page_range)(vm.addr.0, base, size, arch().prot_device) {
        // Linux: ioremap_prot()'s free_vm_area() when ioremap_page_range() fails.
        vunmap(vm.addr.0);
        return None;
    }
    Some(vm.addr + offset)
}

/// Linux: iounmap().
pub fn iounmap(addr: u64) {
    vunmap(addr & !(PAGE_SIZE - 1));
}

/// Linux: vmalloc_to_page().
pub fn vmalloc_to_page(addr: u64) -> Option<PagePtr> {
    let a = arch();
    let phys = (a.kernel_va_to_phys)(addr)?;
    Some(page_alloc()?.virt_to_page((a.va)(phys)))
}

/// Linux: vread()'s cousin for the fault handler — is `addr` the guard page after a busy
/// vmalloc area? Returns the area. Uses try_lock: the fault may have hit inside vmalloc.
pub fn vmalloc_guard_area(addr: u64) -> Option<(u64, u64)> {
    if !is_vmalloc_addr(addr) {
        return None;
    }
    let v = VMAP.try_lock()?;
    let area = v.find_vmap_area(addr)?;
    let vm = area.vm?;
    let guard_start = area.va_start + vm.get_vm_area_size();
    (vm.flags & VM_NO_GUARD == 0 && addr >= guard_start && addr < area.va_end)
        .then_some((area.va_start, area.va_end))
}

/// Linux: /proc/vmallocinfo.
pub fn vmallocinfo(out: &mut dyn FnMut(&str)) {
    VMAP.lock().vmallocinfo(out);
}

/// The allocator's counters and an invariant check, for the tests.
pub fn vmap_stats() -> Result<super::VmapStats, &'static str> {
    VMAP.lock().vmap_check()
}

/// Purge the lazily freed areas now (one TLB flush for all of them).
pub fn purge_vmap_area_lazy() {
    VMAP.lock().purge_vmap_area_lazy(flush);
}

/// Pages the vmap_area kmem_cache holds in slabs.
pub fn vmap_area_cache_pages() -> u64 {
    match (VMAP_AREA_CACHEP.get(), crate::mm::slab_common::slub()) {
        (Some(c), Some(s)) => {
            let i = s.get_slabinfo(c);
            i.num_slabs << i.cache_order
        }
        _ => 0,
    }
}

static VMALLOCINFO_AT_BOOT: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(false);

/// `vmallocinfo`: print /proc/vmallocinfo at the end of boot (ours; Linux has procfs).
fn vmallocinfo_setup(_val: Option<&str>) -> crate::kernel::params::SetupResult {
    VMALLOCINFO_AT_BOOT.store(true, Ordering::Relaxed);
    Ok(())
}
crate::early_param!("vmallocinfo", vmallocinfo_setup);

/// Prints vmallocinfo if the `vmallocinfo` parameter asked for it.
pub fn print_vmallocinfo_if_asked() {
    if VMALLOCINFO_AT_BOOT.load(Ordering::Relaxed) {
        pr_info!("mm: vmallocinfo");
        vmallocinfo(&mut |l| pr_info!("{}", l));
    }
}

/// The global allocator's hooks for blocks above kmalloc's limit (Linux's kvmalloc).
pub fn kvmalloc_hooks() -> crate::mm::heap::VmallocHooks {
    fn va(size: usize, _align: usize) -> *mut u8 {
        // vmalloc areas are page aligned, which covers every Layout up to a page.
        vmalloc(size as u64).map_or(core::ptr::null_mut(), |a| a.as_mut_ptr())
    }
    fn vf(p: *mut u8) {
        vfree(p as u64)
    }
    fn is_va(p: *const u8) -> bool {
        is_vmalloc_addr(p as u64)
    }
    crate::mm::heap::VmallocHooks {
        vmalloc: va,
        vfree: vf,
        is_vmalloc_addr: is_va,
    }
}

// ---------------------------------------------------------------------------------------------
// vm_map_ram(): small mappings from per-CPU 4 MiB blocks (Linux: struct vmap_block,
// vmap_block_queue, vb_alloc, vb_free, new_vmap_block, free_vmap_block).

use super::{VMAP_BBMAP_BITS, VMAP_BLOCK_SIZE, VMAP_MAX_ALLOC};

/// Linux: struct vmap_block — one VMAP_BLOCK_SIZE area handed out front to back (`free`
/// pages left); freed pieces only count as `dirty`, and the whole block goes back to the
/// vmap space when every page is dirty.
#[derive(Clone, Copy)]
struct VmapBlock {
    va_start: u64,
    free: u64,
    dirty: u64,
    dirty_min: u64,
    dirty_max: u64,
}

/// Blocks one CPU can hold at once (a block leaves its queue when every page is dirty).
const VMAP_BLOCKS_PER_CPU: usize = 8;

/// Linux: struct vmap_block_queue — one CPU's blocks. Linux lists only the blocks with free
/// pages and keeps a lock in each block; here the queue holds all of the CPU's live blocks
/// and its one lock covers them (a block is only ever in its own CPU's queue).
pub struct VmapBlockQueue {
    blocks: [Option<VmapBlock>; VMAP_BLOCKS_PER_CPU],
}

/// Linux: DEFINE_PER_CPU(struct vmap_block_queue, vmap_block_queue). Lock: allocation
/// takes only this CPU's queue; a free (from any CPU) takes the owner's queue, found
/// through [`VMAP_BLOCKS`]. Nests outside `VMAP` (a block is created or given back under
/// it) and outside the page-table lock.
#[link_section = ".data..percpu"]
#[allow(non_upper_case_globals)]
static vmap_block_queue: SpinLock<VmapBlockQueue> = SpinLock::new(VmapBlockQueue {
    blocks: [None; VMAP_BLOCKS_PER_CPU],
});

fn vbq(cpu: usize) -> &'static SpinLock<VmapBlockQueue> {
    // SAFETY: `vmap_block_queue` is a `.data..percpu` static (a lock over plain data), and
    // `cpu` comes from smp_processor_id() or from VMAP_BLOCKS, so it is a possible CPU.
    unsafe { crate::mm::percpu::per_cpu_ptr(&vmap_block_queue, cpu) }
}

/// Live blocks, system-wide (Linux: the vmap_blocks xarray).
const MAX_VMAP_BLOCKS: usize = 64;

/// Linux: the vmap_blocks xarray, keyed by block address — which CPU's queue holds the
/// block at each address. Its lock nests inside a queue lock and takes no other.
static VMAP_BLOCKS: SpinLock<[Option<(u64, usize)>; MAX_VMAP_BLOCKS]> =
    SpinLock::new([None; MAX_VMAP_BLOCKS]);

fn get_order(size: u64) -> u32 {
    size.div_ceil(PAGE_SIZE)
        .next_power_of_two()
        .trailing_zeros()
}

/// Linux: vb_alloc() — `size` bytes from the first block with room in this CPU's queue,
/// else a new block (new_vmap_block()) put on it.
fn vb_alloc(size: u64, cpu: usize) -> Option<u64> {
    let pages = 1u64 << get_order(size);
    let mut q = vbq(cpu).lock();
    for vb in q.blocks.iter_mut().flatten() {
        if vb.free >= pages {
            let off = VMAP_BBMAP_BITS - vb.free;
            vb.free -= pages;
            return Some(vb.va_start + off * PAGE_SIZE);
        }
    }
    // Linux: new_vmap_block() — a VMAP_BLOCK_SIZE-aligned area of its own.
    let slot = q.blocks.iter().position(|b| b.is_none())?;
    let va = VMAP
        .lock()
        .alloc_vmap_area(
            VMAP_BLOCK_SIZE,
            VMAP_BLOCK_SIZE,
            arch().vmalloc_start,
            arch().vmalloc_end,
            flush,
        )
        .ok()?;
    let indexed = {
        let mut index = VMAP_BLOCKS.lock();
        index
            .iter_mut()
            .find(|e| e.is_none())
            .map(|e| *e = Some((va.va_start, cpu)))
            .is_some()
    };
    if !indexed {
        free_vmap_area_noflush(va.va_start);
        return None;
    }
    q.blocks[slot] = Some(VmapBlock {
        va_start: va.va_start,
        free: VMAP_BBMAP_BITS - pages,
        dirty: 0,
        dirty_min: VMAP_BBMAP_BITS,
        dirty_max: 0,
    });
    Some(va.va_start)
}

/// Linux: vb_free() — unmap, count the pages dirty, free the block when all are. Any CPU
/// may free: the block's queue is found through VMAP_BLOCKS.
fn vb_free(addr: u64, size: u64) {
    let pages = 1u64 << get_order(size);
    let owner = VMAP_BLOCKS
        .lock()
        .iter()
        .flatten()
        .find(|(va, _)| (*va..*va + VMAP_BLOCK_SIZE).contains(&addr))
        .map(|&(_, cpu)| cpu);
    let Some(cpu) = owner else {
        pr_err!("vm_unmap_ram: {:#x} is not in any vmap block", addr);
        return;
    };
    (arch().vunmap_range_noflush)(addr, addr + pages * PAGE_SIZE);
    let mut q = vbq(cpu).lock();
    let Some(slot) = q.blocks.iter().position(|b| {
        b.is_some_and(|b| (b.va_start..b.va_start + VMAP_BLOCK_SIZE).contains(&addr))
    }) else {
        pr_err!(
            "vm_unmap_ram: {:#x} is not in CPU{}'s vmap blocks",
            addr,
            cpu
        );
        return;
    };
    let vb = q.blocks[slot].as_mut().expect("found above");
    let off = (addr - vb.va_start) / PAGE_SIZE;
    vb.dirty_min = vb.dirty_min.min(off);
    vb.dirty_max = vb.dirty_max.max(off + pages);
    vb.dirty += pages;
    if vb.dirty == VMAP_BBMAP_BITS {
        // Linux: free_vmap_block() — out of the index, and the range joins the lazy list;
        // the purge flushes it.
        let start = vb.va_start;
        q.blocks[slot] = None;
        drop(q);
        if let Some(e) = VMAP_BLOCKS
            .lock()
            .iter_mut()
            .find(|e| e.is_some_and(|(va, _)| va == start))
        {
            *e = None;
        }
        free_vmap_area_noflush(start);
    }
}

/// Linux: vm_map_ram() — map `pages` contiguously; up to VMAP_MAX_ALLOC pages come from a
/// per-CPU vmap block (cheap, no tree operation), larger requests get their own area.
pub fn vm_map_ram(pages: &[PagePtr], nid: i32) -> Option<VirtAddr> {
    let _ = nid;
    let pa = page_alloc()?;
    let size = pages.len() as u64 * PAGE_SIZE;
    let addr = if pages.len() as u64 <= VMAP_MAX_ALLOC {
        vb_alloc(size, (arch().smp_processor_id)())?
    } else {
        VMAP.lock()
            .alloc_vmap_area(
                size,
                PAGE_SIZE,
                arch().vmalloc_start,
                arch().vmalloc_end,
                flush,
            )
            .ok()?
            .va_start
    };
    let mut phys = |i: usize| pa.page_to_pfn(pages[i].as_ptr()).phys();
    if !(arch().vmap_pages_range)(addr, pages.len(), &mut phys, arch().page_kernel) {
        // Linux: vm_map_ram() unmaps what it mapped and returns NULL.
        vm_unmap_ram(addr, pages.len());
        return None;
    }
    Some(VirtAddr(addr))
}

/// Linux: vm_unmap_ram().
pub fn vm_unmap_ram(addr: u64, count: usize) {
    let size = count as u64 * PAGE_SIZE;
    if count as u64 <= VMAP_MAX_ALLOC {
        vb_free(addr, size);
        return;
    }
    (arch().vunmap_range_noflush)(addr, addr + size);
    free_vmap_area_noflush(addr);
}

/// Live vmap blocks (for the tests).
pub fn nr_vmap_blocks() -> usize {
    VMAP_BLOCKS.lock().iter().flatten().count()
}
