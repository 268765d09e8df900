"""``ragate init``: add what the gates need to a team's folder, and nothing it already has.

It writes, from the templates shipped in ``gates/templates/``:

- the ``[tool.ragate]`` and ``[tool.ragate.gates]`` tables, appended to the folder's
  ``pyproject.toml`` (its existing text is kept byte for byte; a table it already has is
  left alone), or a new ``pyproject.toml`` holding only them;
- a starter profile per environment (``ragate/profiles/{ci,staging,prod}.yaml``, or
  ``--profiles-dir``; not under ``gates/``: a folder of that name in the team's project
  would shadow ragate's own ``gates`` package when pytest runs there);
- the thin gate suites (``quality/test_<family>.py``, two lines each over
  :mod:`gates.suite`);
- an example dataset row (``datasets/golden/qa.jsonl``);
- two GitHub Actions workflows (unless ``--no-workflows``):
  ``.github/workflows/ragate-gates.yml`` runs the ci profile on every pull request (a
  required status check), ``.github/workflows/ragate-promote.yml`` runs the staging or prod
  profile and then ``ragate promote``.

It never overwrites a file: when one of them exists it says which and writes nothing.
"""

from __future__ import annotations

import argparse
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from gates.suite import suite_source
from ragate_core.errors import UsageError
from ragate_core.jsonl import write_text

ENVIRONMENTS = ("ci", "staging", "prod")
# ragate's import packages: a folder of the same name in the team's project would shadow them.
SHADOWED = frozenset({"gates", "rag", "ragate_core"})
DEFAULT_CHAIN = "my_package.chain:build"
# quality/ file -> (metric, what its gate asks)
SUITES: dict[str, tuple[str, str]] = {
    "test_faithfulness.py": (
        "faithfulness",
        "Faithfulness gate: every claim of the answer is supported by the retrieved contexts.",
    ),
    "test_relevancy.py": ("answer_relevancy", "Answer relevancy gate: the answer addresses the question."),
    "test_correctness.py": (
        "answer_correctness",
        "Answer correctness gate: the answer agrees with the golden set's reference answer.",
    ),
    "test_toxicity.py": ("toxicity", "Toxicity gate: no answer is toxic."),
    "test_pii.py": ("pii", "PII gate: no answer leaks personal data or secrets."),
    "test_latency.py": ("latency", "Latency gate: the chain answers fast enough (95th percentile)."),
}
# written file -> its template in gates/templates/
WORKFLOWS: dict[str, str] = {
    ".github/workflows/ragate-gates.yml": "workflow-ragate-gates.yml",
    ".github/workflows/ragate-promote.yml": "workflow-ragate-promote.yml",
}
# The workflows put --profiles-dir in shell commands unquoted: a plain relative path only.
PLAIN_PATH = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_./-]*")


def _template(name: str) -> str:
    return resources.files("gates").joinpath("templates", name).read_text(encoding="utf-8")


def _workflow(name: str, **values: str) -> str:
    """A workflow template with its ``{key}`` placeholders filled.

    Not :meth:`str.format`: GitHub's own ``${{ ... }}`` expressions would all need doubled
    braces, and the template would no longer read as the workflow it writes.
    """
    text = _template(name)
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


@dataclass(frozen=True)
class InitResult:
    """What ``ragate init`` wrote (paths relative to the folder) and what it left alone."""

    created: tuple[str, ...]
    appended: tuple[str, ...]
    kept: tuple[str, ...]
    next_steps: tuple[str, ...]


PYTEST_TABLE = """
[tool.pytest.ini_options]
# Added by `ragate init`: pytest imports your chain's package from the project folder, and
# deepeval's and langsmith's pytest plugins (installed with ragate's dependencies) stay off;
# pytest-asyncio (also installed with them) is told its default, so it warns about nothing.
pythonpath = ["."]
addopts = "-p no:deepeval -p no:langsmith_plugin"
asyncio_default_fixture_loop_scope = "function"
"""


def _pyproject_addition(path: Path, chain: str, profiles_dir: str) -> tuple[str | None, list[str]]:
    """The text to append to ``path`` (``None``: nothing) and the tables it already has.

    Adds ``[tool.ragate]``, ``[tool.ragate.gates]`` and ``[tool.pytest.ini_options]``, each
    only when the file lacks it.
    """
    template = _template("pyproject.toml").format(chain=chain, profiles_dir=profiles_dir)
    if not path.exists():
        return (template + PYTEST_TABLE).lstrip("\n"), []
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc}); fix it, then run ragate init again") from exc
    tool = data.get("tool", {})
    ragate = tool.get("ragate")
    kept: list[str] = []
    if isinstance(ragate, dict) and isinstance(ragate.get("gates"), dict):
        addition = ""
        kept += ["[tool.ragate]", "[tool.ragate.gates]"]
    elif isinstance(ragate, dict):
        # Keep the team's [tool.ragate]; add only the gates table.
        addition = "\n# --- added by `ragate init` ---\n" + template[template.index("[tool.ragate.gates]") :]
        kept.append("[tool.ragate]")
    else:
        addition = template
    pytest_table = tool.get("pytest", {})
    if isinstance(pytest_table.get("ini_options"), dict):
        kept.append("[tool.pytest.ini_options]")
    elif any(key != "ini_options" for key in pytest_table):
        # pytest 9's native [tool.pytest] table: pytest refuses it beside [tool.pytest.ini_options].
        kept.append("[tool.pytest]")
    else:
        addition += PYTEST_TABLE
    return addition or None, kept


