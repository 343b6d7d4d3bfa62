"""Prompt sets for zero-shot: the store's own, and extra ones whose text embeddings are cached beside the stores.

    text = prompt_text(workdir, store, "chexzero-pairs", classes=task.classes)   # PromptText
    text.fields["embedding"], text.label

Names: "family" (the store's default set, in the encoder family's own style), a set the store holds (e.g.
MedCLIP's "per-prompt"), an `extractors.prompts.EXTRA_SETS` name ("clip-templates", "chexzero-pairs",
"seed-study") or a path to a template file. An extra set's text embeddings come from `cache.text_sets`: computed
once with the encoder's text tower (loaded with `weights`, or the encoder's default weights), whose weights
must be those the store was made with, and reused by every store of that encoder and weights. See
`cache.text_sets` for why they are not written into the store.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.core.errors import BenchError
from benchmark.core.identity import digest
from benchmark.core.progress import SILENT, Progress
from benchmark.core.workdir import Workdir

FAMILY = "family"
DEFAULT_SETS = (FAMILY, "clip-templates", "chexzero-pairs", "seed-study")


@dataclass(frozen=True)
class PromptText:
    """One prompt set's text fields (as `EmbeddingStore.text` returns them) and how a run records it."""

    name: str
    fields: dict
    label: str  # the store's set name, or "<name>@<prompts digest[:12]>" for an extra set
    in_store: bool


def store_default(store) -> str:
    if not store.promptsets:
        raise BenchError(f"the store {store.path} holds no prompt text embeddings; zero-shot needs them "
                         "(run `bench extract` again)")
    return "default" if "default" in store.promptsets else store.promptsets[0]


def in_store(store, name: str | None) -> str | None:
    """The store's set that `name` means ("family"/None: its default), or None for an extra set."""
    if name in (None, FAMILY):
        return store_default(store)
    return name if name in store.promptsets else None


def prompt_triples(store, name: str | None, *, classes) -> list[tuple[str, str, str]]:
    """(class, prompt, polarity) of set `name` for the task's `classes`, without embedding anything."""
    stored = in_store(store, name)
    if stored is not None:
        fields = store.text(stored)
        polarity = fields.get("polarity", ["pos"] * len(fields["prompts"]))
        wanted = set(classes)
        return [(c, p, q) for c, p, q in zip(fields["class_name"], fields["prompts"], polarity) if c in wanted]
    from extractors.prompts import EXTRA_SETS, extra_set_file, prompts_from_file
    from extractors.registry import get_spec

    file = extra_set_file(name)
    if file is None:
        raise BenchError(f"unknown prompt set {name!r}; use {FAMILY}, a set of the store ({', '.join(store.promptsets)}), "
                         f"one of {', '.join(EXTRA_SETS)}, or a path to a prompt file (.json)")
    return [tuple(prompt) for prompt in prompts_from_file(get_spec(store.model), file, classes)]


def prompt_text(workdir, store, name: str | None, *, classes, weights=None, trust_checkpoint: bool = False,
                progress: Progress = SILENT) -> PromptText:
    """The text of prompt set `name` for `store`'s encoder (see the module docstring); None: the family's."""
    stored = in_store(store, name)
    if stored is not None:
        return PromptText(name or FAMILY, store.text(stored), stored, True)
    from extractors.registry import get_spec

    prompts = prompt_triples(store, name, classes=classes)
    spec = get_spec(store.model)
    identity, encoding = _identity(spec, store, prompts)
    fields = _cached_or_embedded(Workdir.of(workdir), store, identity, encoding, prompts, weights=weights,
                                 trust_checkpoint=trust_checkpoint, progress=progress)
    return PromptText(name, fields, f"{name}@{digest(prompts)[:12]}", False)


def _identity(spec, store, prompts) -> tuple[dict, str]:
    from benchmark.pipelines.extract import SPEC_FIELDS_NOT_IN_IDENTITY
    from cache.text_sets import text_set_identity
    from extractors.embed import EXTRACTOR_VERSION, promptset_encodings

    described = spec.to_json()
    encoding = promptset_encodings(spec).get("default", "plain")
    identity = text_set_identity(
        encoder={key: value for key, value in described.items() if key not in SPEC_FIELDS_NOT_IN_IDENTITY},
        weights_digest=store.attrs.get("weights_digest", ""), extractor_version=EXTRACTOR_VERSION,
        encoding=encoding, prompts=prompts)
    return identity, encoding


def _cached_or_embedded(workdir: Workdir, store, identity: dict, encoding: str, prompts, *, weights,
                        trust_checkpoint: bool, progress: Progress) -> dict:
    from cache.text_sets import read_text_set, write_text_set
    from extractors import load_encoder
    from extractors.embed import embed_prompt_sets

    key = digest(identity)
    path = workdir.text_set_path(store.model, key)
    fields = read_text_set(path, key)
    if fields is not None:
        return fields
    encoder = load_encoder(store.model, weights=weights, trust_checkpoint=trust_checkpoint)
    if encoder.weights_digest != store.attrs.get("weights_digest"):
        raise BenchError(f"the weights loaded for {store.model} ({encoder.weights_tag}) are not those its store was made "
                         f"with ({store.weights_tag}); pass the store's --weights")
    # Named "default" so that the family's own way of encoding a prompt set is used (e.g. MedCLIP's batching).
    fields = embed_prompt_sets(encoder, {"default": prompts})["default"]
    write_text_set(path, fields, identity, model=store.model)
    progress.note(f"embedded {len(prompts)} prompts with {store.model}'s text tower ({encoding}); cached in {path}")
    return read_text_set(path, key)  # read back: the same arrays as every later (cached) call
