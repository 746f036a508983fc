"""dwctl: one YAML spec -> Terraform stack + warehouse SQL for a serverless AWS warehouse."""

__version__ = "0.1.0"
