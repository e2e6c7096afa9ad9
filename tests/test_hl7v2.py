"""HL7 v2 without sockets: MLLP de-framing, the charset MSH-18 names, the checks before the ACK, the ACK."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime

import pytest

from carepath.engine.interop import hl7v2
from carepath.engine.interop.hl7v2 import AckCode, Deframer, FrameTooLarge, Unacceptable
from tests.support.mllp_messages import adt, encoded

NOW = datetime(2026, 1, 5, 9, 15, tzinfo=UTC)


def segments(ack: str) -> dict[str, list[str]]:
    return {line[:3]: line.split("|") for line in ack.split("\r") if line}


# -- framing ------------------------------------------------------------------------------------

def test_frames_are_split_whatever_the_reads() -> None:
    stream = hl7v2.frame(b"MSH|one") + b"noise" + hl7v2.frame(b"MSH|two")
    deframer = Deframer()
    frames = [f for i in range(len(stream)) for f in deframer.feed(stream[i:i + 1])]
    assert frames == [b"MSH|one", b"MSH|two"]
    assert deframer.dropped == len(b"noise") and not deframer.in_frame


def test_a_frame_abandoned_for_a_new_one_is_dropped() -> None:
    deframer = Deframer()
    assert deframer.feed(b"\x0bMSH|half" + hl7v2.frame(b"MSH|whole")) == [b"MSH|whole"]


def test_a_truncated_frame_waits_and_an_oversized_one_raises() -> None:
    deframer = Deframer(max_bytes=100)
    assert deframer.feed(b"\x0bMSH|" + b"x" * 50) == []
    assert deframer.in_frame
    with pytest.raises(FrameTooLarge, match="longer than 100 bytes"):
        deframer.feed(b"x" * 60)
    with pytest.raises(FrameTooLarge):
        Deframer(max_bytes=100).feed(hl7v2.frame(b"y" * 101))
    assert Deframer(max_bytes=100).feed(hl7v2.frame(b"y" * 100)) == [b"y" * 100]


# -- charsets -----------------------------------------------------------------------------------

@pytest.mark.parametrize("charset", ["UNICODE UTF-8", "8859/1"])
def test_non_ascii_names_are_read_in_the_charset_msh_18_names(charset: str) -> None:
    message = adt(name="Müller^Jörg^Ç", charset=charset)
    inspected = hl7v2.inspect(encoded(message, charset))
    assert inspected.message.extract_field("PID", 1, 5, 1, 1) == "Müller"
    assert inspected.header.charset == charset
    assert inspected.patient_key == "GENHOSP:MRN1001"


def test_bytes_invalid_in_the_named_charset_are_an_ae_with_the_reason() -> None:
    latin1 = encoded(adt(name="Müller^Jörg", charset="UNICODE UTF-8"), "8859/1")  # says UTF-8, is Latin-1
    with pytest.raises(Unacceptable) as refused:
        hl7v2.inspect(latin1)
    assert refused.value.code is AckCode.ERROR and "not valid in the character set MSH-18 names" in refused.value.reason
    no_charset = adt(name="Müller^Jörg", charset="").encode("utf-8")
    with pytest.raises(Unacceptable, match="ASCII \\(MSH-18 is empty\\)"):
        hl7v2.inspect(no_charset)


def test_an_unknown_charset_is_an_ae_naming_it() -> None:
    with pytest.raises(Unacceptable, match="EBCDIC"):
        hl7v2.inspect(adt(charset="EBCDIC").encode())


# -- checks -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "code", "words"), [
    ({"version": "2.2"}, AckCode.REJECT, "MSH-12"),
    ({"version": "2.9"}, AckCode.REJECT, "MSH-12"),
    ({"processing": "T"}, AckCode.REJECT, "MSH-11"),
    ({"message_type": "ORU", "event": "R01"}, AckCode.REJECT, "ORU is not taken"),
    ({"event": "A99"}, AckCode.REJECT, "A99 is not taken"),
    ({"control_id": " "}, AckCode.ERROR, "MSH-10"),
])
def test_what_is_not_taken_is_refused_with_the_reason(changes: dict[str, str], code: AckCode, words: str) -> None:
    with pytest.raises(Unacceptable) as refused:
        hl7v2.inspect(adt(**changes).encode())
    assert refused.value.code is code and words in refused.value.reason
    assert refused.value.header is not None


@pytest.mark.parametrize("version", ["2.3", "2.3.1", "2.5.1", "2.8"])
def test_versions_2_3_to_2_8_are_taken(version: str) -> None:
    assert hl7v2.inspect(adt(version=version).encode()).header.version == version


def test_training_messages_are_taken_when_configured() -> None:
    policy = hl7v2.Policy(processing_ids=frozenset({"P", "T"}))
    assert hl7v2.inspect(adt(processing="T").encode(), policy).header.processing_id == "T"


@pytest.mark.parametrize("garbage", [b"", b"hello", b"MSH", b"\xff\xfe\x00M", b"MSH|^~\\&|A\rPID|" + b"\xff" * 10])
def test_garbage_is_an_error_never_a_crash(garbage: bytes) -> None:
    with pytest.raises(Unacceptable) as refused:
        hl7v2.inspect(garbage)
    assert refused.value.code is AckCode.ERROR


# -- acknowledgements ---------------------------------------------------------------------------

def test_original_mode_accept_echoes_msh_10() -> None:
    header = hl7v2.inspect(adt(control_id="CTRL-42").encode()).header
    ack = segments(hl7v2.build_ack(header, AckCode.ACCEPT, now=NOW, control_id="ack1"))
    assert ack["MSA"][1:3] == ["AA", "CTRL-42"]
    assert ack["MSH"][2:6] == ["CAREPATH", "CARE", "EPIC", "GENHOSP"]  # sender and receiver swapped
    assert ack["MSH"][8] == "ACK^A03^ACK" and ack["MSH"][9] == "ack1" and ack["MSH"][11] == "2.5.1"
    assert "ERR" not in ack


def test_an_error_carries_err_with_the_reason_in_words_escaped() -> None:
    header = hl7v2.inspect(adt(control_id="C7").encode()).header
    text = hl7v2.build_ack(header, AckCode.ERROR, now=NOW, control_id="a", reason="bad | field ^ here",
                           error_code="102", location="PID-5")
    ack = segments(text)
    assert ack["MSA"][1:3] == ["AE", "C7"]
    assert ack["ERR"][2] == "PID^1^5" and ack["ERR"][3] == "102^Data type error^HL70357" and ack["ERR"][4] == "E"
    assert ack["ERR"][8] == "bad \\F\\ field \\S\\ here"


def test_enhanced_mode_answers_ca_ce_cr_as_msh_15_asks() -> None:
    always = hl7v2.inspect(adt(accept_ack="AL", app_ack="NE").encode()).header
    assert segments(hl7v2.build_ack(always, AckCode.ACCEPT, now=NOW, control_id="a"))["MSA"][1] == "CA"
    assert segments(hl7v2.build_ack(always, AckCode.REJECT, now=NOW, control_id="a"))["MSA"][1] == "CR"
    errors_only = hl7v2.inspect(adt(accept_ack="ER").encode()).header
    assert not hl7v2.ack_wanted(AckCode.ACCEPT, errors_only) and hl7v2.ack_wanted(AckCode.ERROR, errors_only)
    assert not hl7v2.ack_wanted(AckCode.ACCEPT, hl7v2.inspect(adt(accept_ack="NE").encode()).header)
    original = hl7v2.inspect(adt().encode()).header
    assert hl7v2.ack_wanted(AckCode.ACCEPT, original)
    assert segments(hl7v2.build_ack(original, AckCode.ERROR, now=NOW, control_id="a"))["MSA"][1] == "AE"


def test_an_ack_is_written_in_the_message_charset() -> None:
    header = hl7v2.inspect(encoded(adt(sender="HÔPITAL", charset="8859/1"), "8859/1")).header
    raw = hl7v2.encode_ack(hl7v2.build_ack(header, AckCode.ACCEPT, now=NOW, control_id="a"), header)
    assert "HÔPITAL".encode("iso8859-1") in raw and raw.decode("iso8859-1").split("\r")[0].endswith("|8859/1")


def test_an_ack_for_garbage_has_no_msa_2() -> None:
    ack = segments(hl7v2.build_ack(None, AckCode.ERROR, now=NOW, control_id="a", reason="not HL7", error_code="100"))
    assert ack["MSA"][1:3] == ["AE", ""] and ack["ERR"][8] == "not HL7"


@pytest.mark.parametrize("garbage", [b"MSH\n8AS2", b"MSH|A\n1HM53\n902&V^I1II^5^SP", b"MSH\r0V61~I",
                                     b"MSH9^^1^\r 48S1\\93S\r^"])
def test_what_trips_the_parser_is_an_error_too(garbage: bytes) -> None:
    with pytest.raises(Unacceptable, match="cannot be parsed"):
        hl7v2.inspect(garbage)


def test_mangled_messages_are_answered_never_raised() -> None:
    """A seeded mutation of a real message, many times: each is taken or answered AE/AR, never a crash."""
    rng = random.Random(14)
    base, alphabet = encoded(adt(name="Müller^Jörg")), b"|^~\\&\r\n MSHPID0123456789\xc3\xa9\xff"
    for _ in range(1500):
        data = bytearray(base)
        for _ in range(rng.randint(1, 10)):
            pos = rng.randrange(len(data) + 1)
            if rng.random() < 0.5 and data:
                del data[pos % len(data)]
            else:
                data.insert(pos, rng.choice(alphabet))
        try:
            header: hl7v2.MshHeader | None = hl7v2.inspect(bytes(data)).header
            code = AckCode.ACCEPT
        except Unacceptable as refused:
            header, code = refused.header, refused.code
        assert hl7v2.encode_ack(hl7v2.build_ack(header, code, now=NOW, control_id="a"), header).startswith(b"MSH|")


def test_the_parser_does_not_log_message_fragments(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):  # a bad escape in MSH-3, which the header reads
        assert hl7v2.inspect(encoded(adt(sender="SECRET\\Z\\EPIC"))).header.sending_application == "SECRETEPIC"
    assert "SECRET" not in caplog.text


def test_echoed_fields_are_escaped_again_in_the_ack() -> None:
    header = hl7v2.inspect(encoded(adt(sender="A\\T\\B", control_id="X\\F\\1"))).header
    assert (header.sending_application, header.control_id) == ("A&B", "X|1")
    ack = segments(hl7v2.build_ack(header, AckCode.ACCEPT, now=NOW, control_id="a"))
    assert ack["MSH"][4] == "A\\T\\B" and ack["MSA"][2] == "X\\F\\1"
