//! The early scans of the flattened device tree, before anything is unflattened (Linux:
//! drivers/of/fdt.c): memory nodes into memblock (early_init_dt_scan_memory,
//! early_init_dt_add_memory_arch), `/chosen` (bootargs, initrd, stdout-path, elfcorehdr,
//! `linux,usable-memory-range`), and the reservations (/memreserve/, `/reserved-memory` through
//! reserved_mem.rs, the blob itself). The tree itself is read through [`super::libfdt`].

// Without `alloc` a diagnostic cannot be boxed; it is returned by value on cold paths only.
#![allow(clippy::result_large_err)]

use super::libfdt::{
    c_str, of_read_number, Children, DiagQueue, Diagnostic, Fdt, MemReserve, Node, Problem,
    RegIter, Severity,
};
use super::PR_FDT;
use crate::mm::addr::PhysAddr;
use crate::mm::memblock::{MemType, Memblock};

/// Linux: MAX_USABLE_RANGES (only the first two `linux,usable-memory-range` entries count).
pub const MAX_USABLE_RANGES: usize = 2;

// ---------------------------------------------------------------------------------------------
// Memory nodes.

/// One usable range of a memory node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRange<'a> {
    /// The memory node (`.name()`, `.path()`).
    pub node: Node<'a>,
    pub base: PhysAddr,
    pub size: u64,
    /// Linux: the `hotpluggable` flag (memblock_mark_hotplug()).
    pub hotpluggable: bool,
    /// `numa-node-id`, if present and well-formed.
    pub nid: Option<u32>,
}

impl MemoryRange<'_> {
    /// Exclusive end (saturating at 2^64 - 1 for a range that ends exactly at 2^64).
    pub fn end(&self) -> PhysAddr {
        PhysAddr(self.base.0.saturating_add(self.size))
    }
}

/// What the memory scan yields: a range, or a problem with a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryScanItem<'a> {
    Range(MemoryRange<'a>),
    Diag(Diagnostic<'a>),
}

struct MemCursor<'a> {
    node: Node<'a>,
    prop: &'static str,
    regs: RegIter<'a>,
    entry: usize,
    hotpluggable: bool,
    nid: Option<u32>,
}

/// Iterator behind [`Fdt::memory_scan`].
pub struct MemoryScan<'a> {
    fdt: Fdt<'a>,
    children: Children<'a>,
    pending: DiagQueue<'a>,
    cur: Option<MemCursor<'a>>,
}

impl<'a> Fdt<'a> {
    /// Linux: early_init_dt_scan_memory()'s walk, as an iterator: every child of the root
    /// (any name) with `device_type = "memory"` and an available `status`; its
    /// `linux,usable-memory`, else `reg`, decoded with the root's cells; zero-size entries are
    /// skipped with a warning, undecodable ones reported.
    pub fn memory_scan(&self) -> MemoryScan<'a> {
        MemoryScan {
            fdt: *self,
            children: self.root().children(),
            pending: DiagQueue::new(),
            cur: None,
        }
    }

    /// Just the ranges of [`Fdt::memory_scan`], diagnostics dropped.
    pub fn memory_ranges(&self) -> impl Iterator<Item = MemoryRange<'a>> {
        self.memory_scan().filter_map(|i| match i {
            MemoryScanItem::Range(r) => Some(r),
            MemoryScanItem::Diag(_) => None,
        })
    }
}

impl<'a> MemoryScan<'a> {
    fn start_node(&mut self, node: Node<'a>) {
        // strcmp() semantics: the value up to its NUL must be exactly "memory".
        if node.property("device_type").map(c_str) != Some(b"memory".as_slice()) {
            return;
        }
        if !node.is_available() {
            return;
        }
        let (prop, data) = match node.property("linux,usable-memory") {
            Some(d) => ("linux,usable-memory", d),
            None => match node.property("reg") {
                Some(d) => ("reg", d),
                None => {
                    self.pending
                        .push(node.diag(Severity::Warning, "reg", Problem::NoReg));
                    return;
                }
            },
        };
        let regs = match self.fdt.root_reg(data) {
            Ok(r) => r,
            Err(p) => {
                self.pending.push(node.diag(Severity::Error, prop, p));
                return;
            }
        };
        if regs.trailing_bytes() != 0 {
            let p = Problem::TrailingBytes {
                len: data.len(),
                entry_size: regs.entry_size(),
            };
            self.pending.push(node.diag(Severity::Warning, prop, p));
        }
        let nid = node.prop_u32("numa-node-id").unwrap_or_else(|d| {
            self.pending.push(Diagnostic {
                severity: Severity::Warning,
                ..d
            });
            None
        });
        let hotpluggable = node.has_property("hotpluggable");
        self.cur = Some(MemCursor {
            node,
            prop,
            regs,
            entry: 0,
            hotpluggable,
            nid,
        });
    }
}

