"""What the soak watches on the server: the RSS of its processes over time, and its KV usage once idle."""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from dflash_sglang.serving import group_members

RSS_EVERY_S = 5.0
IDLE_TIMEOUT_S = 120.0
# what SGLang's idle check writes (SGLANG_ENABLE_STRICT_MEM_CHECK_DURING_IDLE makes it fatal too)
LEAK_MARKERS = ("leak detected", "double free", "use-after-free")


def rss_bytes(pgid: int) -> tuple[int, int]:
    """(VmRSS, RssAnon) summed over the server's process group: launcher, scheduler, detokenizer. RssAnon is what a
    leak grows; file-backed pages (libraries, weights) come and go as the host reclaims page cache."""
    total = anon = 0
    for pid in group_members(pgid):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:  # the process ended between the listing and the read
            continue
        for name, value in re.findall(r"^(VmRSS|RssAnon):\s+(\d+) kB", status, re.MULTILINE):
            if name == "VmRSS":
                total += int(value) * 1024
            else:
                anon += int(value) * 1024
    return total, anon


class RssSampler:
    """A daemon thread appending (seconds since t0, RSS bytes, anonymous RSS bytes) every RSS_EVERY_S."""

    def __init__(self, pgid: int, t0: float):
        self.pgid, self.t0 = pgid, t0
        self.samples: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - self.t0, *rss_bytes(self.pgid)))
            self._stop.wait(RSS_EVERY_S)

    def start(self) -> "RssSampler":
        self._thread.start()
        return self

    def stop(self) -> list[tuple[float, int, int]]:
        self._stop.set()
        self._thread.join()
        return list(self.samples)


def used_tokens(base_url: str) -> float:
    """SGLang's `num_used_tokens` gauge: KV slots held by requests (the radix cache's evictable ones excluded)."""
    with urllib.request.urlopen(base_url + "/metrics", timeout=30) as resp:
        text = resp.read().decode()
    match = re.search(r"^sglang:num_used_tokens\{[^}]*\} ([0-9.e+-]+)$", text, re.MULTILINE)
    if match is None:
        raise RuntimeError("the DFLASH server exports no sglang:num_used_tokens (start it with --enable-metrics)")
    return float(match.group(1))


def healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url + "/health", timeout=30) as resp:
            return resp.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def idle_usage(base_url: str, timeout_s: float = IDLE_TIMEOUT_S) -> float:
    """KV usage once the server has been idle: polled until 0 (the scheduler frees finished requests'
    slots asynchronously) or the timeout."""
    deadline = time.monotonic() + timeout_s
    while (usage := used_tokens(base_url)) != 0 and time.monotonic() < deadline:
        time.sleep(1.0)
    return usage


def leak_lines(log_text: str) -> list[str]:
    return [line for line in log_text.splitlines() if any(marker in line for marker in LEAK_MARKERS)]
