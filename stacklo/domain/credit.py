"""The credit decision: an explainable points scorecard, pure (the caller gathers the facts in
one read and keeps the card; ``decide`` does no I/O and takes tens of microseconds).

Scoring: each factor maps one fact of the ``Applicant`` to points, through bands (the highest
band whose lower bound the fact reaches) or, for employment, a table: account age, stated
monthly income, money into the wallets over 90 days, their average balance over 90 days,
employment, the share of installments paid by their due date (middle points when none was paid
yet), the number paid late, and defaulted plans. The maxima sum to 550, so
``score = 300 + points`` runs from 300 to 850. Money bands are in scorecard units that each
currency's fixed ``unit`` turns into its own amounts (not a live rate: a decision replays
exactly and never moves with the market).

Hard rules, applied whatever the score (the applicant is still scored, for the explanation):
- identity not verified: DECLINED, the identity reason first (the caller refuses earlier;
  ``decide`` is total anyway);
- any defaulted installment plan: DECLINED, the default factor's reason first (after identity);
- a home currency the card has no terms for (the card holds fiat ones only, so every crypto
  one): DECLINED and not scored: score 300, no factors, limit 0, the one reason "Credit is
  offered in fiat home currencies only."

Otherwise APPROVED when ``score >= cut_off``, with
``limit = down(min(cap x share, monthly income x income_multiple, inflow x inflow_multiple))``
to the currency's decimals, where ``cap`` is the currency's and ``share`` the score band's. A
limit below the currency's ``min_limit`` declines: the card is checked on load so that this
happens only when income or inflow sits in its lowest band, whose loss is then among the
reasons. Declined: limit 0.

Reasons, in the spirit of Regulation B's adverse-action reasons, at most 4:
- declined: the hard rules' reasons, then the factors that lost the most points
  (``max_points - points``), largest loss first, only factors that lost any;
- approved: the factors that contributed the most points, largest first, only those that
  contributed any.
Ties are cited in the card's order. A factor's ``reason`` says why it cost points in a decline
and what it contributed in an approval (the other text when it cost, or gave, nothing); money
in texts is computed from the card in the applicant's currency.

Every weight, band, cut-off, cap, multiple and text is data (``scorecard.toml`` beside this
module, with its ``version``), read and checked once by ``load_scorecard``.
"""

from __future__ import annotations

import tomllib
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from enum import Enum
from itertools import pairwise
from pathlib import Path
from typing import Any

from stacklo.domain.money import CURRENCIES, MONEY_CONTEXT, CurrencyCode, CurrencyKind, quantize

MIN_SCORE = 300
MAX_SCORE = 850
MAX_REASONS = 4
ZERO = Decimal(0)
DEFAULT_SCORECARD = Path(__file__).resolve().with_name("scorecard.toml")


class CreditStatus(Enum):
    NONE = "NONE"
    APPROVED = "APPROVED"
    DECLINED = "DECLINED"
    SUSPENDED = "SUSPENDED"


class EmploymentStatus(Enum):
    EMPLOYED = "EMPLOYED"
    SELF_EMPLOYED = "SELF_EMPLOYED"
    STUDENT = "STUDENT"
    UNEMPLOYED = "UNEMPLOYED"
    RETIRED = "RETIRED"


@dataclass(frozen=True, slots=True)
class Applicant:
    """The facts one decision is made from, gathered in one read by the caller."""

    currency: CurrencyCode  # the user's home currency: limit and money facts are in it
    kyc_verified: bool
    account_age_days: int
    monthly_income: Decimal  # stated by the applicant, in `currency`
    employment: EmploymentStatus
    inflow_90d: Decimal  # money into their wallets in the last 90 days (in `currency`)
    average_balance_90d: Decimal  # in `currency`
    installments_on_time: int  # installments paid by their due date, ever
    installments_late: int  # installments paid after their due date, ever
    plans_defaulted: int  # installment plans that defaulted, ever


@dataclass(frozen=True, slots=True)
class Factor:
    name: str  # stable machine id, e.g. "income"
    points: int  # points this factor contributed
    max_points: int  # the most it could contribute
    reason: str  # why it cost points (declined) or what it contributed (approved)

    @property
    def lost(self) -> int:
        return self.max_points - self.points


@dataclass(frozen=True, slots=True)
class Decision:
    status: CreditStatus  # APPROVED or DECLINED
    score: int  # 300..850
    limit: Decimal  # quantised down to the currency; 0 when declined
    reasons: tuple[str, ...]  # at most 4, ranked (module docstring)
    factors: tuple[Factor, ...]  # every factor scored, for the stored explanation
    version: str  # the scorecard's version


