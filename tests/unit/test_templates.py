"""Notification templates: every kind renders from exactly its keys, HTML is escaped, an SMS
fits one segment, and mistakes (a missing key, an unknown kind) fail loudly."""

from __future__ import annotations

import re

import pytest

from stacklo.integrations.templates import KINDS, SMS_LIMIT, Message, render

# The contract with the callers: each kind and the keys it is rendered from.
KEYS: dict[str, tuple[str, ...]] = {
    "deposit.credited": ("amount", "reference"),
    "deposit.failed": ("amount", "reference", "reason"),
    "transfer.received": ("amount", "sender", "reference"),
    "transfer.sent": ("amount", "recipient", "reference"),
    "withdrawal.paid": ("amount", "reference"),
    "withdrawal.failed": ("amount", "reference", "reason"),
    "conversion.completed": ("amount", "converted", "reference"),
    "kyc.approved": (),
    "kyc.rejected": ("reason", "may_resubmit"),
    "merchant.approved": ("merchant",),
    "merchant.rejected": ("merchant", "reason"),
    "merchant.suspended": ("merchant", "reason"),
    "checkout.paid": ("amount", "merchant", "reference"),
    "installment.due": ("amount", "due_date", "sequence"),
    "installment.collected": ("amount", "sequence"),
    "installment.overdue": ("amount", "late_fee", "sequence"),
    "plan.completed": ("merchant",),
    "plan.defaulted": ("merchant",),
    "session.new_device": ("device", "ip", "at"),
}

SAMPLE = {
    "amount": "NGN 5,000.00",
    "reference": "STK-7F3K2M9Q",
    "reason": "The account number does not exist.",
    "sender": "Ada Obi",
    "recipient": "Tunde Bakare",
    "converted": "USD 3.21",
    "may_resubmit": "yes",
    "merchant": "Mama Put Kitchen",
    "due_date": "15 March 2025",
    "sequence": "2 of 4",
    "late_fee": "NGN 250.00",
    "device": "Chrome on Android",
    "ip": "102.89.34.12",
    "at": "4 March 2025, 10:22 UTC",
}


def sample(kind: str, **changes: str) -> dict[str, str]:
    data = {key: SAMPLE[key] for key in KEYS[kind]}
    data.update(changes)
    return data


def fields(message: Message) -> dict[str, str]:
    return {
        "title": message.title,
        "body": message.body,
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
        "sms": message.sms,
    }


def test_the_kinds_are_the_ones_callers_use() -> None:
    assert frozenset(KEYS) == KINDS


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_every_kind_renders_from_its_keys_with_nothing_left_unfilled(kind: str) -> None:
    message = render(kind, sample(kind))

    for name, value in fields(message).items():
        assert value.strip(), f"{kind}.{name} is empty"
        assert "$" not in value, f"{kind}.{name} has an unfilled placeholder"
    assert "\n" not in message.title + message.body + message.subject + message.sms
    assert len(message.sms) <= SMS_LIMIT
    assert message.sms.startswith("Stacklo: ")
    assert message.html.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_every_key_is_used_and_the_reference_is_everywhere(kind: str) -> None:
    message = render(kind, sample(kind))
    everything = " ".join(fields(message).values())
    for key in KEYS[kind]:
        if key == "may_resubmit":
            continue  # it picks a sentence (tested below)
        value = SAMPLE[key].removesuffix(".")
        assert value in everything, f"{kind} does not show {key}"
    if "reference" in KEYS[kind]:
        for name in ("body", "text", "html", "sms"):
            assert SAMPLE["reference"] in fields(message)[name], f"{kind}.{name}: no reference"


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_missing_any_key_raises_key_error_naming_it(kind: str) -> None:
    for key in KEYS[kind]:
        data = sample(kind)
        del data[key]
        with pytest.raises(KeyError) as raised:
            render(kind, data)
        assert raised.value.args == (key,)


def test_an_unknown_kind_raises_key_error() -> None:
    with pytest.raises(KeyError) as raised:
        render("deposit.refunded", SAMPLE)
    assert raised.value.args == ("deposit.refunded",)


