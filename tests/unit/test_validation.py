import pytest
from hypothesis import given
from hypothesis import strategies as st

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.validation import check_password, clean_text, normalize_email, normalize_phone

F = ("input", "x")


def test_email_is_normalised_to_lowercase() -> None:
    assert normalize_email("  Ada.Obi@Example.COM ") == "ada.obi@example.com"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "no-at-sign",
        "a@b",
        "a" * 250 + "@example.com",
        "ada\x00@example.com",
        "ada@exa mple.com",
    ],
)
def test_bad_emails_are_invalid_input(bad: str) -> None:
    with pytest.raises(DomainError) as e:
        normalize_email(bad)
    assert e.value.code is ErrorCode.INVALID_INPUT


@pytest.mark.parametrize("bad", ["Ada\x07", "x" * 121, "   ", "Ada\u202eObi"])
def test_names_reject_control_characters_and_oversize(bad: str) -> None:
    with pytest.raises(DomainError) as e:
        clean_text(bad, ("input", "fullName"), max_len=120)
    assert e.value.code is ErrorCode.INVALID_INPUT
    assert e.value.field == ("input", "fullName")


def test_phone_numbers_are_e164() -> None:
    assert normalize_phone("+234 801 234 5678") == "+2348012345678"
    for bad in ("08012345678", "+0123456789", "+12", "+1" + "2" * 20):
        with pytest.raises(DomainError):
            normalize_phone(bad)


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("short1!", ErrorCode.WEAK_PASSWORD),
        ("12345678901234", ErrorCode.WEAK_PASSWORD),
        ("ada@example.com", ErrorCode.WEAK_PASSWORD),
        ("ADA@EXAMPLE.COM", ErrorCode.WEAK_PASSWORD),
        ("x" * 257, ErrorCode.INVALID_INPUT),
    ],
)
def test_password_policy(password: str, code: ErrorCode) -> None:
    with pytest.raises(DomainError) as e:
        check_password(password, "ada@example.com", F)
    assert e.value.code is code


@given(st.text(alphabet="0123456789", min_size=10, max_size=64))
def test_digit_only_passwords_are_always_weak(password: str) -> None:
    with pytest.raises(DomainError) as e:
        check_password(password, "ada@example.com", F)
    assert e.value.code is ErrorCode.WEAK_PASSWORD


def test_a_good_password_passes() -> None:
    check_password("correct horse battery", "ada@example.com", F)
