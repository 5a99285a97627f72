"""The elliptic-curve keys SendGrid and eBay sign their webhooks with, and checking a signature."""

from __future__ import annotations

import base64
import re

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

ARMOUR = re.compile(r"-----(BEGIN|END) PUBLIC KEY-----|\s")


def ec_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """A SubjectPublicKeyInfo given as base64 DER (as SendGrid shows it) or as PEM, with or without
    line breaks (eBay's API sends it on one line). Raises ValueError for anything else."""
    try:
        key = load_der_public_key(base64.b64decode(ARMOUR.sub("", text), validate=True))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an elliptic-curve public key")
    return key


def ecdsa_verifies(
    key: ec.EllipticCurvePublicKey, signature: bytes, message: bytes, algorithm: hashes.HashAlgorithm
) -> bool:
    try:
        key.verify(signature, message, ec.ECDSA(algorithm))
    except InvalidSignature:
        return False
    return True
