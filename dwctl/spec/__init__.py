"""The spec stage: what a pipeline is, read from YAML and checked before anything is rendered.

Owns the typed model (model.py), the YAML reader that keeps line/column marks for errors
(read.py), the source -> DMS -> Redshift/Glue type mapping (type_mapping.py), the layout of
the files DMS lands (landed_layout.py), the JSON Schema / the docs site's spec reference (reference.py) and
the `schema` command (commands.py).

May import: dwctl.errors and dwctl.cli_options only. Everything else imports this.
"""
