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
//! no slab (so `memblock_double_array()` always allocates from memblock), no
//! mirrored memory (`kernelcore=mirror`), no `movable_node`, no physmem type
//! (`CONFIG_HAVE_MEMBLOCK_PHYS_MAP` is off on arm64), no `memblock_discard()` (arm64 keeps
//! memblock: `CONFIG_ARCH_KEEP_MEMBLOCK`). Linux's file statics `memblock_debug` and
//! `memblock_can_resize` live in the `Memblock` value, so test instances do not share them.
//! `CONFIG_NUMA` is modelled as on, with arm64's default `NODES_SHIFT` of 4.
//!
//! ## One way in
//! Arch and init code call the Linux-named free functions at the end of this file
//! (`memblock_reserve`, `memblock_phys_alloc_range`, ...), each a thin call on [`MEMBLOCK`]
//! under its lock. Everything else — the other cores and every test — calls the methods of a
//! [`Memblock`] (`mb.reserve(..)`, `MEMBLOCK.lock().alloc(..)`). A free function exists only
//! while arch or init code calls it; add one when such a caller appears.
//!
//! Handing memblock's free memory to the buddy allocator (Linux's `memblock_free_all()`) is
//! on the page allocator's side, `page_alloc/mm_init.rs`, so that the dependency points one
//! way: the page allocator uses memblock, never the reverse.

use core::fmt::{self, Write as _};
use core::panic::Location;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, Ordering};

use super::addr::{align_down, align_up, Pfn, PhysAddr, PAGE_SIZE};
use crate::kernel::params::SetupResult;

// Temporary re-exports: these constants moved to `crate::include`; modules that still import
// them from here keep compiling until they import the leaves directly.
use crate::include::cache::SMP_CACHE_BYTES;
use crate::include::numa::{MAX_NUMNODES, NUMA_NO_NODE};

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
        super::kmemleak::kmemleak_free_part_phys(base.0, size);
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

        let mut found = self
            .find_in_range_node(size, align, start, end, nid, flags)
            .filter(|&f| self.reserve(f, size).is_ok());
        if found.is_none() && nid != NUMA_NO_NODE && !exact_nid {
            found = self
                .find_in_range_node(size, align, start, end, NUMA_NO_NODE, flags)
                .filter(|&f| self.reserve(f, size).is_ok());
        }
        // Linux: kmemleak_alloc_phys() — memblock blocks are scanned but never reported
        // (many are referred to only by physical address); not for MEMBLOCK_ALLOC_NOLEAKTRACE.
        if let Some(f) = found.filter(|_| end != MEMBLOCK_ALLOC_NOLEAKTRACE) {
            super::kmemleak::kmemleak_alloc_phys(f.0, size);
        }
        found
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

    /// Up to `max_pages` pages for page tables below `current_limit`, taken in one
    /// reservation exactly where that many one-page memblock_phys_alloc_range(PAGE_SIZE,
    /// PAGE_SIZE, 0, MEMBLOCK_ALLOC_NOLEAKTRACE) calls would put them: top-down, each
    /// takes the highest free page, so they are the top pages of the highest free range
    /// (fewer than `max_pages` when that range is shorter). Returns the lowest page and the
    /// count; the caller hands them out from the top and gives back (phys_free) what it did
    /// not use, which leaves `reserved` as the one-page calls would.
    ///
    /// Linux has no counterpart (early_pgtable_alloc() asks memblock once a page): ours,
    /// for paging_init, whose thousands of tables then cost one search and one reservation
    /// a batch instead of one each. Bottom-up, or under `memblock=debug` (whose trace then
    /// shows Linux's one call a page), it takes a single page the usual way.
    #[track_caller]
    pub fn phys_alloc_pgtable_pages(&mut self, max_pages: u64) -> Option<(PhysAddr, u64)> {
        if self.bottom_up || self.debug || max_pages <= 1 {
            let pa = self.phys_alloc_range(
                PAGE_SIZE,
                PAGE_SIZE,
                PhysAddr(0),
                MEMBLOCK_ALLOC_NOLEAKTRACE,
            )?;
            return Some((pa, 1));
        }
        // find_in_range_node(PAGE_SIZE, PAGE_SIZE, 0, current_limit)'s top-down search,
        // keeping the free range the page is the top of.
        let flags = self.choose_memblock_flags();
        let (start, end) = (PAGE_SIZE, self.current_limit.0.max(PAGE_SIZE));
        let (lo, hi) = self
            .free_mem_ranges_rev(NUMA_NO_NODE, flags)
            .map(|(s, e, _)| {
                (
                    align_up(clamp(s.0, start, end), PAGE_SIZE),
                    align_down(clamp(e.0, start, end), PAGE_SIZE),
                )
            })
            .find(|&(lo, hi)| hi > lo)?;
        let n = max_pages.min((hi - lo) / PAGE_SIZE);
        let base = hi - n * PAGE_SIZE;
        self.reserve(PhysAddr(base), n * PAGE_SIZE).ok()?;
        Some((PhysAddr(base), n))
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
    fn dump(t: &MemblockType, out: &mut dyn FnMut(&str)) {
        let mut l = crate::kernel::printk::LineBuf::<200>::new();
        let _ = write!(l, " {}.cnt  = {:#x}", t.name, t.cnt);
        out(l.as_str());
        for (idx, r) in t.regions().iter().enumerate() {
            let end = r.base.0.wrapping_add(r.size).wrapping_sub(1);
            l.clear();
            let _ = write!(
                l,
                " {}[{:#x}]\t[{}-{}], {} bytes{} flags: {:#x}",
                t.name,
                idx,
                Pa(r.base.0),
                Pa(end),
                Pa(r.size),
                NodeSuffix(r.nid),
                r.flags.0
            );
            out(l.as_str());
        }
    }

    /// Linux: __memblock_dump_all()'s lines, handed to `out` (the monitor's `memblock`).
    pub fn dump_all_to(&self, out: &mut dyn FnMut(&str)) {
        out("MEMBLOCK configuration:");
        let mut l = crate::kernel::printk::LineBuf::<200>::new();
        let _ = write!(
            l,
            " memory size = {} reserved size = {}",
            Pa(self.memory.total_size),
            Pa(self.reserved.total_size)
        );
        out(l.as_str());
        Self::dump(&self.memory, out);
        Self::dump(&self.reserved, out);
    }

    /// Linux: __memblock_dump_all() — print both lists, whatever `memblock=` says.
    pub fn dump_all_always(&self) {
        self.dump_all_to(&mut |l| pr_info!("{}", l));
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

    // Inline: early_pfn_valid() walks these for every pfn memblock_free_all() reserves, from
    // the page allocator's side of the crate.
    #[inline]
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

/// Linux: memblock_mark_nomap().
pub fn memblock_mark_nomap(base: PhysAddr, size: u64) -> Result<(), MemblockError> {
    MEMBLOCK.lock().mark_nomap(base, size)
}

/// Linux: memblock_clear_nomap().
pub fn memblock_clear_nomap(base: PhysAddr, size: u64) -> Result<(), MemblockError> {
    MEMBLOCK.lock().clear_nomap(base, size)
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

/// Linux: memblock_allow_resize().
pub fn memblock_allow_resize() {
    MEMBLOCK.lock().allow_resize()
}

#[cfg(test)]
mod tests;