# --------------------------------------------------------------------------- the card ----


class Fact(Enum):
    """What a factor scores: an ``Applicant`` field, or the on-time share derived from two."""

    ACCOUNT_AGE_DAYS = "account_age_days"
    MONTHLY_INCOME = "monthly_income"
    EMPLOYMENT = "employment"
    INFLOW_90D = "inflow_90d"
    AVERAGE_BALANCE_90D = "average_balance_90d"
    # installments paid by their due date, in % of all paid (rounded down); none when none paid
    ON_TIME_PERCENT = "on_time_percent"
    INSTALLMENTS_LATE = "installments_late"
    PLANS_DEFAULTED = "plans_defaulted"


MONEY_FACTS = frozenset({Fact.MONTHLY_INCOME, Fact.INFLOW_90D, Fact.AVERAGE_BALANCE_90D})


@dataclass(frozen=True, slots=True)
class Points:
    """What a band (or an employment status) is worth, and the words for it."""

    points: int
    reason: str = ""  # why it cost points: needed when points < the factor's maximum
    positive: str = ""  # what it contributed: needed when points > 0


@dataclass(frozen=True, slots=True)
class Band:
    at_least: Decimal  # the fact's lowest value in this band (money: scorecard units)
    value: Points


@dataclass(frozen=True, slots=True)
class Rule:
    """One factor: numbers through ``bands`` (ascending from 0), employment through ``table``;
    ``no_value`` scores a fact that has none (no installment paid yet)."""

    name: str
    fact: Fact
    bands: tuple[Band, ...] = ()
    table: tuple[tuple[EmploymentStatus, Points], ...] = ()
    no_value: Points | None = None

    def values(self) -> tuple[Points, ...]:
        extra = () if self.no_value is None else (self.no_value,)
        return (*(b.value for b in self.bands), *(p for _, p in self.table), *extra)

    @property
    def max_points(self) -> int:
        return max((p.points for p in self.values()), default=0)


@dataclass(frozen=True, slots=True)
class CurrencyTerms:
    unit: Decimal  # one scorecard unit of money in this currency (a fixed scale)
    cap: Decimal  # the largest limit
    min_limit: Decimal  # the smallest limit approved


@dataclass(frozen=True, slots=True)
class CapBand:
    min_score: int
    share: Decimal  # of the currency's cap


@dataclass(frozen=True, slots=True)
class _Scorer:
    """A rule made ready for one currency: bounds in its money, texts formatted."""

    name: str
    max_points: int
    get: Callable[[Applicant], Decimal | int | None]
    bounds: tuple[Decimal, ...]
    values: tuple[Points, ...]
    no_value: Points | None
    table: Mapping[EmploymentStatus, Points]

    def score(self, applicant: Applicant) -> Points:
        if self.table:
            return self.table[applicant.employment]
        value = self.get(applicant)
        if value is None:
            assert self.no_value is not None  # checked on load
            return self.no_value
        return self.values[max(0, bisect_right(self.bounds, value) - 1)]


def _on_time_percent(a: Applicant) -> int | None:
    paid = a.installments_on_time + a.installments_late
    return None if paid <= 0 else a.installments_on_time * 100 // paid


_GETTERS: dict[Fact, Callable[[Applicant], Decimal | int | None]] = {
    Fact.ACCOUNT_AGE_DAYS: lambda a: a.account_age_days,
    Fact.MONTHLY_INCOME: lambda a: a.monthly_income,
    Fact.EMPLOYMENT: lambda a: None,  # a table factor
    Fact.INFLOW_90D: lambda a: a.inflow_90d,
    Fact.AVERAGE_BALANCE_90D: lambda a: a.average_balance_90d,
    Fact.ON_TIME_PERCENT: _on_time_percent,
    Fact.INSTALLMENTS_LATE: lambda a: a.installments_late,
    Fact.PLANS_DEFAULTED: lambda a: a.plans_defaulted,
}


@dataclass(frozen=True, slots=True)
class _Ready:
    """What ``decide`` needs for one currency, computed on load."""

    terms: CurrencyTerms
    scorers: tuple[_Scorer, ...]
    caps: tuple[tuple[int, Decimal], ...]  # (min score, cap amount), highest score first
    zero: Decimal


