"""Zero-shot prompt sets, kept as user-replaceable JSON files (`extractors/prompts/<style>.json`).

A file names its `style` (the spec's `prompt_style`) and builds prompts for each class either from
`templates` x `class_text`, or, for a class listed under `prompts`, from exactly the prompts given there:

    {"style": "chexzero", "description": "...",
     "templates": {"pos": ["{}"], "neg": ["no {}"]},
     "class_text": {"Atelectasis": "atelectasis", ...},
     "prompts": {"No_Finding": {"pos": ["no finding"], "neg": ["finding"]}}}

"pos" prompts describe the class; "neg" prompts (CheXzero-style pairs) describe its absence. Every class a
task asks for must be covered, or a BenchError names the missing ones. To use your own prompts, copy a file,
edit it, and point `BENCH_PROMPTS` at the folder holding it (or pass `path=`).

Extra prompt sets (zero-shot prompt sensitivity, `bench prompt-sensitivity`, `bench fit-heads --promptset`):
`EXTRA_SETS` names template files any encoder can use whatever its own style (`prompts_from_file`), and a
user's template file (a path ending in .json) works the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import NamedTuple

from benchmark.core.schema import LABEL_COLUMNS
from benchmark.core.errors import BenchError
from extractors.registry import EncoderSpec

PROMPTS_DIR = Path(__file__).parent / "prompts"
PROMPTS_ENV = "BENCH_PROMPTS"
POLARITIES = ("pos", "neg")
_FILE_KEYS = {"style", "description", "templates", "class_text", "prompts"}


EXTRA_SETS = {
    "clip-templates": "clip.json",
    "chexzero-pairs": "chexzero.json",
    "seed-study": "seed-study.json",
}
"""Prompt sets any encoder can be scored with: name -> packaged template file (see docs/mitigation.md)."""


class Prompt(NamedTuple):
    class_name: str
    text: str
    polarity: str  # "pos" | "neg"


def prompt_file(spec: EncoderSpec, path: str | os.PathLike | None = None) -> Path:
    """The JSON file of the spec's prompt style: `path`, else `$BENCH_PROMPTS/<style>.json`, else packaged."""
    if path is not None:
        return Path(path)
    folder = os.environ.get(PROMPTS_ENV)
    if folder and (Path(folder) / f"{spec.prompt_style}.json").is_file():
        return Path(folder) / f"{spec.prompt_style}.json"
    packaged = PROMPTS_DIR / f"{spec.prompt_style}.json"
    if not packaged.is_file():
        raise BenchError(
            f"encoder {spec.name!r} uses prompt style {spec.prompt_style!r} but {packaged} does not exist; "
            f"known styles: {sorted(p.stem for p in PROMPTS_DIR.glob('*.json'))}."
        )
    return packaged


def _polarity_lists(value, where: str) -> dict[str, list[str]]:
    if not isinstance(value, dict) or set(value) - set(POLARITIES):
        raise BenchError(f"{where}: expected an object with keys among {list(POLARITIES)}, got {value!r}.")
    for polarity, texts in value.items():
        if not isinstance(texts, list) or not all(isinstance(t, str) and t.strip() for t in texts):
            raise BenchError(f"{where}.{polarity}: expected a list of non-empty strings, got {texts!r}.")
    return value


