"""HL7 v2 over MLLP, without sockets: de-framing, the charset MSH-18 names, parsing, the checks made
before an acknowledgement, and the acknowledgement itself.

Everything here is pure: bytes in, bytes or the product's dataclasses out. `api/mllp.py` reads the socket
and `usecases/inbox.py` stores what passes; this module decides what a frame is and how to answer it.

- A frame is `0x0B` message `0x1C 0x0D` (MLLP release 1). Bytes outside a frame are dropped; a frame
  longer than the bound raises `FrameTooLarge` (the caller answers and closes the connection).
- The frame is bytes until MSH-18 says how to read it (HL7 table 0211; empty: ASCII). A charset we do
  not know, or bytes that are not valid in the one named, are answered AE with the reason: never a crash.
- `inspect` raises `Unacceptable` (AE: a message we cannot use; AR: what we do not take: message type,
  version, processing id) or returns the parsed message and its `MshHeader`.
- `build_ack`: original mode AA/AE/AR, enhanced mode CA/CE/CR when MSH-15/16 are valued; MSA-2 echoes
  MSH-10; an ERR segment says why in words for anything but an acceptance.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import hl7
import hl7.containers
import hl7.util

# The hl7 library logs the values it cannot unescape, which are fragments of the message (PHI): a bad
# escape is the sender's problem, answered in the ACK, never written to the log.
for _module in (hl7.util, hl7.containers):
    logging.getLogger(_module.__file__).setLevel(logging.CRITICAL + 1)

START, END = b"\x0b", b"\x1c\x0d"
DEFAULT_MAX_FRAME_BYTES = 1024 * 1024

# HL7 table 0211 (alternate character sets) -> Python codecs. Multi-byte sets that can contain the
# framing bytes (UNICODE UTF-16, UTF-32) cannot travel over MLLP release 1 and are not here.
CHARSETS = {
    "": "ascii", "ASCII": "ascii", "ISO IR6": "ascii",
    **{f"8859/{n}": f"iso8859-{n}" for n in range(1, 10)}, "8859/15": "iso8859-15",
    "UNICODE UTF-8": "utf-8", "UNICODE": "utf-8",
    "GB 18030-2000": "gb18030", "KS X 1001": "euc_kr", "BIG-5": "big5", "ISO IR87": "iso2022_jp",
}

# The ADT events CarePath takes (interop-reference.md): registration, admit, discharge, class changes,
# updates, cancellations, merge, unmerge, transfer.
ADT_EVENTS = frozenset({"A01", "A02", "A03", "A04", "A06", "A07", "A08", "A11", "A12", "A13", "A37", "A40"})
VERSION = re.compile(r"2\.(\d)(\.\d+)?")
MIN_MINOR, MAX_MINOR = 3, 8
MAX_CONTROL_ID = 199  # MSH-10 is ST(199) from v2.7 on


class AckCode(StrEnum):
    ACCEPT = "AA"
    ERROR = "AE"
    REJECT = "AR"


# Enhanced mode (accept acknowledgement): the commit-level answers to the same three outcomes.
ENHANCED = {AckCode.ACCEPT: "CA", AckCode.ERROR: "CE", AckCode.REJECT: "CR"}


class FrameTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the frame is longer than {limit} bytes")
        self.limit = limit


class Deframer:
    """Feed it what the socket reads; it returns each complete frame's message, in order. A start byte
    inside a frame means the sender gave up on the previous one: that one is dropped."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self._in_frame = False
        self.dropped = 0  # bytes outside any frame, and frames abandoned half-way

    @property
    def in_frame(self) -> bool:
        """A frame has started and not ended: the connection is mid-message."""
        return self._in_frame

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        frames: list[bytes] = []
        while True:
            if not self._in_frame:
                start = self._buffer.find(START)
                if start < 0:
                    self.dropped += len(self._buffer)
                    self._buffer.clear()
                    return frames
                self.dropped += start
                del self._buffer[:start + 1]
                self._in_frame = True
            end = self._buffer.find(END)
            restart = self._buffer.find(START, 0, end if end >= 0 else len(self._buffer))
            if restart >= 0:  # a new frame began before this one ended
                self.dropped += restart
                del self._buffer[:restart + 1]
                continue
            if end < 0:
                if len(self._buffer) > self.max_bytes:
                    raise FrameTooLarge(self.max_bytes)
                return frames
            if end > self.max_bytes:
                raise FrameTooLarge(self.max_bytes)
            frames.append(bytes(self._buffer[:end]))
            del self._buffer[:end + len(END)]
            self._in_frame = False


