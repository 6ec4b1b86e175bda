"""Goal: the four lifecycle tables and the one enforcer, `kit.transitions.apply`, say
exactly what DESIGN.md "Lifecycles" says, and nothing else.

Method: pure, no database. For every table, every (state, action, role) triple of the
Status, Action and Role enums is fed to `apply`: it must return the table's target
exactly when the pair is in the table and the role is in its rule, raise `Forbidden`
(403) when the role is in no rule for the action, and otherwise raise
`IllegalTransition` (409) naming the current state. Completeness: every status is
reachable from the initial one, the terminal states have no exits, automatic actions
belong to `system` alone, and the edges are the ones DESIGN.md draws. Hypothesis then
walks random action sequences with random roles.
"""

from __future__ import annotations

import copy
import re
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receivables.auctions.lifecycle import (
    BID_TRANSITIONS,
    LISTING_TRANSITIONS,
    BidAction,
    BidStatus,
    ListingAction,
    ListingStatus,
)
from receivables.auth.roles import Role
from receivables.deals.lifecycle import DEAL_TRANSITIONS, REPAYABLE, DealAction, DealStatus
from receivables.kit.errors import Forbidden, IllegalTransition
from receivables.kit.transitions import Rule, Table, apply, states_of
from receivables.receivables.lifecycle import (
    RECEIVABLE_TRANSITIONS,
    REGISTRY_FREED,
    TERMINAL,
    ReceivableAction,
    ReceivableStatus,
)


@dataclass(frozen=True)
class Lifecycle:
    name: str
    table: Table
    status: type[StrEnum]
    action: type[StrEnum]
    initial: StrEnum
    terminal: frozenset
    automatic: frozenset
    """Actions only the platform takes (deadlines passing): `system` alone holds them."""
    system_too: frozenset = frozenset()
    """Actions a human takes but the platform may take as well (e.g. delist at close)."""

    def __str__(self) -> str:
        return self.name


R, RA = ReceivableStatus, ReceivableAction
L, LA = ListingStatus, ListingAction
B, BA = BidStatus, BidAction
D, DA = DealStatus, DealAction

LIFECYCLES = [
    Lifecycle(
        "receivable",
        RECEIVABLE_TRANSITIONS,
        R,
        RA,
        R.submitted,
        terminal=frozenset({R.settled, R.expired, R.cancelled}),
        automatic=frozenset({RA.expire, RA.unaward, RA.mark_overdue, RA.mark_defaulted}),
        system_too=frozenset({RA.delist, RA.award}),
    ),
    Lifecycle(
        "listing",
        LISTING_TRANSITIONS,
        L,
        LA,
        L.open,
        terminal=frozenset({L.awarded, L.cancelled, L.expired}),
        automatic=frozenset({LA.expire}),
        system_too=frozenset({LA.award}),
    ),
    Lifecycle(
        "bid",
        BID_TRANSITIONS,
        B,
        BA,
        B.active,
        terminal=frozenset({B.withdrawn, B.won, B.lost}),
        automatic=frozenset(),
        system_too=frozenset({BA.win, BA.lose}),
    ),
    Lifecycle(
        "deal",
        DEAL_TRANSITIONS,
        D,
        DA,
        D.awaiting_funding,
        terminal=frozenset({D.settled, D.cancelled}),
        automatic=frozenset({DA.expire_funding, DA.mark_overdue, DA.mark_defaulted}),
    ),
]
BY_NAME = {lc.name: lc for lc in LIFECYCLES}

