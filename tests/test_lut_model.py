"""The LUT algorithm on a tiny model: losses, teacher, bad configurations."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import build_tiny_lut, tiny_lut_cfg
from mmengine.logging import MessageHub
from mmpretrain.registry import MODELS
from torch import nn
from utils import HostSyncs, assert_state_dicts_equal

from lut_plugin.core import LinearGELU, cosine_momentum, gather_tokens
from lut_plugin.models.backbones.patch_embed import embed_patches


def _views(batch: int = 4, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, 32, 32, generator=gen) for _ in range(2)]


def test_loss_is_finite_and_weighted(tiny_lut):
    tiny_lut.train()
    x = _views()
    noise = torch.rand(4, 64, generator=torch.Generator().manual_seed(1))
    losses = tiny_lut.loss(x, noise=noise)
    assert set(losses) == {"loss_mim", "loss_bc"}
    out = tiny_lut.forward_lut(*x, noise=noise)
    torch.testing.assert_close(losses["loss_mim"], out.loss_mim)
    torch.testing.assert_close(losses["loss_bc"], 0.25 * out.loss_bc)
    assert all(torch.isfinite(v) for v in losses.values())


def test_loss_mim_is_upstream_mae_on_view1_masked_patches():
    """Same weights and noise: LUT's loss_mim equals mmpretrain's MAE loss of view 1."""
    lut = build_tiny_lut()
    cfg = tiny_lut_cfg()
    mae = MODELS.build(
        dict(
            type="MAE",
            backbone={**cfg["backbone"], "type": "MAEViT"},
            neck=cfg["neck"],
            head=cfg["head"],
        )
    )
    missing, unexpected = mae.load_state_dict(
        {
            k: v
            for k, v in lut.state_dict().items()
            if k.split(".")[0] in {"backbone", "neck", "head"}
        },
        strict=False,
    )
    assert [k for k in missing if not k.startswith("data_preprocessor")] == [] and unexpected == []
    x1, x2 = _views(seed=3)
    torch.manual_seed(123)
    expected = mae.loss(x1, data_samples=None)["loss"]
    torch.manual_seed(123)
    noise = torch.rand(4, 64)  # the draw MAEViT.random_masking makes after the same seed
    out = lut.forward_lut(x1, x2, noise=noise)
    torch.testing.assert_close(out.loss_mim, expected, atol=1e-6, rtol=0)


def test_loss_mim_by_hand_uses_masked_patches_only(tiny_lut):
    x1, x2 = _views(seed=5)
    noise = torch.rand(4, 64, generator=torch.Generator().manual_seed(2))
    z1, _, masks = tiny_lut.backbone.forward_views(x1, x2, noise)
    pred = tiny_lut.neck(z1, masks.ids_restore1)
    # patchify (p = 4): (B, 3, 8*4, 8*4) -> (B, 64, 4*4*3), MAE's (h, w, p, q, c) order
    target = x1.reshape(4, 3, 8, 4, 8, 4).permute(0, 2, 4, 3, 5, 1).reshape(4, 64, 48)
    mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)  # Bessel
    target = (target - mean) / (var + 1e-6) ** 0.5
    per_patch = ((pred - target) ** 2).mean(-1)
    by_hand = (per_patch * masks.mask1).sum() / masks.mask1.sum()
    out = tiny_lut.forward_lut(x1, x2, noise=noise)
    torch.testing.assert_close(out.loss_mim, by_hand, atol=1e-6, rtol=0)
    assert not torch.isclose(by_hand, per_patch.mean())  # the visible patches are left out


def test_position_embeddings_are_fixed_2d_sin_cos_by_hand(tiny_lut):
    """METHOD.md step 3: a fixed 2-D sin-cos table, for the encoder and the MAE decoder.

    For the patch in row i, column j of the n x n grid (token 1 + i*n + j; the cls token's row
    is zero), with F = D/4 and w_k = 10000^(-k/F), k < F, the D channels are
    [sin(i w_k), cos(i w_k), sin(j w_k), cos(j w_k)]. This is mmpretrain's table, with which its
    MAE trains; the official MAE code puts the column in the first half and the row in the
    second, the same table with the two axes swapped. Converted reference checkpoints bring
    their own table.
    """
    n = 8  # 32 px / patch 4
    for table, dims in ((tiny_lut.backbone.pos_embed, 64), (tiny_lut.neck.decoder_pos_embed, 32)):
        assert not table.requires_grad
        f = dims // 4
        expected = torch.zeros(1 + n * n, dims, dtype=torch.float64)
        for i in range(n):
            for j in range(n):
                w = [10000 ** (-k / f) for k in range(f)]
                expected[1 + i * n + j] = torch.tensor(
                    [math.sin(i * wk) for wk in w]
                    + [math.cos(i * wk) for wk in w]
                    + [math.sin(j * wk) for wk in w]
                    + [math.cos(j * wk) for wk in w]
                )
        assert table.shape == (1, 1 + n * n, dims)
        torch.testing.assert_close(table[0].double(), expected, rtol=0, atol=1e-6)


def test_bc_features_pool_visible_tokens_and_teacher_sees_full_views(tiny_lut):
    tiny_lut.train()
    x1, x2 = _views(seed=6)
    noise = torch.rand(4, 64, generator=torch.Generator().manual_seed(3))
    out = tiny_lut.forward_lut(x1, x2, noise=noise)
    z1, z2, _ = tiny_lut.backbone.forward_views(x1, x2, noise)
    p1 = tiny_lut.predictor(tiny_lut.projector(z1[:, 1:].mean(1)))
    torch.testing.assert_close(out.p1, p1)
    full = tiny_lut.teacher["backbone"].forward_full(x2)
    t2 = tiny_lut.teacher["projector"](full[:, 1:].mean(1))
    torch.testing.assert_close(out.t2, t2)


def test_heads_run_per_view_not_as_one_batch(tiny_lut):
    """BN statistics per view: feeding both views as one 2B batch gives other numbers."""
    tiny_lut.train()
    g1, g2 = torch.randn(4, 64), torch.randn(4, 64) + 3.0
    per_view = tiny_lut.projector(g1)
    joint = tiny_lut.projector(torch.cat([g1, g2]))[:4]
    assert not torch.allclose(per_view, joint, atol=1e-3)
    # The model does the former for each view (train mode: batch statistics per view).
    x1, x2 = _views(seed=7)
    noise = torch.rand(4, 64, generator=torch.Generator().manual_seed(4))
    out = tiny_lut.forward_lut(x1, x2, noise=noise)
    z1, z2, _ = tiny_lut.backbone.forward_views(x1, x2, noise)
    for p, z in ((out.p1, z1), (out.p2, z2)):
        torch.testing.assert_close(p, tiny_lut.predictor(tiny_lut.projector(z[:, 1:].mean(1))))
    joint_p = tiny_lut.predictor(tiny_lut.projector(torch.cat([z1, z2])[:, 1:].mean(1)))
    assert not torch.allclose(out.p2, joint_p[4:], atol=1e-3)


def test_gradients_reach_student_only(tiny_lut):
    tiny_lut.train()
    losses = tiny_lut.loss(_views(seed=8))
    sum(losses.values()).backward()
    assert all(p.grad is None for p in tiny_lut.teacher.parameters())
    assert tiny_lut.backbone.cls_token.grad is not None
    assert tiny_lut.predictor.mlp.layers[0].weight.grad.abs().sum() > 0
    assert tiny_lut.neck.decoder_pred.weight.grad.abs().sum() > 0


def test_teacher_starts_as_copy_of_initialised_student(tiny_lut):
    s = tiny_lut.backbone.state_dict()
    t = tiny_lut.teacher["backbone"].state_dict()
    assert all(torch.equal(s[k], t[k]) for k in s)


def test_update_teacher_momentum_first_and_last_iteration(tiny_lut):
    with torch.no_grad():
        for p in tiny_lut.backbone.parameters():
            p.add_(1.0)
    before = tiny_lut.teacher["backbone"].cls_token.clone()
    student = tiny_lut.backbone.cls_token.clone()
    m = tiny_lut.update_teacher(0, 100)
    assert m == pytest.approx(0.996)
    torch.testing.assert_close(
        tiny_lut.teacher["backbone"].cls_token, 0.996 * before + 0.004 * student
    )
    snapshot = tiny_lut.teacher["backbone"].cls_token.clone()
    assert tiny_lut.update_teacher(99, 100) == pytest.approx(1.0)
    torch.testing.assert_close(tiny_lut.teacher["backbone"].cls_token, snapshot)


def test_teacher_bn_running_stats_follow_the_student(tiny_lut):
    tiny_lut.train()
    tiny_lut.loss(_views(seed=9))  # the student's BN running stats move
    s_mean = tiny_lut.projector.mlp.layers[1].running_mean.clone()
    t_mean = tiny_lut.teacher["projector"].mlp.layers[1].running_mean.clone()
    assert not torch.allclose(s_mean, t_mean)
    tiny_lut.update_teacher(0, 10)
    torch.testing.assert_close(
        tiny_lut.teacher["projector"].mlp.layers[1].running_mean, 0.996 * t_mean + 0.004 * s_mean
    )


def _train_steps(model, optim_wrapper, n: int, max_iters: int, start: int = 0) -> list[dict]:
    """Iterations ``start..n-1`` of ``model.train_step`` as a Runner makes them."""
    hub = MessageHub.get_current_instance()
    hub.update_info("max_iters", max_iters)
    if start == 0:
        optim_wrapper.initialize_count_status(model, 0, max_iters)
    model.train()
    logs = []
    for i in range(start, n):
        hub.update_info("iter", i)
        logs.append(model.train_step(dict(inputs=_views(seed=i), data_samples=None), optim_wrapper))
    return logs


@pytest.mark.parametrize("accumulation", [1, 2])
def test_train_step_updates_the_teacher_after_each_optimiser_step(tiny_lut, accumulation):
    from mmengine.optim import build_optim_wrapper

    optim_wrapper = build_optim_wrapper(
        tiny_lut,
        dict(optimizer=dict(type="AdamW", lr=1e-3), accumulative_counts=accumulation),
    )
    calls = []
    update_teacher = tiny_lut.update_teacher

    def counting_update(cur_iter, max_iters):
        calls.append(cur_iter)
        return update_teacher(cur_iter, max_iters)

    tiny_lut.update_teacher = counting_update
    first = 0 if accumulation == 1 else 1  # the first iteration that steps
    _train_steps(tiny_lut, optim_wrapper, n=first, max_iters=5)
    teacher = tiny_lut.teacher["backbone"].cls_token
    before = teacher.clone()
    _train_steps(tiny_lut, optim_wrapper, n=first + 1, max_iters=5, start=first)
    # EMA towards the student *after* the optimiser step, logged through the message hub.
    m = cosine_momentum(first, 5)
    hub = MessageHub.get_current_instance()
    assert hub.get_scalar("train/teacher_momentum").current() == pytest.approx(m)
    torch.testing.assert_close(teacher, m * before + (1 - m) * tiny_lut.backbone.cls_token)
    logs = _train_steps(tiny_lut, optim_wrapper, n=5, max_iters=5, start=first + 1)
    steps = optim_wrapper.optimizer.state[tiny_lut.backbone.cls_token]["step"].item()
    # One update per optimiser step, at the data iteration that stepped (the last one too).
    expected = [0, 1, 2, 3, 4] if accumulation == 1 else [1, 3, 4]
    assert calls == expected and steps == len(expected)
    assert hub.get_scalar("train/teacher_momentum").current() == 1.0
    assert set(logs[-1]) >= {"loss", "loss_mim", "loss_bc"}


def test_other_optimisers_and_eval_mode_leave_the_teacher_alone(tiny_lut):
    hub = MessageHub.get_current_instance()
    hub.update_info("max_iters", 10)
    hub.update_info("iter", 0)
    teacher = tiny_lut.teacher["backbone"].cls_token
    before = teacher.clone()
    with torch.no_grad():
        tiny_lut.backbone.cls_token.add_(1.0)
    other = torch.nn.Parameter(torch.ones(3))
    other.grad = torch.ones(3)
    torch.optim.SGD([other], lr=0.1).step()  # an optimiser of something else
    torch.testing.assert_close(teacher, before)
    tiny_lut.eval()
    tiny_lut.backbone.cls_token.grad = torch.ones_like(tiny_lut.backbone.cls_token)
    torch.optim.SGD([tiny_lut.backbone.cls_token], lr=0.1).step()  # not training
    torch.testing.assert_close(teacher, before)
    tiny_lut.train()
    torch.optim.SGD([tiny_lut.backbone.cls_token], lr=0.1).step()
    assert not torch.equal(teacher, before)


def test_a_frozen_cls_token_does_not_stop_the_teacher_updates(tiny_lut):
    """The optimiser is recognised by any trained student parameter, not the first one."""
    hub = MessageHub.get_current_instance()
    hub.update_info("max_iters", 10)
    hub.update_info("iter", 0)
    tiny_lut.backbone.cls_token.requires_grad_(False)
    optimizer = torch.optim.SGD([p for p in tiny_lut.parameters() if p.requires_grad], lr=0.1)
    tiny_lut.train()
    sum(tiny_lut.loss(_views(seed=9)).values()).backward()
    teacher = tiny_lut.teacher["projector"].mlp.layers[0].weight
    before = teacher.clone()
    optimizer.step()
    m = cosine_momentum(0, 10)
    student = tiny_lut.projector.mlp.layers[0].weight
    torch.testing.assert_close(teacher, m * before + (1 - m) * student)


def test_outside_a_runner_the_loop_updates_the_teacher_itself(tiny_lut):
    from mmengine.optim import build_optim_wrapper

    optim_wrapper = build_optim_wrapper(tiny_lut, dict(optimizer=dict(type="SGD", lr=0.1)))
    MessageHub.get_instance("lut_test_no_runner")  # a fresh hub: no iteration info
    before = tiny_lut.teacher["projector"].mlp.layers[0].weight.clone()
    tiny_lut.train()
    tiny_lut.train_step(dict(inputs=_views(), data_samples=None), optim_wrapper)
    torch.testing.assert_close(tiny_lut.teacher["projector"].mlp.layers[0].weight, before)
    tiny_lut.update_teacher(0, 10)
    assert not torch.equal(tiny_lut.teacher["projector"].mlp.layers[0].weight, before)


def test_mmengine_ddp_wrapper_updates_the_teacher(tiny_lut, tmp_path):
    """mmengine's DDP wrapper runs its own train_step: the teacher still follows each step."""
    import torch.distributed as dist
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import build_optim_wrapper

    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    try:
        ddp = MMDistributedDataParallel(module=tiny_lut, broadcast_buffers=False)
        optim_wrapper = build_optim_wrapper(tiny_lut, dict(optimizer=dict(type="SGD", lr=0.1)))
        hub = MessageHub.get_current_instance()
        hub.update_info("max_iters", 10)
        for i in range(2):
            before = tiny_lut.teacher["projector"].mlp.layers[0].weight.clone()
            hub.update_info("iter", i)
            ddp.train_step(dict(inputs=_views(seed=i), data_samples=None), optim_wrapper)
            m = cosine_momentum(i, 10)
            torch.testing.assert_close(
                tiny_lut.teacher["projector"].mlp.layers[0].weight,
                m * before + (1 - m) * tiny_lut.projector.mlp.layers[0].weight,
            )
    finally:
        dist.destroy_process_group()