impl<'a> Iterator for MemoryScan<'a> {
    type Item = MemoryScanItem<'a>;
    fn next(&mut self) -> Option<MemoryScanItem<'a>> {
        loop {
            if let Some(d) = self.pending.pop() {
                return Some(MemoryScanItem::Diag(d));
            }
            if let Some(cur) = &mut self.cur {
                if let Some(e) = cur.regs.next() {
                    let entry = cur.entry;
                    cur.entry += 1;
                    let n = cur.node;
                    if e.size == 0 {
                        let p = Problem::ZeroSize {
                            entry,
                            base: e.base,
                        };
                        return Some(MemoryScanItem::Diag(n.diag(Severity::Warning, cur.prop, p)));
                    }
                    if e.base.checked_add(e.size - 1).is_none() {
                        let p = Problem::RangeOverflow {
                            entry,
                            base: e.base,
                            size: e.size,
                        };
                        return Some(MemoryScanItem::Diag(n.diag(Severity::Error, cur.prop, p)));
                    }
                    return Some(MemoryScanItem::Range(MemoryRange {
                        node: n,
                        base: PhysAddr(e.base),
                        size: e.size,
                        hotpluggable: cur.hotpluggable,
                        nid: cur.nid,
                    }));
                }
                self.cur = None;
            }
            let node = self.children.next()?;
            self.start_node(node);
        }
    }
}

/// Linux: early_init_dt_scan_memory() — calls `add` for every range (where Linux calls
/// early_init_dt_add_memory_arch() and, for `hotpluggable`, memblock_mark_hotplug()) and
/// prints every diagnostic. Returns whether any memory was found.
pub fn early_init_dt_scan_memory(fdt: &Fdt, mut add: impl FnMut(&MemoryRange)) -> bool {
    let mut found = false;
    for item in fdt.memory_scan() {
        match item {
            MemoryScanItem::Range(r) => {
                add(&r);
                found = true;
            }
            MemoryScanItem::Diag(d) => d.print(PR_FDT),
        }
    }
    found
}

/// Linux: early_init_fdt_reserve_self() — the range the blob itself occupies, given the
/// physical address the kernel found it at (Linux reserves `__pa(initial_boot_params)`,
/// `fdt_totalsize()` bytes).
pub fn early_init_fdt_reserve_self(fdt: &Fdt, dtb_phys: PhysAddr) -> MemReserve {
    MemReserve {
        base: dtb_phys,
        size: fdt.totalsize() as u64,
    }
}

// ---------------------------------------------------------------------------------------------
// /chosen.

/// The `/chosen` node.
#[derive(Clone, Copy, Debug)]
pub struct Chosen<'a> {
    pub node: Node<'a>,
}

/// The initrd the bootloader loaded (Linux: phys_initrd_start, phys_initrd_size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Initrd {
    pub start: PhysAddr,
    pub end: PhysAddr,
}

impl Initrd {
    pub fn size(&self) -> u64 {
        self.end - self.start
    }
}

/// The console `/chosen/stdout-path` names (Linux: early_init_dt_scan_chosen_stdout()).
#[derive(Clone, Copy, Debug)]
pub struct Stdout<'a> {
    /// The path or alias, options stripped.
    pub path: &'a str,
    /// What followed `:` (`115200n8`).
    pub options: Option<&'a str>,
    pub node: Node<'a>,
}

