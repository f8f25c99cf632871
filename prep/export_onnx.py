"""`prep export-onnx`: IMAGE_MODEL's vision tower and the whole TEXT_MODEL pipeline to ONNX.

sentence-transformers' own ONNX backend cannot encode CLIP images (no get_image_features) and its
[onnx] extra conflicts with transformers 5, so both are exported by hand with torch.onnx, checked
for parity against sentence-transformers on a few inputs, and optionally quantised to int8 with
ONNX Runtime's dynamic quantisation. An int8 model that fails parity is not written.

The int8 files are meant to be right on every x86 CPU they may run on, not only on the one that
exports them: weights are quantised per output channel with 7 bits (`reduce_range`), which ONNX
Runtime's quantisation guide names as the remedy for the u8s8 saturation of CPUs without VNNI
(most cheap VPSs), and the export checks every integer GEMM weight is within that range. Measured on
the full-size stand-in models (cosine to sentence-transformers; host VNNI / emulated AVX2):
image 0.99983 / 0.99983 per-tensor 8-bit vs 0.99974 / 0.99974 per-channel 7-bit; text 0.99943 /
0.99947 vs 0.99926 / 0.99926; the same speed (28 ms image, one thread). A saturating GEMM on the
emulated AVX2 CPU gave 4,110 for an exact 8,001 with 8-bit weights, the exact value with 7-bit ones.
If the whole text tower still fails parity, only its word-embedding table (most of its bytes) is
stored in int8, which involves no integer GEMM (~250 MB instead of 540 MB in fp32).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from core import ClipPreprocessing, file_hash
from core.encoders import (
    FP32_MIN_COSINE,
    INT8_MIN_COSINE,
    PARITY_TEXTS,
    SATURATION_FREE_WEIGHT,
    TOKENIZER,
    ExportedFile,
    OnnxImageEncoder,
    OnnxManifest,
    OnnxTextEncoder,
    Reference,
    min_cosine,
    model_file,
    model_fingerprint,
    model_id,
    parity_images,
    write_reference,
)

if TYPE_CHECKING:
    from core import ProgressFn

log = logging.getLogger(__name__)

OPSET = 17


@dataclass(frozen=True)
class Int8Form:
    """One way to quantise a tower: the operator types stored in int8, tried in order until parity holds."""

    name: str
    ops: tuple[str, ...]


# Conv is left out (ONNX Runtime's ConvInteger took 7 of 63 ms): the patch embedding is exported as
# a MatMul instead (_PatchEmbeddingAsMatMul). The text tower's full form includes Gather, so its
# 119k-token embedding table is stored in int8 (saves ~270 MB of RAM); its fallback quantises only
# that table, a lookup with no integer arithmetic, so no CPU can make it saturate.
INT8_FORMS = {
    "image": (Int8Form("gemm", ("MatMul", "Gemm")),),
    "text": (Int8Form("full", ("MatMul", "Gemm", "Gather", "Attention")), Int8Form("embeddings", ("Gather",))),
}
INTEGER_GEMMS = ("MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat")


@dataclass(frozen=True)
class ParityResult:
    tower: str
    precision: str
    min_cosine: float
    required: float
    form: str = ""  # the Int8Form tried ("" for fp32)
    portable: bool = False  # int8 whose integer GEMM weights cannot saturate on AVX2 (or has none)

    @property
    def passed(self) -> bool:
        return self.min_cosine >= self.required


def export(
    image_model: str, text_model: str, out_dir: Path, *, int8: bool = False, progress: ProgressFn | None = None
) -> list[ParityResult]:
    """Export into a fresh folder, check parity, then replace `out_dir` with it.

    `progress("export", done, total)` is called after each step (loading, each tower's export, the
    fp32 parity check, each tower's quantisation): a minute or more on a small server."""
    from sentence_transformers import SentenceTransformer

    total_steps = 6 if int8 else 4
    steps = iter(range(1, total_steps + 1))

    def step_done() -> None:
        if progress:
            progress("export", next(steps), total_steps)

    # The staging folder first: an unwritable MODEL_DIR is reported before minutes of model loading.
    with _staged(out_dir, ".onnx-") as staging:
        # Any: the modules inside are reached by index, which sentence-transformers types as Module | Tensor.
        clip: Any = SentenceTransformer(image_model, device="cpu")
        text: Any = SentenceTransformer(text_model, device="cpu")
        reference = _reference(clip, text)
        step_done()
        # Plain attention exports to MatMul/Softmax that ONNX Runtime quantises and runs well; the default
        # SDPA path exports to a slower graph (measured: int8 ViT-B/32 35 ms eager vs 52 ms SDPA, 2 threads).
        clip[0].model.set_attn_implementation("eager")
        text[0].model.set_attn_implementation("eager")
        _export_vision(clip, staging / model_file("image", "fp32"))
        step_done()
        _export_text(text, staging / model_file("text", "fp32"))
        text.tokenizer.backend_tokenizer.save(str(staging / TOKENIZER))
        step_done()
        manifest = _manifest(image_model, text_model, clip, text)
        for tower in ("image", "text"):
            manifest = manifest.with_file(tower, "fp32", ExportedFile(model_file(tower, "fp32")))
        manifest.write(staging)
        results = [_parity(staging, tower, "fp32", reference) for tower in ("image", "text")]
        for result in results:
            if not result.passed:
                raise RuntimeError(f"the fp32 {result.tower} export fails parity (cosine {result.min_cosine:.5f})")
            measured = ExportedFile(model_file(result.tower, "fp32"), round(result.min_cosine, 6))
            manifest = manifest.with_file(result.tower, "fp32", measured)
        step_done()
        if int8:
            for tower in ("image", "text"):
                exported, tried = _quantise(staging, manifest, tower, reference)
                results += tried
                manifest = manifest.with_file(tower, "int8", exported)
                step_done()
        manifest.write(staging)
        write_reference(staging, reference)
    return results


@contextmanager
def _staged(out_dir: Path, prefix: str) -> Iterator[Path]:
    """A fresh folder beside `out_dir` (made first: an unwritable MODEL_DIR is said before minutes of model
    loading) that replaces `out_dir` when the block ends well, and is removed when it does not."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=out_dir.parent))
    try:
        yield staging
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _manifest(image_model: str, text_model: str, clip, text) -> OnnxManifest:
    preprocess = ClipPreprocessing.from_processor_config(clip[0].processor.image_processor.to_dict())
    return OnnxManifest(
        image_model=model_id(image_model),
        text_model=model_id(text_model),
        dim=int(clip.get_embedding_dimension()),
        preprocess=preprocess.to_dict(),
        text_max_length=int(text.max_seq_length),
        image_fingerprint=model_fingerprint(image_model),
        text_fingerprint=model_fingerprint(text_model),
    )


def _reference(clip, text) -> Reference:
    images = parity_images()
    return Reference(
        images=tuple(np.asarray(image) for image in images),
        texts=PARITY_TEXTS,
        image_vectors=clip.encode(images, convert_to_numpy=True),
        text_vectors=text.encode(list(PARITY_TEXTS), convert_to_numpy=True),
    )


def _parity(folder: Path, tower: str, precision: str, reference: Reference, form: str = "") -> ParityResult:
    """The staging folder's `tower` at `precision`, run by the serving encoders, against the reference."""
    if tower == "image":
        vectors = OnnxImageEncoder(folder, precision=precision).encode_images(reference.pil_images())
        got = min_cosine(vectors, reference.image_vectors)
    else:
        got = min_cosine(
            OnnxTextEncoder(folder, precision=precision).encode_texts(list(reference.texts)), reference.text_vectors
        )
    required = FP32_MIN_COSINE if precision == "fp32" else INT8_MIN_COSINE
    return ParityResult(tower, precision, got, required, form)


def _quantise(
    staging: Path, manifest: OnnxManifest, tower: str, reference: Reference
) -> tuple[ExportedFile | None, list[ParityResult]]:
    """The first Int8Form of `tower` that keeps parity, written as its int8 file (None if none does)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = staging / model_file(tower, "int8")
    tried = []
    for form in INT8_FORMS[tower]:
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantiser advises pre-processing on the root logger, every time
        try:
            # Per-channel 7-bit weights: see the module's docstring.
            quantize_dynamic(
                str(staging / model_file(tower, "fp32")),
                str(target),
                weight_type=QuantType.QInt8,
                op_types_to_quantize=list(form.ops),
                per_channel=True,
                reduce_range=True,
            )
        finally:
            root.setLevel(level)
        manifest.with_file(tower, "int8", ExportedFile(target.name)).write(staging)
        result = _parity(staging, tower, "int8", reference, form.name)
        if result.passed:
            result = replace(result, portable=integer_gemm_weights_fit(target))
            tried.append(result)
            cosine = round(result.min_cosine, 6)
            exported = ExportedFile(target.name, cosine, file_hash(target), form.ops, result.portable)
            return exported, tried
        tried.append(result)
        log.warning("int8 %s (%s) fails parity: cosine %.5f", tower, form.name, result.min_cosine)
    target.unlink(missing_ok=True)
    return None, tried


def integer_gemm_weights_fit(path: Path) -> bool:
    """Whether every int8 weight that feeds an integer GEMM is within ±SATURATION_FREE_WEIGHT, so
    that CPUs adding u8×s8 pairs in 16 bits (AVX2 without VNNI) compute exactly what VNNI does."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path), load_external_data=False)
    weights = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type not in INTEGER_GEMMS or len(node.input) < 2 or node.input[1] not in weights:
            continue
        values = numpy_helper.to_array(weights[node.input[1]])
        if values.dtype == np.int8 and int(np.abs(values.astype(np.int16)).max(initial=0)) > SATURATION_FREE_WEIGHT:
            return False
    return True


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


def export_place(place_model: str, out_dir: Path, *, int8: bool = False) -> list[ParityResult]:
    """The place tower (PLACE_MODEL, issue #34) → `out_dir` (MODEL_DIR/place): fp32, and int8 when asked,
    each checked against the torch tower on the parity photos; an int8 file that fails is not written."""
    from core.encoders import PlaceManifest, TorchPlaceEncoder, place_model_file

    source = TorchPlaceEncoder(place_model)
    reference_images = parity_images()
    reference = source.encode_images(reference_images)
    with _staged(out_dir, ".place-") as staging:
        model = source._model
        model.set_attn_implementation("eager")  # plain MatMul/Softmax: what the int8 quantiser handles well
        with torch.no_grad():
            torch.onnx.export(
                _PooledTower(model).eval(),
                (torch.zeros(1, 3, source.preprocess.crop_height, source.preprocess.crop_width),),
                str(staging / place_model_file("fp32")),
                input_names=["pixel_values"],
                output_names=["embedding"],
                dynamic_axes={"pixel_values": {0: "batch"}, "embedding": {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
        manifest = PlaceManifest(source.model_name, source.fingerprint, source.dim, source.preprocess.to_dict())
        manifest = manifest.with_file("fp32", ExportedFile(place_model_file("fp32")))
        manifest.write(staging)
        fp32 = _place_parity(staging, "fp32", reference_images, reference)
        if not fp32.passed:
            raise RuntimeError(f"the fp32 place tower export fails parity (cosine {fp32.min_cosine:.5f})")
        manifest = manifest.with_file("fp32", ExportedFile(place_model_file("fp32"), round(fp32.min_cosine, 6)))
        results = [fp32]
        if int8:
            exported, result = _quantise_place(staging, manifest, reference_images, reference)
            manifest = manifest.with_file("int8", exported)
            results.append(result)
        manifest.write(staging)
    return results


def _place_parity(folder: Path, precision: str, images: list, reference: np.ndarray) -> ParityResult:
    from core.encoders import OnnxPlaceEncoder

    got = min_cosine(OnnxPlaceEncoder(folder, precision=precision).encode_images(images), reference)
    required = FP32_MIN_COSINE if precision == "fp32" else INT8_MIN_COSINE
    return ParityResult("place", precision, got, required, "gemm" if precision == "int8" else "")


def _quantise_place(
    folder: Path, manifest: Any, images: list, reference: np.ndarray
) -> tuple[ExportedFile | None, ParityResult]:
    """MatMul/Gemm in int8 with per-channel 7-bit weights (as CLIP's image tower: see the module docstring)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from core.encoders import place_model_file

    target = folder / place_model_file("int8")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            str(folder / place_model_file("fp32")),
            str(target),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gemm"],
            per_channel=True,
            reduce_range=True,
        )
    finally:
        root.setLevel(level)
    manifest.with_file("int8", ExportedFile(target.name)).write(folder)
    result = _place_parity(folder, "int8", images, reference)
    if not result.passed:
        log.warning("int8 place tower fails parity: cosine %.5f", result.min_cosine)
        target.unlink(missing_ok=True)
        return None, result
    result = replace(result, portable=integer_gemm_weights_fit(target))
    return ExportedFile(
        target.name, round(result.min_cosine, 6), file_hash(target), ("MatMul", "Gemm"), result.portable
    ), result


class _PooledTower(torch.nn.Module):
    """DINOv2 → its pooled CLS token (after the final layer norm): the place tower's vector."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model(pixel_values=pixel_values).pooler_output
