//! kmemleak's objects and its scan, over memory the caller gives (Linux 6.1 mm/kmemleak.c:
//! `struct kmemleak_object`, the object search tree, create_object(), delete_object_full(),
//! delete_object_part(), make_gray_object()/make_black_object(), update_refs(),
//! scan_block(), scan_object(), scan_gray_list(), update_checksum() and kmemleak_scan()'s
//! colouring, checksum pass and reporting). The kernel's instance lives in `kmemleak.rs`;
//! the host tests build their own over host buffers.

use crate::kernel::stackdepot::DepotStackHandle;

/// Linux: OBJECT_ALLOCATED — the block is in use.
pub const OBJECT_ALLOCATED: u16 = 1 << 0;
/// Linux: OBJECT_REPORTED — reported as a leak (once).
pub const OBJECT_REPORTED: u16 = 1 << 1;
/// Linux: OBJECT_NO_SCAN — references to it count, its contents are not read.
pub const OBJECT_NO_SCAN: u16 = 1 << 2;

const NONE: u32 = u32::MAX;

/// Linux: struct kmemleak_object (the lock, RCU head and list heads are the table's).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct KmemleakObject {
    /// Linux: pointer — the block's start (physical for a phys object).
    pub pointer: u64,
    /// Linux: size.
    pub size: u64,
    /// Linux: jiffies — here the generic timer's time of the allocation, in ns.
    pub jiffies: u64,
    /// Linux: checksum — crc32 of the contents at the previous scan.
    pub checksum: u32,
    /// The allocation's stack in the depot (Linux 6.1: trace[MAX_TRACE]).
    pub trace: DepotStackHandle,
    /// Linux: min_count — references needed to be in use (0 never reported, -1 ignored).
    pub min_count: i32,
    /// Linux: count — references found by this scan (-1: none yet, a new object).
    pub count: i32,
    /// Linux: flags (OBJECT_*).
    pub flags: u16,
    /// The CPU that allocated it (its idle task is the owner: `swapper/N`).
    pub cpu: u16,
    /// Linux: area_list — here one scan area, `[area, end)` (0: scan it all).
    pub area: u64,
    /// Linux: gray_list — the next gray object's index.
    gray_next: u32,
}

impl KmemleakObject {
    /// Linux: create_object()'s initial state: allocated, no colour yet.
    pub fn new(pointer: u64, size: u64, min_count: i32, now: u64, cpu: u16, trace: u32) -> Self {
        Self {
            pointer,
            size,
            jiffies: now,
            checksum: 0,
            trace,
            min_count,
            count: -1,
            flags: OBJECT_ALLOCATED,
            cpu,
            area: 0,
            gray_next: NONE,
        }
    }

    /// Linux: color_white() — an orphan: not enough references.
    pub fn color_white(&self) -> bool {
        self.count != -1 && self.count < self.min_count
    }

    /// Linux: color_gray() — not an orphan (or never reported: min_count 0).
    pub fn color_gray(&self) -> bool {
        self.min_count != -1 && self.count >= self.min_count
    }

    /// Linux: unreferenced_object() — white, allocated and at least `min_age` ns old.
    pub fn unreferenced(&self, now: u64, min_age: u64) -> bool {
        self.flags & OBJECT_ALLOCATED != 0
            && self.color_white()
            && now.saturating_sub(self.jiffies) >= min_age
    }

    fn end(&self) -> u64 {
        self.pointer + self.size
    }
}

/// What a scan found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanResult {
    /// Objects (virtual ones) in the table.
    pub scanned: usize,
    /// Objects found referenced (gray).
    pub referenced: usize,
    /// Objects unreferenced and old enough, reported or not.
    pub unreferenced: usize,
    /// Of those, newly reported by this scan.
    pub new_leaks: usize,
}

/// A table of objects sorted by address (Linux: the object rbtree).
#[derive(Clone, Copy)]
struct Table {
    objs: *mut KmemleakObject,
    nr: usize,
    cap: usize,
}

impl Table {
    fn as_slice(&self) -> &[KmemleakObject] {
        // SAFETY: `objs` holds `nr` initialised objects of `cap` slots (Kmemleak::from_raw).
        unsafe { core::slice::from_raw_parts(self.objs, self.nr) }
    }

    fn as_mut_slice(&mut self) -> &mut [KmemleakObject] {
        // SAFETY: as in as_slice(), and we are borrowed mutably.
        unsafe { core::slice::from_raw_parts_mut(self.objs, self.nr) }
    }

