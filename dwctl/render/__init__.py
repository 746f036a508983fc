"""The render stage: spec -> {path: text}, and putting that tree on disk all-or-nothing.

Owns the Jinja engine and the views templates see (engine.py), quoting and headers (text.py),
the Terraform variable values (tfvars.py) and per-environment files (environments.py), the
load job's per-spec config (job_config.py), the atomic write with manifest and check/diff
(output.py, to_disk.py) and the `render` command (commands.py).

May import: dwctl.spec, dwctl.errors, dwctl.cli_options (and reads the load job's source file
from dwctl/warehouse to ship it, without importing it).
"""
