"""The error raised for anything wrong in configuration, with a one-line message for people."""


class ConfigError(Exception):
    """A setting, the policy file or a template is wrong; the message names where and what."""