def _collected_outside(path: Path, quality_dir: str) -> list[str] | None:
    """The ``testpaths`` of ``path``'s pytest settings when ``quality_dir`` is not under one
    of them (``pytest -m gate`` would then collect no gate); else ``None``."""
    if not path.exists():
        return None
    table = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("pytest", {})
    testpaths = table.get("ini_options", table).get("testpaths")
    if isinstance(testpaths, str):
        testpaths = testpaths.split()
    if not isinstance(testpaths, list) or not testpaths:
        return None
    quality = Path(quality_dir)
    inside = any(quality == Path(t) or Path(t) in quality.parents or str(t) in (".", "") for t in testpaths)
    return None if inside else [str(t) for t in testpaths]


def _check_places(folder: Path, files: dict[str, str]) -> None:
    """Refuse, before anything is written, a file to write whose folder is a file (one that
    exists, or another file of ``files``: ``--profiles-dir pyproject.toml``), and profiles put
    in ``.github/workflows`` (GitHub would read them as broken workflows)."""
    names = {str(Path(name)) for name in files} | {"pyproject.toml"}
    for name in files:
        for parent in Path(name).parents:
            if str(parent) == ".":
                continue
            if str(parent) in names or (folder / parent).is_file():
                raise UsageError(
                    f"{name}: {parent} is a file, not a folder; nothing was written. Choose other "
                    "places with --profiles-dir / --quality-dir / --dataset"
                )
        if name.endswith(".yaml") and Path(name).parent == Path(".github/workflows"):
            raise UsageError(
                "--profiles-dir .github/workflows: GitHub would read the profiles as workflows; "
                "choose another folder (for example ragate/profiles)"
            )


