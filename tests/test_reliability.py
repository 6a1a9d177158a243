"""The runtime guarantees of docs/reliability.md: safe and strict checkpoint loading on every
path, crash-safe writing, clear errors for missing data; exact resume is in
test_lut_training.py (epoch-based, killed mid-save) and below (iteration-based)."""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import sys
import threading
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from conftest import GOLDEN, ROOT, tiny_lut_cfg
from mmengine.config import Config
from mmpretrain.registry import MODELS
from utils import (
    CONFIGS,
    TOY_CFG,
    assert_same_training_state,
    assert_state_dicts_equal,
    load_checkpoint,
    load_tool,
    logged_losses,
    toy_options,
    train_here,
    write_tiny_images,
)

from lut_plugin.mmseg import LUTMAE
from lut_plugin.runtime import (
    SAFE_GLOBALS,
    CheckpointError,
    CheckpointMismatchError,
    atomic_write,
    checkpoint_policy,
    load_checkpoint_file,
)

CLS_CFG = CONFIGS / "cls_tiny_vit.py"


class _Payload:
    """Unpickling it runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """Options of a 2-iteration toy LUT run in this process (no workers), and its checkpoint."""
    tmp = tmp_path_factory.mktemp("toy")
    workers = ["train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False"]
    opts = [*toy_options(tmp / "data", epochs=1), *workers]
    train_here(TOY_CFG, tmp / "run", cfg_options=opts)
    return opts, tmp / "run" / "epoch_1.pth"


@pytest.fixture(scope="module")
def cls_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cls")
    for i, name in enumerate(("cat", "dog")):
        write_tiny_images(root / name, n=2, seed=i)
    return [f"{k}_dataloader.dataset.data_root={root}" for k in ("train", "val", "test")]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A local HTTP server for the URL paths: ``(folder, base URL)``."""
    root = tmp_path_factory.mktemp("served")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = pytest.MonkeyPatch()
    env.setenv("no_proxy", "127.0.0.1,localhost")
    env.setenv("NO_PROXY", "127.0.0.1,localhost")
    env.setenv("TORCH_HOME", str(root / "torch_home"))
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    env.undo()


DAMAGES = ["payload", "empty", "truncated", "garbage"]


def _damaged(kind: str, good: Path, folder: Path) -> tuple[Path, Path]:
    """A bad checkpoint file of the given kind, and the marker a payload would create."""
    folder.mkdir(parents=True, exist_ok=True)
    path, marker = folder / f"{kind}.pth", folder / "PWNED"
    if kind == "payload":
        state = load_checkpoint_file(str(good))
        state["meta"]["note"] = _Payload(marker)
        torch.save(state, path)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_text("not a checkpoint\n")
    return path, marker


def _assert_refused(err: pytest.ExceptionInfo, kind: str, name: str, marker: Path) -> None:
    msg = str(err.value)
    assert name in msg, msg
    if kind == "payload":
        assert "Refusing to load checkpoint" in msg and "posix.system" in msg, msg
        assert "--unsafe-load" in msg
    else:
        assert "Cannot read checkpoint" in msg, msg
    assert not marker.exists()


def _tiny_vit(**kwargs):
    arch = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
    cfg = dict(type="VisionTransformer", arch=arch, img_size=32, patch_size=8)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _strict_init(checkpoint, **kwargs) -> dict:
    return dict(type="Pretrained", _scope_="lut_plugin", checkpoint=str(checkpoint), **kwargs)


def _tiny_lutmae(pretrained: str) -> LUTMAE:
    return LUTMAE(
        img_size=32, patch_size=4, embed_dims=96, num_layers=4, num_heads=4, mlp_ratio=4,
        out_indices=[3], norm_cfg=dict(type="LN", eps=1e-6), pretrained=pretrained,
    )  # fmt: skip


