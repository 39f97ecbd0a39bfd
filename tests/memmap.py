#!/usr/bin/env python3
"""The memory picture end to end (a scripts/test step): boot 128M, 4G on 2 NUMA nodes and
16G (and 1G with crashkernel= and an initrd, and a device tree with /memreserve/ and
/reserved-memory) with `scripts/run --batch --report`, check each JSON report against itself, draw it
with scripts/memmap, render the SVG to PNG with a real renderer (rsvg-convert, Debian's
librsvg2-bin), and check the picture is not blank (pixel variety) and that its legend
names every owner the report gives. The checkers are first shown to fail on a blank
picture and on a legend that lacks an owner. Then the monitor's `report` on a 256M boot:
to a named file, to the mm_report= path, and to a path the host cannot open.

  python3 tests/memmap.py [--keep DIR] [--only NAME]

Exit status: 0 all passed; 1 a check failed; 3 rsvg-convert is missing.
"""

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# name, scripts/run options, DRAM in MiB, nodes, owners the report must name beyond the
# ones every boot has, and whether a no-map memory region must show.
MACHINES = [
    ("128M", ["-m", "128M"], 128, 1, set(), False),
    ("4G-numa2", ["-m", "4G", "--numa", "2"], 4096, 2, set(), False),
    ("16G", ["-m", "16G"], 16384, 1, set(), False),
    ("1G-crashkernel-initrd", ["-m", "1G", "--append", "crashkernel=64M", "--", "-initrd",
                               "tests/fixtures/boot/initrd.img"], 1024, 1, {"crashkernel", "initrd"}, False),
    # /memreserve/, a static no-map region and a dynamic 64 MiB CMA pool; 512 MiB of memory.
    ("reserved-memory", ["-m", "1G", "--dtb", "tests/fixtures/dtb/g_reserved_mem.dtb"], 512, 1,
     {"reserved-memory"}, True),
]
SVG_NS = "{http://www.w3.org/2000/svg}"


