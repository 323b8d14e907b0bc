"""`dabiao certificates …` (the city's 标杆 decisions, earlier certificates, a firm's certificate),
`dabiao lists export` (the published lists) and `dabiao audit certificates` (every certificate checked)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from sqlmodel import Session

from api.commands.base import echo_json, refusal
from api.pages.exports import list_export, write_published_list
from deadlines.export import COMMAND_LINE
from states import Role, WorkflowError
from workflow.actors import Actor
from workflow.certificate_audit import check_certificates
from workflow.certificates import (
    LIST_KINDS,
    certificate_of,
    name_benchmark,
    published_list,
    record_prior_certificate,
    withdraw_benchmark,
)
from workflow.engine import load_firm

if TYPE_CHECKING:
    from api.commands.base import App

CLI_ACTOR = "admin (command line)"


def _firm(app: App, credit_code: str) -> Any:
    with app.engine.connect() as conn:
        return load_firm(conn, uscc=credit_code.strip().upper())


def _as_of(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value else None


as_of_option = click.option(
    "--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="Act as of this local date."
)


@click.group("certificates")
def certificates() -> None:
    """Certificates: the city's 标杆 list, earlier standardization certificates, a firm's certificate."""


@certificates.command("benchmark")
@click.argument("credit_code")
@click.option("--reason", required=True, help="Why the city bureau names the firm 标杆.")
@as_of_option
@click.pass_obj
def benchmark_cmd(app: App, credit_code: str, reason: str, as_of: dt.datetime | None) -> None:
    """Name the certified firm CREDIT_CODE 标杆 as the city bureau (score at least 75)."""
    app.require_schema()
    try:
        firm = _firm(app, credit_code)
        with Session(app.engine) as session:
            result = name_benchmark(
                session,
                enterprise_id=firm.id,
                reason=reason,
                actor=Actor.administrator(Role.city_bureau, firm, CLI_ACTOR),
                context=app.context(_as_of(as_of)),
            )
    except WorkflowError as exc:
        raise refusal(exc) from None
    click.echo(f"已列入标杆企业名单 / named a benchmark firm: {firm.name} ({firm.uscc}), score {result['score']:.1f}")


@certificates.command("unbenchmark")
@click.argument("credit_code")
@click.option("--reason", required=True, help="Why the firm leaves the 标杆 list.")
@as_of_option
@click.pass_obj
def unbenchmark_cmd(app: App, credit_code: str, reason: str, as_of: dt.datetime | None) -> None:
    """Take the firm CREDIT_CODE off the 标杆 list as the city bureau (it stays 达标)."""
    app.require_schema()
    try:
        firm = _firm(app, credit_code)
        with Session(app.engine) as session:
            withdraw_benchmark(
                session,
                enterprise_id=firm.id,
                reason=reason,
                actor=Actor.administrator(Role.city_bureau, firm, CLI_ACTOR),
                clock=app.clock(_as_of(as_of)),
            )
    except WorkflowError as exc:
        raise refusal(exc) from None
    click.echo(f"已移出标杆企业名单 / taken off the benchmark list: {firm.name} ({firm.uscc})")


@certificates.command("prior")
@click.argument("credit_code")
@click.option("--level", required=True, help="1, 2 (一级/二级) or none (无).")
@click.option("--number", default=None, help="原证书编号 (needed for level 1 or 2).")
@click.option("--date", "issued_on", default=None, help="原发证日期 YYYY-MM-DD (needed for level 1 or 2).")
@click.option("--role", type=click.Choice([Role.city_bureau.value, Role.district_bureau.value]), default="city_bureau")
@as_of_option
@click.pass_obj
def prior_cmd(
    app: App,
    credit_code: str,
    level: str,
    number: str | None,
    issued_on: str | None,
    role: str,
    as_of: dt.datetime | None,
) -> None:
    """Record whether the firm CREDIT_CODE holds an earlier level-1/2 standardization certificate."""
    app.require_schema()
    try:
        firm = _firm(app, credit_code)
        with Session(app.engine) as session:
            result = record_prior_certificate(
                session,
                enterprise_id=firm.id,
                level=level,
                number=number,
                issued_on=issued_on,
                actor=Actor.administrator(Role(role), firm, CLI_ACTOR),
                context=app.context(_as_of(as_of)),
            )
    except WorkflowError as exc:
        raise refusal(exc) from None
    what = "无 / none" if result["level"] is None else f"{result['level']} {result['number']} {result['date']}"
    changed = "" if result["changed"] else "（未变化 / unchanged）"
    click.echo(f"原标准化证书 / prior certificate of {firm.name} ({firm.uscc}): {what}{changed}")


@certificates.command("show")
@click.argument("credit_code")
@click.pass_obj
def show_cmd(app: App, credit_code: str) -> None:
    """The current certificate of the firm CREDIT_CODE (as JSON)."""
    app.require_schema()
    try:
        firm = _firm(app, credit_code)
        with app.engine.connect() as conn:
            cert = certificate_of(
                conn,
                enterprise_id=firm.id,
                actor=Actor.administrator(Role.city_bureau, firm, CLI_ACTOR),
                campaign=app.campaign,
            )
    except WorkflowError as exc:
        raise refusal(exc) from None
    echo_json(cert)


@click.group("lists")
def lists() -> None:
    """The lists the city publishes (达标企业名单 / 标杆企业名单)."""


@lists.command("export")
@click.option("--kind", type=click.Choice(LIST_KINDS), default="certified", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@as_of_option
@click.pass_obj
def export_cmd(app: App, kind: str, output: Path, as_of: dt.datetime | None) -> None:
    """Write the list as XLSX: a title row (what, as of when), frozen header, filters, real dates."""
    app.require_schema()
    clock = app.clock(_as_of(as_of))
    with app.engine.connect() as conn:
        export = list_export(kind=kind, campaign=app.campaign, as_of=clock.now().astimezone(clock.tz), by=COMMAND_LINE)
        count = write_published_list(
            output, export=export, rows=published_list(conn, kind=kind, clock=clock), campaign=app.campaign
        )
    click.echo(f"已写入 / wrote {output}: {count} firm(s)")


@click.command("certificates")
@click.option("--json", "as_json", is_flag=True, help="Every firm's full record as JSON lines.")
@click.pass_obj
def audit_certificates_cmd(app: App, as_json: bool) -> None:
    """Check every certified firm's certificate: team, member scores, the draw (seed and candidates),
    the evidence of every closed hazard and the dossier. Fails (exit 1) naming each firm lacking one."""
    app.require_schema()
    checked = 0
    failures: list[str] = []
    with app.engine.connect() as conn:
        for check in check_certificates(conn):
            checked += 1
            if as_json:
                click.echo(json.dumps(check.as_json(), ensure_ascii=False, default=str))
            else:
                team = ", ".join(
                    f"{m['name']} {'/'.join(f'{v:g}' for v in m['scores'].values()) or '—'}" for m in check.team
                )
                seeds = ", ".join(f"seed {d['seed']} of {len(d['candidates'])}" for d in check.draws)
                click.echo(
                    f"{'OK  ' if check.ok else 'FAIL'} {check.uscc} {check.name} {check.certificate_no or '—'} "
                    f"team [{team}] draw [{seeds}] hazards {len(check.hazards)} files {len(check.dossier['files'])}"
                )
            if not check.ok:
                failures.append(check.failure())
    if failures:
        for line in failures:
            click.echo(line, err=True)
        click.echo(
            f"{len(failures)} / {checked} 份证书缺少依据 / {len(failures)} of {checked} certificate(s) lack a record",
            err=True,
        )
        raise SystemExit(1)
    click.echo(f"证书均可核查 / every certificate checks out: {checked} certified firm(s)")


def register(main: click.Group) -> None:
    """Add this module's commands to the `dabiao` group (and `audit certificates` to `dabiao audit`)."""
    main.add_command(certificates)
    main.add_command(lists)
    audit = main.commands["audit"]
    assert isinstance(audit, click.Group)
    audit.add_command(audit_certificates_cmd)
