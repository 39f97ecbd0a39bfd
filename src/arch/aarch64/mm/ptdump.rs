//! The kernel page-table dump (Linux: arch/arm64/mm/ptdump.c and mm/ptdump.c), in the format
//! of Linux's `/sys/kernel/debug/kernel_page_tables`: one line per run of entries with the
//! same level and attributes, region markers between.
//!
//! The walker is separate from the printing: `walk_kernel_tables` calls a visitor with
//! every leaf and hole, which the dump and the tests (the W^X check) both use.

use core::fmt::Write;

use super::mmu::swapper_pg_dir_phys;
use tock_registers::LocalRegisterCopy;

use super::pgtable::{
    get_entry, level_shift, Descriptor, PgTableAccess, PTRS_PER_TABLE, STAGE1_DESC,
};
use crate::arch::aarch64::fixmap::FIXADDR_START;
use crate::arch::aarch64::memory::{
    __va, FIXADDR_TOP, MODULES_END, MODULES_VADDR, PAGE_END, PAGE_OFFSET, PCI_IO_END, PCI_IO_START,
    VMALLOC_END, VMALLOC_START, VMEMMAP_END, VMEMMAP_START,
};
use crate::kernel::params::SetupResult;
use crate::kernel::printk::LineBuf;
use crate::mm::PhysAddr;

/// Table access through the linear map, for walking live tables after paging_init.
pub struct LinearTables;

impl PgTableAccess for LinearTables {
    fn table(&mut self, _level: u32, pa: PhysAddr) -> *mut u64 {
        __va(pa).as_mut_ptr()
    }

    fn alloc_table(&mut self) -> Option<PhysAddr> {
        panic!("ptdump never allocates page tables")
    }
}

/// A leaf as the walker reports it: `[start, end)` mapped by one entry at `level`, with
/// the PXNTable/UXNTable inherited from the tables above folded into `pxn_table`.
#[derive(Clone, Copy, Debug)]
pub struct Leaf {
    pub start: u64,
    pub end: u64,
    pub level: u32,
    pub desc: Descriptor,
    pub pxn_table: bool,
}

impl Leaf {
    pub fn writable(&self) -> bool {
        !self.desc.fields().is_set(STAGE1_DESC::AP_RDONLY)
    }
    /// Executable at EL1: neither the entry's PXN nor any table's PXNTable is set.
    pub fn executable(&self) -> bool {
        !self.desc.fields().is_set(STAGE1_DESC::PXN) && !self.pxn_table
    }
}

fn walk_table(level: u32, table: PhysAddr, base: u64, pxn_table: bool, f: &mut dyn FnMut(&Leaf)) {
    let size = 1u64 << level_shift(level);
    for i in 0..PTRS_PER_TABLE {
        let start = base.wrapping_add(i as u64 * size);
        let t = LinearTables.table(level, table);
        // SAFETY: `t` is a live table reached through the linear map, which covers all of
        // memblock memory, where every table page comes from.
        let desc = unsafe { get_entry(t, i) };
        if desc.is_valid() && level < 3 && desc.is_table() {
            let pxn = pxn_table || desc.fields().is_set(STAGE1_DESC::PXN_TABLE);
            walk_table(level + 1, desc.output_address(), start, pxn, f);
        } else {
            f(&Leaf {
                start,
                end: start.wrapping_add(size),
                level,
                desc,
                pxn_table,
            });
        }
    }
}

/// Visits every entry of the kernel half (TTBR1: swapper_pg_dir), holes included.
pub fn walk_kernel_tables(f: &mut dyn FnMut(&Leaf)) {
    walk_table(0, swapper_pg_dir_phys(), 0xffff_0000_0000_0000, false, f);
}