def _load_everywhere(path: str, toy_opts, cls_opts, tmp: Path):
    """Every way a checkpoint reaches this project's code, as ``name -> call``."""
    train = [str(TOY_CFG), "--work-dir", str(tmp / "work"), "--cfg-options", *toy_opts]

    def auto_resume():
        (tmp / "work").mkdir(parents=True, exist_ok=True)
        (tmp / "work" / "last_checkpoint").write_text(path)
        load_tool("train").main([*train[:3], "--resume", *train[3:]])

    def finetune_init_cfg():
        _tiny_vit(init_cfg=_strict_init(path, prefix="backbone.")).init_weights()

    return {
        "loader": lambda: load_checkpoint_file(path),
        "train --resume": lambda: load_tool("train").main(
            [*train[:3], "--resume", path, *train[3:]]
        ),
        "train --resume (auto)": auto_resume,
        "train load_from": lambda: load_tool("train").main([*train, f"load_from={path}"]),
        "test.py": lambda: load_tool("test").main(
            [str(CLS_CFG), path, "--work-dir", str(tmp / "test"), "--cfg-options", *cls_opts]
        ),
        "init_cfg Pretrained (fine-tuning)": finetune_init_cfg,
        "mmseg LUTMAE pretrained": lambda: _tiny_lutmae(path).init_weights(),
        "convert --to mmseg": lambda: load_tool("convert_checkpoint").main(
            ["--to", "mmseg", path, str(tmp / "out.pth")]
        ),
        "convert --from timm": lambda: load_tool("convert_checkpoint").main(
            ["--from", "timm", path, str(tmp / "out.pth")]
        ),
        "encoder_analysis": lambda: load_tool("analysis/encoder_analysis").load_encoder(
            str(TOY_CFG), path
        ),
    }


PATHS = list(_load_everywhere("x", [], [], Path("."))) + ["loader (URL)", "LUTMAE (URL)"]


