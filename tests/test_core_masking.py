"""Disjoint masks from one noise draw (METHOD.md step 2), checked by hand."""

from __future__ import annotations

import pytest
import torch

from lut_plugin.core import disjoint_masks_from_noise, gather_tokens, keep_count

NOISE = torch.tensor([[0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4]])
# argsort(NOISE) = [1, 5, 3, 7, 0, 4, 6, 2]


def test_hand_computed_masks():
    m = disjoint_masks_from_noise(NOISE, 0.75)  # keep = int(8 * 0.25) = 2
    assert m.ids_keep1.tolist() == [[1, 5]]
    assert m.ids_keep2.tolist() == [[3, 7]]
    assert m.mask1.tolist() == [[1, 0, 1, 1, 1, 0, 1, 1]]
    assert m.mask2.tolist() == [[1, 1, 1, 0, 1, 1, 1, 0]]
    assert m.ids_restore1.tolist() == [[4, 0, 7, 2, 5, 1, 6, 3]]


def test_half_ratio_splits_all_patches():
    m = disjoint_masks_from_noise(NOISE, 0.5)
    assert m.ids_keep1.tolist() == [[1, 5, 3, 7]]
    assert m.ids_keep2.tolist() == [[0, 4, 6, 2]]
    assert torch.equal(m.mask1 + m.mask2, torch.ones(1, 8))


def test_restore_indices_undo_view_1s_order():
    torch.manual_seed(0)
    noise = torch.rand(5, 16)
    m = disjoint_masks_from_noise(noise, 0.75)
    shuffle1 = torch.argsort(noise, dim=1)
    assert torch.equal(torch.gather(shuffle1, 1, m.ids_restore1), torch.arange(16).expand(5, -1))


@pytest.mark.parametrize("seed", range(5))
def test_disjoint_exact_counts_and_mask_agrees_with_gather(seed):
    gen = torch.Generator().manual_seed(seed)
    batch, length, ratio = 6, 49, 0.75
    noise = torch.rand(batch, length, generator=gen)
    m = disjoint_masks_from_noise(noise, ratio)
    keep = int(length * (1 - ratio))
    assert m.ids_keep1.shape == m.ids_keep2.shape == (batch, keep)
    for b in range(batch):
        s1, s2 = set(m.ids_keep1[b].tolist()), set(m.ids_keep2[b].tolist())
        assert len(s1) == len(s2) == keep and not s1 & s2
    assert torch.equal((1 - m.mask1).sum(1), torch.full((batch,), float(keep)))
    assert torch.equal((1 - m.mask2).sum(1), torch.full((batch,), float(keep)))
    assert not ((m.mask1 == 0) & (m.mask2 == 0)).any()
    # The tokens gathered for a view are exactly the ones its mask leaves visible.
    tokens = torch.arange(length, dtype=torch.float).view(1, length, 1).expand(batch, -1, 3)
    got = gather_tokens(tokens, m.ids_keep1)[..., 0]
    visible = [(m.mask1[b] == 0).nonzero().flatten().float() for b in range(batch)]
    for b in range(batch):
        assert torch.equal(got[b].sort().values, visible[b])


def test_seeded_reproducibility():
    a = disjoint_masks_from_noise(
        torch.rand(3, 16, generator=torch.Generator().manual_seed(7)), 0.75
    )
    b = disjoint_masks_from_noise(
        torch.rand(3, 16, generator=torch.Generator().manual_seed(7)), 0.75
    )
    assert all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.49, 1.0, 1.5])
def test_impossible_ratio_is_rejected(ratio):
    with pytest.raises(ValueError, match="disjoint"):
        keep_count(196, ratio)


def test_no_visible_patch_is_rejected():
    with pytest.raises(ValueError, match="no visible patch"):
        keep_count(3, 0.75)
    assert keep_count(4, 0.75) == 1
