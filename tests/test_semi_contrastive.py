"""U2PL's contrastive term: negatives chosen by rank (with the authors' bugs #171 and #111 as
regressions), anchors, prototypes, and the loss against its closed form."""

import math

import torch
import torch.nn.functional as F

from noisyseg.ops.entropy_rank import entropy_rank
from noisyseg.train.semi.contrastive import ContrastConfig, U2PLContrast, anchor_masks, negative_masks
from noisyseg.train.semi.distributed import Dist


def _ranks(probs):
    return entropy_rank(probs, is_logits=False).rank


def _probs(rows):
    """rows: per pixel, the class probabilities -> (B=len, C, 1, W) with W pixels per row."""
    return torch.tensor(rows, dtype=torch.float32).permute(0, 2, 1)[:, :, None, :]


def test_negatives_follow_eq_26_27_by_rank():
    # C = 6, r_l = 2, r_h = 4; one labelled row and one unlabelled row of 3 pixels each.
    probs = _probs([
        [[0.50, 0.30, 0.10, 0.05, 0.03, 0.02],    # labelled, label 0: class 1 ranks 1 -> negative of 1
         [0.30, 0.50, 0.10, 0.05, 0.03, 0.02],    # label 1, argmax 1, class 0 ranks 1 -> negative of 0
         [0.02, 0.03, 0.05, 0.10, 0.30, 0.50]],   # ignored (255): never a negative
        [[0.40, 0.30, 0.15, 0.10, 0.03, 0.02],    # unreliable: classes ranked 2, 3 (2 and 3) are negatives
         [0.90, 0.04, 0.03, 0.02, 0.005, 0.005],  # reliable: none
         [0.10, 0.15, 0.40, 0.30, 0.03, 0.02]],   # unreliable: ranks 2, 3 are classes 1 and 0
    ])
    labels = torch.tensor([[[0, 1, 255]], [[255, 0, 255]]])
    labelled = torch.tensor([True, False])
    unreliable = torch.tensor([[[True, True, True]], [[True, False, True]]])  # labelled row: not read
    neg = negative_masks(_ranks(probs), labels, labelled, unreliable, r_low=2, r_high=4)
    assert neg.shape == (2, 6, 1, 3)
    expected = torch.zeros(2, 6, 1, 3, dtype=torch.bool)
    expected[0, 1, 0, 0] = True          # labelled: label != c and rank_c < r_l (rank 0 is its own class)
    expected[0, 0, 0, 1] = True
    expected[1, 2, 0, 0] = expected[1, 3, 0, 0] = True
    expected[1, 1, 0, 2] = expected[1, 0, 0, 2] = True
    assert torch.equal(neg, expected)


def _authors_negatives(rank, labels, labelled, unreliable, C, r_low, r_high):
    """Haochen-Wang409/U2PL's ``compute_contra_memobank_loss`` negative mask: one-hot(label) x
    high_mask, then rank conditions; labelled rows additionally require label != c."""
    classes = torch.arange(C).view(1, C, 1, 1)
    high_mask = torch.where(labelled.view(-1, 1, 1), labels != 255, unreliable)[:, None]
    high_valid = (labels[:, None] == classes) & high_mask
    class_u = (rank >= r_low) & (rank < r_high)
    class_l = (rank < r_low) & (labels[:, None] != classes)
    return high_valid & torch.where(labelled.view(-1, 1, 1, 1), class_l, class_u)


def test_regression_171_labelled_negatives_are_not_empty():
    torch.manual_seed(0)
    C = 5
    probs = torch.softmax(torch.randn(4, C, 6, 6) * 2, 1)
    labels = probs.argmax(1)
    labels[:, 0, :] = (labels[:, 0, :] + 1) % C      # some labels disagree with the teacher
    labelled = torch.tensor([True, True, False, False])
    unreliable = torch.rand(4, 6, 6) > 0.5
    rank = _ranks(probs)
    ours = negative_masks(rank, labels, labelled, unreliable, r_low=3, r_high=20)
    theirs = _authors_negatives(rank, labels, labelled, unreliable, C, 3, 20)
    assert not theirs[:2].any()                      # #171: labelled negatives always empty there
    assert ours[:2].any()
    # every labelled negative of c: a labelled pixel of another class ranking c in the top 3
    b, c, y, x = ours[:2].nonzero(as_tuple=True)
    assert bool((labels[b, y, x] != c).all()) and bool((rank[b, c, y, x] < 3).all())
    # unlabelled negatives need no pseudo-label == c (their code requires it)
    assert int(ours[2:].sum()) > int(theirs[2:].sum())


