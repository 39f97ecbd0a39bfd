//! `/reserved-memory`: regions firmware keeps for itself or for devices (Linux 6.1:
//! `fdt_scan_reserved_mem()`, `__reserved_mem_check_root()` and `__reserved_mem_reserve_reg()`
//! in drivers/of/fdt.c; `__reserved_mem_alloc_size()` in drivers/of/of_reserved_mem.c).
//!
//! This layer only describes the regions; the memblock calls (reserve, mark nomap, allocate
//! the dynamic ones) belong to the memory code. Diagnostics follow Linux: a root whose cells
//! differ from the tree root's, or without `ranges`, makes the whole node ignored; a child with
//! a malformed property is skipped.

// Diagnostics are returned by value: no `alloc` to box them, and only on cold paths.
#![allow(clippy::result_large_err)]

use super::libfdt::{
    be32, Children, DiagQueue, Diagnostic, Fdt, Node, Problem, RegIter, Severity, StrList,
};
use super::PR_FDT;
use crate::include::cache::SMP_CACHE_BYTES;
use crate::mm::memblock::{MemType, Memblock, MEMBLOCK_ALLOC_ANYWHERE};
use crate::mm::PhysAddr;

/// Linux's pr_fmt for drivers/of/of_reserved_mem.c.
const PR_RMEM: &str = "OF: reserved mem: ";

/// How a reserved region is placed.
#[derive(Clone, Copy, Debug)]
pub enum ReservedMemKind<'a> {
    /// Fixed ranges from `reg` (Linux: __reserved_mem_reserve_reg()). Entries of size 0 are
    /// left in; Linux reports each as "failed to reserve memory", and so does
    /// [`fdt_scan_reserved_mem`].
    Static(RegIter<'a>),
    /// To be allocated (Linux: __reserved_mem_alloc_size()): `size` bytes, aligned to
    /// `alignment`, inside one of `alloc_ranges` if given.
    Dynamic {
        size: u64,
        alignment: Option<u64>,
        alloc_ranges: Option<RegIter<'a>>,
    },
}

/// One available child of `/reserved-memory`.
#[derive(Clone, Copy, Debug)]
pub struct ReservedMemNode<'a> {
    pub node: Node<'a>,
    /// `no-map`: keep it out of the linear map (Linux: memblock_mark_nomap()).
    pub no_map: bool,
    /// `reusable`: the OS may use it while the owner does not (CMA).
    pub reusable: bool,
    pub kind: ReservedMemKind<'a>,
}

impl<'a> ReservedMemNode<'a> {
    /// Linux: fdt_get_name() of the child (`uname` in Linux's messages).
    pub fn name(&self) -> &'a str {
        self.node.name()
    }

    pub fn compatible(&self) -> StrList<'a> {
        self.node.compatible()
    }
}

/// What the scan yields.
#[derive(Clone, Copy, Debug)]
pub enum ReservedMemItem<'a> {
    Region(ReservedMemNode<'a>),
    Diag(Diagnostic<'a>),
}

/// Iterator behind [`Fdt::reserved_memory`].
pub struct ReservedMemScan<'a> {
    fdt: Fdt<'a>,
    children: Option<Children<'a>>,
    pending: DiagQueue<'a>,
}

impl<'a> Fdt<'a> {
    /// Linux: fdt_scan_reserved_mem()'s walk: nothing without `/reserved-memory`; a single
    /// error if its format is unsupported; else every available child, described.
    pub fn reserved_memory(&self) -> ReservedMemScan<'a> {
        let mut scan = ReservedMemScan {
            fdt: *self,
            children: None,
            pending: DiagQueue::new(),
        };
        if let Some(node) = self.find_node("/reserved-memory") {
            match reserved_mem_check_root(self, node) {
                Ok(()) => scan.children = Some(node.children()),
                Err(d) => scan.pending.push(d),
            }
        }
        scan
    }

    /// The children of `/reserved-memory` that name a size instead of a `reg` (Linux:
    /// the ones __reserved_mem_alloc_size() allocates): each with its size, alignment and
    /// allowed ranges. Diagnostics are left to [`Fdt::reserved_memory`]'s full walk.
    pub fn dynamic_reserved_memory(&self) -> impl Iterator<Item = DynamicReservedMem<'a>> {
        self.reserved_memory().filter_map(|item| match item {
            ReservedMemItem::Region(
                region @ ReservedMemNode {
                    kind:
                        ReservedMemKind::Dynamic {
                            size,
                            alignment,
                            alloc_ranges,
                        },
                    ..
                },
            ) => Some(DynamicReservedMem {
                region,
                size,
                alignment,
                alloc_ranges,
            }),
            _ => None,
        })
    }
}

