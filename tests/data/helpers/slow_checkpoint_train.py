"""``tools/train.py`` whose writes of one checkpoint stall, so that a test can kill it mid-write.

    python slow_checkpoint_train.py NAME MARKER [tools/train.py arguments...]

Every write of a file whose name contains ``NAME`` (e.g. ``epoch_2.pth``) stalls once its bytes
are in the file: before the ``fsync`` of a crash-safe write, or after half of the bytes of a
plain ``open(..., 'wb').write`` (mmengine's ``LocalBackend.put``). ``MARKER`` is created when the
write stalls. Test-only: it patches ``os.fsync`` and ``LocalBackend.put``.
"""

import os
import runpy
import sys
import time
from pathlib import Path

from mmengine.fileio import LocalBackend

NAME, MARKER = sys.argv[1], sys.argv[2]
ROOT = Path(__file__).resolve().parents[3]


def _stall() -> None:
    Path(MARKER).touch()
    time.sleep(600)


_fsync = os.fsync


def fsync(fd: int) -> None:
    if NAME in os.path.basename(os.readlink(f"/proc/self/fd/{fd}")):
        _stall()
    _fsync(fd)


_put = LocalBackend.put


def put(self, obj: bytes, filepath) -> None:
    if NAME in os.path.basename(str(filepath)):
        with open(filepath, "wb") as f:
            f.write(obj[: len(obj) // 2])
            f.flush()
        _stall()
    _put(self, obj, filepath)


os.fsync = fsync
LocalBackend.put = put
sys.argv = [str(ROOT / "tools" / "train.py"), *sys.argv[3:]]
runpy.run_path(sys.argv[0], run_name="__main__")