def frame(message: bytes) -> bytes:
    return START + message + END


@dataclass(frozen=True)
class MshHeader:
    """What CarePath reads of MSH (the HL7 field number in each comment)."""

    sending_application: str  # MSH-3.1
    sending_facility: str  # MSH-4.1
    receiving_application: str  # MSH-5.1
    receiving_facility: str  # MSH-6.1
    message_type: str  # MSH-9.1
    trigger_event: str  # MSH-9.2
    structure: str  # MSH-9.3
    control_id: str  # MSH-10
    processing_id: str  # MSH-11.1
    version: str  # MSH-12.1
    accept_ack_type: str = ""  # MSH-15
    app_ack_type: str = ""  # MSH-16
    charset: str = ""  # MSH-18 (first repetition)
    field_separator: str = "|"
    encoding_characters: str = "^~\\&"

    @property
    def sender(self) -> str:
        """Who sent it, as CAREPATH_MLLP_SENDERS names senders: MSH-3^MSH-4."""
        return f"{self.sending_application}^{self.sending_facility}"

    @property
    def enhanced(self) -> bool:
        """MSH-15 or MSH-16 valued: the sender asked for enhanced-mode acknowledgements."""
        return bool(self.accept_ack_type or self.app_ack_type)

    @property
    def event(self) -> str:
        return f"{self.message_type}^{self.trigger_event}"


class Unacceptable(Exception):
    """The message is answered AE or AR: `reason` in words, `error_code` from HL7 table 0357, `location`
    (e.g. "MSH-12") when a field is at fault; `header` when MSH could be read."""

    def __init__(self, code: AckCode, reason: str, error_code: str, location: str = "",
                 header: MshHeader | None = None, charset: str = "") -> None:
        super().__init__(reason)
        self.code, self.reason, self.error_code, self.location = code, reason, error_code, location
        self.header, self.charset = header, charset


@dataclass(frozen=True)
class Policy:
    """What the receiver takes: processing ids (MSH-11; P production, T training, D debugging) and events."""

    processing_ids: frozenset[str] = frozenset({"P"})
    events: frozenset[str] = ADT_EVENTS


@dataclass(frozen=True)
class Inspected:
    header: MshHeader
    text: str  # the message decoded with its charset, segments ending in \r
    message: Any = field(repr=False)  # hl7.Message

    @property
    def patient_key(self) -> str | None:
        return patient_key(self.message)


def charset_of(payload: bytes) -> str:
    """MSH-18 read from the raw bytes (MSH is ASCII in every charset MLLP can carry)."""
    first = re.split(rb"[\r\n]", payload, maxsplit=1)[0]
    if not first.startswith(b"MSH") or len(first) < 8:
        return ""
    fields = first.split(first[3:4])
    if len(fields) < 18:
        return ""
    repetition = fields[1][1:2] or b"~"
    return fields[17].split(repetition)[0].decode("ascii", "replace").strip().upper()


def codec_for(charset: str) -> str | None:
    return CHARSETS.get(" ".join(charset.upper().split()))


def decode(payload: bytes) -> tuple[str, str]:
    """The message as text, and the charset it was read with; Unacceptable (AE) when it cannot be read."""
    if not payload.startswith(b"MSH"):
        raise Unacceptable(AckCode.ERROR, "not an HL7 v2 message: it does not begin with an MSH segment", "100")
    charset = charset_of(payload)
    codec = codec_for(charset)
    if codec is None:
        raise Unacceptable(AckCode.ERROR, f"MSH-18 names the character set '{charset[:40]}', which CarePath "
                           f"does not read (it reads {', '.join(sorted(n for n in CHARSETS if n))} and, "
                           "when MSH-18 is empty, ASCII)", "103", "MSH-18")
    try:
        text = payload.decode(codec)
    except UnicodeDecodeError as exc:
        named = f"the character set MSH-18 names ({charset})" if charset else "ASCII (MSH-18 is empty)"
        raise Unacceptable(AckCode.ERROR, f"byte {exc.start} of the message is not valid in {named}; "
                           "declare the character set the message is written in in MSH-18", "102", "MSH-18",
                           charset=charset) from None
    return text.replace("\r\n", "\r").replace("\n", "\r"), charset


def _field(message: Any, segment: str, number: int, component: int = 1, repetition: int = 1) -> str:
    try:
        return str(message.extract_field(segment, 1, number, repetition, component) or "").strip()
    except Exception:  # the library's asserts and lookups on a malformed message: the field is not there
        return ""


