//! The software IO TLB: a bounce buffer in low memory for DMA to or from memory a device
//! cannot address (Linux 6.1: kernel/dma/swiotlb.c, include/linux/swiotlb.h).
//!
//! arm64's mem_init() calls [`swiotlb_init`] when memory reaches above the DMA limit
//! (`max_pfn > PFN_DOWN(arm64_dma_phys_limit)`), or `swiotlb=force` asks for the buffer
//! anyway. The buffer — 64 MiB by default, `swiotlb=<nslabs>` slabs of 2 KiB otherwise —
//! comes from memblock_alloc_low(): top-down below ARCH_LOW_ADDRESS_LIMIT, the last byte of
//! ZONE_DMA. It is cut into slots of IO_TLB_SIZE (2 KiB), grouped in segments of
//! IO_TLB_SEGSIZE slots that no mapping crosses, and the slots into one area per possible
//! CPU (rounded up to a power of two), each with its own lock, so that CPUs map in parallel.
//!
//! Each free slot's `list` counts the free slots from it to the end of its free run inside
//! the segment (0: in use), so a mapping of N slots needs one slot with `list >= N`. A map
//! bounces the original buffer's bytes into the slots (always, whatever the direction, so
//! that stale buffer contents never reach a device); an unmap or a sync for the CPU copies
//! what the device wrote back for DMA_FROM_DEVICE and DMA_BIDIRECTIONAL.
//!
//! The slot search keeps the 6.1.y stable series' alignment rules: a mapping is at least
//! slot aligned, `alloc_align_mask` aligns it further, a device's `min_align_mask` keeps the
//! original address's low bits in the bounce address, and a mapping of a page or more with
//! neither starts on a page.
//!
//! This file is a kernel service below mm: what it needs of memblock, the linear map and the
//! CPU comes through [`SwiotlbEnv`] and [`SwiotlbHooks`], which arch's mem_init() fills in.

use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::include::cache::SMP_CACHE_BYTES;
use crate::kernel::params::{simple_strtoull, SetupResult};
use crate::mm::addr::{align_up, PhysAddr, PAGE_SIZE};

/// Linux: IO_TLB_SHIFT — a slot is 2 KiB.
pub const IO_TLB_SHIFT: u32 = 11;
/// Linux: IO_TLB_SIZE.
pub const IO_TLB_SIZE: u64 = 1 << IO_TLB_SHIFT;
/// Linux: IO_TLB_SEGSIZE — the most slots one mapping may take; no mapping crosses a
/// multiple of it.
pub const IO_TLB_SEGSIZE: u64 = 128;
/// Linux: IO_TLB_DEFAULT_SIZE.
pub const IO_TLB_DEFAULT_SIZE: u64 = 64 << 20;

/// Linux: SWIOTLB_VERBOSE — print the buffer's place once it is set up.
pub const SWIOTLB_VERBOSE: u32 = 1 << 0;
/// Linux: SWIOTLB_FORCE — bounce every mapping.
pub const SWIOTLB_FORCE: u32 = 1 << 1;
/// Linux: SWIOTLB_ANY — the buffer may be anywhere, not only in low memory.
pub const SWIOTLB_ANY: u32 = 1 << 2;

/// Linux: INVALID_PHYS_ADDR — a slot that maps nothing.
pub const INVALID_PHYS_ADDR: u64 = u64::MAX;
/// Linux: DMA_MAPPING_ERROR — what a failed map returns.
pub const DMA_MAPPING_ERROR: u64 = u64::MAX;
/// Linux: DMA_ATTR_SKIP_CPU_SYNC — unmap without copying back.
pub const DMA_ATTR_SKIP_CPU_SYNC: u64 = 1 << 5;
/// Linux: DMA_ATTR_NO_WARN — fail a map silently.
pub const DMA_ATTR_NO_WARN: u64 = 1 << 8;

/// Linux: DEFAULT_RATELIMIT_INTERVAL (5 * HZ) and DEFAULT_RATELIMIT_BURST, which
/// dev_warn_ratelimited() applies.
const RATELIMIT_INTERVAL_NS: u64 = 5_000_000_000;
const RATELIMIT_BURST: u32 = 10;

/// Linux: enum dma_data_direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaDataDirection {
    Bidirectional = 0,
    ToDevice = 1,
    FromDevice = 2,
    None = 3,
}

/// What swiotlb reads of a device (Linux: the parts of `struct device` it asks about).
#[derive(Clone, Copy, Debug)]
pub struct Device {
    /// Linux: dev_driver_string(), the first word of the device's messages.
    pub driver: &'static str,
    /// Linux: dev_name().
    pub name: &'static str,
    /// Linux: dma_get_min_align_mask() — address bits a bounce address keeps from the
    /// original (NVMe's 4 KiB PRP offsets, for one).
    pub min_align_mask: u32,
    /// Linux: dma_get_seg_boundary() — no mapping crosses a multiple of this mask + 1.
    pub seg_boundary_mask: u64,
}

impl Device {
    /// A device without DMA constraints (Linux's defaults: no minimum alignment, no
    /// segment boundary).
    pub const fn new(driver: &'static str, name: &'static str) -> Self {
        Self {
            driver,
            name,
            min_align_mask: 0,
            seg_boundary_mask: u64::MAX,
        }
    }
}

