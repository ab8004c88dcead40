"""One soak request against SGLang's native `/generate`, classified: what came back, and whether any error
was one the request asked for (an invalid request's 400, an abort, a disconnect) or not."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

from dflash_sglang.client import post_json
from dflash_sglang.soak.traffic import ABORT, DISCONNECT, INVALID, RequestSpec

TIMEOUT_S = 1800.0  # a non-streamed answer can take many minutes on a loaded 2-core host
DETAIL_CHARS = 400


@dataclass(frozen=True)
class Outcome:
    kind: str
    stream: bool
    start_s: float  # since the soak's start
    latency_s: float
    error: str | None = None  # None, or a kind: http_500, connection, timeout, bad_finish, too_long, ...
    expected: bool = True  # whether `error` (if any) is what the request asked for
    output_ids: tuple[int, ...] = ()
    text: str = ""
    finish: str | None = None  # SGLang's finish_reason type: length, stop, abort
    key: str | None = None  # greedy: the reference's key
    completion_tokens: int = 0
    cut_at_deadline: bool = False  # aborted by the soak when its time was up (drive.py)
    detail: str = ""  # for an error: the server's message or the exception, cut short

    @property
    def full_greedy(self) -> bool:
        """A greedy request that ran to its end: comparable with AR's answer."""
        return self.key is not None and self.error is None and self.finish in ("length", "stop")


def _payload(spec: RequestSpec, rid: str) -> bytes:
    return json.dumps({**spec.payload, "rid": rid, "stream": spec.stream}).encode()


def _post(base_url: str, body: bytes):
    request = urllib.request.Request(base_url + "/generate", data=body, headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(request, timeout=TIMEOUT_S)


def _read(response, spec: RequestSpec) -> tuple[dict, bool]:
    """(the last message, whether the client hung up on purpose). Streams carry cumulative output_ids."""
    if not spec.stream:
        return json.loads(response.read()), False
    last, chunks = {}, 0
    for raw in response:
        line = raw.decode().strip()
        if not line.startswith("data:") or line == "data: [DONE]":
            continue
        last = json.loads(line[len("data:"):])
        chunks += 1
        if spec.kind == DISCONNECT and chunks >= spec.disconnect_after_chunks:
            return last, True  # the caller's `with` closes the socket mid-stream
    return last, False


def _schedule_abort(base_url: str, rid: str, delay: float) -> threading.Timer:
    timer = threading.Timer(delay, lambda: post_json(base_url, "/abort_request", {"rid": rid}, timeout=60))
    timer.daemon = True
    timer.start()
    return timer


def _classify(spec: RequestSpec, message: dict, hung_up: bool) -> tuple[str | None, str | None]:
    """(error kind or None, finish type) for a request that got an answer."""
    if "error" in message and "meta_info" not in message:
        return "error_message", None
    meta = message.get("meta_info", {})
    finish = meta.get("finish_reason")
    finish = finish.get("type") if isinstance(finish, dict) else finish
    if hung_up:
        return None, "disconnected"
    if spec.kind == INVALID:
        return "invalid_accepted", finish  # SGLang served what it should have refused
    if finish == "abort" and spec.kind != ABORT:
        return "unexpected_abort", finish
    if finish not in ("length", "stop", "abort"):
        return "bad_finish", finish
    if int(meta.get("completion_tokens", 0)) > spec.max_tokens:
        return "too_many_tokens", finish
    return None, finish


def new_rid() -> str:
    return f"soak-{uuid.uuid4().hex}"


def send(base_url: str, spec: RequestSpec, t0: float, rid: str | None = None) -> Outcome:
    """Run one request to its end; never raises for what the server or network does."""
    rid = rid or new_rid()
    start = time.monotonic()
    timer = _schedule_abort(base_url, rid, spec.abort_after_s) if spec.kind == ABORT else None
    message, hung_up, error, detail = {}, False, None, ""
    try:
        with _post(base_url, _payload(spec, rid)) as response:
            message, hung_up = _read(response, spec)
    except urllib.error.HTTPError as err:
        error, detail = f"http_{err.code}", err.read().decode(errors="replace")[:DETAIL_CHARS]
        err.close()
    except TimeoutError as err:
        error, detail = "timeout", repr(err)[:DETAIL_CHARS]
    except (urllib.error.URLError, ConnectionError, OSError, json.JSONDecodeError) as err:
        error, detail = "connection", repr(err)[:DETAIL_CHARS]
    finally:
        if timer is not None:
            timer.cancel()
    common = dict(kind=spec.kind, stream=spec.stream, start_s=start - t0, latency_s=time.monotonic() - start,
                  key=spec.key)
    if error is not None:
        return Outcome(**common, error=error, expected=spec.kind == INVALID and error == "http_400", detail=detail)
    error, finish = _classify(spec, message, hung_up)
    meta = message.get("meta_info", {})
    detail = "" if error is None else json.dumps({"rid": rid, "message": message})[:DETAIL_CHARS]
    return Outcome(**common, error=error, expected=error is None, output_ids=tuple(message.get("output_ids") or ()),
                   text=message.get("text", ""), finish=finish, completion_tokens=int(meta.get("completion_tokens", 0)),
                   detail=detail)
