"""Message-waiting lamps (issue 3, RFC 3842 over RFC 6665): five devices of one extension
subscribe; each gets the state at once and a NOTIFY on every change (a message left, and
the message leaving an email-only mailbox). Bad subscriptions get 489 / 404 / 423 / 481."""

from __future__ import annotations

import sipkit
from conftest import MAILBOX, wait_until
from test_mail_outage import caller_wav, leave_messages


def subscribe(ua: sipkit.SipUdp, uri: str, expires: int = 600, event: str = "message-summary",
              call_id: str | None = None, to_tag: str = "", cseq: int = 1, from_tag: str | None = None):
    call_id = call_id or sipkit.new_token(12) + "@mwi-test"
    from_tag = from_tag or sipkit.new_token()
    ua.send_raw(ua.build("SUBSCRIBE", uri, call_id, from_tag, cseq, sipkit.new_branch(), to_tag=to_tag,
                         extra=[f"Event: {event}", f"Expires: {expires}",
                                "Accept: application/simple-message-summary"]))
    while True:
        m = ua.recv(5)
        assert m is not None, "no answer to SUBSCRIBE"
        if m.is_response and m.cseq_method == "SUBSCRIBE":
            return m, call_id, from_tag


def next_notify(ua: sipkit.SipUdp, timeout: float = 10) -> sipkit.Msg:
    """The next new NOTIFY; retransmissions (same Call-ID and CSeq, sent while the test was
    not reading its socket) are answered and skipped."""
    seen = ua.__dict__.setdefault("_notify_seen", set())
    while True:
        m = ua.wait_request("NOTIFY", timeout)
        assert m is not None, "no NOTIFY"
        ua.requests.remove(m)
        key = (m.get("call-id"), m.get("cseq"))
        if key not in seen:
            seen.add(key)
            return m


def summary(n: sipkit.Msg) -> dict[str, str]:
    out = {}
    for line in n.body.decode().splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip().lower()] = v.strip()
    return out


def test_five_devices_follow_the_mailbox(make_coda, smtp, tmp_path):
    coda = make_coda(smtp=smtp, mailbox=[{"extension": MAILBOX, "email": "desk@example.test",
                                          "email_only": True}])
    phones = [sipkit.SipUdp(coda.sip_addr) for _ in range(5)]
    try:
        for ua in phones:
            resp, _cid, _tag = subscribe(ua, coda.uri(MAILBOX))
            assert resp.status == 200, resp.status
            assert resp.get("expires") == "600"
            n = next_notify(ua)
            assert n.get("event") == "message-summary"
            assert n.get("subscription-state", "").startswith("active")
            assert n.get("content-type") == "application/simple-message-summary"
            s = summary(n)
            assert s["messages-waiting"] == "no" and s["voice-message"] == "0/0", s

        leave_messages(coda, caller_wav(tmp_path), 1)
        for ua in phones:
            s = summary(next_notify(ua))
            assert s["messages-waiting"] == "yes" and s["voice-message"] == "1/0", s

        # Email-only: once the mail is accepted the message leaves the mailbox; lamps go off.
        wait_until(lambda: smtp.messages, 30, "the notification mail")
        for ua in phones:
            s = summary(next_notify(ua))
            assert s["messages-waiting"] == "no" and s["voice-message"] == "0/0", s
    finally:
        for ua in phones:
            ua.close()


def test_unsubscribe_and_bad_subscriptions(coda):
    with sipkit.SipUdp(coda.sip_addr) as ua:
        resp, cid, ftag = subscribe(ua, coda.uri(MAILBOX))
        assert resp.status == 200
        next_notify(ua)
        to_tag = sipkit.tag_of(resp.get("to"))
        resp, _, _ = subscribe(ua, coda.uri(MAILBOX), expires=0, call_id=cid, to_tag=to_tag,
                               cseq=2, from_tag=ftag)
        assert resp.status == 200
        n = next_notify(ua)
        assert n.get("subscription-state", "").startswith("terminated"), n.get("subscription-state")

        # RFC 6665 §8.3.1 / §4.2.1.1, RFC 3261 §12.2.2
        assert subscribe(ua, coda.uri(MAILBOX), event="presence")[0].status == 489
        assert subscribe(ua, coda.uri("99999"))[0].status == 404
        r = subscribe(ua, coda.uri(MAILBOX), expires=10)[0]
        assert r.status == 423 and r.get("min-expires") == "60"
        assert subscribe(ua, coda.uri(MAILBOX), to_tag="nosuchdialog")[0].status == 481
    assert coda.options_ok()
