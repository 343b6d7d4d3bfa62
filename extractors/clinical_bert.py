"""The BERT text tower MedCLIP and GLoRIA share (Bio_ClinicalBERT), built offline from a config and vocab.

The tower's weights come from the family checkpoint; only its config (`config.json`) and tokenizer files
(`vocab.txt`, `tokenizer_config.json`) are needed from elsewhere. `spec.extra["bert"]` names where:
  - "package:<name>": a folder shipped under `extractors/assets/<name>` (the tiny variants' tiny BERT);
  - an existing folder path;
  - a Hugging Face repository id such as "emilyalsentzer/Bio_ClinicalBERT", looked up (never downloaded)
    in `$BENCH_WEIGHTS/<last part of the id>/` and then in the offline Hugging Face cache.
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmark.errors import BenchError

ASSETS_DIR = Path(__file__).parent / "assets"
PACKAGE_PREFIX = "package:"
NEEDED_FILES = ("config.json", "vocab.txt")


def _folder_for(reference: str) -> Path | None:
    """A local folder holding the config and vocab for `reference`, or None to try the HF cache."""
    if reference.startswith(PACKAGE_PREFIX):
        folder = ASSETS_DIR / reference[len(PACKAGE_PREFIX):]
        if not folder.is_dir():
            raise BenchError(f"text tower {reference!r}: no folder {folder} in the package; reinstall cxr-fairbench.")
        return folder
    path = Path(reference).expanduser()
    if path.is_dir():
        return path
    weights_dir = os.environ.get("BENCH_WEIGHTS")
    if weights_dir:
        candidate = Path(weights_dir) / reference.split("/")[-1]
        if all((candidate / name).is_file() for name in NEEDED_FILES):
            return candidate
    return None


def load_bert_config_and_tokenizer(reference: str):
    """(BertConfig, tokenizer) for `reference` (see the module docstring), never touching the network."""
    from transformers import AutoConfig, AutoTokenizer

    folder = _folder_for(reference)
    source = str(folder) if folder is not None else reference
    try:
        config = AutoConfig.from_pretrained(source, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as error:
        raise BenchError(
            f"text tower {reference!r}: its config and tokenizer files ({', '.join(NEEDED_FILES)}, "
            f"tokenizer_config.json) were not found locally ({type(error).__name__}). They are published at "
            f"https://huggingface.co/{reference}. Put them in $BENCH_WEIGHTS/{reference.split('/')[-1]}/ "
            "or in the Hugging Face cache (e.g. `huggingface-cli download "
            f"{reference} config.json vocab.txt tokenizer_config.json` on a machine with internet)."
        ) from None
    if config.model_type != "bert":
        raise BenchError(f"text tower {reference!r}: expected a BERT config, found model_type {config.model_type!r}.")
    return config, tokenizer


def build_bert(config):
    """A randomly initialised `BertModel` (with its pooler, as `AutoModel` builds it) for `config`."""
    from transformers import BertModel

    return BertModel(config, add_pooling_layer=True)


LEGACY_BUFFER_SUFFIXES = ("embeddings.position_ids", "embeddings.token_type_ids", "relative_position_index")
"""Buffers older transformers saved in state_dicts and current ones rebuild themselves (MedCLIP#37)."""


def drop_legacy_buffers(state_dict: dict, expected_keys) -> tuple[dict, list[str]]:
    """Remove deterministic buffers the checkpoint carries but the current model does not save.

    Returns (cleaned state_dict, dropped keys). Only the buffer names in `LEGACY_BUFFER_SUFFIXES` are
    dropped; every other surplus key stays, so the strict load still reports it.
    """
    expected = set(expected_keys)
    dropped = [key for key in state_dict if key not in expected and key.endswith(LEGACY_BUFFER_SUFFIXES)]
    return {key: value for key, value in state_dict.items() if key not in dropped}, dropped
