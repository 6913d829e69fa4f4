"""Markdown table, bar chart and README section from a results JSON.

python bench/report.py [bench/results/latest.json]   # print the table, redraw the chart
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"
MIB = 2**20

#: (summary key, label, higher is better, scale, decimals, target ratio ours/best or None)
LINES = [
    ("drain_rate", "Drain 20k jobs (jobs/s, from worker start)", True, 1, 0, 3.0),
    ("drain_steady_rate", "Drain, steady state (jobs/s, from first job)", True, 1, 0, None),
    ("enqueue_rate", "Enqueue, one job per call (jobs/s)", True, 1, 0, 1.5),
    ("bulk_rate", "Enqueue, bulk API (jobs/s)", True, 1, 0, 2.0),
    ("latency_p50_ms", "Latency enqueue→start p50 (ms) @200/s", False, 1, 2, None),
    ("latency_p95_ms", "Latency p95 (ms)", False, 1, 2, None),
    ("latency_p99_ms", "Latency p99 (ms)", False, 1, 2, 1.0),
    ("idle_uss", "Idle worker tree USS (MiB)", False, MIB, 1, 1.0),
    ("idle_rss", "Idle worker tree RSS (MiB)", False, MIB, 1, None),
    ("idle_cmds_per_s_per_worker", "Idle Redis commands/s per worker process", False, 1, 2, None),
    ("cmds_per_job", "Redis commands per job, drain (incl. inside Lua)", False, 1, 1, None),
    ("enqueue_cmds_per_job", "Redis commands per job, single enqueue", False, 1, 1, None),
    ("cpu_per_1000", "CPU s per 1,000 jobs (workers + Redis)", False, 1, 3, None),
    ("worker_cpu_per_1000", "… of which workers", False, 1, 3, None),
    ("drain_startup_s", "Worker start → first job (s)", False, 1, 2, None),
]


def _fmt(v: float, scale: float, dec: int) -> str:
    return f"{v / scale:,.{dec}f}"


def cell(s: dict | None, scale: float, dec: int) -> str:
    if not s:
        return "n/a"
    med = _fmt(s["median"], scale, dec)
    if s.get("n", 1) > 1:
        return f"{med} ({_fmt(s['min'], scale, dec)}–{_fmt(s['max'], scale, dec)})"
    return med


def ratios(result: dict, mine_name: str = "taskqueue") -> list[dict]:
    """ours/best-peer for each line (best = highest or lowest median among peers; taskqueue's
    own variants are not peers)."""
    libs = result["libraries"]
    ours = libs.get(mine_name, {}).get("summary", {})
    out = []
    for key, label, higher, _scale, _dec, target in LINES:
        mine = (ours.get(key) or {}).get("median")
        peers = {
            n: (lib.get("summary", {}).get(key) or {}).get("median")
            for n, lib in libs.items()
            if not n.startswith("taskqueue")
        }
        peers = {n: v for n, v in peers.items() if v is not None}
        if mine is None or not peers:
            out.append({"key": key, "label": label, "ratio": None, "best": None, "target": target})
            continue
        best = (max if higher else min)(peers, key=peers.get)
        ratio = mine / peers[best] if peers[best] else float("inf")
        met = None
        if target is not None:
            met = ratio >= target if higher else ratio <= target
        out.append({"key": key, "label": label, "ratio": ratio, "best": best, "target": target,
                    "met": met, "higher": higher})  # fmt: skip
    return out


def table(result: dict) -> str:
    libs = result["libraries"]
    names = list(libs)
    rat = {r["key"]: r for r in ratios(result)}
    arat = {r["key"]: r for r in ratios(result, "taskqueue-async")}
    head = "| | " + " | ".join(f"{n} {libs[n]['version']}" for n in names)
    head += " | sync task / best peer | async task / best peer |\n"
    head += "|---" * (len(names) + 3) + "|\n"
    rows = []
    for key, label, higher, scale, dec, target in LINES:
        cells = [cell(libs[n].get("summary", {}).get(key), scale, dec) for n in names]
        r = rat.get(key, {})
        if r.get("ratio") is None:
            rc = "–"
        else:
            rc = f"{r['ratio']:.2f}× vs {r['best']}"
            if target is not None:
                goal = f"≥ {target:g}×" if higher else f"≤ {target:g}×"
                rc += f" (target {goal}: {'met' if r['met'] else '**not met**'})"
        a = arat.get(key, {})
        ac = "–" if a.get("ratio") is None else f"{a['ratio']:.2f}× vs {a['best']}"
        rows.append(f"| {label} | " + " | ".join(cells) + f" | {rc} | {ac} |")
    # the absolute idle target
    ours = libs.get("taskqueue", {}).get("summary", {}).get("idle_cmds_per_s_per_worker")
    if ours:
        rows[[k for k, *_ in LINES].index("idle_cmds_per_s_per_worker")] = (
            rows[[k for k, *_ in LINES].index("idle_cmds_per_s_per_worker")][:-2]
            + f"; target ≤ 1/s: {'met' if ours['median'] <= 1 else '**not met**'} |"
        )
    text = head + "\n".join(rows) + "\n"
    if result.get("skipped"):
        text += "\nSkipped: " + "; ".join(f"**{n}**: {why.splitlines()[0][:300]}"
                                          for n, why in result["skipped"].items()) + "\n"  # fmt: skip
    return text


def configs(result: dict) -> str:
    lines = [f"- **{n}** {lib['version']}: {lib['config']}; bulk API: {lib['bulk_api'] or 'none'}"
             for n, lib in result["libraries"].items()]  # fmt: skip
    return "\n".join(lines) + "\n"


def scaling_table(result: dict) -> str:
    out = []
    for name, lib in result["libraries"].items():
        sc = lib.get("scaling")
        if not sc:
            continue
        out.append(
            f"\n**{name}** drain rate, jobs/s (from worker start; steady state in brackets)\n"
        )
        out.append("| dimension | value | jobs | jobs/s | steady jobs/s |\n|---|---|---|---|---|")
        for kind, cases in sc.items():
            for label, c in cases.items():
                out.append(f"| {kind} | {label} | {c['jobs']} | {cell(c['rate'], 1, 0)} | "
                           f"{cell(c['steady_rate'], 1, 0)} |")  # fmt: skip
        bl = lib.get("backlog")
        if bl:
            out.append(f"\n**{name}** cost with jobs already waiting\n")
            out.append("| waiting | enqueue µs/call | fetch+ack µs/job |\n|---|---|---|")
            for size, b in bl.items():
                out.append(f"| {int(size):,} | {cell(b['enqueue_us'], 1, 1)} | "
                           f"{cell(b['fetch_ack_us_per_job'], 1, 1)} |")  # fmt: skip
    if not out:
        return (
            "\nNot measured in this run (`--no-scaling --no-backlog`); "
            "`python3 bench/run.py --only taskqueue` measures it.\n"
        )
    return "\n".join(out) + "\n"


def memory_table(result: dict) -> str:
    out = ["| library | process | RSS MiB | USS MiB |", "|---|---|---|---|"]
    for name, lib in result["libraries"].items():
        runs = lib.get("runs") or []
        if not runs:
            continue
        for p in runs[-1]["idle"]["processes"]:
            out.append(f"| {name} | `{p['cmd'][:70]}` | {p['rss'] / MIB:.1f} | "
                       f"{p['uss'] / MIB:.1f} |")  # fmt: skip
    return "\n".join(out) + "\n"


def _git(result: dict) -> str:
    g = result.get("git") or {}
    if not g.get("commit"):
        return "unknown commit"
    return f"commit {g['commit']}" + (
        " + uncommitted taskqueue/ changes" if g["taskqueue_dirty"] else ""
    )


def section(result: dict, chart_name: str = "results/chart.png") -> str:
    m = result["machine"]
    s = result["settings"]
    return (
        f"Run of {result['date']} on {m['cpus']} × {m['cpu_model']}, {m['memory_gib']} GiB, "
        f"{m['os']}, Python {m['python']}, redis-server {result['redis']}"
        + "".join(f", {k} {v}" for k, v in m.get("clients", {}).items())
        + ". "
        f"Tree: {_git(result)}. Command: `{result['command']}`. Jobs per drain {s['jobs']:,}, single enqueue "
        f"{s['enqueue_jobs']:,}, runs {s['runs']} (median, min–max), {s['procs']} worker "
        f"processes, concurrency {s['concurrency']} where offered.\n\n"
        + table(result)
        + f"\n![bench chart]({chart_name})\n\nConfigurations:\n\n"
        + configs(result)
        + "\nScaling:\n"
        + scaling_table(result)
        + "\nIdle worker trees, per process (last run):\n\n"
        + memory_table(result)
    )


def update_readme(result: dict, readme: Path) -> None:
    text = readme.read_text() if readme.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text:
        text += f"\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + START + "\n" + section(result) + END + tail)


def chart(result: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("[bench] matplotlib not installed: no chart", file=sys.stderr)
        return
    libs = result["libraries"]
    names = list(libs)
    panels = [
        ("drain_rate", "Drain (jobs/s) ↑", 1),
        ("enqueue_rate", "Enqueue one per call (jobs/s) ↑", 1),
        ("bulk_rate", "Bulk enqueue (jobs/s) ↑", 1),
        ("latency_p99_ms", "Latency p99 (ms) ↓", 1),
        ("idle_uss", "Idle USS (MiB) ↓", MIB),
        ("cpu_per_1000", "CPU s / 1,000 jobs ↓", 1),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for ax, (key, title, scale) in zip(axes.flat, panels, strict=True):
        meds, lo, hi, colors = [], [], [], []
        for n in names:
            s = libs[n].get("summary", {}).get(key)
            m = s["median"] / scale if s else 0
            meds.append(m)
            lo.append(m - s["min"] / scale if s else 0)
            hi.append(s["max"] / scale - m if s else 0)
            colors.append("#d62728" if n == "taskqueue" else "#7f7f7f")
        ax.bar(names, meds, yerr=[lo, hi], color=colors, capsize=3)
        ax.set_title(title)
        if key.startswith("latency"):
            ax.set_yscale("log")
        ax.tick_params(axis="x", rotation=30)
        for i, v in enumerate(meds):
            if v == 0:
                ax.text(i, 0.5 if key.startswith("latency") else 0, "n/a", ha="center",
                        va="bottom", fontsize=8)  # fmt: skip
    fig.suptitle(f"taskqueue vs peers — {result['date']}, {result['machine']['cpus']} CPUs")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else BENCH / "results" / "latest.json"
    res = json.loads(src.read_text())
    print(table(res))
    chart(res, src.parent / "chart.png")


def save_result(kind: str, report: dict) -> Path:
    """Write a bench script's JSON report to bench/results/<kind>-<time>.json, print it, and
    return the path (shared by soak.py, huge_queues.py and delay_precision.py)."""
    import json
    import time

    out = (
        Path(__file__).resolve().parent
        / "results"
        / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return out
