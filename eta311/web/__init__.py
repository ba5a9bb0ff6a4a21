"""The web service, Flask only here: app factory, blueprints, payloads, OpenAPI, the gate and what is served now."""
