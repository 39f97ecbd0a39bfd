//! Stage-1 translation tables: descriptors, Linux's protection sets and TLB maintenance
//! (Linux: arch/arm64/include/asm/pgtable-hwdef.h, pgtable-prot.h, tlbflush.h).
//!
//! 4 KiB granule, 48-bit VA, four levels: PGD (L0, 512 GiB per entry), PUD (L1, 1 GiB),
//! PMD (L2, 2 MiB), PTE (L3, 4 KiB). The descriptor layout is described once, as
//! tock-registers bitfields, and every protection set is built from those fields.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::registers::InMemoryRegister;
use tock_registers::LocalRegisterCopy;

use crate::mm::PhysAddr;

register_bitfields! {u64,
    /// A stage-1 block, page or table descriptor.
    pub STAGE1_DESC [
        /// Software bit: dirty (Linux: PTE_DIRTY).
        SW_DIRTY OFFSET(55) NUMBITS(1) [],
        /// Unprivileged execute-never (Linux: PTE_UXN).
        UXN OFFSET(54) NUMBITS(1) [],
        /// Privileged execute-never (Linux: PTE_PXN).
        PXN OFFSET(53) NUMBITS(1) [],
        /// Contiguous hint (Linux: PTE_CONT).
        CONT OFFSET(52) NUMBITS(1) [],
        /// Dirty bit modifier; Linux uses it as PTE_WRITE.
        DBM OFFSET(51) NUMBITS(1) [],
        /// Output address bits [47:12].
        OUTPUT_ADDR OFFSET(12) NUMBITS(36) [],
        /// Not global (Linux: PTE_NG).
        NG OFFSET(11) NUMBITS(1) [],
        /// Access flag (Linux: PTE_AF).
        AF OFFSET(10) NUMBITS(1) [],
        /// Shareability (Linux: PTE_SHARED is inner shareable).
        SH OFFSET(8) NUMBITS(2) [
            NonShareable = 0,
            OuterShareable = 2,
            InnerShareable = 3
        ],
        /// AP[2] = read-only (Linux: PTE_RDONLY); AP[1] = EL0 access (Linux: PTE_USER).
        AP_RDONLY OFFSET(7) NUMBITS(1) [],
        AP_USER OFFSET(6) NUMBITS(1) [],
        /// Table descriptors only: PXNTable — nothing below is executable at EL1.
        PXN_TABLE OFFSET(59) NUMBITS(1) [],
        /// MAIR index (Linux: PTE_ATTRINDX), one of the MT_* memory types.
        ATTR_INDX OFFSET(2) NUMBITS(3) [
            Normal = crate::arch::aarch64::mm::pgtable::MT_NORMAL,
            NormalTagged = crate::arch::aarch64::mm::pgtable::MT_NORMAL_TAGGED,
            NormalNC = crate::arch::aarch64::mm::pgtable::MT_NORMAL_NC,
            DevicenGnRnE = crate::arch::aarch64::mm::pgtable::MT_DEVICE_NGNRNE,
            DevicenGnRE = crate::arch::aarch64::mm::pgtable::MT_DEVICE_NGNRE
        ],
        /// Table (or page at level 3) when set, block when clear.
        TYPE OFFSET(1) NUMBITS(1) [
            Block = 0,
            Table = 1
        ],
        VALID OFFSET(0) NUMBITS(1) []
    ]
}

/// Linux: the MT_* memory types, indices into MAIR_EL1 (sysreg.rs builds MAIR_EL1_SET from
/// them, which head.S programs). The only definition: STAGE1_DESC's ATTR_INDX values and
/// the MAIR value are both made from these.
pub const MT_NORMAL: u64 = 0;
pub const MT_NORMAL_TAGGED: u64 = 1;
pub const MT_NORMAL_NC: u64 = 2;
pub const MT_DEVICE_NGNRNE: u64 = 3;
pub const MT_DEVICE_NGNRE: u64 = 4;

/// Entries per table at every level.
pub const PTRS_PER_TABLE: usize = 512;
/// Linux: PMD_SHIFT / PUD_SHIFT / PGDIR_SHIFT.
pub const PMD_SHIFT: u32 = 21;
pub const PUD_SHIFT: u32 = 30;
pub const PGDIR_SHIFT: u32 = 39;
pub const PMD_SIZE: u64 = 1 << PMD_SHIFT;
pub const PUD_SIZE: u64 = 1 << PUD_SHIFT;

/// The attribute bits of a descriptor (everything but the output address and type bits):
/// Linux's `pgprot_t`, the type generic code passes around.
use crate::mm::addr::PgProt;

const fn field(f: tock_registers::fields::FieldValue<u64, STAGE1_DESC::Register>) -> u64 {
    f.value
}

