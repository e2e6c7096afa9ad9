"""Interoperability: what arrives from EHRs and HIEs (HL7 v2 ADT, FHIR notifications), in the product's own terms.

Nothing here opens a socket or reads the clock: the MLLP listener (api/mllp.py) and the FHIR routes hand
these modules bytes and a clock."""
