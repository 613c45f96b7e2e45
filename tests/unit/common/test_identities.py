"""Identities: staff tokens (local issuer and Keycloak-shaped), service tokens, and every token that must be refused."""

import json
import os
import socket
import stat
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import jwt
import pytest

from services.common.security import auth
from services.common.security.auth import ServiceSigner, StaffIssuer, TokenVerifier
from services.common.security.keys import KeyDirectory, KeyProblem, generate_private_key, public_jwk, write_jwks
from services.common.security.roles import MATRIX, SERVICE_CALLS, STAFF_ROLES, service_role
from services.common.values.errors import NotAllowed
from tests.support.infra import eventually, free_port
from tests.support.tokens import KeycloakRealm, assemble, hmac_signed, now_claims, unsigned


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    directory = KeyDirectory(tmp_path_factory.mktemp("keys"))
    directory.ensure(SERVICE_CALLS, issuer=True)
    return directory


def config_for(keys, service="grants", **extra):
    return {
        "JMDI_JWKS": str(keys.issuer_jwks),
        "JMDI_SERVICE_JWKS": str(keys.services_jwks),
        "SERVICE_NAME": service,
        **extra,
    }


@pytest.fixture(scope="module")
def issuer(keys):
    return StaffIssuer.from_key_file(keys.issuer_key)


@pytest.fixture(scope="module")
def verifier(keys):
    return TokenVerifier.from_config(config_for(keys))


def signer(keys, service):
    return ServiceSigner.from_config({"SERVICE_NAME": service, "JMDI_SERVICE_KEY": str(keys.service_key(service))})


def refused(verifier, token, reason: str):
    with pytest.raises(NotAllowed, match=reason):
        verifier.verify(token)


# --- staff tokens ------------------------------------------------------------------------------------------------
def test_a_local_issuer_token_is_a_staff_identity(issuer, verifier):
    identity = verifier.verify(issuer.issue("maria.lopez", ["programme_manager", "committee"], timedelta(hours=2)))
    assert (identity.user, identity.roles, identity.kind) == (
        "maria.lopez",
        ("programme_manager", "committee"),
        "staff",
    )
    assert identity.expires_at - datetime.now(timezone.utc) > timedelta(hours=1, minutes=59)
    assert identity.token_id and identity.subject != "maria.lopez"  # sub is a stable id, as Keycloak's


def test_local_tokens_are_shaped_like_keycloak_access_tokens(issuer):
    token = issuer.issue("maria.lopez", ["auditor"])
    header, claims = jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})
    assert header == {"alg": "EdDSA", "typ": "JWT", "kid": issuer.kid}
    assert {"exp", "iat", "jti", "iss", "aud", "sub", "typ", "azp", "preferred_username"} <= set(claims)
    assert claims["realm_access"] == {"roles": ["auditor"]} and claims["typ"] == "Bearer"


def test_the_issuer_refuses_unknown_roles_and_lifetimes_over_the_maximum(issuer):
    with pytest.raises(ValueError, match="unknown role"):
        issuer.issue("x", ["emperor"])
    with pytest.raises(ValueError, match="unknown role"):
        issuer.issue("x", [service_role("reporting")])
    with pytest.raises(ValueError, match="at most 12 h"):
        issuer.issue("x", ["auditor"], timedelta(hours=13))


def keycloak_verifier(realm, tmp_path, **settings):
    path = tmp_path / "certs.json"
    path.write_text(json.dumps(realm.jwks()))
    return TokenVerifier.from_config(
        {"JMDI_JWKS": str(path), "JMDI_ISSUER": realm.issuer, "SERVICE_NAME": "grants", **settings}
    )


def test_keycloak_access_tokens_with_realm_roles(tmp_path):
    realm = KeycloakRealm()
    verifier = keycloak_verifier(realm, tmp_path)
    identity = verifier.verify(realm.token("claire.dubois", ["finance_approver"]))
    # Keycloak's own roles (offline_access, uma_authorization, default-roles-jmdi) are not JMDI roles
    assert identity.user == "claire.dubois" and identity.roles == ("finance_approver",)
    assert identity.subject == jwt.decode(realm.token("claire.dubois", []), options={"verify_signature": False})["sub"]


def test_keycloak_client_roles_when_configured(tmp_path):
    realm = KeycloakRealm(client="jmdi-gateway")
    verifier = keycloak_verifier(realm, tmp_path, JMDI_ROLES_CLAIM="resource_access.jmdi-gateway.roles")
    token = realm.token("ngozi.okafor", ["assessor"], roles_in="client")
    assert verifier.verify(token).roles == ("assessor",)
    # realm roles do not count when the client's roles are the configured source
    assert verifier.verify(realm.token("ngozi.okafor", ["programme_manager"])).roles == ()


