//! Fuzz target `slub`: operation sequences against mm/slub.c and mm/slab_common.c (kmalloc,
//! kfree, krealloc, ksize, two caches of their own, kmem_cache_shrink) over simulated
//! pages, with slub_debug off and with `slub_debug=FZPU` (the first input byte picks),
//! checked against a set of live objects: every object is non-null, aligned, at least as
//! large as asked, disjoint from every other live object, and keeps what was written into
//! it until it is freed; SLUB reports no slab errors; with debugging on, every cache
//! validates (validate_slab_cache); at the end of each input everything is freed, the
//! caches shrunk, and the pages SLUB holds are back to what they were before it.
#![no_main]

use arm64_mm::mm::gfp::{__GFP_ZERO, GFP_KERNEL};
use arm64_mm::mm::slub::{KmemCache, SlubParams};
use arm64_mm::mm::testing::SlubMachine;
use arm64_mm_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::collections::BTreeMap;

struct State {
    m: SlubMachine,
    caches: Vec<&'static KmemCache>,
    pages0: i64,
    debug: bool,
}

thread_local! {
    static STATES: RefCell<Vec<State>> = RefCell::new(vec![setup(false), setup(true)]);
}

fn setup(debug: bool) -> State {
    let mut p = SlubParams::new(1, 1, 0x5eed);
    p.kmalloc_min_size = 8;
    if debug {
        p = p.with_slub_debug(Some("FZPU"));
    }
    let m = SlubMachine::with_params(32, p);
    let mk = |name: &'static str, size: u32, align: u32| {
        let s = m
            .slub
            .kmem_cache_create(name, size, align, 0, None)
            .expect("cache");
        // SAFETY: caches live as long as the machine, which lives for the process.
        unsafe { &*(s as *const KmemCache) }
    };
    let caches = vec![mk("fuzz_a", 40, 8), mk("fuzz_b", 200, 64)];
    m.shrink_all();
    let pages0 = m.pages.pages_out();
    State {
        m,
        caches,
        pages0,
        debug,
    }
}

#[derive(Clone, Copy)]
struct Obj {
    len: usize,
    cache: Option<usize>,
    tag: u8,
}

fn fill(p: *mut u8, len: usize, tag: u8) {
    // SAFETY: `p` is a live object of at least `len` bytes that nothing else uses.
    unsafe { core::ptr::write_bytes(p, tag, len) };
}

fn holds(p: *mut u8, len: usize, tag: u8) -> bool {
    // SAFETY: as in fill().
    unsafe { core::slice::from_raw_parts(p, len) }
        .iter()
        .all(|&b| b == tag)
}

fn run(st: &mut State, b: &mut Bytes) {
    let slub = &st.m.slub;
    let mut live: BTreeMap<usize, Obj> = BTreeMap::new();
    let mut steps = 0u8;
    let check_new = |live: &BTreeMap<usize, Obj>, p: *mut u8, len: usize, ksize: usize| {
        assert!(!p.is_null(), "allocation of {len} failed");
        assert!(ksize >= len, "ksize {ksize} < {len}");
        let a = p as usize;
        if let Some((&q, o)) = live.range(..a + len).next_back() {
            assert!(
                q + o.len <= a,
                "object {a:#x}+{len} overlaps {q:#x}+{}",
                o.len
            );
        }
    };
    while !b.is_empty() && steps < 200 {
        steps += 1;
        match b.u8() % 8 {
            0..=2 => {
                let len = match b.u8() % 4 {
                    0 => usize::from(b.u16()) % 16384,
                    _ => usize::from(b.u8()) + 1,
                };
                let gfp = if b.u8() & 1 == 1 {
                    GFP_KERNEL | __GFP_ZERO
                } else {
                    GFP_KERNEL
                };
                let p = slub.kmalloc(len, gfp);
                if len == 0 {
                    // ZERO_SIZE_PTR: not an object.
                    assert!(p as usize <= 16, "kmalloc(0) gave {p:p}");
                    continue;
                }
                check_new(&live, p, len, slub.ksize(p));
                if gfp & __GFP_ZERO != 0 {
                    assert!(holds(p, len, 0), "kzalloc not zeroed");
                }
                let tag = b.u8();
                fill(p, len, tag);
                live.insert(
                    p as usize,
                    Obj {
                        len,
                        cache: None,
                        tag,
                    },
                );
            }
            3 => {
                let c = usize::from(b.u8() % 2);
                let s = st.caches[c];
                let p = slub.kmem_cache_alloc(s, GFP_KERNEL);
                let len = s.object_size() as usize;
                check_new(&live, p, len, len);
                assert_eq!(
                    p as usize % if c == 0 { 8 } else { 64 },
                    0,
                    "cache alignment"
                );
                let tag = b.u8();
                fill(p, len, tag);
                live.insert(
                    p as usize,
                    Obj {
                        len,
                        cache: Some(c),
                        tag,
                    },
                );
            }
            4 | 5 if !live.is_empty() => {
                let k = *live.keys().nth(usize::from(b.u8()) % live.len()).unwrap();
                let o = live.remove(&k).unwrap();
                let p = k as *mut u8;
                assert!(holds(p, o.len, o.tag), "object {k:#x} corrupted while live");
                match o.cache {
                    // SAFETY: a live object of that cache, freed once.
                    Some(c) => unsafe { slub.kmem_cache_free(st.caches[c], p) },
                    // SAFETY: a live kmalloc object, freed once.
                    None => unsafe { slub.kfree(p) },
                }
            }
            6 if live.values().any(|o| o.cache.is_none()) => {
                let (&k, &o) = live
                    .iter()
                    .filter(|(_, o)| o.cache.is_none())
                    .nth(usize::from(b.u8()) % live.len().max(1))
                    .unwrap_or_else(|| live.iter().find(|(_, o)| o.cache.is_none()).unwrap());
                live.remove(&k);
                let new_len = usize::from(b.u16()) % 8192 + 1;
                // SAFETY: a live kmalloc object; on success it is not used again.
                let q = unsafe { slub.krealloc(k as *const u8, new_len, GFP_KERNEL) };
                check_new(&live, q, new_len, slub.ksize(q));
                let kept = o.len.min(new_len);
                assert!(holds(q, kept, o.tag), "krealloc lost the contents");
                fill(q, new_len, o.tag);
                live.insert(
                    q as usize,
                    Obj {
                        len: new_len,
                        cache: None,
                        tag: o.tag,
                    },
                );
            }
            _ => {
                for &c in &st.caches {
                    slub.kmem_cache_shrink(c);
                }
            }
        }
        assert_eq!(slub.slab_errors(), 0, "SLUB reported an error");
    }
    for (k, o) in std::mem::take(&mut live) {
        assert!(
            holds(k as *mut u8, o.len, o.tag),
            "object {k:#x} corrupted while live"
        );
        match o.cache {
            // SAFETY: live objects, each freed once.
            Some(c) => unsafe { slub.kmem_cache_free(st.caches[c], k as *mut u8) },
            None => unsafe { slub.kfree(k as *const u8) },
        }
    }
    if st.debug {
        for &c in &st.caches {
            slub.validate_slab_cache(c);
        }
    }
    assert_eq!(slub.slab_errors(), 0, "SLUB reported an error");
    st.m.shrink_all();
    assert_eq!(
        st.m.pages.pages_out(),
        st.pages0,
        "pages SLUB kept after everything was freed"
    );
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let which = usize::from(b.u8() & 1);
    STATES.with(|s| run(&mut s.borrow_mut()[which], &mut b));
    arm64_mm::kernel::printk::take_captured();
});
