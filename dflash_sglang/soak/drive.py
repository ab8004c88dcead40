"""c workers send the soak's requests back to back until the deadline. Requests still in flight then are aborted
through SGLang's /abort_request (a long request at a few tokens/s would otherwise hold the run for minutes); their
outcomes count as cut at the deadline, not as errors, and are not compared with AR."""

from __future__ import annotations

import random
import sys
import threading
import time
import urllib.error
from dataclasses import replace

from dflash_sglang.client import HTTPStatusError, post_json
from dflash_sglang.soak.requests import Outcome, new_rid, send
from dflash_sglang.soak.traffic import Prompt, RequestSpec, kinds, next_request

PROGRESS_EVERY_S = 60.0
ABORT_EVERY_S = 5.0  # after the deadline: abort what is still in flight (again, in case an abort raced a send)


class Traffic:
    def __init__(self, base_url: str, pool: list[RequestSpec], prompts: list[Prompt], context_len: int, seed: int):
        self.base_url = base_url
        self.pool, self.prompts, self.context_len = pool, prompts, context_len
        self.rng = random.Random(seed)
        self.kinds = kinds(self.rng)
        self.lock = threading.Lock()
        self.outcomes: list[Outcome] = []
        self.in_flight: set[str] = set()
        self.closing = threading.Event()
        self._last_print = 0.0

    def _next(self) -> tuple[RequestSpec, str]:
        with self.lock:  # one seeded stream of requests, whichever worker asks
            rid = new_rid()
            self.in_flight.add(rid)
            return next_request(self.rng, next(self.kinds), self.pool, self.prompts, self.context_len), rid

    def _worker(self, t0: float, deadline: float) -> None:
        while time.monotonic() < deadline:
            spec, rid = self._next()
            outcome = send(self.base_url, spec, t0, rid)
            with self.lock:
                self.in_flight.discard(rid)
                if self.closing.is_set() and outcome.error == "unexpected_abort":
                    outcome = replace(outcome, error=None, expected=True, cut_at_deadline=True)
                self.outcomes.append(outcome)

    def _abort_in_flight(self) -> None:
        self.closing.set()
        with self.lock:
            rids = list(self.in_flight)
        for rid in rids:
            try:
                post_json(self.base_url, "/abort_request", {"rid": rid}, timeout=60)
            except (HTTPStatusError, urllib.error.URLError, OSError) as err:  # the request's own outcome shows it
                print(f"soak: abort of {rid} at the deadline failed: {err}", file=sys.stderr)

    def run(self, seconds: float, concurrency: int, t0: float) -> list[Outcome]:
        deadline = time.monotonic() + seconds
        workers = [threading.Thread(target=self._worker, args=(t0, deadline), daemon=True) for _ in range(concurrency)]
        for w in workers:
            w.start()
        last_abort = 0.0
        while any(w.is_alive() for w in workers):
            time.sleep(1.0)
            now = time.monotonic()
            if now >= deadline and now - last_abort >= ABORT_EVERY_S:
                self._abort_in_flight()
                last_abort = now
            self._progress(t0)
        return list(self.outcomes)

    def _progress(self, t0: float) -> None:
        now = time.monotonic()
        if now - self._last_print < PROGRESS_EVERY_S:
            return
        self._last_print = now
        with self.lock:
            done = len(self.outcomes)
            bad = sum(1 for o in self.outcomes if not o.expected)
        print(f"soak: {now - t0:6.0f} s, {done} requests, {bad} unexpected errors", file=sys.stderr, flush=True)