    /// Linux: __lookup_object() — the object holding `ptr` (with `alias`: anywhere in it,
    /// else only at its start).
    fn lookup(&self, ptr: u64, alias: bool) -> Option<usize> {
        let s = self.as_slice();
        let i = s.partition_point(|o| o.pointer <= ptr).checked_sub(1)?;
        let o = &s[i];
        if o.pointer == ptr || (alias && ptr < o.end()) {
            Some(i)
        } else {
            None
        }
    }

    /// Inserts `o`; Err(index of the object it overlaps) or Err(None) when full.
    fn insert(&mut self, o: KmemleakObject) -> Result<(), Option<usize>> {
        let s = self.as_slice();
        let i = s.partition_point(|x| x.pointer < o.pointer);
        if i > 0 && s[i - 1].end() > o.pointer {
            return Err(Some(i - 1));
        }
        if i < s.len() && (s[i].pointer < o.end() || s[i].pointer == o.pointer) {
            return Err(Some(i));
        }
        if self.nr == self.cap {
            return Err(None);
        }
        // SAFETY: slots i..nr move up one within the `cap` slots (nr < cap); slot i is then
        // written.
        unsafe {
            core::ptr::copy(self.objs.add(i), self.objs.add(i + 1), self.nr - i);
            self.objs.add(i).write(o);
        }
        self.nr += 1;
        Ok(())
    }

    fn remove(&mut self, i: usize) -> KmemleakObject {
        let o = self.as_slice()[i];
        // SAFETY: slots i+1..nr move down one, within the table.
        unsafe { core::ptr::copy(self.objs.add(i + 1), self.objs.add(i), self.nr - i - 1) };
        self.nr -= 1;
        o
    }
}

/// One kmemleak: the objects (virtual, the targets of the pointer search) and the phys
/// objects (memblock's: scanned only), with the address bounds of the targets.
pub struct Kmemleak {
    objects: Table,
    phys: Table,
    /// Linux: min_addr / max_addr — the bounds of every object ever tracked.
    min_addr: u64,
    max_addr: u64,
    /// A failure (the pool ran out, an overlap) turned tracking off.
    disabled: bool,
    gray_head: u32,
    gray_tail: u32,
}

// SAFETY: the table memory is owned by the instance and used under the kernel's lock.
unsafe impl Send for Kmemleak {}

impl Kmemleak {
    /// Bytes of a pool for `nr` objects and `nr_phys` phys objects.
    pub const fn pool_bytes(nr: usize, nr_phys: usize) -> usize {
        (nr + nr_phys) * core::mem::size_of::<KmemleakObject>()
    }

    /// An empty kmemleak over a pool at `p` (Linux: mem_pool).
    ///
    /// # Safety
    /// `p` is writable memory of `pool_bytes(nr, nr_phys)` bytes, 8-byte aligned, owned by
    /// the instance for its life.
    pub unsafe fn from_raw(p: *mut u8, nr: usize, nr_phys: usize) -> Self {
        let objs = p as *mut KmemleakObject;
        Self {
            objects: Table {
                objs,
                nr: 0,
                cap: nr,
            },
            phys: Table {
                // SAFETY: the phys slots follow the `nr` object slots in the pool.
                objs: unsafe { objs.add(nr) },
                nr: 0,
                cap: nr_phys,
            },
            min_addr: u64::MAX,
            max_addr: 0,
            disabled: false,
            gray_head: NONE,
            gray_tail: NONE,
        }
    }

    /// Did a failure turn tracking off?
    pub fn disabled(&self) -> bool {
        self.disabled
    }

    /// The tracked (virtual) objects, by address.
    pub fn objects(&self) -> &[KmemleakObject] {
        self.objects.as_slice()
    }

    /// The phys objects, by address.
    pub fn phys_objects(&self) -> &[KmemleakObject] {
        self.phys.as_slice()
    }

    /// The object starting at `ptr`.
    pub fn find(&self, ptr: u64) -> Option<&KmemleakObject> {
        self.objects
            .lookup(ptr, false)
            .map(|i| &self.objects.as_slice()[i])
    }

    fn insert_failed(&mut self, e: Option<usize>, t: &Table, o: &KmemleakObject) {
        match e {
            None => pr_warn!("kmemleak: Cannot allocate a kmemleak_object structure"),
            Some(i) => {
                let x = &t.as_slice()[i];
                pr_warn!(
                    "kmemleak: Cannot insert 0x{:x} into the object search tree (overlaps existing)",
                    o.pointer
                );
                pr_notice!("kmemleak: Object 0x{:08x} (size {}):", x.pointer, x.size);
                pr_notice!("  min_count = {}", x.min_count);
                pr_notice!("  count = {}", x.count);
            }
        }
        self.disabled = true;
    }

