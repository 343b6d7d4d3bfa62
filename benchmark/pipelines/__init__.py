"""One place per stage: the orchestration of extraction, heads and fine-tuning, side by side.

    extract.py    dataset -> pixel store -> frozen encoder -> embedding store (and the dataset registered)
    heads.py      registered dataset -> task -> embedding store -> heads -> one prediction run per head
    finetune.py   registered dataset -> task -> pixel store -> encoder + head trained end to end -> a run

Each is a short function of typed inputs that a CLI command (or `bench run`) calls with a `Progress`.
The libraries they drive (`cache`, `extractors`, `heads`, `benchmark.finetune`) know nothing of each other.
"""
