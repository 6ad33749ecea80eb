"""Strong views: CutMix boxes and the mixed targets, cutout, photometric ops."""

import math

import pytest
import torch

from noisyseg.train.augment import (StrongAug, colour_jitter, cutmix_box, cutout_box, gaussian_blur, hsv_to_rgb,
                                    mix, parse_ops, rgb_to_hsv)
from noisyseg.train.semi.step import Targets


def _rect(mask):
    ys, xs = mask.nonzero(as_tuple=True)
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())
    return y0, x0, y1 - y0 + 1, x1 - x0 + 1


@pytest.mark.parametrize("area,aspect", [((0.02, 0.4), (0.3, 1 / 0.3)), ((0.5, 0.5), (0.5, 2.0))])
def test_cutmix_box_is_one_rectangle_of_the_drawn_area_and_aspect(area, aspect):
    S = 64
    for seed in range(200):
        mask = cutmix_box(S, torch.Generator().manual_seed(seed), p=1.0, area=area, aspect=aspect)
        assert mask.dtype == torch.bool and mask.shape == (S, S)
        y, x, h, w = _rect(mask)
        assert int(mask.sum()) == h * w  # a filled axis-aligned rectangle, inside the crop
        assert 0 <= y and y + h <= S and 0 <= x and x + w <= S
        # h = int(sqrt(t r)), w = int(sqrt(t / r)) with t = a S^2, so h w <= t < (h + 1)(w + 1) and
        # h / (w + 1) < r < (h + 1) / w
        assert h * w <= area[1] * S * S
        assert (h + 1) * (w + 1) > area[0] * S * S
        assert h / (w + 1) < aspect[1] and (h + 1) / w > aspect[0]


def test_cutmix_box_probability_and_determinism():
    S = 32
    boxes = [bool(cutmix_box(S, torch.Generator().manual_seed(s), p=0.5).any()) for s in range(400)]
    assert 0.4 < sum(boxes) / len(boxes) < 0.6
    assert not cutmix_box(S, torch.Generator().manual_seed(0), p=0.0).any()
    a = cutmix_box(S, torch.Generator().manual_seed(7), p=1.0)
    b = cutmix_box(S, torch.Generator().manual_seed(7), p=1.0)
    assert torch.equal(a, b)


def test_cutout_box_is_a_square_of_the_given_side():
    for seed in range(50):
        mask = cutout_box(50, torch.Generator().manual_seed(seed), side=0.1)
        y, x, h, w = _rect(mask)
        assert (h, w) == (5, 5) and int(mask.sum()) == 25


def test_mixed_targets_take_the_partners_values_inside_the_box():
    G, C, S = 3, 4, 6
    g = torch.Generator().manual_seed(0)
    t = Targets(hard=torch.randint(0, C, (G, S, S), generator=g), soft=torch.rand(G, C, S, S, generator=g),
                conf=torch.rand(G, S, S, generator=g), weights=None, inside=torch.rand(G, S, S, generator=g) > 0.2)
    boxes = torch.zeros(G, S, S, dtype=torch.bool)
    boxes[0, 1:3, 2:5] = True
    boxes[2] = True
    mine, partner = torch.arange(G), (torch.arange(G) + 1) % G
    m = t.rows(mine).mixed(t.rows(partner), boxes)
    for i in range(G):
        j = (i + 1) % G
        inside = boxes[i]
        assert torch.equal(m.hard[i][inside], t.hard[j][inside]) and torch.equal(m.hard[i][~inside], t.hard[i][~inside])
        assert torch.equal(m.conf[i][inside], t.conf[j][inside]) and torch.equal(m.inside[i][~inside], t.inside[i][~inside])
        assert torch.equal(m.soft[i][:, inside], t.soft[j][:, inside])
        assert torch.equal(m.soft[i][:, ~inside], t.soft[i][:, ~inside])
    assert m.weights is None
    image = torch.rand(3, S, S)
    other = torch.rand(3, S, S)
    mixed = mix(image, other, boxes[0])
    assert torch.equal(mixed[:, boxes[0]], other[:, boxes[0]]) and torch.equal(mixed[:, ~boxes[0]], image[:, ~boxes[0]])


def test_photometric_ops():
    img = torch.rand(3, 20, 24, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(hsv_to_rgb(rgb_to_hsv(img)), img, atol=1e-5, rtol=0)
    red = torch.zeros(3, 2, 2)
    red[0] = 1
    hsv = rgb_to_hsv(red)
    hsv[0] = (hsv[0] + 1 / 3) % 1
    torch.testing.assert_close(hsv_to_rgb(hsv), torch.stack([torch.zeros(2, 2), torch.ones(2, 2), torch.zeros(2, 2)]))
    # zero-strength jitter is the identity; greyscale has equal channels; blur keeps constants
    same = colour_jitter(img, torch.Generator().manual_seed(0), 0.0, 0.0, 0.0, 0.0)
    torch.testing.assert_close(same, img)
    grey_only = StrongAug(("grey",), grey_p=1.0).photometric(img, torch.Generator().manual_seed(0))
    assert torch.equal(grey_only[0], grey_only[1]) and torch.equal(grey_only[1], grey_only[2])
    torch.testing.assert_close(gaussian_blur(torch.full((3, 9, 9), 0.25), 1.3), torch.full((3, 9, 9), 0.25))
    view = StrongAug(("colour", "grey", "blur"))
    a = view.photometric(img, torch.Generator().manual_seed(5))
    b = view.photometric(img, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1
    assert not StrongAug(()).cutmix(8, torch.Generator()).any()


def test_parse_ops():
    assert parse_ops("colour,grey,cutmix") == ("colour", "grey", "cutmix")
    assert parse_ops("none") == ()
    with pytest.raises(ValueError, match="unknown strong-view op 'rotate'"):
        parse_ops("colour,rotate")
