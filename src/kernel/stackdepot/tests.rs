//! Host unit tests of `src/kernel/stackdepot.rs`: one record per distinct stack, handles
//! that fetch back what was saved, the full pool, and the hash against Linux's jhash2.

use super::*;

/// A depot over host buffers (kept alive with it).
struct Sim {
    _table: Vec<u32>,
    _pool: Vec<u128>,
    depot: StackDepot,
}

fn sim(buckets: usize, slabs: usize) -> Sim {
    let mut table = vec![0u32; buckets];
    let mut pool = vec![0u128; slabs * STACK_ALLOC_SIZE / 16];
    // SAFETY: both buffers live as long as the depot (same struct, never moved out of).
    let depot = unsafe {
        StackDepot::new(
            table.as_mut_ptr(),
            buckets,
            pool.as_mut_ptr() as *mut u8,
            slabs,
        )
    };
    Sim {
        _table: table,
        _pool: pool,
        depot,
    }
}

#[test]
fn jhash2_matches_linux() {
    // Values from include/linux/jhash.h's jhash2() compiled with gcc.
    assert_eq!(jhash2(&[], 0), 0xdeadbeef);
    assert_eq!(jhash2(&[1], 0), 0x72a82a9b);
    assert_eq!(jhash2(&[1, 2, 3, 4], 0x9747b28c), 0x4457c663);
}

#[test]
fn the_same_stack_saved_twice_gives_the_same_handle_and_one_record() {
    let s = sim(16, 2);
    let a = [
        0xffff_8000_1000_0010u64,
        0xffff_8000_1000_2040,
        0xffff_8000_1000_3000,
    ];
    let b = [0xffff_8000_1000_0010u64, 0xffff_8000_1000_2044];
    let ha = s.depot.save(&a);
    assert_ne!(ha, 0);
    let used = s.depot.pool_used();
    for _ in 0..1000 {
        assert_eq!(s.depot.save(&a), ha);
    }
    assert_eq!(s.depot.nr_stacks(), 1);
    assert_eq!(s.depot.pool_used(), used, "a repeat stores nothing");
    let hb = s.depot.save(&b);
    assert_ne!(hb, ha);
    assert_eq!(s.depot.nr_stacks(), 2);
    assert_eq!(s.depot.fetch(ha), &a);
    assert_eq!(s.depot.fetch(hb), &b);
    assert_eq!(s.depot.fetch(0), &[] as &[u64]);
}

#[test]
fn many_stacks_in_few_buckets_all_fetch_back() {
    // 4 buckets: long chains, records over several slabs.
    let s = sim(4, 8);
    let mut handles = Vec::new();
    for i in 0..500u64 {
        let st = [i, i * 7, 0xffff_0000_0000_0000 | i];
        handles.push(s.depot.save(&st));
    }
    assert_eq!(s.depot.nr_stacks(), 500);
    for (i, &h) in handles.iter().enumerate() {
        let i = i as u64;
        assert_eq!(s.depot.fetch(h), &[i, i * 7, 0xffff_0000_0000_0000 | i]);
        assert_eq!(s.depot.save(&[i, i * 7, 0xffff_0000_0000_0000 | i]), h);
    }
    assert!(
        s.depot.pool_used() > STACK_ALLOC_SIZE,
        "records went past the first slab"
    );
}

#[test]
fn a_full_pool_gives_handle_zero_and_keeps_what_it_has() {
    let s = sim(64, 1);
    let mut last = 0;
    let mut saved = 0;
    for i in 0..10_000u64 {
        let h = s.depot.save(&[i; 16]);
        if h == 0 {
            break;
        }
        last = h;
        saved += 1;
    }
    // 16 + 16 * 8 bytes a record: 113 fit in 16 KiB.
    assert_eq!(saved, STACK_ALLOC_SIZE / 144);
    assert_eq!(s.depot.save(&[1_000_000; 16]), 0);
    assert_eq!(s.depot.fetch(last), &[saved as u64 - 1; 16]);
    // A stack already stored is still found.
    assert_eq!(s.depot.save(&[0; 16]), s.depot.save(&[0; 16]));
    assert_ne!(s.depot.save(&[0; 16]), 0);
}

#[test]
fn concurrent_savers_agree_on_handles() {
    let s = std::sync::Arc::new(sim(256, 16));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                (0..200u64)
                    .map(|i| s.depot.save(&[i, i + 1, i + 2]))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<Vec<u32>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for r in &results[1..] {
        assert_eq!(r, &results[0]);
    }
    assert_eq!(s.depot.nr_stacks(), 200);
}

#[test]
fn hash_table_size_follows_alloc_large_system_hash() {
    // 256 MiB of kernel pages: 65536 pages >> 2 = 16384 buckets.
    assert_eq!(stack_hash_entries(65536), 16384);
    // Little memory: the 4096-bucket floor; lots: the 1 Mi ceiling.
    assert_eq!(stack_hash_entries(1000), 4096);
    assert_eq!(stack_hash_entries(1 << 30), 1 << 20);
}

#[test]
fn handles_round_trip_their_parts() {
    let h = make_handle(5, 0x3f0);
    assert_eq!(handle_parts(h), (5, 0x3f0));
    assert_ne!(
        h & 1 << (STACK_ALLOC_INDEX_BITS + STACK_ALLOC_OFFSET_BITS),
        0
    );
}
