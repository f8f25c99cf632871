"""Random-weight models in the exact on-disk layout of the two real sentence-transformers models.

No weights can be downloaded in tests or CI, yet the production loading code
(`SentenceTransformer(name_or_path)`) must be exercised. These builders write folders that load
through that same call: `tiny` ones (~7 MB, for tests) and `full` ones with the real
architectures (same compute and memory as the published models, for benchmarks).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CLIP_PROJECTION_DIM = 512  # kept at the real size in every variant: the index dimension must match


@dataclass(frozen=True)
class ModelSize:
    hidden: int
    layers: int
    heads: int
    intermediate: int


TINY = ModelSize(hidden=32, layers=2, heads=2, intermediate=64)
SIZES = {"tiny": TINY, "full": None}  # None: the library's defaults, i.e. the published architecture


def _byte_vocab() -> dict[str, int]:
    """CLIP's byte-level alphabet, each character alone and as a word end, plus the special tokens."""
    # The GPT-2/CLIP byte table: printable Latin-1 bytes stand for themselves, the others are
    # shifted above 255 in byte order.
    printable = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)}
    chars, shifted = [], 0
    for byte in range(256):
        if byte in printable:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + shifted))
            shifted += 1
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(tokens)}


def build_clip(out: Path, size: str = "tiny", seed: int = 0) -> Path:
    """Write a `clip-ViT-B-32`-shaped sentence-transformers folder with random weights."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    torch.manual_seed(seed)
    vocab = _byte_vocab()
    dims = SIZES[size]
    text_cfg: dict = {
        "vocab_size": len(vocab),
        "bos_token_id": vocab["<|startoftext|>"],
        "eos_token_id": vocab["<|endoftext|>"],
        "pad_token_id": vocab["<|endoftext|>"],
    }
    vision_cfg: dict = {"image_size": 224, "patch_size": 32}
    if dims is not None:
        shape = {
            "hidden_size": dims.hidden,
            "num_hidden_layers": dims.layers,
            "num_attention_heads": dims.heads,
            "intermediate_size": dims.intermediate,
        }
        text_cfg |= shape
        vision_cfg |= shape
    else:
        text_cfg["vocab_size"] = 49408  # the published vocabulary size, for a faithful memory figure
    config = CLIPConfig(text_config=text_cfg, vision_config=vision_cfg, projection_dim=CLIP_PROJECTION_DIM)
    module_dir = out / "0_CLIPModel"
    module_dir.mkdir(parents=True, exist_ok=True)
    CLIPModel(config).eval().save_pretrained(module_dir)

    (module_dir / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (module_dir / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    tokenizer = CLIPTokenizer(str(module_dir / "vocab.json"), str(module_dir / "merges.txt"), model_max_length=77)
    tokenizer.save_pretrained(module_dir)
    CLIPImageProcessor(
        size={"shortest_edge": 224},
        crop_size={"height": 224, "width": 224},
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
    ).save_pretrained(module_dir)
    _write_modules(out, [("0", "0_CLIPModel", "sentence_transformers.models.CLIPModel")])
    return out


_WORDPIECE_WORDS = (
    "the a of and in to is photo church cathedral monument museum park bridge street river "
    "house theatre square tower kremlin statue lenin мост храм церковь собор памятник музей парк "
    "улица дом театр площадь башня кремль река фото набережная"
).split()


def build_multilingual(out: Path, size: str = "tiny", seed: int = 0) -> Path:
    """Write a `clip-ViT-B-32-multilingual-v1`-shaped folder: DistilBERT → mean pooling → Dense to 512."""
    import torch
    from transformers import DistilBertConfig, DistilBertModel, DistilBertTokenizer

    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    dims = SIZES[size]
    vocab = _wordpiece_vocab(full=dims is None)
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = DistilBertTokenizer(str(out / "vocab.txt"), do_lower_case=False, model_max_length=512)
    tokenizer.save_pretrained(out)

    config_kwargs: dict = {"vocab_size": len(vocab), "pad_token_id": 0}
    if dims is not None:
        config_kwargs |= {
            "dim": dims.hidden,
            "n_layers": dims.layers,
            "n_heads": dims.heads,
            "hidden_dim": dims.intermediate,
        }
    model = DistilBertModel(DistilBertConfig(**config_kwargs)).eval()
    model.save_pretrained(out)

    (out / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 128, "do_lower_case": False}), encoding="utf-8"
    )
    _write_pooling_and_dense(out, model.config.dim)
    _write_modules(
        out,
        [
            ("0", "", "sentence_transformers.models.Transformer"),
            ("1", "1_Pooling", "sentence_transformers.models.Pooling"),
            ("2", "2_Dense", "sentence_transformers.models.Dense"),
        ],
    )
    return out


def _wordpiece_vocab(full: bool) -> list[str]:
    """Latin and Cyrillic letters and digits as WordPiece pieces; the full model's size when `full`."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    alphabets = [("a", "z"), ("A", "Z"), ("а", "я"), ("А", "Я")]
    letters = [chr(c) for first, last in alphabets for c in range(ord(first), ord(last) + 1)] + ["ё", "Ё"]
    digits = list("0123456789.,-!?'\"")
    pieces = letters + digits + ["##" + ch for ch in letters + digits]
    vocab = list(dict.fromkeys(specials + pieces + _WORDPIECE_WORDS))
    if full:
        vocab += [f"[unused{i}]" for i in range(119547 - len(vocab))]  # the real multilingual vocab size
    return vocab


