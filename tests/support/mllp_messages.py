"""Realistic ADT messages for the MLLP and inbox tests: non-ASCII names, repeated PID-3 identifiers, optional
segments left out. Each builder call gets a unique control id unless one is given. (tests/support/adt_messages.py
builds messages field by field for the routing tests.)"""

from __future__ import annotations

import uuid

CODECS = {"": "ascii", "8859/1": "iso8859-1", "UNICODE UTF-8": "utf-8"}


def adt(event: str = "A03", *, control_id: str | None = None, mrn: str = "MRN1001", name: str = "Nguyen^Anh^T",
        charset: str = "UNICODE UTF-8", version: str = "2.5.1", processing: str = "P", sender: str = "EPIC",
        facility: str = "GENHOSP", accept_ack: str = "", app_ack: str = "", patient_class: str = "E",
        message_type: str = "ADT", visit: str = "V778899") -> str:
    """One message, segments ending in \\r (as text; encode it with `encoded`)."""
    control_id = control_id or uuid.uuid4().hex[:16]
    msh = (f"MSH|^~\\&|{sender}|{facility}|CAREPATH|CARE|20260105091500||{message_type}^{event}^{message_type}_{event}|"
           f"{control_id}|{processing}|{version}|||{accept_ack}|{app_ack}||{charset}")
    segments = [msh, f"EVN|{event}|20260105091500",
                f"PID|1||{mrn}^^^GENHOSP^MR~998877^^^GENHOSP^PI~123-45-6789^^^SSA^SS||{name}||19580214|F|||"
                "12 Elm St^^Springfield^IL^62701||(217)555-0101",
                f"PV1|1|{patient_class}|ED^^^GENHOSP||||1234^Welby^Marcus|||||||||||{visit}|||||||||||||||||01||||||||"
                "20260104220000|20260105090000"]
    return "\r".join(segments) + "\r"


def encoded(message: str, charset: str = "UNICODE UTF-8") -> bytes:
    return message.encode(CODECS.get(charset, "utf-8"))


def control_id_of(message: str) -> str:
    return message.split("\r", 1)[0].split("|")[9]
