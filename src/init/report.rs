//! `mm_report=PATH`: at the end of init (and on the monitor's `report`) the kernel writes
//! its memory report (`mm::report`) to the host file PATH through semihosting. This file
//! gathers what only the top of the kernel can see — the DRAM banks of the device tree and
//! who owns each reserved range (the image's segments, the device tree, the initrd,
//! `/reserved-memory`, the crash kernel, the CMA areas, the page tables, the memmap, the per-CPU areas,
//! NODE_DATA, the early Rust heap) — since memblock records no owners. Linux has no equivalent.

use alloc::vec::Vec;

use crate::arch::aarch64::kernel::semihosting::{HostFile, HostFileError};
use crate::arch::aarch64::memory::{__pa, __va, kimg_to_phys, VMEMMAP_SIZE, VMEMMAP_START};
use crate::arch::aarch64::mm::init::{CRASHK_RES, PHYS_INITRD};
use crate::arch::aarch64::mm::mmu::swapper_pg_dir_phys;
use crate::arch::aarch64::mm::pgtable::{get_entry, PTRS_PER_TABLE};
use crate::arch::aarch64::mm::ptdump::walk_kernel_tables;
use crate::drivers::of::reserved_mem::{DynamicReservedMem, ReservedMemItem, ReservedMemKind};
use crate::kernel::params::SetupResult;
use crate::kernel::sections as s;
use crate::mm::report::{write_report, OwnedRange, ReportInput};
use crate::mm::{PhysAddr, VirtAddr};

/// The report's owners, in the order the legend lists them (`other` last).
pub const OWNERS: &[&str] = &[
    "kernel text",
    "kernel rodata",
    "kernel init",
    "kernel data",
    "kernel bss",
    "dtb",
    "initrd",
    "reserved-memory",
    "crashkernel",
    "cma",
    "page tables",
    "memmap",
    "percpu",
    "NODE_DATA",
    "early heap",
    crate::mm::report::OWNER_OTHER,
];

/// The host path from `mm_report=` (at most 255 bytes).
static PATH: spin::Mutex<([u8; 256], usize)> = spin::Mutex::new(([0; 256], 0));

/// `mm_report=PATH`: write the memory report to the host file PATH at the end of init.
/// Our own parameter; Linux has no equivalent.
fn mm_report_setup(val: Option<&str>) -> SetupResult {
    let v = val
        .filter(|v| !v.is_empty())
        .ok_or("mm_report needs a path")?;
    let mut p = PATH.lock();
    if v.len() >= p.0.len() {
        return Err("mm_report: path too long");
    }
    p.0[..v.len()].copy_from_slice(v.as_bytes());
    p.1 = v.len();
    Ok(())
}
early_param!("mm_report", mm_report_setup);

/// Runs `f` with the `mm_report=` path, if one was given.
fn with_path<R>(f: impl FnOnce(&str) -> R) -> Option<R> {
    let p = PATH.lock();
    let path = core::str::from_utf8(&p.0[..p.1])
        .ok()
        .filter(|s| !s.is_empty())?;
    Some(f(path))
}

fn kimg(owner: &'static str, start: u64, end: u64) -> OwnedRange {
    OwnedRange {
        owner,
        base: kimg_to_phys(VirtAddr(start)).as_u64(),
        size: end - start,
    }
}

/// Every page-table page reachable from `table` (a table of `level`).
fn table_pages(level: u32, table: PhysAddr, out: &mut Vec<OwnedRange>) {
    out.push(OwnedRange {
        owner: "page tables",
        base: table.as_u64(),
        size: crate::mm::PAGE_SIZE,
    });
    if level == 3 {
        return;
    }
    let t = __va(table).as_u64() as *const u64;
    for i in 0..PTRS_PER_TABLE {
        // SAFETY: `t` is a live kernel table page, reached through the linear map, which
        // covers all memblock memory where every table page comes from.
        let d = unsafe { get_entry(t, i) };
        if d.is_valid() && d.is_table() {
            table_pages(level + 1, d.output_address(), out);
        }
    }
}

