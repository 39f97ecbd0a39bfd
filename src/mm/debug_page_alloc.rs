//! debug_pagealloc's switch and the page allocator's debugging hooks. Mirrors Linux 6.1's
//! mm/debug_page_alloc.c (`debug_pagealloc=`, `_debug_pagealloc_enabled_early`, the
//! `_debug_pagealloc_enabled` static key) and include/linux/mm.h's
//! `debug_pagealloc_map_pages()` / `debug_pagealloc_unmap_pages()` over the arch's
//! `__kernel_map_pages()`.
//!
//! The page allocator calls the facilities that sit above it or in the arch (page_owner,
//! `__kernel_map_pages`) through [`PageDebugHooks`], which init fills in before mem_init()
//! (Linux: `init_mem_debugging_and_hardening()`), so the allocator imports neither. With
//! every hook empty the allocator's hot paths test one flag and go on (Linux: static keys).
//!
//! Not here: `debug_guardpage_minorder=` (guard pages between buddies).

use core::sync::atomic::{AtomicBool, Ordering};

use crate::kernel::params::{kstrtobool, SetupResult};
use crate::mm::addr::Pfn;
use crate::mm::gfp::GfpT;

/// Linux: _debug_pagealloc_enabled_early (CONFIG_DEBUG_PAGEALLOC_ENABLE_DEFAULT is off).
static DEBUG_PAGEALLOC_EARLY: AtomicBool = AtomicBool::new(false);

/// Linux: early_debug_pagealloc().
fn early_debug_pagealloc(val: Option<&str>) -> SetupResult {
    let on = kstrtobool(val.unwrap_or("")).ok_or("expected a boolean")?;
    DEBUG_PAGEALLOC_EARLY.store(on, Ordering::Relaxed);
    Ok(())
}
crate::early_param!("debug_pagealloc", early_debug_pagealloc);

/// Linux: debug_pagealloc_enabled() — what the command line asked (read by map_mem() to
/// build the linear map from pages, and by init to fill in the hook).
pub fn debug_pagealloc_enabled() -> bool {
    DEBUG_PAGEALLOC_EARLY.load(Ordering::Relaxed)
}

/// Linux: __kernel_map_pages() — map (`enable`) or unmap `numpages` pages from `pfn` in the
/// linear map, flushing the TLB after an unmap.
pub type KernelMapPages = fn(pfn: Pfn, numpages: u64, enable: bool);

/// The hooks the page allocator calls on allocation and free when a debugging facility is
/// on. Each is None when its facility is off.
#[derive(Clone, Copy, Default)]
pub struct PageDebugHooks {
    /// debug_pagealloc: the arch's `__kernel_map_pages()` (Linux: debug_pagealloc_map_pages
    /// in post_alloc_hook(), debug_pagealloc_unmap_pages in free_pages_prepare()).
    pub kernel_map_pages: Option<KernelMapPages>,
    /// page_owner: `set_page_owner(page, order, gfp)` (post_alloc_hook()).
    pub set_page_owner: Option<fn(pfn: Pfn, order: u32, gfp: GfpT)>,
    /// page_owner: `reset_page_owner(page, order)` (free_pages_prepare()).
    pub reset_page_owner: Option<fn(pfn: Pfn, order: u32)>,
    /// page_owner: `dump_page_owner(page)` (dump_page()).
    pub dump_page_owner: Option<fn(pfn: Pfn)>,
}

impl PageDebugHooks {
    /// Is any facility on?
    pub fn any(&self) -> bool {
        self.kernel_map_pages.is_some()
            || self.set_page_owner.is_some()
            || self.reset_page_owner.is_some()
            || self.dump_page_owner.is_some()
    }
}

/// The kernel's hooks, set by init before mem_init() (Linux:
/// init_mem_debugging_and_hardening()); page_alloc_init() hands them to the allocator.
static KERNEL_HOOKS: spin::Once<PageDebugHooks> = spin::Once::new();

/// Linux: init_mem_debugging_and_hardening()'s debug_pagealloc part — set once, before
/// the page allocator exists; later calls keep the first.
pub fn set_kernel_page_debug_hooks(hooks: PageDebugHooks) {
    KERNEL_HOOKS.call_once(|| hooks);
}

/// The hooks init set (all empty if none).
pub fn kernel_page_debug_hooks() -> PageDebugHooks {
    KERNEL_HOOKS.get().copied().unwrap_or_default()
}