/// dev_printk()'s prefix: `driver name`.
impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.driver, self.name)
    }
}

/// Linux: nr_slots().
const fn nr_slots(val: u64) -> u64 {
    val.div_ceil(IO_TLB_SIZE)
}

/// Linux: io_tlb_offset() — a slot's place in its segment.
const fn io_tlb_offset(idx: u64) -> u64 {
    idx & (IO_TLB_SEGSIZE - 1)
}

/// Linux: slot_addr().
const fn slot_addr(start: u64, idx: u64) -> u64 {
    start + (idx << IO_TLB_SHIFT)
}

/// Linux: get_max_slots() — a boundary mask in slots.
const fn get_max_slots(boundary_mask: u64) -> u64 {
    if boundary_mask == u64::MAX {
        1 << (64 - IO_TLB_SHIFT)
    } else {
        nr_slots(boundary_mask + 1)
    }
}

/// Linux: iommu_is_span_boundary() — would `nr` slots from `index` cross a boundary?
const fn iommu_is_span_boundary(index: u64, nr: u64, shift: u64, boundary_size: u64) -> bool {
    let shift = (shift + index) & (boundary_size - 1);
    shift + nr > boundary_size
}

/// Linux: swiotlb_align_offset() — the original's offset a bounce address keeps.
const fn swiotlb_align_offset(dev: &Device, addr: u64) -> u64 {
    addr & dev.min_align_mask as u64 & (IO_TLB_SIZE - 1)
}

/// The file-level settings of Linux's swiotlb.c: `default_nslabs`, `default_nareas`,
/// `swiotlb_force_bounce`, `swiotlb_force_disable`, which `swiotlb=` sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwiotlbConfig {
    pub default_nslabs: u64,
    /// 0 until `swiotlb=` or swiotlb_init() sets it.
    pub default_nareas: u32,
    pub force_bounce: bool,
    pub force_disable: bool,
}

impl Default for SwiotlbConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl SwiotlbConfig {
    /// The defaults: 64 MiB of slabs, areas not chosen yet, no forcing.
    pub const fn new() -> Self {
        Self {
            default_nslabs: IO_TLB_DEFAULT_SIZE >> IO_TLB_SHIFT,
            default_nareas: 0,
            force_bounce: false,
            force_disable: false,
        }
    }

    /// Linux: round_up_default_nslabs() — at least a segment per area, and a power of two
    /// so that the areas are equal. True if it changed the size.
    fn round_up_default_nslabs(&mut self) -> bool {
        if self.default_nareas == 0 {
            return false;
        }
        let min = IO_TLB_SEGSIZE * self.default_nareas as u64;
        if self.default_nslabs < min {
            self.default_nslabs = min;
        } else if self.default_nslabs.is_power_of_two() {
            return false;
        }
        self.default_nslabs = self.default_nslabs.next_power_of_two();
        true
    }

    /// Linux: swiotlb_adjust_nareas() — `nareas` rounded up to a power of two (0 counts as
    /// one), and the slab count grown to fit them.
    pub fn adjust_nareas(&mut self, nareas: u32) {
        let nareas = match nareas {
            0 => 1,
            n => n.checked_next_power_of_two().unwrap_or(1 << 31),
        };
        self.default_nareas = nareas;
        pr_info!("software IO TLB: area num {}.", nareas);
        if self.round_up_default_nslabs() {
            pr_info!(
                "software IO TLB: SWIOTLB bounce buffer size roundup to {}MB",
                (self.default_nslabs << IO_TLB_SHIFT) >> 20
            );
        }
    }

    /// Linux: setup_io_tlb_npages() — `swiotlb=<nslabs>[,<nareas>][,force|noforce]`. The
    /// slab count is aligned up to a whole segment. Linux ignores what it does not
    /// understand; so does this, after applying what it did, but it reports it as malformed.
    pub fn setup_io_tlb_npages(&mut self, val: Option<&str>) -> SetupResult {
        const USAGE: &str = "expected swiotlb=<nslabs>[,<nareas>][,force|noforce]";
        let mut s = val.ok_or(USAGE)?;
        let digit = |s: &str| s.as_bytes().first().is_some_and(u8::is_ascii_digit);
        if digit(s) {
            let (v, used) = simple_strtoull(s);
            // Linux: ALIGN(simple_strtoul(...), IO_TLB_SEGSIZE), wrapping as C does.
            self.default_nslabs = v.wrapping_add(IO_TLB_SEGSIZE - 1) & !(IO_TLB_SEGSIZE - 1);
            s = &s[used.max(1)..];
        }
        s = s.strip_prefix(',').unwrap_or(s);
        if digit(s) {
            let (v, used) = simple_strtoull(s);
            self.adjust_nareas(v as u32);
            s = &s[used.max(1)..];
        }
        s = s.strip_prefix(',').unwrap_or(s);
        match s {
            "force" => self.force_bounce = true,
            "noforce" => self.force_disable = true,
            "" => {}
            _ => return Err(USAGE),
        }
        Ok(())
    }
}

