//! Host tests of kmemleak's scan: objects over host buffers, roots as host arrays.

use super::*;

/// A kmemleak over a leaked host pool.
fn new_kmemleak(nr: usize) -> Kmemleak {
    let words = Kmemleak::pool_bytes(nr, 16).div_ceil(8);
    let pool: &'static mut [u64] = Box::leak(vec![0u64; words].into_boxed_slice());
    // SAFETY: a leaked, 8-byte aligned buffer of the size asked.
    unsafe { Kmemleak::from_raw(pool.as_mut_ptr() as *mut u8, nr, 16) }
}

/// A leaked, zeroed host block of `words` words, tracked in `k`.
fn track(k: &mut Kmemleak, words: usize, min_count: i32) -> &'static mut [u64] {
    let b: &'static mut [u64] = Box::leak(vec![0u64; words].into_boxed_slice());
    k.create_object(KmemleakObject::new(
        b.as_ptr() as u64,
        (words * 8) as u64,
        min_count,
        0,
        0,
        0,
    ));
    b
}

fn identity(p: u64) -> u64 {
    p
}

/// Scans with `root` as the only root, at time 10 s, min age 5 s.
fn scan(k: &mut Kmemleak, root: &[u64]) -> ScanResult {
    let s = root.as_ptr() as u64;
    // SAFETY: host memory, all live.
    unsafe {
        k.scan(
            &[(s, s + (root.len() * 8) as u64)],
            identity,
            10_000_000_000,
            5_000_000_000,
        )
    }
}

fn reported(k: &Kmemleak, p: u64) -> bool {
    k.find(p).expect("tracked").flags & object::OBJECT_REPORTED != 0
}

#[test]
fn leak_found_referenced_from_root_stack_or_chain_not() {
    let mut k = new_kmemleak(64);
    let leaked = track(&mut k, 4, 1);
    let from_root = track(&mut k, 4, 1);
    let a = track(&mut k, 4, 1);
    let b = track(&mut k, 4, 1);
    // An interior pointer counts (alias), as Linux's lookup_object(ptr, 1).
    let root = [from_root.as_ptr() as u64 + 8, a.as_ptr() as u64];
    a[1] = b.as_ptr() as u64;
    let r = scan(&mut k, &root);
    // All-zero contents: the checksum stays 0, so the leak is reported on the first scan.
    assert_eq!(r.new_leaks, 1);
    assert!(reported(&k, leaked.as_ptr() as u64));
    assert!(!reported(&k, from_root.as_ptr() as u64));
    assert!(!reported(&k, a.as_ptr() as u64));
    assert!(!reported(&k, b.as_ptr() as u64));
    // Cut the chain: B's contents did not change (checksum), A's did, so B is reported.
    a[1] = 0;
    let r = scan(&mut k, &root);
    assert_eq!(r.new_leaks, 1);
    assert!(reported(&k, b.as_ptr() as u64));
    assert!(!reported(&k, a.as_ptr() as u64));
    // Reported once only.
    assert_eq!(scan(&mut k, &root).new_leaks, 0);
    let mut n = 0;
    k.for_each_reported(10_000_000_000, 5_000_000_000, &mut |_| n += 1);
    assert_eq!(n, 2);
}

#[test]
fn changed_contents_postpone_the_report_and_min_age_holds() {
    let mut k = new_kmemleak(8);
    let x = track(&mut k, 2, 1);
    x[0] = 0x1234;
    let root = [0u64];
    assert_eq!(
        scan(&mut k, &root).new_leaks,
        0,
        "first scan: checksum changed"
    );
    assert_eq!(
        scan(&mut k, &root).new_leaks,
        1,
        "second scan: unchanged, reported"
    );
    // Too young: not reported.
    let y = track(&mut k, 2, 1);
    let p = y.as_ptr() as u64;
    let o = KmemleakObject::new(p + 1000, 8, 1, 9_000_000_000, 0, 0);
    k.create_object(o);
    let r = scan(&mut k, &root);
    assert_eq!(r.new_leaks, 1, "only y, not the young object");
    assert!(!reported(&k, p + 1000));
}

#[test]
fn not_leak_ignore_min_count_and_free() {
    let mut k = new_kmemleak(8);
    let gray = track(&mut k, 2, 1);
    let black = track(&mut k, 2, 1);
    let two = track(&mut k, 2, 2);
    let freed = track(&mut k, 2, 1);
    // The not-leak object holds the only pointer to `inner`: it is scanned.
    let inner = track(&mut k, 2, 1);
    gray[0] = inner.as_ptr() as u64;
    // The ignored object's pointer does not count.
    let hidden = track(&mut k, 2, 1);
    black[0] = hidden.as_ptr() as u64;
    k.paint_ptr(gray.as_ptr() as u64, 0, false);
    k.paint_ptr(black.as_ptr() as u64, -1, false);
    k.delete_object_full(freed.as_ptr() as u64);
    assert!(k.find(freed.as_ptr() as u64).is_none());
    let root = [two.as_ptr() as u64];
    scan(&mut k, &root);
    let r = scan(&mut k, &root);
    assert_eq!(r.unreferenced, 2);
    assert!(reported(&k, two.as_ptr() as u64), "one reference of two");
    assert!(reported(&k, hidden.as_ptr() as u64));
    assert!(!reported(&k, inner.as_ptr() as u64));
    assert!(!reported(&k, gray.as_ptr() as u64));
    assert!(!reported(&k, black.as_ptr() as u64));
}

