//! The stack depot: a deduplicating store of stack traces, each saved once and named by a
//! 32-bit handle. Mirrors Linux 6.1's lib/stackdepot.c: `stack_depot_want_early_init`,
//! `stack_depot_early_init` (the hash table from memblock through
//! `alloc_large_system_hash("stackdepot", ..)`), `__stack_depot_save` with its lock-free
//! lookup and locked insert, the `jhash2` hash with `STACK_HASH_SEED`, records carved from
//! 16 KiB slabs (`STACK_ALLOC_ORDER` 2), handles that encode slab index, offset and a valid
//! bit, `stack_depot_fetch`, `stack_depot_print` and `stack_depot_snprint`.
//!
//! It lives in `kernel/` (Linux's lib/ has no layer of its own here): the mm code above saves
//! stacks into it, and it asks nothing of mm — the caller hands it its memory.
//!
//! ## What is different from Linux, and why
//! Linux allocates a new slab from the page allocator when the current one fills (with a
//! page preallocated outside the lock, since a caller may hold allocator locks). Here the
//! slabs are a fixed pool taken from memblock with the hash table at early init
//! ([`STACK_DEPOT_POOL_SLABS`] of them): the depot's users (page_owner) save stacks from
//! inside the page allocator, where a nested allocation would recurse. When the pool is
//! full the depot stores nothing more and says so once, as Linux does when it reaches
//! `STACK_ALLOC_MAX_SLABS` (`Stack depot reached limit capacity`).
//! A bucket is a 4-byte handle (Linux: an 8-byte pointer), so the `stackdepot hash table
//! entries:` line shows Linux's entry count with half its bytes.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

/// Linux: depot_stack_handle_t — 0 is "no stack".
pub type DepotStackHandle = u32;

/// Linux: STACK_ALLOC_ORDER — a slab is 4 pages.
pub const STACK_ALLOC_ORDER: u32 = 2;
/// Linux: STACK_ALLOC_SIZE.
pub const STACK_ALLOC_SIZE: usize = 1 << (12 + STACK_ALLOC_ORDER);
/// Linux: STACK_ALLOC_ALIGN — records start at 16-byte boundaries.
const STACK_ALLOC_ALIGN: u32 = 4;
/// Linux: STACK_ALLOC_OFFSET_BITS.
const STACK_ALLOC_OFFSET_BITS: u32 = STACK_ALLOC_ORDER + 12 - STACK_ALLOC_ALIGN;
/// Linux: STACK_DEPOT_EXTRA_BITS.
const STACK_DEPOT_EXTRA_BITS: u32 = 5;
/// Linux: STACK_ALLOC_INDEX_BITS.
const STACK_ALLOC_INDEX_BITS: u32 = 32 - 1 - STACK_ALLOC_OFFSET_BITS - STACK_DEPOT_EXTRA_BITS;
/// Linux: STACK_HASH_SEED.
const STACK_HASH_SEED: u32 = 0x9747_b28c;
/// Linux: STACK_HASH_SCALE — one bucket per 16 KiB of kernel memory.
const STACK_HASH_SCALE: u32 = 14;
/// Linux: STACK_HASH_ORDER_MIN / _MAX — 4 Ki to 1 Mi buckets.
const STACK_HASH_ORDER_MIN: u32 = 12;
const STACK_HASH_ORDER_MAX: u32 = 20;
/// The slabs reserved at early init (1 MiB): room for about 7,000 stacks of 16 frames.
pub const STACK_DEPOT_POOL_SLABS: usize = 64;
/// A record's header before its entries: next handle, hash, size, padding.
const RECORD_HEADER: usize = 16;