def test_batch_of_one_is_refused_with_bn_heads(tiny_lut):
    tiny_lut.train()
    with pytest.raises(ValueError, match="batch of 1 image.*drop_last=True"):
        tiny_lut.loss(_views(batch=1))
    tiny_lut.eval()
    assert set(tiny_lut.loss(_views(batch=1))) == {"loss_mim", "loss_bc"}  # no batch statistics
    ln_heads = build_tiny_lut(projector=dict(norm="ln"), predictor=dict(norm="ln"))
    ln_heads.train()
    assert set(ln_heads.loss(_views(batch=1))) == {"loss_mim", "loss_bc"}


# -- bad configurations -------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [0.3, 0.49, 1.0, 1.2])
def test_impossible_mask_ratio_fails_at_build(ratio):
    with pytest.raises(ValueError, match="mask_ratio"):
        build_tiny_lut(backbone=dict(mask_ratio=ratio))


def test_mask_ratio_leaving_no_visible_token_fails_at_build():
    # 8 px / patch 4 -> 4 patches; int(4 * (1 - 0.8)) = 0 visible patches
    with pytest.raises(ValueError, match="no visible patch"):
        build_tiny_lut(backbone=dict(img_size=8, mask_ratio=0.8), neck=dict(num_patches=4))


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (dict(w_bc=-0.1), "w_bc must be a finite, non-negative"),
        (dict(w_mim=-1.0), "w_mim must be a finite, non-negative"),
        (dict(w_bc=math.nan), "w_bc must be a finite"),
        (dict(w_mim=0.0, w_bc=0.0), "both 0"),
        (dict(projector=dict(norm="groupnorm")), "unknown norm"),
        (dict(predictor=dict(act="swish")), "unknown act"),
        (dict(base_momentum=1.5), "momentum"),
        (
            dict(fuse_teacher_gelu=True, w_bc=0.0, projector=None, predictor=None),
            "fuse_teacher_gelu needs the teacher",
        ),
        # parts that do not fit the 64-d, 8 x 8-patch, patch-4 encoder
        (dict(projector=dict(in_channels=128)), r"projector.in_channels is 128, .* width \(64\)"),
        (dict(predictor=dict(in_channels=32)), r"predictor.in_channels is 32, .*output \(64\)"),
        (dict(neck=dict(embed_dim=128)), r"neck.embed_dim is 128, .* width \(64\)"),
        (dict(neck=dict(num_patches=16)), r"neck.num_patches is 16, .* patches \(64\)"),
        (dict(neck=dict(patch_size=8)), r"neck.patch_size\*\*2 \* neck.in_chans is 192"),
        (dict(head=dict(patch_size=8)), r"head.patch_size is 8, .* patch_size \(4\)"),
        (dict(backbone=dict(patch_size=5)), "img_size 32 is not a whole number of patches"),
        (
            dict(
                backbone=dict(
                    arch=dict(embed_dims=64, num_layers=2, num_heads=5, feedforward_channels=256)
                )
            ),
            "embed_dims 64 is not divisible by num_heads 5",
        ),
    ],
)
def test_bad_values_fail_at_build(overrides, match):
    with pytest.raises(ValueError, match=match):
        build_tiny_lut(**overrides)


