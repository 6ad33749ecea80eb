"""Tensor ops with compiled CPU/CUDA kernels and pure-torch references.

Each op lives in its own module (``noisyseg/ops/<op>.py``) whose public function dispatches to
``torch.ops.noisyseg.<op>`` when the extension is live and to ``<op>_reference`` otherwise.
"""

from noisyseg.ops._ext import has_extension, has_op
from noisyseg.ops.gat_attention import (
    gat_attention,
    gat_attention_additive,
    gat_attention_additive_reference,
    gat_attention_reference,
)
from noisyseg.ops.superpixel_pool import superpixel_pool, superpixel_pool_reference
from noisyseg.ops.entropy_rank import EntropyRank, entropy_rank, entropy_rank_reference
from noisyseg.ops.float16_histogram import float16_histogram_, float16_histogram_reference_, float16_order_keys
from noisyseg.ops.label_confidence import LabelConfidence, label_confidence, label_confidence_reference
from noisyseg.ops.memory_bank import MemoryBank, memory_bank_push, memory_bank_push_reference

__all__ = ["has_extension", "has_op"]
__all__ += ["EntropyRank", "entropy_rank", "entropy_rank_reference"]
__all__ += ["float16_histogram_", "float16_histogram_reference_", "float16_order_keys"]
__all__ += ["LabelConfidence", "label_confidence", "label_confidence_reference"]
__all__ += ["MemoryBank", "memory_bank_push", "memory_bank_push_reference"]
__all__ += ["gat_attention", "gat_attention_additive", "gat_attention_reference", "gat_attention_additive_reference"]
__all__ += ["superpixel_pool", "superpixel_pool_reference"]
