//! page_owner: who allocated each page, and who freed it last. Mirrors Linux 6.1's
//! mm/page_owner.c: `page_owner=` (which asks the stack depot for early init), the
//! page_ext client `page_owner_ops`, `init_page_owner()` with the failure and early
//! stacks and `init_early_allocated_pages()`, `__set_page_owner()` on allocation and
//! `__reset_page_owner()` on free (each saving its stack in the stack depot),
//! `print_page_owner()` in `/sys/kernel/debug/page_owner`'s format, and
//! `__dump_page_owner()` for dump_page().
//!
//! The page allocator calls the hooks through `mm::debug_page_alloc::PageDebugHooks`
//! ([`page_debug_hooks`]); the stack and the clock come from the arch through
//! [`PageOwnerEnv`].
//!
//! Besides Linux's per-block report, [`print_page_owner_grouped`] sums the live
//! allocations by stack (what tools/vm/page_owner_sort does with Linux's output): `N times,
//! M pages` then the stack.
//!
//! Different from Linux: every task here is a CPU's idle task (pid 0, `swapper/N`); the
//! early scan counts a page with no reference (on a per-CPU list) as free, where Linux's
//! counts it as allocated early.

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::addr::Pfn;
use super::debug_page_alloc::PageDebugHooks;
use super::gfp::{gfp_migratetype, GfpNames, GfpT};
use super::page::PageFlagNames;
use super::page_alloc::PageAlloc;
use super::page_ext::{
    lookup_page_ext, page_ext_data, page_ext_nth, PageExt, PageExtOperations, PAGE_EXT_OWNER,
    PAGE_EXT_OWNER_ALLOCATED,
};
use crate::include::mmzone::MIGRATETYPE_NAMES;
use crate::include::pageblock_flags::PAGEBLOCK_ORDER;
use crate::kernel::params::{kstrtobool, SetupResult};
use crate::kernel::stackdepot::{
    stack_depot_print, stack_depot_save, stack_depot_snprint, stack_depot_want_early_init,
    DepotStackHandle,
};

/// Linux: PAGE_OWNER_STACK_DEPTH.
pub const PAGE_OWNER_STACK_DEPTH: usize = 16;
/// Linux: TASK_COMM_LEN.
const TASK_COMM_LEN: usize = 16;

/// Linux: struct page_owner.
#[repr(C)]
pub struct PageOwner {
    pub order: u16,
    pub last_migrate_reason: i16,
    pub gfp_mask: GfpT,
    pub handle: DepotStackHandle,
    pub free_handle: DepotStackHandle,
    pub ts_nsec: u64,
    pub free_ts_nsec: u64,
    pub comm: [u8; TASK_COMM_LEN],
    pub pid: i32,
    pub tgid: i32,
}

/// Linux: page_owner_enabled.
static PAGE_OWNER_ENABLED: AtomicBool = AtomicBool::new(false);
/// Linux: the page_owner_inited static key — set once page_ext is up.
static PAGE_OWNER_INITED: AtomicBool = AtomicBool::new(false);
/// Linux: failure_handle, early_handle. (Linux's dummy_handle marks a recursive call of
/// page_owner from its own stack saving; the depot here never allocates, so there is none.)
static FAILURE_HANDLE: AtomicU32 = AtomicU32::new(0);
static EARLY_HANDLE: AtomicU32 = AtomicU32::new(0);

/// Linux: early_page_owner_param().
fn early_page_owner_param(val: Option<&str>) -> SetupResult {
    let on = kstrtobool(val.unwrap_or("")).ok_or("expected a boolean")?;
    PAGE_OWNER_ENABLED.store(on, Ordering::Relaxed);
    if on {
        stack_depot_want_early_init();
    }
    Ok(())
}
crate::early_param!("page_owner", early_page_owner_param);

/// Is `page_owner=on`?
pub fn page_owner_enabled() -> bool {
    PAGE_OWNER_ENABLED.load(Ordering::Relaxed)
}

/// Linux: need_page_owner() — does page_ext need room for page_owner?
fn need_page_owner() -> bool {
    page_owner_enabled()
}

/// Linux: page_owner_ops.
pub static PAGE_OWNER_OPS: PageExtOperations = PageExtOperations::new(
    core::mem::size_of::<PageOwner>(),
    need_page_owner,
    Some(init_page_owner),
);

/// What page_owner needs from the arch: the running stack and a clock.
#[derive(Clone, Copy)]
pub struct PageOwnerEnv {
    /// Linux: stack_trace_save() — fill `entries` with return addresses, the caller of
    /// the function calling it first, `skip` more frames left out; the number filled.
    pub stack_trace_save: fn(entries: &mut [u64], skip: usize) -> usize,
    /// Linux: local_clock(), in ns.
    pub clock: fn() -> u64,
    /// Linux: smp_processor_id() (current is CPU N's idle task, `swapper/N`).
    pub cpu: fn() -> usize,
}