/// Linux: PROT_DEFAULT = PTE_TYPE_PAGE | PTE_AF | PTE_SHARED (the valid and type bits are
/// added per level when an entry is made).
const PROT_DEFAULT: u64 = field(STAGE1_DESC::AF::SET) | field(STAGE1_DESC::SH::InnerShareable);
const PTE_PXN: u64 = field(STAGE1_DESC::PXN::SET);
const PTE_UXN: u64 = field(STAGE1_DESC::UXN::SET);
const PTE_WRITE: u64 = field(STAGE1_DESC::DBM::SET);
const PTE_DIRTY: u64 = field(STAGE1_DESC::SW_DIRTY::SET);
const PTE_RDONLY: u64 = field(STAGE1_DESC::AP_RDONLY::SET);

/// Linux: PROT_NORMAL — data: read-write, never executable.
const PROT_NORMAL: u64 = PROT_DEFAULT
    | PTE_PXN
    | PTE_UXN
    | PTE_WRITE
    | PTE_DIRTY
    | field(STAGE1_DESC::ATTR_INDX::Normal);

/// Linux: PAGE_KERNEL.
pub const PAGE_KERNEL: PgProt = PgProt(PROT_NORMAL);
/// Linux: PAGE_KERNEL_RO.
pub const PAGE_KERNEL_RO: PgProt = PgProt((PROT_NORMAL & !PTE_WRITE) | PTE_RDONLY);
/// Linux: PAGE_KERNEL_ROX.
pub const PAGE_KERNEL_ROX: PgProt = PgProt((PROT_NORMAL & !(PTE_WRITE | PTE_PXN)) | PTE_RDONLY);
/// Linux: PAGE_KERNEL_EXEC.
pub const PAGE_KERNEL_EXEC: PgProt = PgProt(PROT_NORMAL & !PTE_PXN);
/// Linux: PROT_DEVICE_nGnRE.
pub const PROT_DEVICE_NGNRE: PgProt = PgProt(
    PROT_DEFAULT
        | PTE_PXN
        | PTE_UXN
        | PTE_WRITE
        | PTE_DIRTY
        | field(STAGE1_DESC::ATTR_INDX::DevicenGnRE),
);

/// Linux: PMD_TYPE_TABLE — a valid table descriptor (head.S's early tables).
pub const PMD_TYPE_TABLE: u64 = field(STAGE1_DESC::VALID::SET) | field(STAGE1_DESC::TYPE::Table);
/// Linux: SWAPPER_MM_MMUFLAGS — head.S's 2 MiB blocks of the image: normal memory, inner
/// shareable, accessed (PMD_ATTRINDX(MT_NORMAL) | SWAPPER_PMD_FLAGS).
pub const SWAPPER_MM_MMUFLAGS: u64 = field(STAGE1_DESC::VALID::SET)
    | field(STAGE1_DESC::TYPE::Block)
    | field(STAGE1_DESC::AF::SET)
    | field(STAGE1_DESC::SH::InnerShareable)
    | field(STAGE1_DESC::ATTR_INDX::Normal);
/// Linux: SWAPPER_BLOCK_SHIFT — head.S maps the image with PMD blocks.
pub const SWAPPER_BLOCK_SHIFT: u32 = PMD_SHIFT;

/// A descriptor value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Descriptor(pub u64);

impl Descriptor {
    fn reg(self) -> InMemoryRegister<u64, STAGE1_DESC::Register> {
        InMemoryRegister::new(self.0)
    }

    /// The descriptor's fields, for decoding (ptdump, the W^X checks).
    pub fn fields(self) -> LocalRegisterCopy<u64, STAGE1_DESC::Register> {
        LocalRegisterCopy::new(self.0)
    }

    /// A table descriptor pointing at the next-level table at `pa`.
    pub fn table(pa: PhysAddr) -> Self {
        let r = InMemoryRegister::<u64, STAGE1_DESC::Register>::new(0);
        r.write(
            STAGE1_DESC::VALID::SET
                + STAGE1_DESC::TYPE::Table
                + STAGE1_DESC::OUTPUT_ADDR.val(pa.as_u64() >> 12),
        );
        Self(r.get())
    }

    /// A leaf mapping `pa` with `prot`: a block at levels 1-2 (type bit clear), a page at
    /// level 3 (type bit set).
    fn leaf(
        pa: PhysAddr,
        prot: PgProt,
        typ: tock_registers::fields::FieldValue<u64, STAGE1_DESC::Register>,
    ) -> Self {
        let r = InMemoryRegister::<u64, STAGE1_DESC::Register>::new(prot.0);
        r.modify_no_read(
            r.extract(),
            STAGE1_DESC::VALID::SET + typ + STAGE1_DESC::OUTPUT_ADDR.val(pa.as_u64() >> 12),
        );
        Self(r.get())
    }

