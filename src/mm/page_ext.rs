//! Per-page extension data, outside `struct page`. Mirrors Linux 6.1's mm/page_ext.c for
//! SPARSEMEM (arm64's model): `page_ext_operations` (each client's size, `need()` and
//! `init()`), `invoke_need_callbacks()` giving each client its offset in an entry,
//! `page_ext_init()` allocating one table per present section from the page allocator
//! once deferred struct-page init is done (Linux calls it from kernel_init_freeable() after
//! page_alloc_init_late()) and printing `allocated N bytes of page_ext`, then
//! `invoke_init_callbacks()`; and `lookup_page_ext()`.
//!
//! An entry is a `struct page_ext` (its flags word) followed by each client's data; the
//! clients (page_owner) find theirs at their offset. A lookup before page_ext_init() has
//! run, or for a section without memory, finds nothing — callers (page_owner's hooks) skip
//! such pages, as Linux's do.
//!
//! Different from Linux: the tables come from `alloc_pages_exact()` on any node (Linux:
//! `alloc_pages_exact_nid()` on the section's node); the per-section pointers are an array
//! over the sections of the memory map (Linux keeps one in each `mem_section`).

use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use super::addr::{Pfn, PAGE_SIZE};
use super::free_area_init::{PAGES_PER_SECTION, PFN_SECTION_SHIFT};
use super::gfp::{__GFP_NOWARN, __GFP_ZERO, GFP_KERNEL};
use super::page_alloc::PageAlloc;

/// Linux: enum page_ext_flags.
pub const PAGE_EXT_OWNER: u32 = 0;
/// Linux: PAGE_EXT_OWNER_ALLOCATED.
pub const PAGE_EXT_OWNER_ALLOCATED: u32 = 1;

/// Linux: struct page_ext — the flags word at the start of each entry.
#[repr(C)]
pub struct PageExt {
    pub flags: AtomicU64,
}

impl PageExt {
    /// Linux: test_bit(bit, &page_ext->flags).
    pub fn test(&self, bit: u32) -> bool {
        self.flags.load(Ordering::Relaxed) & (1 << bit) != 0
    }
    /// Linux: __set_bit().
    pub fn set(&self, bit: u32) {
        self.flags.fetch_or(1 << bit, Ordering::Relaxed);
    }
    /// Linux: __clear_bit().
    pub fn clear(&self, bit: u32) {
        self.flags.fetch_and(!(1 << bit), Ordering::Relaxed);
    }
}

/// Linux: struct page_ext_operations — a client of page_ext.
pub struct PageExtOperations {
    /// Bytes of client data in each entry.
    pub size: usize,
    /// Is the client on (from its boot parameter)?
    pub need: fn() -> bool,
    /// Called once the tables exist (Linux: ops->init).
    pub init: Option<fn(&PageAlloc)>,
    /// The data's offset in an entry (set by invoke_need_callbacks()).
    pub offset: AtomicUsize,
}

impl PageExtOperations {
    pub const fn new(size: usize, need: fn() -> bool, init: Option<fn(&PageAlloc)>) -> Self {
        Self {
            size,
            need,
            init,
            offset: AtomicUsize::new(0),
        }
    }
}

/// The tables: one pointer per section of the memory map (null: no memory there), and the
/// size of an entry.
struct PageExtTables {
    sections: &'static [AtomicPtr<u8>],
    entry_size: usize,
}

static PAGE_EXT: spin::Once<PageExtTables> = spin::Once::new();

/// Linux: invoke_need_callbacks() — the offsets of the clients that are on, and the entry
/// size (0: nobody needs page_ext).
fn invoke_need_callbacks(ops: &[&PageExtOperations]) -> usize {
    let mut size = core::mem::size_of::<PageExt>();
    let mut any = false;
    for o in ops.iter().filter(|o| (o.need)()) {
        o.offset.store(size, Ordering::Relaxed);
        size += (o.size + 7) & !7;
        any = true;
    }
    if any {
        size
    } else {
        0
    }
}

