//! memblock: the boot-time physical memory manager. Mirrors Linux 6.1's mm/memblock.c and
//! include/linux/memblock.h.
//!
//! Memblock keeps two sorted lists of physical ranges: `memory` (the RAM the firmware
//! described) and `reserved` (what is in use: the kernel image, the device tree, and every
//! early allocation). Allocating is finding a hole in `memory` minus `reserved` and adding the
//! result to `reserved`; nothing else is recorded, so the lists stay small until the page
//! allocator takes over.
//!
//! As in Linux, the region arrays start as fixed arrays of `INIT_MEMBLOCK_REGIONS` entries,
//! here embedded in the `Memblock` value so that a value is self-contained (the kernel has
//! one, [`MEMBLOCK`]; host tests make as many as they like). Once `memblock_allow_resize()`
//! was called a full array is doubled into memory memblock allocates from itself.
//!
//! Memblock deals in physical addresses. Where it must touch memory (zeroing an allocation,
//! moving a region array) it goes through the `phys_to_virt` hook (Linux's `__va()`), which
//! the arch sets once the linear map exists and host tests point into a simulated RAM.
//!
//! Differences from Linux, all because the subsystems they talk to do not exist here:
//! no slab (so `memblock_double_array()` always allocates from memblock), no kmemleak, no
//! mirrored memory (`kernelcore=mirror`), no `movable_node`, no physmem type
//! (`CONFIG_HAVE_MEMBLOCK_PHYS_MAP` is off on arm64), no `memblock_discard()` (arm64 keeps
//! memblock: `CONFIG_ARCH_KEEP_MEMBLOCK`). Linux's file statics `memblock_debug` and
//! `memblock_can_resize` live in the `Memblock` value, so test instances do not share them.
//! `CONFIG_NUMA` is modelled as on, with arm64's default `NODES_SHIFT` of 4.

use core::fmt;
use core::panic::Location;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, Ordering};

use super::addr::{align_down, align_up, Pfn, PhysAddr, PAGE_SIZE};
use crate::kernel::params::SetupResult;

/// Linux: WARN_ON() — report an unexpected condition and go on.
macro_rules! warn_on {
    ($cond:expr) => {{
        let c = $cond;
        if c {
            pr_warn!(
                "WARNING: CPU: 0 PID: 0 at {}:{} ({})",
                file!(),
                line!(),
                stringify!($cond)
            );
        }
        c
    }};
}
/// Linux: memblock_dbg() — trace only under `memblock=debug`.
macro_rules! memblock_dbg {
    ($mb:expr, $($arg:tt)*) => {
        if $mb.debug {
            pr_info!($($arg)*);
        }
    };
}

/// Linux: INIT_MEMBLOCK_REGIONS — entries in the static `memory` array.
pub const INIT_MEMBLOCK_REGIONS: usize = 128;
/// Linux: INIT_MEMBLOCK_RESERVED_REGIONS — entries in the static `reserved` array. Both
/// arrays share one embedded type, so this must stay equal to `INIT_MEMBLOCK_REGIONS`.
pub const INIT_MEMBLOCK_RESERVED_REGIONS: usize = INIT_MEMBLOCK_REGIONS;
const _: () = assert!(INIT_MEMBLOCK_RESERVED_REGIONS == INIT_MEMBLOCK_REGIONS);

/// Linux: PHYS_ADDR_MAX.
pub const PHYS_ADDR_MAX: PhysAddr = PhysAddr(u64::MAX);
/// Linux: MEMBLOCK_ALLOC_ANYWHERE — as an `end`, no limit at all.
pub const MEMBLOCK_ALLOC_ANYWHERE: PhysAddr = PhysAddr(u64::MAX);
/// Linux: MEMBLOCK_ALLOC_ACCESSIBLE — as an `end`, "up to `current_limit`".
pub const MEMBLOCK_ALLOC_ACCESSIBLE: PhysAddr = PhysAddr(0);
/// Linux: MEMBLOCK_ALLOC_NOLEAKTRACE — like ACCESSIBLE, but not tracked by kmemleak.
pub const MEMBLOCK_ALLOC_NOLEAKTRACE: PhysAddr = PhysAddr(1);
/// Linux: MEMBLOCK_LOW_LIMIT.
pub const MEMBLOCK_LOW_LIMIT: PhysAddr = PhysAddr(0);

/// Linux: NUMA_NO_NODE.
pub const NUMA_NO_NODE: i32 = -1;
/// Linux: CONFIG_NODES_SHIFT (arm64's default).
pub const NODES_SHIFT: u32 = 4;
/// Linux: MAX_NUMNODES — also the node of regions nobody assigned a node to.
pub const MAX_NUMNODES: i32 = 1 << NODES_SHIFT;
/// Linux: SMP_CACHE_BYTES (arm64's L1_CACHE_BYTES), the alignment used when a caller asks
/// for none.
pub const SMP_CACHE_BYTES: u64 = 64;

/// Attributes of a memory region (Linux: `enum memblock_flags`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct MemblockFlags(pub u32);

impl MemblockFlags {
    /// Linux: MEMBLOCK_NONE.
    pub const NONE: Self = Self(0x0);
    /// Linux: MEMBLOCK_HOTPLUG — hotpluggable region.
    pub const HOTPLUG: Self = Self(0x1);
    /// Linux: MEMBLOCK_MIRROR — mirrored region.
    pub const MIRROR: Self = Self(0x2);
    /// Linux: MEMBLOCK_NOMAP — not in the kernel's linear map.
    pub const NOMAP: Self = Self(0x4);
    /// Linux: MEMBLOCK_DRIVER_MANAGED — always detected via a driver.
    pub const DRIVER_MANAGED: Self = Self(0x8);

    pub const fn bits(self) -> u32 {
        self.0
    }
    /// Are all bits of `other` set in `self`?
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
    /// Is any bit of `other` set in `self`?
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }
}

impl core::ops::BitOr for MemblockFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl core::ops::BitAnd for MemblockFlags {
    type Output = Self;
    fn bitand(self, rhs: Self) -> Self {
        Self(self.0 & rhs.0)
    }
}

impl core::ops::Not for MemblockFlags {
    type Output = Self;
    fn not(self) -> Self {
        Self(!self.0)
    }
}

impl fmt::Debug for MemblockFlags {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "MemblockFlags({:#x})", self.0)
    }
}

/// One physical range (Linux: `struct memblock_region`). `repr(C)` keeps Linux's 24-byte
/// layout, which fixes how many entries a doubled array's pages hold.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(C)]
pub struct MemblockRegion {
    pub base: PhysAddr,
    pub size: u64,
    pub flags: MemblockFlags,
    pub nid: i32,
}

impl MemblockRegion {
    /// What Linux's zero-initialized static arrays hold.
    const ZERO: Self = Self {
        base: PhysAddr(0),
        size: 0,
        flags: MemblockFlags::NONE,
        nid: 0,
    };

    /// One past the last byte.
    pub const fn end(&self) -> PhysAddr {
        PhysAddr(self.base.0 + self.size)
    }
    /// Linux: memblock_is_hotpluggable().
    pub const fn is_hotpluggable(&self) -> bool {
        self.flags.contains(MemblockFlags::HOTPLUG)
    }
    /// Linux: memblock_is_mirror().
    pub const fn is_mirror(&self) -> bool {
        self.flags.contains(MemblockFlags::MIRROR)
    }
    /// Linux: memblock_is_nomap().
    pub const fn is_nomap(&self) -> bool {
        self.flags.contains(MemblockFlags::NOMAP)
    }
    /// Linux: memblock_is_driver_managed().
    pub const fn is_driver_managed(&self) -> bool {
        self.flags.contains(MemblockFlags::DRIVER_MANAGED)
    }
}

/// Which of the two lists an operation works on (Linux passes `&memblock.memory` or
/// `&memblock.reserved`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MemType {
    Memory,
    Reserved,
}

/// Why a memblock update failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MemblockError {
    /// Linux's -ENOMEM: a region array was full and could not be doubled.
    NoMem,
}

/// A region array that `memblock_double_array()` placed in memblock-allocated memory.
#[derive(Clone, Copy)]
struct ExtArray {
    ptr: NonNull<MemblockRegion>,
    phys: PhysAddr,
}

/// One list of regions (Linux: `struct memblock_type`). Regions are sorted, disjoint,
/// non-empty and maximally merged; an empty list holds one zero-sized dummy entry, as in Linux.
pub struct MemblockType {
    cnt: usize,
    max: usize,
    total_size: u64,
    name: &'static str,
    init_regions: [MemblockRegion; INIT_MEMBLOCK_REGIONS],
    /// `None` while the embedded array is in use.
    ext: Option<ExtArray>,
}

// SAFETY: the only non-Send part is the external array pointer, and that memory is owned by
// this value alone (it is reserved in memblock and referenced from nowhere else), like a Box.
unsafe impl Send for MemblockType {}

impl MemblockType {
    const fn new(name: &'static str) -> Self {
        Self {
            cnt: 1,
            max: INIT_MEMBLOCK_REGIONS,
            total_size: 0,
            name,
            init_regions: [MemblockRegion::ZERO; INIT_MEMBLOCK_REGIONS],
            ext: None,
        }
    }

    /// "memory" or "reserved".
    pub fn name(&self) -> &'static str {
        self.name
    }
    /// Entries in use (1 with the dummy entry when empty, as in Linux).
    pub fn cnt(&self) -> usize {
        self.cnt
    }
    /// Capacity of the current array.
    pub fn max(&self) -> usize {
        self.max
    }
    /// Sum of the region sizes.
    pub fn total_size(&self) -> u64 {
        self.total_size
    }
    /// The regions in use (Linux: for_each_mem_region() / for_each_reserved_mem_region()).
    pub fn regions(&self) -> &[MemblockRegion] {
        &self.slots()[..self.cnt]
    }

    /// The whole array, `max` entries.
    fn slots(&self) -> &[MemblockRegion] {
        match self.ext {
            None => &self.init_regions,
            // SAFETY: an ExtArray points to `max` initialized regions that memblock_double_array()
            // wrote and that this value owns exclusively; `&self` keeps them from changing.
            Some(a) => unsafe { core::slice::from_raw_parts(a.ptr.as_ptr(), self.max) },
        }
    }

    fn slots_mut(&mut self) -> &mut [MemblockRegion] {
        match self.ext {
            None => &mut self.init_regions,
            // SAFETY: as in slots(); `&mut self` makes the access exclusive.
            Some(a) => unsafe { core::slice::from_raw_parts_mut(a.ptr.as_ptr(), self.max) },
        }
    }

    /// Linux: memblock_insert_region() — the caller made room (`cnt < max`).
    fn insert_region(
        &mut self,
        idx: usize,
        base: PhysAddr,
        size: u64,
        nid: i32,
        flags: MemblockFlags,
    ) {
        assert!(
            self.cnt < self.max,
            "kernel BUG: memblock_insert_region: {} array full",
            self.name
        );
        let cnt = self.cnt;
        let slots = self.slots_mut();
        slots.copy_within(idx..cnt, idx + 1);
        slots[idx] = MemblockRegion {
            base,
            size,
            flags,
            nid,
        };
        self.cnt += 1;
        self.total_size += size;
    }

    /// Linux: memblock_remove_region().
    fn remove_region(&mut self, r: usize) {
        let cnt = self.cnt;
        self.total_size -= self.slots()[r].size;
        self.slots_mut().copy_within(r + 1..cnt, r);
        self.cnt -= 1;

        // An empty list keeps one zero-sized entry, so regions[0] always exists.
        if self.cnt == 0 {
            warn_on!(self.total_size != 0);
            self.cnt = 1;
            self.slots_mut()[0] = MemblockRegion {
                base: PhysAddr(0),
                size: 0,
                flags: MemblockFlags::NONE,
                nid: MAX_NUMNODES,
            };
        }
    }

    /// Linux: memblock_merge_regions() — merge neighbours with the same node and flags.
    fn merge_regions(&mut self) {
        let mut i = 0;
        while i + 1 < self.cnt {
            let cnt = self.cnt;
            let slots = self.slots_mut();
            let (this, next) = (slots[i], slots[i + 1]);
            if this.base.0 + this.size != next.base.0
                || this.nid != next.nid
                || this.flags != next.flags
            {
                assert!(
                    this.base.0 + this.size <= next.base.0,
                    "kernel BUG: memblock_merge_regions: overlapping regions"
                );
                i += 1;
                continue;
            }
            slots[i].size += next.size;
            slots.copy_within(i + 2..cnt, i + 1);
            self.cnt -= 1;
        }
    }

    /// Linux: memblock_search() — binary search for the region holding `addr`.
    fn search(&self, addr: PhysAddr) -> Option<usize> {
        let regions = self.regions();
        let (mut left, mut right) = (0, regions.len());
        loop {
            let mid = (left + right) / 2;
            if addr < regions[mid].base {
                right = mid;
            } else if addr.0 >= regions[mid].base.0 + regions[mid].size {
                left = mid + 1;
            } else {
                return Some(mid);
            }
            if left >= right {
                return None;
            }
        }
    }
}

/// Linux's `%pa`: a phys_addr_t as `0x` and 16 hex digits.
struct Pa(u64);

impl fmt::Display for Pa {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

/// Stands in for Linux's `%pS` of `_RET_IP_`: Rust has no return-address symbolization, so
/// traces name the caller by source location (`file:line`), which `#[track_caller]` gives.
struct Caller(&'static Location<'static>);

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}:{}", self.0.file(), self.0.line())
    }
}

/// The ` on node N` part of a dump line.
struct NodeSuffix(i32);

impl fmt::Display for NodeSuffix {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.0 != MAX_NUMNODES {
            write!(f, " on node {}", self.0)?;
        }
        Ok(())
    }
}

/// Linux: memblock_cap_size() — clip `size` so that `base + size` does not overflow.
fn cap_size(base: PhysAddr, size: u64) -> u64 {
    size.min(PHYS_ADDR_MAX.0 - base.0)
}

/// Linux: memblock_addrs_overlap().
fn addrs_overlap(base1: u64, size1: u64, base2: u64, size2: u64) -> bool {
    base1 < base2 + size2 && base2 < base1 + size1
}

/// Linux's clamp(): `lo <= hi` holds at every caller.
fn clamp(v: u64, lo: u64, hi: u64) -> u64 {
    v.max(lo).min(hi)
}

/// Linux's WARN_ONCE() in the iterators and the allocator: MAX_NUMNODES as "any node".
static WARNED_MAX_NUMNODES: AtomicBool = AtomicBool::new(false);

fn fix_nid(nid: i32) -> i32 {
    if nid == MAX_NUMNODES {
        if !WARNED_MAX_NUMNODES.swap(true, Ordering::Relaxed) {
            pr_warn!("Usage of MAX_NUMNODES is deprecated. Use NUMA_NO_NODE instead");
            pr_warn!("WARNING: CPU: 0 PID: 0 at {}:{}", file!(), line!());
        }
        return NUMA_NO_NODE;
    }
    nid
}

/// Linux: should_skip_region() — only `memory` regions have nodes and attributes to filter on.
/// (Linux also skips hotpluggable memory under `movable_node`, which this kernel lacks.)
fn should_skip_region(is_memory: bool, m: &MemblockRegion, nid: i32, flags: MemblockFlags) -> bool {
    if !is_memory {
        return false;
    }
    if nid != NUMA_NO_NODE && nid != m.nid {
        return true;
    }
    if flags.contains(MemblockFlags::MIRROR) && !m.is_mirror() {
        return true;
    }
    if !flags.contains(MemblockFlags::NOMAP) && m.is_nomap() {
        return true;
    }
    if !flags.contains(MemblockFlags::DRIVER_MANAGED) && m.is_driver_managed() {
        return true;
    }
    false
}

fn no_phys_to_virt(pa: PhysAddr) -> *mut u8 {
    panic!("memblock: no phys_to_virt hook to reach {:#x}", pa.0)
}

fn no_virt_to_phys(va: *const u8) -> PhysAddr {
    panic!("memblock: no virt_to_phys hook to translate {:p}", va)
}

/// The memblock allocator state (Linux: `struct memblock` plus mm/memblock.c's statics).
pub struct Memblock {
    bottom_up: bool,
    current_limit: PhysAddr,
    memory: MemblockType,
    reserved: MemblockType,
    /// Linux: memblock_debug (`memblock=debug`).
    debug: bool,
    /// Linux: memblock_can_resize.
    can_resize: bool,
    /// Linux: __va().
    phys_to_virt: fn(PhysAddr) -> *mut u8,
    /// Linux: __pa(), only for memblock_free().
    virt_to_phys: fn(*const u8) -> PhysAddr,
}

impl Default for Memblock {
    fn default() -> Self {
        Self::new()
    }
}

impl Memblock {
    /// Linux's static initializer of `memblock`: empty lists, top-down, no limit, no resizing.
    /// The translation hooks panic until set.
    pub const fn new() -> Self {
        Self {
            bottom_up: false,
            current_limit: MEMBLOCK_ALLOC_ANYWHERE,
            memory: MemblockType::new("memory"),
            reserved: MemblockType::new("reserved"),
            debug: false,
            can_resize: false,
            phys_to_virt: no_phys_to_virt,
            virt_to_phys: no_virt_to_phys,
        }
    }

    /// Sets Linux's `__va()` for this instance.
    ///
    /// # Safety
    /// From now on memblock writes through `f`: for every physical range that is in `memory`
    /// and not `reserved` when memblock allocates it, `f(pa)..f(pa + len)` must be writable
    /// memory, mapped linearly (`f(pa + n) == f(pa) + n`), 8-byte aligned where `pa` is, and not
    /// in use by anything else. In other words: the arch has reserved everything it uses.
    pub unsafe fn set_phys_to_virt(&mut self, f: fn(PhysAddr) -> *mut u8) {
        self.phys_to_virt = f;
    }

    /// This instance's `__va()`, for code that walks free memory as memblock does
    /// (`early_memtest`). Reading the hook is harmless; dereferencing what it returns is
    /// what the [`Memblock::set_phys_to_virt`] contract makes sound, for free memory only.
    pub fn phys_to_virt(&self) -> fn(PhysAddr) -> *mut u8 {
        self.phys_to_virt
    }

    /// Sets Linux's `__pa()`, which only `memblock_free()` needs.
    pub fn set_virt_to_phys(&mut self, f: fn(*const u8) -> PhysAddr) {
        self.virt_to_phys = f;
    }

