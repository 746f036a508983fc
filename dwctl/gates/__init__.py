"""The gates stage: checks CI runs on what was rendered before it is planned or applied.

Owns `dwctl validate` (validate.py: spec, freshness, fmt, provider schema, terraform validate),
the offline provider-schema checker (provider_schema.py), the checkov run behind `dwctl scan`
(scan.py) and their commands (commands.py).

May import: dwctl.spec, dwctl.render, dwctl.deploy (the Terraform driver), dwctl.errors, dwctl.cli_options.
"""