static ENV: spin::Once<PageOwnerEnv> = spin::Once::new();

/// The hooks the page allocator calls (set into it by init before mem_init()); empty when
/// page_owner is off. `env` is the arch's.
pub fn page_debug_hooks(env: PageOwnerEnv) -> PageDebugHooks {
    if !page_owner_enabled() {
        return PageDebugHooks::default();
    }
    ENV.call_once(|| env);
    PageDebugHooks {
        set_page_owner: Some(__set_page_owner),
        reset_page_owner: Some(__reset_page_owner),
        dump_page_owner: Some(__dump_page_owner),
        ..PageDebugHooks::default()
    }
}

/// Linux: get_page_owner() — page_owner's part of a page's page_ext.
fn get_page_owner(ext: &PageExt) -> *mut PageOwner {
    page_ext_data(ext, &PAGE_OWNER_OPS) as *mut PageOwner
}

/// Linux: save_stack() — this call's stack in the depot, leaving out the page_owner hook
/// itself (the caller's frame); the failure handle if the depot has no room.
#[inline(always)]
fn save_stack(env: &PageOwnerEnv) -> DepotStackHandle {
    let mut entries = [0u64; PAGE_OWNER_STACK_DEPTH];
    let n = (env.stack_trace_save)(&mut entries, 1);
    match stack_depot_save(&entries[..n]) {
        0 => FAILURE_HANDLE.load(Ordering::Relaxed),
        h => h,
    }
}

/// The stack of the function calling this (no frame left out), in the depot.
#[inline(always)]
fn save_own_stack() -> DepotStackHandle {
    let Some(env) = ENV.get() else {
        return 0;
    };
    let mut entries = [0u64; 4];
    let n = (env.stack_trace_save)(&mut entries, 0);
    stack_depot_save(&entries[..n])
}

/// Linux: register_failure_stack() — for a stack the depot had no room for. (This and
/// register_early_stack() each store their own handle, so the two have different code and
/// the compiler cannot fold them into one function: their stacks must differ.)
#[inline(never)]
fn register_failure_stack() {
    FAILURE_HANDLE.store(save_own_stack(), Ordering::Relaxed);
}

/// Linux: register_early_stack() — for pages allocated before page_owner was up.
#[inline(never)]
fn register_early_stack() {
    EARLY_HANDLE.store(save_own_stack(), Ordering::Relaxed);
}

/// Linux: __set_page_owner_handle().
fn set_page_owner_handle(ext: &'static PageExt, handle: DepotStackHandle, order: u32, gfp: GfpT) {
    let (clock, cpu) = ENV.get().map_or((0, 0), |e| ((e.clock)(), (e.cpu)()));
    for i in 0..1usize << order {
        let e = page_ext_nth(ext, i);
        // SAFETY: the page's page_owner data, ours while we allocate the block.
        let o = unsafe { &mut *get_page_owner(e) };
        o.handle = handle;
        o.order = order as u16;
        o.gfp_mask = gfp;
        o.last_migrate_reason = -1;
        o.pid = 0;
        o.tgid = 0;
        o.ts_nsec = clock;
        o.comm = comm(cpu);
        e.set(PAGE_EXT_OWNER);
        e.set(PAGE_EXT_OWNER_ALLOCATED);
    }
}

/// `swapper/N`, NUL-padded.
fn comm(cpu: usize) -> [u8; TASK_COMM_LEN] {
    let mut c = [0u8; TASK_COMM_LEN];
    let mut w = crate::kernel::printk::LineBuf::<TASK_COMM_LEN>::default();
    let _ = fmt::Write::write_fmt(&mut w, format_args!("swapper/{}", cpu));
    let s = w.as_str().as_bytes();
    let n = s.len().min(TASK_COMM_LEN - 1);
    c[..n].copy_from_slice(&s[..n]);
    c
}

fn comm_str(c: &[u8; TASK_COMM_LEN]) -> &str {
    let n = c.iter().position(|&b| b == 0).unwrap_or(TASK_COMM_LEN);
    core::str::from_utf8(&c[..n]).unwrap_or("?")
}

/// Linux: __set_page_owner() — the allocating stack, order, GFP mask and time, in each
/// page of the block.
fn __set_page_owner(pfn: Pfn, order: u32, gfp: GfpT) {
    let Some(ext) = lookup_page_ext(pfn) else {
        return;
    };
    let Some(env) = ENV.get() else {
        return;
    };
    let handle = save_stack(env);
    set_page_owner_handle(ext, handle, order, gfp);
}

