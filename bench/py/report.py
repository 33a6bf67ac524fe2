"""Tables and plots from bench/results/*.json.

    report.py ingest|embed|query|hnsw|all

prints the Markdown tables used in docs/BENCHMARKS.md and redraws the plots under docs/.
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs"


def load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def table(header: list[str], rows: list[list]) -> str:
    def cell(v) -> str:
        if isinstance(v, float):
            return f"{v:,.2f}" if v < 100 else f"{v:,.0f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line(m: dict) -> str:
    return (f"Machine: {m['cpu']}, {m['cores']} vCPU, {m['mem_gib']} GiB, Linux {m['kernel']}; "
            f"load average at start {' '.join(m['load_average'])}; {m['date_utc']}; {m['rustc']}, {m.get('profile', 'release')} build.")


def kb_stages(p: dict) -> dict:
    """Busy seconds per stage of kb's pipeline run: adapters from the timing decorators, reading
    and splitting from the pipeline's own counters. Files are read and split on several threads
    while the writes go on, so these overlap and add up to more than the wall time."""
    t = p["reported_timings_ms"]
    read, split = t["read_ms"] / 1000, t["split_ms"] / 1000
    return {"read+parse": read, "split": split, "embed": p["embed_s"],
            "upsert+index": p["upsert_s"], "catalog": p["catalog_s"],
            "index build": p.get("optimize_s", 0.0)}


def ingest() -> None:
    r = load("ingest")
    kb, li, local = r["kb_fake"], r["llamaindex"], r["kb_local"]
    mb = kb["corpus_bytes"] / 1e6
    p = kb["pipeline"]
    print(machine_line(r["machine"]))
    print()
    rows = []
    for name, wall, cpu, files, chunks in [
        ("kb (Ingestor, zero-cost embedder)", p["wall_s"], p["cpu_s"], p["files"], p["chunks"]),
        (li["pipeline"] + " (MockEmbedding)", li["wall_s"], li["cpu_s"], li["files"], li["chunks"]),
    ]:
        rows.append([name, files, chunks, wall, cpu, files / wall, mb / wall, chunks / wall])
    print(table(["pipeline", "files", "chunks", "wall s", "CPU s", "files/s", "MB/s", "chunks/s"], rows))
    print()
    print(f"LlamaIndex time / kb time: {li['wall_s'] / p['wall_s']:.2f} by wall clock, "
          f"{li['cpu_s'] / p['cpu_s']:.2f} by CPU time ({mb:.1f} MB corpus; above 1 means kb is faster).")
    if p.get("optimize_s"):
        before = p["wall_s"] - p["optimize_s"]
        print()
        print(f"kb without its index build (HNSW graph, {p['optimize_s']:.1f} s at the end of the run): "
              f"{before:.1f} s, LlamaIndex time / kb time {li['wall_s'] / before:.2f}.")
    print()
    stages = kb_stages(p)
    li_stages = {"read+parse": li["read_parse_s"], "split": li["split_s"], "embed": li["embed_s"],
                 "upsert+index": li["upsert_s"], "catalog": li["persist_s"], "index build": 0.0}
    print(table(["stage", "kb busy s", "LlamaIndex s"],
                [[k, stages[k], li_stages[k]] for k in stages]))
    a = kb["stages_alone"]
    if a:
        print()
        print(f"Stages alone (one thread, no pipeline): read+parse {a['read_parse_s']:.2f} s, "
              f"split {a['split_s']:.2f} s for {a['files']} files, {a['chunks']} chunks, {a['tokens']:,} tokens.")
    print()
    lp, raw = local["pipeline"], local["raw_model"]
    la = local["stages_alone"]
    print(table(["local MiniLM, subset", "files", "chunks", "wall s", "CPU s", "chunks/s",
                 "chunks per CPU s", "vs model alone (CPU)"], [
        ["kb Ingestor", lp["files"], lp["chunks"], lp["wall_s"], lp["cpu_s"], lp["chunks_per_s"],
         lp["chunks"] / lp["cpu_s"], f"{raw['cpu_s'] / lp['cpu_s']:.0%}"],
        ["model alone (embed_sync, same chunks)", la["files"], raw["chunks"], raw["seconds"], raw["cpu_s"],
         raw["chunks_per_s"], raw["chunks"] / raw["cpu_s"], "100%"],
    ]))
    print()
    busy = lp["reported_timings_ms"]["embed_ms"] / 1000
    print(f"In the local run, an embedding call was in flight {busy / lp['wall_s']:.0%} of the wall time "
          f"({lp['embedding_calls']} embedding calls for {lp['chunks']} chunks).")

    # Wall time of each run, split into the part before kb's index build and the build itself.
    fig, ax = plt.subplots(figsize=(8, 2.4))
    build = p.get("optimize_s", 0.0)
    bars = [("LlamaIndex core", [(li["wall_s"], "#8c8c8c", "LlamaIndex, whole run")]),
            ("kb", [(p["wall_s"] - build, "#4c72b0", "kb: read, split, embed, write"),
                    (build, "#c44e52", "kb: index build (HNSW)")])]
    for y, (name, parts) in enumerate(bars):
        left = 0.0
        for secs, color, label in parts:
            ax.barh(y, secs, left=left, color=color, label=label)
            left += secs
        ax.text(left, y, f"  {left:.0f} s", va="center")
    ax.set_yticks([0, 1], [name for name, _ in bars])
    ax.set_xlabel(f"wall seconds to ingest the kernel docs ({p['files']:,} files, {mb:.0f} MB), zero-cost embedder")
    ax.legend(ncol=3, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.3), frameon=False)
    ax.set_xlim(0, max(p["wall_s"], li["wall_s"]) * 1.15)
    fig.tight_layout()
    fig.savefig(DOCS / "bench-ingest.svg")


def embed() -> None:
    r = load("embed")
    print(machine_line(r["machine"]))
    print()
    rows = []
    for label, sets in r["sets"].items():
        kb = {x["batch_size"]: x for x in sets["kb"]["runs"]}
        st = {x["batch_size"]: x for x in sets["sentence_transformers"]["runs"]}
        for b in kb:
            rows.append([label, b, kb[b]["inputs"], kb[b]["inputs_per_s"], st[b]["inputs_per_s"],
                         f"{kb[b]['inputs_per_s'] / st[b]['inputs_per_s']:.2f}",
                         kb[b]["cpu_s"], st[b]["cpu_s"]])
    print(table(["inputs", "batch", "n", "kb /s", "sentence-transformers /s", "kb / ST",
                 "kb CPU s", "ST CPU s"], rows))

    labels = list(r["sets"])
    fig, axes = plt.subplots(1, len(labels), figsize=(4 * len(labels), 3))
    for ax, label in zip(axes if len(labels) > 1 else [axes], labels):
        sets = r["sets"][label]
        sizes = [x["batch_size"] for x in sets["kb"]["runs"]]
        xs = range(len(sizes))
        ax.bar([x - 0.2 for x in xs], [x["inputs_per_s"] for x in sets["kb"]["runs"]], 0.4, label="kb")
        ax.bar([x + 0.2 for x in xs], [x["inputs_per_s"] for x in sets["sentence_transformers"]["runs"]], 0.4,
               label="sentence-transformers")
        ax.set_xticks(list(xs), [f"batch {s}" for s in sizes])
        ax.set_title(label)
        ax.set_ylabel("inputs/s")
    axes[0].legend(fontsize=8) if len(labels) > 1 else axes.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(DOCS / "bench-embed.svg")


def query() -> None:
    r = load("query")
    print(machine_line(r["machine"]))
    print(f"{r['chunks']:,} chunks; peak RSS of kb {r['peak_rss_kib'] / 1024:.0f} MiB.")
    print()
    rows = []
    series: dict[int, list] = {}
    for run in r["runs"]:
        o = run["oha"]
        s, pct = o["summary"], o["latencyPercentiles"]
        codes = o.get("statusCodeDistribution", {})
        # Requests still in flight when oha's time is up are cut off by oha, not failed by kb.
        failures = {k: v for k, v in o.get("errorDistribution", {}).items()
                    if k != "aborted due to deadline"}
        total = sum(codes.values()) + sum(failures.values())
        errors = total - codes.get("200", 0)
        ms = {k: pct[k] * 1000 for k in ("p50", "p95", "p99")}
        lat = run["latency_ms"]
        over = {k: v - lat for k, v in ms.items()}
        rows.append([lat, run["rate"], s["requestsPerSec"], total, errors,
                     ms["p50"], ms["p95"], ms["p99"], over["p50"], over["p99"], run["max_rss_kib"] / 1024])
        series.setdefault(lat, []).append((run["rate"], over))
    print(table(["engine ms", "target rps", "achieved rps", "requests", "errors", "p50 ms", "p95 ms",
                 "p99 ms", "kb p50 ms", "kb p99 ms", "RSS MiB"], rows))

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for lat, points in series.items():
        rates = [p[0] for p in points]
        for key, style in (("p50", "--"), ("p99", "-")):
            ax.plot(rates, [p[1][key] for p in points], style, marker="o",
                    label=f"{key}, engine {lat} ms")
    ax.axhline(15, color="grey", lw=0.8)
    ax.text(ax.get_xlim()[0], 15.5, " goal: p99 < 15 ms", color="grey", fontsize=8)
    ax.set_xlabel("requests/s (POST /v1/ask, open loop)")
    ax.set_ylabel("kb's own latency, ms\n(total minus engine delay)")
    ax.set_title(f"kb serve over {r['chunks']:,} chunks, 2 vCPU")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(DOCS / "bench-query.svg")


def hnsw() -> None:
    r = load("hnsw")
    print(machine_line(r["machine"]))
    print(f"{r['points']:,} points, {r['queries']} queries, recall@{r['k']} against an exact scan.")
    print()
    rows = []
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for kind in dict.fromkeys(b["vectors"] for b in r["builds"]):
        builds = [b for b in r["builds"] if b["vectors"] == kind]
        for b in builds:
            for s in b["searches"]:
                rows.append([kind, b["m"], b["ef_construct"], b["build_s"], b["build_cpu_s"],
                             s["search_ef"], f"{s['recall']:.4f}", s["mean_ms"], s["p99_ms"]])
        # One line per vector set: build time against recall at the largest search ef.
        best = [(b["build_s"], max(b["searches"], key=lambda s: s["search_ef"])) for b in builds]
        names = {"model": "all-MiniLM-L6-v2", "lexical": "zero-cost embedder (hashed words)",
                 "random": "uniformly random"}
        ax.plot([x[0] for x in best], [x[1]["recall"] for x in best], marker="o",
                label=names.get(kind, kind))
        for b, (x, s) in zip(builds, best):
            ax.annotate(f"{b['ef_construct']}", (x, s["recall"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    print(table(["vectors", "m", "ef_construct", "build s", "build CPU s", "search ef",
                 f"recall@{r['k']}", "search ms", "search p99 ms"], rows))
    ax.set_xlabel("graph build, s (points labelled with ef_construct)")
    ax.set_ylabel(f"recall@{r['k']} (largest search ef)")
    ax.set_title(f"HNSW over {r['points']:,} sentences, 2 vCPU")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(DOCS / "bench-hnsw.svg")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    for name, fn in (("ingest", ingest), ("embed", embed), ("query", query), ("hnsw", hnsw)):
        if what in (name, "all") and (RESULTS / f"{name}.json").exists():
            print(f"\n### {name}\n")
            fn()
