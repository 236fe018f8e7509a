"""Datasets read from disk: one sub-folder per identity (``folder``) and ORL.

Listing never decodes images; decoding happens in the align stage, where an
unreadable file is skipped and counted rather than failing the run.

Symbolic links are not followed by default, as ``protect`` does not follow
them: a linked identity folder would be a second identity made of the same
images (identical "impostor" pairs), a link may lead out of the dataset, and
a loop leads nowhere. Each link left out is listed in
:attr:`~benchmark.core.component.Samples.skipped` with its reason (the run's
results list it among the skipped samples) and counted in one warning.
``follow_links: inside`` follows links that resolve inside the root, still
never listing a file twice (a link to a file the root already holds, or
already reached through another link, is left out as such).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from benchmark.core.component import Dataset, InstanceOf, Interval, Options, ParamError, Samples
from benchmark.core.registry import DATASETS

__all__ = ["FolderDataset", "OrlDataset", "DatasetError", "FOLLOW_LINKS"]

log = logging.getLogger(__name__)

_DEFAULT_EXTS = ("jpg", "jpeg", "png", "pgm")
#: What ``follow_links`` allows: no link at all, or links that resolve inside the root.
FOLLOW_LINKS = ("never", "inside")


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
        follow_links: ``never`` (symbolic links are left out and listed) or
            ``inside`` (links that resolve inside the root are followed).
    """

    _constraints = {
        "extensions": InstanceOf((list, tuple), item=InstanceOf((str,))),
        "min_images": Interval(int, 1, None),
        "max_subjects": InstanceOf((int,), optional=True),
        "follow_links": Options(FOLLOW_LINKS),
    }

    def __init__(self, *, extensions=_DEFAULT_EXTS, min_images=1, max_subjects=None, follow_links="never"):
        self.extensions = extensions
        self.min_images = min_images
        self.max_subjects = max_subjects
        self.follow_links = follow_links

    def _validate_extra(self) -> None:
        if self.max_subjects is not None and self.max_subjects < 1:
            raise ParamError("max_subjects", self.max_subjects, "is not >= 1")
        if not self.extensions:
            raise ParamError("extensions", self.extensions, "must name at least one ending")

    def _subject_dirs(self, root: Path) -> list[Path]:
        dirs = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: _natural_key(p.name))
        return dirs

    def _link_problem(self, link: Path, inside: Path) -> str | None:
        """Why the symbolic link ``link`` is not followed, or None when it is (``follow_links: inside``)."""
        if self.follow_links == "never":
            return "symbolic link (not followed)"
        try:
            target = link.resolve(strict=True)
        except (OSError, RuntimeError):  # RuntimeError: a loop, on Pythons before 3.13
            return "symbolic link that loops or leads nowhere"
        if not target.is_relative_to(inside):
            return "symbolic link out of the dataset root (not followed)"
        return None

    def _listed(self, root: Path, skipped: list[tuple[str, str]]) -> list[tuple[Path, list[Path]]]:
        """Identity folders and their image files; links left out (into ``skipped``) or followed as allowed."""
        inside = root.resolve()
        exts = {"." + e.lower().lstrip(".") for e in self.extensions}

        def rel(path: Path) -> str:
            return path.relative_to(root).as_posix()

        def leave_out(link: Path) -> bool:
            why = self._link_problem(link, inside)
            if why is None and not link.exists():
                why = "symbolic link that loops or leads nowhere"
            if why is not None:
                skipped.append((rel(link), why))
            return why is not None

        listed: list[tuple[Path, list[Path]]] = []
        for folder in self._subject_dirs(root):
            if folder.is_symlink() and leave_out(folder):
                continue
            files = []
            for f in sorted(folder.iterdir(), key=lambda p: _natural_key(p.name)):
                if f.suffix.lower() not in exts or (f.is_symlink() and leave_out(f)) or not f.is_file():
                    continue
                files.append(f)
            listed.append((folder, files))
        # A link at the top that leads nowhere (a loop) is no folder, yet meant to be one.
        for path in sorted(root.iterdir(), key=lambda p: _natural_key(p.name)):
            if path.is_symlink() and not path.exists():
                leave_out(path)
        if self.follow_links == "never":
            return listed
        # Followed links never list a file twice: a file reached without a link owns its content.
        owner = {
            f.resolve(): rel(f)
            for folder, files in listed
            if not folder.is_symlink()
            for f in files
            if not f.is_symlink()
        }
        kept: list[tuple[Path, list[Path]]] = []
        for folder, files in listed:
            unique = []
            for f in files:
                real = f.resolve()
                if owner.setdefault(real, rel(f)) != rel(f):
                    skipped.append((rel(f), f"symbolic link to {owner[real]}, listed already"))
                else:
                    unique.append(f)
            kept.append((folder, unique))
        return kept

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
        skipped: list[tuple[str, str]] = []
        kept = 0
        for folder, files in self._listed(root, skipped):
            if len(files) < self.min_images or not files:
                continue
            if self.max_subjects is not None and kept >= self.max_subjects:
                break
            kept += 1
            for f in files:
                ids.append(f.relative_to(root).as_posix())
                subjects.append(folder.name)
                paths.append(f)
        if skipped:
            reasons: dict[str, int] = {}
            for _, why in skipped:
                reasons[why] = reasons.get(why, 0) + 1
            log.warning(
                "dataset %s: %d symbolic link(s) left out (%s); the run's skipped samples list them",
                root, len(skipped), ", ".join(f"{n} {why}" for why, n in reasons.items()),
            )  # fmt: skip
        if not ids:
            exts = ", ".join(self.extensions)
            raise DatasetError(f"no image ({exts}) in identity sub-folders of {str(root)!r}")
        return Samples(ids=ids, subjects=subjects, paths=paths, skipped=skipped or None)


@DATASETS.register("orl")
class OrlDataset(FolderDataset):
    """The AT&T (ORL) face layout: ``sN/M.pgm``, 40 subjects of 10 images."""

    def __init__(self, *, extensions=("pgm",), min_images=1, max_subjects=None, follow_links="never"):
        super().__init__(
            extensions=extensions, min_images=min_images, max_subjects=max_subjects, follow_links=follow_links
        )

    def _subject_dirs(self, root: Path) -> list[Path]:
        dirs = [p for p in super()._subject_dirs(root) if re.fullmatch(r"s\d+", p.name)]
        if not dirs:
            raise DatasetError(f"no ORL subject folder (s1, s2, ...) in {str(root)!r}")
        return dirs
