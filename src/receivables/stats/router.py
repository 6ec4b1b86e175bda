"""/stats/* and /organizations/{id}/profile: the platform's figures for regulators and
operators, the arrears list for banks too, and debtors' track records for banks pricing
a bid. Every route answers JSON, or CSV with `Accept: text/csv`."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query
from fastapi.exceptions import RequestValidationError

from receivables.auth.dependencies import SupervisorActor, require_roles
from receivables.auth.principal import Principal
from receivables.auth.roles import Role
from receivables.kit.deps import ClockDep, SessionDep, SettingsDep
from receivables.kit.errors import Forbidden, NotFound, problem_responses
from receivables.kit.pagination import PAGE_LIMIT_DEFAULT, CursorQuery, InvalidCursor, LimitQuery
from receivables.stats import csv, paging, service
from receivables.stats.queries import Window
from receivables.stats.schemas import (
    ArrearsPage,
    ArrearsRow,
    CoreEnterprisePage,
    CoreEnterpriseRow,
    OrganizationProfile,
    Overview,
    SectorArrearsPage,
    SectorArrearsRow,
)

router = APIRouter(tags=["statistics"])

CURRENCY_DEFAULT = "CNY"

ArrearsReader = Annotated[
    Principal, Depends(require_roles(Role.bank, Role.operator, Role.regulator))
]
"""Banks read the arrears list and debtors' profiles too: they price debtors' risk."""


def _invalid(field: str, message: str) -> RequestValidationError:
    """A 422 naming the field, in the same shape as FastAPI's own validation errors."""
    return RequestValidationError([{"loc": ("query", field), "msg": message, "type": "value_error"}])


