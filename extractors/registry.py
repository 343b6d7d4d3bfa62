"""The encoder registry, kept as data: one JSON file per family under `extractors/specs/`.

Each JSON file holds a list of entries; each entry becomes a frozen `EncoderSpec`. An unknown key, a missing
key or a duplicate name fails loudly with the file and entry named, so a typo in a spec never silently
falls back to a default.

    REGISTRY["clip-vit-b16"].preprocess.pixel_size   # -> 224
    get_spec("nope")                                  # BenchError listing the known names
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.core.errors import BenchError

SPECS_DIR = Path(__file__).parent / "specs"
VARIANTS = ("official", "tiny")
PREPROCESS_OPS = ("to_float", "repeat_channels", "normalize", "resize", "center_crop")
STORE_RESIZE_FILTERS = ("pil-bicubic", "pil-bilinear", "pil-lanczos-fit", "cv2-area-fit")
"""How the pixel store brings an image to `pixel_size` (see `cache.pixels.RESIZE_FILTERS`, which must agree)."""


@dataclass(frozen=True)
class WeightsSource:
    """One place a checkpoint may come from, and how to recognise it.

    `filename` is the file the loader needs; `published_at` says in words where its authors publish it
    (shown when the file is missing). `hf_repo` (+ `hf_filename`, default `filename`) lets the loader look in
    an offline Hugging Face cache; `url` is informative; `sha256`, when known, is verified on load.
    `format`: "safetensors", "state_dict" (a plain torch.save of tensors), "torchscript" (needs the trust
    flag), "lightning" (a Lightning checkpoint; its pickled configs need the trust flag) or "zip" (an archive
    holding the state_dict, e.g. MedCLIP's release).
    """

    tag: str
    filename: str
    published_at: str
    format: str = "state_dict"
    hf_repo: str | None = None
    hf_filename: str | None = None
    url: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class PreprocessStep:
    """One tensor operation on the pixel batch, applied in order (see `extractors.preprocess`)."""

    op: str
    size: int | None = None
    interpolation: str | None = None
    antialias: bool = True
    align_corners: bool | None = None
    divisor: float | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    channels: int | None = None


@dataclass(frozen=True)
class PreprocessSpec:
    """How a uint8 pixel-store batch [B, S, S] (S = `pixel_size`) becomes the model's float input.

    The pixel store already holds each image as grayscale, zero-padded to square and resized to `pixel_size`
    with the `store_resize` filter (one of `STORE_RESIZE_FILTERS`: the authors' resampling, e.g. CheXzero's
    PIL LANCZOS, GLoRIA's OpenCV INTER_AREA); `steps` do the rest on the encoder's device.
    """

    pixel_size: int
    steps: tuple[PreprocessStep, ...]
    note: str = ""
    store_resize: str = "pil-bicubic"


@dataclass(frozen=True)
class ZeroShotSpec:
    """How the zero-shot head scores this encoder's prompts, the way its authors do (see `heads.zeroshot`).

    `ensemble`: "prototype" (normalised class mean of the prompt embeddings), "mean" (mean of the prompts'
    cosines), "max" (best prompt) or "none" (a vision-only encoder: no zero-shot head); `logit_scale` multiplies cosines before a softmax. Steers the head only,
    so it is not part of embedding-store identities.
    """

    ensemble: str
    logit_scale: float
    note: str = ""


ZEROSHOT_ENSEMBLES = ("prototype", "mean", "max", "none")


@dataclass(frozen=True)
class EncoderSpec:
    """Everything that defines one registered encoder (architecture, weights, preprocessing, prompts)."""

    name: str
    family: str
    architecture: str
    variant: str
    description: str
    image_embed_dim: int
    text_embed_dim: int
    text_tower: str
    tokenizer: str
    context_length: int
    prompt_style: str
    zeroshot: ZeroShotSpec
    licence: str
    paper: str
    lora_targets: tuple[str, ...]
    preprocess: PreprocessSpec
    weights: tuple[WeightsSource, ...] = ()
    init_seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)

    @property
    def embed_dim(self) -> int:
        """The size of `encode_image(...)["embedding"]` (equal to the text embedding size for CLIP models)."""
        return self.image_embed_dim

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of the spec (used for store identities and `bench models --json`)."""
        return dataclasses.asdict(self)


def _build(cls, data: Any, where: str):
    """Instantiate a dataclass from a dict, refusing unknown and missing keys with a clear message."""
    if not isinstance(data, dict):
        raise BenchError(f"{where}: expected a JSON object for {cls.__name__}, got {type(data).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise BenchError(
            f"{where}: unknown key(s) {unknown} for {cls.__name__}; allowed keys are {sorted(fields)}. "
            "Fix the spelling in the spec file."
        )
    required = [
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [name for name in required if name not in data]
    if missing:
        raise BenchError(f"{where}: missing required key(s) {missing} for {cls.__name__}.")
    return data


def _tuple(value):
    return tuple(value) if isinstance(value, list) else value


def parse_step(data: Any, where: str) -> PreprocessStep:
    _build(PreprocessStep, data, where)
    if data["op"] not in PREPROCESS_OPS:
        raise BenchError(f"{where}: unknown preprocessing op {data['op']!r}; known ops: {list(PREPROCESS_OPS)}.")
    return PreprocessStep(**{key: _tuple(value) for key, value in data.items()})


def parse_spec(data: Any, where: str) -> EncoderSpec:
    """Parse one registry entry (a dict from JSON) into an `EncoderSpec`."""
    _build(EncoderSpec, data, where)
    where = f"{where} ({data['name']})"
    if data["variant"] not in VARIANTS:
        raise BenchError(f"{where}: variant must be one of {list(VARIANTS)}, got {data['variant']!r}.")
    pre = _build(PreprocessSpec, data["preprocess"], f"{where} preprocess")
    steps = tuple(parse_step(step, f"{where} preprocess step {i}") for i, step in enumerate(pre["steps"]))
    store_resize = pre.get("store_resize", "pil-bicubic")
    if store_resize not in STORE_RESIZE_FILTERS:
        raise BenchError(
            f"{where} preprocess: store_resize must be one of {list(STORE_RESIZE_FILTERS)}, got {store_resize!r}."
        )
    preprocess = PreprocessSpec(
        pixel_size=int(pre["pixel_size"]), steps=steps, note=pre.get("note", ""), store_resize=store_resize
    )
    weights = tuple(
        WeightsSource(**_build(WeightsSource, source, f"{where} weights[{i}]"))
        for i, source in enumerate(data.get("weights", []))
    )
    if data["variant"] == "official" and not weights:
        raise BenchError(f"{where}: an official encoder must name at least one weights source.")
    if data["variant"] == "tiny" and data.get("init_seed") is None:
        raise BenchError(f"{where}: a tiny encoder needs an `init_seed` for its deterministic random init.")
    zeroshot = ZeroShotSpec(**_build(ZeroShotSpec, data["zeroshot"], f"{where} zeroshot"))
    if zeroshot.ensemble not in ZEROSHOT_ENSEMBLES:
        raise BenchError(f"{where}: zeroshot.ensemble must be one of {list(ZEROSHOT_ENSEMBLES)}, got {zeroshot.ensemble!r}.")
    values = dict(data)
    values.update(
        zeroshot=zeroshot,
        preprocess=preprocess,
        weights=weights,
        lora_targets=tuple(data["lora_targets"]),
        extra=dict(data.get("extra", {})),
    )
    return EncoderSpec(**values)


def load_registry(specs_dir: Path = SPECS_DIR) -> dict[str, EncoderSpec]:
    """Read every `*.json` under `specs_dir` (each a list of entries) into a name -> spec dict."""
    registry: dict[str, EncoderSpec] = {}
    for path in sorted(Path(specs_dir).glob("*.json")):
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise BenchError(f"{path}: not valid JSON ({error}).") from error
        if not isinstance(entries, list):
            raise BenchError(f"{path}: expected a JSON list of encoder entries.")
        for index, entry in enumerate(entries):
            spec = parse_spec(entry, f"{path} entry {index}")
            if spec.name in registry:
                raise BenchError(f"{path}: encoder name {spec.name!r} is registered twice.")
            registry[spec.name] = spec
    return registry


REGISTRY: dict[str, EncoderSpec] = load_registry()


def get_spec(name: str) -> EncoderSpec:
    """The spec registered under `name`, or a BenchError listing the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise BenchError(f"unknown encoder {name!r}; known encoders: {known}. See `bench models`.") from None


def family_setting(spec: EncoderSpec, key: str):
    """`spec.extra[key]`, or a BenchError naming the encoder and the missing setting."""
    if key not in spec.extra:
        raise BenchError(
            f"encoder {spec.name!r}: its spec needs `extra.{key}` (see extractors/specs/{spec.family}.json)."
        )
    return spec.extra[key]