/// The settings `swiotlb=` leaves for swiotlb_init().
static CONFIG: spin::Mutex<SwiotlbConfig> = spin::Mutex::new(SwiotlbConfig::new());

fn setup_io_tlb_npages(val: Option<&str>) -> SetupResult {
    CONFIG.lock().setup_io_tlb_npages(val)
}
crate::early_param!("swiotlb", setup_io_tlb_npages);

/// The settings as `swiotlb=` left them (for reports and tests).
pub fn swiotlb_config() -> SwiotlbConfig {
    *CONFIG.lock()
}

/// What a buffer asks of the arch once it is set up.
#[derive(Clone, Copy)]
pub struct SwiotlbHooks {
    /// Linux: phys_to_virt() — where the kernel sees an original buffer.
    pub phys_to_virt: fn(PhysAddr) -> *mut u8,
    /// Linux: __pa() of what memblock handed out.
    pub virt_to_phys: fn(*const u8) -> PhysAddr,
    /// Linux: raw_smp_processor_id() — which area a CPU searches first.
    pub smp_processor_id: fn() -> usize,
    /// The clock dev_warn_ratelimited() counts its interval on, in nanoseconds.
    pub clock_ns: fn() -> u64,
    /// Linux: memset(p, 0, len) — zeroes the new buffer (arm64's memset uses DC ZVA for
    /// large blocks; so does the arch's hook).
    ///
    /// The hook's contract (`# Safety`): `p` maps `len` writable bytes nobody else uses.
    pub memzero: unsafe fn(*mut u8, usize),
}

/// What swiotlb_init() asks of memblock and the machine.
pub struct SwiotlbEnv<'e> {
    /// Linux: memblock_alloc_low() — top-down below ARCH_LOW_ADDRESS_LIMIT. For the
    /// buffer only, which [`IoTlbMem::init`] zeroes: Linux zeroes it twice (memblock, then
    /// swiotlb_init_io_tlb_mem's memset), which costs 51 ms of boot under `-icount` for
    /// the same zeroes, so the hook may hand out memory as it is.
    pub memblock_alloc_low: &'e mut dyn FnMut(u64, u64) -> Option<NonNull<u8>>,
    /// Linux: memblock_alloc() — zeroed memory anywhere memblock may allocate.
    pub memblock_alloc: &'e mut dyn FnMut(u64, u64) -> Option<NonNull<u8>>,
    /// Linux: num_possible_cpus().
    pub num_possible_cpus: usize,
    pub hooks: SwiotlbHooks,
}

/// Linux: struct io_tlb_slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoTlbSlot {
    /// The original address this slot bounces (INVALID_PHYS_ADDR when free).
    pub orig_addr: u64,
    /// The bytes of the mapping from this slot on.
    pub alloc_size: usize,
    /// Free slots from here to the end of the free run in the segment; 0 when in use.
    pub list: u32,
}

/// Linux: struct io_tlb_area's counters, under its lock.
struct AreaState {
    /// Slots in use.
    used: u64,
    /// Where the next search starts.
    index: u64,
}

/// Linux: struct io_tlb_area — a share of the slots with its own lock.
pub struct IoTlbArea(spin::Mutex<AreaState>);

/// Linux's dev_warn_ratelimited() state (`struct ratelimit_state`).
struct Ratelimit {
    begin: Option<u64>,
    printed: u32,
    missed: u32,
}

/// Linux: struct io_tlb_mem — one bounce buffer, its slots and its areas.
pub struct IoTlbMem {
    /// The buffer's first byte, physical.
    pub start: PhysAddr,
    /// One past its last byte.
    pub end: PhysAddr,
    vaddr: NonNull<u8>,
    pub nslabs: u64,
    pub nareas: u32,
    pub area_nslabs: u64,
    /// Linux: mem->force_bounce (`swiotlb=force` or SWIOTLB_FORCE).
    pub force_bounce: bool,
    pub late_alloc: bool,
    slots: NonNull<IoTlbSlot>,
    areas: NonNull<IoTlbArea>,
    hooks: SwiotlbHooks,
    ratelimit: spin::Mutex<Ratelimit>,
}

// SAFETY: the slots are read and written only under the lock of the area they belong to,
// except that a mapping's own slots are read (swiotlb_bounce) and given their orig_addr
// (swiotlb_tbl_map_single) by the mapping's owner between finding and releasing them, when
// no search can take them; the buffer's bytes likewise belong to the mappings' owners.
unsafe impl Send for IoTlbMem {}
// SAFETY: as for Send.
unsafe impl Sync for IoTlbMem {}

/// Linux: dev_WARN_ONCE() — once per call site, through WARN().
#[track_caller]
fn dev_warn_once(once: &AtomicBool, dev: &Device, msg: fmt::Arguments) {
    if !once.swap(true, Ordering::Relaxed) {
        crate::kernel::bug::warn(format_args!("{}: {}", dev, msg));
    }
}

static WARN_BEFORE_START: AtomicBool = AtomicBool::new(false);
static WARN_OVERFLOW_OFFSET: AtomicBool = AtomicBool::new(false);
static WARN_OVERFLOW_SIZE: AtomicBool = AtomicBool::new(false);
static WARN_INVALID_SIZES: AtomicBool = AtomicBool::new(false);

