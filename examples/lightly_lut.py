# LUT (Learning with Unmasked Tokens, ECCV 2024) in a plain PyTorch loop with lightly's modules.
# Note: the defaults follow the paper's ViT-S/16 recipe except for the batch size and the number
# of epochs; without --data the script trains on random images, to check that it runs.
#   python examples/lightly_lut.py --data path/to/image_folder --epochs 100
import argparse

import torch
import torchvision
from lightly.models import utils
from lightly.models.modules import MaskedVisionTransformerDecoderTIMM, MaskedVisionTransformerTIMM
from timm import create_model
from torch import nn

from lut_plugin.lightly import (
    BroaderContextLoss,
    LUTTransform,
    MomentumTeacher,
    ProjectionMLP,
    cosine_momentum,
    disjoint_token_masks,
)


class LUT(nn.Module):
    def __init__(self, vit, decoder_dim=512, decoder_depth=8, decoder_heads=16, head_dim=4096,
                 w_bc=0.25):  # fmt: skip
        super().__init__()
        self.mask_ratio, self.w_bc = 0.75, w_bc
        self.patch_size = vit.patch_embed.patch_size[0]
        self.backbone = MaskedVisionTransformerTIMM(vit=vit)  # fixed 2-D sin-cos pos embed
        self.sequence_length = self.backbone.sequence_length
        self.decoder_embed = nn.Linear(vit.embed_dim, decoder_dim)
        self.decoder = MaskedVisionTransformerDecoderTIMM(
            num_patches=vit.patch_embed.num_patches,
            embed_dim=decoder_dim,
            depth=decoder_depth,
            num_heads=decoder_heads,
            num_prefix_tokens=vit.num_prefix_tokens,
        )
        self.prediction_head = nn.Linear(decoder_dim, self.patch_size**2 * 3)
        # projector h and predictor q: Linear(D, 4096) -> BN -> ReLU -> Linear(4096, D)
        self.projector = ProjectionMLP(vit.embed_dim, head_dim)
        self.predictor = ProjectionMLP(vit.embed_dim, head_dim)
        # EMA of encoder + projector (parameters and BN buffers), always in eval mode
        self.teacher = MomentumTeacher({"backbone": self.backbone, "projector": self.projector})
        self.criterion_bc = BroaderContextLoss()

    def forward_decoder(self, x_encoded, idx_keep, idx_mask):
        x_decode = self.decoder_embed(x_encoded)
        x_masked = x_decode.new_zeros(x_decode.shape[0], self.sequence_length, x_decode.shape[-1])
        x_masked = utils.set_at_index(x_masked, idx_keep, x_decode)
        x_decoded = self.decoder(x_masked, idx_mask=idx_mask)  # mask tokens at idx_mask
        return self.prediction_head(utils.get_at_index(x_decoded, idx_mask))

    def pool(self, tokens):  # mean of the patch tokens, class token excluded
        return tokens[:, self.backbone.vit.num_prefix_tokens :].mean(dim=1)

    def forward(self, x1, x2):
        size = (x1.shape[0], self.sequence_length)
        # one noise draw, two disjoint visible sets; view 1's masked tokens are reconstructed
        idx_keep1, idx_keep2, idx_mask1 = disjoint_token_masks(size, self.mask_ratio, x1.device)
        z1 = self.backbone.encode(images=x1, idx_keep=idx_keep1)
        z2 = self.backbone.encode(images=x2, idx_keep=idx_keep2)
        x_pred = self.forward_decoder(z1, idx_keep1, idx_mask1)
        target = utils.get_at_index(utils.patchify(x1, self.patch_size), idx_mask1 - 1)
        loss_mim = nn.functional.mse_loss(x_pred, utils.normalize_mean_var(target))
        # heads per view: BatchNorm sees each view's batch on its own
        p1, p2 = (self.predictor(self.projector(self.pool(z))) for z in (z1, z2))
        with torch.no_grad():  # the teacher encodes the full, unmasked views
            t1, t2 = (
                self.teacher["projector"](self.pool(self.teacher["backbone"].encode(images=x)))
                for x in (x1, x2)
            )
        loss_bc = self.criterion_bc(p1, p2, t1, t2)
        return loss_mim + self.w_bc * loss_bc, loss_mim, loss_bc


def main(argv=None):
    parser = argparse.ArgumentParser(description="LUT with lightly's modules")
    parser.add_argument("--data", help="image folder (ImageFolder layout); random images if unset")
    parser.add_argument("--model", default="vit_small_patch16_224", help="timm ViT")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    parser.add_argument("--decoder-dim", type=int, default=512)
    parser.add_argument("--decoder-depth", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=4096)
    parser.add_argument("--num-workers", type=int, default=8)
    args = parser.parse_args(argv)

    vit = create_model(args.model, img_size=args.input_size, num_classes=0)
    model = LUT(vit, args.decoder_dim, args.decoder_depth, head_dim=args.head_dim)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)

    transform = LUTTransform(input_size=args.input_size)
    if args.data:
        dataset = torchvision.datasets.ImageFolder(args.data, transform=transform)
    else:
        size = (3, args.input_size, args.input_size)
        dataset = torchvision.datasets.FakeData(4 * args.batch_size, size, transform=transform)
    dataloader = torch.utils.data.DataLoader(
        dataset, args.batch_size, shuffle=True, drop_last=True, num_workers=args.num_workers
    )
    if len(dataloader) == 0:  # drop_last: the heads' BatchNorm needs whole batches
        raise ValueError(
            f"{len(dataset)} images give no batch of --batch-size {args.batch_size}: "
            f"lower --batch-size or add images"
        )

    # AdamW (0.9, 0.95), lr 1.5e-4 x batch / 256, weight decay 0.05 except on biases, norms
    # and tokens (lightly's get_weight_decay_parameters would decay the tokens)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]  # not the teacher
    no_decay = [p for n, p in params if p.ndim == 1 or n.endswith("token")]
    decay = [p for n, p in params if not (p.ndim == 1 or n.endswith("token"))]
    optimizer = torch.optim.AdamW(
        [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1.5e-4 * args.batch_size / 256,
        betas=(0.9, 0.95),
        weight_decay=0.05,
    )
    total_steps = args.max_steps or args.epochs * len(dataloader)
    students = {"backbone": model.backbone, "projector": model.projector}

    print("Starting Training")
    step = 0
    while step < total_steps:
        for (x1, x2), _ in dataloader:
            loss, loss_mim, loss_bc = model(x1.to(device), x2.to(device))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            # teacher EMA after every optimiser step, momentum 0.996 -> 1 (cosine)
            model.teacher.update_from(students, cosine_momentum(step, total_steps))
            step += 1
            print(f"step {step}/{total_steps}: loss {loss:.4f} mim {loss_mim:.4f} bc {loss_bc:.4f}")
            if step == total_steps:
                break
    return model


if __name__ == "__main__":
    main()
