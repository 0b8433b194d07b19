"""Configuration: settings from the environment, the policy file, logging, and the composition root."""