def test_fused_teacher_gelu_changes_only_the_teachers_activation():
    torch.manual_seed(0)
    plain = build_tiny_lut()
    torch.manual_seed(0)
    fused = build_tiny_lut(fuse_teacher_gelu=True)
    fused_layers = [m for m in fused.modules() if isinstance(m, LinearGELU)]
    assert len(fused_layers) == 2  # one per teacher block; the student and decoder keep theirs
    assert all(any(m is f for m in fused.teacher.modules()) for f in fused_layers)
    # Same state (keys and values): checkpoints and the EMA update see no difference.
    assert_state_dicts_equal(plain.state_dict(), fused.state_dict())

    x1, x2 = _views(seed=2)
    noise = torch.rand(4, 64, generator=torch.Generator().manual_seed(5))
    plain.train(), fused.train()
    out_fused = fused.forward_lut(x1, x2, noise)
    gap = (plain.forward_lut(x1, x2, noise).t1 - out_fused.t1).abs().max().item()
    assert 0 < gap < 1e-3  # the exact GELU's targets: close, not identical
    # The reference teacher with GELU's tanh approximation gives the fused teacher's targets.
    for m in plain.teacher.modules():
        if isinstance(m, nn.GELU):
            m.approximate = "tanh"
    out_plain = plain.forward_lut(x1, x2, noise)
    for name in ("loss_mim", "loss_bc", "p1", "p2", "t1", "t2"):
        torch.testing.assert_close(getattr(out_fused, name), getattr(out_plain, name))

    before = fused_layers[0].weight.clone()
    for model in (plain, fused):  # the EMA update reaches the fused layers' parameters
        with torch.no_grad():
            model.backbone.layers[0].ffn.layers[0][0].weight.add_(1.0)
        model.update_teacher(3, 10)
    assert not torch.equal(fused_layers[0].weight, before)
    assert_state_dicts_equal(
        plain.teacher["backbone"].state_dict(), fused.teacher["backbone"].state_dict()
    )


