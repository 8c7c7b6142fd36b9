"""The FHIR REST server (``trial2fhir serve``): see ``adapter/server/README.md``."""