impl IoTlbMem {
    /// Linux: swiotlb_init_io_tlb_mem() — every slot free (each segment one free run), the
    /// areas empty, the buffer zeroed.
    ///
    /// # Safety
    /// `vaddr` is a writable mapping of the `nslabs << IO_TLB_SHIFT` bytes at `start`;
    /// `slots` has room for `nslabs` [`IoTlbSlot`]s and `areas` for `nareas` [`IoTlbArea`]s,
    /// both aligned for them; nothing else uses any of it while the `IoTlbMem` lives.
    /// `nareas` is a power of two and `nslabs / nareas` a multiple of IO_TLB_SEGSIZE (what
    /// [`SwiotlbConfig::adjust_nareas`] guarantees).
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn init(
        start: PhysAddr,
        vaddr: NonNull<u8>,
        nslabs: u64,
        flags: u32,
        late_alloc: bool,
        nareas: u32,
        slots: NonNull<IoTlbSlot>,
        areas: NonNull<IoTlbArea>,
        hooks: SwiotlbHooks,
    ) -> Self {
        let bytes = nslabs << IO_TLB_SHIFT;
        for i in 0..nareas as usize {
            // SAFETY: `areas` has room for `nareas` areas (the caller's contract).
            unsafe {
                areas
                    .as_ptr()
                    .add(i)
                    .write(IoTlbArea(spin::Mutex::new(AreaState { used: 0, index: 0 })))
            };
        }
        for i in 0..nslabs {
            // SAFETY: `slots` has room for `nslabs` slots (the caller's contract).
            unsafe {
                slots.as_ptr().add(i as usize).write(IoTlbSlot {
                    orig_addr: INVALID_PHYS_ADDR,
                    alloc_size: 0,
                    list: (IO_TLB_SEGSIZE - io_tlb_offset(i)) as u32,
                })
            };
        }
        // SAFETY: `vaddr` maps `bytes` writable bytes only we use (the caller's contract).
        unsafe { (hooks.memzero)(vaddr.as_ptr(), bytes as usize) };
        Self {
            start,
            end: PhysAddr(start.0 + bytes),
            vaddr,
            nslabs,
            nareas,
            area_nslabs: nslabs / nareas as u64,
            force_bounce: flags & SWIOTLB_FORCE != 0,
            late_alloc,
            slots,
            areas,
            hooks,
            ratelimit: spin::Mutex::new(Ratelimit {
                begin: None,
                printed: 0,
                missed: 0,
            }),
        }
    }

    fn area(&self, i: u64) -> &IoTlbArea {
        assert!(i < self.nareas as u64);
        // SAFETY: `areas` holds `nareas` initialised areas for the life of `self` (init's
        // contract), and `i` is below it.
        unsafe { &*self.areas.as_ptr().add(i as usize) }
    }

    /// A slot's pointer.
    ///
    /// # Safety
    /// The caller holds the lock of the slot's area, or owns the live mapping the slot
    /// belongs to (see the `Sync` impl).
    unsafe fn slot(&self, i: u64) -> *mut IoTlbSlot {
        assert!(i < self.nslabs, "slot {} of {}", i, self.nslabs);
        // SAFETY: `slots` holds `nslabs` slots (init's contract) and `i` is below it.
        unsafe { self.slots.as_ptr().add(i as usize) }
    }

    /// A copy of slot `i` (for tests and reports; racy against concurrent maps).
    pub fn slot_snapshot(&self, i: u64) -> IoTlbSlot {
        let _g = self.area(i / self.area_nslabs).0.lock();
        // SAFETY: the slot's area lock is held.
        unsafe { self.slot(i).read() }
    }

    /// Linux: wrap_area_index().
    fn wrap_area_index(&self, index: u64) -> u64 {
        if index >= self.area_nslabs {
            0
        } else {
            index
        }
    }

