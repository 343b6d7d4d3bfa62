"""End-to-end fine-tuning of an encoder's image tower (LoRA through peft, or every weight) with a head.

    config.py        hyperparameters and presets (`seed-study` default)
    augment.py       seeded augmentation of uint8 pixel batches, in torch
    data.py          split rows + targets, and the planned order of batches
    model.py         encoder image path + head; peft LoRA injection; gradient check
    trainer.py       the loop: AdamW, warm restarts, accumulation, autocast, checkpoints, resume, DDP
    checkpoint.py    crash-safe per-epoch checkpoints under workdir/finetune/<run-id>/
    distributed.py   torchrun process group helpers
    pipeline.py      registry -> task -> pixel cache -> train -> predictions (`bench finetune`)

See docs/finetune.md.
"""