    /// A block (level 1-2) descriptor mapping `pa` with `prot`.
    pub fn block(pa: PhysAddr, prot: PgProt) -> Self {
        Self::leaf(pa, prot, STAGE1_DESC::TYPE::Block)
    }

    /// A page (level 3) descriptor mapping `pa` with `prot`.
    pub fn page(pa: PhysAddr, prot: PgProt) -> Self {
        Self::leaf(pa, prot, STAGE1_DESC::TYPE::Table)
    }

    pub fn is_valid(self) -> bool {
        self.reg().is_set(STAGE1_DESC::VALID)
    }

    /// At levels 0-2: does this entry point to a next-level table?
    pub fn is_table(self) -> bool {
        self.is_valid() && self.reg().matches_all(STAGE1_DESC::TYPE::Table)
    }

    pub fn output_address(self) -> PhysAddr {
        PhysAddr(self.reg().read(STAGE1_DESC::OUTPUT_ADDR) << 12)
    }
}

/// One 4 KiB translation table. Statically allocated tables (the fixmap's) live in BSS;
/// the MMU reads them concurrently with our writes, hence the interior mutability.
#[repr(C, align(4096))]
pub struct PageTable(UnsafeCell<[u64; PTRS_PER_TABLE]>);

// SAFETY: tables are written only by the boot CPU during single-threaded early boot, with
// the barriers `set_entry` issues; the MMU's concurrent reads are what the barriers order.
unsafe impl Sync for PageTable {}

impl PageTable {
    pub const fn new() -> Self {
        Self(UnsafeCell::new([0; PTRS_PER_TABLE]))
    }

    pub fn as_ptr(&self) -> *mut u64 {
        self.0.get().cast()
    }
}

impl Default for PageTable {
    fn default() -> Self {
        Self::new()
    }
}

/// Index of `va` in the table of the given level (0 = PGD .. 3 = PTE).
pub const fn table_index(va: u64, level: u32) -> usize {
    ((va >> (12 + 9 * (3 - level))) & 0x1ff) as usize
}

/// Linux: set_pte()'s `dsb(ishst); isb()` — entries written before it are visible to the
/// table walker after it (once for a run of plain stores into empty entries).
#[inline(always)]
pub fn set_pte_barrier() {
    // SAFETY: barriers have no memory-safety preconditions.
    unsafe { core::arch::asm!("dsb ishst", "isb", options(nostack, preserves_flags)) };
}

/// Writes one entry of a live table and makes it visible to the table walker
/// (Linux: set_pte/set_pmd — a store, then `dsb ishst; isb`).
///
/// # Safety
/// `table` must point to a translation table that is mapped writable, and the new entry
/// must not remove a mapping the kernel is using (break-before-make is the caller's job).
#[inline]
pub unsafe fn set_entry(table: *mut u64, index: usize, desc: Descriptor) {
    assert!(index < PTRS_PER_TABLE);
    // SAFETY: the caller guarantees `table` is a writable 512-entry table.
    unsafe { core::ptr::write_volatile(table.add(index), desc.0) };
    set_pte_barrier();
}

/// Reads one entry of a table.
///
/// # Safety
/// `table` must point to a readable 512-entry translation table.
#[inline]
pub unsafe fn get_entry(table: *const u64, index: usize) -> Descriptor {
    assert!(index < PTRS_PER_TABLE);
    // SAFETY: guaranteed by the caller.
    Descriptor(unsafe { core::ptr::read_volatile(table.add(index)) })
}

/// Ours: whether another CPU may run, so that TLB maintenance must be broadcast (inner
/// shareable). False until smp_init boots the first secondary CPU ([`smp_tlbi_broadcast`]):
/// before that no other CPU can hold a TLB entry of this kernel's (each invalidates its own
/// TLB in __cpu_setup before its MMU goes on), and this CPU's own invalidation is all a
/// change needs. Linux on arm64 broadcasts from the start (x86's set_fixmap() flushes
/// only the local TLB). Under QEMU a broadcast TLBI stops every vCPU, halted ones
/// included: the local one made paging_init's fixmap walk (one TLBI a table) 2–3 times
/// quicker in wall time at 16G and 64G.
static TLBI_BROADCAST: AtomicBool = AtomicBool::new(false);

/// From now on TLB maintenance reaches every CPU: called before a secondary CPU is started.
pub fn smp_tlbi_broadcast() {
    TLBI_BROADCAST.store(true, Ordering::SeqCst);
}

