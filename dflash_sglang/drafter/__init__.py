"""The DFlash drafter in plain torch (no SGLang, no transformers): model, layers, checkpoint I/O."""

from dflash_sglang.drafter.context import ContextKV
from dflash_sglang.drafter.model import Drafter
from dflash_sglang.drafter.weights import load_drafter, load_weights, read_checkpoint, save_drafter

__all__ = ["ContextKV", "Drafter", "load_drafter", "load_weights", "read_checkpoint", "save_drafter"]
