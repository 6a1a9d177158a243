# Table B ablation: LUT ViT-B/16, 400 epochs, broader-context weight w_bc = 0.1
# (lut_vitb_400e.py is the w_bc = 0.25 row). Everything else as lut_vitb_400e.py.
# Evaluate with lut_vitb_finetune_100e.py and lut_vitb_linear_90e.py, e.g.
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/lut_vitb_400e_wbc0.1/epoch_400.pth
_base_ = './lut_vitb_400e.py'

model = dict(w_bc=0.1)