def read_prompt_file(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise BenchError(f"{path}: cannot read the prompt file ({error}).") from error
    if not isinstance(data, dict) or "style" not in data:
        raise BenchError(f"{path}: expected a JSON object with a 'style' key.")
    unknown = sorted(set(data) - _FILE_KEYS)
    if unknown:
        raise BenchError(f"{path}: unknown key(s) {unknown}; allowed: {sorted(_FILE_KEYS)}.")
    _polarity_lists(data.get("templates", {}), f"{path}: templates")
    for class_name, lists in data.get("prompts", {}).items():
        _polarity_lists(lists, f"{path}: prompts.{class_name}")
    for template in sum(data.get("templates", {}).values(), []):
        if template.count("{}") != 1:
            raise BenchError(f"{path}: template {template!r} must contain '{{}}' exactly once.")
    return data


def prompt_set(
    spec: EncoderSpec,
    classes: tuple[str, ...] | list[str] | None = None,
    *,
    path: str | os.PathLike | None = None,
) -> list[Prompt]:
    """The prompts for `classes` (default: every manifest label column), in class order, pos before neg.

    A prompt file is either a template file (CLIP, BiomedCLIP, CheXzero) or a combination file (MedCLIP,
    GLoRIA: `n_prompts` drawn per class from severity x subtype x location phrases, see
    `extractors.combination_prompts`); the file's own keys say which. Nothing here imports torch, so a
    store's identity (which includes its prompts) is known without building a model.
    """
    file = prompt_file(spec, path)
    classes = tuple(classes) if classes is not None else LABEL_COLUMNS
    if is_combination_file(file):
        from extractors.combination_prompts import combination_prompts

        prompts = combination_prompts(spec, file, classes)
    else:
        prompts = template_prompts(spec, file, classes)
    if spec.extra.get("drop_one_word_prompts"):
        prompts = drop_one_word_prompts(prompts, file)
    return prompts


def drop_one_word_prompts(prompts: list[Prompt], file: Path) -> list[Prompt]:
    """GLoRIA: the prompts its authors' text cleaning leaves words of (one-word prompts are dropped)."""
    from extractors.gloria_text import prompt_keeps_words

    kept = [prompt for prompt in prompts if prompt_keeps_words(prompt.text)]
    emptied = sorted({p.class_name for p in prompts} - {p.class_name for p in kept if p.polarity == "pos"})
    if emptied:
        raise BenchError(
            f"{file}: every positive prompt of {emptied} has a single word, which GLoRIA's text cleaning drops; "
            "give those classes prompts of two words or more."
        )
    return kept


def is_combination_file(file: Path) -> bool:
    """Whether a prompt file describes generated prompts (`n_prompts` + per-class phrase lists)."""
    try:
        data = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise BenchError(f"{file}: cannot read the prompt file ({error}); it must be a JSON object like "
                         f"{PROMPTS_DIR / 'clip.json'}") from None
    return isinstance(data, dict) and "n_prompts" in data and "classes" in data


def extra_set_file(name: str) -> Path | None:
    """The file of a prompt set by name: an `EXTRA_SETS` entry (from `BENCH_PROMPTS` when it holds one), or a
    path to a .json file; None for any other name."""
    if name in EXTRA_SETS:
        folder = os.environ.get(PROMPTS_ENV)
        if folder and (Path(folder) / EXTRA_SETS[name]).is_file():
            return Path(folder) / EXTRA_SETS[name]
        return PROMPTS_DIR / EXTRA_SETS[name]
    if name.endswith(".json"):
        if not Path(name).is_file():
            raise BenchError(f"prompt file {name} does not exist; give a template file such as {PROMPTS_DIR / 'clip.json'}")
        return Path(name)
    return None


def prompts_from_file(spec: EncoderSpec, file: Path, classes) -> list[Prompt]:
    """The prompts of any template file for `classes`, whatever its style (CheXzero's pairs for a CLIP encoder),
    or of a combination file of the encoder's own style; GLoRIA's one-word rule applies as in `prompt_set`."""
    classes = tuple(classes)
    if is_combination_file(file):
        from extractors.combination_prompts import combination_prompts

        prompts = combination_prompts(spec, file, classes)
    else:
        prompts = template_prompts(spec, file, classes, any_style=True)
    if spec.extra.get("drop_one_word_prompts"):
        prompts = drop_one_word_prompts(prompts, file)
    return prompts


def template_prompts(spec: EncoderSpec, file: Path, classes: tuple[str, ...], *, any_style: bool = False) -> list[Prompt]:
    """Prompts from a template file (see the module docstring); `any_style`: no check that the file's style is
    the encoder's."""
    data = read_prompt_file(file)
    if not any_style and data["style"] != spec.prompt_style:
        raise BenchError(f"{file}: style {data['style']!r} does not match encoder {spec.name!r} ({spec.prompt_style!r}).")
    explicit = data.get("prompts", {})
    class_text = data.get("class_text", {})
    missing = [c for c in classes if c not in explicit and c not in class_text]
    if missing:
        raise BenchError(f"{file}: no prompts for class(es) {missing}; add them to 'class_text' or 'prompts'.")
    prompts: list[Prompt] = []
    for class_name in classes:
        if class_name in explicit:
            lists = explicit[class_name]
        else:
            lists = {
                polarity: [template.replace("{}", class_text[class_name]) for template in templates]
                for polarity, templates in data.get("templates", {}).items()
            }
        for polarity in POLARITIES:
            prompts.extend(Prompt(class_name, text, polarity) for text in lists.get(polarity, []))
        if not lists.get("pos"):
            raise BenchError(f"{file}: class {class_name!r} has no positive prompt.")
    return prompts


def prompt_set_digest(prompts: list[Prompt]) -> str:
    """sha256 of a prompt list (for store identities: edited prompts never reuse old text embeddings)."""
    canonical = json.dumps([list(p) for p in prompts], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