/// Linux: jhash2() (include/linux/jhash.h, Bob Jenkins' lookup3 over 32-bit words).
pub fn jhash2(k: &[u32], initval: u32) -> u32 {
    #[inline(always)]
    fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
        *a = a.wrapping_sub(*c);
        *a ^= c.rotate_left(4);
        *c = c.wrapping_add(*b);
        *b = b.wrapping_sub(*a);
        *b ^= a.rotate_left(6);
        *a = a.wrapping_add(*c);
        *c = c.wrapping_sub(*b);
        *c ^= b.rotate_left(8);
        *b = b.wrapping_add(*a);
        *a = a.wrapping_sub(*c);
        *a ^= c.rotate_left(16);
        *c = c.wrapping_add(*b);
        *b = b.wrapping_sub(*a);
        *b ^= a.rotate_left(19);
        *a = a.wrapping_add(*c);
        *c = c.wrapping_sub(*b);
        *c ^= b.rotate_left(4);
        *b = b.wrapping_add(*a);
    }
    fn final_(a: &mut u32, b: &mut u32, c: &mut u32) {
        *c ^= *b;
        *c = c.wrapping_sub(b.rotate_left(14));
        *a ^= *c;
        *a = a.wrapping_sub(c.rotate_left(11));
        *b ^= *a;
        *b = b.wrapping_sub(a.rotate_left(25));
        *c ^= *b;
        *c = c.wrapping_sub(b.rotate_left(16));
        *a ^= *c;
        *a = a.wrapping_sub(c.rotate_left(4));
        *b ^= *a;
        *b = b.wrapping_sub(a.rotate_left(14));
        *c ^= *b;
        *c = c.wrapping_sub(b.rotate_left(24));
    }
    let init = 0xdead_beefu32
        .wrapping_add((k.len() as u32) << 2)
        .wrapping_add(initval);
    let (mut a, mut b, mut c) = (init, init, init);
    let mut k = k;
    while k.len() > 3 {
        a = a.wrapping_add(k[0]);
        b = b.wrapping_add(k[1]);
        c = c.wrapping_add(k[2]);
        mix(&mut a, &mut b, &mut c);
        k = &k[3..];
    }
    if k.is_empty() {
        return c;
    }
    if k.len() == 3 {
        c = c.wrapping_add(k[2]);
    }
    if k.len() >= 2 {
        b = b.wrapping_add(k[1]);
    }
    a = a.wrapping_add(k[0]);
    final_(&mut a, &mut b, &mut c);
    c
}

/// Linux: hash_stack() — jhash2 over the entries as 32-bit words.
pub fn hash_stack(entries: &[u64]) -> u32 {
    let mut words = [0u32; 2 * 64];
    let n = entries.len().min(64);
    for (i, e) in entries[..n].iter().enumerate() {
        words[2 * i] = *e as u32;
        words[2 * i + 1] = (*e >> 32) as u32;
    }
    jhash2(&words[..2 * n], STACK_HASH_SEED)
}

/// Linux: union handle_parts — slab index, offset in 16-byte units, the valid bit.
const fn make_handle(slab: usize, offset: usize) -> DepotStackHandle {
    (slab as u32)
        | ((offset >> STACK_ALLOC_ALIGN) as u32) << STACK_ALLOC_INDEX_BITS
        | 1 << (STACK_ALLOC_INDEX_BITS + STACK_ALLOC_OFFSET_BITS)
}

const fn handle_parts(h: DepotStackHandle) -> (usize, usize) {
    let slab = h & ((1 << STACK_ALLOC_INDEX_BITS) - 1);
    let off = (h >> STACK_ALLOC_INDEX_BITS) & ((1 << STACK_ALLOC_OFFSET_BITS) - 1);
    (slab as usize, (off as usize) << STACK_ALLOC_ALIGN)
}

/// Linux: the next free record in the current slab (`depot_index`, `depot_offset`).
struct Cursor {
    slab: usize,
    offset: usize,
}

/// A stack depot over caller-given memory: a hash table of bucket heads (handles) and a pool
/// of slabs. Lookups are lock-free (a record is written before the handle that names it is
/// published with a release store); inserts take `depot_lock`, as in Linux.
pub struct StackDepot {
    table: *const AtomicU32,
    mask: u32,
    pool: *mut u8,
    nr_slabs: usize,
    depot_lock: spin::Mutex<Cursor>,
    full_warned: AtomicBool,
    stacks: AtomicU32,
    /// Pool bytes handed out (slab * STACK_ALLOC_SIZE + offset), published after each
    /// record: a handle at or past it names nothing.
    used: AtomicUsize,
}

// SAFETY: the table is atomics; pool bytes are written only under depot_lock, before the
// record is published, and read only after (Release/Acquire on the bucket heads).
unsafe impl Sync for StackDepot {}
// SAFETY: as above.
unsafe impl Send for StackDepot {}

impl StackDepot {
    /// A depot over `buckets` (a power of two) zeroed u32 bucket heads at `table` and
    /// `nr_slabs` slabs of [`STACK_ALLOC_SIZE`] bytes at `pool`.
    ///
    /// # Safety
    /// `table` is `buckets` zeroed, 4-byte aligned u32s and `pool` is `nr_slabs *
    /// STACK_ALLOC_SIZE` bytes, 16-byte aligned, both valid and used by nothing else for as
    /// long as the depot lives.
    pub unsafe fn new(table: *mut u32, buckets: usize, pool: *mut u8, nr_slabs: usize) -> Self {
        assert!(
            buckets.is_power_of_two(),
            "stack depot: buckets not a power of two"
        );
        assert!(nr_slabs < 1 << STACK_ALLOC_INDEX_BITS);
        Self {
            table: table as *const AtomicU32,
            mask: buckets as u32 - 1,
            pool,
            nr_slabs,
            depot_lock: spin::Mutex::new(Cursor { slab: 0, offset: 0 }),
            full_warned: AtomicBool::new(false),
            stacks: AtomicU32::new(0),
            used: AtomicUsize::new(0),
        }
    }

