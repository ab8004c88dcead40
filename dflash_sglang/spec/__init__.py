"""The speculative step as the paper states it: draft -> verify -> accept -> commit.

Plain torch only. The SGLang adapter supplies the model forwards; this package decides.
"""
