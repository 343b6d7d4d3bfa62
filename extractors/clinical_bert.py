"""The BERT text tower MedCLIP and GLoRIA share (Bio_ClinicalBERT), built offline from a config and vocab.

The tower's weights come from the family checkpoint. Its architecture comes from a `config.json` shipped in
`extractors/assets/<spec.extra["bert_config"]>/` (Bio_ClinicalBERT's published config, or the tiny one).
Its tokenizer files (`vocab.txt`, `tokenizer_config.json` optional) are looked for, never downloaded, in:
  1. the folder holding the checkpoint file (put them next to `pytorch_model.bin` / the `.ckpt`);
  2. `$BENCH_WEIGHTS/<last part of the tokenizer id>/` (e.g. `$BENCH_WEIGHTS/Bio_ClinicalBERT/`);
  3. the offline Hugging Face cache, for a repository id such as "emilyalsentzer/Bio_ClinicalBERT";
or, when `spec.extra["tokenizer"]` is "package:<name>", in the shipped folder `extractors/assets/<name>`.
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmark.core.errors import BenchError

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
PACKAGE_PREFIX = "package:"
VOCAB_FILE = "vocab.txt"

LEGACY_BUFFER_SUFFIXES = ("embeddings.position_ids", "embeddings.token_type_ids", "relative_position_index")
"""Buffers older transformers saved in state_dicts and current ones rebuild themselves (MedCLIP#37)."""


def _asset(name: str) -> Path:
    folder = ASSETS_DIR / name
    if not folder.is_dir():
        raise BenchError(f"{folder} is missing from the installation; reinstall cxr-fairbench.")
    return folder


def load_bert_config(name: str):
    """The `BertConfig` shipped in `extractors/assets/<name>/config.json`."""
    from transformers import BertConfig

    return BertConfig.from_json_file(str(_asset(name) / "config.json"))


def tokenizer_folders(reference: str, near: Path | None = None) -> list[Path]:
    """The local folders searched for the tokenizer of `reference`, in order (see the module docstring)."""
    if reference.startswith(PACKAGE_PREFIX):
        return [_asset(reference[len(PACKAGE_PREFIX):])]
    folders = [Path(near)] if near is not None else []
    weights_dir = os.environ.get("BENCH_WEIGHTS")
    if weights_dir:
        folders.append(Path(weights_dir) / reference.split("/")[-1])
    return folders


def load_tokenizer(reference: str, near: Path | None = None):
    """The BERT tokenizer for `reference` from local files only; a BenchError says where to put them."""
    from transformers import AutoTokenizer, BertTokenizer

    folders = tokenizer_folders(reference, near)
    for folder in folders:
        if (folder / VOCAB_FILE).is_file():
            if (folder / "tokenizer_config.json").is_file():
                return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            # What AutoTokenizer makes of Bio_ClinicalBERT's repository (vocab.txt, no tokenizer config): the
            # BERT default do_lower_case=True, as the authors' AutoTokenizer.from_pretrained calls got.
            return BertTokenizer(str(folder / VOCAB_FILE), do_lower_case=True)
    if not reference.startswith(PACKAGE_PREFIX):
        try:
            return AutoTokenizer.from_pretrained(reference, local_files_only=True)
        except (OSError, ValueError):
            pass
    looked = [str(folder) for folder in folders] + [f"the Hugging Face cache ({reference})"]
    raise BenchError(
        f"tokenizer {reference!r}: {VOCAB_FILE} not found (looked in: {'; '.join(looked)}). It is published at "
        f"https://huggingface.co/{reference} (vocab.txt). Put it next to the weights file or in "
        f"$BENCH_WEIGHTS/{reference.split('/')[-1]}/, or fill the Hugging Face cache on a machine with internet "
        f"(`huggingface-cli download {reference} vocab.txt config.json`)."
    )


def build_bert(config):
    """A randomly initialised `BertModel` (with its pooler, as `AutoModel` builds it) for `config`."""
    from transformers import BertModel

    return BertModel(config, add_pooling_layer=True)


def drop_legacy_buffers(state_dict: dict, expected_keys) -> tuple[dict, list[str]]:
    """Remove deterministic buffers the checkpoint carries but the current model does not save.

    Returns (cleaned state_dict, dropped keys). Only the buffer names in `LEGACY_BUFFER_SUFFIXES` are
    dropped; every other surplus key stays, so the strict load still reports it.
    """
    expected = set(expected_keys)
    dropped = [key for key in state_dict if key not in expected and key.endswith(LEGACY_BUFFER_SUFFIXES)]
    return {key: value for key, value in state_dict.items() if key not in dropped}, dropped


def build_clinical_bert_encoder(spec, checkpoint, device, *, build_model, official_state_dict, encoder_class):
    """The adapter `build` shared by the families with a Bio_ClinicalBERT text tower (MedCLIP, GLoRIA).

    `build_model(spec, bert_config)` makes the family's module (seeded for tiny variants);
    `official_state_dict(checkpoint, model)` maps the authors' file onto it before the strict load;
    `encoder_class(spec, model, tokenizer, weights_tag=, weights_digest=)` wraps it as an `Encoder`.
    """
    from benchmark.core.schema import RANDOM_INIT
    from extractors.base import seeded_init
    from extractors.registry import family_setting
    from extractors.weights import strict_load

    bert_config = load_bert_config(family_setting(spec, "bert_config"))
    tokenizer = load_tokenizer(family_setting(spec, "tokenizer"), near=checkpoint.path.parent if checkpoint else None)
    with seeded_init(spec.init_seed or 0):
        model = build_model(spec, bert_config)
    if checkpoint is not None:
        strict_load(model, official_state_dict(checkpoint, model), source=str(checkpoint.path))
        tag, digest = checkpoint.tag, checkpoint.digest
    else:
        tag = digest = RANDOM_INIT
    encoder = encoder_class(spec, model, tokenizer, weights_tag=tag, weights_digest=digest)
    return encoder.to(device)

