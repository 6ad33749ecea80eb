"""cleanlab.segmentation's API on noisyseg's kernels: numpy arrays (or lists of differently sized
images) in, numpy arrays or a table out, pixels labelled ``ignore_index`` (255) left out.

==========================  =====================================================
``find_label_issues``       cleanlab.segmentation.filter.find_label_issues
``get_label_quality_scores`` cleanlab.segmentation.rank.get_label_quality_scores
``common_label_issues``     cleanlab.segmentation.summary.common_label_issues
``display_issues``          cleanlab.segmentation.summary.display_issues
==========================  =====================================================
"""

from noisyseg.issues.filter import find_label_issues
from noisyseg.issues.rank import get_label_quality_scores
from noisyseg.issues.summary import common_label_issues, display_issues

__all__ = ["find_label_issues", "get_label_quality_scores", "common_label_issues", "display_issues"]
