"""Test-only backbones that fail on purpose, registered through a suite's ``plugins: [plugins_faults]``.

They are ``toy_cnn`` with one fault each (so stages, transfer and the rest of the harness are exercised):

- ``fault_raise``: every forward pass raises ``RuntimeError("injected fault")``;
- ``fault_nan``: its logits are NaN in training mode (the loss diverges);
- ``fault_oom``: raises ``torch.OutOfMemoryError`` for a training batch larger than 4 images;
- ``fault_crash``: kills its own process with SIGKILL in a worker process (a hard crash no ``except``
  can catch); in the main process it raises instead, so a test can never kill pytest itself;
- ``fault_slow``: sleeps ``$BENCH_FAULT_SLEEP`` seconds (default 0.05) per training step, numerically
  identical to ``toy_cnn`` (cells in flight long enough to be killed or raced for).
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import time

import torch

from bench.backbones import BACKBONES, register_backbone
from bench.backbones.toy import ToyCNN


class _Raise(ToyCNN):
    def forward(self, x):
        raise RuntimeError("injected fault")


class _NaN(ToyCNN):
    def forward(self, x):
        out = super().forward(x)
        return out * float("nan") if self.training else out


class _OOM(ToyCNN):
    LIMIT = 4

    def forward(self, x):
        if self.training and x.shape[0] > self.LIMIT:
            raise torch.OutOfMemoryError(f"injected: batch {x.shape[0]} > {self.LIMIT}")
        return super().forward(x)


class _Crash(ToyCNN):
    def forward(self, x):
        if multiprocessing.parent_process() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError("fault_crash only crashes worker processes")


class _Slow(ToyCNN):
    def forward(self, x):
        if self.training:
            time.sleep(float(os.environ.get("BENCH_FAULT_SLEEP", "0.05")))
        return super().forward(x)


for _name, _cls in (("fault_raise", _Raise), ("fault_nan", _NaN), ("fault_oom", _OOM), ("fault_crash", _Crash),
                    ("fault_slow", _Slow)):
    if _name not in BACKBONES:  # toy_cnn's spec (stages, sizes, ...) with a faulty network
        register_backbone(dataclasses.replace(BACKBONES.get("toy_cnn"), name=_name, create_slim=None,
                                              create=lambda num_classes, c=_cls, **kw: c(num_classes, **kw),
                                              description=f"test fault: {_name}"))
