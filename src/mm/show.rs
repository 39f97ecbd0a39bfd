//! Reports over the memory-management structures (Linux: mm/vmstat.c's /proc/zoneinfo,
//! mm/show_mem.c). Each report is a function that hands lines to a sink, separate from where
//! they are printed: the console, a test, later a monitor.

use core::fmt::Write;
use core::sync::atomic::Ordering;

use super::mmzone::{NodeDataMap, WMARK_HIGH, WMARK_LOW, WMARK_MIN};
use crate::kernel::params::SetupResult;

/// A line of a report (fixed buffer: no allocator is needed to print one).
struct Line {
    buf: [u8; 128],
    len: usize,
}

impl Line {
    fn new() -> Self {
        Self {
            buf: [0; 128],
            len: 0,
        }
    }
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

macro_rules! emit {
    ($out:expr, $($arg:tt)*) => {{
        let mut l = Line::new();
        let _ = write!(l, $($arg)*);
        $out(l.as_str());
    }};
}

/// Linux: zoneinfo_show_print() — the sizes part of `/proc/zoneinfo`, for every populated
/// zone of every node (free counts join once the buddy allocator runs).
pub fn zoneinfo(nodes: &NodeDataMap, out: &mut dyn FnMut(&str)) {
    for pgdat in nodes.pgdats() {
        for zone in pgdat
            .node_zones
            .iter()
            .filter(|z| z.present_pages > 0 || z.spanned_pages > 0)
        {
            emit!(out, "Node {}, zone {:>8}", pgdat.node_id, zone.name());
            let wm = |i: usize| zone._watermark[i].load(Ordering::Relaxed);
            // Linux: zone_page_state(NR_FREE_PAGES) — the buddy's free blocks, in pages.
            let free: u64 = zone
                .free_area
                .iter()
                .enumerate()
                .map(|(o, a)| a.nr_free << o)
                .sum();
            emit!(out, "  pages free     {}", free);
            emit!(out, "        min      {}", wm(WMARK_MIN));
            emit!(out, "        low      {}", wm(WMARK_LOW));
            emit!(out, "        high     {}", wm(WMARK_HIGH));
            emit!(out, "        spanned  {}", zone.spanned_pages);
            emit!(out, "        present  {}", zone.present_pages);
            emit!(
                out,
                "        managed  {}",
                zone.managed_pages.load(Ordering::Relaxed)
            );
            emit!(out, "  start_pfn:           {}", zone.zone_start_pfn);
        }
    }
}

static MMINIT_LOGLEVEL: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// Linux: mminit_loglevel= — at MMINIT_VERIFY (1) and above, the zone report is printed
/// after the zones are set up.
fn set_mminit_loglevel(val: Option<&str>) -> SetupResult {
    let v = val
        .and_then(crate::kernel::params::parse_u64)
        .ok_or("expected a number")?;
    MMINIT_LOGLEVEL.store(v as u32, Ordering::Relaxed);
    Ok(())
}
crate::early_param!("mminit_loglevel", set_mminit_loglevel);

/// Prints [`zoneinfo`] if `mminit_loglevel=` asks for it.
pub fn mminit_print_zoneinfo(nodes: &NodeDataMap) {
    if MMINIT_LOGLEVEL.load(Ordering::Relaxed) >= 1 {
        pr_info!("mminit::zoneinfo");
        zoneinfo(nodes, &mut |l| pr_info!("{}", l));
    }
}
