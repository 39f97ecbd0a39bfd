//! Boot stage costs: each stage of start_kernel() and setup_arch() runs inside `timed`,
//! which records the clocksource ticks it took. `mm: init complete` prints the table.
//! Under `scripts/run --icount` guest time counts instructions, so the figures repeat.
//! (Ours: Linux has initcall_debug for initcalls, nothing for start_kernel's stages.)
//!
//! The counter comes from the architecture: its `time::timed` passes its clocksource read
//! to [`timed`], where it is inlined, so that nothing but the stage runs between the two
//! reads (a call through a registered hook would be counted in every stage). The frequency,
//! needed only to print, is registered (`set_stage_clock`, from start_kernel).

use core::sync::atomic::{AtomicUsize, Ordering};

/// The frequency in Hz of the counter stages are timed with (the arch's clocksource).
static FREQUENCY: spin::Once<fn() -> u64> = spin::Once::new();

/// Registers the frequency of the counter the arch times stages with.
pub fn set_stage_clock(frequency: fn() -> u64) {
    FREQUENCY.call_once(|| frequency);
}

fn frequency() -> u64 {
    FREQUENCY.get().map_or(0, |f| f())
}

const MAX_STAGES: usize = 32;

struct Stage {
    name: &'static str,
    ticks: u64,
    depth: usize,
}

static STAGES: spin::Mutex<[Option<Stage>; MAX_STAGES]> =
    spin::Mutex::new([const { None }; MAX_STAGES]);
static DEPTH: AtomicUsize = AtomicUsize::new(0);

/// Runs one boot stage and records what it cost in ticks of `counter` (the arch's
/// clocksource; arch code calls this through its `time::timed`).
pub fn timed<R>(counter: impl Fn() -> u64, name: &'static str, f: impl FnOnce() -> R) -> R {
    let depth = DEPTH.fetch_add(1, Ordering::Relaxed);
    let slot = {
        let mut st = STAGES.lock();
        let slot = st.iter().position(|s| s.is_none());
        if let Some(i) = slot {
            st[i] = Some(Stage {
                name,
                ticks: 0,
                depth,
            });
        }
        slot
    };
    let t0 = counter();
    let r = f();
    let dt = counter() - t0;
    DEPTH.fetch_sub(1, Ordering::Relaxed);
    if let Some(i) = slot {
        if let Some(s) = STAGES.lock()[i].as_mut() {
            s.ticks = dt;
        }
    }
    r
}

/// Calls `out(name, depth, nanoseconds)` for every recorded stage, in boot order.
pub fn for_each_stage(mut out: impl FnMut(&str, usize, u64)) {
    let freq = frequency().max(1);
    for s in STAGES.lock().iter().flatten() {
        out(
            s.name,
            s.depth,
            (s.ticks as u128 * 1_000_000_000 / freq as u128) as u64,
        );
    }
}

/// Prints the stage table (`mm: init complete` follows it).
pub fn print_stage_costs() {
    for_each_stage(|name, depth, ns| {
        pr_info!(
            "mm: stage {:indent$}{:<22} {:>8}.{:03} ms",
            "",
            name,
            ns / 1_000_000,
            (ns / 1000) % 1000,
            indent = depth * 2
        );
    });
}