def _write_pooling_and_dense(out: Path, hidden: int) -> None:
    import torch
    from safetensors.torch import save_file

    pooling = out / "1_Pooling"
    pooling.mkdir(exist_ok=True)
    (pooling / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": hidden,
                "pooling_mode_cls_token": False,
                "pooling_mode_mean_tokens": True,
                "pooling_mode_max_tokens": False,
                "pooling_mode_mean_sqrt_len_tokens": False,
            }
        ),
        encoding="utf-8",
    )
    dense = out / "2_Dense"
    dense.mkdir(exist_ok=True)
    (dense / "config.json").write_text(
        json.dumps(
            {
                "in_features": hidden,
                "out_features": CLIP_PROJECTION_DIM,
                "bias": False,
                "activation_function": "torch.nn.modules.linear.Identity",
            }
        ),
        encoding="utf-8",
    )
    weight = torch.randn(CLIP_PROJECTION_DIM, hidden) / hidden**0.5
    save_file({"linear.weight": weight.contiguous()}, str(dense / "model.safetensors"))


def _write_modules(out: Path, modules: list[tuple[str, str, str]]) -> None:
    entries = [{"idx": int(idx), "name": idx, "path": path, "type": kind} for idx, path, kind in modules]
    (out / "modules.json").write_text(json.dumps(entries, indent=2), encoding="utf-8")


# Piper's phoneme alphabet, as its voices' `phoneme_id_map` holds it: the pad, BOS and EOS marks, a space,
# punctuation, and the IPA letters and marks espeak-ng writes.
PIPER_SYMBOLS = (
    "_^$ !'(),-.:;?"
    + "abcdefghijklmnopqrstuvwxyz"
    + "æçðøħŋœǀǁǂǃɐɑɒɓɔɕɖɗɘəɚɛɜɞɟɠɡɢɣɤɥɦɧɨɪɫɬɭɮɯɰɱɲɳɴɵɶɸɹɺɻɽɾʀʁʂʃʄʈʉʊʋʌʍʎʏʐʑʒʔʕʘʙʛʜʝʟʡʢʲˈˌːˑ˞βθχᵻⱱ"
    + "\u0303\u0329\u032a\u032f\u0361"
)
# Audio samples each phoneme id becomes in the stand-in (a real voice: ~1,000–3,000 at 22 kHz).
PIPER_SAMPLES_PER_ID = 512


def build_piper_voice(folder: Path, name: str, family: str, espeak_voice: str, seed: int = 0) -> Path:
    """A Piper voice stand-in: `<name>.onnx` with the real voices' inputs (input, input_lengths, scales) and
    output (audio [1, 1, samples]) — random weights, one waveform per phoneme id, scaled by length_scale —
    beside a real-format `<name>.onnx.json` and a model card naming its licence."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    symbols = list(dict.fromkeys(PIPER_SYMBOLS))
    rng = np.random.default_rng(seed)
    table = (rng.standard_normal((len(symbols), PIPER_SAMPLES_PER_ID)) * 0.1).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["waveforms", "input"], ["picked"]),  # [1, N, samples]
        helper.make_node("Gather", ["scales", "length_index"], ["length_scale"]),
        helper.make_node("Mul", ["picked", "length_scale"], ["scaled"]),
        helper.make_node("Reshape", ["scaled", "audio_shape"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "piper_stand_in",
        [
            helper.make_tensor_value_info("input", TensorProto.INT64, [1, "phonemes"]),
            helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
            helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, "samples"])],
        [
            numpy_helper.from_array(table, "waveforms"),
            numpy_helper.from_array(np.array(1, dtype=np.int64), "length_index"),
            numpy_helper.from_array(np.array([1, 1, -1], dtype=np.int64), "audio_shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, folder / f"{name}.onnx")
    config = {
        "audio": {"sample_rate": 22050, "quality": "medium"},
        "espeak": {"voice": espeak_voice},
        "inference": {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8},
        "phoneme_type": "espeak",
        "phoneme_id_map": {symbol: [number] for number, symbol in enumerate(symbols)},
        "num_symbols": len(symbols),
        "num_speakers": 1,
        "language": {"code": family, "family": family, "region": ""},
        "dataset": name,
    }
    (folder / f"{name}.onnx.json").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    (folder / f"{name}.MODEL_CARD").write_text(
        f"# Model card for {name}\n\n* Language: {family}\n* License: CC0 (random weights, for tests)\n",
        encoding="utf-8",
    )
    return folder / f"{name}.onnx"


# DINOv2 ViT-S/14 as `facebook/dinov2-small` has it (FACTS.md): the place tower's real architecture.
PLACE_SMALL = ModelSize(hidden=384, layers=12, heads=6, intermediate=4 * 384)
# BitImageProcessor, as the Hub repo's preprocessor_config.json: shortest edge 256, centre crop 224,
# ImageNet mean and std, bicubic.
PLACE_PROCESSOR = {
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.485, 0.456, 0.406],
    "image_processor_type": "BitImageProcessor",
    "image_std": [0.229, 0.224, 0.225],
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 256},
}


def build_place_model(out: Path, size: str = "tiny", seed: int = 0) -> Path:
    """A random-weight stand-in of the place tower (DINOv2) in the Hub repo's layout: `config.json`,
    `model.safetensors`, `preprocessor_config.json` — loadable by `transformers.AutoModel` as the real one."""
    import torch
    from transformers import Dinov2Config, Dinov2Model

    shape = TINY if size == "tiny" else PLACE_SMALL
    torch.manual_seed(seed)
    config = Dinov2Config(
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        mlp_ratio=shape.intermediate // shape.hidden,
        patch_size=14,
        image_size=518,  # pretrained at 518 px; transformers interpolates the positions for 224
    )
    out.mkdir(parents=True, exist_ok=True)
    Dinov2Model(config).eval().save_pretrained(out)
    (out / "preprocessor_config.json").write_text(json.dumps(PLACE_PROCESSOR, indent=2), encoding="utf-8")
    return out
