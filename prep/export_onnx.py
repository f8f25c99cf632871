"""`prep export-onnx`: IMAGE_MODEL's vision tower and the whole TEXT_MODEL pipeline to ONNX.

sentence-transformers' own ONNX backend cannot encode CLIP images (no get_image_features) and its
[onnx] extra conflicts with transformers 5, so both are exported by hand with torch.onnx, checked
for parity against sentence-transformers on a few inputs, and optionally quantised to int8 with
ONNX Runtime's dynamic quantisation. An int8 model that fails parity is not written.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from core import ClipPreprocessing, file_hash
from core.encoders import (
    TOKENIZER,
    ExportedFile,
    OnnxImageEncoder,
    OnnxManifest,
    OnnxTextEncoder,
    model_file,
    model_fingerprint,
    model_id,
)

if TYPE_CHECKING:
    from core import ProgressFn

log = logging.getLogger(__name__)

# Minimum cosine between sentence-transformers' and the ONNX embedding of the same input.
FP32_MIN_COSINE = 0.999
INT8_MIN_COSINE = 0.99
OPSET = 17
# Operators quantised per tower. Conv is left out (ONNX Runtime's ConvInteger took 7 of 63 ms): the
# patch embedding is exported as a MatMul instead (_PatchEmbeddingAsMatMul). The text tower's list
# includes Gather, so its 119k-token embedding table is stored in int8 (saves ~270 MB of RAM).
QUANTIZED_OPS = {"image": ["MatMul", "Gemm"], "text": ["MatMul", "Gemm", "Gather", "Attention"]}
PARITY_TEXTS = (
    "Храм на Крови",
    "white cathedral by the river",
    "Нижегородский кремль зимой",
    "a monument in a park",
    "памятник",
)


@dataclass(frozen=True)
class ParityResult:
    tower: str
    precision: str
    min_cosine: float
    required: float

    @property
    def passed(self) -> bool:
        return self.min_cosine >= self.required


def parity_images() -> list[Image.Image]:
    """A few varied inputs: gradients, noise, flat colours, portrait and landscape shapes."""
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))]
    ramp = np.linspace(0, 255, 300, dtype=np.float32)
    images.append(Image.fromarray(np.stack([np.tile(ramp, (400, 1))] * 3, -1).astype(np.uint8)))
    images.append(Image.new("RGB", (256, 256), (200, 40, 40)))
    blocks = np.kron(rng.integers(0, 256, (6, 8, 3)), np.ones((40, 40, 1))).astype(np.uint8)
    images.append(Image.fromarray(blocks))
    return images


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def export(
    image_model: str, text_model: str, out_dir: Path, *, int8: bool = False, progress: ProgressFn | None = None
) -> list[ParityResult]:
    """Export into a fresh folder, check parity, then replace `out_dir` with it.

    `progress("export", done, total)` is called after each step (loading, each tower's export, each
    quantisation, the parity check): a minute or more on a small server."""
    from sentence_transformers import SentenceTransformer

    total_steps = 6 if int8 else 4
    steps = iter(range(1, total_steps + 1))

    def step_done() -> None:
        if progress:
            progress("export", next(steps), total_steps)

    # The staging folder first: an unwritable MODEL_DIR is reported before minutes of model loading.
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".onnx-", dir=out_dir.parent))
    try:
        # Any: the modules inside are reached by index, which sentence-transformers types as Module | Tensor.
        clip: Any = SentenceTransformer(image_model, device="cpu")
        text: Any = SentenceTransformer(text_model, device="cpu")
        step_done()
        # Plain attention exports to MatMul/Softmax that ONNX Runtime quantises and runs well; the default
        # SDPA path exports to a slower graph (measured: int8 ViT-B/32 35 ms eager vs 52 ms SDPA, 2 threads).
        clip[0].model.set_attn_implementation("eager")
        text[0].model.set_attn_implementation("eager")
        _export_vision(clip, staging / model_file("image", "fp32"))
        step_done()
        _export_text(text, staging / model_file("text", "fp32"))
        step_done()
        text.tokenizer.backend_tokenizer.save(str(staging / TOKENIZER))
        preprocess = ClipPreprocessing.from_processor_config(clip[0].processor.image_processor.to_dict())
        manifest = OnnxManifest(
            image_model=model_id(image_model),
            text_model=model_id(text_model),
            dim=int(clip.get_embedding_dimension()),
            preprocess=preprocess.to_dict(),
            text_max_length=int(text.max_seq_length),
            image_fingerprint=model_fingerprint(image_model),
            text_fingerprint=model_fingerprint(text_model),
        )
        for tower in ("image", "text"):
            manifest = manifest.with_file(tower, "fp32", ExportedFile(model_file(tower, "fp32")))
        if int8:
            manifest = _quantise(staging, manifest, step_done)
        manifest.write(staging)
        results = _check_parity(staging, clip, text, manifest)
        step_done()
        _record_parity(staging, manifest, results).write(staging)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
        return results
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _export_vision(clip, path: Path) -> None:
    vision = _VisionTower(clip[0].model).eval()
    side = vision.vision.embeddings.image_size
    with torch.no_grad(), _patch_embedding_as_matmul(vision.vision.embeddings):
        torch.onnx.export(
            vision,
            (torch.zeros(1, 3, side, side),),
            str(path),
            input_names=["pixel_values"],
            output_names=["embedding"],
            dynamic_axes={"pixel_values": {0: "batch"}, "embedding": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


def _export_text(text, path: Path) -> None:
    with torch.no_grad():
        pipeline = _TextPipeline(text[0].model, text[2].linear).eval()
        ids = torch.ones(1, 8, dtype=torch.long)
        torch.onnx.export(
            pipeline,
            (ids, torch.ones_like(ids)),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "embedding": {0: "batch"},
            },
            opset_version=OPSET,
            dynamo=False,
        )


def _quantise(staging: Path, manifest: OnnxManifest, step_done) -> OnnxManifest:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser advises pre-processing on the root logger, every time
    try:
        for tower in ("image", "text"):
            quantize_dynamic(
                str(staging / model_file(tower, "fp32")),
                str(staging / model_file(tower, "int8")),
                weight_type=QuantType.QInt8,
                op_types_to_quantize=QUANTIZED_OPS[tower],
            )
            manifest = manifest.with_file(tower, "int8", ExportedFile(model_file(tower, "int8")))
            step_done()
    finally:
        root.setLevel(level)
    return manifest


def _record_parity(staging: Path, manifest: OnnxManifest, results: list[ParityResult]) -> OnnxManifest:
    """Parity into the manifest; an int8 file that failed it is dropped, an fp32 one fails the export."""
    for result in results:
        entry = manifest.files[result.tower][result.precision]
        if not result.passed:
            if result.precision == "fp32":
                raise RuntimeError(f"the fp32 {result.tower} export fails parity (cosine {result.min_cosine:.5f})")
            (staging / entry.file).unlink()
            manifest = manifest.with_file(result.tower, result.precision, None)
            continue
        digest = file_hash(staging / entry.file) if result.precision != "fp32" else ""
        recorded = ExportedFile(entry.file, round(result.min_cosine, 6), digest)
        manifest = manifest.with_file(result.tower, result.precision, recorded)
    return manifest


def _check_parity(folder: Path, clip, text, manifest: OnnxManifest) -> list[ParityResult]:
    files = manifest.files
    images = parity_images()
    reference_images = clip.encode(images, convert_to_numpy=True)
    reference_texts = text.encode(list(PARITY_TEXTS), convert_to_numpy=True)
    results = []
    for precision in ("fp32", "int8"):
        required = FP32_MIN_COSINE if precision == "fp32" else INT8_MIN_COSINE
        if precision in files["image"]:
            onnx = OnnxImageEncoder(folder, precision=precision).encode_images(images)
            results.append(ParityResult("image", precision, float(_cosines(onnx, reference_images).min()), required))
        if precision in files["text"]:
            onnx = OnnxTextEncoder(folder, precision=precision).encode_texts(list(PARITY_TEXTS))
            results.append(ParityResult("text", precision, float(_cosines(onnx, reference_texts).min()), required))
    return results


class _VisionTower(torch.nn.Module):
    """CLIP's get_image_features: vision transformer → pooled output → visual projection.

    The same arithmetic, except that the last encoder layer is computed for the class token only:
    nothing else of it reaches the pooled output, and its MLP and projections for the other 49
    tokens were ~7 % of the tower's work."""

    def __init__(self, clip) -> None:
        super().__init__()
        self.vision, self.projection = clip.vision_model, clip.visual_projection

    def forward(self, pixel_values):
        vision = self.vision
        hidden = vision.pre_layrnorm(vision.embeddings(pixel_values))
        *layers, last = vision.encoder.layers
        for layer in layers:
            hidden = layer(hidden, None)
        return self.projection(vision.post_layernorm(_class_token_of_layer(last, hidden)))