async def stats_window(
    from_: Annotated[
        dt.date | None, Query(alias="from", description="First UTC day (YYYY-MM-DD), inclusive")
    ] = None,
    to: Annotated[dt.date | None, Query(description="Last UTC day (YYYY-MM-DD), inclusive")] = None,
    currency: Annotated[
        str, Query(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")
    ] = CURRENCY_DEFAULT,
) -> Window:
    if from_ is not None and to is not None and to < from_:
        raise _invalid("to", "must not be before from")
    return Window(currency=currency, first_day=from_, last_day=to)


async def stats_slice(limit: LimitQuery = PAGE_LIMIT_DEFAULT, cursor: CursorQuery = None) -> paging.Slice:
    offset = paging.decode_offset(cursor)
    if offset is None:
        raise InvalidCursor()
    return paging.Slice(limit=limit, offset=offset)


WindowDep = Annotated[Window, Depends(stats_window)]
SliceDep = Annotated[paging.Slice, Depends(stats_slice)]
Accept = Annotated[str | None, Header(description="`text/csv` for CSV; JSON otherwise")]


@router.get(
    "/stats/overview",
    response_model=Overview,
    responses={**problem_responses(Forbidden), **csv.CSV_RESPONSE},
)
async def overview(
    actor: SupervisorActor, session: SessionDep, clock: ClockDep, window: WindowDep,
    accept: Accept = None,
):
    """The platform's figures over a range of days in one currency: organizations by
    kind, receivables by status, deals financed (count, principal, face value), the SME
    share of them by count and by principal, the P-weighted average and the median
    discount rate, what is outstanding, overdue and defaulted on them, and a monthly
    series. Receivables count by submission day, deals by funding day. Operators and
    regulators. CSV: `metric,value` rows."""
    body = await service.overview(session, window, clock=clock)
    if csv.wants_csv(accept):
        return csv.response(csv.metrics_table(body), filename="overview.csv")
    return body


@router.get(
    "/stats/core-enterprises",
    response_model=CoreEnterprisePage,
    responses={**problem_responses(Forbidden, InvalidCursor), **csv.CSV_RESPONSE},
)
async def core_enterprises(
    actor: SupervisorActor, session: SessionDep, clock: ClockDep, window: WindowDep,
    page: SliceDep,
    sort: Annotated[Literal[tuple(service.SORTS)], Query()] = service.SORT_DEFAULT,  # type: ignore[valid-type]
    order: Annotated[Literal["asc", "desc"] | None, Query()] = None,
    accept: Accept = None,
):
    """Each core enterprise's track record as a debtor: receivables submitted against
    it, confirmed, disputed and expired, its confirmation rate and the median and 90th
    percentile of its confirmation time, suppliers financed through it, the amount
    financed, its on-time repayment rate and what it owes overdue. `sort` picks the
    column; by default the worst come first (slowest, lowest rate, largest amount owed;
    `order` overrides). Operators and regulators. CSV: one row per item."""
    body = await service.core_enterprises(
        session, window, clock=clock, sort=sort, order=order, page=page
    )
    if csv.wants_csv(accept):
        table = csv.items_table(body.items, CoreEnterpriseRow)
        return csv.response(table, filename="core-enterprises.csv", next_cursor=body.next_cursor)
    return body


@router.get(
    "/stats/arrears",
    response_model=ArrearsPage | SectorArrearsPage,
    responses={**problem_responses(Forbidden, InvalidCursor), **csv.CSV_RESPONSE},
)
async def arrears(
    actor: ArrearsReader, session: SessionDep, clock: ClockDep, settings: SettingsDep,
    window: WindowDep, page: SliceDep,
    serious: Annotated[bool | None, Query(description="true: only debtors on the serious-arrears list")] = None,
    group_by: Annotated[Literal["debtor", "sector"], Query()] = "debtor",
    accept: Accept = None,
):
    """Arrears — deals overdue or defaulted, still owed — grouped by debtor, largest
    amount first, with days overdue and whether the debtor is on the serious-arrears
    list (its overdue amount reaches RECEIVABLES_SERIOUS_ARREARS_AMOUNT or its oldest
    arrear RECEIVABLES_SERIOUS_ARREARS_DAYS; joining and leaving the list are audited
    events). `from`/`to` keep the arrears that fell overdue in the range.
    `group_by=sector`: arrears that fell overdue in the range by the debtor's sector, with
    what was owed then, what has been repaid since and the cleared ratio. Regulators,
    operators and banks. CSV: one row per item."""
    if group_by == "sector":
        if serious is not None:
            raise _invalid("serious", "applies to group_by=debtor only")
        body = await service.arrears_by_sector(session, window, clock=clock, page=page)
        model: type = SectorArrearsRow
    else:
        body = await service.arrears(
            session, window, clock=clock, settings=settings, serious_only=bool(serious), page=page
        )
        model = ArrearsRow
    if csv.wants_csv(accept):
        table = csv.items_table(body.items, model)
        return csv.response(table, filename=f"arrears-by-{group_by}.csv", next_cursor=body.next_cursor)
    return body


@router.get(
    "/organizations/{organization_id}/profile",
    response_model=OrganizationProfile,
    responses={**problem_responses(Forbidden, NotFound), **csv.CSV_RESPONSE},
)
async def organization_profile(
    organization_id: uuid.UUID, actor: ArrearsReader, session: SessionDep, clock: ClockDep,
    settings: SettingsDep, window: WindowDep, accept: Accept = None,
):
    """An organization's track record on the platform. For a core enterprise, what a
    bank pricing a bid needs: how many receivables it confirmed and how fast (median and
    90th percentile hours), its on-time repayment rate, what it owes overdue and whether
    it is on the serious-arrears list. For a bank, its funding record (deals won, funded,
    missed funding deadlines), shown to the bank itself, operators and regulators. Banks,
    operators and regulators. CSV: `metric,value` rows."""
    body = await service.profile(
        session, actor, organization_id, window, clock=clock, settings=settings
    )
    if csv.wants_csv(accept):
        return csv.response(csv.metrics_table(body), filename="profile.csv")
    return body
