//! Host unit tests of `src/kernel/printk.rs` (`cargo hosttest`).

use super::*;

#[test]
fn timestamp_has_linux_width() {
    let mut s = LineBuf::<LOG_LINE_MAX>::new();
    format_timestamp(0, &mut s).unwrap();
    assert_eq!(
        core::str::from_utf8(&s.buf[..s.len]).unwrap(),
        "[    0.000000] "
    );
    let mut s = LineBuf::<LOG_LINE_MAX>::new();
    format_timestamp(12_345_678_901, &mut s).unwrap();
    assert_eq!(
        core::str::from_utf8(&s.buf[..s.len]).unwrap(),
        "[   12.345678] "
    );
}

#[test]
fn lines_are_split_and_prefixed() {
    take_captured();
    pr_info!("a\nb");
    assert_eq!(take_captured(), "[    0.000000] a\n[    0.000000] b\n");
}

#[test]
fn ring_drops_oldest_when_full() {
    let mut log = LogBuf::new();
    let line = [b'x'; 1000];
    for _ in 0..200 {
        log.push(KERN_INFO, &line);
    }
    assert!(log.dropped > 0);
    let mut n = 0;
    log.for_each(|lvl, t| {
        assert_eq!(lvl, KERN_INFO);
        assert_eq!(t.len(), 1000);
        n += 1;
    });
    assert_eq!(n, LOG_BUF_LEN / 1003);
}

#[test]
fn levels_filter_against_console_loglevel() {
    assert!(level_is_printed(KERN_INFO));
    assert!(!level_is_printed(KERN_DEBUG));
}
