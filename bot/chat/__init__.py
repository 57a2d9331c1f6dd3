"""The neutral chat layer: messages, replies, the reply payload codec, text cleaning and masking.

Everything above (channels, dispatcher, handlers, services) speaks these types; this package
imports nothing from ``bot`` above the storage models.
"""
