"""Bad protocols give one located line; good ones validate."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from benchmark.engine.protocol import ProtocolError, load_protocol, parse_set

REPO = Path(__file__).resolve().parents[1]

GOOD = """\
name: t
dataset:
  name: synthetic
  params: {n_subjects: 6, n_images: 3}
  folds: 2
recognizers:
  - {name: lbp, params: {radius: 2}}
metrics: [eer]
"""

LINE_RE = re.compile(r"^\S+\.yaml(:\d+|: --set \S+): ")


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def error_of(tmp_path: Path, text: str, overrides=()) -> str:
    with pytest.raises(ProtocolError) as info:
        load_protocol(write(tmp_path, text), list(overrides))
    msg = str(info.value)
    assert "\n" not in msg
    assert LINE_RE.match(msg), msg
    return msg


def test_good_protocol_validates(tmp_path):
    lp = load_protocol(write(tmp_path, GOOD))
    assert lp.name == "t"
    assert [i.label for i in lp.instances("recognizers")] == ["lbp"]


def test_shipped_protocols_validate():
    for path in sorted((REPO / "protocols").glob("*.yaml")):
        load_protocol(path)


@pytest.mark.parametrize(
    "text, overrides, expected",
    [
        # 1 YAML syntax
        (GOOD.replace("folds: 2", "folds: [2"), (), r"p\.yaml:\d+: YAML syntax error"),
        # 2 unknown top-level key with a suggestion
        (GOOD + "recognisers: []\n", (), r"p\.yaml:9: recognisers: unknown key; did you mean 'recognizers'\?"),
        # 3 unknown component with did-you-mean
        (
            GOOD.replace("name: lbp", "name: lbpp"),
            (),
            r"p\.yaml:7: recognizers\[0\]\.name: unknown recognizer 'lbpp'; did you mean 'lbp'",
        ),
        # 4 out-of-range param
        (GOOD.replace("radius: 2", "radius: 0"), (), r"p\.yaml:7: recognizers\[0\]\.params\.radius: 0 is not in \[1, "),
        # 5 unknown param: the name is wrong, not its value
        (
            GOOD.replace("radius: 2", "radios: 2"),
            (),
            r"p\.yaml:7: recognizers\[0\]\.params\.radios: unknown parameter; did you mean 'radius'\? \(allowed: ",
        ),
        # 6 wrong type
        (GOOD.replace("folds: 2", "folds: two"), (), r"p\.yaml:5: dataset\.folds: 'two' is not an integer"),
        # 7 missing required field
        (GOOD.replace("  name: synthetic\n", ""), (), r"p\.yaml:\d+: dataset\.name: is required but missing"),
        # 8 duplicate key
        (GOOD.replace("  folds: 2\n", "  folds: 2\n  folds: 3\n"), (), r"p\.yaml:6: dataset\.folds: duplicate key"),
        # 9 bad --set key
        (GOOD, ("dataset.rooot=/x",), r"--set dataset\.rooot=/x: dataset\.rooot: unknown key; did you mean 'root'\?"),
        # 10 bad --set type
        (GOOD, ("dataset.folds=abc",), r"--set dataset\.folds=abc: dataset\.folds: 'abc' is not an integer"),
        # 11 unknown dataset
        (
            GOOD.replace("name: synthetic", "name: synthetik"),
            (),
            r"dataset\.name: unknown dataset 'synthetik'; did you mean 'synthetic'",
        ),
        # 12 out-of-range structural field
        (GOOD.replace("folds: 2", "folds: 1"), (), r"p\.yaml:5: dataset\.folds: 1 is not >= 2"),
        # 13 empty recognizer list
        (
            GOOD.replace("  - {name: lbp, params: {radius: 2}}\n", "").replace("recognizers:", "recognizers: []"),
            (),
            r"recognizers: needs at least 1 item",
        ),
        # 14 test fold out of range
        (
            GOOD.replace("folds: 2", "folds: 2\n  test_folds: [0, 5]"),
            (),
            r"dataset\.test_folds\[1\]: 5 is not in \[0, 1\]",
        ),
        # 15 empty grid
        (GOOD.replace("params: {radius: 2}", "grid: {radius: []}"), (), r"recognizers\[0\]\.grid: .*empty list"),
        # 16 grid value out of range
        (
            GOOD.replace("params: {radius: 2}", "grid: {radius: [1, 0]}"),
            (),
            r"recognizers\[0\]\.grid\.radius: 0 is not in",
        ),
        # 17 unknown metric
        (
            GOOD.replace("metrics: [eer]", "metrics: [eerr]"),
            (),
            r"p\.yaml:8: metrics\[0\]\.name: unknown metric 'eerr'",
        ),
        # 18 --set into a missing list item
        (GOOD, ("recognizers.3.name=lbp",), r"--set recognizers\.3\.name=lbp: recognizers\[3\]: no list item 3"),
        # 19 not a mapping
        ("- just\n- a list\n", (), r"p\.yaml:1: a protocol must be a YAML mapping"),
        # 21 missing dataset root folder
        (
            GOOD.replace("folds: 2", "folds: 2\n  root: /no/such/folder"),
            (),
            r"p\.yaml:6: dataset\.root: '/no/such/folder' does not exist",
        ),
        # 22 attacks without a scheme
        (GOOD + "attacks: [naive]\n", (), r"p\.yaml:9: attacks: attacks need at least one scheme"),
        # 23 both key sources
        (
            GOOD + "keys: {file: k, env: K}\n",
            (),
            r"p\.yaml:9: keys: give exactly one of file, env or random: true \(got file, env\)",
        ),
        (GOOD + "keys: {}\n", (), r"p\.yaml:9: keys: give exactly one of file, env or random: true \(got none\)"),
        # 24 a key inline is an unknown key, never accepted
        (GOOD + "keys: {value: 00ff}\n", (), r"p\.yaml:9: keys\.value: unknown key"),
        # 25 unknown certification metric
        (
            GOOD + "certify:\n  - {metric: accuracy, max: 0.1}\n",
            (),
            r"p\.yaml:10: certify\[0\]\.metric: 'accuracy' is not a known metric \(allowed: ",
        ),
        # 26 criterion with both bounds
        (
            GOOD + "certify:\n  - {metric: eer, max: 0.1, min: 0.0}\n",
            (),
            r"p\.yaml:10: certify\[0\]: give exactly one of max or min",
        ),
        # 27 unknown view kind
        (
            GOOD + "views: [strength, linkeage]\n",
            (),
            r"p\.yaml:9: views\[1\]: 'linkeage' is not one of 'preservation', 'renewal', 'strength' or 'linkage'",
        ),
        # 28 an attack paired with a scheme it cannot attack
        (
            GOOD + "schemes: [noise]\nattacks: [naive, conceal-codeblock]\n",
            (),
            r"^\S*p\.yaml:10: attacks\[1\]\.name: conceal-codeblock cannot attack scheme noise \(schemes\[0\]\): needs a scheme implementing ByteCipherScheme",
        ),
        (
            GOOD + "schemes: [{name: jpeg, params: {window: 5}}]\nattacks: [conceal-packet]\n",
            (),
            r"p\.yaml:10: attacks\[0\]\.name: conceal-packet cannot attack scheme jw5o0 \(schemes\[0\]\): parses j2k codestreams, not jpeg",
        ),
        # 29 a window that does not end inside the codestream
        (
            GOOD + "schemes: [{name: j2k, params: {window: 60, offset: 50}}]\n",
            (),
            r"p\.yaml:9: schemes\[0\]\.params\.window: 60 plus offset 50 exceeds 100",
        ),
        # 30 a competence requirement out of range or misspelt
        (
            GOOD + "competence: {max_fnmr: 1.5}\n",
            (),
            r"p\.yaml:9: competence\.max_fnmr: .*1",
        ),
        (
            GOOD + "competence: {fmr: 0}\n",
            (),
            r"p\.yaml:9: competence\.fmr: ",
        ),
        (
            GOOD + "competence: {max_fnrm: 0.1}\n",
            (),
            r"p\.yaml:9: competence\.max_fnrm: unknown key; did you mean 'max_fnmr'",
        ),
        # 20 duplicate component
        (
            GOOD.replace("metrics:", "  - lbp\nmetrics:").replace(
                "  - {name: lbp, params: {radius: 2}}\n", "  - lbp\n"
            ),
            (),
            r"recognizers\[1\]: duplicate recognizer 'lbp'",
        ),
    ],
)
def test_bad_protocols(tmp_path, text, overrides, expected):
    msg = error_of(tmp_path, text, overrides)
    assert re.search(expected, msg), msg


def test_missing_file(tmp_path):
    with pytest.raises(ProtocolError, match="no such protocol file"):
        load_protocol(tmp_path / "nope.yaml")


def test_grid_expands_to_labelled_instances(tmp_path):
    lp = load_protocol(write(tmp_path, GOOD.replace("params: {radius: 2}", "grid: {radius: [1, 2, 3]}")))
    assert [i.label for i in lp.instances("recognizers")] == ["lbp[radius=1]", "lbp[radius=2]", "lbp[radius=3]"]
    assert [i.component.radius for i in lp.instances("recognizers")] == [1, 2, 3]


def test_set_values_are_typed(tmp_path):
    lp = load_protocol(
        write(tmp_path, GOOD), ["dataset.folds=3", f"dataset.root={tmp_path}", "recognizers.0.params.radius=1"]
    )
    assert lp.model.dataset.folds == 3 and isinstance(lp.model.dataset.folds, int)
    assert lp.model.dataset.root == str(tmp_path)
    assert lp.instances("recognizers")[0].component.radius == 1


def test_parse_set_rejects_missing_equals():
    with pytest.raises(ProtocolError, match="expected dotted.key=value"):
        parse_set("dataset.root")


def test_set_takes_list_items_as_messages_print_them(tmp_path):
    # recognizers[0] (as every message prints a path) and recognizers.0 are the same item.
    for key in ("recognizers[0].params.radius", "recognizers.0.params.radius"):
        lp = load_protocol(write(tmp_path, GOOD), [f"{key}=3"])
        assert lp.instances("recognizers")[0].component.radius == 3
        assert lp.overrides == {key: "3"}  # provenance keeps the --set as typed
    with pytest.raises(ProtocolError, match=r"name\[0\] or name\.0"):
        parse_set("[0].name=lbp")


@pytest.mark.parametrize(
    "override, expected",
    [
        # the case: a value refused after validation, under the --set's key
        (
            "recognizers[0].params.radius=0",
            r"--set recognizers\[0\]\.params\.radius=0: recognizers\[0\]\.params\.radius: 0 is",
        ),
        # an unknown key the --set wrote on its way to the value
        (
            "dataset.parms.n_subjects=3",
            r"--set dataset\.parms\.n_subjects=3: dataset\.parms: unknown key; did you mean 'params'",
        ),
        # a required field missing beside what the --set created
        ("attacker.rotate=true", r"--set attacker\.rotate=true: attacker\.source: is required but missing"),
        # a list item that is not there, printed as messages print paths
        ("recognizers[4].name=lbp", r"--set recognizers\[4\]\.name=lbp: recognizers\[4\]: no list item 4"),
        # an unknown parameter name: the name is wrong, not its value
        (
            "dataset.params.n_subject=10",
            r"--set dataset\.params\.n_subject=10: dataset\.params\.n_subject: unknown parameter; "
            r"did you mean 'n_subjects'\? \(allowed: n_subjects, ",
        ),
    ],
)
def test_set_errors_are_located_at_the_set(tmp_path, override, expected):
    msg = error_of(tmp_path, GOOD, [override])
    assert re.match(r"\S*p\.yaml: " + expected, msg), msg


# --------------------------------------------------------------------------- hostile input


def test_grid_size_is_capped_before_expanding(tmp_path):
    values = ", ".join(str(i % 90) for i in range(2000))
    text = GOOD + f"schemes:\n  - name: j2k\n    grid:\n      window: [{values}]\n      offset: [{values}]\n"
    msg = error_of(tmp_path, text)
    assert "schemes[0].grid: 2000 x 2000 = 4000000 settings; at most 1000 per component" in msg
    assert re.match(r"\S*p\.yaml:12: ", msg)  # the grid mapping starts at its first key


HEX_KEY = "00112233445566778899aabbccddeeff" * 2


@pytest.mark.parametrize(
    "override",
    [f"keys.env={HEX_KEY}", f"keys.file={HEX_KEY}", f"keys.envv={HEX_KEY}", f"keys.random={HEX_KEY}", HEX_KEY],
)
def test_a_key_pasted_into_set_is_never_repeated(tmp_path, override):
    msg = error_of(tmp_path, GOOD, [override])
    assert HEX_KEY not in msg and HEX_KEY[:16] not in msg
    assert "<hidden: looks like a key>" in msg


def test_a_key_pasted_into_the_yaml_is_never_repeated(tmp_path):
    msg = error_of(tmp_path, GOOD + f"keys: {{env: K{HEX_KEY}}}\n")
    assert HEX_KEY not in msg and "keys.env: looks like key material" in msg


def test_env_must_be_a_variable_name(tmp_path):
    assert "keys.env: 'MY-KEY' is not an environment variable name" in error_of(tmp_path, GOOD, ["keys.env=MY-KEY"])
    assert load_protocol(write(tmp_path, GOOD), ["keys.env=FACESEC_MASTER_KEY"]).model.keys.env == "FACESEC_MASTER_KEY"


@pytest.mark.parametrize(
    "override, message",
    [
        ("notes=" + "[" * 20_000 + "]" * 20_000, "notes: YAML error: nested too deeply"),
        ("dataset.folds=" + "7" * 5000, "dataset.folds: an integer of more than 4300 digits"),
        ("notes=" + "y" * 20_000, "notes: a string of 20,000 characters: at most 10,000"),
        ("notes=@" + "y" * 20_000, "notes: a string of 20,001 characters: at most 10,000"),  # not YAML: text
        ("notes=" + "y" * 2_000_000, "notes: YAML text of 2,000,000 characters refused: at most 1,000,000"),
    ],
    ids=["deep", "integer", "string", "text", "huge"],
)
def test_hostile_set_values_are_bad_input(tmp_path, override, message):
    msg = error_of(tmp_path, GOOD, [override])
    assert message in msg and len(msg) < 400


def test_a_set_value_that_is_not_yaml_is_taken_as_text(tmp_path):
    assert load_protocol(write(tmp_path, GOOD), ["notes=[unclosed"]).model.notes == "[unclosed"


def test_long_set_values_are_cut_in_messages(tmp_path):
    msg = error_of(tmp_path, GOOD, ["dataset.foldz=" + "y" * 1000])
    assert "y" * 100 not in msg and "..." in msg


def test_competence_defaults_and_can_be_switched_off(tmp_path):
    lp = load_protocol(write(tmp_path, GOOD))
    assert lp.model.competence is not None
    assert (lp.model.competence.max_fnmr, lp.model.competence.fmr) == (0.1, 0.001)
    assert load_protocol(write(tmp_path, GOOD + "competence: null\n")).model.competence is None
    tuned = load_protocol(write(tmp_path, GOOD), ["competence.max_fnmr=0.05"]).model.competence
    assert tuned is not None and tuned.max_fnmr == 0.05


CHAINS = """\
name: chains
dataset:
  name: synthetic
  params: {n_subjects: 8, n_images: 2}
  folds: 4
  test_folds: [0]
