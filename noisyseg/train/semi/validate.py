"""Per-epoch validation: mIoU of a model on a split with masks, at image resolution.

Images are seen as ``noisyseg predict`` sees them (resized by the run's input scale, normalised,
logits resized back); each rank scores every W-th image and the confusion matrices are summed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from noisyseg.io import Dataset
from noisyseg.metrics.segmentation import ConfusionMatrix
from noisyseg.train.data import normalise, rescale_image, to_unit
from noisyseg.train.semi.distributed import Dist


class Validator:
    """Caches the split's (normalised, rescaled) images and masks; ``miou(model)`` scores a model."""

    def __init__(self, ds: Dataset, ids: list[str], input_scale: float, normalisation: str, device: torch.device,
                 dist: Dist = Dist()):
        self.ds, self.device, self.dist = ds, device, dist
        self.items = []
        for image_id in ids[dist.rank::dist.world]:
            image = ds.load_image(image_id)
            x = normalise(rescale_image(to_unit(image), input_scale), normalisation)
            mask = torch.from_numpy(ds.load_mask(image_id, image.shape[:2]).astype("int64"))
            self.items.append((x, mask))

    @torch.no_grad()
    def miou(self, model: torch.nn.Module) -> float:
        was_training = model.training
        model.eval()
        cm = ConfusionMatrix(self.ds.num_classes)
        counts = torch.zeros(self.ds.num_classes ** 2, dtype=torch.int64, device=self.device)
        C = self.ds.num_classes
        for x, mask in self.items:
            logits = model(x[None].to(self.device))["logits"].float()
            if logits.shape[-2:] != mask.shape:
                logits = F.interpolate(logits, size=mask.shape, mode="bilinear", align_corners=False)
            pred = logits.argmax(1)[0]
            gt = mask.to(self.device)
            ok = gt < C
            counts += torch.bincount(gt[ok] * C + pred[ok], minlength=C * C)
        model.train(was_training)
        cm.matrix += self.dist.sum(counts).cpu().numpy().reshape(C, C)
        return cm.miou()
