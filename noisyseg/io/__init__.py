"""The data contract: datasets and per-image directories (labels, probs, features, weights)."""

from noisyseg.io.atomic import atomic_write
from noisyseg.io.dataset import Dataset, check_id
from noisyseg.io.dirs import FeaturesDir, LabelDir, ProbsDir, WeightsDir
from noisyseg.io.labels import read_label_png, write_label_png

__all__ = ["Dataset", "check_id", "atomic_write", "LabelDir", "ProbsDir", "FeaturesDir", "WeightsDir",
           "read_label_png", "write_label_png"]
