"""The FHIR REST server (``trial2fhir serve``): see "Serving FHIR" in README.md."""