def _class_token_of_layer(layer, hidden):
    """A CLIP encoder layer's output for the class token alone (it attends to every token)."""
    attention = layer.self_attn
    batch, tokens, width = hidden.shape
    heads, head_dim = attention.num_heads, attention.head_dim
    normed = layer.layer_norm1(hidden)
    query = attention.q_proj(normed[:, :1]).reshape(batch, 1, heads, head_dim).transpose(1, 2)
    key = attention.k_proj(normed).reshape(batch, tokens, heads, head_dim).transpose(1, 2)
    value = attention.v_proj(normed).reshape(batch, tokens, heads, head_dim).transpose(1, 2)
    weights = torch.softmax(torch.matmul(query, key.transpose(-1, -2)) * attention.scale, dim=-1)
    attended = torch.matmul(weights, value).transpose(1, 2).reshape(batch, 1, width)
    cls = hidden[:, :1] + attention.out_proj(attended)
    cls = cls + layer.mlp(layer.layer_norm2(cls))
    return cls[:, 0]


@contextmanager
def _patch_embedding_as_matmul(embeddings):
    """Swap the patch-embedding Conv for its MatMul form while exporting; the parity reference keeps the Conv."""
    conv = embeddings.patch_embedding
    if not _PatchEmbeddingAsMatMul.applies_to(conv):
        yield
        return
    embeddings.patch_embedding = _PatchEmbeddingAsMatMul(conv, embeddings.image_size)
    try:
        yield
    finally:
        embeddings.patch_embedding = conv