/// One TLB maintenance operation with Linux's barriers around it: `dsb <dom>st`, the TLBI,
/// `dsb <dom>`, `isb` (`ish` to reach every CPU, `nsh` for this one).
macro_rules! tlbi {
    ($dom:literal, $op:literal $(, $arg:expr)?) => {
        // SAFETY: TLB maintenance changes no memory the compiler knows about.
        unsafe {
            core::arch::asm!(
                concat!("dsb ", $dom, "st"),
                concat!("tlbi ", $op),
                concat!("dsb ", $dom),
                "isb",
                $(in(reg) $arg,)?
                options(nostack, preserves_flags)
            )
        }
    };
}

/// Linux: flush_tlb_kernel_range() for one page — invalidate `va`, all ASIDs, on all CPUs
/// (inner shareable); on this one alone while it is the only CPU ([`TLBI_BROADCAST`]).
pub fn flush_tlb_kernel_page(va: u64) {
    let page = (va >> 12) & ((1 << 44) - 1);
    if TLBI_BROADCAST.load(Ordering::Relaxed) {
        tlbi!("ish", "vaae1is, {0}", page);
    } else {
        tlbi!("nsh", "vaae1, {0}", page);
    }
}

/// Linux: flush_tlb_all() — every entry, all CPUs; local_flush_tlb_all() while this is the
/// only CPU ([`TLBI_BROADCAST`]).
pub fn flush_tlb_all() {
    if TLBI_BROADCAST.load(Ordering::Relaxed) {
        tlbi!("ish", "vmalle1is");
    } else {
        tlbi!("nsh", "vmalle1");
    }
}

/// Linux: NO_BLOCK_MAPPINGS — map with pages only (no 1 GiB / 2 MiB blocks).
pub const NO_BLOCK_MAPPINGS: u32 = 1 << 0;
/// Linux: NO_CONT_MAPPINGS — never set the contiguous hint.
pub const NO_CONT_MAPPINGS: u32 = 1 << 1;
/// Linux: NO_EXEC_MAPPINGS — tables get PXNTable: nothing below them is executable.
pub const NO_EXEC_MAPPINGS: u32 = 1 << 2;
/// Ours: the caller invalidates the TLB for the whole range once the mapping is done (as
/// Linux's update_mapping_prot() does with flush_tlb_kernel_range()), so a live entry that
/// changes safely (pgattr_change_is_safe(): permissions only) is not flushed on its own.
/// Linux's init_pte() never flushes there: its set_pte() only writes. Without the flag each
/// changed live entry gets its own broadcast TLBI, which under QEMU stops every vCPU.
pub const FLUSH_BY_CALLER: u32 = 1 << 3;

/// Linux: CONT_PTES / CONT_PMDS — entries per contiguous run with 4 KiB pages.
pub const CONT_ENTRIES: u64 = 16;
/// Linux: CONT_PTE_SIZE (64 KiB) and CONT_PMD_SIZE (32 MiB).
pub const CONT_PTE_SIZE: u64 = CONT_ENTRIES << 12;
pub const CONT_PMD_SIZE: u64 = CONT_ENTRIES << PMD_SHIFT;

/// Table descriptor bit: PXNTable.
const TABLE_PXN: u64 = field(STAGE1_DESC::PXN_TABLE::SET);

/// log2 of the size one entry maps, per level.
pub const fn level_shift(level: u32) -> u32 {
    12 + 9 * (3 - level)
}

/// Linux: pgd_addr_end() and friends — the next `size` boundary after `addr`, or `end`.
/// Written as Linux does so that the last entry of the address space does not overflow.
pub const fn addr_end(addr: u64, end: u64, size: u64) -> u64 {
    let boundary = (addr & !(size - 1)).wrapping_add(size);
    if boundary.wrapping_sub(1) < end.wrapping_sub(1) {
        boundary
    } else {
        end
    }
}

/// How page-table pages are reached and obtained while a mapping is built: through the
/// fixmap during boot (the linear map does not exist yet), through the linear map after.
pub trait PgTableAccess {
    /// A writable pointer to the table page at `pa`, used as a table of `level`.
    fn table(&mut self, level: u32, pa: PhysAddr) -> *mut u64;
    /// A new, zeroed table page; None when there is no memory for one (the mapping then
    /// fails with [`PgtableNoMem`]).
    fn alloc_table(&mut self) -> Option<PhysAddr>;
    /// A new table page whose every entry the walker writes before it links the table in
    /// (a PTE table a mapping covers whole): its contents may be left as they are. By
    /// default [`alloc_table`](Self::alloc_table).
    fn alloc_table_overwritten(&mut self) -> Option<PhysAddr> {
        self.alloc_table()
    }
    /// Points entry `idx` of the level-`level` table at `pa` to a new next-level table
    /// (`desc`; the entry was empty). By default through [`table`](Self::table); an
    /// accessor whose tables at some level are read-only overrides it (arm64's PGD is
    /// written only through the fixmap, Linux's set_swapper_pgd()).
    fn set_table_entry(&mut self, level: u32, pa: PhysAddr, idx: usize, desc: Descriptor) {
        let t = self.table(level, pa);
        // SAFETY: `table()` returns the table mapped writable unless this is overridden;
        // the entry was empty, so no live mapping changes.
        unsafe { set_entry(t, idx, desc) };
    }
}

