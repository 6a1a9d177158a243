"""Crash-safe checkpoints: files complete or absent, old ones deleted only after the new one."""

from __future__ import annotations

import glob
import os
import os.path as osp
import re

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``path`` completely or not at all: ``<path>.partial``, fsync, rename, fsync folder.

    Args:
        path (str | os.PathLike): The file to (re)place.
        data (bytes): Its new content.
    """
    path = osp.abspath(path)
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(f"{path}.partial", "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(f"{path}.partial", path)
    fd = os.open(osp.dirname(path), os.O_RDONLY)  # make the rename itself durable
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@register_backend("atomic_local")
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend, writing checkpoints (``put``) through :func:`atomic_write`."""

    def put(self, obj: bytes, filepath: str | os.PathLike) -> None:
        atomic_write(filepath, obj)


def earlier_run_checkpoints(
    work_dir: str, out_dir: str | None = None, filename_tmpl: str = "epoch_{}.pth"
) -> list[str]:
    """What a new run in ``work_dir`` would overwrite: ``last_checkpoint`` and checkpoints."""
    out_dir = work_dir if out_dir is None else out_dir
    found = [p for p in [osp.join(work_dir, "last_checkpoint")] if osp.isfile(p)]
    for pattern in (filename_tmpl.format("*"), "best_*.pth"):
        found += sorted(glob.glob(osp.join(glob.escape(out_dir), pattern)))
    return found


def _remove(backend, path) -> None:
    if backend.isfile(path):
        backend.remove(path)
    elif backend.isdir(path):  # deepspeed checkpoints are folders
        backend.rmtree(path)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) whose checkpoints survive a crash at any moment and
    never overwrite another run's (docs/reliability.md, section 2)."""

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if type(self.file_backend) is not LocalBackend:
            return  # remote storage: as mmengine
        if runner.iter == 0:
            found = earlier_run_checkpoints(runner.work_dir, self.out_dir, self.filename_tmpl)
            what, doing = "the checkpoints of an earlier run", "starting from scratch"
            advice = "Continue that run with --resume"
        else:
            step = runner.epoch if self.by_epoch else runner.iter
            name = re.compile(re.escape(self.filename_tmpl).replace(r"\{\}", r"(\d+)"))
            paths = glob.glob(osp.join(glob.escape(self.out_dir), self.filename_tmpl.format("*")))
            later = [(int(m[1]), p) for p in paths if (m := name.fullmatch(osp.basename(p)))]
            found = [p for s, p in sorted(later) if s > step]
            unit = "epoch" if self.by_epoch else "iteration"
            what, doing = f"checkpoints past the resumed {unit} {step}", "resuming"
            advice = "Resume from the latest of them"
        if found:
            raise FileExistsError(
                f"{self.out_dir} holds {what} ({', '.join(found[:3])}"
                f"{', ...' if len(found) > 3 else ''}); {doing} there would overwrite them. "
                f"{advice}, or train into another --work-dir (or delete them)."
            )
        if self.backend_args is None:
            self.backend_args = dict(backend="atomic_local")
            if is_main_process():
                for leftover in glob.glob(osp.join(glob.escape(self.out_dir), "*.partial")):
                    os.remove(leftover)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        # mmengine's bookkeeping in a crash-safe order: write, point last_checkpoint, delete.
        stale = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                stale = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info("keep_ckpt_ids", list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info("last_ckpt", self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir, filename, self.file_client_args, save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
            backend_args=self.backend_args, **self.args,
        )  # fmt: skip
        if is_main_process():
            atomic_write(osp.join(runner.work_dir, "last_checkpoint"), self.last_ckpt.encode())
            if stale is not None:
                stale = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(stale))
                _remove(self.file_backend, stale)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        # mmengine removes the previous best before writing the new one: record the removals
        # (through a backend that only notes them), carry them out once the new best is written.
        backend, removed = self.file_backend, []
        self.file_backend = type("DeferredRemoval", (), {
            "__getattr__": lambda _, name: getattr(backend, name),
            "remove": lambda _, path: removed.append(path),
            "rmtree": lambda _, path: removed.append(path)})()  # fmt: skip
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            self.file_backend = backend
        current = {getattr(self, "best_ckpt_path", None)}
        current.update(getattr(self, "best_ckpt_path_dict", {}).values())
        for path in removed:
            if path not in current:  # not the same name written again
                _remove(backend, path)
