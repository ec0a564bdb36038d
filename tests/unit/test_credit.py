"""The credit scorecard and decision (stacklo/domain/credit.py, stacklo/domain/scorecard.toml)."""

from __future__ import annotations

import copy
import dataclasses
import re
import tomllib
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stacklo.domain.credit import (
    DEFAULT_SCORECARD,
    MAX_REASONS,
    MAX_SCORE,
    MIN_SCORE,
    MONEY_FACTS,
    Applicant,
    CreditStatus,
    Decision,
    EmploymentStatus,
    Factor,
    decide,
    load_scorecard,
    parse_scorecard,
)
from stacklo.domain.money import CURRENCIES, CurrencyCode, CurrencyKind, quantize

CARD = load_scorecard()
RELOADED = load_scorecard()  # another load of the same file: the same decisions
FIAT = [c for c in CurrencyCode if CURRENCIES[c].kind is CurrencyKind.FIAT]
CRYPTO = [c for c in CurrencyCode if CURRENCIES[c].kind is CurrencyKind.CRYPTO]
IDENTITY = "Your identity has not been verified."
FIAT_ONLY = "Credit is offered in fiat home currencies only."
DEFAULTED = "A previous installment plan defaulted."
ZERO = Decimal(0)


def applicant(**changes: Any) -> Applicant:
    """A strong applicant (850 in USD), changed where a test says."""
    strong = Applicant(
        currency=CurrencyCode.USD,
        kyc_verified=True,
        account_age_days=800,
        monthly_income=Decimal(5000),
        employment=EmploymentStatus.EMPLOYED,
        inflow_90d=Decimal(9000),
        average_balance_90d=Decimal(2500),
        installments_on_time=12,
        installments_late=0,
        plans_defaulted=0,
    )
    return dataclasses.replace(strong, **changes)


def raw_card() -> dict[str, Any]:
    with DEFAULT_SCORECARD.open("rb") as file:
        return tomllib.load(file, parse_float=Decimal)


def losses(decision: Decision, leave_out: Factor | None = None) -> list[str]:
    """Reasons of the factors that lost points, largest loss first, ties in the card's order."""
    lost = [f for f in decision.factors if f.points < f.max_points and f is not leave_out]
    return [f.reason for f in sorted(lost, key=lambda f: f.points - f.max_points)]


def contributions(decision: Decision) -> list[str]:
    gave = [f for f in decision.factors if f.points > 0]
    return [f.reason for f in sorted(gave, key=lambda f: -f.points)]


# ---------------------------------------------------------------------------- examples ----


def test_a_strong_applicant_is_approved_with_the_full_cap() -> None:
    decision = decide(applicant(), CARD)
    assert decision.status is CreditStatus.APPROVED
    assert decision.score == MAX_SCORE
    assert decision.limit == Decimal("1000.00")  # the USD cap: income and inflow allow more
    assert decision.version == CARD.version == "2026-12-01.1"
    assert decision.reasons == (
        "Stated monthly income is at least 3,000 USD.",
        "At least 4,000 USD has come into your wallets in the last 90 days.",
        "No installment plan has defaulted.",
        "Account has been open for at least a year.",
    )
    assert [f.name for f in decision.factors] == [
        "account_age",
        "income",
        "employment",
        "inflow",
        "balance",
        "on_time",
        "late_payments",
        "defaults",
    ]
    assert all(f.points == f.max_points for f in decision.factors)


def test_the_limit_is_the_smallest_of_cap_income_and_inflow() -> None:
    by_income = decide(applicant(monthly_income=Decimal("700.555")), CARD)
    assert by_income.status is CreditStatus.APPROVED
    assert by_income.limit == Decimal("700.55")  # one month of income, rounded down
    by_inflow = decide(applicant(inflow_90d=Decimal(1300)), CARD)
    assert by_inflow.status is CreditStatus.APPROVED and by_inflow.limit == Decimal("650.00")
    # 790 (no repayment record yet, a younger account) earns 70% of the cap
    lower = decide(applicant(installments_on_time=0, account_age_days=100), CARD)
    assert lower.score == 790 and lower.limit == Decimal("700.00")
    ngn = decide(
        applicant(
            currency=CurrencyCode.NGN,
            monthly_income=Decimal(2_000_000),
            inflow_90d=Decimal(3_000_000),
            average_balance_90d=Decimal(400_000),
        ),
        CARD,
    )
    assert ngn.status is CreditStatus.APPROVED and ngn.limit == Decimal("500000.00")


