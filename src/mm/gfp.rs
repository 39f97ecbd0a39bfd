//! GFP flags: how an allocation may be served. Mirrors Linux 6.1's include/linux/gfp_types.h
//! (no KASAN_HW_TAGS, no LOCKDEP: those bits are 0), `gfp_zone()` and `gfp_migratetype()`
//! from include/linux/gfp.h, and the `%pGg` names (lib/vsprintf.c, include/trace/events/mmflags.h).
//! A leaf: it imports only the constants of `crate::include`.

use core::fmt;

use crate::include::mmzone::{
    page_group_by_mobility_disabled, MIGRATE_UNMOVABLE, ZONE_DMA, ZONE_DMA32, ZONE_MOVABLE,
    ZONE_NORMAL,
};

/// Linux: gfp_t.
pub type GfpT = u32;

/// Linux: __GFP_DMA.
pub const __GFP_DMA: GfpT = 0x01;
/// Linux: __GFP_HIGHMEM.
pub const __GFP_HIGHMEM: GfpT = 0x02;
/// Linux: __GFP_DMA32.
pub const __GFP_DMA32: GfpT = 0x04;
/// Linux: __GFP_MOVABLE.
pub const __GFP_MOVABLE: GfpT = 0x08;
/// Linux: __GFP_RECLAIMABLE.
pub const __GFP_RECLAIMABLE: GfpT = 0x10;
/// Linux: __GFP_HIGH — may use part of the min watermark's reserve.
pub const __GFP_HIGH: GfpT = 0x20;
/// Linux: __GFP_IO.
pub const __GFP_IO: GfpT = 0x40;
/// Linux: __GFP_FS.
pub const __GFP_FS: GfpT = 0x80;
/// Linux: __GFP_ZERO.
pub const __GFP_ZERO: GfpT = 0x100;
/// Linux: __GFP_ATOMIC (6.1; removed in 6.3) — cannot sleep, may dip further (ALLOC_HARDER).
pub const __GFP_ATOMIC: GfpT = 0x200;
/// Linux: __GFP_DIRECT_RECLAIM.
pub const __GFP_DIRECT_RECLAIM: GfpT = 0x400;
/// Linux: __GFP_KSWAPD_RECLAIM.
pub const __GFP_KSWAPD_RECLAIM: GfpT = 0x800;
/// Linux: __GFP_WRITE.
pub const __GFP_WRITE: GfpT = 0x1000;
/// Linux: __GFP_NOWARN.
pub const __GFP_NOWARN: GfpT = 0x2000;
/// Linux: __GFP_RETRY_MAYFAIL.
pub const __GFP_RETRY_MAYFAIL: GfpT = 0x4000;
/// Linux: __GFP_NOFAIL.
pub const __GFP_NOFAIL: GfpT = 0x8000;
/// Linux: __GFP_NORETRY.
pub const __GFP_NORETRY: GfpT = 0x10000;
/// Linux: __GFP_MEMALLOC.
pub const __GFP_MEMALLOC: GfpT = 0x20000;
/// Linux: __GFP_COMP.
pub const __GFP_COMP: GfpT = 0x40000;
/// Linux: __GFP_NOMEMALLOC.
pub const __GFP_NOMEMALLOC: GfpT = 0x80000;
/// Linux: __GFP_HARDWALL.
pub const __GFP_HARDWALL: GfpT = 0x100000;
/// Linux: __GFP_THISNODE.
pub const __GFP_THISNODE: GfpT = 0x200000;
/// Linux: __GFP_ACCOUNT.
pub const __GFP_ACCOUNT: GfpT = 0x400000;
/// Linux: __GFP_ZEROTAGS.
pub const __GFP_ZEROTAGS: GfpT = 0x800000;

