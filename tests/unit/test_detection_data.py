import json

import numpy as np

from ebjr.tasks.detection.data import CANVAS, INK, ITEMS, MAX_IOU, iou, make_scenes, to_coco, write
from ebjr.training import data


def test_scenes_are_reproducible_and_hold_items_of_their_own_split():
    first, again = make_scenes("val", 40), make_scenes("val", 40)
    np.testing.assert_array_equal(first.images, again.images)
    assert all((a == b).all() for a, b in zip(first.boxes, again.boxes, strict=True))
    assert not np.array_equal(first.images, make_scenes("test", 40).images)
    _, val_labels = data.load_split("val")
    for labels, sources in zip(first.labels, first.sources, strict=True):
        assert ITEMS[0] <= len(labels) <= ITEMS[1]
        np.testing.assert_array_equal(labels, val_labels[sources])  # items of val only


def test_boxes_are_tight_inside_the_canvas_and_barely_overlap():
    scenes = make_scenes("train", 60)
    for image, boxes in zip(scenes.images, scenes.boxes, strict=True):
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= CANVAS).all()
        assert (boxes[:, 2:] > boxes[:, :2]).all()
        for k, box in enumerate(boxes):
            x0, y0, x1, y1 = box.astype(int)
            assert image[0, y0:y1, x0:x1].max() > INK  # ink inside every box
            assert (iou(box, np.delete(boxes, k, axis=0)) <= MAX_IOU + 1e-6).all()
        ink = image[0] > INK
        covered = np.zeros_like(ink)
        for x0, y0, x1, y1 in boxes.astype(int):
            covered[y0:y1, x0:x1] = True
        assert not (ink & ~covered).any()  # no visible pixel outside the boxes


def test_coco_ground_truth_matches_the_scenes():
    scenes = make_scenes("test", 10)
    coco = to_coco(scenes)
    assert [image["id"] for image in coco["images"]] == list(range(1, 11))
    assert len(coco["annotations"]) == sum(len(b) for b in scenes.boxes)
    first = coco["annotations"][0]
    x0, y0, x1, y1 = scenes.boxes[0][0].tolist()
    assert first["bbox"] == [x0, y0, x1 - x0, y1 - y0] and first["image_id"] == 1
    assert first["category_id"] == scenes.labels[0][0] + 1
    assert len(coco["categories"]) == 10 and coco["categories"][0]["id"] == 1


def test_written_splits_round_trip(tmp_path):
    scenes = make_scenes("val", 12)
    arrays, coco = write(scenes, tmp_path)
    with np.load(arrays) as saved:
        np.testing.assert_array_equal(saved["images"], scenes.images)
        offsets = saved["offsets"]
        for i, boxes in enumerate(scenes.boxes):
            np.testing.assert_array_equal(saved["boxes"][offsets[i] : offsets[i + 1]], boxes)
    assert json.loads(coco.read_text()) == json.loads(json.dumps(to_coco(scenes)))
