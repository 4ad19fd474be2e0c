"""parallel_run_step.settings.json as Microsoft's builders write it (see the module for the sources)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from azureml_parallel_r.engine.append_row_settings import DEFAULT_CSV_OPTIONS, SETTINGS_FILE, dataframe_csv_options


def _write(folder: Path, settings: object) -> str:
    (folder / SETTINGS_FILE).write_text(json.dumps(settings) if not isinstance(settings, str) else settings)
    return str(folder)


def test_without_the_file_rows_are_space_separated_without_header_or_index(tmp_path: Path) -> None:
    assert dataframe_csv_options(str(tmp_path)) == {"sep": " ", "header": False, "index": False} == DEFAULT_CSV_OPTIONS


def test_the_automl_builders_file_and_the_text_to_image_samples_file(tmp_path: Path) -> None:
    automl = {"append_row": {"pandas.DataFrame.to_csv": {"sep": ","}}}
    assert dataframe_csv_options(_write(tmp_path, automl)) == {"sep": ",", "header": False, "index": False}
    samples = {"append_row": {"pandas.DataFrame.to_csv": {"sep": ",", "index": True}}}
    assert dataframe_csv_options(_write(tmp_path, samples)) == {"sep": ",", "header": False, "index": True}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("{not json", "cannot be read as JSON"),
        ({"append_row": {"pandas.DataFrame.to_csv": {"header": True}}}, "passes header to pandas.DataFrame.to_csv"),
        ({"append_row": {"pandas.DataFrame.to_csv": {"sep": 1}}}, '"sep" must be one character'),
        ({"append_row": {"pandas.DataFrame.to_csv": {"index": "yes"}}}, '"index" must be true or false'),
        ({"summary": {}}, "the local engine models"),
        ([], "the local engine models"),
    ],
)
def test_what_no_source_describes_is_refused_saying_what_is_modelled(tmp_path: Path, settings, message) -> None:
    with pytest.raises(ValueError, match=r"parallel_run_step\.settings\.json") as raised:
        dataframe_csv_options(_write(tmp_path, settings))
    assert message in str(raised.value)
