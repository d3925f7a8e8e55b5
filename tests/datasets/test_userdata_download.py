"""`clipbench download --data-root <a file>` is bad input: one line, exit 2 (issue 28.10, part)."""

from __future__ import annotations

from clipbench.cli import main


def test_download_into_a_data_root_that_is_a_file_is_one_line_exit_2(tmp_path, capsys):
    not_a_folder = tmp_path / "data.txt"
    not_a_folder.write_text("x")
    assert main(["download", "cifar10", "--data-root", str(not_a_folder), "--offline"]) == 2
    err = capsys.readouterr().err.strip()
    assert "data.txt is a file, not a folder" in err and "\n" not in err
    assert main(["download", "cifar10", "--data-root", str(not_a_folder / "sub")]) == 2
    assert "\n" not in capsys.readouterr().err.strip()
