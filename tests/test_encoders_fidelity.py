"""Every family against its authors' own code: pixels within one grey level, embeddings to float16 rounding.

The references in tests/fixtures/reference/ were computed by running each family's published code (fetched
from the authors' repositories, run outside this project) on `tests.reference_images` with small random
weights; see tests/fixtures/reference/README.md. A new family is covered by adding its fixture folder.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cache.pixels import decode_image
from extractors.embed import embed_prompt_sets, promptset_encodings
from tests.fidelity import build_fixture_encoder, fixture_names, read_fixture, state_sha256
from tests.reference_images import write_reference_images

FIXTURES = fixture_names()


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory):
    return write_reference_images(tmp_path_factory.mktemp("reference-images"))


def assert_float16_equal(ours: np.ndarray, reference: np.ndarray, what: str) -> None:
    """Equal up to float16 rounding of the reference (relative to the array's scale)."""
    ours, reference = np.asarray(ours, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    assert ours.shape == reference.shape, f"{what}: shape {ours.shape} != reference {reference.shape}"
    scale = max(np.abs(reference).max(), 1e-12)
    worst = np.abs(ours - reference).max() / scale
    assert worst <= 2e-3, f"{what}: differs from the authors' values by {worst:.2e} of its scale"


def our_pixels(meta, spec, paths) -> np.ndarray:
    """Our pixel store's rows for the fixture's images (`meta["images"]`: a subset, where a documented
    difference rules out the others, e.g. CLIP's centre crop of non-square images)."""
    chosen = [paths[index] for index in meta.get("images", range(len(paths)))]
    return np.stack([decode_image(path, meta["store_size"], spec.preprocess.store_resize) for path in chosen])


@pytest.mark.parametrize("name", FIXTURES)
def test_pixels_match_the_authors_within_one_grey_level(name, image_paths):
    from tests.fidelity import fixture_spec

    meta, reference, _ = read_fixture(name)
    pixels = our_pixels(meta, fixture_spec(meta), image_paths)
    assert pixels.shape == reference["pixels"].shape
    difference = np.abs(pixels.astype(np.int16) - reference["pixels"].astype(np.int16))
    assert difference.max() <= 1, f"{name}: pixels differ by up to {difference.max()} grey levels"


@pytest.mark.parametrize("name", FIXTURES)
def test_embeddings_match_the_authors(name, image_paths):
    meta, reference, folder = read_fixture(name)
    encoder = build_fixture_encoder(meta, folder)
    if meta.get("state_sha256"):
        assert state_sha256(encoder.model) == meta["state_sha256"], "random init changed: regenerate the fixture"
    with torch.no_grad():
        pixels = torch.from_numpy(our_pixels(meta, encoder.spec, image_paths))
        images = encoder.encode_image(encoder.preprocess(pixels))
        texts = encoder.encode_text(meta["prompts"]) if meta.get("text_outputs") else {}
    for key, array in meta["outputs"].items():
        assert_float16_equal(images[key].numpy(), reference[array], f"{name} image {key}")
    for key, array in meta.get("text_outputs", {}).items():
        assert_float16_equal(texts[key].numpy(), reference[array], f"{name} text {key}")
    if meta.get("text_sets"):
        sets = embed_prompt_sets(encoder, prompt_entries(meta, encoder.spec))
        for set_name, outputs in meta["text_sets"].items():
            for key, array in outputs.items():
                assert_float16_equal(sets[set_name][key], reference[array], f"{name} prompt set {set_name} {key}")


def prompt_entries(meta, spec) -> dict:
    """The fixture's prompts as every prompt set the family stores (`extractors.embed.promptset_encodings`)."""
    entries = [(class_name, prompt, "pos") for class_name, prompt in zip(meta["prompt_classes"], meta["prompts"])]
    return {set_name: entries for set_name in promptset_encodings(spec)}
