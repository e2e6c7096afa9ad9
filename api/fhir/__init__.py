"""FHIR R4 (4.0.1) over HTTP: CarePath's patients, episodes, tasks and pathways as FHIR resources (docs/fhir.md).

routes.py (the /fhir router) is built from reads.RESOURCES; wire.py holds the media type and the
OperationOutcome errors; resources.py the mappings; search_params.py how search values are read.
"""
