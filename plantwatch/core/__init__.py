"""The shapes every layer shares: readings and poll results, value types and register codecs,
errors, the outage log."""
