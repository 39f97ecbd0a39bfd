//! Fuzz target `vmap`: operation sequences against mm/vmalloc.c's vmap area allocator
//! (alloc_vmap_area, free_vmap_area_noflush + the lazy drain, purge_vmap_area_lazy) over a
//! small vmap range, checked after every step with the allocator's own invariant checker
//! (vmap_check: the three trees ordered, balanced, augmented, disjoint and tiling the
//! range) and against an interval-set model: the busy areas equal the model's, an
//! allocation returns exactly the lowest fitting address (after one purge if nothing
//! fits), and fails only when the model has no fit either.
#![no_main]

use arm64_mm::mm::vmalloc::{VmList, VmapArea, VmapAreaAlloc, VmapAreas, VmapError};
use arm64_mm_fuzz::Bytes;
use core::ptr::NonNull;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

const PAGE: u64 = 4096;
const START: u64 = 0xffff_8000_0800_0000;
const PAGES: u64 = 1024;
const END: u64 = START + PAGES * PAGE;

/// Boxes, counted: every node must come back.
struct Pool(usize);

// SAFETY: boxes are valid, aligned and unshared until given back; `free` takes only them.
unsafe impl VmapAreaAlloc for Pool {
    fn alloc(&mut self) -> Option<NonNull<VmapArea>> {
        self.0 += 1;
        Some(NonNull::from(Box::leak(Box::new(VmapArea::new()))))
    }
    unsafe fn free(&mut self, va: NonNull<VmapArea>) {
        self.0 -= 1;
        // SAFETY: from Box::leak in alloc, given back once.
        drop(unsafe { Box::from_raw(va.as_ptr()) });
    }
}

#[derive(Default)]
struct Model {
    busy: BTreeMap<u64, u64>,
    lazy: BTreeMap<u64, u64>,
}

impl Model {
    /// The free gaps: [START, END) minus the busy and lazily freed areas.
    fn gaps(&self) -> Vec<(u64, u64)> {
        let mut taken: Vec<(u64, u64)> = self
            .busy
            .iter()
            .chain(&self.lazy)
            .map(|(&s, &e)| (s, e))
            .collect();
        taken.sort();
        let mut cur = START;
        let mut gaps = Vec::new();
        for (s, e) in taken {
            if s > cur {
                gaps.push((cur, s));
            }
            cur = cur.max(e);
        }
        if cur < END {
            gaps.push((cur, END));
        }
        gaps
    }

    fn is_free(&self, s: u64, e: u64) -> bool {
        self.gaps().iter().any(|&(gs, ge)| gs <= s && e <= ge)
    }

    /// The lowest `align`ed start of `size` bytes in [vstart, vend) inside a free gap of at
    /// least `len` bytes above vstart.
    fn lowest_fit(&self, size: u64, align: u64, vstart: u64, vend: u64, len: u64) -> Option<u64> {
        self.gaps().into_iter().find_map(|(s, e)| {
            let from = s.max(vstart);
            if e < from || e - from < len {
                return None;
            }
            let cand = from.checked_next_multiple_of(align)?;
            (cand.checked_add(size)? <= e && cand + size <= vend).then_some(cand)
        })
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let mut a = VmapAreas::new(Pool(0));
    a.vmalloc_init(&VmList::new(), START, END).unwrap();
    let mut m = Model::default();
    let mut steps = 0;
    while !b.is_empty() && steps < 400 {
        steps += 1;
        match b.u8() % 4 {
            0 | 1 => {
                let size = (u64::from(b.u8() % 64) + 1) * PAGE;
                let align = PAGE << (b.u8() % 9);
                let (vs, ve) = if b.u8() % 4 == 0 {
                    let x = START + u64::from(b.u16()) % PAGES * PAGE;
                    (x, x + u64::from(b.u16()) % PAGES * PAGE)
                } else {
                    (START, END)
                };
                let mut flushed = false;
                let had_lazy = !m.lazy.is_empty();
                let first = m.lowest_fit(size, align, vs, ve, size);
                let got = a.alloc_vmap_area(size, align, vs, ve, |_, _| flushed = true);
                if align <= PAGE {
                    // Linux searches for `size` bytes: the lowest fit, exactly; if there is
                    // none, one purge of the lazy areas and the search again.
                    let want = match first {
                        Some(w) => Some(w),
                        None => {
                            m.lazy.clear();
                            m.lowest_fit(size, align, vs, ve, size)
                        }
                    };
                    assert_eq!(
                        flushed,
                        had_lazy && first.is_none(),
                        "purge on overflow only"
                    );
                    match got {
                        Ok(ref info) => assert_eq!(
                            Some(info.va_start),
                            want,
                            "alloc {size:#x} in [{vs:#x}, {ve:#x})"
                        ),
                        Err(e) => assert_eq!(want, None, "alloc {size:#x} failed: {e:?}"),
                    }
                } else {
                    // A larger alignment makes Linux search for size + align - 1 bytes
                    // (unless [vstart, vend) is exactly the size): it may skip a smaller
                    // block that would fit, so only the result's validity is exact, and a
                    // failure must mean no free block of the search length exists.
                    if flushed {
                        m.lazy.clear();
                    }
                    match got {
                        Ok(ref info) => {
                            let s0 = info.va_start;
                            assert_eq!(s0 % align, 0, "unaligned");
                            assert!(s0 >= vs && s0 + size <= ve, "outside [{vs:#x}, {ve:#x})");
                            assert!(m.is_free(s0, s0 + size), "{s0:#x}+{size:#x} is not free");
                        }
                        Err(e) => {
                            let len = if ve - vs == size {
                                size
                            } else {
                                size + align - 1
                            };
                            let w = m.lowest_fit(size, align, vs, ve, len);
                            assert_eq!(w, None, "alloc {size:#x} align {align:#x} failed: {e:?}");
                        }
                    }
                }
                match got {
                    Ok(info) => {
                        assert_eq!(info.va_end, info.va_start + size);
                        m.busy.insert(info.va_start, info.va_end);
                    }
                    Err(e) => assert!(matches!(e, VmapError::Busy), "{e:?}"),
                }
            }
            2 if !m.busy.is_empty() => {
                let i = usize::from(b.u8()) % m.busy.len();
                let (&s, &e) = m.busy.iter().nth(i).unwrap();
                m.busy.remove(&s);
                m.lazy.insert(s, e);
                if a.free_vmap_area_noflush(s).unwrap() {
                    a.drain_vmap_area_work(|_, _| {});
                    m.lazy.clear();
                }
            }
            2 => assert_eq!(
                a.free_vmap_area_noflush(START + PAGE),
                Err(VmapError::NotFound)
            ),
            _ => {
                let any = a.purge_vmap_area_lazy(|_, _| {});
                assert_eq!(any, !m.lazy.is_empty());
                m.lazy.clear();
            }
        }
        let st = a.vmap_check().unwrap_or_else(|e| panic!("vmap_check: {e}"));
        let busy: Vec<(u64, u64)> = a.busy_areas().map(|i| (i.va_start, i.va_end)).collect();
        let want: Vec<(u64, u64)> = m.busy.iter().map(|(&s, &e)| (s, e)).collect();
        assert_eq!(busy, want, "busy areas");
        let lazy: u64 = m.lazy.iter().map(|(s, e)| (e - s) / PAGE).sum();
        assert_eq!(st.vmap_lazy_nr, lazy, "lazy pages");
        assert_eq!(st.busy_bytes + st.free_bytes + st.purge_bytes, END - START);
        assert!(a.allocator().0 >= a.nr_nodes(), "nodes leaked or lost");
    }
    arm64_mm::kernel::printk::take_captured();
});
