//! A small deterministic random generator for the long randomized host tests (no
//! dependency, the same sequence on every run). Mirrors no Linux file: the kernel's
//! tests use `prandom`; this is xorshift64* (Vigna).

/// xorshift64*: `Rng(seed)` with a non-zero seed.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `[0, n)` (0 for `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}
