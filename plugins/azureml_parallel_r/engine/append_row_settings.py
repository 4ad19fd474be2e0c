"""``parallel_run_step.settings.json``: how the rows of a ``run()`` that returns a pandas DataFrame are written.

Microsoft's own pipeline builders write this file into a step's source directory to choose the rows file's format
when ``run()`` returns DataFrames. Its keys, as its writers spell them:

- ``AutoMLPipelineBuilder._write_parallel_run_step_settings_to_file`` (azureml-train-automl-runtime,
  ``get_many_models_batch_inference_steps``): ``{"append_row": {"pandas.DataFrame.to_csv": {"sep": ","}}}`` for an
  ``append_row_file_name`` ending in ``.csv``; without the file "the output in the txt file does not include column
  header" and is space-separated (that method's docstring);
- azureml-examples' text-to-image scoring files (``scoring-files/score/parallel_run_step.settings.json``):
  ``{"append_row": {"pandas.DataFrame.to_csv": {"sep": ",", "index": true}}}``.

So the runtime passes those keyword arguments to ``pandas.DataFrame.to_csv``. The local engine does the same for
the two keys a writer uses, ``sep`` (one character) and ``index`` (true or false), over the default of a file
without settings: ``sep=" "``, no header, no index. Any other key or shape is refused with what is supported,
because no source says what the runtime does with it (its docstring's "with column names" for ``.csv`` comes with an
argument of AutoML's own driver, ``--append_row_dataframe_header``, not with a key of this file). A ``run()`` that
returns a list is not affected: each element is one line.
"""

from __future__ import annotations

import json
import os
from typing import Any

SETTINGS_FILE = "parallel_run_step.settings.json"
TO_CSV = "pandas.DataFrame.to_csv"
DEFAULT_CSV_OPTIONS: dict[str, Any] = {"sep": " ", "header": False, "index": False}


def dataframe_csv_options(source_dir: str) -> dict[str, Any]:
    """The ``DataFrame.to_csv`` keyword arguments for the rows of a step whose source directory is ``source_dir``.

    :param source_dir: the step's source directory (where the settings file sits, if any).
    :raises ValueError: the file is there but is not JSON, or asks for what the engine does not model.
    """
    path = os.path.join(source_dir, SETTINGS_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            settings = json.load(handle)
    except FileNotFoundError:
        return dict(DEFAULT_CSV_OPTIONS)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{SETTINGS_FILE} in the source directory cannot be read as JSON: {exc}") from exc
    supported = f'{{"append_row": {{"{TO_CSV}": {{"sep": ",", "index": true}}}}}} (both keys optional)'
    options = settings.get("append_row", {}).get(TO_CSV) if isinstance(settings, dict) else None
    if (
        not isinstance(settings, dict)
        or set(settings) - {"append_row"}
        or not isinstance(settings.get("append_row"), dict)
        or set(settings["append_row"]) - {TO_CSV}
        or not isinstance(options, dict)
    ):
        raise ValueError(f"{SETTINGS_FILE} holds {json.dumps(settings)[:300]}; the local engine models {supported}")
    unknown = sorted(set(options) - {"sep", "index"})
    if unknown:
        raise ValueError(
            f"{SETTINGS_FILE} passes {', '.join(unknown)} to {TO_CSV}, which no source says the runtime honours; "
            f"the local engine models {supported}"
        )
    sep = options.get("sep", DEFAULT_CSV_OPTIONS["sep"])
    if not isinstance(sep, str) or len(sep) != 1:
        raise ValueError(f'{SETTINGS_FILE}: "sep" must be one character, got {sep!r}')
    index = options.get("index", DEFAULT_CSV_OPTIONS["index"])
    if not isinstance(index, bool):
        raise ValueError(f'{SETTINGS_FILE}: "index" must be true or false, got {index!r}')
    return {**DEFAULT_CSV_OPTIONS, "sep": sep, "index": index}