    /// Linux: swiotlb_do_find_slots() — `nslots` free slots in area `area_index` that keep
    /// the alignment rules and cross no segment or device boundary; marks them used.
    fn do_find_slots(
        &self,
        dev: &Device,
        area_index: u64,
        orig_addr: u64,
        alloc_size: u64,
        alloc_align_mask: u64,
    ) -> Option<u64> {
        let boundary_mask = dev.seg_boundary_mask;
        let tbl_dma_addr = self.start.0 & boundary_mask;
        let max_slots = get_max_slots(boundary_mask);
        let mut iotlb_align_mask = dev.min_align_mask as u64;
        let mut alloc_align_mask = alloc_align_mask;
        let nslots = nr_slots(alloc_size);
        let offset = swiotlb_align_offset(dev, orig_addr);
        assert!(nslots != 0, "swiotlb: a mapping of 0 bytes");

        // Historically allocations of a page or more were page aligned when nothing else
        // asked for an alignment; keep that for streaming mappings.
        if alloc_align_mask == 0 && iotlb_align_mask == 0 && alloc_size >= PAGE_SIZE {
            alloc_align_mask = PAGE_SIZE - 1;
        }
        // At least slot aligned; the bits the offset keeps need no matching slot.
        alloc_align_mask |= IO_TLB_SIZE - 1;
        iotlb_align_mask &= !alloc_align_mask;
        // With an alignment requirement, do not look at the slots in between.
        let stride = get_max_slots(alloc_align_mask.max(iotlb_align_mask));

        let area = self.area(area_index);
        let mut st = area.0.lock();
        if nslots > self.area_nslabs - st.used {
            return None;
        }
        let slot_base = area_index * self.area_nslabs;
        let wrap = self.wrap_area_index(align_up(st.index, stride));
        let mut index = wrap;
        // A guard Linux's loop does not have: when the slots that fit the original's
        // alignment never land on `wrap` again, stop after visiting each slot once.
        let mut budget = self.area_nslabs + 1;
        let found = loop {
            let slot_index = slot_base + index;
            if orig_addr != 0
                && slot_addr(tbl_dma_addr, slot_index) & iotlb_align_mask
                    != orig_addr & iotlb_align_mask
            {
                index = self.wrap_area_index(index + 1);
            } else {
                // SAFETY: the area's lock is held and the slot is in the area.
                let list = unsafe { (*self.slot(slot_index)).list } as u64;
                if !iommu_is_span_boundary(slot_index, nslots, nr_slots(tbl_dma_addr), max_slots)
                    && list >= nslots
                {
                    break slot_index;
                }
                index = self.wrap_area_index(index + stride);
            }
            budget -= 1;
            if index == wrap || budget == 0 {
                return None;
            }
        };

        for i in found..found + nslots {
            // SAFETY: the area's lock is held; the run lies inside one segment of the area.
            unsafe {
                let s = self.slot(i);
                (*s).list = 0;
                // As Linux's size_t arithmetic: wraps if the offset outgrows the last slot.
                (*s).alloc_size =
                    alloc_size.wrapping_sub(offset + ((i - found) << IO_TLB_SHIFT)) as usize;
            }
        }
        // The free slots before the run in its segment now end where the run starts.
        let mut count = 0u32;
        let mut i = found.wrapping_sub(1);
        // SAFETY (both blocks): the area's lock is held; `i` stays in the run's segment,
        // which lies in the area.
        while io_tlb_offset(i) != IO_TLB_SEGSIZE - 1 && unsafe { (*self.slot(i)).list } != 0 {
            count += 1;
            unsafe { (*self.slot(i)).list = count };
            i = i.wrapping_sub(1);
        }
        let index = found - slot_base;
        st.index = if index + nslots < self.area_nslabs {
            index + nslots
        } else {
            0
        };
        st.used += nslots;
        Some(found)
    }

    /// Linux: swiotlb_find_slots() — this CPU's area first, then the others in turn.
    fn find_slots(
        &self,
        dev: &Device,
        orig_addr: u64,
        alloc_size: u64,
        alloc_align_mask: u64,
    ) -> Option<u64> {
        let nareas = self.nareas as u64;
        let start = (self.hooks.smp_processor_id)() as u64 & (nareas - 1);
        let mut i = start;
        loop {
            if let Some(index) = self.do_find_slots(dev, i, orig_addr, alloc_size, alloc_align_mask)
            {
                return Some(index);
            }
            i = if i + 1 >= nareas { 0 } else { i + 1 };
            if i == start {
                return None;
            }
        }
    }

    /// Linux: mem_used() — slots in use over all areas.
    pub fn mem_used(&self) -> u64 {
        (0..self.nareas as u64)
            .map(|i| self.area(i).0.lock().used)
            .sum()
    }

    /// Slots in use in area `i`.
    pub fn area_used(&self, i: u32) -> u64 {
        self.area(i as u64).0.lock().used
    }

    /// Linux: __ratelimit() for dev_warn_ratelimited(): true if the message may print.
    fn ratelimit(&self, func: &str) -> bool {
        let now = (self.hooks.clock_ns)();
        let mut rs = self.ratelimit.lock();
        let begin = *rs.begin.get_or_insert(now);
        if now.saturating_sub(begin) >= RATELIMIT_INTERVAL_NS {
            if rs.missed != 0 {
                pr_warn!("{}: {} callbacks suppressed", func, rs.missed);
                rs.missed = 0;
            }
            rs.begin = Some(now);
            rs.printed = 0;
        }
        if rs.printed < RATELIMIT_BURST {
            rs.printed += 1;
            true
        } else {
            rs.missed += 1;
            false
        }
    }

