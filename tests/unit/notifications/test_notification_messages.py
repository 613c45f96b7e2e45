import datetime as dt
import email
import email.policy
from decimal import Decimal

import pytest

from notification_samples import CONTEXTS, context
from services.notifications.messages import (
    DEFAULT_TEMPLATE_DIR,
    KINDS,
    MissingVariable,
    TemplateError,
    TemplateLibrary,
    UnknownKind,
    build_message,
    key_of_message_id,
    message_id_for,
    message_key,
    render,
    template_dir_from_mapping,
)

NNBSP, NBSP = "\u202f", "\u00a0"
SENDER = "JMDI Programme <noreply@jmdi.local>"


STAFF_KINDS = ("payment_requested", "payment_cancelled")  # colleagues: a plain note, not a formal letter


def test_samples_cover_every_kind():
    assert set(CONTEXTS) == set(KINDS)


@pytest.mark.parametrize("lang", ["en", "fr"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_template_renders(kind, lang):
    subject, body = render(kind, lang, context(kind))
    assert subject and "\n" not in subject and len(subject) < 200
    assert body.endswith("\n") and not body.endswith("\n\n\n")
    assert "{{" not in body and "{%" not in body and "None" not in body
    assert "\n\n\n" not in body  # no holes left by optional blocks
    salutation = "Dear " if lang == "en" else ("Bonjour " if kind in STAFF_KINDS else "À l'attention de ")
    assert body.startswith(salutation + context(kind)["recipient_name"])
    if kind not in STAFF_KINDS:
        closing = "Yours sincerely," if lang == "en" else "salutations distinguées"
        assert closing in body and "jmdi.pmu@undp.org" in body


@pytest.mark.parametrize("lang", ["en", "fr"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_template_fails_loudly_on_a_missing_variable(kind, lang):
    for name in CONTEXTS[kind]:
        partial = context(kind)
        del partial[name]
        if name in OPTIONAL.get(kind, ()):
            render(kind, lang, partial)  # optional variables may be left out
        else:
            with pytest.raises(MissingVariable, match=name):
                render(kind, lang, partial)
    without_name = context(kind)
    del without_name["recipient_name"]
    with pytest.raises(MissingVariable, match="recipient_name"):
        render(kind, lang, without_name)


OPTIONAL = {
    "award": {"duration_months", "reply_by"},
    "tranche_paid": {"total_paid", "award_amount"},
    "payment_requested": {"reduction", "note"},
    "report_accepted": {"next_tranche_amount"},
    "grant_amended": {"new_end_date"},
    "grant_closed": {"recovery_amount", "recovery_due_date"},
    "ec_report": {"summary"},
    # used only in some branches; the sample takes the "eligible" branch, reasons shown when flagged/refused
    "screening_result": {"reasons", "members"},
}


def test_content_of_key_messages():
    subject, body = render("submission_receipt", "en", context("submission_receipt"))
    assert subject == (
        "JMDI call for proposals JMDI/CfP/2008-01: acknowledgement of receipt of proposal JMDI-2009-MA-0123"
    )
    assert "Received on:         15 January 2009 at 14:30 UTC" in body

    subject, body = render("award", "fr", context("award"))
    assert f"Montant maximal :              187{NNBSP}450,00{NBSP}€" in body
    assert "au plus tard le 1er juillet 2009" in body

    _, body = render("award", "en", context("award"))
    assert "Maximum grant amount:    EUR 187,450.00" in body

    subject, body = render("tranche_paid", "fr", context("tranche_paid"))
    assert subject == f"Subvention JMDI-G-2009-017 : versement de la tranche 1 (99{NNBSP}973,33{NBSP}€)"
    assert "Date de valeur :  6 octobre 2009" in body

    _, body = render("contract_signed", "en", context("contract_signed"))
    assert (
        "    1. EUR 99,973.33 - expected around 1 October 2009, pre-financing paid after signature of the "
        "contract\n    2. EUR 68,730.00"
    ) in body
    assert "3. EUR 18,746.67 - expected around 1 July 2011, balance, after approval of the final report" in body

    subject, body = render("evaluation_result", "fr", context("evaluation_result"))
    assert "Note obtenue :   38,5 / 50" in body

    _, body = render("rejection", "en", context("rejection"))
    assert "    - the full application scored 58/100" in body


def test_branches():
    flagged = context(
        "screening_result",
        eligible=False,
        flagged=True,
        members=["Association Migrations et Développement (Taroudant)"],
        observations_deadline=dt.date(2009, 3, 2),
    )
    subject, body = render("screening_result", "en", flagged)
    assert subject == "Proposal JMDI-2009-MA-0123: additional verification required"
    assert "    - Association Migrations et Développement (Taroudant)" in body and "by 2 March 2009" in body
    assert "it has not been rejected" in body

    refused = context("screening_result", eligible=False, reasons=[])
    _, body = render("screening_result", "fr", refused)
    assert "ne peut pas être admise à l'évaluation" in body and "critères d'éligibilité" in body

    failed = context(
        "evaluation_result", stage="full_application", score=Decimal("58"), max_score=100, threshold=65, passed=False
    )
    subject, body = render("evaluation_result", "en", failed)
    assert subject.endswith("evaluation of your full application") and "below the threshold" in body

    assert render("report_due", "en", context("report_due", days_before=1))[0].endswith("(in 1 day)")
    assert render("report_due", "fr", context("report_due", days_before=0))[0] == (
        "Subvention JMDI-G-2009-017 : rapport intermédiaire attendu aujourd'hui"
    )
    assert "overdue since 31 October 2010" in render("report_due", "en", context("report_due", days_before=-5))[0]

    subject, body = render("grant_closed", "fr", context("grant_closed"))
    assert subject.endswith(f"et recouvrement de 4{NNBSP}210,55{NBSP}€")
    assert "au plus tard le 3 février 2012" in body
    for no_recovery in (None, Decimal("0.00"), "0.00"):
        subject, body = render("grant_closed", "en", context("grant_closed", recovery_amount=no_recovery))
        assert subject == "Grant JMDI-G-2009-017: closure of the grant"
        assert "no amount is to be recovered" in body


def test_unknown_stage_or_report_kind_fails_loudly():
    with pytest.raises(MissingVariable):
        render("evaluation_result", "en", context("evaluation_result", stage="interview"))
    with pytest.raises(MissingVariable):
        render("report_due", "fr", context("report_due", report_kind="quarterly"))


def test_unknown_language_falls_back_to_english():
    for lang in ("es", "ar", None, "", "zz-ZZ"):
        subject, body = render("award", lang, context("award"))
        assert subject == render("award", "en", context("award"))[0]
        assert "EUR 187,450.00" in body
    assert render("award", "fr-BE", context("award")) == render("award", "fr", context("award"))


def test_unknown_kind_and_reserved_lang():
    with pytest.raises(UnknownKind):
        render("birthday", "en", {})
    with pytest.raises(TemplateError):
        render("award", "en", context("award", lang="fr"))


def test_templates_are_configuration(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "fr").mkdir()
    (tmp_path / "en" / "award.subject.txt").write_text("Grant {{ grant_reference }} awarded\n")
    (tmp_path / "en" / "award.body.txt").write_text("{{ amount|money }} on {{ reply_by|date }}\n")
    (tmp_path / "fr" / "award.subject.txt").write_text("Subvention {{ grant_reference }}\n")
    (tmp_path / "fr" / "award.body.txt").write_text("{{ amount|money }} le {{ reply_by|date }}\n")
    ctx = context("award")
    assert render("award", "fr", ctx, template_dir=tmp_path) == (
        "Subvention JMDI-G-2009-017",
        f"187{NNBSP}450,00{NBSP}€ le 1er juillet 2009\n",
    )
    # a kind missing from the folder is an error, not a silent fallback to the shipped texts
    with pytest.raises(TemplateError):
        render("rejection", "en", context("rejection"), template_dir=tmp_path)
    # staff edits are picked up by a long-lived library
    lib = TemplateLibrary(tmp_path)
    assert lib.render("award", "en", ctx)[0] == "Grant JMDI-G-2009-017 awarded"
    path = tmp_path / "en" / "award.subject.txt"
    path.write_text("Your grant {{ grant_reference }}\n")
    import os

    os.utime(path, (path.stat().st_atime + 5, path.stat().st_mtime + 5))
    assert lib.render("award", "en", ctx)[0] == "Your grant JMDI-G-2009-017"

    assert template_dir_from_mapping({}) == DEFAULT_TEMPLATE_DIR
    assert template_dir_from_mapping({"NOTIFICATIONS_TEMPLATE_DIR": str(tmp_path)}) == tmp_path
    with pytest.raises(TemplateError):
        TemplateLibrary(tmp_path / "missing")


def test_edited_template_cannot_reach_python_internals(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "award.subject.txt").write_text("x\n")
    (tmp_path / "en" / "award.body.txt").write_text("{{ amount.__class__.__mro__[1].__subclasses__() }}\n")
    with pytest.raises(Exception) as info:
        render("award", "en", context("award"), template_dir=tmp_path)
    assert "unsafe" in str(info.value).lower() or "undefined" in str(info.value).lower()


def test_html_alternative_is_optional_and_escaped(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "rejection.subject.txt").write_text("Proposal {{ proposal_reference }}\n")
    (tmp_path / "en" / "rejection.body.txt").write_text("{{ proposal_title }}\n")
    (tmp_path / "en" / "rejection.body.html").write_text("<p>{{ proposal_title }}</p>\n")
    msg = build_message(
        "rejection",
        "en",
        context("rejection", proposal_title="Rights & <duties>"),
        to="a@example.org",
        sender=SENDER,
        template_dir=tmp_path,
    )
    assert msg.get_body(("plain",)).get_content() == "Rights & <duties>\n"
    assert msg.get_body(("html",)).get_content() == "<p>Rights &amp; &lt;duties&gt;</p>\n"


def test_build_message_headers_body_and_attachment():
    data = b"PK\x03\x04 fake xlsx bytes"
    msg = build_message(
        "ec_report",
        "fr",
        context("ec_report"),
        to="Jean-Marc Lefèvre <jean-marc.lefevre@ec.europa.eu>, reporting@ec.europa.eu",
        sender=SENDER,
        attachments=[
            (
                "jmdi-financial-report-2010Q1.xlsx",
                data,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
        ],
        message_id="report_generated.7d1c2e.ec",
    )
    assert msg["Subject"] == "JMDI - quarterly financial report (du 1er janvier 2010 au 31 mars 2010)"
    assert msg["From"] == SENDER
    assert msg["Message-ID"] == "<report_generated.7d1c2e.ec@jmdi.local>"
    assert msg["Content-Language"] == "fr" and msg["X-JMDI-Kind"] == "ec_report"
    assert msg["Auto-Submitted"] == "auto-generated" and msg["Date"]
    # survives a round trip through bytes, as a relay sees it
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    # long subjects are folded (RFC 5322); Python's parser keeps the folding space, mail clients drop it
    assert parsed["Subject"].strip() == msg["Subject"]
    assert [a.addr_spec for a in parsed["To"].addresses] == ["jean-marc.lefevre@ec.europa.eu", "reporting@ec.europa.eu"]
    body = parsed.get_body(("plain",)).get_content()
    assert f"Montant engagé :           9{NNBSP}215{NNBSP}340,00{NBSP}€" in body
    (attachment,) = list(parsed.iter_attachments())
    assert attachment.get_filename() == "jmdi-financial-report-2010Q1.xlsx"
    assert attachment.get_content_type() == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert attachment.get_content() == data


def test_message_id_is_stable_for_an_idempotency_key():
    ctx = context("tranche_paid")
    first = build_message("tranche_paid", "en", ctx, "a@example.org", SENDER, message_id="evt-123.tranche_paid")
    again = build_message("tranche_paid", "en", ctx, "a@example.org", SENDER, message_id="evt-123.tranche_paid")
    other = build_message("tranche_paid", "en", ctx, "a@example.org", SENDER, message_id="evt-124.tranche_paid")
    assert first["Message-ID"] == again["Message-ID"] == "<evt-123.tranche_paid@jmdi.local>"
    assert other["Message-ID"] != first["Message-ID"]
    # without a key every message gets a fresh id
    fresh = [build_message("tranche_paid", "en", ctx, "a@example.org", SENDER)["Message-ID"] for _ in range(2)]
    assert fresh[0] != fresh[1] and fresh[0].endswith("@jmdi.local>")
    # a complete id is used verbatim
    assert (
        build_message("tranche_paid", "en", ctx, "a@example.org", SENDER, message_id="<x.1@undp.org>")["Message-ID"]
        == "<x.1@undp.org>"
    )


def test_message_keys_are_safe_and_injective():
    assert message_key("0b9c6d2e-1f0a-4c4b-9d7e-2a8f5b3c1d00") == "0b9c6d2e-1f0a-4c4b-9d7e-2a8f5b3c1d00"
    colon = message_key("evt:42:award")
    slash = message_key("evt/42/award")
    assert colon != slash
    assert colon.startswith("evt-42-award.") and message_key("evt:42:award") == colon
    assert message_id_for("a b@c") == message_id_for("a b@c")
    assert " " not in message_id_for("a b@c") and message_id_for("a b@c").count("@") == 1
    assert len(message_key("x" * 500)) <= 100
    assert key_of_message_id("<evt-1.award@jmdi.local>") == "evt-1.award"
    with pytest.raises(ValueError):
        message_key("")


@pytest.mark.parametrize("to", ["", "not-an-address", "a@example.org\r\nBcc: victim@example.org"])
def test_bad_recipients_are_refused(to):
    with pytest.raises(ValueError):
        build_message("award", "en", context("award"), to=to, sender=SENDER)


def test_list_of_recipients():
    msg = build_message(
        "payment_requested",
        "en",
        context("payment_requested"),
        to=["approver1@undp.org", "Approver Two <approver2@undp.org>"],
        sender=SENDER,
    )
    assert msg["To"] == "approver1@undp.org, Approver Two <approver2@undp.org>"


@pytest.mark.parametrize("language", ["en", "fr"])
def test_applicants_never_read_the_exclusion_lists_entries_only_the_officers_decision(language):
    """The screening events carry what the exclusion list says (its source, why an entity is on it); the e-mail
    to the applicant carries the consortium member concerned, or the officer's decision text — nothing else."""
    from types import SimpleNamespace

    from services.notifications.contexts import screening_result

    proposal = SimpleNamespace(title="Transferts de fonds et investissement productif dans la vallée du Souss")
    hit = {
        "applicant": "Association Migrations et Développement (Taroudant)",
        "matched": "ASSOC MIGRATIONS DEV",
        "by": "name",
        "reason": "EDES early detection: pending investigation (source: EDES extract 2009-04)",
    }
    base = {"proposal_id": "p-1", "reference": "JMDI-2009-MA-0123", "call_id": "JMDI-2008", "hits": [hit]}
    flagged = screening_result({**base, "outcome": "flagged", "reason": ""}, proposal)
    excluded = screening_result(
        {**base, "outcome": "excluded", "reason": "The lead applicant is in a situation of exclusion (PRAG 2.6.10.1)."},
        proposal,
    )
    _, flagged_body = render("screening_result", language, context("screening_result", **flagged))
    _, excluded_body = render("screening_result", language, context("screening_result", **excluded))
    for body in (flagged_body, excluded_body):
        assert "EDES" not in body and "early detection" not in body and "ASSOC MIGRATIONS DEV" not in body
    assert "    - Association Migrations et Développement (Taroudant)" in flagged_body
    assert "    - The lead applicant is in a situation of exclusion (PRAG 2.6.10.1)." in excluded_body


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_a_subject_value_with_cr_lf_stays_inert_text(lang):
    # the header classes are built once per process (messages._CachedHeaderRegistry): a header value of one
    # message must still not reach another header or another message
    injected = "JMDI-G-2009-017\r\nBcc: victim@example.org\r\n\r\nforged body"
    msg = build_message(
        "tranche_paid", lang, dict(context("tranche_paid"), grant_reference=injected), to="a@example.org", sender=SENDER
    )
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert parsed["Bcc"] is None
    assert "Bcc: victim@example.org" in parsed["Subject"] and "\n" not in parsed["Subject"]
    assert [h for h in parsed.keys() if h.lower() == "bcc"] == []
    clean = build_message("tranche_paid", lang, context("tranche_paid"), to="b@example.org", sender=SENDER)
    assert "victim" not in clean.as_string() and clean["To"] == "b@example.org"