def test_a_new_account_is_declined_with_its_age_first() -> None:
    decision = decide(
        applicant(
            currency=CurrencyCode.NGN,
            account_age_days=5,
            monthly_income=Decimal(200_000),
            employment=EmploymentStatus.SELF_EMPLOYED,
            inflow_90d=Decimal(125_000),
            average_balance_90d=Decimal(30_000),
            installments_on_time=0,
        ),
        CARD,
    )
    assert decision.status is CreditStatus.DECLINED
    assert decision.score == 605 < CARD.cut_off
    assert decision.limit == 0
    assert decision.reasons == (
        "Account is less than 30 days old.",
        "Stated monthly income is below 375,000 NGN.",
        "Your wallets' average balance over 90 days is below 50,000 NGN.",
        "Less than 375,000 NGN has come into your wallets in the last 90 days.",
    )


def test_a_defaulter_is_declined_with_the_default_first_whatever_the_score() -> None:
    decision = decide(applicant(plans_defaulted=1, installments_late=1), CARD)
    assert decision.status is CreditStatus.DECLINED
    assert decision.score == 735 >= CARD.cut_off  # scored all the same
    assert decision.limit == 0
    assert decision.reasons == (
        DEFAULTED,
        "Not every installment was paid by its due date.",
        "An installment was paid late.",
    )
    defaults = next(f for f in decision.factors if f.name == "defaults")
    assert defaults == Factor("defaults", 0, 80, DEFAULTED)


def test_an_unverified_identity_declines_first() -> None:
    decision = decide(applicant(kyc_verified=False), CARD)
    assert decision.status is CreditStatus.DECLINED and decision.score == MAX_SCORE
    assert decision.reasons == (IDENTITY,)  # nothing else cost a point
    both = decide(applicant(kyc_verified=False, plans_defaulted=2), CARD)
    assert both.reasons == (IDENTITY, DEFAULTED)


def test_zero_everything_is_a_decision_not_a_crash() -> None:
    zero = Applicant(
        CurrencyCode.NGN, False, 0, ZERO, EmploymentStatus.UNEMPLOYED, ZERO, ZERO, 0, 0, 0
    )
    decision = decide(zero, CARD)
    assert decision.status is CreditStatus.DECLINED
    assert decision.score == 450  # half marks for no repayment record, nothing late or defaulted
    assert decision.limit == 0
    assert decision.reasons == (
        IDENTITY,
        "Stated monthly income is below 50,000 NGN.",
        "Little money has come into your wallets in the last 90 days (less than 25,000 NGN).",
        "Account is less than 30 days old.",
    )
    verified = decide(dataclasses.replace(zero, kyc_verified=True), CARD)
    assert verified.status is CreditStatus.DECLINED and verified.reasons[0] == losses(verified)[0]


@pytest.mark.parametrize("code", CRYPTO)
def test_a_crypto_home_currency_gets_no_credit_and_is_not_scored(code: CurrencyCode) -> None:
    decision = decide(applicant(currency=code, monthly_income=Decimal(10**6)), CARD)
    assert decision == Decision(
        CreditStatus.DECLINED,
        MIN_SCORE,
        quantize(ZERO, code),
        (FIAT_ONLY,),
        (),
        CARD.version,
    )


def test_a_score_high_enough_with_a_tiny_limit_is_declined_and_says_why() -> None:
    # 750 points without income; one month of income (5 USD) is under the smallest limit
    decision = decide(applicant(monthly_income=Decimal(5)), CARD)
    assert decision.score == 750 >= CARD.cut_off
    assert decision.status is CreditStatus.DECLINED and decision.limit == 0
    assert decision.reasons == ("Stated monthly income is below 200 USD.",)


def test_texts_quote_amounts_in_the_home_currency() -> None:
    low = applicant(monthly_income=Decimal(100), kyc_verified=False)
    assert decide(dataclasses.replace(low, currency=CurrencyCode.GBP), CARD).reasons[1] == (
        "Stated monthly income is below 160 GBP."
    )
    assert decide(dataclasses.replace(low, currency=CurrencyCode.EUR), CARD).reasons[1] == (
        "Stated monthly income is below 180 EUR."
    )


def test_a_retiree_scores_as_an_employee() -> None:
    retired = decide(applicant(employment=EmploymentStatus.RETIRED), CARD)
    assert retired.score == decide(applicant(), CARD).score


# -------------------------------------------------------------------------------- card ----


