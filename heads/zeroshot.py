"""Zero-shot classification from the encoder's own text tower: class prototypes, no training.

Each prompt style ensembles its prompts the way its authors did:

- "prototype" (CLIP, BiomedCLIP): L2-normalise each prompt embedding, average per class, re-normalise; the
  class score is the cosine of the image with that prototype.
- "mean" (MedCLIP's PromptClassifier(ensemble=True)): the mean over the class's prompts of the cosines.
- "max" (GLoRIA): the max over the class's prompts of the similarities (for GLoRIA, a `similarity` callable
  gives its global + local image-prompt scores, `extractors.families.gloria.gloria_similarity`).
- pairs (CheXzero; any prompt set with negative prompts): per class, softmax over (positive, negative)
  similarities, so each class gets its own probability.

Single-label tasks take the softmax over the class scores times `logit_scale`. Multi-label tasks without
negative prompts z-score each class's cosine with the mean and spread of that class on the validation
images (labels unused; GLoRIA z-scores over the batch) and take the sigmoid. `temperature="fit"` divides the
final logits by one scalar chosen to minimise val log-loss: the only use of val labels, recorded as such.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator

from heads.common import (
    CHUNK_ROWS,
    FEATURE_DTYPES,
    HeadRecord,
    loss_on_logits,
    probabilities_from_logits,
    target_tensor,
    to_float32,
)

ENSEMBLES = ("prototype", "mean", "max")
NEGATIVE = ("neg", "negative")
MAX_LOG_TEMPERATURE = 10.0


class ZeroShotHead(HeadRecord, BaseEstimator):
    """Class scores from text prompt embeddings.

    Parameters
    ----------
    text_embedding: [P, D] prompt embeddings (from the store's `text/<promptset>/embedding`).
    class_name: [P] the class each prompt describes.
    classes: the task's classes, in output order (each must have at least one positive prompt).
    polarity: [P] "pos"/"positive" or "neg"/"negative" (default: all positive).
    ensemble: "prototype", "mean" or "max" (see the module docstring).
    logit_scale: multiplies cosines before softmax (single-label) or the pair softmax.
    temperature: None, a number, or "fit" (scalar fitted on val log-loss).
    kind: "single" or "multi"; default: taken from the labels given to `fit`.
    similarity: optional callable(image_embedding [n, D] tensor, rows) -> [n, P] image-prompt similarities
        replacing the cosine (GLoRIA's global + local); `rows` are the values passed to `fit` /
        `predict_proba` as `rows=` (e.g. store row numbers, to read local features), chunk by chunk.
    chunk_rows: images scored at a time (smaller when `similarity` reads large local features).
    promptset: the prompt set's name, recorded with the hyperparameters (None: the store's default set).

    Learned attributes: `kind_`, `temperature_`, `center_`, `spread_` (multi-label z-scoring, or None),
    `uses_pairs_`.
    """

    def __init__(
        self,
        text_embedding,
        class_name,
        classes,
        *,
        polarity=None,
        ensemble: str = "prototype",
        logit_scale: float = 100.0,
        temperature=None,
        kind: str | None = None,
        similarity=None,
        chunk_rows: int = CHUNK_ROWS,
        promptset: str | None = None,
    ):
        self.text_embedding = text_embedding
        self.class_name = class_name
        self.classes = classes
        self.polarity = polarity
        self.ensemble = ensemble
        self.logit_scale = logit_scale
        self.temperature = temperature
        self.kind = kind
        self.similarity = similarity
        self.chunk_rows = chunk_rows
        self.promptset = promptset

    def recorded_params(self) -> dict:
        """What a run records as its hyperparameters (the prompt arrays themselves live in the store)."""
        return {
            "ensemble": self.ensemble,
            "logit_scale": self.logit_scale,
            "temperature": self.temperature,
            "prompts": int(len(self.class_name)),
            "custom_similarity": self.similarity is not None,
            **({"promptset": self.promptset} if self.promptset is not None else {}),
        }

    def fit(self, X=None, y=None, *, rows=None) -> "ZeroShotHead":
        """No training: prepare prompts; with validation images `X` (and labels `y`), the multi-label z-score
        statistics and the optional temperature."""
        X_val, y_val = (None, y) if X is None else (self._features(X, fitting=True), y)
        if self.ensemble not in ENSEMBLES:
            raise ValueError(f"ensemble must be one of {ENSEMBLES}, got {self.ensemble!r}")
        classes = list(self.classes)
        names = np.asarray(self.class_name).astype(str)
        polarity = np.asarray(self.polarity).astype(str) if self.polarity is not None else np.full(len(names), "pos")
        negative = np.isin(polarity, NEGATIVE)
        text = torch.nn.functional.normalize(to_float32(self.text_embedding), dim=1)
        self.positive_ = [np.flatnonzero((names == c) & ~negative) for c in classes]
        self.negative_ = [np.flatnonzero((names == c) & negative) for c in classes]
        missing = [c for c, rows in zip(classes, self.positive_) if rows.size == 0]
        if missing:
            raise ValueError(f"no positive prompt for class(es) {missing}; the prompt set covers {sorted(set(names))}")
        self.text_ = text
        self.kind_ = self.kind or ("single" if y_val is not None and np.asarray(y_val).ndim == 1 else "multi")
        self.uses_pairs_ = self.kind_ == "multi" and all(rows.size for rows in self.negative_)
        self.center_ = self.spread_ = None
        self.temperature_ = 1.0
        needs_val = self.kind_ == "multi" and not self.uses_pairs_
        if (needs_val or self.temperature == "fit") and X_val is None:
            raise ValueError("zero-shot needs validation images for multi-label z-scoring or a fitted temperature")
        if needs_val:
            scores = self._scores_in_chunks(X_val, rows, lambda X, r: self._class_scores(X, self.positive_, r))
            self.center_ = scores.mean(dim=0)
            self.spread_ = scores.std(dim=0).clamp_min(1e-6)
        if self.temperature == "fit":
            if y_val is None:
                raise ValueError("temperature='fit' needs validation labels")
            logits = self._scores_in_chunks(X_val, rows, self._logits)
            self.temperature_ = _fit_temperature(logits, target_tensor(y_val))
        elif self.temperature is not None:
            self.temperature_ = float(self.temperature)
        return self

    def _features(self, X, *, fitting: bool) -> np.ndarray:
        """X checked like scikit-learn checks it; its width must be the prompt embeddings' width."""
        from sklearn.utils.validation import check_array, check_is_fitted

        if not fitting:
            check_is_fitted(self)
        X = check_array(X, dtype=list(FEATURE_DTYPES), ensure_min_samples=1)
        dim = np.shape(self.text_embedding)[1]
        if X.shape[1] != dim:
            raise ValueError(f"X has {X.shape[1]} features, but the prompt embeddings have {dim}: image and text "
                             "embeddings must come from the same encoder")
        self.n_features_in_ = dim
        return X

    def _scores_in_chunks(self, X, rows, score) -> torch.Tensor:
        rows = np.arange(len(X)) if rows is None else np.asarray(rows)
        return torch.cat(
            [score(X[s : s + self.chunk_rows], rows[s : s + self.chunk_rows]) for s in range(0, len(X), self.chunk_rows)]
        )

    def _class_scores(self, X, groups, rows: np.ndarray) -> torch.Tensor:
        """[n, classes] ensembled similarity of each image with each class's prompts in `groups`."""
        image = torch.nn.functional.normalize(to_float32(X), dim=1)
        if self.similarity is None:
            similarity = image @ self.text_.T
        else:
            similarity = torch.as_tensor(self.similarity(to_float32(X), rows), dtype=torch.float32)
        columns = []
        for prompt_rows in groups:
            index = torch.from_numpy(prompt_rows)
            if self.ensemble == "prototype":
                if self.similarity is None:
                    prototype = torch.nn.functional.normalize(self.text_[index].mean(dim=0), dim=0)
                    columns.append(image @ prototype)
                else:
                    columns.append(similarity[:, index].mean(dim=1))
            elif self.ensemble == "mean":
                columns.append(similarity[:, index].mean(dim=1))
            else:
                columns.append(similarity[:, index].max(dim=1).values)
        return torch.stack(columns, dim=1)

    def _logits(self, X, rows: np.ndarray) -> torch.Tensor:
        positive = self._class_scores(X, self.positive_, rows)
        if self.kind_ == "single":
            return self.logit_scale * positive
        if self.uses_pairs_:
            negative = self._class_scores(X, self.negative_, rows)
            return self.logit_scale * (positive - negative)  # softmax over the pair == sigmoid of the difference
        return (positive - self.center_) / self.spread_

    def chosen_on_val(self) -> dict:
        chosen = {"pairs": self.uses_pairs_}
        if self.temperature == "fit":
            chosen["temperature"] = self.temperature_
            chosen["temperature_fitted_on"] = "val"
        return chosen

    def decision_function(self, X, *, rows=None) -> np.ndarray:
        """Logits before softmax/sigmoid, already divided by the temperature."""
        X = self._features(X, fitting=False)
        return (self._scores_in_chunks(X, rows, self._logits) / self.temperature_).numpy()

    def predict_proba(self, X, *, rows=None) -> np.ndarray:
        logits = torch.from_numpy(self.decision_function(X, rows=rows))
        return probabilities_from_logits(logits, self.kind_).numpy()


def _fit_temperature(logits: torch.Tensor, target: torch.Tensor) -> float:
    """The scalar T > 0 minimising log-loss of logits / T (optimised in log space by L-BFGS)."""
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = loss_on_logits(logits / log_t.exp(), target)
        loss.backward()
        return loss

    optimizer.step(closure)
    # Uninformative scores (e.g. random weights) push T towards infinity; keep it finite.
    return float(log_t.detach().clamp(-MAX_LOG_TEMPERATURE, MAX_LOG_TEMPERATURE).exp())