/// Who owns what, as far as the kernel can tell.
pub fn owned_ranges() -> Vec<OwnedRange> {
    let mut v = alloc::vec![
        // Each segment runs to the next one, its alignment padding included.
        kimg("kernel text", s::_text(), s::__start_rodata()),
        kimg("kernel rodata", s::__start_rodata(), s::__init_begin()),
        kimg("kernel init", s::__init_begin(), s::_data()),
        kimg("kernel data", s::_data(), s::__bss_start()),
        kimg("kernel bss", s::__bss_start(), s::_end()),
    ];
    let m = crate::arch::aarch64::kernel::setup::machine();
    let fdt_pa = crate::arch::aarch64::kernel::setup::__fdt_pointer
        .load(core::sync::atomic::Ordering::Relaxed);
    v.push(OwnedRange {
        owner: "dtb",
        base: fdt_pa,
        size: m.fdt.totalsize() as u64,
    });
    if let Some(&(base, size)) = PHYS_INITRD.get() {
        // Reserved in whole pages (Linux: arm64_memblock_init's round_down/round_up).
        let page = crate::mm::PAGE_SIZE;
        let start = base.as_u64() & !(page - 1);
        v.push(OwnedRange {
            owner: "initrd",
            base: start,
            size: (base.as_u64() + size).next_multiple_of(page) - start,
        });
    }
    for r in m.fdt.mem_rsv() {
        v.push(OwnedRange {
            owner: "reserved-memory",
            base: r.base.as_u64(),
            size: r.size,
        });
    }
    for item in m.fdt.reserved_memory() {
        if let ReservedMemItem::Region(r) = item {
            if let ReservedMemKind::Static(regs) = r.kind {
                for e in regs {
                    v.push(OwnedRange {
                        owner: "reserved-memory",
                        base: e.base,
                        size: e.size,
                    });
                }
            }
        }
    }
    if let Some(&(base, size)) = CRASHK_RES.get() {
        v.push(OwnedRange {
            owner: "crashkernel",
            base: base.as_u64(),
            size,
        });
    }
    // The CMA areas (their pages are in the buddy, MIGRATE_CMA; memblock keeps them reserved).
    for cma in crate::mm::cma::CMA_AREAS.areas().filter(|c| c.count() > 0) {
        v.push(OwnedRange {
            owner: "cma",
            base: cma.cma_get_base().as_u64(),
            size: cma.cma_get_size(),
        });
    }
    table_pages(0, swapper_pg_dir_phys(), &mut v);
    // The memmap: every valid leaf of the vmemmap region.
    walk_kernel_tables(&mut |leaf| {
        if leaf.desc.is_valid()
            && leaf.start >= VMEMMAP_START
            && leaf.start < VMEMMAP_START.wrapping_add(VMEMMAP_SIZE)
        {
            v.push(OwnedRange {
                owner: "memmap",
                base: leaf.desc.output_address().as_u64(),
                size: leaf.end - leaf.start,
            });
        }
    });
    // The per-CPU units: each CPU's copy of the static image, `unit_size` long.
    let possible: Vec<usize> = (0..crate::arch::aarch64::kernel::setup::nr_cpu_ids())
        .filter(|&c| crate::arch::aarch64::kernel::smp::cpu_possible(c))
        .collect();
    let image = s::percpu_static_image();
    let unit_size = {
        use crate::mm::percpu::*;
        pcpu_build_alloc_info(
            image.len(),
            PERCPU_MODULE_RESERVE,
            PERCPU_DYNAMIC_RESERVE,
            crate::mm::PAGE_SIZE as usize,
            None,
            &possible,
        )
        .map_or(0, |ai| ai.unit_size as u64)
    };
    for &cpu in &possible {
        let va = s::__per_cpu_start().wrapping_add(crate::mm::percpu::per_cpu_offset(cpu));
        v.push(OwnedRange {
            owner: "percpu",
            base: __pa(VirtAddr(va)).as_u64(),
            size: unit_size,
        });
    }
    if let Some(nodes) = crate::mm::mmzone::node_data_map() {
        let size = core::mem::size_of::<crate::mm::mmzone::PglistData>()
            .next_multiple_of(crate::include::cache::SMP_CACHE_BYTES as usize)
            as u64;
        for pgdat in nodes.pgdats() {
            v.push(OwnedRange {
                owner: "NODE_DATA",
                base: __pa(VirtAddr(pgdat as *const _ as u64)).as_u64(),
                size,
            });
        }
    }
    early_heap_pages(&mut v);
    dynamic_reserved_mem(&m.fdt, &mut v);
    debug_assert!(v.iter().all(|o| OWNERS.contains(&o.owner)));
    v
}

