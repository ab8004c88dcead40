"""`make demo`: serve the bundled tiny pair with SGLang + DFLASH on this host, ask one chat question
through the `openai` client, print the answer and its acceptance statistics; then ask the same question
of a second server without speculation and print whether the answers are identical, and the speedup.

Servers run one at a time, with the CPU harness on a host without an NVIDIA driver, each stopped by PID.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import openai

from dflash_sglang.bundled import tiny_pair
from dflash_sglang.serving import launch

QUESTION = "Write a Python function that returns the n-th Fibonacci number."
TIMED_RUNS = 2  # the faster of two identical requests: one run on a busy host is mostly noise
TINY_NOTE = ("note: the bundled pair is a tiny model trained on this CPU in minutes, so its answer is not good "
             "Python; what matters is that both servers give the same answer, and how fast")


def dflash_server_args(drafter: Path, block_size: int) -> list[str]:
    return ["--dtype", "float32", "--speculative-algorithm", "DFLASH",
            "--speculative-draft-model-path", str(drafter), "--speculative-num-draft-tokens", str(block_size)]


def ask(target: Path, server_args: list[str], label: str, max_tokens: int) -> tuple[str, int, float, dict]:
    """(answer, completion tokens, seconds, meta_info) from a fresh server, stopped before returning."""
    log_path = Path(tempfile.mkdtemp(prefix="dflash-demo-")) / f"{label.replace(' ', '-')}.log"
    print(f"starting SGLang ({label}) (log: {log_path}) ...", flush=True)
    started = time.monotonic()
    server = launch(target, server_args, log_path=log_path)
    try:
        server.wait_ready()
        print(f"server ready in {time.monotonic() - started:.0f} s (pid {server.pid})", flush=True)
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="EMPTY")
        messages = [{"role": "user", "content": QUESTION}]
        client.chat.completions.create(model="default", messages=messages, max_tokens=8, temperature=0)  # warm-up
        times = []
        for _ in range(TIMED_RUNS):
            t0 = time.monotonic()
            reply = client.chat.completions.create(model="default", messages=messages, max_tokens=max_tokens,
                                                   temperature=0, extra_body={"return_meta_info": True})
            times.append(time.monotonic() - t0)
        elapsed = min(times)
    finally:
        server.stop()
        print(f"server {server.pid} stopped")
    meta = reply.choices[0].model_extra["meta_info"]
    return reply.choices[0].message.content, meta["completion_tokens"], elapsed, meta


def print_stats(meta: dict, tokens: int, elapsed: float) -> None:
    lengths = meta.get("dflash_acceptance_lengths", [])
    print(f"{tokens} tokens in {elapsed:.2f} s ({tokens / elapsed:.1f} tok/s)")
    if lengths:
        tau = sum(lengths) / len(lengths)
        print(f"speculative steps: {len(lengths)}, mean acceptance length tau = {tau:.2f} tokens/step")
        print(f"acceptance lengths per step: {lengths}")
        print(f"drafts accepted {meta['spec_num_correct_drafts']} of {meta['spec_num_proposed_drafts']} proposed "
              f"(rate {meta['spec_accept_rate']:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--block-size", type=int, default=8)
    args = parser.parse_args()
    target, drafter = tiny_pair()
    print(f"target {target}, drafter {drafter}")
    answer, tokens, elapsed, meta = ask(target, dflash_server_args(drafter, args.block_size), "DFLASH", args.max_tokens)
    print(f"\nuser: {QUESTION}\nassistant: {answer}\n")
    print_stats(meta, tokens, elapsed)
    print("\nthe same request without speculation, on a second server:", flush=True)
    plain, plain_tokens, plain_elapsed, _ = ask(target, ["--dtype", "float32"], "no speculation", args.max_tokens)
    print(f"{plain_tokens} tokens in {plain_elapsed:.2f} s ({plain_tokens / plain_elapsed:.1f} tok/s)\n")
    print(f"identical to non-speculative output: {'yes' if plain == answer else 'no'}")
    speedup = (tokens / elapsed) / (plain_tokens / plain_elapsed)
    print(f"speedup: {speedup:.2f}x ({tokens / elapsed:.1f} vs {plain_tokens / plain_elapsed:.1f} tok/s, "
          f"one request at a time, the faster of {TIMED_RUNS})")
    print(TINY_NOTE)


if __name__ == "__main__":
    main()