# The diagrams of DESIGN.md "Lifecycles", transcribed by hand (from, action, to): a
# second, independent statement of each table, so an accidental edit of a table fails.
DESIGN_EDGES: dict[str, set[tuple[str, str, str]]] = {
    "receivable": {
        ("submitted", "confirm", "confirmed"),
        ("confirmed", "list", "listed"),
        ("listed", "award", "awarded"),
        ("awarded", "finance", "financed"),
        ("financed", "settle", "settled"),
        ("submitted", "dispute", "disputed"),
        ("disputed", "amend", "submitted"),
        ("submitted", "expire", "expired"),
        ("submitted", "cancel", "cancelled"),
        ("disputed", "cancel", "cancelled"),
        ("confirmed", "cancel", "cancelled"),
        ("listed", "delist", "confirmed"),
        ("awarded", "unaward", "confirmed"),
        ("financed", "mark_overdue", "overdue"),
        ("overdue", "mark_defaulted", "defaulted"),
        # "mirrors its deal": an overdue or defaulted deal repaid in full settles
        ("overdue", "settle", "settled"),
        ("defaulted", "settle", "settled"),
    },
    "listing": {
        ("open", "award", "awarded"),
        ("open", "cancel", "cancelled"),
        ("open", "expire", "expired"),
    },
    "bid": {
        ("active", "revise", "active"),
        ("active", "withdraw", "withdrawn"),
        ("active", "win", "won"),
        ("active", "lose", "lost"),
    },
    "deal": {
        ("awaiting_funding", "fund", "disbursed"),
        ("awaiting_funding", "expire_funding", "cancelled"),
        ("disbursed", "repay", "disbursed"),
        ("disbursed", "repay_in_full", "settled"),
        ("disbursed", "mark_overdue", "overdue"),
        ("overdue", "repay", "overdue"),
        ("overdue", "repay_in_full", "settled"),
        ("overdue", "mark_defaulted", "defaulted"),
        ("defaulted", "repay", "defaulted"),
        ("defaulted", "repay_in_full", "settled"),
    },
}

# Roles DESIGN.md's "Parties and roles" and diagrams name for the human actions.
DESIGN_ROLES: dict[str, dict[str, set[Role]]] = {
    "receivable": {
        "confirm": {Role.core},
        "dispute": {Role.core},
        "amend": {Role.sme},
        "cancel": {Role.sme},
        "list": {Role.sme},
        "finance": {Role.bank},
    },
    "listing": {"cancel": {Role.sme}, "award": {Role.sme, Role.system}},
    "bid": {"revise": {Role.bank}, "withdraw": {Role.bank}},
    "deal": {"fund": {Role.bank}},
}


def _ids(lifecycles: list[Lifecycle]) -> list[str]:
    return [lc.name for lc in lifecycles]


def _names_state(detail: str, state: StrEnum) -> bool:
    return re.search(rf"(?<![\w]){re.escape(str(state))}(?![\w])", detail) is not None


def _roles_for(table: Table, action: StrEnum) -> set[Role]:
    return {role for (_, a), found in table.items() if a == action for role in found.roles}


# ------------------------------------------------------------------ apply, exhaustively


STATE_CASES = [(lc.name, state) for lc in LIFECYCLES for state in lc.status]


