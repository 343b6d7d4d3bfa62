"""Zero-shot prompts generated as combinations of phrase lists (MedCLIP's and GLoRIA's CheXpert generator).

The authors (MedCLIP `generate_chexpert_class_prompts`, GLoRIA `generate_chexpert_class_prompts`) build
every prompt of a class as "<severity> <subtype> <location>" over all combinations of three lists, then draw
`n` at random. The lists live in a user-replaceable JSON file (`extractors/prompts/medclip.json`,
`gloria.json`):

    {"style": "gloria", "description": "...", "source": "...", "n_prompts": 5, "sample_seed": 0,
     "classes": {"Atelectasis": {"origin": "authors: ...", "part_names": ["severity", "subtype", "location"],
                                 "parts": [["", "mild"], ["linear atelectasis"], ["at the lung bases"]]}}}

Each combination joins the non-empty items with single spaces; duplicates are kept once (the authors'
Pleural Effusion list repeats an item). The draw uses a generator seeded with (`sample_seed`, class name),
never the global one, and keeps the drawn prompts in combination order.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

from benchmark.core.errors import BenchError
from extractors.prompts import Prompt
from extractors.registry import EncoderSpec

FILE_KEYS = {"style", "description", "source", "n_prompts", "sample_seed", "classes"}
CLASS_KEYS = {"origin", "part_names", "parts"}


def read_combination_file(path: Path) -> dict:
    """Read and check a combination prompt file, naming the file and entry on any problem."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise BenchError(f"{path}: cannot read the prompt file ({error}).") from error
    if not isinstance(data, dict):
        raise BenchError(f"{path}: expected a JSON object.")
    unknown = sorted(set(data) - FILE_KEYS)
    missing = sorted({"style", "n_prompts", "classes"} - set(data))
    if unknown or missing:
        raise BenchError(f"{path}: unknown key(s) {unknown}, missing key(s) {missing}; allowed: {sorted(FILE_KEYS)}.")
    if not isinstance(data["n_prompts"], int) or data["n_prompts"] < 1:
        raise BenchError(f"{path}: n_prompts must be a positive integer, got {data['n_prompts']!r}.")
    for class_name, entry in data["classes"].items():
        where = f"{path}: classes.{class_name}"
        if not isinstance(entry, dict) or set(entry) - CLASS_KEYS or "parts" not in entry:
            raise BenchError(f"{where}: expected an object with 'parts' (and optional 'origin', 'part_names').")
        parts = entry["parts"]
        if not isinstance(parts, list) or not parts or not all(
            isinstance(part, list) and part and all(isinstance(item, str) for item in part) for part in parts
        ):
            raise BenchError(f"{where}.parts: expected a non-empty list of non-empty lists of strings.")
    return data


def all_combinations(parts: list[list[str]]) -> list[str]:
    """Every prompt of a class: one item per part, non-empty items joined by spaces, duplicates once."""
    prompts = (" ".join(item.strip() for item in combo if item.strip()) for combo in itertools.product(*parts))
    return [prompt for prompt in dict.fromkeys(prompts) if prompt]


def combination_prompts(spec: EncoderSpec, file: Path, classes: tuple[str, ...]) -> list[Prompt]:
    """`n_prompts` prompts per class drawn from its combinations (all when there are fewer), in class order."""
    data = read_combination_file(file)
    if data["style"] != spec.prompt_style:
        raise BenchError(
            f"{file}: style {data['style']!r} does not match encoder {spec.name!r} ({spec.prompt_style!r})."
        )
    missing = [name for name in classes if name not in data["classes"]]
    if missing:
        raise BenchError(f"{file}: no prompt lists for class(es) {missing}; add them under 'classes'.")
    n_prompts, seed = data["n_prompts"], data.get("sample_seed", 0)
    prompts: list[Prompt] = []
    for class_name in classes:
        combos = all_combinations(data["classes"][class_name]["parts"])
        if not combos:
            raise BenchError(f"{file}: class {class_name!r} has only empty phrases; give it at least one word.")
        if len(combos) > n_prompts:
            chosen = sorted(random.Random(f"{seed}:{class_name}").sample(range(len(combos)), n_prompts))
            combos = [combos[index] for index in chosen]
        prompts.extend(Prompt(class_name, text, "pos") for text in combos)
    return prompts