def test_one_view_is_rejected(tiny_lut):
    with pytest.raises(ValueError, match="two views"):
        tiny_lut.loss([torch.randn(2, 3, 32, 32)])


def test_bc_only_and_mim_only_variants():
    bc_only = build_tiny_lut(w_mim=0.0, neck=None, head=None)
    assert bc_only.neck is None and set(bc_only.loss(_views())) == {"loss_bc"}
    mim_only = build_tiny_lut(w_bc=0.0, projector=None, predictor=None)
    assert mim_only.teacher is None and set(mim_only.loss(_views())) == {"loss_mim"}


def test_patch_embedding_matmul_gives_the_convolution_tokens_and_gradients(tiny_lut):
    """The patch embedding runs as one matrix product (tensor cores on a GPU); it must give
    mmcv's convolution's tokens and gradients, and keep the convolution's path (with its
    adaptive padding) for an image that does not tile exactly."""
    patch_embed = tiny_lut.backbone.patch_embed
    torch.manual_seed(0)
    x = torch.randn(3, 3, 32, 32, requires_grad=True)
    tokens = embed_patches(patch_embed, x, (8, 8))
    conv_tokens, grid = patch_embed(x)
    assert tuple(grid) == (8, 8)
    torch.testing.assert_close(tokens, conv_tokens, atol=1e-5, rtol=1e-5)
    weight = patch_embed.projection.weight
    grads = [torch.autograd.grad(t.square().sum(), (weight, x)) for t in (tokens, conv_tokens)]
    for ours, conv in zip(*grads):
        torch.testing.assert_close(ours, conv, atol=1e-4, rtol=1e-4)  # float32 summation order
    # The encoder adds its position embedding to these tokens.
    torch.testing.assert_close(
        tiny_lut.backbone._embed_patches(x), tokens + tiny_lut.backbone.pos_embed[:, 1:]
    )
    # 30 px: mmcv pads to 32 (the same 8 x 8 grid); the reshape would not tile, so the
    # convolution runs.
    odd = torch.randn(2, 3, 30, 30)
    assert torch.equal(embed_patches(patch_embed, odd, (8, 8)), patch_embed(odd)[0])
    # Only some patches (a masked encoder's visible ones): those rows of the full embedding,
    # on both paths, with the same weight gradient (the others' gradient is zero).
    ids = torch.stack([torch.randperm(64)[:16] for _ in range(3)])
    visible = embed_patches(patch_embed, x, (8, 8), ids)
    torch.testing.assert_close(visible, gather_tokens(tokens, ids), atol=1e-6, rtol=1e-6)
    row, col = divmod(int(ids[1, 5]), 8)  # that patch by hand: its 3 x 4 x 4 pixels
    pixels = x[1, :, 4 * row : 4 * row + 4, 4 * col : 4 * col + 4].flatten()
    by_hand = weight.flatten(1) @ pixels + patch_embed.projection.bias
    torch.testing.assert_close(visible[1, 5], by_hand, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(
        torch.autograd.grad(visible.square().sum(), weight)[0],
        torch.autograd.grad(
            gather_tokens(embed_patches(patch_embed, x, (8, 8)), ids).square().sum(), weight
        )[0],
        atol=1e-4,
        rtol=1e-4,
    )
    assert torch.equal(
        embed_patches(patch_embed, odd, (8, 8), ids[:2]),
        gather_tokens(patch_embed(odd)[0], ids[:2]),
    )
    # A 4 x 6 grid: the indices run row by row over the grid's width.
    wide = torch.randn(2, 3, 16, 24)
    ids_wide = torch.stack([torch.randperm(24)[:7] for _ in range(2)])
    torch.testing.assert_close(
        embed_patches(patch_embed, wide, (4, 6), ids_wide),
        gather_tokens(patch_embed(wide)[0], ids_wide),
        atol=1e-6,
        rtol=1e-6,
    )
    torch.testing.assert_close(
        tiny_lut.backbone._embed_patches(x, ids),
        gather_tokens(tiny_lut.backbone._embed_patches(x), ids),
        atol=1e-6,
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match=r"gives a \(10, 10\) patch grid.*built for \(8, 8\)"):
        embed_patches(patch_embed, torch.randn(1, 3, 40, 40), (8, 8))
    # A wrong channel count gets the convolution's own message, not a matmul shape error.
    with pytest.raises(RuntimeError, match="expected input.*to have 3 channels"):
        embed_patches(patch_embed, torch.randn(1, 1, 32, 32), (8, 8))


@pytest.mark.parametrize("fused", [False, True])
def test_an_fp16_step_that_the_loss_scaler_skips(tiny_lut, fused):
    """Inf gradients: the weights stay; the teacher follows only if ``optimizer.step()`` ran.

    A fused optimiser (the pre-training configs) is called by the scaler and skips on the
    device, so the teacher is updated, as the reference code updates its EMA after every such
    iteration; a non-fused one is not called, and the teacher is not updated.
    """
    hub = MessageHub.get_current_instance()
    hub.update_info("max_iters", 10)
    hub.update_info("iter", 0)
    params = [p for p in tiny_lut.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3, fused=fused)
    scaler = torch.amp.GradScaler("cpu")
    student, teacher = tiny_lut.backbone.cls_token, tiny_lut.teacher["backbone"].cls_token
    with torch.no_grad():
        student.add_(1.0)  # so that an update of the teacher shows
    tiny_lut.train()
    scaler.scale(sum(tiny_lut.loss(_views()).values())).backward()
    student.grad.fill_(float("inf"))
    s0, t0, scale = student.clone(), teacher.clone(), scaler.get_scale()
    scaler.step(optimizer)
    scaler.update()
    assert scaler.get_scale() == scale / 2  # the step was skipped
    torch.testing.assert_close(student, s0, rtol=0, atol=0)
    m = cosine_momentum(0, 10)
    expected = m * t0 + (1 - m) * s0 if fused else t0
    torch.testing.assert_close(teacher, expected)


def test_a_training_iteration_makes_the_host_wait_only_in_mmengines_logging():
    """Issue 8's "no host synchronisation inside the training step": LUT's step (forward,
    backward, fused AdamW, the teacher's EMA) and ``FiniteCheckHook`` between its reads
    read no value; mmengine's ``RuntimeInfoHook`` then reads each logged loss."""
    from types import SimpleNamespace

    from mmengine.hooks import RuntimeInfoHook
    from mmengine.optim import build_optim_wrapper

    from lut_plugin.runtime.hooks import FiniteCheckHook

    model = build_tiny_lut()
    optim_wrapper = build_optim_wrapper(
        model,
        dict(
            optimizer=dict(type="AdamW", lr=1e-3, weight_decay=0.05, fused=True),
            constructor="SkipFrozenOptimWrapperConstructor",
            paramwise_cfg=dict(norm_decay_mult=0.0),
        ),
    )
    hub = MessageHub.get_current_instance()
    hub.update_info("max_iters", 10)
    runner = SimpleNamespace(model=model, iter=0, hooks=[], optim_wrapper=optim_wrapper)
    runner.message_hub = hub
    check = FiniteCheckHook(interval=5)
    check.before_train(runner)
    model.train()
    teacher = model.teacher["backbone"].cls_token.clone()
    for i in range(3):  # interval 5: iterations 0-2 are recorded, not read
        runner.iter = i
        hub.update_info("iter", i)
        with HostSyncs() as syncs:
            outputs = model.train_step(
                dict(inputs=_views(seed=i), data_samples=None), optim_wrapper
            )
            check.after_train_iter(runner, i, outputs=outputs)
        assert syncs.seen == [], f"iteration {i}"
    assert not torch.equal(model.teacher["backbone"].cls_token, teacher)  # the EMA ran
    with HostSyncs() as syncs:
        RuntimeInfoHook().after_train_iter(runner, 2, outputs=outputs)
    assert syncs.seen == ["aten._local_scalar_dense.default"] * len(outputs)
