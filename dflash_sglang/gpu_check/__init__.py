"""`make gpu-check`: everything a first GPU should show, in one command that fits in a short loan.

On a CUDA host it serves the bundled tiny pair with AR, our DFLASH and SGLang's builtin DFLASH, for each
cell of a matrix (attention backend × dtype × CUDA graphs on/off), measures tok/s and τ at c=1 and c=8
with the benchmark package's runner, and checks that greedy output equals AR's. On a host without CUDA
it exits 2 with one line.

- args: the command line, parsed once into `GpuCheckConfig`
- plan: the matrix for this device, with the reason each skipped cell is skipped, in run order
- lossless: greedy token ids of a method against AR's (exact, or the first divergence)
- table: the one printed table
- run: the host check, the time budget, the JSON
"""
