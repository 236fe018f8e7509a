"""Make ``docs/naive-decode.png``: what a standard decoder shows of selectively encrypted faces.

Four synthetic demo faces (no real data), then the same faces protected by
``lw4o6``, ``rw4o6`` and ``jw10o0`` under the public evaluation key of seed 0
and decoded without the key by the ``naive`` attack (OpenJPEG or libjpeg, as
an image viewer decodes them). Run from the repository root:
``python docs/naive_decode.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from attacks.naive import NaiveAttack
from benchmark.core.keys import MasterKey
from benchmark.data.datasets.synthetic import SyntheticFaces
from schemes.j2k import J2KScheme
from schemes.jpeg import JPEGScheme

SETTINGS = ("lw4o6", "rw4o6", "jw10o0")


def main() -> None:
    faces = SyntheticFaces(n_subjects=4, n_images=1, seed=0).load().images
    ids, subjects = [f"s{i}" for i in range(len(faces))], [f"p{i}" for i in range(len(faces))]
    key = MasterKey.evaluation(0).application("naive-decode")
    rows = [faces]
    for name in SETTINGS:
        scheme = J2KScheme.from_name(name) or JPEGScheme.from_name(name)
        assert scheme is not None, name
        rows.append(NaiveAttack().attack(scheme.protect(faces, key, ids, subjects), scheme).images)
    grid = np.concatenate([np.concatenate(list(row), axis=1) for row in rows], axis=0)
    Image.fromarray(grid).save(Path(__file__).with_name("naive-decode.png"), optimize=True)


if __name__ == "__main__":
    main()