/// A dynamic `/reserved-memory` child ([`ReservedMemKind::Dynamic`], unpacked).
pub struct DynamicReservedMem<'a> {
    pub region: ReservedMemNode<'a>,
    pub size: u64,
    pub alignment: Option<u64>,
    pub alloc_ranges: Option<RegIter<'a>>,
}

/// Linux: __reserved_mem_check_root() — `#size-cells` and `#address-cells` present and equal
/// to the root's (the children are decoded with the root's cells), and `ranges` present.
pub fn reserved_mem_check_root<'a>(fdt: &Fdt<'a>, node: Node<'a>) -> Result<(), Diagnostic<'a>> {
    for (which, root) in [
        ("#size-cells", fdt.root_size_cells()),
        ("#address-cells", fdt.root_addr_cells()),
    ] {
        let value = node.property(which).and_then(|v| be32(v, 0));
        if value != Some(root) {
            return Err(node.diag(
                Severity::Error,
                which,
                Problem::RsvCellsMismatch { which, value, root },
            ));
        }
    }
    if !node.has_property("ranges") {
        return Err(node.diag(Severity::Error, "ranges", Problem::RsvNoRanges));
    }
    Ok(())
}

impl<'a> ReservedMemScan<'a> {
    fn describe(&self, node: Node<'a>) -> Result<Option<ReservedMemNode<'a>>, Diagnostic<'a>> {
        let no_map = node.has_property("no-map");
        let reusable = node.has_property("reusable");
        let region = |kind| {
            Ok(Some(ReservedMemNode {
                node,
                no_map,
                reusable,
                kind,
            }))
        };
        let root_reg = |prop: &'static str, data: &'a [u8]| {
            RegIter::new(data, self.fdt.root_addr_cells(), self.fdt.root_size_cells())
                .map_err(|p| node.diag(Severity::Error, prop, p))
        };
        // Linux: __reserved_mem_reserve_reg(); `reg` wins over `size`.
        if let Some(reg) = node.property("reg") {
            let regs = root_reg("reg", reg)?;
            if regs.trailing_bytes() != 0 {
                let p = Problem::RsvInvalidReg {
                    len: reg.len(),
                    entry_size: regs.entry_size(),
                };
                return Err(node.diag(Severity::Error, "reg", p));
            }
            return region(ReservedMemKind::Static(regs));
        }
        // Linux: __reserved_mem_alloc_size().
        let Some(size) = node.property("size") else {
            return Err(node.diag(Severity::Warning, "", Problem::RsvNoRegNoSize));
        };
        let (ac, sc) = (self.fdt.root_addr_cells(), self.fdt.root_size_cells());
        let number = |prop: &'static str,
                      v: &[u8],
                      (which, cells): (&'static str, u32),
                      bad: fn(usize, usize) -> Problem<'a>| {
            if v.len() != cells as usize * 4 {
                return Err(node.diag(Severity::Error, prop, bad(v.len(), cells as usize * 4)));
            }
            super::libfdt::of_read_number(v, cells).ok_or_else(|| {
                node.diag(
                    Severity::Error,
                    prop,
                    Problem::CellsUnsupported { which, cells },
                )
            })
        };
        let size = number("size", size, ("#size-cells", sc), |len, expected| {
            Problem::RsvInvalidSize { len, expected }
        })?;
        let alignment = match node.property("alignment") {
            Some(a) => Some(number(
                "alignment",
                a,
                ("#address-cells", ac),
                |len, expected| Problem::RsvInvalidAlignment { len, expected },
            )?),
            None => None,
        };
        let alloc_ranges = match node.property("alloc-ranges") {
            Some(r) => {
                let regs = root_reg("alloc-ranges", r)?;
                if regs.trailing_bytes() != 0 {
                    let p = Problem::RsvInvalidAllocRanges {
                        len: r.len(),
                        entry_size: regs.entry_size(),
                    };
                    return Err(node.diag(Severity::Error, "alloc-ranges", p));
                }
                Some(regs)
            }
            None => None,
        };
        region(ReservedMemKind::Dynamic {
            size,
            alignment,
            alloc_ranges,
        })
    }
}

