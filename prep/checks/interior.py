"""Interiors (photos taken inside buildings), by CLIP zero-shot classification. Opt-in.

The photo's embedding is compared with the mean text embedding of an indoor and of an outdoor
prompt ensemble, through IMAGE_MODEL's own text tower; score = softmax probability of "indoor"
at CLIP's logit scale (100). Flagged above INDOOR_MIN_PROBABILITY. Museums and churches
legitimately have interior photos, so this check only runs when asked for with --checks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from prep.checks.base import Collection, CollectionCheck, Finding

INDOOR_MIN_PROBABILITY = 0.9
LOGIT_SCALE = 100.0
INDOOR_PROMPTS = (
    "a photo of the interior of a building",
    "a photo of a room inside a building",
    "an indoor photo of a church interior with an iconostasis",
    "a photo of a museum hall with exhibits",
    "a photo of a theatre auditorium inside",
    "a photo of a corridor inside a building",
)
OUTDOOR_PROMPTS = (
    "a photo of a building seen from the outside",
    "a photo of a landmark outdoors",
    "a photo of a church exterior under the sky",
    "a photo of a monument on a city street",
    "a street view of historic architecture",
    "a photo of a park or an embankment",
)


def prompt_vectors(encode_texts, prompts: Sequence[str]) -> np.ndarray:
    vectors = np.asarray(encode_texts(list(prompts)), dtype=np.float32)
    mean = vectors.mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def indoor_probability(image_vectors: np.ndarray, indoor: np.ndarray, outdoor: np.ndarray) -> np.ndarray:
    logits = LOGIT_SCALE * np.stack([image_vectors @ indoor, image_vectors @ outdoor], axis=1)
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights[:, 0] / weights.sum(axis=1)


class InteriorCheck(CollectionCheck):
    name = reason = "interior"
    needs = "embeddings"
    opt_in = True

    def review(self, collection: Collection) -> list[Finding]:
        embedded, matrix = collection.embedded()
        if not embedded:
            return []
        if collection.encode_prompts is None:
            collection.notes.append(f"interior check skipped: {collection.prompts_unavailable}")
            return []
        indoor = prompt_vectors(collection.encode_prompts, INDOOR_PROMPTS)
        outdoor = prompt_vectors(collection.encode_prompts, OUTDOOR_PROMPTS)
        probabilities = indoor_probability(matrix, indoor, outdoor)
        return [
            Finding(photo.path, self.reason, float(probability), INDOOR_MIN_PROBABILITY)
            for photo, probability in zip(embedded, probabilities, strict=True)
            if probability > INDOOR_MIN_PROBABILITY
        ]


CHECK = InteriorCheck()