    /// Linux: create_object().
    pub fn create_object(&mut self, o: KmemleakObject) {
        if let Err(e) = self.objects.insert(o) {
            let t = self.objects;
            self.insert_failed(e, &t, &o);
            return;
        }
        self.min_addr = self.min_addr.min(o.pointer);
        self.max_addr = self.max_addr.max(o.end());
    }

    /// Linux: create_object_phys().
    pub fn create_object_phys(&mut self, o: KmemleakObject) {
        if let Err(e) = self.phys.insert(o) {
            let t = self.phys;
            self.insert_failed(e, &t, &o);
        }
    }

    /// Linux: delete_object_full() — the object starting at `ptr` is gone (an unknown one
    /// is ignored, as Linux does without DEBUG).
    pub fn delete_object_full(&mut self, ptr: u64) {
        if let Some(i) = self.objects.lookup(ptr, false) {
            self.objects.remove(i);
        }
    }

    /// Linux: delete_object_part() on the phys objects — `[phys, phys + size)` of one is
    /// gone; what is left of it on either side stays tracked.
    pub fn delete_object_part_phys(&mut self, phys: u64, size: u64) {
        let Some(i) = self.phys.lookup(phys, true) else {
            return;
        };
        let o = self.phys.remove(i);
        let end = phys + size;
        if o.pointer < phys {
            self.create_object_phys(KmemleakObject {
                size: phys - o.pointer,
                ..o
            });
        }
        if end < o.end() {
            self.create_object_phys(KmemleakObject {
                pointer: end,
                size: o.end() - end,
                ..o
            });
        }
    }

    /// Linux: paint_ptr() — make_gray_object() (`min_count` 0: never reported, always
    /// scanned) and make_black_object() (-1: neither); `phys`: one of the phys objects
    /// (Linux's `is_phys`, as kmemleak_ignore_phys() asks).
    pub fn paint_ptr(&mut self, ptr: u64, min_count: i32, phys: bool) {
        let t = if phys {
            &mut self.phys
        } else {
            &mut self.objects
        };
        match t.lookup(ptr, false) {
            Some(i) => t.as_mut_slice()[i].min_count = min_count,
            None => pr_warn!(
                "kmemleak: Trying to color unknown object at 0x{:08x} as {}",
                ptr,
                if min_count == 0 { "Grey" } else { "Black" }
            ),
        }
    }

    /// Linux: add_scan_area() with `size` SIZE_MAX, as vmalloc's alloc_vmap_area() asks
    /// it (`kmemleak_scan_area(&va->rb_node, SIZE_MAX, gfp)`): only `[ptr, end)` of the
    /// object holding `ptr` is scanned.
    pub fn add_scan_area(&mut self, ptr: u64) {
        match self.objects.lookup(ptr, true) {
            Some(i) => self.objects.as_mut_slice()[i].area = ptr,
            None => pr_warn!(
                "kmemleak: Adding scan area to unknown object at 0x{:08x}",
                ptr
            ),
        }
    }

    /// Linux: OBJECT_NO_SCAN (kmemleak_no_scan()).
    pub fn set_no_scan(&mut self, ptr: u64) {
        if let Some(i) = self.objects.lookup(ptr, false) {
            self.objects.as_mut_slice()[i].flags |= OBJECT_NO_SCAN;
        }
    }

    fn gray_push(&mut self, i: usize) {
        self.objects.as_mut_slice()[i].gray_next = NONE;
        if self.gray_tail == NONE {
            self.gray_head = i as u32;
        } else {
            self.objects.as_mut_slice()[self.gray_tail as usize].gray_next = i as u32;
        }
        self.gray_tail = i as u32;
    }

    /// Linux: update_refs() — one more reference to object `i`; gray once it has enough.
    fn update_refs(&mut self, i: usize) {
        let o = &mut self.objects.as_mut_slice()[i];
        if !o.color_white() {
            return;
        }
        o.count += 1;
        if o.color_gray() {
            self.gray_push(i);
        }
    }

    /// Linux: scan_block() — every aligned word of `[start, end)` that points into an
    /// object (but `scanned`, the block's own) is a reference to it.
    ///
    /// # Safety
    /// `[start, end)` is mapped and readable.
    unsafe fn scan_block(&mut self, start: u64, end: u64, scanned: Option<usize>) {
        let mut p = start.next_multiple_of(8);
        while p + 8 <= end {
            // SAFETY: the caller's; volatile: others may write the word meanwhile.
            let v = unsafe { core::ptr::read_volatile(p as *const u64) };
            p += 8;
            if v < self.min_addr || v >= self.max_addr {
                continue;
            }
            let Some(i) = self.objects.lookup(v, true) else {
                continue;
            };
            if Some(i) == scanned {
                continue;
            }
            self.update_refs(i);
        }
    }