def test_keys_a_kind_does_not_use_are_ignored() -> None:
    assert render("kyc.approved", SAMPLE) == render("kyc.approved", {})


@pytest.mark.parametrize("kind", sorted(k for k in KEYS if KEYS[k]))
def test_every_value_in_html_is_escaped(kind: str) -> None:
    hostile = '<script>alert("x")</script> & <a href="https://evil.example">'
    data = {key: hostile for key in KEYS[kind]}
    if "may_resubmit" in data:
        data["may_resubmit"] = "no"
    message = render(kind, data)

    assert "<script>" not in message.html
    assert "<a href" not in message.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;a href=" in message.html
    # The plain parts are not HTML: they carry the value as it is.
    assert "<script>" in message.text


def test_html_says_what_the_text_says() -> None:
    message = render("transfer.received", sample("transfer.received"))
    visible = re.sub(r"<[^>]+>", " ", message.html.split("<body", 1)[1])
    for line in message.text.splitlines():
        if line.strip():
            assert line.strip() in " ".join(visible.split())


def test_a_value_stays_on_one_line() -> None:
    message = render(
        "merchant.rejected",
        sample("merchant.rejected", merchant="Acme\r\nBcc: eve@example.com", reason="a\n\nb"),
    )
    assert "\r" not in message.subject and "\n" not in message.subject
    assert "Acme Bcc: eve@example.com" in message.subject
    assert "Reason: a b" in message.text


def test_a_reason_does_not_end_a_sentence_twice() -> None:
    message = render("deposit.failed", sample("deposit.failed", reason="Card declined."))
    assert "Card declined. Ref" in message.sms
    assert ".." not in message.body + message.sms + message.text


def test_may_resubmit_picks_the_sentence() -> None:
    yes = render("kyc.rejected", {"reason": "Blurry photo", "may_resubmit": "yes"})
    no = render("kyc.rejected", {"reason": "Blurry photo", "may_resubmit": "no"})
    assert "send new documents" in yes.text and "send new documents" in yes.sms
    assert "cannot send documents again" in no.text
    assert "yes" not in yes.text and "no" not in no.body.split()


def test_may_resubmit_other_than_yes_or_no_is_refused() -> None:
    with pytest.raises(ValueError, match="may_resubmit"):
        render("kyc.rejected", {"reason": "Blurry photo", "may_resubmit": "maybe"})


def test_a_long_reason_is_shortened_so_amount_and_reference_survive() -> None:
    reason = "The receiving bank reported that the account is dormant " * 6
    message = render("withdrawal.failed", sample("withdrawal.failed", reason=reason))

    assert len(message.sms) <= SMS_LIMIT
    assert SAMPLE["amount"] in message.sms
    assert message.sms.endswith(f"Ref {SAMPLE['reference']}")
    assert "..." in message.sms and "...." not in message.sms
    # Only the SMS is shortened: the email and the app say it all.
    assert reason.strip().removesuffix(".") in message.text


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_every_sms_fits_even_with_long_values(kind: str) -> None:
    data = {key: "W" * 15 + " long value " * 20 for key in KEYS[kind]}
    if "may_resubmit" in data:
        data["may_resubmit"] = "no"
    message = render(kind, data)
    assert len(message.sms) <= SMS_LIMIT
    assert "  " not in message.sms


def test_a_long_device_keeps_the_ip_and_time() -> None:
    device = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0"
    )
    ip = "2001:db8:85a3::8a2e:370:7334"
    message = render("session.new_device", sample("session.new_device", device=device, ip=ip))
    assert len(message.sms) <= SMS_LIMIT
    assert ip in message.sms and SAMPLE["at"] in message.sms
    assert device in message.text


def test_the_sms_stays_in_the_gsm_alphabet_when_shortened() -> None:
    message = render("merchant.suspended", sample("merchant.suspended", reason="x " * 200))
    assert "…" not in message.sms  # one such character makes the SMS UCS-2: 70 characters