impl<'a> Iterator for ReservedMemScan<'a> {
    type Item = ReservedMemItem<'a>;
    fn next(&mut self) -> Option<ReservedMemItem<'a>> {
        if let Some(d) = self.pending.pop() {
            return Some(ReservedMemItem::Diag(d));
        }
        loop {
            let node = self.children.as_mut()?.next()?;
            if !node.is_available() {
                continue;
            }
            match self.describe(node) {
                Ok(Some(r)) => return Some(ReservedMemItem::Region(r)),
                Ok(None) => {}
                Err(d) => return Some(ReservedMemItem::Diag(d)),
            }
        }
    }
}

/// Prints a diagnostic as Linux does — Linux's own line where it has one, then ours with the
/// node path and the detail.
fn print_rsv_diag(d: &Diagnostic) {
    let name = d.node.name();
    match d.problem {
        Problem::RsvCellsMismatch { .. } | Problem::RsvNoRanges => {
            pr_err!("{}Reserved memory: unsupported node format, ignoring\n", PR_FDT)
        }
        Problem::RsvInvalidReg { .. } => {
            pr_err!("{}Reserved memory: invalid reg property in '{}', skipping node.\n", PR_FDT, name)
        }
        Problem::RsvInvalidSize { .. } => pr_err!("{}invalid size property in '{}' node.\n", PR_RMEM, name),
        Problem::RsvInvalidAlignment { .. } => {
            pr_err!("{}invalid alignment property in '{}' node.\n", PR_RMEM, name)
        }
        Problem::RsvInvalidAllocRanges { .. } => {
            pr_err!("{}invalid alloc-ranges property in '{}', skipping node.\n", PR_RMEM, name)
        }
        Problem::RsvZeroSize { base, .. } => pr_err!(
            "{}Reserved memory: failed to reserve memory for node '{}': base {:#018x}, size 0 MiB\n",
            PR_FDT,
            name,
            base
        ),
        _ => {}
    }
    d.print(PR_FDT);
}

