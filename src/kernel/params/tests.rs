//! Host unit tests of `src/kernel/params.rs` (`cargo hosttest`).

use super::*;
use crate::kernel::printk::take_captured;
use std::sync::atomic::{AtomicUsize, Ordering};

fn collect(cmdline: &str) -> Vec<(String, Option<String>)> {
    let mut v = Vec::new();
    parse_args(cmdline, |p, val| {
        v.push((p.to_string(), val.map(str::to_string)))
    });
    v
}

#[test]
fn splits_params_and_values() {
    assert_eq!(
        collect("  console=ttyAMA0 quiet  mem=512M "),
        vec![
            ("console".into(), Some("ttyAMA0".into())),
            ("quiet".into(), None),
            ("mem".into(), Some("512M".into())),
        ]
    );
}

#[test]
fn quotes_are_not_part_of_values() {
    assert_eq!(
        collect(r#"foo="a b" "bar=c d" baz="#),
        vec![
            ("foo".into(), Some("a b".into())),
            ("bar".into(), Some("c d".into())),
            ("baz".into(), Some("".into())),
        ]
    );
}

#[test]
fn double_dash_ends_kernel_params() {
    assert_eq!(collect("a -- b c"), vec![("a".into(), None)]);
}

static CALLS: AtomicUsize = AtomicUsize::new(0);
fn ok_handler(v: Option<&str>) -> SetupResult {
    CALLS.fetch_add(1, Ordering::SeqCst);
    v.map(|_| ()).ok_or("needs a value")
}

#[test]
fn early_params_run_and_malformed_ones_are_reported() {
    let table = [ObsKernelParam {
        name: "mem_test",
        setup: ok_handler,
        early: true,
    }];
    take_captured();
    let before = CALLS.load(Ordering::SeqCst);
    parse_early_param_with("mem-test=1 mem_test other", &table);
    assert_eq!(CALLS.load(Ordering::SeqCst) - before, 2);
    assert!(take_captured().contains("Malformed early option 'mem_test'"));
}

#[test]
fn unknown_params_are_reported_not_fatal() {
    let table = [ObsKernelParam {
        name: "known",
        setup: |_| Ok(()),
        early: true,
    }];
    take_captured();
    let n = parse_late_params_with("known foo=1 bar mod.param=2", &table);
    assert_eq!(n, 2);
    assert!(take_captured().contains(
        "Unknown kernel command line parameters \"foo=1 bar\", will be passed to user space."
    ));
}

#[test]
fn memparse_suffixes() {
    assert_eq!(memparse("512M"), Some((512 << 20, "")));
    assert_eq!(memparse("0x1000@0x40000000"), Some((0x1000, "@0x40000000")));
    assert_eq!(memparse("4g"), Some((4 << 30, "")));
    assert_eq!(memparse("xyz"), None);
    assert_eq!(memparse("99999999999E"), None);
    assert_eq!(parse_u64("010"), Some(8));
}

#[test]
fn get_option_as_lib_cmdline() {
    fn run(s: Option<&str>) -> (i32, i32, Option<&str>) {
        let mut s = s;
        let mut v = -7;
        let r = get_option(&mut s, &mut v);
        (r, v, s)
    }
    assert_eq!(run(Some("2")), (1, 2, Some("")));
    assert_eq!(run(Some("0x10,5")), (2, 16, Some("5")));
    assert_eq!(run(Some("010")), (1, 8, Some("")));
    assert_eq!(run(Some("3-4")), (3, 3, Some("-4")));
    assert_eq!(run(Some("-1")), (1, -1, Some("")));
    assert_eq!(run(Some("2abc")), (1, 2, Some("abc")));
    // Nothing to parse: Linux still stores simple_strtoull's 0 ...
    assert_eq!(run(Some("y")), (0, 0, Some("y")));
    // ... but not for an empty or absent value.
    assert_eq!(run(Some("")), (0, -7, Some("")));
    assert_eq!(run(None), (0, -7, None));
    // `0x` without a hex digit is octal 0 followed by `x`.
    assert_eq!(run(Some("0xg")), (1, 0, Some("xg")));
}