def test_payload_is_live(tmp_path):
    """The payload used below really runs its code when a checkpoint is fully unpickled."""
    marker = tmp_path / "PWNED"
    torch.save({"x": _Payload(marker)}, tmp_path / "p.pth")
    torch.load(tmp_path / "p.pth", weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("kind", DAMAGES)
@pytest.mark.parametrize("path_name", PATHS)
def test_bad_checkpoint_is_refused_on_every_path(kind, path_name, toy, cls_data, served, tmp_path):
    """A payload is refused (naming the file and the global) and never runs; an empty,
    truncated or garbage file fails naming the file -- on every loading path."""
    toy_opts, good = toy
    path, marker = _damaged(kind, good, tmp_path / "bad")
    name = str(path)
    if path_name.endswith("(URL)"):
        folder, base = served
        shutil.copy(path, folder / f"{kind}.pth")
        name = f"{base}/{kind}.pth"
        call = (
            (lambda: load_checkpoint_file(name))
            if path_name.startswith("loader")
            else (lambda: _tiny_lutmae(name).init_weights())
        )
    else:
        call = _load_everywhere(name, toy_opts, cls_data, tmp_path)[path_name]
    with pytest.raises(CheckpointError) as err:
        call()
    _assert_refused(err, kind, name, marker)


def test_upstream_pretrained_url_is_forced_weights_only(toy, served, tmp_path):
    """Inside the runner's policy, mmengine's own Pretrained initializer (torch.hub unpickles URLs
    fully) is forced to weights only too."""
    from mmengine.model.weight_init import PretrainedInit

    folder, base = served
    path, marker = _damaged("payload", toy[1], tmp_path)
    shutil.copy(path, folder / "upstream.pth")
    with checkpoint_policy(), pytest.raises(Exception, match="Weights only load failed"):
        PretrainedInit(checkpoint=f"{base}/upstream.pth")(_tiny_vit())
    assert not marker.exists()
    assert "TORCH_FORCE_WEIGHTS_ONLY_LOAD" not in os.environ  # restored after the block


def test_lut_pretrained_loads_weights_only_and_strictly(toy, tmp_path):
    """``model.pretrained`` goes through the safe, strict initializer, not mmengine's."""
    _, good = toy
    toy_model = Config.fromfile(str(TOY_CFG)).model
    model = MODELS.build({**toy_model, "pretrained": str(good)})
    model.init_weights()
    expected = load_checkpoint_file(str(good))["state_dict"]
    assert torch.equal(
        model.backbone.layers[0].attn.qkv.weight, expected["backbone.layers.0.attn.qkv.weight"]
    )
    other_width = MODELS.build(tiny_lut_cfg(pretrained=str(good)))  # 64-d, the file is 96-d
    with pytest.raises(CheckpointMismatchError, match=re.escape(str(good))):
        other_width.init_weights()
    path, marker = _damaged("payload", good, tmp_path)
    with pytest.raises(CheckpointError, match=r"Refusing to load checkpoint .*payload\.pth"):
        MODELS.build({**toy_model, "pretrained": str(path)}).init_weights()
    assert not marker.exists()


def test_resume_never_runs_config_text_from_a_checkpoint(toy, tmp_path):
    """mmengine's resume evaluates ``meta['config']`` as Python; SafeResumeRunner never does."""
    opts, good = toy
    marker = tmp_path / "PWNED"
    state = load_checkpoint_file(str(good))
    # (mmengine turns `import` statements of config text into lazy imports; __import__ runs.)
    state["meta"]["config"] = f"_ = __import__('os').system(\"touch '{marker}'\")\ngpu_ids = [0]\n"
    crafted = tmp_path / "epoch_1.pth"
    torch.save(state, crafted)  # plain strings only: it passes the weights-only loader
    work = ["--work-dir", str(tmp_path / "work")]
    load_tool("train").main(
        [
            str(TOY_CFG),
            *work,
            "--resume",
            str(crafted),
            "--cfg-options",
            *opts,
            "train_cfg.max_epochs=2",
        ]
    )
    assert not marker.exists()
    assert load_checkpoint(tmp_path / "work" / "epoch_2.pth")["meta"]["iter"] == 4


def test_unsafe_load_is_an_explicit_opt_in(toy, tmp_path):
    """A file with other pickled objects loads only with --unsafe-load / unsafe_load=True."""
    opts, good = toy
    state = load_checkpoint_file(str(good))
    state["meta"]["note"] = Fraction(1, 3)
    trusted = tmp_path / "trusted.pth"
    torch.save(state, trusted)
    with pytest.raises(CheckpointError, match=r"fractions\.Fraction"):
        load_checkpoint_file(str(trusted))
    assert load_checkpoint_file(str(trusted), unsafe=True)["meta"]["note"] == Fraction(1, 3)
    with checkpoint_policy(unsafe=True):
        assert load_checkpoint_file(str(trusted))["meta"]["note"] == Fraction(1, 3)

    convert = load_tool("convert_checkpoint")
    with pytest.raises(CheckpointError):
        convert.main(["--to", "mmseg", str(trusted), str(tmp_path / "a.pth")])
    convert.main(["--to", "mmseg", "--unsafe-load", str(trusted), str(tmp_path / "a.pth")])
    with pytest.raises(CheckpointError):
        convert.main(["--to", "timm", str(trusted), str(tmp_path / "t.pth")])
    convert.main(["--to", "timm", "--unsafe-load", str(trusted), str(tmp_path / "t.pth")])
    analysis = load_tool("analysis/encoder_analysis")
    assert analysis.load_encoder(str(TOY_CFG), str(trusted), unsafe_load=True) is not None

    train = load_tool("train")
    args = [str(TOY_CFG), "--work-dir", str(tmp_path / "work"), "--cfg-options", *opts]
    with pytest.raises(CheckpointError, match="--unsafe-load"):
        train.main([*args, f"load_from={trusted}"])
    train.main([*args[:3], "--unsafe-load", *args[3:], f"load_from={trusted}"])
    assert (tmp_path / "work" / "epoch_1.pth").is_file()


def test_unsafe_load_names_what_failed_instead_of_refusing(toy, tmp_path, monkeypatch):
    """A trusted file whose pickled class no longer exists: with --unsafe-load the error is
    the real one, not a refusal that asks for --unsafe-load."""
    _, good = toy
    (tmp_path / "gone_module.py").write_text("class Gone:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import gone_module

    state = load_checkpoint_file(str(good))
    state["meta"]["note"] = gone_module.Gone()
    path = tmp_path / "gone.pth"
    torch.save(state, path)
    (tmp_path / "gone_module.py").unlink()
    monkeypatch.delitem(sys.modules, "gone_module")
    with pytest.raises(CheckpointError, match=r"Refusing .*gone_module\.Gone.*--unsafe-load"):
        load_checkpoint_file(str(path))
    with pytest.raises(CheckpointError, match=r"with full unpickling .*ModuleNotFoundError"):
        load_checkpoint_file(str(path), unsafe=True)


def test_a_new_run_never_overwrites_an_earlier_runs_checkpoints(toy, tmp_path):
    """Starting from scratch in a work directory that holds checkpoints is refused (nothing
    written); --resume continues the run there."""
    opts, good = toy
    train = load_tool("train")
    work = tmp_path / "work"
    args = [str(TOY_CFG), "--work-dir", str(work), "--cfg-options", *opts]
    # what `train.main(args)` leaves: the toy run is that command, in another folder
    shutil.copytree(good.parent, work)
    (work / "last_checkpoint").write_text(str(work / "epoch_1.pth"))
    first = (work / "epoch_1.pth").read_bytes()
    with pytest.raises(FileExistsError, match=r"earlier run .*epoch_1\.pth.*--resume"):
        train.main([*args, "train_cfg.max_epochs=2"])
    assert (work / "epoch_1.pth").read_bytes() == first
    assert not (work / "epoch_2.pth").exists()
    train.main([*args[:3], "--resume", *args[3:], "train_cfg.max_epochs=2"])
    assert (work / "epoch_1.pth").read_bytes() == first
    assert load_checkpoint(work / "epoch_2.pth")["meta"]["iter"] == 4
    # Resuming from an earlier checkpoint (or another run's) where later ones are: refused.
    second = (work / "epoch_2.pth").read_bytes()
    with pytest.raises(FileExistsError, match=r"past the resumed epoch 1 \(.*epoch_2\.pth\)"):
        train.main(
            [*args[:3], "--resume", str(work / "epoch_1.pth"), *args[3:], "train_cfg.max_epochs=2"]
        )
    assert (work / "epoch_2.pth").read_bytes() == second
    # Checkpoints without a last_checkpoint pointer (deleted, or a save_best-only run) too.
    (work / "last_checkpoint").unlink()
    with pytest.raises(FileExistsError, match=r"epoch_1\.pth, .*epoch_2\.pth"):
        train.main(args)
    assert (work / "epoch_1.pth").read_bytes() == first


@pytest.mark.parametrize(
    ("dropped", "named"),
    [(("meta",), "meta (epoch, iter)"), (("optimizer", "param_schedulers"), "optimizer")],
)
def test_resume_refuses_a_file_that_is_not_a_training_checkpoint(toy, tmp_path, dropped, named):
    """Weights alone cannot continue a run exactly: refused, naming what is missing and
    load_from, instead of a KeyError or a silent fresh optimiser."""
    opts, good = toy
    state = load_checkpoint_file(str(good))
    for key in dropped:
        del state[key]
    partial = tmp_path / "partial.pth"
    torch.save(state, partial)
    args = [str(TOY_CFG), "--work-dir", str(tmp_path / "work"), "--resume", str(partial)]
    with pytest.raises(CheckpointError) as err:
        load_tool("train").main([*args, "--cfg-options", *opts, "train_cfg.max_epochs=2"])
    msg = str(err.value)
    assert str(partial) in msg and named in msg and "load_from" in msg, msg
    for key in dropped[1:]:
        assert key in msg, msg


def test_a_legacy_format_checkpoint_loads_memory_mapped_or_not(toy, tmp_path):
    """torch's pre-zip format cannot be memory-mapped (the resume's seed pre-read maps);
    its payloads are refused like the zip format's."""
    _, good = toy
    legacy = tmp_path / "legacy.pth"
    torch.save(load_checkpoint_file(str(good)), legacy, _use_new_zipfile_serialization=False)
    mapped = load_checkpoint_file(str(legacy), mmap=True)
    assert mapped["meta"]["iter"] == load_checkpoint_file(str(good))["meta"]["iter"]
    # A payload in that format is refused naming just its global.
    marker = tmp_path / "PWNED"
    mapped["meta"]["note"] = _Payload(marker)
    torch.save(mapped, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match=r"it needs posix\.system, which loading") as err:
        load_checkpoint_file(str(legacy))
    assert "Re-running" not in str(err.value) and not marker.exists()


@pytest.mark.parametrize("name", ["open-mmlab://resnet50_v1c", "torchvision://resnet50"])
def test_a_model_zoo_name_is_refused_by_name(name):
    with pytest.raises(CheckpointError, match=r"no file backend reads .*://.*local path"):
        load_checkpoint_file(name)


def test_torchs_weights_only_switches_do_not_overrule_the_policy(toy, tmp_path, monkeypatch):
    """Either of torch's environment switches, set by the user, gives way to the policy
    while it holds (both set at once would make torch refuse every file), then comes back."""
    _, good = toy
    payload, marker = _damaged("payload", good, tmp_path)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with checkpoint_policy():
        assert load_checkpoint_file(str(good))["meta"]["iter"] == 2
        with pytest.raises(CheckpointError, match="Refusing to load checkpoint"):
            load_checkpoint_file(str(payload))
    assert not marker.exists()
    assert os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] == "1"
    monkeypatch.delenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "1")
    state = load_checkpoint_file(str(good))
    state["meta"]["note"] = Fraction(1, 3)
    torch.save(state, tmp_path / "trusted.pth")
    with checkpoint_policy(unsafe=True):  # --unsafe-load means it
        assert load_checkpoint_file(str(tmp_path / "trusted.pth"))["meta"]["note"] == Fraction(1, 3)
    assert os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] == "1"


