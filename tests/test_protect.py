"""``facesec protect`` / ``unprotect``: scheme names, byte-exact round trips, folders, resuming, links, errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from benchmark.cli import protect
from benchmark.cli.main import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, build_parser, main
from benchmark.cli.protect import build_scheme
from benchmark.cli.sidecar import (
    ProtectError,
    canonical,
    codestream_tag,
    protect_codestream,
    read_pixels,
    read_sidecar,
    scheme_from_name,
    scheme_keys,
    synthetic_nonce,
    unprotect_codestream,
)
from benchmark.core.keys import MasterKey
from schemes.j2k import J2KScheme
from schemes.jpeg import JPEGScheme
from schemes.jpeg_amplitude import JPEGAmplitudeScheme

REPO = Path(__file__).resolve().parents[1]
KEY_HEX = bytes(range(32)).hex()
OTHER_HEX = bytes(range(1, 33)).hex()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def faces() -> list[np.ndarray]:
    from benchmark.data.datasets.synthetic import SyntheticFaces

    return list(SyntheticFaces(n_subjects=2, n_images=2).load(None).images)


def _key(tmp_path: Path, hex_key: str = KEY_HEX, name: str = "facesec.key") -> Path:
    path = tmp_path / name
    path.write_text(hex_key + "\n")
    path.chmod(0o600)
    return path


def _tree(root: Path, faces: list[np.ndarray]) -> dict[str, Path]:
    """s1/1.png, s1/2.pgm (grey), s2/1.bmp, s2/2.jpg, plus a text file and a hidden file."""
    names = ["s1/1.png", "s1/2.pgm", "s2/1.bmp", "s2/2.jpg"]
    files = {}
    for name, img in zip(names, faces):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        im = Image.fromarray(img)
        (im.convert("L") if name.endswith(".pgm") else im).save(path)
        files[name] = path
    (root / "s1" / "notes.txt").write_text("not an image")
    (root / ".hidden.png").write_bytes(b"ignored")
    return files


def _cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _protect(capsys, key: Path, src: Path, dst: Path, scheme: str = "lw4o6", *extra) -> tuple[int, str, str]:
    return _cli(capsys, "protect", "--scheme", scheme, "--key-file", key, "--workers", "1", *extra, src, dst)


def _unprotect(capsys, key: Path, src: Path, dst: Path, *extra) -> tuple[int, str, str]:
    return _cli(capsys, "unprotect", "--key-file", key, "--workers", "1", *extra, src, dst)


def _counts(out: str) -> tuple[int, int, int]:
    m = re.search(r"(\d+) done, (\d+) skipped \(already done\), (\d+) failed", out)
    assert m, out
    return tuple(int(g) for g in m.groups())


# --------------------------------------------------------------------------- scheme names


@pytest.mark.parametrize(
    "name, codec, progression, window, offset",
    [
        ("lw4o6", "j2k", "LRCP", 4.0, 6.0),
        ("rw4o6", "j2k", "RLCP", 4.0, 6.0),
        ("pw4o6", "j2k", "RPCL", 4.0, 6.0),
        ("lw0.5o3", "j2k", "LRCP", 0.5, 3.0),
        ("jw10o0", "jpeg", "JPEG", 10.0, 0.0),
        ("ja10o0", "jpeg", "JPEG", 10.0, 0.0),
        ("ja10o0-ac", "jpeg", "JPEG", 10.0, 0.0),
        ("rw100o0", "j2k", "RLCP", 100.0, 0.0),
    ],
)
def test_scheme_from_name(name, codec, progression, window, offset):
    scheme = scheme_from_name(name)
    encoder = scheme.settings()["encoder"]
    assert (scheme.codec, encoder.get("progression", "JPEG"), scheme.window, scheme.offset) == (
        codec,
        progression,
        window,
        offset,
    )
    assert scheme.paper_name() == scheme.label() == name


def test_names_are_canonicalised_and_carry_coding_options():
    assert scheme_from_name("lw04.50o6.0").paper_name() == "lw4.5o6"
    assert scheme_from_name("rw4o6-restart").restart is True
    assert (scheme_from_name("jw10o0-ri4-q85").restart_interval, scheme_from_name("jw10o0-ri4-q85").quality) == (4, 85)


@pytest.mark.parametrize(
    "name",
    ["", "lw4", "w4o6", "xw4o6", "LW4O6", "lw4o6 ", "lw.5o3", "lw4.o6", "lw-1o6", "lw1e2o0", "jw10o0x", "lw4o6-ri4"],
)
def test_unknown_names_list_the_forms(name):
    with pytest.raises(ProtectError) as info:
        scheme_from_name(name)
    message = str(info.value)
    assert "\n" not in message
    assert all(form in message for form in ("lw<W>o<O>", "rw<W>o<O>", "pw<W>o<O>", "jw<W>o<O>", "ja<W>o<O>"))


@pytest.mark.parametrize(
    "name, field",
    [("lw0o6", "window"), ("lw0.0o6", "window"), ("lw101o0", "window"), ("lw4o100", "offset"), ("lw50o60", "window")],
)
def test_refused_windows_name_the_field(name, field):
    with pytest.raises(ProtectError, match=rf"^scheme '{re.escape(name)}': {field}: "):
        scheme_from_name(name)


def test_scheme_from_name_rejects_non_strings():
    with pytest.raises(ProtectError):
        scheme_from_name(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "scheme, name",
    [
        (J2KScheme(progression="layer", window=4.0, offset=6.0), "lw4o6"),
        (J2KScheme(progression="resolution", window=0.5, offset=3), "rw0.5o3"),
        (J2KScheme(progression="rpcl", window=2, offset=0), "pw2o0"),
        (JPEGScheme(window=10, offset=0), "jw10o0"),
        (J2KScheme(window=1e-5, offset=0.0), "lw0.00001o0"),
        (J2KScheme(window=12.25, offset=0.125), "lw12.25o0.125"),
    ],
)
def test_paper_names(scheme, name):
    assert scheme.paper_name() == name


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["layer", "resolution", "rpcl", "jpeg", "jpeg-amplitude"]),
    window=st.floats(min_value=0.0, max_value=100.0, exclude_min=True),
    share=st.floats(min_value=0.0, max_value=1.0),
    option=st.booleans(),
)
def test_name_round_trip(kind, window, share, option):
    offset = min(share * (100.0 - window), np.nextafter(100.0, 0.0))
    if kind == "jpeg":
        scheme = JPEGScheme(window=window, offset=offset, restart_interval=7 if option else 0)
    elif kind == "jpeg-amplitude":
        scheme = JPEGAmplitudeScheme(window=window, offset=offset, coefficients="ac" if option else "all")
    else:
        scheme = J2KScheme(progression=kind, window=window, offset=offset, restart=option)
    scheme.validate()
    back = scheme_from_name(scheme.label())
    assert type(back) is type(scheme) and back.get_params() == scheme.get_params()
    assert back.label() == scheme.label()


@settings(max_examples=300, deadline=None)
@given(
    st.from_regex(r"([lrpj]w|ja)\d{1,4}(\.\d{1,6})?o\d{1,4}(\.\d{1,6})?(-ac)?(-restart|-ri\d{1,3})?", fullmatch=True)
    | st.text(max_size=12)
)
def test_scheme_from_name_total(text):
    """Any text names a scheme whose label is a fixed point, or gives a one-line ProtectError."""
    try:
        scheme = scheme_from_name(text)
    except ProtectError as exc:
        assert "\n" not in str(exc)
        return
    assert scheme_from_name(scheme.label()).get_params() == scheme.get_params()


# --------------------------------------------------------------------------- keys


def test_key_label_covers_plaintext_parameters():
    app = MasterKey(bytes(range(32))).application("default")
    base = build_scheme("lw4o6", {})
    variants = [
        build_scheme("lw4o6", {"restart": True}),
        build_scheme("rw4o6", {}),
        build_scheme("pw4o6", {}),
        build_scheme("lw4o7", {}),
        build_scheme("lw3o6", {}),
    ]
    keys = {scheme_keys(app, s) for s in [base, *variants]}
    assert len(keys) == 6  # each parameter change gives new AES and MAC keys
    assert scheme_keys(app, base) == scheme_keys(app, build_scheme("lw4o6", {}))
    jpeg = {scheme_keys(app, build_scheme("jw10o0", {"quality": q})) for q in (80, 90)}
    assert len(jpeg) == 2


def test_key_labels_are_those_of_files_protected_by_0_1_0():
    """Files and sidecars written by FaceSec 0.1.0 keep their keys: the labels are unchanged."""
    j2k = (
        '{"encoder":{"cbsize":[64,64],"eph":true,"numres":6,"progression":"RLCP",'
        '"ratios":[80.0,40.0,20.0,10.0,5.0,1.0],"restart":true,"sop":true},"scheme":"rw4o6"}'
    )
    jpeg = '{"encoder":{"quality":85,"restart_interval":4},"scheme":"jw10o0"}'
    for name, options, label in (
        ("rw4o6", {"restart": True}, j2k),
        ("jw10o0", {"quality": 85, "restart_interval": 4}, jpeg),
    ):
        scheme = build_scheme(name, options)
        assert canonical(scheme.paper_name(), scheme.settings()["encoder"] | {}) == label
        app = MasterKey(bytes(range(32))).application("default")
        assert scheme_keys(app, scheme) == (
            app.derive(f"{scheme.codec}/aes/{label}"),
            app.derive(f"{scheme.codec}/mac/{label}"),
        )


def test_nonce_depends_on_plaintext_and_sample():
    app = MasterKey(bytes(range(32))).application("default")
    _, mac = scheme_keys(app, build_scheme("lw4o6", {}))
    nonces = {
        synthetic_nonce(app, sid, codestream_tag(mac, sid, data, path="p"))
        for sid in ("a", "b")
        for data in (b"x", b"y")
    }
    assert len(nonces) == 4


# --------------------------------------------------------------------------- single files


@pytest.mark.parametrize(
    "scheme, extra, suffix",
    [
        ("lw4o6", [], ".j2k"),
        ("rw4o6", [], ".j2k"),
        ("pw4o6", [], ".j2k"),
        ("lw4o6", ["--restart"], ".j2k"),
        ("rw0.5o3", [], ".j2k"),
        ("jw10o0", ["--quality", "85", "--restart-interval", "4"], ".jpg"),
        ("ja10o0-ac", ["--quality", "85", "--restart-interval", "4"], ".jpg"),
        ("ja100o0", ["--quality", "85", "--restart-interval", "4"], ".jpg"),
    ],
)
@pytest.mark.parametrize("grey", [False, True], ids=["rgb", "grey"])
def test_single_file_round_trip(tmp_path, capsys, faces, scheme, extra, suffix, grey):
    key = _key(tmp_path)
    src = tmp_path / ("face.pgm" if grey else "face.png")
    img = faces[0]
    (Image.fromarray(img).convert("L") if grey else Image.fromarray(img)).save(src)
    protected = tmp_path / "out" / f"face{suffix}"
    code, out, err = _protect(capsys, key, src, protected, scheme, *extra)
    assert (code, err) == (EXIT_OK, "")
    assert _counts(out) == (1, 0, 0)
    sidecar = json.loads(Path(f"{protected}.json").read_text())
    assert sidecar["scheme"] == scheme and sidecar["sample_id"] == "face" + src.suffix

    restored = tmp_path / "plain" / f"face{suffix}"
    code, out, err = _unprotect(capsys, key, protected, restored)
    assert (code, err) == (EXIT_OK, "")

    pixels = read_pixels(src)
    options = {"restart": True} if "--restart" in extra else {}
    if suffix == ".jpg":
        options = {"quality": 85, "restart_interval": 4}
    expected = build_scheme(scheme, options).encode(pixels)
    assert restored.read_bytes() == expected
    assert protected.read_bytes() != expected
    if not scheme.startswith("ja"):  # amplitude encryption redoes the byte stuffing
        assert len(protected.read_bytes()) == len(expected)
    if suffix == ".j2k":
        from benchmark.codecs.j2k import decode_j2k

        np.testing.assert_array_equal(np.asarray(decode_j2k(restored.read_bytes())).reshape(pixels.shape), pixels)
        # Format compliant: the protected codestream still decodes, to other pixels.
        garbled = np.asarray(decode_j2k(protected.read_bytes())).reshape(pixels.shape)
        assert not np.array_equal(garbled, pixels)
    else:
        from benchmark.codecs.jpeg import decode_jpeg

        assert np.asarray(decode_jpeg(protected.read_bytes())).size == pixels.size


def test_single_file_into_existing_folder(tmp_path, capsys, faces):
    key = _key(tmp_path)
    src = tmp_path / "face.png"
    Image.fromarray(faces[0]).save(src)
    (tmp_path / "out").mkdir()
    code, _, _ = _protect(capsys, key, src, tmp_path / "out")
    assert code == EXIT_OK
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["face.j2k", "face.j2k.json"]


def test_sidecar_contents_and_no_secrets(tmp_path, capsys, faces):
    key = _key(tmp_path)
    src = tmp_path / "in"
    _tree(src, faces)
    code, out, err = _protect(capsys, key, src, tmp_path / "out")
    code2, out2, err2 = _unprotect(capsys, key, tmp_path / "out", tmp_path / "plain")
    assert code == code2 == EXIT_OK

    master = MasterKey(bytes.fromhex(KEY_HEX))
    app = master.application("default")
    aes, mac = scheme_keys(app, build_scheme("lw4o6", {}))
    sidecar_text = (tmp_path / "out" / "s1" / "1.j2k.json").read_text()
    sidecar = json.loads(sidecar_text)
    nonce = synthetic_nonce(app, sidecar["sample_id"], sidecar["tag"])
    texts = [sidecar_text, out, err, out2, err2]
    for secret in (KEY_HEX, aes.hex(), mac.hex(), nonce.hex(), nonce[:12].hex(), app._key.hex()):
        assert not any(secret in t.lower() for t in texts)
    assert not any(bytes.fromhex(KEY_HEX) in p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert set(sidecar) >= {
        "scheme",
        "codec",
        "progression",
        "window",
        "offset",
        "encoder",
        "app_id",
        "sample_id",
        "path",
        "key_id",
        "tag",
    }
    assert (sidecar["format"], sidecar["sample_id"], sidecar["path"]) == ("facesec-protect/2", "s1/1.png", "s1/1.j2k")
    assert sidecar["key_id"] == app.key_id != master.key_id
    assert (sidecar["progression"], sidecar["window"], sidecar["offset"]) == ("LRCP", 4.0, 6.0)
    assert sidecar["encoder"]["progression"] == "LRCP"
    # No unkeyed hash of the plaintext (a dictionary oracle): its sha256 is nowhere.
    import hashlib

    plain = (tmp_path / "plain" / "s1" / "1.j2k").read_bytes()
    assert hashlib.sha256(plain).hexdigest() not in sidecar_text
    assert hashlib.sha256((src / "s1" / "1.png").read_bytes()).hexdigest() not in sidecar_text


def test_applications_differ(tmp_path, capsys, faces):
    key = _key(tmp_path)
    src = tmp_path / "face.png"
    Image.fromarray(faces[0]).save(src)
    _protect(capsys, key, src, tmp_path / "a.j2k", "lw4o6", "--app-id", "a")
    _protect(capsys, key, src, tmp_path / "b.j2k", "lw4o6", "--app-id", "b")
    a, b = (json.loads((tmp_path / f"{n}.j2k.json").read_text()) for n in "ab")
    assert a["key_id"] != b["key_id"] and a["tag"] != b["tag"]
    assert (tmp_path / "a.j2k").read_bytes() != (tmp_path / "b.j2k").read_bytes()
    code, _, _ = _unprotect(capsys, key, tmp_path / "b.j2k", tmp_path / "b-plain.j2k")
    assert code == EXIT_OK


# --------------------------------------------------------------------------- folders and resuming


def test_folder_mirroring_and_resume(tmp_path, capsys, faces):
    key = _key(tmp_path)
    src, dst = tmp_path / "in", tmp_path / "out"
    files = _tree(src, faces)
    before = {name: (p.read_bytes(), p.stat().st_mtime_ns) for name, p in files.items()}

    code, out, err = _protect(capsys, key, src, dst)
    assert (code, err) == (EXIT_OK, "")
    assert _counts(out) == (4, 0, 0) and str(dst) in out
    produced = sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file())
    assert produced == sorted([f"{Path(n).with_suffix('.j2k').as_posix()}{x}" for n in files for x in ("", ".json")])
    first = {p: p.read_bytes() for p in dst.rglob("*.j2k")}

    code, out, _ = _protect(capsys, key, src, dst)
    assert code == EXIT_OK and _counts(out) == (0, 4, 0)

    (dst / "s2" / "1.j2k").unlink()
    code, out, _ = _protect(capsys, key, src, dst)
    assert code == EXIT_OK and _counts(out) == (1, 3, 0)
    assert {p: p.read_bytes() for p in dst.rglob("*.j2k")} == first  # deterministic

    # A missing sidecar (interrupted between output and sidecar) redoes the file too.
    (dst / "s1" / "1.j2k.json").unlink()
    code, out, _ = _protect(capsys, key, src, dst)
    assert _counts(out) == (1, 3, 0)

    # Another scheme into the same folder is not "already done".
    code, out, _ = _protect(capsys, key, src, dst, "rw4o6")
    assert _counts(out) == (4, 0, 0)

    assert {name: (p.read_bytes(), p.stat().st_mtime_ns) for name, p in files.items()} == before

    code, out, err = _unprotect(capsys, key, dst, tmp_path / "plain")
    assert (code, err) == (EXIT_OK, "") and _counts(out) == (4, 0, 0)
    code, out, _ = _unprotect(capsys, key, dst, tmp_path / "plain")
    assert _counts(out) == (0, 4, 0)
    s = build_scheme("rw4o6", {})
    for name, path in files.items():
        plain = (tmp_path / "plain" / name).with_suffix(".j2k").read_bytes()
        assert plain == s.encode(read_pixels(path))


def test_edited_input_is_redone(tmp_path, capsys, faces):
    key = _key(tmp_path)
    src, dst = tmp_path / "in", tmp_path / "out"
    files = _tree(src, faces)
    _protect(capsys, key, src, dst)
    old = (dst / "s1" / "1.j2k").read_bytes()
    Image.fromarray(faces[3]).save(files["s1/1.png"])
    code, out, _ = _protect(capsys, key, src, dst)
    assert code == EXIT_OK and _counts(out) == (1, 3, 0)
    assert (dst / "s1" / "1.j2k").read_bytes() != old


def test_workers_give_the_same_files(tmp_path, capsys, faces):
    key = _key(tmp_path)
    src = tmp_path / "in"
    _tree(src, faces)
    code1, _, _ = _protect(capsys, key, src, tmp_path / "one")
    code2, out, err = _cli(
        capsys, "protect", "--scheme", "lw4o6", "--key-file", key, "--workers", "2", src, tmp_path / "two"
    )
    assert code1 == code2 == EXIT_OK and _counts(out) == (4, 0, 0)
    one = {p.relative_to(tmp_path / "one"): p.read_bytes() for p in (tmp_path / "one").rglob("*") if p.is_file()}
    two = {p.relative_to(tmp_path / "two"): p.read_bytes() for p in (tmp_path / "two").rglob("*") if p.is_file()}
    assert one == two


def test_folder_with_a_bad_file(tmp_path, capsys, faces):
    key = _key(tmp_path)
    src, dst = tmp_path / "in", tmp_path / "out"
    _tree(src, faces)
    (src / "s2" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    code, out, err = _protect(capsys, key, src, dst)
    assert code == EXIT_FAILED
    assert _counts(out) == (4, 0, 1)
    assert err.startswith("failed: s2/broken.png: ") and len(err.strip().splitlines()) == 1
    assert not (dst / "s2" / "broken.j2k").exists()
    code, out, err = _protect(capsys, key, src, dst)  # the good ones stay done
    assert code == EXIT_FAILED and _counts(out) == (0, 4, 1)


def test_output_name_collision(tmp_path, capsys, faces):
    key = _key(tmp_path)
    src, dst = tmp_path / "in", tmp_path / "out"
    files = _tree(src, faces)
    Image.fromarray(faces[1]).save(src / "s1" / "1.tif")  # s1/1.png and s1/1.tif -> s1/1.j2k
    code, out, err = _protect(capsys, key, src, dst)
    assert code == EXIT_FAILED and _counts(out) == (3, 0, 2)
    assert "s1/1.png and s1/1.tif would both become s1/1.j2k" in err
    assert not (dst / "s1" / "1.j2k").exists() and len(files) == 4


# --------------------------------------------------------------------------- errors


def test_missing_key_refused(tmp_path, capsys, faces):
    src = tmp_path / "face.png"
    Image.fromarray(faces[0]).save(src)
    for cmd in (["protect", "--scheme", "lw4o6"], ["unprotect"]):
        code, out, err = _cli(capsys, *cmd, src, tmp_path / "o.j2k")
        assert code == EXIT_BAD_INPUT and out == ""
        assert len(err.strip().splitlines()) == 1 and "--key-file" in err and "--key-env" in err
    assert not (tmp_path / "o.j2k").exists()


def test_key_from_env(tmp_path, capsys, faces, monkeypatch):
    monkeypatch.setenv("FACESEC_TEST_KEY", KEY_HEX)
    src = tmp_path / "face.png"
    Image.fromarray(faces[0]).save(src)
    code, _, _ = _cli(capsys, "protect", "--scheme", "lw4o6", "--key-env", "FACESEC_TEST_KEY", src, tmp_path / "o.j2k")
    assert code == EXIT_OK
    code, _, _ = _unprotect(capsys, _key(tmp_path), tmp_path / "o.j2k", tmp_path / "p.j2k")
    assert code == EXIT_OK  # the same key from a file
    code, _, err = _cli(capsys, "protect", "--scheme", "lw4o6", "--key-env", "FACESEC_NOT_SET", src, tmp_path / "x.j2k")
    assert code == EXIT_BAD_INPUT and "FACESEC_NOT_SET" in err
    code, _, err = _cli(
        capsys,
        "protect",
        "--scheme",
        "lw4o6",
        "--key-env",
        "FACESEC_TEST_KEY",
        "--key-file",
        _key(tmp_path),
        src,
        tmp_path / "x.j2k",
    )
    assert code == EXIT_BAD_INPUT and "not both" in err


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--scheme", "lw4"], "lw<W>o<O>"),
        (["--scheme", "lw4o6", "--quality", "80"], "--quality"),
        (["--scheme", "lw50o60"], "exceeds 100"),
        (["--scheme", "jw10o0", "--restart"], "--restart"),
        (["--scheme", "jw10o0", "--quality", "0"], "--quality"),
        (["--scheme", "lw4o6", "--workers", "0"], "--workers"),
        (["--scheme", "lw4o6", "--app-id", ""], "--app-id"),
    ],
)
def test_bad_arguments(tmp_path, capsys, faces, extra, needle):
    src = tmp_path / "face.png"
    Image.fromarray(faces[0]).save(src)
    code, out, err = _cli(capsys, "protect", "--key-file", _key(tmp_path), *extra, src, tmp_path / "o.j2k")
    assert code == EXIT_BAD_INPUT and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err


def test_bad_output_suffix_and_overlap(tmp_path, capsys, faces):
    key = _key(tmp_path)
    src = tmp_path / "in"
    files = _tree(src, faces)
    code, _, err = _protect(capsys, key, files["s1/1.png"], tmp_path / "o.png")
    assert code == EXIT_BAD_INPUT and ".j2k" in err
    code, _, err = _protect(capsys, key, src, src / "protected")
    assert code == EXIT_BAD_INPUT and "inside the input folder" in err
    code, _, err = _protect(capsys, key, src, src)
    assert code == EXIT_BAD_INPUT
    code, _, err = _protect(capsys, key, src, tmp_path)
    assert code == EXIT_BAD_INPUT and "contain the input folder" in err
    code, _, err = _protect(capsys, key, files["s2/2.jpg"], files["s2/2.jpg"], "jw10o0")
    assert code == EXIT_BAD_INPUT and "input" in err
    code, _, err = _protect(capsys, key, tmp_path / "missing", tmp_path / "o")
    assert code == EXIT_BAD_INPUT and "no such file" in err
    assert not (src / "protected").exists()


@pytest.mark.parametrize("content", [b"", b"garbage, not an image", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 truncated"])
def test_garbage_input_file(tmp_path, capsys, content):
    src = tmp_path / "face.jpg"
    src.write_bytes(content)
    code, out, err = _protect(capsys, _key(tmp_path), src, tmp_path / "o.j2k")
    assert (code, out) == (EXIT_BAD_INPUT, "")
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"error: {src}: ") and "Traceback" not in err
    assert not (tmp_path / "o.j2k").exists() and not (tmp_path / "o.j2k.json").exists()


def _protected_file(tmp_path, capsys, faces, scheme="lw4o6") -> Path:
    src = tmp_path / "face.png"
    Image.fromarray(faces[0]).save(src)
    dst = tmp_path / "prot" / ("face.jpg" if scheme.startswith("j") else "face.j2k")
    assert _protect(capsys, _key(tmp_path), src, dst, scheme)[0] == EXIT_OK
    return dst


@pytest.mark.parametrize("scheme", ["lw4o6", "jw10o0"])
@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_protected_file(tmp_path, capsys, faces, scheme, damage):
    dst = _protected_file(tmp_path, capsys, faces, scheme)
    data = dst.read_bytes()
    dst.write_bytes({"truncate": data[: len(data) // 2], "garbage": os.urandom(len(data)), "empty": b""}[damage])
    out_file = tmp_path / "plain" / dst.name
    code, out, err = _unprotect(capsys, _key(tmp_path), dst, out_file)
    assert (code, out) == (EXIT_BAD_INPUT, "")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out_file.exists()


def test_tampered_window_detected(tmp_path, capsys, faces):
    dst = _protected_file(tmp_path, capsys, faces)
    data = bytearray(dst.read_bytes())
    side = json.loads(Path(f"{dst}.json").read_text())
    # Flip a bit near the end of the encrypted window: the codestream still
    # parses, only the tag can tell.
    pos = int(len(data) * (side["offset"] + side["window"] / 2) / 100)
    data[pos] ^= 0x01
    dst.write_bytes(bytes(data))
    code, _, err = _unprotect(capsys, _key(tmp_path), dst, tmp_path / "plain.j2k")
    assert code == EXIT_BAD_INPUT and ("integrity" in err or "codestream" in err)


def test_no_sidecar(tmp_path, capsys, faces):
    dst = _protected_file(tmp_path, capsys, faces)
    Path(f"{dst}.json").unlink()
    code, _, err = _unprotect(capsys, _key(tmp_path), dst, tmp_path / "plain.j2k")
    assert code == EXIT_BAD_INPUT and "sidecar" in err


def test_wrong_key(tmp_path, capsys, faces):
    dst = _protected_file(tmp_path, capsys, faces)
    other = _key(tmp_path, OTHER_HEX, "other.key")
    code, out, err = _unprotect(capsys, other, dst, tmp_path / "plain.j2k")
    assert (code, out) == (EXIT_BAD_INPUT, "") and "wrong key" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "plain.j2k").exists()
    # Without the key id check, AES-CTR under another key just yields other
    # bytes; the keyed tag still catches it.
    side = json.loads(Path(f"{dst}.json").read_text())
    app = MasterKey(bytes.fromhex(OTHER_HEX)).application("default")
    with pytest.raises(ProtectError, match="integrity"):
        unprotect_codestream(dst.read_bytes(), {**side, "key_id": app.key_id}, app, place=dst.name)


def test_a_wrong_key_for_a_whole_folder_is_one_line(tmp_path, capsys, faces):
    src, dst = tmp_path / "in", tmp_path / "out"
    _tree(src, faces)
    assert _protect(capsys, _key(tmp_path), src, dst)[0] == EXIT_OK
    other = _key(tmp_path, OTHER_HEX, "other.key")
    code, out, err = _unprotect(capsys, other, dst, tmp_path / "plain")
    assert code == EXIT_FAILED and _counts(out) == (0, 0, 4)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: all 4 files failed: wrong key: protected with key id"), err
    # Failures that differ keep their per-file list.
    Path(f"{dst}/s1/1.j2k.json").unlink()
    code, out, err = _unprotect(capsys, other, dst, tmp_path / "plain")
    lines = err.strip().splitlines()
    assert code == EXIT_FAILED and len(lines) == 4 and all(line.startswith("failed: ") for line in lines), err
    assert "failed: s1/1.j2k: no sidecar" in err and "failed: s2/1.j2k: wrong key" in err


def test_codestream_without_sop_eph_refused(faces):
    import dataclasses

    from benchmark.codecs.j2k import J2KParams, encode_j2k

    fields = {f.name for f in dataclasses.fields(J2KParams)}
    if not {"sop", "eph"} <= fields:
        pytest.skip("J2KParams has no sop/eph switches")
    plain = encode_j2k(faces[0], J2KParams(progression="LRCP", ratios=(80, 40, 20, 10, 5, 1), sop=False, eph=False))
    app = MasterKey(bytes(range(32))).application("default")
    with pytest.raises(ProtectError, match="codestream"):
        protect_codestream(plain, build_scheme("lw4o6", {}), app, "face", "face.j2k")


# --------------------------------------------------------------------------- what a probe of the file CLI found


def test_a_damaged_output_of_the_right_size_is_redone(tmp_path, capsys, faces):
    key = _key(tmp_path)
    src, dst = tmp_path / "in", tmp_path / "out"
    _tree(src, faces)
    assert _protect(capsys, key, src, dst)[0] == EXIT_OK
    good = (dst / "s1" / "1.j2k").read_bytes()
    damaged = bytearray(good)
    damaged[len(damaged) // 2] ^= 0xFF  # same size, sidecar untouched
    (dst / "s1" / "1.j2k").write_bytes(bytes(damaged))
    code, out, _ = _protect(capsys, key, src, dst)
    assert code == EXIT_OK and _counts(out) == (1, 3, 0)
    assert (dst / "s1" / "1.j2k").read_bytes() == good


def test_a_second_key_is_refused_unless_asked(tmp_path, capsys, faces):
    src, dst = tmp_path / "in", tmp_path / "out"
    _tree(src, faces)
    assert _protect(capsys, _key(tmp_path), src, dst)[0] == EXIT_OK
    before = {p: p.read_bytes() for p in dst.rglob("*") if p.is_file()}
    other = _key(tmp_path, OTHER_HEX, "other.key")
    code, out, err = _protect(capsys, other, src, dst)
    assert (code, out) == (EXIT_BAD_INPUT, "") and "another key" in err and "--mix-keys" in err
    assert len(err.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in dst.rglob("*") if p.is_file()} == before
    # Another application id is another key too.
    code, _, err = _protect(capsys, _key(tmp_path), src, dst, "lw4o6", "--app-id", "other")
    assert code == EXIT_BAD_INPUT and "another key" in err
    # Explicitly allowed: everything is re-protected under the new key.
    code, out, _ = _protect(capsys, other, src, dst, "lw4o6", "--mix-keys")
    assert code == EXIT_OK and _counts(out) == (4, 0, 0)
    code, out, _ = _unprotect(capsys, other, dst, tmp_path / "plain")
    assert code == EXIT_OK and _counts(out) == (4, 0, 0)
    # A single file whose existing output carries another key is refused the same way.
    one = tmp_path / "one.j2k"
    assert _protect(capsys, _key(tmp_path), src / "s1" / "1.png", one)[0] == EXIT_OK
    assert _protect(capsys, other, src / "s1" / "1.png", one)[0] == EXIT_BAD_INPUT


def test_links_hidden_and_other_files_are_counted_and_listed_never_followed(tmp_path, capsys, faces):
    key = _key(tmp_path)
    src, dst, outside = tmp_path / "in", tmp_path / "out", tmp_path / "elsewhere"
    _tree(src, faces)
    outside.mkdir()
    Image.fromarray(faces[0]).save(outside / "secret.png")
    (src / "s3").mkdir()
    (src / "s3" / "linked.png").symlink_to(outside / "secret.png")
    (src / "linked-folder").symlink_to(outside, target_is_directory=True)
    (src / ".hidden-folder").mkdir()
    Image.fromarray(faces[1]).save(src / ".hidden-folder" / "x.png")
    code, out, err = _protect(capsys, key, src, dst)
    assert (code, err) == (EXIT_OK, "") and _counts(out) == (4, 0, 0)
    listed = {line.split(": ")[1]: line for line in out.splitlines() if line.startswith("ignored: ")}
    assert set(listed) == {".hidden-folder", ".hidden.png", "linked-folder", "s1/notes.txt", "s3/linked.png"}
    assert "symbolic link" in listed["s3/linked.png"] and "symbolic link" in listed["linked-folder"]
    assert "5 ignored (" in out
    assert not (dst / "s3").exists() and not (dst / "linked-folder").exists()


def test_nothing_is_written_through_a_link_inside_out(tmp_path, capsys, faces):
    key = _key(tmp_path)
    src, dst, outside = tmp_path / "in", tmp_path / "out", tmp_path / "elsewhere"
    _tree(src, faces)
    outside.mkdir()
    dst.mkdir()
    (dst / "s1").symlink_to(outside, target_is_directory=True)
    code, out, err = _protect(capsys, key, src, dst)
    assert code == EXIT_FAILED and _counts(out) == (2, 0, 2)
    assert "symbolic link" in err
    assert list(outside.iterdir()) == []
    # The same for unprotect.
    (dst / "s1").unlink()
    assert _protect(capsys, key, src, dst)[0] == EXIT_OK
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "s2").symlink_to(outside, target_is_directory=True)
    code, out, err = _unprotect(capsys, key, dst, plain)
    assert code == EXIT_FAILED and _counts(out) == (2, 0, 2) and list(outside.iterdir()) == []


def test_sidecars_are_read_with_their_file_not_listed(tmp_path, capsys, faces):
    key = _key(tmp_path)
    src, dst = tmp_path / "in", tmp_path / "out"
    _tree(src, faces)
    _protect(capsys, key, src, dst)
    (dst / "README.txt").write_text("notes")
    code, out, _ = _unprotect(capsys, key, dst, tmp_path / "plain")
    assert code == EXIT_OK and "1 ignored (1 not a file this command reads (suffix))" in out
    assert [line for line in out.splitlines() if line.startswith("ignored: ")] == [
        "ignored: README.txt: not a file this command reads (suffix)"
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("[" * 30_000 + "]" * 30_000, "nested too deeply"),
        ('{"format": ' + "9" * 5000 + "}", "unreadable: "),
        (" " * 70_000 + "{}", "larger than 65536 bytes"),
        ("{not json", "unreadable: "),
    ],
)
def test_hostile_sidecars_are_one_line_errors(tmp_path, text, message):
    p = tmp_path / "x.j2k.json"
    p.write_text(text)
    with pytest.raises(ProtectError, match=message) as info:
        read_sidecar(p)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


# --------------------------------------------------------------------------- a file is bound to its place


def _copy_protected(src: Path, dst: Path, *, move: bool = False) -> None:
    """Copy (or move) a protected file with its sidecar, as ``cp`` / ``mv`` would."""
    for a, b in ((src, dst), (Path(f"{src}.json"), Path(f"{dst}.json"))):
        b.write_bytes(a.read_bytes())
        if move:
            a.unlink()


def test_a_copied_or_renamed_file_is_refused_and_the_rest_restores(tmp_path, capsys, faces):
    key = _key(tmp_path)
    src, dst, plain = tmp_path / "in", tmp_path / "out", tmp_path / "plain"
    _tree(src, faces)
    assert _protect(capsys, key, src, dst)[0] == EXIT_OK
    _copy_protected(dst / "s1" / "1.j2k", dst / "s1" / "3.j2k")  # a/3 would become a/1's face
    _copy_protected(dst / "s2" / "2.j2k", dst / "s2" / "9.j2k", move=True)
    plain.mkdir()
    (plain / "s1").mkdir()
    (plain / "s1" / "3.j2k").write_bytes(b"left by an earlier run")  # must be neither skipped nor replaced
    code, out, err = _unprotect(capsys, key, dst, plain)
    assert code == EXIT_FAILED and _counts(out) == (3, 0, 2)
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all("renamed, copied or moved" in line for line in lines), err
    assert any(line.startswith("failed: s1/3.j2k: protected as 's1/1.j2k'") for line in lines), err
    assert any(line.startswith("failed: s2/9.j2k: protected as 's2/2.j2k'") for line in lines), err
    assert (plain / "s1" / "3.j2k").read_bytes() == b"left by an earlier run"
    assert not (plain / "s2" / "9.j2k").exists()
    assert sorted(p.relative_to(plain).as_posix() for p in plain.rglob("*.j2k")) == [
        "s1/1.j2k",
        "s1/2.j2k",
        "s1/3.j2k",
        "s2/1.j2k",
    ]
    # Editing the sidecar's path to where the copy lies breaks the keyed tag.
    side = json.loads(Path(f"{dst}/s1/3.j2k.json").read_text())
    Path(f"{dst}/s1/3.j2k.json").write_text(json.dumps({**side, "path": "s1/3.j2k"}))
    (plain / "s1" / "3.j2k").unlink()
    code, out, err = _unprotect(capsys, key, dst, plain)
    assert code == EXIT_FAILED and "s1/3.j2k: integrity check failed" in err
    assert not (plain / "s1" / "3.j2k").exists()


def test_a_moved_tree_restores_and_a_single_file_keeps_its_name(tmp_path, capsys, faces):
    key = _key(tmp_path)
    src, dst = tmp_path / "in", tmp_path / "out"
    _tree(src, faces)
    assert _protect(capsys, key, src, dst)[0] == EXIT_OK
    assert _unprotect(capsys, key, dst, tmp_path / "plain")[0] == EXIT_OK
    moved = tmp_path / "elsewhere" / "deeper" / "renamed"
    moved.parent.mkdir(parents=True)
    dst.rename(moved)
    code, out, err = _unprotect(capsys, key, moved, tmp_path / "plain2")
    assert (code, err) == (EXIT_OK, "") and _counts(out) == (4, 0, 0)
    restored = {p.relative_to(tmp_path / "plain2"): p.read_bytes() for p in (tmp_path / "plain2").rglob("*.j2k")}
    assert restored == {p.relative_to(tmp_path / "plain"): p.read_bytes() for p in (tmp_path / "plain").rglob("*.j2k")}
    assert len(restored) == 4

    # A single file is bound to its name: moved, it restores; renamed, it is refused.
    one = tmp_path / "one" / "face.j2k"
    assert _protect(capsys, key, src / "s1" / "1.png", one)[0] == EXIT_OK
    _copy_protected(one, tmp_path / "face.j2k", move=True)
    assert _unprotect(capsys, key, tmp_path / "face.j2k", tmp_path / "a.j2k")[0] == EXIT_OK
    assert (tmp_path / "a.j2k").read_bytes() == (tmp_path / "plain" / "s1" / "1.j2k").read_bytes()
    _copy_protected(tmp_path / "face.j2k", tmp_path / "other.j2k")
    code, out, err = _unprotect(capsys, key, tmp_path / "other.j2k", tmp_path / "b.j2k")
    assert (code, out) == (EXIT_BAD_INPUT, "") and "renamed, copied or moved" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "b.j2k").exists()


def _as_format_1(path: Path, key_hex: str = KEY_HEX) -> None:
    """Rewrite a protected file and its sidecar as format 1 wrote them (tag and nonce without the path)."""
    side = json.loads(Path(f"{path}.json").read_text())
    app = MasterKey(bytes.fromhex(key_hex)).application(side["app_id"])
    scheme = build_scheme(side["scheme"], {})
    aes, mac = scheme_keys(app, scheme)
    plaintext = unprotect_codestream(path.read_bytes(), side, app, place=side["path"])
    tag = codestream_tag(mac, side["sample_id"], plaintext, path=None)
    protected = scheme.encrypt(plaintext, aes, synthetic_nonce(app, side["sample_id"], tag))
    del side["path"]
    path.write_bytes(protected)
    Path(f"{path}.json").write_text(json.dumps({**side, "format": "facesec-protect/1", "tag": tag}))


def test_format_1_sidecars_restore_only_where_their_sample_id_puts_them(tmp_path, capsys, faces):
    key = _key(tmp_path)
    src, dst, plain = tmp_path / "in", tmp_path / "out", tmp_path / "plain"
    _tree(src, faces)
    assert _protect(capsys, key, src, dst)[0] == EXIT_OK
    assert _unprotect(capsys, key, dst, tmp_path / "ref")[0] == EXIT_OK
    for name in ("s1/1.j2k", "s1/2.j2k"):
        _as_format_1(dst / name)
    _copy_protected(dst / "s1" / "1.j2k", dst / "s1" / "3.j2k")
    code, out, err = _unprotect(capsys, key, dst, plain)
    assert code == EXIT_FAILED and _counts(out) == (4, 0, 1)
    assert err.startswith("failed: s1/3.j2k: format-1 sidecar of sample 's1/1.png'") and len(err.splitlines()) == 1
    assert all((plain / n).read_bytes() == (tmp_path / "ref" / n).read_bytes() for n in ("s1/1.j2k", "s1/2.j2k"))
    assert not (plain / "s1" / "3.j2k").exists()


# --------------------------------------------------------------------------- decoded images and keys


def test_unprotect_png_writes_the_decoded_images_beside_the_codestreams(tmp_path, capsys, faces):
    key = _key(tmp_path)
    src, dst, plain = tmp_path / "in", tmp_path / "out", tmp_path / "plain"
    files = _tree(src, faces)
    assert _protect(capsys, key, src, dst)[0] == EXIT_OK
    code, out, err = _unprotect(capsys, key, dst, plain, "--png")
    assert (code, err) == (EXIT_OK, "") and _counts(out) == (4, 0, 0)
    for name, path in files.items():
        stem = plain / Path(name).with_suffix("")
        assert stem.with_suffix(".j2k").is_file()
        # Lossless JPEG 2000: the decoded PNG holds the original pixels (grey stays grey).
        assert np.array_equal(np.asarray(Image.open(stem.with_suffix(".png"))), read_pixels(path))
    # A rerun skips the restored codestreams and puts back a missing image.
    (plain / "s1" / "1.png").unlink()
    code, out, _ = _unprotect(capsys, key, dst, plain, "--png")
    assert code == EXIT_OK and _counts(out) == (0, 4, 0) and (plain / "s1" / "1.png").is_file()
    # Without --png only codestreams are written.
    code, _, _ = _unprotect(capsys, key, dst, tmp_path / "streams")
    assert code == EXIT_OK and not list((tmp_path / "streams").rglob("*.png"))


def test_unprotect_png_of_a_jpeg_file_and_a_name_clash(tmp_path, capsys, faces):
    key = _key(tmp_path)
    src, dst = tmp_path / "face.png", tmp_path / "prot"
    Image.fromarray(faces[0]).save(src)
    assert _protect(capsys, key, src, dst / "face.jpg", "jw10o0")[0] == EXIT_OK
    code, _, err = _unprotect(capsys, key, dst / "face.jpg", tmp_path / "face.jpg", "--png")
    assert (code, err) == (EXIT_OK, "")
    decoded = np.asarray(Image.open(tmp_path / "face.png"))
    assert decoded.shape == faces[0].shape and decoded.dtype == np.uint8
    code, _, err = _unprotect(capsys, key, dst / "face.jpg", tmp_path / "x.png", "--png")
    assert code == EXIT_BAD_INPUT and "must not end in .png" in err
    # face.j2k and face.jpg in one folder would both decode to face.png: neither is written.
    assert _protect(capsys, key, src, dst / "face.j2k")[0] == EXIT_OK
    code, out, err = _unprotect(capsys, key, dst, tmp_path / "both", "--png")
    assert code == EXIT_FAILED and _counts(out) == (0, 0, 2)
    assert "face.j2k and face.jpg would both become face.png" in err
    assert not list((tmp_path / "both").rglob("*.png"))


def test_unprotect_help_says_it_writes_codestreams(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["unprotect", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "not the original image files" in help_text and "--png" in help_text


def test_key_files_are_ignored_and_the_recipe_writes_outside_the_tree(tmp_path, capsys, faces):
    repo = Path(__file__).resolve().parents[1]
    if not (repo / ".git").exists():
        pytest.skip("not a git checkout")
    for name in ("facesec.key", "keys/other.key"):
        assert subprocess.run(["git", "-C", str(repo), "check-ignore", "-q", name], check=False).returncode == 0
    recipes = [line for line in (repo / "README.md").read_text().splitlines() if "/dev/urandom" in line]
    recipe = protect.KEY_RECIPE
    assert recipes and all("> ~/" in line and "umask 077" in line for line in [*recipes, recipe])
    src = tmp_path / "face.png"
    Image.fromarray(faces[0]).save(src)
    _, _, err = _cli(capsys, "unprotect", src, tmp_path / "o.j2k")
    assert recipe in err


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_readable_key_file_is_warned_about_in_one_line_without_python_source(tmp_path, faces):
    key = _key(tmp_path)
    key.chmod(0o644)
    src = tmp_path / "in"
    _tree(src, faces[:1])
    run = subprocess.run(
        [sys.executable, str(REPO / "bench.py"), "protect", "--scheme", "lw4o6", "--key-file", str(key)]
        + ["--workers", "1", str(src), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert run.returncode == EXIT_OK, run.stderr
    warned = [line for line in run.stderr.splitlines() if "key file" in line or "MasterKey" in line]
    assert warned == [f"warning: {key}: key file is accessible to group/others (mode 0644); run: chmod 600 {key}"]