    /// Turns the `memblock=debug` traces on or off.
    pub fn set_debug(&mut self, on: bool) {
        self.debug = on;
    }

    pub fn debug(&self) -> bool {
        self.debug
    }

    /// Linux: memblock.memory.
    pub fn memory(&self) -> &MemblockType {
        &self.memory
    }

    /// Linux: memblock.reserved.
    pub fn reserved(&self) -> &MemblockType {
        &self.reserved
    }

    fn ty(&self, t: MemType) -> &MemblockType {
        match t {
            MemType::Memory => &self.memory,
            MemType::Reserved => &self.reserved,
        }
    }

    fn ty_mut(&mut self, t: MemType) -> &mut MemblockType {
        match t {
            MemType::Memory => &mut self.memory,
            MemType::Reserved => &mut self.reserved,
        }
    }

    /// Linux: choose_memblock_flags() — MEMBLOCK_MIRROR only on systems with mirrored memory,
    /// which needs `kernelcore=mirror`; this kernel has none.
    fn choose_memblock_flags(&self) -> MemblockFlags {
        MemblockFlags::NONE
    }

    /// Linux: memblock_overlaps_region().
    pub fn overlaps_region(&self, t: MemType, base: PhysAddr, size: u64) -> bool {
        let size = cap_size(base, size);
        self.ty(t)
            .regions()
            .iter()
            .any(|r| addrs_overlap(base.0, size, r.base.0, r.size))
    }

    /// Linux: __memblock_find_range_bottom_up(). Returns 0 when nothing fits.
    fn find_range_bottom_up(
        &self,
        start: u64,
        end: u64,
        size: u64,
        align: u64,
        nid: i32,
        flags: MemblockFlags,
    ) -> u64 {
        for (this_start, this_end, _) in self.free_mem_ranges(nid, flags) {
            let this_start = clamp(this_start.0, start, end);
            let this_end = clamp(this_end.0, start, end);
            let cand = align_up(this_start, align);
            if cand < this_end && this_end - cand >= size {
                return cand;
            }
        }
        0
    }

    /// Linux: __memblock_find_range_top_down(). Returns 0 when nothing fits.
    fn find_range_top_down(
        &self,
        start: u64,
        end: u64,
        size: u64,
        align: u64,
        nid: i32,
        flags: MemblockFlags,
    ) -> u64 {
        for (this_start, this_end, _) in self.free_mem_ranges_rev(nid, flags) {
            let this_start = clamp(this_start.0, start, end);
            let this_end = clamp(this_end.0, start, end);
            if this_end < size {
                continue;
            }
            let cand = align_down(this_end - size, align);
            if cand >= this_start {
                return cand;
            }
        }
        0
    }

    /// Linux: memblock_find_in_range_node() — find `size` free bytes aligned to `align` in
    /// `[start, end)` on node `nid`, without reserving them. The first page is never returned
    /// (0 means failure in Linux's interface).
    pub fn find_in_range_node(
        &self,
        size: u64,
        align: u64,
        start: PhysAddr,
        end: PhysAddr,
        nid: i32,
        flags: MemblockFlags,
    ) -> Option<PhysAddr> {
        let mut end = end.0;
        if end == MEMBLOCK_ALLOC_ACCESSIBLE.0 || end == MEMBLOCK_ALLOC_NOLEAKTRACE.0 {
            end = self.current_limit.0;
        }
        let start = start.0.max(PAGE_SIZE);
        let end = end.max(start);
        let found = if self.bottom_up {
            self.find_range_bottom_up(start, end, size, align, nid, flags)
        } else {
            self.find_range_top_down(start, end, size, align, nid, flags)
        };
        (found != 0).then_some(PhysAddr(found))
    }

    /// Linux: memblock_find_in_range() (static in 6.1) — any node. (Linux tries mirrored memory
    /// first on systems that have it.)
    fn find_in_range(
        &self,
        start: PhysAddr,
        end: PhysAddr,
        size: u64,
        align: u64,
    ) -> Option<PhysAddr> {
        let flags = self.choose_memblock_flags();
        self.find_in_range_node(size, align, start, end, NUMA_NO_NODE, flags)
    }

    /// Linux: memblock_allow_resize() — from now on full arrays may be doubled. Call it once
    /// everything that must not be overwritten by a new array is reserved.
    pub fn allow_resize(&mut self) {
        self.can_resize = true;
    }

    /// Linux: memblock_double_array() — move `t`'s array into a twice larger one allocated from
    /// memblock. `[new_area_start, +new_area_size)` is the range about to be reserved, which
    /// the new `reserved` array must not overlap.
    fn double_array(
        &mut self,
        t: MemType,
        new_area_start: PhysAddr,
        new_area_size: u64,
    ) -> Result<(), MemblockError> {
        // Not before the arch has reserved what a new array must not land on.
        if !self.can_resize {
            return Err(MemblockError::NoMem);
        }

        let (max, name) = (self.ty(t).max, self.ty(t).name);
        let old_size = (max * core::mem::size_of::<MemblockRegion>()) as u64;
        let new_size = old_size << 1;
        // Page-sized allocations, so they can be freed whole later.
        let old_alloc_size = align_up(old_size, PAGE_SIZE);
        let new_alloc_size = align_up(new_size, PAGE_SIZE);

        // Linux uses kmalloc() once slab is up; memblock is only used before that here.
        let (area_start, area_size) = match t {
            MemType::Reserved => (new_area_start.0, new_area_size),
            MemType::Memory => (0, 0),
        };
        let mut addr = self.find_in_range(
            PhysAddr(area_start.wrapping_add(area_size)),
            self.current_limit,
            new_alloc_size,
            PAGE_SIZE,
        );
        if addr.is_none() && area_size != 0 {
            addr = self.find_in_range(
                PhysAddr(0),
                PhysAddr(area_start.min(self.current_limit.0)),
                new_alloc_size,
                PAGE_SIZE,
            );
        }
        let Some(addr) = addr else {
            pr_err!(
                "memblock: Failed to double {} array from {} to {} entries !",
                name,
                max,
                max * 2
            );
            return Err(MemblockError::NoMem);
        };

        let new_end = addr.0 + new_size - 1;
        memblock_dbg!(
            self,
            "memblock: {} is doubled to {} at [{}-{}]",
            name,
            max * 2,
            Pa(addr.0),
            Pa(new_end)
        );

        let new_array = (self.phys_to_virt)(addr).cast::<MemblockRegion>();
        assert!(
            !new_array.is_null() && new_array.is_aligned(),
            "memblock: phys_to_virt({:#x}) gave an unusable pointer",
            addr.0
        );
        let ty = self.ty_mut(t);
        let old = ty.ext;
        // SAFETY: `addr..addr + new_alloc_size` is free memory (found above, not yet reserved),
        // which the phys_to_virt contract maps writable, aligned (checked) and unused; it
        // cannot overlap the old array, which is either embedded in `self` or reserved.
        unsafe {
            ptr::copy_nonoverlapping(ty.slots().as_ptr(), new_array, max);
            ptr::write_bytes(new_array.add(max), 0, max);
        }
        // SAFETY: checked non-null above.
        ty.ext = Some(ExtArray {
            ptr: unsafe { NonNull::new_unchecked(new_array) },
            phys: addr,
        });
        ty.max = max * 2;

        // The embedded array needs no freeing; a previously doubled one goes back to memblock.
        if let Some(old) = old {
            let _ = self.phys_free(old.phys, old_alloc_size);
        }

        // Linux: BUG_ON(memblock_reserve(addr, new_alloc_size)). Reserving can only fail when
        // doubling `memory` made `reserved` need doubling too and that found no room; the new
        // array would then be unprotected, so stop as Linux does.
        if self.reserve(addr, new_alloc_size).is_err() {
            panic!("kernel BUG at mm/memblock.c: memblock_double_array: cannot reserve the new {} array", name);
        }
        Ok(())
    }

    /// Linux: memblock_add_range() — add `[base, base + size)` to `t`. Only the parts not yet
    /// covered are inserted (overlaps keep the existing regions' node and flags); the first pass
    /// counts them so the array can grow before anything changes, the second inserts them, and
    /// neighbours are merged after.
    pub fn add_range(
        &mut self,
        t: MemType,
        base: PhysAddr,
        size: u64,
        nid: i32,
        flags: MemblockFlags,
    ) -> Result<(), MemblockError> {
        let obase = base.0;
        let size = cap_size(base, size);
        let end = obase + size;
        if size == 0 {
            return Ok(());
        }

        // The dummy entry of an empty list is simply overwritten.
        let ty = self.ty_mut(t);
        if ty.slots()[0].size == 0 {
            warn_on!(ty.cnt != 1 || ty.total_size != 0);
            ty.slots_mut()[0] = MemblockRegion {
                base,
                size,
                flags,
                nid,
            };
            ty.total_size = size;
            return Ok(());
        }

        let mut insert = false;
        loop {
            let ty = self.ty_mut(t);
            let mut base = obase;
            let mut nr_new = 0;
            let mut idx = 0;
            while idx < ty.cnt {
                let rgn = ty.slots()[idx];
                let (rbase, rend) = (rgn.base.0, rgn.base.0 + rgn.size);
                if rbase >= end {
                    break;
                }
                if rend <= base {
                    idx += 1;
                    continue;
                }
                // `rgn` overlaps: if it leaves a hole below it, that hole is new.
                if rbase > base {
                    warn_on!(nid != rgn.nid);
                    warn_on!(flags != rgn.flags);
                    nr_new += 1;
                    if insert {
                        ty.insert_region(idx, PhysAddr(base), rbase - base, nid, flags);
                        idx += 1;
                    }
                }
                base = rend.min(end);
                idx += 1;
            }
            if base < end {
                nr_new += 1;
                if insert {
                    ty.insert_region(idx, PhysAddr(base), end - base, nid, flags);
                }
            }

            if nr_new == 0 {
                return Ok(());
            }
            if insert {
                ty.merge_regions();
                return Ok(());
            }
            while self.ty(t).cnt + nr_new > self.ty(t).max {
                self.double_array(t, PhysAddr(obase), size)?;
            }
            insert = true;
        }
    }

    /// Linux: memblock_isolate_range() — split regions of `t` at `base` and `base + size` so
    /// the range is covered by whole regions; returns their index range `start..end`.
    fn isolate_range(
        &mut self,
        t: MemType,
        base: PhysAddr,
        size: u64,
    ) -> Result<(usize, usize), MemblockError> {
        let size = cap_size(base, size);
        let (base, end) = (base.0, base.0 + size);
        let (mut start_rgn, mut end_rgn) = (0, 0);
        if size == 0 {
            return Ok((0, 0));
        }

        // At most two splits.
        while self.ty(t).cnt + 2 > self.ty(t).max {
            self.double_array(t, PhysAddr(base), size)?;
        }

        let ty = self.ty_mut(t);
        let mut idx = 0;
        while idx < ty.cnt {
            let rgn = ty.slots()[idx];
            let (rbase, rend) = (rgn.base.0, rgn.base.0 + rgn.size);
            if rbase >= end {
                break;
            }
            if rend <= base {
                idx += 1;
                continue;
            }
            if rbase < base {
                // Crosses `base`: split off the lower part and go on with the upper one.
                let r = &mut ty.slots_mut()[idx];
                r.base = PhysAddr(base);
                r.size -= base - rbase;
                ty.total_size -= base - rbase;
                ty.insert_region(idx, PhysAddr(rbase), base - rbase, rgn.nid, rgn.flags);
                idx += 1;
            } else if rend > end {
                // Crosses `end`: split off the lower part and look at it again.
                let r = &mut ty.slots_mut()[idx];
                r.base = PhysAddr(end);
                r.size -= end - rbase;
                ty.total_size -= end - rbase;
                ty.insert_region(idx, PhysAddr(rbase), end - rbase, rgn.nid, rgn.flags);
            } else {
                if end_rgn == 0 {
                    start_rgn = idx;
                }
                end_rgn = idx + 1;
                idx += 1;
            }
        }
        Ok((start_rgn, end_rgn))
    }

    /// Linux: memblock_remove_range().
    pub fn remove_range(
        &mut self,
        t: MemType,
        base: PhysAddr,
        size: u64,
    ) -> Result<(), MemblockError> {
        let (start, end) = self.isolate_range(t, base, size)?;
        for i in (start..end).rev() {
            self.ty_mut(t).remove_region(i);
        }
        Ok(())
    }

    /// Linux: memblock_add_node() — add RAM of node `nid` with attributes `flags`.
    #[track_caller]
    pub fn add_node(
        &mut self,
        base: PhysAddr,
        size: u64,
        nid: i32,
        flags: MemblockFlags,
    ) -> Result<(), MemblockError> {
        let end = base.0.wrapping_add(size).wrapping_sub(1);
        memblock_dbg!(
            self,
            "memblock_add_node: [{}-{}] nid={} flags={:x} {}",
            Pa(base.0),
            Pa(end),
            nid,
            flags.0,
            Caller(Location::caller())
        );
        self.add_range(MemType::Memory, base, size, nid, flags)
    }

    /// Linux: memblock_add() — add RAM not (yet) assigned to a node.
    #[track_caller]
    pub fn add(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        let end = base.0.wrapping_add(size).wrapping_sub(1);
        memblock_dbg!(
            self,
            "memblock_add: [{}-{}] {}",
            Pa(base.0),
            Pa(end),
            Caller(Location::caller())
        );
        self.add_range(
            MemType::Memory,
            base,
            size,
            MAX_NUMNODES,
            MemblockFlags::NONE,
        )
    }

    /// Linux: memblock_remove() — forget RAM.
    #[track_caller]
    pub fn remove(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        let end = base.0.wrapping_add(size).wrapping_sub(1);
        memblock_dbg!(
            self,
            "memblock_remove: [{}-{}] {}",
            Pa(base.0),
            Pa(end),
            Caller(Location::caller())
        );
        self.remove_range(MemType::Memory, base, size)
    }

    /// Linux: memblock_free() — free a block returned by one of the `alloc` methods, by its
    /// virtual address (translated back with the `virt_to_phys` hook). NULL is ignored.
    #[track_caller]
    pub fn free(&mut self, ptr: *const u8, size: u64) {
        if !ptr.is_null() {
            let pa = (self.virt_to_phys)(ptr);
            let _ = self.phys_free(pa, size);
        }
    }

    /// Linux: memblock_phys_free() — unreserve a physical range.
    #[track_caller]
    pub fn phys_free(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        let end = base.0.wrapping_add(size).wrapping_sub(1);
        memblock_dbg!(
            self,
            "memblock_phys_free: [{}-{}] {}",
            Pa(base.0),
            Pa(end),
            Caller(Location::caller())
        );
        self.remove_range(MemType::Reserved, base, size)
    }

    /// Linux: memblock_reserve() — mark a physical range as in use.
    #[track_caller]
    pub fn reserve(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        let end = base.0.wrapping_add(size).wrapping_sub(1);
        memblock_dbg!(
            self,
            "memblock_reserve: [{}-{}] {}",
            Pa(base.0),
            Pa(end),
            Caller(Location::caller())
        );
        self.add_range(
            MemType::Reserved,
            base,
            size,
            MAX_NUMNODES,
            MemblockFlags::NONE,
        )
    }

    /// Linux: memblock_setclr_flag() — set or clear `flag` on the memory in the range.
    fn setclr_flag(
        &mut self,
        base: PhysAddr,
        size: u64,
        set: bool,
        flag: MemblockFlags,
    ) -> Result<(), MemblockError> {
        let (start, end) = self.isolate_range(MemType::Memory, base, size)?;
        for r in &mut self.memory.slots_mut()[start..end] {
            r.flags = if set { r.flags | flag } else { r.flags & !flag };
        }
        self.memory.merge_regions();
        Ok(())
    }

    /// Linux: memblock_mark_hotplug().
    pub fn mark_hotplug(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.setclr_flag(base, size, true, MemblockFlags::HOTPLUG)
    }

    /// Linux: memblock_clear_hotplug().
    pub fn clear_hotplug(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.setclr_flag(base, size, false, MemblockFlags::HOTPLUG)
    }

    /// Linux: memblock_mark_nomap() — keep the range out of the linear map (and out of
    /// allocations); it stays memory for the memory map.
    pub fn mark_nomap(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.setclr_flag(base, size, true, MemblockFlags::NOMAP)
    }

    /// Linux: memblock_clear_nomap().
    pub fn clear_nomap(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.setclr_flag(base, size, false, MemblockFlags::NOMAP)
    }

    /// Linux: memblock_set_node() — assign the regions of `t` in the range to node `nid`,
    /// splitting at the range's edges.
    pub fn set_node(
        &mut self,
        base: PhysAddr,
        size: u64,
        t: MemType,
        nid: i32,
    ) -> Result<(), MemblockError> {
        let (start, end) = self.isolate_range(t, base, size)?;
        let ty = self.ty_mut(t);
        for r in &mut ty.slots_mut()[start..end] {
            r.nid = nid;
        }
        ty.merge_regions();
        Ok(())
    }