    fn bucket(&self, hash: u32) -> &AtomicU32 {
        // SAFETY: `hash & mask` < buckets (new's contract: the table has `buckets` entries).
        unsafe { &*self.table.add((hash & self.mask) as usize) }
    }

    fn record(&self, h: DepotStackHandle) -> Option<*mut u32> {
        let (slab, off) = handle_parts(h);
        if h == 0 || slab >= self.nr_slabs || off + RECORD_HEADER > STACK_ALLOC_SIZE {
            return None;
        }
        // SAFETY: inside the pool (checked above); records are 16-byte aligned.
        Some(unsafe { self.pool.add(slab * STACK_ALLOC_SIZE + off) } as *mut u32)
    }

    /// Linux: find_stack() — a record in the bucket chain from `head` with these entries.
    fn find_stack(&self, mut h: DepotStackHandle, hash: u32, entries: &[u64]) -> Option<u32> {
        while let Some(r) = self.record(h) {
            // SAFETY: a published record: written before its handle was released.
            let (next, rhash) = unsafe { (*r, *r.add(1)) };
            if rhash == hash && self.entries_of(r) == entries {
                return Some(h);
            }
            h = next;
        }
        None
    }

    fn entries_of(&self, r: *mut u32) -> &[u64] {
        // SAFETY: a published record: its size and entries were written before publication
        // and never change; the entries follow the 16-byte header in the same slab.
        unsafe {
            let size = *r.add(2) as usize;
            core::slice::from_raw_parts((r as *const u8).add(RECORD_HEADER) as *const u64, size)
        }
    }

    /// Linux: __stack_depot_save() — the handle of `entries`, stored if new; 0 for an empty
    /// trace or a full pool.
    pub fn save(&self, entries: &[u64]) -> DepotStackHandle {
        if entries.is_empty() {
            return 0;
        }
        let hash = hash_stack(entries);
        let bucket = self.bucket(hash);
        // Fast path: look the stack up without the lock.
        if let Some(h) = self.find_stack(bucket.load(Ordering::Acquire), hash, entries) {
            return h;
        }
        let mut cur = self.depot_lock.lock();
        let head = bucket.load(Ordering::Acquire);
        if let Some(h) = self.find_stack(head, hash, entries) {
            return h;
        }
        // Linux: depot_alloc_stack().
        let size = RECORD_HEADER + entries.len() * 8;
        let size = (size + (1 << STACK_ALLOC_ALIGN) - 1) & !((1 << STACK_ALLOC_ALIGN) - 1);
        if cur.offset + size > STACK_ALLOC_SIZE {
            cur.slab += 1;
            cur.offset = 0;
        }
        if cur.slab >= self.nr_slabs || size > STACK_ALLOC_SIZE {
            if !self.full_warned.swap(true, Ordering::Relaxed) {
                pr_warn!("Stack depot reached limit capacity");
            }
            return 0;
        }
        let h = make_handle(cur.slab, cur.offset);
        let r = self.record(h).expect("a handle made from the cursor");
        // SAFETY: the cursor's space in the pool is nobody's yet (we hold depot_lock and
        // the record is unpublished); 16-byte aligned.
        unsafe {
            *r = head;
            *r.add(1) = hash;
            *r.add(2) = entries.len() as u32;
            *r.add(3) = 0;
            let e = (r as *mut u8).add(RECORD_HEADER) as *mut u64;
            core::ptr::copy_nonoverlapping(entries.as_ptr(), e, entries.len());
        }
        cur.offset += size;
        self.used
            .store(cur.slab * STACK_ALLOC_SIZE + cur.offset, Ordering::Release);
        bucket.store(h, Ordering::Release);
        self.stacks.fetch_add(1, Ordering::Relaxed);
        h
    }

    /// Linux: stack_depot_fetch() — the entries a handle names (empty for 0 or a bad one).
    pub fn fetch(&self, h: DepotStackHandle) -> &[u64] {
        let Some(r) = self.record(h) else {
            return &[];
        };
        // A handle past what was handed out names no record (a corrupted handle): nothing.
        // No lock: the fault report reads stacks too.
        let (slab, off) = handle_parts(h);
        if slab * STACK_ALLOC_SIZE + off >= self.used.load(Ordering::Acquire) {
            return &[];
        }
        self.entries_of(r)
    }