def test_keycloak_id_tokens_and_default_audience_are_refused(tmp_path):
    realm = KeycloakRealm()
    verifier = keycloak_verifier(realm, tmp_path)
    refused(verifier, realm.token("x.y", ["auditor"], audience=("account",)), "wrong audience")
    id_token = realm.claims("x.y", ["auditor"]) | {"typ": "ID", "aud": "jmdi"}
    refused(verifier, realm.sign(id_token), "not an access token")


class CertsEndpoint:
    """The realm's certs endpoint: a static HTTP server in its own process (whatever this process's threading or
    monkey-patching), serving a JWKS file this test rewrites; its request log counts the fetches."""

    def __init__(self, directory):
        self.directory, self.port = directory, free_port()
        self.file = directory / "realms" / "jmdi" / "protocol" / "openid-connect" / "certs"
        self.file.parent.mkdir(parents=True)
        self.log = directory / "requests.log"

    def publish(self, document: dict):
        self.file.write_text(json.dumps(document))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/realms/jmdi/protocol/openid-connect/certs"

    def fetches(self) -> int:
        return self.log.read_text().count("GET /realms/jmdi/protocol/openid-connect/certs")

    def __enter__(self):
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "http.server",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--directory",
                    str(self.directory),
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the certs endpoint did not start")

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(10)


def test_keys_from_a_jwks_url_and_a_rotated_key_is_fetched(monkeypatch, tmp_path):
    old, new = KeycloakRealm(), KeycloakRealm()
    new.issuer = old.issuer
    with CertsEndpoint(tmp_path) as endpoint:
        endpoint.publish(old.jwks())
        verifier = TokenVerifier.from_config({"JMDI_JWKS": endpoint.url, "JMDI_ISSUER": old.issuer})
        assert verifier.verify(old.token("a.b", ["auditor"])).roles == ("auditor",)
        endpoint.publish({"keys": old.jwks()["keys"] + new.jwks()["keys"]})
        monkeypatch.setattr(auth, "JWKS_REFRESH_SECONDS", 3600)
        refused(verifier, new.token("a.b", ["auditor"]), "unknown key id")  # too soon to fetch again
        monkeypatch.setattr(auth, "JWKS_REFRESH_SECONDS", 0)
        assert verifier.verify(new.token("a.b", ["auditor"])).user == "a.b"
        fetched = endpoint.fetches()
        refused(verifier, assemble({"alg": "RS256", "kid": "nobody"}, now_claims()), "unknown key id")
        # one fetch for the unknown key id (the server writes its log line just after answering)
        eventually(lambda: endpoint.fetches() == fetched + 1, 10, 0.1, "one more fetch")


# --- every refused kind --------------------------------------------------------------------------------------
def staff_claims(issuer, **changes):
    claims = now_claims(
        iss=issuer.issuer,
        aud=issuer.audience,
        sub="s-1",
        preferred_username="mallory",
        realm_access={"roles": ["finance_approver"]},
    )
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def own_sign(issuer, claims, **headers):
    return jwt.encode(claims, issuer.private_key, algorithm="EdDSA", headers={"kid": issuer.kid, **headers})


@pytest.mark.parametrize(
    "token,reason",
    [
        (None, "no identity"),
        ("", "no identity"),
        (12345, "malformed"),
        ("this.is-not.a-jwt", "malformed"),
        ("x" * 20000, "malformed"),
    ],
)
def test_missing_and_malformed_tokens(verifier, token, reason):
    refused(verifier, token, reason)


def test_unsigned_token(issuer, verifier):
    refused(verifier, unsigned(issuer.kid, staff_claims(issuer)), "unsigned")
    refused(verifier, assemble({"alg": "None", "kid": issuer.kid}, staff_claims(issuer)), "unsigned")


def test_no_key_id_and_an_unknown_key_id(issuer, verifier):
    refused(verifier, jwt.encode(staff_claims(issuer), issuer.private_key, algorithm="EdDSA"), "no key id")
    stranger = StaffIssuer(generate_private_key())
    refused(verifier, stranger.issue("mallory", ["finance_approver"]), "unknown key id")


def test_another_key_under_the_issuers_key_id(issuer, verifier):
    impostor = generate_private_key()
    token = jwt.encode(staff_claims(issuer), impostor, algorithm="EdDSA", headers={"kid": issuer.kid})
    refused(verifier, token, "bad signature")


def test_a_forged_algorithm_is_named_without_its_control_characters(issuer, verifier):
    token = assemble({"alg": "\x1b[2JHS256", "typ": "JWT", "kid": issuer.kid}, staff_claims(issuer), b"x")
    with pytest.raises(NotAllowed) as refusal:
        verifier.verify(token)
    assert "algorithm [2JHS256 does not match" in str(refusal.value)


