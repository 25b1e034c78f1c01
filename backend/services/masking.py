"""The one masking rule for personal numbers (phone 138****5678, ID and card: last four only)."""
from __future__ import annotations

import re


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    digits = phone[-11:] if len(phone) >= 11 else phone
    if len(digits) < 7:
        return "****"
    return f"{digits[:3]}****{digits[-4:]}"


def last4(number: str | None) -> str | None:
    if not number:
        return number
    return f"****{number[-4:]}"


def mask_name(name: str) -> str:
    """张三丰 -> 张**: for logs and lists where the full name is not needed."""
    return name[:1] + "*" * (len(name) - 1) if name else name



# Personal numbers as people type them: a run of 11 or more digits (a mobile, optionally with +86;
# an 18-character ID, possibly ending in X; a 16-19 digit card), or the usual spaced forms
# 138 1234 5678, 6222 0212 3456 7890 123 and 110105 19850301 123X. \d also matches full-width digits.
_PERSONAL_NUMBER = re.compile(
    r"(?<!\d)(?:"
    r"(?:\+?86[ -]?)?1\d{2}[ -]\d{4}[ -]\d{4}"  # mobile, spaced
    r"|\d{6}[ -]\d{8}[ -]\d{3}[\dXx]"  # ID, spaced 6-8-4
    r"|\d{4}(?:[ -]\d{4}){3}(?:[ -]\d{1,3})?"  # card, in groups of four
    r"|\d{17}[Xx]"  # ID ending in X
    r"|\+?\d{11,}"  # any long run
    r")(?!\d)"
)


def _mask_match(m: re.Match) -> str:
    compact = "".join(str(int(ch)) if ch.isdigit() else ch.upper() for ch in m.group() if ch.isalnum())
    if compact.isdigit() and (len(compact) == 11 or (len(compact) == 13 and compact.startswith("86"))):
        return mask_phone(compact)  # 138****5678
    return last4(compact)  # ID and card: ****1234


def mask_numbers(text: str) -> str:
    """Mask mobiles (138****5678), ID and card numbers (****1234) in free text, with the rules above."""
    return _PERSONAL_NUMBER.sub(_mask_match, text)


# Any other run of four or more digits: a one-time code, an account, loan or reference number.
_DIGIT_RUN = re.compile(r"(?<!\d)\d{4,}(?!\d)")


def mask_digits(text: str) -> str:
    """mask_numbers, and every other run of 4 or more digits (a verification code could be one)
    becomes ****: 「13812345678 验证码123456」 -> 「138****5678 验证码****」. For text that is
    stored for reading later (the understanding inbox), where no number is needed. The masks' own
    last four digits (138****5678, ****1234) stay as mask_numbers leaves them."""
    out, pos = [], 0
    for m in _PERSONAL_NUMBER.finditer(text):
        out.append(_DIGIT_RUN.sub("****", text[pos:m.start()]))
        out.append(_mask_match(m))
        pos = m.end()
    out.append(_DIGIT_RUN.sub("****", text[pos:]))
    return "".join(out)
