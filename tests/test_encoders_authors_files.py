"""The authors' own files and rules: a Lightning checkpoint pickled by the real omegaconf 2.0 / Lightning 1.1,
the pixel store's per-encoder resize filter, GLoRIA's one-word prompts, MedCLIP's two prompt sets."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import cache.pixel_build as pixels_module
from benchmark.core.errors import BenchError
from benchmark.pipelines.extract import identity_of
from cache.pixels import RESIZE_FILTERS, PixelStore, decode_image, pipeline_settings
from cache_fakes import write_dataset
from extractors.lightning_checkpoint import unsafe_globals
from extractors.registry import REGISTRY, STORE_RESIZE_FILTERS, get_spec
from extractors.weights import read_checkpoint
from tests.fidelity import FIXTURES

GLORIA_CKPT = FIXTURES / "gloria" / "gloria-tiny.ckpt"


def test_the_gloria_fixture_is_a_real_omegaconf_2_0_lightning_1_1_pickle():
    names = set(unsafe_globals(GLORIA_CKPT))
    assert "collections.defaultdict" in names  # omegaconf 2.0's resolver_cache, in every config node
    assert {"omegaconf.dictconfig.DictConfig", "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint",
            "pytorch_lightning.callbacks.early_stopping.EarlyStopping"} <= names


def test_lightning_checkpoint_loads_safely_with_its_configs_inert():
    content = read_checkpoint(GLORIA_CKPT)
    assert content["pytorch-lightning_version"] == "1.1.8"
    assert "inert placeholder" in repr(content["hyper_parameters"])
    assert all(key.startswith("gloria.") for key in content["state_dict"])


def test_trusting_a_lightning_checkpoint_needs_neither_lightning_nor_omegaconf(monkeypatch):
    monkeypatch.setitem(sys.modules, "pytorch_lightning", None)  # importing it now fails
    monkeypatch.setitem(sys.modules, "omegaconf", None)
    content = read_checkpoint(GLORIA_CKPT, trust_checkpoint=True)
    assert isinstance(content["state_dict"]["gloria.img_encoder.global_embedder.weight"], torch.Tensor)


def test_a_pickle_with_other_code_is_still_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hook": np.ones}, path)  # a global outside config libraries
    with pytest.raises(BenchError, match="--trust-checkpoint"):
        read_checkpoint(path)


def test_registry_and_pixel_store_know_the_same_resize_filters():
    assert set(STORE_RESIZE_FILTERS) == set(RESIZE_FILTERS)
    assert get_spec("chexzero").preprocess.store_resize == "pil-lanczos-fit"
    assert get_spec("gloria").preprocess.store_resize == "cv2-area-fit"
    assert get_spec("clip-vit-b16").preprocess.store_resize == "pil-bicubic"


def test_encoders_with_different_filters_never_share_pixels_and_those_that_agree_do(tmp_path, monkeypatch):
    manifest = write_dataset(tmp_path / "data", 3)
    stores = {resize: PixelStore.open_or_build(manifest, tmp_path / "data", size=24, workdir=tmp_path / "w",
                                               resize=resize) for resize in RESIZE_FILTERS}
    assert len({store.path for store in stores.values()}) == len(RESIZE_FILTERS)
    monkeypatch.setattr(pixels_module, "decode_shard", lambda job: pytest.fail("decoded again"))
    again = PixelStore.open_or_build(manifest, tmp_path / "data", size=24, workdir=tmp_path / "w",
                                     resize="pil-lanczos-fit")
    assert again.path == stores["pil-lanczos-fit"].path
    path = tmp_path / "data" / manifest["path"][1]  # a non-square image: the filters differ
    assert not np.array_equal(decode_image(path, 24, "pil-bicubic"), decode_image(path, 24, "cv2-area-fit"))


def test_store_identity_names_the_filter():
    assert pipeline_settings(224)["resize"] == "PIL bicubic (antialiased)"
    by_filter = {spec.name: identity_of(spec, "w", "m", {}, "c" * 64)["preprocessing"]["pixels"]
                 for spec in REGISTRY.values()}
    assert {key: value for key, value in by_filter["chexzero"].items() if key != "content"} != pipeline_settings(320)
    assert by_filter["clip-vit-b16"] == by_filter["medclip-rn"]  # same size, same filter: same pixels


def test_gloria_drops_one_word_prompts_as_its_authors_cleaning_does():
    from extractors.gloria_text import clean_text
    from extractors.prompts import prompt_set

    assert clean_text("scarring") == ""
    assert clean_text("Scarring. 2. Small LEFT pleural effusion") == "small left pleural effusion"
    gloria = [p.text for p in prompt_set(get_spec("gloria"))]
    assert "scarring" not in gloria and gloria
    assert "scarring" in [p.text for p in prompt_set(get_spec("medclip-rn"))]  # MedCLIP keeps it


def test_medclip_stores_the_authors_class_batched_and_the_per_prompt_text_embeddings():
    from extractors import load_encoder
    from extractors.embed import embed_prompt_sets, prompt_sets

    encoder = load_encoder("tiny-medclip-rn")
    sets = prompt_sets(encoder.spec)
    assert set(sets) == {"default", "per-prompt"} and sets["default"] == sets["per-prompt"]
    entries = [("A", "trace atelectasis", "pos"), ("A", "mild linear atelectasis at the left lung base", "pos")]
    embedded = embed_prompt_sets(encoder, {"default": entries, "per-prompt": entries})
    alone = encoder.encode_text(["trace atelectasis"])["embedding"].numpy()
    np.testing.assert_allclose(embedded["per-prompt"]["embedding"][:1], alone, rtol=1e-4, atol=1e-5)
    assert not np.allclose(embedded["default"]["embedding"][0], alone[0], rtol=1e-3)  # padding averaged in
