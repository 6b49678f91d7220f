"""Where a model is fitted: ``--device auto|cpu|cuda`` resolved against the machine and the
model type. ``auto`` takes a GPU only when one is present and the model's library can use
it, and otherwise falls back to the CPU with a log line saying why."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from typing import TYPE_CHECKING

import structlog

from marketpredictor_train.errors import ConfigError

if TYPE_CHECKING:
    from marketpredictor_train.models.base import ModelType

log = structlog.get_logger(__name__)

DEVICES = ("auto", "cpu", "cuda")


@cache
def gpu_present() -> bool:
    """Whether this process can see an NVIDIA GPU (and CUDA_VISIBLE_DEVICES does not hide it)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in {"", "-1"}:
        return False
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return False
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def resolve_device(requested: str, model_cls: type[ModelType]) -> str:
    """The device to fit ``model_cls`` on: ``"cpu"`` or ``"cuda"``.

    ``cuda`` asked for explicitly but unusable is a ConfigError (exit 3): a run that was
    meant for a GPU should not quietly take hours on a CPU. A model type without GPU
    support fits on the CPU whatever is asked, with a warning when cuda was asked."""
    if requested not in DEVICES:
        raise ConfigError(f"Unknown device '{requested}'", hint="Use auto, cpu or cuda.")
    if requested == "cpu":
        return "cpu"
    if not model_cls.supports_gpu:
        if requested == "cuda":
            log.warning(
                "Model type has no GPU support; fitting on the CPU", model_type=model_cls.name
            )
        return "cpu"
    if not gpu_present():
        if requested == "cuda":
            raise ConfigError(
                "--device cuda was asked for, but no GPU is visible on this machine",
                hint="Use --device auto (GPU when present) or --device cpu.",
            )
        log.debug("No GPU present; fitting on the CPU", model_type=model_cls.name)
        return "cpu"
    if not model_cls.gpu_available():
        if requested == "cuda":
            raise ConfigError(
                f"A GPU is present, but this installation of the {model_cls.name} model "
                "library cannot use it",
                hint="Install a CUDA-enabled build of that library, or use --device cpu.",
            )
        log.info(
            "GPU present but not usable by this model library; fitting on the CPU",
            model_type=model_cls.name,
        )
        return "cpu"
    return "cuda"