/// The dynamic `/reserved-memory` regions (`size`, no `reg`): their addresses are not
/// kept after allocation, so each is matched to a reserved range that nothing else claims,
/// exactly `size` long, aligned to `alignment` and inside `alloc-ranges` — where
/// fdt_init_reserved_mem put it (`OF: reserved mem: allocated memory for ...` names it).
fn dynamic_reserved_mem(fdt: &crate::drivers::of::libfdt::Fdt, v: &mut Vec<OwnedRange>) {
    let mut unclaimed: Vec<OwnedRange> = Vec::new();
    {
        let mb = crate::mm::memblock::MEMBLOCK.lock();
        for r in mb.reserved().regions() {
            let base = r.base.as_u64();
            crate::mm::report::attribute(base, base + r.size, v, &mut |p| {
                if p.owner == crate::mm::report::OWNER_OTHER {
                    unclaimed.push(p);
                }
            });
        }
    }
    for DynamicReservedMem {
        region: _,
        size,
        alignment,
        alloc_ranges,
    } in fdt.dynamic_reserved_memory()
    {
        let align = alignment.unwrap_or(1).max(1);
        let fits = |p: &OwnedRange| {
            p.size == size
                && p.base.is_multiple_of(align)
                && alloc_ranges.is_none_or(|mut rs| {
                    rs.any(|e| e.base <= p.base && p.base + size <= e.base + e.size)
                })
        };
        if let Some(i) = unclaimed.iter().position(fits) {
            let p = unclaimed.remove(i);
            v.push(OwnedRange {
                owner: "reserved-memory",
                ..p
            });
        }
    }
}

/// The early heap's pages (setup_arch's memblock allocation behind Rust's allocator until
/// SLUB): the reserved pages the heap says are its own.
fn early_heap_pages(v: &mut Vec<OwnedRange>) {
    use crate::mm::heap::{Owner, KERNEL_HEAP};
    let page = crate::mm::PAGE_SIZE;
    let mut found: Vec<OwnedRange> = Vec::new();
    {
        let mb = crate::mm::memblock::MEMBLOCK.lock();
        for r in mb.reserved().regions() {
            let start = r.base.as_u64().next_multiple_of(page);
            let end = r.base.as_u64() + r.size;
            for pa in (start..end.saturating_sub(page - 1)).step_by(page as usize) {
                let va = __va(PhysAddr(pa)).as_u64() as *const u8;
                if !matches!(KERNEL_HEAP.owner(va), Owner::Early) {
                    continue;
                }
                match found.last_mut() {
                    Some(o) if o.base + o.size == pa => o.size += page,
                    _ => found.push(OwnedRange {
                        owner: "early heap",
                        base: pa,
                        size: page,
                    }),
                }
            }
        }
    }
    v.extend(found);
}

/// Why a report was not written.
#[derive(Debug)]
pub enum ReportError {
    NoAllocator,
    Host(HostFileError),
    /// The JSON could not be formatted or written (the host error, if any, comes first).
    Format,
}

impl ReportError {
    /// One line for the monitor's error report.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoAllocator => "report: no page allocator yet",
            Self::Host(HostFileError::Unavailable) => "report: semihosting is not enabled",
            Self::Host(HostFileError::BadPath) => "report: bad path",
            Self::Host(HostFileError::Open) => "report: the host could not open the file",
            Self::Host(HostFileError::Write) => "report: the host could not write the file",
            Self::Host(HostFileError::Close) => "report: the host could not close the file",
            Self::Format => "report: formatting failed",
        }
    }
}

impl core::fmt::Display for ReportError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoAllocator => f.write_str("no page allocator yet"),
            Self::Host(e) => write!(f, "{}", e),
            Self::Format => f.write_str("formatting failed"),
        }
    }
}

/// Writes the report to the host file `path` (relative to QEMU's working directory).
pub fn write_report_to(path: &str, when: &str) -> Result<(), ReportError> {
    let pa = crate::mm::page_alloc::page_alloc().ok_or(ReportError::NoAllocator)?;
    let m = crate::arch::aarch64::kernel::setup::machine();
    let banks: Vec<(u64, u64)> = m
        .fdt
        .memory_ranges()
        .map(|r| (r.base.as_u64(), r.size))
        .collect();
    let owners = owned_ranges();
    let mut file = HostFile::create(path).map_err(ReportError::Host)?;
    let written = {
        let mb = crate::mm::memblock::MEMBLOCK.lock();
        let input = ReportInput {
            when,
            banks: &banks,
            owners: &owners,
        };
        write_report(&mut file, &mb, pa, &input)
    };
    let closed = file.close();
    closed.map_err(ReportError::Host)?;
    written.map_err(|_| ReportError::Format)
}

/// The end-of-init report, when `mm_report=` asked for one.
pub fn report_at_end_of_init() {
    if let Some(r) = with_path(|p| write_report_to(p, "end of init")) {
        match r {
            Ok(()) => with_path(|p| pr_info!("mm: report written to {}", p)).unwrap_or(()),
            Err(e) => pr_err!("mm: report not written: {}", e),
        }
    }
}

/// The `mm_report=` path, for the monitor's `report` without a file name.
pub fn default_path(f: &mut dyn FnMut(&str)) -> bool {
    with_path(|p| f(p)).is_some()
}