impl<'a> Stdout<'a> {
    /// The console's first `reg` address as a CPU physical address.
    pub fn base(&self) -> Result<Option<PhysAddr>, Diagnostic<'a>> {
        self.node.translated_reg_base()
    }
}

impl<'a> Fdt<'a> {
    /// `/chosen`, else `/chosen@0` (Linux: early_init_dt_scan_chosen()).
    pub fn chosen(&self) -> Option<Chosen<'a>> {
        // fdt_path_offset("/chosen") also matches `chosen@<unit>`, which covers `/chosen@0`.
        let node = self.root().child("chosen")?;
        Some(Chosen { node })
    }

    /// Linux: early_init_dt_scan_chosen_stdout()'s lookup: `stdout-path` (else
    /// `linux,stdout-path`) up to `:`, resolved as a path or an alias. `Ok(None)` without
    /// /chosen or the property; an error if it names no node.
    pub fn stdout(&self) -> Result<Option<Stdout<'a>>, Diagnostic<'a>> {
        let Some(chosen) = self.chosen() else {
            return Ok(None);
        };
        let (prop, value) = match chosen.node.property("stdout-path") {
            Some(v) => ("stdout-path", v),
            None => match chosen.node.property("linux,stdout-path") {
                Some(v) => ("linux,stdout-path", v),
                None => return Ok(None),
            },
        };
        let s = core::str::from_utf8(c_str(value))
            .map_err(|_| chosen.node.diag(Severity::Error, prop, Problem::NotString))?;
        if s.is_empty() {
            return Ok(None);
        }
        let (path, options) = match s.split_once(':') {
            Some((p, o)) => (p, Some(o)),
            None => (s, None),
        };
        match self.find_node(path) {
            Some(node) => Ok(Some(Stdout {
                path,
                options,
                node,
            })),
            None => Err(chosen
                .node
                .diag(Severity::Warning, prop, Problem::PathNotFound(path))),
        }
    }
}

impl<'a> Chosen<'a> {
    /// Linux: the `bootargs` part of early_init_dt_scan_chosen(): text up to the first NUL;
    /// absent or empty is `Ok(None)`.
    pub fn bootargs(&self) -> Result<Option<&'a str>, Diagnostic<'a>> {
        let Some(v) = self.node.property("bootargs") else {
            return Ok(None);
        };
        let s = core::str::from_utf8(c_str(v)).map_err(|_| {
            self.node
                .diag(Severity::Error, "bootargs", Problem::NotString)
        })?;
        Ok(if s.is_empty() { None } else { Some(s) })
    }

