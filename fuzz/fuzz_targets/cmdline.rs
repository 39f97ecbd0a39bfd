//! Fuzz target `cmdline`: arbitrary command lines through kernel/params.c's and
//! init/main.c's parsing — parse_early_param() and the normal parameters
//! (parse_late_params()) with every handler the host builds (the `early_param!` /
//! `setup_param!` table, collected on the host under `--features testing`), and the number
//! parsers the handlers use (memparse, get_option, simple_strtoull). Checks: no panic, no
//! hang, next_arg() always makes progress and returns pieces of its input, and the SLUB
//! boot parameters the handlers left are consistent (min order <= max order < MAX_ORDER).
#![no_main]

use arm64_mm::include::mmzone::MAX_ORDER;
use arm64_mm::kernel::params::{
    get_option, memparse, next_arg, parse_early_param, parse_late_params, parse_u64,
    registered_params, simple_strtoull,
};
use arm64_mm::mm::slub::SlubParams;
use libfuzzer_sys::fuzz_target;

fn within(outer: &str, inner: &str) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    i >= o && i + inner.len() <= o + outer.len()
}

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let line: &str = &line;
    assert!(
        registered_params().len() > 10,
        "the host table is collected"
    );
    let mut rest = line;
    let mut n = 0;
    while let Some((param, val, next)) = next_arg(rest) {
        assert!(
            next.len() < rest.len(),
            "next_arg made no progress on {rest:?}"
        );
        assert!(
            within(line, param) && within(line, next),
            "pieces of the input"
        );
        if let Some(v) = val {
            assert!(within(line, v));
            let _ = memparse(v);
            let _ = parse_u64(v);
            let _ = simple_strtoull(v);
            let mut s = Some(v);
            let mut x = 0;
            let mut k = 0;
            while get_option(&mut s, &mut x) == 2 {
                k += 1;
                assert!(k <= v.len(), "get_option loops on {v:?}");
            }
            let p = SlubParams::new(2, 1, 1).with_slub_debug(Some(v));
            std::hint::black_box(p);
        }
        rest = next;
        n += 1;
        assert!(n <= line.len(), "more arguments than bytes");
    }
    parse_early_param(line);
    parse_late_params(line);
    let p = SlubParams::new(2, 1, 1).with_boot_params();
    assert!(
        p.slub_min_order <= p.slub_max_order,
        "{} > {}",
        p.slub_min_order,
        p.slub_max_order
    );
    assert!(
        (p.slub_max_order as usize) < MAX_ORDER,
        "slub_max_order {}",
        p.slub_max_order
    );
    arm64_mm::kernel::printk::take_captured();
});