    /// How many distinct stacks are stored.
    pub fn nr_stacks(&self) -> u32 {
        self.stacks.load(Ordering::Relaxed)
    }

    /// Bytes of the pool used so far.
    pub fn pool_used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// Linux: stack_trace_snprint()'s line for one entry: `%*c%pS` — a space, then
/// `name+0xoff/0xsize` (or the bare address without a symbol table).
pub fn print_entry(pc: u64, out: &mut dyn FnMut(core::fmt::Arguments)) {
    match crate::kernel::kallsyms::lookup(pc) {
        Some(sym) => out(format_args!(" {}", sym)),
        None => out(format_args!(" 0x{:016x}", pc)),
    }
}

// ---------------------------------------------------------------------------------------------
// The kernel's depot.

static WANT_EARLY_INIT: AtomicBool = AtomicBool::new(false);
static EARLY_INIT_PASSED: AtomicBool = AtomicBool::new(false);
static STACK_DEPOT: spin::Once<StackDepot> = spin::Once::new();

/// Linux: stack_depot_want_early_init() — a user (page_owner=on) asks for the depot at
/// mm_init(), from an early parameter.
pub fn stack_depot_want_early_init() {
    WANT_EARLY_INIT.store(true, Ordering::Relaxed);
}

/// Linux: alloc_large_system_hash()'s size for the depot: `nr_kernel_pages` scaled by
/// STACK_HASH_SCALE, a power of two within [2^12, 2^20] buckets.
pub fn stack_hash_entries(nr_kernel_pages: u64) -> u64 {
    // Linux: round up to 1 MiB worth of pages, then scale.
    let pages = nr_kernel_pages.div_ceil(256) * 256;
    let n = pages >> (STACK_HASH_SCALE - 12);
    n.max(1)
        .next_power_of_two()
        .clamp(1 << STACK_HASH_ORDER_MIN, 1 << STACK_HASH_ORDER_MAX)
}

/// Linux: stack_depot_early_init() — if a user asked, the hash table (and here the pool)
/// from `alloc` (memblock: `(size, align) -> address`), with alloc_large_system_hash()'s
/// line. Called once, from mm_init() before mem_init().
pub fn stack_depot_early_init(nr_kernel_pages: u64, alloc: &mut dyn FnMut(u64, u64) -> *mut u8) {
    if EARLY_INIT_PASSED.swap(true, Ordering::Relaxed) || !WANT_EARLY_INIT.load(Ordering::Relaxed) {
        return;
    }
    let entries = stack_hash_entries(nr_kernel_pages);
    let size = entries * 4;
    let table = alloc(size, 64);
    let pool = alloc((STACK_DEPOT_POOL_SLABS * STACK_ALLOC_SIZE) as u64, 4096);
    if table.is_null() || pool.is_null() {
        pr_err!("Stack Depot hash table allocation failed, disabling");
        return;
    }
    pr_info!(
        "stackdepot hash table entries: {} (order: {}, {} bytes, linear)",
        entries,
        (63 - size.leading_zeros()).saturating_sub(12),
        size
    );
    // SAFETY: `alloc` returned fresh memory of these sizes (memblock, zeroed below); it is
    // the depot's for the kernel's lifetime.
    STACK_DEPOT.call_once(|| unsafe {
        core::ptr::write_bytes(table, 0, size as usize);
        StackDepot::new(
            table as *mut u32,
            entries as usize,
            pool,
            STACK_DEPOT_POOL_SLABS,
        )
    });
}

/// The kernel's depot, once stack_depot_early_init() made it.
pub fn stack_depot() -> Option<&'static StackDepot> {
    STACK_DEPOT.get()
}

/// Linux: stack_depot_save() on the kernel's depot (0 without one).
pub fn stack_depot_save(entries: &[u64]) -> DepotStackHandle {
    STACK_DEPOT.get().map_or(0, |d| d.save(entries))
}

/// Linux: stack_depot_snprint() — each entry of the stack as its own line.
pub fn stack_depot_snprint(h: DepotStackHandle, out: &mut dyn FnMut(core::fmt::Arguments)) {
    if let Some(d) = STACK_DEPOT.get() {
        for &pc in d.fetch(h) {
            print_entry(pc, out);
        }
    }
}

/// Linux: stack_depot_print() — the stack to the log.
pub fn stack_depot_print(h: DepotStackHandle) {
    stack_depot_snprint(h, &mut |a| pr_warn!("{}", a));
}

#[cfg(test)]
mod tests;
