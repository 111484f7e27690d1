"""Encryption at rest for cluster credentials.

SECURITY: tokens are stored as Fernet ciphertext (AES-128-CBC + HMAC-SHA256). The key is
APOLLO_CREDENTIALS_KEY when set, otherwise derived from SECRET_KEY with HKDF so that a
fresh clone works without extra set-up. Rotating SECRET_KEY without setting
APOLLO_CREDENTIALS_KEY to the old derived key makes stored credentials unreadable, which
fails closed (the cluster cannot be reached) rather than leaking anything.
"""

import base64
from functools import cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


class CredentialError(Exception):
    """A stored credential cannot be decrypted with the configured key."""


@cache
def _fernet(secret_key: str, explicit_key: str | None) -> Fernet:
    if explicit_key:
        return Fernet(explicit_key.encode())
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"apollo-cluster-credentials", info=b"fernet"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def _current() -> Fernet:
    return _fernet(settings.SECRET_KEY, settings.APOLLO_CREDENTIALS_KEY)


def encrypt(plaintext: str) -> str:
    if plaintext == "":
        return ""
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    if ciphertext == "":
        return ""
    try:
        return _current().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise CredentialError(
            "stored credential cannot be decrypted with the current key"
        ) from None