/// Linux: __GFP_RECLAIM.
pub const __GFP_RECLAIM: GfpT = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM;
/// Linux: GFP_ATOMIC.
pub const GFP_ATOMIC: GfpT = __GFP_HIGH | __GFP_ATOMIC | __GFP_KSWAPD_RECLAIM;
/// Linux: GFP_KERNEL.
pub const GFP_KERNEL: GfpT = __GFP_RECLAIM | __GFP_IO | __GFP_FS;
/// Linux: GFP_KERNEL_ACCOUNT.
pub const GFP_KERNEL_ACCOUNT: GfpT = GFP_KERNEL | __GFP_ACCOUNT;
/// Linux: GFP_NOWAIT.
pub const GFP_NOWAIT: GfpT = __GFP_KSWAPD_RECLAIM;
/// Linux: GFP_NOIO.
pub const GFP_NOIO: GfpT = __GFP_RECLAIM;
/// Linux: GFP_NOFS.
pub const GFP_NOFS: GfpT = __GFP_RECLAIM | __GFP_IO;
/// Linux: GFP_USER.
pub const GFP_USER: GfpT = __GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_HARDWALL;
/// Linux: GFP_DMA.
pub const GFP_DMA: GfpT = __GFP_DMA;
/// Linux: GFP_DMA32.
pub const GFP_DMA32: GfpT = __GFP_DMA32;
/// Linux: GFP_HIGHUSER.
pub const GFP_HIGHUSER: GfpT = GFP_USER | __GFP_HIGHMEM;
/// Linux: GFP_HIGHUSER_MOVABLE (the KASAN skip bits are 0 here).
pub const GFP_HIGHUSER_MOVABLE: GfpT = GFP_HIGHUSER | __GFP_MOVABLE;
/// Linux: GFP_TRANSHUGE_LIGHT.
pub const GFP_TRANSHUGE_LIGHT: GfpT =
    (GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOMEMALLOC | __GFP_NOWARN) & !__GFP_RECLAIM;
/// Linux: GFP_TRANSHUGE.
pub const GFP_TRANSHUGE: GfpT = GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM;

/// Linux: GFP_ZONEMASK — the zone modifiers.
pub const GFP_ZONEMASK: GfpT = __GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32 | __GFP_MOVABLE;
/// Linux: GFP_MOVABLE_MASK.
pub const GFP_MOVABLE_MASK: GfpT = __GFP_RECLAIMABLE | __GFP_MOVABLE;
/// Linux: GFP_MOVABLE_SHIFT.
pub const GFP_MOVABLE_SHIFT: u32 = 3;

/// Linux: GFP_ZONE_TABLE (with GFP_ZONE_BAD folded in) — for each combination of the zone
/// modifiers, the highest zone, or [`GFP_ZONE_BAD`]. arm64 has ZONE_DMA and ZONE_DMA32 and
/// no highmem: __GFP_HIGHMEM means ZONE_NORMAL, and with __GFP_MOVABLE, ZONE_MOVABLE.
const GFP_ZONE_TABLE: [u8; 16] = {
    let mut t = [GFP_ZONE_BAD; 16];
    t[0] = ZONE_NORMAL as u8;
    t[__GFP_DMA as usize] = ZONE_DMA as u8;
    t[__GFP_HIGHMEM as usize] = ZONE_NORMAL as u8;
    t[__GFP_DMA32 as usize] = ZONE_DMA32 as u8;
    t[__GFP_MOVABLE as usize] = ZONE_NORMAL as u8;
    t[(__GFP_MOVABLE | __GFP_DMA) as usize] = ZONE_DMA as u8;
    t[(__GFP_MOVABLE | __GFP_HIGHMEM) as usize] = ZONE_MOVABLE as u8;
    t[(__GFP_MOVABLE | __GFP_DMA32) as usize] = ZONE_DMA32 as u8;
    t
};
/// A [`GFP_ZONE_TABLE`] entry for more than one zone modifier.
const GFP_ZONE_BAD: u8 = u8::MAX;

/// Linux: gfp_zone() — the highest zone an allocation may use: one table load, as Linux's
/// GFP_ZONE_TABLE shift. Linux's GFP_ZONE_BAD combinations are a BUG here too.
#[inline]
pub const fn gfp_zone(flags: GfpT) -> usize {
    let z = GFP_ZONE_TABLE[(flags & GFP_ZONEMASK) as usize];
    if z == GFP_ZONE_BAD {
        gfp_zone_bad()
    }
    z as usize
}

