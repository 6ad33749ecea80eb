"""The two data streams of the loop, sampled so that the batches do not depend on the process count.

Images are addressed by *position*: the unlabelled stream visits a fresh permutation of its ids
each epoch; the labelled stream is endless (a fresh permutation each time it is exhausted), so it
can be shorter or longer than the unlabelled one. A step's global batch is a run of consecutive
positions; rank r of W takes the r-th W-th of it. Every random choice about an image (its
permutation, crop, flip, strong view) is seeded by ``seed_for(run seed, stream, position, ...)``,
so N processes see exactly the images and views one process with the total batch sees, and a
resumed run sees what the uninterrupted one saw.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.train.data import SegmentationSamples, rescale_image, to_unit


def seed_for(*parts) -> int:
    """A 63-bit seed determined by ``parts`` (any reprs), stable across processes and runs."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def generator(*parts, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed_for(*parts))


class Stream:
    """The ids of one stream in position order: ``ids_at(positions)``.

    ``endless``: positions run on past the end, through a new permutation per pass (the labelled
    stream); otherwise position p of ``epoch`` is entry p of that epoch's permutation.
    """

    def __init__(self, name: str, ids: list[str], seed: int, endless: bool):
        self.name, self.ids, self.seed, self.endless = name, ids, seed, endless
        self._perms: dict[int, list[int]] = {}

    def _perm(self, cycle: int) -> list[int]:
        if cycle not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            g = generator(self.seed, self.name, "order", cycle)
            self._perms[cycle] = torch.randperm(len(self.ids), generator=g).tolist()
        return self._perms[cycle]

    def index(self, epoch: int, position: int) -> int:
        """The index in ``ids`` of a position (of the endless stream, or of ``epoch``)."""
        if self.endless:
            return self._perm(position // len(self.ids))[position % len(self.ids)]
        return self._perm(epoch)[position]


def load_batch(samples, stream: Stream, epoch: int, positions: range) -> list:
    """``samples[i]`` for each position, its augmentation seeded by the position alone."""
    items = []
    for p in positions:
        samples.generator.manual_seed(seed_for(stream.seed, stream.name, "augment", epoch if not stream.endless else -1, p))
        items.append(samples[stream.index(epoch, p)])
    return items


class WeakViews(SegmentationSamples):
    """Weak views of the unlabelled (or noisily labelled) stream: the labelled stream's random
    scale, crop and flip, but no colour jitter and no normalisation (strong views are made from
    the weak view later, batched), and a mask of the real image pixels.

    Without ``labels`` (``has_labels=False``) no mask is read: the label is 255 everywhere.

    Returns per item: image ``(3, S, S)`` float32 in [0, 1] (0 on padding), label ``(S, S)`` int64
    (255 = ignore, padding, or no labels), weight ``(S, S)`` float32, in-image ``(S, S)`` bool.
    """

    def __init__(self, *args, has_labels: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.has_labels = has_labels

    def load(self, image_id: str):
        if self.has_labels:
            return super().load(image_id)
        if image_id not in self.cache:
            image = self.ds.load_image(image_id)
            if self.input_scale != 1.0:
                image = rescale_image(to_unit(image), self.input_scale).mul(255).round_().byte().permute(1, 2, 0).numpy()
            self.cache[image_id] = (image, np.zeros(image.shape[:2], np.uint8), None)
        return self.cache[image_id]

    def __getitem__(self, index: int):
        image, label, weight = self.load(self.ids[index])
        img = to_unit(image)
        lab = torch.from_numpy(label.astype(np.int64))
        wt = torch.from_numpy(weight.astype(np.float32)) if weight is not None else torch.ones(lab.shape)
        # The in-image plane rides through the same geometry as the image (padding gives 0).
        with_plane = torch.cat([img, torch.ones_like(img[:1])])
        with_plane, lab, wt = self._augment(with_plane, lab, wt)
        img, inside = with_plane[:3].contiguous(), with_plane[3] > 0.5
        if not self.has_labels:
            lab = torch.full_like(lab, IGNORE_INDEX)
        return img, lab, wt, inside