def read_header(message: Any, charset: str) -> MshHeader:
    msh = message.segment("MSH")
    return MshHeader(
        sending_application=_field(message, "MSH", 3), sending_facility=_field(message, "MSH", 4),
        receiving_application=_field(message, "MSH", 5), receiving_facility=_field(message, "MSH", 6),
        message_type=_field(message, "MSH", 9).upper(), trigger_event=_field(message, "MSH", 9, 2).upper(),
        structure=_field(message, "MSH", 9, 3).upper(), control_id=_field(message, "MSH", 10),
        processing_id=_field(message, "MSH", 11).upper(), version=_field(message, "MSH", 12),
        accept_ack_type=_field(message, "MSH", 15).upper(), app_ack_type=_field(message, "MSH", 16).upper(),
        charset=charset, field_separator=str(msh[1]), encoding_characters=str(msh[2]))


def inspect(payload: bytes, policy: Policy | None = None) -> Inspected:
    """Everything that can be checked at once, before the acknowledgement."""
    text, charset = decode(payload)
    inspected = parse_text(text, charset)
    _check_header(inspected.header, policy or Policy())
    return inspected


def parse_text(text: str, charset: str = "") -> Inspected:
    """A decoded message parsed (the `hl7` library) and its MSH read; Unacceptable (AE) when it cannot be."""
    try:
        message = hl7.parse(text)
        header = read_header(message, charset)
    except Exception as exc:  # the library raises asserts and lookups too; untrusted input is never a crash
        words = str(exc)[:200] if isinstance(exc, hl7.HL7Exception) else "it is not a well-formed HL7 v2 message"
        raise Unacceptable(AckCode.ERROR, f"the message cannot be parsed: {words}", "100",
                           charset=charset) from None
    return Inspected(header, text, message)


def _check_header(header: MshHeader, policy: Policy) -> None:
    def refuse(code: AckCode, reason: str, error_code: str, location: str) -> Unacceptable:
        return Unacceptable(code, reason, error_code, location, header, header.charset)

    if not header.control_id:
        raise refuse(AckCode.ERROR, "MSH-10 (message control id) is empty", "101", "MSH-10")
    if len(header.control_id) > MAX_CONTROL_ID:
        raise refuse(AckCode.ERROR, f"MSH-10 (message control id) is longer than {MAX_CONTROL_ID} characters",
                     "102", "MSH-10")
    if not header.message_type or not header.trigger_event:
        raise refuse(AckCode.ERROR, "MSH-9 (message type) needs the type and the trigger event, e.g. "
                     "ADT^A03^ADT_A03", "101", "MSH-9")
    if header.processing_id not in policy.processing_ids:
        raise refuse(AckCode.REJECT, f"MSH-11 (processing id) is '{header.processing_id}'; this receiver "
                     f"takes {' or '.join(sorted(policy.processing_ids))}", "202", "MSH-11")
    version = VERSION.fullmatch(header.version)
    if version is None or not MIN_MINOR <= int(version.group(1)) <= MAX_MINOR:
        raise refuse(AckCode.REJECT, f"MSH-12 (version) is '{header.version}'; CarePath takes HL7 v2.3 to "
                     "v2.8", "203", "MSH-12")
    if header.message_type != "ADT":
        raise refuse(AckCode.REJECT, f"message type {header.message_type} is not taken: CarePath takes ADT "
                     "messages only", "200", "MSH-9")
    if header.trigger_event not in policy.events:
        raise refuse(AckCode.REJECT, f"ADT event {header.trigger_event} is not taken: CarePath takes "
                     f"{', '.join(sorted(policy.events))}", "201", "MSH-9")


def patient_key(message: Any) -> str | None:
    """Whose message this is, for processing in order per patient: the first PID-3 identifier of type MR
    (else the first), as AUTHORITY:ID. None without a PID segment."""
    try:
        identifiers = list(message.segment("PID")[3])
    except Exception:  # no PID, or no PID-3
        return None
    chosen = None
    for repetition in identifiers:
        parts = [str(component) for component in repetition] if isinstance(repetition, list) else [str(repetition)]
        value, authority = parts[0].strip(), (parts[3].strip() if len(parts) > 3 else "")
        kind = parts[4].strip().upper() if len(parts) > 4 else ""
        if value and (chosen is None or kind == "MR"):
            chosen = f"{authority}:{value}"[:255]
            if kind == "MR":
                break
    return chosen


# -- acknowledgements ----------------------------------------------------------------------------

