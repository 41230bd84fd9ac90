"""Unit tests of SegVol's parts on tiny configurations (fast; no fixture needed)."""

from __future__ import annotations

import math

import pytest
import torch
from inference.segvol.segvol_fixtures import build_tiny_segvol as tiny_segvol

from voxelprompt.errors import CheckpointError, PromptError
from voxelprompt.families.segvol.network import (
    SEGVOL_REGISTRY,
    PromptEncoder,
    SegVol,
    SegVolTokenizer,
    TwoWayTransformer,
    build_segvol,
    load_state_dict_strict,
    normalize_state_dict,
    read_state_dict,
)
from voxelprompt.families.segvol.network.prompt_encoder import PositionEmbeddingRandom3D

IMG = (8, 32, 32)
PATCH = (4, 16, 16)
GRID = (2, 2, 2)
DIM = 32


# --- tokenizer -------------------------------------------------------------------------------


def test_tokenizer_template_and_padding() -> None:
    tok = SegVolTokenizer()
    ids, mask = tok(["liver", "left kidney"])
    assert ids.shape == mask.shape == (2, 13)
    assert ids[0].tolist() == [49406, 320, 11639, 704, 7690, 999, 22399, 539, 320, 12639, 269, 49407, 49407]
    assert mask[0].tolist() == [1] * 12 + [0]
    assert ids[1, -1] == 49407 and bool(mask[1].all())


@pytest.mark.parametrize("bad", ["liver", [], [""], ["liver", 3]])
def test_tokenizer_rejects_bad_names(bad) -> None:
    with pytest.raises(PromptError):
        SegVolTokenizer()(bad)


def test_tokenizer_rejects_overlong_text() -> None:
    with pytest.raises(PromptError, match="too long"):
        SegVolTokenizer()(["liver " * 80])


def test_tokenizer_template_needs_one_slot() -> None:
    with pytest.raises(ValueError, match="template"):
        SegVolTokenizer(template="no slot")


# --- prompt encoder --------------------------------------------------------------------------


def test_point_encoding_keeps_reference_normalization() -> None:
    pe = PositionEmbeddingRandom3D(4)
    coords = torch.tensor([[[3.0, 10.0, 20.0]]])
    matrix = pe.positional_encoding_gaussian_matrix
    normalized = torch.tensor([3.0 / 32, 10.0 / 8, 20.0 / 32])  # coordinate 0 by size[1], 1 by size[0]
    proj = 2 * math.pi * ((2 * normalized - 1) @ matrix)
    torch.testing.assert_close(pe.encode_points(coords, (8, 32, 32))[0, 0], torch.cat([proj.sin(), proj.cos()]))


def test_dense_grid_orders_axes_1_0_2() -> None:
    pe = PositionEmbeddingRandom3D(4)
    grid = pe.grid((2, 3, 4))
    assert grid.shape == (8, 2, 3, 4)
    cell = torch.tensor([(1 + 0.5) / 3, (0 + 0.5) / 2, (3 + 0.5) / 4])  # voxel (0, 1, 3): axes 1, 0, 2
    proj = 2 * math.pi * ((2 * cell - 1) @ pe.positional_encoding_gaussian_matrix)
    torch.testing.assert_close(grid[:, 0, 1, 3], torch.cat([proj.sin(), proj.cos()]))


def test_prompt_encoder_token_layout() -> None:
    enc = PromptEncoder(DIM, GRID, IMG)
    points, labels = torch.rand(2, 3, 3) * 8, torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    sparse, dense = enc(points=points, point_labels=labels)
    assert sparse.shape == (2, 4, DIM)  # 3 points + 1 padding token
    torch.testing.assert_close(sparse[:, 3], enc.not_a_point_embed.weight.expand(2, -1))
    assert dense.shape == (2, DIM, *GRID)

    sparse, _ = enc(points=points, point_labels=labels, boxes=torch.rand(2, 6), text_embedding=torch.rand(2, DIM))
    assert sparse.shape == (2, 3 + 2 + 1, DIM)  # points, box corners, text (no padding with a box)
    sparse, dense = enc()
    assert sparse.shape == (1, 0, DIM) and dense.shape == (1, DIM, *GRID)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"points": torch.zeros(1, 2, 3)},
        {"points": torch.zeros(2, 1, 3), "point_labels": torch.ones(2, 1), "boxes": torch.zeros(3, 6)},
        {"points": torch.zeros(1, 2), "point_labels": torch.ones(1, 2)},
        {"boxes": torch.zeros(1, 4)},
    ],
)
def test_prompt_encoder_rejects_inconsistent_prompts(kwargs) -> None:
    with pytest.raises(PromptError):
        PromptEncoder(DIM, GRID, IMG)(**kwargs)


# --- decoder and whole model -----------------------------------------------------------------


def test_two_way_transformer_shapes() -> None:
    net = TwoWayTransformer(depth=2, embedding_dim=DIM, num_heads=4, mlp_dim=64)
    queries, keys = net(torch.rand(3, DIM, *GRID), torch.rand(3, DIM, *GRID), torch.rand(3, 7, DIM))
    assert queries.shape == (3, 7, DIM) and keys.shape == (3, math.prod(GRID), DIM)


