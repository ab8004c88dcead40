"""`make demo`: serve the bundled tiny pair with SGLang + DFLASH on this host, ask one chat question
through the `openai` client, print the answer and its acceptance statistics.

The server runs with the CPU harness on a host without an NVIDIA driver and is stopped by PID at the end.
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


def dflash_server_args(drafter: Path, block_size: int) -> list[str]:
    return ["--dtype", "float32", "--speculative-algorithm", "DFLASH",
            "--speculative-draft-model-path", str(drafter), "--speculative-num-draft-tokens", str(block_size)]


def print_stats(meta: dict, elapsed: float) -> None:
    lengths = meta.get("dflash_acceptance_lengths", [])
    tokens = meta["completion_tokens"]
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
    log_path = Path(tempfile.mkdtemp(prefix="dflash-demo-")) / "server.log"
    print(f"starting SGLang + DFLASH: target {target}, drafter {drafter} (log: {log_path}) ...", flush=True)
    started = time.monotonic()
    server = launch(target, dflash_server_args(drafter, args.block_size), log_path=log_path)
    try:
        server.wait_ready()
        print(f"server ready in {time.monotonic() - started:.0f} s (pid {server.pid})")
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="EMPTY")
        t0 = time.monotonic()
        reply = client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": QUESTION}],
            max_tokens=args.max_tokens, temperature=0, extra_body={"return_meta_info": True},
        )
        elapsed = time.monotonic() - t0
        print(f"\nuser: {QUESTION}\nassistant: {reply.choices[0].message.content}\n")
        print_stats(reply.choices[0].model_extra["meta_info"], elapsed)
    finally:
        server.stop()
        print(f"server {server.pid} stopped")


if __name__ == "__main__":
    main()