    /// Linux: __for_each_mem_range() / __for_each_mem_range_rev() (`rev`) — the ranges of `a`,
    /// minus those of `b` if given, filtered by node and flags (only for `memory`): yields
    /// `(start, end, nid)`. This is the one iteration mechanism the others build on.
    pub fn mem_ranges_of(
        &self,
        a: MemType,
        b: Option<MemType>,
        nid: i32,
        flags: MemblockFlags,
        rev: bool,
    ) -> MemRanges<'_> {
        let a_ty = self.ty(a);
        let b_ty = b.map(|b| self.ty(b));
        MemRanges {
            a: a_ty,
            b: b_ty,
            a_is_memory: a == MemType::Memory,
            nid: fix_nid(nid),
            flags,
            idx_a: if rev { a_ty.cnt as isize - 1 } else { 0 },
            idx_b: if rev {
                b_ty.map_or(0, |b| b.cnt as isize)
            } else {
                0
            },
            rev,
        }
    }

    /// Linux: for_each_mem_range() — all memory except NOMAP regions.
    pub fn mem_ranges(&self) -> MemRanges<'_> {
        let flags = MemblockFlags::HOTPLUG | MemblockFlags::DRIVER_MANAGED;
        self.mem_ranges_of(MemType::Memory, None, NUMA_NO_NODE, flags, false)
    }

    /// Linux: for_each_mem_range_rev().
    pub fn mem_ranges_rev(&self) -> MemRanges<'_> {
        let flags = MemblockFlags::HOTPLUG | MemblockFlags::DRIVER_MANAGED;
        self.mem_ranges_of(MemType::Memory, None, NUMA_NO_NODE, flags, true)
    }

    /// Linux: for_each_reserved_mem_range().
    pub fn reserved_mem_ranges(&self) -> MemRanges<'_> {
        self.mem_ranges_of(
            MemType::Reserved,
            None,
            NUMA_NO_NODE,
            MemblockFlags::NONE,
            false,
        )
    }

    /// Linux: for_each_free_mem_range() — memory minus reserved, lowest first.
    pub fn free_mem_ranges(&self, nid: i32, flags: MemblockFlags) -> MemRanges<'_> {
        self.mem_ranges_of(MemType::Memory, Some(MemType::Reserved), nid, flags, false)
    }

    /// Linux: for_each_free_mem_range_reverse() — memory minus reserved, highest first.
    pub fn free_mem_ranges_rev(&self, nid: i32, flags: MemblockFlags) -> MemRanges<'_> {
        self.mem_ranges_of(MemType::Memory, Some(MemType::Reserved), nid, flags, true)
    }

    /// Linux: for_each_mem_pfn_range() — the whole pages of each memory region of node `nid`
    /// (`MAX_NUMNODES` for all nodes): yields `(start_pfn, end_pfn, nid)`.
    pub fn mem_pfn_ranges(&self, nid: i32) -> MemPfnRanges<'_> {
        MemPfnRanges {
            ty: &self.memory,
            nid,
            idx: 0,
        }
    }

    /// Linux: memblock_alloc_range_nid() — find and reserve `size` bytes aligned to `align`
    /// in `[start, end)` on node `nid`, falling back to any node unless `exact_nid`.
    pub fn alloc_range_nid(
        &mut self,
        size: u64,
        align: u64,
        start: PhysAddr,
        end: PhysAddr,
        nid: i32,
        exact_nid: bool,
    ) -> Option<PhysAddr> {
        let flags = self.choose_memblock_flags();
        let nid = fix_nid(nid);
        // Linux also dump_stack()s here: a caller asked for no alignment.
        let align = if align == 0 { SMP_CACHE_BYTES } else { align };

        if let Some(found) = self.find_in_range_node(size, align, start, end, nid, flags) {
            if self.reserve(found, size).is_ok() {
                return Some(found);
            }
        }
        if nid != NUMA_NO_NODE && !exact_nid {
            if let Some(found) =
                self.find_in_range_node(size, align, start, end, NUMA_NO_NODE, flags)
            {
                if self.reserve(found, size).is_ok() {
                    return Some(found);
                }
            }
        }
        None
    }

    /// Linux: memblock_phys_alloc_range() — allocate in `[start, end)`, return the physical
    /// address.
    #[track_caller]
    pub fn phys_alloc_range(
        &mut self,
        size: u64,
        align: u64,
        start: PhysAddr,
        end: PhysAddr,
    ) -> Option<PhysAddr> {
        memblock_dbg!(
            self,
            "memblock_phys_alloc_range: {} bytes align={:#x} from={} max_addr={} {}",
            size,
            align,
            Pa(start.0),
            Pa(end.0),
            Caller(Location::caller())
        );
        self.alloc_range_nid(size, align, start, end, NUMA_NO_NODE, false)
    }

    /// Linux: memblock_phys_alloc() — anywhere below `current_limit`.
    #[track_caller]
    pub fn phys_alloc(&mut self, size: u64, align: u64) -> Option<PhysAddr> {
        self.phys_alloc_range(size, align, PhysAddr(0), MEMBLOCK_ALLOC_ACCESSIBLE)
    }

    /// Linux: memblock_phys_alloc_try_nid() — prefer node `nid`, else any node.
    pub fn phys_alloc_try_nid(&mut self, size: u64, align: u64, nid: i32) -> Option<PhysAddr> {
        self.alloc_range_nid(
            size,
            align,
            PhysAddr(0),
            MEMBLOCK_ALLOC_ACCESSIBLE,
            nid,
            false,
        )
    }

    /// Linux: memblock_alloc_internal() — `max_addr` is capped at `current_limit`, and
    /// `min_addr` is only a preference: without room above it, memory below is used.
    fn alloc_internal(
        &mut self,
        size: u64,
        align: u64,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
        nid: i32,
        exact_nid: bool,
    ) -> Option<NonNull<u8>> {
        // Linux first checks slab_is_available(); memblock here is only used before.
        let max_addr = max_addr.min(self.current_limit);
        let mut alloc = self.alloc_range_nid(size, align, min_addr, max_addr, nid, exact_nid);
        if alloc.is_none() && min_addr.0 != 0 {
            alloc = self.alloc_range_nid(size, align, PhysAddr(0), max_addr, nid, exact_nid);
        }
        let pa = alloc?;
        let va = (self.phys_to_virt)(pa);
        Some(NonNull::new(va).expect("memblock: phys_to_virt returned NULL"))
    }

    /// Linux: memblock_alloc_exact_nid_raw() — on node `nid` only, not zeroed.
    #[track_caller]
    pub fn alloc_exact_nid_raw(
        &mut self,
        size: u64,
        align: u64,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
        nid: i32,
    ) -> Option<NonNull<u8>> {
        self.trace_alloc(
            "memblock_alloc_exact_nid_raw",
            size,
            align,
            nid,
            min_addr,
            max_addr,
        );
        // Linux's page_init_poison() here only acts with CONFIG_DEBUG_VM page poisoning.
        self.alloc_internal(size, align, min_addr, max_addr, nid, true)
    }

    /// Linux: memblock_alloc_try_nid_raw() — like alloc_try_nid() but not zeroed.
    #[track_caller]
    pub fn alloc_try_nid_raw(
        &mut self,
        size: u64,
        align: u64,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
        nid: i32,
    ) -> Option<NonNull<u8>> {
        self.trace_alloc(
            "memblock_alloc_try_nid_raw",
            size,
            align,
            nid,
            min_addr,
            max_addr,
        );
        self.alloc_internal(size, align, min_addr, max_addr, nid, false)
    }

    /// Linux: memblock_alloc_try_nid() — allocate zeroed memory, preferably on node `nid` and
    /// in `[min_addr, max_addr)`, and return its virtual address.
    #[track_caller]
    pub fn alloc_try_nid(
        &mut self,
        size: u64,
        align: u64,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
        nid: i32,
    ) -> Option<NonNull<u8>> {
        self.trace_alloc(
            "memblock_alloc_try_nid",
            size,
            align,
            nid,
            min_addr,
            max_addr,
        );
        let ptr = self.alloc_internal(size, align, min_addr, max_addr, nid, false)?;
        // SAFETY: the block was just reserved out of free memory, which the phys_to_virt
        // contract maps writable and unused, `size` bytes from `ptr`.
        unsafe { ptr::write_bytes(ptr.as_ptr(), 0, size as usize) };
        Some(ptr)
    }

    #[track_caller]
    fn trace_alloc(
        &self,
        func: &str,
        size: u64,
        align: u64,
        nid: i32,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
    ) {
        memblock_dbg!(
            self,
            "{}: {} bytes align={:#x} nid={} from={} max_addr={} {}",
            func,
            size,
            align,
            nid,
            Pa(min_addr.0),
            Pa(max_addr.0),
            Caller(Location::caller())
        );
    }

    /// Linux: memblock_alloc() — zeroed, anywhere below `current_limit`.
    #[track_caller]
    pub fn alloc(&mut self, size: u64, align: u64) -> Option<NonNull<u8>> {
        self.alloc_try_nid(
            size,
            align,
            MEMBLOCK_LOW_LIMIT,
            MEMBLOCK_ALLOC_ACCESSIBLE,
            NUMA_NO_NODE,
        )
    }

    /// Linux: memblock_alloc_raw() — like alloc() but not zeroed.
    #[track_caller]
    pub fn alloc_raw(&mut self, size: u64, align: u64) -> Option<NonNull<u8>> {
        self.alloc_try_nid_raw(
            size,
            align,
            MEMBLOCK_LOW_LIMIT,
            MEMBLOCK_ALLOC_ACCESSIBLE,
            NUMA_NO_NODE,
        )
    }

    /// Linux: memblock_alloc_from() — zeroed, preferably at or above `min_addr`.
    #[track_caller]
    pub fn alloc_from(&mut self, size: u64, align: u64, min_addr: PhysAddr) -> Option<NonNull<u8>> {
        self.alloc_try_nid(
            size,
            align,
            min_addr,
            MEMBLOCK_ALLOC_ACCESSIBLE,
            NUMA_NO_NODE,
        )
    }

    /// Linux: memblock_alloc_node() — zeroed, preferably on node `nid`.
    #[track_caller]
    pub fn alloc_node(&mut self, size: u64, align: u64, nid: i32) -> Option<NonNull<u8>> {
        self.alloc_try_nid(
            size,
            align,
            MEMBLOCK_LOW_LIMIT,
            MEMBLOCK_ALLOC_ACCESSIBLE,
            nid,
        )
    }

    /// Linux: memblock_phys_mem_size().
    pub fn phys_mem_size(&self) -> u64 {
        self.memory.total_size
    }

    /// Linux: memblock_reserved_size().
    pub fn reserved_size(&self) -> u64 {
        self.reserved.total_size
    }

    /// Linux: memblock_start_of_DRAM() — the lowest memory address.
    pub fn start_of_dram(&self) -> PhysAddr {
        self.memory.regions()[0].base
    }

    /// Linux: memblock_end_of_DRAM() — one past the highest memory address.
    pub fn end_of_dram(&self) -> PhysAddr {
        self.memory.regions()[self.memory.cnt - 1].end()
    }

    /// Linux: __find_max_addr() — the address below which memory adds up to `limit` bytes,
    /// PHYS_ADDR_MAX if there is not that much.
    fn find_max_addr(&self, mut limit: u64) -> PhysAddr {
        for r in self.memory.regions() {
            if limit <= r.size {
                return PhysAddr(r.base.0 + limit);
            }
            limit -= r.size;
        }
        PHYS_ADDR_MAX
    }

    /// Linux: memblock_enforce_memory_limit() — keep only the first `limit` bytes of memory,
    /// dropping memory and reservations above.
    pub fn enforce_memory_limit(&mut self, limit: u64) {
        if limit == 0 {
            return;
        }
        let max_addr = self.find_max_addr(limit);
        if max_addr == PHYS_ADDR_MAX {
            return;
        }
        let _ = self.remove_range(MemType::Memory, max_addr, PHYS_ADDR_MAX.0);
        let _ = self.remove_range(MemType::Reserved, max_addr, PHYS_ADDR_MAX.0);
    }

    /// Linux: memblock_cap_memory_range() — keep only the memory in `[base, base + size)`,
    /// except NOMAP regions (firmware tables outside stay described), and drop reservations
    /// outside it.
    pub fn cap_memory_range(&mut self, base: PhysAddr, size: u64) {
        if size == 0 {
            return;
        }
        if self.memory.total_size == 0 {
            pr_warn!("memblock_cap_memory_range: No memory registered yet");
            return;
        }
        let Ok((start_rgn, end_rgn)) = self.isolate_range(MemType::Memory, base, size) else {
            return;
        };
        for i in (end_rgn..self.memory.cnt).rev() {
            if !self.memory.regions()[i].is_nomap() {
                self.memory.remove_region(i);
            }
        }
        for i in (0..start_rgn).rev() {
            if !self.memory.regions()[i].is_nomap() {
                self.memory.remove_region(i);
            }
        }
        let _ = self.remove_range(MemType::Reserved, PhysAddr(0), base.0);
        let _ = self.remove_range(
            MemType::Reserved,
            PhysAddr(base.0.wrapping_add(size)),
            PHYS_ADDR_MAX.0,
        );
    }

    /// Linux: memblock_mem_limit_remove_map() — `mem=`: keep the first `limit` bytes of
    /// memory (NOMAP regions above stay).
    pub fn mem_limit_remove_map(&mut self, limit: u64) {
        if limit == 0 {
            return;
        }
        let max_addr = self.find_max_addr(limit);
        if max_addr == PHYS_ADDR_MAX {
            return;
        }
        self.cap_memory_range(PhysAddr(0), max_addr.0);
    }

    /// Linux: memblock_is_reserved().
    pub fn is_reserved(&self, addr: PhysAddr) -> bool {
        self.reserved.search(addr).is_some()
    }

    /// Linux: memblock_is_memory().
    pub fn is_memory(&self, addr: PhysAddr) -> bool {
        self.memory.search(addr).is_some()
    }

    /// Linux: memblock_is_map_memory() — memory that is in the linear map (not NOMAP).
    pub fn is_map_memory(&self, addr: PhysAddr) -> bool {
        self.memory
            .search(addr)
            .is_some_and(|i| !self.memory.regions()[i].is_nomap())
    }

    /// Linux: memblock_is_region_memory() — is the range inside one memory region?
    pub fn is_region_memory(&self, base: PhysAddr, size: u64) -> bool {
        let end = base.0 + cap_size(base, size);
        match self.memory.search(base) {
            None => false,
            Some(idx) => self.memory.regions()[idx].end().0 >= end,
        }
    }

    /// Linux: memblock_is_region_reserved() — does the range intersect a reservation?
    pub fn is_region_reserved(&self, base: PhysAddr, size: u64) -> bool {
        self.overlaps_region(MemType::Reserved, base, size)
    }

    /// Linux: memblock_trim_memory() — shrink memory regions to `align` boundaries, dropping
    /// those that vanish. Like Linux 6.1, a shrunk region's lost bytes are not taken off
    /// `total_size`.
    pub fn trim_memory(&mut self, align: u64) {
        let mut i = 0;
        while i < self.memory.cnt {
            let r = self.memory.regions()[i];
            let (orig_start, orig_end) = (r.base.0, r.base.0 + r.size);
            let start = align_up(orig_start, align);
            let end = align_down(orig_end, align);
            if start == orig_start && end == orig_end {
                i += 1;
                continue;
            }
            if start < end {
                let r = &mut self.memory.slots_mut()[i];
                r.base = PhysAddr(start);
                r.size = end - start;
                i += 1;
            } else {
                self.memory.remove_region(i);
            }
        }
    }

    /// Linux: memblock_set_current_limit() — the highest address ACCESSIBLE allocations use.
    pub fn set_current_limit(&mut self, limit: PhysAddr) {
        self.current_limit = limit;
    }

    /// Linux: memblock_get_current_limit().
    pub fn current_limit(&self) -> PhysAddr {
        self.current_limit
    }

    /// Linux: memblock_set_bottom_up() — allocate from low addresses up instead of top-down.
    pub fn set_bottom_up(&mut self, enable: bool) {
        self.bottom_up = enable;
    }

    /// Linux: memblock_bottom_up().
    pub fn bottom_up(&self) -> bool {
        self.bottom_up
    }

    /// Linux: memblock_dump().
    fn dump(t: &MemblockType) {
        pr_info!(" {}.cnt  = {:#x}", t.name, t.cnt);
        for (idx, r) in t.regions().iter().enumerate() {
            let end = r.base.0.wrapping_add(r.size).wrapping_sub(1);
            pr_info!(
                " {}[{:#x}]\t[{}-{}], {} bytes{} flags: {:#x}",
                t.name,
                idx,
                Pa(r.base.0),
                Pa(end),
                Pa(r.size),
                NodeSuffix(r.nid),
                r.flags.0
            );
        }
    }

    /// Linux: __memblock_dump_all() — print both lists, whatever `memblock=` says.
    pub fn dump_all_always(&self) {
        pr_info!("MEMBLOCK configuration:");
        pr_info!(
            " memory size = {} reserved size = {}",
            Pa(self.memory.total_size),
            Pa(self.reserved.total_size)
        );
        Self::dump(&self.memory);
        Self::dump(&self.reserved);
    }

    /// Linux: memblock_dump_all() — print both lists under `memblock=debug`.
    pub fn dump_all(&self) {
        if self.debug {
            self.dump_all_always();
        }
    }
}

/// The iterator behind every `for_each_*mem_range*` (Linux: __next_mem_range() and
/// __next_mem_range_rev(), whose `u64 *idx` state is `idx_a`/`idx_b` here). Ranges of `b`
/// are excluded by walking the gaps between its regions: gap `i` lies below region `i`, and
/// gap `cnt` runs to PHYS_ADDR_MAX.
pub struct MemRanges<'a> {
    a: &'a MemblockType,
    b: Option<&'a MemblockType>,
    a_is_memory: bool,
    nid: i32,
    flags: MemblockFlags,
    idx_a: isize,
    idx_b: isize,
    rev: bool,
}

impl MemRanges<'_> {
    /// The gap of `b` below region `ib`.
    fn gap(b: &[MemblockRegion], ib: usize) -> (u64, u64) {
        let start = if ib > 0 {
            b[ib - 1].base.0 + b[ib - 1].size
        } else {
            0
        };
        let end = if ib < b.len() {
            b[ib].base.0
        } else {
            PHYS_ADDR_MAX.0
        };
        (start, end)
    }

    /// Linux: __next_mem_range().
    fn next_fwd(&mut self) -> Option<(PhysAddr, PhysAddr, i32)> {
        let ra = self.a.regions();
        while (self.idx_a as usize) < ra.len() {
            let m = ra[self.idx_a as usize];
            let (m_start, m_end) = (m.base.0, m.base.0 + m.size);
            if should_skip_region(self.a_is_memory, &m, self.nid, self.flags) {
                self.idx_a += 1;
                continue;
            }
            let Some(b) = self.b else {
                self.idx_a += 1;
                return Some((m.base, PhysAddr(m_end), m.nid));
            };
            let rb = b.regions();
            while self.idx_b as usize <= rb.len() {
                let (r_start, r_end) = Self::gap(rb, self.idx_b as usize);
                // The gap is past this region: move on to the next one.
                if r_start >= m_end {
                    break;
                }
                if m_start < r_end {
                    let out = (
                        PhysAddr(m_start.max(r_start)),
                        PhysAddr(m_end.min(r_end)),
                        m.nid,
                    );
                    // Whichever ends first advances.
                    if m_end <= r_end {
                        self.idx_a += 1;
                    } else {
                        self.idx_b += 1;
                    }
                    return Some(out);
                }
                self.idx_b += 1;
            }
            self.idx_a += 1;
        }
        None
    }

    /// Linux: __next_mem_range_rev().
    fn next_rev(&mut self) -> Option<(PhysAddr, PhysAddr, i32)> {
        let ra = self.a.regions();
        while self.idx_a >= 0 {
            let m = ra[self.idx_a as usize];
            let (m_start, m_end) = (m.base.0, m.base.0 + m.size);
            if should_skip_region(self.a_is_memory, &m, self.nid, self.flags) {
                self.idx_a -= 1;
                continue;
            }
            let Some(b) = self.b else {
                self.idx_a -= 1;
                return Some((m.base, PhysAddr(m_end), m.nid));
            };
            let rb = b.regions();
            while self.idx_b >= 0 {
                let (r_start, r_end) = Self::gap(rb, self.idx_b as usize);
                if r_end <= m_start {
                    break;
                }
                if m_end > r_start {
                    let out = (
                        PhysAddr(m_start.max(r_start)),
                        PhysAddr(m_end.min(r_end)),
                        m.nid,
                    );
                    if m_start >= r_start {
                        self.idx_a -= 1;
                    } else {
                        self.idx_b -= 1;
                    }
                    return Some(out);
                }
                self.idx_b -= 1;
            }
            self.idx_a -= 1;
        }
        None
    }
}

