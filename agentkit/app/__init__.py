"""The application layer: the `agentkit` command, its sub-commands and the demo. Nothing else imports it."""