def test_a_non_finite_loss_stops_any_config_before_a_checkpoint(cls_data, tmp_path):
    """The runtime adds the non-finite check to a config that includes it (here an upstream
    fine-tuning one that does not list the hook): a NaN loss stops at once, no checkpoint."""
    work = tmp_path / "work"
    args = [str(CLS_CFG), "--work-dir", str(work), "--cfg-options", *cls_data]
    with pytest.raises(FloatingPointError, match="loss"):
        load_tool("train").main([*args, "model.head.loss.loss_weight=nan"])
    assert not list(work.glob("*.pth")) and not (work / "last_checkpoint").exists()


def test_lutmae_refuses_a_pretrained_entry_inside_an_init_cfg_list(toy):
    """mmengine would load it itself, skipping LUTMAE's strict checks."""
    init_cfg = [dict(type="Pretrained", checkpoint=str(toy[1]))]
    with pytest.raises(ValueError, match="not in a list"):
        LUTMAE(img_size=32, patch_size=4, embed_dims=96, num_layers=4, num_heads=4,
               init_cfg=init_cfg)  # fmt: skip


def test_convert_never_replaces_its_source_or_an_existing_file_unasked(toy, tmp_path):
    _, good = toy
    src = tmp_path / "src.pth"
    shutil.copy(good, src)
    before = src.read_bytes()
    convert = load_tool("convert_checkpoint")
    with pytest.raises(SystemExit, match="is the source checkpoint itself"):
        convert.main(["--to", "mmseg", str(src), str(src), "--force"])
    assert src.read_bytes() == before
    dst = tmp_path / "dst.pth"
    dst.write_bytes(b"keep me")
    with pytest.raises(SystemExit, match="exists; pass --force"):
        convert.main(["--to", "mmseg", str(src), str(dst)])
    assert dst.read_bytes() == b"keep me"
    convert.main(["--to", "mmseg", str(src), str(dst), "--force"])
    assert "meta" in load_checkpoint_file(str(dst))


