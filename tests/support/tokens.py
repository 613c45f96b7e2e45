"""Tokens for tests: a stand-in Keycloak realm (its JWKS and access tokens, shaped exactly as Keycloak issues
them) and the forgeries the verifier must refuse."""

import base64
import hashlib
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import RSAAlgorithm


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _certificate(key, realm: str) -> x509.Certificate:
    """Keycloak publishes each realm key with a self-signed certificate whose subject is the realm name."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, realm)])
    now = datetime.now(timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )


def _jwk(key, kid: str, alg: str, use: str, realm: str) -> dict:
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    der = _certificate(key, realm).public_bytes(serialization.Encoding.DER)
    return {
        "kid": kid,
        "kty": "RSA",
        "alg": alg,
        "use": use,
        "n": jwk["n"],
        "e": jwk["e"],
        "x5c": [base64.b64encode(der).decode()],
        "x5t": b64url(hashlib.sha1(der).digest()),
        "x5t#S256": b64url(hashlib.sha256(der).digest()),
    }


class KeycloakRealm:
    """A realm's signing key (RS256, as Keycloak's default `rsa-generated` provider) and its certs endpoint."""

    def __init__(self, realm: str = "jmdi", base_url: str = "https://sso.example.org", client: str = "jmdi-gateway"):
        self.realm = realm
        self.issuer = f"{base_url}/realms/{realm}"
        self.client = client
        self.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.encryption_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = b64url(hashlib.sha256(str(uuid.uuid4()).encode()).digest())[:43]
        self.enc_kid = b64url(hashlib.sha256(str(uuid.uuid4()).encode()).digest())[:43]

    def jwks(self) -> dict:
        """What GET <issuer>/protocol/openid-connect/certs returns: the signing key and the encryption key."""
        return {
            "keys": [
                _jwk(self.encryption_key, self.enc_kid, "RSA-OAEP", "enc", self.realm),
                _jwk(self.signing_key, self.kid, "RS256", "sig", self.realm),
            ]
        }

    def claims(
        self,
        user: str,
        roles,
        *,
        audience=("jmdi", "account"),
        lifetime=timedelta(minutes=5),
        now: datetime | None = None,
        roles_in: str = "realm",
    ) -> dict:
        """An access token's claims as Keycloak 24-26 writes them (audience mapper adding `jmdi`)."""
        issued = int((now or datetime.now(timezone.utc)).timestamp())
        session = str(uuid.uuid4())
        claims = {
            "exp": issued + int(lifetime.total_seconds()),
            "iat": issued,
            "auth_time": issued - 30,
            "jti": f"onrtac:{uuid.uuid4()}",
            "iss": self.issuer,
            "aud": list(audience) if len(audience) > 1 else audience[0],
            "sub": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{user}.{self.realm}")),
            "typ": "Bearer",
            "azp": self.client,
            "sid": session,
            "acr": "1",
            "allowed-origins": ["https://jmdi.example.org"],
            "realm_access": {"roles": ["offline_access", "uma_authorization", f"default-roles-{self.realm}"]},
            "resource_access": {"account": {"roles": ["manage-account", "manage-account-links", "view-profile"]}},
            "scope": "openid email profile",
            "email_verified": True,
            "name": user.replace(".", " ").title(),
            "preferred_username": user,
            "given_name": user.split(".")[0].title(),
            "family_name": user.split(".")[-1].title(),
            "email": f"{user}@undp.example.org",
        }
        if roles_in == "realm":
            claims["realm_access"]["roles"] = [*roles, *claims["realm_access"]["roles"]]
        else:
            claims["resource_access"][self.client] = {"roles": list(roles)}
        return claims

    def sign(self, claims: dict, headers: dict | None = None) -> str:
        return jwt.encode(
            claims, self.signing_key, algorithm="RS256", headers={"typ": "JWT", "kid": self.kid, **(headers or {})}
        )

    def token(self, user: str, roles, **options) -> str:
        return self.sign(self.claims(user, roles, **options))

    def public_pem(self) -> bytes:
        return self.signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def assemble(header: dict, claims: dict, signature: bytes = b"") -> str:
    """A JWT from its parts, with any header and any signature bytes (for forgeries PyJWT refuses to make)."""

    def part(value):
        return b64url(json.dumps(value, separators=(",", ":")).encode())

    return f"{part(header)}.{part(claims)}.{b64url(signature)}"


def hmac_signed(header: dict, claims: dict, secret: bytes) -> str:
    """HS256 'signed' with a public key's bytes: the algorithm-confusion attack."""
    import hmac

    signing_input = assemble(header, claims).rsplit(".", 1)[0]
    return f"{signing_input}.{b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def unsigned(kid: str, claims: dict) -> str:
    return assemble({"alg": "none", "typ": "JWT", "kid": kid}, claims)


def now_claims(lifetime: timedelta = timedelta(hours=1), **extra) -> dict:
    issued = int(time.time())
    return {"iat": issued, "exp": issued + int(lifetime.total_seconds()), "jti": str(uuid.uuid4()), **extra}
