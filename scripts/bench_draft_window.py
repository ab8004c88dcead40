"""Benchmark for issue 10: the draft pass's time and share of a decode step at contexts of 256, 1,024 and
4,096 tokens, at concurrency 1, with `--speculative-draft-window-size 128` and without a window.

Our worker on the bundled tiny pair (its configs copied with max_position_embeddings 8192, so that a 4,096-token
context fits), on this machine's CPU, both servers up at once and each request sent to one then the other, so
that both see the same machine load. Timing comes from py-spy sampling each scheduler process while a context's
requests run: samples inside `SGLangStepModels.draft` are the draft pass, samples inside `DFlashWorker._decode`
the whole decode step. Idle samples are dropped, so the numbers are the scheduler's busy time; per-step times
divide by the speculative steps the responses report (`dflash_acceptance_lengths`).

    python scripts/bench_draft_window.py --output docs/benchmarks/draft-window-cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from transformers import AutoTokenizer

from dflash_sglang.bundled import tiny_pair
from dflash_sglang.client import generate
from dflash_sglang.datasets import humaneval_prompts
from dflash_sglang.serving import group_members, launch

CONTEXTS = (256, 1024, 4096)
WINDOWS = (128, None)
PY_SPY = Path(sys.executable).parent / "py-spy"
DRAFT_FRAME, STEP_FRAME = ("SGLangStepModels.draft (", "step_models.py"), ("DFlashWorker._decode (", "worker.py")


def long_context_pair(out: Path) -> tuple[Path, Path]:
    """The bundled pair, both configs allowing 8,192 positions (RoPE is computed, not tabled)."""
    pair = []
    for source in tiny_pair():
        copy = out / source.name
        shutil.copytree(source, copy)
        config = json.loads((copy / "config.json").read_text())
        (copy / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 8192}, indent=2))
        pair.append(copy)
    return pair[0], pair[1]


def prompts(target: Path, context: int, count: int) -> list[list[int]]:
    """`count` prompts of exactly `context` tokens: consecutive HumanEval prompts joined, from different starts."""
    tokenizer = AutoTokenizer.from_pretrained(target)
    tasks = [tokenizer(p)["input_ids"] for p in humaneval_prompts()]
    out = []
    for k in range(count):
        ids, i = [], 31 * k
        while len(ids) < context:
            ids, i = ids + tasks[i % len(tasks)], i + 1
        out.append(ids[:context])
    return out


def scheduler_pid(server) -> int:
    for pid in group_members(server.pid):
        if Path(f"/proc/{pid}/comm").read_text().startswith("sglang::schedul"):
            return pid
    raise RuntimeError(f"no scheduler process in group {server.pid}")


class Spy:
    """py-spy recording one process's stacks until stopped."""

    def __init__(self, pid: int, rate: int, raw: Path) -> None:
        self.raw = raw
        self.process = subprocess.Popen([str(PY_SPY), "record", "--pid", str(pid), "--rate", str(rate), "--format",
                                         "raw", "--nolineno", "--nonblocking", "--output", str(raw)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> dict[str, int]:
        """Sample counts: inside the draft pass, inside a decode step, all busy samples."""
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=120)
        counts = {"draft": 0, "step": 0, "total": 0}
        for line in self.raw.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            frames = stack.split(";")
            counts["total"] += int(n)
            for key, (name, file) in (("draft", DRAFT_FRAME), ("step", STEP_FRAME)):
                if any(f.startswith(name) and file in f for f in frames):
                    counts[key] += int(n)
        return counts


def phase(servers: dict, batch: list[list[int]], args, work: Path, tag: str) -> dict:
    """One context's requests, alternating between the servers (so both see the same machine load)."""
    spies = {name: Spy(scheduler_pid(server), args.rate, work / f"spy-{name}-{tag}.txt")
             for name, server in servers.items()}
    time.sleep(2.0)  # attached
    steps = dict.fromkeys(servers, 0)
    committed = dict.fromkeys(servers, 0)
    try:
        for ids in batch:
            for name, server in servers.items():
                lengths = generate(server.base_url, ids, args.new_tokens, temperature=0,
                                   ignore_eos=True)["meta_info"]["dflash_acceptance_lengths"]
                steps[name] += len(lengths)
                committed[name] += sum(lengths)
    finally:
        counts = {name: spy.stop() for name, spy in spies.items()}
    return {name: {"steps": steps[name], "committed": committed[name], "samples": counts[name]} for name in servers}


def summary(context: int, phases: list[dict], rate: int) -> dict:
    steps = sum(p["steps"] for p in phases)
    samples = {k: sum(p["samples"][k] for p in phases) for k in ("draft", "step", "total")}
    per_step_ms = lambda n: 1000.0 * n / rate / steps  # noqa: E731
    return {"context": context, "steps": steps, "tau": sum(p["committed"] for p in phases) / steps,
            "samples": samples, "draft_ms_per_step": per_step_ms(samples["draft"]),
            "step_ms": per_step_ms(samples["step"]), "draft_share": samples["draft"] / max(samples["step"], 1)}


def start(window, target: Path, drafter: Path, work: Path):
    # A higher --mem-fraction-static than the CPU default 0.2 only widens SGLang's start-up check against
    # memory that other processes take meanwhile; --max-total-tokens (8192) still bounds the KV pool.
    extra = ["--dtype", "float32", "--speculative-algorithm", "DFLASH", "--speculative-draft-model-path",
             str(drafter), "--speculative-num-draft-tokens", "8", "--mem-fraction-static", "0.6"]
    if window is not None:
        extra += ["--speculative-draft-window-size", str(window)]
    return launch(target, extra, log_path=work / f"server-{window}.log")


def run_all(target: Path, drafter: Path, args, work: Path) -> dict:
    """Both servers up at once; contexts in the order 256, 1024, 4096, 4096, 1024, 256 so that a load that
    drifts during the run weighs on every context alike."""
    servers = {}
    try:
        for w in WINDOWS:  # one start at a time: start-up is the heaviest moment on a small machine
            servers["none" if w is None else str(w)] = server = start(w, target, drafter, work)
            server.wait_ready()
        for name, server in servers.items():
            expected = "no draft window" if name == "none" else f"draft window {name} tokens"
            assert expected in server.log_text(), server.tail()
            generate(server.base_url, prompts(target, 256, 1)[0], 16, temperature=0)  # warm-up
        done: dict[int, list[dict]] = {c: [] for c in CONTEXTS}
        for k, context in enumerate(CONTEXTS + CONTEXTS[::-1]):
            batch = prompts(target, context, 2 * args.num_prompts)[k // len(CONTEXTS)::2]
            done[context].append(phase(servers, batch, args, work, f"{context}-{k}"))
            print(f"context {context}: {done[context][-1]}", flush=True)
        return {name: [summary(c, [p[name] for p in done[c]], args.rate) for c in CONTEXTS] for name in servers}
    finally:
        for server in servers.values():
            server.stop()


def table(runs: dict) -> str:
    lines = ["| draft window | context | draft ms / step | step ms | draft share | τ | steps |", "|---|---|---|---|---|---|---|"]
    for name, rows in runs.items():
        for r in rows:
            lines.append(f"| {name} | {r['context']} | {r['draft_ms_per_step']:.1f} | {r['step_ms']:.1f} | "
                         f"{100 * r['draft_share']:.0f} % | {r['tau']:.2f} | {r['steps']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--num-prompts", type=int, default=1, help="requests per context and pass (two passes)")
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens per request")
    parser.add_argument("--work-dir", default=None, help="where the pair copy, logs and py-spy files go (a temp dir)")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.work_dir) as tmp:
        work = Path(tmp)
        target, drafter = long_context_pair(work)
        runs = run_all(target, drafter, args, work)
    growth = {name: rows[-1]["draft_ms_per_step"] / rows[0]["draft_ms_per_step"] for name, rows in runs.items()}
    report = {"date": date.today().isoformat(), "machine": f"{platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores, CPU only", "pair": "bundled tiny pair, float32, block 8",
              "method": "py-spy samples of each scheduler (busy time), per speculative step; both servers up at "
              "once, requests alternating, contexts 256, 1024, 4096, 4096, 1024, 256",
              "new_tokens": args.new_tokens, "num_prompts": args.num_prompts, "concurrency": 1,
              "runs": runs, "draft_time_4096_over_256": growth}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(table(runs))
    print("draft time at 4096 / at 256:", {k: round(v, 2) for k, v in growth.items()})


if __name__ == "__main__":
    main()