def test_allow_list_covers_real_checkpoints(toy):
    """Every global a real LUT checkpoint needs (found by saving one) is on the allow-list."""
    _, good = toy
    needed = set()
    saved = list(torch.serialization.get_safe_globals())
    torch.serialization.clear_safe_globals()
    try:
        needed = set(torch.serialization.get_unsafe_globals_in_checkpoint(str(good)))
    finally:
        torch.serialization.add_safe_globals(saved)
    names = {
        e[1] if isinstance(e, tuple) else f"{e.__module__}.{e.__qualname__}" for e in SAFE_GLOBALS
    }
    assert "mmengine.logging.history_buffer.HistoryBuffer" in needed
    assert needed <= names, needed - names
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(good)) == []


# ------------------------------------------------------------------------- strict init_cfg


def test_finetune_configs_load_strictly():
    for name in [
        "lut_vits_finetune_300e.py",
        "lut_vitb_finetune_100e.py",
        "lut_vitl_finetune_50e.py",
        "lut_vitb_linear_90e.py",
        "simmim_vitb_finetune_100e.py",
    ]:
        init_cfg = Config.fromfile(ROOT / "configs" / "mmpretrain" / name).model.backbone.init_cfg
        assert init_cfg.type == "Pretrained" and init_cfg._scope_ == "lut_plugin", name


