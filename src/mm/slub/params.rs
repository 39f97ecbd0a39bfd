//! What a SLUB instance is built for: the machine and the boot options (Linux's globals
//! `nr_cpu_ids`, `slab_nodes`, `slub_min_order`, `slub_max_order`, `slub_min_objects`,
//! `slub_debug`, `slab_nomerge` of mm/slub.c and mm/slab_common.c) as [`SlubParams`], and the
//! `__setup()` handlers that read them from the command line, with the `slub_debug=` syntax
//! (`setup_slub_debug`, `parse_slub_debug_flags`) and `kmem_cache_flags()`, which applies it
//! to a new cache. What the debug flags then do is debug.rs's.

use core::fmt;
use core::sync::atomic::AtomicU64;

use crate::include::mmzone::{MAX_ORDER, PAGE_ALLOC_COSTLY_ORDER};
use crate::mm::slab::{
    SlabFlags, SLAB_CONSISTENCY_CHECKS, SLAB_FAILSLAB, SLAB_NOLEAKTRACE, SLAB_NO_USER_FLAGS,
    SLAB_POISON, SLAB_RED_ZONE, SLAB_STORE_USER, SLAB_TRACE,
};

use super::DEBUG_DEFAULT_FLAGS;

/// The `slub_debug=` string kept for per-cache matching (Linux: slub_debug_string).
#[derive(Clone, Copy)]
pub struct DebugString {
    buf: [u8; 128],
    len: usize,
}

impl DebugString {
    pub(super) const fn empty() -> Self {
        Self {
            buf: [0; 128],
            len: 0,
        }
    }
    pub(super) fn set(&mut self, s: &str) {
        let n = s.len().min(self.buf.len());
        self.buf[..n].copy_from_slice(&s.as_bytes()[..n]);
        self.len = n;
    }
    /// The stored string, if any.
    pub fn get(&self) -> Option<&str> {
        if self.len == 0 {
            None
        } else {
            core::str::from_utf8(&self.buf[..self.len]).ok()
        }
    }
}

impl fmt::Debug for DebugString {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:?}", self.get())
    }
}

/// The machine and the boot options a SLUB instance is built for (Linux: globals —
/// nr_cpu_ids, slab_nodes, slub_min_order, ...).
#[derive(Clone, Copy, Debug)]
pub struct SlubParams {
    /// Linux: nr_cpu_ids.
    pub nr_cpu_ids: u32,
    /// Linux: num_present_cpus().
    pub num_present_cpus: u32,
    /// Linux: nr_node_ids.
    pub nr_node_ids: u32,
    /// Linux: slab_nodes (node_states[N_NORMAL_MEMORY]) as a bit mask.
    pub slab_nodes: u64,
    /// Linux: cache_line_size() (arm64: the CTR_EL0 writeback granule, 64 on QEMU's max CPU).
    pub cache_line_size: u32,
    /// Linux: KMALLOC_MIN_SIZE (arm64 6.1: 128; see slab_common.rs).
    pub kmalloc_min_size: usize,
    /// Linux: slub_min_order.
    pub slub_min_order: u32,
    /// Linux: slub_max_order.
    pub slub_max_order: u32,
    /// Linux: slub_min_objects.
    pub slub_min_objects: u32,
    /// Linux: slub_debug (flags for every cache).
    pub slub_debug: SlabFlags,
    /// Linux: slub_debug_string (per-cache blocks).
    pub slub_debug_string: DebugString,
    /// Linux: disable_higher_order_debug (`O`).
    pub disable_higher_order_debug: bool,
    /// Linux: slab_nomerge.
    pub slab_nomerge: bool,
    /// CONFIG_SLAB_FREELIST_RANDOM (on in Debian's 6.1).
    pub freelist_random: bool,
    /// Seed of the per-cache random values (Linux: get_random_long()).
    pub seed: u64,
    /// Linux: the init_on_alloc static key (off unless set: [`SlubParams::with_meminit`]).
    pub init_on_alloc: bool,
    /// Linux: the init_on_free static key.
    pub init_on_free: bool,
    /// kmemleak is on: slab_post_alloc_hook() and slab_free_hook() tell it
    /// ([`SlubParams::with_kmemleak`]).
    pub kmemleak: bool,
    /// slab_post_alloc_hook() / slab_free_hook() have work besides `__GFP_ZERO`
    /// (init_on_alloc, init_on_free, kmemleak): the fast paths' one test each, set by
    /// `SlubAllocator::new`.
    pub(super) alloc_hook: bool,
    pub(super) free_hook: bool,
    /// The page source's linear map, when the caller vouches for one the source does not
    /// announce itself ([`SlubParams::with_linear_map`]).
    pub(in crate::mm) linear_map: Option<super::LinearMap>,
    /// The address of the kernel's per-CPU `cpu_number` ([`SlubParams::with_cpu_number`]);
    /// 0: ask the source.
    pub(in crate::mm) cpu_number: usize,
}

