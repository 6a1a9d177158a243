# LUT's projector h and predictor q for a ViT-B (768-d) encoder, METHOD.md step 5:
# Linear(768, 4096, bias=False) -> SyncBN -> ReLU -> Linear(4096, 768, bias=False).
# SyncBN is reverted to BN by mmengine when not distributed. Use next to an upstream base:
#   model = dict(projector={{_base_.lut_projector}}, predictor={{_base_.lut_predictor}}, ...)
lut_projector = dict(
    type='LUTProjectionMLP',
    in_channels=768,
    hid_channels=4096,
    num_layers=2,
    norm='syncbn',
    act='relu')
lut_predictor = lut_projector