def test_strict_pretrained_names_every_mismatch(tmp_path):
    src = _tiny_vit()
    path = tmp_path / "enc.pth"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in src.state_dict().items()}}, path)

    model = _tiny_vit(init_cfg=_strict_init(path, prefix="backbone."))
    model.init_weights()
    assert_state_dicts_equal(model.state_dict(), src.state_dict())  # pos_embed included

    def fails(match, checkpoint=path, prefix="backbone."):
        with pytest.raises(CheckpointMismatchError, match=match) as err:
            _tiny_vit(init_cfg=_strict_init(checkpoint, prefix=prefix)).init_weights()
        assert str(checkpoint) in str(err.value)

    fails(r"no 'teacher\.backbone\.'\* keys", prefix="teacher.backbone.")
    for depth, needle in [(1, r"missing in checkpoint: layers\.1\."),
                          (3, r"unexpected in checkpoint: layers\.2\.")]:  # fmt: skip
        other = tmp_path / f"depth{depth}.pth"
        enc = _tiny_vit(
            arch=dict(embed_dims=32, num_layers=depth, num_heads=2, feedforward_channels=64)
        )
        torch.save({"state_dict": {f"backbone.{k}": v for k, v in enc.state_dict().items()}}, other)
        fails(needle, checkpoint=other)
    wide = tmp_path / "wide.pth"
    enc = _tiny_vit(arch=dict(embed_dims=48, num_layers=2, num_heads=2, feedforward_channels=64))
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in enc.state_dict().items()}}, wide)
    fails(r"shape mismatch: cls_token: checkpoint \[1, 1, 48\]", checkpoint=wide)

    # The MAE fine-tuning recipe: no final norm (ln1 unused), a new fc norm (ln2).
    recipe = dict(final_norm=False, out_type="avg_featmap")
    with pytest.raises(CheckpointMismatchError, match=r"missing in checkpoint: ln2\.weight"):
        _tiny_vit(init_cfg=_strict_init(path, prefix="backbone."), **recipe).init_weights()
    allowed = _strict_init(
        path, prefix="backbone.", allow_missing=["ln2.*"], allow_unused=["ln1.*"]
    )
    _tiny_vit(init_cfg=allowed, **recipe).init_weights()


# ------------------------------------------------------------------------- crash-safe writing


def test_atomic_write_replaces_completely(tmp_path):
    target = tmp_path / "sub" / "last_checkpoint"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["last_checkpoint"]


# ------------------------------------------------------------------------- exact resume


def test_iteration_based_resume_with_workers_is_exact(tmp_path):
    """InfiniteSampler + IterBasedTrainLoop, 2 persistent workers: resuming from iteration 2
    gives the uninterrupted run's weights, teacher, optimiser state and losses at iteration 4
    (its two batches from the sampler's second pass, one per worker)."""
    opts = [
        f"train_dataloader.dataset.data_root={tmp_path / 'data'}",
        "train_dataloader.dataset.num_train=16",
        "train_dataloader.dataset.num_val=4",
        "train_dataloader.batch_size=8",
        "train_dataloader.num_workers=2",
        "train_dataloader.persistent_workers=True",
        "train_cfg.max_iters=4",
    ]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_here(CONFIGS / "lut_toy_iter.py", straight, cfg_options=opts)
    resumed.mkdir()
    shutil.copy(straight / "iter_2.pth", resumed / "iter_2.pth")
    out = train_here(
        CONFIGS / "lut_toy_iter.py", resumed, "--resume", str(resumed / "iter_2.pth"),
        cfg_options=opts,
    )  # fmt: skip
    assert "resumed epoch: 0, iter: 2" in out
    assert_same_training_state(
        load_checkpoint(resumed / "iter_4.pth"), load_checkpoint(straight / "iter_4.pth")
    )
    assert sorted(logged_losses(straight)) == [1, 2, 3, 4]
    assert logged_losses(resumed) == {k: v for k, v in logged_losses(straight).items() if k > 2}


