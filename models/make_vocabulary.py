"""Makes models/vocabulary.tsv: where every label of every built-in model sits in one
shallow hierarchy of categories people search for, and the other words for it.

    python models/make_vocabulary.py --wordnet /usr/share/wordnet/data.noun \
        --imagenet-ids imagenet_synsets.txt [--output models/vocabulary.tsv]

Inputs (installed by `scripts/setup.sh --test`, never committed):
- WordNet 3.0's noun database (Debian `wordnet-base`);
- the 1,000 ImageNet-1k WordNet ids in class order, the order of labels/imagenet1000.txt
  (`timm/data/_info/imagenet_synsets.txt` in the timm wheel).

ImageNet labels are placed by walking WordNet's hypernyms up to the nearest category
below; COCO labels by COCO's own super-categories, with the few that name a category
themselves (dog, car, banana, ...) put there. Synonyms are the other lemmas of each
ImageNet synset, and for COCO the spellings darknet and digiKam use (motorbike, sofa,
aeroplane, tvmonitor) and British ones. The output is sorted: the same inputs give the
same bytes.
"""

from __future__ import annotations

import argparse
from collections import deque
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The categories: what people type to find a photo, from broad to narrow, each a WordNet
# 3.0 noun synset (None: a COCO super-category with no single synset). About fifty, so
# that each label is at most two categories deep: 'animal/dog/malamute', never the
# dozen steps of WordNet's chain (malamute, sled dog, working dog, dog, canine, carnivore,
# placental, mammal, vertebrate, chordate, animal, organism, ...).
CATEGORIES: dict[str, int | None] = {
    "person": 7846,
    "animal": 15388,
    "animal/dog": 2084071,
    "animal/cat": 2120997,          # feline: house cats and big cats
    "animal/bird": 1503061,
    "animal/fish": 2512053,
    "animal/insect": 2159955,
    "animal/arachnid": 1769347,
    "animal/reptile": 1661091,
    "animal/amphibian": 1627424,
    "animal/crustacean": 1974773,
    "animal/mollusc": 1940736,
    "animal/primate": 2469914,
    "vehicle": 4524313,
    "vehicle/car": 2958343,
    "vehicle/truck": 4490091,
    "vehicle/bus": 2924116,
    "vehicle/train": 4468005,
    "vehicle/motorcycle": 3790512,
    "vehicle/bicycle": 2834778,
    "vehicle/boat": 4530566,
    "vehicle/aircraft": 2686568,
    "food": 21265,
    "food/fruit": 7705931,
    "food/vegetable": 7707451,
    "food/dish": 7557434,
    "food/baked goods": 7622061,
    "food/dessert": 7609840,
    "food/drink": 7881800,
    "plant": 17222,
    "plant/flower": 11669921,
    "plant/tree": 13104059,
    "fungus": 12992868,
    "landscape": 9287968,           # geological formations: cliff, valley, volcano, ...
    "building": 2913152,
    "structure": 4341686,
    "furniture": 3405725,
    "clothing": 3051540,
    "clothing/footwear": 3380867,   # footgear: shoes, boots, sandals, clogs
    "accessory": 2671780,
    "container": 3094503,
    "kitchenware": 3621049,
    "tool": 4451818,
    "device": 3183080,
    "electronics": 3278248,
    "camera": 2942699,
    "toiletry": 4447443,            # cosmetics, lotions, perfume
    "appliance": 3528263,
    "musical instrument": 3800933,
    "sports equipment": 4285146,
    "sports equipment/ball": 2778669,
    "weapon": 4565375,
    "toy": 3964744,
    "street": None,                 # COCO's 'outdoor': traffic light, stop sign, ...
    "household object": None,       # COCO's 'indoor': book, clock, vase, ...
    "object": None,                 # what nothing above covers
}

