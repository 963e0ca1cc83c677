"""What a password must be: long, not one repeated character, not easily guessed (zxcvbn)."""

from __future__ import annotations

from zxcvbn import zxcvbn

from domain.errors import InvalidInput

MIN_LENGTH = 12
# zxcvbn's score 0-4; 3 is "safely unguessable: moderate protection from offline slow-hash
# scenario" (about 10^10 guesses), the level Dropbox's authors recommend for sign-in passwords.
MIN_SCORE = 3
# zxcvbn's time grows with the length; beyond this it adds nothing but work for the server.
SCORED_PREFIX = 100


def check_password(password: str, *, user_inputs: tuple[str, ...] = ()) -> None:
    """Raise InvalidInput (Thai and English) unless ``password`` is fit to protect an account.

    ``user_inputs`` are the person's own words (username, name, e-mail): a password built on
    them is weak whatever its length.
    """
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"password: at least {MIN_LENGTH} characters",
                           f"รหัสผ่าน: ต้องยาวอย่างน้อย {MIN_LENGTH} ตัวอักษร")
    if not password.strip() or len(set(password)) == 1:
        raise InvalidInput("password: not only spaces or one character repeated",
                           "รหัสผ่าน: ห้ามเป็นช่องว่างล้วนหรือตัวอักษรตัวเดียวซ้ำกัน")
    words = [w for w in user_inputs if w]
    if zxcvbn(password[:SCORED_PREFIX], user_inputs=words)["score"] < MIN_SCORE:
        raise InvalidInput("password: too common or too easy to guess (a well-known password, "
                           "a word with digits, or your name); use three or four unrelated words",
                           "รหัสผ่าน: เดาง่ายเกินไป (เป็นรหัสผ่านที่ใช้กันทั่วไป คำที่มีตัวเลขต่อท้าย "
                           "หรือชื่อของท่าน) ลองใช้คำที่ไม่เกี่ยวกันสามถึงสี่คำ")
