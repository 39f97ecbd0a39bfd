//! Host unit tests of `src/kernel/crash_core.rs` (`cargo hosttest`), on the shared scaffold
//! `mm::testing` (simulated RAM and a machine builder).

use super::*;
use crate::kernel::printk::take_captured;
use crate::mm::testing::printed;

const K: u64 = 1 << 10;
const M: u64 = 1 << 20;
const G: u64 = 1 << 30;

fn ck(size: u64, base: u64) -> Result<CrashKernel, CrashError> {
    Ok(CrashKernel { size, base })
}

/// parse_crashkernel() with the lines it printed.
fn parse(cmdline: &str, ram: u64) -> (Result<CrashKernel, CrashError>, Vec<String>) {
    take_captured();
    let r = parse_crashkernel(cmdline, ram);
    (r, printed())
}

/// Expects `cmdline` to be rejected with exactly the warning `line`.
#[track_caller]
fn rejects(cmdline: &str, ram: u64, line: &str) {
    assert_eq!(
        parse(cmdline, ram),
        (Err(CrashError::Invalid), vec![line.into()])
    );
}

#[test]
fn simple_sizes() {
    assert_eq!(parse("crashkernel=256M", 4 * G), (ck(256 * M, 0), vec![]));
    assert_eq!(parse_crashkernel("crashkernel=512K", G), ck(512 * K, 0));
    assert_eq!(parse_crashkernel("crashkernel=0x1000000", G), ck(16 * M, 0));
    assert_eq!(parse_crashkernel("crashkernel=1g", 4 * G), ck(G, 0));
    assert_eq!(parse_crashkernel("crashkernel=4096", G), ck(4096, 0));
    // Inside a command line: the value ends at the space.
    assert_eq!(
        parse_crashkernel("console=ttyAMA0 crashkernel=64M quiet", G),
        ck(64 * M, 0)
    );
    // The simple form checks no size against RAM (the arch does).
    assert_eq!(parse_crashkernel("crashkernel=8G", G), ck(8 * G, 0));
}

#[test]
fn simple_with_offset() {
    assert_eq!(
        parse("crashkernel=64M@16M", G),
        (ck(64 * M, 16 * M), vec![])
    );
    assert_eq!(
        parse_crashkernel("crashkernel=256M@0x60000000 quiet", 4 * G),
        ck(256 * M, 0x6000_0000)
    );
    // Linux checks nothing after '@': no value is base 0, trailing text is ignored.
    assert_eq!(parse("crashkernel=64M@", G), (ck(64 * M, 0), vec![]));
    assert_eq!(parse_crashkernel("crashkernel=64M@x", G), ck(64 * M, 0));
    assert_eq!(
        parse_crashkernel("crashkernel=64M@1Gjunk", 4 * G),
        ck(64 * M, G)
    );
}

#[test]
fn ranges_pick_the_size_by_system_ram() {
    let cmd = "crashkernel=512M-2G:64M,2G-:128M";
    assert_eq!(parse(cmd, G), (ck(64 * M, 0), vec![]));
    assert_eq!(parse_crashkernel(cmd, 4 * G), ck(128 * M, 0));
    // `end` is exclusive, `start` inclusive.
    assert_eq!(parse_crashkernel(cmd, 2 * G), ck(128 * M, 0));
    assert_eq!(parse_crashkernel(cmd, 512 * M), ck(64 * M, 0));
    assert_eq!(parse_crashkernel(cmd, 2 * G - 1), ck(64 * M, 0));
    // Below every range: not an error, but nothing to reserve.
    assert_eq!(
        parse(cmd, 256 * M),
        (
            ck(0, 0),
            vec!["crashkernel size resulted in zero bytes".into()]
        )
    );
    // Three ranges, the middle one matching.
    assert_eq!(
        parse_crashkernel("crashkernel=0-1G:32M,1G-8G:96M,8G-:256M", 3 * G),
        ck(96 * M, 0)
    );
}

