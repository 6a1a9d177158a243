# SimMIM ViT-B/16 pre-training, ImageNet-1K, 224 px, 100 epochs (Table A baseline).
#
# mmpretrain ships SimMIM for Swin only; this config takes its 100-epoch Swin recipe and puts
# SimMIM's own ViT-B/16 settings in (microsoft/SimMIM simmim_pretrain__vit_base__img224):
#   encoder: LUTSimMIMViT (= BEiTPretrainViT + SimMIM's mask-token forward): cls token, no
#            absolute position embedding, one relative position bias shared by all blocks,
#            layer scale 0.1, q/v biases, LN eps 1e-6, final norm, drop path 0.1;
#   decoder: SimMIMLinearDecoder (1x1 conv to 16*16*3, pixel shuffle 16);
#   loss:    L1 on the normalised pixels of the masked patches only (SimMIMHead);
#   masks:   SimMIMMaskGenerator, 32 px blocks (2x2 patches), 60 % of the blocks masked;
#   data:    RandomResizedCrop(224, scale (0.67, 1)) + flip, batch 8 x 256 = 2048;
#   optim:   AdamW (0.9, 0.999), wd 0.05 (none on 1-D parameters and the cls token), base
#            lr 1e-4 per 512 images -> 4e-4, grad-norm clip 5, AMP (fused AdamW here);
#   sched:   10 warm-up epochs from 5e-7 per 512 (2e-6), cosine to 5e-6 per 512 (2e-5).
# The 100-epoch length follows Table A; SimMIM's ViT recipe itself is 800 epochs.
_base_ = [
    'mmpretrain::simmim/simmim_swin-base-w6_8xb256-amp-coslr-100e_in1k-192px.py',
    '../_base_/reliability_runtime.py',
]

custom_imports = dict(imports=['lut_plugin'], allow_failed_imports=False)

model = dict(
    type='SimMIM',
    backbone=dict(
        _delete_=True,
        type='LUTSimMIMViT',
        arch='base',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        use_abs_pos_emb=False,
        use_rel_pos_bias=False,
        use_shared_rel_pos_bias=True,
        layer_scale_init_value=0.1,
        final_norm=True,
        mask_ratio=0.6,  # used by LUTSimMIM's in-model masks; SimMIM reads the pipeline's
        mask_patch_size=32,
        init_cfg=[
            dict(type='TruncNormal', std=0.02, layer='Linear'),
            dict(type='TruncNormal', std=0.02, layer='Conv2d'),
            dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
        ]),
    neck=dict(type='SimMIMLinearDecoder', in_channels=768, encoder_stride=16),
    head=dict(
        type='SimMIMHead',
        patch_size=16,
        loss=dict(type='PixelReconstructionLoss', criterion='L1', channel=3)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.67, 1.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='SimMIMMaskGenerator',
        input_size=224,
        mask_patch_size=32,
        model_patch_size=16,
        mask_ratio=0.6),
    dict(type='PackInputs')
]
train_dataloader = dict(batch_size=256, dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(
        type='AdamW',
        lr=1e-4 * 2048 / 512,
        betas=(0.9, 0.999),
        weight_decay=0.05,
        # one kernel per step, as LUT's MAE-flavour configs; it also runs when the loss
        # scaler skips a step, so LUT(SimMIM)'s teacher then updates, as in those configs
        fused=True),
    clip_grad=dict(max_norm=5.0),
    paramwise_cfg=dict(
        _delete_=True,
        flat_decay_mult=0.0,
        custom_keys={'cls_token': dict(decay_mult=0.0)}))

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=5e-7 / 1e-4,
        by_epoch=True,
        begin=0,
        end=10,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=90,
        eta_min=5e-6 * 2048 / 512,
        by_epoch=True,
        begin=10,
        end=100,
        convert_to_iter_based=True)
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100)
auto_scale_lr = dict(base_batch_size=2048)
