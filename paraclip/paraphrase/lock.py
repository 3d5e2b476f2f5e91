"""``RunLock`` for paraphrase outputs (a run, or a review edit): ``OUT.lock``. The lock itself lives in
:mod:`paraclip.runlock`, shared with the training, evaluation, mini-world and job folders."""

from paraclip.runlock import OutputLockedError, RunLock

__all__ = ["OutputLockedError", "RunLock"]