    /// Linux: swiotlb_bounce() — copy between the original buffer and the bounce slots,
    /// `size` bytes from `tlb_addr` (which may lie inside a mapping: a partial sync).
    fn bounce(&self, dev: &Device, tlb_addr: u64, size: usize, dir: DmaDataDirection) {
        let index = (tlb_addr - self.start.0) >> IO_TLB_SHIFT;
        // SAFETY: the caller owns the live mapping `tlb_addr` lies in (map/unmap/sync).
        let slot = unsafe { self.slot(index).read() };
        let (mut orig_addr, mut alloc_size) = (slot.orig_addr, slot.alloc_size);
        if orig_addr == INVALID_PHYS_ADDR {
            return;
        }
        let mut tlb_offset = tlb_addr & (IO_TLB_SIZE - 1);
        let orig_addr_offset = swiotlb_align_offset(dev, orig_addr);
        if tlb_offset < orig_addr_offset {
            dev_warn_once(
                &WARN_BEFORE_START,
                dev,
                format_args!(
                    "Access before mapping start detected. orig offset {}, requested offset {}.",
                    orig_addr_offset, tlb_offset
                ),
            );
            return;
        }
        tlb_offset -= orig_addr_offset;
        if tlb_offset as usize > alloc_size {
            dev_warn_once(
                &WARN_OVERFLOW_OFFSET,
                dev,
                format_args!(
                    "Buffer overflow detected. Allocation size: {}. Mapping size: {}+{}.",
                    alloc_size, size, tlb_offset
                ),
            );
            return;
        }
        orig_addr += tlb_offset;
        alloc_size -= tlb_offset as usize;
        let mut size = size;
        if size > alloc_size {
            dev_warn_once(
                &WARN_OVERFLOW_SIZE,
                dev,
                format_args!(
                    "Buffer overflow detected. Allocation size: {}. Mapping size: {}.",
                    alloc_size, size
                ),
            );
            size = alloc_size;
        }
        let orig = (self.hooks.phys_to_virt)(PhysAddr(orig_addr));
        // SAFETY: the bounce bytes lie in the buffer (`vaddr` maps it), `size` bytes from
        // `tlb_addr` stay inside the mapping (clipped to alloc_size above), and the original
        // buffer's `size` bytes are the mapping owner's, mapped by phys_to_virt; a bounce
        // buffer never overlaps the memory it bounces.
        unsafe {
            let tlb = self.vaddr.as_ptr().add((tlb_addr - self.start.0) as usize);
            if dir == DmaDataDirection::ToDevice {
                core::ptr::copy_nonoverlapping(orig, tlb, size);
            } else {
                core::ptr::copy_nonoverlapping(tlb, orig, size);
            }
        }
    }

    /// Linux: swiotlb_tbl_map_single() — bounce slots for `mapping_size` bytes at
    /// `orig_addr` (`alloc_size` reserved), filled from the original; returns the bounce
    /// address the device is given, or DMA_MAPPING_ERROR.
    #[allow(clippy::too_many_arguments)]
    pub fn tbl_map_single(
        &self,
        dev: &Device,
        orig_addr: PhysAddr,
        mapping_size: usize,
        alloc_size: usize,
        alloc_align_mask: u64,
        _dir: DmaDataDirection,
        attrs: u64,
    ) -> u64 {
        let orig = orig_addr.0;
        let offset = swiotlb_align_offset(dev, orig);
        if mapping_size > alloc_size {
            dev_warn_once(
                &WARN_INVALID_SIZES,
                dev,
                format_args!(
                    "Invalid sizes (mapping: {} bytes, alloc: {} bytes)",
                    mapping_size, alloc_size
                ),
            );
            return DMA_MAPPING_ERROR;
        }
        let Some(index) = self.find_slots(dev, orig, alloc_size as u64 + offset, alloc_align_mask)
        else {
            if attrs & DMA_ATTR_NO_WARN == 0 && self.ratelimit("swiotlb_tbl_map_single") {
                pr_warn!(
                    "{}: swiotlb buffer is full (sz: {} bytes), total {} (slots), used {} (slots)",
                    dev,
                    alloc_size,
                    self.nslabs,
                    self.mem_used()
                );
            }
            return DMA_MAPPING_ERROR;
        };
        // Record where each slot's bytes come from, for the syncs and the unmap.
        for i in 0..nr_slots(alloc_size as u64 + offset) {
            // SAFETY: the slots were just found for this mapping, which the caller owns.
            unsafe { (*self.slot(index + i)).orig_addr = slot_addr(orig, i) };
        }
        let tlb_addr = slot_addr(self.start.0, index) + offset;
        // Always copy in, whatever the direction: a device that writes less than the whole
        // buffer must not expose what the slots held before.
        self.bounce(dev, tlb_addr, mapping_size, DmaDataDirection::ToDevice);
        tlb_addr
    }

    /// Linux: swiotlb_release_slots() — give a mapping's slots back, merging them with the
    /// free runs after and before them in the segment.
    fn release_slots(&self, dev: &Device, tlb_addr: u64) {
        let offset = swiotlb_align_offset(dev, tlb_addr);
        let index = (tlb_addr - offset - self.start.0) >> IO_TLB_SHIFT;
        let aindex = index / self.area_nslabs;
        let area = self.area(aindex);
        let mut st = area.0.lock();
        // SAFETY (every slot access below): the area's lock is held; the indices stay in
        // the mapping's segment, which lies in the area.
        let nslots = nr_slots(unsafe { (*self.slot(index)).alloc_size } as u64 + offset);
        let mut count = if index + nslots < align_up(index + 1, IO_TLB_SEGSIZE) {
            unsafe { (*self.slot(index + nslots)).list }
        } else {
            0
        };
        for i in (index..index + nslots).rev() {
            count += 1;
            unsafe {
                let s = self.slot(i);
                (*s).list = count;
                (*s).orig_addr = INVALID_PHYS_ADDR;
                (*s).alloc_size = 0;
            }
        }
        let mut i = index.wrapping_sub(1);
        while io_tlb_offset(i) != IO_TLB_SEGSIZE - 1 && unsafe { (*self.slot(i)).list } != 0 {
            count += 1;
            unsafe { (*self.slot(i)).list = count };
            i = i.wrapping_sub(1);
        }
        st.used -= nslots;
    }

