"""The place tower on torch (transformers): a landmark-strong photo embedding beside CLIP's (issue #34).

DINOv2 ViT-S/14 (`facebook/dinov2-small`, Apache-2.0, 21 M parameters) tells one building from another
far better than CLIP B/32 (FACTS.md: ROxford-Hard top-1 86 % vs 26 %). It embeds photos only — no
text, no categories: CLIP keeps those. The vector is the model's pooled CLS token (after its final
layer norm), L2-normalised, from the preprocessing its own `preprocessor_config.json` describes
(BitImageProcessor: shortest edge 256, centre crop 224, ImageNet mean and std), done in Pillow +
NumPy like CLIP's, so the ONNX path (core/encoders/place_onnx.py) needs neither torch nor transformers.

PLACE_MODEL is a folder in the Hub repo's layout or a Hub name: a name not in the Hugging Face cache
yet is downloaded there once (only PLACE_MODEL_FILES), as sentence-transformers does for CLIP; offline
or unreachable, that is one line naming the variable. Prep loads it here to build (and to export it);
the bot serves its ONNX export.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.encoders.base import ModelLoadError, PromptEncoder, cache_key_for, model_id, normalise_rows
from core.encoders.fingerprint import hub_cache, model_fingerprint, model_folder
from core.preprocess import ClipPreprocessing

# Photos per forward pass on the CPU.
PLACE_BATCH = 16
# What the tower loads from a DINOv2 repo (the Hub's also holds a pytorch_model.bin twin and a README).
PLACE_MODEL_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")


def place_model_folder(name_or_path: str) -> Path:
    """PLACE_MODEL's folder: a local one, its snapshot in the Hugging Face cache, or that snapshot
    downloaded now (once; completed, when a download was cut short). ModelLoadError, one line, when it is
    none of these."""
    folder = model_folder(name_or_path)
    local = Path(name_or_path).expanduser().is_dir()
    if folder is not None and (local or all((folder / name).is_file() for name in PLACE_MODEL_FILES)):
        return folder  # a cached snapshot short of a file (an interrupted download) is completed below
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") != 1:  # a path, not an owner/name
        raise ModelLoadError(f"PLACE_MODEL {name_or_path!r}: no such folder, and not in the Hugging Face cache")
    from huggingface_hub import constants, snapshot_download

    if constants.is_offline_mode():
        raise ModelLoadError(
            f"PLACE_MODEL {name_or_path!r} is not downloaded yet and HF_HUB_OFFLINE is set: run once with network "
            "access, point PLACE_MODEL at a folder, or set PLACE_MODEL=none"
        )
    try:  # HF_ENDPOINT read now, not at import: a mirror set in the environment is honoured
        found = snapshot_download(
            name_or_path,
            allow_patterns=list(PLACE_MODEL_FILES),
            cache_dir=hub_cache(),  # where model_folder finds it next time
            endpoint=os.environ.get("HF_ENDPOINT") or None,
        )
    except Exception as exc:  # offline, unreachable, no such repository: all end the same way
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ModelLoadError(
            f"PLACE_MODEL {name_or_path!r} is not downloaded yet and the Hub did not give it ({why[:160]}): "
            "run once with network access, point PLACE_MODEL at a folder, or set PLACE_MODEL=none"
        ) from None
    return Path(found)


class TorchPlaceEncoder:
    """The place tower (a DINOv2 model folder in the Hub's layout, or its Hub name) on torch."""

    prompts_unavailable = "the place tower embeds photos only: zero-shot prompts use CLIP"
    encode_prompts: PromptEncoder | None = None
    tower = "place"  # which runtime encoder a Ray actor loads to embed for it (prep.ray_engine)

    def __init__(self, name_or_path: str, device: str = "cpu") -> None:
        folder = place_model_folder(name_or_path)
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
