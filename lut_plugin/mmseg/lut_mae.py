"""mmseg backbone that starts from a LUT (or MAE) pre-training checkpoint."""

from __future__ import annotations

import math

from mmengine.logging import print_log
from mmpretrain.models.utils import resize_pos_embed
from mmseg.models.backbones import MAE
from mmseg.registry import MODELS

from lut_plugin.convert import ENCODER_PREFIXES, PRETRAIN_ONLY_KEYS, extract_encoder
from lut_plugin.runtime import load_checkpoint_file, match_state_dict


@MODELS.register_module()
class LUTMAE(MAE):
    """mmseg's MAE backbone loading one encoder of a LUT or MAE checkpoint strictly
    (docs/segmentation.md); ``MAE`` in the name for mmseg's ``LayerDecayOptimizerConstructor``.

    Args:
        encoder (str): ``'student'`` (as the paper) or ``'teacher'``. Defaults to ``'student'``.
        final_norm (bool): Apply the pre-trained final norm ``ln1``. Defaults to True.
        init_values (float): Initial layer scale; must be 1.0 to load a checkpoint.
        pretrained (str, optional): Checkpoint path (mmseg's ``model.pretrained``).
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=..., prefix=None)``.
        **kwargs: The other arguments of mmseg's ``MAE``.
    """

    def __init__(self, encoder: str = "student", final_norm: bool = True,
                 init_values: float = 1.0, pretrained: str | None = None,
                 init_cfg: dict | None = None, **kwargs) -> None:  # fmt: skip
        if encoder not in ENCODER_PREFIXES:
            raise ValueError(f"encoder must be one of {sorted(ENCODER_PREFIXES)}, got {encoder!r}")
        if pretrained is not None:  # mmseg's `model.pretrained`; avoids BEiT's deprecation
            if init_cfg is not None:
                raise ValueError("set either pretrained or init_cfg, not both")
            init_cfg = dict(type="Pretrained", checkpoint=str(pretrained))
        if isinstance(init_cfg, list | tuple) and any(
            isinstance(c, dict) and c.get("type") == "Pretrained" for c in init_cfg
        ):  # mmengine would load it, without the strict checks below
            raise ValueError(
                f"{type(self).__name__} loads its checkpoint itself: give init_cfg as one "
                f"dict(type='Pretrained', checkpoint=...) (or pretrained=...), not in a list"
            )
        super().__init__(
            final_norm=final_norm, init_values=init_values, init_cfg=init_cfg, **kwargs
        )
        self.encoder = encoder

    def init_weights(self) -> None:
        """Initialise at random, then load the pre-trained encoder strictly (if configured)."""
        init_cfg = self.init_cfg
        pretrained = isinstance(init_cfg, dict) and init_cfg.get("type") == "Pretrained"
        self.init_cfg = None if pretrained else init_cfg
        try:
            super().init_weights()
        finally:
            self.init_cfg = init_cfg
        if pretrained:
            self.load_pretrained(init_cfg["checkpoint"], prefix=init_cfg.get("prefix"))

    def load_pretrained(self, filename: str, prefix: str | None = None) -> list[str]:
        """Load one encoder of a checkpoint, raising on any misfit; returns the keys
        deliberately skipped (``ln1.*`` without ``final_norm``, ``mask_token``)."""
        if self.init_values != 1.0:
            raise ValueError(
                f"{type(self).__name__}: init_values={self.init_values} would scale the residual "
                f"branches of the pre-trained encoder from {filename!r}; use init_values=1.0."
            )
        encoder_sd = extract_encoder(load_checkpoint_file(filename), self.encoder, filename, prefix)
        skip = () if self.final_norm else ("ln1.",)
        skipped = [k for k in encoder_sd if k.startswith(skip) or k in PRETRAIN_ONLY_KEYS]
        encoder_sd = {k: v for k, v in encoder_sd.items() if k not in skipped}
        pos, grid = encoder_sd.get("pos_embed"), tuple(self.patch_shape)
        src = None if pos is None else pos.shape[1] - 1
        if src is not None and src != math.prod(grid) and pos.shape[-1] == self.embed_dims:
            side = math.isqrt(src)
            if side * side == src:  # a non-square source grid stays a mismatch
                encoder_sd["pos_embed"] = resize_pos_embed(pos, (side, side), grid)
        new = ("relative_position_bias_table", "relative_position_index", ".gamma_1", ".gamma_2")
        identity = [k for k in self.state_dict() if k.endswith(new)]
        model = (f"{type(self).__name__}(embed_dims={self.embed_dims}, num_layers="
                 f"{self.num_layers}, patch_size={self.patch_size}, img_size="
                 f"{tuple(self.img_size)}, final_norm={self.final_norm})")  # fmt: skip
        state_dict = match_state_dict(
            encoder_sd, {k: v.shape for k, v in self.state_dict().items()},
            f"Pre-trained checkpoint {filename!r} does not fit the segmentation backbone {model} "
            f"(different width, depth or patch size, or not a ViT encoder?)",
            allow_missing=identity,
        )  # fmt: skip
        self.load_state_dict(state_dict, strict=False)
        print_log(
            f"{type(self).__name__}: loaded {len(state_dict)} tensors of the {self.encoder} "
            f"encoder from {filename} (pos_embed {src} -> {math.prod(grid)} patches); "
            f"{len(identity)} relative-position/layer-scale tensors start as identity"
            + (f"; skipped: {', '.join(skipped)}" if skipped else ""),
            logger="current",
        )
        return skipped