def _loss(anchor, positive, negative, n, tau=0.5):
    """-log(e^{s+/τ} / (e^{s+/τ} + n e^{s-/τ})) with one negative key repeated n times."""
    cos = F.cosine_similarity
    sp, sn = float(cos(anchor, positive, 0)), float(cos(anchor, negative, 0))
    return -math.log(math.exp(sp / tau) / (math.exp(sp / tau) + n * math.exp(sn / tau)))


def test_regression_111_each_class_meets_its_own_queue_when_classes_are_absent():
    """Class 0 is absent from the batch: the anchors of classes 1 and 2 must be contrasted with the
    queues of classes 1 and 2 (the authors' code pairs the i-th present class with queue i)."""
    C, D, N = 3, 3, 4
    config = ContrastConfig(anchors=5, negatives=N, r_low=1, r_high=2, capacity=8)
    contrast = U2PLContrast(C, D, torch.device("cpu"), config)
    queues = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    contrast.bank.push(queues, torch.arange(C))
    # one labelled image, 1 x 4 pixels: classes 1 1 2 2; teacher argmax = label, so no negatives
    labels = torch.tensor([[[1, 1, 2, 2]]])
    probs = torch.tensor([[0.1, 0.1, 0.1, 0.1], [0.8, 0.8, 0.1, 0.1], [0.1, 0.1, 0.8, 0.8]])[None, :, None, :]
    student = torch.tensor([[1.0, 0.5, 0.0], [1.0, 0.5, 0.0], [0.0, 1.0, 0.2], [0.0, 1.0, 0.2]]).T[None, :, None, :]
    student = student.clone().requires_grad_(True)
    teacher = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]).T[None, :, None, :]
    loss, info = contrast(student, teacher, probs, labels, torch.tensor([True]), torch.zeros(1, 1, 4, dtype=torch.bool),
                          torch.Generator().manual_seed(0))
    assert info["classes"] == 2 and contrast.bank.sizes().tolist() == [1, 1, 1]
    a1, a2 = student[0, :, 0, 0].detach(), student[0, :, 0, 2].detach()
    own = (_loss(a1, teacher[0, :, 0, 0], queues[1], N) + _loss(a2, teacher[0, :, 0, 2], queues[2], N)) / 2
    # theirs: i = 0 takes class 0's (absent) anchors, i = 1 class 1's anchors with class 2's queue
    theirs = _loss(a1, teacher[0, :, 0, 0], queues[2], N) / 2
    assert abs(float(loss.detach()) - own) < 1e-5 and abs(own - theirs) > 0.05
    loss.backward()
    assert student.grad.abs().sum() > 0


def test_anchor_masks_and_pushed_keys():
    labels = torch.tensor([[[0, 1, 255, 1]]])
    probs = torch.tensor([[0.9, 0.2, 0.5, 0.6], [0.1, 0.8, 0.5, 0.25]])[None, :, None, :]
    m = anchor_masks(labels, probs, 0.3)
    assert m[0, :, 0].tolist() == [[True, False, False, False], [False, True, False, False]]
    contrast = U2PLContrast(2, 2, torch.device("cpu"), ContrastConfig(capacity=10, r_low=2))
    feats = torch.arange(8, dtype=torch.float32).view(1, 2, 1, 4)
    neg = negative_masks(_ranks(probs), labels, torch.tensor([True]), torch.zeros(1, 1, 4, dtype=torch.bool), 2, 20)
    contrast.push(feats, neg, torch.tensor([True]), Dist())
    # pixel 0 (label 0) is a negative of class 1, pixels 1 and 3 (label 1) of class 0
    assert contrast.bank.keys(0).tolist() == [[1.0, 5.0], [3.0, 7.0]]
    assert contrast.bank.keys(1).tolist() == [[0.0, 4.0]]
