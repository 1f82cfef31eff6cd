"""Per-mailbox mail options (issue 4): several recipients, notify-only (no audio),
email-only (the message leaves the mailbox once the server accepted the mail), and the
operator's templates."""

from __future__ import annotations

from conftest import MAILBOX, wait_until, wav_attachments
from test_mail_outage import caller_wav, leave_messages


def test_email_only_mailbox_is_emptied_after_delivery(make_coda, smtp, tmp_path):
    coda = make_coda(
        smtp=smtp,
        mailbox=[{"extension": MAILBOX, "email": "desk@example.test, office@example.test",
                  "name": "Porters' Lodge", "email_only": True}],
        mail={"templates": {"subject": "VM for {mailbox} from {caller}", "body": "{name}: {duration}\n"}},
    )
    leave_messages(coda, caller_wav(tmp_path), 1)
    [msg] = wait_until(lambda: smtp.messages, 30, "the notification")
    assert msg["Subject"].startswith(f"VM for {MAILBOX} from "), msg["Subject"]
    assert sorted(r for e in smtp.envelopes for r in e.rcpt_tos) == ["desk@example.test", "office@example.test"]
    assert len(wav_attachments(msg)) == 1
    assert "Porters' Lodge: 0:0" in msg.get_body(preferencelist=("plain",)).get_content()
    wait_until(lambda: coda.messages(MAILBOX) == [], 15, "the message removed from the mailbox")
    assert not list((coda.data_dir / "spool" / MAILBOX).glob("*.wav")), "audio left behind"


def test_notify_only_mailbox_keeps_message_and_sends_no_audio(make_coda, smtp, tmp_path):
    coda = make_coda(
        smtp=smtp,
        mailbox=[{"extension": MAILBOX, "email": "alice@example.test", "attach": False}],
    )
    leave_messages(coda, caller_wav(tmp_path), 1)
    [msg] = wait_until(lambda: smtp.messages, 30, "the notification")
    assert wav_attachments(msg) == []
    assert "Dial the voicemail service" in msg.get_body(preferencelist=("plain",)).get_content()
    assert msg.get_body(preferencelist=("html",)) is not None
    assert len(coda.messages(MAILBOX)) == 1