/// Linux: __reset_page_owner() — the freeing stack and time; the page is no longer
/// allocated.
fn __reset_page_owner(pfn: Pfn, order: u32) {
    let Some(ext) = lookup_page_ext(pfn) else {
        return;
    };
    let Some(env) = ENV.get() else {
        return;
    };
    let handle = save_stack(env);
    let free_ts = (env.clock)();
    for i in 0..1usize << order {
        let e = page_ext_nth(ext, i);
        e.clear(PAGE_EXT_OWNER_ALLOCATED);
        // SAFETY: the page's page_owner data, ours while we free the block.
        let o = unsafe { &mut *get_page_owner(e) };
        o.free_handle = handle;
        o.free_ts_nsec = free_ts;
    }
}

/// Linux: init_page_owner() — page_ext's init callback: the special stacks, the pages
/// allocated before page_ext existed, then the hooks go live.
fn init_page_owner(pa: &PageAlloc) {
    register_failure_stack();
    register_early_stack();
    init_early_allocated_pages(pa);
    PAGE_OWNER_INITED.store(true, Ordering::Release);
}

/// Linux: init_early_allocated_pages() / init_pages_in_zone() — mark each page in use
/// that has no owner yet with the early stack.
fn init_early_allocated_pages(pa: &PageAlloc) {
    let early = EARLY_HANDLE.load(Ordering::Relaxed);
    for z in pa.zones().filter(|z| z.spanned_pages != 0) {
        let mut count = 0u64;
        let mut pfn = z.zone_start_pfn.0;
        while pfn < z.zone_end_pfn().0 {
            let Some(ext) = lookup_page_ext(Pfn(pfn)) else {
                pfn += 1;
                continue;
            };
            // SAFETY: the section has memory (it has a page_ext table), so its struct
            // pages exist and are initialised (page_ext_init runs after deferred init).
            let page = unsafe { &*pa.pfn_to_page(Pfn(pfn)) };
            if page.page_buddy() {
                pfn += 1
                    << page
                        .buddy_order()
                        .min(crate::include::mmzone::MAX_ORDER as u32 - 1);
                continue;
            }
            if page.page_reserved() || page.page_count() == 0 || ext.test(PAGE_EXT_OWNER) {
                pfn += 1;
                continue;
            }
            set_page_owner_handle(ext, early, 0, 0);
            count += 1;
            pfn += 1;
        }
        pr_info!(
            "Node {}, zone {:>8}: page owner found early allocated {} pages",
            z.node,
            z.name(),
            count
        );
    }
}

/// One allocated block, as read_page_owner() finds it.
pub struct OwnedBlock {
    pub pfn: Pfn,
    pub order: u32,
    pub gfp: GfpT,
    pub handle: DepotStackHandle,
    pub ts_nsec: u64,
    pub free_ts_nsec: u64,
    pub comm: [u8; TASK_COMM_LEN],
    pub pid: i32,
    pub tgid: i32,
}

/// Linux: read_page_owner()'s walk — each allocated block with an owner, head pages only,
/// in pfn order.
pub fn for_each_owned_block(pa: &PageAlloc, f: &mut dyn FnMut(&OwnedBlock)) {
    if !PAGE_OWNER_INITED.load(Ordering::Acquire) {
        return;
    }
    for z in pa.zones().filter(|z| z.spanned_pages != 0) {
        let mut pfn = z.zone_start_pfn.0;
        while pfn < z.zone_end_pfn().0 {
            let Some(ext) = lookup_page_ext(Pfn(pfn)) else {
                pfn += 1;
                continue;
            };
            if !ext.test(PAGE_EXT_OWNER) || !ext.test(PAGE_EXT_OWNER_ALLOCATED) {
                pfn += 1;
                continue;
            }
            // SAFETY: page_owner data of a page with a page_ext entry; read racily, as
            // Linux does (a concurrent free or allocation may change it).
            let o = unsafe { &*get_page_owner(ext) };
            let order = o.order as u32;
            // Tail pages of a block would count the block again.
            if pfn & ((1 << order) - 1) != 0 || o.handle == 0 {
                pfn += 1;
                continue;
            }
            f(&OwnedBlock {
                pfn: Pfn(pfn),
                order,
                gfp: o.gfp_mask,
                handle: o.handle,
                ts_nsec: o.ts_nsec,
                free_ts_nsec: o.free_ts_nsec,
                comm: o.comm,
                pid: o.pid,
                tgid: o.tgid,
            });
            pfn += 1 << order;
        }
    }
}

