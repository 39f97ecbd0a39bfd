//! The memory report: physical memory at one moment as JSON — DRAM banks, nodes, zones,
//! memblock's memory and reserved regions (each reserved range attributed to its owner),
//! and the buddy's free blocks as runs of equal order and migratetype. `mm_report=PATH`
//! and the monitor's `report` write it to the host; `scripts/memmap` draws it. Linux has
//! no equivalent (its nearest are /proc/iomem, /sys/kernel/debug/memblock and
//! /proc/pagetypeinfo, each a part).
//!
//! memblock does not record who reserved a range, so the caller (init, which can see the
//! arch's page tables, the device tree and the kernel image) supplies what it knows as
//! [`OwnedRange`]s; [`attribute`] cuts each reserved region along them and calls the rest
//! `other`.

use alloc::vec::Vec;
use core::fmt::{self, Write};
use core::ptr;

use crate::include::mmzone::{MAX_ORDER, MIGRATETYPE_NAMES, MIGRATE_TYPES};
use crate::kernel::json::JsonWriter;
use crate::mm::memblock::{Memblock, MemblockRegion};
use crate::mm::mmzone::{Zone, NR_FREE_PAGES};
use crate::mm::page::{lru_to_page, ListHead};
use crate::mm::page_alloc::PageAlloc;
use crate::mm::PAGE_SHIFT;

/// The owner of a reserved range that no [`OwnedRange`] covers.
pub const OWNER_OTHER: &str = "other";

/// A physical range `[base, base + size)` and who holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnedRange {
    pub owner: &'static str,
    pub base: u64,
    pub size: u64,
}

impl OwnedRange {
    fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }
}

/// At most this many free-block runs are written (a few MB of JSON); `free_truncated`
/// says when more existed.
pub const MAX_FREE_RUNS: usize = 50_000;

/// At most this many free blocks are collected (16 bytes each: 4 MiB) before they are
/// merged into runs; a memory so fragmented is reported truncated.
pub const MAX_FREE_BLOCKS: usize = 1 << 18;

/// Cuts `[base, end)` along `owners` (first claim wins where they overlap); the parts no
/// owner claims are [`OWNER_OTHER`]. Neighbouring parts of one owner are merged. The parts
/// cover `[base, end)` exactly, in address order.
pub fn attribute(base: u64, end: u64, owners: &[OwnedRange], out: &mut dyn FnMut(OwnedRange)) {
    let mut pieces: Vec<OwnedRange> = owners
        .iter()
        .filter(|o| o.size > 0 && o.base < end && o.end() > base)
        .map(|o| {
            let b = o.base.max(base);
            OwnedRange {
                owner: o.owner,
                base: b,
                size: o.end().min(end) - b,
            }
        })
        .collect();
    pieces.sort_by_key(|p| p.base);
    let mut pending: Option<OwnedRange> = None;
    let mut push = |r: OwnedRange, out: &mut dyn FnMut(OwnedRange)| {
        if r.size == 0 {
            return;
        }
        match &mut pending {
            Some(p) if p.owner == r.owner && p.end() == r.base => p.size += r.size,
            _ => {
                if let Some(p) = pending.replace(r) {
                    out(p);
                }
            }
        }
    };
    let mut cursor = base;
    for p in pieces {
        if p.base > cursor {
            push(
                OwnedRange {
                    owner: OWNER_OTHER,
                    base: cursor,
                    size: p.base - cursor,
                },
                out,
            );
        }
        let b = p.base.max(cursor);
        if p.end() > b {
            push(
                OwnedRange {
                    owner: p.owner,
                    base: b,
                    size: p.end() - b,
                },
                out,
            );
            cursor = p.end();
        }
    }
    if cursor < end {
        push(
            OwnedRange {
                owner: OWNER_OTHER,
                base: cursor,
                size: end - cursor,
            },
            out,
        );
    }
    if let Some(p) = pending {
        out(p);
    }
}

/// A run of free buddy blocks: `pages` pages from `pfn`, all blocks of `order` and `mt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreeRun {
    pub pfn: u64,
    pub pages: u64,
    pub order: u8,
    pub mt: u8,
}