/// A mapping could not be completed: no page for a page table (Linux: -ENOMEM from
/// vmap_pages_range() or ioremap_page_range()). What was mapped before the failure stays
/// mapped; the caller unmaps its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PgtableNoMem;

/// Linux: pgattr_change_is_safe() — may a live entry change from `old` to `new` without
/// break-before-make? Only permission bits may change, and only on valid entries.
pub fn pgattr_change_is_safe(old: u64, new: u64) -> bool {
    let mask = PTE_PXN | PTE_RDONLY | PTE_WRITE | field(STAGE1_DESC::NG::SET);
    if old == 0 || new == 0 {
        return true;
    }
    let cont = field(STAGE1_DESC::CONT::SET);
    if (old | new) & cont != 0 {
        return false;
    }
    (old ^ new) & !mask == 0
}

/// Writes a leaf entry, with break-before-make when the change is not safe on a live entry.
/// `flush_each`: a live entry that changed is flushed here (false: [`FLUSH_BY_CALLER`]).
///
/// # Safety
/// `table` must be a writable table; `va` the address the entry maps (for the TLB flush).
unsafe fn set_leaf(table: *mut u64, index: usize, new: Descriptor, va: u64, flush_each: bool) {
    // SAFETY: the caller guarantees `table` is a writable table.
    let old = unsafe { get_entry(table, index) };
    if old == new {
        return;
    }
    if old.is_valid() && !pgattr_change_is_safe(old.0, new.0) {
        // SAFETY: as above; the TLB flush completes the break before the make.
        unsafe { set_entry(table, index, Descriptor(0)) };
        flush_tlb_kernel_page(va);
    }
    // SAFETY: as above.
    unsafe { set_entry(table, index, new) };
    if old.is_valid() && flush_each {
        flush_tlb_kernel_page(va);
    }
}

/// Linux: init_pte()'s set_pte() for one entry of a run — an empty entry is only written
/// (nothing to break, no TLB entry to flush; the caller issues the barrier that makes the
/// run visible to the table walker once, after it), another goes through [`set_leaf`].
/// Returns whether the entry was empty.
///
/// # Safety
/// As [`set_leaf`].
#[inline(always)]
unsafe fn set_pte_in_run(
    table: *mut u64,
    index: usize,
    new: u64,
    va: u64,
    flush_each: bool,
) -> bool {
    // SAFETY: the caller guarantees `table` is a writable table holding `index`.
    let slot = unsafe { table.add(index) };
    // SAFETY: as above.
    if unsafe { core::ptr::read_volatile(slot) } == 0 {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(slot, new) };
        return true;
    }
    // SAFETY: as above.
    unsafe { set_leaf(table, index, Descriptor(new), va, flush_each) };
    false
}

/// The mapping walker: Linux's alloc_init_pud / alloc_init_cont_pmd / init_pmd /
/// alloc_init_cont_pte / init_pte, one routine for all levels.
struct Mapper<'a> {
    access: &'a mut dyn PgTableAccess,
    prot: PgProt,
    flags: u32,
}

