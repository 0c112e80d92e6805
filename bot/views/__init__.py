"""Views, pure: results and refusals → the words and Block Kit a person sees. Escaping happens here."""
