"""Datasets read from disk: one sub-folder per identity (``folder``) and ORL.

Listing never decodes images; decoding happens in the align stage, where an
unreadable file is skipped and counted rather than failing the run.
"""

from __future__ import annotations

import re
from pathlib import Path

from benchmark.core.component import Dataset, InstanceOf, Interval, ParamError, Samples
from benchmark.core.registry import DATASETS

__all__ = ["FolderDataset", "OrlDataset", "DatasetError"]

_DEFAULT_EXTS = ("jpg", "jpeg", "png", "pgm")


class DatasetError(ValueError):
    """A dataset that cannot be used (missing root, nothing usable...)."""


def _natural_key(text: str) -> list:
    # ORL's 10.pgm must come after 9.pgm; LFW's zero-padded names sort either way.
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


@DATASETS.register("folder")
class FolderDataset(Dataset):
    """Images in one sub-folder per identity (LFW, CASIA-WebFace layouts).

    Args:
        extensions: File endings to read (case-insensitive).
        min_images: Identities with fewer images are left out.
        max_subjects: Keep only the first N identities (sorted), for quick runs.
    """

    _constraints = {
        "extensions": InstanceOf((list, tuple), item=InstanceOf((str,))),
        "min_images": Interval(int, 1, None),
        "max_subjects": InstanceOf((int,), optional=True),
    }

    def __init__(self, *, extensions=_DEFAULT_EXTS, min_images=1, max_subjects=None):
        self.extensions = extensions
        self.min_images = min_images
        self.max_subjects = max_subjects

    def _validate_extra(self) -> None:
        if self.max_subjects is not None and self.max_subjects < 1:
            raise ParamError("max_subjects", self.max_subjects, "is not >= 1")
        if not self.extensions:
            raise ParamError("extensions", self.extensions, "must name at least one ending")

    def _subject_dirs(self, root: Path) -> list[Path]:
        dirs = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: _natural_key(p.name))
        return dirs

    def _files(self, folder: Path) -> list[Path]:
        exts = {"." + e.lower().lstrip(".") for e in self.extensions}
        files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in exts]
        return sorted(files, key=lambda p: _natural_key(p.name))

    def load(self, root: Path | None = None) -> Samples:
        """List the samples under ``root``.

        Raises:
            DatasetError: if the root is missing or holds no image.
        """
        if root is None:
            raise DatasetError(f"dataset {self.registry_name!r} needs a root folder")
        root = Path(root).expanduser()
        if not root.is_dir():
            raise DatasetError(f"{str(root)!r} does not exist or is not a folder")
        ids: list[str] = []
        subjects: list[str] = []
        paths: list[Path] = []
        kept = 0
        for folder in self._subject_dirs(root):
            files = self._files(folder)
            if len(files) < self.min_images or not files:
                continue
            if self.max_subjects is not None and kept >= self.max_subjects:
                break
            kept += 1
            for f in files:
                ids.append(f.relative_to(root).as_posix())
                subjects.append(folder.name)
                paths.append(f)
        if not ids:
            exts = ", ".join(self.extensions)
            raise DatasetError(f"no image ({exts}) in identity sub-folders of {str(root)!r}")
        return Samples(ids=ids, subjects=subjects, paths=paths)


@DATASETS.register("orl")
class OrlDataset(FolderDataset):
    """The AT&T (ORL) face layout: ``sN/M.pgm``, 40 subjects of 10 images."""

    def __init__(self, *, extensions=("pgm",), min_images=1, max_subjects=None):
        super().__init__(extensions=extensions, min_images=min_images, max_subjects=max_subjects)

    def _subject_dirs(self, root: Path) -> list[Path]:
        dirs = [p for p in super()._subject_dirs(root) if re.fullmatch(r"s\d+", p.name)]
        if not dirs:
            raise DatasetError(f"no ORL subject folder (s1, s2, ...) in {str(root)!r}")
        return dirs