def test_mask_decoder_adds_text_similarity_map() -> None:
    model = tiny_segvol()
    dec, enc = model.mask_decoder, model.prompt_encoder
    image = torch.rand(1, DIM, *GRID)
    text = torch.rand(2, DIM)
    sparse, dense = enc(text_embedding=text)
    with torch.no_grad():
        masks, iou = dec(image, enc.get_dense_pe(), sparse, dense, text_embedding=text)
        masks_no_sim, _ = dec(image, enc.get_dense_pe(), sparse, dense, text_embedding=None)
    assert masks.shape == (2, 1, *(4 * g for g in GRID)) and iou.shape == (2, 1)
    assert not torch.allclose(masks, masks_no_sim)


def test_image_encoder_rejects_wrong_window() -> None:
    with pytest.raises(ValueError, match="expected a"):
        tiny_segvol().image_encoder(torch.rand(1, 1, 8, 32, 16))


def test_forward_equals_encode_then_decode() -> None:
    model = tiny_segvol()
    image = torch.rand(1, 1, *IMG)
    boxes = torch.tensor([[1.0, 4.0, 4.0, 6.0, 20.0, 24.0], [0.0, 0.0, 0.0, 7.0, 31.0, 31.0]])
    with torch.no_grad():
        logits = model(image, text=["liver", "spleen"], boxes=boxes)
        text_embedding = model.encode_text(["liver", "spleen"])
        again = model.decode(model.encode_image(image), boxes=boxes, text_embedding=text_embedding)
    assert logits.shape == (2, 1, *IMG)
    torch.testing.assert_close(logits, again)


def test_registry_names_builders() -> None:
    assert SEGVOL_REGISTRY["segvol_v1"] is build_segvol
    tiny = SEGVOL_REGISTRY["segvol_tiny"]()
    assert tiny.image_size == (8, 32, 32)
    assert tiny.image_encoder.feature_size == (2, 2, 2)


# --- checkpoints -----------------------------------------------------------------------------


def _as_released(model: SegVol) -> dict[str, torch.Tensor]:
    """The model's weights as the official checkpoint stores them (transformers 4, DataParallel)."""
    state = {}
    for name, tensor in model.state_dict().items():
        name = name.replace("text_encoder.clip_text_model.", "text_encoder.clip_text_model.text_model.")
        state[f"module.{name}"] = tensor
    state["module.text_encoder.clip_text_model.text_model.embeddings.position_ids"] = torch.arange(77)[None]
    return {"model": state, "epoch": torch.tensor(3)}


@pytest.mark.parametrize("layout", ["released", "hf", "bare"])
def test_checkpoint_layouts_load_strictly(tmp_path, layout: str) -> None:
    source = tiny_segvol(seed=1)
    if layout == "released":
        obj = _as_released(source)
        obj.pop("epoch")
    elif layout == "hf":
        obj = {f"model.{k}": v for k, v in source.state_dict().items()}
    else:
        obj = source.state_dict()
    path = tmp_path / "segvol.pth"
    torch.save(obj, path)

    target = tiny_segvol(seed=2)
    load_state_dict_strict(target, read_state_dict(path), source=str(path))
    for name, tensor in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[name], tensor, rtol=0, atol=0, msg=name)


def test_checkpoint_without_cross_attention_norms_loads() -> None:
    source, target = tiny_segvol(seed=1), tiny_segvol(seed=2)
    state = {k: v for k, v in source.state_dict().items() if ".norm_cross_attn." not in k}
    load_state_dict_strict(target, normalize_state_dict(state))
    torch.testing.assert_close(target.image_encoder.norm.weight, source.image_encoder.norm.weight)


def test_wrong_architecture_names_missing_and_unexpected_keys() -> None:
    state = normalize_state_dict(tiny_segvol(depth=2).state_dict())
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"missing: image_encoder\.blocks\.0") as info:
        load_state_dict_strict(tiny_segvol(depth=3), {k: v for k, v in state.items() if "blocks.0." not in k})
    assert "unexpected: extra.weight" in str(info.value)
    with pytest.raises(CheckpointError, match=r"14 unexpected: extra\.weight, image_encoder\.blocks\.1\."):
        load_state_dict_strict(tiny_segvol(depth=1), state)


def test_wrong_shapes_are_reported() -> None:
    state = dict(tiny_segvol().state_dict())
    state["mask_decoder.iou_token.weight"] = torch.zeros(2, DIM)
    with pytest.raises(CheckpointError, match="wrong shape: mask_decoder.iou_token.weight"):
        load_state_dict_strict(tiny_segvol(), state)


def test_unreadable_checkpoints(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        read_state_dict(tmp_path / "absent.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        read_state_dict(garbage)
    with pytest.raises(CheckpointError, match="not a tensor"):
        normalize_state_dict({"a": 1})
    with pytest.raises(CheckpointError, match="not a SegVol state_dict"):
        normalize_state_dict([])
