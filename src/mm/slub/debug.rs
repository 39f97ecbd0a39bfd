//! `slub_debug` (mm/slub.c under CONFIG_SLUB_DEBUG; the `slub_debug=` syntax is params.rs's):
//! store-user tracking (`struct track`), red zones and poisoning
//! (`init_object`, `check_object`, `check_pad_bytes`, `slab_pad_check`), the slab-state
//! checks (`check_slab`, `on_freelist`), `alloc_debug_processing` / `free_debug_processing`,
//! the debug caches' allocation path, `validate_slab_cache`, and the reports in Linux's words
//! (`BUG kmalloc-64 (Not tainted): Right Redzone overwritten`, the object dump, `FIX ...`, the
//! leak report of `list_slab_objects`). Methods of [`SlubAllocator`] like the rest of SLUB.

use core::fmt::{self, Write};
use core::panic::Location;
use core::ptr;
use core::sync::atomic::Ordering;

use crate::include::numa::{MAX_NUMNODES, NUMA_NO_NODE};
use crate::mm::gfp::GfpT;
use crate::mm::page::ListHead;
use crate::mm::page::PageFlagNames;
use crate::mm::slab::{
    SLAB_CONSISTENCY_CHECKS, SLAB_KMALLOC, SLAB_POISON, SLAB_RED_ZONE, SLAB_STORE_USER,
};

use super::slub_def::{
    for_each_slab_safe, order_objects, slub_debug_orig_size, KmemCache, KmemCacheNode, Slab,
};
use super::{
    get_freepointer, set_freepointer, SlubAllocator, __OBJECT_POISON, MAX_OBJS_PER_PAGE, PAGE_SZ,
    POISON_END, POISON_FREE, POISON_INUSE, SLUB_RED_ACTIVE, SLUB_RED_INACTIVE,
};

/// Linux: struct track (with CONFIG_STACKDEPOT: 32 bytes). `addr` is the caller's
/// `core::panic::Location`; `handle` a check word that lets a report trust `addr`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct Track {
    addr: u64,
    handle: u32,
    cpu: i32,
    pid: i32,
    _pad: u32,
    when: u64,
}

/// sizeof(struct track).
pub const TRACK_SIZE: usize = core::mem::size_of::<Track>();
const _: () = assert!(TRACK_SIZE == 32);

/// Linux: enum track_item.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum TrackItem {
    Alloc = 0,
    Free = 1,
}

fn track_check(addr: u64) -> u32 {
    ((addr ^ (addr >> 32)) as u32) ^ 0x51ab_c0de
}

/// Linux: print_tainted() with at most TAINT_BAD_PAGE set.
fn print_tainted(tainted: bool) -> &'static str {
    if tainted {
        "Tainted: G    B            "
    } else {
        "Not tainted"
    }
}

/// Writes `0x` and a pointer as Linux's `0x%p` with no_hash_pointers (which kmem_cache_init
/// turns on when slub_debug is).
pub(super) struct P(pub(super) *const u8);
impl fmt::Display for P {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:016x}", self.0 as usize)
    }
}