class TestApplyExhaustive:
    @pytest.mark.parametrize(
        ("lifecycle", "state"), STATE_CASES, ids=[f"{n}-{s}" for n, s in STATE_CASES]
    )
    def test_every_action_and_role_from_this_state(self, lifecycle: str, state: StrEnum):
        lc = BY_NAME[lifecycle]
        wrong: list[str] = []
        for action in lc.action:
            may_ever = _roles_for(lc.table, action)
            for role in Role:
                found = lc.table.get((state, action))
                try:
                    got = apply(lc.table, state, action, role)
                except Forbidden as exc:
                    if role in may_ever:
                        wrong.append(f"{action}/{role}: 403 but the role holds a rule for it")
                    if exc.status != 403 or exc.code != "forbidden":
                        wrong.append(f"{action}/{role}: Forbidden renders {exc.status} {exc.code}")
                except IllegalTransition as exc:
                    if role not in may_ever:
                        wrong.append(f"{action}/{role}: 409 but the role holds no rule (want 403)")
                    if found is not None and role in found.roles:
                        wrong.append(f"{action}/{role}: 409 for a pair the table allows")
                    if (exc.status, exc.code) != (409, "illegal_transition"):
                        wrong.append(f"{action}/{role}: renders {exc.status} {exc.code}")
                    if not _names_state(exc.detail, state):
                        wrong.append(f"{action}/{role}: detail {exc.detail!r} omits {state}")
                else:
                    if found is None or role not in found.roles:
                        wrong.append(f"{action}/{role}: allowed -> {got}, not in the table")
                    elif got != found.target or type(got) is not lc.status:
                        wrong.append(f"{action}/{role}: -> {got!r}, table says {found.target!r}")
        assert wrong == []

    def test_the_cube_is_covered(self):
        """Sanity for the parametrization above: every state of every enum is a case."""
        assert len(STATE_CASES) == sum(len(lc.status) for lc in LIFECYCLES)
        assert len(STATE_CASES) * len(Role) > 0

    def test_forbidden_beats_illegal(self):
        """403 is decided before 409 (API.md order): a bank confirming a settled receivable
        learns it may never confirm, not the receivable's state."""
        with pytest.raises(Forbidden):
            apply(RECEIVABLE_TRANSITIONS, R.settled, RA.confirm, Role.bank)

    def test_right_role_for_the_action_but_not_for_this_pair_is_409(self):
        """sme may settle (recourse) but may not award an awarded receivable: both are
        409 once the role holds *some* rule for the action."""
        with pytest.raises(IllegalTransition, match=r"\bawarded\b"):
            apply(RECEIVABLE_TRANSITIONS, R.awarded, RA.award, Role.sme)
        # sme holds a repay rule (defaulted, recourse) but not one from disbursed
        with pytest.raises(IllegalTransition, match=r"\bdisbursed\b"):
            apply(DEAL_TRANSITIONS, D.disbursed, DA.repay, Role.sme)

    def test_apply_does_not_touch_the_table(self):
        for lc in LIFECYCLES:
            before = copy.deepcopy(dict(lc.table))
            for state in lc.status:
                for action in lc.action:
                    for role in Role:
                        try:
                            apply(lc.table, state, action, role)
                        except (Forbidden, IllegalTransition):
                            pass
            assert dict(lc.table) == before, lc.name


# ------------------------------------------------------------------ completeness


def _reachable(lc: Lifecycle) -> set[StrEnum]:
    seen = {lc.initial}
    todo = deque([lc.initial])
    while todo:
        state = todo.popleft()
        for (source, _), found in lc.table.items():
            if source == state and found.target not in seen:
                seen.add(found.target)
                todo.append(found.target)
    return seen


@pytest.mark.parametrize("lc", LIFECYCLES, ids=_ids(LIFECYCLES))
class TestTableCompleteness:
    def test_keys_and_targets_are_the_lifecycles_own_enums(self, lc: Lifecycle):
        for (state, action), found in lc.table.items():
            assert type(state) is lc.status and type(action) is lc.action
            assert isinstance(found, Rule) and type(found.target) is lc.status
            assert found.roles, f"{state}/{action} admits nobody"
            assert isinstance(found.roles, frozenset)
            assert all(isinstance(role, Role) for role in found.roles)

    def test_every_status_is_reachable_from_the_initial_one(self, lc: Lifecycle):
        assert _reachable(lc) == set(lc.status)
        assert states_of(lc.table) == set(lc.status)

    def test_terminal_states_have_no_exits(self, lc: Lifecycle):
        exits = {state for state, _ in lc.table}
        assert exits.isdisjoint(lc.terminal)
        for state in lc.terminal:
            for action in lc.action:
                for role in Role:
                    with pytest.raises((Forbidden, IllegalTransition)):
                        apply(lc.table, state, action, role)

    def test_every_other_state_has_an_exit(self, lc: Lifecycle):
        """The terminal set is exactly the states without exits: nothing gets stuck."""
        exits = {state for state, action in lc.table if lc.table[state, action].target != state}
        assert set(lc.status) - exits == set(lc.terminal)

    def test_initial_state_is_not_terminal(self, lc: Lifecycle):
        assert lc.initial not in lc.terminal

    def test_automatic_actions_belong_to_system_alone(self, lc: Lifecycle):
        for action in lc.automatic:
            rules = [found for (_, a), found in lc.table.items() if a == action]
            assert rules, f"{action} has no rule"
            assert all(found.roles == {Role.system} for found in rules), action

    def test_system_may_take_the_closing_actions_too(self, lc: Lifecycle):
        for action in lc.system_too:
            assert Role.system in _roles_for(lc.table, action), action

    def test_system_holds_no_human_action(self, lc: Lifecycle):
        """The platform never confirms, lists, bids or pays on anyone's behalf."""
        for action in lc.action:
            if action not in lc.automatic | lc.system_too:
                assert Role.system not in _roles_for(lc.table, action), action

    def test_supervisors_never_move_anything(self, lc: Lifecycle):
        for found in lc.table.values():
            assert Role.regulator not in found.roles
            assert Role.operator not in found.roles

    def test_edges_are_the_ones_design_md_draws(self, lc: Lifecycle):
        edges = {(str(s), str(a), str(found.target)) for (s, a), found in lc.table.items()}
        assert edges == DESIGN_EDGES[lc.name]

    def test_human_actions_have_the_roles_design_md_names(self, lc: Lifecycle):
        for action, roles in DESIGN_ROLES[lc.name].items():
            assert _roles_for(lc.table, lc.action(action)) == roles, action


