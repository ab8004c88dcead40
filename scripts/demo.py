"""`make demo`: serve the bundled tiny pair with SGLang on this host, ask one chat question, print the answer.

The server is started with the CPU harness on a host without an NVIDIA driver and stopped by PID at the end.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()
    target, _drafter = tiny_pair()
    log_path = Path(tempfile.mkdtemp(prefix="dflash-demo-")) / "server.log"
    print(f"starting SGLang on {target} (log: {log_path}) ...", flush=True)
    started = time.monotonic()
    server = launch(target, log_path=log_path)
    try:
        server.wait_ready()
        print(f"server ready in {time.monotonic() - started:.0f} s (pid {server.pid})")
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="EMPTY")
        t0 = time.monotonic()
        reply = client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": QUESTION}],
            max_tokens=args.max_tokens, temperature=0,
        )
        elapsed = time.monotonic() - t0
        print(f"\nuser: {QUESTION}\nassistant: {reply.choices[0].message.content}\n")
        tokens = reply.usage.completion_tokens
        print(f"{tokens} tokens in {elapsed:.2f} s ({tokens / elapsed:.1f} tok/s)")
    finally:
        server.stop()
        print(f"server {server.pid} stopped")


if __name__ == "__main__":
    main()