/// Merges free blocks `(pfn, order, mt)` into runs of address-adjacent blocks of the
/// same order and migratetype, in address order.
pub fn free_runs(mut blocks: Vec<(u64, u8, u8)>) -> Vec<FreeRun> {
    blocks.sort_unstable();
    let mut runs: Vec<FreeRun> = Vec::new();
    for (pfn, order, mt) in blocks {
        let pages = 1u64 << order;
        match runs.last_mut() {
            Some(r) if r.order == order && r.mt == mt && r.pfn + r.pages == pfn => r.pages += pages,
            _ => runs.push(FreeRun {
                pfn,
                pages,
                order,
                mt,
            }),
        }
    }
    runs
}

/// Every free block on a zone's free lists, as `(pfn, order, migratetype)`, read under
/// the zone lock. Nothing is allocated under the lock (a growing `Vec` could ask this very
/// zone for a slab page): the room is reserved first from the free counts, and blocks
/// beyond it (freed in between) are left out. Returns the zone's free page count read
/// under the same lock, so that it matches the blocks, and false if any were left out.
fn zone_free_blocks(pa: &PageAlloc, zone: &Zone, out: &mut Vec<(u64, u8, u8)>) -> (u64, bool) {
    if !zone.zone_is_initialized() {
        return (zone.zone_page_state(NR_FREE_PAGES), true);
    }
    let blocks: u64 = {
        let _g = zone.lock.lock();
        // SAFETY: the zone lock is held; free_area was initialised by free_area_init.
        (0..MAX_ORDER)
            .map(|o| unsafe { (*zone.free_area.get().add(o)).nr_free })
            .sum()
    };
    let want = (blocks as usize + 64).min(MAX_FREE_BLOCKS.saturating_sub(out.len()));
    out.reserve(want);
    let room = out.len() + want;
    let _g = zone.lock.lock();
    let free = zone.zone_page_state(NR_FREE_PAGES);
    for order in 0..MAX_ORDER {
        for mt in 0..MIGRATE_TYPES {
            // SAFETY: the zone lock is held; the lists were initialised by free_area_init
            // and link the `lru` fields of free pages in the memmap.
            unsafe {
                let fa = zone.free_area.get().add(order);
                let head: *mut ListHead = ptr::addr_of_mut!((*fa).free_list[mt]);
                let mut cur = (*head).next;
                while !ptr::eq(cur, head) {
                    if out.len() == room {
                        return (free, false);
                    }
                    let pfn = pa.page_to_pfn(lru_to_page(cur));
                    out.push((pfn.0, order as u8, mt as u8));
                    cur = (*cur).next;
                }
            }
        }
    }
    (free, true)
}

/// What the caller knows that the mm cores do not.
pub struct ReportInput<'a> {
    /// What the report is of (`end of init`, `monitor`).
    pub when: &'a str,
    /// The DRAM banks as the device tree gives them (base, size).
    pub banks: &'a [(u64, u64)],
    /// Who holds what (see [`attribute`]).
    pub owners: &'a [OwnedRange],
}

fn region<W: Write + ?Sized>(
    j: &mut JsonWriter<'_, W>,
    r: &MemblockRegion,
    owners: Option<&[OwnedRange]>,
) -> fmt::Result {
    let (base, size) = (r.base.as_u64(), r.size);
    let mut res = Ok(());
    match owners {
        None => {
            j.begin_object()?;
            j.field_uint("base", base)?;
            j.field_uint("size", size)?;
            j.field_int("nid", r.nid as i64)?;
            j.field_bool("nomap", r.is_nomap())?;
            j.field_bool("hotplug", r.is_hotpluggable())?;
            j.end_object()
        }
        Some(owners) => {
            attribute(base, base + size, owners, &mut |p| {
                if res.is_ok() {
                    res = (|| {
                        j.begin_object()?;
                        j.field_uint("base", p.base)?;
                        j.field_uint("size", p.size)?;
                        j.field_str("owner", p.owner)?;
                        j.end_object()
                    })();
                }
            });
            res
        }
    }
}