/// Linux: page_ext_init() — if a client needs it, a table for each section with memory
/// (`section_present` says which), then each client's init(). Call once, after deferred
/// struct-page init (every struct page is initialised).
pub fn page_ext_init(
    pa: &PageAlloc,
    ops: &[&PageExtOperations],
    section_present: &dyn Fn(Pfn) -> bool,
) {
    let entry_size = invoke_need_callbacks(ops);
    if entry_size == 0 || PAGE_EXT.get().is_some() {
        return;
    }
    let end_pfn = pa.zones().map(|z| z.zone_end_pfn().0).max().unwrap_or(0);
    let nr_sections = (end_pfn as usize).div_ceil(PAGES_PER_SECTION as usize);
    let sections: alloc::vec::Vec<AtomicPtr<u8>> = (0..nr_sections)
        .map(|_| AtomicPtr::new(core::ptr::null_mut()))
        .collect();
    let sections: &'static [AtomicPtr<u8>] = alloc::vec::Vec::leak(sections);
    let table_size = entry_size as u64 * PAGES_PER_SECTION;
    let mut total_usage = 0u64;
    for z in pa.zones().filter(|z| z.present_pages != 0) {
        let mut pfn = z.zone_start_pfn.0 & !(PAGES_PER_SECTION - 1);
        while pfn < z.zone_end_pfn().0 {
            let nr = (pfn >> PFN_SECTION_SHIFT) as usize;
            // Linux: init_section_page_ext() — a section two zones share gets one table.
            if sections[nr].load(Ordering::Relaxed).is_null() && section_present(Pfn(pfn)) {
                let Some(va) =
                    pa.alloc_pages_exact(table_size, GFP_KERNEL | __GFP_NOWARN | __GFP_ZERO)
                else {
                    // Linux: page_ext_init()'s oom: panic("Out of memory").
                    panic!("Out of memory");
                };
                sections[nr].store(va.0 as *mut u8, Ordering::Relaxed);
                total_usage += table_size.div_ceil(PAGE_SIZE) * PAGE_SIZE;
            }
            pfn += PAGES_PER_SECTION;
        }
    }
    PAGE_EXT.call_once(|| PageExtTables {
        sections,
        entry_size,
    });
    pr_info!("allocated {} bytes of page_ext", total_usage);
    // Linux: invoke_init_callbacks().
    for o in ops.iter().filter(|o| (o.need)()) {
        if let Some(init) = o.init {
            init(pa);
        }
    }
}

/// Linux: lookup_page_ext() — the entry of `pfn`, if page_ext is up and its section has
/// a table.
#[inline]
pub fn lookup_page_ext(pfn: Pfn) -> Option<&'static PageExt> {
    let t = PAGE_EXT.get()?;
    let base = t
        .sections
        .get((pfn.0 >> PFN_SECTION_SHIFT) as usize)?
        .load(Ordering::Relaxed);
    if base.is_null() {
        return None;
    }
    let idx = (pfn.0 & (PAGES_PER_SECTION - 1)) as usize;
    // SAFETY: the section's table holds PAGES_PER_SECTION entries of entry_size bytes,
    // 8-byte aligned (entry_size is a multiple of 8, the table page-aligned), never freed.
    Some(unsafe { &*(base.add(idx * t.entry_size) as *const PageExt) })
}

/// Linux: page_ext_next() for a block — the entry `i` pages after `ext` (a block never
/// crosses a section, so it is in the same table).
#[inline]
pub fn page_ext_nth(ext: &'static PageExt, i: usize) -> &'static PageExt {
    let size = PAGE_EXT.get().map_or(0, |t| t.entry_size);
    // SAFETY: as lookup_page_ext(): the caller's block lies in one section's table.
    unsafe { &*((ext as *const PageExt as *const u8).add(i * size) as *const PageExt) }
}

/// A client's data in an entry (Linux: `(void *)page_ext + ops->offset`).
#[inline]
pub fn page_ext_data(ext: &PageExt, ops: &PageExtOperations) -> *mut u8 {
    (ext as *const PageExt as *mut u8).wrapping_add(ops.offset.load(Ordering::Relaxed))
}
