"""Sidebar knob logic without widgets: options, snapping, limits, the shortcut mask."""
from __future__ import annotations

from resnet_viz.serve.config import ClassroomConfig
from resnet_viz.ui.knobs import blocks_on, build, clamp_to_limits, depth_options, mask_from_on, options, with_value
from resnet_viz.spec import ExperimentSpec

CFG = ClassroomConfig(max_depth=56, max_width_mlp=128, max_width_cnn=32, max_steps=1000)


def test_cnn_offers_only_6n_plus_2_depths_within_the_limit():
    spec = ExperimentSpec(model="cnn", depth=20, width=16)
    assert depth_options(spec, CFG) == [8, 14, 20, 26, 32, 38, 44, 50, 56]
    assert all((d - 2) % 9 == 0 for d in depth_options(spec.replace(block="bottleneck", depth=11), CFG))


def test_options_keep_a_linked_value_and_respect_limits():
    assert with_value([1, 2, 4], 3) == [1, 2, 3, 4]
    spec = ExperimentSpec(width=200, lr=0.05)
    assert 200 not in options("width", spec.replace(width=64), CFG)  # above max_width_mlp
    assert 0.05 in options("lr", spec, CFG)
    assert max(options("steps", spec.replace(steps=100), CFG)) == 1000
    assert options("dataset", ExperimentSpec(model="cnn", depth=20), CFG)[0] == "digits"


def test_switching_to_the_cnn_snaps_depth_dataset_and_width():
    base = ExperimentSpec(dataset="moons", depth=12, width=128)
    spec, notes = build({"model": "cnn"}, CFG, base)
    assert (spec.model, spec.dataset, spec.depth, spec.width) == ("cnn", "digits", 14, 32)
    assert notes == []


def test_new_depth_resets_the_mask_and_bad_values_fall_back():
    base = ExperimentSpec(depth=4, shortcut_mask="1010")
    spec, _ = build({"depth": 8}, CFG, base)
    assert spec.depth == 8 and spec.shortcut_mask == ""
    spec, notes = build({"lr": -5}, CFG, base)
    assert spec.lr == base.lr and notes


def test_clamp_to_limits_says_what_it_changed():
    spec, notes = clamp_to_limits(ExperimentSpec(depth=500, width=1000, steps=50_000), CFG)
    assert (spec.depth, spec.width, spec.steps) == (56, 128, 1000)
    assert len(notes) == 3 and all("limit" in n for n in notes)
    cnn, _ = clamp_to_limits(ExperimentSpec(model="cnn", depth=110, width=16), CFG)
    assert cnn.depth == 56
    assert clamp_to_limits(ExperimentSpec(), ClassroomConfig()) == (ExperimentSpec(), [])


def test_mask_round_trip():
    spec = ExperimentSpec(depth=5)
    assert mask_from_on(spec, range(5)) == ""
    assert mask_from_on(spec, [0, 2]) == "10100"
    assert blocks_on(spec.replace(shortcut_mask="10100")) == [0, 2]


def test_augmentation_and_your_images_reset_when_the_dataset_no_longer_has_them():
    from resnet_viz.ui.knobs import label, shown

    spec, notes = build({"dataset": "cifar10", "augment": "he"}, CFG)
    assert (spec.dataset, spec.augment, notes) == ("cifar10", "he", [])
    moons, notes = build({"dataset": "moons"}, CFG, base=spec)
    assert (moons.dataset, moons.augment, notes) == ("moons", "none", [])      # not a refusal
    assert shown("augment", spec) and not shown("augment", moons)
    assert label("he", "augment").startswith("pad 4, random crop") and label("he", "init") == "He (Kaiming)"
    mine, _ = build({"dataset": "folder", "folder_id": "0123456789abcdef", "image_size": 16, "folder_classes": 3},
                    CFG, base=spec)
    assert (mine.dataset, mine.folder_id, mine.image_size, mine.folder_classes, mine.augment) == (
        "folder", "0123456789abcdef", 16, 3, "he")
    back, _ = build({"dataset": "digits"}, CFG, base=mine)
    assert (back.folder_id, back.image_size, back.folder_classes) == ("", 32, 2)
    assert back.spec_hash() == build({"dataset": "digits", "augment": "he"}, CFG)[0].spec_hash()
    assert options("augment", spec, CFG) == ["none", "he"]