impl Mapper<'_> {
    /// Maps `[addr, end)` → `phys` in the level-`level` table at `table`, split into the
    /// 16-entry runs that may carry the contiguous hint (levels 2 and 3).
    /// `fresh`: the table was just allocated (all zero) and nothing else maps into it.
    fn map_level(
        &mut self,
        level: u32,
        table: PhysAddr,
        mut addr: u64,
        end: u64,
        mut phys: u64,
        fresh: bool,
    ) -> Result<(), PgtableNoMem> {
        let entry = 1u64 << level_shift(level);
        let blocks_ok = level == 3 || self.flags & NO_BLOCK_MAPPINGS == 0;
        // Runs of 16 only where they may carry the hint; otherwise a whole table at once.
        let cont_ok = level >= 2 && blocks_ok && self.flags & NO_CONT_MAPPINGS == 0;
        let run = if cont_ok {
            entry * CONT_ENTRIES
        } else {
            entry * PTRS_PER_TABLE as u64
        };
        while addr != end {
            let next = addr_end(addr, end, run);
            let cont = cont_ok && (addr | next | phys) & (run - 1) == 0;
            self.map_entries(level, table, addr, next, phys, cont, fresh)?;
            phys += next - addr;
            addr = next;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn map_entries(
        &mut self,
        level: u32,
        table: PhysAddr,
        mut addr: u64,
        end: u64,
        mut phys: u64,
        cont: bool,
        fresh: bool,
    ) -> Result<(), PgtableNoMem> {
        if level == 3 {
            self.map_ptes(table, addr, end, phys, cont, fresh);
            return Ok(());
        }
        let entry = 1u64 << level_shift(level);
        while addr != end {
            let next = addr_end(addr, end, entry);
            let idx = table_index(addr, level);
            let leaf = level == 3
                || (level >= 1
                    && self.flags & NO_BLOCK_MAPPINGS == 0
                    && (addr | next | phys) & (entry - 1) == 0);
            let t = self.access.table(level, table);
            if leaf {
                let mut prot = self.prot;
                if cont {
                    prot.0 |= field(STAGE1_DESC::CONT::SET);
                }
                let desc = if level == 3 {
                    Descriptor::page(PhysAddr(phys), prot)
                } else {
                    Descriptor::block(PhysAddr(phys), prot)
                };
                // SAFETY: `t` is the table the accessor just made writable.
                unsafe { set_leaf(t, idx, desc, addr, self.flags & FLUSH_BY_CALLER == 0) };
            } else {
                // SAFETY: as above.
                let old = unsafe { get_entry(t, idx) };
                if level == 2 && !old.is_valid() && next - addr == entry {
                    self.map_whole_new_pte_table(table, idx, addr, next, phys)?;
                    phys += next - addr;
                    addr = next;
                    continue;
                }
                let (next_table, new_table) = if old.is_table() {
                    (old.output_address(), false)
                } else {
                    assert!(
                        !old.is_valid(),
                        "cannot split the live {} mapping at {:#x} into a table",
                        if level == 1 { "1 GiB" } else { "2 MiB" },
                        addr
                    );
                    let pa = self.access.alloc_table().ok_or(PgtableNoMem)?;
                    self.link_table(level, table, idx, pa);
                    (pa, true)
                };
                self.map_level(level + 1, next_table, addr, next, phys, new_table)?;
            }
            phys += next - addr;
            addr = next;
        }
        Ok(())
    }
}

impl Mapper<'_> {
    /// A new PTE table for `[addr, end)`, the whole 2 MiB it covers, pointed at by entry
    /// `idx` of the PMD table `pmd`: filled before the PMD entry links it in, so it need not
    /// be zeroed first (Linux zeroes it, then init_pte() overwrites every entry) and no
    /// walker ever sees it half written. Out of line: the linear map takes it once a table,
    /// the page-at-a-time mappings (vmap) never, and their walk stays as it was.
    #[inline(never)]
    fn map_whole_new_pte_table(
        &mut self,
        pmd: PhysAddr,
        idx: usize,
        addr: u64,
        end: u64,
        phys: u64,
    ) -> Result<(), PgtableNoMem> {
        let pa = self.access.alloc_table_overwritten().ok_or(PgtableNoMem)?;
        self.map_level(3, pa, addr, end, phys, true)?;
        self.link_table(2, pmd, idx, pa);
        Ok(())
    }

    /// Linux: pmd_populate_kernel() and friends — points entry `idx` of the level-`level`
    /// table at the new next-level table `pa` (PXNTable under NO_EXEC_MAPPINGS).
    #[inline]
    fn link_table(&mut self, level: u32, table: PhysAddr, idx: usize, pa: PhysAddr) {
        let mut desc = Descriptor::table(pa);
        if self.flags & NO_EXEC_MAPPINGS != 0 {
            desc.0 |= TABLE_PXN;
        }
        self.access.set_table_entry(level, table, idx, desc);
    }

    /// Linux: init_pte() — the page entries of `[addr, end)` (within one PTE table) →
    /// `phys`: the table looked up once and each entry the descriptor template with its
    /// address, so that a linear map built from pages (rodata=full, Linux's default)
    /// costs a few instructions per page rather than a walk.
    /// `fresh`: the table was just allocated, so every entry is empty and written once.
    fn map_ptes(
        &mut self,
        table: PhysAddr,
        addr: u64,
        end: u64,
        phys: u64,
        cont: bool,
        fresh: bool,
    ) {
        let t = self.access.table(3, table);
        let mut prot = self.prot;
        if cont {
            prot.0 |= field(STAGE1_DESC::CONT::SET);
        }
        // The output address field of the template is 0; `phys` is page-aligned below
        // 2^48, so OR-ing it in is Descriptor::page(phys, prot).
        let template = Descriptor::page(PhysAddr(0), prot).0;
        let first = table_index(addr, 3);
        let n = ((end - addr) >> 12) as usize;
        assert!(first + n <= PTRS_PER_TABLE);
        if fresh {
            // SAFETY: `t` is the table the accessor just made writable, all zero, filled by
            // this walker alone (the hardware walker may read it meanwhile and sees each
            // entry go from invalid to valid); `first..first + n` are its indices.
            let entries = unsafe { core::slice::from_raw_parts_mut(t.add(first), n) };
            fill_ptes(entries, template | phys);
            // Once for the table.
            set_pte_barrier();
            return;
        }
        let flush_each = self.flags & FLUSH_BY_CALLER == 0;
        let mut written = false;
        for i in 0..n {
            let off = (i as u64) << 12;
            // SAFETY: `t` is the table the accessor just made writable; `first + i` is an
            // index of it (checked above).
            written |= unsafe {
                set_pte_in_run(
                    t,
                    first + i,
                    template | (phys + off),
                    addr + off,
                    flush_each,
                )
            };
        }
        if written {
            // Once for the run.
            set_pte_barrier();
        }
    }
}

