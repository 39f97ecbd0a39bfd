//! Boot stage costs: each stage of start_kernel() and setup_arch() runs inside `timed`,
//! which records the clocksource ticks it took. `mm: init complete` prints the table.
//! Under `scripts/run --icount` guest time counts instructions, so the figures repeat.
//! (Ours: Linux has initcall_debug for initcalls, nothing for start_kernel's stages.)
//!
//! The counter comes from the architecture (`set_stage_clock`, from start_kernel), so that
//! arch code below `init` can time its own stages.

use core::sync::atomic::{AtomicUsize, Ordering};

/// The counter `timed` reads and its frequency in Hz (the arch's clocksource).
struct StageClock {
    counter: fn() -> u64,
    frequency: fn() -> u64,
}

static CLOCK: spin::Once<StageClock> = spin::Once::new();

/// Registers the counter stages are timed with (once, before the first `timed`).
pub fn set_stage_clock(counter: fn() -> u64, frequency: fn() -> u64) {
    CLOCK.call_once(|| StageClock { counter, frequency });
}

fn counter() -> u64 {
    CLOCK.get().map_or(0, |c| (c.counter)())
}

fn frequency() -> u64 {
    CLOCK.get().map_or(0, |c| (c.frequency)())
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

/// Runs one boot stage and records what it cost.
pub fn timed<R>(name: &'static str, f: impl FnOnce() -> R) -> R {
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
