"""mmseg backbone that starts from a LUT (or MAE) pre-training checkpoint."""

from __future__ import annotations

from mmengine.logging import print_log
from mmseg.models.backbones import MAE
from mmseg.registry import MODELS

from lut_plugin.checkpoint import (
    ENCODER_PREFIXES,
    extract_encoder,
    load_checkpoint_file,
    match_encoder_state_dict,
)


@MODELS.register_module()
class LUTMAE(MAE):
    """mmseg's MAE segmentation backbone, loading a LUT pre-training checkpoint strictly.

    The architecture is mmseg's ``MAE`` backbone (BEiT-style ViT with per-block relative position
    bias and layer-scale ``gamma``), which is what mmseg's MAE UperNet recipe fine-tunes. Only the
    weight loading differs:

    * the checkpoint is the file written by the pre-training run (``backbone.*`` = student encoder,
      ``teacher.backbone.*`` = momentum teacher), an mmpretrain MAE checkpoint, or a file written
      by ``tools/convert_checkpoint.py --to mmseg``; ``encoder`` chooses the encoder;
    * every encoder tensor must match the model by key and shape, otherwise an error names the
      file and the first missing / unexpected / mismatched keys (mmseg's loader would silently
      skip them with ``strict=False``);
    * the absolute position embedding is resized (bicubic, cls token kept) to the fine-tuning grid;
    * the parameters the pre-training encoder has not got start as an identity: the relative
      position bias tables at zero and the layer scales ``gamma_1``/``gamma_2`` at
      ``init_values``, which must then be 1.0, so that the loaded backbone computes exactly
      the pre-training encoder's features;
    * with ``final_norm=True`` (the default here) the encoder's final LayerNorm ``ln1`` is loaded
      and applied to the last block's output, so the last feature map equals the pre-training
      encoder's output. ``final_norm=False`` reproduces mmseg's MAE recipe, which drops that
      norm; ``ln1.*`` is then skipped and the skip is logged.

    The class name contains ``MAE`` on purpose: mmseg's ``LayerDecayOptimizerConstructor``
    recognises ViT backbones by that substring and then reads the depth from
    ``backbone.layers.{i}``.

    Args:
        encoder (str): ``'student'`` (default: the online encoder, which the paper fine-tunes) or
            ``'teacher'`` (the momentum encoder).
        final_norm (bool): Apply the pre-trained final LayerNorm to the last block's output.
            Defaults to True.
        init_values (float): Initial layer-scale value; must be 1.0 when a checkpoint is loaded.
            Defaults to 1.0.
        pretrained (str, optional): Checkpoint path (mmseg's ``model.pretrained`` lands here).
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=..., prefix=None)``;
            an explicit ``prefix`` overrides the one ``encoder`` selects.
        **kwargs: The other arguments of mmseg's ``MAE`` (``img_size``, ``patch_size``,
            ``embed_dims``, ``num_layers``, ``num_heads``, ``mlp_ratio``, ``out_indices``,
            ``drop_path_rate``, ``norm_cfg``, ...).
    """

    def __init__(
        self,
        encoder: str = "student",
        final_norm: bool = True,
        init_values: float = 1.0,
        pretrained: str | None = None,
        init_cfg: dict | None = None,
        **kwargs,
    ) -> None:
        if encoder not in ENCODER_PREFIXES:
            raise ValueError(f"encoder must be one of {sorted(ENCODER_PREFIXES)}, got {encoder!r}")
        if pretrained is not None:  # mmseg's `model.pretrained`; avoids BEiT's deprecation
            if init_cfg is not None:
                raise ValueError("set either pretrained or init_cfg, not both")
            if not isinstance(pretrained, str):
                raise TypeError(f"pretrained must be a str or None, got {type(pretrained)}")
            init_cfg = dict(type="Pretrained", checkpoint=pretrained)
        if isinstance(init_cfg, list | tuple) and any(
            isinstance(c, dict) and c.get("type") == "Pretrained" for c in init_cfg
        ):  # mmengine would load it, without the strict checks below
            raise ValueError(
                f"{type(self).__name__} loads its checkpoint itself: give init_cfg as one "
                f"dict(type='Pretrained', checkpoint=...) (or pretrained=...), not in a list"
            )
        super().__init__(
            final_norm=final_norm,
            init_values=init_values,
            init_cfg=init_cfg,
            **kwargs,
        )
        self.encoder = encoder

    @property
    def checkpoint_path(self) -> str | None:
        """The pre-trained checkpoint this backbone loads in ``init_weights`` (or None)."""
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get("type") == "Pretrained":
            return cfg["checkpoint"]
        return None

    def _describe(self) -> str:
        return (
            f"{type(self).__name__}(embed_dims={self.embed_dims}, num_layers={self.num_layers}, "
            f"patch_size={self.patch_size}, img_size={tuple(self.img_size)}, "
            f"final_norm={self.final_norm})"
        )

    def _identity_keys(self) -> list[str]:
        """Model keys a ViT encoder has not got: relative position bias and layer scale."""
        return [
            k
            for k in self.state_dict()
            if k.endswith(("relative_position_bias_table", "relative_position_index"))
            or k.endswith((".gamma_1", ".gamma_2"))
        ]

    def init_weights(self) -> None:
        """Initialise at random, then load the pre-trained encoder strictly (if configured)."""
        path = self.checkpoint_path
        if path is None:  # no checkpoint: mmseg MAE's own initialisation (or other init_cfg)
            super().init_weights()
            return
        init_cfg, self.init_cfg = self.init_cfg, None
        try:
            super().init_weights()  # mmseg MAE's random initialisation, then the checkpoint
        finally:
            self.init_cfg = init_cfg
        self.load_pretrained(path, prefix=init_cfg.get("prefix"))

    def load_pretrained(self, filename: str, prefix: str | None = None) -> list[str]:
        """Load one encoder of a pre-training checkpoint; raise on any mismatch.

        Args:
            filename (str): The checkpoint file.
            prefix (str, optional): Explicit key prefix instead of the ``encoder`` one.

        Returns:
            list[str]: Checkpoint keys deliberately skipped (``ln1.*`` when ``final_norm`` is
            False, ``mask_token``).
        """
        if self.init_values != 1.0:
            raise ValueError(
                f"{type(self).__name__}: init_values={self.init_values} would scale the residual "
                f"branches of the pre-trained encoder from {filename!r}; use init_values=1.0."
            )
        ckpt = load_checkpoint_file(filename)
        encoder_sd = extract_encoder(ckpt, self.encoder, filename, prefix=prefix)
        expected = {k: v.shape for k, v in self.state_dict().items()}
        skip = [k for k in encoder_sd if k.startswith("ln1.")] if not self.final_norm else []
        state_dict, skipped = match_encoder_state_dict(
            encoder_sd,
            expected,
            filename=filename,
            model_desc=self._describe(),
            new_keys=self._identity_keys(),
            skip_keys=skip,
            resizable={"pos_embed": tuple(self.patch_shape)},
        )
        result = self.load_state_dict(state_dict, strict=False)
        # Only the identity-initialised keys may be absent; match_encoder_state_dict ensured it.
        assert not result.unexpected_keys, result.unexpected_keys
        assert set(result.missing_keys) <= set(self._identity_keys()), result.missing_keys
        src_grid = encoder_sd["pos_embed"].shape[1] - 1 if "pos_embed" in encoder_sd else None
        print_log(
            f"{type(self).__name__}: loaded {len(state_dict)} tensors of the {self.encoder} "
            f"encoder from {filename} (pos_embed {src_grid} -> "
            f"{self.patch_shape[0] * self.patch_shape[1]} patches); "
            f"{len(result.missing_keys)} relative-position/layer-scale tensors start as identity"
            + (f"; skipped: {', '.join(skipped)}" if skipped else ""),
            logger="current",
        )
        return skipped