def png_pixels(path):
    """Decodes an 8-bit non-interlaced PNG (what rsvg-convert writes): (width, height,
    rows of bytes, bytes per pixel)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    if depth != 8 or interlace != 0 or ctype not in (2, 6, 0, 4):
        raise ValueError(f"unsupported PNG (depth {depth}, colour type {ctype}, interlace {interlace})")
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ft == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, rows, bpp


def check_not_blank(png):
    """The picture has many colours and a good share of non-white pixels."""
    w, h, rows, bpp = png_pixels(png)
    colours, inked = set(), 0
    for r in rows[::2]:
        for x in range(0, w * bpp, bpp * 2):
            px = r[x:x + min(bpp, 3)]
            colours.add(px)
            if px != b"\xff" * len(px):
                inked += 1
    sampled = ((h + 1) // 2) * ((w + 1) // 2)
    share = inked / max(sampled, 1)
    if len(colours) < 12 or share < 0.05:
        return f"{png}: blank-looking picture: {len(colours)} colours, {share:.1%} non-white pixels"
    return None


def legend_texts(svg):
    root = ET.parse(svg).getroot()
    g = next((e for e in root.iter(SVG_NS + "g") if e.get("id") == "legend"), None)
    if g is None:
        return None
    return ["".join(t.itertext()) for t in g.iter(SVG_NS + "text")]


def check_legend(svg, report):
    texts = legend_texts(svg)
    if texts is None:
        return f"{svg}: no legend"
    owners = sorted({r["owner"] for r in report["reserved"]})
    missing = [o for o in owners if not any(t.startswith(o + " (") for t in texts)]
    if missing:
        return f"{svg}: the legend does not name {missing}"
    return None


def check_report(name, r, mem_mib, nodes, extra_owners, nomap):
    """The report agrees with itself and with the machine asked for."""
    errs = []
    if nomap != any(m["nomap"] for m in r["memory"]):
        errs.append(f"no-map memory {'missing' if nomap else 'unexpected'}")
    banks = sum(b["size"] for b in r["banks"])
    if banks != mem_mib << 20:
        errs.append(f"banks total {banks}, not {mem_mib} MiB")
    if len(r["nodes"]) != nodes:
        errs.append(f"{len(r['nodes'])} nodes, not {nodes}")
    page = r["page_size"]
    # The reserved parts: in address order, no overlap, inside memory, sizes positive.
    mem = sorted((m["base"], m["base"] + m["size"]) for m in r["memory"])
    last = 0
    for p in r["reserved"]:
        if p["size"] <= 0 or p["base"] < last:
            errs.append(f"reserved part {p} out of order or empty")
        last = p["base"] + p["size"]
        if not any(b <= p["base"] and last <= e for b, e in mem):
            errs.append(f"reserved part {p} outside memory")
    owners = {p["owner"] for p in r["reserved"]}
    for o in {"kernel text", "kernel rodata", "dtb", "memmap", "page tables", "percpu", "NODE_DATA",
              "early heap"} | extra_owners:
        if o not in owners:
            errs.append(f"no reserved range owned by {o}")
    # The free runs: in order, no overlap, each inside a zone; they add up to the zones'
    # free pages (the per-CPU lists are not on the free lists, nor in NR_FREE_PAGES).
    zones = [(z["start_pfn"], z["start_pfn"] + z["spanned"]) for z in r["zones"]]
    last = 0
    for pfn, n, order, mt in r["free"]:
        if pfn < last or n % (1 << order) or pfn % (1 << order):
            errs.append(f"free run {[pfn, n, order, mt]} misplaced")
        last = pfn + n
        if not any(b <= pfn and last <= e for b, e in zones):
            errs.append(f"free run {[pfn, n, order, mt]} outside every zone")
    free_runs = sum(n for _, n, _, _ in r["free"])
    free_zones = sum(z["free"] for z in r["zones"])
    if r["free_truncated"] or free_runs != free_zones:
        errs.append(f"free runs hold {free_runs} pages, the zones count {free_zones} free")
    if free_zones < (mem_mib << 20) // page // 2:
        errs.append(f"only {free_zones} free pages")
    return [f"{name}: {e}" for e in errs]


def monitor_report(out):
    """The monitor's `report [FILE]`: a named file, the mm_report= default, and a path the
    host cannot open (one `mm: ` line). Returns the failures."""
    import select
    import time
    j0, j1 = os.path.join(out, "mon-boot.json"), os.path.join(out, "mon-cmd.json")
    bad = os.path.join(out, "no-such-dir", "x.json")
    p = subprocess.Popen(["scripts/run", "-m", "256M", "--report", j0], cwd=ROOT,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    buf = b""

    def until(tok, timeout=120):
        nonlocal buf
        end = time.time() + timeout
        while tok not in buf:
            r, _, _ = select.select([p.stdout], [], [], max(0, end - time.time()))
            d = os.read(p.stdout.fileno(), 65536) if r else b""
            if not d:
                raise RuntimeError(f"waiting for {tok!r}: {buf[-1500:].decode(errors='replace')}")
            buf += d
        i = buf.index(tok) + len(tok)
        got, buf = buf[:i], buf[i:]
        return got.decode(errors="replace")

    def cmd(line):
        p.stdin.write(line.encode() + b"\r")
        p.stdin.flush()
        return until(b"mm> ")

    fails = []
    try:
        until(b"mm> ")
        with open(j0) as f:
            if json.load(f)["when"] != "end of init":
                fails.append("monitor: the boot's report is not 'end of init'")
        o = cmd("report " + j1)
        if "report written to " + j1 not in o:
            fails.append(f"monitor: report FILE said {o!r}")
        else:
            with open(j1) as f:
                r = json.load(f)
            if r["when"] != "monitor" or not r["free"]:
                fails.append("monitor: report FILE wrote no monitor report")
        o = cmd("report")
        with open(j0) as f:
            if "report written to " + j0 not in o or json.load(f)["when"] != "monitor":
                fails.append(f"monitor: report (default path) said {o!r}")
        o = cmd("report " + bad)
        lines = [l for l in o.splitlines() if l.startswith("mm: ")]
        if lines != ["mm: report: the host could not open the file"] or os.path.exists(bad):
            fails.append(f"monitor: report to a bad path said {o!r}")
        p.stdin.write(b"poweroff\r")
        p.stdin.flush()
        if p.wait(timeout=60) != 0:
            fails.append(f"monitor: poweroff exit {p.returncode}")
    except (RuntimeError, OSError, ValueError, KeyError) as e:
        fails.append(f"monitor: {e}")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    if not fails:
        print("tests/memmap.py: monitor: report FILE, report (mm_report= path) and a bad path: ok")
    return fails


def run(cmd, **kw):
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", help="keep the JSON, SVG and PNG files in this directory")
    ap.add_argument("--only", help="only this machine (" + ", ".join(m[0] for m in MACHINES) + ")")
    a = ap.parse_args()
    if not shutil.which("rsvg-convert"):
        print("tests/memmap.py: rsvg-convert is missing (Debian: librsvg2-bin)", file=sys.stderr)
        return 3
    out = a.keep or tempfile.mkdtemp(prefix="memmap.")
    os.makedirs(out, exist_ok=True)
    fails = []

    # The checkers can fail: a blank picture, and a legend without an owner.
    blank_svg, blank_png = os.path.join(out, "blank.svg"), os.path.join(out, "blank.png")
    with open(blank_svg, "w") as f:
        f.write('<svg xmlns="http://www.w3.org/2000/svg" width="300" height="100">'
                '<rect width="100%" height="100%" fill="#fff"/><g id="legend"><text>other (1 KiB)</text></g></svg>')
    if run(["rsvg-convert", blank_svg, "-o", blank_png]).returncode != 0:
        fails.append("rsvg-convert failed on the blank picture")
    elif check_not_blank(blank_png) is None:
        fails.append("the blankness check passed a blank picture")
    if check_legend(blank_svg, {"reserved": [{"owner": "other"}, {"owner": "dtb"}]}) is None:
        fails.append("the legend check passed a legend without 'dtb'")

    for name, opts, mem_mib, nodes, extra_owners, nomap in MACHINES:
        if a.only and a.only != name:
            continue
        js, svg, png = (os.path.join(out, f"memmap-{name}.{e}") for e in ("json", "svg", "png"))
        if os.path.exists(js):
            os.remove(js)
        r = run(["scripts/run", "--batch", "--timeout", "120", "--report", js] + opts)
        if r.returncode != 0 or "mm: report written to " + js not in r.stdout:
            fails.append(f"{name}: scripts/run exit {r.returncode}:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
            continue
        with open(js) as f:
            report = json.load(f)
        fails += check_report(name, report, mem_mib, nodes, extra_owners, nomap)
        r = run([sys.executable, "scripts/memmap", js, "-o", svg])
        if r.returncode != 0:
            fails.append(f"{name}: scripts/memmap: {r.stderr}")
            continue
        r = run(["rsvg-convert", svg, "-o", png])
        if r.returncode != 0:
            fails.append(f"{name}: rsvg-convert: {r.stderr}")
            continue
        for e in (check_not_blank(png), check_legend(svg, report)):
            if e:
                fails.append(f"{name}: {e}")
        size = os.path.getsize(js)
        owners = sorted({p["owner"] for p in report["reserved"]})
        print(f"tests/memmap.py: {name}: report {size} bytes, {len(report['reserved'])} reserved parts "
              f"({', '.join(owners)}), {len(report['free'])} free runs; {svg} rendered "
              f"({os.path.getsize(png)} bytes of PNG)")
    if not a.only:
        fails += monitor_report(out)
    if not a.keep:
        shutil.rmtree(out, ignore_errors=True)
    for f in fails:
        print(f"tests/memmap.py: FAIL {f}")
    print(f"tests/memmap.py: {'ok' if not fails else f'{len(fails)} failures'}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