@dataclass(frozen=True, slots=True)
class Scorecard:
    """Weights (the rules' points), bands, cut-off and the limit rule; checked on creation."""

    version: str
    cut_off: int
    rules: tuple[Rule, ...]
    currencies: Mapping[CurrencyCode, CurrencyTerms]
    caps: tuple[CapBand, ...]  # highest min_score first
    income_multiple: Decimal
    inflow_multiple: Decimal
    identity_reason: str
    fiat_only_reason: str
    _ready: Mapping[CurrencyCode, _Ready] = field(init=False, repr=False, compare=False)
    _default_index: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check(self)
        object.__setattr__(self, "_ready", {c: _prepare(self, c) for c in self.currencies})
        index = next(i for i, r in enumerate(self.rules) if r.fact is Fact.PLANS_DEFAULTED)
        object.__setattr__(self, "_default_index", index)


def _fail(message: str) -> ValueError:
    return ValueError(f"scorecard: {message}")


def _check(card: Scorecard) -> None:
    if not card.version.strip():
        raise _fail("version is empty")
    if not MIN_SCORE <= card.cut_off <= MAX_SCORE:
        raise _fail(f"cut_off {card.cut_off} is outside {MIN_SCORE}..{MAX_SCORE}")
    if not card.identity_reason.strip() or not card.fiat_only_reason.strip():
        raise _fail("the identity and fiat-only messages are needed")
    facts = [r.fact for r in card.rules]
    if sorted(facts, key=lambda f: f.value) != sorted(Fact, key=lambda f: f.value):
        raise _fail("every fact is scored by exactly one factor")
    if len({r.name for r in card.rules}) != len(card.rules):
        raise _fail("factor names repeat")
    for rule in card.rules:
        _check_rule(rule)
    total = sum(r.max_points for r in card.rules)
    if total != MAX_SCORE - MIN_SCORE:
        raise _fail(f"the factors' maxima sum to {total}, not {MAX_SCORE - MIN_SCORE}")
    defaults = next(r for r in card.rules if r.fact is Fact.PLANS_DEFAULTED)
    if _band(defaults, Decimal(1)).points >= defaults.max_points:
        raise _fail("a defaulted plan must cost points")
    if not card.caps:
        raise _fail("no cap bands")
    for higher, lower in pairwise(card.caps):
        if not (higher.min_score > lower.min_score and higher.share >= lower.share):
            raise _fail("cap bands go from the highest score down, shares never growing")
    if card.caps[-1].min_score > card.cut_off:
        raise _fail("the lowest cap band starts above the cut-off")
    if not all(ZERO < c.share <= 1 for c in card.caps):
        raise _fail("cap shares are within (0, 1]")
    if card.income_multiple <= 0 or card.inflow_multiple <= 0:
        raise _fail("the limit multiples are positive")
    for code, terms in card.currencies.items():
        _check_terms(card, code, terms)


def _check_rule(rule: Rule) -> None:
    where = f"factor {rule.name!r}"
    if not rule.name:
        raise _fail("a factor has no name")
    if rule.fact is Fact.EMPLOYMENT:
        if rule.bands or {s for s, _ in rule.table} != set(EmploymentStatus):
            raise _fail(f"{where} has one row per employment status and no bands")
        if len(rule.table) != len(EmploymentStatus):
            raise _fail(f"{where} repeats an employment status")
    else:
        if rule.table or not rule.bands:
            raise _fail(f"{where} has bands and no table")
        bounds = [b.at_least for b in rule.bands]
        if bounds[0] != 0 or any(a >= b for a, b in pairwise(bounds)):
            raise _fail(f"{where}: bands ascend strictly from 0")
    if (rule.no_value is not None) != (rule.fact is Fact.ON_TIME_PERCENT):
        raise _fail(f"{where}: only the on-time share has a no-value row, and it must")
    top = rule.max_points
    for value in rule.values():
        if value.points < 0:
            raise _fail(f"{where}: negative points")
        if value.points < top and not value.reason.strip():
            raise _fail(f"{where}: a row worth {value.points} of {top} needs a reason")
        if value.points > 0 and not value.positive.strip():
            raise _fail(f"{where}: a row worth {value.points} needs a positive text")