    /// `stdout-path` as written, options included.
    pub fn stdout_path(&self) -> Option<&'a str> {
        self.node
            .prop_str("stdout-path")
            .or_else(|| self.node.prop_str("linux,stdout-path"))
    }

    fn initrd_bound(&self, prop: &'static str) -> Result<Option<u64>, Diagnostic<'a>> {
        let Some(v) = self.node.property(prop) else {
            return Ok(None);
        };
        // Linux reads of_read_number(prop, len/4): 1 or 2 cells make sense, anything else
        // would be silently truncated or read as 0.
        match v.len() {
            4 | 8 => Ok(of_read_number(v, (v.len() / 4) as u32)),
            len => Err(self.node.diag(
                Severity::Error,
                prop,
                Problem::BadLength {
                    len,
                    expected: "4 or 8 (1 or 2 cells)",
                },
            )),
        }
    }

    /// Linux: early_init_dt_check_for_initrd() — `linux,initrd-start`/`-end`, 1 or 2 cells
    /// each. `Ok(None)` when there is no initrd; a lone start or start > end is reported.
    pub fn initrd(&self) -> Result<Option<Initrd>, Diagnostic<'a>> {
        let Some(start) = self.initrd_bound("linux,initrd-start")? else {
            return Ok(None);
        };
        let Some(end) = self.initrd_bound("linux,initrd-end")? else {
            return Err(self.node.diag(
                Severity::Warning,
                "linux,initrd-end",
                Problem::InitrdEndMissing,
            ));
        };
        if start > end {
            return Err(self.node.diag(
                Severity::Warning,
                "linux,initrd-start",
                Problem::InitrdReversed { start, end },
            ));
        }
        Ok(Some(Initrd {
            start: PhysAddr(start),
            end: PhysAddr(end),
        }))
    }

    /// Linux: early_init_dt_check_for_elfcorehdr() — `linux,elfcorehdr` (address, size) with
    /// the root's cells.
    pub fn elfcorehdr(&self) -> Result<Option<MemReserve>, Diagnostic<'a>> {
        const P: &str = "linux,elfcorehdr";
        let Some(v) = self.node.property(P) else {
            return Ok(None);
        };
        let mut regs = self
            .node
            .fdt()
            .root_reg(v)
            .map_err(|p| self.node.diag(Severity::Error, P, p))?;
        match regs.next() {
            Some(e) => Ok(Some(MemReserve {
                base: PhysAddr(e.base),
                size: e.size,
            })),
            None => Err(self.node.diag(
                Severity::Error,
                P,
                Problem::BadLength {
                    len: v.len(),
                    expected: "one (address, size) entry in root cells",
                },
            )),
        }
    }

    /// Linux: early_init_dt_check_for_usable_mem_range() — `linux,usable-memory-range` entries
    /// (Linux uses the first [`MAX_USABLE_RANGES`]: it caps memory to the first and adds the
    /// second). A length that is not whole entries is an error (Linux ignores the property).
    pub fn usable_memory_range(&self) -> Result<Option<RegIter<'a>>, Diagnostic<'a>> {
        const P: &str = "linux,usable-memory-range";
        let Some(v) = self.node.property(P) else {
            return Ok(None);
        };
        let regs = self
            .node
            .fdt()
            .root_reg(v)
            .map_err(|p| self.node.diag(Severity::Error, P, p))?;
        if regs.trailing_bytes() != 0 {
            let p = Problem::TrailingBytes {
                len: v.len(),
                entry_size: regs.entry_size(),
            };
            return Err(self.node.diag(Severity::Error, P, p));
        }
        Ok(Some(regs))
    }

    /// `kaslr-seed` (arm64 KASLR), raw.
    pub fn kaslr_seed(&self) -> Option<&'a [u8]> {
        self.node.property("kaslr-seed")
    }

    /// `rng-seed` (Linux: add_bootloader_randomness()), raw; an empty one counts as absent.
    pub fn rng_seed(&self) -> Option<&'a [u8]> {
        self.node.property("rng-seed").filter(|v| !v.is_empty())
    }
}

// ---------------------------------------------------------------------------------------------
// The memblock side of the early scan (Linux: the rest of early_init_dt_scan_nodes()).

/// What the early scan found besides memory: the initrd, for arm64_memblock_init.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EarlyScan {
    /// Linux: phys_initrd_start / phys_initrd_size.
    pub initrd: Option<Initrd>,
    /// Did any memory node give memory?
    pub found_memory: bool,
}

/// Linux: early_init_dt_add_memory_arch() — page-align the range, clip it to what a
/// physical address can hold, and add it to memblock (MIN_MEMBLOCK_ADDR is 0 on arm64).
pub fn early_init_dt_add_memory_arch(mb: &mut Memblock, base: u64, size: u64) {
    const PAGE: u64 = crate::mm::PAGE_SIZE;
    let (mut base, mut size) = (base, size);
    if size < PAGE - (base & (PAGE - 1)) {
        pr_warn!(
            "{}Ignoring memory block {:#x} - {:#x}",
            PR_FDT,
            base,
            base.wrapping_add(size)
        );
        return;
    }
    if base & (PAGE - 1) != 0 {
        size -= PAGE - (base & (PAGE - 1));
        base = crate::mm::addr::align_up(base, PAGE);
    }
    size &= !(PAGE - 1);
    // MAX_MEMBLOCK_ADDR is ~0: a range running past 2^64 keeps what fits.
    if base.checked_add(size).is_none() {
        let kept = u64::MAX - base + 1;
        pr_warn!(
            "{}Ignoring memory range {:#x} - {:#x}",
            PR_FDT,
            base.wrapping_add(kept),
            base.wrapping_add(size)
        );
        size = kept & !(PAGE - 1);
    }
    if size == 0 {
        return;
    }
    // Linux merges overlapping memory nodes silently; overlaps usually mean a broken tree,
    // so say so (memblock still takes the union, as Linux does).
    if mb.overlaps_region(MemType::Memory, PhysAddr(base), size) {
        pr_warn!(
            "{}memory range [mem {:#018x}-{:#018x}] overlaps memory already added; using the union",
            PR_FDT,
            base,
            base + size - 1
        );
    }
    // Linux 6.1 drops a range memblock cannot take (its memory array is full and cannot
    // grow before paging_init) without a word; say which.
    if mb.add(PhysAddr(base), size).is_err() {
        pr_err!(
            "{}memblock's memory array is full ({} regions); ignoring [mem {:#018x}-{:#018x}]",
            PR_FDT,
            crate::mm::memblock::INIT_MEMBLOCK_REGIONS,
            base,
            base + size - 1
        );
    }
}