#[test]
fn open_ended_range_matches_any_larger_ram() {
    assert_eq!(
        parse_crashkernel("crashkernel=0-:64M", 128 * M),
        ck(64 * M, 0)
    );
    assert_eq!(
        parse_crashkernel("crashkernel=1G-:256M", 1 << 40),
        ck(256 * M, 0)
    );
    assert_eq!(
        parse("crashkernel=1G-:256M", G - 1),
        (
            ck(0, 0),
            vec!["crashkernel size resulted in zero bytes".into()]
        )
    );
}

#[test]
fn ranges_with_offset() {
    let cmd = "crashkernel=512M-2G:64M,2G-:128M@16M";
    // The offset follows the whole list, whichever entry matched.
    assert_eq!(parse(cmd, G), (ck(64 * M, 16 * M), vec![]));
    assert_eq!(parse_crashkernel(cmd, 4 * G), ck(128 * M, 16 * M));
    // No match, no offset.
    assert_eq!(parse_crashkernel(cmd, 256 * M), ck(0, 0));
    assert_eq!(
        parse_crashkernel("crashkernel=0-:64M@0x48000000 quiet", G),
        ck(64 * M, 0x4800_0000)
    );
    rejects("crashkernel=0-:64M@", G, "Memory value expected after '@'");
    rejects("crashkernel=0-:64M@x", G, "Memory value expected after '@'");
}

#[test]
fn malformed_ranges_are_invalid_with_linux_messages() {
    rejects(
        "crashkernel=-2G:64M",
        G,
        "crashkernel: Memory value expected",
    );
    rejects("crashkernel=512M:64M", G, "crashkernel: '-' expected");
    rejects(
        "crashkernel=1G-x:64M",
        G,
        "crashkernel: Memory value expected",
    );
    rejects("crashkernel=2G-1G:64M", G, "crashkernel: end <= start");
    rejects("crashkernel=1G-1G:64M", G, "crashkernel: end <= start");
    rejects("crashkernel=1G-2Gx:64M", G, "crashkernel: ':' expected");
    rejects("crashkernel=1G-2G:", G, "Memory value expected");
    rejects("crashkernel=1G-2G:x", G, "Memory value expected");
    // A second entry must be complete too.
    rejects(
        "crashkernel=0-1G:64M,",
        2 * G,
        "crashkernel: Memory value expected",
    );
    // A size not below RAM is invalid, in any entry reached before the match.
    rejects("crashkernel=0-:2G", 2 * G, "crashkernel: invalid size");
    rejects(
        "crashkernel=0-512M:1G,512M-:64M",
        G,
        "crashkernel: invalid size",
    );
    // ... but entries after the match are not looked at.
    assert_eq!(
        parse_crashkernel("crashkernel=0-:64M,garbage", G),
        ck(64 * M, 0)
    );
}

#[test]
fn the_first_colon_before_a_space_selects_the_range_form() {
    // The ':' belongs to a later parameter: this is the simple form.
    assert_eq!(
        parse_crashkernel("crashkernel=64M root=PARTUUID=ab:cd", G),
        ck(64 * M, 0)
    );
    assert_eq!(
        parse_crashkernel("crashkernel=0-:64M root=PARTUUID=ab:cd", G),
        ck(64 * M, 0)
    );
    // No ':' at all: a range without a size is the simple form with garbage after it.
    rejects("crashkernel=1G-2G", G, "crashkernel: unrecognized char: -");
}

#[test]
fn high_and_low() {
    let cmd = "crashkernel=512M,high crashkernel=128M,low";
    // The plain form skips the suffixed options: this is arm64's cue to try ,high.
    assert_eq!(parse(cmd, 4 * G), (Err(CrashError::NotFound), vec![]));
    assert_eq!(parse_crashkernel_high(cmd, 0), ck(512 * M, 0));
    assert_eq!(parse_crashkernel_low(cmd, 0), ck(128 * M, 0));
    assert_eq!(
        parse_crashkernel_low("crashkernel=1G,high", 0),
        Err(CrashError::NotFound)
    );
    assert_eq!(
        parse_crashkernel_high("crashkernel=256M", 4 * G),
        Err(CrashError::NotFound)
    );
    // Mixed: each parser takes its own kind.
    let cmd = "crashkernel=64M crashkernel=1G,high";
    assert_eq!(parse_crashkernel(cmd, 4 * G), ck(64 * M, 0));
    assert_eq!(parse_crashkernel_high(cmd, 4 * G), ck(G, 0));
}

