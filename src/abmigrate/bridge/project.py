"""The one module that touches Alembic's internals.

Alembic stays the engine: its revision map computes the steps, its ``env.py`` runs them, its
offline mode renders the SQL. What this module adds is control over *which* steps one run of
``env.py`` executes, so abmigrate can apply a plan one revision at a time (one transaction each,
progress between them) and render SQL per revision, on any project's ``env.py``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from abmigrate.bridge.graph import (
    VERSION_NUM_LENGTH,
    CachedRevision,
    GraphProblem,
    RevisionGraph,
    declared_problems,
    describe_branches,
    file_problems,
    labelled_branches,
    load_graph,
    shape_problems,
)
from abmigrate.bridge.stdout import project_stdout_to_stderr
from abmigrate.db.dialects import dialect_for
from abmigrate.errors import ConfigError, GraphError, RevisionError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext, RevisionStep
    from alembic.script import Script, ScriptDirectory
    from sqlalchemy import Connection

    from abmigrate.bridge.env_run import EnvFacts, StepFunction
    from abmigrate.db.database import VersionTable

__all__ = [
    "VERSION_NUM_LENGTH",
    "AlembicProject",
    "CachedRevision",
    "DeclaredScript",
    "GraphProblem",
    "StepSQL",
    "between_steps",
    "end_lookup_transaction",
    "migration_op",
    "refuse_moved",
    "remember_existing_types",
]

_RELATIVE_DOWN = re.compile(r"^-(\d+)$")
_PLAIN_ID = re.compile(r"^[0-9A-Za-z_]+$")
_SYMBOLS = ("head", "heads", "base")
_MARKER = re.compile(r"^-- Running (upgrade|downgrade) (.*?) -> (.*)$", re.MULTILINE)


@dataclass(frozen=True)
class DeclaredScript:
    """One revision file as written: what the revision graph is drawn from."""

    revision: str
    parents: tuple[str, ...]
    branch_labels: tuple[str, ...]
    message: str
    path: str


@dataclass(frozen=True)
class StepSQL:
    revision: str
    sql: str | None
    error: str | None = None


class AlembicProject:
    """An Alembic script directory plus the URL its ``env.py`` should use."""

    def __init__(
        self,
        alembic_ini: Path,
        url: str | None = None,
        x_args: Sequence[str] = (),
        *,
        cache_dir: Path | None = None,
        graph: bool = True,
        flask_app: str | None = None,
    ) -> None:
        if not alembic_ini.is_file():
            raise ConfigError(f"alembic.ini not found: {alembic_ini}", hint="pass --alembic-ini")
        self.alembic_ini = alembic_ini
        self.url = url
        self.x_args = tuple(x_args)
        # The Flask application env.py runs in (bridge.flask_app): the `flask_app`
        # setting; None: $FLASK_APP or Flask's own discovery, when env.py needs one.
        self.flask_app = flask_app
        self._needs_flask: bool | None = None
        # Where the revision graph is cached (bridge.graph); None (a project made outside
        # a workspace: scratch jobs, the pytest plugin) or graph=False (to compare the
        # two): every graph question goes to Alembic.
        self.cache_dir = cache_dir
        self._config: Config | None = None
        self._script: ScriptDirectory | None = None
        self._graph: RevisionGraph | None = None
        self._graph_loaded = not graph or cache_dir is None
        from abmigrate.db.database import DEFAULT_VERSION_TABLE

        # Where env.py records revisions, learned from its last online run.
        self.version_table: VersionTable = DEFAULT_VERSION_TABLE
        self.facts: EnvFacts | None = None

    def for_url(self, url: str) -> AlembicProject:
        """The same project (alembic.ini, ``-x`` arguments) pointed at another database.
        Scripts already loaded are shared: the database does not change what they say."""
        clone = AlembicProject(
            self.alembic_ini, url, self.x_args, cache_dir=self.cache_dir, flask_app=self.flask_app
        )
        clone._script = self._script
        return clone

    @property
    def config(self) -> Config:
        """Alembic's Config, made on first use (importing Alembic costs a command that
        only reads the cached graph more than everything else it does)."""
        if self._config is None:
            import argparse

            from alembic.config import Config

            # `alembic -x key=value`: env.py reads them with context.get_x_argument().
            self._config = Config(
                str(self.alembic_ini), cmd_opts=argparse.Namespace(x=list(self.x_args))
            )
            if not self._config.get_main_option("script_location"):
                # `flask db init` writes an alembic.ini without script_location: Flask-Migrate
                # sets it to the folder the ini and env.py are in (`flask db --directory`).
                folder = self.alembic_ini.absolute().parent
                if (folder / "env.py").is_file():
                    self._config.set_main_option("script_location", str(folder))
            if self.url is not None:
                self._apply_url(self._config, self.url)
        return self._config

    @property
    def needs_flask_app(self) -> bool:
        """Whether env.py runs inside a Flask application's context: the ``flask_app``
        setting names one, or env.py reads ``flask.current_app`` (Flask-Migrate)."""
        if self._needs_flask is None:
            from abmigrate.bridge.flask_app import needs_flask_app

            if self._script is not None:
                folder = str(self._script.dir)
            elif self.graph is not None:
                folder = self.graph.script_dir
            else:
                # Not through self.script, which loads the application for such a project.
                location = self.config.get_main_option("script_location") or ""
                folder = str(self.script.dir) if ":" in location else location
            self._needs_flask = self.flask_app is not None or needs_flask_app(folder)
        return self._needs_flask

    @contextmanager
    def env_run(
        self, connection: Connection | None = None, *, offline: bool = False
    ) -> Iterator[None]:
        """Around every run of env.py, in the thread that runs it: Alembic's logging kept
        quiet, the project's prints sent to standard error, and for a Flask-Migrate project
        the application's context (:mod:`abmigrate.bridge.flask_app`), pointed at the
        database of ``connection`` (the one the run is handed), else this project's URL;
        ``offline`` (SQL rendered, nothing run): its engine may not connect at all."""
        with _quiet_alembic():
            if not self.needs_flask_app:
                yield
                return
            from abmigrate.bridge.flask_app import flask_app_context

            url = self.url
            if connection is not None:
                url = connection.engine.url.render_as_string(hide_password=False)
            with flask_app_context(self.flask_app, url, offline=offline):
                yield

    def set_url(self, url: str) -> None:
        self.url = url
        if self._config is not None:
            self._apply_url(self._config, url)

    @staticmethod
    def _apply_url(config: Config, url: str) -> None:
        # configparser interpolates '%': a password with '%' must be doubled.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        config.attributes["abmigrate.url"] = url

    def reload(self) -> None:
        """Forget the graph (after writing a revision file)."""
        self._script = None
        self._graph, self._graph_loaded = None, False

    @property
    def graph(self) -> RevisionGraph | None:
        """The cached revision graph (:mod:`abmigrate.bridge.graph`), read without importing
        a revision; None when Alembic cannot build the graph (callers then go through
        Alembic, which raises what it raises)."""
        if not self._graph_loaded:
            if self._script is not None and "_revision_map" in vars(self._script.revision_map):
                # Alembic has imported every revision already: its map costs nothing more.
                return None
            self._graph = load_graph(self.alembic_ini, self.cache_dir, lambda: self.config)
            self._graph_loaded = True
        return self._graph

    # -- the revision graph -------------------------------------------------------------

    @property
    def script(self) -> ScriptDirectory:
        if self._script is None:
            from alembic.script import ScriptDirectory
            from alembic.util import CommandError

            try:
                script = ScriptDirectory.from_config(self.config)
            except CommandError as exc:
                raise ConfigError(
                    f"{self.alembic_ini}: {exc}", hint="check script_location in alembic.ini"
                ) from None
            if self._needs_flask is None:
                from abmigrate.bridge.flask_app import needs_flask_app

                self._needs_flask = self.flask_app is not None or needs_flask_app(script.dir)
            if self._needs_flask:
                # As the `flask` command does before `db upgrade`: the application is loaded
                # before any revision is imported (pgAdmin's revisions import the modules
                # its application puts on sys.path).
                from abmigrate.bridge.flask_app import load_flask_app

                load_flask_app(self.flask_app)
            self._script = script
        return self._script

    @contextmanager
    def _graph_errors(self) -> Iterator[None]:
        from alembic.script.revision import RevisionError as AlembicRevisionError
        from alembic.util import CommandError

        try:
            yield
        except KeyError as exc:
            # Alembic's revision map fails this way when a down_revision names no revision.
            raise GraphError(
                f"revision {exc.args[0]!r} is named as a parent, but no script defines it",
                hint="fix that down_revision (abmigrate check --checks graph_integrity names it)",
            ) from None
        except (AlembicRevisionError, CommandError) as exc:
            message = str(exc)
            if "Multiple head" in message or "multiple heads" in message.lower():
                raise self.several_heads_error() from None
            raise RevisionError(
                message, hint="see `abmigrate history` for valid revisions"
            ) from None

    def revisions(self) -> list[Script]:
        """Every revision, newest first (as `alembic history` prints them)."""
        with self._graph_errors():
            return list(self.script.walk_revisions("base", "heads"))

    def history(self) -> list[CachedRevision]:
        """Every revision, newest first (as `alembic history` prints them), from the
        cached graph: no revision is imported."""
        graph = self.graph
        if graph is not None:
            return [graph.revisions[revision] for revision in graph.walk]
        return [_cached_revision(script) for script in self.revisions()]

    def describe(self, revision: str) -> CachedRevision:
        """One revision (id, label or unique prefix) as the cached graph knows it."""
        graph = self.graph
        found = graph.resolve(revision) if graph is not None and _is_ident(revision) else None
        if graph is not None and found is not None:
            return graph.revisions[found]
        return _cached_revision(self.get(revision))

    def pending(self, current: Sequence[str]) -> list[CachedRevision]:
        """What ``upgrade heads`` applies from ``current``, in order (from the cached
        graph when every revision of ``current`` is known to it)."""
        graph = self.graph
        if graph is not None and all(revision in graph.revisions for revision in current):
            return [graph.revisions[revision] for revision in graph.pending(current)]
        return [_cached_revision(step.revision) for step in self.upgrade_steps("heads", current)]

    @property
    def script_dir(self) -> str:
        """The script_location folder (where env.py is), from the cached graph when it
        has it (ScriptDirectory imports Alembic)."""
        graph = self.graph
        return graph.script_dir if graph is not None else str(self.script.dir)

    def _scripts_by_id(self) -> dict[str, Script]:
        """Every revision by id, in no particular order (the revision map as Alembic built
        it, branch-label keys left out); raises what building the map raises."""
        revision_map = self.script.revision_map._revision_map
        return {
            key: cast("Script", script)
            for key, script in revision_map.items()
            if script is not None and key == script.revision
        }

    def heads(self) -> list[str]:
        graph = self.graph
        if graph is not None:
            return list(graph.heads)
        with self._graph_errors():
            return list(self.script.get_heads())

    def bases(self) -> list[str]:
        graph = self.graph
        if graph is not None:
            return list(graph.bases)
        with self._graph_errors():
            return list(self.script.get_bases())

    def labelled_heads(self) -> dict[str, tuple[str, ...]] | None:
        """Each head's branch labels when the history has several heads by design, each in
        its own labelled branch (:func:`~abmigrate.bridge.graph.labelled_branches`); None
        for one head, or for heads that are to be merged."""
        return self._labelled(self.heads())

    def labelled_roots(self) -> dict[str, tuple[str, ...]] | None:
        """Each root's branch labels when the several roots are each in their own labelled
        branch (Alembic's "multiple bases"); None otherwise."""
        return self._labelled(self.bases())

    def _labelled(self, tips: Sequence[str]) -> dict[str, tuple[str, ...]] | None:
        if len(tips) < 2:
            return None
        return labelled_branches(tips, {tip: self.describe(tip).branch_labels for tip in tips})

    def default_target(self) -> str:
        """What an upgrade aims at when no target is given: ``heads`` when the history has
        several heads by design (:meth:`labelled_heads`), else ``head`` (which refuses
        several heads to merge)."""
        return "heads" if self.labelled_heads() else "head"

    def heads_to_merge(self) -> list[str]:
        """The heads ``abmigrate merge`` joins when given none: all of them, except where
        heads sit in labelled branches. Heads each in its own labelled branch are
        deliberate (expand/contract): merging them would join the branches for good, so
        that is refused. Where all heads are labelled and only one branch has several
        (an accidental head inside ``expand``), only that branch's heads are merged: the
        merge must not swallow ``contract``."""
        heads = self.heads()
        if len(heads) < 2:
            raise GraphError(
                f"nothing to merge: there is a single head ({', '.join(heads) or 'none'})",
                heads=heads,
            )
        branches = self.labelled_heads()
        if branches:
            raise GraphError(
                "nothing to merge: the heads are deliberate, one per labelled branch:"
                f" {describe_branches(branches)}",
                hint="to join branches anyway, name the revisions: abmigrate merge REV REV",
                heads=heads,
            )
        labels = {head: set(self.describe(head).branch_labels) for head in heads}
        if not all(labels.values()):
            return heads
        groups: list[tuple[set[str], list[str]]] = []  # (labels, heads) sharing a label
        for head in heads:
            joined = [group for group in groups if group[0] & labels[head]]
            merged = (set(labels[head]), [head])
            for group in joined:
                merged[0].update(group[0])
                merged[1][:0] = group[1]
                groups.remove(group)
            groups.append(merged)
        crowded = [members for _, members in groups if len(members) > 1]
        if len(crowded) == 1:
            return crowded[0]
        raise GraphError(
            f"several labelled branches have several heads: {'; '.join(map(', '.join, crowded))}",
            hint="merge each branch's heads by naming them: abmigrate merge REV REV",
            heads=heads,
        )

    def several_heads_error(self, target: str = "head") -> GraphError:
        """``target`` (``head``) cannot name one of several heads: the error, with the way
        out that fits the history (a branch per label, or a merge)."""
        heads = self.heads()
        branches = self.labelled_heads()
        if branches:
            labels = [labels[0] for labels in branches.values()]
            return GraphError(
                f"several head revisions, one per labelled branch:"
                f" {describe_branches(branches)}; `{target}` is ambiguous",
                hint="upgrade to `heads` for every branch (the default without a target),"
                f" or to one branch: {', '.join(f'{label}@head' for label in labels)}",
                heads=heads,
            )
        return GraphError(
            f"several head revisions: {', '.join(heads)}; `{target}` is ambiguous",
            hint="run `abmigrate merge` to join them, or upgrade to one head by its id"
            " (or to `heads` for all)",
            heads=heads,
        )

    def get(self, revision: str) -> Script:
        with self._graph_errors():
            script = self.script.get_revision(revision)
        if script is None:
            raise RevisionError(f"unknown revision {revision!r}")
        return script

    def known(self, revision: str) -> bool:
        graph = self.graph
        if graph is not None and _is_ident(revision):
            return graph.resolve(revision) is not None
        from alembic.script.revision import RevisionError as AlembicRevisionError
        from alembic.util import CommandError

        try:
            return self.script.get_revision(revision) is not None
        except (AlembicRevisionError, CommandError):
            return False

    def applied_set(self, current: Sequence[str]) -> set[str]:
        """Revisions applied when the database records ``current`` (they and their ancestors)."""
        if not current:
            return set()
        graph = self.graph
        if graph is not None and all(revision in graph.revisions for revision in current):
            return graph.ancestors(current)
        with self._graph_errors():
            return {
                script.revision
                for script in self.script.revision_map.iterate_revisions(
                    tuple(current), "base", inclusive=True
                )
            }

    def declared_scripts(self) -> list[DeclaredScript]:
        """Every revision file as written (id, parents, branch labels, message, path), from
        the revision map when it can be built, else read file by file (a missing parent)."""
        from alembic.script.revision import RevisionError as AlembicRevisionError
        from alembic.util import CommandError, to_tuple

        try:
            scripts = list(self._scripts_by_id().values())
        except (AlembicRevisionError, CommandError, KeyError):
            scripts = list(self.script._load_revisions())
        return [
            DeclaredScript(
                revision=script.revision,
                parents=tuple(to_tuple(script.down_revision, default=())),
                branch_labels=tuple(sorted(script.branch_labels or ())),
                message=(script.doc or "").strip().split("\n")[0].strip(),
                path=str(script.path),
            )
            for script in scripts
        ]

    def declared_revisions(self) -> list[tuple[str, tuple[str, ...], str]]:
        """``(id, parents as written, path)`` of every revision file, read without building
        Alembic's revision map (which cannot be built when a parent is missing)."""
        from alembic.util import to_tuple

        graph = self.graph
        if graph is not None:
            return list(graph.declared)
        return [
            (script.revision, tuple(to_tuple(script.down_revision, default=())), str(script.path))
            for script in self.script._load_revisions()
        ]

    def declared_problems(self) -> list[GraphProblem]:
        """What the revision files alone show, read without Alembic's revision map (which
        cannot be built when a parent is missing): ids defined by more than one file
        (``duplicate_id``, Alembic warns and keeps one), then, file by file, parents no
        script defines (``dangling_parent``) and ids too long for the version table
        (``id_too_long``)."""
        graph = self.graph
        if graph is not None:
            return list(graph.declared_problems)
        return declared_problems(self.declared_revisions())

    def graph_problems(self) -> list[GraphProblem]:
        """Structural problems: several heads/roots, dangling parents, ids too long."""
        graph = self.graph
        if graph is not None:
            return list(graph.problems)
        from alembic.script.revision import RevisionError as AlembicRevisionError
        from alembic.util import CommandError

        try:
            # Building the revision map already detects cycles; walking it in order
            # (walk_revisions) would sort all revisions again, a tenth of a second for 300.
            scripts = list(self._scripts_by_id().values())
        except (AlembicRevisionError, CommandError) as exc:
            return [GraphProblem("graph_broken", str(exc))]
        except KeyError as exc:
            # Alembic's revision map raises a bare KeyError for a parent no script defines.
            return [
                GraphProblem(
                    "graph_broken",
                    f"a revision names parent {exc}, which no script defines",
                    (str(exc.args[0]),) if exc.args else (),
                )
            ]
        problems = file_problems(
            (script.revision, script._normalized_down_revisions, script.path) for script in scripts
        )
        labels = {script.revision: tuple(script.branch_labels) for script in scripts}
        return problems + shape_problems(self.heads(), self.bases(), labels)

    # -- steps ------------------------------------------------------------------------

    def resolve_target(self, target: str) -> str:
        """A full revision id for a plain id or unique prefix; other targets pass through.

        Relative (``+2``, ``-1``, ``abc+1``), symbolic (``head``, ``heads``, ``base``) and
        branch (``label@head``) targets are left for Alembic to resolve.
        """
        if target in ("head", "heads", "base") or not _PLAIN_ID.match(target):
            return target
        ids = [script.revision for script in self.revisions()]
        if target in ids:
            return target
        matches = sorted(rev for rev in ids if rev.startswith(target))
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise RevisionError(
                f"ambiguous revision prefix {target!r}: matches {', '.join(matches)}",
                hint="type more characters of the revision id",
            )
        raise RevisionError(
            f"unknown revision {target!r}: no script defines it",
            hint="see `abmigrate history` for the revisions this project has",
        )

    def upgrade_steps(self, target: str, current: Sequence[str]) -> list[RevisionStep]:
        target = self.resolve_target(target)
        if target == "head" and len(self.heads()) > 1:
            raise self.several_heads_error()
        with self._graph_errors():
            return self.script._upgrade_revs(target, tuple(current))  # type: ignore[arg-type]

    def downgrade_steps(self, target: str, current: Sequence[str]) -> list[RevisionStep]:
        target = self.resolve_target(target)
        relative = _RELATIVE_DOWN.match(target)
        if relative and len(current) == 1:
            # Alembic cannot walk "-N" backwards through a merge revision ("Ambiguous walk");
            # follow first parents instead, so `downgrade -1` at a merge undoes the merge.
            target = self._first_parent_ancestor(current[0], int(relative.group(1)))
        with self._graph_errors():
            return self.script._downgrade_revs(target, tuple(current))  # type: ignore[arg-type]

    def _first_parent_ancestor(self, revision: str, levels: int) -> str:
        node = revision
        for _ in range(levels):
            parents = self.get(node)._normalized_down_revisions
            if not parents:
                if _ + 1 == levels:
                    return "base"
                raise RevisionError(
                    f"cannot go {levels} revision(s) below {revision}: the history is shorter",
                    hint="see `abmigrate history`",
                )
            node = parents[0]
        return node

    # -- running env.py ---------------------------------------------------------------

    def run_steps(
        self,
        steps: Sequence[RevisionStep],
        *,
        as_sql: bool = False,
        starting: Sequence[str] = (),
        expected_current: Sequence[str] | None = None,
        connection: Connection | None = None,
        autocommit_block: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> None:
        """Run ``env.py`` once, executing exactly ``steps``.

        Online, the steps run on ``connection`` (or one abmigrate opens to this project's
        URL), whatever connection env.py configures (:mod:`abmigrate.bridge.env_run`), one
        transaction per revision. ``expected_current`` guards against the database having
        moved since the plan was made; ``autocommit_block`` replaces the migration context's
        ``autocommit_block()``.
        """

        def work(heads: Any, context: MigrationContext) -> list[RevisionStep]:
            if expected_current is not None:
                refuse_moved(heads, expected_current)
            return list(steps)

        if not as_sql:
            self.run_online(work, connection=connection, autocommit_block=autocommit_block)
            return
        from alembic.runtime.environment import EnvironmentContext

        options: dict[str, Any] = {
            "fn": work,
            "as_sql": True,
            "starting_rev": list(starting) or None,
            "destination_rev": None,
        }
        with self.env_run(offline=True), EnvironmentContext(self.config, self.script, **options):
            self.script.run_env()

    def run_online(
        self,
        fn: StepFunction,
        *,
        connection: Connection | None = None,
        dont_mutate: bool = False,
        purge: bool = False,
        autocommit_block: Callable[[], AbstractContextManager[None]] | None = None,
        on_version_apply: Callable[..., None] | None = None,
        swap: bool = False,
        prepare: Callable[[Connection], None] | None = None,
    ) -> EnvFacts:
        """One online run of ``env.py`` with ``fn`` as Alembic's work function, on a
        connection abmigrate owns (see :func:`abmigrate.bridge.env_run.run_env_online`); remembers
        the version table env.py configured."""
        from abmigrate.bridge.env_run import run_env_online

        def learned(facts: EnvFacts) -> None:
            # Known before the first step: code between steps reads this version table.
            self.facts, self.version_table = facts, facts.version_table

        with self.env_run(connection):
            facts = run_env_online(
                self.config,
                self.script,
                fn,
                connection=connection,
                url=self.url,
                dont_mutate=dont_mutate,
                purge=purge,
                autocommit_block=autocommit_block,
                on_configured=learned,
                on_version_apply=on_version_apply,
                swap=swap,
                prepare=prepare,
            )
        self.facts = facts
        self.version_table = facts.version_table
        return facts

    def probe(self, connection: Connection | None = None) -> EnvFacts:
        """Run ``env.py`` without executing anything: it proves env.py reaches the target
        database (else :class:`abmigrate.bridge.env_run.WrongDatabase`) and tells where it records
        revisions. Nothing is created, not even the version table."""

        def nothing(heads: Any, context: MigrationContext) -> list[RevisionStep]:
            return []

        return self.run_online(nothing, connection=connection, dont_mutate=True)

    def revision_step(self, revision: str, *, upgrade: bool) -> RevisionStep:
        """Alembic's step applying (or undoing) exactly ``revision``.

        A step whose function already ran in this process (a round trip's second upgrade, a
        rebuild) runs from the revision's file loaded again, as a new ``alembic`` command
        would load it: a revision may change its own module's state when it runs (neutron's
        c33da356b165 pops keys from a module-level list, and fails the second time).
        """
        from alembic.runtime.migration import RevisionStep

        script = self.get(revision)
        ran = _functions_run.setdefault(script, set())
        if upgrade in ran:
            _load_again(script)
            ran.clear()
        ran.add(upgrade)
        return RevisionStep(self.script.revision_map, script, upgrade)

    def run_stepper(
        self,
        stepper: Callable[[Sequence[str], MigrationContext], Iterable[RevisionStep]],
        *,
        connection: Connection | None = None,
    ) -> EnvFacts:
        """Run ``env.py`` once; ``stepper(heads, context)`` yields the steps to execute.

        A generator resumes after Alembic ran (and committed) the step it yielded, so it can
        look at the database (through ``context.connection``) between steps: one run of
        ``env.py`` for a whole walk, on ``connection`` (see :meth:`run_online`).
        """
        return self.run_online(stepper, connection=connection)

    def render_sql(self, steps: Sequence[RevisionStep], current: Sequence[str]) -> list[StepSQL]:
        """Offline SQL for each step, split on Alembic's own ``-- Running`` markers."""
        if not steps:
            return []
        try:
            text = self._offline(steps, current)
        except ConfigError:
            raise  # env.py cannot run at all (a Flask application not found): not one step's
        except Exception:
            # One failing revision (e.g. SQLite batch mode offline) must not hide the others.
            return self._render_one_by_one(steps)
        return _split_by_step(text, steps)

    def _offline(self, steps: Sequence[RevisionStep], current: Sequence[str]) -> str:
        buffer = io.StringIO()
        saved = self.config.output_buffer
        self.config.output_buffer = buffer
        try:
            self.run_steps(steps, as_sql=True, starting=current)
        finally:
            self.config.output_buffer = saved
        return buffer.getvalue()

    def _render_one_by_one(self, steps: Sequence[RevisionStep]) -> list[StepSQL]:
        rendered: list[StepSQL] = []
        for step in steps:
            start = list(step.from_revisions) if step.is_upgrade else [step.revision.revision]
            try:
                text = self._offline([step], start)
            except ConfigError:
                raise
            except Exception as exc:
                rendered.append(StepSQL(step.revision.revision, None, _one_line(exc)))
            else:
                rendered.extend(_split_by_step(text, [step]))
        return rendered

    # -- authoring --------------------------------------------------------------------

    def stamp(
        self, revision: str, *, purge: bool = False, connection: Connection | None = None
    ) -> None:
        """Alembic's stamp, on a connection abmigrate owns (see :meth:`run_online`)."""
        from alembic.util import to_tuple

        def stamping(heads: Any, context: MigrationContext) -> Any:
            return self.script._stamp_revs(to_tuple(revision), heads)

        with self._graph_errors(), _silenced_stdout():
            self.run_online(stamping, connection=connection, purge=purge)

    def new_revision(self, message: str, *, autogenerate: bool) -> list[Script]:
        from alembic import command
        from alembic.util import CommandError

        try:
            with _silenced_stdout():
                created = command.revision(self.config, message=message, autogenerate=autogenerate)
        except CommandError as exc:
            raise RevisionError(str(exc), hint=_revision_hint(str(exc))) from None
        self.reload()
        if created is None:
            return []
        scripts = created if isinstance(created, list) else [created]
        return [script for script in scripts if script is not None]

    def merge_heads(self, message: str | None, revisions: Sequence[str] = ()) -> Script:
        """A merge revision of ``revisions``, or of the heads that are to be merged: every
        head, but for labelled branches (:meth:`heads_to_merge`)."""
        from alembic import command

        if revisions and len(revisions) < 2:
            raise GraphError(
                f"a merge joins two revisions or more; {len(revisions)} named",
                hint="name them all: abmigrate merge REV REV",
                heads=self.heads(),
            )
        chosen = list(revisions) or self.heads_to_merge()
        with self._graph_errors(), _silenced_stdout():
            created = command.merge(self.config, chosen, message=message)
        self.reload()
        if created is None:  # pragma: no cover - alembic returns the new script
            raise RevisionError("alembic did not create a merge revision")
        return created


# Per loaded revision (shared by the clones for_url makes): which of its functions a step
# ran, upgrade (True) or downgrade (False), since its file was loaded.
_functions_run: weakref.WeakKeyDictionary[Script, set[bool]] = weakref.WeakKeyDictionary()


def _load_again(script: Script) -> None:
    """Load the revision's file again into a new module, for a step to run from."""
    from alembic.util import load_python_file

    path = Path(script.path)
    script.module = load_python_file(str(path.parent), path.name)


def _is_ident(revision: str) -> bool:
    """A plain id, label or prefix (not ``head``, ``base@...``, ``abc+1``)."""
    return revision not in _SYMBOLS and bool(_PLAIN_ID.match(revision))


def _cached_revision(script: Script) -> CachedRevision:
    """An Alembic Script as the cached graph describes a revision."""
    return CachedRevision(
        revision=script.revision,
        down_revisions=tuple(script._normalized_down_revisions),
        doc=script.doc,
        path=str(script.path),
        branch_labels=tuple(sorted(script.branch_labels)),
        dependencies=tuple(to_tuple_of(script.dependencies)),
        nextrev=frozenset(script.nextrev),
        is_merge_point=script.is_merge_point,
    )


def to_tuple_of(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def refuse_moved(heads: Sequence[str], expected: Sequence[str]) -> None:
    """The database must still record what the plan was made from."""
    if sorted(heads) != sorted(expected):
        raise RevisionError(
            f"the database moved since the plan was made: it records"
            f" {', '.join(heads) or 'nothing'}, expected {', '.join(expected) or 'nothing'}",
            hint="another runner may be migrating; run `abmigrate status` and retry",
        )


@contextmanager
def _silenced_stdout() -> Iterator[None]:
    # Alembic's commands print "Generating ... done"; abmigrate renders its own result, and
    # standard output must stay parseable under --format json.
    with contextlib.redirect_stdout(io.StringIO()):
        yield


@contextmanager
def _quiet_alembic() -> Iterator[None]:
    # env.py usually re-applies alembic.ini's logging, which prints INFO lines for every
    # step; abmigrate reports progress itself, so only warnings and errors get through.
    # The "abmigrate" logger at DEBUG (`--verbose`) lets them through; its level, not
    # isEnabledFor(): an env.py's fileConfig() marks loggers it does not name disabled.
    previous = logging.root.manager.disable
    if (
        previous < logging.INFO
        and logging.getLogger("abmigrate").getEffectiveLevel() > logging.DEBUG
    ):
        logging.disable(logging.INFO)
    try:
        with project_stdout_to_stderr():
            yield
    finally:
        logging.disable(previous)


def migration_op() -> Any:
    """Alembic's ``op``: the operations of the revision running now (for code that runs
    inside a revision: :mod:`abmigrate.ops`, rehearse's measurements)."""
    from alembic import op

    return op


def between_steps(context: MigrationContext, *, upgrade: bool = True) -> None:
    """Make the next step of a generator-fed run behave as ``alembic`` would run it.

    Alembic's DDL memo remembers which PostgreSQL types (enums) were created or dropped
    during the run, and skips creating or dropping them again. An upgrade keeps that
    memory, as in one ``alembic upgrade`` (a later revision may reuse an enum an earlier
    one created, which only a single run accepts), except for types that no longer exist
    (a round trip's downgrade dropped them: the next upgrade must create them again). A
    downgrade starts with none, as ``alembic downgrade -1`` does. Looking at the schema
    autobegins a transaction, which is ended here (:func:`end_lookup_transaction`), so the
    next step starts clean.
    """
    import copy

    memo = context.impl.memo
    connection = context.connection
    # What the upgrades of this run remember survives a downgrade in between (a round
    # trip's "upgrade again" is the same run's upgrade, not a new run).
    kept = "_abmigrate_upgrade_memo"
    if not upgrade:
        if not hasattr(context.impl, kept):
            setattr(context.impl, kept, copy.deepcopy(dict(memo)))
        memo.clear()
    elif hasattr(context.impl, kept):
        memo.clear()
        memo.update(getattr(context.impl, kept))
        delattr(context.impl, kept)
    if upgrade and connection is not None and dialect_for(connection).has_enum_types:
        for key, names in memo.items():
            if key.startswith("pg_") and isinstance(names, set) and names:
                names.intersection_update(_existing_types(connection, names))
    end_lookup_transaction(context)


def end_lookup_transaction(context: MigrationContext) -> None:
    """Commit the transaction a look at the database autobegan between two steps, when it
    is nobody else's: not Alembic's (one transaction per migration), and not one env.py
    began around the whole run (phoenix's ``connection.begin()`` before ``configure``).
    Alembic leaves such an external transaction alone, every revision runs inside it and
    env.py commits it at the end; committing it here would run the rest outside any
    transaction and make env.py's own commit fail ("This transaction is inactive")."""
    connection = context.connection
    if (
        connection is not None
        and context._transaction is None
        and not context._in_external_transaction
        and connection.in_transaction()
    ):
        connection.commit()


def remember_existing_types(context: MigrationContext) -> None:
    """Seed Alembic's per-run DDL memo with the PostgreSQL enum types the database already
    has, as if this run had created them (a run resumed where an earlier one stopped)."""
    connection = context.connection
    if connection is None or not dialect_for(connection).has_enum_types:
        return
    rows = connection.exec_driver_sql(
        "SELECT n.nspname, t.typname, pg_type_is_visible(t.oid) FROM pg_type t"
        " JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype = 'e'"
    ).all()
    known = context.impl.memo.setdefault("pg_enum", set())
    for schema, name, visible in rows:
        known.add((str(schema), str(name)))
        if visible:
            known.add((None, str(name)))
    end_lookup_transaction(context)


def _existing_types(connection: Connection, names: set[Any]) -> set[Any]:
    wanted = [name for name in names if isinstance(name, tuple) and len(name) == 2]
    if not wanted:
        return set()
    from sqlalchemy import text

    # Bound through SQLAlchemy, not the driver's own paramstyle: this may be env.py's
    # asyncpg connection, where psycopg's %(name)s is a syntax error.
    rows = connection.execute(
        text(
            "SELECT n.nspname, t.typname, pg_type_is_visible(t.oid) FROM pg_type t"
            " JOIN pg_namespace n ON n.oid = t.typnamespace"
            " WHERE t.typname::text = ANY(:names)"
        ),
        {"names": [str(name) for _, name in wanted]},
    ).all()
    found: set[Any] = set()
    for schema, name in wanted:
        for nspname, typname, visible in rows:
            if typname == name and (nspname == schema or (schema is None and visible)):
                found.add((schema, name))
    return found


def step_revision(step: RevisionStep) -> str:
    return str(step.revision.revision)


def _split_by_step(text: str, steps: Sequence[RevisionStep]) -> list[StepSQL]:
    markers = list(_MARKER.finditer(text))
    chunks: list[str] = []
    for index, marker in enumerate(markers):
        end = markers[index + 1].start() if index + 1 < len(markers) else len(text)
        chunk = text[marker.start() : end]
        chunks.append(_trim_next_begin(chunk))
    if markers:
        preamble = text[: markers[0].start()].strip()
        if preamble and chunks:
            chunks[0] = preamble + "\n\n" + chunks[0]
    return [
        StepSQL(step_revision(step), chunks[index].strip() if index < len(chunks) else "")
        for index, step in enumerate(steps)
    ]


def _trim_next_begin(chunk: str) -> str:
    # With transaction_per_migration the next step's BEGIN lands at the end of this chunk.
    stripped = chunk.rstrip()
    if stripped.endswith("BEGIN;"):
        stripped = stripped[: -len("BEGIN;")].rstrip()
        return stripped + "\n"
    return chunk


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _revision_hint(message: str) -> str | None:
    if "not up to date" in message:
        return "run `abmigrate upgrade` first: autogenerate compares against a database at head"
    return None