def ack_code(code: AckCode, header: MshHeader | None) -> str:
    return ENHANCED[code] if header is not None and header.enhanced else code.value


def ack_wanted(code: AckCode, header: MshHeader | None) -> bool:
    """Original mode: always. Enhanced mode: as MSH-15 asks (AL or empty always, NE never, ER on an error
    or a rejection, SU on success)."""
    if header is None or not header.enhanced:
        return True
    wanted = header.accept_ack_type or "AL"
    return wanted == "AL" or (wanted == "ER" and code is not AckCode.ACCEPT) or (
        wanted == "SU" and code is AckCode.ACCEPT)


def _escape(text: str, header: MshHeader) -> str:
    """Our own text in a field: the message's delimiters escaped (HL7 escape sequences), no line breaks."""
    sep, enc = header.field_separator or "|", (header.encoding_characters + "^~\\&"[len(header.encoding_characters):])
    component, repetition, escape, subcomponent = enc[0], enc[1], enc[2], enc[3]
    text = " ".join(text.split())
    out = text.replace(escape, f"{escape}E{escape}")
    for char, code in ((sep, "F"), (component, "S"), (subcomponent, "T"), (repetition, "R")):
        out = out.replace(char, f"{escape}{code}{escape}")
    return out


ECHOED = ("receiving_application", "receiving_facility", "sending_application", "sending_facility", "processing_id",
          "version", "charset", "control_id")
FALLBACK_HEADER = MshHeader("", "", "", "", "", "", "", "", "P", "2.5.1")


def build_ack(header: MshHeader | None, code: AckCode, *, now: datetime, control_id: str,
              reason: str = "", error_code: str = "", location: str = "") -> str:
    """The acknowledgement, segments ending in \\r (frame it after encoding it with `ack_codec`)."""
    msh = header or FALLBACK_HEADER
    sep, comp = msh.field_separator or "|", (msh.encoding_characters or "^~\\&")[0]
    stamp = now.strftime("%Y%m%d%H%M%S") + "+0000"
    trigger = _escape(msh.trigger_event, msh)
    ack_type = comp.join(["ACK", trigger, "ACK"]) if trigger else "ACK"
    echo = {name: _escape(getattr(msh, name), msh) for name in ECHOED}  # read unescaped, written escaped
    fields = ["MSH", msh.encoding_characters or "^~\\&", echo["receiving_application"] or "CAREPATH",
              echo["receiving_facility"], echo["sending_application"], echo["sending_facility"], stamp, "", ack_type,
              control_id, echo["processing_id"] or "P", echo["version"] or "2.5.1"]
    if msh.charset:
        fields += ["", "", "", "", "", echo["charset"]]
    segments = [sep.join(fields)]
    words = _escape(reason, msh) if reason else ""
    segments.append(sep.join(["MSA", ack_code(code, header), echo["control_id"], words]).rstrip(sep))
    if code is not AckCode.ACCEPT:
        where = _location(location, comp, msh)
        condition = comp.join([error_code or "207", _escape(ERROR_NAMES.get(error_code, "Application error"), msh),
                               "HL70357"])
        segments.append(sep.join(["ERR", "", where, condition, "E", "", "", "", words]))
    return "\r".join(segments) + "\r"


def _location(location: str, comp: str, header: MshHeader) -> str:
    """ERR-2 (ERL): segment^sequence^field, from "MSH-12"."""
    found = re.fullmatch(r"([A-Z0-9]{3})-(\d+)", location)
    return comp.join([found.group(1), "1", found.group(2)]) if found else ""


ERROR_NAMES = {"100": "Segment sequence error", "101": "Required field missing", "102": "Data type error",
               "103": "Table value not found", "200": "Unsupported message type", "201": "Unsupported event code",
               "202": "Unsupported processing id", "203": "Unsupported version id", "207": "Application internal error"}


def ack_codec(header: MshHeader | None) -> str:
    """The acknowledgement is written in the message's character set (our own text is ASCII)."""
    return (codec_for(header.charset) if header is not None else None) or "ascii"


def encode_ack(text: str, header: MshHeader | None) -> bytes:
    return text.encode(ack_codec(header), "replace")


__all__ = ["ADT_EVENTS", "CHARSETS", "DEFAULT_MAX_FRAME_BYTES", "AckCode", "Deframer", "FrameTooLarge", "Inspected",
           "MshHeader", "Policy", "Unacceptable", "ack_wanted", "build_ack", "charset_of", "decode", "encode_ack",
           "frame", "inspect", "parse_text", "patient_key"]