/// Linux: print_page_owner() — one block in `/sys/kernel/debug/page_owner`'s format.
pub fn print_page_owner(pa: &PageAlloc, b: &OwnedBlock, out: &mut dyn FnMut(fmt::Arguments)) {
    out(format_args!(
        "Page allocated via order {}, mask {:#x}({}), pid {}, tgid {} ({}), ts {} ns, free_ts {} ns",
        b.order,
        b.gfp,
        GfpNames(b.gfp),
        b.pid,
        b.tgid,
        comm_str(&b.comm),
        b.ts_nsec,
        b.free_ts_nsec
    ));
    let page_mt = gfp_migratetype(b.gfp) as usize;
    let block_mt = pa
        .zones()
        .find(|z| z.zone_spans_pfn(b.pfn))
        .map_or(0, |z| z.get_pageblock_migratetype(b.pfn)) as usize;
    // SAFETY: the block's head page, in a section with memory.
    let flags = unsafe { (*pa.pfn_to_page(b.pfn)).flags.load(Ordering::Relaxed) };
    out(format_args!(
        "PFN {} type {} Block {} type {} Flags {}",
        b.pfn.0,
        MIGRATETYPE_NAMES[page_mt],
        b.pfn.0 >> PAGEBLOCK_ORDER,
        MIGRATETYPE_NAMES[block_mt],
        PageFlagNames(flags)
    ));
    stack_depot_snprint(b.handle, out);
    out(format_args!(""));
}

/// The whole of `/sys/kernel/debug/page_owner`: every allocated block.
pub fn print_page_owner_all(pa: &PageAlloc, out: &mut dyn FnMut(fmt::Arguments)) {
    for_each_owned_block(pa, &mut |b| print_page_owner(pa, b, out));
}

/// Live allocations summed by stack: (handle, blocks, pages, orders seen as a bitmask),
/// most pages first.
pub fn page_owner_groups(pa: &PageAlloc) -> alloc::vec::Vec<(DepotStackHandle, u64, u64, u32)> {
    let mut groups: alloc::vec::Vec<(DepotStackHandle, u64, u64, u32)> = alloc::vec::Vec::new();
    for_each_owned_block(
        pa,
        &mut |b| match groups.iter_mut().find(|g| g.0 == b.handle) {
            Some(g) => {
                g.1 += 1;
                g.2 += 1 << b.order;
                g.3 |= 1 << b.order;
            }
            None => groups.push((b.handle, 1, 1 << b.order, 1 << b.order)),
        },
    );
    groups.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.cmp(&a.1)));
    groups
}

/// The live allocations grouped by stack (tools/vm/page_owner_sort's `N times, M pages:`
/// blocks, with the orders seen), most pages first.
pub fn print_page_owner_grouped(pa: &PageAlloc, out: &mut dyn FnMut(fmt::Arguments)) {
    let groups = page_owner_groups(pa);
    let (blocks, pages) = groups.iter().fold((0, 0), |a, g| (a.0 + g.1, a.1 + g.2));
    out(format_args!(
        "page_owner: {} allocated blocks ({} pages) from {} stacks",
        blocks,
        pages,
        groups.len()
    ));
    for (handle, times, pages, orders) in groups {
        out(format_args!(
            "{} times, {} pages, order {}:",
            times,
            pages,
            crate::kernel::printk::BitmapList(|o| orders & (1 << o) != 0, 11)
        ));
        stack_depot_snprint(handle, out);
        out(format_args!(""));
    }
}

/// Linux: __dump_page_owner() — dump_page()'s page_owner lines.
fn __dump_page_owner(pfn: Pfn) {
    let Some(ext) = lookup_page_ext(pfn) else {
        pr_alert!("There is not page extension available.");
        return;
    };
    if !ext.test(PAGE_EXT_OWNER) {
        pr_alert!("page_owner info is not present (never set?)");
        return;
    }
    if ext.test(PAGE_EXT_OWNER_ALLOCATED) {
        pr_alert!("page_owner tracks the page as allocated");
    } else {
        pr_alert!("page_owner tracks the page as freed");
    }
    // SAFETY: the page's page_owner data, read for a report.
    let o = unsafe { &*get_page_owner(ext) };
    pr_alert!(
        "page last allocated via order {}, migratetype {}, gfp_mask {:#x}({}), pid {}, tgid {} ({}), ts {}, free_ts {}",
        o.order,
        MIGRATETYPE_NAMES[gfp_migratetype(o.gfp_mask) as usize],
        o.gfp_mask,
        GfpNames(o.gfp_mask),
        o.pid,
        o.tgid,
        comm_str(&o.comm),
        o.ts_nsec,
        o.free_ts_nsec
    );
    if o.handle == 0 {
        pr_alert!("page_owner allocation stack trace missing");
    } else {
        stack_depot_print(o.handle);
    }
    if o.free_handle == 0 {
        pr_alert!("page_owner free stack trace missing");
    } else {
        pr_alert!("page last free stack trace:");
        stack_depot_print(o.free_handle);
    }
}

#[cfg(test)]
mod tests;
