"""Tensor ops with compiled CPU/CUDA kernels and pure-torch references.

Each op lives in its own module (``noisyseg/ops/<op>.py``) whose public function dispatches to
``torch.ops.noisyseg.<op>`` when the extension is live and to ``<op>_reference`` otherwise.
"""

from noisyseg.ops._ext import has_extension, has_op

__all__ = ["has_extension", "has_op"]
