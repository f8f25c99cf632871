"""The place tower on torch (transformers): a landmark-strong photo embedding beside CLIP's (issue #34).

DINOv2 ViT-S/14 (`facebook/dinov2-small`, Apache-2.0, 21 M parameters) tells one building from another
far better than CLIP B/32 (FACTS.md: ROxford-Hard top-1 86 % vs 26 %). It embeds photos only — no
text, no categories: CLIP keeps those. The vector is the model's pooled CLS token (after its final
layer norm), L2-normalised, from the preprocessing its own `preprocessor_config.json` describes
(BitImageProcessor: shortest edge 256, centre crop 224, ImageNet mean and std), done in Pillow +
NumPy like CLIP's, so the ONNX path will need neither torch nor transformers.

This is the tower's first room: loading and embedding on torch, checked against transformers' own
processor. Building a second index with it, fusing its vote with CLIP's and the ONNX export are the
next steps of issue #34; nothing serves it yet.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from core.encoders.base import ModelLoadError, PromptEncoder, cache_key_for, model_id, normalise_rows
from core.encoders.fingerprint import model_fingerprint, model_folder
from core.preprocess import ClipPreprocessing

# Photos per forward pass on the CPU.
PLACE_BATCH = 16


class TorchPlaceEncoder:
    """The place tower (a DINOv2 model folder in the Hub's layout, or its Hub name) on torch."""

    prompts_unavailable = "the place tower embeds photos only: zero-shot prompts use CLIP"
    encode_prompts: PromptEncoder | None = None
    tower = "place"  # which runtime encoder a Ray actor loads to embed for it (prep.ray_engine)

    def __init__(self, name_or_path: str, device: str = "cpu") -> None:
        folder = model_folder(name_or_path)
        if folder is None:
            raise ModelLoadError(f"PLACE_MODEL {name_or_path!r}: no such folder, and not in the Hugging Face cache")
        try:
            import torch
            from transformers import AutoModel

            self._torch: Any = torch
            self._model: Any = AutoModel.from_pretrained(folder).to(device).eval()
            processor = json.loads((folder / "preprocessor_config.json").read_text(encoding="utf-8"))
        except ImportError as exc:
            raise ModelLoadError(f"the place tower on torch needs the prep extra ({exc.name} is missing)") from None
        except (OSError, ValueError) as exc:  # transformers' own errors derive from these
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            raise ModelLoadError(f"cannot load PLACE_MODEL {name_or_path!r}: {first}") from None
        self.device = device
        self.preprocess = ClipPreprocessing.from_processor_config(processor)
        self.model_name = model_id(name_or_path)
        self.fingerprint = model_fingerprint(name_or_path)
        self.cache_key = cache_key_for(self.model_name, self.fingerprint)
        self.dim = int(self._model.config.hidden_size)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        for start in range(0, len(images), PLACE_BATCH):
            pixels = self._torch.from_numpy(self.preprocess(list(images[start : start + PLACE_BATCH])))
            with self._torch.inference_mode():
                pooled = self._model(pixel_values=pixels.to(self.device)).pooler_output
            out.append(pooled.float().cpu().numpy())
        return normalise_rows(np.concatenate(out))
