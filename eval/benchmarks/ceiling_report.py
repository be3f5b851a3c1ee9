"""The ceiling benchmark's arithmetic and its markdown page (see ``ceiling_bench.py``)."""

from __future__ import annotations

from collections import Counter
from typing import Any


def rate(pairs: list[tuple[int, float]]) -> float:
    """Tokens per second over rounds of (tokens, seconds)."""
    seconds = sum(s for _, s in pairs)
    return sum(t for t, _ in pairs) / seconds if seconds else 0.0


def ceiling(bare: list[dict[str, Any]], workload: dict[str, Any]) -> dict[str, Any]:
    """llama.cpp's rates over the rounds, and the documents/s they allow: a document's
    prompt suffix at the best prompt rate plus its samples' tokens at the best decoding rate."""
    prompt = {c: rate([r["prompt"][c] for r in bare]) for c in bare[0]["prompt"]}
    decode = {p: rate([r["decode"][p] for r in bare]) for p in bare[0]["decode"]}
    best_chunk = max(prompt, key=lambda c: prompt[c])
    best_parallel = max(decode, key=lambda p: decode[p])
    suffix = workload["document_suffix_tokens"]["mean"]
    sample_tokens = workload["queries_per_doc"] * workload["query_tokens"]["mean"]
    prompt_s = suffix / prompt[best_chunk]
    by_parallel = {p: 1.0 / (prompt_s + sample_tokens / decode[p]) for p in decode}
    return {
        "docs_per_s": round(by_parallel[best_parallel], 3),
        "prompt_s_per_doc": round(prompt_s, 3),
        "decode_s_per_doc": round(sample_tokens / decode[best_parallel], 3),
        "best_prompt_chunk": best_chunk,
        "best_parallel": best_parallel,
        "prompt_tokens_per_s": {str(c): round(v, 1) for c, v in prompt.items()},
        "decode_tokens_per_s": {str(p): round(v, 1) for p, v in decode.items()},
        "decode_ms_per_step": {str(p): round(1000 * p / v, 1) for p, v in decode.items()},
        "docs_per_s_by_parallel": {str(p): round(v, 3) for p, v in by_parallel.items()},
        "rounds": {
            "prompt_tokens_per_s": {str(c): [round(r["prompt"][c][0] / r["prompt"][c][1], 1) for r in bare]
                                    for c in prompt},
            "decode_tokens_per_s": {str(p): [round(r["decode"][p][0] / r["decode"][p][1], 1) for r in bare]
                                    for p in decode},
        },
    }