#[test]
fn malformed_high_and_low() {
    take_captured();
    assert_eq!(
        parse_crashkernel_high("crashkernel=,high", 0),
        Err(CrashError::Invalid)
    );
    assert_eq!(printed(), ["crashkernel: memory value expected"]);
    assert_eq!(
        parse_crashkernel_high("crashkernel=512Mx,high", 0),
        Err(CrashError::Invalid)
    );
    assert_eq!(printed(), ["crashkernel: unrecognized char: x"]);
    assert_eq!(
        parse_crashkernel_low("crashkernel=64M@16M,low", 0),
        Err(CrashError::Invalid)
    );
    assert_eq!(printed(), ["crashkernel: unrecognized char: @"]);
    // Not ending in ",high": not a high option, so for the plain parser it is the
    // simple form with garbage.
    assert_eq!(
        parse_crashkernel_high("crashkernel=512M,highx", 0),
        Err(CrashError::NotFound)
    );
    rejects(
        "crashkernel=512M,highx",
        G,
        "crashkernel: unrecognized char: ,",
    );
}

#[test]
fn the_last_occurrence_wins() {
    assert_eq!(
        parse_crashkernel("crashkernel=64M crashkernel=128M@32M", G),
        ck(128 * M, 32 * M)
    );
    assert_eq!(
        parse_crashkernel("crashkernel=0-:64M quiet crashkernel=96M", G),
        ck(96 * M, 0)
    );
    assert_eq!(
        parse_crashkernel_high("crashkernel=1G,high crashkernel=2G,high", 0),
        ck(2 * G, 0)
    );
    // Even when the last one is garbage: the earlier good one is not used.
    rejects(
        "crashkernel=64M crashkernel=lots",
        G,
        "crashkernel: memory value expected",
    );
}

#[test]
fn absent_is_not_found_and_silent() {
    for cmd in ["", "console=ttyAMA0 quiet", "crashkernel", "crashkernel64M"] {
        assert_eq!(
            parse(cmd, G),
            (Err(CrashError::NotFound), vec![]),
            "{cmd:?}"
        );
    }
    assert_eq!(CrashError::NotFound.errno(), -2);
    assert_eq!(CrashError::Invalid.errno(), -22);
    // Linux's strstr() also finds the name inside another word.
    assert_eq!(parse_crashkernel("xcrashkernel=64M", G), ck(64 * M, 0));
}

#[test]
fn missing_value_is_invalid() {
    rejects("crashkernel=", G, "crashkernel: memory value expected");
    rejects(
        "crashkernel= quiet",
        G,
        "crashkernel: memory value expected",
    );
    rejects("crashkernel=@16M", G, "crashkernel: memory value expected");
    rejects("crashkernel=M", G, "crashkernel: memory value expected");
    rejects("crashkernel=64Mx", G, "crashkernel: unrecognized char: x");
    rejects(
        "crashkernel=64M,foo",
        G,
        "crashkernel: unrecognized char: ,",
    );
}

#[test]
fn overflow_is_invalid() {
    const LINE: &str = "crashkernel: memory value out of range";
    rejects("crashkernel=99999999999999999999", G, LINE);
    rejects("crashkernel=16777216T", G, LINE);
    rejects("crashkernel=64M@99999999999999999999", G, LINE);
    rejects("crashkernel=0-99999999999999999999:64M", G, LINE);
    rejects("crashkernel=0-:64M@16E", G, LINE);
    take_captured();
    assert_eq!(
        parse_crashkernel_low("crashkernel=32E,low", 0),
        Err(CrashError::Invalid)
    );
    assert_eq!(printed(), [LINE]);
    // The largest values that fit are fine.
    assert_eq!(
        parse_crashkernel("crashkernel=0xffffffffffffffff", G),
        ck(u64::MAX, 0)
    );
    assert_eq!(parse_crashkernel("crashkernel=15E", G), ck(15 << 60, 0));
}

#[test]
fn dummy_param_accepts_anything() {
    assert_eq!(parse_crashkernel_dummy(Some("garbage")), Ok(()));
    assert_eq!(parse_crashkernel_dummy(None), Ok(()));
}
