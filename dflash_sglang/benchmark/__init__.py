"""`python -m dflash_sglang.benchmark`: output tok/s, acceptance length τ, latency and speedup over AR
for AR, NGRAM, our DFLASH and SGLang's builtin DFLASH, each served by a real SGLang on this host.

- args: the command line, parsed once into `BenchConfig`
- methods: each method's server flags and environment
- stream, load: one timed streamed request; many at a concurrency with a progress bar
- runner: one server at a time, every dataset × concurrency, failures recorded with the log's tail
- records, stats: raw measurements, and the pure functions that summarize them
- report, plot: JSON, markdown table, PNG
"""
