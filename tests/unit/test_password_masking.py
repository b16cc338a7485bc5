"""A password is masked where it stands as one, and nowhere else in a message."""

from __future__ import annotations

from cloacina_host._storage._database import hide_password


def test_a_one_letter_password_leaves_the_other_letters_alone() -> None:
    message = 'connection failed: connection to server at "h" failed; url postgresql://u:a@h/db, password=a'
    assert hide_password(message, "a") == (
        'connection failed: connection to server at "h" failed; url postgresql://u:***@h/db, password=***'
    )


def test_quoted_and_percent_encoded_passwords_are_masked() -> None:
    assert hide_password('FATAL: password "hunter2" rejected', "hunter2") == 'FATAL: password "***" rejected'
    assert hide_password("postgresql://u:p%40ss@h/db", "p@ss") == "postgresql://u:***@h/db"