/// Linux: address_markers[] for 48-bit VA.
const MARKERS: [(u64, &str); 12] = [
    (PAGE_OFFSET, "Linear Mapping start"),
    (PAGE_END, "Linear Mapping end"),
    (MODULES_VADDR, "Modules start"),
    (MODULES_END, "Modules end"),
    (VMALLOC_START, "vmalloc() area"),
    (VMALLOC_END, "vmalloc() end"),
    (FIXADDR_START, "Fixmap start"),
    (FIXADDR_TOP, "Fixmap end"),
    (PCI_IO_START, "PCI I/O start"),
    (PCI_IO_END, "PCI I/O end"),
    (VMEMMAP_START, "vmemmap start"),
    (VMEMMAP_END, "vmemmap end"),
];

const LEVEL_NAMES: [&str; 4] = ["PGD", "PUD", "PMD", "PTE"];

/// Linux: pte_bits[] and dump_prot().
fn dump_prot(d: u64, out: &mut LineBuf<160>) {
    use STAGE1_DESC::ATTR_INDX::Value as Mt;
    let d = LocalRegisterCopy::<u64, STAGE1_DESC::Register>::new(d);
    let flags: [(bool, &str, &str); 10] = [
        (d.is_set(STAGE1_DESC::VALID), " ", "F"),
        (d.is_set(STAGE1_DESC::AP_USER), "USR", "   "),
        (d.is_set(STAGE1_DESC::AP_RDONLY), "ro", "RW"),
        (d.is_set(STAGE1_DESC::PXN), "NX", "x "),
        (d.matches_all(STAGE1_DESC::SH::InnerShareable), "SHD", "   "),
        (d.is_set(STAGE1_DESC::AF), "AF", "  "),
        (d.is_set(STAGE1_DESC::NG), "NG", "  "),
        (d.is_set(STAGE1_DESC::CONT), "CON", "   "),
        (d.matches_all(STAGE1_DESC::TYPE::Table), "   ", "BLK"),
        (d.is_set(STAGE1_DESC::UXN), "UXN", "   "),
    ];
    for (set, s, c) in flags {
        let _ = write!(out, " {}", if set { s } else { c });
    }
    let attr = match d.read_as_enum(STAGE1_DESC::ATTR_INDX) {
        Some(Mt::DevicenGnRnE) => "DEVICE/nGnRnE",
        Some(Mt::DevicenGnRE) => "DEVICE/nGnRE",
        Some(Mt::NormalNC) => "MEM/NORMAL-NC",
        Some(Mt::Normal) => "MEM/NORMAL",
        Some(Mt::NormalTagged) => "MEM/NORMAL-TAGGED",
        None => "",
    };
    if !attr.is_empty() {
        let _ = write!(out, " {}", attr);
    }
}

/// Linux: note_page()'s state — one run of equal entries.
struct Run {
    start: u64,
    level: u32,
    prot: u64,
    valid: bool,
    marker: usize,
}

/// The attribute bits that make two entries "the same" for the dump (Linux: PTE_ATTRINDX
/// etc. minus the output address; table entries at the leaf level keep their type bit).
fn run_prot(l: &Leaf) -> u64 {
    if !l.desc.is_valid() {
        return 0;
    }
    let mut d = l.desc.fields();
    d.modify(STAGE1_DESC::OUTPUT_ADDR::CLEAR);
    if l.pxn_table {
        d.modify(STAGE1_DESC::PXN::SET);
    }
    d.get()
}

fn print_run(run: &Run, end: u64, out: &mut dyn FnMut(&str)) {
    if !run.valid {
        return;
    }
    let mut line = LineBuf::<160>::new();
    let _ = write!(line, "0x{:016x}-0x{:016x}   ", run.start, end);
    let mut delta = end.wrapping_sub(run.start) >> 10;
    let mut unit = ['K', 'M', 'G', 'T', 'P', 'E'].iter();
    let mut u = unit.next().copied().unwrap_or('K');
    while delta & 1023 == 0 && delta != 0 {
        match unit.next() {
            Some(&n) => {
                delta >>= 10;
                u = n;
            }
            None => break,
        }
    }
    let _ = write!(line, "{:9}{} {}", delta, u, LEVEL_NAMES[run.level as usize]);
    dump_prot(run.prot, &mut line);
    out(line.as_str());
}