impl SlubParams {
    /// A machine with `nr_cpu_ids` present CPUs and nodes `0..nr_node_ids` with memory,
    /// and Linux's defaults for everything else.
    pub fn new(nr_cpu_ids: u32, nr_node_ids: u32, seed: u64) -> Self {
        Self {
            nr_cpu_ids,
            num_present_cpus: nr_cpu_ids,
            nr_node_ids,
            slab_nodes: (1u64 << nr_node_ids) - 1,
            cache_line_size: 64,
            kmalloc_min_size: crate::mm::slab::ARM64_KMALLOC_MIN_SIZE,
            slub_min_order: 0,
            slub_max_order: PAGE_ALLOC_COSTLY_ORDER,
            slub_min_objects: 0,
            slub_debug: 0,
            slub_debug_string: DebugString::empty(),
            disable_higher_order_debug: false,
            slab_nomerge: false,
            freelist_random: true,
            seed,
            init_on_alloc: false,
            init_on_free: false,
            kmemleak: false,
            alloc_hook: false,
            free_hook: false,
            linear_map: None,
            cpu_number: 0,
        }
    }

    /// Lets the fast paths read the CPU number as arm64's `raw_smp_processor_id()` does,
    /// `this_cpu_read(cpu_number)`: the `u64` at `cpu_number`'s address plus this CPU's
    /// per-CPU offset (TPIDR_EL1), inline, instead of calling the source. Only the
    /// bare-metal arm64 build uses it.
    ///
    /// # Safety
    /// `cpu_number` is the kernel's `.data..percpu` `cpu_number`: on every CPU that uses this
    /// allocator, TPIDR_EL1 holds that CPU's per-CPU offset (0 before the per-CPU areas
    /// exist, when only the boot CPU runs) and its copy holds the CPU's number.
    pub unsafe fn with_cpu_number(mut self, cpu_number: &'static AtomicU64) -> Self {
        self.cpu_number = cpu_number as *const AtomicU64 as usize;
        self
    }

    /// Tells SLUB that the page source's memory is one linear map (see
    /// [`SlabPageSource::linear_map`](super::SlabPageSource::linear_map)), for a source that
    /// does not say so itself (the host's simulated machines, whose `__va` is a lookup).
    ///
    /// # Safety
    /// `lm` satisfies the contract of `SlabPageSource::linear_map` for the source this
    /// allocator will be built over.
    pub unsafe fn with_linear_map(mut self, lm: super::LinearMap) -> Self {
        self.linear_map = Some(lm);
        self
    }

    /// The boot command line's `slub_debug=`, `slub_min_order=`, `slub_max_order=`,
    /// `slub_min_objects=`, `slab_nomerge` / `slab_merge`.
    pub fn with_boot_params(mut self) -> Self {
        let b = BOOT_PARAMS.lock();
        if let Some(o) = b.min_order {
            self.slub_min_order = o;
        }
        if let Some(o) = b.max_order {
            self.slub_max_order = o;
        }
        if let Some(o) = b.min_objects {
            self.slub_min_objects = o;
        }
        if let Some(nm) = b.nomerge {
            self.slab_nomerge = nm;
        }
        if let Some(d) = b.debug {
            self.slub_debug = d.0;
            self.slub_debug_string = d.1;
            self.disable_higher_order_debug = d.2;
        }
        // Linux: setup_slub_min_order() and setup_slub_max_order() keep min <= max.
        self.slub_max_order = self.slub_max_order.max(self.slub_min_order);
        self
    }

    /// The heap auto-initialisation switches (Linux: the init_on_alloc / init_on_free static
    /// keys, which SLUB shares with the page allocator).
    pub fn with_meminit(mut self, init_on_alloc: bool, init_on_free: bool) -> Self {
        self.init_on_alloc = init_on_alloc;
        self.init_on_free = init_on_free;
        self
    }

