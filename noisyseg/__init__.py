"""noisyseg: detect, correct and learn from noisy semantic-segmentation masks."""

__version__ = "0.1.0"

from noisyseg.errors import NoisySegError  # noqa: E402

# cleanlab.segmentation's API, imported on first use so that ``import noisyseg`` stays cheap.
_ISSUES_API = ("find_label_issues", "get_label_quality_scores", "common_label_issues", "display_issues")

__all__ = ["NoisySegError", "__version__", *_ISSUES_API]


def __getattr__(name: str):
    if name in _ISSUES_API:
        import noisyseg.issues

        return getattr(noisyseg.issues, name)
    raise AttributeError(f"module 'noisyseg' has no attribute {name!r}")
