//! Linux 6.1: mm/page_alloc.c's heap auto-initialisation — the `init_on_alloc=` /
//! `init_on_free=` early parameters (`early_init_on_alloc`, `early_init_on_free`), the
//! static keys `init_mem_debugging_and_hardening()` sets from them, `want_init_on_alloc()`,
//! `want_init_on_free()` and `kernel_init_pages()` — and init/main.c's `report_meminit()`.
//!
//! The switches are fields of each [`PageAlloc`] (Linux: the `init_on_alloc` /
//! `init_on_free` static keys), so that host tests, which build many allocators in parallel
//! threads, each choose their own; only the kernel's instance reads the command line.
//! SLUB gets the same two switches through its `SlubParams`.

use core::sync::atomic::{AtomicBool, Ordering};

use super::{PageAlloc, __GFP_ZERO};
use crate::kernel::params::{kstrtobool, SetupResult};
use crate::mm::gfp::GfpT;
use crate::mm::page::Page;

/// Linux: _init_on_alloc_enabled_early — on: Debian's 6.1 is built with
/// CONFIG_INIT_ON_ALLOC_DEFAULT_ON=y.
static INIT_ON_ALLOC_EARLY: AtomicBool = AtomicBool::new(true);
/// Linux: _init_on_free_enabled_early — off (CONFIG_INIT_ON_FREE_DEFAULT_ON is not set).
static INIT_ON_FREE_EARLY: AtomicBool = AtomicBool::new(false);

/// The value of `init_on_alloc=` / `init_on_free=` (Linux: kstrtobool(), whose -EINVAL for a
/// bare or malformed option makes parse_early_param() print "Malformed early option").
fn parse_bool(val: Option<&str>) -> Result<bool, &'static str> {
    kstrtobool(val.unwrap_or("")).ok_or("expected a boolean")
}

/// Linux: early_init_on_alloc().
fn early_init_on_alloc(val: Option<&str>) -> SetupResult {
    INIT_ON_ALLOC_EARLY.store(parse_bool(val)?, Ordering::Relaxed);
    Ok(())
}
crate::early_param!("init_on_alloc", early_init_on_alloc);

/// Linux: early_init_on_free().
fn early_init_on_free(val: Option<&str>) -> SetupResult {
    INIT_ON_FREE_EARLY.store(parse_bool(val)?, Ordering::Relaxed);
    Ok(())
}
crate::early_param!("init_on_free", early_init_on_free);

/// The two heap auto-initialisation switches (Linux: the `init_on_alloc` and `init_on_free`
/// static keys).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemInit {
    /// Zero memory as it is handed out.
    pub init_on_alloc: bool,
    /// Zero memory as it is freed.
    pub init_on_free: bool,
}

impl MemInit {
    /// Linux: init_mem_debugging_and_hardening() — the keys from the early parameters
    /// (this kernel has no page poisoning that would take precedence over them).
    pub fn from_boot_params() -> Self {
        Self {
            init_on_alloc: INIT_ON_ALLOC_EARLY.load(Ordering::Relaxed),
            init_on_free: INIT_ON_FREE_EARLY.load(Ordering::Relaxed),
        }
    }
}

impl PageAlloc<'_> {
    /// Sets the switches (Linux: init_mem_debugging_and_hardening()'s static_branch_enable /
    /// _disable). Before the allocator is shared: a switch that flips while pages move
    /// would leave freed pages unzeroed that an init_on_free allocation trusts.
    pub fn set_meminit(&self, m: MemInit) {
        self.init_on_alloc.store(m.init_on_alloc, Ordering::Relaxed);
        self.init_on_free.store(m.init_on_free, Ordering::Relaxed);
    }

    /// The switches.
    pub fn meminit(&self) -> MemInit {
        MemInit {
            init_on_alloc: self.init_on_alloc.load(Ordering::Relaxed),
            init_on_free: self.init_on_free.load(Ordering::Relaxed),
        }
    }

    /// Linux: want_init_on_alloc() — the switch, or `__GFP_ZERO`.
    #[inline]
    pub fn want_init_on_alloc(&self, gfp: GfpT) -> bool {
        self.init_on_alloc.load(Ordering::Relaxed) || gfp & __GFP_ZERO != 0
    }

    /// Linux: want_init_on_free().
    #[inline]
    pub fn want_init_on_free(&self) -> bool {
        self.init_on_free.load(Ordering::Relaxed)
    }

    /// Linux: post_alloc_hook()'s `init` — zero a new block unless init_on_free already
    /// zeroed it when it was freed (every way into the buddy zeroes then, the boot-time
    /// frees included), so `__GFP_ZERO` costs nothing then.
    #[inline]
    pub(super) fn post_alloc_init(&self, page: *mut Page, order: u32, gfp: GfpT) {
        if !self.want_init_on_free() && self.want_init_on_alloc(gfp) {
            self.kernel_init_pages(page, 1 << order);
        }
    }

    /// Linux: free_pages_prepare()'s / __free_pages_core()'s `init` — zero a block on its
    /// way into the buddy when init_on_free is on.
    #[inline]
    pub(super) fn free_init(&self, page: *mut Page, order: u32) {
        if self.want_init_on_free() {
            self.kernel_init_pages(page, 1 << order);
        }
    }

    /// Linux: kernel_init_pages() — clear `numpages` pages from `page` with the arch's
    /// clear_page() (needs the `phys_to_virt` hook).
    pub(super) fn kernel_init_pages(&self, page: *mut Page, numpages: u64) {
        let f = self
            .env
            .phys_to_virt
            .expect("kernel_init_pages: no phys_to_virt hook");
        let pfn = self.page_to_pfn(page);
        for i in 0..numpages {
            let va = f((pfn + i).phys());
            // SAFETY: PageAlloc::new's contract for the hook: the page is ours (being
            // allocated or freed) and mapped writable; clear_page's contract is the same.
            unsafe {
                match self.env.clear_page {
                    Some(clear_page) => clear_page(va),
                    None => core::ptr::write_bytes(va, 0, super::PAGE_SIZE as usize),
                }
            }
        }
    }
}

/// Linux: report_meminit() (init/main.c), printed by mm_init() before mem_init().
///
/// `stack:all(zero)`: Linux's word reflects CONFIG_INIT_STACK_ALL_ZERO (on in Debian's 6.1:
/// `-ftrivial-auto-var-init=zero`), which zeroes every automatic variable before its first
/// use. Rust gives the same guarantee by construction: safe
/// Rust never reads an uninitialised stack slot (the compiler rejects it; `MaybeUninit`
/// reads are `unsafe` and each is justified), so no stack memory reaches a reader
/// uninitialised — the property Linux's `all(zero)` announces.
pub fn report_meminit(m: MemInit) {
    let on_off = |b: bool| if b { "on" } else { "off" };
    crate::pr_info!(
        "mem auto-init: stack:{}, heap alloc:{}, heap free:{}",
        "all(zero)",
        on_off(m.init_on_alloc),
        on_off(m.init_on_free)
    );
    if m.init_on_free {
        crate::pr_info!("mem auto-init: clearing system memory may take some time...");
    }
}

#[cfg(test)]
mod tests;
