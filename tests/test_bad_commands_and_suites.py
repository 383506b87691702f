"""Bad suites and command lines beyond the table of docs/bad-inputs.md (its second section lists these).

Same contract as tests/test_bad_inputs.py: a non-zero exit (2: a bad suite or command line), one clear message
naming the file or field and the fix, no Python traceback, and a finished record is the very same file afterwards.
"""
from __future__ import annotations

import json
import shutil

import pytest
import yaml
from test_bad_inputs import BASE, _run, _suite_file, _validate, _variant, world  # noqa: F401 (world: a fixture)

from bench.cli import main

BASE_YAML = yaml.safe_dump(BASE, sort_keys=False)


def _argv_results(w, *argv) -> list[str]:
    return [*argv, "--reports", str(w["dir"] / "reports")]


# (id, argv(world), expected text in the message)
CASES = [
    # the same cell twice: one id, computed once, then counted twice in the report ("1 computed by another runner")
    ("seeds-duplicate", lambda w: _validate(w, "seeddup", _variant(axes={"seeds": [1, 1]})),
     "axes.seeds: 1 is listed twice; each value of an axis must be distinct"),
    ("fraction-duplicate", lambda w: _validate(w, "fracdup", _variant(axes={"ft_fraction": [0, 0.0]})),
     "axes.ft_fraction: 0.0 is listed twice"),
    ("backbone-duplicate", lambda w: _validate(w, "bbdup", _variant(axes={"backbone": ["toy_cnn", "toy_cnn"]})),
     "axes.backbone: 'toy_cnn' is listed twice"),
    # was: "exclude: every cell of the product is excluded" (the suite has no exclusion)
    ("seeds-empty-list", lambda w: _validate(w, "seedempty", _variant(axes={"seeds": []})),
     "axes.seeds: seeds is an empty list"),
    # was: accepted as one seed
    ("seeds-boolean", lambda w: _validate(w, "seedbool", _variant(axes={"seeds": True})), "not true/false"),
    # was: two lines about pydantic's union members ('image_size.int: ...', 'image_size.tuple[int, int][1]: ...')
    ("image-size-one-side-list", lambda w: _validate(w, "size1", _variant(image_size=[64])),
     "image_size: image_size [64]: give one side in pixels (64) or [height, width]"),
    # was: "got NoneType"
    ("empty-file", lambda w: _validate(w, "emptyfile", ""), "the file is empty (or only comments)"),
    ("only-comments", lambda w: _validate(w, "comments", "# a suite, some day\n"), "the file is empty (or only comments)"),
    # was: accepted, the last one silently winning
    ("duplicate-yaml-key", lambda w: _validate(w, "dupkey", BASE_YAML + "image_size: 48\n"),
     "key 'image_size' is given twice in one mapping"),
    ("tab-indentation", lambda w: _validate(w, "tabs", "axes:\n\tbackbone: [toy_cnn]\n"),
     "not valid YAML (YAML indents with spaces, never tabs)"),
    # was: IsADirectoryError / UnicodeDecodeError tracebacks
    ("suite-path-is-a-folder", lambda w: ["validate", str(w["dir"] / "notes")], "is a folder, not a suite file"),
    ("suite-not-utf8", lambda w: ["validate", _latin1_suite(w)], "not a UTF-8 text file"),
    # the name becomes results/<name> and reports/<name>: '../x' wrote outside the results root
    ("suite-name-dotdot", lambda w: _run(w, "escape", {**BASE, "name": "../escape"}),
     "name: suite name '../escape' becomes the folder results/<name>"),
    ("suite-name-slash", lambda w: _validate(w, "slash", {**BASE, "name": "a/b"}), "(e.g. 'a-b')"),
    ("suite-name-space", lambda w: _validate(w, "space", {**BASE, "name": "my suite"}), "(e.g. 'my-suite')"),
    ("report-suite-dotdot", lambda w: _argv_results(w, "report", str(w["root"] / "base"), "--suite", "../x"),
     "--suite: suite name '../x' becomes the folder"),
    # was: accepted; the typo waited for the day the mode is put on the axis
    ("unused-train-mode-key-typo", lambda w: _validate(w, "tmunused", _variant(train_modes={"x": {"schedul": "x"}})),
     "train_modes.x.schedul: unknown key 'schedul'. Did you mean: 'schedule'"),
    # was: accepted, excluding nothing
    ("exclusion-empty-list", lambda w: _validate(w, "exempty", _variant(axes={"seeds": 2}, exclude=[{"seed": []}])),
     "exclude[0].seed: an empty list matches nothing"),
    # was: "... Did you mean: '1'?" (the very value given)
    ("exclusion-quoted-number", lambda w: _validate(w, "exquote", _variant(axes={"seeds": 2},
                                                                           exclude=[{"seed": "1"}])),
     "Did you mean: 1? (Write numbers without quotes.)"),
    # was: NotADirectoryError tracebacks (run: before computing; plan; report after computing)
    ("results-root-is-a-file", lambda w: _run(w, "base", BASE)[:3] + [str(_a_file(w)), "--no-progress"],
     "is a file, not a folder; pass a folder (it will hold results/<suite>)"),
    ("plan-results-root-is-a-file", lambda w: ["plan", _suite_file(w, "base", BASE), "--results", str(_a_file(w))],
     "is a file, not a folder"),
    ("reports-root-is-a-file", lambda w: ["run", _suite_file(w, "base", BASE), "--results", str(w["root"]),
                                          "--reports", str(_a_file(w)), "--no-progress", "--workers", "0"],
     "is a file, not a folder; pass a folder (it will hold reports/<suite>)"),
    ("report-reports-root-is-a-file", lambda w: ["report", str(w["root"] / "base"), "--reports", str(_a_file(w))],
     "is a file, not a folder"),
    # was: results/base/base/..., every cell computed again
    ("results-root-is-a-suite-folder", lambda w: ["run", _suite_file(w, "base", BASE), "--results",
                                                  str(w["root"] / "base"), "--no-progress", "--workers", "0"],
     "this is the results folder of suite 'base' itself; pass the folder that holds it"),
    # was: exit 0 and "... and 1 more failed" with no failed cell
    ("status-negative-limit", lambda w: ["status", str(w["root"] / "base"), "--limit", "-1"], "--limit -1: give 0 or more"),
    # was: "no cell records found" for a folder that does not exist
    ("verify-missing-folder", lambda w: ["verify", str(w["dir"] / "nothing")], "no such results folder"),
    # was: ValueError traceback (the check came after the dict() it guards)
    ("data-check-option-without-value", lambda w: ["data", "check", "synth-inbreast", "-o", "n_images"],
     "--option takes key=value, got 'n_images'"),
]


