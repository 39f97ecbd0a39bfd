//! Which CPUs are online (Linux: kernel/cpu.c's `__cpu_online_mask` with `set_cpu_online()`,
//! and include/linux/cpumask.h's `cpu_online()`, `num_online_cpus()`). The boot CPU is
//! online from the start; a secondary sets its bit when it has come up and clears it when
//! it stops. The bits are atomics: any CPU may read them at any time.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::include::numa::NR_CPUS;

const WORDS: usize = NR_CPUS.div_ceil(64);

/// Linux: __cpu_online_mask — CPU 0 (the boot CPU) set.
static CPU_ONLINE_MASK: [AtomicU64; WORDS] = {
    let mut m = [const { AtomicU64::new(0) }; WORDS];
    m[0] = AtomicU64::new(1);
    m
};

/// Linux: set_cpu_online(). Release: what the CPU wrote before coming online is visible
/// to whoever sees the bit (with an Acquire read).
pub fn set_cpu_online(cpu: usize, online: bool) {
    if cpu >= NR_CPUS {
        return;
    }
    let (w, bit) = (cpu / 64, 1u64 << (cpu % 64));
    if online {
        CPU_ONLINE_MASK[w].fetch_or(bit, Ordering::Release);
    } else {
        CPU_ONLINE_MASK[w].fetch_and(!bit, Ordering::Release);
    }
}

/// Linux: cpu_online().
pub fn cpu_online(cpu: usize) -> bool {
    cpu < NR_CPUS && CPU_ONLINE_MASK[cpu / 64].load(Ordering::Acquire) & (1 << (cpu % 64)) != 0
}

/// Linux: num_online_cpus().
pub fn num_online_cpus() -> usize {
    CPU_ONLINE_MASK
        .iter()
        .map(|w| w.load(Ordering::Acquire).count_ones() as usize)
        .sum()
}

/// Online CPUs, lowest first (Linux: for_each_online_cpu()).
pub fn for_each_online_cpu() -> impl Iterator<Item = usize> {
    (0..NR_CPUS).filter(|&c| cpu_online(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_cpu_online_and_bits_toggle() {
        assert!(cpu_online(0));
        let before = num_online_cpus();
        set_cpu_online(200, true);
        assert!(cpu_online(200));
        assert_eq!(num_online_cpus(), before + 1);
        assert!(for_each_online_cpu().any(|c| c == 200));
        set_cpu_online(200, false);
        assert!(!cpu_online(200));
        assert_eq!(num_online_cpus(), before);
        set_cpu_online(NR_CPUS, true);
        assert!(!cpu_online(NR_CPUS));
    }
}