class _PatchEmbeddingAsMatMul(torch.nn.Module):
    """CLIP's patch embedding (a Conv whose stride equals its kernel) as patchify + MatMul.

    The same arithmetic, but exported as a MatMul that dynamic quantisation turns into an int8 GEMM;
    ONNX Runtime's ConvInteger is slow on CPU and the fp32 Conv took ~5 % of the int8 tower's time."""

    def __init__(self, conv: torch.nn.Conv2d, image_size: int) -> None:
        super().__init__()
        self.patch = conv.kernel_size[0]
        self.grid = image_size // self.patch
        self.out_channels = conv.out_channels
        self.weight = torch.nn.Parameter(conv.weight.detach().reshape(conv.out_channels, -1).t().contiguous())

    @staticmethod
    def applies_to(conv: torch.nn.Module) -> bool:
        return (
            isinstance(conv, torch.nn.Conv2d)
            and conv.bias is None
            and conv.kernel_size == conv.stride
            and conv.kernel_size[0] == conv.kernel_size[1]
            and conv.padding == (0, 0)
            and conv.groups == 1
            and conv.dilation == (1, 1)
        )

    def forward(self, pixels):
        batch, channels = pixels.shape[0], pixels.shape[1]
        patches = pixels.reshape(batch, channels, self.grid, self.patch, self.grid, self.patch)
        patches = patches.permute(0, 2, 4, 1, 3, 5).reshape(batch, self.grid * self.grid, -1)
        # Back to the Conv's (batch, channels, grid, grid): CLIP flattens and transposes it again,
        # and ONNX Runtime cancels the transpose pair.
        out = patches @ self.weight
        return out.transpose(1, 2).reshape(batch, self.out_channels, self.grid, self.grid)


class _TextPipeline(torch.nn.Module):
    """The multilingual sentence-transformers pipeline: transformer → mean pooling → dense to 512."""

    def __init__(self, transformer, dense) -> None:
        super().__init__()
        self.transformer, self.dense = transformer, dense

    def forward(self, input_ids, attention_mask):
        hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return self.dense(pooled)
