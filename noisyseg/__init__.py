"""noisyseg: detect, correct and learn from noisy semantic-segmentation masks."""

__version__ = "0.1.0"

from noisyseg.errors import NoisySegError  # noqa: E402

__all__ = ["NoisySegError", "__version__"]