recognizers: [sface]
schemes: [{name: j2k, params: {window: 4, offset: 6}}]
attacks:
  - naive
  - conceal-codeblock
  - {name: inpaint, params: {epochs: 1}}
  - {name: inpaint, params: {input: conceal-codeblock, epochs: 1}}
  - {name: finetune, params: {input: conceal-codeblock, epochs: 1}}
attacker: {source: folds}
"""


def test_learned_attacks_on_different_inputs_sit_side_by_side(tmp_path):
    """A chain is another attack: its label names its input, so it does not clash with the naive-input entry."""
    lp = load_protocol(write(tmp_path, CHAINS))
    assert [i.label for i in lp.instances("attacks")] == [
        "naive",
        "conceal-codeblock",
        "inpaint",
        "inpaint(conceal-codeblock)",
        "finetune(conceal-codeblock)",
    ]


def test_a_true_duplicate_attack_is_still_refused(tmp_path):
    text = CHAINS.replace(
        "  - {name: finetune,", "  - {name: inpaint, params: {input: conceal-codeblock, epochs: 1}}\n#"
    )
    msg = error_of(tmp_path, text)
    assert re.search(r"p\.yaml:14: attacks\[4\]: duplicate attack 'inpaint\(conceal-codeblock\)'$", msg), msg


def test_entries_that_differ_only_where_the_label_is_silent_are_refused_with_a_hint(tmp_path):
    text = CHAINS.replace(
        "  - {name: finetune,", "  - {name: inpaint, params: {input: conceal-codeblock, epochs: 2}}\n#"
    )
    msg = error_of(tmp_path, text)
    assert "duplicate attack 'inpaint(conceal-codeblock)'" in msg and "grid" in msg, msg


def test_a_grid_over_a_parameter_the_label_does_not_show_appends_the_swept_values(tmp_path):
    """A grid of chains over epochs keeps the input in the name; a grid over the input needs no suffix."""
    text = CHAINS.replace(
        "  - {name: finetune, params: {input: conceal-codeblock, epochs: 1}}",
        "  - {name: finetune, params: {epochs: 1}, grid: {input: [naive, conceal-codeblock]}}\n"
        "  - {name: inpaint, params: {input: conceal-packet}, grid: {epochs: [1, 2]}}",
    )
    labels = [i.label for i in load_protocol(write(tmp_path, text)).instances("attacks")]
    assert labels[4:] == [
        "finetune",
        "finetune(conceal-codeblock)",
        "inpaint(conceal-packet)[epochs=1]",
        "inpaint(conceal-packet)[epochs=2]",
    ]


PAIRED = (
    GOOD
    + """\
