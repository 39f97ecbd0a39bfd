//! The DMA API's global CMA area. Mirrors Linux 6.1's kernel/dma/contiguous.c:
//! `early_cma` (the `cma=SIZE[@BASE][-LIMIT]` parameter), `dma_contiguous_reserve` (called
//! from arm64's `bootmem_init()` with `arm64_dma_phys_limit`: CONFIG_CMA_SIZE_MBYTES=64, as
//! Debian builds it, below the DMA limit unless `cma=` says otherwise),
//! `dma_contiguous_reserve_area`, `dma_alloc_from_contiguous` and
//! `dma_release_from_contiguous`.
//!
//! It sits under mm/cma/ rather than kernel/dma/ because it declares a CMA area: `kernel/`
//! is below `mm` in the layer order (src/lib.rs), and this file imports `mm::cma`.

use core::sync::atomic::Ordering;

use super::{Cma, CmaAreas, CMA_AREAS};
use crate::kernel::params::{simple_strtoull, SetupResult};
use crate::mm::addr::PhysAddr;
use crate::mm::memblock::Memblock;
use crate::mm::page_alloc::{PageAlloc, PagePtr};

/// Linux: CONFIG_CMA_SIZE_MBYTES (Debian's arm64 config, with CONFIG_CMA_SIZE_SEL_MBYTES).
pub const CMA_SIZE_MBYTES: u64 = 64;
/// Linux: CONFIG_CMA_ALIGNMENT — the largest alignment (an order) a DMA allocation gets.
pub const CONFIG_CMA_ALIGNMENT: u32 = 8;

/// What `cma=` said (Linux: size_cmdline, base_cmdline, limit_cmdline).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmaCmdline {
    /// Linux: size_cmdline (-1, here None: no `cma=`).
    pub size: Option<u64>,
    pub base: u64,
    pub limit: u64,
}

impl CmaCmdline {
    /// No `cma=` given.
    pub const NONE: Self = Self {
        size: None,
        base: 0,
        limit: 0,
    };
}

/// The request dma_contiguous_reserve() makes of cma_declare_contiguous().
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmaRequest {
    pub size: u64,
    pub base: u64,
    pub limit: u64,
    pub fixed: bool,
}

static CMA_CMDLINE: spin::Mutex<CmaCmdline> = spin::Mutex::new(CmaCmdline::NONE);

/// Linux: the global area (dma_contiguous_default_area).
static DMA_CONTIGUOUS_DEFAULT_AREA: spin::Once<&'static Cma> = spin::Once::new();

/// Linux: memparse() (lib/cmdline.c) — simple_strtoull() in base 0 (`0x` hex, `0` octal),
/// then an optional K/M/G/T/P/E suffix; 0 and nothing consumed if no number starts `s`.
/// (`kernel::params::memparse` refuses what Linux reads as 0; `cma=` needs Linux's.)
fn memparse(s: &str) -> (u64, &str) {
    let (v, used) = simple_strtoull(s);
    let rest = &s[used..];
    match crate::kernel::params::memparse_suffix(rest) {
        Some(shift) => (v << shift, &rest[1..]),
        None => (v, rest),
    }
}

/// Linux: early_cma() — `cma=SIZE[@BASE][-LIMIT]` over what earlier `cma=` set: SIZE
/// always, BASE after `@` (then LIMIT is BASE + SIZE: a fixed area, unless `-LIMIT`
/// follows). A number that does not parse reads as 0, as Linux's memparse() reads it. Err
/// (`Config string not provided`, then Linux's `Malformed early option 'cma'`) for `cma`
/// without a value.
pub fn parse_cma(p: Option<&str>, cur: CmaCmdline) -> Result<CmaCmdline, &'static str> {
    let Some(p) = p else {
        pr_err!("cma: Config string not provided");
        return Err("Config string not provided");
    };
    let mut c = cur;
    let (size, rest) = memparse(p);
    c.size = Some(size);
    let Some(rest) = rest.strip_prefix('@') else {
        return Ok(c);
    };
    let (base, rest) = memparse(rest);
    c.base = base;
    match rest.strip_prefix('-') {
        None => c.limit = base.wrapping_add(size),
        Some(rest) => c.limit = memparse(rest).0,
    }
    Ok(c)
}

