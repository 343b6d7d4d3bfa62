"""Renaming checkpoint keys saved by transformers 4.x to the names current transformers uses.

Released checkpoints (MedCLIP's Swin, RAD-DINO's DINOv2) were saved with transformers 4.x; transformers 5
renamed some attention and MLP submodules and converts the names itself in `from_pretrained`. We load with
`strict_load`, so the same renaming is applied here, as data, before the strict load.
"""

from __future__ import annotations

SWIN_4X_TO_5 = (
    (".attention.self.query.", ".attention.q_proj."),
    (".attention.self.key.", ".attention.k_proj."),
    (".attention.self.value.", ".attention.v_proj."),
    (".attention.self.relative_position_bias_table", ".attention.relative_position_bias.relative_position_bias_table"),
    (".attention.output.dense.", ".attention.o_proj."),
    (".intermediate.dense.", ".mlp.fc1."),
    (".output.dense.", ".mlp.fc2."),
)
"""Swin (MedCLIP's vision tower); order matters: `attention.output` before the plain `output`."""

DINOV2_4X_TO_5 = (
    (".attention.attention.query.", ".attention.q_proj."),
    (".attention.attention.key.", ".attention.k_proj."),
    (".attention.attention.value.", ".attention.v_proj."),
    (".attention.output.dense.", ".attention.o_proj."),
)
"""DINOv2 (RAD-DINO)."""


def rename_key_parts(state_dict: dict, renames, *, under: str = "") -> dict:
    """`state_dict` with the first matching (old, new) part replaced in each key that starts with `under`.

    Keys already in the new naming pass unchanged, so either release layout loads."""
    renamed = {}
    for key, value in state_dict.items():
        if key.startswith(under):
            for old, new in renames:
                if old in key:
                    key = key.replace(old, new)
                    break
        renamed[key] = value
    return renamed