/// Linux: init_pte()'s loop over a fresh table — `entries[i] = first + i * PAGE_SIZE`:
/// consecutive page descriptors (the output address sits above the attribute bits, so
/// adding a page to the descriptor adds it to the address), at 1.9 instructions an entry
/// instead of the 4.5 of the compiler's loop: eight entries a turn as four STP, the two descriptors of a pair
/// each stepped by two pages (the kernel is built with strict alignment, so the compiler
/// will not store vector registers to an 8-byte-aligned table and splits them through the
/// stack instead).
fn fill_ptes(entries: &mut [u64], first: u64) {
    const PAGE_SIZE: u64 = crate::mm::PAGE_SIZE;
    let mut desc = first;
    let mut i = 0;
    // Up to a 16-byte boundary, so that the pairs are aligned.
    while i < entries.len() && !(entries[i..].as_ptr() as usize).is_multiple_of(16) {
        entries[i] = desc;
        desc += PAGE_SIZE;
        i += 1;
    }
    let bulk = (entries.len() - i) & !7;
    if bulk != 0 {
        let p = entries[i..].as_mut_ptr();
        // SAFETY: `p .. p + bulk` are entries of the slice (`bulk` <= what is left),
        // 16-byte aligned; the asm writes exactly those `bulk` words.
        unsafe {
            core::arch::asm!(
                "add {d1}, {d0}, #1, lsl #12",
                "2:",
                "stp {d0}, {d1}, [{p}]",
                "add {d0}, {d0}, #2, lsl #12",
                "add {d1}, {d1}, #2, lsl #12",
                "stp {d0}, {d1}, [{p}, #16]",
                "add {d0}, {d0}, #2, lsl #12",
                "add {d1}, {d1}, #2, lsl #12",
                "stp {d0}, {d1}, [{p}, #32]",
                "add {d0}, {d0}, #2, lsl #12",
                "add {d1}, {d1}, #2, lsl #12",
                "stp {d0}, {d1}, [{p}, #48]",
                "add {d0}, {d0}, #2, lsl #12",
                "add {d1}, {d1}, #2, lsl #12",
                "add {p}, {p}, #64",
                "cmp {p}, {end}",
                "b.ne 2b",
                p = inout(reg) p => _,
                end = in(reg) p.wrapping_add(bulk),
                d0 = inout(reg) desc => _,
                d1 = out(reg) _,
                options(nostack)
            )
        };
        desc += bulk as u64 * PAGE_SIZE;
        i += bulk;
    }
    for e in &mut entries[i..] {
        *e = desc;
        desc += PAGE_SIZE;
    }
}

impl Mapper<'_> {
    /// Linux: pte_alloc_kernel() at the end of vmap_p4d/pud/pmd_range()'s walk — the PTE
    /// table that maps `addr`, made and linked in where it does not exist yet.
    fn pte_table(&mut self, pgd: PhysAddr, addr: u64) -> Result<PhysAddr, PgtableNoMem> {
        let mut table = pgd;
        for level in 0..3 {
            let idx = table_index(addr, level);
            let t = self.access.table(level, table);
            // SAFETY: `t` is the table the accessor just made readable; `idx` < 512.
            let old = unsafe { get_entry(t, idx) };
            table = if old.is_table() {
                old.output_address()
            } else {
                assert!(
                    !old.is_valid(),
                    "vmap_pages: {:#x} lies inside a block mapping",
                    addr
                );
                let pa = self.access.alloc_table().ok_or(PgtableNoMem)?;
                self.link_table(level, table, idx, pa);
                pa
            };
        }
        Ok(table)
    }
}

