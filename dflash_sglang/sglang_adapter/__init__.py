"""The only package that imports `sglang`. Everything outside it is plain torch (and triton)."""