/// Linux: early_init_dt_scan_nodes() minus the root cells (kept by [`Fdt`]) and the
/// command line (copied by setup_arch): memory nodes into memblock (hotpluggable ones
/// marked), `/chosen`'s initrd, and `linux,usable-memory-range` capping memory.
pub fn early_init_dt_scan_nodes(fdt: &Fdt, mb: &mut Memblock) -> EarlyScan {
    let mut scan = EarlyScan::default();
    let chosen = fdt.chosen();
    if chosen.is_none() {
        pr_warn!("{}No chosen node found, continuing without", PR_FDT);
    }
    if let Some(c) = chosen {
        match c.initrd() {
            Ok(i) => scan.initrd = i.filter(|i| i.size() > 0),
            Err(d) => d.print(PR_FDT),
        }
    }
    scan.found_memory = early_init_dt_scan_memory(fdt, |r| {
        early_init_dt_add_memory_arch(mb, r.base.as_u64(), r.size);
        if r.hotpluggable && mb.mark_hotplug(r.base, r.size).is_err() {
            pr_warn!(
                "{}failed to mark hotplug range {:#x} - {:#x}",
                PR_FDT,
                r.base.as_u64(),
                r.end()
            );
        }
    });
    // Linux: early_init_dt_check_for_usable_mem_range().
    if let Some(c) = chosen {
        match c.usable_memory_range() {
            Ok(Some(ranges)) => {
                for (i, r) in ranges.take(MAX_USABLE_RANGES).enumerate() {
                    if r.size == 0 {
                        break;
                    }
                    if i == 0 {
                        mb.cap_memory_range(PhysAddr(r.base), r.size);
                    } else {
                        let _ = mb.add(PhysAddr(r.base), r.size);
                    }
                }
            }
            Ok(None) => {}
            Err(d) => d.print(PR_FDT),
        }
    }
    scan
}

/// Linux: early_init_fdt_scan_reserved_mem() — `/reserved-memory` (static regions, then
/// the dynamic ones allocated), `linux,elfcorehdr`, and the `/memreserve/` block.
pub fn early_init_fdt_scan_reserved_mem(fdt: &Fdt, mb: &mut Memblock) {
    super::reserved_mem::fdt_scan_and_reserve(fdt, mb);
    // Linux: fdt_reserve_elfcorehdr().
    if let Some(c) = fdt.chosen() {
        match c.elfcorehdr() {
            Ok(Some(r)) if r.size > 0 => {
                if mb.is_region_reserved(r.base, r.size) {
                    pr_warn!("{}elfcorehdr is overlapped", PR_FDT);
                } else {
                    let _ = mb.reserve(r.base, r.size);
                    pr_info!(
                        "{}Reserving {} KiB of memory at {:#x} for elfcorehdr",
                        PR_FDT,
                        r.size / 1024,
                        r.base.as_u64()
                    );
                }
            }
            Ok(_) => {}
            Err(d) => d.print(PR_FDT),
        }
    }
    for r in fdt.mem_rsv() {
        if r.size == 0 {
            break;
        }
        let _ = mb.reserve(r.base, r.size);
    }
}

#[cfg(test)]
mod tests;
