"""Values of the data contract that every layer shares.

``IGNORE_INDEX``: the label value of pixels without a class (void, border, padding, a detector's
flagged pixels, a correction's holes). Label PNGs, dataset.json's ``ignore_index``, the losses
and the metrics all use this one value; class ids are 0..C-1 with C <= 255.
"""

IGNORE_INDEX = 255

__all__ = ["IGNORE_INDEX"]