    /// Whether the hooks tell kmemleak about each object (Linux: CONFIG_DEBUG_KMEMLEAK's
    /// calls in slab_post_alloc_hook() and slab_free_hook()).
    pub fn with_kmemleak(mut self, on: bool) -> Self {
        self.kmemleak = on;
        self
    }

    /// Applies a `slub_debug=` value as setup_slub_debug() does (`None`: bare `slub_debug`).
    pub fn with_slub_debug(mut self, val: Option<&str>) -> Self {
        let (f, s, o) = setup_slub_debug(val, self.slub_debug);
        self.slub_debug = f;
        self.slub_debug_string = s;
        self.disable_higher_order_debug = o;
        self
    }

    pub(super) fn node_in_slab_nodes(&self, node: i32) -> bool {
        (0..64).contains(&node) && self.slab_nodes & (1 << node) != 0
    }
}

/// Linux: parse_slub_debug_flags() — one `;` block: its flags, its slab list (if any), the
/// rest of the string (if any) and whether it asked for `O`.
fn parse_slub_debug_flags(s: &str, init: bool) -> (SlabFlags, Option<&str>, Option<&str>, bool) {
    let s = s.trim_start_matches(';');
    let mut flags = 0;
    let mut higher_order_disable = false;
    let bytes = s.as_bytes();
    let mut i = 0;
    if bytes.first() == Some(&b',') {
        // No options but restriction on slabs: full debugging for matching slabs.
        flags = DEBUG_DEFAULT_FLAGS;
    } else {
        while i < bytes.len() && bytes[i] != b',' && bytes[i] != b';' {
            match bytes[i].to_ascii_lowercase() {
                b'-' => flags = 0,
                b'f' => flags |= SLAB_CONSISTENCY_CHECKS,
                b'z' => flags |= SLAB_RED_ZONE,
                b'p' => flags |= SLAB_POISON,
                b'u' => flags |= SLAB_STORE_USER,
                b't' => flags |= SLAB_TRACE,
                b'a' => flags |= SLAB_FAILSLAB,
                b'o' => higher_order_disable = true,
                _ => {
                    if init {
                        pr_err!("slub_debug option '{}' unknown. skipped", bytes[i] as char);
                    }
                }
            }
            i += 1;
        }
    }
    let slabs = if bytes.get(i) == Some(&b',') {
        let start = i + 1;
        let end = s[start..].find(';').map_or(s.len(), |e| start + e);
        i = end;
        Some(&s[start..end])
    } else {
        while i < bytes.len() && bytes[i] != b';' {
            i += 1;
        }
        None
    };
    let rest = s[i..].trim_start_matches(';');
    let rest = if rest.is_empty() { None } else { Some(rest) };
    (flags, slabs, rest, higher_order_disable)
}

/// Linux: setup_slub_debug() — the global flags, the per-cache string and `O`.
fn setup_slub_debug(val: Option<&str>, current: SlabFlags) -> (SlabFlags, DebugString, bool) {
    let mut string = DebugString::empty();
    let mut higher_order_disable = false;
    let Some(saved) = val.filter(|v| !v.is_empty()) else {
        // No options specified. Switch on full debugging.
        return (DEBUG_DEFAULT_FLAGS, string, false);
    };
    let mut global_flags = DEBUG_DEFAULT_FLAGS;
    let (mut global_changed, mut list_specified) = (false, false);
    let mut cur = Some(saved);
    while let Some(s) = cur {
        let (flags, slabs, rest, o) = parse_slub_debug_flags(s, true);
        higher_order_disable |= o;
        if slabs.is_none() {
            global_flags = flags;
            global_changed = true;
        } else {
            list_specified = true;
        }
        cur = rest;
    }
    // For backwards compatibility, a single list of flags with list of slabs means debugging
    // is only changed for those slabs, so the global slub_debug should be unchanged.
    if list_specified {
        if !global_changed {
            global_flags = current;
        }
        string.set(saved);
    }
    (global_flags, string, higher_order_disable)
}