schemes:
  - {name: j2k, params: {window: 4, offset: 6}}
  - warp_16_6
attacks:
  - naive
  - {name: conceal-codeblock, schemes: [lw*]}
  - {name: invert, schemes: [warp_16_6]}
"""
)


def test_an_attack_limited_to_schemes_attacks_only_those(tmp_path):
    lp = load_protocol(write(tmp_path, PAIRED))
    assert [a.label for a in lp.attacks_for("lw4o6")] == ["naive", "conceal-codeblock"]
    assert [a.label for a in lp.attacks_for("warp_16_6")] == ["naive", "invert"]


def test_an_attack_unlimited_still_must_attack_every_scheme(tmp_path):
    msg = error_of(tmp_path, PAIRED.replace("{name: invert, schemes: [warp_16_6]}", "invert"))
    assert re.search(r"p\.yaml:15: attacks\[2\]\.name: invert cannot attack scheme lw4o6 \(schemes\[0\]\)", msg), msg


def test_an_attack_schemes_pattern_must_match_a_scheme(tmp_path):
    msg = error_of(tmp_path, PAIRED.replace("schemes: [warp_16_6]", "schemes: [warp_8_4]"))
    assert re.search(
        r"p\.yaml:15: attacks\[2\]\.schemes\[0\]: 'warp_8_4' matches no scheme \(schemes: lw4o6, warp_16_6\)", msg
    ), msg


def test_quickstart_pairs_each_attack_with_the_schemes_it_can_attack():
    lp = load_protocol(REPO / "protocols" / "quickstart.yaml")
    assert {s.label: [a.label for a in lp.attacks_for(s.label)] for s in lp.instances("schemes")} == {
        "lw4o6": ["naive", "conceal-codeblock", "inpaint"],
        "warp_16_6": ["naive", "invert"],
    }


def test_conceal_mcu_is_refused_on_amplitude_encryption_with_the_reason(tmp_path):
    text = GOOD + "schemes:\n  - {name: jpeg-amplitude, params: {window: 10}}\nattacks: [naive, conceal-mcu]\n"
    msg = error_of(tmp_path, text)
    assert re.search(
        r"p\.yaml:\d+: attacks\[1\]\.name: conceal-mcu cannot attack scheme ja10o0 \(schemes\[0\]\): "
        r"needs a scheme implementing ByteCipherScheme",
        msg,
    ), msg


def test_jpeg_increasing_window_pairs_conceal_mcu_with_the_byte_cipher_only():
    lp = load_protocol(REPO / "protocols" / "jpeg-increasing-window.yaml")
    pairs = {s.label: [a.label for a in lp.attacks_for(s.label)] for s in lp.instances("schemes")}
    assert len(pairs) == 45
    assert {label[:2] for label in pairs} == {"jw", "ja"}
    for label, attacks in pairs.items():
        assert attacks == (["naive", "conceal-mcu"] if label.startswith("jw") else ["naive"]), label
    assert [s.label for s in lp.instances("schemes") if s.label.startswith("ja")] == [f"ja{w}o0" for w in range(1, 16)]
