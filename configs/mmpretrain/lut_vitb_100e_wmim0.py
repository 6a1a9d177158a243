# Table C: "L_BC only" -- LUT ViT-B/16, 100 epochs, w_mim = 0 (no reconstruction).
# The MAE decoder and its head are not built (neck=None, head=None); the student encoder,
# projector, predictor and momentum teacher train on L_BC alone (w_bc 0.25, which only
# rescales the loss here). Schedule, views and masks as lut_vitb_100e.py: each view still
# encodes its 25 % visible patches, drawn disjointly from one noise.
_base_ = './lut_vitb_100e.py'

model = dict(w_mim=0.0, neck=None, head=None)
