"""An ensemble's embedding stores read side by side: one store per member checkpoint of one encoder, one manifest.

Each member keeps its own store (`cache.embeddings`), whose identity holds that member's weights digest, so a
member is cached, rebuilt or reused on its own. `StoreEnsemble` presents the members as one store to the heads
pipeline: its embedding is the members' embeddings side by side (`heads.member_average` splits them again), its
weights digest and identity are digests of the members' (in sorted order: the order members were named in does
not matter), and it lists the members for the run record.

    ensemble = open_store(workdir, "chexzero", manifest_digest, members=(digest_a, digest_b))
    ensemble.widths                   # (512, 512)
    ensemble.image_embeddings()       # [N, 1024]
"""

from __future__ import annotations

import numpy as np

from benchmark.core.errors import BenchError
from benchmark.core.identity import digest
from benchmark.core.schema import RANDOM_INIT
from cache.embeddings import EmbeddingStore, find_stores


def ensemble_digest(weights_digests) -> str:
    """The weights digest of an ensemble: a digest of its members' weights digests, whatever their order."""
    return digest({"ensemble": sorted(weights_digests)})


class StoreEnsemble:
    """The stores of an ensemble's members (two or more), read as one store (see the module docstring)."""

    def __init__(self, stores: list[EmbeddingStore]):
        stores = sorted(stores, key=lambda store: store.attrs.get("weights_digest", ""))
        if len(stores) < 2:
            raise BenchError("an ensemble needs two or more member stores")
        _check_members(stores)
        first = stores[0]
        self.members = stores
        self.model, self.manifest_digest, self.versions = first.model, first.manifest_digest, first.versions
        self.path = first.path.parent
        self.image_ids = first.image_ids
        self.excluded = np.logical_or.reduce([store.excluded for store in stores])
        self.promptsets = tuple(sorted(set.intersection(*(set(store.promptsets) for store in stores))))
        self.has_local = False
        self.widths = tuple(store.embed_dim for store in stores)
        self.embed_dim = sum(self.widths)
        self.weights_digest = ensemble_digest(store.attrs["weights_digest"] for store in stores)
        self.identity_digest = digest({"ensemble": [store.identity_digest for store in stores]})
        random = all(store.weights_tag == RANDOM_INIT for store in stores)
        self.weights_tag = RANDOM_INIT if random else f"ensemble of {len(stores)}"
        self.attrs = {"model": self.model, "weights_tag": self.weights_tag, "weights_digest": self.weights_digest,
                      "identity_digest": self.identity_digest, "manifest_digest": self.manifest_digest}

    def __len__(self) -> int:
        return len(self.image_ids)

    def __repr__(self) -> str:
        return f"StoreEnsemble(model={self.model!r}, members={len(self.members)}, rows={len(self)})"

    def image_embeddings(self, indices=None) -> np.ndarray:
        """The members' image embeddings side by side, float16 [N, sum of widths] (or the rows at `indices`)."""
        return np.hstack([store.image_embeddings(indices) for store in self.members])

    def member_records(self) -> list[dict]:
        """What a run records of each member (weights tag and digest, store identity), in the ensemble's order."""
        return [{"weights_tag": store.weights_tag, "weights_digest": store.attrs["weights_digest"],
                 "store_identity": store.identity_digest} for store in self.members]


def _check_members(stores: list[EmbeddingStore]) -> None:
    first = stores[0]
    for store in stores[1:]:
        if store.model != first.model or store.manifest_digest != first.manifest_digest:
            raise BenchError(f"{store.path} and {first.path} are not stores of one encoder over one dataset; an "
                             "ensemble's members are checkpoints of one encoder")
        if not np.array_equal(store.image_ids, first.image_ids):
            raise BenchError(f"{store.path} and {first.path} hold different images; run `bench extract` again with "
                             "every member's --weights")
    weights = [store.attrs.get("weights_digest") for store in stores]
    if len(set(weights)) < len(weights):
        raise BenchError(f"two members of the ensemble of {first.model!r} are the same checkpoint; name each once")
    local = [store.path.name for store in stores if store.has_local]
    if local:
        raise BenchError(f"{first.model!r} stores local image features ({local[0]}): its local similarity "
                         "(GLoRIA) is not ensembled; use one checkpoint")


def open_store(workdir, model: str, manifest_digest: str, *, weights_digest: str | None = None, members=(),
               choose=None):
    """The store of `model` over the manifest: one checkpoint's (`weights_digest`; None: the only one there), or
    the `StoreEnsemble` of `members` (weights digests, two or more). `choose(paths)` opens one of a checkpoint's
    complete stores (newest first; default: the newest)."""
    choose = choose or (lambda paths: EmbeddingStore.open(paths[0]))
    members = tuple(members)
    if len(members) < 2:
        weights_digest = members[0] if members else weights_digest
        return choose(find_stores(workdir, model, manifest_digest, weights_digest=weights_digest))
    stores = []
    for index, member in enumerate(members, 1):
        try:
            stores.append(choose(find_stores(workdir, model, manifest_digest, weights_digest=member)))
        except BenchError as error:
            raise BenchError(f"ensemble member {index} of {len(members)} (weights {member[:16]}): {error} Extract "
                             "every member: `bench extract --model M --weights FILE [FILE ...]`.") from None
    return StoreEnsemble(stores)