/// Writes the report as one JSON object. Addresses and sizes are bytes; pfns are pages of
/// `page_size` bytes.
pub fn write_report<W: Write + ?Sized>(
    out: &mut W,
    mb: &Memblock,
    pa: &PageAlloc,
    input: &ReportInput,
) -> fmt::Result {
    let mut j = JsonWriter::new(out);
    j.begin_object()?;
    j.field_str("format", "arm64-mm memory report 1")?;
    j.field_str("when", input.when)?;
    j.field_uint("page_size", 1 << PAGE_SHIFT)?;
    j.field_uint(
        "pageblock_order",
        crate::include::pageblock_flags::PAGEBLOCK_ORDER as u64,
    )?;
    j.key("migratetypes")?;
    j.begin_array()?;
    for n in MIGRATETYPE_NAMES {
        j.string(n)?;
    }
    j.end_array()?;

    j.key("banks")?;
    j.begin_array()?;
    for &(base, size) in input.banks {
        j.begin_object()?;
        j.field_uint("base", base)?;
        j.field_uint("size", size)?;
        j.end_object()?;
    }
    j.end_array()?;

    let nodes = pa.nodes();
    j.key("nodes")?;
    j.begin_array()?;
    for pgdat in nodes.pgdats() {
        j.begin_object()?;
        j.field_int("nid", pgdat.node_id as i64)?;
        j.field_uint("start_pfn", pgdat.node_start_pfn.0)?;
        j.field_uint("spanned", pgdat.node_spanned_pages)?;
        j.field_uint("present", pgdat.node_present_pages)?;
        j.end_object()?;
    }
    j.end_array()?;

    // The free lists first (their counts read with them), then the JSON, which allocates.
    let mut blocks = Vec::new();
    let mut complete = true;
    let mut free_counts = Vec::new();
    for pgdat in nodes.pgdats() {
        for zone in pgdat.node_zones.iter().filter(|z| !z.zone_is_empty()) {
            let (free, all) = zone_free_blocks(pa, zone, &mut blocks);
            complete &= all;
            free_counts.push(free);
        }
    }
    let mut free_counts = free_counts.into_iter();
    j.key("zones")?;
    j.begin_array()?;
    for pgdat in nodes.pgdats() {
        for zone in pgdat.node_zones.iter().filter(|z| !z.zone_is_empty()) {
            j.begin_object()?;
            j.field_int("nid", zone.node as i64)?;
            j.field_str("name", zone.name())?;
            j.field_uint("start_pfn", zone.zone_start_pfn.0)?;
            j.field_uint("spanned", zone.spanned_pages)?;
            j.field_uint("present", zone.present_pages)?;
            j.field_uint("managed", zone.zone_managed_pages())?;
            j.field_uint("free", free_counts.next().unwrap_or(0))?;
            j.end_object()?;
        }
    }
    j.end_array()?;

    j.key("memory")?;
    j.begin_array()?;
    for r in mb.memory().regions() {
        region(&mut j, r, None)?;
    }
    j.end_array()?;

    j.key("reserved")?;
    j.begin_array()?;
    for r in mb.reserved().regions() {
        region(&mut j, r, Some(input.owners))?;
    }
    j.end_array()?;

    let runs = free_runs(blocks);
    j.field_uint("free_runs_total", runs.len() as u64)?;
    j.field_bool("free_truncated", !complete || runs.len() > MAX_FREE_RUNS)?;
    j.key("free")?;
    j.begin_array()?;
    for r in runs.iter().take(MAX_FREE_RUNS) {
        // [pfn, pages, order, migratetype]: compact, there may be thousands.
        j.begin_array()?;
        j.uint(r.pfn)?;
        j.uint(r.pages)?;
        j.uint(r.order as u64)?;
        j.uint(r.mt as u64)?;
        j.end_array()?;
    }
    j.end_array()?;
    j.end_object()?;
    debug_assert!(j.is_complete());
    Ok(())
}

#[cfg(test)]
mod tests;