def _a_file(w):
    p = w["dir"] / "a-file"
    p.write_text("not a folder\n")
    return p


def _latin1_suite(w) -> str:
    p = w["dir"] / "latin1.yaml"
    p.write_bytes(BASE_YAML.encode() + b"description: caf\xe9\n")
    return str(p)


def _call(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        return exc.code


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_message(world, case, capsys):  # noqa: F811 (world: the imported fixture)
    _, argv, expected = case
    before = world["record"].stat()
    code = _call(argv(world))
    out, err = capsys.readouterr()
    assert code == 2, (code, err)
    assert expected in err, err
    assert "Traceback" not in err + out
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1, err
    after = world["record"].stat()  # nothing already finished is lost or rewritten
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_union_type_errors_are_one_line(world, capsys):  # noqa: F811
    """`seeds: three` used to print a second line about pydantic's list[int] member."""
    assert _call(_validate(world, "seeds3", _variant(axes={"seeds": "three"}))) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "axes.seeds" in err and "list[int]" not in err


def test_suite_name_cannot_leave_the_results_root(world, capsys):  # noqa: F811
    assert _call(_run(world, "escape2", {**BASE, "name": "../escaped"})) == 2
    assert not (world["root"].parent / "escaped").exists()
    assert not (world["dir"] / "escaped").exists()


def test_report_and_verify_name_a_damaged_record(world, tmp_path, capsys):  # noqa: F811
    """A damaged *.json in a results folder is left out of the report, and the user is told which file."""
    folder = tmp_path / "base"
    shutil.copytree(world["root"] / "base", folder)
    (folder / "0123456789abcdef.json").write_text('{"status": "ok", "cell_id": ')  # cut off
    (folder / "fedcba9876543210.json").write_bytes(b"\xff\xfe\x00binary")
    assert _call(["report", str(folder), "--reports", str(tmp_path / "reports")]) == 0
    err = capsys.readouterr().err
    assert "2 file(s)" in err and "0123456789abcdef.json" in err and "fedcba9876543210.json" in err, err
    assert "Traceback" not in err
    assert _call(["verify", str(folder)]) == 0
    assert "0123456789abcdef.json" in capsys.readouterr().err


def test_unwritable_folder_is_one_message(world, monkeypatch, capsys):  # noqa: F811
    """A read-only results folder (simulated: tests may run as root) is one message, exit 2, no traceback."""
    import bench.runner

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied", str(world["dir"] / "ro" / "base"))

    monkeypatch.setattr(bench.runner, "run_suite", refuse)
    assert _call(_run(world, "base", BASE)) == 2
    err = capsys.readouterr().err
    assert "ro/base: Permission denied" in err and "Traceback" not in err, err


def test_valid_inputs_still_pass(world, capsys):  # noqa: F811
    """What the new checks must not refuse: unicode names, [h, w] sizes, distinct values, numbers in exclusions."""
    ok = {**_variant(axes={"seeds": [0, 1], "ft_fraction": [0, 0.5]}, image_size=[32, 48],
                     exclude=[{"seed": 1, "ft_fraction": 0}], train_modes={"x": {"lr": 0.01}}),
          "name": "sûite_1.v2-b"}
    assert _call(_validate(world, "ok", ok)) == 0, capsys.readouterr().err
    # YAML merge keys may override what they merge in: that is not a duplicate key
    merged = json.dumps(BASE["axes"])
    text = (
        f"axes: {merged}\nimage_size: 32\npretrain: &p {{epochs: 1, lr: 0.001}}\n"
        "finetune: {<<: *p, epochs: 2, batch_size: 8}\ndata: {synth-inbreast: {n_images: 40}}\n")
    assert _call(_validate(world, "merge", text)) == 0, capsys.readouterr().err


def test_an_abbreviated_flag_is_an_error_not_a_run(tmp_path, capsys):
    """argparse would read ``--worker 2`` as ``--workers 2`` and start a real run."""
    from bench.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["run", "smoke", "--worker", "2", "--results", str(tmp_path / "r")])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --worker 2" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_the_docs_table_lists_every_review_case():
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "bad-inputs.md").read_text()
    for case_id, _, _ in CASES:
        assert f"`{case_id}`" in doc, case_id
