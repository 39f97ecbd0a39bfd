//! Typed addresses: a physical address, a virtual address and a page-frame number are
//! different types, and the conversions between them are explicit (Linux: phys_addr_t,
//! unsigned long, PFN_DOWN/PFN_PHYS).

use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// Linux: PAGE_SHIFT (4 KiB pages).
pub const PAGE_SHIFT: u32 = 12;
/// Linux: PAGE_SIZE.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

/// Rounds `x` up to a multiple of `align` (a power of two). Linux: ALIGN()/round_up().
pub const fn align_up(x: u64, align: u64) -> u64 {
    (x.wrapping_add(align - 1)) & !(align - 1)
}

/// Rounds `x` down to a multiple of `align` (a power of two). Linux: round_down().
pub const fn align_down(x: u64, align: u64) -> u64 {
    x & !(align - 1)
}

macro_rules! address_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(pub u64);

        impl $name {
            pub const fn new(v: u64) -> Self { Self(v) }
            pub const fn as_u64(self) -> u64 { self.0 }
            pub const fn align_up(self, align: u64) -> Self { Self(align_up(self.0, align)) }
            pub const fn align_down(self, align: u64) -> Self { Self(align_down(self.0, align)) }
            pub const fn is_aligned(self, align: u64) -> bool { self.0 & (align - 1) == 0 }
        }

        impl Add<u64> for $name {
            type Output = Self;
            fn add(self, rhs: u64) -> Self { Self(self.0 + rhs) }
        }

        impl AddAssign<u64> for $name {
            fn add_assign(&mut self, rhs: u64) { self.0 += rhs; }
        }

        impl Sub<u64> for $name {
            type Output = Self;
            fn sub(self, rhs: u64) -> Self { Self(self.0 - rhs) }
        }

        impl Sub for $name {
            type Output = u64;
            fn sub(self, rhs: Self) -> u64 { self.0 - rhs.0 }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result { fmt::LowerHex::fmt(&self.0, f) }
        }
    };
}

address_type!(
    /// A physical address (Linux: phys_addr_t).
    PhysAddr
);
address_type!(
    /// A kernel virtual address.
    VirtAddr
);

/// A page-frame number: a physical address shifted right by PAGE_SHIFT.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
#[repr(transparent)]
pub struct Pfn(pub u64);

impl PhysAddr {
    /// Linux: PFN_DOWN().
    pub const fn pfn_down(self) -> Pfn {
        Pfn(self.0 >> PAGE_SHIFT)
    }
    /// Linux: PFN_UP().
    pub const fn pfn_up(self) -> Pfn {
        Pfn(align_up(self.0, PAGE_SIZE) >> PAGE_SHIFT)
    }
}

impl Pfn {
    /// Linux: PFN_PHYS().
    #[inline]
    pub const fn phys(self) -> PhysAddr {
        PhysAddr(self.0 << PAGE_SHIFT)
    }
    /// The frame `phys` lies in (Linux: PHYS_PFN()/PFN_DOWN()).
    #[inline]
    pub const fn from_phys(phys: PhysAddr) -> Pfn {
        phys.pfn_down()
    }
    /// Rounds up to a multiple of `align` frames (a power of two). Linux: ALIGN().
    #[inline]
    pub const fn align_up(self, align: u64) -> Pfn {
        Pfn(align_up(self.0, align))
    }
    /// Rounds down to a multiple of `align` frames (a power of two). Linux: ALIGN_DOWN().
    #[inline]
    pub const fn align_down(self, align: u64) -> Pfn {
        Pfn(align_down(self.0, align))
    }
}

impl Add<u64> for Pfn {
    type Output = Pfn;
    #[inline]
    fn add(self, n: u64) -> Pfn {
        Pfn(self.0 + n)
    }
}

impl AddAssign<u64> for Pfn {
    #[inline]
    fn add_assign(&mut self, n: u64) {
        self.0 += n;
    }
}

impl Sub<u64> for Pfn {
    type Output = Pfn;
    #[inline]
    fn sub(self, n: u64) -> Pfn {
        Pfn(self.0 - n)
    }
}

/// The number of frames from `rhs` up to `self`.
impl Sub for Pfn {
    type Output = u64;
    #[inline]
    fn sub(self, rhs: Pfn) -> u64 {
        self.0 - rhs.0
    }
}

impl fmt::LowerHex for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

impl<T> From<*const T> for VirtAddr {
    fn from(p: *const T) -> Self {
        VirtAddr(p as u64)
    }
}

impl<T> From<*mut T> for VirtAddr {
    fn from(p: *mut T) -> Self {
        VirtAddr(p as u64)
    }
}

impl VirtAddr {
    pub const fn as_ptr<T>(self) -> *const T {
        self.0 as *const T
    }
    pub const fn as_mut_ptr<T>(self) -> *mut T {
        self.0 as *mut T
    }
}

/// The protection bits of a page-table entry (Linux: pgprot_t). Opaque to generic code:
/// only the architecture that made a value (PAGE_KERNEL and friends) interprets it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PgProt(pub u64);

#[cfg(test)]
mod tests;