impl Iterator for MemRanges<'_> {
    /// `(start, end, nid)`, end exclusive.
    type Item = (PhysAddr, PhysAddr, i32);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rev {
            self.next_rev()
        } else {
            self.next_fwd()
        }
    }
}

/// Linux: __next_mem_pfn_range(), behind for_each_mem_pfn_range().
pub struct MemPfnRanges<'a> {
    ty: &'a MemblockType,
    nid: i32,
    idx: usize,
}

impl Iterator for MemPfnRanges<'_> {
    /// `(start_pfn, end_pfn, nid)`: the whole pages of one region.
    type Item = (Pfn, Pfn, i32);

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(r) = self.ty.regions().get(self.idx) {
            self.idx += 1;
            let (start, end) = (r.base.pfn_up(), r.end().pfn_down());
            // Regions without a whole page have no pfns.
            if start >= end {
                continue;
            }
            if self.nid == MAX_NUMNODES || self.nid == r.nid {
                return Some((start, end, r.nid));
            }
        }
        None
    }
}

/// The kernel's memblock (Linux: `struct memblock memblock`). The free functions below lock
/// it for one call each; none of them may be called while holding the lock yourself.
pub static MEMBLOCK: spin::Mutex<Memblock> = spin::Mutex::new(Memblock::new());

/// Linux: early_memblock() — `memblock=debug` turns on the traces.
fn early_memblock(p: Option<&str>) -> SetupResult {
    if p.is_some_and(|p| p.contains("debug")) {
        MEMBLOCK.lock().set_debug(true);
    }
    Ok(())
}
crate::early_param!("memblock", early_memblock);

/// Sets `__va()` for the kernel's memblock.
///
/// # Safety
/// As for [`Memblock::set_phys_to_virt`].
pub unsafe fn memblock_set_phys_to_virt(f: fn(PhysAddr) -> *mut u8) {
    // SAFETY: the caller upholds the contract.
    unsafe { MEMBLOCK.lock().set_phys_to_virt(f) }
}

/// Sets `__pa()` for the kernel's memblock (needed by memblock_free()).
pub fn memblock_set_virt_to_phys(f: fn(*const u8) -> PhysAddr) {
    MEMBLOCK.lock().set_virt_to_phys(f);
}

/// Linux: memblock_add().
#[track_caller]
pub fn memblock_add(base: PhysAddr, size: u64) -> Result<(), MemblockError> {
    MEMBLOCK.lock().add(base, size)
}

/// Linux: memblock_add_node().
#[track_caller]
pub fn memblock_add_node(
    base: PhysAddr,
    size: u64,
    nid: i32,
    flags: MemblockFlags,
) -> Result<(), MemblockError> {
    MEMBLOCK.lock().add_node(base, size, nid, flags)
}

/// Linux: memblock_remove().
#[track_caller]
pub fn memblock_remove(base: PhysAddr, size: u64) -> Result<(), MemblockError> {
    MEMBLOCK.lock().remove(base, size)
}

/// Linux: memblock_reserve().
#[track_caller]
pub fn memblock_reserve(base: PhysAddr, size: u64) -> Result<(), MemblockError> {
    MEMBLOCK.lock().reserve(base, size)
}

/// Linux: memblock_phys_free().
#[track_caller]
pub fn memblock_phys_free(base: PhysAddr, size: u64) -> Result<(), MemblockError> {
    MEMBLOCK.lock().phys_free(base, size)
}

/// Linux: memblock_free().
#[track_caller]
pub fn memblock_free(ptr: *const u8, size: u64) {
    MEMBLOCK.lock().free(ptr, size)
}

/// Linux: memblock_mark_hotplug().
pub fn memblock_mark_hotplug(base: PhysAddr, size: u64) -> Result<(), MemblockError> {
    MEMBLOCK.lock().mark_hotplug(base, size)
}

/// Linux: memblock_clear_hotplug().
pub fn memblock_clear_hotplug(base: PhysAddr, size: u64) -> Result<(), MemblockError> {
    MEMBLOCK.lock().clear_hotplug(base, size)
}

/// Linux: memblock_mark_nomap().
pub fn memblock_mark_nomap(base: PhysAddr, size: u64) -> Result<(), MemblockError> {
    MEMBLOCK.lock().mark_nomap(base, size)
}

/// Linux: memblock_clear_nomap().
pub fn memblock_clear_nomap(base: PhysAddr, size: u64) -> Result<(), MemblockError> {
    MEMBLOCK.lock().clear_nomap(base, size)
}

/// Linux: memblock_set_node().
pub fn memblock_set_node(
    base: PhysAddr,
    size: u64,
    t: MemType,
    nid: i32,
) -> Result<(), MemblockError> {
    MEMBLOCK.lock().set_node(base, size, t, nid)
}

/// Linux: memblock_overlaps_region().
pub fn memblock_overlaps_region(t: MemType, base: PhysAddr, size: u64) -> bool {
    MEMBLOCK.lock().overlaps_region(t, base, size)
}

/// Linux: for_each_mem_range(). `f` runs with memblock locked.
pub fn for_each_mem_range(mut f: impl FnMut(PhysAddr, PhysAddr)) {
    MEMBLOCK.lock().mem_ranges().for_each(|(s, e, _)| f(s, e));
}

/// Linux: for_each_reserved_mem_range(). `f` runs with memblock locked.
pub fn for_each_reserved_mem_range(mut f: impl FnMut(PhysAddr, PhysAddr)) {
    MEMBLOCK
        .lock()
        .reserved_mem_ranges()
        .for_each(|(s, e, _)| f(s, e));
}

/// Linux: for_each_free_mem_range(). `f(start, end, nid)` runs with memblock locked.
pub fn for_each_free_mem_range(
    nid: i32,
    flags: MemblockFlags,
    mut f: impl FnMut(PhysAddr, PhysAddr, i32),
) {
    MEMBLOCK
        .lock()
        .free_mem_ranges(nid, flags)
        .for_each(|(s, e, n)| f(s, e, n));
}

/// Linux: for_each_free_mem_range_reverse(). `f(start, end, nid)` runs with memblock locked.
pub fn for_each_free_mem_range_reverse(
    nid: i32,
    flags: MemblockFlags,
    mut f: impl FnMut(PhysAddr, PhysAddr, i32),
) {
    MEMBLOCK
        .lock()
        .free_mem_ranges_rev(nid, flags)
        .for_each(|(s, e, n)| f(s, e, n));
}

/// Linux: for_each_mem_pfn_range(). `f(start_pfn, end_pfn, nid)` runs with memblock locked.
pub fn for_each_mem_pfn_range(nid: i32, mut f: impl FnMut(Pfn, Pfn, i32)) {
    MEMBLOCK
        .lock()
        .mem_pfn_ranges(nid)
        .for_each(|(s, e, n)| f(s, e, n));
}

/// Linux: memblock_phys_alloc_range().
#[track_caller]
pub fn memblock_phys_alloc_range(
    size: u64,
    align: u64,
    start: PhysAddr,
    end: PhysAddr,
) -> Option<PhysAddr> {
    MEMBLOCK.lock().phys_alloc_range(size, align, start, end)
}

/// Linux: memblock_phys_alloc().
#[track_caller]
pub fn memblock_phys_alloc(size: u64, align: u64) -> Option<PhysAddr> {
    MEMBLOCK.lock().phys_alloc(size, align)
}

/// Linux: memblock_phys_alloc_try_nid().
pub fn memblock_phys_alloc_try_nid(size: u64, align: u64, nid: i32) -> Option<PhysAddr> {
    MEMBLOCK.lock().phys_alloc_try_nid(size, align, nid)
}

/// Linux: memblock_alloc_try_nid().
#[track_caller]
pub fn memblock_alloc_try_nid(
    size: u64,
    align: u64,
    min_addr: PhysAddr,
    max_addr: PhysAddr,
    nid: i32,
) -> Option<NonNull<u8>> {
    MEMBLOCK
        .lock()
        .alloc_try_nid(size, align, min_addr, max_addr, nid)
}

/// Linux: memblock_alloc_try_nid_raw().
#[track_caller]
pub fn memblock_alloc_try_nid_raw(
    size: u64,
    align: u64,
    min_addr: PhysAddr,
    max_addr: PhysAddr,
    nid: i32,
) -> Option<NonNull<u8>> {
    MEMBLOCK
        .lock()
        .alloc_try_nid_raw(size, align, min_addr, max_addr, nid)
}

/// Linux: memblock_alloc_exact_nid_raw().
#[track_caller]
pub fn memblock_alloc_exact_nid_raw(
    size: u64,
    align: u64,
    min_addr: PhysAddr,
    max_addr: PhysAddr,
    nid: i32,
) -> Option<NonNull<u8>> {
    MEMBLOCK
        .lock()
        .alloc_exact_nid_raw(size, align, min_addr, max_addr, nid)
}

/// Linux: memblock_alloc().
#[track_caller]
pub fn memblock_alloc(size: u64, align: u64) -> Option<NonNull<u8>> {
    MEMBLOCK.lock().alloc(size, align)
}

/// Linux: memblock_alloc_raw().
#[track_caller]
pub fn memblock_alloc_raw(size: u64, align: u64) -> Option<NonNull<u8>> {
    MEMBLOCK.lock().alloc_raw(size, align)
}

/// Linux: memblock_alloc_from().
#[track_caller]
pub fn memblock_alloc_from(size: u64, align: u64, min_addr: PhysAddr) -> Option<NonNull<u8>> {
    MEMBLOCK.lock().alloc_from(size, align, min_addr)
}

/// Linux: memblock_alloc_node().
#[track_caller]
pub fn memblock_alloc_node(size: u64, align: u64, nid: i32) -> Option<NonNull<u8>> {
    MEMBLOCK.lock().alloc_node(size, align, nid)
}

/// Linux: memblock_set_current_limit().
pub fn memblock_set_current_limit(limit: PhysAddr) {
    MEMBLOCK.lock().set_current_limit(limit)
}

/// Linux: memblock_get_current_limit().
pub fn memblock_get_current_limit() -> PhysAddr {
    MEMBLOCK.lock().current_limit()
}

/// Linux: memblock_set_bottom_up().
pub fn memblock_set_bottom_up(enable: bool) {
    MEMBLOCK.lock().set_bottom_up(enable)
}

/// Linux: memblock_bottom_up().
pub fn memblock_bottom_up() -> bool {
    MEMBLOCK.lock().bottom_up()
}

/// Linux: memblock_start_of_DRAM().
pub fn memblock_start_of_dram() -> PhysAddr {
    MEMBLOCK.lock().start_of_dram()
}

/// Linux: memblock_end_of_DRAM().
pub fn memblock_end_of_dram() -> PhysAddr {
    MEMBLOCK.lock().end_of_dram()
}

/// Linux: memblock_phys_mem_size().
pub fn memblock_phys_mem_size() -> u64 {
    MEMBLOCK.lock().phys_mem_size()
}

/// Linux: memblock_reserved_size().
pub fn memblock_reserved_size() -> u64 {
    MEMBLOCK.lock().reserved_size()
}

/// Linux: memblock_is_memory().
pub fn memblock_is_memory(addr: PhysAddr) -> bool {
    MEMBLOCK.lock().is_memory(addr)
}

/// Linux: memblock_is_map_memory().
pub fn memblock_is_map_memory(addr: PhysAddr) -> bool {
    MEMBLOCK.lock().is_map_memory(addr)
}

/// Linux: memblock_is_reserved().
pub fn memblock_is_reserved(addr: PhysAddr) -> bool {
    MEMBLOCK.lock().is_reserved(addr)
}

/// Linux: memblock_is_region_memory().
pub fn memblock_is_region_memory(base: PhysAddr, size: u64) -> bool {
    MEMBLOCK.lock().is_region_memory(base, size)
}

/// Linux: memblock_is_region_reserved().
pub fn memblock_is_region_reserved(base: PhysAddr, size: u64) -> bool {
    MEMBLOCK.lock().is_region_reserved(base, size)
}

/// Linux: memblock_cap_memory_range().
pub fn memblock_cap_memory_range(base: PhysAddr, size: u64) {
    MEMBLOCK.lock().cap_memory_range(base, size)
}

/// Linux: memblock_mem_limit_remove_map().
pub fn memblock_mem_limit_remove_map(limit: u64) {
    MEMBLOCK.lock().mem_limit_remove_map(limit)
}

/// Linux: memblock_enforce_memory_limit().
pub fn memblock_enforce_memory_limit(limit: u64) {
    MEMBLOCK.lock().enforce_memory_limit(limit)
}

/// Linux: memblock_trim_memory().
pub fn memblock_trim_memory(align: u64) {
    MEMBLOCK.lock().trim_memory(align)
}

/// Linux: memblock_allow_resize().
pub fn memblock_allow_resize() {
    MEMBLOCK.lock().allow_resize()
}

/// Linux: memblock_dump_all().
pub fn memblock_dump_all() {
    MEMBLOCK.lock().dump_all()
}

// ---------------------------------------------------------------------------------------------
// Handing memory to the buddy allocator (Linux 6.1 mm/memblock.c: memblock_free_all() and the
// helpers it calls). The page-level work (__free_pages_core(), reserve_bootmem_region()) is
// page_alloc.rs's; this part decides which ranges and in which chunks.

/// Linux: __free_pages_memory() — free `[start, end)` in the largest naturally aligned
/// blocks, at most MAX_ORDER - 1.
fn __free_pages_memory(pa: &super::page_alloc::PageAlloc, mut start: u64, end: u64) {
    let max = super::mmzone::MAX_ORDER as u32 - 1;
    while start < end {
        let mut order = max.min(start.trailing_zeros());
        while start + (1 << order) > end {
            order -= 1;
        }
        pa.memblock_free_pages(start, order);
        start += 1 << order;
    }
}

/// Linux: __free_memory_core() — the whole pages of `[start, end)` below `max_low_pfn`.
fn __free_memory_core(
    pa: &super::page_alloc::PageAlloc,
    start: PhysAddr,
    end: PhysAddr,
    max_low_pfn: u64,
) -> u64 {
    let start_pfn = start.pfn_up().0;
    let end_pfn = end.pfn_down().0.min(max_low_pfn);
    if start_pfn >= end_pfn {
        return 0;
    }
    __free_pages_memory(pa, start_pfn, end_pfn);
    end_pfn - start_pfn
}

impl Memblock {
    /// Linux: memmap_init_reserved_pages() — PG_reserved on every reserved range and on
    /// NOMAP memory, where struct pages exist.
    fn memmap_init_reserved_pages(&self, pa: &super::page_alloc::PageAlloc) {
        let valid = |pfn| super::free_area_init::early_pfn_valid(self, pfn);
        for (start, end, _) in self.reserved_mem_ranges() {
            pa.reserve_bootmem_region(start, end, valid);
        }
        for r in self.memory().regions().iter().filter(|r| r.is_nomap()) {
            pa.reserve_bootmem_region(r.base, r.end(), valid);
        }
    }

    /// Linux: free_low_memory_core_early() — every free range to the buddy. Returns the
    /// pages freed.
    fn free_low_memory_core_early(&mut self, pa: &super::page_alloc::PageAlloc) -> u64 {
        let _ = self.clear_hotplug(PhysAddr(0), u64::MAX);
        self.memmap_init_reserved_pages(pa);
        // arm64: max_low_pfn is max_pfn, the end of DRAM.
        let max_low_pfn = self.end_of_dram().pfn_down().0;
        let mut count = 0;
        for (start, end, _) in self.free_mem_ranges(NUMA_NO_NODE, MemblockFlags::NONE) {
            count += __free_memory_core(pa, start, end, max_low_pfn);
        }
        count
    }

    /// Linux: memblock_free_all() — the end of memblock as an allocator: reserved pages get
    /// PG_reserved, every free page goes to the buddy, managed_pages and totalram_pages
    /// become what was freed. (free_unused_memmap() does nothing with SPARSEMEM_VMEMMAP.)
    /// Returns the pages freed.
    pub fn free_all(&mut self, pa: &super::page_alloc::PageAlloc) -> u64 {
        pa.reset_all_zones_managed_pages();
        let pages = self.free_low_memory_core_early(pa);
        pa.totalram_pages_add(pages as i64);
        pages
    }
}

