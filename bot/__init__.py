"""release-bot: a Slack ChatOps bot that ships to production many times a day, safely."""

__version__ = "0.1.0"