def pipeline_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One pipeline's rounds added up."""
    docs = sum(r["docs"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    stats: Counter[str] = Counter()
    rejects: Counter[str] = Counter()
    for r in rows:
        stats.update(r["stats"])
        rejects.update(r["rejects"])
    samples = sum(r["kept"] + r["rejected"] for r in rows)
    kinds: dict[str, list[float]] = {}
    for r in rows:
        for kind, (calls, tokens, secs) in r.get("llama_decode", {}).items():
            row = kinds.setdefault(kind, [0, 0, 0.0])
            row[0] += calls
            row[1] += tokens
            row[2] += secs
    time_split: dict[str, dict[str, Any]] = {
        kind: {"calls": int(c), "tokens": int(t), "seconds": round(x, 2),
               "tokens_per_s": round(t / x, 1) if x else 0.0}
        for kind, (c, t, x) in sorted(kinds.items())
    }
    outside = seconds - sum(x for _, _, x in kinds.values())
    time_split["outside llama_decode (Python: sampling, checks, records)"] = {"seconds": round(outside, 2)}
    return {
        "docs_per_s": round(docs / seconds, 3),
        "docs_per_s_by_round": [round(r["docs"] / r["seconds"], 3) for r in rows],
        "docs": docs,
        "seconds": round(seconds, 1),
        "samples": samples,
        "kept": sum(r["kept"] for r in rows),
        "rejects": dict(sorted(rejects.items())),
        "prompt_tokens_per_doc": round(stats["prompt_tokens"] / docs, 1),
        "generated_tokens_per_sample": round(stats["generated_tokens"] / samples, 1) if samples else 0.0,
        "backend": dict(sorted(stats.items())),
        "time": time_split,
    }


def markdown(r: dict[str, Any]) -> str:
    c, w, s, m = r["ceiling"], r["workload"], r["settings"], r["machine"]
    lines = [
        "# Generation's ceiling on this machine",
        "",
        "```",
        r["command"],
        "```",
        "",
        *_headline(r),
        "",
        f"Model `{s['model']}` through llama.cpp, {s['threads']} thread(s) (the count the pipeline computes "
        f"with here), template `{s['template']}`, documents cut to {s['doc_max_tokens']} tokens, the KV "
        f"layout of the generate stage ({s['context_tokens']}-token unified cache, the few-shot prefix of "
        f"{w['prompt_prefix_tokens']} tokens evaluated once and shared). Everything ran interleaved in "
        f"{s['rounds']} rounds.",
        "",
        "## The workload of one document",
        "",
        f"- prompt after the cached prefix: {_spread(w['document_suffix_tokens'])} tokens "
        "(every document the demo chooses);",
        f"- {w['queries_per_doc']} samples, each needing one decoding step per token of its query: "
        f"{_spread(w['query_tokens'])} tokens per kept query (`{w['query_tokens_from']}`).",
        "",
        "## llama.cpp alone (bare low-level API, no sampling)",
        "",
        "| prompt tokens per `llama_decode` | " + " | ".join(c["prompt_tokens_per_s"]) + " |",
        "|---|" + "---:|" * len(c["prompt_tokens_per_s"]),
        "| prompt tokens/s | " + " | ".join(str(v) for v in c["prompt_tokens_per_s"].values()) + " |",
        "",
        "| parallel sequences (one token each per step) | " + " | ".join(c["decode_tokens_per_s"]) + " |",
        "|---|" + "---:|" * len(c["decode_tokens_per_s"]),
        "| decoding tokens/s | " + " | ".join(str(v) for v in c["decode_tokens_per_s"].values()) + " |",
        "| ms per step | " + " | ".join(str(v) for v in c["decode_ms_per_step"].values()) + " |",
        "| ceiling documents/s at this width | " + " | ".join(
            str(v) for v in c["docs_per_s_by_parallel"].values()) + " |",
        "",
        f"**Ceiling: {c['docs_per_s']} documents/s** = 1 / ({c['prompt_s_per_doc']} s of prompt at "
        f"{c['best_prompt_chunk']} tokens per call + {c['decode_s_per_doc']} s of decoding at "
        f"{c['best_parallel']} parallel sequences) per document. It counts a document's prompt and its "
        "samples' tokens at the best rates llama.cpp reaches for each alone (the cached prefix is free, "
        "every sample is as long as the typical kept query); a pipeline that stops runaway samples early, or "
        "whose steps mix prompt and sampled tokens, can come close to it or pass it a little.",
        "",
        *_pipelines(r),
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores; load average {m['load_average_start']} at the start and "
        f"{m['load_average_end']} at the end; Python {m['python']}, llama-cpp-python {m['llama-cpp-python']} "
        f"(`{m['llama.cpp build']}`).",
        "",
    ]
    return "\n".join(lines)


def _spread(x: dict[str, Any]) -> str:
    return f"mean {x['mean']}, median {x['median']}, 10-90% {x['p10']}-{x['p90']}, max {x['max']}"


def _headline(r: dict[str, Any]) -> list[str]:
    h = r["headline"]
    share = round(100 * h["pipeline_share_of_ceiling"])
    out = [f"**Ceiling {h['ceiling_docs_per_s']} documents/s.** The pipeline (`generate_queries`, the "
           f"demo's settings): {h['pipeline_docs_per_s']} documents/s, {share}% of the ceiling."]
    if "baseline_docs_per_s" in h:
        base = round(100 * h["baseline_share_of_ceiling"])
        out.append(f"The baseline (inpars at `{r['settings']['baseline']}`): {h['baseline_docs_per_s']} "
                   f"documents/s, {base}% of the ceiling; the pipeline is **{h['pipeline_vs_baseline']}x** "
                   "the baseline.")
    return [" ".join(out)]


def _pipelines(r: dict[str, Any]) -> list[str]:
    rows = [
        ("documents/s", "docs_per_s"), ("documents/s by round", "docs_per_s_by_round"), ("documents", "docs"),
        ("seconds", "seconds"), ("samples", "samples"), ("kept", "kept"), ("rejected, by reason", "rejects"),
        ("prompt tokens evaluated per document", "prompt_tokens_per_doc"),
        ("tokens decoded per sample", "generated_tokens_per_sample"),
    ]
    names = list(r["pipelines"])
    lines = ["## The pipeline", "", "| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for label, key in rows:
        lines.append(f"| {label} | " + " | ".join(str(r["pipelines"][n][key]) for n in names) + " |")
    workers = "; ".join(f"{n}: batch_docs {r['pipelines'][n]['worker']['batch_docs']}" for n in names)
    lines += ["", f"Each is a worker process with its backend loaded once and the prefix cached ({workers})."]
    for name in names:
        lines += ["", f"Where the time of `{name}` went (every `llama_decode` call timed):", "",
                  "| | calls | tokens | seconds | tokens/s |", "|---|---:|---:|---:|---:|"]
        for kind, row in r["pipelines"][name]["time"].items():
            cells = [str(row.get(k, "")) for k in ("calls", "tokens", "seconds", "tokens_per_s")]
            lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return lines
