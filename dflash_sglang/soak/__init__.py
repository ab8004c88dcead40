"""`make soak`: our DFLASH server under mixed traffic for a long time, checked for errors, wrong tokens and leaks.

    python -m dflash_sglang.soak --minutes 30 --output build/soak/report.json

The run: AR (no overlap scheduler: the oracle that counts penalties exactly) answers every greedy request of a
fixed pool, then stops; our DFLASH server on the bundled pair starts with SGLang's strict idle memory check
(`SGLANG_ENABLE_STRICT_MEM_CHECK_DURING_IDLE=1`) and gets c=16 traffic: greedy (checked token for token against
AR) and sampled, streaming or not, stop strings, `max_tokens` 1..512, short/long prompts and shared prefixes,
request features (logprobs, penalties, grammars, logit bias), clients that disconnect mid-stream, explicit
aborts and invalid requests. The report (JSON + PNG) holds requests, errors by kind (expected vs unexpected),
greedy mismatches, token usage at idle, the server's RSS over time and p50/p99 latency per minute.

Files: `traffic.py` (what is sent), `requests.py` (one request -> Outcome), `references.py` (AR's answers),
`drive.py` (c=16 workers), `monitor.py` (RSS, idle usage), `report.py` (numbers and verdict), `plot.py`,
`run.py` (the schedule), `cli.py`.
"""
