"""FHIR R4 (4.0.1) over HTTP: CarePath's patients, episodes, tasks and pathways as FHIR resources."""