/// Linux: fdt_scan_reserved_mem() — calls `f` for every region and prints every problem.
/// Static entries of size 0 are reported here (Linux: "failed to reserve memory") and still
/// passed on inside the region, which the caller skips. Returns `false` if `/reserved-memory`
/// was absent or rejected (Linux: -ENODEV / -EINVAL).
pub fn fdt_scan_reserved_mem(fdt: &Fdt, mut f: impl FnMut(&ReservedMemNode)) -> bool {
    let Some(node) = fdt.find_node("/reserved-memory") else {
        return false;
    };
    if let Err(d) = reserved_mem_check_root(fdt, node) {
        print_rsv_diag(&d);
        return false;
    }
    for item in fdt.reserved_memory() {
        match item {
            ReservedMemItem::Region(r) => {
                if let ReservedMemKind::Static(regs) = r.kind {
                    for (entry, e) in regs.enumerate().filter(|(_, e)| e.size == 0) {
                        let p = Problem::RsvZeroSize {
                            entry,
                            base: e.base,
                        };
                        print_rsv_diag(&r.node.diag(Severity::Error, "reg", p));
                    }
                }
                f(&r);
            }
            ReservedMemItem::Diag(d) => print_rsv_diag(&d),
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Reserving the regions in memblock (Linux: drivers/of/fdt.c's __reserved_mem_reserve_reg()
// and drivers/of/of_reserved_mem.c's fdt_init_reserved_mem()).

/// Linux: early_init_dt_reserve_memory() — reserve, or for `no-map` take the range out of
/// the linear map; a `no-map` range over memory someone already reserved is refused.
fn early_init_dt_reserve_memory(
    mb: &mut Memblock,
    base: PhysAddr,
    size: u64,
    nomap: bool,
) -> Result<(), &'static str> {
    if nomap {
        if mb.overlaps_region(MemType::Memory, base, size) && mb.is_region_reserved(base, size) {
            return Err("already reserved");
        }
        return mb
            .mark_nomap(base, size)
            .map_err(|_| "out of memblock regions");
    }
    mb.reserve(base, size)
        .map_err(|_| "out of memblock regions")
}

/// Linux: early_init_dt_alloc_reserved_memory_arch().
fn alloc_reserved_memory(
    mb: &mut Memblock,
    size: u64,
    align: u64,
    start: u64,
    end: u64,
    nomap: bool,
) -> Option<PhysAddr> {
    let end = if end == 0 {
        MEMBLOCK_ALLOC_ANYWHERE
    } else {
        PhysAddr(end)
    };
    let align = if align == 0 { SMP_CACHE_BYTES } else { align };
    let base = mb.phys_alloc_range(size, align, PhysAddr(start), end)?;
    if nomap && mb.mark_nomap(base, size).is_err() {
        let _ = mb.phys_free(base, size);
        return None;
    }
    Some(base)
}

/// Reserves every `/reserved-memory` region: the static ones as the scan finds them
/// (Linux: __reserved_mem_reserve_reg()), then the dynamic ones, which are allocated
/// around the static ones (Linux: fdt_init_reserved_mem() → __reserved_mem_alloc_size()).
pub fn fdt_scan_and_reserve(fdt: &Fdt, mb: &mut Memblock) {
    const MIB: u64 = 1 << 20;
    let mut any_dynamic = false;
    fdt_scan_reserved_mem(fdt, |r| {
        let ReservedMemKind::Static(regs) = r.kind else {
            any_dynamic = true;
            return;
        };
        for e in regs.filter(|e| e.size > 0) {
            let (base, size) = (PhysAddr(e.base), e.size);
            match early_init_dt_reserve_memory(mb, base, size, r.no_map) {
                Ok(()) => pr_info!(
                    "{}Reserved memory: reserved region for node '{}': base {:#018x}, size {} MiB",
                    PR_FDT,
                    r.name(),
                    e.base,
                    size / MIB
                ),
                Err(why) => pr_err!(
                    "{}Reserved memory: failed to reserve memory for node '{}': base {:#018x}, size {} MiB ({})",
                    PR_FDT,
                    r.name(),
                    e.base,
                    size / MIB,
                    why
                ),
            }
        }
    });
    if !any_dynamic {
        return;
    }
    for DynamicReservedMem {
        region: r,
        size,
        alignment,
        alloc_ranges,
    } in fdt.dynamic_reserved_memory()
    {
        let align = alignment.unwrap_or(0);
        let mut base = None;
        match alloc_ranges {
            Some(ranges) => {
                for range in ranges {
                    base = alloc_reserved_memory(
                        mb,
                        size,
                        align,
                        range.base,
                        range.base.saturating_add(range.size),
                        r.no_map,
                    );
                    if base.is_some() {
                        break;
                    }
                }
            }
            None => base = alloc_reserved_memory(mb, size, align, 0, 0, r.no_map),
        }
        match base {
            Some(b) => pr_info!(
                "{}allocated memory for '{}' node: base {:#018x}, size {} MiB",
                PR_RMEM,
                r.name(),
                b.as_u64(),
                size / MIB
            ),
            None => pr_err!(
                "{}failed to allocate memory for node '{}': size {} MiB",
                PR_RMEM,
                r.name(),
                size / MIB
            ),
        }
    }
}

#[cfg(test)]
mod tests;
