"""The source stage: the RDS database DMS reads, seen from dwctl.

Owns DSN parsing and connections that never show a password (connection.py), reading tables
and types from the source's own catalog (introspect.py), merging them into the spec YAML in
place (spec_merge.py, yaml_roundtrip.py), and the `import` (importer.py) and `doctor`
(doctor.py, doctor_checks.py) commands.

May import: dwctl.spec, dwctl.errors, dwctl.cli_options.
"""
