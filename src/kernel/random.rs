//! The kernel's random numbers (Linux: drivers/char/random.c — `add_bootloader_randomness`,
//! `get_random_u64`, `get_random_long`), reduced to what memory bring-up needs: a 64-bit
//! pool seeded from the boot loader's `/chosen/rng-seed` (QEMU's virt board writes 32 fresh
//! bytes there each boot; `-seed N` makes them repeat) and from the generic timer, and a
//! splitmix64 output function over it.
//!
//! Linux's CRNG is ChaCha20 and cryptographically strong; this is not: its outputs are
//! good enough to shuffle free lists and slab objects, but an observer of a few outputs
//! could predict the rest. Linux's users here (the page-allocator shuffle, SLUB's freelist
//! order and hardened pointers) only need values the code cannot know in advance.

use core::sync::atomic::{AtomicU64, Ordering};

/// The pool: every seed is folded in; every output advances it.
static POOL: AtomicU64 = AtomicU64::new(0x6a09_e667_f3bc_c908);

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// splitmix64's output function (also SLUB's per-instance generator's).
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Linux: add_bootloader_randomness() / add_device_randomness() — fold `bytes` into the
/// pool (credited or not, Linux's distinction, does not matter here).
pub fn add_randomness(bytes: &[u8]) {
    for chunk in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        let v = u64::from_le_bytes(w);
        let old = POOL.load(Ordering::Relaxed);
        POOL.store(mix(old ^ v).wrapping_add(GOLDEN), Ordering::Relaxed);
    }
}

/// Linux: get_random_u64().
pub fn get_random_u64() -> u64 {
    mix(POOL
        .fetch_add(GOLDEN, Ordering::Relaxed)
        .wrapping_add(GOLDEN))
}

/// Linux: get_random_long().
pub fn get_random_long() -> u64 {
    get_random_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_differ_and_depend_on_the_seed() {
        let a: [u64; 4] = core::array::from_fn(|_| get_random_u64());
        assert!(a.windows(2).all(|w| w[0] != w[1]));
        // Mixing changes the stream (another test may run concurrently and advance the pool,
        // which only helps the inequality).
        let before = POOL.load(Ordering::Relaxed);
        add_randomness(b"0123456789abcdef0123");
        assert_ne!(POOL.load(Ordering::Relaxed), before);
        assert_ne!(mix(1), mix(2));
    }
}