/// Linux: ptdump_walk() + note_page() — the dump as lines, handed to `out`.
pub fn ptdump(out: &mut dyn FnMut(&str)) {
    let mut run: Option<Run> = None;
    let mut marker = 0;
    let emit_markers = |addr: u64, out: &mut dyn FnMut(&str), marker: &mut usize| {
        while *marker < MARKERS.len() && MARKERS[*marker].0 <= addr {
            let mut line = LineBuf::<160>::new();
            let _ = write!(line, "---[ {} ]---", MARKERS[*marker].1);
            out(line.as_str());
            *marker += 1;
        }
    };
    walk_kernel_tables(&mut |l: &Leaf| {
        let prot = run_prot(l);
        let same = run.as_ref().is_some_and(|r| {
            r.level == l.level
                && r.prot == prot
                && r.valid == l.desc.is_valid()
                && marker == r.marker
                && !MARKERS.iter().any(|m| m.0 == l.start)
        });
        if !same {
            if let Some(r) = run.take() {
                print_run(&r, l.start, out);
            }
            emit_markers(l.start, out, &mut marker);
            run = Some(Run {
                start: l.start,
                level: l.level,
                prot,
                valid: l.desc.is_valid(),
                marker,
            });
        }
    });
    if let Some(r) = run.take() {
        print_run(&r, 0, out);
    }
    emit_markers(u64::MAX, out, &mut marker);
}

/// The walk of one kernel address (the monitor's `ptdump VA`; Linux: show_pte()'s lines):
/// each level's entry from swapper_pg_dir down to the leaf or the first invalid entry.
pub fn ptdump_walk_one(va: u64, out: &mut dyn FnMut(&str)) {
    let mut table = swapper_pg_dir_phys();
    for level in 0..4u32 {
        let idx = crate::arch::aarch64::mm::pgtable::table_index(va, level);
        let t = LinearTables.table(level, table);
        // SAFETY: a live table reached through the linear map (see walk_table).
        let desc = unsafe { get_entry(t, idx) };
        let mut line = LineBuf::<160>::new();
        let _ = write!(
            line,
            "{}[{:3}] @ {:#x}: {:#018x}",
            LEVEL_NAMES[level as usize],
            idx,
            table.as_u64(),
            desc.0
        );
        if !desc.is_valid() {
            let _ = line.write_str(" (invalid)");
            out(line.as_str());
            return;
        }
        if level < 3 && desc.is_table() {
            let _ = line.write_str(" table");
            out(line.as_str());
            table = desc.output_address();
            continue;
        }
        let size = 1u64 << level_shift(level);
        let pa = desc.output_address().as_u64() + (va & (size - 1));
        let _ = write!(line, " -> {:#x}", pa);
        dump_prot(desc.0, &mut line);
        out(line.as_str());
        return;
    }
}

/// Prints the dump on the console (the `ptdump` boot parameter, and on demand).
pub fn ptdump_print() {
    pr_info!(
        "ptdump: kernel page tables (swapper_pg_dir at {:#x})",
        swapper_pg_dir_phys().as_u64()
    );
    ptdump(&mut |line| pr_info!("{}", line));
}

static PTDUMP_AT_BOOT: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// `ptdump`: print the kernel page tables at the end of boot (ours; Linux has debugfs).
fn ptdump_setup(_val: Option<&str>) -> SetupResult {
    PTDUMP_AT_BOOT.store(true, core::sync::atomic::Ordering::Relaxed);
    Ok(())
}
crate::early_param!("ptdump", ptdump_setup);

/// Prints the dump if `ptdump` was on the command line.
pub fn ptdump_check_boot() {
    if PTDUMP_AT_BOOT.load(core::sync::atomic::Ordering::Relaxed) {
        ptdump_print();
    }
}