def test_algorithm_confusion_hs256_signed_with_the_public_key(keys, issuer, verifier, tmp_path):
    jwk = json.loads(keys.issuer_jwks.read_text())["keys"][0]
    header = {"alg": "HS256", "typ": "JWT", "kid": issuer.kid}
    for secret in (
        json.dumps(jwk).encode(),
        jwk["x"].encode(),
        issuer.private_key.public_key().public_bytes(*_pem_format()),
    ):
        refused(verifier, hmac_signed(header, staff_claims(issuer), secret), "algorithm HS256 does not match")
    realm = KeycloakRealm()
    keycloak = keycloak_verifier(realm, tmp_path)
    token = hmac_signed(
        {"alg": "HS256", "typ": "JWT", "kid": realm.kid},
        realm.claims("mallory", ["finance_approver"]),
        realm.public_pem(),
    )
    refused(keycloak, token, "algorithm HS256 does not match")
    refused(
        keycloak,
        hmac_signed({"alg": "HS512", "kid": realm.kid}, realm.claims("m", []), realm.public_pem()),
        "algorithm HS512 does not match",
    )


def _pem_format():
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo


def test_wrong_audience_and_wrong_issuer(issuer, verifier):
    refused(verifier, own_sign(issuer, staff_claims(issuer, aud="another-system")), "wrong audience")
    refused(verifier, own_sign(issuer, staff_claims(issuer, iss="https://elsewhere/realms/x")), "wrong issuer")


def test_expired_and_not_yet_valid(issuer, verifier):
    past = datetime.now(timezone.utc) - timedelta(hours=3)
    refused(verifier, issuer.issue("late.user", ["auditor"], timedelta(hours=1), now=past), "expired")
    future = datetime.now(timezone.utc) + timedelta(minutes=10)
    refused(verifier, issuer.issue("early.user", ["auditor"], timedelta(hours=1), now=future), "not yet valid")
    refused(verifier, own_sign(issuer, staff_claims(issuer, nbf=int(time.time()) + 600)), "not yet valid")


def test_a_token_verified_once_is_still_refused_once_expired_and_its_forgeries_always(issuer, keys):
    verifier = TokenVerifier.from_config(config_for(keys))
    verifier.leeway = 0  # expiry to the second, as jwt.decode sees it without leeway
    token = issuer.issue("brief.user", ["auditor"], timedelta(seconds=2))
    first = verifier.verify(token)
    assert verifier.verify(token) is first  # the same token again: the identity verified before
    header, claims, signature = token.split(".")
    middle = len(signature) // 2
    forged = signature[:middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1 :]
    refused(verifier, f"{header}.{claims}.{forged}", "bad signature")
    eventually(lambda: time.time() > first.expires_at.timestamp(), 5, 0.1, "the token's exp passed")
    refused(verifier, token, "expired")


def test_lifetime_over_the_maximum_is_refused_on_verification(issuer, keys):
    long_lived = own_sign(issuer, staff_claims(issuer, exp=int(time.time()) + 13 * 3600))
    refused(TokenVerifier.from_config(config_for(keys)), long_lived, "lifetime over the maximum of 12 h")
    shorter = TokenVerifier.from_config(config_for(keys, JMDI_TOKEN_MAX_LIFETIME_SECONDS="1800"))
    refused(shorter, issuer.issue("a", ["auditor"], timedelta(hours=1)), "maximum of 30 min")


@pytest.mark.parametrize("claim", ["exp", "iat", "jti", "sub", "aud", "iss"])
def test_every_required_claim(issuer, verifier, claim):
    refused(verifier, own_sign(issuer, staff_claims(issuer, **{claim: None})), f"no {claim} claim")


def test_roles_are_a_list_and_a_staff_token_cannot_name_a_service(issuer, verifier):
    refused(verifier, own_sign(issuer, staff_claims(issuer, realm_access={"roles": "auditor"})), "not a list")
    assert verifier.verify(own_sign(issuer, staff_claims(issuer, realm_access=None))).roles == ()
    refused(
        verifier,
        own_sign(issuer, staff_claims(issuer, preferred_username="service:reporting")),
        "cannot name a service",
    )
    token = own_sign(issuer, staff_claims(issuer, realm_access={"roles": ["service:reporting", "auditor"]}))
    assert verifier.verify(token).roles == ("auditor",)


# --- service tokens ----------------------------------------------------------------------------------------------
def test_a_service_token_is_the_service_and_nothing_else(keys):
    token = signer(keys, "reporting").token_for("grants")
    identity = TokenVerifier.from_config(config_for(keys, "grants")).verify(token)
    assert (identity.user, identity.roles, identity.kind) == ("service:reporting", ("service:reporting",), "service")