impl SlubAllocator<'_> {
    /// The debug-cache branch of ___slab_alloc().
    pub(super) fn debug_slab_alloc(
        &self,
        s: &KmemCache,
        gfp: GfpT,
        mut node: i32,
        orig_size: usize,
    ) -> *mut u8 {
        if node != NUMA_NO_NODE && !self.params.node_in_slab_nodes(node) {
            node = NUMA_NO_NODE;
        }
        loop {
            let searchnode = if node == NUMA_NO_NODE {
                self.numa_mem_id()
            } else {
                node
            };
            let mut order: [i32; MAX_NUMNODES as usize + 1] = [-1; MAX_NUMNODES as usize + 1];
            order[0] = searchnode;
            if node == NUMA_NO_NODE {
                let remote = s
                    .nodes()
                    .filter(|&(nid, n)| nid != searchnode && n.nr_partial() > s.min_partial);
                for (i, (nid, _)) in remote.enumerate() {
                    order[i + 1] = nid;
                }
            }
            for &nid in order.iter().take_while(|&&nid| nid >= 0) {
                let Some(n) = s.get_node(nid) else { continue };
                if n.nr_partial() == 0 {
                    continue;
                }
                let mut l = n.list_lock.lock();
                let head: *mut ListHead = &mut l.partial;
                let mut object: *mut u8 = ptr::null_mut();
                for_each_slab_safe(head, |slab| {
                    if object.is_null() {
                        // SAFETY: a slab on this node's list.
                        object = self.alloc_single_from_partial(
                            s,
                            n,
                            &mut l,
                            unsafe { &*slab },
                            orig_size,
                        );
                    }
                });
                if !object.is_null() {
                    return object;
                }
            }
            let Some(slab) = self.new_slab(s, gfp, node) else {
                self.slab_out_of_memory(s, gfp, node);
                return ptr::null_mut();
            };
            let object = self.alloc_single_from_new_slab(s, slab, orig_size);
            if !object.is_null() {
                return object;
            }
        }
    }

    /// Linux: list_slab_objects() — the report for a slab that still has objects.
    pub(super) fn list_slab_objects(&self, s: &KmemCache, slab: &Slab, text: fmt::Arguments) {
        self.slab_err(s, slab, text);
        let addr = self.slab_address(slab);
        let map = self.object_map.lock();
        let map = self.fill_map(map, s, slab);
        for p in self.objects_of(s, slab) {
            if map[self.obj_to_index(s, addr, p) / 64] & (1 << (self.obj_to_index(s, addr, p) % 64))
                == 0
            {
                self.slab_add_kunit_errors();
                pr_err!("Object 0x{} @offset={}", P(p), p as usize - addr as usize);
                self.print_tracking(s, p);
            }
        }
    }

    /// Linux: get_track().
    fn get_track(&self, s: &KmemCache, object: *mut u8, alloc: TrackItem) -> *mut Track {
        object
            .wrapping_add(s.get_info_end() + alloc as usize * TRACK_SIZE)
            .cast()
    }

    /// Linux: set_track().
    pub(super) fn set_track(
        &self,
        s: &KmemCache,
        object: *mut u8,
        alloc: TrackItem,
        caller: Option<&'static Location<'static>>,
    ) {
        let t = match caller {
            Some(loc) => {
                let addr = loc as *const Location as u64;
                Track {
                    addr,
                    handle: track_check(addr),
                    cpu: self.smp_processor_id() as i32,
                    pid: 0,
                    _pad: 0,
                    when: self.source.jiffies(),
                }
            }
            None => Track::default(),
        };
        // SAFETY: the track slots lie inside the object's size (calculate_sizes).
        unsafe { ptr::write_unaligned(self.get_track(s, object, alloc), t) };
    }

    /// Linux: init_tracking().
    pub(super) fn init_tracking(&self, s: &KmemCache, object: *mut u8) {
        if s.flags & SLAB_STORE_USER == 0 {
            return;
        }
        self.set_track(s, object, TrackItem::Free, None);
        self.set_track(s, object, TrackItem::Alloc, None);
    }

    /// Linux: print_track().
    fn print_track(&self, what: &str, t: Track, pr_time: u64) {
        if t.addr == 0 {
            return;
        }
        let age = pr_time.wrapping_sub(t.when);
        if t.handle == track_check(t.addr) {
            // SAFETY: the check word matches: `addr` was stored from a &'static Location.
            let loc = unsafe { &*(t.addr as *const Location) };
            pr_err!(
                "{} in {}:{} age={} cpu={} pid={}",
                what,
                loc.file(),
                loc.line(),
                age,
                t.cpu as u32,
                t.pid
            );
        } else {
            pr_err!(
                "{} in 0x{:016x} age={} cpu={} pid={}",
                what,
                t.addr,
                age,
                t.cpu as u32,
                t.pid
            );
        }
    }

    /// Linux: print_tracking().
    pub(in crate::mm) fn print_tracking(&self, s: &KmemCache, object: *mut u8) {
        if s.flags & SLAB_STORE_USER == 0 {
            return;
        }
        let pr_time = self.source.jiffies();
        // SAFETY: the track slots lie inside the object.
        let (a, f) = unsafe {
            (
                ptr::read_unaligned(self.get_track(s, object, TrackItem::Alloc)),
                ptr::read_unaligned(self.get_track(s, object, TrackItem::Free)),
            )
        };
        self.print_track("Allocated", a, pr_time);
        self.print_track("Freed", f, pr_time);
    }

    fn orig_size_ptr(&self, s: &KmemCache, object: *mut u8) -> *mut u32 {
        object
            .wrapping_add(s.get_info_end() + 2 * TRACK_SIZE)
            .cast()
    }

    /// Linux: set_orig_size().
    pub(in crate::mm) fn set_orig_size(&self, s: &KmemCache, object: *mut u8, orig_size: usize) {
        if !slub_debug_orig_size(s) {
            return;
        }
        // SAFETY: the slot lies inside the object's metadata (calculate_sizes).
        unsafe { ptr::write_unaligned(self.orig_size_ptr(s, object), orig_size as u32) };
    }

    /// Linux: get_orig_size().
    pub(in crate::mm) fn get_orig_size(&self, s: &KmemCache, object: *mut u8) -> usize {
        if !slub_debug_orig_size(s) {
            return s.object_size() as usize;
        }
        // SAFETY: as set_orig_size().
        unsafe { ptr::read_unaligned(self.orig_size_ptr(s, object)) as usize }
    }

    /// Linux: init_object() — red zones and poison for a free (`SLUB_RED_INACTIVE`) or
    /// allocated (`SLUB_RED_ACTIVE`) object.
    pub(super) fn init_object(&self, s: &KmemCache, object: *mut u8, val: u8) {
        let p = object;
        let mut poison_size = s.object_size() as usize;
        // SAFETY (for the writes below): all ranges lie inside the object's `size` bytes.
        unsafe {
            if s.flags & SLAB_RED_ZONE != 0 {
                ptr::write_bytes(p.sub(s.red_left_pad as usize), val, s.red_left_pad as usize);
                if slub_debug_orig_size(s) && val == SLUB_RED_ACTIVE {
                    // Redzone the extra allocated space by kmalloc than requested, and the
                    // poison size will be limited to the original request size accordingly.
                    poison_size = self.get_orig_size(s, object).min(poison_size);
                }
            }
            if s.flags & __OBJECT_POISON != 0 && poison_size > 0 {
                ptr::write_bytes(p, POISON_FREE, poison_size - 1);
                *p.add(poison_size - 1) = POISON_END;
            }
            if s.flags & SLAB_RED_ZONE != 0 {
                ptr::write_bytes(p.add(poison_size), val, s.inuse() as usize - poison_size);
            }
        }
    }

    // ----- debugging: reports

    fn add_taint(&self) {
        self.tainted.store(true, Ordering::Relaxed);
    }

    /// Linux: slab_bug().
    fn slab_bug(&self, s: &KmemCache, args: fmt::Arguments) {
        pr_err!("=============================================================================");
        pr_err!(
            "BUG {} ({}): {}",
            s.name,
            print_tainted(self.tainted.load(Ordering::Relaxed)),
            args
        );
        pr_err!("-----------------------------------------------------------------------------");
        pr_err!("");
    }

    /// Linux: slab_fix().
    fn slab_fix(&self, s: &KmemCache, args: fmt::Arguments) {
        self.slab_add_kunit_errors();
        pr_err!("FIX {}: {}", s.name, args);
    }

    /// Linux: print_section() — print_hex_dump(KERN_ERR, text, DUMP_PREFIX_ADDRESS, 16, 1,
    /// addr, length, 1).
    fn print_section(&self, text: &str, addr: *const u8, length: usize) {
        let mut off = 0;
        while off < length {
            let n = (length - off).min(16);
            let mut line = crate::kernel::printk::LineBuf::<128>::new();
            let _ = write!(line, "{}{}: ", text, P(addr.wrapping_add(off)));
            // SAFETY: the caller passes a range inside a slab.
            let bytes = unsafe { core::slice::from_raw_parts(addr.add(off), n) };
            for (i, b) in bytes.iter().enumerate() {
                let _ = write!(line, "{}{:02x}", if i == 0 { "" } else { " " }, b);
            }
            // The ASCII column starts at 16 * 3 + 1.
            for _ in n * 3 - 1..49 {
                let _ = line.write_str(" ");
            }
            for &b in bytes {
                let c = if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                };
                let _ = line.write_char(c);
            }
            pr_err!("{}", line.as_str());
            off += n;
        }
    }

    /// Linux: print_slab_info().
    fn print_slab_info(&self, slab: &Slab) {
        pr_err!(
            "Slab 0x{} objects={} used={} fp=0x{} flags={}",
            P((slab as *const Slab).cast()),
            slab.objects(),
            slab.inuse(),
            P(slab.freelist()),
            PageFlagNames(slab.__page_flags.load(Ordering::Relaxed))
        );
    }

    /// Linux: print_trailer() — the object, its red zones, tracking and padding.
    fn print_trailer(&self, s: &KmemCache, slab: &Slab, p: *mut u8) {
        let addr = self.slab_address(slab);
        self.print_tracking(s, p);
        self.print_slab_info(slab);
        pr_err!(
            "Object 0x{} @offset={} fp=0x{}",
            P(p),
            p as usize - addr as usize,
            // SAFETY: an object slot of the slab.
            P(unsafe { get_freepointer(s, p) })
        );
        pr_err!("");
        if s.flags & SLAB_RED_ZONE != 0 {
            self.print_section(
                "Redzone  ",
                p.wrapping_sub(s.red_left_pad as usize),
                s.red_left_pad as usize,
            );
        } else if p as usize > addr as usize + 16 {
            self.print_section("Bytes b4 ", p.wrapping_sub(16), 16);
        }
        self.print_section("Object   ", p, (s.object_size() as usize).min(PAGE_SZ));
        if s.flags & SLAB_RED_ZONE != 0 {
            self.print_section(
                "Redzone  ",
                p.wrapping_add(s.object_size() as usize),
                (s.inuse() - s.object_size()) as usize,
            );
        }
        let mut off = s.get_info_end();
        if s.flags & SLAB_STORE_USER != 0 {
            off += 2 * TRACK_SIZE;
        }
        if slub_debug_orig_size(s) {
            off += 4;
        }
        if off != s.size_from_object() {
            // Beginning of the filler is the free pointer.
            self.print_section("Padding  ", p.wrapping_add(off), s.size_from_object() - off);
        }
    }

    /// Linux: object_err().
    pub(super) fn object_err(&self, s: &KmemCache, slab: &Slab, object: *mut u8, reason: &str) {
        self.slab_add_kunit_errors();
        self.slab_bug(s, format_args!("{}", reason));
        self.print_trailer(s, slab, object);
        self.add_taint();
    }

    /// Linux: slab_err().
    fn slab_err(&self, s: &KmemCache, slab: &Slab, args: fmt::Arguments) {
        self.slab_add_kunit_errors();
        self.slab_bug(s, args);
        self.print_slab_info(slab);
        self.add_taint();
    }

    /// Linux: restore_bytes().
    fn restore_bytes(&self, s: &KmemCache, message: &str, data: u8, from: *mut u8, to: *mut u8) {
        self.slab_fix(
            s,
            format_args!(
                "Restoring {} 0x{}-0x{}=0x{:x}",
                message,
                P(from),
                P(to.wrapping_sub(1)),
                data
            ),
        );
        // SAFETY: the range was just checked inside the slab.
        unsafe { ptr::write_bytes(from, data, to as usize - from as usize) };
    }

    /// Linux: check_bytes_and_report() — report and repair bytes that are not `value`.
    #[allow(clippy::too_many_arguments)]
    fn check_bytes_and_report(
        &self,
        s: &KmemCache,
        slab: &Slab,
        object: *mut u8,
        what: &str,
        start: *mut u8,
        value: u8,
        bytes: usize,
    ) -> bool {
        let addr = self.slab_address(slab);
        // SAFETY: the caller passes a range inside the slab.
        let range = unsafe { core::slice::from_raw_parts(start, bytes) };
        let Some(first) = range.iter().position(|&b| b != value) else {
            return true;
        };
        let last = range.iter().rposition(|&b| b != value).unwrap_or(first);
        let fault = start.wrapping_add(first);
        let end = start.wrapping_add(last + 1);
        self.slab_add_kunit_errors();
        self.slab_bug(s, format_args!("{} overwritten", what));
        pr_err!(
            "0x{}-0x{} @offset={}. First byte 0x{:x} instead of 0x{:x}",
            P(fault),
            P(end.wrapping_sub(1)),
            fault as usize - addr as usize,
            range[first],
            value
        );
        self.print_trailer(s, slab, object);
        self.add_taint();
        self.restore_bytes(s, what, value, fault, end);
        false
    }

    /// Linux: check_pad_bytes().
    fn check_pad_bytes(&self, s: &KmemCache, slab: &Slab, p: *mut u8) -> bool {
        let mut off = s.get_info_end();
        if s.flags & SLAB_STORE_USER != 0 {
            // We also have user information there.
            off += 2 * TRACK_SIZE;
            if s.flags & SLAB_KMALLOC != 0 {
                off += 4;
            }
        }
        if s.size_from_object() == off {
            return true;
        }
        self.check_bytes_and_report(
            s,
            slab,
            p,
            "Object padding",
            p.wrapping_add(off),
            POISON_INUSE,
            s.size_from_object() - off,
        )
    }

    /// Linux: slab_pad_check() — the bytes after the last object.
    pub(super) fn slab_pad_check(&self, s: &KmemCache, slab: &Slab) {
        if s.flags & SLAB_POISON == 0 {
            return;
        }
        let start = self.slab_address(slab);
        let length = Self::slab_size(slab);
        let remainder = length % s.size as usize;
        if remainder == 0 {
            return;
        }
        let pad = start.wrapping_add(length - remainder);
        // SAFETY: the tail of the slab.
        let range = unsafe { core::slice::from_raw_parts(pad, remainder) };
        let Some(first) = range.iter().position(|&b| b != POISON_INUSE) else {
            return;
        };
        let last = range
            .iter()
            .rposition(|&b| b != POISON_INUSE)
            .unwrap_or(first);
        let fault = pad.wrapping_add(first);
        let end = pad.wrapping_add(last + 1);
        self.slab_err(
            s,
            slab,
            format_args!(
                "Padding overwritten. 0x{}-0x{} @offset={}",
                P(fault),
                P(end.wrapping_sub(1)),
                fault as usize - start as usize
            ),
        );
        self.print_section("Padding ", pad, remainder);
        self.restore_bytes(s, "slab padding", POISON_INUSE, fault, end);
    }

    /// Linux: check_object() — red zones, poison, padding and the free pointer of one object.
    pub(super) fn check_object(
        &self,
        s: &KmemCache,
        slab: &Slab,
        object: *mut u8,
        val: u8,
    ) -> bool {
        let p = object;
        let object_size = s.object_size() as usize;
        let endobject = object.wrapping_add(object_size);
        if s.flags & SLAB_RED_ZONE != 0 {
            if !self.check_bytes_and_report(
                s,
                slab,
                object,
                "Left Redzone",
                object.wrapping_sub(s.red_left_pad as usize),
                val,
                s.red_left_pad as usize,
            ) {
                return false;
            }
            if !self.check_bytes_and_report(
                s,
                slab,
                object,
                "Right Redzone",
                endobject,
                val,
                s.inuse() as usize - object_size,
            ) {
                return false;
            }
            if slub_debug_orig_size(s) && val == SLUB_RED_ACTIVE {
                let orig_size = self.get_orig_size(s, object);
                if object_size > orig_size
                    && !self.check_bytes_and_report(
                        s,
                        slab,
                        object,
                        "kmalloc Redzone",
                        p.wrapping_add(orig_size),
                        val,
                        object_size - orig_size,
                    )
                {
                    return false;
                }
            }
        } else if s.flags & SLAB_POISON != 0 && object_size < s.inuse() as usize {
            self.check_bytes_and_report(
                s,
                slab,
                p,
                "Alignment padding",
                endobject,
                POISON_INUSE,
                s.inuse() as usize - object_size,
            );
        }
        if s.flags & SLAB_POISON != 0 {
            if val != SLUB_RED_ACTIVE
                && s.flags & __OBJECT_POISON != 0
                && (!self.check_bytes_and_report(
                    s,
                    slab,
                    p,
                    "Poison",
                    p,
                    POISON_FREE,
                    object_size - 1,
                ) || !self.check_bytes_and_report(
                    s,
                    slab,
                    p,
                    "End Poison",
                    p.wrapping_add(object_size - 1),
                    POISON_END,
                    1,
                ))
            {
                return false;
            }
            // check_pad_bytes cleans up on its own.
            self.check_pad_bytes(s, slab, p);
        }
        if !s.freeptr_outside_object() && val == SLUB_RED_ACTIVE {
            // Object and freepointer overlap. Cannot check freepointer while object is
            // allocated.
            return true;
        }
        // Check free pointer validity.
        // SAFETY: an object slot of the slab.
        if !self.check_valid_pointer(s, slab, unsafe { get_freepointer(s, p) }) {
            self.object_err(s, slab, p, "Freepointer corrupt");
            // No choice but to zap it and thus lose the remainder of the free objects in this
            // slab. May cause another error because the object count is now wrong.
            // SAFETY: as above.
            unsafe { set_freepointer(s, p, ptr::null_mut()) };
            return false;
        }
        true
    }

    /// Linux: check_slab().
    fn check_slab(&self, s: &KmemCache, slab: &Slab) -> bool {
        if !slab.test_slab() {
            self.slab_err(s, slab, format_args!("Not a valid slab page"));
            return false;
        }
        let maxobj = order_objects(slab.slab_order(), s.size);
        if slab.objects() > maxobj {
            self.slab_err(
                s,
                slab,
                format_args!("objects {} > max {}", slab.objects(), maxobj),
            );
            return false;
        }
        if slab.inuse() > slab.objects() {
            self.slab_err(
                s,
                slab,
                format_args!("inuse {} > max {}", slab.inuse(), slab.objects()),
            );
            return false;
        }
        // Slab_pad_check fixes things up after itself.
        self.slab_pad_check(s, slab);
        true
    }

    /// Linux: on_freelist() — is `search` free in `slab`? Walks (and repairs) the freelist and
    /// the object counts; with a null `search`, true when the walk completed.
    fn on_freelist(&self, s: &KmemCache, slab: &Slab, search: *mut u8) -> bool {
        let mut nr = 0;
        let mut fp = slab.freelist();
        let mut object: *mut u8 = ptr::null_mut();
        while !fp.is_null() && nr <= slab.objects() {
            if fp == search {
                return true;
            }
            if !self.check_valid_pointer(s, slab, fp) {
                if !object.is_null() {
                    self.object_err(s, slab, object, "Freechain corrupt");
                    // SAFETY: a valid object of the slab.
                    unsafe { set_freepointer(s, object, ptr::null_mut()) };
                } else {
                    self.slab_err(s, slab, format_args!("Freepointer corrupt"));
                    slab.set_freelist(ptr::null_mut());
                    slab.set_inuse(slab.objects());
                    self.slab_fix(s, format_args!("Freelist cleared"));
                    return false;
                }
                break;
            }
            object = fp;
            // SAFETY: checked valid above.
            fp = unsafe { get_freepointer(s, object) };
            nr += 1;
        }
        let max_objects = order_objects(slab.slab_order(), s.size).min(MAX_OBJS_PER_PAGE);
        if slab.objects() != max_objects {
            self.slab_err(
                s,
                slab,
                format_args!(
                    "Wrong number of objects. Found {} but should be {}",
                    slab.objects(),
                    max_objects
                ),
            );
            slab.set_objects(max_objects);
            self.slab_fix(s, format_args!("Number of objects adjusted"));
        }
        if slab.inuse() != slab.objects().wrapping_sub(nr) {
            self.slab_err(
                s,
                slab,
                format_args!(
                    "Wrong object count. Counter is {} but counted were {}",
                    slab.inuse(),
                    slab.objects() as i32 - nr as i32
                ),
            );
            slab.set_inuse(slab.objects().wrapping_sub(nr));
            self.slab_fix(s, format_args!("Object count adjusted"));
        }
        search.is_null()
    }

    /// Linux: alloc_consistency_checks() + alloc_debug_processing().
    pub(super) fn alloc_debug_processing(
        &self,
        s: &KmemCache,
        slab: &Slab,
        object: *mut u8,
        orig_size: usize,
    ) -> bool {
        if s.flags & SLAB_CONSISTENCY_CHECKS != 0 {
            let ok = self.check_slab(s, slab)
                && if !self.check_valid_pointer(s, slab, object) {
                    self.object_err(s, slab, object, "Freelist Pointer check fails");
                    false
                } else {
                    self.check_object(s, slab, object, SLUB_RED_INACTIVE)
                };
            if !ok {
                if slab.test_slab() {
                    // If this is a slab page then lets do the best we can to avoid issues in
                    // the future. Marking all objects as used avoids touching the remaining
                    // objects.
                    self.slab_fix(s, format_args!("Marking all objects used"));
                    slab.set_inuse(slab.objects());
                    slab.set_freelist(ptr::null_mut());
                }
                return false;
            }
        }
        // Success. Perform special debug activities for allocs.
        self.set_orig_size(s, object, orig_size);
        self.init_object(s, object, SLUB_RED_ACTIVE);
        true
    }

    /// Linux: free_consistency_checks() + free_debug_processing() (one object).
    pub(super) fn free_debug_processing(
        &self,
        s: &KmemCache,
        slab: &Slab,
        object: *mut u8,
        caller: &'static Location<'static>,
    ) -> bool {
        let ok = (|| {
            if s.flags & SLAB_CONSISTENCY_CHECKS != 0 {
                if !self.check_slab(s, slab) {
                    return false;
                }
                if slab.inuse() < 1 {
                    self.slab_err(
                        s,
                        slab,
                        format_args!(
                            "Slab has {} allocated objects but {} are to be freed",
                            slab.inuse(),
                            1
                        ),
                    );
                    return false;
                }
                if !self.check_valid_pointer(s, slab, object) {
                    self.slab_err(
                        s,
                        slab,
                        format_args!("Invalid object pointer 0x{}", P(object)),
                    );
                    return false;
                }
                if self.on_freelist(s, slab, object) {
                    self.object_err(s, slab, object, "Object already free");
                    return false;
                }
                if !self.check_object(s, slab, object, SLUB_RED_ACTIVE) {
                    return false;
                }
                if !ptr::eq(slab.slab_cache(), s) {
                    self.object_err(s, slab, object, "page slab pointer corrupt.");
                    return false;
                }
            }
            if s.flags & SLAB_STORE_USER != 0 {
                self.set_track(s, object, TrackItem::Free, Some(caller));
            }
            // Freepointer not overwritten by init_object(), SLAB_POISON moved it.
            self.init_object(s, object, SLUB_RED_INACTIVE);
            true
        })();
        if !ok {
            self.slab_fix(s, format_args!("Object at 0x{} not freed", P(object)));
        }
        ok
    }

    /// Linux: __fill_map() — mark the free objects (bounded: a corrupt list cannot loop).
    fn fill_map<'g>(
        &self,
        mut map: spin::MutexGuard<'g, [u64; (MAX_OBJS_PER_PAGE as usize).div_ceil(64)]>,
        s: &KmemCache,
        slab: &Slab,
    ) -> spin::MutexGuard<'g, [u64; (MAX_OBJS_PER_PAGE as usize).div_ceil(64)]> {
        let words = (slab.objects() as usize).div_ceil(64);
        map[..words].fill(0);
        let addr = self.slab_address(slab);
        let mut p = slab.freelist();
        let mut n = 0;
        while !p.is_null() && n < slab.objects() && self.check_valid_pointer(s, slab, p) {
            let i = self.obj_to_index(s, addr, p);
            map[i / 64] |= 1 << (i % 64);
            // SAFETY: checked valid.
            p = unsafe { get_freepointer(s, p) };
            n += 1;
        }
        map
    }

    /// Linux: validate_slab().
    fn validate_slab(&self, s: &KmemCache, slab: &Slab) {
        if !self.check_slab(s, slab) || !self.on_freelist(s, slab, ptr::null_mut()) {
            return;
        }
        // Now we know that a valid freelist exists.
        let map = self.fill_map(self.object_map.lock(), s, slab);
        let addr = self.slab_address(slab);
        for p in self.objects_of(s, slab) {
            let i = self.obj_to_index(s, addr, p);
            let val = if map[i / 64] & (1 << (i % 64)) != 0 {
                SLUB_RED_INACTIVE
            } else {
                SLUB_RED_ACTIVE
            };
            if !self.check_object(s, slab, p, val) {
                break;
            }
        }
    }

    /// Linux: validate_slab_node().
    fn validate_slab_node(&self, s: &KmemCache, n: &KmemCacheNode) -> u64 {
        let mut count = 0u64;
        let mut l = n.list_lock.lock();
        let head: *mut ListHead = &mut l.partial;
        for_each_slab_safe(head, |slab| {
            // SAFETY: a slab on the list, under its lock.
            self.validate_slab(s, unsafe { &*slab });
            count += 1;
        });
        if count != n.nr_partial() {
            pr_err!(
                "SLUB {}: {} partial slabs counted but counter={}",
                s.name,
                count,
                n.nr_partial()
            );
            self.slab_add_kunit_errors();
        }
        if s.flags & SLAB_STORE_USER != 0 {
            let head: *mut ListHead = &mut l.full;
            for_each_slab_safe(head, |slab| {
                // SAFETY: a slab on the list, under its lock.
                self.validate_slab(s, unsafe { &*slab });
                count += 1;
            });
            if count as i64 != n.node_nr_slabs() {
                pr_err!(
                    "SLUB: {} {} slabs counted but counter={}",
                    s.name,
                    count,
                    n.node_nr_slabs()
                );
                self.slab_add_kunit_errors();
            }
        }
        count
    }

    /// Linux: validate_slab_cache() — check every slab on the node lists; returns how many.
    pub fn validate_slab_cache(&self, s: &KmemCache) -> u64 {
        self.flush_all(s);
        s.nodes().map(|(_, n)| self.validate_slab_node(s, n)).sum()
    }
}

#[cfg(test)]
mod tests;
