"""Fine-tuning hyperparameters and the named presets they start from.

The default preset, `seed-study`, follows Sun et al. (ISBI 2025, the study this project reproduces): AdamW with
lr 1e-4 and weight decay 1e-5, batch 64, 100 epochs, CosineAnnealingWarmRestarts(T_0=10) stepped once per batch,
vertical and horizontal flips (p=0.3), rotation +-15 degrees and colour jitter 0.2, and the best epoch chosen by
validation loss (the study trains every epoch, so no early stopping).

LoRA alpha: the study's own LoRA code used rank 16 with alpha 1 (scaling alpha/rank = 1/16) in a custom
implementation. With peft that scaling makes the adapters learn 16x slower than the head at the same learning
rate, so our default is alpha = rank (scaling 1.0), the common choice; pass `--lora-alpha 1` to mimic the study.

Mitigation (docs/mitigation.md): `balance="groups"` draws every epoch's images group-balanced with replacement
(each group of the protected attribute `protect` equally likely); `loss="groupdro"` trains with GroupDRO's online
group weights (step size `dro_step`) and picks the best epoch by the worst group's val loss. Both need `protect`.
Without mitigation these fields are left out of `to_dict`, so runs made before they existed keep their ids.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from benchmark.core.errors import BenchError

METHODS = ("lora", "full")
HEADS = ("linear", "mlp")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
BALANCES = ("none", "groups")
LOSSES = ("erm", "groupdro")
MITIGATION_DEFAULTS = {"balance": "none", "loss": "erm", "protect": None, "dro_step": 0.01}
"""Mitigation fields and their defaults (left out of `to_dict` when unchanged)."""


@dataclass(frozen=True)
class Augmentation:
    """Random changes applied to each uint8 training image (see `benchmark.finetune.augment`)."""

    vflip: float = 0.3
    hflip: float = 0.3
    rotation_degrees: float = 15.0
    jitter: float = 0.2

    @property
    def enabled(self) -> bool:
        return bool(self.vflip or self.hflip or self.rotation_degrees or self.jitter)


NO_AUGMENTATION = Augmentation(vflip=0.0, hflip=0.0, rotation_degrees=0.0, jitter=0.0)


@dataclass(frozen=True)
class FineTuneConfig:
    """Everything that determines a fine-tuning run's result (recorded in the predictions' metadata).

    `batch_size` is the number of images per optimizer step, whatever the number of processes and
    accumulation steps: `grad_accum` splits it into that many micro-batches and `torchrun` splits each
    micro-batch across processes, so the arithmetic is that of one process with the full batch.
    """

    method: str = "lora"
    head: str = "linear"
    epochs: int = 100
    lr: float = 1e-4
    weight_decay: float = 1e-5
    batch_size: int = 64
    grad_accum: int = 1
    restart_period: int = 10
    patience: int | None = None
    lora_rank: int = 16
    lora_alpha: float | None = None  # None: equal to lora_rank (scaling 1)
    lora_dropout: float = 0.0
    mlp_hidden: int = 1024
    augmentation: Augmentation = Augmentation()
    seed: int = 0
    precision: str = "auto"
    balance: str = "none"
    loss: str = "erm"
    protect: str | None = None
    dro_step: float = 0.01

    def __post_init__(self) -> None:
        if self.lora_alpha is None:
            object.__setattr__(self, "lora_alpha", float(self.lora_rank))
        if self.method not in METHODS:
            raise BenchError(f"unknown fine-tuning method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.head not in HEADS:
            raise BenchError(f"unknown head {self.head!r}; choose one of {', '.join(HEADS)}")
        if self.precision not in PRECISIONS:
            raise BenchError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        for name in ("epochs", "batch_size", "grad_accum", "restart_period", "lora_rank", "mlp_hidden"):
            if getattr(self, name) < 1:
                raise BenchError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.batch_size % self.grad_accum:
            raise BenchError(
                f"--batch-size {self.batch_size} is not divisible by --grad-accum {self.grad_accum}; "
                "the batch is split into grad-accum equal micro-batches"
            )
        if self.lr <= 0:
            raise BenchError(f"--lr must be positive, got {self.lr}")
        if self.patience is not None and self.patience < 1:
            raise BenchError(f"--patience must be at least 1 (or omitted for none), got {self.patience}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise BenchError(f"--lora-dropout must be in [0, 1), got {self.lora_dropout}")
        self._check_mitigation()

    def _check_mitigation(self) -> None:
        if self.balance not in BALANCES:
            raise BenchError(f"unknown --balance {self.balance!r}; choose one of {', '.join(BALANCES)}")
        if self.loss not in LOSSES:
            raise BenchError(f"unknown --loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        mitigating = self.balance != "none" or self.loss != "erm"
        if mitigating and not self.protect:
            raise BenchError("--balance groups and --loss groupdro work on a protected attribute: give --protect "
                             "sex, age, race, insurance or an intersection such as sex*age")
        if self.protect and not mitigating:
            raise BenchError(f"--protect {self.protect} is used by --balance groups or --loss groupdro; give one of them")
        if self.dro_step < 0:
            raise BenchError(f"--dro-step must be 0 or more, got {self.dro_step}")

    @property
    def mitigating(self) -> bool:
        return self.protect is not None

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        if self.mitigating:
            return values
        return {key: value for key, value in values.items() if key not in MITIGATION_DEFAULTS}

    @classmethod
    def from_dict(cls, values: dict) -> "FineTuneConfig":
        values = dict(values)
        values["augmentation"] = Augmentation(**values.get("augmentation", {}))
        return cls(**values)


PRESETS: dict[str, FineTuneConfig] = {
    "seed-study": FineTuneConfig(),
    # A short schedule with early stopping, for trying a model out before a 100-epoch run.
    "quick": FineTuneConfig(epochs=10, patience=3, restart_period=10, batch_size=32),
    # Like the study but without augmentation, to measure what augmentation adds.
    "seed-study-noaug": FineTuneConfig(augmentation=NO_AUGMENTATION),
}


def make_config(preset: str = "seed-study", **overrides) -> FineTuneConfig:
    """The named preset with the given fields replaced (None values keep the preset's)."""
    if preset not in PRESETS:
        raise BenchError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    changes = {key: value for key, value in overrides.items() if value is not None}
    unknown = set(changes) - {field.name for field in dataclasses.fields(FineTuneConfig)}
    if unknown:
        raise BenchError(f"unknown fine-tuning settings: {', '.join(sorted(unknown))}")
    if "lora_rank" in changes and "lora_alpha" not in changes:
        changes["lora_alpha"] = None  # follows the new rank
    return dataclasses.replace(PRESETS[preset], **changes)
