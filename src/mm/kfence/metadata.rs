//! KFENCE's shared definitions (Linux 6.1: mm/kfence/kfence.h): the canary pattern, the
//! object states, the metadata and its tracks, and the error types the core detects and
//! the report prints.

use core::sync::atomic::AtomicU32;

use crate::mm::slub::KmemCache;

/// Linux: KFENCE_STACK_DEPTH.
pub const KFENCE_STACK_DEPTH: usize = 64;

/// Linux: KFENCE_CANARY_PATTERN(addr) — the canary byte at `addr` (the low address bits
/// make a shifted write show up).
#[inline]
pub const fn kfence_canary_pattern(addr: usize) -> u8 {
    0xaa ^ (addr & 0x7) as u8
}

/// Linux: enum kfence_object_state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KfenceObjectState {
    /// Linux: KFENCE_OBJECT_UNUSED — never allocated.
    Unused,
    /// Linux: KFENCE_OBJECT_ALLOCATED.
    Allocated,
    /// Linux: KFENCE_OBJECT_FREED.
    Freed,
}

/// Linux: struct kfence_track — who allocated or freed an object, when and where.
#[derive(Clone, Copy)]
pub struct KfenceTrack {
    /// Linux: pid (always 0 here: the kernel runs no tasks but swapper).
    pub pid: i32,
    /// Linux: cpu.
    pub cpu: u32,
    /// Linux: ts_nsec (local_clock()).
    pub ts_nsec: u64,
    /// Linux: num_stack_entries.
    pub num_stack_entries: usize,
    /// Linux: stack_entries.
    pub stack_entries: [u64; KFENCE_STACK_DEPTH],
}

impl KfenceTrack {
    const fn new() -> Self {
        Self {
            pid: 0,
            cpu: 0,
            ts_nsec: 0,
            num_stack_entries: 0,
            stack_entries: [0; KFENCE_STACK_DEPTH],
        }
    }

    /// The saved stack.
    pub fn stack(&self) -> &[u64] {
        &self.stack_entries[..self.num_stack_entries]
    }
}

/// Linux: struct kfence_metadata's fields under `meta->lock`.
pub struct KfenceMeta {
    /// Linux: state.
    pub state: KfenceObjectState,
    /// Linux: addr — the object's address (its page's, while unused).
    pub addr: usize,
    /// Linux: size — the object's size.
    pub size: usize,
    /// Linux: cache.
    pub cache: *const KmemCache,
    /// Linux: unprotected_page — a guard page an out-of-bounds access unprotected, to be
    /// protected again when the object is freed.
    pub unprotected_page: usize,
    /// Linux: alloc_track.
    pub alloc_track: KfenceTrack,
    /// Linux: free_track.
    pub free_track: KfenceTrack,
}

/// Linux: struct kfence_metadata — one per object, in an array the caller provides.
pub struct KfenceMetadata {
    /// Linux: lock (a raw spinlock) and the fields it protects.
    pub lock: spin::Mutex<KfenceMeta>,
    /// Linux: list — the next object on the freelist (its index; [`NONE`] at the tail).
    pub(super) next: AtomicU32,
}

// SAFETY: `cache` names a kmem_cache, which outlives its objects; all else is plain data
// under the lock.
unsafe impl Send for KfenceMeta {}

/// No next object.
pub(super) const NONE: u32 = u32::MAX;

impl KfenceMetadata {
    /// Unused metadata (Linux: the zeroed static array).
    pub const fn new() -> Self {
        Self {
            lock: spin::Mutex::new(KfenceMeta {
                state: KfenceObjectState::Unused,
                addr: 0,
                size: 0,
                cache: core::ptr::null(),
                unprotected_page: 0,
                alloc_track: KfenceTrack::new(),
                free_track: KfenceTrack::new(),
            }),
            next: AtomicU32::new(NONE),
        }
    }
}

impl Default for KfenceMetadata {
    fn default() -> Self {
        Self::new()
    }
}

/// Linux: enum kfence_error_type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KfenceErrorType {
    /// Linux: KFENCE_ERROR_OOB — an access to a guard page.
    Oob,
    /// Linux: KFENCE_ERROR_UAF — an access to a freed object.
    Uaf,
    /// Linux: KFENCE_ERROR_CORRUPTION — a canary byte changed.
    Corruption,
    /// Linux: KFENCE_ERROR_INVALID — an access to the pool that is neither.
    Invalid,
    /// Linux: KFENCE_ERROR_INVALID_FREE — a free of no live object's start.
    InvalidFree,
}
