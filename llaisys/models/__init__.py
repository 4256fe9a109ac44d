"""Models: config, architecture registry, checkpoint loaders, tokenizer, default model."""

from .config import CheckpointError, ModelConfig, UnsupportedModelError
from .default_model import DefaultModelError, default_model
from .loader import Checkpoint, WeightTensor, expected_weights, load_checkpoint
from .model import SAMPLING_DTYPE, DecodeBatch, DecodeResult, KvCache, KvStats, Model
from .registry import ADAPTERS, Adapter, adapter_for_gguf, adapter_for_hf
from .tokenizer import Tokenizer

__all__ = [
    "ADAPTERS",
    "Adapter",
    "Checkpoint",
    "CheckpointError",
    "DecodeBatch",
    "DecodeResult",
    "DefaultModelError",
    "KvCache",
    "KvStats",
    "Model",
    "ModelConfig",
    "SAMPLING_DTYPE",
    "Tokenizer",
    "UnsupportedModelError",
    "WeightTensor",
    "adapter_for_gguf",
    "adapter_for_hf",
    "default_model",
    "expected_weights",
    "load_checkpoint",
]