def test_the_card_is_the_packaged_data_and_every_text_is_filled_in() -> None:
    assert load_scorecard(DEFAULT_SCORECARD) == CARD
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}\.\d+", CARD.version)
    assert sum(r.max_points for r in CARD.rules) == MAX_SCORE - MIN_SCORE
    assert set(CARD.currencies) == set(FIAT)
    for code in FIAT:
        for age in (0, 45, 5000):
            for money in (ZERO, Decimal(10**4), Decimal(10**7)):
                for on_time, late in ((0, 0), (1, 9), (19, 1), (40, 0), (0, 3)):
                    for employment in EmploymentStatus:
                        facts = applicant(
                            currency=code,
                            account_age_days=age,
                            monthly_income=money,
                            inflow_90d=money,
                            average_balance_90d=money,
                            installments_on_time=on_time,
                            installments_late=late,
                            employment=employment,
                        )
                        decision = decide(facts, CARD)
                        for text in (*decision.reasons, *(f.reason for f in decision.factors)):
                            assert text and "{" not in text and "}" not in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["factors"][0]["bands"][-1].update(points=71), "sum to 551"),
        (lambda d: d.update(cut_off=900), "cut_off 900"),
        (lambda d: d["factors"][1]["bands"][1].update(at_least=0), "ascend strictly"),
        (lambda d: d["factors"][2]["table"].pop("STUDENT"), "employment status"),
        (lambda d: d["factors"][1]["bands"][0].pop("reason"), "needs a reason"),
        (lambda d: d["factors"][1]["bands"][0].update(reason="Below {ceiling}."), "filled in"),
        (lambda d: d["currencies"].update(BTC={"unit": 1, "cap": 1, "min_limit": 1}), "fiat"),
        (lambda d: d["currencies"]["USD"].update(min_limit=500), "min_limit"),
        (lambda d: d["limit"]["caps"][-1].update(min_score=660), "above the cut-off"),
        (lambda d: d["limit"].update(income_multiple=0.5), "not a number"),
        (lambda d: d["factors"].pop(), "exactly one factor"),
    ],
    ids=lambda v: v if isinstance(v, str) else "card",
)
def test_a_bad_card_is_refused_on_load(change: Any, message: str) -> None:
    data = copy.deepcopy(raw_card())
    change(data)
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_scorecard(data)


def test_the_cut_off_is_data() -> None:
    data = raw_card()
    data["cut_off"] = 800
    stricter = parse_scorecard(data)
    facts = applicant(installments_on_time=0, account_age_days=100)
    assert decide(facts, CARD).status is CreditStatus.APPROVED
    decision = decide(facts, stricter)
    assert decision.score == 790 and decision.status is CreditStatus.DECLINED
    assert decide(applicant(), stricter).status is CreditStatus.APPROVED


# -------------------------------------------------------------------------- properties ----

money = st.one_of(
    st.decimals(min_value=0, max_value=10**4, places=2),
    st.decimals(min_value=0, max_value=10**12, places=2),
)
counts = st.integers(min_value=0, max_value=60)
anyone = st.builds(
    Applicant,
    currency=st.sampled_from(FIAT),
    kyc_verified=st.booleans(),
    account_age_days=st.integers(min_value=0, max_value=4000),
    monthly_income=money,
    employment=st.sampled_from(EmploymentStatus),
    inflow_90d=money,
    average_balance_90d=money,
    installments_on_time=counts,
    installments_late=st.one_of(st.just(0), counts),
    plans_defaulted=st.sampled_from([0, 0, 0, 1, 3]),
)


def amounts(code: CurrencyCode) -> st.SearchStrategy[Decimal]:
    """Money in `code` spread over every band of the card: a band's bound in scorecard units
    (so each is as likely) plus up to 100 units more, to the cent."""
    unit = CARD.currencies[code].unit
    money_rules = [r for r in CARD.rules if r.fact in MONEY_FACTS]
    bounds = sorted({b.at_least for r in money_rules for b in r.bands})
    return st.tuples(st.sampled_from(bounds), st.integers(min_value=0, max_value=10_000)).map(
        lambda b: quantize((b[0] + Decimal(b[1]).scaleb(-2)) * unit, code)
    )


# Near the cut-off and above it, where approvals and limits are (most of `anyone` is declined).
creditworthy = st.sampled_from(FIAT).flatmap(
    lambda code: st.builds(
        Applicant,
        currency=st.just(code),
        kyc_verified=st.just(True),
        account_age_days=st.integers(min_value=90, max_value=4000),
        monthly_income=amounts(code),
        employment=st.sampled_from(EmploymentStatus),
        inflow_90d=amounts(code),
        average_balance_90d=amounts(code),
        installments_on_time=counts,
        installments_late=st.integers(min_value=0, max_value=2),
        plans_defaulted=st.just(0),
    )
)
applicants = st.one_of(anyone, creditworthy)


