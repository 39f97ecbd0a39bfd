"""Print the memory-management lines of a Linux boot log that this kernel must reproduce
byte for byte (timestamps stripped), in order. Used by scripts/qemu-runner's
`expect-linux-lines FILE`.

Compared: the NUMA fake-node lines, Zone ranges and its zone lines, Movable zone start,
Early memory node ranges and its node lines, Initmem setup node, On node N ... unavailable
ranges, psci: (the firmware probe psci_dt_init prints), smp_init_cpus' clipping warning
(`Number of cores (N) exceeds configured maximum of M - clipping`, for nr_cpus=), the
pcpu-alloc: group lines (KERN_DEBUG: tests/zones boots with loglevel=8, as capture.sh
does), Fallback order for Node, Built N zonelists ... Total pages, Policy zone, and smp_init's
smp:, CPUn: Booted secondary processor, SMP: Total of, CPU: All CPU(s) started, and
swiotlb_init's `software IO TLB:` lines (Linux puts the buffer right below CMA's area).
Not compared: values that honestly differ (NODE_DATA addresses, Memory: available).

With --cma (`linux-lines.py --cma FILE`): also CMA's `cma:` lines (dma_contiguous_reserve's
`Reserved N MiB at` / `Failed to reserve`, and their reasons) and, as a fragment prefixed
`~` (qemu-runner greps for it without the timestamp's `] `), the Memory: line's
`, NK cma-reserved)`: the rest of that line counts the kernel image, which differs."""
import re
import sys

PREFIXES = (
    "NUMA: No NUMA configuration found",
    "NUMA: Faking a node at ",
    "Zone ranges:",
    "  DMA      ",
    "  DMA32    ",
    "  Normal   ",
    "Movable zone start for each node",
    "Early memory node ranges",
    "  node ",
    "  Node ",
    "Initmem setup node ",
    "On node ",
    "psci: ",
    "Number of cores (",
    "pcpu-alloc: [",
    "Fallback order for Node ",
    "Built ",
    "Policy zone: ",
    "smp: ",
    "SMP: Total of ",
    "CPU: All CPU(s) started",
    "software IO TLB: ",
)

def mm_lines(text, cma=False):
    """The compared lines of a boot log's text, timestamps stripped, in order (with `cma`:
    the cma: lines and the `~, NK cma-reserved)` fragment too)."""
    out = []
    for line in text.splitlines():
        line = line.rstrip("\r\n")
        m = re.match(r"^\[\s*\d+\.\d+\] (.*)$", line)
        if not m:
            continue
        text = m.group(1)
        if cma and text.startswith("cma: "):
            out.append(text)
            continue
        if cma and text.startswith("Memory: "):
            f = re.search(r", \d+K cma-reserved\)$", text)
            if f:
                out.append("~" + f.group(0))
            continue
        if text.startswith(PREFIXES) and not text.startswith("On node ") or re.match(r"On node \d+, zone \w+: \d+ pages in unavailable ranges", text) or re.match(r"CPU\d+: Booted secondary processor ", text):
            if text.startswith("Built ") and "zonelists" not in text:
                continue
            out.append(text)
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    want_cma = "--cma" in args
    args = [a for a in args if a != "--cma"]
    with open(args[0], encoding="utf-8", errors="replace") as f:
        for l in mm_lines(f.read(), cma=want_cma):
            print(l)
