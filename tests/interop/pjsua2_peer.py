#!/usr/bin/env python3
"""Headless pjsua2 caller for coda's interop tests (PyPI package pjsua2-python).

Dials a SIP URI over UDP on 127.0.0.1 with the null sound device, plays a WAV into
the call from the moment media is up, records what it hears (8 kHz WAV, same time
origin as the playback), sends RFC 4733 DTMF at given offsets, and waits for the
far end to hang up (or hangs up itself after --duration). Prints one JSON line:

  {"connected": true, "status": 200, "hangup_by": "remote", "dtmf": [["#", 12.03]],
   "media_at": 0.05, "duration_s": 14.2, "record": "rx.wav"}

Times in "dtmf" are seconds since media start (the start of the playback and of
the recording). Example:

  pjsua2_peer.py --call sip:77513@127.0.0.1:5060 --play msg.wav --record rx.wav \
                 --dtmf 20.5:# --duration 40
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import pjsua2 as pj


class Call(pj.Call):
    def __init__(self, acc, peer):
        super().__init__(acc)
        self.peer = peer
        self.player = None
        self.recorder = None
        self.media_at = None
        self.confirmed = False
        self.disconnected = False
        self.last_status = 0

    def onCallState(self, prm):  # noqa: N802 - pjsua2 callback name
        ci = self.getInfo()
        if ci.lastStatusCode:
            self.last_status = int(ci.lastStatusCode)
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.confirmed = True
        elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.disconnected = True

    def onCallMediaState(self, prm):  # noqa: N802
        ci = self.getInfo()
        for i, mi in enumerate(ci.media):
            if mi.type != pj.PJMEDIA_TYPE_AUDIO or mi.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            if self.media_at is not None:
                continue
            am = self.getAudioMedia(i)
            if self.peer.args.record:
                self.recorder = pj.AudioMediaRecorder()
                self.recorder.createRecorder(self.peer.args.record)
                am.startTransmit(self.recorder)
            if self.peer.args.play:
                self.player = pj.AudioMediaPlayer()
                self.player.createPlayer(self.peer.args.play, pj.PJMEDIA_FILE_NO_LOOP)
                self.player.startTransmit(am)
            self.media_at = time.monotonic()


class Peer:
    def __init__(self, args):
        self.args = args
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.userAgent = "coda-interop-pjsua2"
        cfg.logConfig.level = 4 if args.log else 1
        cfg.logConfig.consoleLevel = 0
        if args.log:
            cfg.logConfig.filename = args.log
        cfg.medConfig.clockRate = 8000
        cfg.medConfig.sndClockRate = 8000
        cfg.medConfig.channelCount = 1
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        self.ep.libInit(cfg)
        self.ep.audDevManager().setNullDev()
        tc = pj.TransportConfig()
        tc.port = args.local_port
        tc.boundAddress = "127.0.0.1"
        tc.publicAddress = "127.0.0.1"
        self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
        self.ep.libStart()
        # Offer G.711 only (plus telephone-event, which pjsua adds itself).
        for c in self.ep.codecEnum2():
            prio = {"PCMU/8000/1": 255, "PCMA/8000/1": 254}.get(c.codecId, 0)
            self.ep.codecSetPriority(c.codecId, prio)
        acfg = pj.AccountConfig()
        acfg.idUri = "sip:pjsua@127.0.0.1"
        acfg.regConfig.registerOnAdd = False
        acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        acfg.mediaConfig.transportConfig.publicAddress = "127.0.0.1"
        acfg.natConfig.iceEnabled = False
        acfg.mediaConfig.lockCodecEnabled = False
        self.acc = pj.Account()
        self.acc.create(acfg)

    def handle(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.ep.libHandleEvents(20)

    def run(self) -> dict:
        a = self.args
        dtmf_plan = []
        for item in filter(None, (a.dtmf or "").split(",")):
            t, _, digits = item.partition(":")
            dtmf_plan.append((float(t), digits))
        dtmf_plan.sort()
        call = Call(self.acc, self)
        prm = pj.CallOpParam(True)
        started = time.monotonic()
        call.makeCall(a.call, prm)
        sent = []
        hangup_by = None
        while True:
            self.ep.libHandleEvents(10)
            now = time.monotonic()
            if call.disconnected:
                hangup_by = hangup_by or "remote"
                break
            if call.media_at is not None:
                while dtmf_plan and now - call.media_at >= dtmf_plan[0][0]:
                    _t, digits = dtmf_plan.pop(0)
                    call.dialDtmf(digits)
                    sent.append([digits, round(now - call.media_at, 3)])
            if now - started > a.duration and hangup_by is None:
                hangup_by = "local"
                try:
                    call.hangup(pj.CallOpParam(True))
                except pj.Error:
                    break
            if hangup_by == "local" and now - started > a.duration + 5:
                break
        self.handle(0.5)  # let the BYE/200 exchange finish
        result = {
            "connected": call.confirmed,
            "status": call.last_status,
            "hangup_by": hangup_by,
            "dtmf": sent,
            "media_at": None if call.media_at is None else round(call.media_at - started, 3),
            "duration_s": round(time.monotonic() - started, 3),
            "record": a.record,
        }
        # Drop media and the call before libDestroy (pjsua asserts otherwise).
        call.recorder = None
        call.player = None
        del call
        return result

    def close(self) -> None:
        self.acc.shutdown()
        self.acc = None
        self.ep.libDestroy()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--call", required=True, help="SIP URI to dial")
    p.add_argument("--play", help="WAV to send (8 kHz mono 16-bit is best)")
    p.add_argument("--record", help="WAV file for the received audio")
    p.add_argument("--dtmf", help="comma-separated SECONDS:DIGITS after media start, e.g. 12.5:#")
    p.add_argument("--duration", type=float, default=60.0, help="hang up after this many seconds")
    p.add_argument("--local-port", type=int, default=0)
    p.add_argument("--log", help="pjsip log file")
    args = p.parse_args(argv)
    peer = Peer(args)
    try:
        result = peer.run()
    finally:
        peer.close()
    print(json.dumps(result), flush=True)
    return 0 if result["connected"] else 2


if __name__ == "__main__":
    sys.exit(main())