# COCO's super-categories (from its annotation files) and where each goes.
COCO_SUPER_CATEGORIES = {
    "person": ["person"],
    "vehicle": ["bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"],
    "outdoor": ["traffic light", "fire hydrant", "stop sign", "parking meter", "bench"],
    "animal": ["bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
               "giraffe"],
    "accessory": ["backpack", "umbrella", "handbag", "tie", "suitcase"],
    "sports": ["frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat",
               "baseball glove", "skateboard", "surfboard", "tennis racket"],
    "kitchen": ["bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl"],
    "food": ["banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza",
             "donut", "cake"],
    "furniture": ["chair", "couch", "potted plant", "bed", "dining table", "toilet"],
    "electronic": ["tv", "laptop", "mouse", "remote", "keyboard", "cell phone"],
    "appliance": ["microwave", "oven", "toaster", "sink", "refrigerator"],
    "indoor": ["book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush"],
}
COCO_CATEGORY_OF_SUPER = {
    "person": "person", "vehicle": "vehicle", "outdoor": "street", "animal": "animal",
    "accessory": "accessory", "sports": "sports equipment", "kitchen": "kitchenware",
    "food": "food", "furniture": "furniture", "electronic": "electronics",
    "appliance": "appliance", "indoor": "household object",
}
COCO_OWN_CATEGORY = {
    "bird": "animal/bird", "cat": "animal/cat", "dog": "animal/dog",
    "bicycle": "vehicle/bicycle", "car": "vehicle/car", "motorcycle": "vehicle/motorcycle",
    "airplane": "vehicle/aircraft", "bus": "vehicle/bus", "train": "vehicle/train",
    "truck": "vehicle/truck", "boat": "vehicle/boat",
    "banana": "food/fruit", "apple": "food/fruit", "orange": "food/fruit",
    "broccoli": "food/vegetable", "carrot": "food/vegetable",
    "sandwich": "food/dish", "hot dog": "food/dish", "pizza": "food/dish",
    "donut": "food/baked goods", "cake": "food/baked goods",
    "bench": "furniture", "potted plant": "plant", "sports ball": "sports equipment/ball",
}
# Other names people and programs use for COCO's labels: darknet's and digiKam's
# coco.names spellings, British spellings, everyday words.
COCO_OTHER_NAMES = {
    "airplane": ["aeroplane", "plane"], "bicycle": ["bike"], "cell phone": ["mobile phone",
    "cellphone", "mobile"], "couch": ["sofa"], "dining table": ["diningtable", "table"],
    "donut": ["doughnut"], "fire hydrant": ["hydrant"], "hair drier": ["hair dryer",
    "hairdryer"], "motorcycle": ["motorbike"], "person": ["people", "human"],
    "potted plant": ["pottedplant", "houseplant"], "refrigerator": ["fridge"],
    "sports ball": ["ball"], "teddy bear": ["teddy"], "tie": ["necktie"],
    "tv": ["tvmonitor", "tv monitor", "television"], "remote": ["remote control"],
}


def read_wordnet(path: Path) -> dict[int, tuple[list[str], list[int]]]:
    """Noun synsets by byte offset: (lemmas, hypernym offsets)."""
    synsets: dict[int, tuple[list[str], list[int]]] = {}
    for line in path.read_bytes().decode("utf-8").splitlines():
        if not line or line.startswith(" "):
            continue  # the licence header
        fields = line.split(" | ", 1)[0].split()
        words = int(fields[3], 16)
        lemmas = [fields[4 + 2 * i].replace("_", " ").lower() for i in range(words)]
        pointers_at = 4 + 2 * words
        pointers = int(fields[pointers_at])
        hypernyms = [int(fields[pointers_at + 2 + 4 * i]) for i in range(pointers)
                     if fields[pointers_at + 1 + 4 * i] in ("@", "@i")]
        synsets[int(fields[0])] = (lemmas, hypernyms)
    return synsets


def nearest_category(offset: int, synsets: dict[int, tuple[list[str], list[int]]],
                     by_offset: dict[int, str]) -> str:
    """The most specific category among the synset's ancestors, the nearest if several
    are as specific: a greyhound is a 'racer' (an animal) one step sooner than a dog."""
    found: list[tuple[int, int, str]] = []   # (-depth of the category, distance, name)
    queue, seen = deque([(offset, 0)]), {offset}
    while queue:
        current, distance = queue.popleft()
        if current in by_offset:
            name = by_offset[current]
            found.append((-name.count("/"), distance, name))
        for parent in synsets[current][1]:
            if parent not in seen:
                seen.add(parent)
                queue.append((parent, distance + 1))
    return min(found)[2] if found else "object"


def rows(wordnet: Path, imagenet_ids: Path) -> list[tuple[str, str, str, str]]:
    synsets = read_wordnet(wordnet)
    by_offset = {offset: name for name, offset in CATEGORIES.items() if offset is not None}
    made = []
    labels = (HERE / "labels" / "imagenet1000.txt").read_text().split("\n")[:1000]
    wnids = imagenet_ids.read_text().split()
    if len(wnids) != 1000 or len(labels) != 1000:
        raise SystemExit(f"{imagenet_ids}: expected 1000 ImageNet ids, got {len(wnids)}")
    for label, wnid in zip(labels, wnids, strict=True):
        offset = int(wnid[1:])
        others = sorted({lemma for lemma in synsets[offset][0] if lemma != label.lower()})
        made.append(("imagenet", label, nearest_category(offset, synsets, by_offset),
                     "|".join(others)))
    for super_category, coco_labels in COCO_SUPER_CATEGORIES.items():
        for label in coco_labels:
            category = COCO_OWN_CATEGORY.get(label, COCO_CATEGORY_OF_SUPER[super_category])
            made.append(("coco", label, category, "|".join(COCO_OTHER_NAMES.get(label, []))))
    return sorted(made)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet/data.noun"))
    parser.add_argument("--imagenet-ids", type=Path, required=True)
    parser.add_argument("--output", type=Path, default=HERE / "vocabulary.tsv")
    args = parser.parse_args()
    lines = ["# Made by models/make_vocabulary.py from WordNet 3.0 and COCO's super-categories;",
             "# do not edit. vocabulary, label, category, other names (|-separated)"]
    lines += ["\t".join(row) for row in rows(args.wordnet, args.imagenet_ids)]
    args.output.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