def test_a_service_token_is_only_for_the_service_it_calls(keys):
    token = signer(keys, "reporting").token_for("grants")
    refused(TokenVerifier.from_config(config_for(keys, "calls")), token, "wrong audience")
    refused(TokenVerifier.from_config(config_for(keys, None)), token, "a service token is for a service")


def test_a_service_cannot_sign_as_another_service_or_as_staff(keys, issuer):
    reporting = signer(keys, "reporting")
    as_grants = jwt.encode(
        now_claims(timedelta(minutes=5), iss=auth.SERVICE_ISSUER, sub="notifications", aud="grants"),
        reporting.private_key,
        algorithm="EdDSA",
        headers={"kid": reporting.kid},
    )
    refused(TokenVerifier.from_config(config_for(keys)), as_grants, "reporting's key signed a token for")
    # staff roles in a service token are ignored: the key decides who it is
    with_roles = jwt.encode(
        now_claims(
            timedelta(minutes=5),
            iss=auth.SERVICE_ISSUER,
            sub="reporting",
            aud="grants",
            realm_access={"roles": ["finance_approver"]},
            preferred_username="claire",
        ),
        reporting.private_key,
        algorithm="EdDSA",
        headers={"kid": reporting.kid},
    )
    assert TokenVerifier.from_config(config_for(keys)).verify(with_roles).roles == ("service:reporting",)
    # a service's key is not a staff issuer key
    staff_shaped = jwt.encode(
        staff_claims(issuer), reporting.private_key, algorithm="EdDSA", headers={"kid": issuer.kid}
    )
    refused(TokenVerifier.from_config(config_for(keys)), staff_shaped, "bad signature")
    # and another service's key id with this service's key
    notifications_kid = signer(keys, "notifications").kid
    forged = jwt.encode(
        now_claims(timedelta(minutes=5), iss=auth.SERVICE_ISSUER, sub="notifications", aud="grants"),
        reporting.private_key,
        algorithm="EdDSA",
        headers={"kid": notifications_kid},
    )
    refused(TokenVerifier.from_config(config_for(keys)), forged, "bad signature")


def test_service_tokens_are_short_lived(keys):
    reporting = signer(keys, "reporting")
    refused(
        TokenVerifier.from_config(config_for(keys)),
        reporting.token_for("grants", timedelta(hours=1)),
        "maximum of 10 min",
    )


def test_the_matrix_grants_each_service_identity_only_what_it_needs():
    granted = {
        role: sorted(op for op, roles in MATRIX.items() if role in roles)
        for role in {r for roles in MATRIX.values() for r in roles}
        if role not in STAFF_ROLES
    }
    assert granted == {"service:reporting": ["grants.ledger"], "service:notifications": ["reporting.get_report"]}


# --- configuration ------------------------------------------------------------------------------------------------
def test_no_keys_no_start(tmp_path, keys):
    with pytest.raises(KeyProblem, match="JMDI_JWKS is not set"):
        TokenVerifier.from_config({})
    with pytest.raises(KeyProblem, match="cannot read the JWKS"):
        TokenVerifier.from_config({"JMDI_JWKS": str(tmp_path / "missing.json")})
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(KeyProblem, match="not JSON"):
        TokenVerifier.from_config({"JMDI_JWKS": str(tmp_path / "bad.json")})
    write_jwks(tmp_path / "symmetric.json", [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}])
    with pytest.raises(KeyProblem, match="no usable signing key"):
        TokenVerifier.from_config({"JMDI_JWKS": str(tmp_path / "symmetric.json")})
    with pytest.raises(KeyProblem, match="JMDI_SERVICE_KEY is not set"):
        ServiceSigner.from_config({"SERVICE_NAME": "reporting"})
    write_jwks(tmp_path / "unnamed.json", [public_jwk(generate_private_key())])
    with pytest.raises(KeyProblem, match="does not name its service"):
        TokenVerifier.from_config(
            {"JMDI_JWKS": str(keys.issuer_jwks), "JMDI_SERVICE_JWKS": str(tmp_path / "unnamed.json")}
        )


def test_local_keys_are_made_once_and_private(tmp_path):
    directory = KeyDirectory(tmp_path)
    assert sorted(directory.ensure(["reporting"], issuer=True)) == ["issuer", "reporting"]
    first = directory.issuer_key.read_bytes()
    assert directory.ensure(["reporting"], issuer=True) == []
    assert directory.issuer_key.read_bytes() == first
    for path in (directory.issuer_key, directory.service_key("reporting")):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    published = json.loads(directory.issuer_jwks.read_text())["keys"]
    assert all(set(k) == {"kty", "crv", "x", "kid", "use", "alg"} for k in published), "public members only"
    assert [k["kid"].split(":")[0] for k in json.loads(directory.services_jwks.read_text())["keys"]] == ["reporting"]
