"""``abmigrate lint``: the migration linter on the command line."""

from __future__ import annotations

import click

from abmigrate.cli.main import CliState, open_workspace, pass_state

__all__ = ["lint"]


@click.command()
@click.argument("revisions", nargs=-1, metavar="[REVISION|FROM:TO]...")
@click.option("--since", metavar="REV", help="Lint the revisions after REV (up to the heads).")
@click.option(
    "--changed-from", metavar="GIT_REF", help="Lint the revision files changed since GIT_REF."
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["human", "json", "sarif", "github", "markdown"]),
    default=None,
    help="Output format (json: a list of findings; sarif: SARIF 2.1.0; github: annotations;"
    " markdown: for a pull request, also appended to $GITHUB_STEP_SUMMARY when set).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning", "never"]),
    default="error",
    show_default=True,
    help="Lowest severity that makes the command exit 1.",
)
@click.option("--explain", metavar="CODE", help="Show a rule's documentation and exit.")
@click.option("--env", "-e", "env", help="Environment (its lint configuration and policy).")
@pass_state
def lint(
    state: CliState,
    revisions: tuple[str, ...],
    since: str | None,
    changed_from: str | None,
    output_format: str | None,
    fail_on: str,
    explain: str | None,
    env: str | None,
) -> None:
    """Lint revisions, each on its own, for locks, data loss and breaking changes.

    Exits 1 when a finding has severity error. Suppress a finding in the revision file with
    `# abmigrate: ignore[CODE] reason: why it is safe`.
    """
    from abmigrate import api
    from abmigrate.errors import LintFailed
    from abmigrate.lint import output
    from abmigrate.lint.registry import all_rules
    from abmigrate.render.records import console

    if explain is not None:
        _explain(explain)
        return
    if env is not None:
        state.env = env
    fmt = output_format or state.output_format
    # lint needs no database: a missing URL is not an error here.
    workspace = open_workspace(state, require_url=False)
    result = api.lint(workspace, revisions, since=since, changed_from=changed_from)
    if fmt == "json":
        click.echo(output.render_json(result))
    elif fmt == "sarif":
        click.echo(output.render_sarif(result, all_rules()))
    elif fmt == "markdown":
        from abmigrate.cli.main import emit_markdown
        from abmigrate.render.markdown import lint_markdown

        emit_markdown(lint_markdown(result.to_record()))
    elif fmt == "github":
        text = output.render_github(result)
        if text:
            click.echo(text)
    else:
        output.render_human(result, console())
    failing = {"error": result.errors, "warning": result.findings, "never": []}[fail_on]
    if failing:
        what = "error(s)" if fail_on == "error" else "finding(s)"
        raise LintFailed(
            f"lint found {len(failing)} {what}",
            hint="fix them, or suppress one with `# abmigrate: ignore[CODE] reason: ...`",
            findings=[finding.to_record() for finding in failing],
        )


def _explain(code: str) -> None:
    import inspect

    from abmigrate.errors import RevisionError
    from abmigrate.lint.registry import rule_by_code

    rules = rule_by_code()
    rule = rules.get(code.upper())
    if rule is None:
        raise RevisionError(f"no rule {code!r}", hint="rule codes: " + ", ".join(rules))
    click.echo(
        f"{rule.code} {rule.name} ({rule.severity}{', destructive' if rule.destructive else ''})\n"
    )
    click.echo(inspect.getdoc(rule) or "")
    click.echo(f"\nFix: {rule.hint}")