    /// Linux: swiotlb_tbl_unmap_single() — copy back what the device wrote (unless
    /// DMA_ATTR_SKIP_CPU_SYNC), then free the slots.
    pub fn tbl_unmap_single(
        &self,
        dev: &Device,
        tlb_addr: u64,
        mapping_size: usize,
        dir: DmaDataDirection,
        attrs: u64,
    ) {
        if attrs & DMA_ATTR_SKIP_CPU_SYNC == 0
            && matches!(
                dir,
                DmaDataDirection::FromDevice | DmaDataDirection::Bidirectional
            )
        {
            self.bounce(dev, tlb_addr, mapping_size, DmaDataDirection::FromDevice);
        }
        self.release_slots(dev, tlb_addr);
    }

    /// Linux: swiotlb_sync_single_for_device() — the CPU's writes, into the slots.
    #[track_caller]
    pub fn sync_single_for_device(
        &self,
        dev: &Device,
        tlb_addr: u64,
        size: usize,
        dir: DmaDataDirection,
    ) {
        match dir {
            DmaDataDirection::ToDevice | DmaDataDirection::Bidirectional => {
                self.bounce(dev, tlb_addr, size, DmaDataDirection::ToDevice)
            }
            DmaDataDirection::FromDevice => {}
            DmaDataDirection::None => crate::kernel::bug::bug(),
        }
    }

    /// Linux: swiotlb_sync_single_for_cpu() — the device's writes, back to the original.
    #[track_caller]
    pub fn sync_single_for_cpu(
        &self,
        dev: &Device,
        tlb_addr: u64,
        size: usize,
        dir: DmaDataDirection,
    ) {
        match dir {
            DmaDataDirection::FromDevice | DmaDataDirection::Bidirectional => {
                self.bounce(dev, tlb_addr, size, DmaDataDirection::FromDevice)
            }
            DmaDataDirection::ToDevice => {}
            DmaDataDirection::None => crate::kernel::bug::bug(),
        }
    }

    /// Linux: is_swiotlb_buffer().
    pub fn is_swiotlb_buffer(&self, paddr: PhysAddr) -> bool {
        paddr >= self.start && paddr < self.end
    }

    /// Linux: swiotlb_max_mapping_size() — a segment, less the offset a device's minimum
    /// alignment may add.
    pub fn max_mapping_size(dev: &Device) -> usize {
        let min_align_mask = dev.min_align_mask as u64;
        let min_align = if min_align_mask != 0 {
            align_up(min_align_mask, IO_TLB_SIZE)
        } else {
            0
        };
        (IO_TLB_SIZE * IO_TLB_SEGSIZE - min_align) as usize
    }

    /// Linux: swiotlb_print_info() for this buffer.
    pub fn print_info(&self) {
        pr_info!(
            "software IO TLB: mapped [mem {:#018x}-{:#018x}] ({}MB)",
            self.start.0,
            self.end.0,
            (self.nslabs << IO_TLB_SHIFT) >> 20
        );
    }
}

/// Linux: swiotlb_init_remap() without a remap hook — the boot-time buffer: nothing unless
/// addressing is limited or bouncing forced (and not `swiotlb=noforce`); the areas chosen if
/// `swiotlb=` did not; the buffer from memblock_alloc_low() (memblock_alloc() with
/// SWIOTLB_ANY), then the slot array and the areas from memblock_alloc().
pub fn swiotlb_init_with(
    cfg: &mut SwiotlbConfig,
    addressing_limit: bool,
    flags: u32,
    env: SwiotlbEnv,
) -> Option<IoTlbMem> {
    if !addressing_limit && !cfg.force_bounce {
        return None;
    }
    if cfg.force_disable {
        return None;
    }
    if cfg.default_nareas == 0 {
        cfg.adjust_nareas(env.num_possible_cpus as u32);
    }
    let nslabs = cfg.default_nslabs;
    let tlb = nslabs
        .checked_mul(IO_TLB_SIZE)
        .filter(|b| *b <= u64::MAX - PAGE_SIZE)
        .map(|b| align_up(b, PAGE_SIZE))
        .and_then(|bytes| {
            if flags & SWIOTLB_ANY != 0 {
                (env.memblock_alloc)(bytes, PAGE_SIZE)
            } else {
                (env.memblock_alloc_low)(bytes, PAGE_SIZE)
            }
        });
    let Some(tlb) = tlb else {
        pr_warn!("software IO TLB: swiotlb_init_remap: failed to allocate tlb structure");
        return None;
    };
    let alloc_size = align_up(core::mem::size_of::<IoTlbSlot>() as u64 * nslabs, PAGE_SIZE);
    let Some(slots) = (env.memblock_alloc)(alloc_size, PAGE_SIZE) else {
        panic!(
            "swiotlb_init_remap: Failed to allocate {} bytes align={:#x}",
            alloc_size, PAGE_SIZE
        );
    };
    let nareas = cfg.default_nareas;
    let areas_size = core::mem::size_of::<IoTlbArea>() as u64 * nareas as u64;
    let Some(areas) = (env.memblock_alloc)(areas_size, SMP_CACHE_BYTES) else {
        panic!("swiotlb_init_remap: Failed to allocate mem->areas.");
    };
    let start = (env.hooks.virt_to_phys)(tlb.as_ptr());
    let force = if cfg.force_bounce { SWIOTLB_FORCE } else { 0 };
    // SAFETY: memblock reserved the three blocks for good, each as large as init needs and
    // aligned to a page (slots) or a cache line (areas, IoTlbArea needs no more); `tlb` is
    // the linear map of `start`; adjust_nareas made nslabs a power-of-two multiple of
    // IO_TLB_SEGSIZE * nareas, or left swiotlb='s slab count, a multiple of the segment,
    // when it was one already.
    let mem = unsafe {
        IoTlbMem::init(
            start,
            tlb,
            nslabs,
            flags | force,
            false,
            nareas,
            slots.cast(),
            areas.cast(),
            env.hooks,
        )
    };
    if flags & SWIOTLB_VERBOSE != 0 {
        mem.print_info();
    }
    Some(mem)
}