@given(applicants)
def test_the_score_is_300_plus_the_points_within_300_to_850(facts: Applicant) -> None:
    decision = decide(facts, CARD)
    assert MIN_SCORE <= decision.score <= MAX_SCORE
    assert decision.score == MIN_SCORE + sum(f.points for f in decision.factors)
    assert [(f.name, f.max_points) for f in decision.factors] == [
        (r.name, r.max_points) for r in CARD.rules
    ]
    assert all(0 <= f.points <= f.max_points for f in decision.factors)
    assert decision.version == CARD.version


@given(applicants)
def test_decline_reasons_are_the_hard_rules_then_the_largest_losses(facts: Applicant) -> None:
    decision = decide(facts, CARD)
    if decision.status is not CreditStatus.DECLINED:
        return
    first = [] if facts.kyc_verified else [IDENTITY]
    cited = None
    if facts.plans_defaulted:
        cited = next(f for f in decision.factors if f.name == "defaults")
        first.append(DEFAULTED)
    expected = (first + losses(decision, leave_out=cited))[:MAX_REASONS]
    assert list(decision.reasons) == expected
    assert 1 <= len(decision.reasons) <= MAX_REASONS
    for factor in decision.factors:  # the stored explanation says why each cost
        if factor.points < factor.max_points:
            assert factor.reason in losses(decision)


@settings(max_examples=400)
@given(applicants)
def test_approval_reasons_are_the_largest_contributions(facts: Applicant) -> None:
    decision = decide(facts, CARD)
    if decision.status is not CreditStatus.APPROVED:
        return
    assert facts.kyc_verified and facts.plans_defaulted == 0
    assert decision.score >= CARD.cut_off
    assert list(decision.reasons) == contributions(decision)[:MAX_REASONS]
    assert len(decision.reasons) == MAX_REASONS


@settings(max_examples=400)
@given(applicants)
def test_the_limit_is_quantised_and_never_above_a_cap_or_a_multiple(facts: Applicant) -> None:
    decision = decide(facts, CARD)
    exponent = CURRENCIES[facts.currency].exponent
    assert decision.limit == decision.limit.quantize(exponent)
    assert decision.limit.as_tuple().exponent == exponent.as_tuple().exponent
    terms = CARD.currencies[facts.currency]
    if decision.status is CreditStatus.DECLINED:
        assert decision.limit == 0
        return
    assert terms.min_limit <= decision.limit <= terms.cap
    assert decision.limit <= facts.monthly_income * CARD.income_multiple
    assert decision.limit <= facts.inflow_90d * CARD.inflow_multiple
    share = next(c.share for c in CARD.caps if decision.score >= c.min_score)
    assert decision.limit <= terms.cap * share


@settings(max_examples=400)
@given(applicants)
def test_a_good_enough_score_is_declined_only_for_a_reason_it_cites(facts: Applicant) -> None:
    decision = decide(facts, CARD)
    if decision.score < CARD.cut_off or not facts.kyc_verified or facts.plans_defaulted:
        assert decision.status is CreditStatus.DECLINED
        return
    if decision.status is CreditStatus.DECLINED:  # the limit came out under the smallest
        low = [f for f in decision.factors if f.name in {"income", "inflow"} and f.points == 0]
        assert low and low[0].reason in decision.reasons


@given(applicants, st.data())
def test_more_of_a_good_fact_never_lowers_the_score(facts: Applicant, data: st.DataObject) -> None:
    base = decide(facts, CARD).score
    more = data.draw(st.decimals(min_value=0, max_value=10**6, places=2))
    days = data.draw(st.integers(min_value=0, max_value=1000))
    for better in (
        dataclasses.replace(facts, monthly_income=facts.monthly_income + more),
        dataclasses.replace(facts, inflow_90d=facts.inflow_90d + more),
        dataclasses.replace(facts, average_balance_90d=facts.average_balance_90d + more),
        dataclasses.replace(facts, account_age_days=facts.account_age_days + days),
        dataclasses.replace(facts, installments_on_time=facts.installments_on_time + days),
    ):
        assert decide(better, CARD).score >= base


@given(applicants)
def test_the_same_facts_get_the_same_decision(facts: Applicant) -> None:
    again = dataclasses.replace(facts)
    assert decide(facts, CARD) == decide(again, CARD) == decide(facts, RELOADED)