#[test]
fn phys_objects_are_scanned_and_split_on_partial_free() {
    let mut k = new_kmemleak(8);
    let target = track(&mut k, 2, 1);
    let block: &'static mut [u64] = Box::leak(vec![0u64; 8].into_boxed_slice());
    block[6] = target.as_ptr() as u64;
    let base = block.as_ptr() as u64;
    k.create_object_phys(KmemleakObject::new(base, 64, 0, 0, 0, 0));
    let root = [0u64];
    scan(&mut k, &root);
    assert_eq!(
        scan(&mut k, &root).new_leaks,
        0,
        "referenced from memblock memory"
    );
    // Free the middle: two pieces remain; the word at 48 is still scanned.
    k.delete_object_part_phys(base + 16, 16);
    let p: Vec<_> = k
        .phys_objects()
        .iter()
        .map(|o| (o.pointer - base, o.size))
        .collect();
    assert_eq!(p, [(0, 16), (32, 32)]);
    assert_eq!(scan(&mut k, &root).new_leaks, 0);
    k.delete_object_part_phys(base + 32, 32);
    assert_eq!(
        scan(&mut k, &root).new_leaks,
        1,
        "its last reference went with the block"
    );
}

/// kmemleak_ignore_phys() (a CMA area): the block is no longer read, so what only it
/// referenced is a leak.
#[test]
fn an_ignored_phys_object_is_not_scanned() {
    let mut k = new_kmemleak(8);
    let target = track(&mut k, 2, 1);
    let block: &'static mut [u64] = Box::leak(vec![0u64; 8].into_boxed_slice());
    block[3] = target.as_ptr() as u64;
    let base = block.as_ptr() as u64;
    k.create_object_phys(KmemleakObject::new(base, 64, 0, 0, 0, 0));
    let root = [0u64];
    assert_eq!(
        scan(&mut k, &root).new_leaks,
        0,
        "referenced from the block"
    );
    k.paint_ptr(base, -1, true);
    assert_eq!(
        scan(&mut k, &root).new_leaks,
        1,
        "the block is not read any more"
    );
    assert!(reported(&k, target.as_ptr() as u64));
}

#[test]
fn overlap_and_full_pool_disable() {
    let mut k = new_kmemleak(2);
    let a = track(&mut k, 4, 1);
    k.create_object(KmemleakObject::new(a.as_ptr() as u64 + 8, 8, 1, 0, 0, 0));
    assert!(k.disabled(), "an overlap stops kmemleak");
    let mut k = new_kmemleak(2);
    track(&mut k, 1, 1);
    track(&mut k, 1, 1);
    assert!(!k.disabled());
    track(&mut k, 1, 1);
    assert!(k.disabled(), "the pool ran out");
    assert_eq!(k.objects().len(), 2);
}

#[test]
fn report_format() {
    let b: &'static mut [u8] = Box::leak(vec![0u8; 40].into_boxed_slice());
    b[..5].copy_from_slice(b"leak\0");
    b[16] = 0xff;
    let mut o = KmemleakObject::new(b.as_ptr() as u64, 40, 1, 1_000_000_000, 1, 0);
    o.count = 0;
    let mut lines = Vec::new();
    // SAFETY: a live host block of 40 bytes.
    unsafe { print_unreferenced(&o, 9_452_000_000, &mut |a| lines.push(a.to_string())) };
    assert_eq!(
        lines[0],
        format!(
            "unreferenced object 0x{:016x} (size 40):",
            b.as_ptr() as u64
        )
    );
    assert_eq!(
        lines[1],
        "  comm \"swapper/1\", pid 0, jiffies 4294892546 (age 8.452s)"
    );
    assert_eq!(lines[2], "  hex dump (first 32 bytes):");
    assert_eq!(
        lines[3],
        "    6c 65 61 6b 00 00 00 00 00 00 00 00 00 00 00 00  leak............"
    );
    assert_eq!(
        lines[4],
        "    ff 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................"
    );
    assert_eq!(lines[5], "  backtrace:");
    assert_eq!(lines.len(), 6);
}

#[test]
fn crc32_matches_linux() {
    // crc32_le(0, "123456789") without the pre/post inversion of the IEEE check value.
    let s = b"123456789";
    // SAFETY: a live host buffer.
    let c = unsafe { object::crc32(s.as_ptr() as u64, 9) };
    assert_eq!(c, 0x2dfd2d88);
    let z = [0u8; 64];
    // SAFETY: as above.
    assert_eq!(unsafe { object::crc32(z.as_ptr() as u64, 64) }, 0);
}

#[test]
fn scan_area_leaves_the_head_of_an_object_unscanned() {
    let mut k = new_kmemleak(8);
    let holder = track(&mut k, 4, 0);
    let head_target = track(&mut k, 2, 1);
    let tail_target = track(&mut k, 2, 1);
    holder[0] = head_target.as_ptr() as u64;
    holder[2] = tail_target.as_ptr() as u64;
    // As vmalloc's VmapArea: scanned from its links (word 1) on.
    k.add_scan_area(holder.as_ptr() as u64 + 8);
    let root = [0u64];
    scan(&mut k, &root);
    scan(&mut k, &root);
    assert!(reported(&k, head_target.as_ptr() as u64));
    assert!(!reported(&k, tail_target.as_ptr() as u64));
}