/// Linux: memblock_free_all() — the kernel's memblock into the kernel's page allocator
/// (mem_init() calls it; page_alloc_init() must have run).
pub fn memblock_free_all() -> u64 {
    let pa = super::page_alloc::page_alloc().expect("memblock_free_all before page_alloc_init");
    MEMBLOCK.lock().free_all(pa)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::printk::take_captured;
    use proptest::prelude::*;
    use std::alloc::{alloc, dealloc, Layout};
    use std::cell::Cell;

    const SZ_2: u64 = 2;
    const SZ_16: u64 = 16;
    const SZ_64: u64 = 64;
    const SZ_128: u64 = 128;
    const SZ_256: u64 = 256;
    const SZ_1K: u64 = 1 << 10;
    const SZ_2K: u64 = 2 << 10;
    const SZ_4K: u64 = 4 << 10;
    const SZ_8K: u64 = 8 << 10;
    const SZ_16K: u64 = 16 << 10;
    const SZ_32K: u64 = 32 << 10;
    const SZ_64K: u64 = 64 << 10;
    const SZ_128K: u64 = 128 << 10;
    const SZ_256K: u64 = 256 << 10;
    const SZ_512K: u64 = 512 << 10;
    const SZ_1M: u64 = 1 << 20;
    const SZ_2M: u64 = 2 << 20;
    const SZ_4M: u64 = 4 << 20;
    const SZ_8M: u64 = 8 << 20;
    const SZ_16M: u64 = 16 << 20;
    const SZ_32M: u64 = 32 << 20;
    const SZ_64M: u64 = 64 << 20;
    const SZ_128M: u64 = 128 << 20;
    const SZ_256M: u64 = 256 << 20;
    const SZ_512M: u64 = 512 << 20;
    const SZ_1G: u64 = 1 << 30;
    const SZ_2G: u64 = 2 << 30;

    /// Where the simulated RAM starts, as on QEMU's virt machine.
    const RAM: u64 = 0x4000_0000;

    fn pa(x: u64) -> PhysAddr {
        PhysAddr(x)
    }

    // The simulated RAM of the current test thread: (phys base, host address, size).
    std::thread_local! {
        static ARENA: Cell<(u64, usize, usize)> = const { Cell::new((0, 0, 0)) };
    }

    /// Host memory standing in for physical `[base, base + size)`, filled with 0xaa so
    /// tests can tell zeroed allocations from raw ones.
    struct Arena {
        ptr: *mut u8,
        layout: Layout,
        base: u64,
    }

    impl Arena {
        fn new(base: u64, size: usize) -> Self {
            let layout = Layout::from_size_align(size, 4096).unwrap();
            // SAFETY: the layout has a non-zero size.
            let ptr = unsafe { alloc(layout) };
            assert!(!ptr.is_null());
            // SAFETY: `ptr` is a fresh allocation of `size` bytes.
            unsafe { ptr::write_bytes(ptr, 0xaa, size) };
            ARENA.with(|a| a.set((base, ptr as usize, size)));
            Self { ptr, layout, base }
        }

        fn bytes(&self, pa: PhysAddr, len: u64) -> &[u8] {
            let off = (pa.0 - self.base) as usize;
            assert!(off + len as usize <= self.layout.size());
            // SAFETY: in bounds of the allocation (checked above).
            unsafe { core::slice::from_raw_parts(self.ptr.add(off), len as usize) }
        }
    }

    impl Drop for Arena {
        fn drop(&mut self) {
            ARENA.with(|a| a.set((0, 0, 0)));
            // SAFETY: allocated in new() with this layout.
            unsafe { dealloc(self.ptr, self.layout) };
        }
    }

    fn arena_p2v(p: PhysAddr) -> *mut u8 {
        let (base, host, size) = ARENA.with(|a| a.get());
        assert!(
            p.0 >= base && p.0 - base <= size as u64,
            "phys {:#x} is outside the simulated RAM",
            p.0
        );
        (host + (p.0 - base) as usize) as *mut u8
    }

    fn arena_v2p(v: *const u8) -> PhysAddr {
        let (base, host, size) = ARENA.with(|a| a.get());
        let off = (v as usize)
            .checked_sub(host)
            .filter(|&o| o <= size)
            .expect("pointer outside the arena");
        PhysAddr(base + off as u64)
    }

    /// A memblock with `size` bytes of simulated RAM at `base`, added as memory.
    fn with_ram(base: u64, size: u64) -> (Arena, Memblock) {
        let arena = Arena::new(base, size as usize);
        let mut mb = Memblock::new();
        // SAFETY: the arena maps [base, base + size) linearly, page-aligned, and nothing
        // else uses it.
        unsafe { mb.set_phys_to_virt(arena_p2v) };
        mb.set_virt_to_phys(arena_v2p);
        mb.add(pa(base), size).unwrap();
        (arena, mb)
    }

    fn regs(t: &MemblockType) -> Vec<(u64, u64)> {
        t.regions().iter().map(|r| (r.base.0, r.size)).collect()
    }

    /// What this thread printed, without the timestamps.
    fn printed() -> Vec<String> {
        take_captured()
            .lines()
            .map(|l| l.split_once("] ").map_or(l, |(_, rest)| rest).to_string())
            .collect()
    }

    // ---- basic_api.c: initialization and memblock_add() ----

    #[test]
    fn initialization() {
        let mb = Memblock::new();
        assert_eq!(mb.memory().cnt(), 1);
        assert_eq!(mb.memory().max(), INIT_MEMBLOCK_REGIONS);
        assert_eq!(mb.memory().name(), "memory");
        assert_eq!(mb.reserved().cnt(), 1);
        assert_eq!(mb.reserved().max(), INIT_MEMBLOCK_RESERVED_REGIONS);
        assert_eq!(mb.reserved().name(), "reserved");
        assert!(!mb.bottom_up());
        assert_eq!(mb.current_limit(), MEMBLOCK_ALLOC_ANYWHERE);
        assert_eq!(mb.memory().regions()[0], MemblockRegion::ZERO);
        assert_eq!(core::mem::size_of::<MemblockRegion>(), 24);
    }

    #[test]
    fn add_simple() {
        let mut mb = Memblock::new();
        mb.add(pa(SZ_1G), SZ_4M).unwrap();
        assert_eq!(regs(mb.memory()), [(SZ_1G, SZ_4M)]);
        assert_eq!(mb.memory().regions()[0].nid, MAX_NUMNODES);
        assert_eq!(mb.memory().total_size(), SZ_4M);
    }

    #[test]
    fn add_node_simple() {
        let mut mb = Memblock::new();
        mb.add_node(pa(SZ_1M), SZ_16M, 1, MemblockFlags::HOTPLUG)
            .unwrap();
        let r = mb.memory().regions()[0];
        assert_eq!(
            (r.base.0, r.size, r.nid, r.flags),
            (SZ_1M, SZ_16M, 1, MemblockFlags::HOTPLUG)
        );
        assert_eq!(mb.memory().total_size(), SZ_16M);
    }

    #[test]
    fn add_disjoint() {
        let mut mb = Memblock::new();
        mb.add(pa(SZ_1G), SZ_8K).unwrap();
        mb.add(pa(SZ_1G + SZ_16K), SZ_8K).unwrap();
        assert_eq!(regs(mb.memory()), [(SZ_1G, SZ_8K), (SZ_1G + SZ_16K, SZ_8K)]);
        assert_eq!(mb.memory().total_size(), 2 * SZ_8K);
    }

    #[test]
    fn add_overlap_top() {
        let mut mb = Memblock::new();
        mb.add(pa(SZ_512M), SZ_1G).unwrap();
        mb.add(pa(SZ_256M), SZ_512M).unwrap();
        let total = (SZ_512M - SZ_256M) + SZ_1G;
        assert_eq!(regs(mb.memory()), [(SZ_256M, total)]);
        assert_eq!(mb.memory().total_size(), total);
    }

    #[test]
    fn add_overlap_bottom() {
        let mut mb = Memblock::new();
        mb.add(pa(SZ_128M), SZ_512M).unwrap();
        mb.add(pa(SZ_256M), SZ_1G).unwrap();
        let total = (SZ_256M - SZ_128M) + SZ_1G;
        assert_eq!(regs(mb.memory()), [(SZ_128M, total)]);
        assert_eq!(mb.memory().total_size(), total);
    }

    #[test]
    fn add_within() {
        let mut mb = Memblock::new();
        mb.add(pa(SZ_8M), SZ_32M).unwrap();
        mb.add(pa(SZ_16M), SZ_1M).unwrap();
        assert_eq!(regs(mb.memory()), [(SZ_8M, SZ_32M)]);
        assert_eq!(mb.memory().total_size(), SZ_32M);
    }

    #[test]
    fn add_twice() {
        let mut mb = Memblock::new();
        mb.add(pa(SZ_16K), SZ_2M).unwrap();
        mb.add(pa(SZ_16K), SZ_2M).unwrap();
        assert_eq!(mb.memory().cnt(), 1);
        assert_eq!(mb.memory().total_size(), SZ_2M);
    }

    #[test]
    fn add_between_merges_three() {
        let mut mb = Memblock::new();
        mb.add(pa(SZ_1G), SZ_8K).unwrap();
        mb.add(pa(SZ_1G + SZ_16K), SZ_8K).unwrap();
        mb.add(pa(SZ_1G + SZ_8K), SZ_8K).unwrap();
        assert_eq!(regs(mb.memory()), [(SZ_1G, 3 * SZ_8K)]);
        assert_eq!(mb.memory().total_size(), 3 * SZ_8K);
    }

    #[test]
    fn add_covering_several_inserts_only_the_holes() {
        let mut mb = Memblock::new();
        mb.add_node(pa(SZ_1M), SZ_1M, 0, MemblockFlags::NONE)
            .unwrap();
        mb.add_node(pa(SZ_4M), SZ_1M, 0, MemblockFlags::NONE)
            .unwrap();
        mb.add_node(pa(0), SZ_8M, 0, MemblockFlags::NONE).unwrap();
        assert_eq!(regs(mb.memory()), [(0, SZ_8M)]);
        assert_eq!(mb.memory().total_size(), SZ_8M);
    }

    #[test]
    fn add_near_max_is_capped() {
        let mut mb = Memblock::new();
        let base = PHYS_ADDR_MAX.0 - SZ_1M;
        mb.add(pa(base), SZ_2M).unwrap();
        assert_eq!(regs(mb.memory()), [(base, SZ_1M)]);
        assert_eq!(mb.memory().total_size(), SZ_1M);
        assert_eq!(mb.end_of_dram(), PHYS_ADDR_MAX);
    }

    #[test]
    fn add_zero_size_is_a_no_op() {
        let mut mb = Memblock::new();
        mb.add(pa(SZ_1G), 0).unwrap();
        assert_eq!(mb.memory().cnt(), 1);
        assert_eq!(mb.memory().total_size(), 0);
        assert_eq!(mb.memory().regions()[0].size, 0);
    }

    #[test]
    fn adjacent_regions_with_different_nid_or_flags_do_not_merge() {
        let mut mb = Memblock::new();
        mb.add_node(pa(SZ_1G), SZ_1M, 0, MemblockFlags::NONE)
            .unwrap();
        mb.add_node(pa(SZ_1G + SZ_1M), SZ_1M, 1, MemblockFlags::NONE)
            .unwrap();
        mb.add_node(pa(SZ_1G + SZ_2M), SZ_1M, 1, MemblockFlags::HOTPLUG)
            .unwrap();
        mb.add_node(pa(SZ_1G + 3 * SZ_1M), SZ_1M, 1, MemblockFlags::HOTPLUG)
            .unwrap();
        assert_eq!(
            regs(mb.memory()),
            [
                (SZ_1G, SZ_1M),
                (SZ_1G + SZ_1M, SZ_1M),
                (SZ_1G + SZ_2M, SZ_2M)
            ]
        );
        assert_eq!(mb.memory().total_size(), SZ_4M);
    }

    #[test]
    fn overlapping_add_keeps_existing_attributes_and_warns() {
        let mut mb = Memblock::new();
        mb.add_node(pa(SZ_2M), SZ_1M, 0, MemblockFlags::NONE)
            .unwrap();
        take_captured();
        mb.add_node(pa(SZ_1M), SZ_4M, 1, MemblockFlags::NONE)
            .unwrap();
        let r = mb.memory().regions();
        assert_eq!(
            regs(mb.memory()),
            [(SZ_1M, SZ_1M), (SZ_2M, SZ_1M), (3 * SZ_1M, SZ_2M)]
        );
        assert_eq!((r[0].nid, r[1].nid, r[2].nid), (1, 0, 1));
        // Linux's WARN_ON(nid != ...) fires in both passes.
        assert_eq!(
            printed()
                .iter()
                .filter(|l| l.starts_with("WARNING:"))
                .count(),
            2
        );
    }

    // ---- basic_api.c: memblock_reserve() ----

    #[test]
    fn reserve_simple() {
        let mut mb = Memblock::new();
        mb.reserve(pa(SZ_2G), SZ_128M).unwrap();
        assert_eq!(regs(mb.reserved()), [(SZ_2G, SZ_128M)]);
        assert_eq!(mb.reserved_size(), SZ_128M);
    }

    #[test]
    fn reserve_disjoint() {
        let mut mb = Memblock::new();
        mb.reserve(pa(SZ_256M), SZ_16M).unwrap();
        mb.reserve(pa(SZ_512M), SZ_512M).unwrap();
        assert_eq!(regs(mb.reserved()), [(SZ_256M, SZ_16M), (SZ_512M, SZ_512M)]);
        assert_eq!(mb.reserved_size(), SZ_16M + SZ_512M);
    }

    #[test]
    fn reserve_overlap_top() {
        let mut mb = Memblock::new();
        mb.reserve(pa(SZ_1G), SZ_1G).unwrap();
        mb.reserve(pa(SZ_128M), SZ_1G).unwrap();
        let total = (SZ_1G - SZ_128M) + SZ_1G;
        assert_eq!(regs(mb.reserved()), [(SZ_128M, total)]);
        assert_eq!(mb.reserved_size(), total);
    }

    #[test]
    fn reserve_overlap_bottom() {
        let mut mb = Memblock::new();
        mb.reserve(pa(SZ_2K), SZ_128K).unwrap();
        mb.reserve(pa(SZ_128K), SZ_128K).unwrap();
        let total = (SZ_128K - SZ_2K) + SZ_128K;
        assert_eq!(regs(mb.reserved()), [(SZ_2K, total)]);
        assert_eq!(mb.reserved_size(), total);
    }

    #[test]
    fn reserve_within() {
        let mut mb = Memblock::new();
        mb.reserve(pa(SZ_1M), SZ_8M).unwrap();
        mb.reserve(pa(SZ_2M), SZ_64K).unwrap();
        assert_eq!(regs(mb.reserved()), [(SZ_1M, SZ_8M)]);
        assert_eq!(mb.reserved_size(), SZ_8M);
    }

    #[test]
    fn reserve_twice() {
        let mut mb = Memblock::new();
        mb.reserve(pa(SZ_16K), SZ_2M).unwrap();
        mb.reserve(pa(SZ_16K), SZ_2M).unwrap();
        assert_eq!(mb.reserved().cnt(), 1);
        assert_eq!(mb.reserved_size(), SZ_2M);
    }

    #[test]
    fn reserve_between() {
        let mut mb = Memblock::new();
        mb.reserve(pa(SZ_1G), SZ_8K).unwrap();
        mb.reserve(pa(SZ_1G + SZ_16K), SZ_8K).unwrap();
        mb.reserve(pa(SZ_1G + SZ_8K), SZ_8K).unwrap();
        assert_eq!(regs(mb.reserved()), [(SZ_1G, 3 * SZ_8K)]);
    }

    #[test]
    fn reserve_near_max_is_capped() {
        let mut mb = Memblock::new();
        let base = PHYS_ADDR_MAX.0 - SZ_1M;
        mb.reserve(pa(base), SZ_2M).unwrap();
        assert_eq!(regs(mb.reserved()), [(base, SZ_1M)]);
        assert_eq!(mb.reserved_size(), SZ_1M);
    }

    // ---- basic_api.c: memblock_remove() ----

    #[test]
    fn remove_simple() {
        let mut mb = Memblock::new();
        mb.add(pa(SZ_2K), SZ_4K).unwrap();
        mb.add(pa(SZ_128K), SZ_4M).unwrap();
        mb.remove(pa(SZ_2K), SZ_4K).unwrap();
        assert_eq!(regs(mb.memory()), [(SZ_128K, SZ_4M)]);
        assert_eq!(mb.phys_mem_size(), SZ_4M);
    }

    #[test]
    fn remove_absent() {
        let mut mb = Memblock::new();
        mb.add(pa(SZ_512K), SZ_4M).unwrap();
        mb.remove(pa(SZ_64M), SZ_1G).unwrap();
        assert_eq!(regs(mb.memory()), [(SZ_512K, SZ_4M)]);
        assert_eq!(mb.phys_mem_size(), SZ_4M);
    }

    #[test]
    fn remove_overlap_top() {
        let mut mb = Memblock::new();
        mb.add(pa(SZ_32M), SZ_32M).unwrap();
        mb.remove(pa(SZ_16M), SZ_32M).unwrap();
        assert_eq!(regs(mb.memory()), [(SZ_32M + SZ_16M, SZ_16M)]);
        assert_eq!(mb.phys_mem_size(), SZ_16M);
    }

    #[test]
    fn remove_overlap_bottom() {
        let mut mb = Memblock::new();
        mb.add(pa(SZ_2M), SZ_64M).unwrap();
        mb.remove(pa(SZ_32M), SZ_256M).unwrap();
        assert_eq!(regs(mb.memory()), [(SZ_2M, SZ_32M - SZ_2M)]);
        assert_eq!(mb.phys_mem_size(), SZ_32M - SZ_2M);
    }

    #[test]
    fn remove_within_splits() {
        let mut mb = Memblock::new();
        mb.add(pa(SZ_1M), SZ_32M).unwrap();
        mb.remove(pa(SZ_16M), SZ_1M).unwrap();
        let (s1, s2) = (SZ_16M - SZ_1M, (SZ_1M + SZ_32M) - (SZ_16M + SZ_1M));
        assert_eq!(regs(mb.memory()), [(SZ_1M, s1), (SZ_16M + SZ_1M, s2)]);
        assert_eq!(mb.phys_mem_size(), s1 + s2);
    }

    #[test]
    fn remove_only_region_leaves_the_dummy() {
        let mut mb = Memblock::new();
        mb.add(pa(SZ_2K), SZ_4K).unwrap();
        mb.remove(pa(SZ_2K), SZ_4K).unwrap();
        assert_eq!(mb.memory().cnt(), 1);
        assert_eq!(mb.phys_mem_size(), 0);
        let r = mb.memory().regions()[0];
        assert_eq!((r.base.0, r.size, r.nid), (0, 0, MAX_NUMNODES));
        // The dummy is overwritten by the next add.
        mb.add(pa(SZ_1M), SZ_1M).unwrap();
        assert_eq!(regs(mb.memory()), [(SZ_1M, SZ_1M)]);
    }

    #[test]
    fn remove_near_max() {
        let mut mb = Memblock::new();
        mb.add(pa(PHYS_ADDR_MAX.0 - SZ_2M), SZ_2M).unwrap();
        mb.remove(pa(PHYS_ADDR_MAX.0 - SZ_1M), SZ_2M).unwrap();
        assert_eq!(regs(mb.memory()), [(PHYS_ADDR_MAX.0 - SZ_2M, SZ_1M)]);
        assert_eq!(mb.phys_mem_size(), SZ_1M);
    }

    #[test]
    fn remove_overlapping_two_regions() {
        let mut mb = Memblock::new();
        mb.add(pa(SZ_16M), SZ_32M).unwrap();
        mb.add(pa(SZ_64M), SZ_64M).unwrap();
        mb.remove(pa(SZ_32M), SZ_64M).unwrap();
        assert_eq!(
            regs(mb.memory()),
            [(SZ_16M, SZ_16M), (SZ_32M + SZ_64M, SZ_32M)]
        );
        assert_eq!(mb.phys_mem_size(), SZ_16M + SZ_32M);
    }

    // ---- basic_api.c: memblock_phys_free() / memblock_free() ----

    #[test]
    fn phys_free_simple() {
        let mut mb = Memblock::new();
        mb.reserve(pa(SZ_4M), SZ_1M).unwrap();
        mb.reserve(pa(SZ_8M), SZ_1M).unwrap();
        mb.phys_free(pa(SZ_4M), SZ_1M).unwrap();
        assert_eq!(regs(mb.reserved()), [(SZ_8M, SZ_1M)]);
        assert_eq!(mb.reserved_size(), SZ_1M);
    }

    #[test]
    fn phys_free_absent() {
        let mut mb = Memblock::new();
        mb.reserve(pa(SZ_2M), SZ_8K).unwrap();
        mb.phys_free(pa(SZ_16M), SZ_128M).unwrap();
        assert_eq!(regs(mb.reserved()), [(SZ_2M, SZ_8K)]);
    }

    #[test]
    fn phys_free_overlap_top() {
        let mut mb = Memblock::new();
        mb.reserve(pa(SZ_8M), SZ_32M).unwrap();
        mb.phys_free(pa(SZ_1M), SZ_8M).unwrap();
        let total = (SZ_8M + SZ_32M) - (SZ_1M + SZ_8M);
        assert_eq!(regs(mb.reserved()), [(SZ_1M + SZ_8M, total)]);
        assert_eq!(mb.reserved_size(), total);
    }

    #[test]
    fn phys_free_overlap_bottom() {
        let mut mb = Memblock::new();
        mb.reserve(pa(SZ_8M), SZ_32M).unwrap();
        mb.phys_free(pa(SZ_32M), SZ_32M).unwrap();
        assert_eq!(regs(mb.reserved()), [(SZ_8M, SZ_32M - SZ_8M)]);
    }

    #[test]
    fn phys_free_within() {
        let mut mb = Memblock::new();
        mb.reserve(pa(SZ_1M), SZ_8M).unwrap();
        mb.phys_free(pa(SZ_4M), SZ_1M).unwrap();
        assert_eq!(
            regs(mb.reserved()),
            [(SZ_1M, SZ_4M - SZ_1M), (SZ_4M + SZ_1M, SZ_4M)]
        );
        assert_eq!(mb.reserved().cnt(), 2);
        assert_eq!(mb.reserved_size(), SZ_8M - SZ_1M);
    }

    #[test]
    fn phys_free_only_region_and_near_max() {
        let mut mb = Memblock::new();
        mb.reserve(pa(SZ_2K), SZ_16K).unwrap();
        mb.phys_free(pa(SZ_2K), SZ_16K).unwrap();
        assert_eq!((mb.reserved().cnt(), mb.reserved_size()), (1, 0));

        mb.reserve(pa(PHYS_ADDR_MAX.0 - SZ_2M), SZ_2M).unwrap();
        mb.phys_free(pa(PHYS_ADDR_MAX.0 - SZ_1M), SZ_2M).unwrap();
        assert_eq!(regs(mb.reserved()), [(PHYS_ADDR_MAX.0 - SZ_2M, SZ_1M)]);
    }

    #[test]
    fn free_by_virtual_address() {
        let (_arena, mut mb) = with_ram(RAM, SZ_1M);
        let p = mb.alloc(SZ_4K, SZ_4K).unwrap();
        assert_eq!(mb.reserved_size(), SZ_4K);
        mb.free(p.as_ptr(), SZ_4K);
        assert_eq!(mb.reserved_size(), 0);
        mb.free(ptr::null(), SZ_4K); // ignored, as in Linux
    }

    // ---- flags, nodes, queries ----

    #[test]
    fn nomap_and_hotplug_split_and_remerge() {
        let mut mb = Memblock::new();
        mb.add(pa(RAM), SZ_16M).unwrap();
        mb.mark_nomap(pa(RAM + SZ_4M), SZ_1M).unwrap();
        assert_eq!(
            regs(mb.memory()),
            [
                (RAM, SZ_4M),
                (RAM + SZ_4M, SZ_1M),
                (RAM + SZ_4M + SZ_1M, SZ_16M - SZ_4M - SZ_1M)
            ]
        );
        assert!(mb.memory().regions()[1].is_nomap());
        assert_eq!(mb.phys_mem_size(), SZ_16M);
        assert!(mb.is_memory(pa(RAM + SZ_4M)));
        assert!(!mb.is_map_memory(pa(RAM + SZ_4M)));
        assert!(mb.is_map_memory(pa(RAM + SZ_4M - 1)));
        mb.clear_nomap(pa(RAM + SZ_4M), SZ_1M).unwrap();
        assert_eq!(regs(mb.memory()), [(RAM, SZ_16M)]);

        mb.mark_hotplug(pa(RAM), SZ_8M).unwrap();
        assert_eq!(mb.memory().cnt(), 2);
        assert!(mb.memory().regions()[0].is_hotpluggable());
        mb.clear_hotplug(pa(0), PHYS_ADDR_MAX.0).unwrap();
        assert_eq!(regs(mb.memory()), [(RAM, SZ_16M)]);
    }

    #[test]
    fn set_node_splits_and_merges() {
        let mut mb = Memblock::new();
        mb.add(pa(RAM), SZ_4M).unwrap();
        mb.set_node(pa(RAM + SZ_1M), SZ_1M, MemType::Memory, 1)
            .unwrap();
        let nids: Vec<i32> = mb.memory().regions().iter().map(|r| r.nid).collect();
        assert_eq!(nids, [MAX_NUMNODES, 1, MAX_NUMNODES]);
        mb.set_node(pa(0), PHYS_ADDR_MAX.0, MemType::Memory, 0)
            .unwrap();
        assert_eq!(regs(mb.memory()), [(RAM, SZ_4M)]);
        assert_eq!(mb.memory().regions()[0].nid, 0);
    }

    #[test]
    fn queries() {
        let mut mb = Memblock::new();
        mb.add(pa(RAM), SZ_16M).unwrap();
        mb.add(pa(RAM + SZ_32M), SZ_16M).unwrap();
        mb.reserve(pa(RAM + SZ_1M), SZ_1M).unwrap();
        assert_eq!(mb.start_of_dram(), pa(RAM));
        assert_eq!(mb.end_of_dram(), pa(RAM + SZ_32M + SZ_16M));
        assert_eq!(mb.phys_mem_size(), SZ_32M);
        assert!(mb.is_memory(pa(RAM)));
        assert!(!mb.is_memory(pa(RAM + SZ_16M)));
        assert!(mb.is_region_memory(pa(RAM + SZ_1M), SZ_8M));
        assert!(!mb.is_region_memory(pa(RAM + SZ_8M), SZ_16M));
        assert!(mb.is_region_reserved(pa(RAM), SZ_1M + 1));
        assert!(!mb.is_region_reserved(pa(RAM), SZ_1M));
        assert!(mb.is_reserved(pa(RAM + SZ_2M - 1)));
        assert!(!mb.is_reserved(pa(RAM + SZ_2M)));
        assert!(mb.overlaps_region(MemType::Memory, pa(RAM + SZ_16M - 1), SZ_1M));
        assert!(!mb.overlaps_region(MemType::Memory, pa(RAM + SZ_16M), SZ_16M));
        // Empty lists answer with their dummy entry, as Linux's do.
        let empty = Memblock::new();
        assert_eq!((empty.start_of_dram(), empty.end_of_dram()), (pa(0), pa(0)));
        assert!(!empty.is_memory(pa(0)));
    }

    // ---- iterators ----

    #[test]
    fn free_range_iterators_exclude_reserved_and_nomap() {
        let mut mb = Memblock::new();
        mb.add(pa(RAM), SZ_16M).unwrap();
        mb.add_node(pa(RAM + SZ_32M), SZ_16M, 1, MemblockFlags::NONE)
            .unwrap();
        mb.reserve(pa(RAM + SZ_1M), SZ_1M).unwrap();
        mb.reserve(pa(RAM + SZ_16M - SZ_1M), SZ_32M).unwrap();
        mb.mark_nomap(pa(RAM + SZ_4M), SZ_4M).unwrap();
        let fwd: Vec<_> = mb
            .free_mem_ranges(NUMA_NO_NODE, MemblockFlags::NONE)
            .map(|(s, e, n)| (s.0, e.0, n))
            .collect();
        assert_eq!(
            fwd,
            [
                (RAM, RAM + SZ_1M, MAX_NUMNODES),
                (RAM + SZ_2M, RAM + SZ_4M, MAX_NUMNODES),
                (RAM + SZ_8M, RAM + SZ_16M - SZ_1M, MAX_NUMNODES),
                (RAM + SZ_32M + SZ_16M - SZ_1M, RAM + SZ_32M + SZ_16M, 1),
            ]
        );
        let mut rev: Vec<_> = mb
            .free_mem_ranges_rev(NUMA_NO_NODE, MemblockFlags::NONE)
            .map(|(s, e, n)| (s.0, e.0, n))
            .collect();
        rev.reverse();
        assert_eq!(rev, fwd);
        // Asking for NOMAP includes it.
        assert_eq!(
            mb.free_mem_ranges(NUMA_NO_NODE, MemblockFlags::NOMAP)
                .count(),
            5
        );
        let merged: Vec<_> = mb
            .free_mem_ranges(NUMA_NO_NODE, MemblockFlags::NOMAP)
            .map(|(s, e, _)| (s.0, e.0))
            .collect();
        assert_eq!(merged[1], (RAM + SZ_2M, RAM + SZ_4M));
        assert_eq!(merged[2], (RAM + SZ_4M, RAM + SZ_8M));
        // The node filter.
        let node1: Vec<_> = mb
            .free_mem_ranges(1, MemblockFlags::NONE)
            .map(|(s, e, _)| (s.0, e.0))
            .collect();
        assert_eq!(
            node1,
            [(RAM + SZ_32M + SZ_16M - SZ_1M, RAM + SZ_32M + SZ_16M)]
        );
        // for_each_mem_range skips NOMAP, for_each_reserved_mem_range lists reservations.
        let mem: Vec<_> = mb.mem_ranges().map(|(s, e, _)| (s.0, e.0)).collect();
        assert_eq!(
            mem,
            [
                (RAM, RAM + SZ_4M),
                (RAM + SZ_8M, RAM + SZ_16M),
                (RAM + SZ_32M, RAM + SZ_32M + SZ_16M)
            ]
        );
        let mut mem_rev: Vec<_> = mb.mem_ranges_rev().map(|(s, e, _)| (s.0, e.0)).collect();
        mem_rev.reverse();
        assert_eq!(mem_rev, mem);
        assert_eq!(mb.reserved_mem_ranges().count(), 2);
    }

    #[test]
    fn pfn_ranges_skip_partial_pages_and_filter_nodes() {
        let mut mb = Memblock::new();
        mb.add_node(pa(RAM + 0x800), SZ_8K, 0, MemblockFlags::NONE)
            .unwrap();
        mb.add_node(pa(RAM + SZ_1M), 0x800, 0, MemblockFlags::NONE)
            .unwrap();
        mb.add_node(pa(RAM + SZ_2M), SZ_8K, 1, MemblockFlags::NONE)
            .unwrap();
        let all: Vec<_> = mb
            .mem_pfn_ranges(MAX_NUMNODES)
            .map(|(s, e, n)| (s.0, e.0, n))
            .collect();
        let p = RAM >> 12;
        assert_eq!(all, [(p + 1, p + 2, 0), (p + 512, p + 514, 1)]);
        assert_eq!(mb.mem_pfn_ranges(1).count(), 1);
    }

    // ---- alloc_api.c / alloc_helpers_api.c / alloc_nid_api.c ----

    #[test]
    fn alloc_top_down_simple() {
        let (_a, mut mb) = with_ram(RAM, SZ_16K);
        let p = mb.phys_alloc(SZ_2, SMP_CACHE_BYTES).unwrap();
        assert_eq!(p, pa(RAM + SZ_16K - SMP_CACHE_BYTES));
        assert_eq!(
            regs(mb.reserved()),
            [(RAM + SZ_16K - SMP_CACHE_BYTES, SZ_2)]
        );
        assert_eq!(mb.reserved_size(), SZ_2);
    }

    #[test]
    fn alloc_bottom_up_simple() {
        let (_a, mut mb) = with_ram(RAM, SZ_16K);
        mb.set_bottom_up(true);
        let p = mb.phys_alloc(SZ_2, SMP_CACHE_BYTES).unwrap();
        assert_eq!(p, pa(RAM));
        assert_eq!(regs(mb.reserved()), [(RAM, SZ_2)]);
    }

    #[test]
    fn alloc_next_to_reservations_merges() {
        // Top-down: below a reservation at the top.
        let (_a, mut mb) = with_ram(RAM, SZ_64K);
        mb.reserve(pa(RAM + SZ_64K - SZ_8K), SZ_8K).unwrap();
        let p = mb.phys_alloc(SZ_4K, SZ_4K).unwrap();
        assert_eq!(p, pa(RAM + SZ_64K - SZ_8K - SZ_4K));
        assert_eq!(
            regs(mb.reserved()),
            [(RAM + SZ_64K - SZ_8K - SZ_4K, SZ_8K + SZ_4K)]
        );
        drop((_a, mb));
        // Bottom-up: above a reservation at the bottom.
        let (_a, mut mb) = with_ram(RAM, SZ_64K);
        mb.set_bottom_up(true);
        mb.reserve(pa(RAM), SZ_8K).unwrap();
        let p = mb.phys_alloc(SZ_4K, SZ_4K).unwrap();
        assert_eq!(p, pa(RAM + SZ_8K));
        assert_eq!(regs(mb.reserved()), [(RAM, SZ_8K + SZ_4K)]);
    }

    #[test]
    fn alloc_in_gap_exact_fit_and_too_small() {
        for bottom_up in [false, true] {
            let (_a, mut mb) = with_ram(RAM, SZ_64K);
            mb.set_bottom_up(bottom_up);
            // Two reservations leave exactly an 8K hole in the middle.
            mb.reserve(pa(RAM), SZ_16K + SZ_8K).unwrap();
            mb.reserve(pa(RAM + SZ_32K), SZ_32K).unwrap();
            assert_eq!(mb.phys_alloc(SZ_8K + 1, SZ_16), None);
            let p = mb.phys_alloc(SZ_8K, SZ_4K).unwrap();
            assert_eq!(p, pa(RAM + SZ_16K + SZ_8K));
            assert_eq!(regs(mb.reserved()), [(RAM, SZ_64K)]);
            assert_eq!(mb.phys_alloc(1, 1), None);
        }
    }

    #[test]
    fn alloc_with_gaps_takes_the_first_fit_in_search_order() {
        let (_a, mut mb) = with_ram(RAM, SZ_128K);
        mb.reserve(pa(RAM + SZ_16K), SZ_16K).unwrap();
        mb.reserve(pa(RAM + SZ_64K), SZ_16K).unwrap();
        mb.reserve(pa(RAM + SZ_128K - SZ_4K), SZ_4K).unwrap();
        // Top-down: highest hole that fits 16K is [80K, 124K).
        assert_eq!(
            mb.phys_alloc(SZ_16K, SZ_4K),
            Some(pa(RAM + SZ_128K - SZ_4K - SZ_16K))
        );
        mb.set_bottom_up(true);
        // Bottom-up: [0, 16K) fits 16K exactly.
        assert_eq!(mb.phys_alloc(SZ_16K, SZ_4K), Some(pa(RAM)));
        // Next lowest fit of 32K: [32K, 64K).
        assert_eq!(mb.phys_alloc(SZ_32K, SZ_4K), Some(pa(RAM + SZ_32K)));
    }

    #[test]
    fn alloc_no_memory_no_space_too_large() {
        let mut mb = Memblock::new();
        assert_eq!(mb.phys_alloc(SZ_1K, SMP_CACHE_BYTES), None);
        assert!(mb.alloc(SZ_1K, SMP_CACHE_BYTES).is_none());
        assert_eq!(mb.reserved_size(), 0);

        let (_a, mut mb) = with_ram(RAM, SZ_16K);
        assert_eq!(mb.phys_alloc(SZ_16K + 1, SMP_CACHE_BYTES), None);
        mb.reserve(pa(RAM), SZ_16K).unwrap();
        assert_eq!(mb.phys_alloc(SZ_1K, SMP_CACHE_BYTES), None);
        assert_eq!(regs(mb.reserved()), [(RAM, SZ_16K)]);
    }

    #[test]
    fn alloc_respects_current_limit_and_max_addr() {
        let (_a, mut mb) = with_ram(RAM, SZ_1M);
        mb.set_current_limit(pa(RAM + SZ_256K));
        assert_eq!(mb.current_limit(), pa(RAM + SZ_256K));
        assert_eq!(mb.phys_alloc(SZ_4K, SZ_4K), Some(pa(RAM + SZ_256K - SZ_4K)));
        // try_nid's max_addr above the limit is capped by it...
        let p = mb
            .alloc_try_nid(SZ_4K, SZ_4K, pa(0), MEMBLOCK_ALLOC_ANYWHERE, NUMA_NO_NODE)
            .unwrap();
        assert_eq!(arena_v2p(p.as_ptr()), pa(RAM + SZ_256K - SZ_8K));
        // ...and one below it applies.
        let p = mb
            .alloc_try_nid(SZ_4K, SZ_4K, pa(0), pa(RAM + SZ_64K), NUMA_NO_NODE)
            .unwrap();
        assert_eq!(arena_v2p(p.as_ptr()), pa(RAM + SZ_64K - SZ_4K));
        // phys_alloc_range's end is not capped by the limit.
        assert_eq!(
            mb.phys_alloc_range(SZ_4K, SZ_4K, pa(0), MEMBLOCK_ALLOC_ANYWHERE),
            Some(pa(RAM + SZ_1M - SZ_4K))
        );
        mb.set_current_limit(MEMBLOCK_ALLOC_ANYWHERE);
        assert_eq!(mb.phys_alloc(SZ_4K, SZ_4K), Some(pa(RAM + SZ_1M - SZ_8K)));
    }

    #[test]
    fn alloc_range_min_and_max() {
        for bottom_up in [false, true] {
            let (_a, mut mb) = with_ram(RAM, SZ_1M);
            mb.set_bottom_up(bottom_up);
            let (lo, hi) = (RAM + SZ_256K, RAM + SZ_512K);
            let p = mb.phys_alloc_range(SZ_64K, SZ_4K, pa(lo), pa(hi)).unwrap();
            assert_eq!(p, pa(if bottom_up { lo } else { hi - SZ_64K }));
            // A range too small for the request fails, it does not spill over.
            assert_eq!(
                mb.phys_alloc_range(SZ_64K, SZ_4K, pa(lo), pa(lo + SZ_32K)),
                None
            );
        }
    }

    #[test]
    fn alloc_min_addr_is_only_a_preference() {
        let (_a, mut mb) = with_ram(RAM, SZ_256K);
        mb.reserve(pa(RAM + SZ_128K), SZ_128K).unwrap();
        // Nothing free at or above min_addr: memblock_alloc_internal() retries from 0.
        let p = mb.alloc_from(SZ_4K, SZ_4K, pa(RAM + SZ_128K)).unwrap();
        assert_eq!(arena_v2p(p.as_ptr()), pa(RAM + SZ_128K - SZ_4K));
        // phys_alloc_range has no such retry.
        assert_eq!(
            mb.phys_alloc_range(SZ_4K, SZ_4K, pa(RAM + SZ_128K), pa(RAM + SZ_256K)),
            None
        );
    }

    #[test]
    fn alloc_alignment() {
        let (_a, mut mb) = with_ram(RAM, SZ_1M);
        mb.reserve(pa(RAM + SZ_1M - 0x1234), 0x1234).unwrap();
        let p = mb.phys_alloc(SZ_16, SZ_64K).unwrap();
        assert!(p.is_aligned(SZ_64K));
        assert_eq!(p, pa(RAM + SZ_1M - SZ_64K));
        mb.set_bottom_up(true);
        mb.reserve(pa(RAM), 0x10).unwrap();
        let p = mb.phys_alloc(SZ_16, SZ_4K).unwrap();
        assert_eq!(p, pa(RAM + SZ_4K));
        // align 0 means SMP_CACHE_BYTES.
        let p = mb.phys_alloc(SZ_16, 0).unwrap();
        assert_eq!(p, pa(RAM + SZ_64));
    }

    #[test]
    fn alloc_never_returns_the_first_page() {
        let (_a, mut mb) = with_ram(0, SZ_16K);
        mb.set_bottom_up(true);
        assert_eq!(mb.phys_alloc(SZ_128, SZ_16), Some(pa(PAGE_SIZE)));
        mb.set_bottom_up(false);
        assert_eq!(mb.phys_alloc_range(SZ_16K, SZ_16, pa(0), pa(SZ_16K)), None);
    }

    #[test]
    fn alloc_skips_nomap_memory() {
        let (_a, mut mb) = with_ram(RAM, SZ_64K);
        mb.mark_nomap(pa(RAM + SZ_32K), SZ_32K).unwrap();
        assert_eq!(mb.phys_alloc(SZ_4K, SZ_4K), Some(pa(RAM + SZ_32K - SZ_4K)));
        assert_eq!(mb.phys_alloc(SZ_32K, SZ_4K), None);
    }

    #[test]
    fn alloc_zeroes_but_raw_does_not() {
        let (arena, mut mb) = with_ram(RAM, SZ_64K);
        let p = mb.alloc(SZ_256, SZ_16).unwrap();
        let at = arena_v2p(p.as_ptr());
        assert_eq!(at, pa(RAM + SZ_64K - SZ_256));
        assert!(arena.bytes(at, SZ_256).iter().all(|&b| b == 0));
        // The byte after the block was not touched.
        assert!(arena.bytes(at - 1, 1) == [0xaa]);

        let p = mb.alloc_raw(SZ_256, SZ_16).unwrap();
        assert!(arena
            .bytes(arena_v2p(p.as_ptr()), SZ_256)
            .iter()
            .all(|&b| b == 0xaa));
        let p = mb
            .alloc_try_nid_raw(
                SZ_128,
                SZ_16,
                pa(0),
                MEMBLOCK_ALLOC_ACCESSIBLE,
                NUMA_NO_NODE,
            )
            .unwrap();
        assert!(arena
            .bytes(arena_v2p(p.as_ptr()), SZ_128)
            .iter()
            .all(|&b| b == 0xaa));
        let p = mb.alloc_node(SZ_128, SZ_16, NUMA_NO_NODE).unwrap();
        assert!(arena
            .bytes(arena_v2p(p.as_ptr()), SZ_128)
            .iter()
            .all(|&b| b == 0));
        assert_eq!(mb.reserved_size(), 2 * SZ_256 + 2 * SZ_128);
    }

    #[test]
    fn alloc_try_nid_falls_back_to_any_node() {
        let arena = Arena::new(RAM, SZ_128K as usize);
        let mut mb = Memblock::new();
        // SAFETY: the arena maps the whole RAM used below.
        unsafe { mb.set_phys_to_virt(arena_p2v) };
        mb.add_node(pa(RAM), SZ_64K, 0, MemblockFlags::NONE)
            .unwrap();
        mb.add_node(pa(RAM + SZ_64K), SZ_64K, 1, MemblockFlags::NONE)
            .unwrap();
        // Node 0 is preferred even though node 1 is higher.
        let p = mb.phys_alloc_try_nid(SZ_4K, SZ_4K, 0).unwrap();
        assert_eq!(p, pa(RAM + SZ_64K - SZ_4K));
        // Fill node 1; requests for it then land on node 0.
        mb.reserve(pa(RAM + SZ_64K), SZ_64K).unwrap();
        let p = mb.alloc_node(SZ_4K, SZ_4K, 1).unwrap();
        assert_eq!(arena_v2p(p.as_ptr()), pa(RAM + SZ_64K - SZ_8K));
        // ...but not for the exact-node variant.
        assert!(mb
            .alloc_exact_nid_raw(SZ_4K, SZ_4K, pa(0), MEMBLOCK_ALLOC_ACCESSIBLE, 1)
            .is_none());
        let p = mb
            .alloc_exact_nid_raw(SZ_4K, SZ_4K, pa(0), MEMBLOCK_ALLOC_ACCESSIBLE, 0)
            .unwrap();
        assert_eq!(arena_v2p(p.as_ptr()), pa(RAM + SZ_64K - 3 * SZ_4K));
        // A nonexistent node falls back too.
        assert!(mb.phys_alloc_try_nid(SZ_4K, SZ_4K, 7).is_some());
        drop(arena);
    }

    #[test]
    fn find_in_range_node_does_not_reserve() {
        let (_a, mb) = with_ram(RAM, SZ_64K);
        let found = mb.find_in_range_node(
            SZ_4K,
            SZ_4K,
            pa(0),
            MEMBLOCK_ALLOC_ACCESSIBLE,
            NUMA_NO_NODE,
            MemblockFlags::NONE,
        );
        assert_eq!(found, Some(pa(RAM + SZ_64K - SZ_4K)));
        assert_eq!(mb.reserved_size(), 0);
    }

    // ---- array doubling ----

    /// Adds (or reserves) `n` disjoint 64-byte ranges starting at `base`, 128 bytes apart.
    fn fill(mb: &mut Memblock, t: MemType, base: u64, n: usize) -> Result<(), MemblockError> {
        for i in 0..n as u64 {
            let b = pa(base + i * SZ_128);
            match t {
                MemType::Memory => mb.add(b, SZ_64)?,
                MemType::Reserved => mb.reserve(b, SZ_64)?,
            }
        }
        Ok(())
    }

    #[test]
    fn doubling_is_refused_before_allow_resize() {
        let (_a, mut mb) = with_ram(RAM, SZ_1M);
        fill(&mut mb, MemType::Reserved, RAM, INIT_MEMBLOCK_REGIONS).unwrap();
        let before = regs(mb.reserved());
        take_captured();
        assert_eq!(
            mb.reserve(pa(RAM + SZ_512K), SZ_4K),
            Err(MemblockError::NoMem)
        );
        assert_eq!(regs(mb.reserved()), before);
        assert_eq!(
            (mb.reserved().cnt(), mb.reserved().max()),
            (INIT_MEMBLOCK_REGIONS, INIT_MEMBLOCK_REGIONS)
        );
        // Splitting a region needs room too.
        assert_eq!(mb.phys_free(pa(RAM + 16), 16), Err(MemblockError::NoMem));
        assert_eq!(regs(mb.reserved()), before);
        // An allocation that would need a new region fails cleanly.
        assert_eq!(mb.phys_alloc(SZ_4K, SZ_4K), None);
        assert_eq!(regs(mb.reserved()), before);
        assert_eq!(printed(), Vec::<String>::new());
    }

    #[test]
    fn doubling_reserved_array() {
        let (arena, mut mb) = with_ram(RAM, SZ_1M);
        mb.allow_resize();
        mb.set_debug(true);
        fill(&mut mb, MemType::Reserved, RAM, INIT_MEMBLOCK_REGIONS).unwrap();
        let before = regs(mb.reserved());
        take_captured();
        mb.reserve(pa(RAM + SZ_512K), SZ_4K).unwrap();

        // The new array is two pages at the top of memory, and reserved itself.
        let new_alloc = align_up(2 * INIT_MEMBLOCK_REGIONS as u64 * 24, PAGE_SIZE);
        assert_eq!(new_alloc, SZ_8K);
        let array_at = RAM + SZ_1M - new_alloc;
        assert_eq!(mb.reserved().max(), 2 * INIT_MEMBLOCK_REGIONS);
        assert_eq!(mb.reserved().cnt(), INIT_MEMBLOCK_REGIONS + 2);
        let ext = mb.reserved().ext.unwrap();
        assert_eq!(ext.phys, pa(array_at));
        assert_eq!(ext.ptr.as_ptr().cast::<u8>(), arena_p2v(pa(array_at)));
        let now = regs(mb.reserved());
        assert_eq!(now[..INIT_MEMBLOCK_REGIONS], before[..]);
        assert_eq!(
            now[INIT_MEMBLOCK_REGIONS..],
            [(RAM + SZ_512K, SZ_4K), (array_at, new_alloc)]
        );
        assert_eq!(
            mb.reserved_size(),
            INIT_MEMBLOCK_REGIONS as u64 * SZ_64 + SZ_4K + new_alloc
        );
        // The regions really live in the arena now.
        let first = u64::from_le_bytes(arena.bytes(pa(array_at), 8).try_into().unwrap());
        assert_eq!(first, RAM);

        let out = printed();
        assert_eq!(
            out[1],
            format!(
                "memblock: reserved is doubled to 256 at [{:#018x}-{:#018x}]",
                array_at,
                array_at + 256 * 24 - 1
            )
        );
        assert!(out[2].starts_with(&format!(
            "memblock_reserve: [{:#018x}-{:#018x}] src/mm/memblock.rs:",
            array_at,
            array_at + SZ_8K - 1
        )));

        // Everything still works on the moved array, including a second doubling, which
        // gives the first moved array back.
        fill(
            &mut mb,
            MemType::Reserved,
            RAM + SZ_256K,
            INIT_MEMBLOCK_REGIONS,
        )
        .unwrap();
        assert_eq!(mb.reserved().max(), 4 * INIT_MEMBLOCK_REGIONS);
        let ext2 = mb.reserved().ext.unwrap();
        // 512 entries take exactly three pages; they go below the first moved array, which
        // is then freed.
        let alloc2 = align_up(4 * INIT_MEMBLOCK_REGIONS as u64 * 24, PAGE_SIZE);
        assert_eq!(alloc2, 3 * SZ_4K);
        assert_eq!(ext2.phys, pa(array_at - alloc2));
        assert!(!mb.is_region_reserved(pa(array_at), new_alloc));
        assert!(mb.is_region_reserved(ext2.phys, alloc2));
        assert_eq!(mb.reserved().cnt(), 2 * INIT_MEMBLOCK_REGIONS + 2);
        assert_eq!(
            mb.reserved_size(),
            2 * INIT_MEMBLOCK_REGIONS as u64 * SZ_64 + SZ_4K + alloc2
        );
    }

    #[test]
    fn doubling_memory_array() {
        let arena = Arena::new(RAM, SZ_1M as usize);
        let mut mb = Memblock::new();
        // SAFETY: the arena maps the simulated RAM.
        unsafe { mb.set_phys_to_virt(arena_p2v) };
        mb.allow_resize();
        // 128 small memory regions at the bottom, then a big one the array can go into.
        fill(&mut mb, MemType::Memory, RAM, INIT_MEMBLOCK_REGIONS - 1).unwrap();
        mb.add(pa(RAM + SZ_512K), SZ_512K).unwrap();
        let before = regs(mb.memory());
        assert_eq!(mb.memory().cnt(), INIT_MEMBLOCK_REGIONS);
        mb.add(pa(RAM + SZ_256K), SZ_4K).unwrap();

        assert_eq!(mb.memory().max(), 2 * INIT_MEMBLOCK_REGIONS);
        assert_eq!(mb.memory().cnt(), INIT_MEMBLOCK_REGIONS + 1);
        let now = regs(mb.memory());
        assert_eq!(
            now[..INIT_MEMBLOCK_REGIONS - 1],
            before[..INIT_MEMBLOCK_REGIONS - 1]
        );
        assert_eq!(now[INIT_MEMBLOCK_REGIONS - 1], (RAM + SZ_256K, SZ_4K));
        assert_eq!(now[INIT_MEMBLOCK_REGIONS], (RAM + SZ_512K, SZ_512K));
        assert_eq!(
            mb.phys_mem_size(),
            (INIT_MEMBLOCK_REGIONS as u64 - 1) * SZ_64 + SZ_4K + SZ_512K
        );
        // The array was allocated from memblock: reserved at the top of memory.
        let ext = mb.memory().ext.unwrap();
        assert_eq!(ext.phys, pa(RAM + SZ_1M - SZ_8K));
        assert_eq!(regs(mb.reserved()), [(RAM + SZ_1M - SZ_8K, SZ_8K)]);
        drop(arena);
    }

    #[test]
    fn doubling_fails_without_free_memory() {
        let (_a, mut mb) = with_ram(RAM, SZ_1M);
        mb.allow_resize();
        fill(&mut mb, MemType::Reserved, RAM, INIT_MEMBLOCK_REGIONS - 1).unwrap();
        // Only 64-byte holes and one of 192 bytes remain.
        mb.reserve(pa(RAM + SZ_16K), SZ_1M - SZ_16K).unwrap();
        let before = regs(mb.reserved());
        take_captured();
        assert_eq!(mb.reserve(pa(RAM + 64), 16), Err(MemblockError::NoMem));
        assert_eq!(
            printed(),
            ["memblock: Failed to double reserved array from 128 to 256 entries !"]
        );
        assert_eq!(regs(mb.reserved()), before);
        assert_eq!(mb.reserved().max(), INIT_MEMBLOCK_REGIONS);
    }

    #[test]
    fn new_reserved_array_avoids_the_range_being_reserved() {
        let (_a, mut mb) = with_ram(RAM, SZ_1M);
        mb.allow_resize();
        fill(&mut mb, MemType::Reserved, RAM, INIT_MEMBLOCK_REGIONS).unwrap();
        // Reserving the top of memory: the array must go below it.
        mb.reserve(pa(RAM + SZ_1M - SZ_64K), SZ_64K).unwrap();
        let ext = mb.reserved().ext.unwrap();
        assert_eq!(ext.phys, pa(RAM + SZ_1M - SZ_64K - SZ_8K));
        assert_eq!(
            *regs(mb.reserved()).last().unwrap(),
            (RAM + SZ_1M - SZ_64K - SZ_8K, SZ_64K + SZ_8K)
        );
    }

    // ---- limits: mem=, cap, enforce, trim ----

    #[test]
    fn mem_limit_remove_map_keeps_nomap() {
        let mut mb = Memblock::new();
        mb.add(pa(RAM), SZ_16M).unwrap();
        mb.add(pa(RAM + SZ_32M), SZ_16M).unwrap();
        mb.add(pa(RAM + SZ_64M), SZ_16M).unwrap();
        mb.mark_nomap(pa(RAM + SZ_64M), SZ_1M).unwrap();
        mb.reserve(pa(RAM + SZ_1M), SZ_1M).unwrap();
        mb.reserve(pa(RAM + SZ_32M + SZ_8M), SZ_1M).unwrap();
        // mem=24M: all of the first bank and 8M of the second.
        mb.mem_limit_remove_map(SZ_16M + SZ_8M);
        assert_eq!(
            regs(mb.memory()),
            [(RAM, SZ_16M), (RAM + SZ_32M, SZ_8M), (RAM + SZ_64M, SZ_1M)]
        );
        assert_eq!(regs(mb.reserved()), [(RAM + SZ_1M, SZ_1M)]);
        assert_eq!(mb.phys_mem_size(), SZ_16M + SZ_8M + SZ_1M);
        // A limit above the total changes nothing; 0 means none.
        mb.mem_limit_remove_map(SZ_1G);
        mb.mem_limit_remove_map(0);
        assert_eq!(mb.memory().cnt(), 3);
    }

    #[test]
    fn cap_memory_range() {
        let mut mb = Memblock::new();
        mb.add(pa(RAM), SZ_64M).unwrap();
        mb.mark_nomap(pa(RAM), SZ_1M).unwrap();
        mb.reserve(pa(RAM + SZ_2M), SZ_4M).unwrap();
        mb.reserve(pa(RAM + SZ_32M), SZ_1M).unwrap();
        mb.cap_memory_range(pa(RAM + SZ_4M), SZ_16M);
        assert_eq!(regs(mb.memory()), [(RAM, SZ_1M), (RAM + SZ_4M, SZ_16M)]);
        assert_eq!(regs(mb.reserved()), [(RAM + SZ_4M, SZ_2M)]);

        let mut empty = Memblock::new();
        take_captured();
        empty.cap_memory_range(pa(RAM), SZ_1M);
        assert_eq!(
            printed(),
            ["memblock_cap_memory_range: No memory registered yet"]
        );
    }

    #[test]
    fn enforce_memory_limit() {
        let mut mb = Memblock::new();
        mb.add(pa(RAM), SZ_16M).unwrap();
        mb.add(pa(RAM + SZ_32M), SZ_16M).unwrap();
        mb.reserve(pa(RAM + SZ_32M), SZ_16M).unwrap();
        mb.enforce_memory_limit(SZ_16M + SZ_4M);
        assert_eq!(regs(mb.memory()), [(RAM, SZ_16M), (RAM + SZ_32M, SZ_4M)]);
        assert_eq!(regs(mb.reserved()), [(RAM + SZ_32M, SZ_4M)]);
    }

    #[test]
    fn trim_memory() {
        let mut mb = Memblock::new();
        mb.add(pa(RAM + 0x100), SZ_16K).unwrap();
        mb.add(pa(RAM + SZ_64K + 0x10), 0x100).unwrap();
        mb.add(pa(RAM + SZ_128K), SZ_8K).unwrap();
        let total = mb.phys_mem_size();
        mb.trim_memory(PAGE_SIZE);
        assert_eq!(
            regs(mb.memory()),
            [(RAM + SZ_4K, SZ_8K + SZ_4K), (RAM + SZ_128K, SZ_8K)]
        );
        // Linux 6.1 only accounts for the removed region.
        assert_eq!(mb.phys_mem_size(), total - 0x100);
    }

    // ---- dump and memblock=debug ----

    #[test]
    fn dump_all_text() {
        let mut mb = Memblock::new();
        mb.add(pa(RAM), SZ_1G).unwrap();
        mb.add_node(pa(RAM + SZ_2G), SZ_16M, 0, MemblockFlags::NONE)
            .unwrap();
        mb.mark_nomap(pa(RAM + SZ_2G), SZ_1M).unwrap();
        mb.reserve(pa(RAM + SZ_2M), 0x1234).unwrap();
        take_captured();
        mb.dump_all();
        assert_eq!(
            printed(),
            Vec::<String>::new(),
            "quiet without memblock=debug"
        );
        mb.dump_all_always();
        assert_eq!(
            printed(),
            [
                "MEMBLOCK configuration:",
                " memory size = 0x0000000041000000 reserved size = 0x0000000000001234",
                " memory.cnt  = 0x3",
                " memory[0x0]\t[0x0000000040000000-0x000000007fffffff], 0x0000000040000000 bytes flags: 0x0",
                " memory[0x1]\t[0x00000000c0000000-0x00000000c00fffff], 0x0000000000100000 bytes on node 0 flags: 0x4",
                " memory[0x2]\t[0x00000000c0100000-0x00000000c0ffffff], 0x0000000000f00000 bytes on node 0 flags: 0x0",
                " reserved.cnt  = 0x1",
                " reserved[0x0]\t[0x0000000040200000-0x0000000040201233], 0x0000000000001234 bytes flags: 0x0",
            ]
        );
        // An empty list shows its dummy entry, exactly as Linux prints it.
        let empty = Memblock::new();
        empty.dump_all_always();
        let out = printed();
        assert_eq!(out[3], " memory[0x0]\t[0x0000000000000000-0xffffffffffffffff], 0x0000000000000000 bytes on node 0 flags: 0x0");
    }

    #[test]
    fn debug_traces() {
        let (_a, mut mb) = with_ram(RAM, SZ_1M);
        take_captured();
        mb.reserve(pa(RAM), SZ_4K).unwrap();
        assert_eq!(
            printed(),
            Vec::<String>::new(),
            "quiet without memblock=debug"
        );
        mb.set_debug(true);
        let f = file!();

        let l = line!() + 1;
        mb.add(pa(RAM + SZ_2M), SZ_4K).unwrap();
        assert_eq!(
            printed(),
            [format!(
                "memblock_add: [0x0000000040200000-0x0000000040200fff] {f}:{l}"
            )]
        );

        let l = line!() + 1;
        mb.add_node(pa(RAM + SZ_4M), SZ_4K, 1, MemblockFlags::HOTPLUG)
            .unwrap();
        assert_eq!(
            printed(),
            [format!(
                "memblock_add_node: [0x0000000040400000-0x0000000040400fff] nid=1 flags=1 {f}:{l}"
            )]
        );

        let l = line!() + 1;
        mb.remove(pa(RAM + SZ_4M), SZ_4K).unwrap();
        assert_eq!(
            printed(),
            [format!(
                "memblock_remove: [0x0000000040400000-0x0000000040400fff] {f}:{l}"
            )]
        );

        let l = line!() + 1;
        mb.phys_free(pa(RAM), SZ_4K).unwrap();
        assert_eq!(
            printed(),
            [format!(
                "memblock_phys_free: [0x0000000040000000-0x0000000040000fff] {f}:{l}"
            )]
        );

        let l = line!() + 1;
        mb.reserve(pa(RAM), 0).unwrap();
        assert_eq!(
            printed(),
            [format!(
                "memblock_reserve: [0x0000000040000000-0x000000003fffffff] {f}:{l}"
            )]
        );

        let l = line!() + 1;
        let p = mb.phys_alloc(SZ_4K, SZ_4K).unwrap();
        let out = printed();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], format!("memblock_phys_alloc_range: 4096 bytes align=0x1000 from=0x0000000000000000 max_addr=0x0000000000000000 {f}:{l}"));
        // The reservation is made from inside memblock, so its "caller" is memblock.rs too.
        assert!(out[1].starts_with(&format!(
            "memblock_reserve: [{:#018x}-{:#018x}] {f}:",
            p.0,
            p.0 + SZ_4K - 1
        )));

        let l = line!() + 1;
        mb.alloc(SZ_64, 0).unwrap();
        let out = printed();
        assert_eq!(out[0], format!("memblock_alloc_try_nid: 64 bytes align=0x0 nid=-1 from=0x0000000000000000 max_addr=0x0000000000000000 {f}:{l}"));

        let l = line!() + 1;
        mb.alloc_try_nid_raw(SZ_64, SZ_64, pa(RAM), pa(RAM + SZ_1M), 0)
            .unwrap();
        let out = printed();
        assert_eq!(out[0], format!("memblock_alloc_try_nid_raw: 64 bytes align=0x40 nid=0 from=0x0000000040000000 max_addr=0x0000000040100000 {f}:{l}"));

        mb.dump_all();
        assert_eq!(printed()[0], "MEMBLOCK configuration:");
    }

    /// The only test that touches the global instance: the boot parameter and the free
    /// functions that wrap it.
    #[test]
    fn global_instance_and_boot_parameter() {
        use crate::kernel::params::{parse_early_param_with, ObsKernelParam};
        let table = [ObsKernelParam {
            name: "memblock",
            setup: early_memblock,
            early: true,
        }];
        parse_early_param_with("memblock=nodebug_please", &table);
        // Linux only looks for "debug" anywhere in the value.
        assert!(MEMBLOCK.lock().debug());
        MEMBLOCK.lock().set_debug(false);
        parse_early_param_with("memblock", &table);
        assert!(!MEMBLOCK.lock().debug());

        let arena = Arena::new(RAM, SZ_1M as usize);
        // SAFETY: the arena maps the RAM added below; only this test uses the global.
        unsafe { memblock_set_phys_to_virt(arena_p2v) };
        memblock_set_virt_to_phys(arena_v2p);
        memblock_add(pa(RAM), SZ_1M).unwrap();
        memblock_reserve(pa(RAM), SZ_64K).unwrap();
        assert_eq!(
            (memblock_start_of_dram(), memblock_end_of_dram()),
            (pa(RAM), pa(RAM + SZ_1M))
        );
        assert_eq!(
            (memblock_phys_mem_size(), memblock_reserved_size()),
            (SZ_1M, SZ_64K)
        );
        let mut free = Vec::new();
        for_each_free_mem_range(NUMA_NO_NODE, MemblockFlags::NONE, |s, e, _| {
            free.push((s.0, e.0))
        });
        assert_eq!(free, [(RAM + SZ_64K, RAM + SZ_1M)]);
        let p = memblock_alloc(SZ_4K, SZ_4K).unwrap();
        assert!(memblock_is_reserved(arena_v2p(p.as_ptr())));
        memblock_free(p.as_ptr(), SZ_4K);
        assert_eq!(memblock_reserved_size(), SZ_64K);
        assert!(memblock_phys_alloc(SZ_4K, SZ_4K).is_some());
        assert!(memblock_is_memory(pa(RAM)) && memblock_is_map_memory(pa(RAM)));
        let mut pfns = 0;
        for_each_mem_pfn_range(MAX_NUMNODES, |s, e, _| pfns += e.0 - s.0);
        assert_eq!(pfns, SZ_1M / PAGE_SIZE);
        memblock_remove(pa(RAM), SZ_1M).unwrap();
        memblock_phys_free(pa(0), PHYS_ADDR_MAX.0).unwrap();
        assert_eq!((memblock_phys_mem_size(), memblock_reserved_size()), (0, 0));
        drop(arena);
    }

    // ---- property tests against a model ----

    /// A set of disjoint byte ranges with a node each: what memblock's lists should hold.
    #[derive(Clone, Default, Debug)]
    struct Model(Vec<(u64, u64, i32)>);

    impl Model {
        /// Like memblock_add_range(): only the uncovered parts are added, with `nid`.
        fn add(&mut self, s: u64, e: u64, nid: i32) {
            let mut holes = Vec::new();
            let mut cur = s;
            for &(rs, re, _) in &self.0 {
                if re <= cur || rs >= e {
                    continue;
                }
                if rs > cur {
                    holes.push((cur, rs, nid));
                }
                cur = cur.max(re);
            }
            if cur < e {
                holes.push((cur, e, nid));
            }
            self.0.extend(holes);
            self.0.sort();
        }

        fn remove(&mut self, s: u64, e: u64) {
            let mut out = Vec::new();
            for &(rs, re, n) in &self.0 {
                if re <= s || rs >= e {
                    out.push((rs, re, n));
                    continue;
                }
                if rs < s {
                    out.push((rs, s, n));
                }
                if re > e {
                    out.push((e, re, n));
                }
            }
            self.0 = out;
        }

        /// Maximally merged, as memblock keeps its regions.
        fn canonical(&self) -> Vec<(u64, u64, i32)> {
            let mut out: Vec<(u64, u64, i32)> = Vec::new();
            for &r in &self.0 {
                match out.last_mut() {
                    Some(last) if last.1 == r.0 && last.2 == r.2 => last.1 = r.1,
                    _ => out.push(r),
                }
            }
            out
        }

        /// `self` minus `other`, as maximal intervals (nodes ignored).
        fn minus(&self, other: &Model) -> Vec<(u64, u64)> {
            let mut m = Model(self.0.iter().map(|&(s, e, _)| (s, e, 0)).collect());
            for &(s, e, _) in &other.0 {
                m.remove(s, e);
            }
            m.canonical().into_iter().map(|(s, e, _)| (s, e)).collect()
        }
    }

    fn as_triples(t: &MemblockType) -> Vec<(u64, u64, i32)> {
        if t.total_size() == 0 {
            return Vec::new();
        }
        t.regions()
            .iter()
            .map(|r| (r.base.0, r.base.0 + r.size, r.nid))
            .collect()
    }

    /// Sorted, disjoint, non-empty, maximally merged, total_size right.
    fn check_invariants(t: &MemblockType) {
        let r = t.regions();
        assert!(t.cnt() >= 1 && t.cnt() <= t.max());
        if t.total_size() == 0 {
            assert_eq!(
                (t.cnt(), r[0].size),
                (1, 0),
                "empty list keeps one dummy entry"
            );
            return;
        }
        assert!(r.iter().all(|x| x.size > 0));
        for w in r.windows(2) {
            assert!(
                w[0].base.0 + w[0].size <= w[1].base.0,
                "sorted and disjoint"
            );
            let touching = w[0].base.0 + w[0].size == w[1].base.0;
            assert!(
                !(touching && w[0].nid == w[1].nid && w[0].flags == w[1].flags),
                "not merged: {w:?}"
            );
        }
        assert_eq!(t.total_size(), r.iter().map(|x| x.size).sum::<u64>());
    }

    #[derive(Clone, Debug)]
    enum Op {
        Add(u64, u64, i32),
        Reserve(u64, u64),
        Remove(u64, u64),
        Free(u64, u64),
    }

    /// Ranges in a 64 KiB window above RAM, 16-byte granular, some running past the window.
    fn op() -> impl Strategy<Value = Op> {
        let range = (0u64..4096, 0u64..1024).prop_map(|(s, l)| (RAM + s * 16, l * 16));
        prop_oneof![
            (range.clone(), 0i32..2).prop_map(|((s, l), n)| Op::Add(s, l, n)),
            range.clone().prop_map(|(s, l)| Op::Reserve(s, l)),
            range.clone().prop_map(|(s, l)| Op::Remove(s, l)),
            range.prop_map(|(s, l)| Op::Free(s, l)),
        ]
    }

    proptest! {
        #[test]
        fn lists_match_an_interval_model(ops in prop::collection::vec(op(), 1..60)) {
            let mut mb = Memblock::new();
            let (mut mem, mut res) = (Model::default(), Model::default());
            for op in ops {
                match op {
                    Op::Add(s, l, n) => { mb.add_node(pa(s), l, n, MemblockFlags::NONE).unwrap(); mem.add(s, s + l, n); }
                    Op::Reserve(s, l) => { mb.reserve(pa(s), l).unwrap(); res.add(s, s + l, MAX_NUMNODES); }
                    Op::Remove(s, l) => { mb.remove(pa(s), l).unwrap(); mem.remove(s, s + l); }
                    Op::Free(s, l) => { mb.phys_free(pa(s), l).unwrap(); res.remove(s, s + l); }
                }
                check_invariants(mb.memory());
                check_invariants(mb.reserved());
                prop_assert_eq!(as_triples(mb.memory()), mem.canonical());
                prop_assert_eq!(as_triples(mb.reserved()), res.canonical());
            }
            // memory minus reserved, both ways round.
            let free: Vec<_> = mb.free_mem_ranges(NUMA_NO_NODE, MemblockFlags::NONE).map(|(s, e, _)| (s.0, e.0)).collect();
            let mut merged: Vec<(u64, u64)> = Vec::new();
            for (s, e) in free.iter().copied() {
                prop_assert!(s < e);
                match merged.last_mut() { Some(l) if l.1 == s => l.1 = e, _ => merged.push((s, e)) }
            }
            prop_assert_eq!(merged, mem.minus(&res));
            let mut rev: Vec<_> = mb.free_mem_ranges_rev(NUMA_NO_NODE, MemblockFlags::NONE).map(|(s, e, _)| (s.0, e.0)).collect();
            rev.reverse();
            prop_assert_eq!(rev, free);
        }

        #[test]
        fn allocations_match_a_first_fit_model(
            mem_ranges in prop::collection::vec((0u64..64, 1u64..16), 1..6),
            reserved_ranges in prop::collection::vec((0u64..256, 1u64..32), 0..6),
            allocs in prop::collection::vec((1u64..0x3000, 3u32..15, any::<bool>()), 1..30),
        ) {
            // Memory in page units over 80 pages of RAM, reservations in 256-byte units.
            let arena = Arena::new(RAM, 80 * PAGE_SIZE as usize);
            let mut mb = Memblock::new();
            // SAFETY: every memory range lies in the arena.
            unsafe { mb.set_phys_to_virt(arena_p2v) };
            let (mut mem, mut res) = (Model::default(), Model::default());
            for (s, l) in mem_ranges {
                let (s, e) = (RAM + s * PAGE_SIZE, RAM + (s + l) * PAGE_SIZE);
                mb.add(pa(s), e - s).unwrap();
                mem.add(s, e, 0);
            }
            for (s, l) in reserved_ranges {
                let (s, e) = (RAM + s * 256, RAM + (s + l) * 256);
                mb.reserve(pa(s), e - s).unwrap();
                res.add(s, e, 0);
            }
            for (size, align_shift, bottom_up) in allocs {
                let align = 1u64 << align_shift;
                mb.set_bottom_up(bottom_up);
                // The model: every aligned slot in a free interval, first or last of them.
                let slots: Vec<u64> = mem.minus(&res).into_iter().filter_map(|(s, e)| {
                    let s = s.max(PAGE_SIZE);
                    if bottom_up {
                        let c = align_up(s, align);
                        (c < e && e - c >= size).then_some(c)
                    } else {
                        (e >= size).then(|| align_down(e - size, align)).filter(|&c| c >= s)
                    }
                }).collect();
                let expect = if bottom_up { slots.first().copied() } else { slots.last().copied() };
                let got = mb.alloc(size, align);
                let got_pa = got.map(|p| arena_v2p(p.as_ptr()).0);
                prop_assert_eq!(got_pa, expect);
                if let Some(p) = got_pa {
                    prop_assert!(p % align == 0);
                    prop_assert!(mb.is_region_memory(pa(p), size));
                    prop_assert!(!res.0.iter().any(|&(s, e, _)| s < p + size && p < e), "overlaps a reservation");
                    prop_assert!(arena.bytes(pa(p), size).iter().all(|&b| b == 0));
                    res.add(p, p + size, 0);
                }
                check_invariants(mb.reserved());
                let got_res: Vec<_> = as_triples(mb.reserved()).into_iter().map(|(s, e, _)| (s, e)).collect();
                let want_res: Vec<_> = res.canonical().into_iter().map(|(s, e, _)| (s, e)).collect();
                prop_assert_eq!(got_res, want_res);
            }
            drop(arena);
        }
    }
}