def _check_terms(card: Scorecard, code: CurrencyCode, terms: CurrencyTerms) -> None:
    if CURRENCIES[code].kind is not CurrencyKind.FIAT:
        raise _fail(f"credit is offered in fiat currencies only, not {code.value}")
    if terms.unit <= 0 or terms.cap <= 0 or terms.min_limit <= 0:
        raise _fail(f"{code.value}: unit, cap and min_limit are positive")
    if MONEY_CONTEXT.multiply(terms.cap, card.caps[-1].share) < terms.min_limit:
        raise _fail(f"{code.value}: the smallest cap is below min_limit")
    # A limit too small to approve must show in the reasons: only income or inflow in its
    # lowest band (which costs points) can hold the limit under min_limit.
    for fact, multiple in (
        (Fact.MONTHLY_INCOME, card.income_multiple),
        (Fact.INFLOW_90D, card.inflow_multiple),
    ):
        rule = next(r for r in card.rules if r.fact is fact)
        if len(rule.bands) < 2 or rule.bands[0].value.points >= rule.max_points:
            raise _fail(f"factor {rule.name!r}: its lowest band must cost points")
        floor = MONEY_CONTEXT.multiply(
            MONEY_CONTEXT.multiply(rule.bands[1].at_least, terms.unit), multiple
        )
        if floor < terms.min_limit:
            raise _fail(f"{code.value}: {rule.name} above its lowest band must allow min_limit")


def _band(rule: Rule, value: Decimal) -> Points:
    bounds = [b.at_least for b in rule.bands]
    return rule.bands[max(0, bisect_right(bounds, value) - 1)].value


def _shown(amount: Decimal, code: CurrencyCode | None) -> str:
    """150,000 NGN; 0.8 x 200 = 160 GBP; days and counts as plain numbers."""
    if code is None:
        return f"{amount.normalize():,f}"
    amount = quantize(amount, code)
    digits = 0 if amount == amount.to_integral_value() else CURRENCIES[code].decimals
    return f"{amount:,.{digits}f} {code.value}"


def _worded(text: str, where: str, **bounds: str) -> str:
    try:
        return text.format(**bounds)
    except (KeyError, IndexError, ValueError) as error:
        raise _fail(f"{where}: text {text!r} cannot be filled in ({error!r})") from None


def _plain(value: Points, where: str) -> Points:
    return Points(value.points, _worded(value.reason, where), _worded(value.positive, where))


def _prepare(card: Scorecard, code: CurrencyCode) -> _Ready:
    terms = card.currencies[code]
    scorers = []
    for rule in card.rules:
        money = rule.fact in MONEY_FACTS
        scale = terms.unit if money else Decimal(1)
        bounds = tuple(MONEY_CONTEXT.multiply(b.at_least, scale) for b in rule.bands)
        values = []
        for i, band in enumerate(rule.bands):
            words = {"at_least": _shown(bounds[i], code if money else None)}
            if i + 1 < len(bounds):
                words["below"] = _shown(bounds[i + 1], code if money else None)
            where = f"factor {rule.name!r} band {i}"
            values.append(
                Points(
                    band.value.points,
                    _worded(band.value.reason, where, **words),
                    _worded(band.value.positive, where, **words),
                )
            )
        where = f"factor {rule.name!r}"
        scorers.append(
            _Scorer(
                rule.name,
                rule.max_points,
                _GETTERS[rule.fact],
                bounds,
                tuple(values),
                None if rule.no_value is None else _plain(rule.no_value, where),
                {status: _plain(p, where) for status, p in rule.table},
            )
        )
    caps = tuple((c.min_score, MONEY_CONTEXT.multiply(terms.cap, c.share)) for c in card.caps)
    return _Ready(terms, tuple(scorers), caps, quantize(ZERO, code))


# ----------------------------------------------------------------------------- decide ----


def decide(applicant: Applicant, card: Scorecard) -> Decision:
    """APPROVED with a limit, or DECLINED with its reasons (module docstring). Total: any
    applicant gets a decision, zeros included; no I/O."""
    ready = card._ready.get(applicant.currency)
    if ready is None:
        zero = quantize(ZERO, applicant.currency)
        return Decision(
            CreditStatus.DECLINED, MIN_SCORE, zero, (card.fiat_only_reason,), (), card.version
        )
    scored = [(s, s.score(applicant)) for s in ready.scorers]
    score = min(MAX_SCORE, max(MIN_SCORE, MIN_SCORE + sum(p.points for _, p in scored)))
    defaulted = applicant.plans_defaulted > 0
    if applicant.kyc_verified and not defaulted and score >= card.cut_off:
        limit = _limit(applicant, card, ready, score)
        if limit >= ready.terms.min_limit:
            factors = tuple(
                Factor(s.name, p.points, s.max_points, p.positive if p.points else p.reason)
                for s, p in scored
            )
            gave = sorted((f for f in factors if f.points > 0), key=_contribution)
            reasons = tuple(f.reason for f in gave[:MAX_REASONS])
            return Decision(CreditStatus.APPROVED, score, limit, reasons, factors, card.version)
    factors = tuple(
        Factor(s.name, p.points, s.max_points, p.reason if p.points < s.max_points else p.positive)
        for s, p in scored
    )
    first: list[str] = []
    if not applicant.kyc_verified:
        first.append(card.identity_reason)
    cited = factors[card._default_index] if defaulted else None
    if cited is not None:
        first.append(cited.reason)
    lost = sorted((f for f in factors if f.lost > 0 and f is not cited), key=_loss)
    reasons = (*first, *(f.reason for f in lost))[:MAX_REASONS]
    return Decision(CreditStatus.DECLINED, score, ready.zero, reasons, factors, card.version)