#[cold]
const fn gfp_zone_bad() -> ! {
    panic!("gfp_zone: more than one zone modifier (GFP_ZONE_BAD)")
}

/// Linux: gfp_migratetype() — which free lists an allocation prefers.
pub fn gfp_migratetype(flags: GfpT) -> u32 {
    if page_group_by_mobility_disabled() {
        return MIGRATE_UNMOVABLE;
    }
    (flags & GFP_MOVABLE_MASK) >> GFP_MOVABLE_SHIFT
}

/// Linux: __def_gfpflag_names (6.1), in the order `%pGg` tries them: composite names first.
const GFPFLAG_NAMES: &[(GfpT, &str)] = &[
    (GFP_TRANSHUGE, "GFP_TRANSHUGE"),
    (GFP_TRANSHUGE_LIGHT, "GFP_TRANSHUGE_LIGHT"),
    (GFP_HIGHUSER_MOVABLE, "GFP_HIGHUSER_MOVABLE"),
    (GFP_HIGHUSER, "GFP_HIGHUSER"),
    (GFP_USER, "GFP_USER"),
    (GFP_KERNEL_ACCOUNT, "GFP_KERNEL_ACCOUNT"),
    (GFP_KERNEL, "GFP_KERNEL"),
    (GFP_NOFS, "GFP_NOFS"),
    (GFP_ATOMIC, "GFP_ATOMIC"),
    (GFP_NOIO, "GFP_NOIO"),
    (GFP_NOWAIT, "GFP_NOWAIT"),
    (GFP_DMA, "GFP_DMA"),
    (__GFP_HIGHMEM, "__GFP_HIGHMEM"),
    (GFP_DMA32, "GFP_DMA32"),
    (__GFP_HIGH, "__GFP_HIGH"),
    (__GFP_ATOMIC, "__GFP_ATOMIC"),
    (__GFP_IO, "__GFP_IO"),
    (__GFP_FS, "__GFP_FS"),
    (__GFP_NOWARN, "__GFP_NOWARN"),
    (__GFP_RETRY_MAYFAIL, "__GFP_RETRY_MAYFAIL"),
    (__GFP_NOFAIL, "__GFP_NOFAIL"),
    (__GFP_NORETRY, "__GFP_NORETRY"),
    (__GFP_COMP, "__GFP_COMP"),
    (__GFP_ZERO, "__GFP_ZERO"),
    (__GFP_NOMEMALLOC, "__GFP_NOMEMALLOC"),
    (__GFP_MEMALLOC, "__GFP_MEMALLOC"),
    (__GFP_HARDWALL, "__GFP_HARDWALL"),
    (__GFP_THISNODE, "__GFP_THISNODE"),
    (__GFP_RECLAIMABLE, "__GFP_RECLAIMABLE"),
    (__GFP_MOVABLE, "__GFP_MOVABLE"),
    (__GFP_ACCOUNT, "__GFP_ACCOUNT"),
    (__GFP_WRITE, "__GFP_WRITE"),
    (__GFP_RECLAIM, "__GFP_RECLAIM"),
    (__GFP_DIRECT_RECLAIM, "__GFP_DIRECT_RECLAIM"),
    (__GFP_KSWAPD_RECLAIM, "__GFP_KSWAPD_RECLAIM"),
    (__GFP_ZEROTAGS, "__GFP_ZEROTAGS"),
];

/// Linux: the `%pGg` format — GFP flags by name (`GFP_KERNEL|__GFP_ZERO`), leftover bits in
/// hex, `none` for 0 (lib/vsprintf.c format_flags()).
pub struct GfpNames(pub GfpT);

impl fmt::Display for GfpNames {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let mut flags = self.0;
        if flags == 0 {
            return f.write_str("none");
        }
        let mut first = true;
        for &(mask, name) in GFPFLAG_NAMES {
            if flags == 0 {
                break;
            }
            if flags & mask != mask {
                continue;
            }
            flags &= !mask;
            if !first {
                f.write_str("|")?;
            }
            f.write_str(name)?;
            first = false;
        }
        if flags != 0 {
            if !first {
                f.write_str("|")?;
            }
            write!(f, "{:#x}", flags)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
