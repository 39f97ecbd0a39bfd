//! Host unit tests of `src/mm/slab_common/util.rs`.

use core::ffi::CStr;

use crate::mm::gfp::GFP_KERNEL;
use crate::mm::slab::ZERO_SIZE_PTR;
use crate::mm::testing::SlubMachine;

fn bytes(p: *const u8, n: usize) -> &'static [u8] {
    // SAFETY: `n` bytes of a live kmalloc object in the leaked simulated RAM.
    unsafe { core::slice::from_raw_parts(p, n) }
}

#[test]
fn kmemdup_and_kstrdup_copy_as_linux() {
    let m = SlubMachine::small();
    let s = &m.slub;
    let src: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
    let p = s.kmemdup(&src, GFP_KERNEL);
    assert_eq!(bytes(p, 300), &src[..]);
    assert_eq!(s.ksize(p), 512, "kmalloc-512 (300 bytes)");
    assert_eq!(s.kmemdup(&[], GFP_KERNEL), ZERO_SIZE_PTR);
    let q = s.kmemdup_nul(b"abc", GFP_KERNEL);
    assert_eq!(bytes(q, 4), b"abc\0");

    let c: &CStr = c"hello, world";
    let d = s.kstrdup(Some(c), GFP_KERNEL);
    assert_eq!(bytes(d, 13), b"hello, world\0");
    assert!(s.kstrdup(None, GFP_KERNEL).is_null());
    let e = s.kstrndup(Some(c), 5, GFP_KERNEL);
    assert_eq!(bytes(e, 6), b"hello\0");
    let f = s.kstrndup(Some(c), 100, GFP_KERNEL);
    assert_eq!(bytes(f, 13), b"hello, world\0");
    // An empty string is one NUL byte (kmalloc(1)), not ZERO_SIZE_PTR.
    let g = s.kstrdup(Some(c""), GFP_KERNEL);
    assert_ne!(g, ZERO_SIZE_PTR);
    assert_eq!(bytes(g, 1), b"\0");
    for x in [p, q, d, e, f, g] {
        // SAFETY: live kmalloc objects, freed once.
        unsafe { s.kfree(x) };
    }
}