/// Linux: kmem_cache_flags() — a new cache's flags with `slub_debug=` applied.
pub fn kmem_cache_flags(p: &SlubParams, flags: SlabFlags, name: &str) -> SlabFlags {
    if flags & SLAB_NO_USER_FLAGS != 0 {
        return flags;
    }
    let mut slub_debug_local = p.slub_debug;
    // If the slab cache is for debugging (e.g. kmemleak) then don't store user (stack trace)
    // information by default, but let the user enable it via the command line below.
    if flags & SLAB_NOLEAKTRACE != 0 {
        slub_debug_local &= !SLAB_STORE_USER;
    }
    let mut next = p.slub_debug_string.get();
    while let Some(block) = next {
        let (block_flags, slabs, rest, _) = parse_slub_debug_flags(block, false);
        next = rest;
        let Some(list) = slabs else { continue };
        for pat in list.split(',') {
            let matches = match pat.find('*') {
                Some(g) => name.starts_with(&pat[..g]),
                None => name == pat,
            };
            if matches {
                return flags | block_flags;
            }
        }
    }
    flags | slub_debug_local
}

/// The options the command line set, read by `SlubParams::with_boot_params()`.
struct BootParams {
    min_order: Option<u32>,
    max_order: Option<u32>,
    min_objects: Option<u32>,
    nomerge: Option<bool>,
    debug: Option<(SlabFlags, DebugString, bool)>,
}

static BOOT_PARAMS: spin::Mutex<BootParams> = spin::Mutex::new(BootParams {
    min_order: None,
    max_order: None,
    min_objects: None,
    nomerge: None,
    debug: None,
});

fn parse_param_u32(val: Option<&str>) -> Result<u32, &'static str> {
    val.and_then(crate::kernel::params::parse_u64)
        .map(|v| v as u32)
        .ok_or("expected a number")
}

/// Linux: setup_slub_debug() (`__setup("slub_debug", ...)`).
fn slub_debug_setup(val: Option<&str>) -> crate::kernel::params::SetupResult {
    BOOT_PARAMS.lock().debug = Some(setup_slub_debug(val, 0));
    Ok(())
}
crate::setup_param!("slub_debug", slub_debug_setup);

/// Linux: setup_slub_min_order().
/// Linux 6.1 takes any value; an order the buddy cannot give (above MAX_ORDER - 1) then
/// overflows the slab size arithmetic or fails every cache. Here it is capped, with a
/// warning naming the parameter.
fn setup_slub_min_order(val: Option<&str>) -> crate::kernel::params::SetupResult {
    let mut o = parse_param_u32(val)?;
    if o > MAX_ORDER as u32 - 1 {
        pr_warn!(
            "slub_min_order={} is above MAX_ORDER - 1 ({}); using {}",
            o,
            MAX_ORDER - 1,
            MAX_ORDER - 1
        );
        o = MAX_ORDER as u32 - 1;
    }
    let mut b = BOOT_PARAMS.lock();
    b.min_order = Some(o);
    if b.max_order.is_some_and(|m| m < o) {
        b.max_order = Some(o);
    }
    Ok(())
}
crate::setup_param!("slub_min_order", setup_slub_min_order);

/// Linux: setup_slub_max_order().
fn setup_slub_max_order(val: Option<&str>) -> crate::kernel::params::SetupResult {
    let o = parse_param_u32(val)?.min(MAX_ORDER as u32 - 1);
    let mut b = BOOT_PARAMS.lock();
    b.max_order = Some(o);
    if b.min_order.is_some_and(|m| m > o) {
        b.min_order = Some(o);
    }
    Ok(())
}
crate::setup_param!("slub_max_order", setup_slub_max_order);

/// Linux: setup_slub_min_objects().
fn setup_slub_min_objects(val: Option<&str>) -> crate::kernel::params::SetupResult {
    BOOT_PARAMS.lock().min_objects = Some(parse_param_u32(val)?);
    Ok(())
}
crate::setup_param!("slub_min_objects", setup_slub_min_objects);

/// Linux: setup_slab_nomerge() (mm/slab_common.c; `slub_nomerge` is its old name).
fn setup_slab_nomerge(_val: Option<&str>) -> crate::kernel::params::SetupResult {
    BOOT_PARAMS.lock().nomerge = Some(true);
    Ok(())
}
crate::setup_param!("slab_nomerge", setup_slab_nomerge);
crate::setup_param!("slub_nomerge", setup_slab_nomerge);

/// Linux: setup_slab_merge().
fn setup_slab_merge(_val: Option<&str>) -> crate::kernel::params::SetupResult {
    BOOT_PARAMS.lock().nomerge = Some(false);
    Ok(())
}
crate::setup_param!("slab_merge", setup_slab_merge);

#[cfg(test)]
mod tests;
