//! SPARSEMEM_VMEMMAP (Linux: mm/sparse.c, mm/sparse-vmemmap.c): memory is described in
//! 128 MiB sections; every section that holds memory gets its `struct page` array mapped at
//! `vmemmap + pfn`, on the section's node. Sections without memory cost nothing.
//!
//! The arch maps the memmap (`vmemmap_populate`); this file decides which sections exist
//! and on which node, and accounts for what the memmap costs.

use super::addr::Pfn;
use super::free_area_init::{PAGES_PER_SECTION, PFN_SECTION_SHIFT};
use super::memblock::Memblock;
use super::page::STRUCT_PAGE_SIZE;
use crate::include::numa::MAX_NUMNODES;

/// One present section: its number and node (Linux: a `mem_section` with
/// SECTION_MARKED_PRESENT and its nid from `sparse_encode_early_nid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresentSection {
    pub nr: u64,
    pub nid: i32,
}

impl PresentSection {
    /// The section's first pfn.
    #[inline]
    pub fn start_pfn(&self) -> Pfn {
        section_nr_to_pfn(self.nr)
    }
    /// The first pfn past the section.
    #[inline]
    pub fn end_pfn(&self) -> Pfn {
        section_nr_to_pfn(self.nr + 1)
    }
}

/// Linux: pfn_to_section_nr().
#[inline]
pub const fn pfn_to_section_nr(pfn: Pfn) -> u64 {
    pfn.0 >> PFN_SECTION_SHIFT
}

/// Linux: section_nr_to_pfn().
#[inline]
pub const fn section_nr_to_pfn(nr: u64) -> Pfn {
    Pfn(nr << PFN_SECTION_SHIFT)
}

/// Linux: memblocks_present() — the sections memblock's memory touches, in order, each once,
/// with the node of the first memory in it (Linux's memory_present() sets the nid of the
/// first range that marks a section).
pub fn memblocks_present(mb: &Memblock, mut f: impl FnMut(PresentSection)) {
    let mut last: Option<u64> = None;
    for (start, end, nid) in mb.mem_pfn_ranges(MAX_NUMNODES) {
        if end.0 <= start.0 {
            continue;
        }
        let first = pfn_to_section_nr(start);
        let lastsec = pfn_to_section_nr(end - 1);
        for nr in first..=lastsec {
            if last.is_some_and(|l| nr <= l) {
                continue;
            }
            f(PresentSection { nr, nid });
            last = Some(nr);
        }
    }
}

/// What sparse_init() built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SparseInfo {
    pub sections: u64,
    /// Bytes of `struct page` mapped (PAGES_PER_SECTION * 64 per section).
    pub memmap_bytes: u64,
}

/// Linux: sparse_init() — call `populate(section)` for every present section (the arch
/// maps `[pfn_to_page(start), pfn_to_page(start + PAGES_PER_SECTION))` on its node) and
/// report the cost. Populating allocates from memblock, so the lock is taken only to find
/// each next section, never across a `populate` call.
pub fn sparse_init(
    mb: &spin::Mutex<Memblock>,
    mut populate: impl FnMut(PresentSection),
) -> SparseInfo {
    let mut info = SparseInfo::default();
    let mut next = 0;
    loop {
        let mut found = None;
        memblocks_present(&mb.lock(), |s| {
            if found.is_none() && s.nr >= next {
                found = Some(s);
            }
        });
        let Some(s) = found else { break };
        populate(s);
        info.sections += 1;
        info.memmap_bytes += PAGES_PER_SECTION * STRUCT_PAGE_SIZE;
        next = s.nr + 1;
    }
    pr_info!(
        "mm: sparse_init: {} present sections of {} MiB, memmap {} KiB ({} bytes per page)",
        info.sections,
        (PAGES_PER_SECTION << 12) >> 20,
        info.memmap_bytes >> 10,
        STRUCT_PAGE_SIZE
    );
    info
}

#[cfg(test)]
mod tests;