# ------------------------------------------------------------------------- data and test files


@pytest.mark.parametrize(
    ("config", "dataset", "page"),
    [
        ("mmpretrain/lut_vitb_400e.py", "ImageNet", "docs/data.md"),
        ("mmseg/lut_vit-b16_upernet_8xb2-amp-160k_ade20k-512x512.py", "ADE20KDataset",
         "docs/segmentation.md"),
    ],
)  # fmt: skip
def test_missing_dataset_names_the_path_and_the_fix(tmp_path, config, dataset, page):
    """``tools/train.py <config>`` without ImageNet / ADE20K."""
    with pytest.raises(FileNotFoundError) as err:
        train_here(ROOT / "configs" / config, tmp_path, cfg_options=[
            f"train_dataloader.dataset.data_root={tmp_path / 'data'}"])  # fmt: skip
    msg = str(err.value)
    assert re.search(rf"{dataset} dataset not found: .*data", msg), msg
    assert "--cfg-options train_dataloader.dataset.data_root=" in msg and page in msg


def test_golden_file_lives_in_the_repository():
    assert GOLDEN.is_file() and GOLDEN.resolve().is_relative_to(ROOT.resolve())
    assert (GOLDEN.parent / "README.md").is_file()


class _BestRunner:
    """What ``CheckpointHook._save_best_checkpoint`` uses of a runner; saving can fail."""

    def __init__(self, name: str) -> None:
        from mmengine.logging import MessageHub, MMLogger

        self.message_hub = MessageHub.get_instance(name)
        self.logger = MMLogger.get_instance(name)
        self.epoch = self.iter = 0
        self.crash = False
        self.seen = []  # the folder's files when each checkpoint was written

    def save_checkpoint(self, out_dir, filename, *args, **kwargs) -> None:
        self.seen.append(sorted(p.name for p in Path(out_dir).iterdir()))
        if self.crash:
            raise RuntimeError("killed while writing the new best checkpoint")
        Path(out_dir, filename).write_bytes(b"weights")


@pytest.mark.parametrize("hook_type", ["CheckpointHook", "AtomicCheckpointHook"])
def test_previous_best_checkpoint_survives_a_crash_while_saving_the_new_one(tmp_path, hook_type):
    from mmengine.fileio import LocalBackend
    from mmengine.registry import HOOKS

    hook = HOOKS.build(dict(type=hook_type, interval=1, save_best="acc", rule="greater"))
    hook.out_dir, hook.file_backend = str(tmp_path), LocalBackend()
    runner = _BestRunner(f"best-{hook_type}")
    runner.epoch = 1
    hook._save_best_checkpoint(runner, {"acc": 1.0})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_acc_epoch_1.pth"]

    runner.epoch, runner.crash = 2, True  # a better score, and the process dies mid-write
    with pytest.raises(RuntimeError, match="killed"):
        hook._save_best_checkpoint(runner, {"acc": 2.0})
    left = sorted(p.name for p in tmp_path.iterdir())
    if hook_type == "CheckpointHook":  # mmengine deletes first: nothing is left
        assert left == []
        return
    assert left == ["best_acc_epoch_1.pth"]

    # Without a crash (state as a restarted run restores it from its last checkpoint), the
    # previous best is deleted after the new one is complete.
    hook.best_ckpt_path = str(tmp_path / "best_acc_epoch_1.pth")
    runner.message_hub.update_info("best_score", 1.0)
    runner.epoch, runner.crash = 3, False
    hook._save_best_checkpoint(runner, {"acc": 3.0})
    assert runner.seen[-1] == ["best_acc_epoch_1.pth"]  # still there while writing epoch 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_acc_epoch_3.pth"]
    assert hook.best_ckpt_path == str(tmp_path / "best_acc_epoch_3.pth")