/// Linux: vmap_pages_range() — map the `n` pages `phys(0)`, …, `phys(n - 1)` at the
/// page-aligned `va`, one after the other, with `prot` in the tables rooted at `pgd`. Each
/// PTE table is reached once (vmap_pte_range()'s loop), not once a page. The entries are
/// expected empty; one that is not is changed as [`set_leaf`] allows. No memory for a
/// table is returned to the caller; what was mapped stays mapped, and the caller unmaps.
pub fn vmap_pages(
    pgd: PhysAddr,
    va: u64,
    n: usize,
    phys: &mut dyn FnMut(usize) -> PhysAddr,
    prot: PgProt,
    access: &mut dyn PgTableAccess,
) -> Result<(), PgtableNoMem> {
    assert!(va & 0xfff == 0, "vmap_pages: {:#x} is not page-aligned", va);
    let mut m = Mapper {
        access,
        prot,
        flags: NO_BLOCK_MAPPINGS | NO_CONT_MAPPINGS,
    };
    // The output address field of the template is 0; a page-aligned address below 2^48
    // OR-ed in is Descriptor::page(phys, prot).
    let template = Descriptor::page(PhysAddr(0), prot).0;
    let mut i = 0;
    let mut result = Ok(());
    while i < n {
        let addr = va + ((i as u64) << 12);
        let pte = match m.pte_table(pgd, addr) {
            Ok(pte) => pte,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        let t = m.access.table(3, pte);
        let first = table_index(addr, 3);
        let count = (PTRS_PER_TABLE - first).min(n - i);
        for k in 0..count {
            let new = template | (phys(i + k).as_u64() & !0xfff);
            let at = addr + ((k as u64) << 12);
            // SAFETY: `t` is the table the accessor just made writable; `first + k` < 512.
            unsafe { set_pte_in_run(t, first + k, new, at, true) };
        }
        i += count;
    }
    // Once for the range.
    set_pte_barrier();
    result
}

/// Linux: __create_pgd_mapping() — map `[virt, virt + size)` to `phys` with `prot` in the
/// tables rooted at `pgd`, using the largest blocks and contiguous runs that fit unless
/// `flags` forbid them. For mappings that must exist (the kernel, the linear map, the
/// vmemmap): no memory for a table is fatal, as Linux's pgtable allocators panic.
pub fn create_pgd_mapping(
    pgd: PhysAddr,
    phys: PhysAddr,
    virt: u64,
    size: u64,
    prot: PgProt,
    flags: u32,
    access: &mut dyn PgTableAccess,
) {
    if try_create_pgd_mapping(pgd, phys, virt, size, prot, flags, access).is_err() {
        panic!("Failed to allocate page table page");
    }
}

/// [`create_pgd_mapping`] for mappings that may fail (vmalloc, ioremap): no memory for a
/// table is returned to the caller.
pub fn try_create_pgd_mapping(
    pgd: PhysAddr,
    phys: PhysAddr,
    virt: u64,
    size: u64,
    prot: PgProt,
    flags: u32,
    access: &mut dyn PgTableAccess,
) -> Result<(), PgtableNoMem> {
    let phys = phys.as_u64() & !0xfff;
    let addr = virt & !0xfff;
    let end = crate::mm::addr::align_up(virt + size, 4096);
    assert_eq!(
        virt & 0xfff,
        phys & 0xfff,
        "virt and phys must share the page offset"
    );
    let mut m = Mapper {
        access,
        prot,
        flags,
    };
    m.map_level(0, pgd, addr, end, phys, false)
}

/// The attributes bits that are not the output address, type or valid bits.
pub fn desc_attrs(d: Descriptor) -> u64 {
    d.0 & !(field(STAGE1_DESC::OUTPUT_ADDR::SET)
        | field(STAGE1_DESC::TYPE::SET)
        | field(STAGE1_DESC::VALID::SET))
}

/// One step of a table walk: the entry found at `level` for `va`.
#[derive(Clone, Copy, Debug)]
pub struct WalkEntry {
    pub level: u32,
    pub desc: Descriptor,
}

/// Walks the tables at `pgd` for `va`; returns the leaf (or the first invalid entry).
pub fn walk(pgd: PhysAddr, va: u64, access: &mut dyn PgTableAccess) -> WalkEntry {
    let mut table = pgd;
    for level in 0..4 {
        let t = access.table(level, table);
        // SAFETY: the accessor returned a readable table for `table`.
        let desc = unsafe { get_entry(t, table_index(va, level)) };
        if !desc.is_valid() || level == 3 || !desc.is_table() {
            return WalkEntry { level, desc };
        }
        table = desc.output_address();
    }
    unreachable!()
}
