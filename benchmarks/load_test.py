"""Load test of the app: N concurrent gradio_client clients, each sending M generate requests one
after the other, against app.py's demo (its own queue and launch options) on a tiny random
checkpoint launched on a free 127.0.0.1 port.

Every request must either complete ("Done" in the status) or be refused with gradio's clear
"Queue is full" error once the queue's max_size is reached; anything else counts as an unexpected
error (must be 0). Reports p50/p95 client latency (submit to final result) of completed requests.

    python benchmarks/load_test.py                     # 20 clients x 3 requests, 2 steps
    python benchmarks/load_test.py --clients 5 --requests 2 --steps 2

Writes benchmarks/results/load.json and load.md. Loopback only; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "tests" / "e2e"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
RESULTS = ROOT / "benchmarks" / "results"
PROMPTS = ["a red circle moving left", "a blue square moving up", "a green triangle moving right",
           "a big purple circle moving down"]


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def run_load(url: str, clients: int = 20, requests: int = 3, steps: int = 2, timeout: float = 600.0,
             download_dir: str | None = None) -> dict:
    """Drive `url` with `clients` threads, each with its own Client sending `requests` generations in
    turn. Returns counts (ok / queue_full / errors), error messages and latency percentiles."""
    from gradio_client import Client

    lock = threading.Lock()
    latencies: list[float] = []
    queue_full: list[str] = []
    errors: list[str] = []
    download_dir = download_dir or tempfile.mkdtemp(prefix="vidgen-load-")
    start_gate = threading.Barrier(clients)

    def worker(i: int) -> None:
        try:
            client = Client(url, download_files=download_dir, verbose=False)
        except Exception as err:  # noqa: BLE001 - counted, reported
            with lock:
                errors.extend([f"client {i}: {type(err).__name__}: {err}"] * requests)
            start_gate.abort()
            return
        try:
            try:
                start_gate.wait(timeout=120)  # all clients connected, then all fire at once
            except threading.BrokenBarrierError:
                pass
            for j in range(requests):
                t0 = time.perf_counter()
                try:
                    out = client.submit(PROMPTS[(i + j) % len(PROMPTS)], steps=steps, seed=i * 100 + j,
                                        api_name="/generate").result(timeout=timeout)
                    ok = isinstance(out, (list, tuple)) and len(out) > 2 and "Done" in str(out[2])
                    with lock:
                        if ok:
                            latencies.append(time.perf_counter() - t0)
                        else:
                            errors.append(f"client {i} req {j}: unexpected result {str(out)[:200]}")
                except Exception as err:  # noqa: BLE001 - classified below
                    msg = f"{type(err).__name__}: {err}"
                    with lock:
                        (queue_full if "queue is full" in msg.lower() else errors).append(
                            f"client {i} req {j}: {msg[:300]}")
        finally:
            client.close()

    t_start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout * requests + 180)
    wall = time.perf_counter() - t_start
    hung = sum(t.is_alive() for t in threads)
    if hung:
        errors.append(f"{hung} client thread(s) did not finish in time")
    return dict(
        clients=clients, requests_per_client=requests, steps=steps, total=clients * requests,
        ok=len(latencies), queue_full=len(queue_full), errors=len(errors),
        error_messages=errors[:20], queue_full_messages=queue_full[:5],
        latency_p50_s=_percentile(latencies, 0.50), latency_p95_s=_percentile(latencies, 0.95),
        latency_max_s=max(latencies) if latencies else None, wall_s=wall,
        throughput_per_s=len(latencies) / wall if wall else None,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=600.0, help="per request, seconds")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    import app
    from conftest import launched, save_tiny_checkpoint

    with tempfile.TemporaryDirectory(prefix="vidgen-load-") as tmp:
        tmp = Path(tmp)
        ckpt = save_tiny_checkpoint(tmp / "ckpt")
        with launched(ckpt, tmp, steps=args.steps) as (url, _demo):
            res = run_load(url, args.clients, args.requests, args.steps, args.timeout, str(tmp / "dl"))
    import gradio
    res.update(queue=app.QUEUE, model="tiny random (conftest.TINY_APP, 4 frames 32x32)",
               date=datetime.datetime.now().isoformat(timespec="seconds"), python=platform.python_version(),
               gradio=gradio.__version__, cpus=os.cpu_count(), machine=platform.machine())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "load.json").write_text(json.dumps(res, indent=2) + "\n")
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    md = [
        "# Load test", "",
        f"`python benchmarks/load_test.py --clients {res['clients']} --requests {res['requests_per_client']} "
        f"--steps {res['steps']}` on {res['date']} ({res['cpus']} CPUs, gradio {res['gradio']}, "
        f"queue {res['queue']}, {res['model']}).", "",
        "| clients | requests each | total | completed | queue full | unexpected errors | p50 s | p95 s | max s | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {res['clients']} | {res['requests_per_client']} | {res['total']} | {res['ok']} | {res['queue_full']} | "
        f"{res['errors']} | {fmt(res['latency_p50_s'])} | {fmt(res['latency_p95_s'])} | {fmt(res['latency_max_s'])} | "
        f"{fmt(res['wall_s'])} |", "",
        "Latency is client-side, submit() to final result, over loopback, completed requests only. "
        "With one generation at a time, latency grows with queue position; requests past the queue's "
        "max_size get gradio's \"Queue is full\" error, which counts as expected, not as an error.",
    ]
    if res["error_messages"]:
        md += ["", "Unexpected errors:", ""] + [f"- `{m}`" for m in res["error_messages"]]
    (args.out / "load.md").write_text("\n".join(md) + "\n")
    print(json.dumps({k: v for k, v in res.items() if not k.endswith("messages")}, indent=2))
    return 0 if res["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
