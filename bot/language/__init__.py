"""Reading what people type: normalisation, typed intents, the rule parser and an optional model.

``normalize`` turns a raw chat text into the text the rules read (simplified characters, no quoted
reply, no @mentions, fillers or emoji, known misspellings of command words corrected); ``parse``
turns that into an ``Intent`` against the names the asker may act on; ``llm`` may propose an
``Intent`` for a message the rules cannot place (off by default, never in charge).
"""