def _contribution(factor: Factor) -> int:
    return -factor.points


def _loss(factor: Factor) -> int:
    return -factor.lost


def _limit(applicant: Applicant, card: Scorecard, ready: _Ready, score: int) -> Decimal:
    cap = next(amount for min_score, amount in ready.caps if score >= min_score)
    by_income = MONEY_CONTEXT.multiply(applicant.monthly_income, card.income_multiple)
    by_inflow = MONEY_CONTEXT.multiply(applicant.inflow_90d, card.inflow_multiple)
    return quantize(max(ZERO, min(cap, by_income, by_inflow)), applicant.currency, ROUND_DOWN)


# ------------------------------------------------------------------------------ loading ----


def load_scorecard(path: Path | None = None) -> Scorecard:
    """Read and check a card (default: the packaged ``scorecard.toml``). Once, at start-up:
    the caller keeps it. Raises ``ValueError`` (TOML errors included) for a bad card."""
    with (path or DEFAULT_SCORECARD).open("rb") as file:
        data = tomllib.load(file, parse_float=Decimal)
    return parse_scorecard(data)


def parse_scorecard(data: Mapping[str, Any]) -> Scorecard:
    """A card from its TOML data (numbers as ``int`` or ``Decimal``, never float)."""
    limit = _table(data, "limit")
    messages = _table(data, "messages")
    currencies = {}
    for code, terms in _table(data, "currencies").items():
        if code not in CurrencyCode.__members__:
            raise _fail(f"unknown currency {code!r}")
        row = _table({code: terms}, code)
        currencies[CurrencyCode[code]] = CurrencyTerms(
            _number(row, "unit"), _number(row, "cap"), _number(row, "min_limit")
        )
    return Scorecard(
        version=_text(data, "version"),
        cut_off=_integer(data, "cut_off"),
        rules=tuple(_rule(r) for r in _rows(data, "factors")),
        currencies=currencies,
        caps=tuple(
            CapBand(_integer(c, "min_score"), _number(c, "share")) for c in _rows(limit, "caps")
        ),
        income_multiple=_number(limit, "income_multiple"),
        inflow_multiple=_number(limit, "inflow_multiple"),
        identity_reason=_text(messages, "identity"),
        fiat_only_reason=_text(messages, "fiat_only"),
    )


def _rule(row: Mapping[str, Any]) -> Rule:
    name = _text(row, "name")
    fact = _text(row, "fact")
    if fact not in {f.value for f in Fact}:
        raise _fail(f"factor {name!r}: unknown fact {fact!r}")
    table = []
    for status, points in (row.get("table") or {}).items():
        if status not in EmploymentStatus.__members__:
            raise _fail(f"factor {name!r}: unknown employment status {status!r}")
        table.append((EmploymentStatus[status], _points(points, f"{name}.table.{status}")))
    return Rule(
        name,
        Fact(fact),
        bands=tuple(
            Band(_number(b, "at_least"), _points(b, f"{name}.bands[{i}]"))
            for i, b in enumerate(_rows(row, "bands", required=False))
        ),
        table=tuple(table),
        no_value=_points(row["no_value"], f"{name}.no_value") if "no_value" in row else None,
    )


def _points(row: Any, where: str) -> Points:
    if not isinstance(row, Mapping):
        raise _fail(f"{where} is not a table")
    reason = row.get("reason", "")
    positive = row.get("positive", "")
    if not isinstance(reason, str) or not isinstance(positive, str):
        raise _fail(f"{where}: reason and positive are text")
    return Points(_integer(row, "points"), reason, positive)


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise _fail(f"{key} is not a table")
    return value


def _rows(data: Mapping[str, Any], key: str, *, required: bool = True) -> list[Mapping[str, Any]]:
    value = data.get(key, None if required else [])
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise _fail(f"{key} is not a list of tables")
    return value


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise _fail(f"{key} is not text")
    return value


def _integer(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"{key} is not a whole number")
    return value


def _number(data: Mapping[str, Any], key: str) -> Decimal:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise _fail(f"{key} is not a number")
    number = Decimal(value)
    if not number.is_finite():
        raise _fail(f"{key} is not finite")
    return number