class TestLifecycleConstants:
    def test_receivable_terminal_constant(self):
        assert TERMINAL == BY_NAME["receivable"].terminal

    def test_registry_is_freed_only_by_dead_ends_that_never_financed(self):
        assert REGISTRY_FREED == {R.expired, R.cancelled}
        assert REGISTRY_FREED <= TERMINAL

    def test_repayable_deal_states(self):
        repayable = {s for (s, a) in DEAL_TRANSITIONS if a in (DA.repay, DA.repay_in_full)}
        assert REPAYABLE == repayable == {D.disbursed, D.overdue, D.defaulted}

    def test_seller_pays_only_once_defaulted(self):
        """Recourse: the SME may pay into escrow only after default (DESIGN.md)."""
        for (state, action), found in DEAL_TRANSITIONS.items():
            if Role.sme in found.roles:
                assert state == D.defaulted and action in (DA.repay, DA.repay_in_full)


# ------------------------------------------------------------------ random walks


def _walks(lc: Lifecycle):
    step = st.tuples(st.sampled_from(list(lc.action)), st.sampled_from(list(Role)))
    return st.lists(step, min_size=1, max_size=40)


def _walk(lc: Lifecycle, steps) -> None:
    mentioned = states_of(lc.table)
    reachable = _reachable(lc)
    state = lc.initial
    for action, role in steps:
        before = state
        try:
            state = apply(lc.table, state, action, role)
        except Forbidden:
            assert role not in _roles_for(lc.table, action)
            assert state == before
        except IllegalTransition as exc:
            assert state == before
            assert _names_state(exc.detail, before)
            found = lc.table.get((before, action))
            assert found is None or role not in found.roles
        else:
            assert lc.table[before, action].target == state
            assert role in lc.table[before, action].roles
            assert before not in lc.terminal
        assert state in mentioned and state in reachable
        assert type(state) is lc.status


class TestRandomWalks:
    @settings(max_examples=300, deadline=None)
    @given(data=st.data())
    def test_receivable(self, data):
        _walk(BY_NAME["receivable"], data.draw(_walks(BY_NAME["receivable"])))

    @settings(max_examples=150, deadline=None)
    @given(data=st.data())
    def test_listing(self, data):
        _walk(BY_NAME["listing"], data.draw(_walks(BY_NAME["listing"])))

    @settings(max_examples=150, deadline=None)
    @given(data=st.data())
    def test_bid(self, data):
        _walk(BY_NAME["bid"], data.draw(_walks(BY_NAME["bid"])))

    @settings(max_examples=300, deadline=None)
    @given(data=st.data())
    def test_deal(self, data):
        _walk(BY_NAME["deal"], data.draw(_walks(BY_NAME["deal"])))

    @settings(max_examples=200, deadline=None)
    @given(data=st.data())
    def test_legal_walks_only_reach_terminal_states_by_the_table(self, data):
        """Walks made only of allowed steps: each step is a table edge, and once a
        terminal state is reached no further step exists."""
        lc = data.draw(st.sampled_from(LIFECYCLES))
        state = lc.initial
        for _ in range(data.draw(st.integers(min_value=1, max_value=30))):
            options = [
                (a, r) for (s, a), found in lc.table.items() if s == state for r in found.roles
            ]
            if not options:
                assert state in lc.terminal
                break
            action, role = data.draw(st.sampled_from(sorted(options)))
            state = apply(lc.table, state, action, role)
        assert state in _reachable(lc)
