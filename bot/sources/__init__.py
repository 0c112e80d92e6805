"""Commit history sources (local git, GitHub) behind the `CommitSource` port in bot.ports."""
