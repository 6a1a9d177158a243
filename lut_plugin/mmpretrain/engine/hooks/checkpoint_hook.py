"""mmengine's CheckpointHook, made crash-safe."""

from __future__ import annotations

import glob
import os
import os.path as osp
import re

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from lut_plugin.checkpoint import atomic_write


@HOOKS.register_module()
class LUTCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose checkpoints survive a crash at any moment.

    mmengine deletes the oldest checkpoint (``max_keep_ckpts``) before writing the new one,
    writes it in place and then ``last_checkpoint``; a kill during the write leaves a truncated
    file and, with ``max_keep_ckpts=1``, no valid checkpoint at all. Here, in a local folder:

    1. the checkpoint is written to ``<name>.partial`` beside it, fsynced and renamed
       (``lut_atomic_local`` file backend), so ``<name>`` is complete or absent;
    2. only then ``last_checkpoint`` is replaced (atomically) by the new name;
    3. only then the checkpoint that fell out of ``max_keep_ckpts`` is deleted;
    4. likewise with ``save_best``: the previous best checkpoint is deleted only after the new
       one is complete.

    ``.partial`` files left by a crash are removed when training starts. A run that starts
    from scratch where another run's checkpoints are (``last_checkpoint``, or files named as
    this hook names them: ``epoch_*.pth`` / ``iter_*.pth``, ``best_*.pth``) is refused instead
    of overwriting them: it has to resume that run or use another folder. So is a run resumed
    where checkpoints past its step are (an earlier checkpoint, or another run's).
    ``LUTRunner`` uses this hook in place of ``CheckpointHook``; the arguments are
    ``CheckpointHook``'s.
    """

    def before_train(self, runner) -> None:
        """Refuse to overwrite another run; choose the atomic backend for a local folder;
        remove leftovers of a crash."""
        super().before_train(runner)
        if type(self.file_backend) is not LocalBackend:
            return
        if runner.iter == 0:  # from scratch (a resumed run is past iteration 0)
            found = earlier_run_checkpoints(runner.work_dir, self.out_dir, self.filename_tmpl)
            what, doing = "the checkpoints of an earlier run", "starting from scratch"
            advice = "Continue that run with --resume"
        else:
            step = runner.epoch if self.by_epoch else runner.iter
            found = _checkpoints_after(self.out_dir, self.filename_tmpl, step)
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
            self.backend_args = dict(backend="lut_atomic_local")
            if is_main_process():
                for leftover in glob.glob(osp.join(glob.escape(self.out_dir), "*.partial")):
                    os.remove(leftover)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        # mmengine's bookkeeping (keep_ckpt_ids and last_ckpt are stored in the checkpoint),
        # in a crash-safe order: write, then point last_checkpoint at it, then delete.
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
            self.out_dir,
            filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args,
        )
        if not is_main_process():
            return
        atomic_write(osp.join(runner.work_dir, "last_checkpoint"), self.last_ckpt.encode())
        if stale is not None:
            _remove(
                self.file_backend,
                self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(stale)),
            )

    def _save_best_checkpoint(self, runner, metrics) -> None:
        # mmengine removes the previous best before writing the new one; let it only note the
        # removals (through _DeferredRemoval), and carry them out once the new best is written.
        backend = self.file_backend
        self.file_backend = deferred = _DeferredRemoval(backend)
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            self.file_backend = backend
        current = {getattr(self, "best_ckpt_path", None)}
        current.update(getattr(self, "best_ckpt_path_dict", {}).values())
        for path in deferred.removed:
            if path not in current:  # not the same name written again
                _remove(backend, path)


def earlier_run_checkpoints(
    work_dir: str, out_dir: str | None = None, filename_tmpl: str = "epoch_{}.pth"
) -> list[str]:
    """The files of another run that a run starting from scratch here would overwrite:
    ``last_checkpoint`` in ``work_dir`` and the checkpoints in ``out_dir`` (default
    ``work_dir``) named as ``CheckpointHook`` names them."""
    out_dir = work_dir if out_dir is None else out_dir
    pointer = osp.join(work_dir, "last_checkpoint")
    found = [pointer] if osp.isfile(pointer) else []
    for pattern in (filename_tmpl.format("*"), "best_*.pth"):
        found += sorted(glob.glob(osp.join(glob.escape(out_dir), pattern)))
    return found


def _checkpoints_after(out_dir: str, filename_tmpl: str, step: int) -> list[str]:
    """The checkpoints in ``out_dir`` named by ``filename_tmpl`` at a step after ``step``."""
    prefix, _, suffix = filename_tmpl.partition("{}")
    name = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix))
    found = []
    for path in glob.glob(osp.join(glob.escape(out_dir), filename_tmpl.format("*"))):
        match = name.fullmatch(osp.basename(path))
        if match and int(match.group(1)) > step:
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def _remove(backend, path) -> None:
    if backend.isfile(path):
        backend.remove(path)
    elif backend.isdir(path):  # deepspeed checkpoints are folders
        backend.rmtree(path)


class _DeferredRemoval:
    """A file backend that records ``remove``/``rmtree`` instead of doing them."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self.removed: list[str] = []

    def __getattr__(self, name: str):
        return getattr(self._backend, name)

    def remove(self, path) -> None:
        self.removed.append(path)

    def rmtree(self, path) -> None:
        self.removed.append(path)