/// Linux: io_tlb_default_mem.
static IO_TLB_DEFAULT_MEM: spin::Once<IoTlbMem> = spin::Once::new();

/// The boot-time buffer, once swiotlb_init() set it up.
pub fn io_tlb_default_mem() -> Option<&'static IoTlbMem> {
    IO_TLB_DEFAULT_MEM.get()
}

/// Linux: swiotlb_init() — the boot-time buffer, with the settings `swiotlb=` left.
pub fn swiotlb_init(addressing_limit: bool, flags: u32, env: SwiotlbEnv) {
    let mut cfg = CONFIG.lock();
    if let Some(mem) = swiotlb_init_with(&mut cfg, addressing_limit, flags, env) {
        IO_TLB_DEFAULT_MEM.call_once(|| mem);
    }
}

/// Linux: swiotlb_print_info().
pub fn swiotlb_print_info() {
    match io_tlb_default_mem() {
        Some(mem) => mem.print_info(),
        None => pr_warn!("software IO TLB: No low mem"),
    }
}

/// Linux: is_swiotlb_force_bounce().
pub fn is_swiotlb_force_bounce() -> bool {
    io_tlb_default_mem().is_some_and(|m| m.force_bounce)
}

/// Linux: is_swiotlb_buffer() on the boot-time buffer.
pub fn is_swiotlb_buffer(paddr: PhysAddr) -> bool {
    io_tlb_default_mem().is_some_and(|m| m.is_swiotlb_buffer(paddr))
}

/// Linux: swiotlb_tbl_map_single() on the boot-time buffer (see [`IoTlbMem::tbl_map_single`]).
#[allow(clippy::too_many_arguments)]
pub fn swiotlb_tbl_map_single(
    dev: &Device,
    orig_addr: PhysAddr,
    mapping_size: usize,
    alloc_size: usize,
    alloc_align_mask: u64,
    dir: DmaDataDirection,
    attrs: u64,
) -> u64 {
    match io_tlb_default_mem() {
        Some(mem) => mem.tbl_map_single(
            dev,
            orig_addr,
            mapping_size,
            alloc_size,
            alloc_align_mask,
            dir,
            attrs,
        ),
        None => {
            pr_warn!(
                "{}: Can not allocate SWIOTLB buffer earlier and can't now provide you with the DMA bounce buffer",
                dev
            );
            DMA_MAPPING_ERROR
        }
    }
}

/// Linux: swiotlb_tbl_unmap_single() on the boot-time buffer.
pub fn swiotlb_tbl_unmap_single(
    dev: &Device,
    tlb_addr: u64,
    mapping_size: usize,
    dir: DmaDataDirection,
    attrs: u64,
) {
    if let Some(mem) = io_tlb_default_mem() {
        mem.tbl_unmap_single(dev, tlb_addr, mapping_size, dir, attrs)
    }
}

/// Linux: swiotlb_sync_single_for_device() on the boot-time buffer.
#[track_caller]
pub fn swiotlb_sync_single_for_device(
    dev: &Device,
    tlb_addr: u64,
    size: usize,
    dir: DmaDataDirection,
) {
    if let Some(mem) = io_tlb_default_mem() {
        mem.sync_single_for_device(dev, tlb_addr, size, dir)
    }
}

/// Linux: swiotlb_sync_single_for_cpu() on the boot-time buffer.
#[track_caller]
pub fn swiotlb_sync_single_for_cpu(
    dev: &Device,
    tlb_addr: u64,
    size: usize,
    dir: DmaDataDirection,
) {
    if let Some(mem) = io_tlb_default_mem() {
        mem.sync_single_for_cpu(dev, tlb_addr, size, dir)
    }
}

#[cfg(test)]
mod tests;
