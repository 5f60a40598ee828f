"""Leak check of the app: RSS of the serving process after N sequential generations compared with
after the first 10 (warm-up), and the size of gradio's temp dir. The app is app.py's demo on a tiny
random checkpoint, launched in this process on a free 127.0.0.1 port and driven by gradio_client.

    python benchmarks/leak_test.py --runs 100

Writes benchmarks/results/leak.json and leak.md. Loopback only; nothing is downloaded.
"""

from __future__ import annotations

import argparse
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


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def dir_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20 if folder.exists() else 0.0


def run_leak(url: str, temp_dir: Path, runs: int = 100, warmup: int = 10, steps: int = 2,
             download_dir: str | None = None) -> dict:
    """`runs` sequential generations through one client; RSS (this process, which serves the app)
    after `warmup` and at the end, and the temp dir size at both points."""
    from gradio_client import Client

    client = Client(url, download_files=download_dir or tempfile.mkdtemp(prefix="vidgen-leak-"), verbose=False)
    rss, tmp = {}, {}
    try:
        for i in range(runs):
            out = client.predict("a red circle moving left", steps=steps, seed=i, api_name="/generate")
            assert "Done" in out[2], out[2]
            if i + 1 in (warmup, runs):
                gc.collect()
                rss[i + 1], tmp[i + 1] = rss_mb(), dir_mb(temp_dir)
    finally:
        client.close()
    base, end = rss[warmup], rss[runs]
    return dict(runs=runs, warmup=warmup, steps=steps, rss_after_warmup_mb=base, rss_end_mb=end,
                rss_growth_pct=100 * (end - base) / base, temp_after_warmup_mb=tmp[warmup],
                temp_end_mb=tmp[runs])


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
    res["date"] = datetime.datetime.now().isoformat(timespec="seconds")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "leak.json").write_text(json.dumps(res, indent=2) + "\n")
    (args.out / "leak.md").write_text(
        "# Leak check\n\n"
        f"`python benchmarks/leak_test.py --runs {res['runs']} --steps {res['steps']}` on {res['date']} "
        "(tiny random model, app served in-process, one client, sequential).\n\n"
        "| runs | RSS after 10 MB | RSS at end MB | growth % | temp after 10 MB | temp at end MB |\n"
        "|---|---|---|---|---|---|\n"
        f"| {res['runs']} | {res['rss_after_warmup_mb']:.1f} | {res['rss_end_mb']:.1f} | "
        f"{res['rss_growth_pct']:.2f} | {res['temp_after_warmup_mb']:.2f} | {res['temp_end_mb']:.2f} |\n")
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