/// Linux: early_cma() — `cma=` (see parse_cma()).
fn early_cma(p: Option<&str>) -> SetupResult {
    let mut c = CMA_CMDLINE.lock();
    *c = parse_cma(p, *c)?;
    Ok(())
}
crate::early_param!("cma", early_cma);

/// Linux: min_not_zero().
fn min_not_zero(a: u64, b: u64) -> u64 {
    match (a, b) {
        (0, b) => b,
        (a, 0) => a,
        (a, b) => a.min(b),
    }
}

/// dma_contiguous_reserve()'s choice: `cma=` if given (its limit no higher than `limit`;
/// fixed when BASE + SIZE is the LIMIT), else CMA_SIZE_MBYTES below `limit`; None when
/// the size is 0 (`cma=0`: no area).
pub fn dma_contiguous_select(cmdline: CmaCmdline, limit: u64) -> Option<CmaRequest> {
    let req = match cmdline.size {
        Some(size) => CmaRequest {
            size,
            base: cmdline.base,
            limit: min_not_zero(cmdline.limit, limit),
            fixed: cmdline.base.wrapping_add(size) == cmdline.limit,
        },
        None => CmaRequest {
            size: CMA_SIZE_MBYTES << 20,
            base: 0,
            limit,
            fixed: false,
        },
    };
    (req.size != 0).then_some(req)
}

/// Linux: dma_contiguous_reserve_area() — declare the area named `reserved`.
pub fn dma_contiguous_reserve_area<'c>(
    areas: &'c CmaAreas,
    mb: &mut Memblock,
    req: CmaRequest,
) -> Result<&'c Cma, i32> {
    // (dma_contiguous_early_fixup() does nothing on arm64.)
    areas.cma_declare_contiguous(
        mb, req.base, req.size, req.limit, 0, 0, req.fixed, "reserved",
    )
}

/// Linux: dma_contiguous_reserve() — the global area, from `cma=` or the default size,
/// below `limit` (arm64: arm64_dma_phys_limit). Call once, from bootmem_init(), with
/// memblock unlocked.
pub fn dma_contiguous_reserve(limit: PhysAddr) {
    let cmdline = *CMA_CMDLINE.lock();
    let Some(req) = dma_contiguous_select(cmdline, limit.0) else {
        return;
    };
    if DMA_CONTIGUOUS_DEFAULT_AREA.get().is_some() {
        return;
    }
    let mut mb = crate::mm::memblock::MEMBLOCK.lock();
    if let Ok(cma) = dma_contiguous_reserve_area(&CMA_AREAS, &mut mb, req) {
        crate::mm::page_alloc::boot_totalcma_pages_add(cma.count.load(Ordering::Relaxed));
        DMA_CONTIGUOUS_DEFAULT_AREA.call_once(|| cma);
    }
}

/// Linux: dev_get_cma_area(NULL) — the global area, if one was reserved.
pub fn dma_contiguous_default_area() -> Option<&'static Cma> {
    DMA_CONTIGUOUS_DEFAULT_AREA.get().copied()
}

/// Linux: dma_alloc_from_contiguous() — `count` pages of the global area, aligned to
/// `2^align` pages (at most CONFIG_CMA_ALIGNMENT).
pub fn dma_alloc_from_contiguous(
    pa: &PageAlloc,
    count: u64,
    align: u32,
    no_warn: bool,
) -> Option<PagePtr> {
    let cma = dma_contiguous_default_area()?;
    cma.cma_alloc(pa, count, align.min(CONFIG_CMA_ALIGNMENT), no_warn)
}

/// Linux: dma_release_from_contiguous() — false if the pages are not the global area's.
pub fn dma_release_from_contiguous(pa: &PageAlloc, pages: PagePtr, count: u64) -> bool {
    dma_contiguous_default_area().is_some_and(|cma| cma.cma_release(pa, pages, count))
}