    /// Linux: scan_gray_list() — scan each gray object, those it makes gray included.
    ///
    /// # Safety
    /// The objects' blocks are mapped.
    unsafe fn scan_gray_list(&mut self) {
        while self.gray_head != NONE {
            let i = self.gray_head as usize;
            let o = self.objects.as_slice()[i];
            self.gray_head = o.gray_next;
            if self.gray_head == NONE {
                self.gray_tail = NONE;
            }
            if o.flags & OBJECT_NO_SCAN == 0 && o.flags & OBJECT_ALLOCATED != 0 {
                let start = if o.area != 0 { o.area } else { o.pointer };
                // SAFETY: the caller's.
                unsafe { self.scan_block(start, o.end(), Some(i)) };
            }
        }
    }

    /// Linux: kmemleak_scan() — colour every object white (or gray for min_count 0),
    /// scan the roots, the phys objects (through `phys_to_virt`) and the gray list, give
    /// white objects whose contents changed since the previous scan one more round as gray
    /// (update_checksum()), then mark the unreferenced objects at least `min_age` ns old
    /// reported.
    ///
    /// # Safety
    /// The roots, the objects' blocks and the phys objects' linear-map addresses are
    /// mapped and readable; nobody frees an object meanwhile.
    pub unsafe fn scan(
        &mut self,
        roots: &[(u64, u64)],
        phys_to_virt: fn(u64) -> u64,
        now: u64,
        min_age: u64,
    ) -> ScanResult {
        self.gray_head = NONE;
        self.gray_tail = NONE;
        for i in 0..self.objects.nr {
            let o = &mut self.objects.as_mut_slice()[i];
            o.count = 0;
            if o.color_gray() {
                self.gray_push(i);
            }
        }
        // SAFETY (all below): the caller's.
        for &(s, e) in roots {
            unsafe { self.scan_block(s, e, None) };
        }
        for j in 0..self.phys.nr {
            let o = self.phys.as_slice()[j];
            // Black (kmemleak_ignore_phys()): holds no pointers kmemleak may read.
            if o.min_count == -1 {
                continue;
            }
            let va = phys_to_virt(o.pointer);
            unsafe { self.scan_block(va, va + o.size, None) };
        }
        unsafe { self.scan_gray_list() };
        // Check for new or unreferenced objects modified since the previous scan.
        for i in 0..self.objects.nr {
            let o = &mut self.objects.as_mut_slice()[i];
            if o.color_white() && o.flags & OBJECT_ALLOCATED != 0 {
                let old = o.checksum;
                // SAFETY: a live block.
                o.checksum = unsafe { crc32(o.pointer, o.size) };
                if o.checksum != old {
                    o.count = o.min_count;
                    self.gray_push(i);
                }
            }
        }
        unsafe { self.scan_gray_list() };
        let mut r = ScanResult {
            scanned: self.objects.nr,
            ..ScanResult::default()
        };
        for o in self.objects.as_mut_slice() {
            if o.color_gray() {
                r.referenced += 1;
            }
            if o.unreferenced(now, min_age) {
                r.unreferenced += 1;
                if o.flags & OBJECT_REPORTED == 0 {
                    o.flags |= OBJECT_REPORTED;
                    r.new_leaks += 1;
                }
            }
        }
        r
    }

    /// Linux: kmemleak_seq_show()'s filter — each reported object still unreferenced.
    pub fn for_each_reported(&self, now: u64, min_age: u64, f: &mut dyn FnMut(&KmemleakObject)) {
        for o in self.objects.as_slice() {
            if o.flags & OBJECT_REPORTED != 0 && o.unreferenced(now, min_age) {
                f(o);
            }
        }
    }
}

/// crc32_le's table (polynomial 0xedb88320).
const CRC32_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// Linux: crc32(0, p, len) as update_checksum() takes it (crc32_le, seed 0, no
/// inversion: all-zero contents sum to 0).
///
/// # Safety
/// `[p, p + len)` is readable.
pub unsafe fn crc32(p: u64, len: u64) -> u32 {
    let mut c = 0u32;
    for i in 0..len {
        // SAFETY: the caller's; volatile: others may write meanwhile.
        let b = unsafe { core::ptr::read_volatile((p + i) as *const u8) };
        c = CRC32_TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    c
}