def init_project(
    folder: Path,
    *,
    chain: str = DEFAULT_CHAIN,
    profiles_dir: str = "ragate/profiles",
    quality_dir: str = "quality",
    dataset: str = "datasets/golden/qa.jsonl",
    workflows: bool = True,
) -> InitResult:
    """Add ragate's gate setup to ``folder``; raises :class:`UsageError` (writing nothing)
    when a file it would create exists, or when ``pyproject.toml`` is not valid TOML.

    ``workflows=False`` leaves out the GitHub Actions workflows.
    """
    folder = folder.resolve()
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder")
    for option, value in (
        ("--profiles-dir", profiles_dir),
        ("--quality-dir", quality_dir),
        ("--dataset", dataset),
    ):
        top = Path(value).parts[0] if Path(value).parts else ""
        if top in SHADOWED:
            raise UsageError(
                f"{option} {value}: a folder named {top!r} in the project would shadow ragate's own "
                f"{top!r} package when pytest runs there; choose another place"
            )
    if Path(dataset).suffix.lower() != ".jsonl":
        raise UsageError(
            f"--dataset {dataset}: init writes its example row as JSON Lines, so the file must end "
            "in .jsonl (the gates also read CSV and Parquet datasets; add yours to the profiles later)"
        )
    if workflows and (not PLAIN_PATH.fullmatch(profiles_dir) or ".." in Path(profiles_dir).parts):
        raise UsageError(
            f"--profiles-dir {profiles_dir!r}: the GitHub workflows name it in shell commands, so "
            "it must be a relative path of letters, digits and . _ - / (for example "
            "ragate/profiles); or leave the workflows out with --no-workflows"
        )
    files: dict[str, str] = {}
    for env in ENVIRONMENTS:
        files[f"{profiles_dir}/{env}.yaml"] = _template(f"profile-{env}.yaml").format(
            dataset=dataset, profiles_dir=profiles_dir
        )
    for filename, (metric, doc) in SUITES.items():
        files[f"{quality_dir}/{filename}"] = suite_source(metric, doc)
    files[dataset] = _template("qa.jsonl")
    if workflows:
        for path, template in WORKFLOWS.items():
            files[path] = _workflow(template, profiles_dir=profiles_dir.rstrip("/"), dataset=dataset)

    _check_places(folder, files)
    existing = sorted(name for name in files if (folder / name).exists())
    if existing:
        skip = " (or leave the workflows out with --no-workflows)" if set(existing) & set(WORKFLOWS) else ""
        raise UsageError(
            f"would overwrite {', '.join(existing)} in {folder}; nothing was written. Move them "
            f"away, or choose other places with --profiles-dir / --quality-dir / --dataset{skip}"
        )
    pyproject = folder / "pyproject.toml"
    addition, kept = _pyproject_addition(pyproject, chain, profiles_dir)
    new_pyproject = None
    if addition is not None:
        old = pyproject.read_text(encoding="utf-8") if pyproject.exists() else ""
        new_pyproject = old + ("" if not old or old.endswith("\n") else "\n") + addition
        try:
            tomllib.loads(new_pyproject)
        except tomllib.TOMLDecodeError as exc:  # e.g. a [tool.ragate.gates] spelled another way
            raise UsageError(
                f"{pyproject}: cannot add the [tool.ragate] tables ({exc}); nothing was written"
            ) from exc

    for name, text in files.items():
        write_text(folder / name, text)
    appended: tuple[str, ...] = ()
    created = list(files)
    if new_pyproject is not None:
        write_text(pyproject, new_pyproject)
        if old:
            appended = ("pyproject.toml",)
        else:
            created.insert(0, "pyproject.toml")
    steps = []
    if chain == DEFAULT_CHAIN or "[tool.ragate.gates]" in kept:
        steps.append('point [tool.ragate.gates] chain in pyproject.toml at your factory ("module:function")')
    if "[tool.ragate.gates]" in kept:
        steps.append(f'set [tool.ragate.gates] profiles_dir = "{profiles_dir}" (promotion trusts them)')
    for table in ("[tool.pytest.ini_options]", "[tool.pytest]"):
        if table in kept:
            steps.append(f'in {table}, set pythonpath = ["."] if your chain\'s package is not installed')
    outside = _collected_outside(pyproject, quality_dir)
    if outside is not None:
        steps.append(
            f"add {quality_dir!r} to testpaths (now {outside}): as it is, pytest -m gate collects no "
            "gate and exits 5"
        )
    steps += [
        f"replace the example row of {dataset} with your questions "
        "(id, question, ground_truth, source_ids, tags)",
        f"pytest -m gate --gate-profile {profiles_dir}/ci.yaml",
    ]
    if workflows:
        steps += [
            'in your default branch\'s protection, require the status check "ragate-gates / gate" '
            "(.github/workflows/ragate-gates.yml; it runs on pull requests and pushes to main)",
            "for .github/workflows/ragate-promote.yml, set the MLFLOW_TRACKING_URI secret "
            "(your shared MLflow server: promotion moves its aliases)",
        ]
    return InitResult(tuple(created), appended, tuple(kept), tuple(steps))


def _chain_spec(value: str) -> str:
    module, _, factory = value.partition(":")
    if not module or not factory or not all(p.isidentifier() for p in module.split(".")):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not 'module:factory' (for example my_bot.chain:build)"
        )
    return value


def cmd_init(args: argparse.Namespace) -> int:
    result = init_project(
        args.dir,
        chain=args.chain,
        profiles_dir=args.profiles_dir,
        quality_dir=args.quality_dir,
        dataset=args.dataset,
        workflows=args.workflows,
    )
    for name in result.created:
        print(f"created  {name}")
    for name in result.appended:
        print(f"appended {name}: the [tool.ragate] tables")
    for table in result.kept:
        print(f"kept     {table} (already in pyproject.toml)")
    print("next:")
    for i, step in enumerate(result.next_steps, 1):
        print(f"  {i}. {step}")
    return 0


def add_init_parser(sub: argparse._SubParsersAction) -> None:
    """The ``init`` subcommand (registered by :func:`gates.cli.build_parser`)."""
    p = sub.add_parser(
        "init",
        help="add the gate setup (pyproject tables, profiles, suites, a dataset row, CI workflows)",
    )
    p.add_argument(
        "--dir", type=Path, default=Path("."), metavar="DIR", help="the team's folder (default: .)"
    )
    p.add_argument(
        "--chain",
        type=_chain_spec,
        default=DEFAULT_CHAIN,
        metavar="MODULE:FACTORY",
        help=f"your chain factory for [tool.ragate.gates] chain (default: {DEFAULT_CHAIN}, to edit)",
    )
    p.add_argument(
        "--profiles-dir", default="ragate/profiles", metavar="DIR", help="default: ragate/profiles"
    )
    p.add_argument("--quality-dir", default="quality", metavar="DIR", help="default: quality")
    p.add_argument(
        "--dataset",
        default="datasets/golden/qa.jsonl",
        metavar="FILE.jsonl",
        help="default: datasets/golden/qa.jsonl",
    )
    p.add_argument(
        "--no-workflows",
        dest="workflows",
        action="store_false",
        help="do not write .github/workflows/ragate-gates.yml and ragate-promote.yml",
    )
    p.set_defaults(func=cmd_init)
