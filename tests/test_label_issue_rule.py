"""The streamed cleanlab rule (float16 histograms) flags exactly what the in-memory one does."""

import numpy as np
import torch

import noisyseg
from noisyseg.metrics.label_issues import IssueRule
from noisyseg.ops import label_confidence


def test_streamed_rule_matches_in_memory_on_float16():
    rng = np.random.default_rng(0)
    N, K, H, W = 5, 4, 16, 24
    logits = rng.normal(0, 2, (N, K, H, W))
    probs = np.exp(logits)
    probs = (probs / probs.sum(1, keepdims=True)).astype(np.float16)  # many ties at float16
    labels = rng.integers(0, K, (N, H, W))
    labels[rng.random((N, H, W)) < 0.1] = 255
    expected = noisyseg.find_label_issues(labels, probs, verbose=False)

    def batches():
        for i in range(0, N, 2):
            lab = torch.from_numpy(labels[i:i + 2])
            yield lab, lab != 255, label_confidence(torch.from_numpy(probs[i:i + 2]), lab)

    rule = IssueRule(K)
    for lab, valid, conf in batches():
        rule.update(conf.p_label, conf.best, conf.p_best, lab, valid)
    cutoff = rule.cutoff()
    assert cutoff.ties > 0 and cutoff.issues > 0
    flag = cutoff.flagger()
    got = np.concatenate([flag(c.p_label, valid, c.best != lab).numpy() for lab, valid, c in batches()])
    np.testing.assert_array_equal(got, expected)
